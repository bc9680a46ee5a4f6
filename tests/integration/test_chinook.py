"""The Chinook sample database, loaded through the framework, answering real questions.

Chinook (lerocha/chinook-database 1.4.5, MIT) is bundled in ``domain/chinook/data``. Each
backend gets a fresh Database and one load per module (``load_chinook``: domain objects, one
unit of work); the tests only read. Every answer is checked twice: against values fixed
here and against plain SQL run through the bare driver (``backend.raw``), and every read
through the framework has its exact statement count asserted.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest

from domain.chinook import load as chinook_load
from domain.chinook.load import DATA_FILE, TABLES, load_chinook, read_chinook
from domain.chinook.mappers import CHINOOK_MAPPERS, EmployeeMapper, InvoiceMapper
from domain.chinook.model import Album, Artist, Customer, Employee, Invoice, Playlist, Track
from mapper import Database
from tests.conftest import BACKENDS, REQUIRED, Backend, _unreachable

ROOT = Path(__file__).resolve().parents[2]
MONEY = {"unit_price", "total"}
DATES = {"birth_date", "hire_date", "invoice_date"}
#: Row counts of Chinook 1.4.5 (its README), checked against the database by test_load_counts.
ROWS = {
    "artist": 275,
    "album": 347,
    "genre": 25,
    "media_type": 5,
    "track": 3503,
    "playlist": 18,
    "playlist_track": 8715,
    "employee": 8,
    "customer": 59,
    "invoice": 412,
    "invoice_line": 2240,
}


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest, _servers: dict[str, str | None], tmp_path_factory: Any) -> Backend:
    """The conftest ``backend``, module-scoped so that Chinook loads once per backend."""
    name = request.param
    if name == "sqlite":
        path = tmp_path_factory.mktemp("chinook") / "chinook.db"
        return Backend("sqlite", f"sqlite:///{path}", str(path.parent))
    url = _servers[name]
    if url is None:
        reason = _unreachable.get(name, f"{name} unavailable")
        if name in REQUIRED:
            pytest.fail(f"MAPPER_REQUIRE_BACKENDS includes {name}, but {reason}")
        pytest.skip(reason)
    return Backend(name, url)


@attrs.define
class Loaded:
    db: Database
    counts: dict[str, int]


@pytest.fixture(scope="module")
def chinook(backend: Backend) -> Iterator[Loaded]:
    """A fresh Database on the backend with all of Chinook loaded through a session."""
    db = Database(backend.url, mappers=CHINOOK_MAPPERS)
    try:
        db.drop_all()
        db.create_all()
        counts = load_chinook(db)
        yield Loaded(db, counts)
    finally:
        try:
            db.drop_all()
        finally:
            db.close()


def dec(value: Any) -> Decimal:
    """A money value read with the bare driver as an exact Decimal.

    SQLite stores Numeric(10, 2) as a number (15 significant digits, so cents are exact):
    the shortest repr of the float is the stored decimal.
    """
    if isinstance(value, float):
        exact = Decimal(repr(value))
        assert exact == exact.quantize(Decimal("0.01")), f"money lost its cents: {value!r}"
        return exact.quantize(Decimal("0.01"))
    return value if isinstance(value, Decimal) else Decimal(str(value))


def when(value: Any) -> datetime | None:
    """A DATETIME read with the bare driver (datetime, or text on SQLite) as a naive datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def name_of(e: Employee) -> str:
    return f"{e.first_name} {e.last_name}"


# -- the bundled data and the package ---------------------------------------------------------------


def test_data_is_bundled_with_its_licence() -> None:
    assert DATA_FILE.is_file() and DATA_FILE.resolve().is_relative_to(ROOT / "domain" / "chinook")
    assert DATA_FILE.stat().st_size < 2_000_000
    licence = (DATA_FILE.parent / "LICENSE.md").read_text(encoding="utf-8")
    assert "Copyright (c) 2008-2024 Luis Rocha" in licence and "Permission is hereby granted" in licence
    for module in Path(chinook_load.__file__).parent.glob("*.py"):  # nothing reads ../shared at run time
        assert "shared/" not in module.read_text(encoding="utf-8"), module
    tables = read_chinook()
    assert {name: len(rows) for name, rows in tables.items()} == ROWS


