"""Concurrency on every backend: version checks, retried transactions, deadlocks, the pool.

The promises proven here:

* a version column turns concurrent read-modify-write into lost-update-free increments when the
  losers are retried (``db.transaction(retry_on=StaleDataError)``);
* ``db.transaction(retries=N)`` re-runs real deadlocks and serialization failures, in a fresh
  session each time, and nothing else;
* ``DatabaseError.code`` / ``.retryable`` describe what the database said;
* the pool never lends one connection to two open sessions, and gets every connection back;
* a session serves the thread that first used it and refuses every other (close() excepted),
  and no race on one session loses a pool slot.

Every thread's exceptions are collected and asserted on in the main thread; every barrier has a
timeout so that a bug fails the test instead of hanging it.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest

from mapper import Column, Database, Mapper, Transaction, errors
from mapper import types as t
from tests.models import Owner, OwnerMapper, Pug, PugMapper


@attrs.define
class Counter:
    n: int = 0
    version: int | None = None
    id: int | None = None


class CounterMapper(Mapper[Counter]):
    table = "counters"
    id = Column(t.Integer, primary_key=True)
    n = Column(t.Integer, nullable=False, default=0)
    version = Column(t.Integer, version=True)


class Boom(Exception):
    pass


#: What each backend reports for two transactions that lock rows in opposite order (SQLite: two
#: deferred transactions that both read and then write, the lock-upgrade deadlock).
DEADLOCK_CODE = {"postgresql": "40P01", "mysql": "1213", "sqlite": "SQLITE_BUSY"}
#: Two SERIALIZABLE transactions that read a row and then both write it.
SERIALIZABLE_CODE = {"postgresql": "40001", "mysql": "1213", "sqlite": "SQLITE_BUSY"}
#: A write to a row that another transaction changed after our snapshot (see `writer_behind`).
SNAPSHOT_CODE = {"postgresql": "40001", "mysql": "1020", "sqlite": "SQLITE_BUSY"}
DUPLICATE_CODE = {"postgresql": "23505", "mysql": "1062", "sqlite": "SQLITE_CONSTRAINT_UNIQUE"}


# -- helpers -------------------------------------------------------------------------------------


def run_in_threads(
    fns: list[Callable[[], Any]], timeout: float = 60.0
) -> tuple[list[Any], list[tuple[int, BaseException]]]:
    """Run each callable in its own thread and join them all.

    Returns the results by index and the (index, exception) of every thread that raised:
    nothing escapes a thread, so the test asserts on failures in the main thread.
    """
    results: list[Any] = [None] * len(fns)
    failures: list[tuple[int, BaseException]] = []
    lock = threading.Lock()

    def runner(i: int, fn: Callable[[], Any]) -> None:
        try:
            results[i] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            with lock:
                failures.append((i, exc))

    threads = [
        threading.Thread(target=runner, args=(i, fn), name=f"worker-{i}", daemon=True) for i, fn in enumerate(fns)
    ]
    for th in threads:
        th.start()
    deadline = time.monotonic() + timeout
    for th in threads:
        th.join(max(0.0, deadline - time.monotonic()))
    stuck = [th.name for th in threads if th.is_alive()]
    assert not stuck, f"threads still running after {timeout} s: {stuck}"
    return results, failures


def seed(db: Database, k: int) -> list[int]:
    with db.session() as s:
        rows = [Counter() for _ in range(k)]
        s.add_all(rows)
    return [c.id for c in rows]  # type: ignore[misc]


def counters(backend: Any) -> dict[int, tuple[int, int]]:
    """{id: (n, version)} read through the bare driver."""
    q = backend.q
    rows = backend.raw(f"SELECT {q('id')}, {q('n')}, {q('version')} FROM {q('counters')} ORDER BY {q('id')}")
    return {int(r[0]): (int(r[1]), int(r[2])) for r in rows}


def owners(backend: Any) -> list[str]:
    return sorted(r[0] for r in backend.raw(f"SELECT name FROM {backend.q('owners')}"))


def checked_out(db: Database) -> int:
    """Connections the pool has lent out right now."""
    return int(db.engine.pool.checked_out)


def assert_pool_whole(db: Database, size: int) -> None:
    """No connection leaked: nothing is checked out, and all ``size`` can be had at once, clean."""
    assert checked_out(db) == 0
    sessions = [db.session() for _ in range(size)]
    try:
        raws = set()
        for s in sessions:
            assert s.execute("SELECT 1")[0][0] == 1  # fails if a connection came back mid-transaction
            s.commit()  # keeps the connection, drops any lock (SQLite IMMEDIATE locks at BEGIN)
            raws.add(id(s.connection.raw))
        assert len(raws) == size
    finally:
        for s in sessions:
            s.close()
    assert checked_out(db) == 0


def snapshot_conflicts(backend: Any) -> bool:
    """Whether `writer_behind` can make a write fail on this backend (MariaDB needs 10.6.18+)."""
    if backend.name != "mysql":
        return True
    return bool(backend.raw("SHOW VARIABLES LIKE 'innodb_snapshot_isolation'"))


def begin_snapshot(session: Any, backend: Any) -> None:
    """Make the session's transaction fail on a write to a row changed since its snapshot.

    PostgreSQL: the Database runs at REPEATABLE READ (see `snapshot_db`). MariaDB: with
    innodb_snapshot_isolation a locking read of a row changed after the read view is error 1020.
    SQLite: nothing to do, a deferred transaction that has read cannot write past another writer.
    """
    if backend.name == "mysql":
        session.execute("SET SESSION innodb_snapshot_isolation = ON")


def snapshot_db(backend: Any, make_db: Any, *mappers: Any, **options: Any) -> Database:
    if not snapshot_conflicts(backend):
        pytest.skip("this MySQL/MariaDB has no innodb_snapshot_isolation (MariaDB 10.6.18+)")
    if backend.name == "postgresql":
        options.setdefault("isolation_level", "REPEATABLE READ")
    if backend.name == "sqlite":
        options.setdefault("busy_timeout", 2.0)
    return make_db(*mappers, **options)


@contextmanager
def writer_behind(db: Database, backend: Any, counter_id: int, by: int = 100) -> Iterator[None]:
    """Another session adds ``by`` to a counter behind the back of the current transaction.

    Use after the current transaction has read (begun its snapshot / taken SQLite's shared
    lock), around its write of the same database: that write then fails with a genuine
    retryable error (SNAPSHOT_CODE). On the servers the other session commits before the block;
    on SQLite it holds its write lock through the block (our write fails at once with
    SQLITE_BUSY and our transaction rolls back) and commits after.
    """
    other = db.session()
    try:
        row = other.get(Counter, counter_id)
        assert row is not None
        row.n += by
        if backend.name == "sqlite":
            other.flush()
            try:
                yield
            finally:
                other.commit()
        else:
            other.commit()
            yield
    finally:
        other.close()


# -- 1. lost updates -----------------------------------------------------------------------------

THREADS = 8
ROWS = 4
PER_THREAD = 200


@pytest.mark.parametrize("level", [None, "READ COMMITTED"], ids=["default_isolation", "read_committed"])
def test_versioned_read_modify_write_loses_no_update_under_concurrency(backend, make_db, level):
    if backend.name == "sqlite" and level == "READ COMMITTED":
        # SQLite has no READ COMMITTED and says so; its own stricter mode takes the slot.
        refused = Database(backend.url, [CounterMapper], isolation_level=level)
        s = refused.session()
        try:
            with pytest.raises(errors.ConfigurationError, match="READ COMMITTED"):
                s.execute("SELECT 1")
        finally:
            s.close()
            refused.close()
        level = "IMMEDIATE"
    db = make_db(CounterMapper, isolation_level=level, pool_size=THREADS, pool_timeout=30, busy_timeout=10)
    ids = seed(db, ROWS)
    # Every thread's first increment goes to the first row, and all of them read it before any
    # writes (the barrier): at least THREADS - 1 conflicts are certain, so the retry path is
    # exercised on every run. (BEGIN IMMEDIATE takes the write lock at the read, so the threads
    # could never all meet there; that mode gets no barrier.)
    meet = level != "IMMEDIATE"
    barrier = threading.Barrier(THREADS, timeout=30)
    plan = [[ids[0]] + [ids[(i + j) % ROWS] for j in range(1, PER_THREAD)] for i in range(THREADS)]
    expected = collections.Counter(row for p in plan for row in p)
    lock = threading.Lock()
    calls = [0]
    conflicts: collections.Counter[str] = collections.Counter()
    if backend.name == "sqlite":
        retry = {"retries": 2000, "backoff": 0.001, "max_backoff": 0.01}
    else:
        retry = {"retries": 200, "backoff": 0.001, "max_backoff": 0.02}

    # One decorated function shared by all threads, as an application would have it.
    @db.transaction(retry_on=errors.StaleDataError, **retry)
    def increment(session, row_id, first):
        with lock:
            calls[0] += 1
        counter = session.get(Counter, row_id)
        if first:
            first.clear()
            barrier.wait()
        counter.n += 1
        try:
            session.flush()  # UPDATE ... WHERE id = ? AND version = ?
        except errors.StaleDataError:
            with lock:
                conflicts["StaleDataError"] += 1
            raise
        except errors.DatabaseError as exc:
            with lock:
                conflicts[f"{type(exc).__name__} {exc.code}"] += 1
            raise
        return counter.n

    def worker(i):
        first = [True] if meet else []
        return [(row, increment(row, first)) for row in plan[i]]

    results, failures = run_in_threads([lambda i=i: worker(i) for i in range(THREADS)], timeout=120)
    assert failures == []
    # Each committed increment saw a distinct value: per row exactly 1..total, none twice.
    seen: dict[int, list[int]] = collections.defaultdict(list)
    for per_thread in results:
        for row, value in per_thread:
            seen[row].append(value)
    for row in ids:
        assert sorted(seen[row]) == list(range(1, expected[row] + 1)), f"row {row}"
    final = counters(backend)
    assert final == {row: (expected[row], expected[row] + 1) for row in ids}
    assert sum(n for n, _ in final.values()) == THREADS * PER_THREAD == 1600
    retried = calls[0] - THREADS * PER_THREAD
    if meet:
        assert retried >= THREADS - 1
    if backend.name != "sqlite":  # (SQLite can also fail at the read or at COMMIT, outside the try)
        assert retried == sum(conflicts.values())
    if meet and backend.name != "sqlite":
        assert conflicts["StaleDataError"] >= THREADS - 1
    assert_pool_whole(db, THREADS)


# -- 2. deadlocks ----------------------------------------------------------------------------------


def test_deadlock_victim_is_retried_once_and_both_increments_land(backend, make_db):
    db = make_db(CounterMapper, pool_size=4, busy_timeout=10)
    a, b = seed(db, 2)
    barrier = threading.Barrier(2, timeout=20)
    lock = threading.Lock()
    calls: collections.Counter[int] = collections.Counter()
    seen: list[errors.DatabaseError] = []
    sessions: list[Any] = []
    # The victim's retry starts once the winner has committed: a retry that read the row before
    # that would meet the winner's new version at its UPDATE (a StaleDataError, rightly).
    winner_committed = threading.Event()
    db.after_commit(lambda session: winner_committed.set())

    def make(mine: int, other: int) -> tuple[Transaction, Callable[[], str]]:
        tx = db.transaction(retries=3, backoff=0.01)

        @tx
        def work(session):
            with lock:
                calls[mine] += 1
                first = calls[mine] == 1
                sessions.append(session)
            assert session.query_count == 0  # a fresh session for every attempt
            if not first:
                assert winner_committed.wait(20)
            try:
                own = session.get(Counter, mine)
                own.n += 1
                if backend.name != "sqlite":
                    session.flush()  # holds the row lock of `mine`
                if first:
                    barrier.wait()  # both hold their first lock (SQLite: its shared lock)
                if backend.name == "sqlite":
                    session.flush()  # the lock upgrade: one of the two gets SQLITE_BUSY at once
                else:
                    theirs = session.get(Counter, other)
                    theirs.n += 1
                    session.flush()  # waits for the other's lock: a deadlock
            except errors.DatabaseError as exc:
                with lock:
                    seen.append(exc)
                raise
            return "done"

        return tx, work

    tx_a, work_a = make(a, b)
    tx_b, work_b = make(b, a)
    results, failures = run_in_threads([work_a, work_b])
    assert failures == []
    assert results == ["done", "done"]
    assert sum(calls.values()) == 3  # one victim, retried once
    assert sorted([tx_a.attempts, tx_b.attempts]) == [1, 2]
    assert len(seen) == 1
    (victim,) = seen
    assert isinstance(victim, errors.OperationalError)
    assert (victim.code, victim.retryable) == (DEADLOCK_CODE[backend.name], True)
    assert len({id(s) for s in sessions}) == 3 and all(s.closed for s in sessions)
    if backend.name == "sqlite":
        assert counters(backend) == {a: (1, 2), b: (1, 2)}  # each thread wrote its own row
    else:
        assert counters(backend) == {a: (2, 3), b: (2, 3)}  # each thread wrote both rows
    assert_pool_whole(db, 4)


# -- 3. serialization failures -------------------------------------------------------------------


@pytest.mark.parametrize("retries", [0, 1])
def test_serializable_conflict_is_retryable_and_retried(backend, make_db, retries):
    """Two SERIALIZABLE transactions read a row, then both write it: one of them must fail.

    PostgreSQL reports 40001 (could not serialize access), MariaDB a deadlock 1213 (SERIALIZABLE
    reads take shared locks), SQLite SQLITE_BUSY (its SERIALIZABLE is a deferred transaction).
    With retries=0 the loser raises that error; with retries=1 it is run again and commits.
    """
    db = make_db(CounterMapper, isolation_level="SERIALIZABLE", pool_size=4, busy_timeout=10)
    (cid,) = seed(db, 1)
    barrier = threading.Barrier(2, timeout=20)
    lock = threading.Lock()
    calls = [0]
    seen: list[errors.DatabaseError] = []

    def make() -> Callable[[], int]:
        @db.transaction(retries=retries, backoff=0.01)
        def work(session):
            with lock:
                calls[0] += 1
                first = calls[0] <= 2
            counter = session.get(Counter, cid)
            if first:
                barrier.wait()  # both have read the row
            counter.n += 1
            try:
                session.flush()
            except errors.DatabaseError as exc:
                with lock:
                    seen.append(exc)
                raise
            return counter.n

        return work

    results, failures = run_in_threads([make(), make()])
    assert len(seen) == 1
    (error,) = seen
    assert isinstance(error, errors.OperationalError)
    assert (error.code, error.retryable) == (SERIALIZABLE_CODE[backend.name], True)
    assert error.orig is not None and error.__cause__ is error.orig
    if retries == 0:
        assert calls[0] == 2
        assert [exc for _, exc in failures] == [error]  # raised as it was, not wrapped
        assert sorted(r for r in results if r is not None) == [1]
        assert counters(backend) == {cid: (1, 2)}
    else:
        assert failures == []
        assert calls[0] == 3
        assert sorted(results) == [1, 2]
        assert counters(backend) == {cid: (2, 3)}
    assert_pool_whole(db, 4)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_serialization_failure_at_commit_is_retried(backend, make_db):
    """PostgreSQL's SSI: write skew fails the second transaction at COMMIT (40001), then it is re-run.

    Two rows are "on call"; each transaction goes off call if both still are. Each reads both and
    writes its own row, so nothing blocks; the first to commit wins, and the attempt whose COMMIT
    fails is rolled back and run again, seeing that it may not leave.
    """
    db = make_db(CounterMapper, isolation_level="SERIALIZABLE")
    a, b = seed(db, 2)
    with db.session() as s:
        for row in s.query(Counter).all():
            row.n = 1
    tx = db.transaction(retries=2, backoff=0.001)
    attempts = []
    for attempt in tx:
        attempts.append(attempt)
        with attempt as mine:
            other = db.session()
            try:
                if attempt.number == 1:  # the other transaction runs alongside the first attempt
                    assert other.query(Counter).where(n=1).count() == 2
                on_call = mine.query(Counter).where(n=1).count()
                if attempt.number == 1:
                    other.get(Counter, a).n = 0
                    other.flush()
                if on_call == 2:
                    mine.get(Counter, b).n = 0
                    mine.flush()
                other.commit()  # first to commit: wins
            finally:
                other.close()
        # leaving the block commits `mine`: the first time, COMMIT fails
    assert [x.number for x in attempts] == [1, 2] and tx.attempts == 2
    error = attempts[0].error
    assert isinstance(error, errors.OperationalError)
    assert (error.code, error.retryable, error.statement) == ("40001", True, "COMMIT")
    assert attempts[1].succeeded
    assert counters(backend) == {a: (0, 3), b: (1, 2)}  # one left; the other stayed on call
    assert_pool_whole(db, 2)


def test_write_after_concurrent_commit_raises_retryable_error_with_code(backend, make_db):
    """Single-threaded: our snapshot is stale when we write; with retries=0 the error is raised."""
    db = snapshot_db(backend, make_db, CounterMapper)
    (cid,) = seed(db, 1)
    calls = [0]

    @db.transaction()
    def work(session):
        calls[0] += 1
        begin_snapshot(session, backend)
        counter = session.get(Counter, cid)
        with writer_behind(db, backend, cid):
            counter.n += 1
            session.flush()

    with pytest.raises(errors.OperationalError) as info:
        work()
    assert (info.value.code, info.value.retryable) == (SNAPSHOT_CODE[backend.name], True)
    assert calls[0] == 1
    assert counters(backend) == {cid: (100, 2)}  # only the other session's write
    assert_pool_whole(db, 2)


def test_write_after_concurrent_commit_is_retried_in_a_fresh_session(backend, make_db):
    db = snapshot_db(backend, make_db, CounterMapper)
    (cid,) = seed(db, 1)
    sessions: list[Any] = []
    tx = db.transaction(retries=3, backoff=0.001)

    @tx
    def work(session):
        sessions.append(session)
        assert session.query_count == 0
        begin_snapshot(session, backend)
        counter = session.get(Counter, cid)
        if len(sessions) == 1:
            with writer_behind(db, backend, cid):
                counter.n += 1
                session.flush()
        else:
            counter.n += 1
        return counter.n

    assert work() == 101
    assert tx.attempts == 2
    assert len(sessions) == 2 and sessions[0] is not sessions[1]
    assert all(s.closed for s in sessions)
    assert counters(backend) == {cid: (101, 3)}
    assert_pool_whole(db, 2)


# -- 4. what is not retried, and running out of retries ----------------------------------------


def test_integrity_error_is_never_retried(backend, make_db):
    db = make_db(OwnerMapper)
    with db.session() as s:
        s.add(Owner("Tom"))
    calls = [0]
    tx = db.transaction(retries=5, backoff=0)

    @tx
    def add_owners(session):
        calls[0] += 1
        session.add(Owner("Ann"))
        session.flush()
        session.add(Owner("Tom"))
        session.flush()

    with pytest.raises(errors.IntegrityError) as info:
        add_owners()
    assert calls[0] == 1 and tx.attempts == 1
    assert info.value.retryable is False
    assert info.value.code == DUPLICATE_CODE[backend.name]
    assert owners(backend) == ["Tom"]  # Ann was rolled back with the attempt
    assert_pool_whole(db, 2)


def test_exception_from_user_code_is_never_retried_and_rolls_back(backend, make_db):
    db = make_db(OwnerMapper)
    calls = [0]
    tx = db.transaction(retries=5, backoff=0)

    @tx
    def work(session):
        calls[0] += 1
        session.add(Owner("Ann"))
        session.flush()
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        work()
    assert calls[0] == 1 and tx.attempts == 1
    assert owners(backend) == []
    assert_pool_whole(db, 2)


def _stale_work(backend: Any, cid: int, calls: list[int]) -> Callable[[Any], int]:
    """Work whose first attempt is stale: the row's version moves between its read and its write."""
    q = backend.q

    def work(session):
        calls[0] += 1
        counter = session.get(Counter, cid)
        session.commit()  # end the read (SQLite: release the shared lock); counter stays managed
        if calls[0] == 1:
            backend.raw(f"UPDATE {q('counters')} SET {q('n')} = {q('n')} + 10, {q('version')} = {q('version')} + 1")
        counter.n += 1
        session.flush()  # UPDATE ... AND version = 1: stale on the first attempt
        return counter.n

    return work


