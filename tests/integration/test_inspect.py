"""``python -m mapper inspect URL`` on every backend: the Chinook database as its own SQL scripts
build it (not through mapper), and the suite's own mappings as create_all() builds them. The
generated module imports, check_schema() is clean against it, and queries with includes through
it return what plain SQL returns."""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import io
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mapper import Database, Mapper
from mapper.__main__ import main
from tests.conftest import BACKENDS, REQUIRED, Backend, _unreachable, exactly

ROOT = Path(__file__).resolve().parents[2]
#: Chinook's own SQL scripts (lerocha/chinook-database, MIT: see LICENSE.md there), gzipped.
DATASETS = ROOT / "tests" / "data" / "chinook"
SCRIPTS = {
    "sqlite": "Chinook_Sqlite_AutoIncrementPKs.sql",
    "postgresql": "Chinook_PostgreSql_AutoIncrementPKs.sql",
    "mysql": "Chinook_MySql_AutoIncrementPKs.sql",
}
#: Table names child-first (PostgreSQL's scripts are snake_case, the others PascalCase).
TABLES = {
    "sqlite": ["PlaylistTrack", "InvoiceLine", "Invoice", "Customer", "Employee", "Track", "Playlist", "MediaType", "Genre", "Album", "Artist"],
    "postgresql": ["playlist_track", "invoice_line", "invoice", "customer", "employee", "track", "playlist", "media_type", "genre", "album", "artist"],
}
TABLES["mysql"] = TABLES["sqlite"]


def _script(name: str) -> str:
    """The dataset's script without the lines that drop, create and switch databases."""
    skip = ("DROP DATABASE", "CREATE DATABASE", "\\c ", "USE ")
    text = gzip.decompress((DATASETS / f"{SCRIPTS[name]}.gz").read_bytes()).decode("utf-8")
    return "\n".join(line for line in text.splitlines() if not line.startswith(skip))


def _load(backend: Backend) -> None:
    text = _script(backend.name)
    if backend.name == "sqlite":
        conn = backend.raw_connect()
        conn.executescript(text)
        conn.close()
    elif backend.name == "postgresql":
        conn = backend.raw_connect()
        conn.execute(text)
        conn.close()
    else:
        import pymysql
        from pymysql.constants import CLIENT
        from urllib.parse import urlsplit

        u = urlsplit(backend.url)
        conn = pymysql.connect(
            host=u.hostname, port=u.port or 3306, user=u.username or "root", password=u.password or "",
            database=u.path.lstrip("/"), charset="utf8mb4", autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS,
        )
        cur = conn.cursor()
        cur.execute("SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_BACKSLASH_ESCAPES')")
        cur.execute(text)
        while cur.nextset():
            pass
        conn.close()


def _drop(backend: Backend) -> None:
    q = backend.q
    if backend.name == "mysql":
        backend.raw("SET FOREIGN_KEY_CHECKS = 0")
    for table in TABLES[backend.name]:
        backend.raw(f"DROP TABLE IF EXISTS {q(table)}")


@pytest.fixture(scope="module", params=BACKENDS)
def chinook(request: pytest.FixtureRequest, _servers: dict[str, str | None], tmp_path_factory: Any) -> Iterator[Backend]:
    """Chinook loaded by its own SQL script into the backend's scratch database."""
    name = request.param
    if name == "sqlite":
        backend = Backend("sqlite", f"sqlite:///{tmp_path_factory.mktemp('inspect') / 'chinook.db'}")
    else:
        url = _servers[name]
        if url is None:
            reason = _unreachable.get(name, f"{name} unavailable")
            if name in REQUIRED:
                pytest.fail(f"MAPPER_REQUIRE_BACKENDS includes {name}, but {reason}")
            pytest.skip(reason)
        backend = Backend(name, url)
    _drop(backend)
    _load(backend)
    try:
        yield backend
    finally:
        _drop(backend)


def _generate(url: str, where: Path, module: str) -> ModuleType:
    out = io.StringIO()
    assert main(["inspect", url], out) == 0
    path = where / f"{module}.py"
    path.write_text(out.getvalue())
    spec = importlib.util.spec_from_file_location(module, path)
    assert spec is not None and spec.loader is not None
    found = importlib.util.module_from_spec(spec)
    sys.modules[module] = found  # attrs and the relations resolve forward references through it
    spec.loader.exec_module(found)
    return found


@pytest.fixture(scope="module")
def reflected(chinook: Backend, tmp_path_factory: Any) -> Iterator[tuple[ModuleType, Database]]:
    module = _generate(chinook.url, tmp_path_factory.mktemp("reflected"), f"chinook_reflected_{chinook.name}")
    db = Database(chinook.url, module.MAPPERS)
    try:
        yield module, db
    finally:
        db.close()
        sys.modules.pop(module.__name__, None)


def test_the_generated_module_maps_every_table(chinook: Backend, reflected: tuple[ModuleType, Database]):
    module, db = reflected
    assert sorted(m.table for m in module.MAPPERS) == sorted(TABLES[chinook.name])
    assert [type(r).__name__ for r in (module.PlaylistMapper.tracks, module.TrackMapper.playlists)] == ["BelongsToMany"] * 2
    assert type(module.AlbumMapper.artist).__name__ == "BelongsTo"
    assert type(module.ArtistMapper.albums).__name__ == "HasMany"


def test_check_schema_is_clean_against_the_generated_module(reflected: tuple[ModuleType, Database]):
    _module, db = reflected
    assert db.check_schema() == []


