"""Session API on every backend: lifecycle, add/delete/get, refresh, expunge, identity, execute, autoflush."""

from __future__ import annotations

import logging

import attrs
import pytest

from mapper import Column, Mapper, errors
from mapper import types as t
from tests.models import Owner, OwnerMapper, Pug, PugMapper


# -- extra domain classes and mappers (distinct tables) ------------------------------------------


@attrs.define
class Tag:
    """A domain class without its key: the key column is hidden in the session."""

    label: str


class TagMapper(Mapper[Tag]):
    table = "sess_tags"
    id = Column(t.Integer, primary_key=True, hidden=True)
    label = Column(t.String(50), nullable=False)


@attrs.define
class Membership:
    """Composite key; the domain field order differs from the key's column order."""

    role: str
    user_id: int
    group_id: str


class MembershipMapper(Mapper[Membership]):
    table = "sess_memberships"
    group_id = Column(t.String(20), primary_key=True)
    user_id = Column(t.Integer, primary_key=True)
    role = Column(t.String(20), nullable=False)


class Boom(Exception):
    pass


def _pugs(backend):
    return backend.raw(f"SELECT name, age FROM {backend.q('pugs')} ORDER BY name")


def _owners(backend):
    return backend.raw(f"SELECT name FROM {backend.q('owners')} ORDER BY name")


def _seed_pugs(db, *pugs):
    with db.session() as s:
        s.add_all(pugs)
    return [p.id for p in pugs]


# -- context manager -----------------------------------------------------------------------------


