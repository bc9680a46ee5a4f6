"""Chinook's music store as plain ``attrs`` classes: persistence-free, imports nothing from ``mapper``.

Artist 1-N Album 1-N Track; Track N-1 Genre, N-1 MediaType; Playlist N-M Track; Customer 1-N
Invoice 1-N InvoiceLine N-1 Track; Customer N-1 Employee (support rep); Employee N-1 Employee
(manager, with its reports). Money is ``Decimal``, dates are ``datetime``. Relation attributes
default to ``None`` (to-one) or an empty list (collections); keys are ``None`` until flushed
unless given.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import attrs

__all__ = [
    "Artist",
    "Album",
    "Genre",
    "MediaType",
    "Track",
    "Playlist",
    "Employee",
    "Customer",
    "Invoice",
    "InvoiceLine",
]


@attrs.define
class Artist:
    name: str | None = None
    albums: list[Album] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Album:
    title: str
    artist: Artist | None = None
    tracks: list[Track] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Genre:
    name: str | None = None
    id: int | None = None


@attrs.define
class MediaType:
    name: str | None = None
    id: int | None = None


@attrs.define
class Track:
    name: str
    milliseconds: int
    unit_price: Decimal
    album: Album | None = None
    media_type: MediaType | None = None
    genre: Genre | None = None
    composer: str | None = None
    bytes: int | None = None
    id: int | None = None


@attrs.define
class Playlist:
    name: str | None = None
    tracks: list[Track] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Employee:
    last_name: str
    first_name: str
    title: str | None = None
    manager: Employee | None = None
    reports: list[Employee] = attrs.Factory(list)
    birth_date: datetime | None = None
    hire_date: datetime | None = None
    address: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    postal_code: str | None = None
    phone: str | None = None
    fax: str | None = None
    email: str | None = None
    customers: list[Customer] = attrs.Factory(list)
    id: int | None = None

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@attrs.define
class Customer:
    first_name: str
    last_name: str
    email: str
    company: str | None = None
    address: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    postal_code: str | None = None
    phone: str | None = None
    fax: str | None = None
    support_rep: Employee | None = None
    invoices: list[Invoice] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Invoice:
    invoice_date: datetime
    total: Decimal
    customer: Customer | None = None
    billing_address: str | None = None
    billing_city: str | None = None
    billing_state: str | None = None
    billing_country: str | None = None
    billing_postal_code: str | None = None
    lines: list[InvoiceLine] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class InvoiceLine:
    unit_price: Decimal
    quantity: int
    invoice: Invoice | None = None
    track: Track | None = None
    id: int | None = None

    @property
    def amount(self) -> Decimal:
        return self.unit_price * self.quantity