def test_stale_data_error_is_not_retried_unless_asked(backend, make_db):
    db = make_db(CounterMapper)
    (cid,) = seed(db, 1)
    calls = [0]
    tx = db.transaction(retries=5, backoff=0)
    with pytest.raises(errors.StaleDataError):
        tx(_stale_work(backend, cid, calls))()
    assert calls[0] == 1 and tx.attempts == 1
    assert counters(backend) == {cid: (10, 2)}


def test_stale_data_error_is_retried_when_in_retry_on(backend, make_db):
    db = make_db(CounterMapper)
    (cid,) = seed(db, 1)
    calls = [0]
    tx = db.transaction(retries=5, backoff=0, retry_on=errors.StaleDataError)
    assert tx(_stale_work(backend, cid, calls))() == 11
    assert calls[0] == 2 and tx.attempts == 2
    assert counters(backend) == {cid: (11, 3)}
    assert_pool_whole(db, 2)


def test_database_error_class_in_retry_on_is_retried(backend, make_db):
    """retry_on names "more exception classes to retry": a DatabaseError subclass is one too."""
    db = make_db(OwnerMapper)
    with db.session() as s:
        s.add(Owner("Tom"))
    names = iter(["Tom", "Ann"])
    tx = db.transaction(retries=1, backoff=0, retry_on=errors.IntegrityError)

    @tx
    def add_owner(session):
        session.add(Owner(next(names)))
        session.flush()

    add_owner()  # the duplicate "Tom" is retried; the second attempt adds "Ann"
    assert tx.attempts == 2
    assert owners(backend) == ["Ann", "Tom"]
    assert_pool_whole(db, 2)


