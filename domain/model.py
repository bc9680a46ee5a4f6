"""The seed scenarios as plain ``attrs`` classes.

This module knows nothing of persistence: it imports nothing from ``mapper`` (a unit test
holds it to that). How these classes are stored and related is said in ``domain.mappers``.

Relation attributes default to ``None`` (to-one) or an empty list (collections); generated
keys are ``None`` until the object is first flushed.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

__all__ = [
    "Owner",
    "Pug",
    "Tutorial",
    "Comment",
    "User",
    "Profile",
    "Book",
    "UserBook",
    "Category",
    "Product",
    "Order",
    "OrderItem",
    "Address",
    "Employee",
    "Shelter",
    "Animal",
    "Dog",
    "Cat",
]


# -- owners and their pugs (one-to-many) ------------------------------------------------------------


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
    id: int | None = None


# -- tutorials and their comments (one-to-many) ----------------------------------------------------


@attrs.define
class Tutorial:
    title: str
    body: str = ""
    comments: list[Comment] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Comment:
    text: str
    tutorial: Tutorial | None = None
    id: int | None = None


# -- users, profiles and books (one-to-one, many-to-many with and without payload) -----------------


@attrs.define
class User:
    name: str
    profile: Profile | None = None
    #: Ratings: association objects that carry a payload (UserBook.rating).
    user_books: list[UserBook] = attrs.Factory(list)
    #: The books this user rated, through the same association rows.
    books: list[Book] = attrs.Factory(list)
    #: Two plain many-to-many aliases between the same pair of classes.
    favorites: list[Book] = attrs.Factory(list)
    read: list[Book] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Profile:
    bio: str = ""
    user: User | None = None
    id: int | None = None


@attrs.define
class Book:
    title: str
    user_books: list[UserBook] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class UserBook:
    """A user's rating of a book: an association row with a payload."""

    user: User | None = None
    book: Book | None = None
    rating: int | None = None
    id: int | None = None


# -- a product catalogue with a category tree (self-reference) -------------------------------------


@attrs.define
class Category:
    name: str
    parent: Category | None = None
    children: list[Category] = attrs.Factory(list)
    products: list[Product] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Product:
    name: str
    price: Decimal = Decimal("0.00")
    category: Category | None = None
    id: int | None = None


# -- orders, their items and the products they refer to (nested one-to-many / many-to-one) --------


@attrs.frozen
class Address:
    """A value object: no identity of its own, equal when its fields are."""

    street: str
    city: str
    postcode: str


@attrs.define
class Order:
    customer: str
    status: str = "open"
    items: list[OrderItem] = attrs.Factory(list)
    shipping: Address | None = None
    id: int | None = None


@attrs.define
class OrderItem:
    product: Product | None = None
    quantity: int = 1
    order: Order | None = None
    id: int | None = None


# -- employees and their manager (self-reference) --------------------------------------------------


@attrs.define
class Employee:
    name: str
    manager: Employee | None = None
    reports: list[Employee] = attrs.Factory(list)
    id: int | None = None


# -- a shelter's animals: dogs and cats (a class hierarchy in one table) --------------------------


@attrs.define
class Shelter:
    name: str
    animals: list[Animal] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Animal:
    name: str
    shelter: Shelter | None = None
    id: int | None = None


@attrs.define
class Dog(Animal):
    breed: str | None = None


@attrs.define
class Cat(Animal):
    indoor: bool = True
