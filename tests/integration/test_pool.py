"""Pool settings and health on every backend: pool_min, pool_max_idle, pool_max_lifetime, pool_timeout,
pool_status() and health_check(), with connections counted on the server (open file handles on SQLite)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

from mapper import Database, errors
from tests.models import OwnerMapper, PugMapper


def open_connections(backend) -> int:
    """Connections open to the scratch database, seen from outside the pool."""
    if backend.name == "sqlite":
        path = os.path.realpath(backend.url.removeprefix("sqlite:///"))
        n = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.path.realpath(f"/proc/self/fd/{fd}") == path:
                    n += 1
            except OSError:
                pass
        return n
    name = backend.url.rsplit("/", 1)[1]
    if backend.name == "postgresql":
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()"
    else:
        sql = "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()"
    return int(backend.raw(sql, (name,))[0][0])


def settle(backend, expected: int) -> int:
    """The server notices a closed connection a moment later: wait (up to 5 s) for the count."""
    deadline = time.monotonic() + 5
    while True:
        n = open_connections(backend)
        if n == expected or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def take(db: Database) -> Any:
    """An open session holding its connection (it sent one statement)."""
    s = db.session()
    s.execute("SELECT 1")
    return s


def counts(db: Database) -> tuple[int, int, int, int]:
    st = db.pool_status()
    return st.size, st.in_use, st.idle, st.waiting


def test_pool_status_numbers_are_exact(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, pool_size=2, pool_timeout=10)
    assert counts(db) == (1, 0, 1, 0)  # make_db's create_all gave its connection back: one idle
    s1, s2 = take(db), take(db)
    assert counts(db) == (2, 2, 0, 0)
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(take(db)))
    waiter.start()
    deadline = time.monotonic() + 5
    while db.pool_status().waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert counts(db) == (2, 2, 0, 1)
    s1.close()
    waiter.join(5)
    assert counts(db) == (2, 2, 0, 0)
    got[0].close()
    s2.close()
    assert counts(db) == (2, 0, 2, 0)
    st = db.pool_status()
    assert (st.min_size, st.max_size, st.discarded, st.expired) == (0, 2, 0, 0)
    assert settle(backend, 2) == 2


def test_idle_connections_are_closed_after_max_idle_and_pool_min_are_kept(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, pool_size=3, pool_min=1, pool_max_idle=0.3)
    sessions = [take(db) for _ in range(3)]
    for s in sessions:
        s.close()
    assert counts(db) == (3, 0, 3, 0)
    assert settle(backend, 3) == 3
    time.sleep(0.4)
    assert counts(db) == (1, 0, 1, 0)  # two closed for idleness, pool_min kept
    assert db.pool_status().expired == 2
    assert settle(backend, 1) == 1
    time.sleep(0.4)
    assert counts(db) == (1, 0, 1, 0)  # pool_min stays however long it sits
    assert settle(backend, 1) == 1
    s = take(db)  # lent the kept one: nothing new is opened
    assert counts(db) == (1, 1, 0, 0)
    s.close()


def test_connections_are_recycled_after_max_lifetime(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, pool_size=2, pool_min=1, pool_max_lifetime=0.3)
    s = take(db)
    first = s.connection.raw
    s.close()
    s = take(db)
    assert s.connection.raw is first  # young enough: reused
    s.close()
    time.sleep(0.4)
    assert counts(db) == (0, 0, 0, 0)  # too old, pool_min or not: closed
    assert settle(backend, 0) == 0
    s = take(db)
    assert s.connection.raw is not first
    time.sleep(0.4)  # grows old while lent: closed when given back
    s.close()
    assert counts(db) == (0, 0, 0, 0)
    assert db.pool_status().expired == 2
    assert settle(backend, 0) == 0


def test_pool_timeout_raises_pool_timeout_error(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, pool_size=1, pool_timeout=0.2)
    held = take(db)
    started = time.monotonic()
    with pytest.raises(errors.PoolTimeoutError) as info:
        take(db)
    waited = time.monotonic() - started
    assert 0.2 <= waited < 3
    assert str(info.value) == (
        "no connection became free within 0.2 s (pool_size=1, all in use); "
        "close sessions you are done with, or raise pool_size / pool_timeout"
    )
    assert counts(db) == (1, 1, 0, 0)
    held.close()
    assert counts(db) == (1, 0, 1, 0)


def test_health_check_reports_a_working_database(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    seen: list[Any] = []
    with db.on_statement(seen.append):
        health = db.health_check()
    assert health and health.ok and health.error is None
    assert health.backend == backend.name and 0 < health.latency < 5
    assert (health.pool.in_use, health.pool.idle) == (0, 1)
    assert seen == []  # the probe is not an application statement


def test_health_check_reports_an_exhausted_pool_within_its_timeout(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, pool_size=1, pool_timeout=30)
    held = take(db)
    started = time.monotonic()
    health = db.health_check(timeout=0.1)
    assert time.monotonic() - started < 3
    assert not health and health.error is not None and health.error.startswith("PoolTimeoutError: no connection")
    assert (health.pool.in_use, health.pool.waiting) == (1, 0)
    with pytest.raises(errors.PoolTimeoutError):
        db.health_check(timeout=0.1, raise_on_failure=True)
    held.close()
    assert db.health_check()


def test_health_check_of_a_closed_database(backend):
    db = Database(backend.url)
    assert db.health_check()
    db.close()
    health = db.health_check()
    assert not health.ok and health.error == "InterfaceError: the Database is closed; create a new one"


DOWN = {
    "postgresql": "postgresql://postgres:s3cret@127.0.0.1:1/test",
    "mysql": "mysql://root:s3cret@127.0.0.1:1/test",
}


@pytest.mark.parametrize("name", sorted(DOWN))
def test_health_check_of_a_server_that_is_down_reports_without_raising(name):
    db = Database(DOWN[name], connect_timeout=2)
    try:
        started = time.monotonic()
        health = db.health_check()
        assert time.monotonic() - started < 3
        assert not health.ok and health.backend == name
        assert health.error is not None and health.error.startswith("OperationalError: cannot connect to")
        assert "s3cret" not in health.error and "s3cret" not in health.url
        assert (health.pool.size, health.pool.in_use) == (0, 0)  # the failed slot was given back
        with pytest.raises(errors.OperationalError):
            db.health_check(raise_on_failure=True)
    finally:
        db.close()


def test_health_check_of_an_unopenable_sqlite_file(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    try:
        health = db.health_check()
        assert not health.ok and health.error is not None and health.error.startswith("OperationalError:")
    finally:
        db.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pool_min": 6}, "pool_min must be an int from 0 to pool_size (5), got 6"),
        ({"pool_min": -1}, "pool_min must be an int from 0 to pool_size (5), got -1"),
        ({"pool_size": 0}, "pool_size must be a positive int, got 0"),
        ({"pool_timeout": -1}, "pool_timeout must be a number of seconds >= 0, got -1"),
        ({"pool_max_idle": 0}, "pool_max_idle must be a positive number of seconds (or None: no limit), got 0"),
        ({"pool_max_lifetime": "1h"},
         "pool_max_lifetime must be a positive number of seconds (or None: no limit), got '1h'"),
        ({"pool_max_lifetime": float("nan")},
         "pool_max_lifetime must be a positive number of seconds (or None: no limit), got nan"),
    ],
)
def test_bad_pool_settings_are_refused_by_database(options, message):
    with pytest.raises(errors.ConfigurationError) as info:
        Database("sqlite:///:memory:", **options)
    assert str(info.value) == message


def test_health_check_refuses_a_bad_timeout():
    with Database("sqlite:///:memory:") as db:
        with pytest.raises(errors.ConfigurationError, match=r"health_check\(timeout=-1\): give a number of seconds >= 0"):
            db.health_check(timeout=-1)


def test_pre_ping_checks_only_connections_idle_longer_than_the_window(backend, make_db, monkeypatch):
    """One round trip saved per session: a connection given back moments ago is lent (or used
    for its session's next transaction) unchecked; one idle past PING_WINDOW is checked once."""
    from mapper.pool import PING_WINDOW
    from tests.models import Owner

    pings: list[object] = []
    probe = Database(backend.url, mappers=[OwnerMapper, PugMapper])
    dialect_class = type(probe.engine.dialect)
    probe.close()
    real = dialect_class.ping

    def counting(self: Any, raw: Any) -> bool:
        pings.append(raw)
        return real(self, raw)

    monkeypatch.setattr(dialect_class, "ping", counting)
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add(Owner("Tom"))
    pings.clear()
    for _ in range(5):  # a session per request, back to back
        with db.session() as s:
            assert [o.name for o in s.query(Owner).all()] == ["Tom"]
        with db.session() as s:  # and a session's second transaction right after its first
            s.query(Owner).all()
            s.commit()
            s.query(Owner).all()
    assert pings == []
    time.sleep(PING_WINDOW + 0.1)
    with db.session() as s:
        s.query(Owner).all()
        s.commit()
        time.sleep(PING_WINDOW + 0.1)
        s.query(Owner).all()
    assert len(pings) == 2
    assert db.pool_status().discarded == 0
