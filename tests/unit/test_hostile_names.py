"""Hostile names in a mapping: nothing smuggles SQL through a table or column name.

Every name that reaches SQL text comes from the mapping and must match
``mapper.schema.IDENTIFIER`` (ASCII letters, digits and underscores, not starting with a
digit, at most 63 characters); anything else is a ConfigurationError that names the mapper
and the offending name. Names that pass are always quoted, in every dialect. No database is
used: the mappings are validated by ``Registry`` and the SQL is rendered by each dialect's
compiler without a connection.

(tests/unit/test_mapping_config.py checks a few bad table and column names already; this file
makes the list complete: every quoting character, comment markers, whitespace, control and
non-ASCII characters, the length boundary, and every place a name can come from.)
"""

from __future__ import annotations

import re
import types

import attrs
import pytest

from mapper import BelongsTo, BelongsToMany, Column, ConfigurationError, ForeignKey, HasMany, Mapper
from mapper import types as t
from mapper.dialects.mysql import MySQLDialect
from mapper.dialects.postgresql import PostgreSQLDialect
from mapper.dialects.sqlite import SQLiteDialect
from mapper.mapping import Registry
from mapper.schema import IDENTIFIER
from mapper.sql import Compiler, Select


@attrs.define
class Thing:
    name: str = ""
    id: int | None = None


@attrs.define(eq=False)
class Holder:
    label: str = ""
    things: list[Thing] = attrs.Factory(list)
    thing: Thing | None = None
    id: int | None = None


# Names that must never reach SQL: every quoting character of the three backends, statement
# separators and comment markers, whitespace and control characters, non-ASCII letters
# (portable identifiers are ASCII), a leading digit, and one character too many.
BAD_NAMES = [
    "",
    "a" * 64,
    "pugs'",
    "it's",
    'pugs"',
    'a"b',
    "pugs`",
    "a`b",
    "pugs; DROP TABLE x",
    "x;",
    "x--",
    "x -- comment",
    "x/*c*/",
    "x#",
    "two words",
    " lead",
    "trail ",
    "tab\there",
    "new\nline",
    "\nlead_newline",
    "cr\r",
    "nul\x00",
    "1st",
    "9",
    "dash-ed",
    "dot.ted",
    "paren(",
    "x)",
    "a,b",
    "a=b",
    "$x",
    "x$",
    "per%cent",
    "ques?tion",
    "co:lon",
    "back\\slash",
    "[bracket]",
    "caf\u00e9",
    "\u0430dmin",  # Cyrillic a
    "\uff41",  # fullwidth a
    "x\u200b",  # zero-width space
    "\U0001f600",
    "x\u00a0y",  # no-break space
]

# Names the pattern allows: they must be accepted and always quoted.
GOOD_NAMES = ["_", "_x", "x_", "X", "MixedCase", "a1_2", "a" * 63, "select", "order", "group", "user", "from", "key"]


def _refused(build) -> str:
    with pytest.raises(ConfigurationError) as info:
        build()
    return str(info.value)


# -- tables ---------------------------------------------------------------------------------------


def _table_mapper(table: str) -> type:
    class ThingMapper(Mapper[Thing]):
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    ThingMapper.table = table
    return ThingMapper


@pytest.mark.parametrize("table", BAD_NAMES, ids=repr)
def test_bad_table_name_is_refused_naming_mapper_and_name(table):
    msg = _refused(lambda: Registry([_table_mapper(table)]))
    assert "ThingMapper" in msg
    if table:
        assert repr(table) in msg, msg
    else:
        assert "has no table" in msg


def test_table_name_that_is_not_a_string_is_refused():
    for table in (None, 3, b"things", ["things"]):
        msg = _refused(lambda: Registry([_table_mapper(table)]))  # type: ignore[arg-type]
        assert "ThingMapper" in msg


# -- columns: the name= option, and the attribute name itself --------------------------------------


