"""Migrations with Alembic on every backend: autogenerate sees exactly the change made to the
mappers, upgrade applies it, downgrade reverts it, and check_schema() is clean after each."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import attrs
import pytest

from mapper import Column, Database, ForeignKey, Mapper
from mapper import types as t
from mapper.__main__ import main

alembic = pytest.importorskip("alembic", reason="the migrations extra (alembic) is part of the test extra")
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402

from mapper.migrations import autogenerate_diff, metadata  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TARGET = "tests.integration.test_migrations:target"


@attrs.define
class Kind:
    label: str = ""
    id: int | None = None


@attrs.define
class Item:
    name: str = ""
    size: int | None = None
    note: str | None = None
    kind_id: int | None = None
    id: int | None = None


@attrs.define
class Tag:
    word: str = ""
    id: int | None = None


class KindMapper(Mapper[Kind]):
    table = "mg_kinds"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(20), nullable=False)


class TagMapper(Mapper[Tag]):
    table = "mg_tags"
    id = Column(t.Integer, primary_key=True)
    word = Column(t.String(20), nullable=False, unique=True)


def item_mapper(**changes: Any) -> type[Mapper[Item]]:
    """Item's first mapper, with columns replaced (or removed, given None)."""
    body: dict[str, Any] = {
        "table": "mg_items",
        "id": Column(t.Integer, primary_key=True),
        "name": Column(t.String(50), nullable=False),
        "size": Column(t.Integer),
        "kind_id": Column(t.Integer, ForeignKey("mg_kinds.id")),
    }
    for key, value in changes.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    return types.new_class("ItemMapper", (Mapper[Item],), exec_body=lambda ns: ns.update(body))


#: The mappers after each change: (mappers, the kinds of Alembic's diff, a line of the script).
CHANGES: dict[str, Any] = {
    "add_column": (lambda: [KindMapper, item_mapper(note=Column(t.String(30)))], ["add_column"], "sa.Column('note'"),
    "drop_column": (lambda: [KindMapper, item_mapper(size=None)], ["remove_column"], "drop_column("),
    "new_table": (lambda: [KindMapper, item_mapper(), TagMapper], ["add_table"], "op.create_table('mg_tags'"),
    "new_index": (lambda: [KindMapper, item_mapper(size=Column(t.Integer, index=True))], ["add_index"], "'ix_mg_items_size'"),
    "fk_cascade": (
        lambda: [KindMapper, item_mapper(kind_id=Column(t.Integer, ForeignKey("mg_kinds.id", on_delete="CASCADE")))],
        ["remove_fk", "add_fk"], "ondelete='CASCADE'",
    ),
    "type_change": (
        lambda: [KindMapper, item_mapper(name=Column(t.String(80), nullable=False))], ["modify_type"], "type_=sa.String(length=80)",
    ),
    "not_null": (lambda: [KindMapper, item_mapper(size=Column(t.Integer, nullable=False))], ["modify_nullable"], "nullable=False"),
}


def target() -> Database:
    """The Database env.py migrates: the version of the mappers the test chose, at its URL."""
    version = os.environ.get("MAPPER_MIGRATIONS_VERSION", "v1")
    mappers = [KindMapper, item_mapper()] if version == "v1" else CHANGES[version][0]()
    return Database(os.environ.get("MAPPER_MIGRATIONS_URL", "sqlite:///:memory:"), mappers)


def _kinds(diff: list[Any]) -> list[str]:
    """The operation names of Alembic's diff (a column change is a list of tuples)."""
    out: list[str] = []
    for entry in diff:
        for op in entry if isinstance(entry, list) else [entry]:
            out.append(op[0])
    return out


