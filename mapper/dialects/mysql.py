"""MySQL and MariaDB through PyMySQL, or mysqlclient (MariaDB 10.5+ has INSERT/DELETE ... RETURNING).

The SQL is the same whichever driver sends it; ``MySQLClientDialect`` changes only what the
driver does differently: how it connects, its exception classes and its ping.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
from collections.abc import Sequence
from typing import Any, ClassVar

from .. import errors
from .._typing import DBAPIConnection
from ..schema import Column
from ..types import ColumnType, DateTime
from .base import Dialect, Processor, URL, utc_naive_bind

__all__ = ["MySQLDialect", "MySQLClientDialect"]

# Vendor codes a MySQL driver files under a class other backends would not use for the same fault.
_CODE_CLASSES: dict[int, type[errors.DatabaseError]] = {
    1054: errors.ProgrammingError,  # unknown column
    1064: errors.ProgrammingError,  # syntax error
    1146: errors.ProgrammingError,  # unknown table
    1048: errors.IntegrityError,  # column cannot be null
    1062: errors.IntegrityError,  # duplicate key
    1364: errors.IntegrityError,  # field has no default value (NOT NULL without a value)
    1451: errors.IntegrityError,  # row is referenced
    1452: errors.IntegrityError,  # referenced row missing
    1264: errors.DataError,  # out of range
    1265: errors.DataError,  # data truncated
    1292: errors.DataError,  # incorrect date/time value
    1366: errors.DataError,  # incorrect value for column
    1406: errors.DataError,  # data too long
    # Where PyMySQL and mysqlclient file a code under different classes, the class for both.
    1166: errors.ProgrammingError,  # incorrect column name
    1367: errors.DataError,  # illegal value for the type
    1169: errors.IntegrityError,  # unique constraint (MyISAM's duplicate key)
    2014: errors.OperationalError,  # commands out of sync
}

_LEVELS = frozenset({"READ UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"})


def _time_result(v: Any) -> Any:
    # PyMySQL returns TIME columns as timedelta.
    if v is None or isinstance(v, _dt.time):
        return v
    seconds = int(v.total_seconds())
    return _dt.time(seconds // 3600, (seconds // 60) % 60, seconds % 60, v.microseconds)


def _code(exc: BaseException) -> int | None:
    """The vendor code a MySQL driver puts first in an exception's args (both drivers do)."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None


def _lost(exc: BaseException) -> bool:
    """Whether a driver error's code says the connection is gone (server gone away, lost
    connection, commands out of sync, killed)."""
    return _code(exc) in (2006, 2013, 2014, 2045, 2055, 1927)


def _aware_result(v: Any) -> Any:
    return None if v is None else v.replace(tzinfo=_dt.timezone.utc)