@pytest.mark.parametrize("column", [n for n in BAD_NAMES if n], ids=repr)
def test_bad_column_name_option_is_refused_naming_mapper_and_name(column):
    class ThingMapper(Mapper[Thing]):
        table = "things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50), name=column)

    msg = _refused(lambda: Registry([ThingMapper]))
    assert "ThingMapper.name" in msg
    assert repr(column) in msg, msg


@pytest.mark.parametrize("key", ["two words", "x; DROP TABLE y", 'q"uote', "it's", "b`t", "caf\u00e9", "1st", "a" * 64], ids=repr)
def test_bad_attribute_name_used_as_column_name_is_refused(key):
    # An attribute name is the column name when name= is not given; a class built with type()
    # can use any string as an attribute name (types.new_class is type() for generic bases).
    ns = {"table": "things", "id": Column(t.Integer, primary_key=True), key: Column(t.String(50))}
    mapper = types.new_class("ThingMapper", (Mapper[Thing],), exec_body=lambda body: body.update(ns))
    msg = _refused(lambda: Registry([mapper]))
    assert "ThingMapper" in msg
    assert repr(key) in msg, msg


# -- names that come from relations -----------------------------------------------------------------


class ThingMapper(Mapper[Thing]):
    table = "things"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50))


@pytest.mark.parametrize("fk", ["thing id", "thing_id; DROP TABLE things", 'thing"id', "thing`id", "x--", "caf\u00e9", "a" * 64], ids=repr)
def test_bad_foreign_key_name_of_a_relation_is_refused(fk):
    class HolderMapper(Mapper[Holder]):
        table = "holders"
        id = Column(t.Integer, primary_key=True)
        thing = BelongsTo(Thing, foreign_key=fk)

    msg = _refused(lambda: Registry([ThingMapper, HolderMapper]))
    assert "HolderMapper.thing" in msg
    assert repr(fk) in msg, msg


@attrs.define(eq=False)
class Accented:
    thíng: Thing | None = None  # a valid Python identifier, not a valid SQL one
    id: int | None = None


def test_bad_derived_foreign_key_name_is_refused():
    # BelongsTo derives "<attribute>_id": an attribute name that is no SQL identifier is caught.
    ns = {"table": "accented", "id": Column(t.Integer, primary_key=True), "thíng": BelongsTo(Thing)}
    mapper = types.new_class("AccentedMapper", (Mapper[Accented],), exec_body=lambda body: body.update(ns))
    msg = _refused(lambda: Registry([ThingMapper, mapper]))
    assert "AccentedMapper.thíng" in msg and repr("thíng_id") in msg, msg


@pytest.mark.parametrize("through", ["holder things", "ht; DROP TABLE things", 'h"t', "h`t", "ht--", "a" * 64], ids=repr)
def test_bad_junction_table_name_is_refused(through):
    class HolderMapper(Mapper[Holder]):
        table = "holders"
        id = Column(t.Integer, primary_key=True)
        things = BelongsToMany(Thing, through=through)

    msg = _refused(lambda: Registry([ThingMapper, HolderMapper]))
    assert "HolderMapper.things" in msg
    assert repr(through) in msg, msg


@attrs.define
class Link:
    holder: Holder | None = None
    thing: Thing | None = None
    id: int | None = None


@pytest.mark.parametrize("key", ["holder id", "holder_id; --", 'h"id', "h%s"], ids=repr)
def test_bad_key_names_of_an_association_class_are_refused(key):
    class HolderMapper(Mapper[Holder]):
        table = "holders"
        id = Column(t.Integer, primary_key=True)
        things = BelongsToMany(Thing, through=Link, foreign_key=key, other_key="thing_id")

    class LinkMapper(Mapper[Link]):
        table = "links"
        id = Column(t.Integer, primary_key=True)
        holder = BelongsTo(Holder, foreign_key="holder_id")
        thing = BelongsTo(Thing, foreign_key="thing_id")

    msg = _refused(lambda: Registry([ThingMapper, HolderMapper, LinkMapper]))
    assert "HolderMapper.things" in msg and repr(key) in msg, msg