def test_last_retryable_error_is_raised_when_retries_run_out(backend, make_db):
    db = snapshot_db(backend, make_db, CounterMapper)
    (cid,) = seed(db, 1)
    seen: list[errors.DatabaseError] = []
    sessions: list[Any] = []
    tx = db.transaction(retries=2, backoff=0.001)

    @tx
    def work(session):
        sessions.append(session)
        begin_snapshot(session, backend)
        counter = session.get(Counter, cid)
        with writer_behind(db, backend, cid):  # a genuine conflict on every attempt
            counter.n += 1
            try:
                session.flush()
            except errors.DatabaseError as exc:
                seen.append(exc)
                raise

    with pytest.raises(errors.OperationalError) as info:
        work()
    assert tx.attempts == 3 and len(seen) == 3
    assert info.value is seen[-1]  # the last attempt's error
    assert all((e.code, e.retryable) == (SNAPSHOT_CODE[backend.name], True) for e in seen)
    assert len({id(s) for s in sessions}) == 3 and all(s.closed for s in sessions)
    assert counters(backend) == {cid: (300, 4)}  # only the other session's three writes
    assert_pool_whole(db, 2)


def test_same_retryable_error_raised_each_time_exhausts_retries(backend, make_db):
    """The brief's variant: one genuine retryable error, captured, re-raised by every attempt."""
    db = snapshot_db(backend, make_db, CounterMapper)
    (cid,) = seed(db, 1)
    with pytest.raises(errors.OperationalError) as info:
        with db.transaction() as session:
            begin_snapshot(session, backend)
            counter = session.get(Counter, cid)
            with writer_behind(db, backend, cid):
                counter.n += 1
                session.flush()
    captured = info.value
    assert captured.retryable
    calls = [0]
    tx = db.transaction(retries=4, backoff=0)

    @tx
    def work(session):
        calls[0] += 1
        session.add(Counter(n=calls[0]))  # written, then rolled back with the attempt
        session.flush()
        raise captured

    with pytest.raises(errors.OperationalError) as again:
        work()
    assert again.value is captured
    assert calls[0] == 5 and tx.attempts == 5
    assert counters(backend) == {cid: (100, 2)}


