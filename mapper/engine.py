"""The engine: a pool of driver connections and the Connection that every statement goes through.

``Connection`` is the single choke point for statements: it begins transactions, reports each
statement to the guards and observers that watch it (budgets, the SQL echo, ``db.on_statement``
callbacks: see ``events``), and translates driver errors into ``mapper.errors`` with the SQL and
parameters attached.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from . import errors
from ._typing import ConnectionPool, DBAPIConnection
from .dialects import Dialect, URL, dialect_for, parse_url
from .events import Budget, EchoLog, StatementCallback, StatementEvent, Subscription
from .pool import PING_WINDOW, PoolSettings, PoolStatus, QueuePool, close_quietly
from .sql import Compiler

__all__ = ["Engine", "Connection", "QueuePool", "PoolStatus", "Row", "Budget"]

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


class Engine:
    """A URL, its dialect, a compiler and a connection pool.

    Args:
        url: the database URL.
        pool_size: most connections open at once.
        pool_timeout: seconds to wait for a free connection before PoolTimeoutError.
        pool_min: idle connections kept open however long they sit idle.
        pool_max_idle: seconds an idle connection above ``pool_min`` stays open (None: forever).
        pool_max_lifetime: seconds after which a connection is closed when it is next given
            back or about to be lent (None: no limit).
        pre_ping: check a pooled connection is alive before lending it (one round trip).
        isolation_level: applied to every new connection; None keeps the server default.
        echo: log each statement, its parameters and its time on the ``mapper.sql`` logger.
        busy_timeout: SQLite only: seconds a write waits for a lock.
        connect_args: extra keyword arguments for the driver's connect().
        connect_timeout: seconds to wait for a server while opening a connection.
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 5,
        pool_timeout: float = 30.0,
        pool_min: int = 0,
        pool_max_idle: float | None = None,
        pool_max_lifetime: float | None = None,
        isolation_level: str | None = None,
        echo: bool = False,
        busy_timeout: float = 5.0,
        connect_args: dict[str, Any] | None = None,
        pre_ping: bool = True,
        connect_timeout: float = 10.0,
    ) -> None:
        settings = PoolSettings.check(pool_size, pool_timeout, pool_min, pool_max_idle, pool_max_lifetime)
        if (
            isinstance(connect_timeout, bool)
            or not isinstance(connect_timeout, (int, float))
            or not connect_timeout > 0  # NaN too
        ):
            msg = f"connect_timeout must be a positive number of seconds, got {connect_timeout!r}"
            raise errors.ConfigurationError(msg)
        self.url: URL = parse_url(url)
        self.dialect: Dialect = dialect_for(self.url)
        self.compiler = Compiler(self.dialect)
        self.echo = bool(echo)
        #: The statement observers of every connection (``on_statement`` callbacks, the echo).
        #: Connections hold this very list, so a callback added later sees their statements too.
        self.observers: list[StatementCallback] = []
        if self.echo:
            self.observers.append(EchoLog())
            if not log.handlers and not logging.getLogger().handlers:
                # echo=True should show something even when the application configured no logging.
                handler = logging.StreamHandler()
                handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
                log.addHandler(handler)
                log.setLevel(logging.INFO)
        self.isolation_level = isolation_level
        self.pre_ping = bool(pre_ping)
        self.options: dict[str, Any] = {
            "busy_timeout": busy_timeout,
            "connect_timeout": float(connect_timeout),
            "connect_args": dict(connect_args or {}),
            "memory_name": uuid.uuid4().hex,
        }
        #: Opens a driver connection: the dialect's ``connect``, or an asyncio driver's bridge
        #: (``aio_drivers``) when an AsyncDatabase owns the engine.
        self.connector: Callable[[URL, dict[str, Any]], DBAPIConnection] = self.dialect.connect
        self._init_lock = threading.Lock()
        self._initialized = False
        if isolation_level is not None:
            # A level the backend does not have is a mistake to report now, not at first use.
            self.dialect.check_isolation_level(isolation_level)
        # A shared in-memory SQLite database lives only while one connection holds it.
        keeper = self._create_raw() if self.dialect.needs_keeper(self.url) else None
        #: When set, ``connect()`` returns ``pinned(owner)`` instead of lending a pooled
        #: connection: ``mapper.testing.TestTransaction`` runs a test's sessions this way.
        self.pinned: Callable[[object | None], Connection] | None = None
        self.pool: ConnectionPool = QueuePool(
            self._create_raw, settings, keeper, self.dialect.ping if self.pre_ping else None
        )
        #: Seconds after a transaction within which its session's next one skips ``pre_ping``
        #: (the pool's own window is the same; ``set_ping_window`` changes both).
        self.ping_window = PING_WINDOW
        #: ``"primary"`` or ``"replica"`` once the Database has replicas (``replicas.Replicas``
        #: sets it), else None: the route its statement events and echo lines name.
        self.route: str | None = None
        #: The URL, password masked, as statement events name the server.
        self.server = self.url.safe()

    def set_ping_window(self, seconds: float) -> None:
        """How long an idle connection is lent, or reused for its session's next transaction,
        without the ``pre_ping`` check (0: checked every time)."""
        self.ping_window = seconds
        if isinstance(self.pool, QueuePool):
            self.pool.ping_window = seconds

    def _create_raw(self) -> DBAPIConnection:
        """Open and prepare a new driver connection."""
        try:
            driver_errors = self.dialect.driver_errors()  # the first import from the driver
        except ImportError as exc:
            raise self._not_installed(exc) from exc
        try:
            raw = self.connector(self.url, self.options)
        except ImportError as exc:
            raise self._not_installed(exc) from exc
        except driver_errors as exc:
            klass = self.dialect.error_class(exc)
            msg = f"cannot connect to {self.url.safe()}: {self.url.mask(str(exc))}"
            raise klass(msg, orig=exc) from None
        try:
            self.dialect.on_connect(raw, self.isolation_level)
            self._initialize(raw)
        except BaseException:
            close_quietly(raw)
            raise
        return raw

    def _not_installed(self, exc: ImportError) -> errors.ConfigurationError:
        """The error for a driver that cannot be imported, naming the extra that installs it."""
        msg = (
            f"the driver for {self.url.scheme} is not installed ({exc.name}); "
            f"pip install 'mapper-uow[{self.dialect.install_extra}]'"
        )
        return errors.ConfigurationError(msg)

    def _initialize(self, raw: DBAPIConnection) -> None:
        if self._initialized:
            return
        with self._init_lock:
            if not self._initialized:
                self.dialect.initialize(raw)
                self._initialized = True

    def on_statement(self, callback: StatementCallback) -> Subscription:
        """Call ``callback(event)`` after every statement of every connection (see ``events``)."""
        if not callable(callback):
            msg = f"on_statement() takes a callable of one StatementEvent, got {callback!r}"
            raise errors.ConfigurationError(msg)
        self.observers.append(callback)
        return Subscription(self.observers, callback)

    def connect(self, owner: object | None = None, read_only: bool = False) -> Connection:
        """A Connection holding one pooled driver connection until closed.

        Args:
            owner: the session the connection serves, named by its statement events.
            read_only: the server refuses writes on it until it goes back to the pool
                (``Dialect.set_read_only``).
        """
        if self.pinned is not None:
            return self.pinned(owner)
        raw = self.pool.acquire()
        try:
            if not self._initialized:
                self._initialize(raw)
            conn = Connection(self, raw)
            if owner is not None:
                conn.owner = weakref.ref(owner)
            if read_only:
                conn.set_read_only()
            return conn
        except BaseException:
            # The pool counted the connection as lent: give it back, or its slot is lost.
            self.pool.release(raw, discard=True)
            raise

    def close(self) -> None:
        """Close every pooled connection."""
        self.pool.close()


