"""The asyncio drivers, seen by the engine as DB-API connections.

An async session runs the same unit of work as a sync one, on a worker thread of its own
(``aio.Worker``). Every statement that unit of work sends reaches one of the connections here:
``Bridge.run`` hands the driver's coroutine to the event loop and waits, on the worker thread,
for its result, while the loop goes on serving other tasks. So the engine, the dialects and
everything above them see a DB-API connection; only the waiting differs.

Each adapter offers exactly what the engine and its dialect ask of a driver connection: a
cursor, commit/rollback/close, and the few driver-specific attributes the dialect reads
(``autocommit`` and ``info`` on psycopg, ``ping`` and ``get_server_info`` on MySQL,
``in_transaction`` and ``getlimit`` on SQLite). A cursor sends its statement and reads the rows
in one trip to the loop. Drivers are imported only when a connection is opened.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import errors
from .pool import PoolStatus

if TYPE_CHECKING:
    from .dialects.base import URL

__all__ = ["Bridge", "TaskCancelled", "open_connection", "EXTRAS"]

R = TypeVar("R")

#: The optional extra that installs each backend's asyncio driver.
EXTRAS = {"sqlite": "async-sqlite", "postgresql": "async-postgresql", "mysql": "async-mysql"}


class TaskCancelled(errors.SessionError):
    """The task that drove the session was cancelled: no further statement is sent for it."""


class Bridge:
    """Runs driver coroutines on one event loop from the worker threads of its sessions.

    ``refused`` holds the idents of worker threads whose task was cancelled: a statement they
    would send next raises :class:`TaskCancelled` instead (transaction control still runs, so
    the rollback that follows can end the transaction).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.loop_thread = threading.get_ident()
        self.refused: set[int] = set()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run ``coro`` on the loop and wait for it here (a worker thread, never the loop's)."""
        if threading.get_ident() == self.loop_thread:
            coro.close()
            msg = (
                "a database call was made from the event loop's own thread: in async code every "
                "statement goes through an awaited method of the AsyncSession"
            )
            raise errors.SessionError(msg)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def check_statement(self) -> None:
        """Refuse a statement for a task that was cancelled."""
        if self.refused and threading.get_ident() in self.refused:
            msg = "the task using this session was cancelled; its transaction is rolled back"
            raise TaskCancelled(msg)


class Cursor:
    """A DB-API cursor over a driver's async cursor: each statement is one trip to the loop."""

    def __init__(self, conn: AsyncConnectionAdapter) -> None:
        self._conn = conn
        self._rows: list[Any] = []
        self._pos = 0
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: Any = None

    async def _send(self, sql: str, params: Any, many: bool) -> None:
        cur = await self._conn.new_cursor()
        try:
            if many:
                await cur.executemany(sql, params)
            elif params is None:
                await cur.execute(sql)
            else:
                await cur.execute(sql, params)
            self.description = cur.description
            self.rowcount = cur.rowcount
            self.lastrowid = getattr(cur, "lastrowid", None)
            self._rows = list(await cur.fetchall()) if cur.description else []
            self._pos = 0
        finally:
            await self._conn.close_cursor(cur)

    def execute(self, sql: str, params: Any = None) -> Cursor:
        """Send one statement and buffer its rows."""
        self._conn.bridge.check_statement()
        self._conn.run(self._send(sql, params, False))
        return self

    def executemany(self, sql: str, seq: Sequence[Any]) -> None:
        """Send one statement for many parameter rows."""
        self._conn.bridge.check_statement()
        self._conn.run(self._send(sql, seq, True))

    def fetchall(self) -> list[Any]:
        """The rows of the last statement not fetched yet."""
        rows, self._pos = self._rows[self._pos :], len(self._rows)
        return rows

    def fetchone(self) -> Any:
        """The next row of the last statement, or None."""
        if self._pos >= len(self._rows):
            return None
        self._pos += 1
        return self._rows[self._pos - 1]

    def close(self) -> None:
        """Nothing to release: each statement's driver cursor was closed after it."""
        self._rows = []


class AsyncConnectionAdapter:
    """What every adapter shares: the driver connection, the bridge, commit/rollback/close."""

    def __init__(self, conn: Any, bridge: Bridge) -> None:
        self.conn = conn
        self.bridge = bridge

    async def new_cursor(self) -> Any:
        """A driver cursor for one statement."""
        return await self.conn.cursor()

    async def close_cursor(self, cur: Any) -> None:
        """Close a driver cursor."""
        await cur.close()

    def cursor(self, *args: Any, **kwargs: Any) -> Cursor:
        """A DB-API cursor."""
        return Cursor(self)

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        """Run a coroutine of this connection on the loop (a driver may translate its errors)."""
        return self.bridge.run(coro)

    def commit(self) -> None:
        """Commit on the loop."""
        self.run(self.conn.commit())

    def rollback(self) -> None:
        """Roll back on the loop."""
        self.run(self.conn.rollback())

    def close(self) -> None:
        """Close on the loop (or at once, when the loop is gone)."""
        if self.bridge.loop.is_closed():
            return
        self.bridge.run(self._aclose())

    async def _aclose(self) -> None:
        await self.conn.close()

    def run_sql(self, sql: str) -> None:
        """Run one statement without parameters (the dialects' ``raw.execute(sql)``)."""
        self.run(self._run_sql(sql))

    async def _run_sql(self, sql: str) -> None:
        cur = await self.new_cursor()
        try:
            await cur.execute(sql)
        finally:
            await self.close_cursor(cur)


class PsycopgAdapter(AsyncConnectionAdapter):
    """psycopg's AsyncConnection as the sync psycopg connection the PostgreSQL dialect expects."""

    async def new_cursor(self) -> Any:
        return self.conn.cursor()

    @property
    def closed(self) -> bool:
        """Whether the driver connection is closed."""
        return bool(self.conn.closed)

    @property
    def info(self) -> Any:
        """The driver's connection information (server version)."""
        return self.conn.info

    @property
    def autocommit(self) -> bool:
        """The driver's autocommit flag."""
        return bool(self.conn.autocommit)

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self.bridge.run(self.conn.set_autocommit(value))

    @property
    def isolation_level(self) -> Any:
        """The driver's isolation level."""
        return self.conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self.bridge.run(self.conn.set_isolation_level(value))

    def execute(self, sql: str) -> None:
        """The dialect's ping (an empty query)."""
        self.bridge.run(self.conn.execute(sql))


class MySQLAdapter(AsyncConnectionAdapter):
    """aiomysql's Connection as the PyMySQL connection the MySQL dialect expects."""

    def get_server_info(self) -> str:
        """The server's version string."""
        return str(self.conn.get_server_info())

    def ping(self, reconnect: bool = False) -> None:
        """One round trip; raises when the connection is gone."""
        self.bridge.run(self.conn.ping(reconnect=reconnect))

    async def _aclose(self) -> None:
        # ensure_closed() says goodbye to the server; close() only drops the socket.
        try:
            await self.conn.ensure_closed()
        except Exception:  # noqa: BLE001 - a dead link closes all the same
            self.conn.close()


class SQLiteAdapter(AsyncConnectionAdapter):
    """aiosqlite's Connection as the sqlite3 connection the SQLite dialect expects."""

    async def new_cursor(self) -> Any:
        return await self.conn.cursor()

    def run(self, coro: Coroutine[Any, Any, R]) -> R:
        # aiosqlite reports a closed connection as ValueError; sqlite3, and so the dialect,
        # as ProgrammingError ("Cannot operate on a closed database.").
        import sqlite3

        try:
            return self.bridge.run(coro)
        except ValueError as exc:
            if "no active connection" not in str(exc):
                raise
            msg = "Cannot operate on a closed database."
            raise sqlite3.ProgrammingError(msg) from exc

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        import sqlite3

        try:
            return bool(self.conn.in_transaction)
        except ValueError as exc:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.") from exc

    def getlimit(self, category: int) -> int:
        """A run-time limit: the library's, read on a scratch connection (aiosqlite's
        connections start with the same limits and mapper never changes them)."""
        import sqlite3

        scratch = sqlite3.connect(":memory:")
        try:
            return scratch.getlimit(category)
        finally:
            scratch.close()

    def execute(self, sql: str) -> None:
        """BEGIN, COMMIT, ROLLBACK and PRAGMAs."""
        self.run_sql(sql)


async def _open_postgresql(url: URL, options: dict[str, Any]) -> Any:
    import psycopg

    kwargs: dict[str, Any] = {"autocommit": False}
    if "connect_timeout" not in url.query:
        kwargs["connect_timeout"] = math.ceil(options.get("connect_timeout", 10.0))
    kwargs.update(options.get("connect_args", {}))
    return await psycopg.AsyncConnection.connect(url.driver_url, **kwargs)


async def _open_mysql(url: URL, options: dict[str, Any]) -> Any:
    import aiomysql  # type: ignore[import-untyped]
    from pymysql.constants import CLIENT

    kwargs: dict[str, Any] = {
        "host": url.host or "127.0.0.1",
        "port": url.port or 3306,
        "user": url.username or "root",
        "password": url.password or "",
        "db": url.database or None,
        "charset": "utf8mb4",
        "autocommit": False,
        # Matched rows, not changed rows, as the sync dialect asks: a version check must not
        # mistake "same value" for "gone".
        "client_flag": CLIENT.FOUND_ROWS,
        "init_command": "SET time_zone = '+00:00'",
        "connect_timeout": float(options.get("connect_timeout", 10.0)),
    }
    kwargs.update(options.get("connect_args", {}))
    return await aiomysql.connect(cursorclass=_quiet_cursor(aiomysql), **kwargs)


def _quiet_cursor(aiomysql: Any) -> type:
    """aiomysql's cursor without its SHOW WARNINGS round trip and Python warnings after a
    statement the server warned about: PyMySQL, the sync driver, does neither."""
    global _QUIET  # noqa: PLW0603 - made once, on first use, so the driver loads lazily
    if _QUIET is None:

        class QuietCursor(aiomysql.Cursor):  # type: ignore[misc]
            async def _show_warnings(self, conn: Any) -> None:
                return None

        _QUIET = QuietCursor
    return _QUIET


_QUIET: type | None = None


async def _open_sqlite(url: URL, options: dict[str, Any]) -> Any:
    import aiosqlite

    path, uri = url.database, False
    if path in ("", ":memory:"):
        path, uri = f"file:mapper-mem-{options['memory_name']}?mode=memory&cache=shared", True
    elif path.startswith("file:"):
        uri = True
    conn = await aiosqlite.connect(
        path,
        timeout=float(options.get("busy_timeout", 5.0)),
        isolation_level=None,
        check_same_thread=False,
        uri=uri,
        **options.get("connect_args", {}),
    )
    await conn.execute("PRAGMA foreign_keys=ON")
    return conn


_OPEN: dict[str, tuple[Callable[[URL, dict[str, Any]], Awaitable[Any]], type[AsyncConnectionAdapter]]] = {
    "postgresql": (_open_postgresql, PsycopgAdapter),
    "mysql": (_open_mysql, MySQLAdapter),
    "sqlite": (_open_sqlite, SQLiteAdapter),
}


def open_connection(backend: str, url: URL, options: dict[str, Any], bridge: Bridge) -> AsyncConnectionAdapter:
    """Open a driver connection on the loop; called on a worker thread by the engine's pool."""
    opener, adapter = _OPEN[backend]
    try:
        conn: Any = bridge.run(opener(url, options))  # type: ignore[arg-type]
    except ImportError as exc:
        msg = f"the asyncio driver for {backend} is not installed ({exc.name}); pip install 'mapper-uow[{EXTRAS[backend]}]'"
        raise errors.ConfigurationError(msg) from exc
    return adapter(conn, bridge)


_PG_LEVELS = {
    "READ UNCOMMITTED": "READ_UNCOMMITTED",
    "READ COMMITTED": "READ_COMMITTED",
    "REPEATABLE READ": "REPEATABLE_READ",
    "SERIALIZABLE": "SERIALIZABLE",
}


class PsycopgPool:
    """psycopg-pool's ``AsyncConnectionPool`` as the engine's pool (the ``ConnectionPool``
    protocol): the pool's own waiting, checks, idle and lifetime limits, on the event loop.

    The Database's pool settings map onto it: ``pool_size`` is ``max_size``, ``pool_min``
    ``min_size``, ``pool_timeout`` ``timeout``; ``pool_max_idle`` and ``pool_max_lifetime`` when
    set (psycopg-pool's defaults, 10 minutes and an hour, otherwise); ``pre_ping`` is its
    ``check_connection``. A connection given back broken is closed first, so the pool drops it.
    """

    def __init__(self, bridge: Bridge, url: URL, options: dict[str, Any], settings: Any, isolation_level: str | None, pre_ping: bool) -> None:
        try:
            from psycopg import IsolationLevel
            from psycopg_pool import AsyncConnectionPool
        except ImportError as exc:
            msg = f"the asyncio driver for postgresql is not installed ({exc.name}); pip install 'mapper-uow[async-postgresql]'"
            raise errors.ConfigurationError(msg) from exc

        self.bridge = bridge
        self.settings = settings
        kwargs: dict[str, Any] = {"autocommit": False}
        if "connect_timeout" not in url.query:
            kwargs["connect_timeout"] = math.ceil(options.get("connect_timeout", 10.0))
        kwargs.update(options.get("connect_args", {}))
        level = None
        if isolation_level is not None:
            level = getattr(IsolationLevel, _PG_LEVELS[isolation_level.upper().replace("_", " ")])

        async def configure(conn: Any) -> None:
            if level is not None:
                await conn.set_isolation_level(level)

        extra: dict[str, Any] = {}
        if settings.max_idle is not None:
            extra["max_idle"] = settings.max_idle
        if settings.max_lifetime is not None:
            extra["max_lifetime"] = settings.max_lifetime
        self._pool = AsyncConnectionPool(
            url.driver_url,
            kwargs=kwargs,
            min_size=settings.min,
            max_size=settings.size,
            timeout=settings.timeout,
            open=False,
            configure=configure,
            check=AsyncConnectionPool.check_connection if pre_ping else None,
            **extra,
        )
        self._opened = False
        self._lock = threading.Lock()
        self._out = 0
        self._discarded = 0

    def _open(self) -> None:
        with self._lock:
            if not self._opened:
                self.bridge.run(self._pool.open(wait=False))
                self._opened = True

    def acquire(self, timeout: float | None = None) -> PsycopgAdapter:
        """A connection from the pool, waited for on the loop."""
        from psycopg_pool import PoolTimeout

        self._open()
        wait = self.settings.timeout if timeout is None else timeout
        try:
            conn = self.bridge.run(self._pool.getconn(wait))
        except PoolTimeout:
            raise errors.PoolTimeoutError.waited(wait, self.settings.size) from None
        with self._lock:
            self._out += 1
        return PsycopgAdapter(conn, self.bridge)

    def release(self, raw: Any, discard: bool = False) -> None:
        """Give a connection back (closed first when ``discard``)."""
        with self._lock:
            self._out -= 1
            if discard:
                self._discarded += 1
        self.bridge.run(self._putconn(raw.conn, discard))

    async def _putconn(self, conn: Any, discard: bool) -> None:
        if discard:
            try:
                await conn.close()
            except Exception:  # noqa: BLE001 - a dead connection is closed all the same
                pass
        await self._pool.putconn(conn)

    def status(self) -> PoolStatus:
        """The pool's counts as ``PoolStatus``."""

        stats = self._pool.get_stats()
        size = int(stats.get("pool_size", 0))
        idle = int(stats.get("pool_available", 0))
        return PoolStatus(
            size=size,
            in_use=self._out,
            idle=idle,
            waiting=int(stats.get("requests_waiting", 0)),
            min_size=self.settings.min,
            max_size=self.settings.size,
            discarded=self._discarded,
            expired=0,
        )

    def close(self) -> None:
        """Close the pool and its connections on the loop."""
        if self._opened and not self.bridge.loop.is_closed():
            self.bridge.run(self._pool.close())

    @property
    def checked_out(self) -> int:
        """Connections lent right now."""
        return self._out

    @property
    def waiting(self) -> int:
        """Callers waiting for a connection."""
        return int(self._pool.get_stats().get("requests_waiting", 0))

    @property
    def discarded(self) -> int:
        """Connections given back broken so far."""
        return self._discarded
