"""SQLite through the standard library's sqlite3 (the embedded default)."""

from __future__ import annotations

import datetime as _dt
import sqlite3
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar

from .. import errors
from .._typing import DBAPIConnection
from ..schema import Column, Table
from ..types import ColumnType, DateTime, Numeric
from . import values
from .base import Dialect, Processor, URL

__all__ = ["SQLiteDialect"]

# Messages sqlite3 reports as OperationalError that other backends call programming errors.
_PROGRAMMING_MESSAGES = (
    "no such table", "no such column", "syntax error", "has no column named", "no such function",
    "incomplete input", "unrecognized token",
)

_ISOLATION = {"SERIALIZABLE": "DEFERRED", "IMMEDIATE": "IMMEDIATE", "EXCLUSIVE": "EXCLUSIVE"}


#: SQLite's numbers keep 15 significant digits; narrower decimals are stored as numbers.
_EXACT_DIGITS = 15


def _stored_as_number(type_: ColumnType) -> bool:
    return isinstance(type_, Numeric) and type_.precision is not None and type_.precision <= _EXACT_DIGITS


def _decimal_result(type_: Numeric) -> Processor:
    quantize = values.numeric_quantizer(type_)

    def result(v: Any) -> Any:
        if v is None or isinstance(v, Decimal):
            return v
        # repr of a float is the shortest text that reads back as it; within 15 digits
        # that is the decimal that was stored, and the scale restores trailing zeros (text
        # storage is written rounded already; rows written by other means are rounded here).
        d = Decimal(repr(v)) if isinstance(v, float) else Decimal(str(v))
        return quantize(d)

    return result


def _naive_iso(v: Any) -> Any:
    return v.isoformat(" ")


def _iso(v: Any) -> Any:
    return v.isoformat()


def _aware_bind(v: Any) -> Any:
    if v is None:
        return None
    if v.tzinfo is not None:
        v = v.astimezone(_dt.timezone.utc)
    return v.isoformat(" ")


def _aware_result(v: Any) -> Any:
    if v is None:
        return None
    d = _dt.datetime.fromisoformat(v)
    return d if d.tzinfo is not None else d.replace(tzinfo=_dt.timezone.utc)


