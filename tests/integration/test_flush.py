"""The flush on every backend: snapshot change tracking, batching with exact counts, versions, failures."""

from __future__ import annotations

import logging
import math

import attrs
import pytest

from mapper import Column, Mapper, errors
from mapper import types as t
from tests.models import Owner, OwnerMapper, Pug, PugMapper


@attrs.define
class Doc:
    title: str
    body: str = ""
    version: int | None = None
    id: int | None = None


class DocMapper(Mapper[Doc]):
    table = "flush_docs"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(100), nullable=False)
    body = Column(t.Text, nullable=False, default="")
    version = Column(t.Integer, nullable=False, version=True)


def _pug_rows(backend):
    return backend.raw(f"SELECT id, name, age FROM {backend.q('pugs')}")


def _seed(db, objs):
    with db.session() as s:
        s.add_all(objs)
    return objs


def _sql_messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "mapper.sql"]


# -- change tracking -----------------------------------------------------------------------------


def test_update_sets_only_changed_columns(backend, make_db, caplog, count):
    db = make_db(OwnerMapper, PugMapper, echo=True)
    (cody,) = _seed(db, [Pug("Cody", age=1)])
    caplog.set_level(logging.INFO, logger="mapper.sql")
    with db.session() as s:
        p = s.get_one(Pug, cody.id)
        p.age = 2
        caplog.clear()
        with count(s, 1):
            s.flush()
    updates = [m for m in _sql_messages(caplog) if m.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1
    set_clause = updates[0].upper().split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    assert "AGE" in set_clause
    assert "NAME" not in set_clause
    assert "OWNER_ID" not in set_clause
    assert _pug_rows(backend) == [(cody.id, "Cody", 2)]


def test_update_does_not_overwrite_columns_changed_elsewhere(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    (cody,) = _seed(db, [Pug("Cody", age=1)])
    with db.session() as s:
        p = s.get_one(Pug, cody.id)
        s.commit()
        backend.raw(f"UPDATE {backend.q('pugs')} SET name = ? WHERE id = ?", ("Renamed", cody.id))
        p.age = 5
    assert _pug_rows(backend) == [(cody.id, "Renamed", 5)]


def test_unchanged_objects_cost_nothing(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    _seed(db, [Pug(f"p{i}", age=i) for i in range(10)])
    with db.session() as s:
        pugs = s.query(Pug).all()
        for p in pugs:
            p.age = p.age  # same value
            p.name = "".join(p.name)  # equal, not identical
        pugs[0].age = 100
        pugs[0].age = 0  # changed and changed back
        with count(s, 0):
            s.flush()
            s.commit()


# -- insert batching -----------------------------------------------------------------------------


def test_generated_keys_insert_in_chunks_of_1000(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    d = db.engine.dialect
    pugs = [Pug(f"pug{i:05d}", age=i % 17) for i in range(2500)]
    with db.session() as s:
        s.add_all(pugs)
        # name, age, owner_id per row; the key comes back (RETURNING or lastrowid).
        # PostgreSQL binds one array per column: one INSERT ... SELECT FROM unnest(...).
        if backend.name == "postgresql":
            assert d.array_dml_rows >= 2500
            expected = 1
        else:
            step = min(d.max_insert_rows, d.max_params // 3)
            expected = math.ceil(2500 / step)
            assert expected == 3
        with count(s, expected):
            s.flush()
        ids = [p.id for p in pugs]
        assert all(isinstance(i, int) for i in ids)
        assert len(set(ids)) == 2500
    rows = _pug_rows(backend)
    assert len(rows) == 2500
    assert {r[0]: (r[1], r[2]) for r in rows} == {p.id: (p.name, p.age) for p in pugs}


def test_explicit_keys_insert_without_returning(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    d = db.engine.dialect
    pugs = [Pug(f"pug{i:05d}", age=i % 13, id=10_000 + (i * 7919) % 2500) for i in range(2500)]
    assert len({p.id for p in pugs}) == 2500
    if backend.name in ("sqlite", "mysql"):
        assert d.executemany_insert
    if d.executemany_insert or d.array_dml_rows >= 2500:
        expected = 1
    else:
        expected = math.ceil(2500 / min(d.max_insert_rows, d.max_params // 4))
    # PostgreSQL's identity sequence must be moved past explicit keys: one more statement.
    if d.sync_sequence_sql("pugs", "id") is not None:
        assert backend.name == "postgresql"
        expected += 1
    with db.session() as s:
        s.add_all(pugs)
        with count(s, expected):
            s.flush()
        with count(s, 0):
            assert s.get(Pug, pugs[1234].id) is pugs[1234]
    rows = _pug_rows(backend)
    assert len(rows) == 2500
    assert {r[0]: (r[1], r[2]) for r in rows} == {p.id: (p.name, p.age) for p in pugs}


def test_inserts_into_two_tables_cost_one_statement_each(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add_all([Owner(f"o{i}") for i in range(50)])
        s.add_all([Pug(f"p{i}") for i in range(50)])
        with count(s, 2):
            s.flush()
    assert backend.raw(f"SELECT count(*) FROM {backend.q('owners')}") == [(50,)]
    assert backend.raw(f"SELECT count(*) FROM {backend.q('pugs')}") == [(50,)]


# -- update and delete batching ------------------------------------------------------------------


def test_updates_grouped_by_changed_column_set(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    _seed(db, [Pug(f"p{i:03d}", age=1) for i in range(200)])
    with db.session() as s:
        pugs = sorted(s.query(Pug).all(), key=lambda p: p.name)
        for p in pugs[:100]:
            p.age = 7
        for p in pugs[100:150]:
            p.name = p.name.upper()
        with count(s, 2):
            s.flush()
        with count(s, 0):
            s.flush()
        expected = {p.id: (p.name, p.age) for p in pugs}
    rows = _pug_rows(backend)
    assert {r[0]: (r[1], r[2]) for r in rows} == expected
    assert sum(1 for r in rows if r[2] == 7) == 100
    assert sum(1 for r in rows if r[1].startswith("P")) == 50


def test_deletes_by_key_list(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    _seed(db, [Pug(f"p{i:03d}") for i in range(350)])
    with db.session() as s:
        pugs = sorted(s.query(Pug).all(), key=lambda p: p.name)
        for p in pugs[:300]:
            s.delete(p)
        with count(s, 1):
            s.flush()
        kept = {p.id for p in pugs[300:]}
    assert {r[0] for r in _pug_rows(backend)} == kept


# -- version column ------------------------------------------------------------------------------


def _versions(backend):
    return backend.raw(f"SELECT id, title, version FROM {backend.q('flush_docs')}")


def test_version_starts_at_one_and_counts_updates(backend, make_db, count):
    db = make_db(DocMapper)
    with db.session() as s:
        doc = Doc("v1")
        s.add(doc)
        s.flush()
        assert doc.version == 1
        s.commit()
        assert _versions(backend) == [(doc.id, "v1", 1)]
        doc.title = "v2"
        with count(s, 1):
            s.flush()
        assert doc.version == 2
        doc.body = "text"
        s.flush()
        assert doc.version == 3
        with count(s, 0):  # no change, no bump
            s.flush()
    assert _versions(backend) == [(doc.id, "v2", 3)]


def test_stale_update_raises_and_loses_nothing(backend, make_db):
    db = make_db(DocMapper)
    (doc,) = _seed(db, [Doc("v1", body="committed")])
    with db.session() as s:
        d = s.get_one(Doc, doc.id)
        s.commit()
        backend.raw(f"UPDATE {backend.q('flush_docs')} SET title = ?, version = ? WHERE id = ?", ("theirs", 2, doc.id))
        d.title = "mine"
        with pytest.raises(errors.StaleDataError):
            s.flush()
        # the failed flush wrote nothing onto the object: the user's edit is there, the version is not bumped
        assert (d.title, d.version) == ("mine", 1)
        with pytest.raises(errors.PendingRollbackError):
            s.get(Doc, doc.id)
        s.rollback()
        assert (d.title, d.body, d.version) == ("v1", "committed", 1)
        assert d in s
    assert _versions(backend) == [(doc.id, "theirs", 2)]


def test_stale_delete_raises_and_loses_nothing(backend, make_db, count):
    db = make_db(DocMapper)
    (doc,) = _seed(db, [Doc("v1")])
    with db.session() as s:
        d = s.get_one(Doc, doc.id)
        s.commit()
        backend.raw(f"UPDATE {backend.q('flush_docs')} SET version = ? WHERE id = ?", (5, doc.id))
        s.delete(d)
        with pytest.raises(errors.StaleDataError):
            s.flush()
        s.rollback()
        assert d in s
        with count(s, 0):
            assert s.get(Doc, doc.id) is d
        assert d.version == 1
    assert _versions(backend) == [(doc.id, "v1", 5)]


def test_version_checked_delete_of_current_row_succeeds(backend, make_db, count):
    db = make_db(DocMapper)
    docs = _seed(db, [Doc(f"d{i}") for i in range(5)])
    with db.session() as s:
        loaded = [s.get_one(Doc, d.id) for d in docs]
        loaded[0].title = "edited"
        s.flush()
        for d in loaded[:3]:
            s.delete(d)
        with count(s, 1):
            s.flush()
    assert sorted(r[0] for r in _versions(backend)) == sorted(d.id for d in docs[3:])


# -- failed flush --------------------------------------------------------------------------------


def test_failed_flush_leaves_nothing_and_can_be_retried(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    owners = [Owner(f"o{i:05d}") for i in range(2500)]
    owners[1999].name = "o00000"  # the 2,000th row repeats the first one's unique name
    with db.session() as s:
        s.add_all(owners)
        with pytest.raises(errors.IntegrityError) as info:
            s.flush()
        assert info.value.orig is not None
        assert "INSERT" in info.value.statement
        # nothing half-written survives, not even the first, successful chunk
        assert backend.raw(f"SELECT count(*) FROM {backend.q('owners')}") == [(0,)]
        # the flush put back every value it wrote
        assert all(o.id is None for o in owners)
        pending_calls = [
            lambda: s.add(Owner("x")),
            lambda: s.add_all([Owner("x")]),
            lambda: s.delete(owners[0]),
            lambda: s.get(Owner, 1),
            lambda: s.get_one(Owner, 1),
            lambda: s.query(Owner),
            lambda: s.execute("SELECT 1"),
            lambda: s.flush(),
            lambda: s.commit(),
            lambda: s.refresh(owners[0]),
            lambda: s.expunge(owners[0]),
            lambda: s.clear(),
            lambda: s.identity(owners[0]),
            lambda: s.begin_nested().__enter__(),
        ]
        for call in pending_calls:
            with pytest.raises(errors.PendingRollbackError):
                call()
        s.rollback()
        assert all(o not in s for o in owners)
        assert all(o.id is None for o in owners)
        owners[1999].name = "o01999"
        s.add_all(owners)
        # 1,000 rows per VALUES statement; one array-bound statement on PostgreSQL.
        with count(s, 1 if backend.name == "postgresql" else 3):
            s.flush()
        s.commit()
    rows = backend.raw(f"SELECT id, name FROM {backend.q('owners')}")
    assert len(rows) == 2500
    assert dict(rows) == {o.id: o.name for o in owners}


def test_failed_flush_of_updates_restores_objects(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    tom, ann = _seed(db, [Owner("Tom"), Owner("Ann")])
    with db.session() as s:
        t1, a1 = s.get_one(Owner, tom.id), s.get_one(Owner, ann.id)
        s.commit()
        t1.name = "Ann"  # unique violation
        with pytest.raises(errors.IntegrityError):
            s.flush()
        with pytest.raises(errors.PendingRollbackError):
            s.commit()
        s.rollback()
        assert (t1.name, a1.name) == ("Tom", "Ann")
        t1.name = "Thomas"
    assert sorted(backend.raw(f"SELECT id, name FROM {backend.q('owners')}")) == sorted([(tom.id, "Thomas"), (ann.id, "Ann")])


# -- many rows per statement: multi-row VALUES, executemany, or one array per column -------------


def _statements(caplog, verb):
    return [m for m in _sql_messages(caplog) if m.startswith(verb)]


def test_many_inserts_pair_generated_keys_with_their_objects(backend, make_db, count, caplog):
    db = make_db(OwnerMapper, PugMapper, echo=True)
    # Names in an order unrelated to insertion, so a key given to the wrong object shows.
    owners = [Owner(f"owner-{(i * 37) % 500:03d}") for i in range(500)]
    caplog.set_level(logging.INFO, logger="mapper.sql")
    with db.session() as s:
        s.add_all(owners)
        caplog.clear()
        with count(s, 1):
            s.flush()
    inserts = _statements(caplog, "INSERT")
    assert len(inserts) == 1
    # PostgreSQL binds one array per column; the others send a multi-row VALUES.
    assert ("unnest(" in inserts[0]) == (backend.name == "postgresql")
    rows = backend.raw(f"SELECT id, name FROM {backend.q('owners')}")
    assert dict(rows) == {o.id: o.name for o in owners}
    assert [o.id for o in owners] == sorted(o.id for o in owners)  # keys drawn in add order


def test_many_updates_go_in_one_statement_per_column_set(backend, make_db, count, caplog):
    db = make_db(OwnerMapper, PugMapper, echo=True)
    _seed(db, [Pug(f"pug{i:03d}", age=1) for i in range(300)])
    caplog.set_level(logging.INFO, logger="mapper.sql")
    with db.session() as s:
        pugs = s.query(Pug).order_by("id").all()
        for i, p in enumerate(pugs):
            p.age = i % 7 + (2 if i % 2 else 100)
            if i % 3 == 0:
                p.name = f"renamed{i}"
        caplog.clear()
        # Two column sets (age; name and age): two statements on every backend.
        with count(s, 2):
            s.flush()
        expected = {p.id: (p.name, p.age) for p in pugs}
    updates = _statements(caplog, "UPDATE")
    assert len(updates) == 2
    assert all(("unnest(" in u) == (backend.name == "postgresql") for u in updates)
    assert {r[0]: (r[1], r[2]) for r in _pug_rows(backend)} == expected


def test_stale_row_among_many_updates_raises_and_loses_nothing(backend, make_db):
    db = make_db(DocMapper)
    docs = _seed(db, [Doc(f"d{i}", body="committed") for i in range(50)])
    victim = docs[17]
    with db.session() as s:
        loaded = s.query(Doc).order_by("id").all()
        s.commit()
        backend.raw(f"UPDATE {backend.q('flush_docs')} SET title = ?, version = ? WHERE id = ?", ("theirs", 2, victim.id))
        for d in loaded:
            d.title = d.title + "-mine"
        with pytest.raises(errors.StaleDataError, match=r"matched 49 of 50 rows"):
            s.flush()
        assert all(d.title.endswith("-mine") and d.version == 1 for d in loaded)
        s.rollback()
    rows = {r[0]: (r[1], r[2]) for r in _versions(backend)}
    assert rows[victim.id] == ("theirs", 2)
    assert all(rows[d.id] == (d.title, 1) for d in docs if d is not victim)


def test_many_updates_with_versions_bump_each_row(backend, make_db, count):
    db = make_db(DocMapper)
    docs = _seed(db, [Doc(f"d{i}") for i in range(40)])
    with db.session() as s:
        loaded = s.query(Doc).order_by("id").all()
        for d in loaded:
            d.body = f"body of {d.title}"
        with count(s, 1):
            s.flush()
        assert {d.version for d in loaded} == {2}
    assert sorted(_versions(backend)) == sorted((d.id, d.title, 2) for d in docs)
