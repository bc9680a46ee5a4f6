"""Values at the edges of their types: each reads back the same on every backend, or is refused
the same way (``DataError`` naming the column and the value, before any SQL is sent).

A stored value is checked three ways: through ``get()``, through ``values()`` and as the raw
row read by the bare driver. A refusal is checked in a flush, in a query condition and in a
set-based ``update()``: no statement is sent, and the session is usable afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import attrs
import pytest

from mapper import Column, Mapper, errors
from mapper import types as t


@attrs.define
class Reading:
    id: int | None = None
    ratio: float | None = None
    price: Decimal | None = None
    whole: Decimal | None = None
    wide: Decimal | None = None
    plain: Decimal | None = None
    moment: dt.datetime | None = None
    instant: dt.datetime | None = None
    clock: dt.time | None = None
    doc: Any = None


class ReadingMapper(Mapper[Reading]):
    table = "readings"
    id = Column(t.Integer, primary_key=True)
    ratio = Column(t.Float)
    price = Column(t.Numeric(10, 2))
    whole = Column(t.Numeric(5))  # a precision alone: scale 0
    wide = Column(t.Numeric(30, 10))  # stored as text on SQLite
    plain = Column(t.Numeric)  # Numeric(38, 10)
    moment = Column(t.DateTime)
    instant = Column(t.DateTime(timezone=True))
    clock = Column(t.Time)
    doc = Column(t.Json)


UTC = dt.timezone.utc
MINUS_5 = dt.timezone(dt.timedelta(hours=-5))
NAN = float("nan")
INF = float("inf")


def same(got: Any, expected: Any) -> bool:
    """Equal, of the same type, and alike where ``==`` does not look: a Decimal's digits
    (``1.5`` is not ``1.5000000000``), a float's sign of zero, recursively in JSON."""
    if type(got) is not type(expected):
        return False
    if isinstance(expected, float):
        return got == expected and math.copysign(1, got) == math.copysign(1, expected)
    if isinstance(expected, Decimal):
        return str(got) == str(expected)
    if isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same(got[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return len(got) == len(expected) and all(same(g, e) for g, e in zip(got, expected))
    if isinstance(expected, (dt.datetime, dt.time)):
        return (got.tzinfo is None) == (expected.tzinfo is None) and got == expected
    return bool(got == expected)


def raw_value(backend: Any, attr: str, rid: int) -> Any:
    """The stored value as the bare driver reads it, brought to the Python type to compare."""
    q = backend.q
    [(v,)] = backend.raw(f"SELECT {q(attr)} FROM {q('readings')} WHERE {q('id')} = ?", [rid])
    if v is None:
        return None
    if attr in ("price", "whole", "wide", "plain"):
        # SQLite holds narrow decimals as REAL (repr is the stored decimal), wide ones as text.
        return Decimal(repr(v)) if isinstance(v, float) else Decimal(str(v))
    if attr == "doc":
        return json.loads(v) if isinstance(v, (str, bytes)) else v
    if attr == "moment" and isinstance(v, str):
        return dt.datetime.fromisoformat(v)
    if attr == "clock":
        if isinstance(v, str):
            return dt.time.fromisoformat(v)
        if isinstance(v, dt.timedelta):  # PyMySQL reads TIME as a duration
            return (dt.datetime.min + v).time()
        return v
    if attr == "instant":
        if isinstance(v, str):
            v = dt.datetime.fromisoformat(v)
        return v if v.tzinfo is not None else v.replace(tzinfo=UTC)
    return v


# (attribute, value given, value read back)
STORED = [
    pytest.param("ratio", -0.0, 0.0, id="float-negative-zero-is-zero"),
    pytest.param("ratio", 1e308, 1e308, id="float-1e308"),
    pytest.param("ratio", 5e-324, 5e-324, id="float-smallest-subnormal"),
    pytest.param("price", Decimal("1.005"), Decimal("1.01"), id="numeric-rounds-half-away-from-zero"),
    pytest.param("price", Decimal("1.015"), Decimal("1.02"), id="numeric-rounds-1.015"),
    pytest.param("price", Decimal("2.675"), Decimal("2.68"), id="numeric-rounds-2.675"),
    pytest.param("price", Decimal("-1.005"), Decimal("-1.01"), id="numeric-rounds-negative-away-from-zero"),
    pytest.param("price", Decimal("1.0049"), Decimal("1.00"), id="numeric-rounds-down-below-half"),
    pytest.param("price", Decimal("-0.001"), Decimal("0.00"), id="numeric-negative-zero-is-zero"),
    pytest.param("price", Decimal("99999999.99"), Decimal("99999999.99"), id="numeric-largest"),
    pytest.param("price", 0.1, Decimal("0.10"), id="numeric-from-float-by-its-repr"),
    pytest.param("whole", Decimal("12.5"), Decimal("13"), id="numeric-precision-only-is-scale-0"),
    pytest.param("whole", Decimal("-12.5"), Decimal("-13"), id="numeric-precision-only-negative"),
    pytest.param("whole", Decimal("12.4"), Decimal("12"), id="numeric-precision-only-rounds-down"),
    pytest.param("wide", Decimal("1.00000000005"), Decimal("1.0000000001"), id="numeric-wide-rounds-to-its-scale"),
    pytest.param(
        "wide", Decimal("12345678901234567890.123456789049"), Decimal("12345678901234567890.1234567890"), id="numeric-wide-30-digits"
    ),
    pytest.param("plain", Decimal("1.5"), Decimal("1.5000000000"), id="numeric-unbounded-is-38-10"),
    pytest.param("plain", Decimal("9"), Decimal("9.0000000000"), id="numeric-unbounded-integer"),
    pytest.param("moment", dt.datetime(2024, 1, 1, 12, 0, 0, 1), dt.datetime(2024, 1, 1, 12, 0, 0, 1), id="datetime-naive"),
    pytest.param(
        "instant", dt.datetime(2024, 1, 1, 12, 0), dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC), id="datetime-zoned-naive-value-is-utc"
    ),
    pytest.param("clock", dt.time(12, 0, 0, 5), dt.time(12, 0, 0, 5), id="time-naive"),
    pytest.param("doc", {"x": 1e308, "y": [-1e16, 1.5e300]}, {"x": 1e308, "y": [-1e16, 1.5e300]}, id="json-big-floats-stay-floats"),
    pytest.param("doc", 1e16, 1e16, id="json-top-level-float-1e16"),
    pytest.param("doc", {"z": -0.0, "e": "e+ 1e+16 -0.0"}, {"z": 0.0, "e": "e+ 1e+16 -0.0"}, id="json-negative-zero-is-zero"),
    pytest.param(
        "doc", {"i": 10**20, "f": 1.0, "s": 1e-300, "n": -7}, {"i": 10**20, "f": 1.0, "s": 1e-300, "n": -7}, id="json-ints-stay-ints"
    ),
]


@pytest.mark.parametrize(("attr", "given", "expected"), STORED)
def test_value_reads_back_as_the_rule_says(backend, make_db, attr, given, expected):
    db = make_db(ReadingMapper)
    with db.session() as s:
        obj = Reading(**{attr: given})
        s.add(obj)
    rid = obj.id
    with db.session() as s:
        got = getattr(s.get(Reading, rid), attr)
        assert same(got, expected), f"get(): {got!r}, expected {expected!r}"
        [(value,)] = s.query(Reading).where(id=rid).values(attr)
        assert same(value, expected), f"values(): {value!r}, expected {expected!r}"
        # The value compared as a parameter finds its row (the same rule binds conditions).
        if attr not in ("doc", "ratio"):
            assert s.query(Reading).where(**{attr: given}).values("id") == [(rid,)]
    raw = raw_value(backend, attr, rid)
    assert same(raw, expected) or (isinstance(expected, Decimal) and raw == expected), f"raw: {raw!r}, expected {expected!r}"


# (attribute, value, words the message must hold besides the column and the value)
REFUSED = [
    pytest.param("ratio", NAN, ["NaN and infinities"], id="float-nan"),
    pytest.param("ratio", INF, ["NaN and infinities"], id="float-inf"),
    pytest.param("ratio", -INF, ["NaN and infinities"], id="float-minus-inf"),
    pytest.param("ratio", Decimal("NaN"), ["NaN and infinities"], id="float-decimal-nan"),
    pytest.param("ratio", 10**400, ["too large"], id="float-int-too-large"),
    pytest.param("price", Decimal("NaN"), ["NaN and infinities"], id="numeric-nan"),
    pytest.param("price", Decimal("Infinity"), ["NaN and infinities"], id="numeric-infinity"),
    pytest.param("price", Decimal("-Infinity"), ["NaN and infinities"], id="numeric-minus-infinity"),
    pytest.param("wide", Decimal("NaN"), ["NaN and infinities"], id="numeric-wide-nan"),
    pytest.param("price", Decimal("123456789.5"), ["at most 8 digits before the point", "larger precision"], id="numeric-too-many-digits"),
    pytest.param("price", Decimal("99999999.995"), ["at most 8 digits before the point"], id="numeric-rounds-past-its-precision"),
    pytest.param("whole", Decimal("123456"), ["at most 5 digits before the point"], id="numeric-precision-only-too-wide"),
    pytest.param("wide", Decimal("1e20"), ["at most 20 digits before the point"], id="numeric-wide-too-many-digits"),
    pytest.param("price", "12,5", ["not a decimal number"], id="numeric-not-a-number"),
    pytest.param(
        "moment", dt.datetime(2024, 1, 1, 12, 0, tzinfo=MINUS_5), ["DateTime(timezone=True)", "naive datetime"], id="datetime-naive-column-aware-value"
    ),
    pytest.param(
        "moment", dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC), ["DateTime(timezone=True)", "naive datetime"], id="datetime-naive-column-utc-value"
    ),
    pytest.param("clock", dt.time(12, 0, tzinfo=MINUS_5), ["keep no offset", "naive time"], id="time-with-tzinfo"),
    pytest.param("doc", {"x": NAN}, ["no JSON form", "NaN"], id="json-nan"),
    pytest.param("doc", [1, INF], ["no JSON form"], id="json-infinity"),
    pytest.param("doc", {"x": {1, 2}}, ["no JSON form", "set"], id="json-set"),
]


