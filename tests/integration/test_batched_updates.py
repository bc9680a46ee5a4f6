"""Changed rows of one column set go out as one UPDATE per chunk on every backend (PostgreSQL
binds arrays; SQLite and MariaDB join the rows as a table of values), with every column type
written as a one-row UPDATE writes it, and names that could clash with the statement's aliases."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal

import attrs

from mapper import Column, Mapper
from mapper import types as t

ROWS = 2_500


@attrs.define
class Sample:
    label: str
    amount: Decimal | None = None
    moment: dt.datetime | None = None
    day: dt.date | None = None
    flag: bool | None = None
    token: uuid.UUID | None = None
    doc: dict | None = None
    blob: bytes | None = None
    ratio: float | None = None
    id: int | None = None


class SampleMapper(Mapper[Sample]):
    table = "samples"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(40), nullable=False)
    amount = Column(t.Numeric(12, 2))
    moment = Column(t.DateTime(timezone=True))
    day = Column(t.Date)
    flag = Column(t.Boolean)
    token = Column(t.Uuid)
    doc = Column(t.Json)
    blob = Column(t.LargeBinary)
    ratio = Column(t.Float)


@attrs.define
class Clash:
    column1: int
    c0: int = 0
    v: int = 0
    id: int | None = None


class ClashMapper(Mapper[Clash]):
    # The table and its columns take the names the statements give their aliases.
    table = "t"
    id = Column(t.Integer, primary_key=True)
    column1 = Column(t.Integer, nullable=False)
    c0 = Column(t.Integer, nullable=False)
    v = Column(t.Integer, nullable=False)


def _values(i: int) -> dict:
    odd = i % 2 == 1
    return {
        "amount": None if i % 7 == 0 else Decimal(i) / 4,
        "moment": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=i),
        "day": None if odd else dt.date(2026, 3, 1) + dt.timedelta(days=i % 300),
        "flag": odd,
        "token": uuid.UUID(int=i + 1),
        "doc": {"i": i, "tags": ["a", str(i)]} if i % 3 else None,
        "blob": bytes([i % 256, 0, 255]) if i % 5 else None,
        "ratio": i / 8,
    }


def _seeded(i: int) -> Sample:
    """A row whose every column the update changes (to a value or to NULL): one column set."""
    return Sample(
        f"s{i}", Decimal("-1"), dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), dt.date(2000, 1, 1), None,
        uuid.UUID(int=0), {"seed": True}, b"seed", -1.0,
    )


def _statements(backend, db, rows: int) -> int:
    d = db.engine.dialect
    if backend.name == "postgresql":
        return math.ceil(rows / d.array_dml_rows)
    return math.ceil(rows / d.update_values_rows)


def test_changed_rows_of_every_type_are_written_in_one_update_per_chunk(backend, make_db, count):
    db = make_db(SampleMapper)
    with db.session() as s:
        s.add_all([_seeded(i) for i in range(ROWS)])
    with db.session() as s:
        samples = s.query(Sample).order_by("id").all()
        for i, x in enumerate(samples):
            for k, v in _values(i).items():
                setattr(x, k, v)
        with count(s, _statements(backend, db, ROWS)):
            s.flush()
        s.commit()
    assert _statements(backend, db, ROWS) == (1 if backend.name == "postgresql" else 3)
    # Read back in a new session (what the database holds, through the same type conversions)
    # and with plain SQL for the columns whose stored form is the same everywhere.
    with db.session() as s:
        back = s.query(Sample).order_by("id").all()
    assert [{k: getattr(x, k) for k in _values(0)} for x in back] == [_values(i) for i in range(ROWS)]
    q = backend.q
    rows = backend.raw(f"SELECT {q('label')}, {q('ratio')} FROM {q('samples')} ORDER BY {q('id')}")
    assert [(label, float(r)) for label, r in rows] == [(f"s{i}", i / 8) for i in range(ROWS)]
    assert backend.raw(f"SELECT count(*) FROM {q('samples')} WHERE {q('amount')} IS NULL") == [(len(range(0, ROWS, 7)),)]


def test_two_column_sets_are_two_statements_and_a_lone_row_is_one(backend, make_db, count):
    db = make_db(SampleMapper)
    with db.session() as s:
        s.add_all([Sample(f"s{i}") for i in range(10)])
    with db.session() as s:
        samples = s.query(Sample).order_by("id").all()
        for x in samples[:6]:
            x.flag = True
        for x in samples[6:9]:
            x.ratio = 0.5
        samples[9].label = "last"
        with count(s, 3):
            s.flush()
    q = backend.q
    got = backend.raw(f"SELECT {q('label')}, {q('flag')}, {q('ratio')} FROM {q('samples')} ORDER BY {q('id')}")
    assert [(label, None if f is None else bool(f), r) for label, f, r in got] == (
        [(f"s{i}", True, None) for i in range(6)] + [(f"s{i}", None, 0.5) for i in range(6, 9)] + [("last", None, None)]
    )


def test_names_like_the_statement_aliases_are_written_to_the_right_columns(backend, make_db, count):
    db = make_db(ClashMapper)
    with db.session() as s:
        s.add_all([Clash(i, c0=i, v=i) for i in range(5)])
    with db.session() as s:
        clashes = s.query(Clash).order_by("id").all()
        for x in clashes:
            x.column1, x.c0, x.v = x.v + 100, x.column1 + 200, x.c0 + 300
        with count(s, 1):
            s.flush()
    q = backend.q
    got = backend.raw(f"SELECT {q('column1')}, {q('c0')}, {q('v')} FROM {q('t')} ORDER BY {q('id')}")
    assert got == [(i + 100, i + 200, i + 300) for i in range(5)]