class Connection:
    """One driver connection lent to a session: statements, transactions and savepoints.

    Attributes:
        count: statements sent since the connection was lent (BEGIN/COMMIT/SAVEPOINT excluded).
        budgets: the guards of each statement (the session's active budgets): every one is
            checked before a statement is sent, then each is charged (``events.Budget``).
        owner: a weak reference to the session the connection serves, or None.
        in_transaction: a transaction is open (begun by the first statement).
        broken: the driver connection is lost (or in no known state): it is thrown away, never
            lent again, and replaced before the next transaction.
        raw: the driver connection; a transaction that follows a lost one runs on a new one.
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
        "owner",
        "_observers",
        "_errors",
        "_sp_seq",
        "_lent",
        "_ended",
        "_ended_at",
        "route",
        "server",
        "read_only",
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
        self.owner: weakref.ref[Any] | None = None
        self._observers = engine.observers
        self._errors = engine.dialect.driver_errors()
        self._sp_seq = 0
        #: ``raw`` is the pool's, counted as lent (False after a replacement failed).
        self._lent = True
        #: A transaction ended since ``raw`` was last checked: the next one checks it first
        #: (when it ended more than ``PING_WINDOW`` ago, at ``_ended_at``).
        self._ended = False
        self._ended_at = 0.0
        self.route = engine.route
        self.server = engine.server
        #: Writes are refused by the server (``set_read_only``), until the connection goes back.
        self.read_only = False

    def set_read_only(self) -> None:
        """Make the server refuse writes on this connection (undone when it goes back to the pool)."""
        try:
            self.dialect.set_read_only(self.raw, True)
        except self._errors as exc:
            self.broken = True
            self._raise(exc, "SET READ ONLY", None)
        self.read_only = True

    # -- the choke point --------------------------------------------------------------------------

    def _refuse_closed(self) -> None:
        msg = "this connection was closed; open a new session"
        raise errors.SessionClosedError(msg)

    def _begin(self) -> None:
        """Begin a transaction, on a driver connection that is alive.

        A session keeps its connection between transactions, and the server may drop it
        meanwhile (a restart, an idle timeout, an administrator's kill). So a transaction that
        follows another one first checks the connection, as the pool checks an idle one
        (``pre_ping``), and one known to be lost is replaced whatever ``pre_ping`` says.
        Replacing it loses nothing: no transaction is open on it.
        """
        if (
            self.broken
            or not self._lent
            or (
                self._ended
                and self.engine.pre_ping
                and time.monotonic() - self._ended_at >= self.engine.ping_window
                and not self.dialect.ping(self.raw)
            )
        ):
            self._replace()
        self._ended = False
        try:
            self.dialect.begin(self.raw)
        except self._errors as exc:
            if not (self.engine.pre_ping and self.dialect.is_disconnect(exc) and self._replace_until_live()):
                self._raise(exc, "BEGIN", None)
            try:
                self.dialect.begin(self.raw)
            except self._errors as again:
                self._raise(again, "BEGIN", None)
        self.in_transaction = True

    def _replace(self) -> None:
        """Throw the driver connection away and take another from the pool."""
        pool = self.engine.pool
        if self._lent:
            self._lent = False
            close_quietly(self._cursor)
            pool.release(self.raw, discard=True)
        # Until a live connection is in place (the pool may time out), the next try replaces again.
        self.broken = True
        raw = pool.acquire()
        try:
            cursor = raw.cursor()
        except BaseException:
            pool.release(raw, discard=True)
            raise
        self.raw, self._cursor = raw, cursor
        self._lent = True
        self.broken = False
        if self.read_only:
            self.set_read_only()

    def _heal(self, exc: BaseException) -> bool:
        """After a transaction's first statement (or its BEGIN) failed: whether the connection had died unseen
        (within ``PING_WINDOW``, where ``pre_ping`` does not check) and was replaced by a live
        one, in a new transaction, so that the statement can be sent again.

        Nothing is lost by sending it again: the server dropped the dead connection's
        transaction, and this statement was its first. Each replacement is checked, so a server
        restart that killed every idle connection costs at most one round trip per connection.
        """
        if not (self.engine.pre_ping and self.dialect.is_disconnect(exc)) or not self._replace_until_live():
            return False
        self.in_transaction = False
        self._begin()
        return True

    def _replace_until_live(self) -> bool:
        """Replace the dead driver connection with a live one from the pool (each checked)."""
        for _ in range(self.engine.pool.status().max_size + 1):
            self._replace()
            if self.dialect.ping(self.raw):
                return True
        return False

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

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Send one statement; returns the cursor (for rowcount, lastrowid and RETURNING rows)."""
        if self.budgets or self._observers:
            return self._watched(sql, params, 0, False)
        if self.closed:
            self._refuse_closed()
        self.count += 1
        self._first_or_only(sql, params, False)
        return self._cursor

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Send a query and return all its rows as tuples."""
        if self.budgets or self._observers:
            rows = self._watched(sql, params, 0, True)
            return rows  # type: ignore[no-any-return]
        cur = self.execute(sql, params)
        try:
            rows = cur.fetchall()
        except self._errors as exc:
            self._raise(exc, sql, params)
        return rows if isinstance(rows, list) else list(rows)

    def executemany(self, sql: str, seq: Sequence[Sequence[Any]]) -> int:
        """Send one statement for many parameter rows (one statement for budgets); returns rowcount."""
        if self.budgets or self._observers:
            self._watched(sql, seq, len(seq), False, many_call=True)
            return int(self._cursor.rowcount)
        if self.closed:
            self._refuse_closed()
        self.count += 1
        self._first_or_only(sql, seq, True)
        return int(self._cursor.rowcount)

    def _first_or_only(self, sql: str, params: Any, many: bool) -> None:
        """Send an unwatched statement, beginning the transaction first if none is open; a
        transaction's first statement is sent again once if ``_heal`` replaced a dead connection."""
        fresh = not self.in_transaction
        if fresh:
            self._begin()
        for attempt in (1, 2):
            cur = self._cursor
            try:
                if many:
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)
                return
            except self._errors as exc:
                if not (fresh and attempt == 1 and self._heal(exc)):
                    self._raise(exc, sql, params)

    def _driver_call(self, sql: str, params: Any, control: bool, many_call: bool, fetch: bool, event: StatementEvent) -> Any:
        """The driver call of a watched statement; the rows (``fetch``) or the cursor."""
        cur = self._cursor
        if control:
            cur.execute(sql)
        elif many_call:
            cur.executemany(sql, params)
        else:
            cur.execute(sql, params)
        if fetch:
            rows = cur.fetchall()
            result = rows if isinstance(rows, list) else list(rows)
            event.rows = len(result)
            return result
        event.rows = int(cur.rowcount)
        return cur

    def _watched(
        self, sql: str, params: Any, many: int, fetch: bool, control: bool = False, many_call: bool = False
    ) -> Any:
        """Send a statement that guards or observers watch (the path taken only when some do).

        Guards (budgets) see it first and may refuse it before anything is sent; observers see
        it afterwards with its time and row count, or with the error it raised.
        """
        event = StatementEvent(sql, params, many, control, self.owner, self.route, self.server)
        if not control:
            if self.closed:
                self._refuse_closed()
            guards = self.budgets
            if guards:
                # Every guard is asked before any is charged: a refused statement costs none.
                for g in guards:
                    g.check(event)
                for g in guards:
                    g.charge(event)
            self.count += 1
        fresh = not self.in_transaction
        if fresh:
            self._begin()
        started = time.perf_counter()
        try:
            try:
                result = self._driver_call(sql, params, control, many_call, fetch, event)
            except self._errors as exc:
                if not (fresh and not control and self._heal(exc)):
                    raise
                result = self._driver_call(sql, params, control, many_call, fetch, event)
        except self._errors as exc:
            event.duration = time.perf_counter() - started
            try:
                self._raise(exc, sql, None if control else params)
            except errors.DatabaseError as err:
                event.error = err
                self._notify(event)
                raise
        event.duration = time.perf_counter() - started
        self._notify(event)
        return result

    def _notify(self, event: StatementEvent) -> None:
        # A copy: a callback may remove itself (or another thread add one) meanwhile.
        for observer in tuple(self._observers):
            observer(event)

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
        self._ended = True
        self._ended_at = time.monotonic()

    def rollback(self) -> None:
        """Roll back the open transaction, if any.

        On a connection that was lost there is nothing to roll back: the server dropped the
        transaction with the link, and the error that reported the loss is the one that matters.
        """
        if not self.in_transaction:
            return
        self.in_transaction = False
        self._ended = True
        self._ended_at = time.monotonic()
        if self.broken:
            return
        try:
            self.dialect.rollback(self.raw)
        except self._errors as exc:
            # A connection whose ROLLBACK failed is in no known state: never lend it again.
            self.broken = True
            self._raise(exc, "ROLLBACK", None)

    def _control(self, sql: str) -> None:
        # Savepoint statements are not charged to budgets: they are transaction control.
        if self._observers:
            self._watched(sql, (), 0, False, control=True)
            return
        if not self.in_transaction:
            self._begin()
        try:
            self._cursor.execute(sql)
        except self._errors as exc:
            self._raise(exc, sql, None)

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
        if not self._lent:
            # Its dead connection went back already and no replacement came: nothing to give back.
            self.in_transaction = False
            return
        self._lent = False
        clean = False
        try:
            try:
                self._cursor.close()
            except Exception:  # noqa: BLE001 - the connection may be broken already
                self.broken = True
            if self.in_transaction and not self.broken:
                try:
                    self.dialect.rollback(self.raw)
                except Exception:  # noqa: BLE001
                    self.broken = True
            if self.read_only and not self.broken:
                # Pooled connections serve writers too: give it back writable.
                try:
                    self.dialect.set_read_only(self.raw, False)
                except Exception:  # noqa: BLE001
                    self.broken = True
            clean = True
        finally:
            # Given back whatever happened (an interrupt included), or its pool slot is lost
            # for good; a connection not known to be clean is thrown away.
            self.in_transaction = False
            self.engine.pool.release(self.raw, discard=self.broken or not clean)