@pytest.mark.parametrize("option", ["foreign_key", "other_key"])
@pytest.mark.parametrize("key", ["holder id", 'h"; DROP TABLE things; --', "h`x", "h%s", "h\n"], ids=repr)
def test_bad_junction_column_names_are_refused(option, key):
    class HolderMapper(Mapper[Holder]):
        table = "holders"
        id = Column(t.Integer, primary_key=True)
        things = BelongsToMany(Thing, through="holder_things", **{option: key})

    msg = _refused(lambda: Registry([ThingMapper, HolderMapper]))
    assert "HolderMapper.things" in msg and repr(key) in msg, msg


@pytest.mark.parametrize("order", ["name; DROP TABLE things", "name DESC", "-name--", "1", "(SELECT 1)", "Name"], ids=repr)
def test_bad_relation_order_by_is_refused(order):
    class HolderMapper(Mapper[Holder]):
        table = "holders"
        id = Column(t.Integer, primary_key=True)
        things = HasMany(Thing, foreign_key="holder_id", order_by=order)

    class ThingWithKeyMapper(Mapper[Thing]):
        table = "things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        holder_id = Column(t.Integer, ForeignKey("holders.id"))

    msg = _refused(lambda: Registry([ThingWithKeyMapper, HolderMapper]))
    assert "HolderMapper.things" in msg
    assert repr(order) in msg, msg


@pytest.mark.parametrize(
    "target",
    ["things.id; DROP TABLE things", "things.id--", 'things."id"', "things; --.id", "things.i d", "things", ".id", "things."],
    ids=repr,
)
def test_foreign_key_target_is_checked_against_the_mapping(target):
    class HolderMapper(Mapper[Holder]):
        table = "holders"
        id = Column(t.Integer, primary_key=True)
        thing_ref = Column(t.Integer, ForeignKey(target), hidden=True)

    msg = _refused(lambda: Registry([ThingMapper, HolderMapper]))
    assert "HolderMapper.thing_ref" in msg, msg


# -- the length boundary and valid unusual names --------------------------------------------------------


def test_63_characters_is_the_limit_for_every_name():
    ok_name = "n" * 63
    registry = Registry([_table_mapper("t" * 63)])
    assert "t" * 63 in registry.tables

    class LongColumnMapper(Mapper[Thing]):
        table = "things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50), name=ok_name)

    assert Registry([LongColumnMapper]).tables["things"].column(ok_name) is not None
    _refused(lambda: Registry([_table_mapper("t" * 64)]))


@pytest.mark.parametrize("odd", GOOD_NAMES)
def test_valid_unusual_names_are_accepted(odd):
    assert IDENTIFIER.match(odd)

    class OddNameMapper(Mapper[Thing]):
        id = Column(t.Integer, primary_key=True, name="pk")
        name = Column(t.String(50), name=odd, index=True)

    OddNameMapper.table = odd
    table = Registry([OddNameMapper]).tables[odd]
    assert [c.name for c in table.columns] == ["pk", odd]


DIALECTS = [SQLiteDialect, PostgreSQLDialect, MySQLDialect]


def _unquoted_remainder(sql: str, quote: str) -> str:
    """``sql`` with every quoted identifier (quote char doubled inside) removed."""
    q = re.escape(quote)
    return re.sub(f"{q}(?:[^{q}]|{q}{q})*{q}", "<id>", sql)


class OddMapper(Mapper[Thing]):
    table = "order"
    id = Column(t.Integer, primary_key=True, name="key")
    name = Column(t.String(50), name="select", index=True, unique=False)


class OddHolderMapper(Mapper[Holder]):
    table = "group"
    id = Column(t.Integer, primary_key=True, name="from")
    label = Column(t.String(50), name="MixedCase", unique=True)
    thing_ref = Column(t.Integer, ForeignKey("order.key", on_delete="CASCADE"), name="user", index=True, hidden=True)
    things = BelongsToMany(Thing, through="where", foreign_key="desc", other_key="limit")


