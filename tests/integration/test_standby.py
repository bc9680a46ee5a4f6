"""Read replicas against a real PostgreSQL streaming standby (started by scripts/pg-standby).

Skipped unless MAPPER_TEST_STANDBY is set (``scripts/pg-standby run python -m pytest ...``);
required in CI (MAPPER_REQUIRE_BACKENDS includes ``standby``).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from mapper import Database, StatementEvent, errors
from tests.conftest import RUN_ID, scaleout_server
from tests.models import Owner, OwnerMapper, Pug, PugMapper

REPLAY_WAIT = 30.0  # seconds: the most a replay may take before the test fails


@pytest.fixture
def standby_url(_servers) -> str:
    base = scaleout_server("standby", "MAPPER_TEST_STANDBY", "scripts/pg-standby")
    if _servers["postgresql"] is None:
        pytest.fail("the standby tests need the PostgreSQL primary")
    return base.rsplit("/", 1)[0] + "/" + RUN_ID  # the scratch database, replicated


@pytest.fixture
def db(_servers, standby_url) -> Iterator[Database]:
    database = Database(_servers["postgresql"], [OwnerMapper, PugMapper], replicas=[standby_url])
    database.drop_all()
    database.create_all()
    try:
        yield database
    finally:
        database.drop_all()
        database.close()


def replayed(db: Database) -> float:
    """Wait until the standby has replayed everything the primary committed; the seconds it took.

    Waits on the replay LSN (``pg_last_wal_replay_lsn()``) reaching the primary's current WAL
    position, polling; fails the test past ``REPLAY_WAIT``. It asks the standby's own
    ``postgres`` database: the scratch database may not have been replayed yet itself.
    """
    import psycopg

    started = time.perf_counter()
    with db.session() as s:
        (lsn,) = s.execute("SELECT pg_current_wal_lsn()::text")[0]
    with psycopg.connect(os.environ["MAPPER_TEST_STANDBY"], autocommit=True) as conn:
        while True:
            (done,) = conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
            if done:
                return time.perf_counter() - started
            if time.perf_counter() - started > REPLAY_WAIT:
                pytest.fail(f"the standby did not replay up to {lsn} within {REPLAY_WAIT} s")
            time.sleep(0.005)


def test_reads_routed_to_the_standby_see_what_the_primary_committed_once_replayed(db, standby_url):
    events: list[StatementEvent] = []
    db.on_statement(events.append)
    with db.session() as s:
        s.add(Owner("Tom"))
        s.add_all([Pug("Cody", age=3), Pug("Doug", age=5)])
    lag = replayed(db)
    print(f"standby replay lag: {lag * 1000:.1f} ms")
    events.clear()
    with db.session(readonly=True) as s:
        assert s.execute("SELECT pg_is_in_recovery()") == [(True,)]
        assert [o.name for o in s.query(Owner).all()] == ["Tom"]
        assert [p.name for p in s.query(Pug).where(PugMapper.age > 2).order_by("name").all()] == ["Cody", "Doug"]
    assert {e.route for e in events} == {"replica"} and len(events) == 3
    assert {e.server for e in events} == {Database(standby_url).url}
    # A later change shows up on the standby too, once replayed.
    with db.session() as s:
        s.query(Pug).where(name="Cody").one().age = 4
    replayed(db)
    with db.session(readonly=True) as s:
        assert s.query(Pug).where(name="Cody").one().age == 4


def test_a_write_through_the_standby_route_is_refused_and_nothing_is_lost(db, standby_url, _servers):
    with db.session() as s:
        s.add(Owner("Tom"))
    replayed(db)
    with db.session(readonly=True) as s:
        tom = s.query(Owner).one()
        tom.name = "Renamed"
        with pytest.raises(errors.ReadOnlySessionError, match="read-only"):
            s.flush()
        s.rollback()
        with pytest.raises(errors.DatabaseError, match="cannot execute INSERT in a read-only transaction"):
            s.execute("INSERT INTO owners (name) VALUES (:n)", {"n": "Sneaky"})
        s.rollback()
    # The standby refuses a write on its own too, whatever the connection asked for.
    with Database(standby_url, [OwnerMapper]) as direct, direct.session() as s:
        with pytest.raises(errors.DatabaseError, match="read-only transaction") as caught:
            s.execute("INSERT INTO owners (name) VALUES (:n)", {"n": "Sneaky"})
        assert caught.value.code == "25006"
        s.rollback()
    with db.session() as s:
        assert [o.name for o in s.query(Owner).all()] == ["Tom"]


def test_a_standby_killed_mid_run_makes_reads_fall_back_to_the_primary(db, standby_url):
    script, data = os.environ["MAPPER_STANDBY_SCRIPT"], os.environ["MAPPER_TEST_STANDBY_DIR"]
    clock = [1000.0]
    db._router.clock = lambda: clock[0]  # the back-off runs on a clock the test moves
    with db.session() as s:
        s.add(Owner("Tom"))
    replayed(db)
    with db.session(readonly=True) as s:  # leaves a pooled connection to the standby
        assert s.query(Owner).count() == 1 and s.connection.route == "replica"
    subprocess.run([script, "crash", data], check=True)
    try:
        with db.session(readonly=True) as s:
            assert [o.name for o in s.query(Owner).all()] == ["Tom"]
            assert s.connection.route == "primary"
            assert s.execute("SELECT pg_is_in_recovery()") == [(False,)]
        (status,) = db.replica_status()
        assert not status.up and status.failures == 1 and status.retry_in == 1.0
        with db.session(readonly=True) as s:  # skipped during the back-off: no new attempt
            s.query(Owner).count()
            assert s.connection.route == "primary"
        assert db.replica_status()[0].failures == 1
    finally:
        subprocess.run([script, "start", data], check=True)
    clock[0] += 1.0
    with db.session(readonly=True) as s:  # due for a retry: back on the standby
        assert s.query(Owner).count() == 1
        assert s.connection.route == "replica"
    assert db.replica_status()[0].up and db.replica_status()[0].failures == 0
