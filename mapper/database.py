"""Database: the mappers, the engine and the schema of one database; the factory of sessions."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import Any

from . import errors
from .codegen import SOURCE_ATTRIBUTE, source_of
from .engine import Engine
from .health import Health, check_health
from .lifecycle import Lifecycle, SessionHook
from .pool import PoolStatus
from .replicas import Replicas, ReplicaStatus
from .events import StatementCallback, Subscription
from .uow.persister import Persister
from .loading import Loader
from .mapping import ClassMapping, Mapper, Registry
from .uow.ordering import table_order
from .ddl import create_statements
from .schema_read import read_schema
from .drift import Difference, compare, drift_message
from .session import Session
from .uow.tracker import MappingRuntime, OpenTrackers
from .state import SnapshotSpec
from .transaction import Transaction

__all__ = ["Database"]

_LAZY = ("select", "raise")


def _exception_classes(value: Any) -> tuple[type[BaseException], ...]:
    """``retry_on`` as a tuple of exception classes, or a ConfigurationError naming it."""
    items = value if isinstance(value, tuple) else (value,)
    for klass in items:
        if not (isinstance(klass, type) and issubclass(klass, BaseException)):
            msg = (
                f"transaction(retry_on={value!r}): give an exception class or a tuple of them, "
                "for example retry_on=StaleDataError"
            )
            raise errors.ConfigurationError(msg)
    return items


class Database:
    """A database and the mappers that describe its tables.

    Args:
        url: ``sqlite:///file.db``, ``sqlite:///:memory:``, ``postgresql://...`` or ``mysql://...``
            (also written the SQLAlchemy way: ``postgresql+psycopg://``, ``mysql+pymysql://``).
        mappers: the Mapper classes to use; validated now (ConfigurationError on a mistake).
        isolation_level: for every connection; None (the default) keeps the server's default.
        pool_size: most connections open at once.
        pool_timeout: seconds to wait for a free connection.
        pool_min: idle connections kept open however long they sit (default 0). The pool opens
            connections only when a session needs one, never in advance.
        pool_max_idle: seconds an idle connection above ``pool_min`` stays open (default None:
            until the Database closes).
        pool_max_lifetime: seconds after which a connection is closed and replaced, when it is
            next given back or about to be lent (default None: no limit).
        pre_ping: before lending a pooled connection, check that it is alive (one round trip
            on a server; SQLite needs none) and replace it if the server dropped it.
        echo: log every statement with its parameters and time on the ``mapper.sql`` logger.
        lazy: ``"select"`` loads untouched relations for the whole result on first use;
            ``"raise"`` makes that an error.
        busy_timeout: SQLite only, seconds a write waits for a lock (default 5).
        connect_args: extra keyword arguments for the driver's connect().
        connect_timeout: seconds to wait for the server while opening a connection (default
            10; PostgreSQL waits whole seconds, at least 2). A server that refuses, or does not
            answer in time, fails the statement that needed the connection with
            ``OperationalError``.
        pause_gc: pause Python's cyclic garbage collector while a query, or a load or flush
            of more than 1,000 rows, runs (default True); False never touches the collector.
        replicas: URLs of read replicas of the same backend. Read-only sessions
            (``session(readonly=True)``) read from them, round robin; every other session
            uses the primary. Each replica has its own pool with the options above.
        replica_backoff: seconds an unreachable replica is skipped after its first failure;
            each further failure in a row doubles it (default 1).
        replica_max_backoff: the longest an unreachable replica is skipped (default 30).

    Raises:
        ConfigurationError: a mapping is wrong, the URL names no known backend or a driver
            mapper does not use, or an option has a value it cannot take.
    """

    def __init__(
        self,
        url: str,
        mappers: Iterable[type[Mapper[Any]]] = (),
        *,
        isolation_level: str | None = None,
        pool_size: int = 5,
        pool_timeout: float = 30.0,
        pool_min: int = 0,
        pool_max_idle: float | None = None,
        pool_max_lifetime: float | None = None,
        pre_ping: bool = True,
        echo: bool = False,
        lazy: str = "select",
        busy_timeout: float = 5.0,
        connect_args: dict[str, Any] | None = None,
        connect_timeout: float = 10.0,
        pause_gc: bool = True,
        replicas: Iterable[str] = (),
        replica_backoff: float = 1.0,
        replica_max_backoff: float = 30.0,
    ) -> None:
        if lazy not in _LAZY:
            msg = f"Database(lazy={lazy!r}): use one of {_LAZY}"
            raise errors.ConfigurationError(msg)
        self.lazy = lazy
        if not isinstance(pause_gc, bool):
            msg = f"Database(pause_gc={pause_gc!r}): use True or False"
            raise errors.ConfigurationError(msg)
        #: Whether loads and flushes pause the cyclic GC (read by ``loading.pause_gc``).
        self.pause_gc = pause_gc
        self.registry = Registry(mappers)

        def make_engine(url: str, echo: bool = False) -> Engine:
            return Engine(
                url,
                pool_size=pool_size,
                pool_timeout=pool_timeout,
                pool_min=pool_min,
                pool_max_idle=pool_max_idle,
                pool_max_lifetime=pool_max_lifetime,
                pre_ping=pre_ping,
                isolation_level=isolation_level,
                echo=echo,
                busy_timeout=busy_timeout,
                connect_args=connect_args,
                connect_timeout=connect_timeout,
            )

        self.engine = make_engine(url, echo)
        #: Where each session's connection comes from (the primary, or a replica).
        self._router = Replicas(
            self.engine,
            list(replicas) if not isinstance(replicas, str) else replicas,
            make_engine,
            backoff=replica_backoff,
            max_backoff=replica_max_backoff,
        )
        self._after_commit_hooks: list[Callable[[Session], None]] = []
        self._before_flush_hooks: list[Callable[[Session], None]] = []
        self._through: dict[ClassMapping[Any], list[Any]] | None = None
        #: after_flush, before_commit and after_rollback hooks, the database's and the mappers'.
        self._lifecycle = Lifecycle(self.registry.mappings)
        #: The open sessions, so add() can refuse an object another one manages.
        self._sessions = OpenTrackers()

    @property
    def url(self) -> str:
        """The URL, with any password masked."""
        return self.engine.url.safe()

    @property
    def backend(self) -> str:
        """The backend's name: ``sqlite``, ``postgresql`` or ``mysql``."""
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"<Database {self.url}>"

    def _runtime(self, m: ClassMapping[Any]) -> MappingRuntime:
        rt = m.runtime
        if rt is None:
            spec = SnapshotSpec(m)
            dialect = self.engine.dialect
            rt = m.runtime = MappingRuntime(spec, Loader(m, dialect, spec), Persister(m, dialect, spec))
        return rt

    def generated_source(self, cls: type) -> dict[str, str]:
        """The Python source mapper generated for one mapping, by job.

        The jobs are ``load`` (rows into objects), ``changed``, ``diff`` and
        ``relation_candidates`` (the snapshot scans of a flush), ``collect`` (an INSERT's
        values), ``update_row`` (an UPDATE's values; absent when a version or ``updated_at``
        column sends every update down the general path) and, for a mapping with ``Embedded``
        attributes, ``sync_embedded`` (the flush's scan of its value objects). Tracebacks through these functions
        show their lines under ``<mapper generated PugMapper.load>``-style names.

        Args:
            cls: the domain class or its mapper class.

        Returns:
            Source text by job name, in the order above.

        Raises:
            MapperError: ``cls`` is not mapped in this Database.
        """
        spec, loader, persister = self._runtime(self.registry.mapping_for(cls))
        fns: dict[str, Callable[..., Any]] = {
            "load": loader.load,
            "changed": spec.changed,
            "diff": spec.diff,
            "relation_candidates": spec.relation_candidates,
            "collect": persister.collect,
            "update_row": persister.update_row,
        }
        if spec.embedded is not None:  # the flush's scan of the mapping's value objects
            fns["sync_embedded"] = spec.embedded.sync
        # The general UPDATE path (a version, updated_at, a before_update hook) is plain Python.
        return {job: source_of(fn) for job, fn in fns.items() if getattr(fn, SOURCE_ATTRIBUTE, None) is not None}

    def _through_relations(self) -> dict[ClassMapping[Any], list[Any]]:
        """BelongsToMany relations by their association mapping (computed once)."""
        found = self._through
        if found is None:
            found = {}
            for cm in self.registry.mappings:
                for info in cm.relations.values():
                    if info.through is not None:
                        found.setdefault(info.through, []).append(info)
            self._through = found
        return found

    def _after_commit(self, session: Session) -> None:
        for hook in self._after_commit_hooks:
            hook(session)

    def _before_flush(self, session: Session) -> None:
        for hook in self._before_flush_hooks:
            hook(session)

    def before_flush(self, fn: Callable[[Session], None]) -> Callable[[Session], None]:
        """Register ``fn(session)`` to run at the start of every flush (usable as a decorator).

        A hook that raises aborts the flush with nothing written.
        """
        self._before_flush_hooks.append(fn)
        return fn

    def after_commit(self, fn: Callable[[Session], None]) -> Callable[[Session], None]:
        """Register ``fn(session)`` to run after every successful commit (usable as a decorator)."""
        self._after_commit_hooks.append(fn)
        return fn

    def after_flush(self, fn: SessionHook) -> SessionHook:
        """Register ``fn(session)`` to run after every flush that wrote something (a decorator too).

        It runs once the flush is complete (generated keys set, both sides of relations in
        line), after the mappers' ``after_flush`` methods, before anything is committed. An
        exception from it propagates; what the flush wrote stays in the open transaction.
        """
        return self._lifecycle.add("after_flush", fn)

    def before_commit(self, fn: SessionHook) -> SessionHook:
        """Register ``fn(session)`` to run in every ``commit()`` before the COMMIT (a decorator too).

        It runs after the commit's flush, and after the mappers' ``before_commit`` methods;
        what it changes or adds is flushed before the COMMIT. If it raises, nothing is
        committed and the transaction stays open (roll it back, or fix and commit again).
        """
        return self._lifecycle.add("before_commit", fn)

    def after_rollback(self, fn: SessionHook) -> SessionHook:
        """Register ``fn(session)`` to run after every ``rollback()`` (a decorator too).

        It runs once the database and the objects are back at the last commit (a ``with``
        block that raises rolls back too), after the mappers' ``after_rollback`` methods. A
        savepoint that fails (``begin_nested()``) is not a rollback of the transaction.
        """
        return self._lifecycle.add("after_rollback", fn)

    def on_statement(self, callback: StatementCallback) -> Subscription:
        """Call ``callback(event)`` after every statement sent to this database.

        The ``StatementEvent`` carries the SQL, the parameters and their count, the time taken,
        the row count, the session that sent it (None for ``create_all()`` and the like), and
        the error when the statement failed (the callback runs before the error is raised).
        Savepoint statements are reported with ``event.control`` set. Callbacks run in the
        thread that sent the statement, in the order they were added; an exception from one
        propagates to the code that sent the statement. With no callback registered (and
        ``echo`` off, no budget open), a statement pays two empty-list tests for the hook.

        Args:
            callback: a callable of one ``StatementEvent``.

        Returns:
            A ``Subscription``: ``remove()`` stops the callbacks; as a context manager it
            removes them when its block ends.

        Raises:
            ConfigurationError: ``callback`` is not callable.
        """
        return self.engine.on_statement(callback)

    def session(
        self, *, autoflush: bool = True, lazy: str | None = None, readonly: bool = False, pin_primary: bool = False
    ) -> Session:
        """A new Session (use it as a context manager).

        Args:
            autoflush: flush pending changes before each query.
            lazy: overrides the Database's ``lazy`` setting for this session.
            readonly: a session that only reads: it reads from a replica when the Database has
                one that is up (else from the primary), its connection refuses writes at the
                server, and a flush with anything to write raises ``ReadOnlySessionError``
                before sending a statement. A replica may lag behind the primary.
            pin_primary: a read-only session that reads from the primary (what it reads is
                never behind a commit that came before it).

        Raises:
            ConfigurationError: a bad ``lazy``, a flag that is not a bool, or ``pin_primary``
                without ``readonly`` (every other session uses the primary already).
        """
        if lazy is not None and lazy not in _LAZY:
            msg = f"session(lazy={lazy!r}): use one of {_LAZY}"
            raise errors.ConfigurationError(msg)
        for name, flag in (("readonly", readonly), ("pin_primary", pin_primary)):
            if not isinstance(flag, bool):
                msg = f"session({name}={flag!r}): use True or False"
                raise errors.ConfigurationError(msg)
        if pin_primary and not readonly:
            msg = (
                "session(pin_primary=True) pins a read-only session to the primary: add readonly=True "
                "(a session that may write always uses the primary)"
            )
            raise errors.ConfigurationError(msg)
        return Session(self, autoflush=autoflush, lazy=lazy, readonly=readonly, pin_primary=pin_primary)

    def replica_status(self) -> list[ReplicaStatus]:
        """Each replica's health (``ReplicaStatus``), in the order given; empty without replicas."""
        return self._router.status()

    def transaction(
        self,
        *,
        retries: int = 0,
        backoff: float = 0.05,
        max_backoff: float = 2.0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (),
        autoflush: bool = True,
        lazy: str | None = None,
    ) -> Transaction:
        """A unit of work in its own session, committed at the end, re-run on serialization failures.

        A serialization failure or deadlock (``DatabaseError.retryable``: SQLSTATE 40001 and
        40P01, MariaDB 1213 and 1020, SQLite's "database is locked") rolls the attempt back,
        waits ``backoff * 2**(n-1)`` seconds (at most ``max_backoff``, with jitter) and runs the
        work again in a new session, up to ``retries`` more times. Every other error is rolled
        back and raised at once; the last failure is raised when the retries run out.

        Use it as a decorator, ``@db.transaction(retries=3)`` on ``def work(session, ...)``;
        as a loop, ``for attempt in db.transaction(retries=3): with attempt as session: ...``;
        or, for one attempt, as ``with db.transaction() as session: ...``.

        Args:
            retries: extra attempts after the first (0 runs once).
            backoff: seconds to wait after the first failure; doubles after each one.
            max_backoff: the longest wait between attempts.
            retry_on: more exception classes to retry, for example ``(StaleDataError,)``
                when the work re-reads what it changes.
            autoflush, lazy: as for :meth:`session`.

        Raises:
            ConfigurationError: a negative ``retries`` or ``backoff``, or a ``retry_on`` entry
                that is not an exception class.
        """
        if lazy is not None and lazy not in _LAZY:
            msg = f"transaction(lazy={lazy!r}): use one of {_LAZY}"
            raise errors.ConfigurationError(msg)
        return Transaction(
            lambda: Session(self, autoflush=autoflush, lazy=lazy),
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            retry_on=_exception_classes(retry_on),
        )

    # -- schema -----------------------------------------------------------------------------------

    def check_schema(self) -> list[Difference]:
        """How the live database differs from the mappers (an empty list when it matches).

        Compares every mapped table with the database's catalogue: tables, columns, types,
        nullability, server defaults, generated keys, primary keys, foreign keys with their
        ON DELETE/UPDATE rules, unique constraints and indexes. Tables no mapper names are
        not looked at. ``str()`` of a difference is a sentence naming table and column.

        Returns:
            ``mapper.drift.Difference`` items, table by table (in name order).
        """
        conn = self.engine.connect()
        try:
            actual = read_schema(conn, self.registry.tables)
            conn.rollback()
        finally:
            conn.close()
        tables = sorted(self.registry.tables.values(), key=lambda t: t.name)
        return compare(self.engine.dialect, tables, actual)

    def create_all(self, *, on_drift: str = "error") -> list[str]:
        """Create the mapped tables that do not exist yet, with keys, constraints and indexes.

        Existing tables are left alone, but never silently: one that differs from its mapper
        (a column added to the mapper and not to the table...) is reported before anything is
        created, as ``check_schema()`` lists it.

        Args:
            on_drift: ``"error"`` (the default) raises ``SchemaDriftError`` and creates
                nothing; ``"warn"`` issues a ``SchemaDriftWarning`` and goes on.

        Returns:
            The names of the tables created.

        Raises:
            SchemaDriftError: an existing table differs from its mapper (``on_drift="error"``).
            ConfigurationError: ``on_drift`` is neither ``"error"`` nor ``"warn"``.
        """
        if on_drift not in ("error", "warn"):
            msg = f"create_all(on_drift={on_drift!r}): use 'error' or 'warn'"
            raise errors.ConfigurationError(msg)
        conn = self.engine.connect()
        try:
            existing = {r[0] for r in conn.fetchall(conn.dialect.existing_tables_sql())}
            tables = self.registry.tables
            left_alone = [t for name, t in sorted(tables.items()) if name in existing]
            if left_alone:
                self._report_drift(compare(conn.dialect, left_alone, read_schema(conn, existing & set(tables))), on_drift)
            created: list[str] = []
            for name, sql in create_statements(conn.dialect, tables, existing):
                conn.execute(sql)
                if name not in created and name not in existing:
                    created.append(name)
            conn.commit()
            return created
        finally:
            conn.close()

    @staticmethod
    def _report_drift(found: list[Difference], on_drift: str) -> None:
        if not found:
            return
        msg = drift_message(found, "create_all() leaves existing tables alone")
        if on_drift == "warn":
            warnings.warn(msg, errors.SchemaDriftWarning, stacklevel=3)
            return
        raise errors.SchemaDriftError(msg, found)

    def drop_all(self) -> None:
        """Drop every mapped table (children first), whatever rows they hold."""
        conn = self.engine.connect()
        try:
            names = list(reversed(table_order(self.registry.tables)))
            for sql in conn.dialect.drop_tables_sql(names):
                conn.execute(sql)
            conn.commit()
        finally:
            conn.close()

    # -- operations -------------------------------------------------------------------------------

    def pool_status(self) -> PoolStatus:
        """The connection pool right now: ``size`` (open), ``in_use``, ``idle``, ``waiting``.

        Idle connections past ``pool_max_idle`` or ``pool_max_lifetime`` are closed first, so
        the numbers are what the settings allow. Also ``min_size``, ``max_size``, and the
        connections ``discarded`` (dead or broken) and ``expired`` (closed for their age) so far.
        """
        return self.engine.pool.status()

    def health_check(self, *, timeout: float = 5.0, raise_on_failure: bool = False) -> Health:
        """A readiness probe: take a pooled connection, run ``SELECT 1``, give it back.

        A server that is down or refuses the connection is reported, not raised: the result
        is false and its ``error`` says why. It returns within ``timeout`` when every
        connection is in use, and within ``connect_timeout`` when a new connection must be
        opened to a server that does not answer (at once when the server refuses it).

        Args:
            timeout: seconds to wait for a free pooled connection.
            raise_on_failure: raise the failure (``DatabaseError`` or ``PoolTimeoutError``)
                instead of reporting it.

        Returns:
            A ``Health``: ``ok``, ``backend``, ``url``, ``latency`` (seconds), ``error``,
            ``pool`` (a ``PoolStatus``); ``bool(health)`` is ``ok``.

        Raises:
            ConfigurationError: ``timeout`` is not a number of seconds >= 0.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            msg = f"health_check(timeout={timeout!r}): give a number of seconds >= 0"
            raise errors.ConfigurationError(msg)
        return check_health(self.engine, float(timeout), raise_on_failure)

    # -- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every pooled connection. Sessions still open keep theirs until they close."""
        self.engine.close()
        self._router.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
