"""Read replicas on every backend: the route of each session, writes refused, dead replicas skipped.

Here the "replica" is the test database itself reached through a second pool (a URL spelled
differently, so each route is told apart by ``event.server``); the real PostgreSQL standby is
tested in ``test_standby.py``.
"""

from __future__ import annotations

import logging

import pytest

from mapper import Database, StatementEvent, errors
from tests.models import Owner, OwnerMapper, Pug, PugMapper


def _variant(url: str) -> str:
    """The same database under another spelling of its URL (a second, distinct replica)."""
    if url.startswith("sqlite:"):
        head, _, name = url.rpartition("/")
        return f"{head}/./{name}"
    for port in (":5432/", ":3306/"):
        if port in url:
            return url.replace(port, "/")
    raise AssertionError(url)


def _dead(url: str) -> str:
    """A URL of the backend where nothing answers (refused at once)."""
    if url.startswith("sqlite:"):
        return "sqlite:////nonexistent-mapper-dir/replica.db"
    return url.replace(":5432/", ":1/").replace(":3306/", ":1/")


def _safe(url: str) -> str:
    return Database(url).url


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_readonly_sessions_read_from_the_replica_and_writers_stay_on_the_primary(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, replicas=[backend.url])
    events: list[StatementEvent] = []
    db.on_statement(events.append)
    with db.session() as s:
        s.add(Owner("Tom"))
        s.add(Pug("Cody"))
        s.flush()
        # Read-your-writes: a writing session reads on the primary after its write.
        assert s.query(Pug).count() == 1
        s.execute("SELECT 1")
    assert {e.route for e in events} == {"primary"}
    assert {e.server for e in events} == {db.url}
    events.clear()
    with db.session(readonly=True) as s:
        assert [o.name for o in s.query(Owner).all()] == ["Tom"]
        assert [p.name for p in s.query(Pug).all()] == ["Cody"]
    assert len(events) == 2
    assert {e.route for e in events} == {"replica"}
    assert {e.server for e in events} == {_safe(backend.url)}
    assert db.replica_status()[0].up and db.replica_status()[0].failures == 0


def test_readonly_sessions_take_the_replicas_round_robin(backend, make_db):
    urls = [backend.url, _variant(backend.url)]
    db = make_db(OwnerMapper, replicas=urls)
    seen = []
    for _ in range(4):
        with db.session(readonly=True) as s:
            s.query(Owner).count()
            seen.append(s.connection.server)
    first, second = _safe(urls[0]), _safe(urls[1])
    assert first != second
    assert seen == [first, second, first, second]


def test_a_write_in_a_readonly_session_is_refused_at_flush_and_nothing_is_sent(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, replicas=[backend.url])
    with db.session() as s:
        s.add(Owner("Tom"))
    events: list[StatementEvent] = []
    db.on_statement(events.append)
    with db.session(readonly=True) as s:
        tom = s.query(Owner).one()
        tom.name = "Changed"
        s.add(Owner("New"))
        events.clear()
        with pytest.raises(errors.ReadOnlySessionError) as caught:
            s.flush()
        assert "read-only" in str(caught.value) and "1 new, 1 changed and 0 deleted" in str(caught.value)
        assert events == []
        with pytest.raises(errors.PendingRollbackError):
            s.query(Owner).count()
        s.rollback()
        assert tom.name == "Tom"
    assert backend.raw(f"SELECT name FROM {backend.q('owners')}") == [("Tom",)]


@pytest.mark.parametrize("pin", [False, True])
def test_raw_writes_on_a_readonly_route_are_refused_by_the_server(backend, make_db, pin):
    db = make_db(OwnerMapper, replicas=[backend.url])
    with db.session(readonly=True, pin_primary=pin) as s:
        with pytest.raises(errors.DatabaseError) as caught:
            s.execute(f"INSERT INTO {backend.q('owners')} (name) VALUES (:n)", {"n": "Sneaky"})
        assert "read" in str(caught.value).lower() and "only" in str(caught.value).lower()
        assert s.connection.route == ("primary" if pin else "replica")
        s.rollback()
    # The pooled connection went back writable: the next writer may get it and must succeed.
    with db.session() as s:
        s.add(Owner("Tom"))
    assert backend.raw(f"SELECT name FROM {backend.q('owners')}") == [("Tom",)]


def test_pin_primary_reads_from_the_primary_and_still_refuses_writes(backend, make_db):
    db = make_db(OwnerMapper, replicas=[_variant(backend.url)])
    with db.session() as s:
        s.add(Owner("Tom"))
    with db.session(readonly=True, pin_primary=True) as s:
        assert [o.name for o in s.query(Owner).all()] == ["Tom"]
        assert s.connection.route == "primary" and s.connection.server == db.url
        s.add(Owner("Ann"))
        with pytest.raises(errors.ReadOnlySessionError):
            s.flush()
        s.rollback()
    assert backend.raw(f"SELECT name FROM {backend.q('owners')}") == [("Tom",)]


