"""Domain classes and mappers for the relation tests, plus raw-SQL helpers to inspect the schema.

The domain classes are plain attrs classes that import nothing from ``mapper``. Tables are
prefixed ``rel_`` so they never meet the tables of other test modules.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from mapper import BelongsTo, BelongsToMany, Column, ForeignKey, HasMany, HasOne, Mapper
from mapper import types as t

# -- owners, pugs, toys: the seed scenario -------------------------------------------------------


@attrs.define
class Owner:
    name: str
    pugs: list[Pug] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Pug:
    name: str
    age: int = 0
    owner: Owner | None = None
    toys: list[Toy] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Toy:
    name: str
    pug: Pug | None = None
    id: int | None = None


class OwnerMapper(Mapper[Owner]):
    table = "rel_owners"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    pugs = HasMany("Pug", foreign_key="owner_id", inverse="owner", cascade="all", order_by="id")


class PugMapper(Mapper[Pug]):
    table = "rel_pugs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    age = Column(t.Integer, default=0)
    owner_id = Column(t.Integer, ForeignKey("rel_owners.id", on_delete="CASCADE"), index=True)
    owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")
    toys = HasMany("Toy", inverse="pug", cascade="all", order_by="id")


class ToyMapper(Mapper[Toy]):
    table = "rel_toys"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    pug = BelongsTo("Pug", inverse="toys")  # derived hidden key pug_id, no database rule


PETS = (OwnerMapper, PugMapper, ToyMapper)

# -- orders, items, products: nested paths -------------------------------------------------------


@attrs.define
class Product:
    name: str
    id: int | None = None


@attrs.define
class Order:
    number: str
    items: list[Item] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Item:
    qty: int
    order: Order | None = None
    product: Product | None = None
    id: int | None = None


class ProductMapper(Mapper[Product]):
    table = "rel_products"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)


class OrderMapper(Mapper[Order]):
    table = "rel_orders"
    id = Column(t.Integer, primary_key=True)
    number = Column(t.String(20), nullable=False)
    items = HasMany("Item", inverse="order", cascade="all", order_by="id")


class ItemMapper(Mapper[Item]):
    table = "rel_items"
    id = Column(t.Integer, primary_key=True)
    qty = Column(t.Integer, nullable=False)
    order = BelongsTo(Order, inverse="items")
    product = BelongsTo(Product)


SHOP = (ProductMapper, OrderMapper, ItemMapper)

# -- users, profiles, books: has-one and many-to-many ---------------------------------------------


@attrs.define
class User:
    name: str
    profile: Profile | None = None
    favorites: list[Book] = attrs.Factory(list)
    read: list[Book] = attrs.Factory(list)
    books: list[Book] = attrs.Factory(list)
    user_books: list[UserBook] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Profile:
    bio: str
    user: User | None = None
    id: int | None = None


@attrs.define
class Book:
    title: str
    fans: list[User] = attrs.Factory(list)
    readers: list[User] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class UserBook:
    user: User | None = None
    book: Book | None = None
    rating: int | None = None
    id: int | None = None


class UserMapper(Mapper[User]):
    table = "rel_users"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    profile = HasOne("Profile", inverse="user", cascade="all")
    favorites = BelongsToMany("Book", through="rel_user_favorites", inverse="fans", order_by="title")
    read = BelongsToMany("Book", through="rel_user_read", inverse="readers", order_by="title")
    books = BelongsToMany("Book", through="UserBook", foreign_key="user_id", other_key="book_id", order_by="title")
    user_books = HasMany("UserBook", foreign_key="user_id", inverse="user", cascade="all", order_by="id")


class ProfileMapper(Mapper[Profile]):
    table = "rel_profiles"
    id = Column(t.Integer, primary_key=True)
    bio = Column(t.Text, nullable=False)
    user = BelongsTo(User, inverse="profile")  # derived hidden key user_id


class BookMapper(Mapper[Book]):
    table = "rel_books"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(100), nullable=False)
    fans = BelongsToMany(User, through="rel_user_favorites", inverse="favorites", order_by="name")
    readers = BelongsToMany(User, through="rel_user_read", inverse="read", order_by="name")


class UserBookMapper(Mapper[UserBook]):
    table = "rel_user_books"
    id = Column(t.Integer, primary_key=True)
    user_id = Column(t.Integer, ForeignKey("rel_users.id", on_delete="CASCADE"), nullable=False)
    book_id = Column(t.Integer, ForeignKey("rel_books.id", on_delete="CASCADE"), nullable=False)
    rating = Column(t.Integer, default=3)
    user = BelongsTo(User, foreign_key="user_id", inverse="user_books")
    book = BelongsTo(Book, foreign_key="book_id")


LIBRARY = (UserMapper, ProfileMapper, BookMapper, UserBookMapper)

# -- self references -------------------------------------------------------------------------------


@attrs.define
class Category:
    name: str
    parent: Category | None = None
    children: list[Category] = attrs.Factory(list)
    id: int | None = None


class CategoryMapper(Mapper[Category]):
    table = "rel_categories"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    parent = BelongsTo("Category", inverse="children")
    children = HasMany("Category", inverse="parent", order_by="name")


@attrs.define
class Employee:
    name: str
    manager: Employee | None = None
    id: int | None = None


class EmployeeMapper(Mapper[Employee]):
    table = "rel_employees"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    manager_id = Column(t.Integer, ForeignKey("rel_employees.id"))
    manager = BelongsTo("Employee", foreign_key="manager_id")


# -- natural and composite keys --------------------------------------------------------------------


@attrs.define
class Country:
    code: str
    name: str
    cities: list[City] = attrs.Factory(list)


@attrs.define
class City:
    name: str
    country: Country | None = None
    country_code: str | None = None
    id: int | None = None


@attrs.define
class Town:
    name: str
    country: Country | None = None
    id: int | None = None


class CountryMapper(Mapper[Country]):
    table = "rel_countries"
    code = Column(t.String(8), primary_key=True)
    name = Column(t.String(50), nullable=False)
    cities = HasMany("City", foreign_key="country_code", inverse="country", order_by="name")


class CityMapper(Mapper[City]):
    table = "rel_cities"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    country_code = Column(t.String(8), ForeignKey("rel_countries.code", on_update="CASCADE"))
    country = BelongsTo(Country, foreign_key="country_code", inverse="cities")


class TownMapper(Mapper[Town]):
    table = "rel_towns"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    # A declared column the domain class lacks: hidden, its value lives in the session.
    country_code = Column(t.String(8), ForeignKey("rel_countries.code", on_update="CASCADE"))
    country = BelongsTo(Country, foreign_key="country_code")


@attrs.define
class Shelf:
    room: str
    number: int
    label: str
    boxes: list[Box] = attrs.Factory(list)


@attrs.define
class Box:
    content: str
    shelf: Shelf | None = None
    id: int | None = None


class ShelfMapper(Mapper[Shelf]):
    table = "rel_shelves"
    room = Column(t.String(20), primary_key=True)
    number = Column(t.Integer, primary_key=True)
    label = Column(t.String(50), nullable=False)
    boxes = HasMany("Box", foreign_key=("shelf_room", "shelf_number"), inverse="shelf", order_by="id")


class BoxMapper(Mapper[Box]):
    table = "rel_boxes"
    id = Column(t.Integer, primary_key=True)
    content = Column(t.String(50), nullable=False)
    shelf = BelongsTo(Shelf, foreign_key=("shelf_room", "shelf_number"), inverse="boxes")


# -- set collections (members hash by identity) ----------------------------------------------------


@attrs.define(eq=False)
class Tag:
    label: str
    post: Post | None = None
    id: int | None = None


@attrs.define
class Post:
    title: str
    tags: set[Tag] = attrs.Factory(set)
    id: int | None = None


class PostMapper(Mapper[Post]):
    table = "rel_posts"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(50), nullable=False)
    tags = HasMany("Tag", collection=set, inverse="post")


class TagMapper(Mapper[Tag]):
    table = "rel_tags"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(50), nullable=False)
    post = BelongsTo(Post, inverse="tags")


# -- raw-SQL helpers ------------------------------------------------------------------------------


def rows(backend: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows through the bare driver; ``{name}`` in ``sql`` is replaced by the quoted identifier."""
    text = re.sub(r"\{(\w+)\}", lambda m: backend.q(m.group(1)), sql)
    found: list[tuple[Any, ...]] = backend.raw(text, params)
    return found