def test_write_of_the_value_the_row_already_holds_is_not_stale(backend, make_db):
    """Without a version column an UPDATE is checked by its row count; a row that another
    transaction already set to our value is matched, not gone (MySQL: CLIENT.FOUND_ROWS)."""
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        cody = Pug("Cody", age=1)
        s.add(cody)
    with db.session() as s:
        p = s.get(Pug, cody.id)
        s.commit()  # end the read (SQLite: release the shared lock)
        backend.raw(f"UPDATE {backend.q('pugs')} SET age = ? WHERE id = ?", (5, cody.id))
        p.age = 5
        s.flush()  # UPDATE pugs SET age = 5 WHERE id = ?: matches 1 row, changes none
    assert backend.raw(f"SELECT name, age FROM {backend.q('pugs')}") == [("Cody", 5)]


# -- 5. the with form and the loop form ----------------------------------------------------------


def test_with_form_commits_on_clean_exit(backend, make_db, count):
    db = make_db(OwnerMapper)
    tx = db.transaction()
    with tx as s:
        s.add(Owner("Tom"))
        with count(s, 1):
            s.flush()
        assert owners(backend) == []  # flushed, not committed yet
    assert tx.attempts == 1
    assert s.closed
    assert owners(backend) == ["Tom"]
    with tx as s2:  # a finished Transaction can run another block
        s2.add(Owner("Ann"))
    assert owners(backend) == ["Ann", "Tom"]
    assert_pool_whole(db, 2)