def test_model_imports_nothing_from_mapper() -> None:
    model = ROOT / "domain" / "chinook" / "model.py"
    tree = ast.parse(model.read_text(encoding="utf-8"))
    modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    modules += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert "attrs" in modules
    assert not [m for m in modules if m is None or m.split(".")[0] in ("mapper", "domain")], modules
    code = "import sys, domain.chinook.model; assert not [m for m in sys.modules if m.split('.')[0] == 'mapper']"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


# -- the load ---------------------------------------------------------------------------------------


def test_load_counts(chinook: Loaded, backend: Backend) -> None:
    assert list(chinook.counts) == list(TABLES)
    assert chinook.counts == ROWS
    for table, n in ROWS.items():
        assert backend.raw(f"SELECT count(*) FROM {table}") == [(n,)], table


def test_every_row_is_stored_as_bundled(chinook: Loaded, backend: Backend) -> None:
    """Read back with plain SQL, every table equals the bundled data, value for value."""
    for table, rows in read_chinook().items():
        columns = list(rows[0])
        db_columns = [f"{table}_id" if c == "id" else c for c in columns]
        keys = ", ".join(db_columns[:2] if table == "playlist_track" else db_columns[:1])
        stored = backend.raw(f"SELECT {', '.join(db_columns)} FROM {table} ORDER BY {keys}")
        expected = []
        for row in rows:
            values = []
            for c, v in row.items():
                if v is not None and c in MONEY:
                    v = Decimal(v)
                elif v is not None and c in DATES:
                    v = datetime.fromisoformat(v)
                values.append(v)
            expected.append(tuple(values))
        normalised = [
            tuple(dec(v) if c in MONEY else when(v) if c in DATES else v for c, v in zip(columns, r))
            for r in stored
        ]
        assert normalised == expected, table


def test_quirky_strings_survive_on_every_backend(chinook: Loaded, backend: Backend, count: Any) -> None:
    """Bound parameters keep what the SQL scripts lose: Edinburgh's trailing space, track 3448's backslash."""
    with chinook.db.session() as s:
        with count(s, 2):
            steve = s.query(Customer).where(id=54).include("invoices").one()
        assert steve.city == "Edinburgh "
        assert [i.billing_city for i in steve.invoices] == ["Edinburgh "] * 7
        with count(s, 1):
            track = s.get_one(Track, 3448)
        assert track.name == "Lamentations of Jeremiah, First Set \\ Incipit Lamentatio"
        assert len(track.name) == 56
        with count(s, 1):
            ninety = s.get_one(Playlist, 5)
        assert ninety.name == "90\u2019s Music"
    assert backend.raw("SELECT city FROM customer WHERE customer_id = 54") == [("Edinburgh ",)]
    assert backend.raw("SELECT count(*) FROM invoice WHERE customer_id = 54 AND billing_city = ?", ["Edinburgh "]) == [(7,)]
    assert backend.raw("SELECT name FROM track WHERE track_id = 3448") == [(track.name,)]
    assert backend.raw("SELECT name FROM playlist WHERE playlist_id = 5") == [("90\u2019s Music",)]


# -- questions --------------------------------------------------------------------------------------


def test_total_track_count(chinook: Loaded, backend: Backend, count: Any) -> None:
    with chinook.db.session() as s:
        with count(s, 1):
            assert s.query(Track).count() == 3503
        with count(s, 1):
            assert s.query(Track).where(album_id=None).count() == 0
    assert backend.raw("SELECT count(*) FROM track") == [(3503,)]


def test_albums_per_artist_top_five(chinook: Loaded, backend: Backend, count: Any) -> None:
    expected = [("Iron Maiden", 21), ("Led Zeppelin", 14), ("Deep Purple", 11), ("Metallica", 10), ("U2", 10)]
    raw = backend.raw(
        "SELECT ar.name, count(*) FROM album al JOIN artist ar ON ar.artist_id = al.artist_id "
        "GROUP BY ar.artist_id, ar.name ORDER BY count(*) DESC, ar.name LIMIT 5"
    )
    assert raw == expected
    with chinook.db.session() as s:
        with count(s, 2):
            artists = s.query(Artist).include("albums").all()
        assert len(artists) == 275
        per_artist = sorted(((a.name, len(a.albums)) for a in artists), key=lambda p: (-p[1], p[0]))
        assert per_artist[:5] == expected
        # Artists without albums got an empty list, not an unloaded one.
        with count(s, 0):
            lonely = sorted(a.id for a in artists if a.albums == [])
            maiden = next(a for a in artists if a.name == "Iron Maiden")
            assert all(album.artist is maiden for album in maiden.albums)
        assert lonely == [r[0] for r in backend.raw(
            "SELECT artist_id FROM artist WHERE artist_id NOT IN (SELECT artist_id FROM album) ORDER BY artist_id"
        )]
        assert len(lonely) == 275 - len({r[0] for r in backend.raw("SELECT artist_id FROM album")})
        # order_by="id" on Artist.albums
        assert [a.id for a in maiden.albums] == [r[0] for r in backend.raw(
            "SELECT album_id FROM album WHERE artist_id = ? ORDER BY album_id", [maiden.id]
        )]
        with count(s, 1):
            assert s.related(maiden, "albums").count() == 21
        with count(s, 1):
            s.load(maiden.albums, "tracks")
        with count(s, 0):
            maiden_tracks = sum(len(album.tracks) for album in maiden.albums)
    assert backend.raw(
        "SELECT count(*) FROM track t JOIN album al ON al.album_id = t.album_id WHERE al.artist_id = ?", [maiden.id]
    ) == [(maiden_tracks,)]


