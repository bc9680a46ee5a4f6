"""Every mistake in a mapping is a ConfigurationError raised when the Database is built.

The message names the mapper and the attribute and says how to fix it. No database is used:
``sqlite:///:memory:`` is only opened once the mappings are valid.
"""

from __future__ import annotations

import attrs
import pytest

from mapper import Column, ConfigurationError, Database, ForeignKey, Mapper, errors
from mapper import types as t


@attrs.define
class Thing:
    name: str
    rev: int = 0
    id: int | None = None


@attrs.define
class Part:
    label: str
    thing_id: int | None = None
    id: int | None = None


def build(*mappers) -> None:
    db = Database("sqlite:///:memory:", mappers=list(mappers))
    db.close()


def config_error(*mappers) -> str:
    with pytest.raises(ConfigurationError) as info:
        build(*mappers)
    assert isinstance(info.value, errors.MapperError)
    return str(info.value)


class GoodThingMapper(Mapper[Thing]):
    table = "cfg_things"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    rev = Column(t.Integer, version=True)


class GoodPartMapper(Mapper[Part]):
    table = "cfg_parts"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(50), nullable=False)
    thing_id = Column(t.Integer, ForeignKey("cfg_things.id", on_delete="CASCADE"))


def test_valid_mappers_build_and_serve_several_databases():
    db1 = Database("sqlite:///:memory:", mappers=[GoodThingMapper, GoodPartMapper])
    db2 = Database("sqlite:///:memory:", mappers=[GoodThingMapper, GoodPartMapper])
    try:
        db1.create_all()
        db2.create_all()
        with db1.session() as s:
            s.add(Thing("one"))
        with db2.session() as s:
            assert s.query(Thing).count() == 0
        with db1.session() as s:
            assert [x.name for x in s.query(Thing).all()] == ["one"]
    finally:
        db1.close()
        db2.close()


def test_unknown_option_typo():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        timestamp = True  # meant: timestamps
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    msg = config_error(ThingMapper)
    assert "ThingMapper.timestamp" in msg
    assert "timestamps" in msg  # the option that exists
    assert "Column(" in msg


def test_unknown_plain_value_attribute():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = "varchar"

    msg = config_error(ThingMapper)
    assert "ThingMapper.name" in msg
    assert "Column(" in msg


@pytest.mark.parametrize("bare", [t.String(100), t.String, t.Integer])
def test_type_without_column(bare):
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = bare

    msg = config_error(ThingMapper)
    assert "ThingMapper.name" in msg
    assert "Column(" in msg


def test_no_primary_key():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer)
        name = Column(t.String(50))

    msg = config_error(ThingMapper)
    assert "ThingMapper" in msg
    assert "primary key" in msg
    assert "primary_key=True" in msg


@pytest.mark.parametrize("bad_type", [int, str, "VARCHAR(10)", None, object()])
def test_unknown_column_type(bad_type):
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(bad_type)

    msg = config_error(ThingMapper)
    assert "ThingMapper.name" in msg
    assert "mapper.types" in msg


def test_foreign_key_to_unknown_table():
    class PartMapper(Mapper[Part]):
        table = "cfg_parts"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(50))
        thing_id = Column(t.Integer, ForeignKey("cfg_thingz.id"))

    msg = config_error(GoodThingMapper, PartMapper)
    assert "PartMapper.thing_id" in msg
    assert "cfg_thingz" in msg
    assert "cfg_things" in msg  # the tables that do exist


def test_foreign_key_to_unknown_column():
    class PartMapper(Mapper[Part]):
        table = "cfg_parts"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(50))
        thing_id = Column(t.Integer, ForeignKey("cfg_things.ident"))

    msg = config_error(GoodThingMapper, PartMapper)
    assert "PartMapper.thing_id" in msg
    assert "ident" in msg
    assert "'id'" in msg  # the columns that do exist


def test_foreign_key_to_a_mapper_listed_later_is_fine():
    build(GoodPartMapper, GoodThingMapper)


def test_foreign_key_without_column_part():
    class PartMapper(Mapper[Part]):
        table = "cfg_parts"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(50))
        thing_id = Column(t.Integer, ForeignKey("cfg_things"))

    msg = config_error(GoodThingMapper, PartMapper)
    assert "PartMapper.thing_id" in msg
    assert "table.column" in msg


