"""Reading a live database's tables from its catalogue: SQLite PRAGMAs, PostgreSQL's pg_catalog,
MariaDB/MySQL's information_schema, into one backend-neutral shape.

Nothing here compares or judges (that is ``drift``); the types are the catalogue's own spelling,
which ``drift`` and ``inspect`` normalise per dialect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .engine import Connection

__all__ = ["ColumnInfo", "ForeignKeyInfo", "IndexInfo", "TableInfo", "read_schema"]


@dataclass(frozen=True)
class ColumnInfo:
    """One column as the catalogue describes it.

    Attributes:
        name: the column name.
        type: the type as the catalogue spells it (``character varying(20)``, ``int(11)``...).
        nullable: NULL allowed.
        default: the DEFAULT expression as the catalogue spells it, or None.
        generated: the database generates the value (identity, AUTO_INCREMENT, rowid alias).
    """

    name: str
    type: str
    nullable: bool
    default: str | None
    generated: bool = False


@dataclass(frozen=True)
class ForeignKeyInfo:
    """A foreign-key constraint; rules are upper case, ``NO ACTION`` where none was given."""

    name: str | None
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    on_delete: str = "NO ACTION"
    on_update: str = "NO ACTION"


@dataclass(frozen=True)
class IndexInfo:
    """An index, or a UNIQUE constraint (``unique`` True): both are column lists with a name."""

    name: str
    columns: tuple[str, ...]
    unique: bool


@dataclass
class TableInfo:
    """One table: its columns in order, key, foreign keys, unique sets and plain indexes."""

    name: str
    columns: list[ColumnInfo] = field(default_factory=list)
    primary_key: tuple[str, ...] = ()
    foreign_keys: list[ForeignKeyInfo] = field(default_factory=list)
    uniques: list[IndexInfo] = field(default_factory=list)
    indexes: list[IndexInfo] = field(default_factory=list)

    def column(self, name: str) -> ColumnInfo | None:
        """The column called ``name``, or None."""
        for c in self.columns:
            if c.name == name:
                return c
        return None


def read_schema(conn: Connection, tables: Iterable[str] | None = None) -> dict[str, TableInfo]:
    """The tables of the connection's database (the current schema on PostgreSQL).

    Args:
        conn: an open connection; only read from.
        tables: only these names (those that exist); None reads every table.

    Returns:
        TableInfo by table name; a name in ``tables`` that does not exist is absent.
    """
    reader = _READERS[conn.dialect.name]
    names = [r[0] for r in conn.fetchall(conn.dialect.existing_tables_sql())]
    if tables is not None:
        wanted = set(tables)
        names = [n for n in names if n in wanted]
    return reader(conn, sorted(names))


# -- SQLite -----------------------------------------------------------------------------------------


def _sqlite(conn: Connection, names: Sequence[str]) -> dict[str, TableInfo]:
    out: dict[str, TableInfo] = {}
    for name in names:
        if name.startswith("sqlite_"):
            continue
        q = conn.dialect.quote(name)
        t = TableInfo(name)
        rows = conn.fetchall(f"PRAGMA table_info({q})")
        pk = sorted((r[5], r[1]) for r in rows if r[5])
        t.primary_key = tuple(c for _, c in pk)
        # Only "INTEGER PRIMARY KEY" (a rowid alias) is generated; AUTOINCREMENT also makes it
        # never reuse a key, which the sqlite_sequence table shows.
        sql_row = conn.fetchall("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [name])
        ddl = (sql_row[0][0] or "") if sql_row else ""
        for cid, cname, ctype, notnull, dflt, pkpos in rows:
            rowid = len(pk) == 1 and bool(pkpos) and str(ctype).upper() == "INTEGER"
            # A rowid alias is never NULL, whatever the PRAGMA says of it.
            t.columns.append(ColumnInfo(cname, str(ctype), not notnull and not rowid, dflt, rowid and "AUTOINCREMENT" in ddl.upper()))
        groups: dict[int, list[Any]] = {}
        for r in conn.fetchall(f"PRAGMA foreign_key_list({q})"):
            groups.setdefault(r[0], []).append(r)
        for _fid, parts in sorted(groups.items()):
            parts.sort(key=lambda r: r[1])
            first = parts[0]
            cols = tuple(r[3] for r in parts)
            refs = tuple(r[4] for r in parts)
            t.foreign_keys.append(ForeignKeyInfo(_sqlite_fk_name(ddl, cols), cols, first[2], refs, first[6].upper(), first[5].upper()))
        for _seq, iname, unique, origin, _partial in conn.fetchall(f"PRAGMA index_list({q})"):
            if origin == "pk":
                continue
            cols = tuple(r[2] for r in sorted(conn.fetchall(f"PRAGMA index_info({conn.dialect.quote(iname)})")))
            info = IndexInfo(_sqlite_unique_name(ddl, cols) if origin == "u" else iname, cols, bool(unique))
            (t.uniques if unique else t.indexes).append(info)
        out[name] = t
    return out


def _sqlite_fk_name(ddl: str, cols: tuple[str, ...]) -> str | None:
    """The CONSTRAINT name of a foreign key, read from the table's CREATE statement (SQLite keeps no other record)."""
    pattern = r'CONSTRAINT\s+"?(\w+)"?\s+FOREIGN\s+KEY\s*\(\s*' + r"\s*,\s*".join(f'"?{re.escape(c)}"?' for c in cols) + r"\s*\)"
    m = re.search(pattern, ddl, re.IGNORECASE)
    return m.group(1) if m else None