def test_with_form_rolls_back_on_exception(backend, make_db):
    db = make_db(OwnerMapper)
    with pytest.raises(Boom):
        with db.transaction() as s:
            s.add(Owner("Tom"))
            s.flush()
            raise Boom
    assert s.closed
    assert owners(backend) == []
    assert_pool_whole(db, 2)


def test_with_form_raises_a_retryable_error_instead_of_retrying(backend, make_db):
    db = snapshot_db(backend, make_db, CounterMapper)
    (cid,) = seed(db, 1)
    tx = db.transaction()
    with pytest.raises(errors.OperationalError) as info:
        with tx as session:
            begin_snapshot(session, backend)
            counter = session.get(Counter, cid)
            with writer_behind(db, backend, cid):
                counter.n += 1
                session.flush()
    assert info.value.retryable and tx.attempts == 1
    assert counters(backend) == {cid: (100, 2)}


def test_with_form_refuses_retries_before_opening_a_session(backend, make_db):
    db = make_db(OwnerMapper)
    tx = db.transaction(retries=2)
    opened = []
    real_open = tx.open_session
    tx.open_session = lambda: opened.append(1) or real_open()  # type: ignore[method-assign]
    ran = []
    with pytest.raises(errors.SessionError, match="retries=2"):
        with tx:
            ran.append(1)
    assert ran == [] and opened == []
    assert checked_out(db) == 0