def test_customer_invoice_totals_are_exact_decimals(chinook: Loaded, backend: Backend, count: Any) -> None:
    with chinook.db.session() as s:
        with count(s, 2):
            luis = s.query(Customer).where(id=1).include("invoices").one()
        totals = [i.total for i in luis.invoices]
        assert all(type(t) is Decimal and t.as_tuple().exponent == -2 for t in totals), totals
        assert sum(totals, Decimal(0)) == Decimal("39.62")
        assert str(sum(totals, Decimal(0))) == "39.62"
        assert all(i.customer is luis for i in luis.invoices)
    raw = backend.raw("SELECT total FROM invoice WHERE customer_id = 1 ORDER BY invoice_id")
    assert [dec(r[0]) for r in raw] == totals
    assert sum((dec(r[0]) for r in raw), Decimal(0)) == Decimal("39.62")


def test_invoice_totals_equal_the_sum_of_their_lines(chinook: Loaded, backend: Backend, count: Any) -> None:
    """Exact on every backend (Chinook's own SQLite script finds 56 float 'mismatches' here)."""
    with chinook.db.session() as s:
        with count(s, 2):
            invoices = s.query(Invoice).include("lines").order_by("id").all()
        assert len(invoices) == 412 and sum(len(i.lines) for i in invoices) == 2240
        assert [i.id for i in invoices if sum((l.amount for l in i.lines), Decimal(0)) != i.total] == []
        grand = sum((i.total for i in invoices), Decimal(0))
    assert grand == Decimal("2328.60")
    assert grand == sum((dec(r[0]) for r in backend.raw("SELECT total FROM invoice")), Decimal(0))
    by_invoice: dict[int, Decimal] = defaultdict(Decimal)
    for invoice_id, price, qty in backend.raw("SELECT invoice_id, unit_price, quantity FROM invoice_line"):
        by_invoice[invoice_id] += dec(price) * qty
    assert by_invoice == {r[0]: dec(r[1]) for r in backend.raw("SELECT invoice_id, total FROM invoice")}


def test_largest_invoices(chinook: Loaded, backend: Backend, count: Any) -> None:
    """order_by on a Numeric column sorts by value, as on a money column anywhere else."""
    everything = sorted(
        ((dec(total), invoice_id) for invoice_id, total in backend.raw("SELECT invoice_id, total FROM invoice")),
        key=lambda p: (-p[0], p[1]),
    )
    with chinook.db.session() as s:
        with count(s, 1):
            top = s.query(Invoice).order_by("-total", "id").limit(5).all()
    assert [(i.total, i.id) for i in top] == everything[:5]
    assert [i.total for i in top] == [Decimal("25.86"), Decimal("23.86"), Decimal("21.86"), Decimal("21.86"), Decimal("18.86")]


def test_invoices_of_twenty_or_more(chinook: Loaded, backend: Backend, count: Any) -> None:
    """A comparison on a Numeric column compares values."""
    expected = sorted(invoice_id for invoice_id, total in backend.raw("SELECT invoice_id, total FROM invoice") if dec(total) >= 20)
    assert len(expected) == 4
    with chinook.db.session() as s:
        with count(s, 1):
            assert s.query(Invoice).where(InvoiceMapper.total >= Decimal("20")).count() == len(expected)
        with count(s, 1):
            assert s.query(Invoice).where(InvoiceMapper.total >= Decimal("20")).order_by("id").values("id") == [(i,) for i in expected]


