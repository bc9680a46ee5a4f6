"""Backends for the test suite: one parametrized fixture runs each integration test on all three.

Server DSNs come from MAPPER_TEST_POSTGRESQL / MAPPER_TEST_MYSQL (defaults: the local
services). Each test run creates its own scratch database on each server and drops it at
the end, so runs never see each other's tables. A server that cannot be reached skips its
tests with the reason, unless MAPPER_REQUIRE_BACKENDS names it: then the tests fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from mapper import Database

BACKENDS = ("sqlite", "postgresql", "mysql")
DEFAULT_DSN = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/test",
    "mysql": "mysql://root@127.0.0.1:3306/test",
}
REQUIRED = {b.strip() for b in os.environ.get("MAPPER_REQUIRE_BACKENDS", "").split(",") if b.strip()}
RUN_ID = f"mapper_t_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _split(url: str) -> tuple[str, str]:
    """(server URL without database, database name)."""
    base, _, rest = url.rpartition("/")
    return base, rest.split("?", 1)[0]


class Backend:
    """One backend under test: its name, the URL of this run's scratch database, raw access."""

    def __init__(self, name: str, url: str, tmp_dir: str | None = None) -> None:
        self.name = name
        self.url = url
        self.tmp_dir = tmp_dir

    def __repr__(self) -> str:
        return f"<Backend {self.name}>"

    @property
    def driver(self) -> str:
        """The DB-API module mapper talks through for this URL: sqlite3, psycopg, pymysql, or
        MySQLdb when the URL names mysqlclient (MAPPER_TEST_MYSQL=mysql+mysqlclient://...)."""
        if self.name == "mysql":
            from mapper.dialects import MYSQLCLIENT_SCHEMES

            return "MySQLdb" if self.url.split("://", 1)[0] in MYSQLCLIENT_SCHEMES else "pymysql"
        return {"sqlite": "sqlite3", "postgresql": "psycopg"}[self.name]

    def driver_error(self) -> type[BaseException]:
        """The base class of the exceptions of the driver mapper talks through."""
        import importlib

        module = importlib.import_module(self.driver)
        base: type[BaseException] = module.err.Error if self.driver == "pymysql" else module.Error
        return base

    # -- raw driver access, independent of the framework -----------------------------------------

    def raw_connect(self) -> Any:
        """A plain DB-API connection to the scratch database (the caller closes it)."""
        if self.name == "sqlite":
            import sqlite3

            return sqlite3.connect(self.url.removeprefix("sqlite:///"))
        if self.name == "postgresql":
            import psycopg

            return psycopg.connect(self.url, autocommit=True)
        import pymysql
        from urllib.parse import urlsplit

        u = urlsplit(self.url)
        return pymysql.connect(
            host=u.hostname, port=u.port or 3306, user=u.username or "root",
            password=u.password or "", database=u.path.lstrip("/"), charset="utf8mb4", autocommit=True,
        )

    def raw(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run SQL through the bare driver ('?' placeholders are rewritten for the server drivers)."""
        if self.name != "sqlite":
            sql = sql.replace("%", "%%").replace("?", "%s")
        conn = self.raw_connect()
        try:
            cur = conn.cursor()
            cur.execute(sql, tuple(params))
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
            if self.name == "sqlite":
                conn.commit()
            return rows
        finally:
            conn.close()

    def q(self, name: str) -> str:
        """An identifier quoted for this backend's raw SQL."""
        return f"`{name}`" if self.name == "mysql" else f'"{name}"'


def _server_database(name: str) -> Iterator[str | None]:
    """Create this run's scratch database on a server; yields its URL, or None if unreachable."""
    dsn = os.environ.get(f"MAPPER_TEST_{name.upper()}", DEFAULT_DSN[name])
    base, admin_db = _split(dsn)
    try:
        if name == "postgresql":
            import psycopg

            admin = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
            admin.execute(f'CREATE DATABASE "{RUN_ID}"')
        else:
            import pymysql
            from urllib.parse import urlsplit

            u = urlsplit(dsn)
            admin = pymysql.connect(
                host=u.hostname, port=u.port or 3306, user=u.username or "root",
                password=u.password or "", database=admin_db or None, autocommit=True, connect_timeout=5,
            )
            admin.cursor().execute(f"CREATE DATABASE `{RUN_ID}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    except Exception as exc:  # noqa: BLE001 - any failure means the server is not usable here
        _unreachable[name] = f"{name} at {dsn} is not reachable: {type(exc).__name__}: {exc}"
        yield None
        return
    try:
        yield f"{base}/{RUN_ID}"
    finally:
        try:
            if name == "postgresql":
                admin.execute(f'DROP DATABASE IF EXISTS "{RUN_ID}" WITH (FORCE)')
            else:
                admin.cursor().execute(f"DROP DATABASE IF EXISTS `{RUN_ID}`")
        finally:
            admin.close()


_unreachable: dict[str, str] = {}


@pytest.fixture(scope="session")
def _servers() -> Iterator[dict[str, str | None]]:
    gens = {name: _server_database(name) for name in ("postgresql", "mysql")}
    urls = {name: next(gen) for name, gen in gens.items()}
    yield urls
    for gen in gens.values():
        for _ in gen:
            pass


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, _servers: dict[str, str | None], tmp_path: Any) -> Backend:
    """Each backend in turn; a test using it runs three times."""
    name = request.param
    if name == "sqlite":
        return Backend("sqlite", f"sqlite:///{tmp_path / 'test.db'}", str(tmp_path))
    url = _servers[name]
    if url is None:
        reason = _unreachable.get(name, f"{name} unavailable")
        if name in REQUIRED:
            pytest.fail(f"MAPPER_REQUIRE_BACKENDS includes {name}, but {reason}")
        pytest.skip(reason)
    return Backend(name, url)


@pytest.fixture
def make_db(backend: Backend) -> Iterator[Callable[..., Database]]:
    """``make_db(*mappers, **options)``: a Database on the backend with its tables created.

    Tables are dropped and pools closed when the test ends.
    """
    made: list[Database] = []

    def make(*mappers: Any, create: bool = True, **options: Any) -> Database:
        db = Database(backend.url, mappers=list(mappers), **options)
        made.append(db)
        if create:
            db.drop_all()
            db.create_all()
            # Every mapping the suite uses doubles as a drift test: what create_all() built
            # must compare equal to the mappers on every backend.
            drift = db.check_schema()
            assert drift == [], "a fresh create_all() differs from its mappers:\n" + "\n".join(map(str, drift))
        return db

    yield make
    for db in reversed(made):
        try:
            db.drop_all()
        finally:
            db.close()


@contextmanager
def exactly(session: Any, n: int) -> Iterator[None]:
    """Assert that the block sends exactly ``n`` statements on ``session``."""
    before = session.query_count
    with session.budget(queries=n):
        yield
    sent = session.query_count - before
    assert sent == n, f"expected exactly {n} statements, {sent} were sent"


@pytest.fixture
def count() -> Callable[[Any, int], Any]:
    """The ``exactly(session, n)`` context manager, as a fixture."""
    return exactly


def managed_states(session: Any) -> dict[int, Any]:
    """The states a session manages, by id(obj): what tests count to see what a call built.

    The one place tests read the session's bookkeeping (its ``Tracker``).
    """
    states: dict[int, Any] = session._t.states
    return states


def tracker(session: Any) -> Any:
    """The session's ``Tracker`` (its lists of pending, deleted and loaded states), for tests."""
    return session._t


def scaleout_server(name: str, env: str, script: str) -> str:
    """The URL in ``env`` of a server that one of the project's scripts starts (a standby, a cluster).

    Unset, the test skips with the command that starts it; but when MAPPER_REQUIRE_BACKENDS
    names ``name`` (CI's scale-out steps do), the test fails instead, so it cannot skip unseen.
    """
    url = os.environ.get(env, "")
    if url:
        return url
    reason = f"{env} is not set: run the tests under `{script} run python -m pytest ...`"
    if name in REQUIRED:
        pytest.fail(f"MAPPER_REQUIRE_BACKENDS includes {name}, but {reason}")
    pytest.skip(reason)
