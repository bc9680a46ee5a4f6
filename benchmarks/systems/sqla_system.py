"""SQLAlchemy 2 ORM, mapped imperatively onto the benchmark's attrs classes, used as its
documentation recommends:

- ``registry().map_imperatively`` onto ``@attrs.define(slots=False)`` copies of the classes
  (SQLAlchemy cannot instrument slotted classes: their slot descriptors hide the columns; the
  copies have the same fields, defaults and order);
- ``selectinload`` for eager loads; ``Session.add_all`` + commit for inserts (its
  "insertmanyvalues" batching); ``cascade="all, delete-orphan"`` with ``passive_deletes=True``
  over ``ON DELETE CASCADE`` for deletes; ORM-enabled ``delete()`` for W7q; ``Session.get``;
- ``sessionmaker(expire_on_commit=False)`` so that objects stay readable after commit, as
  mapper's and the raw driver's do (the check reads them after the session is closed);
- relationships keep the default ``lazy="select"``: W9 shows what that costs.

Statements are counted with a ``before_cursor_execute`` listener (an executemany counts once).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import registry, relationship, selectinload, sessionmaker

from .. import schema
from ..backends import Backend
from ..workloads import build_owner_graph
from .base import System

_MAPPED: Any = None


def mapped_classes() -> Any:
    """Map the slots=False copies once per process (a class can be mapped only once)."""
    global _MAPPED
    if _MAPPED is not None:
        return _MAPPED
    C = schema.make_classes(slots=False)
    md = sa.MetaData()
    Col, Int, Str, FK = sa.Column, sa.Integer, sa.String, sa.ForeignKey
    owners = sa.Table(schema.OWNERS, md, Col("id", Int, primary_key=True), Col("name", Str(100), nullable=False))
    pugs = sa.Table(
        schema.PUGS, md,
        Col("id", Int, primary_key=True),
        Col("name", Str(100), nullable=False),
        Col("age", Int, nullable=False, default=0),
        Col("owner_id", Int, FK(schema.OWNERS + ".id", ondelete="CASCADE"), index=True),
    )
    products = sa.Table(
        schema.PRODUCTS, md,
        Col("id", Int, primary_key=True),
        Col("name", Str(100), nullable=False),
        Col("price", Int, nullable=False, default=0),
    )
    orders = sa.Table(
        schema.ORDERS, md,
        Col("id", Int, primary_key=True),
        Col("customer", Str(100), nullable=False),
        Col("status", Str(20), nullable=False, default="open"),
    )
    items = sa.Table(
        schema.ORDER_ITEMS, md,
        Col("id", Int, primary_key=True),
        Col("order_id", Int, FK(schema.ORDERS + ".id", ondelete="CASCADE"), nullable=False, index=True),
        Col("product_id", Int, FK(schema.PRODUCTS + ".id", ondelete="RESTRICT"), nullable=False, index=True),
        Col("quantity", Int, nullable=False, default=1),
    )
    users = sa.Table(schema.USERS, md, Col("id", Int, primary_key=True), Col("name", Str(100), nullable=False))
    books = sa.Table(schema.BOOKS, md, Col("id", Int, primary_key=True), Col("title", Str(200), nullable=False))
    user_books = sa.Table(
        schema.USER_BOOKS, md,
        Col("id", Int, primary_key=True),
        Col("user_id", Int, FK(schema.USERS + ".id", ondelete="CASCADE"), nullable=False, index=True),
        Col("book_id", Int, FK(schema.BOOKS + ".id", ondelete="CASCADE"), nullable=False, index=True),
        Col("rating", sa.SmallInteger),
    )
    reg = registry(metadata=md)
    owned = "all, delete-orphan"  # with passive_deletes=True: the database's ON DELETE CASCADE does the rest
    reg.map_imperatively(C.Owner, owners, properties={
        "pugs": relationship(C.Pug, back_populates="owner", order_by=pugs.c.id, cascade=owned, passive_deletes=True),
    })
    reg.map_imperatively(C.Pug, pugs, properties={"owner": relationship(C.Owner, back_populates="pugs")})
    reg.map_imperatively(C.Product, products)
    reg.map_imperatively(C.Order, orders, properties={
        "items": relationship(C.OrderItem, back_populates="order", order_by=items.c.id, cascade=owned, passive_deletes=True),
    })
    reg.map_imperatively(C.OrderItem, items, properties={
        "order": relationship(C.Order, back_populates="items"),
        "product": relationship(C.Product),
    })
    reg.map_imperatively(C.User, users, properties={
        "user_books": relationship(C.UserBook, back_populates="user", order_by=user_books.c.id, cascade=owned, passive_deletes=True),
    })
    reg.map_imperatively(C.Book, books)
    reg.map_imperatively(C.UserBook, user_books, properties={
        "user": relationship(C.User, back_populates="user_books"),
        "book": relationship(C.Book),
    })
    reg.configure()
    _MAPPED = C
    return C


#: The foreign-key attribute behind each many-to-one, for the inverse check.
_FK = {"owner": "owner_id", "order": "order_id", "user": "user_id"}


class SqlaSystem(System):
    name = "sqla"

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        self.label = f"SQLAlchemy {sa.__version__} ORM"
        self.classes = mapped_classes()
        self.engine = sa.create_engine(backend.sqlalchemy_url)
        if backend.kind == "sqlite":
            @event.listens_for(self.engine, "connect")
            def _fk_on(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

        @event.listens_for(self.engine, "before_cursor_execute")
        def _count(*_: Any) -> None:
            self.queries += 1

        self.Session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    def refers_to(self, child: Any, attr: str, parent: Any) -> bool:
        d = child.__dict__
        if attr in d:
            return bool(d[attr] is parent)
        # selectinload of a one-to-many does not set the reverse many-to-one; SQLAlchemy
        # resolves it on first access from the identity map (no SQL) inside the session.
        self.notes.add(
            "SQLAlchemy: selectinload / lazy loads of a collection leave the reverse many-to-one "
            "(pug.owner, item.order, link.user) unset; it is resolved from the identity map on first "
            "access inside the session, so the check accepts a matching foreign key there."
        )
        return bool(d.get(_FK[attr]) == parent.id)

    # -- the workloads -----------------------------------------------------------------------------

    def w1(self, ctx: dict[str, Any]) -> Any:
        sz = ctx["sizes"]
        owners = build_owner_graph(self.classes, sz["owners"], sz["pugs_each"])
        with self.Session.begin() as s:
            s.add_all(owners)
        return owners

    def w2(self, ctx: dict[str, Any]) -> Any:
        Pug = self.classes.Pug
        with self.Session.begin() as s:
            return s.scalars(sa.select(Pug).order_by(Pug.id)).all()

    def w3(self, ctx: dict[str, Any]) -> Any:
        Owner = self.classes.Owner
        with self.Session.begin() as s:
            return s.scalars(sa.select(Owner).options(selectinload(Owner.pugs)).order_by(Owner.id)).all()

    def w4(self, ctx: dict[str, Any]) -> Any:
        C = self.classes
        stmt = sa.select(C.Order).options(selectinload(C.Order.items).selectinload(C.OrderItem.product))
        with self.Session.begin() as s:
            return s.scalars(stmt.order_by(C.Order.id)).all()

    def w5(self, ctx: dict[str, Any]) -> Any:
        C = self.classes
        stmt = sa.select(C.User).options(selectinload(C.User.user_books).selectinload(C.UserBook.book))
        with self.Session.begin() as s:
            return s.scalars(stmt.order_by(C.User.id)).all()

    def w6(self, ctx: dict[str, Any]) -> Any:
        Pug = self.classes.Pug
        with self.Session.begin() as s:
            pugs = s.scalars(sa.select(Pug)).all()
            for p in pugs:
                p.age = p.age + 1
        return pugs

    def w7(self, ctx: dict[str, Any]) -> Any:
        Owner = self.classes.Owner
        with self.Session.begin() as s:
            owners = s.scalars(sa.select(Owner).where(Owner.id.in_(ctx["victims"]))).all()
            for o in owners:
                s.delete(o)
        return len(owners)

    def w7q(self, ctx: dict[str, Any]) -> Any:
        Owner = self.classes.Owner
        with self.Session.begin() as s:
            result = s.execute(sa.delete(Owner).where(Owner.id.in_(ctx["victims"])))
            return result.rowcount  # type: ignore[attr-defined]

    def w8(self, ctx: dict[str, Any]) -> Any:
        Owner = self.classes.Owner
        with self.Session.begin() as s:
            get = s.get
            return [get(Owner, key) for key in ctx["keys"]]

    def w9(self, ctx: dict[str, Any]) -> Any:
        Owner = self.classes.Owner
        with self.Session.begin() as s:
            owners = s.scalars(sa.select(Owner).order_by(Owner.id)).all()
            touched = sum(len(o.pugs) for o in owners)  # default lazy="select": one query per owner
        assert touched >= 0
        return owners

    def w10(self, ctx: dict[str, Any]) -> Any:
        # SQLAlchemy 2's bulk INSERT: session.execute(insert(Class), [dict, ...]).
        with self.Session.begin() as s:
            s.execute(sa.insert(self.classes.Pug), ctx["dicts"])
        return len(ctx["dicts"])