def column_type(backend: Any, table: str, column: str) -> str | None:
    """The lower-cased declared type of a column as the database reports it, None if absent."""
    if backend.name == "sqlite":
        for _cid, name, type_, *_ in backend.raw(f"PRAGMA table_info({backend.q(table)})"):
            if name == column:
                return str(type_).lower()
        return None
    if backend.name == "postgresql":
        found = backend.raw(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? AND column_name = ?",
            (table, column),
        )
    else:
        found = backend.raw(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?",
            (table, column),
        )
    return str(found[0][0]).lower() if found else None


def fk_rules(backend: Any, table: str) -> dict[tuple[str, ...], tuple[str, str, str]]:
    """Foreign keys of a table: (columns) -> (referenced table, ON DELETE rule, ON UPDATE rule).

    Rules are upper-case SQL words; "no rule" reads "NO ACTION" (or "RESTRICT" on MySQL).
    """
    out: dict[tuple[str, ...], tuple[str, str, str]] = {}
    if backend.name == "sqlite":
        groups: dict[int, list[Any]] = {}
        for fid, _seq, ref, col, _to, on_update, on_delete, _match in backend.raw(
            f"PRAGMA foreign_key_list({backend.q(table)})"
        ):
            groups.setdefault(fid, []).append((col, ref, on_delete, on_update))
        for items in groups.values():
            out[tuple(i[0] for i in items)] = (items[0][1], items[0][2].upper(), items[0][3].upper())
        return out
    if backend.name == "postgresql":
        words = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
        found = backend.raw(
            "SELECT c.confrelid::regclass::text, c.confdeltype::text, c.confupdtype::text, "
            "(SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY AS k(n, ord) "
            " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n) "
            "FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid = ?::regclass",
            (table,),
        )
        for ref, on_delete, on_update, cols in found:
            out[tuple(cols)] = (ref.strip('"'), words[on_delete], words[on_update])
        return out
    found = backend.raw(
        "SELECT rc.constraint_name, kcu.column_name, rc.referenced_table_name, rc.delete_rule, rc.update_rule "
        "FROM information_schema.referential_constraints rc "
        "JOIN information_schema.key_column_usage kcu ON kcu.constraint_schema = rc.constraint_schema "
        "AND kcu.constraint_name = rc.constraint_name AND kcu.table_name = rc.table_name "
        "WHERE rc.constraint_schema = DATABASE() AND rc.table_name = ? "
        "ORDER BY rc.constraint_name, kcu.ordinal_position",
        (table,),
    )
    named: dict[str, list[Any]] = {}
    for name, col, ref, on_delete, on_update in found:
        named.setdefault(name, []).append((col, ref, on_delete, on_update))
    for items in named.values():
        out[tuple(i[0] for i in items)] = (items[0][1], str(items[0][2]).upper(), str(items[0][3]).upper())
    return out


NO_RULE = ("NO ACTION", "RESTRICT")