def test_employee_hierarchy(chinook: Loaded, backend: Backend, count: Any) -> None:
    manager_of = {
        f"{first} {last}": (f"{mfirst} {mlast}" if mfirst is not None else None)
        for first, last, mfirst, mlast in backend.raw(
            "SELECT e.first_name, e.last_name, m.first_name, m.last_name "
            "FROM employee e LEFT JOIN employee m ON m.employee_id = e.reports_to"
        )
    }
    assert manager_of == {
        "Andrew Adams": None,
        "Nancy Edwards": "Andrew Adams",
        "Jane Peacock": "Nancy Edwards",
        "Margaret Park": "Nancy Edwards",
        "Steve Johnson": "Nancy Edwards",
        "Michael Mitchell": "Andrew Adams",
        "Robert King": "Michael Mitchell",
        "Laura Callahan": "Michael Mitchell",
    }
    with chinook.db.session() as s:
        with count(s, 3):
            top = s.query(Employee).where(EmployeeMapper.reports_to.is_(None)).include("reports.reports").all()
        with count(s, 0):
            assert [name_of(e) for e in top] == ["Andrew Adams"]
            andrew = top[0]
            assert andrew.manager is None
            assert [name_of(e) for e in andrew.reports] == ["Nancy Edwards", "Michael Mitchell"]
            tree = {name_of(m): [name_of(e) for e in m.reports] for m in andrew.reports}
            third = [e for m in andrew.reports for e in m.reports]
            seen = {name_of(e): name_of(e.manager) for m in andrew.reports for e in [m, *m.reports]}
        assert tree == {
            "Nancy Edwards": ["Jane Peacock", "Margaret Park", "Steve Johnson"],
            "Michael Mitchell": ["Robert King", "Laura Callahan"],
        }
        assert seen == {k: v for k, v in manager_of.items() if v is not None}
        # The third level was not included: touching it loads it for the whole cohort at once.
        with count(s, 1):
            assert [e.reports for e in third] == [[], [], [], [], []]
        with count(s, 1):
            assert s.related(andrew, "reports").count() == 2
    raw = backend.raw("SELECT count(*) FROM employee WHERE reports_to IN (SELECT employee_id FROM employee WHERE reports_to IS NOT NULL)")
    assert raw == [(len(third),)]


def test_sales_by_support_agent(chinook: Loaded, backend: Backend, count: Any) -> None:
    raw_sales: dict[str, Decimal] = defaultdict(Decimal)
    raw_customers: Counter[str] = Counter()
    for first, last, customer_id, total in backend.raw(
        "SELECT e.first_name, e.last_name, c.customer_id, i.total FROM employee e "
        "JOIN customer c ON c.support_rep_id = e.employee_id JOIN invoice i ON i.customer_id = c.customer_id"
    ):
        raw_sales[f"{first} {last}"] += dec(total)
    for first, last, n in backend.raw(
        "SELECT e.first_name, e.last_name, count(*) FROM employee e "
        "JOIN customer c ON c.support_rep_id = e.employee_id GROUP BY e.employee_id, e.first_name, e.last_name"
    ):
        raw_customers[f"{first} {last}"] = n
    with chinook.db.session() as s:
        with count(s, 3):
            agents = s.query(Employee).where(title="Sales Support Agent").order_by("id").include("customers.invoices").all()
        with count(s, 0):
            sales = {name_of(e): sum((i.total for c in e.customers for i in c.invoices), Decimal(0)) for e in agents}
            customers = {name_of(e): len(e.customers) for e in agents}
            assert all(c.support_rep is e for e in agents for c in e.customers)
    assert customers == dict(raw_customers) == {"Jane Peacock": 21, "Margaret Park": 20, "Steve Johnson": 18}
    assert sales == dict(raw_sales)
    assert sum(sales.values(), Decimal(0)) == Decimal("2328.60")


