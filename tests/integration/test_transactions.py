"""Transactions on every backend: commit/rollback, savepoints, budgets, two sessions at once."""

from __future__ import annotations

import time

import pytest

from mapper import Database, errors
from tests.models import Owner, OwnerMapper, Pug, PugMapper


class Boom(Exception):
    pass


def _owners(backend):
    return sorted(r[0] for r in backend.raw(f"SELECT name FROM {backend.q('owners')}"))


def _pugs(backend):
    return sorted(backend.raw(f"SELECT id, name, age FROM {backend.q('pugs')}"))


# -- commit and rollback -------------------------------------------------------------------------


def test_commit_keeps_session_usable_and_next_statement_begins_a_new_transaction(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add(Owner("Tom"))
        # a read first, so that a snapshot (MySQL) or a read lock (SQLite) belongs to this transaction
        assert s.execute(f"SELECT count(*) FROM {backend.q('owners')}")[0][0] == 1
        s.commit()
        assert _owners(backend) == ["Tom"]
        # another connection writes between our transactions (SQLite: no lock is held any more)
        backend.raw(f"INSERT INTO {backend.q('owners')} (name) VALUES (?)", ("Outside",))
        with count(s, 1):
            assert s.execute(f"SELECT count(*) FROM {backend.q('owners')}")[0][0] == 2
        s.add(Owner("Ann"))
        s.commit()
    assert _owners(backend) == ["Ann", "Outside", "Tom"]


def test_rollback_keeps_session_usable_and_next_statement_begins_a_new_transaction(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add(Owner("Tom"))
        s.flush()
        s.rollback()
        assert _owners(backend) == []
        backend.raw(f"INSERT INTO {backend.q('owners')} (name) VALUES (?)", ("Outside",))
        assert [o.name for o in s.query(Owner).all()] == ["Outside"]
        s.add(Owner("Ann"))
        s.commit()
        s.rollback()  # nothing to undo after a commit
    assert _owners(backend) == ["Ann", "Outside"]


def test_rollback_returns_to_last_commit(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        a, b, c, d = Pug("A", age=1), Pug("B", age=2), Pug("C", age=3), Pug("D", age=4)
        s.add_all([a, b, c, d])
        s.commit()
        committed = _pugs(backend)
        a.age = 10  # flushed change
        a.name = "AA"
        s.delete(b)  # flushed delete
        s.flush()
        c.age = 30  # unflushed change
        s.delete(d)  # unflushed delete
        e = Pug("E")  # added and flushed
        s.add(e)
        s.flush()
        f = Pug("F")  # added, not flushed
        s.add(f)
        e_id = e.id
        assert e_id is not None
        s.rollback()
        assert (a.name, a.age, b.age, c.age, d.age) == ("A", 1, 2, 3, 4)
        assert all(p in s for p in (a, b, c, d))
        assert e not in s and f not in s
        assert e.id is None and f.id is None
        with count(s, 0):
            assert s.get(Pug, b.id) is b
            assert s.get(Pug, d.id) is d
            s.flush()  # nothing left over
        with count(s, 1):
            assert s.get(Pug, e_id) is None
        assert _pugs(backend) == committed
        b.age = 22
    assert _pugs(backend) == sorted([(a.id, "A", 1), (b.id, "B", 22), (c.id, "C", 3), (d.id, "D", 4)])


# -- savepoints ----------------------------------------------------------------------------------


def test_savepoint_block_that_raises_restores_database_and_memory(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        keep = Pug("Keep", age=1)
        gone = Pug("Gone", age=2)
        s.add_all([keep, gone])
        s.commit()
        before = Pug("Before", age=3)
        s.add(before)  # pending: flushed when the savepoint opens
        keep.age = 5  # changed before the savepoint: survives
        with pytest.raises(Boom):
            with s.begin_nested():
                inner = Pug("Inner")
                s.add(inner)
                keep.age = 50
                keep.name = "Changed"
                before.age = 33
                s.delete(gone)
                s.flush()
                assert inner.id is not None
                raise Boom
        assert inner not in s and inner.id is None
        assert (keep.name, keep.age, before.age) == ("Keep", 5, 3)
        assert gone in s
        with count(s, 0):
            assert s.get(Pug, gone.id) is gone
            assert s.get(Pug, keep.id) is keep
            s.flush()
        assert before.id is not None
    assert _pugs(backend) == sorted([(keep.id, "Keep", 5), (gone.id, "Gone", 2), (before.id, "Before", 3)])


def test_savepoint_block_that_succeeds_keeps_its_work(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        a = Pug("A")
        s.add(a)
        with s.begin_nested():
            b = Pug("B", age=2)
            s.add(b)
            a.age = 1
        assert b.id is not None  # flushed when the block ended
        assert b in s
        s.rollback()  # a released savepoint is part of the transaction
        assert a not in s and b not in s
        s.add_all([a, b])
        with s.begin_nested():
            a.age = 7
    assert _pugs(backend) == sorted([(a.id, "A", 7), (b.id, "B", 2)])


def test_nested_savepoints(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        base = Pug("Base")
        s.add(base)
        with s.begin_nested():
            outer = Pug("Outer")
            s.add(outer)
            with pytest.raises(Boom):
                with s.begin_nested():
                    inner = Pug("Inner")
                    s.add(inner)
                    outer.age = 9
                    s.flush()
                    raise Boom
            assert inner not in s and inner.id is None
            assert outer.age == 0
            after = Pug("After", age=1)
            s.add(after)
        with pytest.raises(Boom):
            with s.begin_nested():
                lost1 = Pug("Lost1")
                s.add(lost1)
                with s.begin_nested():
                    lost2 = Pug("Lost2")
                    s.add(lost2)
                    base.age = 4
                raise Boom
        assert lost1 not in s and lost2 not in s
        assert lost1.id is None and lost2.id is None
        assert base.age == 0
    assert _pugs(backend) == sorted([(base.id, "Base", 0), (outer.id, "Outer", 0), (after.id, "After", 1)])


def test_failed_flush_inside_savepoint_only_undoes_the_block(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        tom = Owner("Tom")
        s.add(tom)
        s.flush()
        ann = Owner("Ann")
        s.add(ann)
        with pytest.raises(errors.IntegrityError):
            with s.begin_nested():
                fresh = Owner("Fresh")
                dup = Owner("Tom")
                s.add_all([fresh, dup])
                ann.name = "Anna"
                s.flush()
        assert fresh not in s and dup not in s
        assert fresh.id is None and dup.id is None
        assert ann.name == "Ann" and ann in s and ann.id is not None
        with count(s, 0):
            assert s.get(Owner, tom.id) is tom
            s.flush()
        s.add(Owner("Zed"))
    assert _owners(backend) == ["Ann", "Tom", "Zed"]


def test_rollback_reads_again_objects_loaded_after_a_write(backend, make_db, count):
    """An object first loaded after the transaction wrote holds uncommitted values; rollback
    reads its row again (one SELECT), and drops an object whose row the rollback undid."""
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add(Pug("Cody", age=1))
    with db.session() as s:
        assert s.query(Pug).update(age=5) == 1
        s.execute(f"INSERT INTO {backend.q('pugs')} (name, age) VALUES ('Temp', 3)")
        cody, temp = s.query(Pug).order_by("id").all()
        assert cody.age == 5
        with count(s, 1):
            s.rollback()
        assert cody.age == 1 and cody in s and s.get(Pug, cody.id) is cody
        assert temp not in s
        cody.name = "Cody II"
        s.commit()
    assert [(name, age) for _, name, age in _pugs(backend)] == [("Cody II", 1)]


def test_rollback_on_a_lost_connection_drops_objects_loaded_after_a_write(backend, make_db):
    """Nothing can say what their committed values are: they leave the session rather than
    keep values the lost transaction wrote; objects loaded before the write stay."""
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add_all([Pug("Cody", age=1), Owner("Tom")])
    s = db.session()
    try:
        tom = s.query(Owner).one()
        s.query(Pug).update(age=5)
        cody = s.query(Pug).one()
        s.connection.raw.close()
        with pytest.raises(errors.DatabaseError):
            s.rollback()  # the ROLLBACK itself fails; memory is put back all the same
        assert cody not in s and cody.age == 5
        assert tom in s and tom.name == "Tom"
    finally:
        s.close()
    assert [(name, age) for _, name, age in _pugs(backend)] == [("Cody", 1)]


def test_failed_savepoint_reads_again_objects_loaded_after_a_write_in_it(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add(Pug("Cody", age=1))
    with db.session() as s:
        with pytest.raises(Boom):
            with s.begin_nested():
                s.query(Pug).update(age=5)
                cody = s.query(Pug).one()
                assert cody.age == 5
                raise Boom
        assert cody.age == 1 and s.get(Pug, cody.id) is cody
        cody.age = 2
    assert [(name, age) for _, name, age in _pugs(backend)] == [("Cody", 2)]


def test_commit_inside_savepoint_is_refused(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        with pytest.raises(errors.SessionError):
            with s.begin_nested():
                s.add(Owner("Tom"))
                s.commit()
        assert _owners(backend) == []


# -- budgets -------------------------------------------------------------------------------------


def test_budget_stops_the_first_statement_over_it_before_sending(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        tom = Owner("Tom")
        s.add(tom)
        s.commit()
        sent = s.query_count
        with s.budget(queries=1):
            assert s.get(Owner, tom.id + 1) is None
            with pytest.raises(errors.QueryBudgetExceeded) as info:
                s.execute(f"INSERT INTO {backend.q('owners')} (name) VALUES (:n)", {"n": "Sneaky"})
        assert s.query_count == sent + 1
        assert "INSERT INTO" in str(info.value) and "owners" in str(info.value)
        with s.budget(queries=0):
            with pytest.raises(errors.QueryBudgetExceeded) as info:
                s.get(Owner, tom.id + 2)
        assert "SELECT" in str(info.value) and "owners" in str(info.value)
        s.commit()
    assert _owners(backend) == ["Tom"]  # the INSERT was never sent


def test_budgets_nest(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        with s.budget(queries=3):
            with s.budget(queries=1):
                assert s.get(Owner, 1) is None
                with pytest.raises(errors.QueryBudgetExceeded):
                    s.get(Owner, 2)
            assert s.get(Owner, 3) is None  # outer: 2 of 3
            with s.budget(queries=5):  # an inner budget cannot widen the outer one
                assert s.get(Owner, 4) is None  # outer: 3 of 3
                with pytest.raises(errors.QueryBudgetExceeded) as info:
                    s.get(Owner, 5)
            assert "budget of 3" in str(info.value)
        assert s.get(Owner, 6) is None  # no budget any more
        assert s.query_count == 4


def test_budget_ignores_transaction_control(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        with s.budget(queries=1):
            s.add(Owner("Tom"))
            s.commit()  # BEGIN + INSERT + COMMIT: only the INSERT counts
            s.rollback()
            with s.begin_nested():  # SAVEPOINT / RELEASE
                pass
            with pytest.raises(Boom):
                with s.begin_nested():  # SAVEPOINT / ROLLBACK TO
                    raise Boom
            s.commit()
            s.rollback()
        assert s.query_count == 1
        with s.budget(queries=0):
            with s.begin_nested():
                pass
            s.commit()
    assert _owners(backend) == ["Tom"]


# -- two sessions --------------------------------------------------------------------------------


def test_uncommitted_work_is_invisible_to_another_session(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    s1 = db.session()
    s2 = db.session()
    try:
        s1.add(Owner("Tom"))
        s1.flush()
        assert s1.query(Owner).count() == 1
        assert s2.query(Owner).count() == 0
        assert s2.execute(f"SELECT count(*) FROM {backend.q('owners')}")[0][0] == 0
        assert s1.connection is not s2.connection
        assert s1.connection.raw is not s2.connection.raw
        s2.commit()  # end s2's read transaction
        s1.commit()
        assert [o.name for o in s2.query(Owner).all()] == ["Tom"]
    finally:
        s1.close()
        s2.close()


def test_write_conflict_waits_then_raises_operational_error(backend, make_db):
    timeout = {"sqlite": 0.2, "postgresql": 0.2, "mysql": 1.0}[backend.name]
    db = make_db(OwnerMapper, PugMapper, busy_timeout=0.2)
    with db.session() as s:
        s.add(Owner("Tom"))
    s1 = db.session()
    s2 = db.session()
    try:
        if backend.name == "postgresql":
            s2.execute("SET lock_timeout = '200ms'")
        elif backend.name == "mysql":
            s2.execute("SET SESSION innodb_lock_wait_timeout = 1")
        t2 = s2.query(Owner).one()
        s2.commit()  # no transaction (and on SQLite no lock) is held by s2 now
        t1 = s1.query(Owner).one()
        t1.name = "One"
        s1.flush()  # s1 holds the write lock (row lock on the servers)
        t2.name = "Two"
        started = time.monotonic()
        with pytest.raises(errors.OperationalError):
            s2.flush()
        waited = time.monotonic() - started
        assert timeout * 0.75 <= waited < timeout + 3.0
        s2.rollback()
        assert t2.name == "Tom"
        s1.commit()
        assert _owners(backend) == ["One"]
    finally:
        s1.close()
        s2.close()