def _check_refusal(exc: errors.DataError, attr: str, value: Any, words: list[str]) -> None:
    text = str(exc)
    assert f"ReadingMapper.{attr}" in text, text
    assert repr(value)[:60] in text, text
    for w in words:
        assert w in text, text
    assert exc.statement is None  # refused before any SQL


def _rows(backend: Any) -> list[tuple[Any, ...]]:
    q = backend.q
    return backend.raw(f"SELECT {q('id')}, {q('ratio')} FROM {q('readings')} ORDER BY {q('id')}")


@pytest.mark.parametrize(("attr", "value", "words"), REFUSED)
def test_refused_value_sends_nothing_and_the_session_recovers(backend, make_db, attr, value, words):
    db = make_db(ReadingMapper)
    with db.session() as s:
        s.add(Reading(ratio=1.5))
        s.commit()
        before = s.query_count
        bad = Reading(**{attr: value})
        s.add(bad)
        with pytest.raises(errors.DataError) as info:
            s.flush()
        assert s.query_count == before, "a statement was sent for a refused value"
        _check_refusal(info.value, attr, value, words)
        # A failed flush, like any other: the session waits for rollback(), then works.
        with pytest.raises(errors.PendingRollbackError):
            s.query(Reading).all()
        s.rollback()
        assert bad.id is None
        s.add(Reading(ratio=2.5))
        s.commit()
    assert [r[1] for r in _rows(backend)] == [1.5, 2.5]


