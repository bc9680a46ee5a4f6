"""How the seed scenarios of ``domain.model`` are stored: one mapper per domain class.

Foreign-key columns are declared explicitly; those the domain class has no attribute for
(``owner_id``, ``tutorial_id``, ...) are hidden columns whose value the session derives from
the relation. ``ALL_MAPPERS`` lists every mapper, for ``Database(url, mappers=ALL_MAPPERS)``.
"""

from __future__ import annotations

from mapper import BelongsTo, BelongsToMany, Column, Embedded, ForeignKey, HasMany, HasOne, Mapper
from mapper import types as t

from .model import (
    Address,
    Book,
    Category,
    Comment,
    Employee,
    Order,
    OrderItem,
    Owner,
    Product,
    Profile,
    Pug,
    Tutorial,
    User,
    UserBook,
)
from .model import Animal, Cat, Dog, Shelter

__all__ = [
    "OwnerMapper",
    "PugMapper",
    "TutorialMapper",
    "CommentMapper",
    "UserMapper",
    "ProfileMapper",
    "BookMapper",
    "UserBookMapper",
    "CategoryMapper",
    "ProductMapper",
    "OrderMapper",
    "OrderItemMapper",
    "EmployeeMapper",
    "ShelterMapper",
    "AnimalMapper",
    "DogMapper",
    "CatMapper",
    "ALL_MAPPERS",
]


# -- owners and pugs --------------------------------------------------------------------------------


class OwnerMapper(Mapper[Owner]):
    table = "owners"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    pugs = HasMany(Pug, foreign_key="owner_id", inverse="owner", cascade="all", order_by="id")


class PugMapper(Mapper[Pug]):
    table = "pugs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    age = Column(t.Integer, nullable=False, default=0)
    owner_id = Column(t.Integer, ForeignKey("owners.id", on_delete="CASCADE"), index=True)
    owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")


# -- tutorials and comments -------------------------------------------------------------------------


class TutorialMapper(Mapper[Tutorial]):
    table = "tutorials"
    timestamps = True  # hidden created_at / updated_at, set by the flush
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(200), nullable=False)
    body = Column(t.Text, nullable=False, default="")
    comments = HasMany(Comment, foreign_key="tutorial_id", inverse="tutorial", cascade="all", order_by="id")


class CommentMapper(Mapper[Comment]):
    table = "comments"
    id = Column(t.Integer, primary_key=True)
    text = Column(t.Text, nullable=False)
    tutorial_id = Column(t.Integer, ForeignKey("tutorials.id", on_delete="CASCADE"), nullable=False, index=True)
    tutorial = BelongsTo(Tutorial, foreign_key="tutorial_id", inverse="comments")


# -- users, profiles, books -------------------------------------------------------------------------


class UserMapper(Mapper[User]):
    table = "users"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False, unique=True)
    profile = HasOne(Profile, foreign_key="user_id", inverse="user", cascade="all")
    # The association rows, which carry the rating, belong to the user.
    user_books = HasMany(UserBook, foreign_key="user_id", inverse="user", cascade="all", order_by="id")
    # The rated books themselves, through the same association class.
    books = BelongsToMany(Book, through=UserBook, foreign_key="user_id", other_key="book_id", order_by="title")
    # Two plain many-to-many aliases between User and Book, each through its own junction table.
    favorites = BelongsToMany(Book, through="user_favorites", foreign_key="user_id", other_key="book_id", order_by="title")
    read = BelongsToMany(Book, through="user_read", foreign_key="user_id", other_key="book_id", order_by="title")


class ProfileMapper(Mapper[Profile]):
    table = "profiles"
    id = Column(t.Integer, primary_key=True)
    bio = Column(t.Text, nullable=False, default="")
    # unique: at most one profile per user (one-to-one).
    user_id = Column(t.Integer, ForeignKey("users.id", on_delete="CASCADE"), nullable=False, unique=True)
    user = BelongsTo(User, foreign_key="user_id", inverse="profile")


class BookMapper(Mapper[Book]):
    table = "books"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(200), nullable=False)
    user_books = HasMany(UserBook, foreign_key="book_id", inverse="book", cascade="save, delete", order_by="id")