def _sqlite_unique_name(ddl: str, cols: tuple[str, ...]) -> str:
    """The CONSTRAINT name of a UNIQUE constraint, as for foreign keys; SQLite's own index name otherwise."""
    pattern = r'CONSTRAINT\s+"?(\w+)"?\s+UNIQUE\s*\(\s*' + r"\s*,\s*".join(f'"?{re.escape(c)}"?' for c in cols) + r"\s*\)"
    m = re.search(pattern, ddl, re.IGNORECASE)
    return m.group(1) if m else "unique_" + "_".join(cols)


# -- PostgreSQL -------------------------------------------------------------------------------------

_PG_RULES = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}

_PG_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity <> ''
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""

_PG_CONSTRAINTS = """
SELECT c.relname, k.conname, k.contype,
       ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
       r.relname,
       ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i),
       k.confdeltype, k.confupdtype
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class r ON r.oid = k.confrelid
WHERE n.nspname = current_schema() AND k.contype IN ('p', 'f', 'u')
ORDER BY c.relname, k.conname
"""

_PG_INDEXES = """
SELECT t.relname, i.relname, x.indisunique,
       ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY u(n, o)
             JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.n ORDER BY u.o)
FROM pg_index x
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND NOT x.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid AND k.contype IN ('u', 'p'))
ORDER BY t.relname, i.relname
"""


def _pg(conn: Connection, names: Sequence[str]) -> dict[str, TableInfo]:
    out = {n: TableInfo(n) for n in names}
    for table, col, ctype, nullable, default, identity in conn.fetchall(_PG_COLUMNS):
        if table in out:
            out[table].columns.append(ColumnInfo(col, ctype, bool(nullable), default, bool(identity) or _serial(default)))
    for table, name, kind, cols, ref, refcols, ondel, onupd in conn.fetchall(_PG_CONSTRAINTS):
        t = out.get(table)
        if t is None:
            continue
        if kind == "p":
            t.primary_key = tuple(cols)
        elif kind == "u":
            t.uniques.append(IndexInfo(name, tuple(cols), True))
        else:
            t.foreign_keys.append(ForeignKeyInfo(name, tuple(cols), ref, tuple(refcols), _PG_RULES[ondel], _PG_RULES[onupd]))
    for table, name, unique, cols in conn.fetchall(_PG_INDEXES):
        if table in out:
            info = IndexInfo(name, tuple(cols), bool(unique))
            (out[table].uniques if unique else out[table].indexes).append(info)
    return out


def _serial(default: str | None) -> bool:
    """A SERIAL column: its default draws from a sequence."""
    return default is not None and default.startswith("nextval(")


# -- MariaDB / MySQL --------------------------------------------------------------------------------

_MY_COLUMNS = """
SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION
"""

_MY_INDEXES = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""

_MY_FKS = """
SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME,
       r.DELETE_RULE, r.UPDATE_RULE
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.TABLE_NAME = k.TABLE_NAME AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION
"""

# MariaDB's JSON is LONGTEXT with a json_valid() check: the check tells the two apart.
_MY_JSON_CHECKS = """
SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = DATABASE() AND CHECK_CLAUSE LIKE 'json_valid(%%)'
"""


def _mysql(conn: Connection, names: Sequence[str]) -> dict[str, TableInfo]:
    out = {n: TableInfo(n) for n in names}
    json_cols = _mysql_json_columns(conn)
    for table, col, ctype, nullable, default, extra in conn.fetchall(_MY_COLUMNS):
        if table in out:
            ctype = "json" if (table, col) in json_cols else str(ctype)
            out[table].columns.append(ColumnInfo(col, ctype, nullable == "YES", default, "auto_increment" in (extra or "").lower()))
    fks: dict[tuple[str, str], list[Any]] = {}
    for row in conn.fetchall(_MY_FKS):
        fks.setdefault((row[0], row[1]), []).append(row)
    fk_names: set[tuple[str, str]] = set()
    for (table, name), parts in fks.items():
        t = out.get(table)
        if t is not None:
            first = parts[0]
            t.foreign_keys.append(ForeignKeyInfo(
                name, tuple(p[2] for p in parts), first[3], tuple(p[4] for p in parts), first[5], first[6]
            ))
            fk_names.add((table, name))
    indexes: dict[tuple[str, str], list[Any]] = {}
    for row in conn.fetchall(_MY_INDEXES):
        indexes.setdefault((row[0], row[1]), []).append(row)
    for (table, name), parts in indexes.items():
        t = out.get(table)
        if t is None:
            continue
        cols = tuple(p[3] for p in parts)
        if name == "PRIMARY":
            t.primary_key = cols
        elif not int(parts[0][2]):
            t.uniques.append(IndexInfo(name, cols, True))
        elif (table, name) not in fk_names:
            # InnoDB adds an index named after each foreign key that no index covers: not the user's.
            t.indexes.append(IndexInfo(name, cols, False))
    return out


def _mysql_json_columns(conn: Connection) -> set[tuple[str, str]]:
    try:
        rows = conn.fetchall(_MY_JSON_CHECKS)
    except errors.DatabaseError:  # MySQL before 8.0.16 has no CHECK_CONSTRAINTS table
        return set()
    found: set[tuple[str, str]] = set()
    for table, clause in rows:
        m = re.fullmatch(r"json_valid\(`?(\w+)`?\)", str(clause).strip())
        if m:
            found.add((table, m.group(1)))
    return found


_READERS = {"sqlite": _sqlite, "postgresql": _pg, "mysql": _mysql}
