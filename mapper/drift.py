"""Schema drift: how the live tables differ from what the mappers would create.

The expected side is what ``create_all()`` emits (the dialect's own DDL spelling); the actual
side is ``schema_read``'s view of the catalogue. Both go through the same per-dialect
normalisation (type spellings, default expressions, referential rules), so a table that
``create_all()`` made compares equal on every backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .dialects import Dialect
from .schema import Column, Table
from .schema_read import ColumnInfo, TableInfo

__all__ = ["Difference", "KINDS", "compare", "normalize_type", "normalize_default", "drift_message"]

#: Every kind of difference, in the order a table's differences are listed.
KINDS = (
    "table_missing",
    "column_missing",
    "column_extra",
    "type",
    "nullable",
    "default",
    "generated",
    "primary_key",
    "foreign_key_missing",
    "foreign_key_extra",
    "foreign_key_rule",
    "unique_missing",
    "unique_extra",
    "index_missing",
    "index_extra",
)


@dataclass(frozen=True)
class Difference:
    """One way the database differs from the mappers.

    Attributes:
        kind: one of ``KINDS`` (``column_missing``, ``type``, ``foreign_key_rule``...).
        table: the table's name.
        column: the column (or the columns of a key or index, comma-separated), or None.
        expected: what the mappers would create, as text (None where nothing is expected).
        actual: what the database has, as text (None where it has nothing).
    """

    kind: str
    table: str
    column: str | None = None
    expected: str | None = None
    actual: str | None = None

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column and "," not in self.column else self.table
        cols = f"({self.column})" if self.column else ""
        text = _TEXTS[self.kind]
        return text.format(where=where, table=self.table, cols=cols, expected=self.expected, actual=self.actual)


_TEXTS = {
    "table_missing": "table {table}: mapped but not in the database",
    "column_missing": "column {where}: mapped ({expected}) but not in the database",
    "column_extra": "column {where}: in the database ({actual}) but not mapped",
    "type": "column {where}: type is {actual} in the database, the mappers expect {expected}",
    "nullable": "column {where}: {actual} in the database, the mappers expect {expected}",
    "default": "column {where}: DEFAULT is {actual} in the database, the mappers expect {expected}",
    "generated": "column {where}: {actual} in the database, the mappers expect {expected}",
    "primary_key": "table {table}: primary key is ({actual}) in the database, the mappers expect ({expected})",
    "foreign_key_missing": "table {table}: foreign key {cols} -> {expected} is not in the database",
    "foreign_key_extra": "table {table}: foreign key {cols} -> {actual} is in the database but not mapped",
    "foreign_key_rule": "table {table}: foreign key {cols} is {actual} in the database, the mappers expect {expected}",
    "unique_missing": "table {table}: UNIQUE {cols} is not in the database",
    "unique_extra": "table {table}: UNIQUE {cols} is in the database but not mapped",
    "index_missing": "table {table}: index {expected} on {cols} is not in the database",
    "index_extra": "table {table}: index {actual} on {cols} is in the database but not mapped",
}


def drift_message(differences: Sequence[Difference], what: str) -> str:
    """The message of ``SchemaDriftError``: what was refused, each difference, and the way out."""
    lines = "\n".join(f"  - {d}" for d in differences)
    return (
        f"{what}: the database differs from the mappers in {len(differences)} place(s):\n{lines}\n"
        "Bring the database up to date with a migration (python -m mapper migrations init, then "
        "alembic revision --autogenerate and alembic upgrade head), or list the drift with "
        "python -m mapper check MODULE:ATTRIBUTE"
    )


# -- normalisation ---------------------------------------------------------------------------------

_INT_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|bigint)\(\d+\)")

_PG_NAMES = [
    (re.compile(r"^(varchar|character varying)(\(\d+\))?$"), r"character varying\2"),
    (re.compile(r"^(char|character|bpchar)(\(\d+\))?$"), r"character\2"),
    (re.compile(r"^(decimal|numeric)"), "numeric"),
    (re.compile(r"^(int|int4|integer|serial)$"), "integer"),
    (re.compile(r"^(int8|bigserial)$"), "bigint"),
    (re.compile(r"^int2$"), "smallint"),
    (re.compile(r"^(float8|double)$"), "double precision"),
    (re.compile(r"^(float4)$"), "real"),
    (re.compile(r"^bool$"), "boolean"),
    (re.compile(r"^timestamptz$"), "timestamp with time zone"),
    (re.compile(r"^timestamp(\(\d+\))?$"), r"timestamp\1 without time zone"),
    (re.compile(r"^timetz$"), "time with time zone"),
    (re.compile(r"^time(\(\d+\))?$"), r"time\1 without time zone"),
]

_MY_NAMES = [
    (re.compile(r"^(bool|boolean)$"), "tinyint(1)"),
    (re.compile(r"^integer"), "int"),
    (re.compile(r"^numeric"), "decimal"),
    (re.compile(r"^double precision$"), "double"),
    (re.compile(r"^real$"), "double"),
]

# Spellings SQLite takes as the same declared type (the names create_all writes and the usual others).
_SQLITE_NAMES = [
    (re.compile(r"^(nvarchar|varying character|nchar varying|national varchar)"), "VARCHAR"),
    (re.compile(r"^(nchar|native character)"), "CHAR"),
    (re.compile(r"^int$"), "INTEGER"),
    (re.compile(r"^(double|double precision|float)$"), "REAL"),
]


def normalize_type(backend: str, spelled: str) -> str:
    """One spelling for equal types on ``backend`` ("postgresql", "mysql", "sqlite").

    PostgreSQL: ``format_type()``'s names (``VARCHAR(20)`` -> ``character varying(20)``);
    MariaDB/MySQL: lower case without integer display widths (``int(11)`` -> ``int``, BOOL is
    ``tinyint(1)``); SQLite: the declared type upper-cased, usual synonyms folded.
    """
    text = re.sub(r"\s*,\s*", ",", " ".join(spelled.split()))
    text = re.sub(r"\s*\(\s*", "(", text).replace(" )", ")")
    if backend == "sqlite":
        low = text.lower()
        for pattern, repl in _SQLITE_NAMES:
            low = pattern.sub(repl.lower(), low)
        return low.upper()
    low = text.lower()
    if backend == "postgresql":
        for pattern, repl in _PG_NAMES:
            low = pattern.sub(repl, low)
        return low
    # SQLAlchemy's reflection spells a column's character set and collation into its type.
    low = re.sub(r"\s+(character set|charset|collate)\s+\w+", "", low)
    for pattern, repl in _MY_NAMES:
        low = pattern.sub(repl, low)
    if low != "tinyint(1)":
        low = _INT_WIDTH.sub(r"\1", low)
    return low


_CAST = re.compile(r"::[a-z ]+(\(\d+(,\d+)?\))?(\[\])?$")


def normalize_default(spelled: str | None) -> str | None:
    """One spelling for equal DEFAULT expressions: casts, outer parentheses, ``NULL`` and case removed.

    ``'new'::character varying`` (PostgreSQL) and ``'new'`` compare equal, as do
    ``current_timestamp()`` (MariaDB) and ``CURRENT_TIMESTAMP``, and ``TRUE``/``true``/``1``.
    """
    if spelled is None:
        return None
    text = spelled.strip()
    while True:
        before = text
        if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
            text = text[1:-1].strip()
        if not text.startswith("'") or text.count("'") % 2 == 0:
            text = _CAST.sub("", text.lower() if not text.startswith("'") else text).strip()
        if text == before:
            break
    if text.upper() == "NULL":
        return None
    if not text.startswith("'"):
        text = re.sub(r"^(current_timestamp|now)(\(\d*\))?$", "current_timestamp", text.lower())
        text = {"true": "1", "false": "0"}.get(text, text)
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _rule(backend: str, rule: str | None) -> str:
    """A referential rule as compared: none given is NO ACTION (InnoDB's RESTRICT is the same thing)."""
    text = (rule or "NO ACTION").upper()
    if backend == "mysql" and text == "RESTRICT":
        return "NO ACTION"
    return text


# -- comparing -------------------------------------------------------------------------------------


def compare(dialect: Dialect, expected: Iterable[Table], actual: dict[str, TableInfo]) -> list[Difference]:
    """Every difference between the mapped ``expected`` tables and the ``actual`` catalogue.

    Tables of the database that no mapper names are not differences (the database may hold
    other tables, such as Alembic's ``alembic_version``).
    """
    out: list[Difference] = []
    for table in expected:
        info = actual.get(table.name)
        if info is None:
            out.append(Difference("table_missing", table.name))
            continue
        for check in _CHECKS:
            out += check(dialect, table, info)
    return out


def expected_type(dialect: Dialect, table: Table, col: Column) -> str:
    """The normalised type ``create_all()`` gives a column on this dialect."""
    return normalize_type(dialect.name, dialect.type_sql(col, col is table.autoincrement_column))


def _expected_nullable(dialect: Dialect, table: Table, col: Column) -> bool:
    if any(c is col for c in table.primary_key) and (dialect.name != "sqlite" or col is table.autoincrement_column):
        return False  # the servers (and SQLite's rowid alias) never let a key column be NULL
    return col.nullable


def _columns(dialect: Dialect, table: Table, info: TableInfo) -> list[Difference]:
    out: list[Difference] = []
    name = dialect.name
    for col in table.columns:
        have = info.column(col.name)
        if have is None:
            out.append(Difference("column_missing", table.name, col.name, _describe(dialect, table, col)))
            continue
        want_type, have_type = expected_type(dialect, table, col), normalize_type(name, have.type)
        if want_type != have_type:
            out.append(Difference("type", table.name, col.name, want_type, have_type))
        want_null = _expected_nullable(dialect, table, col)
        if want_null != have.nullable:
            out.append(Difference("nullable", table.name, col.name, _null(want_null), _null(have.nullable)))
        auto = col is table.autoincrement_column
        if auto != have.generated:
            out.append(Difference("generated", table.name, col.name, _gen(auto), _gen(have.generated)))
        if not have.generated:
            want_default, have_default = normalize_default(col.server_default), normalize_default(have.default)
            if want_default != have_default:
                out.append(Difference("default", table.name, col.name, _text(col.server_default), _text(have_default and have.default)))
    mapped = {c.name for c in table.columns}
    for have in info.columns:
        if have.name not in mapped:
            out.append(Difference("column_extra", table.name, have.name, None, _describe_info(have)))
    return out


def _describe(dialect: Dialect, table: Table, col: Column) -> str:
    text = f"{expected_type(dialect, table, col)} {_null(_expected_nullable(dialect, table, col))}"
    return text + (f" DEFAULT {col.server_default}" if col.server_default is not None else "")


def _describe_info(c: ColumnInfo) -> str:
    return f"{c.type} {_null(c.nullable)}" + (f" DEFAULT {c.default}" if c.default is not None else "")


def _null(nullable: bool) -> str:
    return "NULL" if nullable else "NOT NULL"


def _gen(generated: bool) -> str:
    return "generated by the database" if generated else "not generated"


def _text(value: str | None) -> str:
    return "none" if value is None else value


def _primary_key(dialect: Dialect, table: Table, info: TableInfo) -> list[Difference]:
    want = tuple(c.name for c in table.primary_key)
    if want != info.primary_key:
        return [Difference("primary_key", table.name, None, ", ".join(want), ", ".join(info.primary_key))]
    return []


def _foreign_keys(dialect: Dialect, table: Table, info: TableInfo) -> list[Difference]:
    out: list[Difference] = []
    name = dialect.name
    have = {fk.columns: fk for fk in info.foreign_keys}
    for fk in table.foreign_keys:
        target = f"{fk.ref_table}({', '.join(fk.ref_columns)})"
        cols = ", ".join(fk.columns)
        found = have.pop(fk.columns, None)
        if found is None or (found.ref_table, found.ref_columns) != (fk.ref_table, fk.ref_columns):
            out.append(Difference("foreign_key_missing", table.name, cols, target))
            if found is not None:
                have[fk.columns] = found
            continue
        want_rules = (_rule(name, fk.on_delete), _rule(name, fk.on_update))
        have_rules = (_rule(name, found.on_delete), _rule(name, found.on_update))
        if want_rules != have_rules:
            out.append(Difference("foreign_key_rule", table.name, cols, _rules(want_rules), _rules(have_rules)))
    for extra in have.values():
        target = f"{extra.ref_table}({', '.join(extra.ref_columns)})"
        out.append(Difference("foreign_key_extra", table.name, ", ".join(extra.columns), None, target))
    return out


def _rules(rules: tuple[str, str]) -> str:
    return f"ON DELETE {rules[0]} ON UPDATE {rules[1]}"


def _uniques(dialect: Dialect, table: Table, info: TableInfo) -> list[Difference]:
    want = [tuple(u) for u in table.uniques] + [ix.columns for ix in table.indexes if ix.unique]
    have = [u.columns for u in info.uniques]
    out = [Difference("unique_missing", table.name, ", ".join(u)) for u in want if u not in have]
    return out + [Difference("unique_extra", table.name, ", ".join(u)) for u in have if u not in want]


def _indexes(dialect: Dialect, table: Table, info: TableInfo) -> list[Difference]:
    want = {ix.columns: ix.name for ix in table.indexes if not ix.unique}
    have = {ix.columns: ix.name for ix in info.indexes}
    out = [Difference("index_missing", table.name, ", ".join(c), n) for c, n in want.items() if c not in have]
    return out + [Difference("index_extra", table.name, ", ".join(c), None, n) for c, n in have.items() if c not in want]


_CHECKS: list[Callable[[Dialect, Table, TableInfo], list[Difference]]] = [
    _columns, _primary_key, _foreign_keys, _uniques, _indexes,
]
