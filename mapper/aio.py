"""The async face: ``AsyncDatabase``, ``AsyncSession``, ``AsyncQuery``, ``AsyncTransaction``.

An AsyncSession drives the very Session the sync API uses (its planner, cascades,
reconciliation, snapshots, identity map and generated loaders), on a worker thread of its own:
each awaited method runs the sync method there, and each statement the sync core sends goes
back to the event loop through an asyncio driver (``aio_drivers``) while the loop serves other
tasks. The event loop's thread never waits for the database, and nothing loads on touch: the
session is built with ``lazy="async"``, so an unloaded relation raises RelationNotLoadedError
naming the include to add.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import queue
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from . import errors
from .accessors import CollectionAccessor
from .aio_drivers import Bridge, PsycopgPool, open_connection
from .database import Database
from .dialects import MYSQLCLIENT_SCHEMES, parse_url
from .engine import Row
from .events import Budget
from .query import Page, Query
from .schema import Column
from .session import Session
from .transaction import Attempt, Transaction

__all__ = ["AsyncDatabase", "AsyncSession", "AsyncQuery", "AsyncTransaction", "AsyncAttempt"]

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
P = ParamSpec("P")

_STOP = object()


class Worker:
    """One thread that runs a session's calls in order; results come back as asyncio futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="mapper-async-session", daemon=True)
        self._thread.start()
        self.ident: int = self._thread.ident  # type: ignore[assignment]

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _STOP:
                return
            fut, fn, args = job
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                self._settle(fut, None, exc)
            else:
                self._settle(fut, result, None)

    def _settle(self, fut: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        def done() -> None:
            if fut.cancelled():
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        try:
            self._loop.call_soon_threadsafe(done)
        except RuntimeError:  # the loop closed meanwhile: nobody waits any more
            pass

    def submit(self, fn: Callable[..., R], *args: Any) -> asyncio.Future[R]:
        """Run ``fn(*args)`` on the thread after the calls before it."""
        fut: asyncio.Future[R] = self._loop.create_future()
        self._jobs.put((fut, fn, args))
        return fut

    def stop(self) -> None:
        """End the thread once the calls queued before are done."""
        self._jobs.put(_STOP)


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a call nobody awaits any more (its task was cancelled), so that
    asyncio does not report it as never retrieved when the future is collected."""
    if not fut.cancelled():
        fut.exception()


class AsyncDatabase:
    """A Database for asyncio code: the same mappers, engine and options, async sessions.

    Args:
        url: as for :class:`mapper.Database`; the asyncio drivers are psycopg's
            ``AsyncConnection`` (PostgreSQL), aiomysql (MariaDB/MySQL) and aiosqlite (SQLite),
            installed with the extras ``async-postgresql``, ``async-mysql``, ``async-sqlite``.
        mappers: the Mapper classes.
        **options: every keyword argument of :class:`mapper.Database` (pool settings, echo,
            isolation level...); ``lazy`` is not one: an async session never loads on touch.

    An AsyncDatabase serves the event loop it is first used on; ``await db.close()`` (or
    ``async with AsyncDatabase(...) as db:``) closes its connections on that loop.

    Raises:
        ConfigurationError: as :class:`mapper.Database`, or ``lazy`` was given, or the URL
            names mysqlclient (``mysql+mysqlclient://``), which has no asyncio interface.
    """

    def __init__(self, url: str, mappers: Iterable[type[Any]] = (), **options: Any) -> None:
        if "lazy" in options:
            msg = (
                "AsyncDatabase(lazy=...): an async session never loads on touch; load relations "
                "with .include() or `await session.load(objects, path)`"
            )
            raise errors.ConfigurationError(msg)
        if options.get("replicas"):
            msg = (
                "AsyncDatabase(replicas=...): async sessions read from the primary only; read from "
                "replicas with a Database(url, replicas=[...]) and db.session(readonly=True)"
            )
            raise errors.ConfigurationError(msg)
        scheme = parse_url(url).scheme
        if scheme in MYSQLCLIENT_SCHEMES:
            msg = (
                f"AsyncDatabase does not take a {scheme}:// URL: mysqlclient has no asyncio interface, "
                "and async sessions talk to MySQL/MariaDB through aiomysql; use mysql:// "
                "(pip install 'mapper-uow[async-mysql]')"
            )
            raise errors.ConfigurationError(msg)
        #: The sync Database this one drives: registry, engine, hooks, generated code.
        self.sync = Database(url, mappers, **options)
        self._bridge: Bridge | None = None

    def bridge(self) -> Bridge:
        """The bridge to the running loop, made on first use; another loop is refused."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            msg = (
                "an AsyncDatabase is used from async code: call db.session() or db.transaction() "
                "inside a coroutine (for sync code, use mapper.Database)"
            )
            raise errors.SessionError(msg) from None
        bridge = self._bridge
        if bridge is None:
            bridge = Bridge(loop)
            backend = self.sync.backend
            engine = self.sync.engine
            if backend == "postgresql":
                # psycopg-pool's own async pool; it has opened nothing yet, nor has the old one.
                old = engine.pool
                engine.pool = PsycopgPool(
                    bridge, engine.url, engine.options, old.settings, engine.isolation_level, engine.pre_ping  # type: ignore[attr-defined]
                )
                old.close()
            engine.connector = lambda url, options: open_connection(backend, url, options, bridge)
            self._bridge = bridge
        elif bridge.loop is not loop:
            msg = (
                "this AsyncDatabase serves the event loop it was first used on; open one "
                "AsyncDatabase per event loop"
            )
            raise errors.SessionError(msg)
        return bridge

    @property
    def backend(self) -> str:
        """The backend's name: ``sqlite``, ``postgresql`` or ``mysql``."""
        return self.sync.backend

    def session(self, *, autoflush: bool = True) -> AsyncSession:
        """A new AsyncSession: ``async with db.session() as s:`` commits on a clean exit."""
        return AsyncSession(self, autoflush=autoflush)

    def transaction(
        self,
        *,
        retries: int = 0,
        backoff: float = 0.05,
        max_backoff: float = 2.0,
        retry_on: type[BaseException] | tuple[type[BaseException], ...] = (),
        autoflush: bool = True,
    ) -> AsyncTransaction:
        """A unit of work in its own session, re-run on serialization failures and deadlocks.

        The arguments and the retry rules are those of :meth:`mapper.Database.transaction`.
        Use it as ``@db.transaction(retries=3)`` on ``async def work(session, ...)``, as
        ``async for attempt in db.transaction(retries=3): async with attempt as session:``,
        or for one attempt as ``async with db.transaction() as session:``.
        """
        sync = self.sync.transaction(retries=retries, backoff=backoff, max_backoff=max_backoff, retry_on=retry_on)
        return AsyncTransaction(self, sync, autoflush)

    async def run(self, fn: Callable[..., R], *args: Any) -> R:
        """Run a sync call that uses the engine (schema work) on a thread of its own."""
        self.bridge()
        return await asyncio.to_thread(fn, *args)

    async def create_all(self) -> None:
        """``Database.create_all()``, awaited."""
        await self.run(self.sync.create_all)

    async def drop_all(self) -> None:
        """``Database.drop_all()``, awaited."""
        await self.run(self.sync.drop_all)

    async def close(self) -> None:
        """Close every pooled connection, on the loop that opened them."""
        if self._bridge is None:
            self.sync.close()
            return
        await self.run(self.sync.close)

    async def __aenter__(self) -> AsyncDatabase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncSession:
    """A unit of work for asyncio code; the same Session underneath, awaited.

    ``add``, ``add_all``, ``expunge``, ``clear``, ``identity``, ``budget`` and ``in`` are
    plain calls (they send nothing); every method that may send a statement is awaited.
    A session serves one task at a time: do not share it between concurrent tasks.
    """

    def __init__(self, db: AsyncDatabase, *, autoflush: bool = True) -> None:
        self.db = db
        self._bridge = db.bridge()
        self._worker = Worker(self._bridge.loop)
        #: The sync session the worker drives (planning, identity map, loaders: all shared).
        self.sync = Session(
            db.sync, autoflush=autoflush, lazy="async", threads=(self._bridge.loop_thread, self._worker.ident)
        )
        self._inflight: asyncio.Future[Any] | None = None
        self._stopped = False
        # A session dropped without being closed still ends its thread when collected.
        weakref.finalize(self, self._worker.stop)

    async def _call(self, fn: Callable[..., R], *args: Any) -> R:
        """Run ``fn(*args)`` on the worker; a cancelled wait stops the session's statements."""
        if self._stopped:
            msg = "this session is closed; open a new one with db.session()"
            raise errors.SessionClosedError(msg)
        fut = self._worker.submit(fn, *args)
        self._inflight = fut
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            # The call goes on in the worker: its next statement is refused, so a flush stops
            # there and fails (memory restored), and the rollback on exit ends the transaction.
            self._bridge.refused.add(self._worker.ident)
            fut.add_done_callback(_consume)
            raise

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._stopped:
            return
        try:
            await self._finish(self.sync.__exit__, exc_type, exc, tb)
        finally:
            self._stop()

    async def _finish(self, fn: Callable[..., R], *args: Any) -> R:
        """Run the call that ends the session, to the end even if this task is cancelled again."""
        fut = self._worker.submit(fn, *args)
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            self._bridge.refused.add(self._worker.ident)
            fut.add_done_callback(_consume)
            await asyncio.wait([fut])
            raise

    def _stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._worker.stop()
            self._bridge.refused.discard(self._worker.ident)

    async def close(self) -> None:
        """Roll back anything open and give the connection back to the pool."""
        if self._stopped:
            return
        try:
            await self._finish(self.sync.close)
        finally:
            self._stop()

    @property
    def closed(self) -> bool:
        """Whether the session is closed."""
        return self._stopped or self.sync.closed

    @property
    def query_count(self) -> int:
        """Statements this session has sent (BEGIN, COMMIT and savepoints not counted)."""
        return self.sync.query_count

    # -- no I/O ---------------------------------------------------------------------------------

    def add(self, obj: object) -> None:
        """``Session.add``: the object is inserted at the next flush."""
        self.sync.add(obj)

    def add_all(self, objs: Iterable[Any]) -> None:
        """``Session.add_all``."""
        self.sync.add_all(objs)

    def expunge(self, obj: object) -> None:
        """``Session.expunge``: stop managing ``obj``."""
        self.sync.expunge(obj)

    def clear(self) -> None:
        """``Session.clear``: forget every object (nothing is written)."""
        self.sync.clear()

    def identity(self, obj: object) -> Any:
        """``Session.identity``: the primary key of a managed object."""
        return self.sync.identity(obj)

    def budget(self, queries: int) -> AbstractContextManager[Budget]:
        """``with s.budget(n):`` allows at most ``n`` statements in the block (awaits included)."""
        return self.sync.budget(queries)

    def __contains__(self, obj: object) -> bool:
        return obj in self.sync

    def __repr__(self) -> str:
        return f"<AsyncSession {'closed' if self.closed else 'open'}>"

    def query(self, cls: type[T]) -> AsyncQuery[T]:
        """An AsyncQuery over ``cls``: build it as a Query, await its results."""
        return AsyncQuery(self, self.sync.query(cls))

    def related(self, obj: object, name: str) -> AsyncAccessor:
        """``Session.related``: the relation's accessors, each call awaited."""
        return AsyncAccessor(self, self.sync.related(obj, name))

    # -- awaited --------------------------------------------------------------------------------

    async def get(self, cls: type[T], pk: Any) -> T | None:
        """``Session.get``: the object with this key (identity map first), or None."""
        if not self._stopped:
            held = self.sync.held(cls, pk)
            if held is not None:
                return held  # held by the session: no statement, no trip to the worker
        return await self._call(self.sync.get, cls, pk)

    async def get_one(self, cls: type[T], pk: Any) -> T:
        """``Session.get_one``: as get(), NotFoundError when there is no such row."""
        return await self._call(self.sync.get_one, cls, pk)

    async def delete(self, obj: object) -> None:
        """``Session.delete``: delete at the next flush (a stand-in is loaded first)."""
        await self._call(self.sync.delete, obj)

    async def merge(self, obj: T) -> T:
        """``Session.merge``: the managed copy of a detached graph."""
        return await self._call(self.sync.merge, obj)

    async def refresh(self, obj: object) -> None:
        """``Session.refresh``: reload the object's columns."""
        await self._call(self.sync.refresh, obj)

    async def flush(self) -> None:
        """``Session.flush``: write pending changes (nothing is left half-written on failure)."""
        await self._call(self.sync.flush)

    async def commit(self) -> None:
        """``Session.commit``: flush and commit."""
        await self._call(self.sync.commit)

    async def rollback(self) -> None:
        """``Session.rollback``: undo the transaction in the database and in memory."""
        await self._call(self.sync.rollback)

    async def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        """``Session.execute``: raw SQL with ``:name`` parameters, in the session's transaction."""
        return await self._call(self.sync.execute, sql, params)

    async def load(self, objs: Any, *paths: str) -> None:
        """``Session.load``: relation paths for all ``objs``, one query per segment per chunk."""
        await self._call(self.sync.load, objs, *paths)

    async def upsert(self, *objs: Any, on: str | Sequence[str] | None = None) -> None:
        """``Session.upsert``."""
        await self._call(functools.partial(self.sync.upsert, *objs, on=on))

    async def insert_rows(self, cls: type, rows: Sequence[dict[str, Any]], *, returning: bool = False) -> Any:
        """``Session.insert_rows``."""
        return await self._call(functools.partial(self.sync.insert_rows, cls, rows, returning=returning))

    async def update_rows(self, cls: type, rows: Sequence[dict[str, Any]]) -> int:
        """``Session.update_rows``."""
        return await self._call(self.sync.update_rows, cls, rows)

    def begin_nested(self) -> AsyncSavepoint:
        """``async with s.begin_nested():`` a savepoint; a block that raises is undone."""
        return AsyncSavepoint(self, self.sync.begin_nested())


class AsyncSavepoint:
    """The async context manager of ``AsyncSession.begin_nested()``."""

    def __init__(self, session: AsyncSession, cm: AbstractContextManager[Session]) -> None:
        self._s = session
        self._cm = cm

    async def __aenter__(self) -> AsyncSession:
        await self._s._call(self._cm.__enter__)
        return self._s

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        return await self._s._finish(self._cm.__exit__, exc_type, exc, tb)


class AsyncQuery(Generic[T]):
    """A Query whose results are awaited: build it with the Query methods (``where``,
    ``include``, ``order_by``...), then ``await q.all()``, ``first()``, ``one()``,
    ``one_or_none()``, ``count()``, ``exists()``, ``values()``, ``paginate()``, ``from_sql()``,
    ``update()``, ``delete()``, or ``async for obj in q.stream(n)``."""

    def __init__(self, session: AsyncSession, query: Query[T]) -> None:
        self._s = session
        #: The sync Query this one describes.
        self.query = query

    def _with(self, query: Query[T]) -> AsyncQuery[T]:
        return AsyncQuery(self._s, query)

    def where(self, *conditions: Any, **equals: Any) -> AsyncQuery[T]:
        """``Query.where``."""
        return self._with(self.query.where(*conditions, **equals))

    def order_by(self, *items: Any) -> AsyncQuery[T]:
        """``Query.order_by``."""
        return self._with(self.query.order_by(*items))

    def include(self, *paths: str) -> AsyncQuery[T]:
        """``Query.include``: relation paths loaded with the results, one query per segment."""
        return self._with(self.query.include(*paths))

    def limit(self, n: int | None) -> AsyncQuery[T]:
        """``Query.limit``."""
        return self._with(self.query.limit(n))

    def offset(self, n: int | None) -> AsyncQuery[T]:
        """``Query.offset``."""
        return self._with(self.query.offset(n))

    def join(self, *paths: str) -> AsyncQuery[T]:
        """``Query.join``."""
        return self._with(self.query.join(*paths))

    def group_by(self, *items: Any) -> AsyncQuery[T]:
        """``Query.group_by``."""
        return self._with(self.query.group_by(*items))

    def having(self, *conditions: Any, **equals: Any) -> AsyncQuery[T]:
        """``Query.having``."""
        return self._with(self.query.having(*conditions, **equals))

    def distinct(self, on: bool = True) -> AsyncQuery[T]:
        """``Query.distinct``."""
        return self._with(self.query.distinct(on))

    def for_update(self, **options: Any) -> AsyncQuery[T]:
        """``Query.for_update``: row locks (``nowait``, ``skip_locked``, ``of``)."""
        return self._with(self.query.for_update(**options))

    def for_share(self, **options: Any) -> AsyncQuery[T]:
        """``Query.for_share``."""
        return self._with(self.query.for_share(**options))

    def after(self, last: Any) -> AsyncQuery[T]:
        """``Query.after``: the keyset page after ``last``."""
        return self._with(self.query.after(last))

    def subquery(self, column: Any) -> Any:
        """``Query.subquery``: this query as a subquery node of another (no I/O)."""
        return self.query.subquery(column)

    def _run(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> Awaitable[R]:
        return self._s._call(functools.partial(fn, *args, **kwargs))

    async def all(self) -> list[T]:
        """Every matching object."""
        return await self._run(self.query.all)

    async def first(self) -> T | None:
        """The first matching object, or None."""
        return await self._run(self.query.first)

    async def one(self) -> T:
        """The one matching object (NotFoundError, MultipleResultsError otherwise)."""
        return await self._run(self.query.one)

    async def one_or_none(self) -> T | None:
        """The one matching object or None (MultipleResultsError for more)."""
        return await self._run(self.query.one_or_none)

    async def count(self) -> int:
        """The number of matching rows."""
        return await self._run(self.query.count)

    async def exists(self) -> bool:
        """Whether any row matches."""
        return await self._run(self.query.exists)

    @overload
    async def values(self, c1: Column[A], /) -> list[tuple[A]]: ...

    @overload
    async def values(self, c1: Column[A], c2: Column[B], /) -> list[tuple[A, B]]: ...

    @overload
    async def values(self, c1: Column[A], c2: Column[B], c3: Column[C], /) -> list[tuple[A, B, C]]: ...

    @overload
    async def values(self, c1: Column[A], c2: Column[B], c3: Column[C], c4: Column[D], /) -> list[tuple[A, B, C, D]]: ...

    @overload
    async def values(self, *columns: Any, **labeled: Any) -> list[tuple[Any, ...]]: ...

    async def values(self, *columns: Any, **labeled: Any) -> list[tuple[Any, ...]]:
        """Column values instead of objects (see ``Query.values``), typed as the sync ones."""
        return await self._run(self.query.values, *columns, **labeled)

    async def paginate(self, page: int, per_page: int) -> Page[T]:
        """One page and the total (see ``Query.paginate``)."""
        return await self._run(self.query.paginate, page, per_page)

    async def from_sql(self, sql: str, params: dict[str, Any] | None = None) -> list[T]:
        """Objects from raw SQL (see ``Query.from_sql``)."""
        return await self._run(self.query.from_sql, sql, params)

    async def update(self, **values: Any) -> int:
        """One set-based UPDATE of the matching rows; held objects follow. Returns the rows matched."""
        return await self._run(self.query.update, **values)

    async def delete(self) -> int:
        """One set-based DELETE of the matching rows. Returns the rows matched."""
        return await self._run(self.query.delete)

    def stream(self, batch_size: int = 1000) -> AsyncStream[T]:
        """``async for obj in q.stream(n)``: pages of ``n`` rows by key, as ``Query.stream``."""
        return AsyncStream(self._s, self.query, batch_size)


class AsyncStream(Generic[T]):
    """The async iterator of ``AsyncQuery.stream()``: one trip to the worker per page."""

    def __init__(self, session: AsyncSession, query: Query[T], batch_size: int) -> None:
        self._s = session
        self._query = query
        self._n = batch_size
        self._it: Iterator[T] | None = None
        self._buffer: list[T] = []
        self._pos = 0

    def _page(self) -> list[T]:
        if self._it is None:
            self._it = self._query.stream(self._n)
        return list(itertools.islice(self._it, self._n))

    def __aiter__(self) -> AsyncStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._pos >= len(self._buffer):
            self._buffer, self._pos = [], 0
            self._buffer = await self._s._call(self._page)
            if not self._buffer:
                raise StopAsyncIteration
        self._pos += 1
        return self._buffer[self._pos - 1]

    async def aclose(self) -> None:
        """Stop streaming (the sync stream is closed on the worker)."""
        it, self._it = self._it, None
        if it is not None and hasattr(it, "close"):
            await self._s._call(it.close)


class AsyncAccessor:
    """``AsyncSession.related(obj, name)``: the sync accessor's methods, each awaited
    (``await s.related(owner, "pugs").all()``; ``all()`` of an unloaded collection loads it for
    the whole cohort)."""

    def __init__(self, session: AsyncSession, accessor: Any) -> None:
        self._s = session
        self._a = accessor

    async def all(self) -> list[Any]:
        """The related objects. An unloaded collection is loaded into its attribute for the
        object's whole cohort (one statement), so the other objects of the same result need no
        await for it; a loaded one is read with one statement, as the sync accessor reads it."""
        method = self._a.all
        if isinstance(self._a, CollectionAccessor):
            method = functools.partial(method, cohort=True)
        result: list[Any] = await self._s._call(method)
        return result

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        method = getattr(self._a, name)
        if not callable(method):
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self._s._call(functools.partial(method, *args, **kwargs))

        return call


class AsyncAttempt:
    """One run of an AsyncTransaction: ``async with attempt as session:`` (see ``Attempt``)."""

    def __init__(self, tx: AsyncTransaction, number: int, last: bool) -> None:
        self._tx = tx
        self.number = number
        self.last = last
        self.session: AsyncSession | None = None
        self._attempt = Attempt(tx.sync, number, last)

    @property
    def succeeded(self) -> bool:
        """The attempt committed."""
        return self._attempt.succeeded

    @property
    def error(self) -> BaseException | None:
        """What failed the attempt, if anything."""
        return self._attempt.error

    async def __aenter__(self) -> AsyncSession:
        s = self.session = self._tx.db.session(autoflush=self._tx.autoflush)
        self._tx.opening = s.sync
        self._attempt.__enter__()
        return s

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        s = self.session
        assert s is not None, "AsyncAttempt.__aexit__ without __aenter__"
        try:
            # The sync Attempt's rules: commit on a clean exit, roll back and swallow a
            # retryable failure unless this is the last attempt.
            return await s._finish(self._attempt.__exit__, exc_type, exc, tb)
        finally:
            s._stop()


class AsyncTransaction:
    """``AsyncDatabase.transaction()``: an async decorator, an ``async for`` loop of attempts,
    or (without retries) an ``async with`` block; the retry rules are ``Transaction``'s."""

    def __init__(self, db: AsyncDatabase, sync: Transaction, autoflush: bool) -> None:
        self.db = db
        self.autoflush = autoflush
        #: The sync Transaction: its settings, its backoff and its attempt rules.
        self.sync = sync
        self.opening: Session | None = None
        sync.open_session = self._open
        self._single: AsyncAttempt | None = None

    def _open(self) -> Session:
        s, self.opening = self.opening, None
        assert s is not None
        return s

    @property
    def attempts(self) -> int:
        """Attempts made by the last run."""
        return self.sync.attempts

    async def __aiter__(self) -> AsyncIterator[AsyncAttempt]:
        total = self.sync.retries + 1
        for n in range(1, total + 1):
            attempt = AsyncAttempt(self, n, last=n == total)
            self.sync.attempts = n
            yield attempt
            if attempt.succeeded:
                return
            if attempt.session is None:
                msg = "each attempt of db.transaction() must be used as `async with attempt as session:`"
                raise errors.SessionError(msg)
            if attempt.error is None:
                return
            if n < total:
                await asyncio.sleep(self.sync.delay(n))

    def __call__(self, fn: Callable[Concatenate[AsyncSession, P], Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """Decorate ``async def fn(session, *args, **kwargs)``: each call runs it as a retried transaction."""

        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            async for attempt in self:
                async with attempt as session:
                    result = await fn(session, *args, **kwargs)
                if attempt.succeeded:
                    return result
            raise AssertionError("transaction ended without a result")  # pragma: no cover

        return run

    async def __aenter__(self) -> AsyncSession:
        if self.sync.retries:
            msg = (
                f"`async with db.transaction(retries={self.sync.retries})` cannot run its block "
                "again; use `@db.transaction(retries=N)` on an async function, or `async for "
                "attempt in db.transaction(retries=N): async with attempt as session: ...`"
            )
            raise errors.SessionError(msg)
        if self._single is not None:
            msg = "this db.transaction() is already in use; call db.transaction() for each block"
            raise errors.SessionError(msg)
        self._single = AsyncAttempt(self, 1, last=True)
        self.sync.attempts = 1
        return await self._single.__aenter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        single, self._single = self._single, None
        assert single is not None
        return await single.__aexit__(exc_type, exc, tb)