def test_playlist_tracks_through_the_junction(chinook: Loaded, backend: Backend, count: Any) -> None:
    raw = backend.raw(
        "SELECT p.playlist_id, count(pt.track_id) FROM playlist p "
        "LEFT JOIN playlist_track pt ON pt.playlist_id = p.playlist_id WHERE p.name = ? "
        "GROUP BY p.playlist_id ORDER BY p.playlist_id",
        ["Music"],
    )
    assert raw == [(1, 3290), (8, 3290)]
    music_ids = [r[0] for r in backend.raw("SELECT track_id FROM playlist_track WHERE playlist_id = 1 ORDER BY track_id")]
    with chinook.db.session() as s:
        with count(s, 2):
            music = s.query(Playlist).where(name="Music").order_by("id").include("tracks").all()
        assert [(p.id, len(p.tracks)) for p in music] == raw
        with count(s, 0):
            assert [t.id for t in music[0].tracks] == music_ids  # order_by="id"
            # The same 3290 tracks, and the identity map gives the very same objects.
            assert all(a is b for a, b in zip(music[0].tracks, music[1].tracks, strict=True))
        with count(s, 1):
            assert s.related(music[0], "tracks").count() == 3290
        # Playlists without tracks get an empty collection.
        with count(s, 2):
            movies = s.query(Playlist).where(name="Movies").include("tracks").all()
        assert [p.tracks for p in movies] == [[], []]
    assert backend.raw("SELECT count(*) FROM playlist_track pt JOIN playlist p ON p.playlist_id = pt.playlist_id WHERE p.name = ?", ["Movies"]) == [(0,)]


def test_playlist_artists(chinook: Loaded, backend: Backend, count: Any) -> None:
    raw = backend.raw(
        "SELECT ar.name, count(*) FROM playlist p JOIN playlist_track pt ON pt.playlist_id = p.playlist_id "
        "JOIN track t ON t.track_id = pt.track_id JOIN album al ON al.album_id = t.album_id "
        "JOIN artist ar ON ar.artist_id = al.artist_id WHERE p.name = ? GROUP BY ar.name",
        ["Grunge"],
    )
    with chinook.db.session() as s:
        with count(s, 4):
            grunge = s.query(Playlist).where(name="Grunge").include("tracks.album.artist").one()
        with count(s, 0):
            per_artist = Counter(t.album.artist.name for t in grunge.tracks)
    assert per_artist == dict(raw)
    assert per_artist == {
        "Nirvana": 6,
        "Pearl Jam": 4,
        "Soundgarden": 2,
        "Alice In Chains": 1,
        "Stone Temple Pilots": 1,
        "Temple of the Dog": 1,
    }
    assert sum(per_artist.values()) == len(grunge.tracks) == 15


def test_invoice_lines_with_tracks_and_albums(chinook: Loaded, backend: Backend, count: Any) -> None:
    raw = backend.raw(
        "SELECT il.invoice_line_id, t.name, al.title, ar.name, il.unit_price, il.quantity FROM invoice_line il "
        "JOIN track t ON t.track_id = il.track_id JOIN album al ON al.album_id = t.album_id "
        "JOIN artist ar ON ar.artist_id = al.artist_id WHERE il.invoice_id = ? ORDER BY il.invoice_line_id",
        [5],
    )
    assert len(raw) == 14
    with chinook.db.session() as s:
        with count(s, 4):
            invoice = s.query(Invoice).where(id=5).include("lines.track.album").one()
        with count(s, 0):
            lines = [(l.id, l.track.name, l.track.album.title, l.unit_price, l.quantity) for l in invoice.lines]
            assert all(l.invoice is invoice for l in invoice.lines)
        assert lines == [r[:3] + (dec(r[4]), r[5]) for r in raw]
        with count(s, 1):
            s.load([l.track.album for l in invoice.lines], "artist")
        with count(s, 0):
            assert [l.track.album.artist.name for l in invoice.lines] == [r[3] for r in raw]
        assert sum((l.amount for l in invoice.lines), Decimal(0)) == invoice.total
    assert [dec(r[0]) for r in backend.raw("SELECT total FROM invoice WHERE invoice_id = 5")] == [invoice.total]


def test_touching_a_relation_loads_it_for_the_whole_result(chinook: Loaded, backend: Backend, count: Any) -> None:
    expected = [r[0] for r in backend.raw(
        "SELECT ar.name FROM album al JOIN artist ar ON ar.artist_id = al.artist_id ORDER BY al.album_id"
    )]
    with chinook.db.session() as s:
        with count(s, 1):
            albums = s.query(Album).order_by("id").all()
        with count(s, 1):
            names = [a.artist.name for a in albums]
        assert names == expected
        with count(s, 1):
            assert sum(len(a.tracks) for a in albums) == 3503
        with count(s, 0):
            assert all(t.album is a for a in albums for t in a.tracks)


def test_the_chinook_mappings_match_the_tables_create_all_made(chinook: Loaded) -> None:
    # Numeric money, naive datetimes, composite keys and self-references compare equal too.
    assert chinook.db.check_schema() == []
