"""Test support without a test framework: a transaction per test, rolled back; statement counting.

``TestTransaction(db)`` makes every session of ``db`` run inside one outer transaction on one
connection until it ends: a session's ``commit()`` releases a savepoint instead of committing,
its ``rollback()`` rolls back to that savepoint, and ending the test transaction rolls back
everything. ``QueryRecorder`` records the statements a block sends and fails with their list
when there were too many. The pytest plugin (``mapper.pytest_plugin``) is built on both; they
work under unittest as well.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import errors
from .database import Database
from .engine import Connection, Engine
from .events import StatementEvent, Subscription

__all__ = ["TestTransaction", "QueryRecorder", "record_queries"]


class _SharedConnection(Connection):
    """A session's connection inside a test transaction: its transactions are savepoints.

    Every session of the Database gets one of these over the same driver connection, whose
    outer transaction the ``TestTransaction`` opened. A transaction of the session is a
    savepoint: begun by its first statement, released by ``commit()`` (the work stays in the
    outer transaction), rolled back to by ``rollback()``; ``close()`` keeps the driver
    connection, which belongs to the test transaction.
    """

    __slots__ = ("_names", "_tx_name")

    def __init__(self, engine: Engine, raw: Any, names: Iterator[int]) -> None:
        super().__init__(engine, raw)
        #: Savepoint numbers shared by every session on the driver connection: MariaDB replaces
        #: a savepoint of the same name, so two sessions must never reuse one.
        self._names = names
        self._tx_name = ""

    def _savepoint_name(self) -> str:
        return f"mapper_test_{next(self._names)}"

    def _heal(self, exc: BaseException) -> bool:
        # The test's outer transaction lives on this driver connection: a replacement would
        # write outside it, so a lost connection fails the test instead.
        return False

    def _send(self, sql: str) -> None:
        try:
            self._cursor.execute(sql)
        except self._errors as exc:
            self._raise(exc, sql, None)

    def _begin(self) -> None:
        name = self._savepoint_name()
        self._send(self.dialect.savepoint_sql(name))
        self._tx_name = name
        self.in_transaction = True

    def savepoint(self) -> str:
        name = self._savepoint_name()
        self._control(self.dialect.savepoint_sql(name))
        return name

    def commit(self) -> None:
        if not self.in_transaction:
            return
        self._send(self.dialect.release_savepoint_sql(self._tx_name))
        self.in_transaction = False

    def rollback(self) -> None:
        if not self.in_transaction:
            return
        self.in_transaction = False
        self._send(self.dialect.rollback_savepoint_sql(self._tx_name))
        self._send(self.dialect.release_savepoint_sql(self._tx_name))

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.rollback()
        finally:
            self.closed = True
            self.in_transaction = False
            try:
                self._cursor.close()
            except Exception:  # noqa: BLE001 - the test transaction's end cleans up anyway
                pass


class TestTransaction:
    """Run every session of ``db`` inside one transaction, rolled back when it ends.

    Use it as a context manager around one test (``with TestTransaction(db): ...``) or call
    ``start()`` and ``end()``. Meanwhile the sessions of ``db`` share one pooled connection,
    so what one session commits the others see, and nothing reaches the database for good.
    Sessions must be used from the thread that started it. DDL (``create_all()``) does not
    belong inside: MariaDB commits the outer transaction at any DDL statement.

    Raises:
        SessionError: ``start()`` while it is already running, or while another test
            transaction runs on the same Database.
    """

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, db: Database) -> None:
        self.db = db
        self._raw: Any = None
        self._sessions: list[_SharedConnection] = []

    def start(self) -> None:
        """Take a connection from the pool and open the outer transaction on it."""
        engine = self.db.engine
        if self._raw is not None or engine.pinned is not None:
            msg = "a test transaction is already running on this Database; end() it first"
            raise errors.SessionError(msg)
        raw = engine.pool.acquire()
        try:
            engine.dialect.begin(raw)
        except BaseException:
            engine.pool.release(raw, discard=True)
            raise
        self._raw = raw
        names = itertools.count(1)

        def connect(owner: object | None) -> Connection:
            conn = _SharedConnection(engine, raw, names)
            if owner is not None:
                conn.owner = weakref.ref(owner)
            self._sessions.append(conn)
            return conn

        engine.pinned = connect

    def end(self) -> None:
        """Roll back everything the sessions did, and give the connection back to the pool."""
        raw, self._raw = self._raw, None
        if raw is None:
            return
        engine = self.db.engine
        engine.pinned = None
        sessions, self._sessions = self._sessions, []
        for conn in sessions:
            # A session still open finds its connection closed, with nothing left to roll back.
            conn.closed = True
            conn.in_transaction = False
        broken = True
        try:
            engine.dialect.rollback(raw)
            broken = False
        finally:
            engine.pool.release(raw, discard=broken)

    def __enter__(self) -> TestTransaction:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()


class QueryRecorder:
    """The statements a block sent to a Database (savepoints not counted, as for budgets).

    Attributes:
        events: the ``StatementEvent`` of each statement, in order.
    """

    __test__ = False

    def __init__(self) -> None:
        self.events: list[StatementEvent] = []
        self._thread = threading.get_ident()

    def __call__(self, event: StatementEvent) -> None:
        if not event.control and event.thread == self._thread:
            self.events.append(event)

    @property
    def count(self) -> int:
        """How many statements were recorded."""
        return len(self.events)

    @property
    def statements(self) -> list[str]:
        """The SQL of each recorded statement."""
        return [e.sql for e in self.events]

    def report(self) -> str:
        """The recorded statements, numbered, with their parameters (cut to stay readable)."""
        lines = []
        for i, e in enumerate(self.events, 1):
            params = repr(e.params)
            if len(params) > 200:
                params = params[:200] + "..."
            lines.append(f"  {i}. {e.sql}  {params}")
        return "\n".join(lines) if lines else "  (none)"

    def check(self, exactly: int | None = None, at_most: int | None = None, what: str = "the block") -> None:
        """Fail with the list of statements when the count is not ``exactly`` / over ``at_most``.

        Raises:
            AssertionError: the count is off; the message lists every statement sent.
        """
        n = self.count
        if exactly is not None and n != exactly:
            msg = f"{what} sent {n} statements, expected exactly {exactly}:\n{self.report()}"
            raise AssertionError(msg)
        if at_most is not None and n > at_most:
            msg = f"{what} sent {n} statements, expected at most {at_most}:\n{self.report()}"
            raise AssertionError(msg)


def _limit(name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        msg = f"{name}() takes an int >= 0, got {n!r}"
        raise errors.ConfigurationError(msg)
    return n


@contextmanager
def record_queries(db: Database, exactly: int | None = None, at_most: int | None = None) -> Iterator[QueryRecorder]:
    """Record the statements the block sends to ``db`` from this thread; check their number at the end.

    Args:
        db: the Database whose statements count.
        exactly: the block must send exactly this many (``assert_queries``).
        at_most: the block may send at most this many (``assert_max_queries``).

    Raises:
        AssertionError: at the end of the block, listing every statement sent.
        ConfigurationError: a count that is not an int >= 0.
    """
    if exactly is not None:
        _limit("assert_queries", exactly)
    if at_most is not None:
        _limit("assert_max_queries", at_most)
    recorder = QueryRecorder()
    subscription: Subscription = db.on_statement(recorder)
    try:
        yield recorder
    finally:
        subscription.remove()
    recorder.check(exactly, at_most)