def test_loop_form_retries_in_a_fresh_session_and_stops_after_the_commit(backend, make_db):
    db = snapshot_db(backend, make_db, OwnerMapper, CounterMapper)
    (cid,) = seed(db, 1)
    tx = db.transaction(retries=3, backoff=0.001)
    sessions = []
    for attempt in tx:
        with attempt as s:
            sessions.append(s)
            begin_snapshot(s, backend)
            counter = s.get(Counter, cid)
            counter.n += 1
            s.add(Owner(f"try{attempt.number}"))
            if attempt.number == 1:
                with writer_behind(db, backend, cid):
                    s.flush()  # the first attempt's insert and update fail together
        assert attempt.number in (1, 2)
    assert tx.attempts == 2 and len(sessions) == 2
    assert sessions[0] is not sessions[1] and all(s.closed for s in sessions)
    assert owners(backend) == ["try2"]
    assert counters(backend) == {cid: (101, 3)}
    assert_pool_whole(db, 2)


def test_loop_form_return_and_break_inside_the_block_commit(backend, make_db):
    db = make_db(OwnerMapper)

    def create(name):
        for attempt in db.transaction(retries=2):
            with attempt as s:
                owner = Owner(name)
                s.add(owner)
                s.flush()
                return owner.id
        raise AssertionError("unreachable")

    tom_id = create("Tom")
    assert backend.raw(f"SELECT id FROM {backend.q('owners')} WHERE name = ?", ("Tom",)) == [(tom_id,)]
    tx = db.transaction(retries=2)
    n = 0
    for attempt in tx:
        n += 1
        with attempt as s:
            s.add(Owner("Ann"))
            break
    assert n == 1 and tx.attempts == 1
    assert owners(backend) == ["Ann", "Tom"]
    assert_pool_whole(db, 2)


