"""How the Chinook classes of ``domain.chinook.model`` are stored.

Tables and columns follow Chinook's PostgreSQL scripts (snake_case, ``album.album_id``); the
domain attribute of every primary key is ``id``. Foreign-key columns are hidden: their values
come from the relations. Money is ``Numeric(10, 2)`` (``Decimal``), dates are ``DateTime``.
``CHINOOK_MAPPERS`` lists every mapper, for ``Database(url, mappers=CHINOOK_MAPPERS)``.
"""

from __future__ import annotations

from typing import Any

from mapper import BelongsTo, BelongsToMany, Column, ForeignKey, HasMany, Mapper
from mapper import types as t

from .model import Album, Artist, Customer, Employee, Genre, Invoice, InvoiceLine, MediaType, Playlist, Track

__all__ = [
    "ArtistMapper",
    "AlbumMapper",
    "GenreMapper",
    "MediaTypeMapper",
    "TrackMapper",
    "PlaylistMapper",
    "EmployeeMapper",
    "CustomerMapper",
    "InvoiceMapper",
    "InvoiceLineMapper",
    "CHINOOK_MAPPERS",
]


class ArtistMapper(Mapper[Artist]):
    table = "artist"
    id = Column(t.Integer, primary_key=True, name="artist_id")
    name = Column(t.String(120))
    albums = HasMany(Album, foreign_key="artist_id", inverse="artist", order_by="id")


class AlbumMapper(Mapper[Album]):
    table = "album"
    id = Column(t.Integer, primary_key=True, name="album_id")
    title = Column(t.String(160), nullable=False)
    artist_id = Column(t.Integer, ForeignKey("artist.artist_id"), nullable=False, index=True)
    artist = BelongsTo(Artist, foreign_key="artist_id", inverse="albums")
    tracks = HasMany(Track, foreign_key="album_id", inverse="album", order_by="id")


class GenreMapper(Mapper[Genre]):
    table = "genre"
    id = Column(t.Integer, primary_key=True, name="genre_id")
    name = Column(t.String(120))


class MediaTypeMapper(Mapper[MediaType]):
    table = "media_type"
    id = Column(t.Integer, primary_key=True, name="media_type_id")
    name = Column(t.String(120))


class TrackMapper(Mapper[Track]):
    table = "track"
    id = Column(t.Integer, primary_key=True, name="track_id")
    name = Column(t.String(200), nullable=False)
    album_id = Column(t.Integer, ForeignKey("album.album_id"), index=True)
    media_type_id = Column(t.Integer, ForeignKey("media_type.media_type_id"), nullable=False, index=True)
    genre_id = Column(t.Integer, ForeignKey("genre.genre_id"), index=True)
    composer = Column(t.String(220))
    milliseconds = Column(t.Integer, nullable=False)
    bytes = Column(t.Integer)
    unit_price = Column(t.Numeric(10, 2), nullable=False)
    album = BelongsTo(Album, foreign_key="album_id", inverse="tracks")
    media_type = BelongsTo(MediaType, foreign_key="media_type_id")
    genre = BelongsTo(Genre, foreign_key="genre_id")


class PlaylistMapper(Mapper[Playlist]):
    table = "playlist"
    id = Column(t.Integer, primary_key=True, name="playlist_id")
    name = Column(t.String(120))
    #: The junction ``playlist_track`` (playlist_id, track_id) is created from this declaration.
    tracks = BelongsToMany(Track, through="playlist_track", foreign_key="playlist_id", other_key="track_id", order_by="id")


class EmployeeMapper(Mapper[Employee]):
    table = "employee"
    id = Column(t.Integer, primary_key=True, name="employee_id")
    last_name = Column(t.String(20), nullable=False)
    first_name = Column(t.String(20), nullable=False)
    title = Column(t.String(30))
    reports_to = Column(t.Integer, ForeignKey("employee.employee_id"), index=True)
    birth_date = Column(t.DateTime)
    hire_date = Column(t.DateTime)
    address = Column(t.String(70))
    city = Column(t.String(40))
    state = Column(t.String(40))
    country = Column(t.String(40))
    postal_code = Column(t.String(10))
    phone = Column(t.String(24))
    fax = Column(t.String(24))
    email = Column(t.String(60))
    manager = BelongsTo(Employee, foreign_key="reports_to", inverse="reports")
    reports = HasMany(Employee, foreign_key="reports_to", inverse="manager", order_by="id")
    customers = HasMany(Customer, foreign_key="support_rep_id", inverse="support_rep", order_by="id")


class CustomerMapper(Mapper[Customer]):
    table = "customer"
    id = Column(t.Integer, primary_key=True, name="customer_id")
    first_name = Column(t.String(40), nullable=False)
    last_name = Column(t.String(20), nullable=False)
    company = Column(t.String(80))
    address = Column(t.String(70))
    city = Column(t.String(40))
    state = Column(t.String(40))
    country = Column(t.String(40))
    postal_code = Column(t.String(10))
    phone = Column(t.String(24))
    fax = Column(t.String(24))
    email = Column(t.String(60), nullable=False)
    support_rep_id = Column(t.Integer, ForeignKey("employee.employee_id"), index=True)
    support_rep = BelongsTo(Employee, foreign_key="support_rep_id", inverse="customers")
    invoices = HasMany(Invoice, foreign_key="customer_id", inverse="customer", order_by="id")


class InvoiceMapper(Mapper[Invoice]):
    table = "invoice"
    id = Column(t.Integer, primary_key=True, name="invoice_id")
    customer_id = Column(t.Integer, ForeignKey("customer.customer_id"), nullable=False, index=True)
    invoice_date = Column(t.DateTime, nullable=False)
    billing_address = Column(t.String(70))
    billing_city = Column(t.String(40))
    billing_state = Column(t.String(40))
    billing_country = Column(t.String(40))
    billing_postal_code = Column(t.String(10))
    total = Column(t.Numeric(10, 2), nullable=False)
    customer = BelongsTo(Customer, foreign_key="customer_id", inverse="invoices")
    lines = HasMany(InvoiceLine, foreign_key="invoice_id", inverse="invoice", order_by="id")


class InvoiceLineMapper(Mapper[InvoiceLine]):
    table = "invoice_line"
    id = Column(t.Integer, primary_key=True, name="invoice_line_id")
    invoice_id = Column(t.Integer, ForeignKey("invoice.invoice_id"), nullable=False, index=True)
    track_id = Column(t.Integer, ForeignKey("track.track_id"), nullable=False, index=True)
    unit_price = Column(t.Numeric(10, 2), nullable=False)
    quantity = Column(t.Integer, nullable=False)
    invoice = BelongsTo(Invoice, foreign_key="invoice_id", inverse="lines")
    track = BelongsTo(Track, foreign_key="track_id")


CHINOOK_MAPPERS: list[type[Mapper[Any]]] = [
    ArtistMapper,
    AlbumMapper,
    GenreMapper,
    MediaTypeMapper,
    TrackMapper,
    PlaylistMapper,
    EmployeeMapper,
    CustomerMapper,
    InvoiceMapper,
    InvoiceLineMapper,
]
