"""The engine: a pool of driver connections and the Connection that every statement goes through.

``Connection`` is the single choke point for statements: it begins transactions, counts
statements for budgets, logs them when echo is on, and translates driver errors into
``mapper.errors`` with the SQL and parameters attached.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from . import errors
from ._typing import ConnectionPool, DBAPIConnection
from .dialects import Dialect, URL, dialect_for, parse_url
from .sql import Compiler

__all__ = ["Engine", "Connection", "QueuePool", "Row", "Budget"]

log = logging.getLogger("mapper.sql")


class Row(tuple[Any, ...]):
    """A result row: a tuple that also allows access by column name (``row.count``, ``row["count"]``)."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _index: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._index[name]]
        except KeyError:
            msg = f"row has no column {name!r}; its columns are {list(self._fields)}"
            raise AttributeError(msg) from None

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                key = self._index[key]
            except KeyError:
                msg = f"row has no column {key!r}; its columns are {list(self._fields)}"
                raise KeyError(msg) from None
        return tuple.__getitem__(self, key)

    def _asdict(self) -> dict[str, Any]:
        """The row as a dict of column name to value."""
        return dict(zip(self._fields, self))


def row_class(names: Sequence[str]) -> type[Row]:
    """A Row subclass for these column names."""
    fields = tuple(names)
    index = {n: i for i, n in enumerate(fields)}
    return type("Row", (Row,), {"__slots__": (), "_fields": fields, "_index": index})


class Budget:
    """A statement budget: ``limit`` statements at most inside its block."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


class QueuePool:
    """A thread-safe pool of at most ``size`` connections; waits ``timeout`` seconds for one.

    Connections that a caller reports broken are closed and replaced on demand.
    """

    def __init__(
        self,
        creator: Any,
        size: int,
        timeout: float,
        keeper: DBAPIConnection | None = None,
        check: Callable[[DBAPIConnection], bool] | None = None,
    ) -> None:
        self._creator = creator
        #: ``check(raw)``: False for an idle connection that died (the server restarted or
        #: killed it); it is closed and replaced before a session sees it.
        self._check = check
        self._size = size
        self._timeout = timeout
        self._idle: list[DBAPIConnection] = []
        self._out = 0
        self._cond = threading.Condition()
        self._closed = False
        # Keeps a shared in-memory SQLite database alive between sessions.
        self._keeper = keeper

    def acquire(self) -> DBAPIConnection:
        deadline = time.monotonic() + self._timeout
        idle: DBAPIConnection | None = None
        with self._cond:
            while True:
                if self._closed:
                    msg = "the Database is closed; create a new one"
                    raise errors.InterfaceError(msg)
                if self._idle:
                    self._out += 1
                    idle = self._idle.pop()
                    break
                if self._out < self._size:
                    self._out += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise errors.PoolTimeoutError.waited(self._timeout, self._size)
                self._cond.wait(left)
        # The slot is taken; checking and connecting happen outside the lock.
        if idle is not None:
            if self._check is None or self._check(idle):
                return idle
            _close_quietly(idle)
        try:
            return self._creator()  # type: ignore[no-any-return]
        except BaseException:
            with self._cond:
                self._out -= 1
                self._cond.notify()
            raise

    def release(self, raw: DBAPIConnection, discard: bool = False) -> None:
        with self._cond:
            self._out -= 1
            if discard or self._closed:
                _close_quietly(raw)
            else:
                self._idle.append(raw)
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for raw in self._idle:
                _close_quietly(raw)
            self._idle.clear()
            if self._keeper is not None:
                _close_quietly(self._keeper)
                self._keeper = None
            self._cond.notify_all()

    @property
    def checked_out(self) -> int:
        """Connections currently lent to sessions."""
        return self._out


def _close_quietly(raw: Any) -> None:
    try:
        raw.close()
    except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
        pass


class Engine:
    """A URL, its dialect, a compiler and a connection pool.

    Args:
        url: the database URL.
        pool_size: most connections open at once.
        pool_timeout: seconds to wait for a free connection before PoolTimeoutError.
        pre_ping: check a pooled connection is alive before lending it (one round trip).
        isolation_level: applied to every new connection; None keeps the server default.
        echo: log each statement, its parameters and its time on the ``mapper.sql`` logger.
        busy_timeout: SQLite only: seconds a write waits for a lock.
        connect_args: extra keyword arguments for the driver's connect().
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        pool_timeout: float = 30.0,
        isolation_level: str | None = None,
        echo: bool = False,
        busy_timeout: float = 5.0,
        connect_args: dict[str, Any] | None = None,
        pre_ping: bool = True,
    ) -> None:
        if not isinstance(pool_size, int) or pool_size < 1:
            msg = f"pool_size must be a positive int, got {pool_size!r}"
            raise errors.ConfigurationError(msg)
        self.url: URL = parse_url(url)
        self.dialect: Dialect = dialect_for(self.url)
        self.compiler = Compiler(self.dialect)
        self.echo = bool(echo)
        if self.echo and not log.handlers and not logging.getLogger().handlers:
            # echo=True should show something even when the application configured no logging.
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
            log.addHandler(handler)
            log.setLevel(logging.INFO)
        self.isolation_level = isolation_level
        self.pre_ping = bool(pre_ping)
        self.options: dict[str, Any] = {
            "busy_timeout": busy_timeout,
            "connect_args": dict(connect_args or {}),
            "memory_name": uuid.uuid4().hex,
        }
        self._init_lock = threading.Lock()
        self._initialized = False
        make_pool = getattr(self.dialect, "create_pool", None)
        # A shared in-memory SQLite database lives only while one connection holds it.
        keeper = self._create_raw() if self.dialect.needs_keeper(self.url) else None
        self.pool: ConnectionPool = (
            make_pool(self, pool_size, pool_timeout)
            if make_pool is not None
            else QueuePool(
                self._create_raw, pool_size, pool_timeout, keeper, self.dialect.ping if self.pre_ping else None
            )
        )

    def _create_raw(self) -> DBAPIConnection:
        """Open and prepare a new driver connection."""
        driver_errors = self.dialect.driver_errors()
        try:
            raw = self.dialect.connect(self.url, self.options)
        except ImportError as exc:
            msg = (
                f"the driver for {self.url.scheme} is not installed ({exc.name}); "
                f"pip install 'mapper[{self.dialect.install_extra}]'"
            )
            raise errors.ConfigurationError(msg) from exc
        except driver_errors as exc:
            klass = self.dialect.error_class(exc)
            msg = f"cannot connect to {self.url.safe()}: {self.url.mask(str(exc))}"
            raise klass(msg, orig=exc) from None
        try:
            self.dialect.on_connect(raw, self.isolation_level)
            self._initialize(raw)
        except BaseException:
            _close_quietly(raw)
            raise
        return raw

    def _initialize(self, raw: DBAPIConnection) -> None:
        if self._initialized:
            return
        with self._init_lock:
            if not self._initialized:
                self.dialect.initialize(raw)
                self._initialized = True

    def connect(self) -> Connection:
        """A Connection holding one pooled driver connection until closed."""
        raw = self.pool.acquire()
        if not self._initialized:
            self._initialize(raw)
        return Connection(self, raw)

    def close(self) -> None:
        """Close every pooled connection."""
        self.pool.close()


