"""The benchmark schema: plain attrs classes, their mapper classes, and the table names.

The classes mirror ``domain.model`` (Owner/Pug, Order/OrderItem/Product, User/UserBook/Book)
but are trimmed to what the workloads use, so that all three systems map exactly the same
columns. Every table is prefixed ``bench_`` so the benchmark never touches anything else in
the target database; the tables are created at the start of a run (by ``mapper``'s
``create_all``, the one DDL all three systems then share) and dropped at the end.

SQLAlchemy cannot map slotted attrs classes imperatively (their slot descriptors hide the
column attributes), so :func:`make_classes` can also build ``slots=False`` copies with the same
fields, defaults and order for it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import attrs

from mapper import BelongsTo, Column, ForeignKey, HasMany, Mapper
from mapper import types as t

PREFIX = "bench_"
OWNERS = PREFIX + "owners"
PUGS = PREFIX + "pugs"
PRODUCTS = PREFIX + "products"
ORDERS = PREFIX + "orders"
ORDER_ITEMS = PREFIX + "order_items"
USERS = PREFIX + "users"
BOOKS = PREFIX + "books"
USER_BOOKS = PREFIX + "user_books"

#: Children first: the order in which rows are cleared.
TABLES_CHILD_FIRST = [PUGS, OWNERS, ORDER_ITEMS, ORDERS, PRODUCTS, USER_BOOKS, USERS, BOOKS]


def make_classes(slots: bool = True) -> SimpleNamespace:
    """The eight domain classes, slotted (the default, as ``domain.model``) or not."""
    define = attrs.define(slots=slots)

    @define
    class Owner:
        name: str
        pugs: list[Any] = attrs.Factory(list)
        id: int | None = None

    @define
    class Pug:
        name: str
        age: int = 0
        owner: Any = None
        id: int | None = None

    @define
    class Product:
        name: str
        price: int = 0
        id: int | None = None

    @define
    class Order:
        customer: str
        status: str = "open"
        items: list[Any] = attrs.Factory(list)
        id: int | None = None

    @define
    class OrderItem:
        product: Any = None
        quantity: int = 1
        order: Any = None
        id: int | None = None

    @define
    class User:
        name: str
        user_books: list[Any] = attrs.Factory(list)
        id: int | None = None

    @define
    class Book:
        title: str
        id: int | None = None

    @define
    class UserBook:
        user: Any = None
        book: Any = None
        rating: int | None = None
        id: int | None = None

    return SimpleNamespace(
        Owner=Owner, Pug=Pug, Product=Product, Order=Order, OrderItem=OrderItem,
        User=User, Book=Book, UserBook=UserBook,
    )


#: The classes used by mapper and by the raw drivers.
M = make_classes(slots=True)
Owner, Pug, Product, Order, OrderItem, User, Book, UserBook = (
    M.Owner, M.Pug, M.Product, M.Order, M.OrderItem, M.User, M.Book, M.UserBook,
)


class OwnerMapper(Mapper[Owner]):  # type: ignore[valid-type]
    table = OWNERS
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    pugs = HasMany(Pug, foreign_key="owner_id", inverse="owner", cascade="all", order_by="id")


class PugMapper(Mapper[Pug]):  # type: ignore[valid-type]
    table = PUGS
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    age = Column(t.Integer, nullable=False, default=0)
    owner_id = Column(t.Integer, ForeignKey(OWNERS + ".id", on_delete="CASCADE"), index=True)
    owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")


class ProductMapper(Mapper[Product]):  # type: ignore[valid-type]
    table = PRODUCTS
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    price = Column(t.Integer, nullable=False, default=0)


class OrderMapper(Mapper[Order]):  # type: ignore[valid-type]
    table = ORDERS
    id = Column(t.Integer, primary_key=True)
    customer = Column(t.String(100), nullable=False)
    status = Column(t.String(20), nullable=False, default="open")
    items = HasMany(OrderItem, foreign_key="order_id", inverse="order", cascade="all", order_by="id")


class OrderItemMapper(Mapper[OrderItem]):  # type: ignore[valid-type]
    table = ORDER_ITEMS
    id = Column(t.Integer, primary_key=True)
    order_id = Column(t.Integer, ForeignKey(ORDERS + ".id", on_delete="CASCADE"), nullable=False, index=True)
    product_id = Column(t.Integer, ForeignKey(PRODUCTS + ".id", on_delete="RESTRICT"), nullable=False, index=True)
    quantity = Column(t.Integer, nullable=False, default=1)
    order = BelongsTo(Order, foreign_key="order_id", inverse="items")
    product = BelongsTo(Product, foreign_key="product_id")


class UserMapper(Mapper[User]):  # type: ignore[valid-type]
    table = USERS
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    user_books = HasMany(UserBook, foreign_key="user_id", inverse="user", cascade="all", order_by="id")


class BookMapper(Mapper[Book]):  # type: ignore[valid-type]
    table = BOOKS
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(200), nullable=False)


class UserBookMapper(Mapper[UserBook]):  # type: ignore[valid-type]
    table = USER_BOOKS
    id = Column(t.Integer, primary_key=True)
    user_id = Column(t.Integer, ForeignKey(USERS + ".id", on_delete="CASCADE"), nullable=False, index=True)
    book_id = Column(t.Integer, ForeignKey(BOOKS + ".id", on_delete="CASCADE"), nullable=False, index=True)
    rating = Column(t.SmallInteger)
    user = BelongsTo(User, foreign_key="user_id", inverse="user_books")
    book = BelongsTo(Book, foreign_key="book_id")


MAPPERS: list[type[Mapper[Any]]] = [
    OwnerMapper, PugMapper, ProductMapper, OrderMapper, OrderItemMapper, UserMapper, BookMapper, UserBookMapper,
]