@pytest.mark.parametrize(("attr", "value", "words"), REFUSED)
def test_refused_value_in_an_update_of_a_loaded_object(backend, make_db, attr, value, words):
    db = make_db(ReadingMapper)
    with db.session() as s:
        s.add(Reading(ratio=1.5))
    with db.session() as s:
        obj = s.query(Reading).one()
        setattr(obj, attr, value)
        before = s.query_count
        with pytest.raises(errors.DataError) as info:
            s.flush()
        assert s.query_count == before
        _check_refusal(info.value, attr, value, words)
        s.rollback()
        assert s.query(Reading).one().ratio == 1.5
    assert [r[1] for r in _rows(backend)] == [1.5]


@pytest.mark.parametrize(("attr", "value", "words"), REFUSED)
def test_refused_value_in_a_query_condition_sends_nothing(backend, make_db, attr, value, words):
    db = make_db(ReadingMapper)
    with db.session() as s:
        s.add(Reading(ratio=1.5))
    with db.session() as s:
        before = s.query_count
        with pytest.raises(errors.DataError) as info:
            s.query(Reading).where(getattr(ReadingMapper, attr) == value).all()
        _check_refusal(info.value, attr, value, words)
        with pytest.raises(errors.DataError):
            s.query(Reading).where(**{attr: value}).count()
        with pytest.raises(errors.DataError):
            s.query(Reading).where(getattr(ReadingMapper, attr).in_([value])).all()
        assert s.query_count == before
        # Nothing failed in the database: the session goes on without a rollback.
        assert [r.ratio for r in s.query(Reading).all()] == [1.5]


