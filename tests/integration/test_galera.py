"""Multi-primary writes on a three-node MariaDB Galera cluster (started by scripts/galera-cluster).

Skipped unless MAPPER_TEST_GALERA is set (``scripts/galera-cluster run python -m pytest ...``);
required in CI (MAPPER_REQUIRE_BACKENDS includes ``galera``). The relation and cascade tests
of the integration suite run on one node by pointing MAPPER_TEST_MYSQL at it (see ``.ci/run``).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest

from mapper import Column, Database, Mapper, errors
from mapper import types as t
from tests.conftest import RUN_ID, scaleout_server

WRITERS = 3  # one per node
ROUNDS = 20  # transactions each writer commits
ACCOUNTS = 4


@attrs.define
class Account:
    name: str
    balance: int = 0
    version: int | None = None
    id: int | None = None


@attrs.define
class Entry:
    writer: int
    round: int
    id: int | None = None


class AccountMapper(Mapper[Account]):
    table = "gx_accounts"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False, unique=True)
    balance = Column(t.Integer, nullable=False)
    version = Column(t.Integer, version=True)


class EntryMapper(Mapper[Entry]):
    table = "gx_entries"
    id = Column(t.Integer, primary_key=True)
    writer = Column(t.Integer, nullable=False)
    round = Column(t.Integer, nullable=False)


def _raw(url: str, sql: str, database: str | None = None) -> list[tuple[Any, ...]]:
    """Run SQL on one node through the bare driver, after the node applied all it received."""
    import pymysql

    u = urlsplit(url)
    conn = pymysql.connect(host=u.hostname, port=u.port, user="root", database=database, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SET SESSION wsrep_sync_wait = 1")  # read what the cluster committed
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture
def nodes() -> Iterator[list[str]]:
    """The three nodes' URLs of a scratch database made for the test."""
    urls = scaleout_server("galera", "MAPPER_TEST_GALERA", "scripts/galera-cluster").split(",")
    assert len(urls) == 3, urls
    name = f"{RUN_ID}_g"
    _raw(urls[0], f"CREATE DATABASE `{name}`")
    try:
        yield [url.rsplit("/", 1)[0] + "/" + name for url in urls]
    finally:
        _raw(urls[0], f"DROP DATABASE IF EXISTS `{name}`")


@pytest.fixture
def dbs(nodes) -> Iterator[list[Database]]:
    made = [Database(url, [AccountMapper, EntryMapper]) for url in nodes]
    made[0].create_all()
    try:
        yield made
    finally:
        for db in made:
            db.close()


def test_the_nodes_form_one_cluster(nodes):
    for url in nodes:
        assert _raw(url, "SHOW STATUS LIKE 'wsrep_cluster_size'") == [("wsrep_cluster_size", "3")]
        assert _raw(url, "SHOW STATUS LIKE 'wsrep_local_state_comment'") == [("wsrep_local_state_comment", "Synced")]


def test_a_certification_failure_is_a_retryable_deadlock_error(dbs, nodes):
    with dbs[0].session() as s:
        s.add(Account("a"))
    loser, winner = dbs[0].session(), dbs[1].session()
    try:
        mine = loser.query(Account).one()
        mine.balance = 1
        loser.flush()  # the row is changed on node 1, not yet committed
        theirs = winner.query(Account).one()
        theirs.balance = 2
        winner.commit()  # node 2 commits first: node 1's transaction cannot certify
        with pytest.raises(errors.DatabaseError) as caught:
            loser.commit()
        assert caught.value.code == "1213" and caught.value.retryable
        assert "Deadlock" in str(caught.value)
        loser.rollback()
    finally:
        loser.close()
        winner.close()
    name = urlsplit(nodes[0]).path.lstrip("/")
    for url in nodes:
        assert _raw(url, "SELECT balance, version FROM gx_accounts", name) == [(2, 2)]


def test_writers_on_every_node_lose_no_update_and_flush_nothing_partly(dbs, nodes):
    with dbs[0].session() as s:
        s.add_all([Account(f"acct{i}") for i in range(ACCOUNTS)])
    start = threading.Barrier(WRITERS)
    failures: Counter[str] = Counter()
    attempts: list[int] = []
    crashed: list[BaseException] = []
    lock = threading.Lock()

    def writer(number: int) -> None:
        db = dbs[number]
        start.wait()
        for r in range(ROUNDS):
            tx = db.transaction(retries=200, backoff=0.002, max_backoff=0.05, retry_on=errors.StaleDataError)
            for attempt in tx:
                with attempt as s:
                    for account in s.query(Account).order_by("name").all():
                        account.balance += 1
                    s.add(Entry(number, r))
                err = attempt.error
                if err is not None and not attempt.succeeded:
                    kind = type(err).__name__ + (f" {err.code}" if isinstance(err, errors.DatabaseError) else "")
                    with lock:
                        failures[kind] += 1
            with lock:
                attempts.append(tx.attempts)

    def run(number: int) -> None:
        try:
            writer(number)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            crashed.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not crashed, crashed
    total = WRITERS * ROUNDS
    retried = sum(attempts) - total
    print(f"galera conflicts: {total} transactions, {retried} retries, by error: {dict(failures)}")
    # Every failure was one a retry answers: a certification failure (1213) or a version check.
    assert set(failures) <= {"OperationalError 1213", "StaleDataError"}, failures
    assert sum(failures.values()) == retried
    assert retried > 0, "the writers never collided: the test did not exercise a conflict"
    name = urlsplit(nodes[0]).path.lstrip("/")
    for url in nodes:  # every node holds the same, exact totals
        rows = _raw(url, "SELECT name, balance, version FROM gx_accounts ORDER BY name", name)
        assert rows == [(f"acct{i}", total, total + 1) for i in range(ACCOUNTS)]
        assert _raw(url, "SELECT writer, count(*) FROM gx_entries GROUP BY writer ORDER BY writer", name) == [
            (w, ROUNDS) for w in range(WRITERS)
        ]
