"""Schema drift: check_schema() lists how the live tables differ from the mappers, and
create_all() refuses (or warns about) tables it would leave alone that differ."""

from __future__ import annotations

import types
import warnings
from typing import Any

import attrs
import pytest

from mapper import Column, Database, ForeignKey, Mapper, errors
from mapper import types as t
from mapper.drift import Difference


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
class Extra:
    id: int | None = None


class KindMapper(Mapper[Kind]):
    table = "dr_kinds"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(20), nullable=False, unique=True)


class ExtraMapper(Mapper[Extra]):
    table = "dr_extra"
    id = Column(t.Integer, primary_key=True)


def _base() -> dict[str, Any]:
    return {
        "table": "dr_items",
        "id": Column(t.Integer, primary_key=True),
        "name": Column(t.String(50), nullable=False, index=True),
        "size": Column(t.Integer),
        "kind_id": Column(t.Integer, ForeignKey("dr_kinds.id")),
    }


def item_mapper(**changes: Any) -> type[Mapper[Item]]:
    """The v1 mapper of Item, with some columns replaced (or removed, given None)."""
    body = _base()
    for key, value in changes.items():
        if value is None:
            del body[key]
        else:
            body[key] = value
    return types.new_class("ItemMapper", (Mapper[Item],), exec_body=lambda ns: ns.update(body))


#: How each backend's catalogue spells the types the tests change (after normalisation).
VARCHAR = {"sqlite": "VARCHAR({})", "postgresql": "character varying({})", "mysql": "varchar({})"}
INTEGER = {"sqlite": "INTEGER", "postgresql": "integer", "mysql": "int"}


@pytest.fixture
def v1(backend: Any, make_db: Any) -> Database:
    """The database as the first version of the mappers created it."""
    return make_db(KindMapper, item_mapper())


def check_with(backend: Any, *mappers: Any) -> list[Difference]:
    db = Database(backend.url, [KindMapper, *mappers])
    try:
        return db.check_schema()
    finally:
        db.close()


def test_a_fresh_create_all_database_has_no_drift(backend, v1):
    assert v1.check_schema() == []
    assert sorted(r[0] for r in backend.raw("SELECT count(*) FROM dr_items")) == [0]


def test_a_column_added_to_the_mapper_is_missing_from_the_table(backend, v1):
    found = check_with(backend, item_mapper(note=Column(t.String(30))))
    want = f"{VARCHAR[backend.name].format(30)} NULL"
    assert found == [Difference("column_missing", "dr_items", "note", want)]
    assert str(found[0]) == f"column dr_items.note: mapped ({want}) but not in the database"


def test_a_column_dropped_from_the_mapper_is_extra_in_the_table(backend, v1):
    found = check_with(backend, item_mapper(size=None))
    assert [(d.kind, d.table, d.column, d.expected) for d in found] == [("column_extra", "dr_items", "size", None)]
    assert str(found[0]).startswith("column dr_items.size: in the database (")
    assert str(found[0]).endswith(" NULL) but not mapped")


def test_a_column_added_with_plain_sql_is_reported(backend, v1):
    backend.raw("ALTER TABLE dr_items ADD COLUMN legacy INTEGER NOT NULL DEFAULT 4")
    found = check_with(backend, item_mapper())
    assert [(d.kind, d.column) for d in found] == [("column_extra", "legacy")]
    assert "NOT NULL DEFAULT" in str(found[0])


def test_a_type_change(backend, v1):
    found = check_with(backend, item_mapper(name=Column(t.String(80), nullable=False, index=True)))
    v = VARCHAR[backend.name]
    assert found == [Difference("type", "dr_items", "name", v.format(80), v.format(50))]
    assert str(found[0]) == f"column dr_items.name: type is {v.format(50)} in the database, the mappers expect {v.format(80)}"


def test_an_integer_becoming_text(backend, v1):
    found = check_with(backend, item_mapper(size=Column(t.Text)))
    text = {"sqlite": "TEXT", "postgresql": "text", "mysql": "longtext"}[backend.name]
    assert found == [Difference("type", "dr_items", "size", text, INTEGER[backend.name])]


