"""Column types on every backend: each value round-trips to an equal Python value.

Round-trip means: flush in one session, then read back in a new session both as an object
(``s.get``) and as plain tuples (``query().values``), and compare with ``==`` (and the
Python type). The raw rows, read through the bare driver, must hold the stored value.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import pytest

from mapper import Column, Mapper
from mapper import types as t


class Color(enum.Enum):
    # Values differ from names: the column stores the name.
    RED = "r"
    GREEN = "g"
    DARK_BLUE = 3


@attrs.define
class Sample:
    id: int | None = None
    label: str | None = None
    short: str | None = None
    body: str | None = None
    small: int | None = None
    integer: int | None = None
    big: int | None = None
    ratio: float | None = None
    amount: Decimal | None = None
    flag: bool | None = None
    day: dt.date | None = None
    moment: dt.datetime | None = None
    instant: dt.datetime | None = None
    clock: dt.time | None = None
    uid: uuid.UUID | None = None
    doc: Any = None
    color: Color | None = None
    blob: bytes | None = None


class SampleMapper(Mapper[Sample]):
    table = "type_samples"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(100))
    short = Column(t.String(20))
    body = Column(t.Text)
    small = Column(t.SmallInteger)
    integer = Column(t.Integer)
    big = Column(t.BigInteger)
    ratio = Column(t.Float)
    amount = Column(t.Numeric(30, 10))
    flag = Column(t.Boolean)
    day = Column(t.Date)
    moment = Column(t.DateTime)
    instant = Column(t.DateTime(timezone=True))
    clock = Column(t.Time)
    uid = Column(t.Uuid)
    doc = Column(t.Json)
    color = Column(t.Enum(Color))
    blob = Column(t.LargeBinary)


FIELDS = [f.name for f in attrs.fields(Sample) if f.name != "id"]

NEW_YORK = ZoneInfo("America/New_York")
PLUS_0530 = dt.timezone(dt.timedelta(hours=5, minutes=30))

DOC = {
    "name": "Zoë 🐶",
    "ключ": "значение",
    "count": 42,
    "negative": -7,
    "big": 2**53,
    "ratio": 1.5,
    "small": -0.25,
    "yes": True,
    "no": False,
    "nothing": None,
    "quotes": "it's \"quoted\" \\ back\\slash",
    "list": [1, "two", None, True, 2.5, {"deep": [[], {}, [None]]}],
    "nested": {"a": {"b": {"c": ["✓", 0, False]}}},
    "empty": {},
    "empty_list": [],
}

# A 1 MB string (1,000,000 characters, several bytes each for some).
MEGABYTE = ("Zoë 🐶 ✓ abc 'q' \"dq\" \\ \n" * 50_000)[:1_000_000]

EVIL = [
    "x'); DROP TABLE owners; --",
    "x'); DROP TABLE type_samples; --",
    "Robert'); DELETE FROM type_samples; --",
    "back\\slash \\' \\\" \\\\ \\n \\0 ends with \\",
    "quotes ' '' \" \"\" ` `` end'",
    "markers %s %% %(name)s ? ?? :name :1 $1 @x",
    "\\'; SELECT 1; --",
]


def same(got: Any, expected: Any) -> bool:
    """Equal and of the same Python type, recursively for JSON containers."""
    if type(got) is not type(expected):
        return False
    if isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same(got[k], expected[k]) for k in expected)
    if isinstance(expected, list):
        return len(got) == len(expected) and all(same(g, e) for g, e in zip(got, expected))
    if isinstance(expected, dt.datetime):
        # Aware values must come back aware (and equal as instants), naive ones naive.
        return (got.tzinfo is None) == (expected.tzinfo is None) and got == expected
    return bool(got == expected)


def assert_same(got: Any, expected: Any, what: str = "") -> None:
    assert same(got, expected), f"{what}: got {got!r} ({type(got).__name__}), expected {expected!r} ({type(expected).__name__})"


def store(db: Any, objs: list[Sample]) -> list[int]:
    with db.session() as s:
        s.add_all(objs)
        s.flush()
        ids = [o.id for o in objs]
    assert all(isinstance(i, int) for i in ids)
    assert len(set(ids)) == len(ids)
    return ids


def check_round_trip(db: Any, attr: str, values: list[Any]) -> list[int]:
    """Store one Sample per value in ``attr``; read each back with get() and values()."""
    ids = store(db, [Sample(**{attr: v}) for v in values])
    with db.session() as s:
        for i, v in zip(ids, values):
            got = s.get(Sample, i)
            assert got is not None
            assert_same(getattr(got, attr), v, f"get() {attr}")
    with db.session() as s:
        rows = s.query(Sample).where(SampleMapper.id.in_(ids)).order_by("id").values("id", attr)
        assert [r[0] for r in rows] == ids
        for (_, got), v in zip(rows, values):
            assert_same(got, v, f"values() {attr}")
    return ids


def raw_column(backend: Any, attr: str, ids: list[int]) -> list[Any]:
    q = backend.q
    marks = ", ".join("?" for _ in ids)
    rows = backend.raw(f"SELECT {q(attr)} FROM {q('type_samples')} WHERE {q('id')} IN ({marks}) ORDER BY {q('id')}", ids)
    return [r[0] for r in rows]


CASES = [
    pytest.param("label", ["Zoë 🐶🐾 — 日本語 ✓ 𝄞", "", "  spaces kept  ", "ascii"], id="string-unicode-emoji"),
    pytest.param("short", ["🐶" * 20, "x" * 20, "é" * 20], id="string-n-at-its-length"),
    pytest.param("body", [MEGABYTE], id="text-1mb"),
    pytest.param("small", [-(2**15), 2**15 - 1, 0], id="smallinteger-limits"),
    pytest.param("integer", [-(2**31), 2**31 - 1, 0, -1], id="integer-limits"),
    pytest.param("big", [-(2**63), 2**63 - 1, 0, 2**53 + 1], id="biginteger-64bit-limits"),
    pytest.param("ratio", [0.1, -2.5, 1e300, -1.5e-300, 3.141592653589793, 0.0, 2.0**60], id="float"),
    pytest.param(
        "amount",
        [
            Decimal("12345678901234567890.1234567890"),
            Decimal("0.10"),
            Decimal("-0.0000000001"),
            Decimal("99999999999999999999.9999999999"),
            Decimal("-12345678901234567890.0000000001"),
            Decimal("0"),
        ],
        id="numeric-exact",
    ),
    pytest.param("flag", [True, False], id="boolean"),
    pytest.param("day", [dt.date(2024, 2, 29), dt.date(1970, 1, 1), dt.date(9999, 12, 31), dt.date(1000, 1, 1)], id="date"),
    pytest.param(
        "moment",
        [dt.datetime(2024, 2, 29, 23, 59, 59, 123456), dt.datetime(1999, 12, 31, 0, 0, 0, 1), dt.datetime(2038, 1, 19, 3, 14, 8)],
        id="datetime-naive",
    ),
    pytest.param(
        "instant",
        [
            dt.datetime(2024, 7, 1, 12, 30, 45, 654321, tzinfo=NEW_YORK),
            dt.datetime(2024, 1, 15, 23, 0, 0, 1, tzinfo=NEW_YORK),
            dt.datetime(2024, 1, 15, 8, 0, 0, 999999, tzinfo=PLUS_0530),
            dt.datetime(2024, 3, 10, 23, 59, 59, 5, tzinfo=dt.timezone.utc),
        ],
        id="datetime-aware",
    ),
    pytest.param("clock", [dt.time(23, 59, 59, 999999), dt.time(0, 0), dt.time(12, 0, 0, 1), dt.time(7, 8, 9)], id="time"),
    pytest.param(
        "uid",
        [uuid.UUID("12345678-1234-5678-1234-567812345678"), uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4()],
        id="uuid",
    ),
    pytest.param("doc", [DOC, [1, "two", None, True, {"x": [False]}], {}, []], id="json"),
    pytest.param("color", [Color.RED, Color.GREEN, Color.DARK_BLUE], id="enum"),
    pytest.param(
        "blob",
        [b"\x00", bytes(range(256)), b"", bytes(range(256))[::-1] * 64, b"\x00\x00\xff\x00"],
        id="bytes",
    ),
    pytest.param("label", EVIL, id="string-injection-and-escapes"),
    pytest.param("body", EVIL, id="text-injection-and-escapes"),
]


@pytest.mark.parametrize(("attr", "values"), CASES)
def test_value_round_trips(backend, make_db, attr, values):
    db = make_db(SampleMapper)
    ids = check_round_trip(db, attr, values)
    # The other columns of those rows stayed NULL.
    with db.session() as s:
        for obj in s.query(Sample).where(SampleMapper.id.in_(ids)).all():
            assert all(getattr(obj, f) is None for f in FIELDS if f != attr)


def test_none_round_trips_for_every_nullable_type(backend, make_db):
    db = make_db(SampleMapper)
    ids = store(db, [Sample()])
    with db.session() as s:
        obj = s.get(Sample, ids[0])
        assert obj is not None
        assert {f: getattr(obj, f) for f in FIELDS} == dict.fromkeys(FIELDS)
    with db.session() as s:
        assert s.query(Sample).values(*FIELDS) == [(None,) * len(FIELDS)]
    q = backend.q
    raw = backend.raw(f"SELECT {', '.join(q(f) for f in FIELDS)} FROM {q('type_samples')}")
    assert raw == [(None,) * len(FIELDS)]


def full_sample() -> Sample:
    return Sample(
        label="Zoë 🐶 x'); DROP TABLE owners; --",
        short="🐶" * 20,
        body="back\\slash 'single' \"double\" ✓",
        small=-(2**15),
        integer=2**31 - 1,
        big=-(2**63),
        ratio=0.1,
        amount=Decimal("12345678901234567890.1234567890"),
        flag=False,
        day=dt.date(2024, 2, 29),
        moment=dt.datetime(2024, 2, 29, 23, 59, 59, 123456),
        instant=dt.datetime(2024, 7, 1, 12, 30, 45, 654321, tzinfo=NEW_YORK),
        clock=dt.time(23, 59, 59, 999999),
        uid=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        doc=copy.deepcopy(DOC),
        color=Color.DARK_BLUE,
        blob=bytes(range(256)),
    )


def test_full_row_round_trips_and_unchanged_flush_costs_nothing(backend, make_db, count):
    db = make_db(SampleMapper)
    expected = full_sample()
    [sid] = store(db, [full_sample()])
    with db.session() as s:
        obj = s.get(Sample, sid)
        assert obj is not None
        for f in FIELDS:
            assert_same(getattr(obj, f), getattr(expected, f), f)
        with count(s, 0):
            s.flush()
        # Assigning an equal value (a new object) is no change either.
        obj.doc = copy.deepcopy(obj.doc)
        obj.amount = Decimal(str(obj.amount))
        obj.instant = obj.instant.astimezone(PLUS_0530)
        with count(s, 0):
            s.flush()
    with db.session() as s:
        [row] = s.query(Sample).values("id", *FIELDS)
        assert row[0] == sid
        for f, v in zip(FIELDS, row[1:]):
            assert_same(v, getattr(expected, f), f)
        # Typed values are bound as parameters that match what was stored.
        assert s.query(Sample).where(color=Color.DARK_BLUE).values("id") == [(sid,)]
        assert s.query(Sample).where(uid=expected.uid).values("id") == [(sid,)]
        assert s.query(Sample).where(day=expected.day).values("id") == [(sid,)]
        assert s.query(Sample).where(big=-(2**63)).values("id") == [(sid,)]
        assert s.query(Sample).where(color=Color.RED).values("id") == []


def test_raw_rows_hold_the_stored_values(backend, make_db):
    db = make_db(SampleMapper)
    expected = full_sample()
    [sid] = store(db, [full_sample()])
    q = backend.q
    cols = ["label", "short", "body", "small", "integer", "big", "amount", "flag", "uid", "doc", "color", "blob", "instant"]
    [raw] = backend.raw(f"SELECT {', '.join(q(c) for c in cols)} FROM {q('type_samples')} WHERE {q('id')} = ?", [sid])
    row = dict(zip(cols, raw))
    assert row["label"] == expected.label
    assert row["short"] == expected.short
    assert row["body"] == expected.body
    assert row["small"] == -(2**15)
    assert row["integer"] == 2**31 - 1
    assert row["big"] == -(2**63)
    assert Decimal(str(row["amount"])) == expected.amount
    assert row["flag"] in (False, 0) and row["flag"] is not None
    assert str(row["uid"]) == "12345678-1234-5678-1234-567812345678"
    doc = row["doc"]
    parsed = json.loads(doc) if isinstance(doc, (str, bytes)) else doc
    assert_same(parsed, DOC, "raw json")
    assert row["color"] == "DARK_BLUE"  # the Enum member's name, not its value
    assert bytes(row["blob"]) == bytes(range(256))
    # The stored instant is the same instant (a backend without zones keeps UTC).
    stored = row["instant"]
    if isinstance(stored, str):
        stored = dt.datetime.fromisoformat(stored)
    if stored.tzinfo is None:
        stored = stored.replace(tzinfo=dt.timezone.utc)
    assert stored == expected.instant


def test_injection_strings_are_stored_verbatim(backend, make_db):
    db = make_db(SampleMapper)
    ids = check_round_trip(db, "label", EVIL)
    assert raw_column(backend, "label", ids) == EVIL
    q = backend.q
    # Nothing was dropped or deleted, and each value finds exactly its own row as a parameter.
    assert backend.raw(f"SELECT count(*) FROM {q('type_samples')}") == [(len(EVIL),)]
    with db.session() as s:
        for i, evil in zip(ids, EVIL):
            assert s.query(Sample).where(label=evil).values("id") == [(i,)]
            assert s.query(Sample).where(SampleMapper.label == evil).count() == 1


def test_bytes_and_enum_raw_values(backend, make_db):
    db = make_db(SampleMapper)
    blobs = [b"\x00", bytes(range(256)), b""]
    ids = check_round_trip(db, "blob", blobs)
    assert [bytes(b) for b in raw_column(backend, "blob", ids)] == blobs
    colors = [Color.RED, Color.DARK_BLUE]
    ids = check_round_trip(db, "color", colors)
    assert raw_column(backend, "color", ids) == ["RED", "DARK_BLUE"]


def test_big_integers_raw_values(backend, make_db):
    db = make_db(SampleMapper)
    ids = check_round_trip(db, "big", [-(2**63), 2**63 - 1])
    assert raw_column(backend, "big", ids) == [-(2**63), 2**63 - 1]


def test_text_megabyte_raw_value(backend, make_db):
    db = make_db(SampleMapper)
    ids = check_round_trip(db, "body", [MEGABYTE])
    assert len(MEGABYTE) == 1_000_000
    assert raw_column(backend, "body", ids) == [MEGABYTE]


def test_decimal_raw_values(backend, make_db):
    db = make_db(SampleMapper)
    values = [Decimal("12345678901234567890.1234567890"), Decimal("0.10")]
    ids = check_round_trip(db, "amount", values)
    assert [Decimal(str(v)) for v in raw_column(backend, "amount", ids)] == values


def test_json_in_place_mutation_is_flushed(backend, make_db, count):
    db = make_db(SampleMapper)
    with db.session() as s:
        fresh = Sample(doc={"tags": ["a"], "nested": {"deep": {}}})
        s.add(fresh)
        s.flush()
        # The snapshot taken at flush is a copy: an in-place edit after the insert is a change.
        fresh.doc["tags"].append("b")
        with count(s, 1):
            s.flush()
        sid = fresh.id
    q = backend.q

    def raw_doc() -> Any:
        [(doc,)] = backend.raw(f"SELECT {q('doc')} FROM {q('type_samples')} WHERE {q('id')} = ?", [sid])
        return json.loads(doc) if isinstance(doc, (str, bytes)) else doc

    assert raw_doc() == {"tags": ["a", "b"], "nested": {"deep": {}}}

    with db.session() as s:
        obj = s.get(Sample, sid)
        assert obj is not None
        with count(s, 0):
            s.flush()
        obj.doc["tags"].append("ü 🐶")
        obj.doc["nested"]["deep"]["k"] = None
        with count(s, 1):
            s.flush()
        with count(s, 0):
            s.flush()
        # Again after that flush: its new snapshot must be a copy as well.
        obj.doc["nested"]["deep"]["k"] = [True, 1.5]
        with count(s, 1):
            s.flush()
    assert_same(raw_doc(), {"tags": ["a", "b", "ü 🐶"], "nested": {"deep": {"k": [True, 1.5]}}}, "raw json")

    with db.session() as s:
        obj = s.get(Sample, sid)
        assert obj is not None
        assert_same(obj.doc, {"tags": ["a", "b", "ü 🐶"], "nested": {"deep": {"k": [True, 1.5]}}}, "json")
        # A top-level list edited in place.
        obj.doc = [1]
        s.flush()
        obj.doc.append({"x": None})
        with count(s, 1):
            s.flush()
    assert_same(raw_doc(), [1, {"x": None}], "raw json")


def test_changed_values_are_written_in_one_update(backend, make_db, count):
    db = make_db(SampleMapper)
    [sid] = store(db, [full_sample()])
    with db.session() as s:
        obj = s.get(Sample, sid)
        assert obj is not None
        obj.big = 2**63 - 1
        obj.color = Color.GREEN
        obj.amount = Decimal("0.10")
        with count(s, 1):
            s.flush()
    with db.session() as s:
        obj = s.get(Sample, sid)
        assert obj is not None
        expected = full_sample()
        expected.id = sid
        expected.big = 2**63 - 1
        expected.color = Color.GREEN
        expected.amount = Decimal("0.10")
        for f in FIELDS:
            assert_same(getattr(obj, f), getattr(expected, f), f)
    q = backend.q
    assert backend.raw(f"SELECT {q('big')}, {q('color')} FROM {q('type_samples')}") == [(2**63 - 1, "GREEN")]


# -- numeric ordering and comparison -------------------------------------------------------------


@attrs.define
class Price:
    amount: Decimal
    id: int | None = None


class PriceMapper(Mapper[Price]):
    table = "prices"
    id = Column(t.Integer, primary_key=True)
    amount = Column(t.Numeric(10, 2), nullable=False)


def test_numeric_orders_and_compares_as_numbers(make_db, count):
    db = make_db(PriceMapper)
    with db.session() as s:
        s.add_all([Price(Decimal("9.91")), Price(Decimal("25.86")), Price(Decimal("100.00")), Price(Decimal("0.10"))])
    with db.session() as s:
        with count(s, 1):
            ordered = s.query(Price).order_by("-amount").values("amount")
        assert ordered == [(Decimal("100.00"),), (Decimal("25.86"),), (Decimal("9.91"),), (Decimal("0.10"),)]
        assert [str(v) for (v,) in ordered] == ["100.00", "25.86", "9.91", "0.10"]
        with count(s, 1):
            assert s.query(Price).where(PriceMapper.amount > Decimal("10")).count() == 2
        assert s.query(Price).where(amount=Decimal("9.91")).one().amount == Decimal("9.91")


# -- strings keep trailing spaces ------------------------------------------------------------------


@attrs.define
class Label:
    text: str
    id: int | None = None


class LabelMapper(Mapper[Label]):
    table = "labels"
    id = Column(t.Integer, primary_key=True)
    text = Column(t.String(50), nullable=False)


def test_trailing_spaces_are_significant_in_comparisons(make_db):
    db = make_db(LabelMapper)
    with db.session() as s:
        s.add_all([Label("Edinburgh"), Label("Edinburgh ")])
    with db.session() as s:
        assert [x.text for x in s.query(Label).where(text="Edinburgh").all()] == ["Edinburgh"]
        assert [x.text for x in s.query(Label).where(text="Edinburgh ").all()] == ["Edinburgh "]
