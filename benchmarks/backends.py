"""The three backends as the benchmark sees them: URLs, raw DB-API connections, SQL helpers.

A :class:`Backend` knows how to open a plain driver connection (sqlite3, psycopg, PyMySQL, or
mysqlclient for a ``mysql+mysqlclient://`` URL) for
the raw system and for the harness (seeding and verification use their own connection), the
placeholder style, the parameter limit, and how to spell an ``IN`` list and a multi-row
``INSERT ... RETURNING`` on that backend.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from . import schema

__all__ = ["Backend", "default_sqlite", "parse_backend", "MYSQLCLIENT_SCHEMES"]

#: The URL schemes that run a MySQL backend on mysqlclient (MySQLdb) instead of PyMySQL.
MYSQLCLIENT_SCHEMES = ("mysql+mysqlclient", "mariadb+mysqlclient", "mysql+mysqldb", "mariadb+mysqldb")


class Backend:
    """One database to run the workloads on."""

    def __init__(self, kind: str, url: str, *, tmpdir: str | None = None, driver: str = "") -> None:
        self.kind = kind  # "sqlite", "postgresql" or "mysql"
        self.url = url
        #: "mysqlclient" for a MySQL backend on mysqlclient (raw: MySQLdb, mapper: its URL,
        #: SQLAlchemy: mysql+mysqldb); empty for every backend on its default driver.
        self.driver = driver
        self._tmpdir = tmpdir
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else ""
        self.database = parts.path.lstrip("/") if kind != "sqlite" else url[len("sqlite:///"):]
        self.ph = "?" if kind == "sqlite" else "%s"
        #: Filled in by :meth:`probe` from the server.
        self.version = ""
        self.is_mariadb = False
        self.max_params = 32766 if kind == "sqlite" else 65535
        self.insert_returning = kind in ("sqlite", "postgresql")

    # -- naming ----------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        if self.kind == "mysql":
            return ("mariadb" if self.is_mariadb else "mysql") + (f"+{self.driver}" if self.driver else "")
        return self.kind

    @property
    def safe_url(self) -> str:
        if self.password:
            return self.url.replace(":" + self.password + "@", ":***@")
        return self.url

    @property
    def label(self) -> str:
        names = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB" if self.is_mariadb else "MySQL"}
        return f"{names[self.kind]} {self.version}".strip() + (f" ({self.driver})" if self.driver else "")

    @property
    def async_url(self) -> str:
        """mapper's URL for the asyncio systems: mysqlclient has no asyncio interface, so on a
        mysqlclient backend they reach the same server through aiomysql (``mysql://``)."""
        if self.driver == "mysqlclient":
            return "mysql://" + self.url.split("://", 1)[1]
        return self.url

    @property
    def sqlalchemy_url(self) -> str:
        if self.kind == "sqlite":
            return "sqlite:///" + self.database
        if self.kind == "postgresql":
            return "postgresql+psycopg://" + self.url.split("://", 1)[1]
        driver = "mysqldb" if self.driver == "mysqlclient" else "pymysql"
        return f"mysql+{driver}://" + self.url.split("://", 1)[1] + ("&" if "?" in self.url else "?") + "charset=utf8mb4"

    # -- raw connections ---------------------------------------------------------------------------

    def connect(self) -> Any:
        """A plain driver connection, outside any autocommit mode, foreign keys enforced."""
        if self.kind == "sqlite":
            import sqlite3

            # isolation_level=None: the caller issues BEGIN/COMMIT itself, reads included, as
            # mapper does, so every system runs each workload in one explicit transaction.
            conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA foreign_keys=ON")
            return conn
        if self.kind == "postgresql":
            import psycopg

            return psycopg.connect(self.url, autocommit=False)
        if self.driver == "mysqlclient":
            import MySQLdb

            return MySQLdb.connect(
                host=self.host, port=self.port or 3306, user=self.user or "root", password=self.password,
                database=self.database, charset="utf8mb4", autocommit=False,
            )
        import pymysql

        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port or 3306,
            "user": self.user or "root",
            "password": self.password,
            "database": self.database or None,
            "charset": "utf8mb4",
            "autocommit": False,
        }
        return pymysql.connect(**kwargs)

    def probe(self) -> None:
        """Connect once: server version, MariaDB or not, parameter limit, RETURNING support."""
        conn = self.connect()
        try:
            if self.kind == "sqlite":
                import sqlite3

                self.version = sqlite3.sqlite_version
                self.max_params = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
                self.insert_returning = sqlite3.sqlite_version_info >= (3, 35)
            elif self.kind == "postgresql":
                self.version = str(conn.execute("SHOW server_version").fetchone()[0]).split()[0]
                conn.rollback()
            else:
                info = conn.get_server_info()
                self.is_mariadb = "mariadb" in info.lower()
                digits = info.split("-")
                if self.is_mariadb and digits[0] == "5.5.5" and len(digits) > 1:
                    digits = digits[1:]
                self.version = digits[0]
                ver = tuple(int(p) for p in digits[0].split(".")[:2] if p.isdigit())
                self.insert_returning = self.is_mariadb and ver >= (10, 5)
        finally:
            conn.close()

    def begin(self, conn: Any) -> None:
        """Start a transaction on a raw connection (only SQLite needs it spelled out)."""
        if self.kind == "sqlite":
            conn.execute("BEGIN")

    def commit(self, conn: Any) -> None:
        if self.kind == "sqlite":
            if conn.in_transaction:
                conn.execute("COMMIT")
        else:
            conn.commit()

    # -- SQL helpers -------------------------------------------------------------------------------

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column IN (...)``: one array parameter on PostgreSQL, a placeholder list elsewhere."""
        if self.kind == "postgresql":
            return f"{column} = ANY(%s)", [list(values)]
        return f"{column} IN ({', '.join([self.ph] * len(values))})", list(values)

    def key_chunks(self, values: Sequence[Any]) -> Iterator[Sequence[Any]]:
        """Split an IN list so that no statement exceeds the parameter limit."""
        if self.kind == "postgresql":
            yield values  # one array parameter, whatever its length
            return
        step = self.max_params
        for i in range(0, len(values), step):
            yield values[i : i + step]

    def insert_rows_sql(self, table: str, columns: Sequence[str], nrows: int, returning: str | None) -> str:
        one = "(" + ", ".join([self.ph] * len(columns)) + ")"
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([one] * nrows)
        if returning and self.insert_returning:
            sql += f" RETURNING {returning}"
        return sql

    # -- harness ---------------------------------------------------------------------------------

    def cleanup(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def default_sqlite() -> Backend:
    """An SQLite file in a fresh temporary directory (removed at the end of the run)."""
    tmpdir = tempfile.mkdtemp(prefix="mapper-bench-")
    path = os.path.join(tmpdir, "bench.db")
    return Backend("sqlite", "sqlite:///" + path, tmpdir=tmpdir)


def parse_backend(url: str) -> Backend:
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    base = scheme.split("+", 1)[0]
    if base == "sqlite":
        if url in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
            raise SystemExit("--db: an in-memory SQLite database cannot be shared by three systems; give a file")
        return Backend("sqlite", url)
    if base in ("postgresql", "postgres"):
        return Backend("postgresql", "postgresql://" + url.split("://", 1)[1])
    if scheme in MYSQLCLIENT_SCHEMES:
        return Backend("mysql", "mysql+mysqlclient://" + url.split("://", 1)[1], driver="mysqlclient")
    if base in ("mysql", "mariadb"):
        return Backend("mysql", "mysql://" + url.split("://", 1)[1])
    raise SystemExit(f"--db {url!r}: use a sqlite:///, postgresql://, mysql:// or mysql+mysqlclient:// URL")


def clear_tables(backend: Backend, conn: Any) -> None:
    """Empty every benchmark table and restart its key sequence (so every repetition sees the
    same keys)."""
    tables = schema.TABLES_CHILD_FIRST
    cur = conn.cursor()
    try:
        if backend.kind == "postgresql":
            cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY")
        elif backend.kind == "mysql":
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for t in tables:
                cur.execute(f"TRUNCATE TABLE {t}")
            cur.execute("SET FOREIGN_KEY_CHECKS = 1")
        else:
            backend.begin(conn)
            for t in tables:
                cur.execute(f"DELETE FROM {t}")
            has_seq = cur.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
            if has_seq:
                cur.execute(
                    "DELETE FROM sqlite_sequence WHERE name IN (" + ", ".join("?" * len(tables)) + ")", tables
                )
        backend.commit(conn)
    finally:
        cur.close()


def analyze(backend: Backend, conn: Any, tables: Sequence[str]) -> None:
    """Fresh planner statistics after seeding (PostgreSQL and MariaDB)."""
    if backend.kind == "sqlite":
        return
    cur = conn.cursor()
    try:
        if backend.kind == "postgresql":
            cur.execute(f"ANALYZE {', '.join(tables)}")
        else:
            cur.execute(f"ANALYZE TABLE {', '.join(tables)}")
            cur.fetchall()
        backend.commit(conn)
    finally:
        cur.close()


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """The options the measuring tools share: ``--db`` (repeatable), ``--no-sqlite``, ``--repeat``
    and ``--quick``."""
    parser.add_argument("--db", action="append", default=[], metavar="URL", help="add a backend (repeatable)")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the embedded SQLite backend")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per system (default 7)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows (smoke test)")


def chosen_backends(args: argparse.Namespace) -> list[Callable[[], Backend]]:
    """Makers of the backends ``add_backend_options`` chose, embedded SQLite first."""
    backends: list[Callable[[], Backend]] = [] if args.no_sqlite else [default_sqlite]
    backends += [functools.partial(parse_backend, url) for url in args.db]
    return backends
