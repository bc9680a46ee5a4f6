"""The asyncio systems, beside the sync ones (``--async``):

- **mapper_async**: ``AsyncDatabase`` used as the guide's Async chapter shows (``include`` for
  eager loads, ``await s.load()`` where W9 would touch an unloaded relation: an async session
  never loads on touch);
- **sqla_async**: SQLAlchemy's asyncio ORM (``create_async_engine`` on psycopg's async mode,
  aiomysql and aiosqlite; ``async_sessionmaker(expire_on_commit=False)``), ``selectinload``
  where W9 would lazy-load (its lazy loads raise ``MissingGreenlet`` in async code).

Each system owns one event loop; a timed call is one ``run_until_complete`` of the workload's
coroutine, so the time includes what the loop adds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from .. import schema
from ..backends import Backend
from ..workloads import build_owner_graph
from .base import StatementCounter, System, check_count
from .sqla_system import SqlaSystem, mapped_classes

R = TypeVar("R")


class _Loop:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Awaitable[R]) -> R:
        return self.loop.run_until_complete(coro)  # type: ignore[arg-type]


class MapperAsyncSystem(System):
    name = "mapper_async"

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        import mapper
        from mapper import AsyncDatabase

        self.label = f"mapper {mapper.__version__} async"
        self.classes = schema.M
        self._l = _Loop()
        self.db = AsyncDatabase(backend.async_url, mappers=schema.MAPPERS)
        # The hook is the sync Database's: the async session's statements go through it.
        self.counter = StatementCounter()
        self.db.sync.on_statement(self.counter.count)

    def close(self) -> None:
        self._l.run(self.db.close())
        self._l.loop.close()

    def _session(self, work: Any) -> Any:
        async def run() -> Any:
            async with self.db.session() as s:
                start = self.counter.sent
                out = await work(s)
                await s.commit()
                self.queries += check_count(self.name, self.counter.sent - start, s.query_count)
                return out

        return self._l.run(run())

    def w1(self, ctx: dict[str, Any]) -> Any:
        sz = ctx["sizes"]
        owners = build_owner_graph(self.classes, sz["owners"], sz["pugs_each"])

        async def work(s: Any) -> Any:
            s.add_all(owners)
            return owners

        return self._session(work)

    def w2(self, ctx: dict[str, Any]) -> Any:
        return self._session(lambda s: s.query(schema.Pug).order_by("id").all())

    def w3(self, ctx: dict[str, Any]) -> Any:
        return self._session(lambda s: s.query(schema.Owner).order_by("id").include("pugs").all())

    def w4(self, ctx: dict[str, Any]) -> Any:
        return self._session(lambda s: s.query(schema.Order).order_by("id").include("items.product").all())

    def w5(self, ctx: dict[str, Any]) -> Any:
        return self._session(lambda s: s.query(schema.User).order_by("id").include("user_books.book").all())

    def w6(self, ctx: dict[str, Any]) -> Any:
        async def work(s: Any) -> Any:
            pugs = await s.query(schema.Pug).all()
            for p in pugs:
                p.age = p.age + 1
            return pugs

        return self._session(work)

    def w7(self, ctx: dict[str, Any]) -> Any:
        async def work(s: Any) -> Any:
            owners = await s.query(schema.Owner).where(schema.OwnerMapper.id.in_(ctx["victims"])).all()
            for o in owners:
                await s.delete(o)
            return len(owners)

        return self._session(work)

    def w7q(self, ctx: dict[str, Any]) -> Any:
        return self._session(lambda s: s.query(schema.Owner).where(schema.OwnerMapper.id.in_(ctx["victims"])).delete())

    def w8(self, ctx: dict[str, Any]) -> Any:
        Owner = schema.Owner

        async def work(s: Any) -> Any:
            return [await s.get(Owner, key) for key in ctx["keys"]]

        return self._session(work)

    def w9(self, ctx: dict[str, Any]) -> Any:
        async def work(s: Any) -> Any:
            owners = await s.query(schema.Owner).order_by("id").all()
            await s.load(owners, "pugs")  # an async session never loads on touch
            assert sum(len(o.pugs) for o in owners) >= 0
            return owners

        return self._session(work)

    def w10(self, ctx: dict[str, Any]) -> Any:
        return self._session(lambda s: s.insert_rows(schema.Pug, ctx["dicts"]))


class SqlaAsyncSystem(SqlaSystem):
    name = "sqla_async"

    def __init__(self, backend: Backend) -> None:  # noqa: D107 - replaces the sync set-up
        System.__init__(self, backend)
        import sqlalchemy as sa
        from sqlalchemy import event
        from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

        self.label = f"SQLAlchemy {sa.__version__} asyncio ORM"
        self.classes = mapped_classes()
        self._l = _Loop()
        url = backend.sqlalchemy_url
        url = {"sqlite": url.replace("sqlite://", "sqlite+aiosqlite://", 1),
               "postgresql": url.replace("+psycopg://", "+psycopg_async://", 1),
               # On a mysqlclient backend too: it has no asyncio interface (see Backend.async_url).
               "mysql": url.replace("+pymysql://", "+aiomysql://", 1).replace("+mysqldb://", "+aiomysql://", 1)}[backend.kind]
        self.aengine = create_async_engine(url)
        if backend.kind == "sqlite":
            @event.listens_for(self.aengine.sync_engine, "connect")
            def _fk_on(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

        @event.listens_for(self.aengine.sync_engine, "before_cursor_execute")
        def _count(*_: Any) -> None:
            self.queries += 1

        self.ASession = async_sessionmaker(self.aengine, expire_on_commit=False)

    def close(self) -> None:
        self._l.run(self.aengine.dispose())
        self._l.loop.close()

    def _begin(self, work: Any) -> Any:
        async def run() -> Any:
            async with self.ASession.begin() as s:
                return await work(s)

        return self._l.run(run())

    def w1(self, ctx: dict[str, Any]) -> Any:
        sz = ctx["sizes"]
        owners = build_owner_graph(self.classes, sz["owners"], sz["pugs_each"])

        async def work(s: Any) -> Any:
            s.add_all(owners)
            return owners

        return self._begin(work)

    def _scalars(self, stmt: Any) -> Any:
        async def work(s: Any) -> Any:
            return (await s.scalars(stmt)).all()

        return self._begin(work)

    def w2(self, ctx: dict[str, Any]) -> Any:
        import sqlalchemy as sa

        Pug = self.classes.Pug
        return self._scalars(sa.select(Pug).order_by(Pug.id))

    def w3(self, ctx: dict[str, Any]) -> Any:
        import sqlalchemy as sa
        from sqlalchemy.orm import selectinload

        Owner = self.classes.Owner
        return self._scalars(sa.select(Owner).options(selectinload(Owner.pugs)).order_by(Owner.id))

    w9 = w3  # lazy loads raise MissingGreenlet in async code: the load is explicit

    def w4(self, ctx: dict[str, Any]) -> Any:
        import sqlalchemy as sa
        from sqlalchemy.orm import selectinload

        C = self.classes
        stmt = sa.select(C.Order).options(selectinload(C.Order.items).selectinload(C.OrderItem.product))
        return self._scalars(stmt.order_by(C.Order.id))

    def w5(self, ctx: dict[str, Any]) -> Any:
        import sqlalchemy as sa
        from sqlalchemy.orm import selectinload

        C = self.classes
        stmt = sa.select(C.User).options(selectinload(C.User.user_books).selectinload(C.UserBook.book))
        return self._scalars(stmt.order_by(C.User.id))

    def w6(self, ctx: dict[str, Any]) -> Any:
        import sqlalchemy as sa

        Pug = self.classes.Pug

        async def work(s: Any) -> Any:
            pugs = (await s.scalars(sa.select(Pug))).all()
            for p in pugs:
                p.age = p.age + 1
            return pugs

        return self._begin(work)

    def w7(self, ctx: dict[str, Any]) -> Any:
        import sqlalchemy as sa

        Owner = self.classes.Owner

        async def work(s: Any) -> Any:
            owners = (await s.scalars(sa.select(Owner).where(Owner.id.in_(ctx["victims"])))).all()
            for o in owners:
                await s.delete(o)
            return len(owners)

        return self._begin(work)

    def w7q(self, ctx: dict[str, Any]) -> Any:
        import sqlalchemy as sa

        Owner = self.classes.Owner

        async def work(s: Any) -> Any:
            return (await s.execute(sa.delete(Owner).where(Owner.id.in_(ctx["victims"])))).rowcount

        return self._begin(work)

    def w8(self, ctx: dict[str, Any]) -> Any:
        Owner = self.classes.Owner

        async def work(s: Any) -> Any:
            return [await s.get(Owner, key) for key in ctx["keys"]]

        return self._begin(work)

    def w10(self, ctx: dict[str, Any]) -> Any:
        import sqlalchemy as sa

        async def work(s: Any) -> Any:
            await s.execute(sa.insert(self.classes.Pug), ctx["dicts"])
            return len(ctx["dicts"])

        return self._begin(work)