@pytest.fixture
def project(backend: Any, make_db: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The first version's tables with two rows, and an Alembic set-up from migrations init."""
    db = make_db(KindMapper, item_mapper())
    backend.raw("INSERT INTO mg_kinds (id, label) VALUES (1, 'small')")
    backend.raw("INSERT INTO mg_items (id, name, size, kind_id) VALUES (1, 'cup', 3, 1)")
    monkeypatch.setenv("MAPPER_MIGRATIONS_URL", backend.url)
    monkeypatch.setenv("MAPPER_MIGRATIONS_VERSION", "v1")
    ini = tmp_path / "alembic.ini"
    assert main(["migrations", "init", str(tmp_path / "migrations"), TARGET, "--ini", str(ini)]) == 0
    yield Config(str(ini))
    backend.raw("DROP TABLE IF EXISTS alembic_version")
    db.drop_all()
    Database(backend.url, [TagMapper]).drop_all()


def _mappers_db(backend: Any, mappers: list[Any]) -> Database:
    return Database(backend.url, mappers)


def _check(backend: Any, mappers: list[Any]) -> list[Any]:
    db = _mappers_db(backend, mappers)
    try:
        return db.check_schema()
    finally:
        db.close()


def _script(cfg: Config, message: str) -> str:
    versions = Path(cfg.get_main_option("script_location") or "") / "versions"
    [path] = [p for p in versions.glob("*.py") if message in p.name]
    return path.read_text()


def test_a_fresh_create_all_database_gives_an_empty_migration(backend, project: Config):
    db = target()
    try:
        assert autogenerate_diff(db) == []
    finally:
        db.close()
    command.revision(project, message="baseline", autogenerate=True)
    script = _script(project, "baseline")
    assert "def upgrade() -> None:\n    \"\"\"Upgrade schema.\"\"\"\n    # ### commands auto generated by Alembic - please adjust! ###\n    pass" in script


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_change_is_detected_applied_and_reverted(backend, project: Config, monkeypatch: pytest.MonkeyPatch, change: str):
    make_mappers, kinds, line = CHANGES[change]
    v1 = [KindMapper, item_mapper()]
    command.revision(project, message="baseline", autogenerate=True)
    command.upgrade(project, "head")

    monkeypatch.setenv("MAPPER_MIGRATIONS_VERSION", change)
    changed = target()
    try:
        assert _kinds(autogenerate_diff(changed)) == kinds  # exactly the change, nothing else
    finally:
        changed.close()
    command.revision(project, message=change, autogenerate=True)
    script = _script(project, change)
    assert line in script
    if backend.name == "sqlite" and change in ("drop_column", "type_change", "not_null", "fk_cascade"):
        assert "with op.batch_alter_table('mg_items'" in script  # SQLite rebuilds the table

    command.upgrade(project, "head")
    assert _check(backend, make_mappers()) == []
    assert backend.raw("SELECT id, name FROM mg_items") == [(1, "cup")]
    db = target()
    try:
        assert autogenerate_diff(db) == []  # nothing left to migrate
    finally:
        db.close()

    command.downgrade(project, "-1")
    assert _check(backend, v1) == []
    # A dropped column comes back empty: downgrade restores the schema, not the values.
    size = None if change == "drop_column" else 3
    assert backend.raw("SELECT id, name, size, kind_id FROM mg_items") == [(1, "cup", size, 1)]


def test_the_cascade_a_migration_adds_is_enforced(backend, project: Config, monkeypatch: pytest.MonkeyPatch):
    command.revision(project, message="baseline", autogenerate=True)
    command.upgrade(project, "head")
    monkeypatch.setenv("MAPPER_MIGRATIONS_VERSION", "fk_cascade")
    command.revision(project, message="cascade", autogenerate=True)
    command.upgrade(project, "head")
    if backend.name == "sqlite":
        raw = backend.raw_connect()
        try:
            raw.execute("PRAGMA foreign_keys = ON")
            raw.execute("DELETE FROM mg_kinds WHERE id = 1")
            raw.commit()
        finally:
            raw.close()
    else:
        backend.raw("DELETE FROM mg_kinds WHERE id = 1")
    assert backend.raw("SELECT count(*) FROM mg_items") == [(0,)]


def test_the_metadata_names_constraints_and_indexes_as_create_all_does():
    db = Database("sqlite:///:memory:", [KindMapper, item_mapper(size=Column(t.Integer, index=True)), TagMapper])
    try:
        md = metadata(db)
    finally:
        db.close()
    items, tags = md.tables["mg_items"], md.tables["mg_tags"]
    assert [fk.name for fk in items.foreign_key_constraints] == ["fk_mg_items_kind_id"]
    assert [ix.name for ix in items.indexes] == ["ix_mg_items_size"]
    assert [c.name for c in tags.constraints if c.__class__.__name__ == "UniqueConstraint"] == ["uq_mg_tags_word"]
    assert items.c.id.autoincrement is True and items.c.size.nullable is True and items.c.name.nullable is False


def test_the_alembic_command_line_runs_the_set_up(backend, project: Config, tmp_path: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MAPPER_MIGRATIONS_VERSION": "add_column"}
    alembic_cli = [sys.executable, "-m", "alembic", "-c", str(tmp_path / "alembic.ini")]

    def run(*args: str) -> str:
        done = subprocess.run([*alembic_cli, *args], capture_output=True, text=True, env=env, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    assert "Detected added column 'mg_items.note'" in run("revision", "--autogenerate", "-m", "note")
    run("upgrade", "head")
    assert _check(backend, CHANGES["add_column"][0]()) == []
    run("downgrade", "-1")
    assert _check(backend, [KindMapper, item_mapper()]) == []


def test_migrations_init_refuses_an_existing_set_up(project: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    ini = str(tmp_path / "alembic.ini")
    assert main(["migrations", "init", str(tmp_path / "other"), TARGET, "--ini", ini]) == 2
    assert capsys.readouterr().err == f"python -m mapper migrations: error: {ini!r} exists; pass another path with --ini\n"


def test_migrations_init_writes_an_env_that_names_the_database(project: Config, tmp_path: Path):
    env_py = (tmp_path / "migrations" / "env.py").read_text()
    assert f"DATABASE = {TARGET!r}" in env_py and "run_migrations(db)" in env_py
    assert "import mapper.migrations" in (tmp_path / "migrations" / "script.py.mako").read_text()
    assert "sqlalchemy.url = driver://" not in (tmp_path / "alembic.ini").read_text()


#: Mapping sets of the suite that cover every type, server defaults, hidden and derived columns,
#: junction tables, self-references and cycles.
MAPPING_MODULES = [
    "tests.models", "tests.rel_models", "domain.chinook.mappers", "tests.integration.test_types",
    "tests.integration.test_schema", "tests.integration.test_values", "tests.integration.test_hidden_columns",
    "tests.integration.test_stream",
]


@pytest.mark.parametrize("module", MAPPING_MODULES)
def test_autogenerate_finds_nothing_on_a_fresh_create_all_database(backend, make_db, module: str):
    import importlib

    found = importlib.import_module(module)
    mappers = [
        v for v in vars(found).values()
        if isinstance(v, type) and issubclass(v, Mapper) and v is not Mapper and v.__module__ == found.__name__
    ]
    assert mappers
    db = make_db(*mappers)  # make_db also asserts check_schema() == []
    assert autogenerate_diff(db) == []


def test_migrations_init_refuses_a_wrong_target_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    ini = tmp_path / "alembic.ini"
    assert main(["migrations", "init", str(tmp_path / "migrations"), "tests.integration.test_migrations:nothing", "--ini", str(ini)]) == 2
    assert capsys.readouterr().err == (
        "python -m mapper migrations: error: tests.integration.test_migrations has no attribute 'nothing'\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_migrations_init_refuses_a_directory_that_is_not_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "notes.txt").write_text("mine")
    ini = tmp_path / "alembic.ini"
    assert main(["migrations", "init", str(tmp_path / "migrations"), TARGET, "--ini", str(ini)]) == 2
    where = str(tmp_path / "migrations")
    assert capsys.readouterr().err == (
        f"python -m mapper migrations: error: {where!r} exists and is not empty; choose a new directory\n"
    )
    assert not ini.exists()