def test_clean_exit_commits(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add(Owner("Tom"))
        s.add(Pug("Cody", age=2))
    assert _owners(backend) == [("Tom",)]
    assert _pugs(backend) == [("Cody", 2)]
    assert s.closed


def test_exception_rolls_back_even_flushed_work(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with pytest.raises(Boom):
        with db.session() as s:
            s.add(Owner("Tom"))
            s.flush()  # the INSERT is sent inside the session's transaction
            s.add(Pug("Cody"))
            raise Boom
    assert _owners(backend) == []
    assert _pugs(backend) == []
    assert s.closed


@pytest.mark.parametrize("clean_exit", [True, False])
def test_session_is_closed_after_the_block(backend, make_db, clean_exit):
    db = make_db(OwnerMapper, PugMapper)
    tom = Owner("Tom")
    if clean_exit:
        with db.session() as s:
            s.add(tom)
    else:
        with pytest.raises(Boom):
            with db.session() as s:
                s.add(tom)
                raise Boom
    assert s.closed
    calls = [
        lambda: s.add(Owner("Ann")),
        lambda: s.add_all([Owner("Ann")]),
        lambda: s.get(Owner, 1),
        lambda: s.get_one(Owner, 1),
        lambda: s.query(Owner),
        lambda: s.execute("SELECT 1"),
        lambda: s.flush(),
        lambda: s.commit(),
        lambda: s.rollback(),
        lambda: s.delete(tom),
        lambda: s.refresh(tom),
        lambda: s.expunge(tom),
        lambda: s.clear(),
        lambda: s.identity(tom),
    ]
    for call in calls:
        with pytest.raises(errors.SessionClosedError):
            call()
    s.close()  # closing again is harmless
    assert _owners(backend) == ([("Tom",)] if clean_exit else [])


# -- add / add_all / delete ----------------------------------------------------------------------


def test_add_and_add_all(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        cody = Pug("Cody", age=1)
        s.add(cody)
        s.add(cody)  # adding twice is a no-op
        s.add_all([Pug("Doug", age=2), Pug("Earl", age=3)])
        assert cody in s
        with count(s, 1):  # same table, same column set: one batched INSERT
            s.flush()
        assert cody.id is not None
    assert _pugs(backend) == [("Cody", 1), ("Doug", 2), ("Earl", 3)]


def test_delete_of_pending_sends_nothing(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        p = Pug("Cody")
        s.add(p)
        s.delete(p)
        assert p not in s
        with count(s, 0):
            s.flush()
            s.commit()
    assert _pugs(backend) == []


def test_delete_of_persistent_removes_the_row(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    cody_id, doug_id = _seed_pugs(db, Pug("Cody"), Pug("Doug"))
    with db.session() as s:
        cody = s.get_one(Pug, cody_id)
        s.delete(cody)
        with count(s, 0):
            assert s.get(Pug, cody_id) is None  # marked for deletion: gone for this session
        with count(s, 1):
            s.flush()
    assert backend.raw(f"SELECT id FROM {backend.q('pugs')}") == [(doug_id,)]


def test_delete_of_unmanaged_object_is_an_error(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        with pytest.raises(errors.SessionError):
            s.delete(Pug("Stranger"))


# -- get / get_one -------------------------------------------------------------------------------


def test_get_hits_identity_map_without_a_statement(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        tom = Owner("Tom")
        s.add(tom)
        s.flush()
        with count(s, 0):
            assert s.get(Owner, tom.id) is tom
            assert s.get_one(Owner, tom.id) is tom
            assert s.get(Owner, (tom.id,)) is tom


def test_get_miss_costs_one_statement_then_hits(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=4))
    with db.session() as s:
        with count(s, 1):
            cody = s.get(Pug, cody_id)
        assert cody == Pug("Cody", age=4, id=cody_id)
        with count(s, 0):
            assert s.get(Pug, cody_id) is cody


def test_get_miss_sends_the_same_scalar_statement_every_time(backend, make_db, count, caplog):
    # key = ? with one scalar parameter, never an array: PostgreSQL prepares a statement it
    # sees repeatedly, and the plan is the plainest.
    db = make_db(OwnerMapper, PugMapper, echo=True)
    ids = _seed_pugs(db, Pug("Cody"), Pug("Ruby"))
    caplog.set_level(logging.INFO, logger="mapper.sql")
    with db.session() as s:
        caplog.clear()
        with count(s, 2):
            assert [s.get(Pug, i).name for i in ids] == ["Cody", "Ruby"]
    selects = [r.getMessage() for r in caplog.records if r.name == "mapper.sql" and r.getMessage().startswith("SELECT")]
    assert len(selects) == 2
    statement = selects[0].rsplit(" (", 1)[0].rsplit(" [", 1)[0]  # "SQL [params] (ms)"
    assert selects[1].startswith(statement)
    assert "ANY(" not in statement and " IN (" not in statement
    assert statement.endswith(" = ?" if backend.name == "sqlite" else " = %s"), statement


def test_get_missing_row_returns_none(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    _seed_pugs(db, Pug("Cody"))
    with db.session() as s:
        with count(s, 1):
            assert s.get(Pug, 987654) is None


def test_get_with_wrong_key_shape_raises_query_error(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper, MembershipMapper)
    with db.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError):
                s.get(Owner, (1, 2))
            with pytest.raises(errors.QueryError):
                s.get(Owner, None)
            with pytest.raises(errors.QueryError):
                s.get(Membership, "admins")
            with pytest.raises(errors.QueryError):
                s.get(Membership, ("admins",))
            with pytest.raises(errors.QueryError):
                s.get(Membership, ("admins", 1, 2))
            with pytest.raises(errors.QueryError):
                s.get(Membership, ("admins", None))


def test_get_composite_key(backend, make_db, count):
    db = make_db(MembershipMapper)
    with db.session() as s:
        s.add_all([Membership("owner", 1, "admins"), Membership("guest", 2, "admins"), Membership("member", 1, "users")])
    with db.session() as s:
        with count(s, 1):
            m = s.get(Membership, ("admins", 2))
        assert m == Membership("guest", 2, "admins")
        with count(s, 0):
            assert s.get(Membership, ("admins", 2)) is m
        with count(s, 1):
            assert s.get(Membership, ("users", 2)) is None


def test_get_one_raises_not_found(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody"))
    with db.session() as s:
        assert s.get_one(Pug, cody_id).name == "Cody"
        with count(s, 1):
            with pytest.raises(errors.NotFoundError):
                s.get_one(Pug, cody_id + 1000)


# -- refresh -------------------------------------------------------------------------------------


def test_refresh_discards_unflushed_changes(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=3))
    with db.session() as s:
        cody = s.get_one(Pug, cody_id)
        cody.age = 99
        cody.name = "Changed"
        with count(s, 1):
            s.refresh(cody)
        assert (cody.name, cody.age) == ("Cody", 3)
        with count(s, 0):  # nothing left to write
            s.flush()
    assert _pugs(backend) == [("Cody", 3)]


def test_refresh_reloads_values_changed_by_raw_sql(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=3))
    with db.session() as s:
        cody = s.get_one(Pug, cody_id)
        s.commit()
        backend.raw(f"UPDATE {backend.q('pugs')} SET age = ?, name = ? WHERE id = ?", (7, "Raw", cody_id))
        assert cody.age == 3  # nothing is reloaded behind the user's back
        s.refresh(cody)
        assert (cody.name, cody.age) == ("Raw", 7)
        with count(s, 0):  # the refreshed values are the new snapshot
            s.flush()


def test_refresh_of_deleted_row_raises_not_found(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=3))
    with db.session() as s:
        cody = s.get_one(Pug, cody_id)
        s.commit()
        backend.raw(f"DELETE FROM {backend.q('pugs')} WHERE id = ?", (cody_id,))
        with pytest.raises(errors.NotFoundError):
            s.refresh(cody)


# -- expunge / clear -----------------------------------------------------------------------------


def test_expunge_stops_tracking(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=3))
    with db.session() as s:
        cody = s.get_one(Pug, cody_id)
        s.expunge(cody)
        assert cody not in s
        cody.age = 50
        fresh_pending = Pug("Doug")
        s.add(fresh_pending)
        s.expunge(fresh_pending)
        with count(s, 0):
            s.flush()
        with count(s, 1):
            again = s.get(Pug, cody_id)
        assert again is not cody
        assert again.age == 3
        with pytest.raises(errors.SessionError):
            s.expunge(Pug("Stranger"))
    assert _pugs(backend) == [("Cody", 3)]


def test_clear_forgets_everything(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=3))
    with db.session() as s:
        cody = s.get_one(Pug, cody_id)
        cody.age = 40
        doug = Pug("Doug")
        s.add(doug)
        s.clear()
        assert cody not in s and doug not in s
        with count(s, 0):
            s.flush()
        with count(s, 1):
            again = s.get(Pug, cody_id)
        assert again is not cody and again.age == 3
    assert _pugs(backend) == [("Cody", 3)]


# -- identity ------------------------------------------------------------------------------------


def test_identity_single_key(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        tom = Owner("Tom")
        s.add(tom)
        s.flush()
        with count(s, 0):
            assert s.identity(tom) == tom.id
        assert isinstance(s.identity(tom), int)
        with pytest.raises(errors.SessionError):
            s.identity(Owner("Stranger"))


def test_identity_composite_key_in_column_order(backend, make_db):
    db = make_db(MembershipMapper)
    with db.session() as s:
        m = Membership("owner", 7, "admins")
        s.add(m)
        s.flush()
        assert s.identity(m) == ("admins", 7)
    with db.session() as s:
        loaded = s.get_one(Membership, ("admins", 7))
        assert s.identity(loaded) == ("admins", 7)


def test_identity_of_hidden_key(backend, make_db, count):
    db = make_db(TagMapper)
    with db.session() as s:
        red, blue = Tag("red"), Tag("blue")
        s.add_all([red, blue])
        s.flush()
        red_id, blue_id = s.identity(red), s.identity(blue)
        assert isinstance(red_id, int) and isinstance(blue_id, int) and red_id != blue_id
        with count(s, 0):
            assert s.get(Tag, red_id) is red
    rows = backend.raw(f"SELECT id, label FROM {backend.q('sess_tags')} ORDER BY id")
    assert sorted(rows) == sorted([(red_id, "red"), (blue_id, "blue")])
    with db.session() as s:
        loaded = s.get_one(Tag, blue_id)
        assert loaded == Tag("blue")
        assert s.identity(loaded) == blue_id


# -- execute -------------------------------------------------------------------------------------


def test_execute_binds_named_parameters_and_returns_rows(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    _seed_pugs(db, Pug("Cody", age=1), Pug("Doug", age=3), Pug("Earl", age=5))
    with db.session() as s:
        rows = s.execute(
            f"SELECT name, age FROM {backend.q('pugs')} WHERE age > :age OR name = :name ORDER BY name",
            {"age": 2, "name": "Cody"},
        )
        assert rows == [("Cody", 1), ("Doug", 3), ("Earl", 5)]
        rows = s.execute(f"SELECT name, age FROM {backend.q('pugs')} WHERE age >= :age AND age <= :age", {"age": 3})
        assert rows == [("Doug", 3)]
        row = rows[0]
        assert row[0] == "Doug" and row[1] == 3
        assert row.name == "Doug" and row["age"] == 3
        n = s.execute(f"SELECT count(*) AS n FROM {backend.q('pugs')}")[0]
        assert n.n == 3 and n[0] == 3
        assert s.execute(f"UPDATE {backend.q('pugs')} SET age = :a WHERE name = :n", {"a": 9, "n": "Earl"}) == []
    assert _pugs(backend) == [("Cody", 1), ("Doug", 3), ("Earl", 9)]


def test_execute_runs_in_the_session_transaction_after_autoflush(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        zed = Pug("Zed", age=5)
        s.add(zed)
        with count(s, 2):  # autoflush INSERT + the SELECT
            rows = s.execute(f"SELECT id, age FROM {backend.q('pugs')} WHERE name = :n", {"n": "Zed"})
        assert rows == [(zed.id, 5)]
        s.execute(f"INSERT INTO {backend.q('pugs')} (name, age) VALUES (:n, :a)", {"n": "Raw", "a": 1})
        assert [p.name for p in s.query(Pug).order_by("name").all()] == ["Raw", "Zed"]
        s.rollback()  # both the flushed INSERT and the raw one were in the session's transaction
        assert _pugs(backend) == []
        s.add(Pug("Kept"))
        s.execute(f"INSERT INTO {backend.q('pugs')} (name, age) VALUES (:n, :a)", {"n": "RawKept", "a": 2})
    assert _pugs(backend) == [("Kept", 0), ("RawKept", 2)]


def test_execute_leaves_percent_and_double_colon_alone(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    _seed_pugs(db, Pug("Cody", age=1), Pug("Doug", age=3), Pug("C%x", age=5))
    with db.session() as s:
        rows = s.execute(
            f"SELECT name FROM {backend.q('pugs')} WHERE name LIKE 'C%' AND age >= :age",
            {"age": 0},
        )
        assert sorted(rows) == [("C%x",), ("Cody",)]
        row = s.execute("SELECT 7 % :m AS r, 'a::b' AS s, ':notaparam' AS t, '100%s' AS p", {"m": 3})[0]
        assert (row.r, row.s, row.t, row.p) == (1, "a::b", ":notaparam", "100%s")
        if backend.name == "postgresql":
            cast = s.execute("SELECT :v::integer + 1 AS n, '5'::integer AS five", {"v": "41"})[0]
            assert (cast.n, cast.five) == (42, 5)


def test_execute_missing_parameter_raises_query_error(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError):
                s.execute(f"SELECT name FROM {backend.q('pugs')} WHERE age = :age", {"agee": 1})
            with pytest.raises(errors.QueryError):
                s.execute(f"SELECT name FROM {backend.q('pugs')} WHERE age = :age")


def test_execute_database_error_is_translated(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add(Owner("Tom"))
        s.flush()
        with pytest.raises(errors.IntegrityError) as info:
            s.execute(f"INSERT INTO {backend.q('owners')} (name) VALUES (:n)", {"n": "Tom"})
        assert info.value.orig is not None
        assert "INSERT" in info.value.statement


# -- autoflush -----------------------------------------------------------------------------------


def test_autoflush_before_queries(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=1))
    with db.session() as s:
        cody = s.get_one(Pug, cody_id)
        doug = Pug("Doug", age=1)
        s.add(doug)
        cody.age = 8
        with count(s, 3):  # INSERT Doug, UPDATE Cody, then the SELECT
            found = s.query(Pug).where(age=8).all()
        assert found == [cody] and found[0] is cody
        with count(s, 1):
            assert s.query(Pug).where(name="Doug").one() is doug


def test_autoflush_off(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=1))
    with db.session(autoflush=False) as s:
        cody = s.get_one(Pug, cody_id)
        cody.age = 8
        s.add(Pug("Doug", age=8))
        with count(s, 1):
            assert s.query(Pug).where(age=8).count() == 0
        with count(s, 1):
            assert s.execute(f"SELECT count(*) FROM {backend.q('pugs')}")[0][0] == 1
        with count(s, 2):
            s.flush()
        with count(s, 1):
            assert s.query(Pug).where(age=8).count() == 2
    assert _pugs(backend) == [("Cody", 8), ("Doug", 8)]


# -- objects after commit and close; identity on load --------------------------------------------


def test_objects_stay_usable_after_commit_and_close(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        tom = Owner("Tom")
        cody = Pug("Cody", age=2)
        s.add_all([tom, cody])
        s.commit()
        assert (tom.name, cody.name, cody.age) == ("Tom", "Cody", 2)
        assert tom.id is not None and cody.id is not None
        with count(s, 0):  # still managed after commit: no expiry, no reload
            assert s.get(Owner, tom.id) is tom
            assert tom.name == "Tom"
        cody.age = 3
    assert s.closed
    assert (tom.name, cody.name, cody.age) == ("Tom", "Cody", 3)
    tom.name = "Thomas"  # plain objects: editable after close, nothing is sent
    assert tom.name == "Thomas"
    assert _owners(backend) == [("Tom",)]
    assert _pugs(backend) == [("Cody", 3)]


def test_loading_a_held_object_returns_it_and_keeps_pending_changes(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=1))
    with db.session(autoflush=False) as s:
        cody = s.get_one(Pug, cody_id)
        cody.age = 42
        with count(s, 1):
            again = s.query(Pug).where(name="Cody").one()
        assert again is cody
        assert cody.age == 42
        assert s.query(Pug).all() == [cody]
        assert cody.age == 42
        with count(s, 1):
            s.flush()
    assert _pugs(backend) == [("Cody", 42)]


def test_duplicate_identity_with_persistent_object(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=1))
    with db.session() as s:
        cody = s.get_one(Pug, cody_id)
        impostor = Pug("Impostor", id=cody_id)
        with pytest.raises(errors.DuplicateIdentityError):
            s.add(impostor)
        assert impostor not in s
        assert s.get(Pug, cody_id) is cody
        with count(s, 0):
            s.flush()
    assert _pugs(backend) == [("Cody", 1)]


def test_duplicate_identity_with_just_flushed_object(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        tom = Owner("Tom")
        s.add(tom)
        s.flush()
        with pytest.raises(errors.DuplicateIdentityError):
            s.add(Owner("Other", id=tom.id))
    assert _owners(backend) == [("Tom",)]


def test_duplicate_identity_with_pending_object_of_known_key(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        first = Pug("First", id=500)
        s.add(first)
        second = Pug("Second", id=500)
        with pytest.raises(errors.DuplicateIdentityError):
            s.add(second)
        assert second not in s
    assert _pugs(backend) == [("First", 0)]


def test_duplicate_identity_detected_at_flush_when_key_set_after_add(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    (cody_id,) = _seed_pugs(db, Pug("Cody", age=1))
    with db.session() as s:
        s.get_one(Pug, cody_id)
        late = Pug("Late")
        s.add(late)  # key unknown at add()
        late.id = cody_id
        with count(s, 0):
            with pytest.raises(errors.DuplicateIdentityError):
                s.flush()
        s.rollback()
    assert _pugs(backend) == [("Cody", 1)]


def test_duplicate_identity_between_pending_objects_detected_at_flush(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        first = Pug("First", id=500)
        late = Pug("Late")
        s.add_all([first, late])
        late.id = 500  # now two managed objects share a key
        with count(s, 0):
            with pytest.raises(errors.DuplicateIdentityError):
                s.flush()
        s.rollback()
    assert _pugs(backend) == []