def test_foreign_key_with_unknown_action():
    class PartMapper(Mapper[Part]):
        table = "cfg_parts"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(50))
        thing_id = Column(t.Integer, ForeignKey("cfg_things.id", on_delete="CASCADES"))

    msg = config_error(GoodThingMapper, PartMapper)
    assert "PartMapper.thing_id" in msg
    assert "CASCADES" in msg
    assert "'CASCADE'" in msg


def test_two_mappers_for_one_class():
    class OtherThingMapper(Mapper[Thing]):
        table = "cfg_other_things"
        id = Column(t.Integer, primary_key=True)

    msg = config_error(GoodThingMapper, OtherThingMapper)
    assert "GoodThingMapper" in msg and "OtherThingMapper" in msg
    assert "Thing" in msg


def test_two_mappers_for_one_table():
    class PartMapper(Mapper[Part]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)

    msg = config_error(GoodThingMapper, PartMapper)
    assert "GoodThingMapper" in msg and "PartMapper" in msg
    assert "cfg_things" in msg


def test_same_mapper_listed_twice():
    msg = config_error(GoodThingMapper, GoodThingMapper)
    assert "GoodThingMapper" in msg


def test_missing_table():
    class ThingMapper(Mapper[Thing]):
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    msg = config_error(ThingMapper)
    assert "ThingMapper" in msg
    assert "table" in msg
    assert "table = " in msg


def test_mapper_without_domain_class():
    class LonelyMapper(Mapper):  # type: ignore[type-arg]
        table = "cfg_lonely"
        id = Column(t.Integer, primary_key=True)

    msg = config_error(LonelyMapper)
    assert "LonelyMapper" in msg
    assert "Mapper[" in msg


def test_not_a_mapper():
    msg = config_error(Thing)
    assert "Thing" in msg


@pytest.mark.parametrize(
    "table",
    ["pugs; DROP TABLE x", "pugs\"", "two words", "1st", "", "a" * 64, "dash-ed", "dot.ted", "pugs`"],
)
def test_invalid_table_name(table):
    class ThingMapper(Mapper[Thing]):
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    ThingMapper.table = table
    msg = config_error(ThingMapper)
    assert "ThingMapper" in msg
    assert "table" in msg


@pytest.mark.parametrize("column", ["bad name", "x; DROP TABLE y", 'quo"te', "9lives", "a" * 64])
def test_invalid_column_name(column):
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50), name=column)

    msg = config_error(ThingMapper)
    assert "ThingMapper.name" in msg
    assert repr(column) in msg


def test_duplicate_database_column_name():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        rev = Column(t.Integer, name="name")

    msg = config_error(ThingMapper)
    assert "ThingMapper.rev" in msg and "ThingMapper.name" in msg
    assert "name=" in msg


def test_nullable_primary_key():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True, nullable=True)
        name = Column(t.String(50))

    msg = config_error(ThingMapper)
    assert "ThingMapper.id" in msg
    assert "nullable" in msg


@pytest.mark.parametrize("vtype", [t.String(10), t.Float, t.DateTime, t.Numeric(10, 2), t.Boolean])
def test_version_column_must_be_an_integer(vtype):
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        rev = Column(vtype, version=True)

    msg = config_error(ThingMapper)
    assert "ThingMapper.rev" in msg
    assert "integer" in msg


def test_two_version_columns():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.Integer, version=True)
        rev = Column(t.Integer, version=True)

    msg = config_error(ThingMapper)
    assert "ThingMapper" in msg
    assert "name" in msg and "rev" in msg


def test_default_and_server_default_together():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        rev = Column(t.Integer, default=0, server_default="0")

    msg = config_error(ThingMapper)
    assert "ThingMapper.rev" in msg
    assert "server_default" in msg


def test_server_default_must_be_sql_text():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        rev = Column(t.Integer, server_default=0)  # type: ignore[arg-type]

    msg = config_error(ThingMapper)
    assert "ThingMapper.rev" in msg
    assert "default=" in msg


def test_bad_mapping_opens_no_connection():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer)

    # a server URL that cannot be reached: the mapping error must come first
    with pytest.raises(ConfigurationError) as info:
        Database("postgresql://postgres@127.0.0.1:1/test", mappers=[ThingMapper])
    assert "ThingMapper" in str(info.value)
