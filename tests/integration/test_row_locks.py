"""Row locks: for_update() / for_share() per backend, and a job queue taken with skip_locked.

PostgreSQL and MariaDB lock rows; SQLite locks the whole database on write, so a plain lock
adds nothing there and the options that promise row behaviour (nowait, skip_locked) are refused.
"""

from __future__ import annotations

import threading

import attrs
import pytest

from mapper import Column, Mapper, errors
from mapper import types as t
from mapper.dialects.mysql import MySQLDialect
from mapper.dialects.postgresql import PostgreSQLDialect
from mapper.dialects.sqlite import SQLiteDialect
from mapper.sql import Compiler, Lock, Select
from tests.rel_models import PETS, Owner, Pug, PugMapper


@attrs.define
class Job:
    name: str
    done: bool = False
    taken_by: str | None = None
    id: int | None = None


class JobMapper(Mapper[Job]):
    table = "lock_jobs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    done = Column(t.Boolean, nullable=False)
    taken_by = Column(t.String(20))


def _sql(dialect, lock):
    return Compiler(dialect).select(Select("jobs", [JobMapper.id], lock=lock, limit=1))[0]


def test_lock_clauses_per_dialect():
    pg, my = PostgreSQLDialect(), MySQLDialect()
    assert _sql(pg, Lock()).endswith("LIMIT 1 FOR UPDATE")
    assert _sql(pg, Lock(skip_locked=True)).endswith("FOR UPDATE SKIP LOCKED")
    assert _sql(pg, Lock(shared=True, nowait=True, of=["jobs"])).endswith('FOR SHARE OF "jobs" NOWAIT')
    assert _sql(my, Lock(skip_locked=True)).endswith("LIMIT 1 FOR UPDATE SKIP LOCKED")
    assert _sql(my, Lock(shared=True)).endswith("LOCK IN SHARE MODE")
    assert SQLiteDialect.row_locks is False


@pytest.fixture
def jobs(make_db):
    db = make_db(JobMapper)
    with db.session() as s:
        s.add_all([Job(f"job{i}") for i in range(20)])
    return db


def take(s, who):
    """Take the next free job: the job queue's one statement, then mark it taken."""
    job = s.query(Job).where(done=False).order_by("id").for_update(skip_locked=True).first()
    if job is not None:
        job.done = True
        job.taken_by = who
        s.flush()
    return job


def test_two_sessions_never_take_the_same_job(backend, jobs, count):
    if backend.name == "sqlite":
        pytest.skip("SQLite has no row locks: skip_locked is refused there (test_sqlite_refuses_row_lock_options)")
    a, b = jobs.session(), jobs.session()
    try:
        with count(a, 2):  # the locking SELECT, the UPDATE
            ja = take(a, "a")
        with count(b, 2):
            jb = take(b, "b")  # a's job is locked: b skips it instead of waiting
        assert ja.id != jb.id
        a.commit()
        jb2 = take(b, "b")
        assert jb2.id not in (ja.id, jb.id)
        b.commit()
    finally:
        a.close()
        b.close()
    rows = backend.raw(f"SELECT id, taken_by FROM {backend.q('lock_jobs')} WHERE done = ?", [True])
    assert sorted(rows) == sorted([(ja.id, "a"), (jb.id, "b"), (jb2.id, "b")])


def test_concurrent_workers_take_every_job_once(backend, jobs):
    if backend.name == "sqlite":
        pytest.skip("SQLite has no row locks: skip_locked is refused there (test_sqlite_refuses_row_lock_options)")
    taken: dict[str, list[int]] = {"w1": [], "w2": [], "w3": []}
    failures: list[BaseException] = []

    def work(name):
        try:
            with jobs.session() as s:
                while True:
                    job = take(s, name)
                    if job is None:
                        return
                    taken[name].append(job.id)
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in taken]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not failures
    all_taken = [i for ids in taken.values() for i in ids]
    assert len(all_taken) == len(set(all_taken)) == 20
    rows = backend.raw(f"SELECT id, taken_by FROM {backend.q('lock_jobs')}")
    assert {i: w for i, w in rows} == {i: w for w, ids in taken.items() for i in ids}


def test_nowait_fails_at_once_on_a_locked_row(backend, jobs):
    if backend.name == "sqlite":
        pytest.skip("SQLite has no row locks: nowait is refused there (test_sqlite_refuses_row_lock_options)")
    a, b = jobs.session(), jobs.session()
    try:
        job = a.query(Job).order_by("id").for_update().first()
        with pytest.raises(errors.OperationalError):
            b.query(Job).where(id=job.id).for_update(nowait=True).all()
        b.rollback()
        # A shared lock lets another reader share it.
        a.rollback()
        a.query(Job).where(id=job.id).for_share().all()
        assert [j.id for j in b.query(Job).where(id=job.id).for_share(nowait=True).all()] == [job.id]
    finally:
        a.close()
        b.close()


def test_sqlite_refuses_row_lock_options_and_plain_lock_is_a_no_op(backend, jobs, count):
    if backend.name != "sqlite":
        pytest.skip("the SQLite decision; servers lock rows (test_two_sessions_never_take_the_same_job)")
    with jobs.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError, match="skip_locked=True: sqlite locks the whole database on write"):
                s.query(Job).for_update(skip_locked=True)
            with pytest.raises(errors.QueryError, match="nowait"):
                s.query(Job).for_share(nowait=True)
        with count(s, 1):
            assert len(s.query(Job).for_update().limit(3).all()) == 3


def test_lock_refusals_before_sql(backend, make_db, count):
    db = make_db(*PETS)
    with db.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError, match="not both"):
                s.query(Pug).for_update(nowait=True, skip_locked=True)
            with pytest.raises(errors.QueryError, match="of='toys' is neither Pug nor a relation path joined"):
                s.query(Pug).for_update(of="toys")
            with pytest.raises(errors.QueryError, match="grouped or distinct"):
                s.query(Pug).distinct().for_update().all()


def test_lock_of_a_join_locks_the_root(backend, make_db, count):
    db = make_db(*PETS)
    with db.session() as s:
        s.add(Owner("Tom", pugs=[Pug("a"), Pug("b")]))
    with db.session() as s:
        with count(s, 1):
            pugs = s.query(Pug).where(**{"owner.name": "Tom"}).for_update(of=Pug).order_by("name").all()
        assert [p.name for p in pugs] == ["a", "b"]
        with count(s, 1):
            assert len(s.query(Pug).order_by("owner.name").for_update().all()) == 2
        if backend.name == "postgresql":
            with count(s, 1):
                assert len(s.query(Pug).join("owner").for_update(of=["owner", Pug]).all()) == 2
        if backend.name == "mysql":
            with pytest.raises(errors.QueryError, match="no OF"):
                s.query(Pug).join("owner").for_update(of="owner")