@pytest.mark.parametrize(("attr", "value", "words"), REFUSED)
def test_refused_value_in_a_set_based_update_sends_nothing(backend, make_db, attr, value, words):
    db = make_db(ReadingMapper)
    with db.session() as s:
        s.add(Reading(ratio=1.5))
    with db.session() as s:
        held = s.query(Reading).one()  # held objects make MySQL select the keys first
        before = s.query_count
        with pytest.raises(errors.DataError) as info:
            s.query(Reading).update(**{attr: value})
        assert s.query_count == before
        _check_refusal(info.value, attr, value, words)
        assert held.ratio == 1.5
        assert s.query(Reading).update(ratio=3.5) == 1
    assert [r[1] for r in _rows(backend)] == [3.5]


def test_naive_datetime_in_a_zoned_column_is_utc_whatever_the_session_zone(backend, make_db):
    options: dict[str, Any] = {}
    if backend.name == "postgresql":
        # PostgreSQL would read a naive value in the session's time zone.
        options["connect_args"] = {"options": "-c TimeZone=America/New_York"}
    db = make_db(ReadingMapper, **options)
    naive = dt.datetime(2024, 1, 1, 12, 0)
    with db.session() as s:
        obj = Reading(instant=naive)
        s.add(obj)
    with db.session() as s:
        got = s.get(Reading, obj.id).instant
        assert got == naive.replace(tzinfo=UTC), got
        assert s.query(Reading).where(instant=naive).values("id") == [(obj.id,)]
    assert raw_value(backend, "instant", obj.id) == naive.replace(tzinfo=UTC)


def test_numeric_comparisons_use_the_rounded_value(backend, make_db):
    db = make_db(ReadingMapper)
    with db.session() as s:
        s.add_all([Reading(price=Decimal("1.005")), Reading(price=Decimal("1.004"))])
    with db.session() as s:
        # The stored values are 1.01 and 1.00; a condition's value is rounded the same way.
        assert s.query(Reading).where(price=Decimal("1.005")).values("price") == [(Decimal("1.01"),)]
        assert s.query(Reading).where(ReadingMapper.price >= Decimal("1.005")).count() == 1
        assert sorted(s.query(Reading).values("price")) == [(Decimal("1.00"),), (Decimal("1.01"),)]


@attrs.define
class Pair:
    id: int | None = None
    low: float | None = None
    high: float | None = None


class PairMapper(Mapper[Pair]):
    table = "pairs"
    id = Column(t.Integer, primary_key=True)
    low = Column(t.Float)
    high = Column(t.Float)  # an equal type: the error must still name this column


def test_refusal_names_its_own_column_among_columns_of_equal_type(backend, make_db):
    db = make_db(PairMapper)
    assert PairMapper.low.type == PairMapper.high.type
    with db.session() as s:
        s.add(Pair(low=1.0, high=NAN))
        with pytest.raises(errors.DataError, match=r"^PairMapper\.high \(Float\(\)\) cannot store nan"):
            s.flush()
        s.rollback()
        with pytest.raises(errors.DataError, match=r"^PairMapper\.low \(Float\(\)\) cannot store inf"):
            s.query(Pair).where(PairMapper.low < INF).all()
    assert backend.raw(f"SELECT count(*) FROM {backend.q('pairs')}") == [(0,)]