def test_a_nullability_change(backend, v1):
    found = check_with(backend, item_mapper(size=Column(t.Integer, nullable=False)))
    assert found == [Difference("nullable", "dr_items", "size", "NOT NULL", "NULL")]
    assert str(found[0]) == "column dr_items.size: NULL in the database, the mappers expect NOT NULL"


def test_a_server_default_change(backend, v1):
    found = check_with(backend, item_mapper(size=Column(t.Integer, server_default="3")))
    assert found == [Difference("default", "dr_items", "size", "3", "none")]


def test_equal_server_defaults_compare_equal_whatever_the_spelling(backend, make_db):
    @attrs.define
    class Setting:
        id: int | None = None

    class SettingMapper(Mapper[Setting]):
        table = "dr_settings"
        id = Column(t.Integer, primary_key=True)
        level = Column(t.Integer, nullable=False, server_default="7", hidden=True)
        status = Column(t.String(10), nullable=False, server_default="'new'", hidden=True)
        enabled = Column(t.Boolean, nullable=False, server_default="TRUE", hidden=True)
        at = Column(t.DateTime, server_default="CURRENT_TIMESTAMP", hidden=True)

    db = make_db(SettingMapper)
    assert db.check_schema() == []


def test_a_foreign_key_rule_change(backend, v1):
    found = check_with(backend, item_mapper(kind_id=Column(t.Integer, ForeignKey("dr_kinds.id", on_delete="CASCADE"))))
    assert found == [Difference(
        "foreign_key_rule", "dr_items", "kind_id",
        "ON DELETE CASCADE ON UPDATE NO ACTION", "ON DELETE NO ACTION ON UPDATE NO ACTION",
    )]
    assert str(found[0]) == (
        "table dr_items: foreign key (kind_id) is ON DELETE NO ACTION ON UPDATE NO ACTION in the database, "
        "the mappers expect ON DELETE CASCADE ON UPDATE NO ACTION"
    )


def test_a_foreign_key_dropped_from_the_mapper(backend, v1):
    found = check_with(backend, item_mapper(kind_id=Column(t.Integer)))
    assert found == [Difference("foreign_key_extra", "dr_items", "kind_id", None, "dr_kinds(id)")]


def test_a_foreign_key_added_to_the_mapper(backend, v1):
    found = check_with(backend, item_mapper(size=Column(t.Integer, ForeignKey("dr_kinds.id"))))
    # MariaDB would also index the new key's column: the index comes with the constraint.
    assert found == [Difference("foreign_key_missing", "dr_items", "size", "dr_kinds(id)")]
    assert str(found[0]) == "table dr_items: foreign key (size) -> dr_kinds(id) is not in the database"


def test_unique_and_index_changes(backend, v1):
    found = check_with(backend, item_mapper(
        name=Column(t.String(50), nullable=False, unique=True),
        size=Column(t.Integer, index=True),
    ))
    assert found == [
        Difference("unique_missing", "dr_items", "name"),
        Difference("index_missing", "dr_items", "size", "ix_dr_items_size"),
        Difference("index_extra", "dr_items", "name", None, "ix_dr_items_name"),
    ]
    assert [str(d) for d in found] == [
        "table dr_items: UNIQUE (name) is not in the database",
        "table dr_items: index ix_dr_items_size on (size) is not in the database",
        "table dr_items: index ix_dr_items_name on (name) is in the database but not mapped",
    ]


def test_a_primary_key_change(backend, v1):
    found = check_with(backend, item_mapper(
        id=Column(t.Integer, primary_key=True), name=Column(t.String(50), primary_key=True, index=True),
    ))
    # The key now has two columns: the database no longer generates id (name keeps its index).
    assert found == [
        Difference("generated", "dr_items", "id", "not generated", "generated by the database"),
        Difference("primary_key", "dr_items", None, "id, name", "id"),
    ]
    assert str(found[1]) == "table dr_items: primary key is (id) in the database, the mappers expect (id, name)"