class Connection:
    """One driver connection lent to a session: statements, transactions and savepoints.

    Attributes:
        count: statements sent since the connection was lent (BEGIN/COMMIT/SAVEPOINT excluded).
        budgets: active statement budgets; each statement is charged to all of them.
        in_transaction: a transaction is open (begun by the first statement).
    """

    __slots__ = (
        "engine",
        "dialect",
        "compiler",
        "raw",
        "_cursor",
        "count",
        "budgets",
        "in_transaction",
        "broken",
        "closed",
        "echo",
        "_errors",
        "_sp_seq",
        "last_description",
    )

    def __init__(self, engine: Engine, raw: DBAPIConnection) -> None:
        self.engine = engine
        self.dialect = engine.dialect
        self.compiler = engine.compiler
        self.raw = raw
        self._cursor = raw.cursor()
        self.count = 0
        self.budgets: list[Budget] = []
        self.in_transaction = False
        self.broken = False
        self.closed = False
        self.echo = engine.echo
        self._errors = engine.dialect.driver_errors()
        self._sp_seq = 0
        self.last_description: Sequence[Any] | None = None

    # -- the choke point --------------------------------------------------------------------------

    def _before(self, sql: str, params: Any) -> None:
        if self.closed:
            msg = "this connection was closed; open a new session"
            raise errors.SessionClosedError(msg)
        for b in self.budgets:
            if b.used >= b.limit:
                shown = sql if len(sql) <= 200 else sql[:200] + "..."
                msg = f"query budget of {b.limit} exceeded by statement {b.used + 1}: {shown}"
                raise errors.QueryBudgetExceeded(msg)
        for b in self.budgets:
            b.used += 1
        self.count += 1
        if not self.in_transaction:
            try:
                self.dialect.begin(self.raw)
            except self._errors as exc:
                self._raise(exc, "BEGIN", None)
            self.in_transaction = True

    def _raise(self, exc: BaseException, sql: str | None, params: Any) -> None:
        dialect = self.dialect
        klass = dialect.error_class(exc)
        if dialect.is_disconnect(exc):
            self.broken = True
        code = dialect.error_code(exc)
        raise klass(
            f"({type(exc).__name__}) {exc}",
            orig=exc,
            statement=sql,
            params=params,
            code=code,
            retryable=code is not None and code in dialect.retryable_codes,
        ) from exc

    def _log(self, sql: str, params: Any, started: float, many: int = 0) -> None:
        ms = (time.perf_counter() - started) * 1000
        if many:
            shown = list(params[:10]) if params is not None else []
            more = f" ... and {many - len(shown)} more" if many > len(shown) else ""
            log.info("%s [executemany x%d] %r%s (%.3f ms)", sql, many, shown, more, ms)
        else:
            log.info("%s %r (%.3f ms)", sql, params, ms)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Send one statement; returns the cursor (for rowcount, lastrowid and RETURNING rows)."""
        self._before(sql, params)
        cur = self._cursor
        started = time.perf_counter() if self.echo else 0.0
        try:
            cur.execute(sql, params)
        except self._errors as exc:
            self._raise(exc, sql, params)
        if self.echo:
            self._log(sql, params, started)
        return cur

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Send a query and return all its rows as tuples."""
        cur = self.execute(sql, params)
        try:
            rows = cur.fetchall()
        except self._errors as exc:
            self._raise(exc, sql, params)
        self.last_description = cur.description
        return rows if isinstance(rows, list) else list(rows)

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> int:
        """Send one statement for many parameter rows (one statement for budgets); returns rowcount."""
        self._before(sql, seq)
        cur = self._cursor
        started = time.perf_counter() if self.echo else 0.0
        try:
            cur.executemany(sql, seq)
        except self._errors as exc:
            self._raise(exc, sql, seq[:10])
        if self.echo:
            self._log(sql, seq, started, len(seq))
        return int(cur.rowcount)

    # -- transactions -----------------------------------------------------------------------------

    def commit(self) -> None:
        """Commit the open transaction, if any.

        A COMMIT that fails may leave the transaction open (SQLite keeps it, and its locks,
        after SQLITE_BUSY), so the connection counts as in a transaction until the COMMIT
        succeeds: the rollback that follows the error, or close(), then ends it.
        """
        if not self.in_transaction:
            return
        try:
            self.dialect.commit(self.raw)
        except self._errors as exc:
            self._raise(exc, "COMMIT", None)
        self.in_transaction = False

    def rollback(self) -> None:
        """Roll back the open transaction, if any.

        On a connection that was lost there is nothing to roll back: the server dropped the
        transaction with the link, and the error that reported the loss is the one that matters.
        """
        if not self.in_transaction:
            return
        self.in_transaction = False
        if self.broken:
            return
        try:
            self.dialect.rollback(self.raw)
        except self._errors as exc:
            self._raise(exc, "ROLLBACK", None)

    def _control(self, sql: str) -> None:
        # Savepoint statements are not charged to budgets: they are transaction control.
        if not self.in_transaction:
            try:
                self.dialect.begin(self.raw)
            except self._errors as exc:
                self._raise(exc, "BEGIN", None)
            self.in_transaction = True
        started = time.perf_counter() if self.echo else 0.0
        try:
            self._cursor.execute(sql)
        except self._errors as exc:
            self._raise(exc, sql, None)
        if self.echo:
            self._log(sql, (), started)

    def savepoint(self) -> str:
        """Open a savepoint and return its name."""
        self._sp_seq += 1
        name = f"mapper_sp_{self._sp_seq}"
        self._control(self.dialect.savepoint_sql(name))
        return name

    def release_savepoint(self, name: str) -> None:
        """Release (keep the work of) a savepoint."""
        self._control(self.dialect.release_savepoint_sql(name))

    def rollback_to_savepoint(self, name: str) -> None:
        """Undo the work done since a savepoint (the savepoint stays open)."""
        self._control(self.dialect.rollback_savepoint_sql(name))

    def close(self) -> None:
        """Roll back anything open and give the driver connection back to the pool."""
        if self.closed:
            return
        self.closed = True
        try:
            self._cursor.close()
        except Exception:  # noqa: BLE001 - the connection may be broken already
            self.broken = True
        if self.in_transaction and not self.broken:
            try:
                self.dialect.rollback(self.raw)
            except Exception:  # noqa: BLE001
                self.broken = True
        self.in_transaction = False
        self.engine.pool.release(self.raw, discard=self.broken)