class UserBookMapper(Mapper[UserBook]):
    table = "user_books"
    id = Column(t.Integer, primary_key=True)
    user_id = Column(t.Integer, ForeignKey("users.id", on_delete="CASCADE"), nullable=False, index=True)
    book_id = Column(t.Integer, ForeignKey("books.id", on_delete="CASCADE"), nullable=False, index=True)
    rating = Column(t.SmallInteger)
    user = BelongsTo(User, foreign_key="user_id", inverse="user_books")
    book = BelongsTo(Book, foreign_key="book_id", inverse="user_books")


# -- categories and products ------------------------------------------------------------------------


class CategoryMapper(Mapper[Category]):
    table = "categories"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    parent_id = Column(t.Integer, ForeignKey("categories.id", on_delete="SET NULL"), index=True)
    parent = BelongsTo(Category, foreign_key="parent_id", inverse="children")
    children = HasMany(Category, foreign_key="parent_id", inverse="parent", order_by="name")
    products = HasMany(Product, foreign_key="category_id", inverse="category", order_by="name")


class ProductMapper(Mapper[Product]):
    table = "products"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    price = Column(t.Numeric(10, 2), nullable=False)
    category_id = Column(t.Integer, ForeignKey("categories.id", on_delete="SET NULL"), index=True)
    category = BelongsTo(Category, foreign_key="category_id", inverse="products")


# -- orders and their items -------------------------------------------------------------------------


class OrderMapper(Mapper[Order]):
    table = "orders"
    id = Column(t.Integer, primary_key=True)
    customer = Column(t.String(100), nullable=False)
    status = Column(t.String(20), nullable=False, default="open")
    # Optimistic lock: every UPDATE and DELETE of an order checks and bumps it (hidden column).
    version = Column(t.Integer, nullable=False, version=True, hidden=True)
    items = HasMany(OrderItem, foreign_key="order_id", inverse="order", cascade="all", order_by="id")
    # A value object in three columns (ship_street, ship_city, ship_postcode), all NULL while
    # the order has no address (Order.shipping is Optional).
    shipping = Embedded(Address, prefix="ship_", columns={"street": t.String(100), "city": t.String(50), "postcode": t.String(10)})


class OrderItemMapper(Mapper[OrderItem]):
    table = "order_items"
    id = Column(t.Integer, primary_key=True)
    order_id = Column(t.Integer, ForeignKey("orders.id", on_delete="CASCADE"), nullable=False, index=True)
    product_id = Column(t.Integer, ForeignKey("products.id", on_delete="RESTRICT"), nullable=False, index=True)
    quantity = Column(t.Integer, nullable=False, default=1)
    order = BelongsTo(Order, foreign_key="order_id", inverse="items")
    product = BelongsTo(Product, foreign_key="product_id")


# -- employees --------------------------------------------------------------------------------------


class EmployeeMapper(Mapper[Employee]):
    table = "employees"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    manager_id = Column(t.Integer, ForeignKey("employees.id", on_delete="SET NULL"), index=True)
    manager = BelongsTo(Employee, foreign_key="manager_id", inverse="reports")
    reports = HasMany(Employee, foreign_key="manager_id", inverse="manager", order_by="name")


# -- shelters and their animals (single-table inheritance) --------------------------------------


class ShelterMapper(Mapper[Shelter]):
    table = "shelters"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    animals = HasMany(Animal, inverse="shelter", cascade="all", order_by="id")


class AnimalMapper(Mapper[Animal]):
    """Dogs and cats share the ``animals`` table; ``kind`` says which class each row is."""

    table = "animals"
    discriminator = "kind"
    id = Column(t.Integer, primary_key=True)
    kind = Column(t.String(10), nullable=False)
    name = Column(t.String(100), nullable=False)
    shelter = BelongsTo(Shelter, inverse="animals")


class DogMapper(AnimalMapper, Mapper[Dog]):
    discriminator_value = "dog"
    breed = Column(t.String(50))


class CatMapper(AnimalMapper, Mapper[Cat]):
    discriminator_value = "cat"
    indoor = Column(t.Boolean, nullable=False, default=True)


ALL_MAPPERS: list[type[Mapper]] = [  # type: ignore[type-arg]
    OwnerMapper,
    PugMapper,
    TutorialMapper,
    CommentMapper,
    UserMapper,
    ProfileMapper,
    BookMapper,
    UserBookMapper,
    CategoryMapper,
    ProductMapper,
    OrderMapper,
    OrderItemMapper,
    EmployeeMapper,
    ShelterMapper,
    AnimalMapper,
    DogMapper,
    CatMapper,
]