def test_loop_form_raises_non_retryable_error_at_once(backend, make_db):
    db = make_db(OwnerMapper)
    with db.session() as s:
        s.add(Owner("Tom"))
    tx = db.transaction(retries=3, backoff=0)
    n = 0
    with pytest.raises(errors.IntegrityError):
        for attempt in tx:
            n += 1
            with attempt as s:
                s.add(Owner("Tom"))
    assert n == 1 and tx.attempts == 1
    assert owners(backend) == ["Tom"]
    assert_pool_whole(db, 2)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": "3"}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"retries": True}, "retries"),
        ({"backoff": -1}, "backoff"),
        ({"backoff": "0.1"}, "backoff"),
        ({"max_backoff": -0.5}, "max_backoff"),
        ({"retry_on": (1,)}, "retry_on"),
        ({"retry_on": (int,)}, "retry_on"),
        ({"retry_on": (errors.StaleDataError, "x")}, "retry_on"),
        ({"lazy": "eager"}, "lazy"),
    ],
)
def test_bad_transaction_arguments_are_configuration_errors(kwargs, name):
    # Checked when the Transaction is made, before any connection: no backend needed.
    with Database("sqlite:///:memory:", [OwnerMapper]) as db:
        with pytest.raises(errors.ConfigurationError, match=rf"transaction\({name}="):
            db.transaction(**kwargs)


@pytest.mark.parametrize("value", [1, None], ids=["int", "None"])
def test_retry_on_that_is_not_a_class_or_tuple_is_a_configuration_error(value):
    with Database("sqlite:///:memory:", [OwnerMapper]) as db:
        with pytest.raises(errors.ConfigurationError, match="retry_on"):
            db.transaction(retry_on=value)


# -- 6. the pool under many threads --------------------------------------------------------------

CONNECTION_ID_SQL = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()", "sqlite": None}


def test_pool_lends_each_open_session_its_own_connection(backend, make_db):
    size, threads, rounds = 4, 16, 8
    db = make_db(CounterMapper, pool_size=size, pool_timeout=20)
    id_sql = CONNECTION_ID_SQL[backend.name]
    lock = threading.Lock()
    held: dict[int, Any] = {}  # id(raw connection) -> server connection id, while a session holds it
    clashes: list[str] = []
    peak = [0]
    seen_raw: set[int] = set()
    seen_server: set[Any] = set()
    # The first round of every thread waits here while holding its connection: `size` sessions
    # at a time, so each trip proves `size` connections lent at once, all distinct.
    together = threading.Barrier(size, timeout=20)

    def worker(i):
        for r in range(rounds):
            s = db.session()
            try:
                raw = s.connection.raw
                server = s.execute(id_sql)[0][0] if id_sql else None
                with lock:
                    if id(raw) in held or (server is not None and server in held.values()):
                        clashes.append(f"thread {i} round {r}: {id(raw)}/{server} already held")
                    held[id(raw)] = server
                    peak[0] = max(peak[0], len(held))
                    seen_raw.add(id(raw))
                    seen_server.add(server)
                if r == 0:
                    together.wait()
                else:
                    time.sleep(0.001)
                with lock:
                    del held[id(raw)]  # before close: the connection is still ours here
            finally:
                s.close()
        return rounds

    results, failures = run_in_threads([lambda i=i: worker(i) for i in range(threads)])
    assert failures == []  # in particular no PoolTimeoutError
    assert results == [rounds] * threads
    assert clashes == []
    assert peak[0] == size
    assert len(seen_raw) <= size  # the pool opened at most pool_size connections...
    if id_sql is not None:
        assert len(seen_server) <= size  # ...as the server saw them too
    assert_pool_whole(db, size)


def test_pool_timeout_when_every_connection_is_held(backend, make_db):
    db = make_db(CounterMapper, pool_size=2, pool_timeout=0.3)
    holders = [db.session(), db.session()]
    try:
        for s in holders:
            s.execute("SELECT 1")
        waiter = db.session()
        started = time.monotonic()
        with pytest.raises(errors.PoolTimeoutError):
            waiter.execute("SELECT 1")
        waited = time.monotonic() - started
        assert 0.2 <= waited < 5.0
        waiter.close()
        assert checked_out(db) == 2
        # A session that waits gets the connection as soon as a holder closes.
        got: list[Any] = []
        waiting = threading.Event()

        def wait_for_one():
            waiting.set()
            try:
                with db.session() as s:
                    got.append(s.execute("SELECT 1")[0][0])
            except BaseException as exc:  # noqa: BLE001 - asserted below
                got.append(exc)

        th = threading.Thread(target=wait_for_one)
        th.start()
        assert waiting.wait(5)
        time.sleep(0.02)  # (well inside the 0.3 s it may wait)
        holders[0].close()
        th.join(5)
        assert not th.is_alive() and got == [1]
    finally:
        for s in holders:
            s.close()
    assert_pool_whole(db, 2)