@pytest.mark.parametrize("dialect_class", DIALECTS, ids=lambda d: d.name)
def test_reserved_and_mixed_case_names_are_quoted_in_every_statement(dialect_class):
    dialect = dialect_class()
    c = Compiler(dialect)
    registry = Registry([OddMapper, OddHolderMapper])
    names = {"order", "key", "select", "group", "from", "MixedCase", "user", "where", "desc", "limit"}
    statements = []
    for table in list(registry.tables.values()) + list(registry.junctions.values()):
        statements.append(c.create_table(table))
        for fk in table.foreign_keys:
            statements.append(c.add_foreign_key(fk))
        for ix in table.indexes:
            statements.append(dialect.create_index_sql(ix.name, ix.table, ix.columns, ix.unique))
        cols = [col.name for col in table.columns]
        keys = [col.name for col in table.primary_key]
        statements.append(c.insert(table.name, cols, 2, keys))
        statements.append(c.update_row(table.name, cols, keys, None))
        statements.append(c.delete_rows(table, table.primary_key, 2, None))
        statements.append(c.select(Select(table.name, table.columns, table.columns[0] == 1, [table.columns[-1].desc()], 5, 1))[0])
        statements += dialect.drop_tables_sql([table.name])
    quote = dialect.quote_char
    for sql in statements:
        rest = _unquoted_remainder(sql, quote)
        for name in names:
            # Keywords are written in upper case: a lower-case (or mixed-case) name outside
            # quotes would be an identifier that escaped quoting.
            assert not re.search(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])", rest), f"{name!r} unquoted in {sql!r}"
    joined = "\n".join(statements)
    for name in names:
        assert f"{quote}{name}{quote}" in joined


@pytest.mark.parametrize("dialect_class", DIALECTS, ids=lambda d: d.name)
@pytest.mark.parametrize("name", ['we"ird', "we`ird", "a''b", 'x"; DROP TABLE y; --', "x`; DROP TABLE y; --"])
def test_quote_doubles_the_quote_character(dialect_class, name):
    # Defense in depth: the registry refuses these names, but quoting alone keeps them inert.
    dialect = dialect_class()
    q = dialect.quote_char
    quoted = dialect.quote(name)
    assert quoted == q + name.replace(q, q + q) + q
    inner = quoted[1:-1]
    assert re.fullmatch(f"(?:[^{re.escape(q)}]|{re.escape(q)}{{2}})*", inner)


# -- bugs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["table", "column", "foreign_key", "through"])
def test_name_with_a_trailing_newline_is_refused(where):
    if where == "table":
        mappers = [_table_mapper("things\n")]
    elif where == "column":

        class NewlineColumnMapper(Mapper[Thing]):
            table = "things"
            id = Column(t.Integer, primary_key=True)
            name = Column(t.String(50), name="name\n")

        mappers = [NewlineColumnMapper]
    elif where == "foreign_key":

        class NewlineFkMapper(Mapper[Holder]):
            table = "holders"
            id = Column(t.Integer, primary_key=True)
            thing = BelongsTo(Thing, foreign_key="thing_id\n")

        mappers = [ThingMapper, NewlineFkMapper]
    else:

        class NewlineThroughMapper(Mapper[Holder]):
            table = "holders"
            id = Column(t.Integer, primary_key=True)
            things = BelongsToMany(Thing, through="holder_things\n")

        mappers = [ThingMapper, NewlineThroughMapper]
    _refused(lambda: Registry(mappers))


@attrs.define
class Wide:
    first: str = ""
    second: str = ""
    id: int | None = None


def test_derived_index_names_that_collide_after_truncation_are_refused():
    class WideMapper(Mapper[Wide]):
        table = "t" * 45
        id = Column(t.Integer, primary_key=True)
        first = Column(t.String(50), name="long_column_name_number_1", index=True)
        second = Column(t.String(50), name="long_column_name_number_2", index=True)

    registry_or_error = None
    try:
        registry_or_error = Registry([WideMapper])
    except ConfigurationError as exc:
        registry_or_error = exc
    if isinstance(registry_or_error, Registry):
        names = [ix.name for ix in registry_or_error.tables["t" * 45].indexes]
        # Either refused, or given distinct names: both are fine.
        assert len(set(names)) == len(names), names
    else:
        assert "WideMapper" in str(registry_or_error)
