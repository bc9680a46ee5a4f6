"""PostgreSQL through psycopg 3, pooled by psycopg-pool."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from .. import errors
from .._typing import ConnectionPool, DBAPIConnection
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

        conn = psycopg.connect(url.raw, autocommit=False, **options.get("connect_args", {}))
        return conn

    def create_pool(self, engine: Any, size: int, timeout: float) -> ConnectionPool:
        """A psycopg-pool ConnectionPool behind mapper's pool protocol."""
        return _PsycopgPool(self, engine, size, timeout)

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

    def server_cursor(self, raw: DBAPIConnection) -> Any:
        self._cursor_seq = getattr(self, "_cursor_seq", 0) + 1
        return raw.cursor(name=f"mapper_stream_{self._cursor_seq}")

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


class _PsycopgPool:
    """psycopg-pool's ConnectionPool, adapted: errors become mapper.errors, broken ones are dropped."""

    def __init__(self, dialect: PostgreSQLDialect, engine: Any, size: int, timeout: float) -> None:
        from psycopg_pool import ConnectionPool as _Pool

        self._dialect = dialect
        self._engine = engine
        self._lock = threading.Lock()
        self._out = 0
        self._timeout = timeout
        self._size = size
        isolation = engine.isolation_level
        if isolation is not None:
            dialect.on_connect_check(isolation)

        def configure(conn: Any) -> None:
            dialect.on_connect(conn, isolation)

        self._pool = _Pool(
            engine.url.raw,
            min_size=1,
            max_size=size,
            timeout=timeout,
            open=True,
            configure=configure,
            # A connection the server dropped while it sat in the pool is replaced, not lent.
            check=_Pool.check_connection if engine.pre_ping else None,
            kwargs={"autocommit": False, **engine.options.get("connect_args", {})},
            name="mapper",
        )

    def acquire(self) -> Any:
        from psycopg_pool import PoolTimeout, PoolClosed

        try:
            raw = self._pool.getconn()
        except PoolTimeout as exc:
            # Either every connection is in use, or the server cannot be reached: say which.
            # A full pool needs no probe (which would be one connection over pool_size).
            stats = self._pool.get_stats()
            if stats.get("pool_size", 0) >= self._size:
                raise errors.PoolTimeoutError.waited(self._timeout, self._size) from exc
            try:
                probe = self._dialect.connect(self._engine.url, self._engine.options)
            except Exception as conn_exc:  # noqa: BLE001
                msg = f"cannot connect to {self._engine.url.safe()}: {self._engine.url.mask(str(conn_exc))}"
                raise errors.OperationalError(msg, orig=conn_exc) from None
            probe.close()
            raise errors.PoolTimeoutError.waited(self._timeout, self._size) from exc
        except PoolClosed as exc:
            msg = "the Database is closed; create a new one"
            raise errors.InterfaceError(msg) from exc
        with self._lock:
            self._out += 1
        return raw

    @property
    def checked_out(self) -> int:
        """Connections currently lent to sessions."""
        return self._out

    def release(self, raw: Any, discard: bool = False) -> None:
        with self._lock:
            self._out -= 1
        if discard and not raw.closed:
            try:
                raw.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail
                pass
        self._pool.putconn(raw)

    def close(self) -> None:
        self._pool.close()