def test_a_new_mapper_is_a_missing_table_until_create_all_makes_it(backend, v1):
    assert check_with(backend, item_mapper(), ExtraMapper) == [Difference("table_missing", "dr_extra")]
    db = Database(backend.url, [KindMapper, item_mapper(), ExtraMapper])
    try:
        assert db.create_all() == ["dr_extra"]
        assert db.check_schema() == []
    finally:
        db.drop_all()
        db.close()


def test_tables_no_mapper_names_are_not_differences(backend, v1):
    backend.raw("CREATE TABLE dr_other (x INTEGER)")
    try:
        assert check_with(backend, item_mapper()) == []
    finally:
        backend.raw("DROP TABLE dr_other")


# -- create_all --------------------------------------------------------------------------------------


def test_create_all_refuses_drift_and_creates_nothing(backend, v1):
    db = Database(backend.url, [KindMapper, item_mapper(note=Column(t.String(30))), ExtraMapper])
    try:
        with pytest.raises(errors.SchemaDriftError) as info:
            db.create_all()
    finally:
        db.close()
    msg = str(info.value)
    assert msg.startswith("create_all() leaves existing tables alone: the database differs from the mappers in 1 place(s):\n")
    assert "  - column dr_items.note: mapped (" in msg
    assert "python -m mapper check MODULE:ATTRIBUTE" in msg and "alembic upgrade head" in msg
    assert [d.kind for d in info.value.differences] == ["column_missing"]
    # Refused before any DDL: the new table was not created.
    assert check_with(backend, item_mapper(), ExtraMapper) == [Difference("table_missing", "dr_extra")]


def test_create_all_can_only_warn(backend, v1):
    db = Database(backend.url, [KindMapper, item_mapper(note=Column(t.String(30))), ExtraMapper])
    try:
        with pytest.warns(errors.SchemaDriftWarning, match="column dr_items.note: mapped"):
            assert db.create_all(on_drift="warn") == ["dr_extra"]
        assert [r[0] for r in backend.raw("SELECT count(*) FROM dr_extra")] == [0]
    finally:
        backend.raw("DROP TABLE dr_extra")
        db.close()


def test_create_all_again_on_an_unchanged_database_is_quiet(backend, v1):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert v1.create_all() == []
        assert v1.create_all(on_drift="warn") == []


def test_create_all_refuses_an_unknown_on_drift_before_connecting():
    db = Database("postgresql://nobody@127.0.0.1:1/none", [KindMapper])
    with pytest.raises(errors.ConfigurationError, match=r"create_all\(on_drift='never'\): use 'error' or 'warn'"):
        db.create_all(on_drift="never")


def test_datetime_precision_is_part_of_the_type(backend, make_db):
    @attrs.define
    class Stamp:
        at: Any = None
        id: int | None = None

    class StampMapper(Mapper[Stamp]):
        table = "dr_stamps"
        id = Column(t.Integer, primary_key=True)
        at = Column(t.DateTime(precision=0))

    make_db(StampMapper)  # create_all() builds it and check_schema() finds it equal
    class MicroMapper(Mapper[Stamp]):
        table = "dr_stamps"
        id = Column(t.Integer, primary_key=True)
        at = Column(t.DateTime)

    found = check_with(backend, MicroMapper)
    found = [d for d in found if d.table == "dr_stamps"]
    if backend.name == "sqlite":
        assert found == []  # SQLite keeps whatever it is given
    else:
        want, have = {"postgresql": ("timestamp without time zone", "timestamp(0) without time zone"), "mysql": ("datetime(6)", "datetime")}[backend.name]
        assert found == [Difference("type", "dr_stamps", "at", want, have)]


def test_datetime_precision_is_checked():
    for bad in (-1, 7, True, "6"):
        with pytest.raises(TypeError, match=r"DateTime\(precision\) takes an int from 0 to 6, got"):
            t.DateTime(precision=bad)