class SQLiteDialect(Dialect):
    """SQLite 3.35+ (RETURNING). Dates, times, decimals and UUIDs are stored as text."""

    name = "sqlite"
    marker = "?"
    quote_char = '"'
    insert_returning = True
    update_returning = True
    delete_returning = True
    max_params = 999
    ilike_operator = None
    # "database is locked": SQLite's serialization failure. Two transactions that both read and
    # then write deadlock on the lock upgrade (SQLite answers at once rather than wait), and in
    # WAL mode a writer whose snapshot went stale gets BUSY_SNAPSHOT; the remedy is to roll
    # back and run again. A busy timeout that runs out reports the same code.
    # The in-memory database's shared cache reports the same conflict as a table lock.
    retryable_codes = frozenset({"SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_LOCKED_SHAREDCACHE"})
    for_update_sql = ""
    row_locks = False
    cast_numeric_results = True
    lock_of = False
    inline_forward_fks = True
    type_names: ClassVar[dict[str, str]] = {
        "integer": "INTEGER",
        "biginteger": "BIGINT",
        "smallinteger": "SMALLINT",
        "string": "VARCHAR({length})",
        "text": "TEXT",
        "boolean": "BOOLEAN",
        "float": "REAL",
        # Text affinity keeps every digit of wide decimals (see type_sql for narrow ones).
        "numeric": "DECIMAL_TEXT({precision}, {scale})",
        "date": "DATE",
        "datetime": "DATETIME",
        "time": "TIME",
        "uuid": "CHAR(36)",
        "json": "JSON_TEXT",
        "enum": "VARCHAR({length})",
        "binary": "BLOB",
    }

    def __init__(self) -> None:
        super().__init__()
        self.begin_sql = "BEGIN"

    def connect(self, url: URL, options: dict[str, Any]) -> DBAPIConnection:
        path = url.database
        uri = False
        if path in ("", ":memory:"):
            # One in-memory database shared by every connection of this Database.
            path = f"file:mapper-mem-{options['memory_name']}?mode=memory&cache=shared"
            uri = True
        elif path.startswith("file:"):
            uri = True
        conn: sqlite3.Connection = sqlite3.connect(
            path,
            timeout=float(options.get("busy_timeout", 5.0)),
            isolation_level=None,  # we issue BEGIN ourselves, reads included
            check_same_thread=False,
            uri=uri,
            **options.get("connect_args", {}),
        )
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def ping(self, raw: DBAPIConnection) -> bool:
        # Nothing outside can end a SQLite connection: only one closed under us is dead.
        try:
            raw.in_transaction  # type: ignore[attr-defined]
        except sqlite3.ProgrammingError:
            return False
        return True

    def needs_keeper(self, url: URL) -> bool:
        return url.database in ("", ":memory:")

    # UPDATE ... FROM (3.33+): one statement per chunk of changed rows. A thousand rows per
    # statement measured fastest (larger VALUES tables got slower per row than executemany).
    update_values_rows = 1000

    def update_values_sql(
        self, table: str, set_columns: Sequence[Column], keys: Sequence[Column], version: Column | None, n: int
    ) -> str | None:
        q = self.quote
        width = len(set_columns) + len(keys) + (version is not None)
        row = "(" + ", ".join("?" * width) + ")"
        # VALUES names its columns column1, column2, ... in the order the rows bind them.
        sets = ", ".join(f"{q(c.name)} = v.column{i + 1}" for i, c in enumerate(set_columns))
        where = [f"t.{q(c.name)} = v.column{len(set_columns) + i + 1}" for i, c in enumerate(keys)]
        if version is not None:
            where.append(f"t.{q(version.name)} = v.column{width}")
        values = ", ".join([row] * n)
        return f"UPDATE {q(table)} AS t SET {sets} FROM (VALUES {values}) AS v WHERE " + " AND ".join(where)

    def initialize(self, raw: DBAPIConnection) -> None:
        self.server_version = sqlite3.sqlite_version_info
        if self.server_version < (3, 33):
            self.update_values_rows = 0
        if self.server_version < (3, 35):
            self.insert_returning = self.update_returning = self.delete_returning = False
        try:
            self.max_params = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)  # type: ignore[attr-defined]
        except AttributeError:  # pragma: no cover - Python < 3.11
            self.max_params = 999

    def on_connect(self, raw: DBAPIConnection, isolation_level: str | None) -> None:
        if isolation_level is None:
            return
        level = isolation_level.upper().replace("_", " ")
        if level == "READ UNCOMMITTED":
            raw.execute("PRAGMA read_uncommitted=1")  # type: ignore[attr-defined]
            return
        mode = _ISOLATION.get(level)
        if mode is None:
            msg = (
                f"isolation_level={isolation_level!r} is not available on SQLite; use None, "
                "'SERIALIZABLE', 'READ UNCOMMITTED', 'IMMEDIATE' or 'EXCLUSIVE'"
            )
            raise errors.ConfigurationError(msg)
        self.begin_sql = f"BEGIN {mode}"

    def set_read_only(self, raw: DBAPIConnection, on: bool) -> None:
        raw.execute(f"PRAGMA query_only = {'ON' if on else 'OFF'}")  # type: ignore[attr-defined]

    def begin(self, raw: DBAPIConnection) -> None:
        raw.execute(self.begin_sql)  # type: ignore[attr-defined]

    def commit(self, raw: DBAPIConnection) -> None:
        if raw.in_transaction:  # type: ignore[attr-defined]
            raw.execute("COMMIT")  # type: ignore[attr-defined]

    def rollback(self, raw: DBAPIConnection) -> None:
        if raw.in_transaction:  # type: ignore[attr-defined]
            raw.execute("ROLLBACK")  # type: ignore[attr-defined]

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error, OverflowError, *super().driver_errors())

    def error_class(self, exc: BaseException) -> type[errors.DatabaseError]:
        if isinstance(exc, OverflowError):
            return errors.DataError
        if self.is_disconnect(exc):
            # sqlite3 reports a closed connection as ProgrammingError, the class of bad SQL;
            # the other drivers call it an interface or operational failure.
            return errors.InterfaceError
        if isinstance(exc, sqlite3.OperationalError):
            text = str(exc).lower()
            if any(m in text for m in _PROGRAMMING_MESSAGES):
                return errors.ProgrammingError
        return super().error_class(exc)

    def error_code(self, exc: BaseException) -> str | None:
        return getattr(exc, "sqlite_errorname", None)

    def is_disconnect(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.ProgrammingError) and "closed" in str(exc)

    def _make_bind(self, type_: ColumnType) -> Processor | None:
        kind = type_.kind
        if isinstance(type_, Numeric):
            return values.numeric_bind(type_, as_text=True)
        if kind == "datetime":
            if isinstance(type_, DateTime) and type_.timezone:
                return _aware_bind
            return values.naive_datetime_bind(type_, _naive_iso)
        if kind == "time":
            return values.time_bind(type_, _iso)
        if kind == "date":
            return lambda v: None if v is None else v.isoformat()
        return super()._make_bind(type_)

    def _make_result(self, type_: ColumnType) -> Processor | None:
        kind = type_.kind
        if isinstance(type_, Numeric):
            return _decimal_result(type_)
        if kind == "datetime":
            if isinstance(type_, DateTime) and type_.timezone:
                return _aware_result
            return lambda v: None if v is None else _dt.datetime.fromisoformat(v)
        if kind == "date":
            return lambda v: None if v is None else _dt.date.fromisoformat(v)
        if kind == "time":
            return lambda v: None if v is None else _dt.time.fromisoformat(v)
        if kind == "uuid":
            return lambda v: None if v is None else uuid.UUID(v)
        return super()._make_result(type_)

    def type_sql(self, col: Column, autoincrement: bool) -> str:
        if autoincrement:
            # Only exactly "INTEGER PRIMARY KEY" makes the column the rowid alias.
            return "INTEGER"
        t = col.type
        if isinstance(t, Numeric) and _stored_as_number(t):
            # Numeric affinity: compared and ordered as numbers, exact within 15 digits.
            return "NUMERIC({}, {})".format(*t.digits)
        return super().type_sql(col, autoincrement)

    def autoincrement_clause(self, col: Column) -> str:
        # AUTOINCREMENT: a deleted row's key is never handed out again, as on the servers.
        return " AUTOINCREMENT"

    def inline_primary_key(self, table: Table) -> bool:
        return table.autoincrement_column is not None

    def existing_tables_sql(self) -> str:
        return "SELECT name FROM sqlite_master WHERE type = 'table'"

    def drop_tables_sql(self, tables: list[str]) -> list[str]:  # type: ignore[override]
        # Dropping tables that reference each other would trip the foreign keys one drop at a
        # time; deferring the check to commit lets the whole set go in one transaction.
        return ["PRAGMA defer_foreign_keys = ON", *super().drop_tables_sql(tables)]
