"""Load the bundled Chinook data through the framework: domain objects, one unit of work.

``data/chinook.json`` holds every table of Chinook 1.4.5 (converted once from
``Chinook_Sqlite_AutoIncrementPKs.sql`` of lerocha/chinook-database, MIT; see
``data/LICENSE.md``) as ``{"tables": {name: {"columns": [...], "rows": [[...], ...]}}}``
with explicit keys, money as decimal strings and dates as ``YYYY-MM-DD HH:MM:SS``.
Strings are kept byte for byte, including customer 54's city ``"Edinburgh "`` with its
trailing space and the backslash in the name of track 3448.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .model import Album, Artist, Customer, Employee, Genre, Invoice, InvoiceLine, MediaType, Playlist, Track

__all__ = ["DATA_FILE", "read_chinook", "build_chinook", "load_chinook"]

#: The bundled data, located next to this module (no package-data configuration needed).
DATA_FILE = Path(__file__).resolve().parent / "data" / "chinook.json"

#: The order of tables in the result of ``load_chinook``.
TABLES = (
    "artist",
    "album",
    "genre",
    "media_type",
    "track",
    "playlist",
    "playlist_track",
    "employee",
    "customer",
    "invoice",
    "invoice_line",
)


def read_chinook(path: Path = DATA_FILE) -> dict[str, list[dict[str, Any]]]:
    """The bundled tables as lists of row dicts (column name -> JSON value)."""
    tables = json.loads(path.read_text(encoding="utf-8"))["tables"]
    return {name: [dict(zip(t["columns"], row)) for row in t["rows"]] for name, t in tables.items()}


def _date(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _money(value: str) -> Decimal:
    return Decimal(value)


def build_chinook(tables: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, list[Any]]:
    """Domain objects for every row, with explicit keys and both sides of every relation set.

    Returns the objects by table; ``"playlist_track"`` is not a class and has no entry
    (its rows are the ``Playlist.tracks`` lists).
    """
    t = read_chinook() if tables is None else tables
    artists = {r["id"]: Artist(name=r["name"], id=r["id"]) for r in t["artist"]}
    genres = {r["id"]: Genre(name=r["name"], id=r["id"]) for r in t["genre"]}
    media_types = {r["id"]: MediaType(name=r["name"], id=r["id"]) for r in t["media_type"]}

    albums: dict[int, Album] = {}
    for r in t["album"]:
        artist = artists[r["artist_id"]]
        album = albums[r["id"]] = Album(title=r["title"], artist=artist, id=r["id"])
        artist.albums.append(album)

    tracks: dict[int, Track] = {}
    for r in t["track"]:
        album = albums[r["album_id"]] if r["album_id"] is not None else None
        track = tracks[r["id"]] = Track(
            name=r["name"],
            milliseconds=r["milliseconds"],
            unit_price=_money(r["unit_price"]),
            album=album,
            media_type=media_types[r["media_type_id"]],
            genre=genres[r["genre_id"]] if r["genre_id"] is not None else None,
            composer=r["composer"],
            bytes=r["bytes"],
            id=r["id"],
        )
        if album is not None:
            album.tracks.append(track)

    playlists = {r["id"]: Playlist(name=r["name"], id=r["id"]) for r in t["playlist"]}
    for r in t["playlist_track"]:
        playlists[r["playlist_id"]].tracks.append(tracks[r["track_id"]])

    employees: dict[int, Employee] = {}
    for r in t["employee"]:
        fields = {k: v for k, v in r.items() if k not in ("reports_to", "birth_date", "hire_date")}
        employees[r["id"]] = Employee(**fields, birth_date=_date(r["birth_date"]), hire_date=_date(r["hire_date"]))
    for r in t["employee"]:
        if r["reports_to"] is not None:
            manager = employees[r["reports_to"]]
            employees[r["id"]].manager = manager
            manager.reports.append(employees[r["id"]])

    customers: dict[int, Customer] = {}
    for r in t["customer"]:
        fields = {k: v for k, v in r.items() if k != "support_rep_id"}
        rep = employees[r["support_rep_id"]] if r["support_rep_id"] is not None else None
        customer = customers[r["id"]] = Customer(**fields, support_rep=rep)
        if rep is not None:
            rep.customers.append(customer)

    invoices: dict[int, Invoice] = {}
    for r in t["invoice"]:
        fields = {k: v for k, v in r.items() if k not in ("customer_id", "invoice_date", "total")}
        customer = customers[r["customer_id"]]
        invoice = invoices[r["id"]] = Invoice(
            **fields, invoice_date=_date(r["invoice_date"]), total=_money(r["total"]), customer=customer
        )
        customer.invoices.append(invoice)

    lines: list[InvoiceLine] = []
    for r in t["invoice_line"]:
        invoice = invoices[r["invoice_id"]]
        line = InvoiceLine(
            unit_price=_money(r["unit_price"]),
            quantity=r["quantity"],
            invoice=invoice,
            track=tracks[r["track_id"]],
            id=r["id"],
        )
        invoice.lines.append(line)
        lines.append(line)

    return {
        "artist": list(artists.values()),
        "album": list(albums.values()),
        "genre": list(genres.values()),
        "media_type": list(media_types.values()),
        "track": list(tracks.values()),
        "playlist": list(playlists.values()),
        "employee": list(employees.values()),
        "customer": list(customers.values()),
        "invoice": list(invoices.values()),
        "invoice_line": lines,
    }


def load_chinook(db: Any) -> dict[str, int]:
    """Insert the whole Chinook data set into ``db`` (tables created) in one unit of work.

    Every object is added to one session and written by one flush, which orders the inserts
    by the foreign keys (artist before album before track, managers before their reports) and
    writes the ``playlist_track`` junction rows from ``Playlist.tracks``. The session commits
    on exit. Returns the number of rows of each table, counted in the database afterwards in
    the same transaction.
    """
    from .mappers import CHINOOK_MAPPERS

    objects = build_chinook()
    classes = {m.table: m.__domain__ for m in CHINOOK_MAPPERS}
    with db.session() as s:
        for name in TABLES:
            if name in objects:
                s.add_all(objects[name])
        s.flush()
        counts: dict[str, int] = {}
        for name in TABLES:
            if name in classes:
                counts[name] = s.query(classes[name]).count()
            else:
                counts[name] = s.execute(f"SELECT count(*) FROM {name}")[0][0]
    return counts
