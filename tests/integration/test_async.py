"""The async session on every backend, beside the sync one.

Most tests are written once, as async code, and run for both faces (``face``): "async" is the
AsyncSession, "sync" the plain Session behind a thin adapter whose awaited methods are the sync
ones, so both faces meet the same assertions (rows read back with plain SQL, exact statement
counts, exact errors). The rest are about what only the async face has: relations that never
load on touch, cancellation, many tasks on one event loop.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from mapper import Column, Database, Mapper, errors
from mapper import types as t
from mapper.aio import AsyncDatabase
from tests.rel_models import LIBRARY, PETS, Book, Owner, Pug, Toy, User

# -- the two faces ---------------------------------------------------------------------------------

#: The Session methods the async face awaits (the rest are plain calls on both faces).
AWAITED = frozenset(
    {"get", "get_one", "delete", "merge", "refresh", "flush", "commit", "rollback", "execute", "load",
     "upsert", "insert_rows", "update_rows", "close"}
)
QUERY_AWAITED = frozenset(
    {"all", "first", "one", "one_or_none", "count", "exists", "values", "paginate", "from_sql", "update", "delete"}
)


async def _value(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


class SyncQuery:
    """A sync Query seen the async way: builders plain, results awaited."""

    def __init__(self, q: Any) -> None:
        self.q = q

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.q, name)
        if name in QUERY_AWAITED:
            return functools.partial(_value, attr)
        if name == "stream":
            return lambda n=1000: _AsyncIter(attr(n))
        return lambda *a, **k: SyncQuery(attr(*a, **k))


class _AsyncIter:
    def __init__(self, it: Any) -> None:
        self.it = iter(it)

    def __aiter__(self) -> _AsyncIter:
        return self

    async def __anext__(self) -> Any:
        try:
            return next(self.it)
        except StopIteration:
            raise StopAsyncIteration from None


class SyncSession:
    """A sync Session seen the async way."""

    def __init__(self, s: Any) -> None:
        self.sync = s

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.sync, name)
        if name in AWAITED:
            return functools.partial(_value, attr)
        return attr

    def query(self, cls: type) -> SyncQuery:
        return SyncQuery(self.sync.query(cls))

    def related(self, obj: object, name: str) -> Any:
        acc = self.sync.related(obj, name)
        return type("Acc", (), {"__getattr__": lambda _, n: functools.partial(_value, getattr(acc, n))})()

    def begin_nested(self) -> Any:
        cm = self.sync.begin_nested()

        class Nested:
            async def __aenter__(_) -> Any:
                cm.__enter__()
                return self

            async def __aexit__(_, *exc: Any) -> Any:
                return cm.__exit__(*exc)

        return Nested()

    async def __aenter__(self) -> SyncSession:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.sync.__exit__(*exc)

    @property
    def query_count(self) -> int:
        return int(self.sync.query_count)


class SyncFace:
    """A sync Database seen the async way (its sessions run on the loop's thread)."""

    def __init__(self, db: Database) -> None:
        self.sync = db

    def session(self) -> SyncSession:
        return SyncSession(self.sync.session())


def async_url(backend: Any) -> str:
    """The backend's URL as AsyncDatabase takes it: a URL naming mysqlclient (no asyncio
    interface; refused, see test_mysqlclient.py) is the same server through aiomysql."""
    if backend.driver == "MySQLdb":
        return "mysql://" + backend.url.split("://", 1)[1]
    return backend.url


def run(backend: Any, face: str, body: Callable[[Any], Awaitable[None]], mappers: Any = PETS, **options: Any) -> None:
    """Run ``body(db)`` on a fresh schema, with ``db`` an AsyncDatabase or a SyncFace."""

    async def main() -> None:
        adb = AsyncDatabase(async_url(backend), mappers, **options)
        await adb.drop_all()
        await adb.create_all()
        plain = Database(backend.url, mappers, **options) if face == "sync" else None
        try:
            await body(adb if plain is None else SyncFace(plain))
        finally:
            if plain is not None:
                plain.close()
            await adb.drop_all()
            await adb.close()

    asyncio.run(main())


FACES = pytest.mark.parametrize("face", ["async", "sync"])


def count(backend: Any, table: str) -> int:
    return int(backend.raw(f"SELECT COUNT(*) FROM {backend.q(table)}")[0][0])


async def seed(db: Any, owners: int = 3) -> None:
    async with db.session() as s:
        for i in range(owners):
            s.add(Owner(f"o{i}", [Pug(f"p{i}a", toys=[Toy(f"t{i}")]), Pug(f"p{i}b")]))


# -- shared with the sync face ---------------------------------------------------------------------


@FACES
def test_cascaded_insert_include_and_delete(backend, face):
    async def body(db: Any) -> None:
        async with db.session() as s:
            s.add(Owner("ann", [Pug("a", toys=[Toy("ball"), Toy("rope")]), Pug("b")]))
        assert (count(backend, "rel_owners"), count(backend, "rel_pugs"), count(backend, "rel_toys")) == (1, 2, 2)
        async with db.session() as s:
            owner = await s.query(Owner).include("pugs.toys").one()
            assert s.query_count == 3  # owners, pugs, toys
            assert [(p.name, [x.name for x in p.toys]) for p in owner.pugs] == [("a", ["ball", "rope"]), ("b", [])]
            assert owner.pugs[0].owner is owner
            await s.delete(owner)
        assert (count(backend, "rel_owners"), count(backend, "rel_pugs"), count(backend, "rel_toys")) == (0, 0, 0)

    run(backend, face, body)


@FACES
def test_load_takes_one_query_per_segment_for_the_cohort_and_related_one(backend, face):
    async def body(db: Any) -> None:
        await seed(db, 3)
        async with db.session() as s:
            owners = await s.query(Owner).order_by("id").all()
            before = s.query_count
            await s.load(owners, "pugs.toys")
            assert s.query_count == before + 2
            assert [[x.name for p in o.pugs for x in p.toys] for o in owners] == [["t0"], ["t1"], ["t2"]]
        async with db.session() as s:
            owners = await s.query(Owner).order_by("id").all()
            before = s.query_count
            pugs = await s.related(owners[0], "pugs").all()
            assert [p.name for p in pugs] == ["p0a", "p0b"]
            assert s.query_count == before + 1
            assert await s.related(owners[1], "pugs").count() == 2
            assert s.query_count == before + 2

    run(backend, face, body)


@FACES
def test_queries_stream_execute_and_set_based_writes(backend, face):
    async def body(db: Any) -> None:
        await seed(db, 3)
        async with db.session() as s:
            assert await s.query(Pug).count() == 6
            assert (await s.query(Pug).where(name="p1a").one()).name == "p1a"
            assert await s.query(Pug).where(name="nobody").first() is None
            assert await s.query(Pug).where(name="nobody").one_or_none() is None
            names = [p.name async for p in s.query(Pug).order_by("id").stream(4)]
            assert names == ["p0a", "p0b", "p1a", "p1b", "p2a", "p2b"]
            rows = await s.execute("SELECT name FROM rel_owners WHERE name = :n", {"n": "o2"})
            assert [r.name for r in rows] == ["o2"]
            assert await s.query(Pug).where(name="p0a").update(age=7) == 1
            assert await s.query(Toy).where(name="t2").delete() == 1
        assert backend.raw("SELECT age FROM rel_pugs WHERE name = 'p0a'") == [(7,)]
        assert count(backend, "rel_toys") == 2

    run(backend, face, body)


@FACES
def test_savepoint_undoes_its_block_only(backend, face):
    async def body(db: Any) -> None:
        async with db.session() as s:
            s.add(Owner("kept"))
            with pytest.raises(RuntimeError):
                async with s.begin_nested():
                    s.add(Owner("undone"))
                    await s.flush()
                    raise RuntimeError("undo")
            s.add(Owner("after"))
        assert sorted(r[0] for r in backend.raw("SELECT name FROM rel_owners")) == ["after", "kept"]

    run(backend, face, body)


@FACES
def test_errors_are_the_sync_errors(backend, face):
    async def body(db: Any) -> None:
        await seed(db, 1)
        async with db.session() as s:
            with pytest.raises(errors.NotFoundError):
                await s.get_one(Owner, 999)
            with pytest.raises(errors.MultipleResultsError):
                await s.query(Pug).one()
            with s.budget(1):
                await s.query(Pug).all()
                with pytest.raises(errors.QueryBudgetExceeded):
                    await s.query(Pug).all()
        async with db.session() as s:
            s.add(Owner("dup", id=1))
            with pytest.raises(errors.IntegrityError):
                await s.flush()
            with pytest.raises(errors.PendingRollbackError):
                await s.query(Owner).all()
            await s.rollback()
            assert [o.name for o in await s.query(Owner).all()] == ["o0"]

    run(backend, face, body)


@FACES
def test_a_moved_child_and_a_removed_one_are_reconciled_into_foreign_keys(backend, face):
    async def body(db: Any) -> None:
        await seed(db, 2)
        async with db.session() as s:
            first, second = await s.query(Owner).order_by("id").include("pugs").all()
            moved = first.pugs[0]
            second.pugs.append(moved)  # one side edited: the inverse and the key follow
            gone = second.pugs[0]
            second.pugs.remove(gone)  # cascade "all" includes "orphan": the pug is deleted
            await s.flush()
            assert moved.owner is second
        rows = backend.raw("SELECT p.name, o.name FROM rel_pugs p JOIN rel_owners o ON o.id = p.owner_id ORDER BY p.name")
        assert rows == [("p0a", "o1"), ("p0b", "o0"), ("p1b", "o1")]
        assert count(backend, "rel_toys") == 1  # p1a's toy went with it (cascade "all")

    run(backend, face, body)


@FACES
def test_many_to_many_links_are_written_and_read_back(backend, face):
    async def body(db: Any) -> None:
        async with db.session() as s:
            dune, emma = Book("Dune"), Book("Emma")
            s.add_all([User("ann", favorites=[dune, emma]), User("bob", favorites=[dune])])
        assert count(backend, "rel_user_favorites") == 3
        async with db.session() as s:
            users = await s.query(User).order_by("name").include("favorites").all()
            assert [[b.title for b in u.favorites] for u in users] == [["Dune", "Emma"], ["Dune"]]
            users[0].favorites.pop()  # ann drops Emma: one junction row goes
        assert count(backend, "rel_user_favorites") == 2
        async with db.session() as s:
            books = await s.query(Book).order_by("title").all()
            await s.load(books, "fans")
            assert [[u.name for u in b.fans] for b in books] == [["ann", "bob"], []]

    run(backend, face, body, mappers=LIBRARY)


@FACES
def test_writes_outside_the_flush_and_refresh(backend, face):
    async def body(db: Any) -> None:
        async with db.session() as s:
            keys = await s.insert_rows(Owner, [{"name": "x"}, {"name": "y"}], returning=True)
            assert len(keys) == 2
            assert await s.update_rows(Owner, [{"id": keys[0], "name": "x2"}]) == 1
            owner = await s.get(Owner, keys[1])
            owner.name = "changed in memory"
            await s.refresh(owner)
            assert owner.name == "y"
        assert sorted(r[0] for r in backend.raw("SELECT name FROM rel_owners")) == ["x2", "y"]

    run(backend, face, body)


# -- what only the async face has ------------------------------------------------------------------


def test_an_unloaded_relation_raises_at_once_naming_the_include(backend):
    async def body(db: AsyncDatabase) -> None:
        await seed(db, 1)
        async with db.session() as s:
            pug = await s.query(Pug).where(name="p0a").one()
            sent = s.query_count
            with pytest.raises(errors.RelationNotLoadedError) as info:
                len(pug.toys)
            assert str(info.value) == (
                "Pug.toys is not loaded, and an async session never loads on touch; add "
                ".include('toys') to the query or `await session.load(objects, 'toys')` first"
            )
            with pytest.raises(errors.RelationNotLoadedError, match=r"\.include\('owner'\)"):
                pug.owner.name  # a stand-in for a reference not loaded
            assert s.query_count == sent

    run(backend, "async", body)


def test_replicas_are_refused_by_an_async_database(backend):
    with pytest.raises(errors.ConfigurationError, match=r"AsyncDatabase\(replicas=\.\.\.\): async sessions read from the primary only"):
        AsyncDatabase(async_url(backend), PETS, replicas=[backend.url])


def test_related_all_loads_the_collection_for_the_whole_cohort(backend):
    async def body(db: AsyncDatabase) -> None:
        await seed(db, 3)
        async with db.session() as s:
            owners = await s.query(Owner).order_by("id").all()
            sent = s.query_count
            pugs = await s.related(owners[0], "pugs").all()
            assert [p.name for p in pugs] == ["p0a", "p0b"]
            assert s.query_count == sent + 1
            # The other owners of the result have their pugs now: reading them awaits nothing.
            assert [[p.name for p in o.pugs] for o in owners] == [["p0a", "p0b"], ["p1a", "p1b"], ["p2a", "p2b"]]
            assert owners[2].pugs[1].owner is owners[2]
            # A loaded collection is read from the database with one statement, as in a sync session.
            assert [p.name for p in await s.related(owners[1], "pugs").all()] == ["p1a", "p1b"]
            assert s.query_count == sent + 2
            # The next level the same way: toys not loaded still raise, then one query loads them all.
            with pytest.raises(errors.RelationNotLoadedError):
                len(pugs[0].toys)
            assert [t.name for t in await s.related(pugs[0], "toys").all()] == ["t0"]
            assert [[t.name for t in p.toys] for p in pugs] == [["t0"], []]
            assert s.query_count == sent + 3

    run(backend, "async", body)


@attrs.define
class Counter:
    n: int = 0
    version: int | None = None
    id: int | None = None


class CounterMapper(Mapper[Counter]):
    table = "async_counters"
    id = Column(t.Integer, primary_key=True)
    n = Column(t.Integer, nullable=False, default=0)
    version = Column(t.Integer, version=True)


def test_fifty_tasks_read_modify_write_with_retries_end_with_exact_totals(backend):
    async def body(db: AsyncDatabase) -> None:
        async with db.session() as s:
            s.add(Counter(id=1))

        @db.transaction(retries=200, backoff=0.001, max_backoff=0.02, retry_on=errors.StaleDataError)
        async def bump(s: Any) -> None:
            counter = await s.get(Counter, 1)
            counter.n += 1

        await asyncio.gather(*(bump() for _ in range(50)))
        assert backend.raw("SELECT n, version FROM async_counters") == [(50, 51)]
        assert db.sync.pool_status().in_use == 0

    run(backend, "async", body, mappers=(CounterMapper,), pool_size=5)


def test_a_task_cancelled_in_a_flush_leaves_no_rows_and_returns_its_connection(backend):
    async def body(db: AsyncDatabase) -> None:
        sent: list[str] = []
        task: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        bridge = db.bridge()

        def on_statement(event: Any) -> None:
            sent.append(event.sql.split()[0] + " " + event.sql.split()[2])
            if len(sent) == 1:
                # Cancel the task at its first INSERT and wait until the session knows it.
                me = threading.get_ident()
                loop.call_soon_threadsafe(task.cancel)  # type: ignore[union-attr]
                while me not in bridge.refused:
                    threading.Event().wait(0.001)

        db.sync.on_statement(on_statement)

        async def work() -> None:
            async with db.session() as s:
                s.add(Owner("ann", [Pug("a", toys=[Toy("ball")]), Pug("b")]))
                await s.flush()

        task = asyncio.ensure_future(work())
        with pytest.raises(asyncio.CancelledError):
            await task
        # The owners' INSERT went out; the pugs' was refused, and everything was rolled back.
        assert len(sent) == 1 and sent[0].startswith("INSERT")
        assert (count(backend, "rel_owners"), count(backend, "rel_pugs"), count(backend, "rel_toys")) == (0, 0, 0)
        status = db.sync.pool_status()
        assert status.in_use == 0 and status.discarded == 0
        async with db.session() as s:  # the connection serves the next session
            assert await s.query(Owner).count() == 0

    run(backend, "async", body)


def test_pool_exhaustion_times_out_while_the_loop_keeps_serving(backend):
    async def body(db: AsyncDatabase) -> None:
        ticks = 0
        holding = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with db.session() as s:
                await s.query(Owner).count()
                holding.set()
                await release.wait()

        async def ticker() -> None:
            nonlocal ticks
            while not release.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        h = asyncio.ensure_future(holder())
        tick = asyncio.ensure_future(ticker())
        await holding.wait()
        with pytest.raises(errors.PoolTimeoutError):
            async with db.session() as s:
                await s.query(Owner).count()
        ticked = ticks
        release.set()
        await asyncio.gather(h, tick)
        assert ticked > 1  # the loop ran other tasks while one waited for the pool
        assert db.sync.pool_status().in_use == 0
        # PostgreSQL's pool is psycopg-pool's AsyncConnectionPool; the others mapper's own.
        expected = "PsycopgPool" if backend.name == "postgresql" else "QueuePool"
        assert type(db.sync.engine.pool).__name__ == expected

    run(backend, "async", body, pool_size=1, pool_timeout=0.3)


def _kill(backend: Any, server_id: Any) -> None:
    if backend.name == "postgresql":
        backend.raw("SELECT pg_terminate_backend(?, 5000)", (server_id,))
    else:
        backend.raw(f"KILL {int(server_id)}")


def test_a_connection_killed_mid_transaction_fails_the_session_and_the_next_one_works(backend):
    async def body(db: AsyncDatabase) -> None:
        await seed(db, 1)
        with pytest.raises(errors.DatabaseError) as info:
            async with db.session() as s:
                s.add(Owner("lost"))
                await s.flush()
                if backend.name == "sqlite":
                    await db.run(s.sync.connection.raw.close)  # the driver connection closed under it
                else:
                    sql = "SELECT pg_backend_pid()" if backend.name == "postgresql" else "SELECT CONNECTION_ID()"
                    _kill(backend, (await s.execute(sql))[0][0])
                await s.query(Owner).count()
        assert isinstance(info.value, (errors.OperationalError, errors.InterfaceError))
        assert count(backend, "rel_owners") == 1  # the seed only
        status = db.sync.pool_status()
        assert status.in_use == 0 and status.discarded == 1
        async with db.session() as s:
            assert await s.query(Owner).count() == 1

    run(backend, "async", body)


def test_transaction_forms_and_their_mistakes(backend):
    async def body(db: AsyncDatabase) -> None:
        async with db.transaction() as s:
            s.add(Owner("single"))
        async for attempt in db.transaction(retries=2):
            async with attempt as s:
                s.add(Owner("looped"))
        with pytest.raises(errors.SessionError, match="cannot run its block again"):
            async with db.transaction(retries=1):
                pass
        assert sorted(r[0] for r in backend.raw("SELECT name FROM rel_owners")) == ["looped", "single"]
        with pytest.raises(errors.ConfigurationError, match="retries"):
            db.transaction(retries=-1)

    run(backend, "async", body)


def test_async_database_refuses_lazy_and_a_second_event_loop(backend):
    with pytest.raises(errors.ConfigurationError, match="never loads on touch"):
        AsyncDatabase(async_url(backend), PETS, lazy="select")
    db = AsyncDatabase(async_url(backend), PETS)
    with pytest.raises(errors.SessionError, match="inside a coroutine"):
        db.session()

    async def first() -> None:
        async with db.session() as s:
            await s.execute("SELECT 1")
        await db.close()

    async def second() -> None:
        with pytest.raises(errors.SessionError, match="event loop it was first used on"):
            db.session()

    asyncio.run(first())
    asyncio.run(second())


def test_a_missing_asyncio_driver_names_the_extra_to_install(backend, monkeypatch):
    module = {"sqlite": "aiosqlite", "postgresql": "psycopg_pool", "mysql": "aiomysql"}[backend.name]
    extra = {"sqlite": "async-sqlite", "postgresql": "async-postgresql", "mysql": "async-mysql"}[backend.name]
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    db = AsyncDatabase(async_url(backend), PETS)

    async def main() -> None:
        try:
            with pytest.raises(errors.ConfigurationError) as info:
                async with db.session() as s:
                    await s.execute("SELECT 1")
            assert f"pip install 'mapper-uow[{extra}]'" in str(info.value)
        finally:
            await db.close()

    asyncio.run(main())