def test_a_dead_replica_is_skipped_and_retried_after_a_doubling_backoff(backend, make_db):
    dead = _dead(backend.url)
    db = make_db(OwnerMapper, replicas=[dead, backend.url], replica_backoff=1.0, replica_max_backoff=3.0)
    clock = Clock()
    db._router.clock = clock  # a fake clock: no test waits for the back-off

    def route() -> str:
        with db.session(readonly=True) as s:
            s.query(Owner).count()
            return s.connection.server

    good = _safe(backend.url)
    assert route() == good  # the dead one was tried first, and failed
    (down, up) = db.replica_status()
    assert (down.up, down.failures, down.retry_in) == (False, 1, 1.0) and down.error
    assert (up.up, up.failures) == (True, 0)
    assert [route(), route(), route()] == [good] * 3  # skipped: nothing tried during the back-off
    assert db.replica_status()[0].failures == 1
    clock.now += 1.0
    assert route() == good  # the dead one was due, tried again, and failed again
    assert route() == good
    assert (db.replica_status()[0].failures, db.replica_status()[0].retry_in) == (2, 2.0)
    clock.now += 2.0
    route(), route()
    assert (db.replica_status()[0].failures, db.replica_status()[0].retry_in) == (3, 3.0)  # capped


def test_no_replica_up_reads_from_the_primary_read_only(backend, make_db):
    db = make_db(OwnerMapper, replicas=[_dead(backend.url)])
    with db.session() as s:
        s.add(Owner("Tom"))
    with db.session(readonly=True) as s:
        assert s.query(Owner).count() == 1
        assert s.connection.route == "primary"
        with pytest.raises(errors.DatabaseError):
            s.execute(f"DELETE FROM {backend.q('owners')}")
    assert backend.raw(f"SELECT count(*) FROM {backend.q('owners')}") == [(1,)]


def test_the_echo_log_names_the_route(backend, make_db, caplog):
    db = make_db(OwnerMapper, replicas=[_variant(backend.url)], echo=True)
    with caplog.at_level(logging.INFO, logger="mapper.sql"):
        with db.session() as s:
            s.add(Owner("Tom"))
        with db.session(readonly=True) as s:
            s.query(Owner).all()
    lines = [r.getMessage() for r in caplog.records if r.name == "mapper.sql"]
    insert = next(line for line in lines if line.upper().startswith("INSERT"))
    select = next(line for line in lines if line.upper().startswith("SELECT") and "owners" in line)
    assert insert.endswith("[primary]")
    assert select.endswith(f"[replica {_safe(_variant(backend.url))}]")


def test_without_replicas_events_and_echo_name_no_route(backend, make_db):
    db = make_db(OwnerMapper)
    events: list[StatementEvent] = []
    db.on_statement(events.append)
    with db.session(readonly=True) as s:
        s.query(Owner).count()
        assert s.connection.route is None
    assert [e.route for e in events] == [None]
    assert db.replica_status() == []


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"replicas": "sqlite:///x.db"}, "give a list of URLs"),
        ({"replicas": [1]}, "give a list of URLs"),
        ({"replicas": ["postgresql://u@127.0.0.1:1/x"]}, "must be a sqlite server like the primary"),
        ({"replica_backoff": 0}, "replica_backoff=0"),
        ({"replica_max_backoff": "1"}, "replica_max_backoff='1'"),
    ],
)
def test_bad_replica_options_are_configuration_errors(tmp_path, options, fragment):
    with pytest.raises(errors.ConfigurationError) as caught:
        Database(f"sqlite:///{tmp_path / 'p.db'}", **options)
    assert fragment in str(caught.value)


def test_bad_session_routes_are_configuration_errors(tmp_path):
    with Database(f"sqlite:///{tmp_path / 'p.db'}") as db:
        with pytest.raises(errors.ConfigurationError, match="add readonly=True"):
            db.session(pin_primary=True)
        with pytest.raises(errors.ConfigurationError, match="readonly=1"):
            db.session(readonly=1)


def test_inside_a_test_transaction_readonly_sessions_share_it_and_still_refuse_writes(backend, make_db):
    from mapper.testing import TestTransaction

    db = make_db(OwnerMapper, replicas=[_variant(backend.url)])
    with TestTransaction(db):
        with db.session() as s:
            s.add(Owner("Tom"))
        with db.session(readonly=True) as s:  # the test's one connection: it sees Tom
            assert [o.name for o in s.query(Owner).all()] == ["Tom"]
            s.add(Owner("Ann"))
            with pytest.raises(errors.ReadOnlySessionError):
                s.flush()
            s.rollback()
    assert backend.raw(f"SELECT count(*) FROM {backend.q('owners')}") == [(0,)]
