"""A Database's life on every backend: the URLs it takes, a server it cannot reach, its end.

* A URL written the SQLAlchemy way (``postgresql+psycopg://``, ``mysql+pymysql://``,
  ``sqlite+pysqlite://``) works; one that names a driver mapper does not use is refused by
  ``Database()`` itself, with an error naming the scheme and the supported ones.
* A server that refuses the connection, or accepts it and never answers, fails the first
  statement with one ``OperationalError`` within ``connect_timeout``, and nothing is logged.
* A Database that is never closed ends quietly: nothing on stderr when it is collected or
  when the interpreter exits, even in development mode (ResourceWarnings shown).
"""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

from mapper import Database, errors
from tests.models import Owner, OwnerMapper

SECRET = "s3cr3tpw"

# -- URLs written the SQLAlchemy way ---------------------------------------------------------------

ALIASES = {
    "sqlite": ["sqlite+pysqlite"],
    "postgresql": ["postgresql+psycopg"],
    "mysql": ["mysql+pymysql", "mariadb+pymysql"],
}


def test_sqlalchemy_style_urls_work(backend):
    for scheme in ALIASES[backend.name]:
        url = scheme + backend.url[backend.url.index("://"):]
        with Database(url, mappers=[OwnerMapper]) as db:
            assert db.backend == backend.name
            assert db.url.startswith(f"{scheme}://")
            db.drop_all()
            db.create_all()
            with db.session() as s:
                s.add(Owner(f"via {scheme}"))
            with db.session() as s:
                assert [o.name for o in s.query(Owner).all()] == [f"via {scheme}"]
            db.drop_all()


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+asyncpg://app:{SECRET}@db.example:5432/shop",
        f"postgresql+psycopg2://app:{SECRET}@db.example:5432/shop",
        f"mysql+mysqlconnector://app:{SECRET}@db.example:3306/shop",
        f"mariadb+mariadbconnector://app:{SECRET}@db.example:3306/shop",
        "sqlite+aiosqlite:///shop.db",
        f"oracle://app:{SECRET}@db.example:1521/shop",
    ],
)
def test_url_naming_an_unsupported_driver_is_refused_at_once(url):
    started = time.monotonic()
    with pytest.raises(errors.ConfigurationError) as info:
        Database(url, mappers=[OwnerMapper])
    assert time.monotonic() - started < 1  # refused, not tried against db.example
    message = str(info.value)
    scheme = url.split("://", 1)[0]
    assert repr(scheme) in message, message
    for supported in ("sqlite://", "postgresql://", "postgresql+psycopg://", "mysql://", "mysql+pymysql://"):
        assert supported in message, message
    assert SECRET not in "".join(traceback.format_exception(info.value))


@pytest.mark.parametrize("value", [0, -1, "10", True, float("nan")])
def test_connect_timeout_must_be_a_positive_number(value):
    with pytest.raises(errors.ConfigurationError) as info:
        Database("sqlite:///:memory:", connect_timeout=value)
    assert "connect_timeout" in str(info.value) and repr(value) in str(info.value)


# -- a server that cannot be reached -----------------------------------------------------------------


def server_url(backend, port: int) -> str:
    """The backend's URL with another port on the same host."""
    u = urlsplit(backend.url)
    netloc = u.netloc.rpartition("@")[0] + "@" if "@" in u.netloc else ""
    return urlunsplit((u.scheme, f"{netloc}127.0.0.1:{port}", u.path, u.query, ""))


@contextmanager
def silent_server(linger: float) -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never says a word.

    The listening socket closes after ``linger`` seconds, which resets what waits on it, so a
    client without a timeout fails then instead of hanging the test.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    timer = threading.Timer(linger, sock.close)
    timer.start()
    try:
        yield sock.getsockname()[1]
    finally:
        timer.cancel()
        sock.close()


def first_statement_error(url: str, **options) -> tuple[errors.DatabaseError, float]:
    """The error of a session's first statement on ``url``, and the seconds it took."""
    db = Database(url, mappers=[OwnerMapper], **options)
    try:
        s = db.session()
        started = time.monotonic()
        try:
            with pytest.raises(errors.DatabaseError) as info:
                s.execute("SELECT 1 AS one")
            elapsed = time.monotonic() - started
        finally:
            s.close()
    finally:
        db.close()
    return info.value, elapsed


def test_refused_connection_fails_at_once_with_one_error(backend, tmp_path, caplog, capfd):
    if backend.name == "sqlite":
        url = f"sqlite:///{tmp_path}/no/such/folder/app.db"  # SQLite's unreachable database
        where = "no/such/folder"
    else:
        url = server_url(backend, 1)  # nothing listens on port 1
        where = "127.0.0.1:1"
    caplog.set_level(logging.DEBUG)
    capfd.readouterr()
    exc, elapsed = first_statement_error(url, pool_timeout=30, connect_timeout=5)
    assert type(exc) is errors.OperationalError, repr(exc)
    assert "cannot connect" in str(exc) and where in str(exc), str(exc)
    assert elapsed < 2, elapsed  # neither the connect timeout nor the pool timeout
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []
    out = capfd.readouterr()
    assert (out.out, out.err) == ("", "")


def test_server_that_never_answers_fails_within_the_connect_timeout(backend, caplog, capfd):
    if backend.name == "sqlite":
        pytest.skip("SQLite opens a file: there is no server to wait for")
    caplog.set_level(logging.DEBUG)
    capfd.readouterr()
    with silent_server(linger=15) as port:
        exc, elapsed = first_statement_error(server_url(backend, port), pool_timeout=30, connect_timeout=1)
    assert type(exc) is errors.OperationalError, repr(exc)
    assert "cannot connect" in str(exc) and f"127.0.0.1:{port}" in str(exc), str(exc)
    # libpq waits whole seconds, at least 2; PyMySQL takes the timeout as it is
    low, high = (1.9, 4.0) if backend.name == "postgresql" else (0.9, 3.0)
    assert low <= elapsed < high, elapsed
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO] == []
    out = capfd.readouterr()
    assert (out.out, out.err) == ("", "")


# -- a Database that is never closed -----------------------------------------------------------------

UNCLOSED = textwrap.dedent(
    """
    import gc, sys
    from mapper import Database

    url = sys.argv[1]
    for _ in range(20):
        db = Database(url)  # never closed: dropped, then collected
        with db.session() as s:
            s.execute("SELECT 1 AS one")
        s2 = db.session()
        s2.execute("SELECT 2 AS two")
        s2.close()
        del db, s, s2
        gc.collect()
    kept = Database(url)  # never closed: alive until the interpreter exits
    with kept.session() as s:
        s.execute("SELECT 1 AS one")
    print("done")
    """
)


def test_database_never_closed_ends_quietly(backend):
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", UNCLOSED, backend.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "done\n", "")