def test_albums_with_tracks_and_artist_match_plain_sql(chinook: Backend, reflected: tuple[ModuleType, Database]):
    module, db = reflected
    q = chinook.q
    t = {n.lower().replace("_", ""): n for n in TABLES[chinook.name]}
    c = (lambda s: s) if chinook.name != "postgresql" else (lambda s: "_".join(w.lower() for w in _words(s)))
    sql_tracks: dict[int, list[int]] = defaultdict(list)
    for album_id, track_id in chinook.raw(
        f"SELECT {q(c('AlbumId'))}, {q(c('TrackId'))} FROM {q(t['track'])} WHERE {q(c('AlbumId'))} IS NOT NULL "
        f"ORDER BY {q(c('TrackId'))}"
    ):
        sql_tracks[album_id].append(track_id)
    sql_albums = chinook.raw(
        f"SELECT a.{q(c('AlbumId'))}, a.{q(c('Title'))}, r.{q(c('Name'))} FROM {q(t['album'])} a "
        f"JOIN {q(t['artist'])} r ON r.{q(c('ArtistId'))} = a.{q(c('ArtistId'))} ORDER BY a.{q(c('AlbumId'))}"
    )
    with db.session() as s:
        with exactly(s, 3):  # albums, their tracks, their artists
            albums = s.query(module.Album).include("tracks", "artist").order_by("album_id").all()
        got = [(a.album_id, a.title, a.artist.name) for a in albums]
        assert got == [tuple(r) for r in sql_albums]
        assert {a.album_id: [tr.track_id for tr in a.tracks] for a in albums if a.tracks} == dict(sql_tracks)
        assert len(albums) == 347


def test_playlists_with_tracks_through_the_junction_match_plain_sql(chinook: Backend, reflected: tuple[ModuleType, Database]):
    module, db = reflected
    q = chinook.q
    pt = "playlist_track" if chinook.name == "postgresql" else "PlaylistTrack"
    pid, tid = ("playlist_id", "track_id") if chinook.name == "postgresql" else ("PlaylistId", "TrackId")
    expected: dict[int, list[int]] = defaultdict(list)
    for playlist_id, track_id in chinook.raw(f"SELECT {q(pid)}, {q(tid)} FROM {q(pt)} ORDER BY {q(pid)}, {q(tid)}"):
        expected[playlist_id].append(track_id)
    with db.session() as s:
        with exactly(s, 2):  # playlists, then their tracks through the junction
            playlists = s.query(module.Playlist).include("tracks").order_by("playlist_id").all()
        assert {p.playlist_id: [tr.track_id for tr in p.tracks] for p in playlists if p.tracks} == dict(expected)
        assert sum(len(p.tracks) for p in playlists) == 8715


def test_the_self_reference_reads_both_ways(chinook: Backend, reflected: tuple[ModuleType, Database]):
    module, db = reflected
    q = chinook.q
    emp, eid, rep = ("employee", "employee_id", "reports_to") if chinook.name == "postgresql" else ("Employee", "EmployeeId", "ReportsTo")
    expected = {e: r for e, r in chinook.raw(f"SELECT {q(eid)}, {q(rep)} FROM {q(emp)}")}
    with db.session() as s:
        employees = s.query(module.Employee).include("employees", "reports_to_employee").all()
        assert {e.employee_id: (e.reports_to_employee.employee_id if e.reports_to_employee else None) for e in employees} == expected
        assert {e.employee_id: sorted(x.employee_id for x in e.employees) for e in employees} == {
            e: sorted(k for k, v in expected.items() if v == e) for e in expected
        }


def _words(name: str) -> list[str]:
    import re

    return re.findall(r"[A-Z][a-z]*", name)


# -- the suite's own mappings -------------------------------------------------------------------------


@pytest.mark.parametrize("module_name", ["tests.models", "tests.rel_models", "tests.integration.test_types", "tests.integration.test_schema"])
def test_inspecting_what_create_all_built_gives_mappers_that_match(backend, make_db, tmp_path: Path, module_name: str):
    source = importlib.import_module(module_name)
    mappers = [
        v for v in vars(source).values()
        if isinstance(v, type) and issubclass(v, Mapper) and v is not Mapper and v.__module__ == source.__name__
    ]
    make_db(*mappers)
    module = _generate(backend.url, tmp_path, f"reflected_{module_name.replace('.', '_')}_{backend.name}")
    try:
        db = Database(backend.url, module.MAPPERS)
        try:
            assert db.check_schema() == []
        finally:
            db.close()
    finally:
        sys.modules.pop(module.__name__, None)


def test_inspect_names_a_missing_table(backend, make_db, capsys: pytest.CaptureFixture[str]):
    make_db()
    assert main(["inspect", backend.url, "--table", "nowhere"]) == 2
    assert capsys.readouterr().err.startswith("python -m mapper inspect: error: no table named 'nowhere' in ")


def test_inspect_refuses_a_url_it_cannot_serve(capsys: pytest.CaptureFixture[str]):
    assert main(["inspect", "oracle://scott@db/orcl"]) == 2
    assert "URL scheme 'oracle' is not supported" in capsys.readouterr().err


def test_inspect_refuses_a_sqlite_file_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    missing = tmp_path / "typo.db"
    assert main(["inspect", f"sqlite:///{missing}"]) == 2
    assert capsys.readouterr().err == f"python -m mapper inspect: error: no SQLite database at {str(missing)!r}\n"
    assert not missing.exists()