class MySQLDialect(Dialect):
    """MySQL 8 / MariaDB 10.5+ via PyMySQL, with CLIENT.FOUND_ROWS so rowcount counts matches."""

    name = "mysql"
    install_extra = "mysql"
    #: The driver's name in a SQLAlchemy URL (``mysql+pymysql://``), for ``mapper.migrations``.
    sqlalchemy_driver: ClassVar[str] = "pymysql"
    marker = "%s"
    quote_char = "`"
    insert_returning = False  # refined to True on MariaDB 10.5+
    update_returning = False
    delete_returning = False
    max_params = 65535
    ilike_operator = None
    no_limit = "18446744073709551615"
    default_values_sql = "() VALUES ()"
    # Deadlocks (Galera's certification failures arrive as 1213 too), and TiDB's conflicts that
    # its documentation says to answer by running the whole transaction again: 8002 (SELECT FOR
    # UPDATE met a write conflict), 8005 and 9007 (write conflicts), 8022 (commit failed).
    retryable_codes = frozenset({"1213", "1020", "40001", "8002", "8005", "8022", "9007"})
    backslash_escapes = True
    mysql_comments = True
    type_names: ClassVar[dict[str, str]] = {
        "integer": "INT",
        "biginteger": "BIGINT",
        "smallinteger": "SMALLINT",
        "string": "VARCHAR({length})",
        "text": "LONGTEXT",
        "boolean": "BOOL",
        "float": "DOUBLE",
        "numeric": "DECIMAL({precision}, {scale})",
        "date": "DATE",
        "datetime": "DATETIME(6)",
        "time": "TIME(6)",
        "uuid": "CHAR(36)",
        "json": "JSON",
        "enum": "VARCHAR({length})",
        "binary": "LONGBLOB",
    }
    table_suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

    lock_of = False

    def lock_sql(self, shared: bool, nowait: bool, skip_locked: bool, of: Sequence[str]) -> str:
        # MariaDB has no FOR SHARE and no OF: a lock covers every table the SELECT reads.
        sql = " LOCK IN SHARE MODE" if shared else " FOR UPDATE"
        if nowait:
            sql += " NOWAIT"
        if skip_locked:
            sql += " SKIP LOCKED"
        return sql

    def upsert_sql(self, table: str, columns: Sequence[str], nrows: int, conflict: Sequence[str], update: Sequence[str],
                   returning: Sequence[str]) -> str:
        # ON DUPLICATE KEY UPDATE matches any unique key of the table, not only ``conflict``.
        q = self.quote
        row = "(" + ", ".join([self.marker] * len(columns)) + ")"
        sql = f"INSERT INTO {q(table)} (" + ", ".join(q(c) for c in columns) + ") VALUES " + ", ".join([row] * nrows)
        sets = update or conflict[:1]
        sql += " ON DUPLICATE KEY UPDATE " + ", ".join(f"{q(c)} = VALUES({q(c)})" for c in sets)
        if returning:  # MariaDB 10.5+ (insert_returning); MySQL reads the rows back instead
            sql += " RETURNING " + ", ".join(q(c) for c in returning)
        return sql

    def skip_existing_sql(self, columns: Sequence[str]) -> str:
        # INSERT IGNORE would also turn foreign-key and NOT NULL failures into warnings; a
        # no-op assignment on a duplicate key skips only the conflicting row.
        first = self.quote(columns[0])
        return f" ON DUPLICATE KEY UPDATE {first} = {first}"

    def __init__(self) -> None:
        super().__init__()
        self.is_mariadb = False

    @staticmethod
    def _connect_kwargs(url: URL, found_rows: int) -> dict[str, Any]:
        """The connect arguments both drivers take alike (``found_rows``: the driver's flag)."""
        kwargs: dict[str, Any] = {
            "host": url.host or "127.0.0.1",
            "port": url.port or 3306,
            "user": url.username or "root",
            "password": url.password or "",
            "charset": "utf8mb4",
            "autocommit": False,
            # Matched rows, not changed rows: a version check must not mistake "same value" for "gone".
            "client_flag": found_rows,
            "init_command": "SET time_zone = '+00:00'",
        }
        if url.database:
            kwargs["database"] = url.database
        return kwargs

    def connect(self, url: URL, options: dict[str, Any]) -> DBAPIConnection:
        import pymysql
        from pymysql.constants import CLIENT

        kwargs = self._connect_kwargs(url, CLIENT.FOUND_ROWS)
        # PyMySQL's connect_timeout bounds the TCP connect only; the handshake after it reads
        # with read_timeout, so a server that accepts and never answers would hang us there.
        # Reads and writes get the same limit until the connection is made.
        timeout = min(float(options.get("connect_timeout", 10.0)), 31536000.0)
        kwargs.update(connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout)
        connect_args = options.get("connect_args", {})
        kwargs.update(connect_args)
        raw = pymysql.connect(**kwargs)
        # Then back to what was asked for (no limit by default: a long query is not a lost server).
        raw._read_timeout = connect_args.get("read_timeout")
        raw._write_timeout = connect_args.get("write_timeout")
        return raw  # type: ignore[no-any-return]

    def initialize(self, raw: DBAPIConnection) -> None:
        info = raw.get_server_info()  # type: ignore[attr-defined]
        self.is_mariadb = "mariadb" in info.lower()
        digits = info.split("-")
        # MariaDB reports "5.5.5-10.11.6-MariaDB" through the MySQL protocol.
        if self.is_mariadb and digits[0] == "5.5.5" and len(digits) > 1:
            digits = digits[1:]
        try:
            self.server_version = tuple(int(p) for p in digits[0].split(".")[:3])
        except ValueError:
            self.server_version = ()
        if self.is_mariadb and self.server_version >= (10, 5):
            self.insert_returning = True
            self.delete_returning = True
        # PyMySQL interpolates parameters into the statement text, so the limit on a statement
        # is the server's packet size, not a placeholder count: size IN lists from it (keys are
        # at most ~32 bytes each once quoted and separated).
        cur = raw.cursor()
        try:
            cur.execute("SELECT @@max_allowed_packet")
            packet = int(cur.fetchone()[0])
        finally:
            cur.close()
        self.max_params = max(1000, packet // 32)
        # Binary collations compare like the other backends (case-sensitive); the NO PAD ones
        # also keep trailing spaces significant ('a' <> 'a ').
        if self.is_mariadb:
            collation = "utf8mb4_nopad_bin"
        elif self.server_version >= (8,):
            collation = "utf8mb4_0900_bin"
        else:
            collation = "utf8mb4_bin"
        self.table_suffix = f" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE={collation}"

    # PyMySQL's executemany sends an UPDATE per row; a join against the rows as a derived
    # table sends one per chunk (ten to twenty times faster at 10,000 rows, measured).
    update_values_rows = 1000

    def update_values_sql(
        self, table: str, set_columns: Sequence[Column], keys: Sequence[Column], version: Column | None, n: int
    ) -> str | None:
        q = self.quote
        cols = [*set_columns, *keys, *([version] if version is not None else [])]
        first = "SELECT " + ", ".join(f"%s AS c{i}" for i in range(len(cols)))
        rest = " UNION ALL SELECT " + ", ".join(["%s"] * len(cols))
        rows = first + rest * (n - 1)
        ns = len(set_columns)
        on = [f"t.{q(c.name)} = v.c{ns + i}" for i, c in enumerate(keys)]
        if version is not None:
            on.append(f"t.{q(version.name)} = v.c{len(cols) - 1}")
        sets = ", ".join(f"t.{q(c.name)} = v.c{i}" for i, c in enumerate(set_columns))
        return f"UPDATE {q(table)} AS t JOIN ({rows}) AS v ON " + " AND ".join(on) + f" SET {sets}"

    def set_read_only(self, raw: DBAPIConnection, on: bool) -> None:
        with raw.cursor() as cur:
            cur.execute(f"SET SESSION TRANSACTION {'READ ONLY' if on else 'READ WRITE'}")

    def on_connect(self, raw: DBAPIConnection, isolation_level: str | None) -> None:
        if isolation_level is None:
            return
        level = isolation_level.upper().replace("_", " ")
        if level not in _LEVELS:
            msg = f"isolation_level={isolation_level!r} is not one of {sorted(_LEVELS)}"
            raise errors.ConfigurationError(msg)
        cur = raw.cursor()
        cur.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {level}")
        cur.close()

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        import pymysql

        return (pymysql.err.Error, *super().driver_errors())

    def error_class(self, exc: BaseException) -> type[errors.DatabaseError]:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in _CODE_CLASSES:
            return _CODE_CLASSES[code]
        return super().error_class(exc)

    def ping(self, raw: DBAPIConnection) -> bool:
        try:
            raw.ping(reconnect=False)  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - any failure means the connection is gone
            return False
        return True

    def error_code(self, exc: BaseException) -> str | None:
        if exc.args and isinstance(exc.args[0], int):
            return str(exc.args[0])
        return None

    def is_disconnect(self, exc: BaseException) -> bool:
        import pymysql

        return isinstance(exc, pymysql.err.InterfaceError) or _lost(exc)

    def _make_bind(self, type_: ColumnType) -> Processor | None:
        if isinstance(type_, DateTime) and type_.timezone:
            return utc_naive_bind(type_)
        return super()._make_bind(type_)

    def _make_result(self, type_: ColumnType) -> Processor | None:
        kind = type_.kind
        if kind == "time":
            return _time_result
        if isinstance(type_, DateTime):
            return _aware_result if type_.timezone else None
        if kind in ("numeric", "float"):
            return None
        return super()._make_result(type_)

    def type_sql(self, col: Column, autoincrement: bool) -> str:
        t = col.type
        if isinstance(t, DateTime) and t.precision is not None:
            return "DATETIME" if t.precision == 0 else f"DATETIME({t.precision})"
        return super().type_sql(col, autoincrement)

    def autoincrement_clause(self, col: Any) -> str:
        return " AUTO_INCREMENT"

    def existing_tables_sql(self) -> str:
        return "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"

    def drop_tables_sql(self, tables: list[str]) -> list[str]:  # type: ignore[override]
        if not tables:
            return []
        return [
            "SET FOREIGN_KEY_CHECKS = 0",
            "DROP TABLE IF EXISTS " + ", ".join(self.quote(t) for t in tables),
            "SET FOREIGN_KEY_CHECKS = 1",
        ]


@functools.cache
def _mysqlclient_cursor() -> Any:
    """mysqlclient's cursor, with PyMySQL's statement size for an executemany INSERT.

    Both drivers send an executemany INSERT as multi-row INSERTs of at most ``max_stmt_length``
    characters; mysqlclient's 64 KiB would send about ten times the statements of PyMySQL's 1 MB.
    """
    from MySQLdb.cursors import Cursor

    return type("Cursor", (Cursor,), {"max_stmt_length": 1024000, "__module__": __name__})


class MySQLClientDialect(MySQLDialect):
    """MySQL 8 / MariaDB 10.5+ via mysqlclient (``MySQLdb``, on the C client library).

    Chosen by the URL scheme ``mysql+mysqlclient://`` (or ``mysql+mysqldb://``, SQLAlchemy's
    name for it). The SQL, the type conversions and the error classification are the MySQL
    dialect's: both drivers paste ``%s`` parameters into the text client-side, return TIME as
    timedelta, DECIMAL as Decimal and JSON as text, and put the vendor code first in an
    exception's args. What differs is the connect call, the exception classes and ping; where
    mysqlclient's defaults differ from PyMySQL's, ``connect`` sets it up like PyMySQL.
    """

    install_extra = "mysqlclient"
    sqlalchemy_driver = "mysqldb"

    def connect(self, url: URL, options: dict[str, Any]) -> DBAPIConnection:
        import MySQLdb
        from MySQLdb.constants import CLIENT

        kwargs = self._connect_kwargs(url, CLIENT.FOUND_ROWS)
        kwargs.update({
            # mysqlclient turns multi-statement text on by default; PyMySQL does not. Off, so
            # that "a; b" is one (failing) statement on either driver, never two.
            "multi_statements": False,
            # Bytes as _binary'...' literals, binary as PyMySQL's X'...' are: a plain '...' would
            # be read as utf8mb4 text where no column type says otherwise (a derived table).
            "binary_prefix": True,
            "cursorclass": _mysqlclient_cursor(),
            # The C library bounds the TCP connect and the handshake with it, in whole seconds
            # (0 would mean no limit): round up. Reads after that have no limit unless asked.
            "connect_timeout": max(1, math.ceil(min(float(options.get("connect_timeout", 10.0)), 31536000.0))),
        })
        kwargs.update(options.get("connect_args", {}))
        return MySQLdb.connect(**kwargs)  # type: ignore[no-any-return]

    def driver_errors(self) -> tuple[type[BaseException], ...]:
        import MySQLdb

        return (MySQLdb.Error, *Dialect.driver_errors(self))

    def error_class(self, exc: BaseException) -> type[errors.DatabaseError]:
        # A connection closed on our side answers OperationalError(2006, '') where PyMySQL
        # raises InterfaceError(0, ''): the same fault, reported as the same class.
        if exc.args == (2006, ""):
            return errors.InterfaceError
        return super().error_class(exc)

    def ping(self, raw: DBAPIConnection) -> bool:
        # mysqlclient's ping() never reconnects unless told to (and warns when told anything).
        try:
            raw.ping()  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - any failure means the connection is gone
            return False
        return True

    def is_disconnect(self, exc: BaseException) -> bool:
        import MySQLdb

        return isinstance(exc, MySQLdb.InterfaceError) or _lost(exc)
