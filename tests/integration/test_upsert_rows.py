"""session.upsert(), session.insert_rows() and session.update_rows() on every backend.

Rows are read back with plain SQL; statement counts are exact; every refusal happens before SQL.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import attrs
import pytest

from mapper import Column, Mapper, errors
from mapper import types as t
from tests.conftest import managed_states
from tests.rel_models import PETS, Owner, Pug, PugMapper


@attrs.define
class Account:
    email: str
    name: str
    balance: Decimal = Decimal("0")
    id: int | None = None


class AccountMapper(Mapper[Account]):
    table = "up_accounts"
    id = Column(t.Integer, primary_key=True)
    email = Column(t.String(100), nullable=False, unique=True)
    name = Column(t.String(100), nullable=False)
    balance = Column(t.Numeric(10, 2), nullable=False, default=Decimal("0"))


@attrs.define
class Reading:
    sensor: str
    at: datetime.date
    value: float
    note: str | None = None
    id: int | None = None


class ReadingMapper(Mapper[Reading]):
    table = "up_readings"
    id = Column(t.Integer, primary_key=True)
    sensor = Column(t.String(20), nullable=False)
    at = Column(t.Date, nullable=False)
    value = Column(t.Float, nullable=False)
    note = Column(t.String(50), default="none")


def accounts(backend):
    return sorted(backend.raw(f"SELECT id, email, name, balance FROM {backend.q('up_accounts')}"))


# -- 6. upsert ----------------------------------------------------------------------------------


def test_upsert_inserts_then_updates_by_primary_key(backend, make_db, count):
    db = make_db(AccountMapper)
    with db.session() as s:
        a = Account("a@x", "Ann", Decimal("5"), id=10)
        b = Account("b@x", "Bob", id=11)
        with count(s, 1):
            s.upsert(a, b)
        assert s.get(Account, 10) is a and s.get(Account, 11) is b
        with count(s, 0):
            s.flush()  # nothing left to write: the objects hold what the rows hold
    assert accounts(backend) == [(10, "a@x", "Ann", Decimal("5.00")), (11, "b@x", "Bob", Decimal("0.00"))]
    with db.session() as s:
        a2 = Account("a@x", "Anna", Decimal("7.50"), id=10)
        c = Account("c@x", "Cy", id=12)
        with count(s, 1):
            s.upsert([a2, c])
        assert s.get(Account, 10) is a2
        a2.name = "Anne"  # the upserted object is persistent: a change is an UPDATE
        with count(s, 1):
            s.flush()
    assert accounts(backend) == [
        (10, "a@x", "Anne", Decimal("7.50")), (11, "b@x", "Bob", Decimal("0.00")), (12, "c@x", "Cy", Decimal("0.00")),
    ]


def test_upsert_on_a_unique_key_lands_the_generated_key(backend, make_db, count):
    db = make_db(AccountMapper)
    with db.session() as s:
        s.add(Account("a@x", "Ann"))
    [(old_id, *_)] = accounts(backend)
    with db.session() as s:
        a = Account("a@x", "Ann B", Decimal("1"))
        n = Account("n@x", "Ned")
        # The upsert, and on MySQL without RETURNING a SELECT of the rows by the unique key.
        with count(s, 1):
            s.upsert(a, n, on="email")
        assert a.id == old_id and n.id is not None and n.id != old_id
        assert s.get(Account, n.id) is n
        assert s.query(Account).where(email="a@x").one() is a
    assert accounts(backend) == [(old_id, "a@x", "Ann B", Decimal("1.00")), (n.id, "n@x", "Ned", Decimal("0.00"))]


def test_upsert_with_a_reference_writes_its_key_and_rollback_expunges(backend, make_db, count):
    db = make_db(*PETS)
    with db.session() as s:
        tom = Owner("Tom")
        s.add(tom)
        s.flush()
        p = Pug("Rex", 2, owner=tom, id=50)
        with count(s, 1):
            s.upsert(p)
        assert s.get(Pug, 50) is p
        with count(s, 0):
            s.flush()
        s.rollback()
        assert p not in s
    assert backend.raw(f"SELECT count(*) FROM {backend.q('rel_pugs')}") == [(0,)]
    with db.session() as s:
        tom = Owner("Tom")
        s.add(tom)
        s.flush()
        s.upsert(Pug("Rex", 2, owner=tom, id=50))
    assert backend.raw(f"SELECT id, name, owner_id FROM {backend.q('rel_pugs')}") == [(50, "Rex", tom.id)]


def test_upsert_refusals_before_sql(backend, make_db, count):
    db = make_db(AccountMapper, *PETS)
    with db.session() as s:
        held = s.query(Account).first()
        assert held is None
        s.add(Account("h@x", "Held", id=1))
        s.flush()
        with count(s, 0):
            with pytest.raises(errors.QueryError, match=r"has no value for \['id'\], the key the upsert matches on"):
                s.upsert(Account("a@x", "Ann"))
            with pytest.raises(errors.QueryError, match=r"upsert\(on='name'\): AccountMapper has no primary or unique key on exactly \['name'\]"):
                s.upsert(Account("a@x", "Ann"), on="name")
            with pytest.raises(errors.QueryError, match="has no mapped attribute 'mail'"):
                s.upsert(Account("a@x", "Ann"), on="mail")
            with pytest.raises(errors.QueryError, match="two Account objects have the key"):
                s.upsert(Account("a@x", "A", id=5), Account("b@x", "B", id=5))
            with pytest.raises(errors.DuplicateIdentityError, match="Account with id=1 is already in this session"):
                s.upsert(Account("z@x", "Other", id=1))
            # By a unique key: the held object has that email, so the row is its row.
            with pytest.raises(errors.DuplicateIdentityError, match="Account with email='h@x' is already in this session"):
                s.upsert(Account("h@x", "Other"), on="email")
            with pytest.raises(errors.MapperError, match="not mapped"):
                s.upsert(object())
            with pytest.raises(errors.QueryError, match="refers to a Owner without a key"):
                s.upsert(Pug("x", owner=Owner("Nobody"), id=3))


# -- 7. bulk rows -------------------------------------------------------------------------------


def test_insert_rows_converts_fills_defaults_and_builds_no_objects(backend, make_db, count):
    db = make_db(ReadingMapper)
    rows = [{"sensor": f"s{i % 3}", "at": datetime.date(2024, 1, 1 + i % 28), "value": i / 2} for i in range(2500)]
    rows[0]["note"] = "first"
    with db.session() as s:
        # One statement: PostgreSQL binds one array per column; SQLite and PyMySQL take one
        # executemany (PyMySQL sends it as multi-row INSERTs as large as a packet allows).
        with count(s, 1):
            assert s.insert_rows(Reading, rows) == 2500
        assert managed_states(s) == {}
    got = backend.raw(f"SELECT sensor, at, value, note FROM {backend.q('up_readings')} ORDER BY id")
    assert len(got) == 2500
    assert got[0][3] == "first" and got[1][3] == "none"
    assert [r[2] for r in got[:3]] == [0.0, 0.5, 1.0]
    assert str(got[5][1]) == "2024-01-06"


def test_insert_rows_returning_keys(backend, make_db, count):
    db = make_db(ReadingMapper)
    with db.session() as s:
        keys = s.insert_rows(Reading, [{"sensor": "a", "at": datetime.date(2024, 1, 1), "value": float(i)} for i in range(5)], returning=True)
        assert len(keys) == 5 and keys == sorted(keys)
        got = dict(s.execute("SELECT id, value FROM up_readings"))
        assert [got[k] for k in keys] == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert s.insert_rows(Reading, [{"id": 100, "sensor": "b", "at": datetime.date(2024, 1, 1), "value": 1.0}], returning=True) == [100]
        assert s.insert_rows(Reading, []) == 0


def test_update_rows_by_key_and_held_objects_follow(backend, make_db, count):
    db = make_db(ReadingMapper)
    with db.session() as s:
        keys = s.insert_rows(Reading, [{"sensor": "a", "at": datetime.date(2024, 1, 1), "value": float(i)} for i in range(4)], returning=True)
        held = s.get(Reading, keys[0])
        with count(s, 1):
            assert s.update_rows(Reading, [{"id": k, "value": 10.0 + i, "note": "upd"} for i, k in enumerate(keys[:3])]) == 3
        assert held.value == 10.0 and held.note == "upd"
        with count(s, 0):
            s.flush()
    got = backend.raw(f"SELECT id, value, note FROM {backend.q('up_readings')} ORDER BY id")
    assert got == [(keys[0], 10.0, "upd"), (keys[1], 11.0, "upd"), (keys[2], 12.0, "upd"), (keys[3], 3.0, "none")]


def test_bulk_row_refusals_before_sql(backend, make_db, count):
    db = make_db(ReadingMapper)
    with db.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError, match=r"insert_rows\(Reading\): Reading has no mapped attribute 'valu'"):
                s.insert_rows(Reading, [{"sensor": "a", "at": datetime.date(2024, 1, 1), "valu": 1.0}])
            with pytest.raises(errors.QueryError, match="row 0 is"):
                s.insert_rows(Reading, [("a", 1)])
            with pytest.raises(errors.DataError, match="value"):
                s.insert_rows(Reading, [{"sensor": "a", "at": datetime.date(2024, 1, 1), "value": float("nan")}])
            with pytest.raises(errors.MapperError, match="not mapped"):
                s.insert_rows(dict, [{}])
            with pytest.raises(errors.QueryError, match=r"row 0 has no value for the key \['id'\]"):
                s.update_rows(Reading, [{"value": 1.0}])
            with pytest.raises(errors.QueryError, match="give every row the same attributes"):
                s.update_rows(Reading, [{"id": 1, "value": 1.0}, {"id": 2, "note": "x"}])
