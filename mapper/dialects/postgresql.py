"""PostgreSQL through psycopg 3."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from .. import errors
from .._typing import DBAPIConnection
from ..schema import Column
from ..types import ColumnType, DateTime
from . import values
from .base import Dialect, Processor, URL

__all__ = ["PostgreSQLDialect"]

_LEVELS = {
    "READ UNCOMMITTED": "READ_UNCOMMITTED",
    "READ COMMITTED": "READ_COMMITTED",
    "REPEATABLE READ": "REPEATABLE_READ",
    "SERIALIZABLE": "SERIALIZABLE",
}


# admin_shutdown, crash_shutdown, cannot_connect_now
_GONE = frozenset({"57P01", "57P02", "57P03"})


class PostgreSQLDialect(Dialect):
    """PostgreSQL 12+ with psycopg 3 (server-side binding, so the 65535-parameter limit holds)."""

    name = "postgresql"
    install_extra = "postgresql"
    marker = "%s"
    quote_char = '"'
    insert_returning = True
    update_returning = True
    delete_returning = True
    array_in = True
    array_dml_rows = 20000
    max_params = 65535
    # The parser walks a row-value IN list recursively: near 7,000 rows it exhausts the default
    # 2 MB max_stack_depth ("stack depth limit exceeded"). Flush deletes bind arrays instead;
    # the lists that remain are cut well below that.
    max_row_values = 1000
    ilike_operator = "ILIKE"
    retryable_codes = frozenset({"40001", "40P01"})
    e_strings = True
    dollar_quotes = True
    no_limit = "ALL"
    json_float_fraction = True
    nulls_first = False
    type_names: ClassVar[dict[str, str]] = {
        "integer": "INTEGER",
        "biginteger": "BIGINT",
        "smallinteger": "SMALLINT",
        "string": "VARCHAR({length})",
        "text": "TEXT",
        "boolean": "BOOLEAN",
        "float": "DOUBLE PRECISION",
        "numeric": "NUMERIC({precision}, {scale})",
        "date": "DATE",
        "datetime": "TIMESTAMP",
        "time": "TIME",
        "uuid": "UUID",
        "json": "JSONB",
        "enum": "VARCHAR({length})",
        "binary": "BYTEA",
    }

    def connect(self, url: URL, options: dict[str, Any]) -> DBAPIConnection:
        import psycopg

        kwargs: dict[str, Any] = {"autocommit": False}
        if "connect_timeout" not in url.query:
            # libpq waits whole seconds (and at least 2): round up, never down to "forever".
            kwargs["connect_timeout"] = math.ceil(options.get("connect_timeout", 10.0))
        kwargs.update(options.get("connect_args", {}))
        conn = psycopg.connect(url.driver_url, **kwargs)
        return conn

    def ping(self, raw: DBAPIConnection) -> bool:
        # psycopg-pool's check: an empty query outside any transaction, one round trip.
        try:
            if raw.closed:  # type: ignore[attr-defined]
                return False
            raw.autocommit = True  # type: ignore[attr-defined]
            try:
                raw.execute("")  # type: ignore[attr-defined]
            finally:
                raw.autocommit = False  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - any failure means the connection is gone
            return False
        return True

    def set_read_only(self, raw: DBAPIConnection, on: bool) -> None:
        # psycopg opens each transaction with BEGIN READ ONLY then: no round trip here.
        raw.read_only = on  # type: ignore[attr-defined]

    def check_isolation_level(self, isolation_level: str) -> None:
        self.on_connect_check(isolation_level)

    def on_connect_check(self, isolation_level: str) -> str:
        """The psycopg IsolationLevel name for a level, or a ConfigurationError."""
        level = _LEVELS.get(isolation_level.upper().replace("_", " "))
        if level is None:
            msg = f"isolation_level={isolation_level!r} is not one of {sorted(_LEVELS)}"
            raise errors.ConfigurationError(msg)
        return level

    def on_connect(self, raw: DBAPIConnection, isolation_level: str | None) -> None:
        if isolation_level is None:
            return
        import psycopg

        level = self.on_connect_check(isolation_level)
        raw.isolation_level = getattr(psycopg.IsolationLevel, level)  # type: ignore[attr-defined]

    def initialize(self, raw: DBAPIConnection) -> None:
        v = raw.info.server_version  # type: ignore[attr-defined]
        self.server_version = (v // 10000, v % 10000)

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error, *super().driver_errors())

    def error_code(self, exc: BaseException) -> str | None:
        return getattr(exc, "sqlstate", None)

    def is_disconnect(self, exc: BaseException) -> bool:
        import psycopg

        if isinstance(exc, psycopg.InterfaceError):
            return True
        if not isinstance(exc, psycopg.OperationalError):
            return False
        # A serialization failure or a lock timeout is an OperationalError too, on a healthy
        # connection; only a lost link (no SQLSTATE), class 08 or an administrator's shutdown
        # (57P01-57P03) means the connection is gone.
        code = getattr(exc, "sqlstate", None)
        return code is None or code.startswith("08") or code in _GONE

    def _make_bind(self, type_: ColumnType) -> Processor | None:
        if type_.kind == "uuid":
            return None  # psycopg adapts uuid.UUID natively
        if isinstance(type_, DateTime) and type_.timezone:
            # A naive value would be read in the session's time zone: take it as UTC, as
            # SQLite and MySQL do.
            return values.aware_datetime_bind
        return super()._make_bind(type_)

    def _make_result(self, type_: ColumnType) -> Processor | None:
        kind = type_.kind
        if kind in ("json", "uuid", "boolean", "numeric", "float"):
            return None  # psycopg loads these as Python values already
        return super()._make_result(type_)

    def type_sql(self, col: Column, autoincrement: bool) -> str:
        t = col.type
        if isinstance(t, DateTime) and t.precision is not None:
            return f"TIMESTAMP({t.precision})" + (" WITH TIME ZONE" if t.timezone else "")
        if isinstance(t, DateTime) and t.timezone:
            return "TIMESTAMPTZ"
        return super().type_sql(col, autoincrement)

    def autoincrement_clause(self, col: Column) -> str:
        return " GENERATED BY DEFAULT AS IDENTITY"

    def sync_sequence_sql(self, table: str, column: str) -> str | None:
        # An identity column's sequence does not see explicit values: move it past the
        # largest key, or the next generated key would collide.
        t, c = self.quote(table), self.quote(column)
        # The table argument is parsed as a (schema-qualified) name and folded to lower case
        # unless quoted; the column argument is taken as written.
        lit = t.replace("'", "''")
        col = column.replace("'", "''")
        return (
            f"SELECT setval(pg_get_serial_sequence('{lit}', '{col}'), "
            f"(SELECT COALESCE(max({c}), 1) FROM {t}), (SELECT max({c}) IS NOT NULL FROM {t}))"
        )

    def _array_type(self, col: Column) -> str | None:
        return self.type_sql(col, False) + "[]"

    def _unnest(self, columns: Sequence[Column]) -> str | None:
        types = [self._array_type(c) for c in columns]
        if not types or any(t is None for t in types):
            return None
        return "unnest(" + ", ".join(f"%s::{t}" for t in types) + ")"

    def insert_arrays_sql(self, table: str, columns: Sequence[Column], returning: Sequence[str]) -> str | None:
        # One statement per table, whatever the row count: INSERT ... SELECT FROM unnest(...)
        # WITH ORDINALITY ... ORDER BY the ordinal, so keys are drawn in array order.
        arrays = self._unnest(columns)
        if arrays is None:
            return None
        q = self.quote
        names = [f"c{i}" for i in range(len(columns))]
        sql = (
            f"INSERT INTO {q(table)} (" + ", ".join(q(c.name) for c in columns) + ") "
            "SELECT " + ", ".join(f"v.{n}" for n in names) + f" FROM {arrays} WITH ORDINALITY AS v("
            + ", ".join(names) + ", ord) ORDER BY v.ord"
        )
        if returning:
            sql += " RETURNING " + ", ".join(q(c) for c in returning)
        return sql

    def update_arrays_sql(self, table: str, set_columns: Sequence[Column], keys: Sequence[Column], version: Column | None) -> str | None:
        # UPDATE ... FROM unnest(...): one statement for every changed row of a column set.
        cols = [*set_columns, *keys, *([version] if version is not None else [])]
        arrays = self._unnest(cols)
        if arrays is None:
            return None
        q = self.quote
        names = [f"c{i}" for i in range(len(cols))]
        n = len(set_columns)
        sets = ", ".join(f"{q(c.name)} = v.{names[i]}" for i, c in enumerate(set_columns))
        conds = [f"t.{q(c.name)} = v.{names[n + i]}" for i, c in enumerate(keys)]
        if version is not None:
            conds.append(f"t.{q(version.name)} = v.{names[-1]}")
        return f"UPDATE {q(table)} AS t SET {sets} FROM {arrays} AS v(" + ", ".join(names) + ") WHERE " + " AND ".join(conds)

    def delete_arrays_sql(self, table: str, keys: Sequence[Column], version: Column | None) -> str | None:
        # DELETE ... USING unnest(...): one statement for every row, where a row-value IN list
        # would run out of stack (see max_row_values).
        cols = [*keys, *([version] if version is not None else [])]
        arrays = self._unnest(cols)
        if arrays is None:
            return None
        q = self.quote
        names = [f"c{i}" for i in range(len(cols))]
        conds = " AND ".join(f"t.{q(c.name)} = v.{n}" for c, n in zip(cols, names))
        return f"DELETE FROM {q(table)} AS t USING {arrays} AS v(" + ", ".join(names) + f") WHERE {conds}"

    def existing_tables_sql(self) -> str:
        return (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema()"
        )

    def drop_tables_sql(self, tables: list[str]) -> list[str]:  # type: ignore[override]
        if not tables:
            return []
        # One statement: PostgreSQL drops the tables together, so references among them are fine.
        return ["DROP TABLE IF EXISTS " + ", ".join(self.quote(t) for t in tables)]
