"""mapper, used the way its guide shows: one session per workload, ``include`` for eager loads,
``add_all`` + commit for inserts, ``s.delete`` (the unit of work, with the database's ON DELETE
CASCADE) and ``query(...).delete()`` for deletes, ``s.get`` for lookups."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import mapper
from mapper import Database, Session

from .. import schema
from ..backends import Backend
from ..workloads import build_owner_graph
from .base import StatementCounter, System, check_count


class MapperSystem(System):
    name = "mapper"

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self.label = f"mapper {mapper.__version__}"
        self.classes = schema.M
        self.db = Database(backend.url, mappers=schema.MAPPERS)
        #: The statements are counted through the public hook, as a user would count them.
        self.counter = StatementCounter()
        self.subscription = self.db.on_statement(self.counter.count)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """``with db.session() as s:`` that also adds the statements the hook saw, once they
        are checked against the session's own ``query_count`` (a mismatch fails the run)."""
        s = self.db.session()
        start = self.counter.sent
        try:
            yield s
            s.commit()
            self.queries += self.counted(s, start)
        except BaseException:
            if not s.closed:
                s.rollback()
            raise
        finally:
            s.close()

    def counted(self, s: Session, start: int) -> int:
        """The statements the hook saw since ``start``, checked against ``s.query_count``."""
        return check_count(self.name, self.counter.sent - start, s.query_count)

    def w1(self, ctx: dict[str, Any]) -> Any:
        sz = ctx["sizes"]
        owners = build_owner_graph(self.classes, sz["owners"], sz["pugs_each"])
        with self.session() as s:
            s.add_all(owners)  # the pugs come along (cascade "save"); commit flushes them
        return owners

    def w2(self, ctx: dict[str, Any]) -> Any:
        with self.session() as s:
            return s.query(schema.Pug).order_by("id").all()

    def w3(self, ctx: dict[str, Any]) -> Any:
        with self.session() as s:
            return s.query(schema.Owner).order_by("id").include("pugs").all()

    def w4(self, ctx: dict[str, Any]) -> Any:
        with self.session() as s:
            return s.query(schema.Order).order_by("id").include("items.product").all()

    def w5(self, ctx: dict[str, Any]) -> Any:
        with self.session() as s:
            return s.query(schema.User).order_by("id").include("user_books.book").all()

    def w6(self, ctx: dict[str, Any]) -> Any:
        with self.session() as s:
            pugs = s.query(schema.Pug).all()
            for p in pugs:
                p.age = p.age + 1
        return pugs

    def w7(self, ctx: dict[str, Any]) -> Any:
        with self.session() as s:
            owners = s.query(schema.Owner).where(schema.OwnerMapper.id.in_(ctx["victims"])).all()
            for o in owners:
                s.delete(o)
        return len(owners)

    def w7q(self, ctx: dict[str, Any]) -> Any:
        with self.session() as s:
            return s.query(schema.Owner).where(schema.OwnerMapper.id.in_(ctx["victims"])).delete()

    def w8(self, ctx: dict[str, Any]) -> Any:
        Owner = schema.Owner
        with self.session() as s:
            get = s.get
            return [get(Owner, key) for key in ctx["keys"]]

    def w9(self, ctx: dict[str, Any]) -> Any:
        with self.session() as s:
            owners = s.query(schema.Owner).order_by("id").all()
            touched = sum(len(o.pugs) for o in owners)  # no include: the cohort loads on first touch
        assert touched >= 0
        return owners

    def w10(self, ctx: dict[str, Any]) -> Any:
        with self.session() as s:
            return s.insert_rows(schema.Pug, ctx["dicts"])


class UnwatchedMapperSystem(MapperSystem):
    """mapper with no statement callback, counting with ``session.query_count`` instead: run
    beside ``mapper`` (``--system mapper_unwatched``), it shows what the counting hook costs."""

    name = "mapper_unwatched"

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self.label += " (no statement callback)"
        self.subscription.remove()

    def counted(self, s: Session, start: int) -> int:
        return s.query_count