# -- 7. a session belongs to one thread --------------------------------------------------------------


def test_session_raced_by_four_threads_serves_one_and_leaks_no_connection(backend, make_db):
    size = 4
    db = make_db(OwnerMapper, pool_size=size, pool_timeout=0.5)
    s = db.session()  # made here, first used by whichever worker gets there first
    start = threading.Barrier(size, timeout=10)

    def race() -> Any:
        start.wait()
        return s.execute("SELECT 1 AS one")[0].one

    try:
        results, failures = run_in_threads([race] * size)
        assert [r for r in results if r is not None] == [1]
        assert len(failures) == size - 1, failures
        for _, exc in failures:
            assert type(exc) is errors.SessionError, repr(exc)
            assert "another thread" in str(exc) and "db.session()" in str(exc)
        assert checked_out(db) == 1
    finally:
        s.close()  # from a thread that never used it: closing is allowed from anywhere
    assert checked_out(db) == 0
    # Every connection can be had at once: a leaked slot would make the last checkout wait out
    # pool_timeout and raise PoolTimeoutError (a time limit here would also count the opening of
    # new connections, which a loaded machine makes slow).
    assert_pool_whole(db, size)


def test_session_refuses_every_other_thread_and_may_be_closed_from_any(backend, make_db):
    db = make_db(OwnerMapper, pool_size=2, pool_timeout=0.5)
    s = db.session()
    used = threading.Event()
    closed = threading.Event()
    seen: list[Any] = []

    def owner_thread() -> None:
        tom = Owner("Tom")
        s.add(tom)
        s.flush()
        seen.append(tom)
        used.set()
        assert closed.wait(10)
        try:
            s.get(Owner, tom.id)
        except BaseException as exc:  # noqa: BLE001 - asserted in the main thread
            seen.append(exc)

    th = threading.Thread(target=owner_thread)
    th.start()
    try:
        assert used.wait(10)
        tom = seen[0]
        calls: dict[str, Callable[[], Any]] = {
            "get (held object)": lambda: s.get(Owner, tom.id),
            "get (by query)": lambda: s.get(Owner, tom.id + 1),
            "query": lambda: s.query(Owner).all(),
            "execute": lambda: s.execute("SELECT 1 AS one"),
            "add": lambda: s.add(Owner("Ann")),
            "delete": lambda: s.delete(tom),
            "flush": s.flush,
            "commit": s.commit,
            "rollback": s.rollback,
            "connection": lambda: s.connection,
            "budget": lambda: s.budget(queries=1).__enter__(),
        }
        for name, call in calls.items():
            with pytest.raises(errors.SessionError, match="another thread") as info:
                call()
            assert type(info.value) is errors.SessionError, name
        assert tom in s  # nothing was changed by the refused calls
        assert checked_out(db) == 1
        s.close()  # a server closing a session for a thread that is done with it
        assert s.closed and checked_out(db) == 0
    finally:
        closed.set()
        th.join(10)
    assert not th.is_alive()
    assert type(seen[1]) is errors.SessionClosedError  # the owner sees the session closed
    assert owners(backend) == []  # closing rolled the flushed row back
    assert_pool_whole(db, 2)


# -- SQLite: a COMMIT that gives up waiting --------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_commit_that_times_out_is_retried_on_a_clean_connection(backend):
    """SQLite keeps a transaction open when COMMIT fails with SQLITE_BUSY; the retry must not inherit it.

    A reader holds a shared lock while our COMMIT waits for it (busy_timeout 0.1 s): the COMMIT
    fails with SQLITE_BUSY, which is retryable. The attempt must be rolled back and the connection
    returned clean, so that the second attempt (on the same, only, pooled connection) commits.
    """
    import sqlite3

    # Not make_db: while the bug stands, its teardown could not drop the table through the
    # connection left mid-transaction. The file lives in this test's tmp_path.
    db = Database(backend.url, [CounterMapper], busy_timeout=0.1, pool_size=1)
    reader = sqlite3.connect(backend.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        db.create_all()
        (cid,) = seed(db, 1)
        calls = [0]
        tx = db.transaction(retries=2, backoff=0.001)

        @tx
        def work(session):
            calls[0] += 1
            if calls[0] == 1:
                reader.execute("BEGIN")
                reader.execute("SELECT count(*) FROM counters").fetchall()  # shared lock held
            elif reader.in_transaction:
                reader.execute("ROLLBACK")
            counter = session.get(Counter, cid)
            counter.n += 1
            return counter.n  # the commit (flush + COMMIT) runs after this returns

        assert work() == 1
        assert tx.attempts == 2
        assert counters(backend) == {cid: (1, 2)}
        assert_pool_whole(db, 1)
    finally:
        if reader.in_transaction:
            reader.execute("ROLLBACK")
        reader.close()
        db.close()
