"""query.stream() on every backend: order, statements per batch, what loads alongside it
(includes, HasOne, lazy loads), commit and rollback inside the loop, and memory: the live domain
objects (counted by the collector, not by session entries) stay bounded while streaming.
Also session.close(), which lets go of every object the session held."""

from __future__ import annotations

import datetime
import enum
import gc
import uuid
import warnings
import weakref
from decimal import Decimal
from typing import Any

import attrs
import pytest

from mapper import BelongsTo, Column, ForeignKey, HasMany, HasOne, Mapper, errors
from mapper import types as t
from tests.conftest import managed_states, tracker


@attrs.define
class Owner:
    name: str
    rank: int | None = None
    pugs: list[Any] = attrs.Factory(list)
    licence: Any = None
    id: int | None = None


@attrs.define
class Pug:
    name: str
    age: int | None = 0
    owner: Owner | None = None
    id: int | None = None


@attrs.define
class Licence:
    number: str
    owner: Owner | None = None
    id: int | None = None


class OwnerMapper(Mapper[Owner]):
    table = "st_owners"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    rank = Column(t.Integer)
    pugs = HasMany(Pug, foreign_key="owner_id", inverse="owner", cascade="all", order_by="id")
    licence = HasOne(Licence, foreign_key="owner_id", inverse="owner", cascade="all")


class PugMapper(Mapper[Pug]):
    table = "st_pugs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    age = Column(t.Integer)
    owner_id = Column(t.Integer, ForeignKey("st_owners.id", on_delete="CASCADE"), index=True)
    owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")


class LicenceMapper(Mapper[Licence]):
    table = "st_licences"
    id = Column(t.Integer, primary_key=True)
    number = Column(t.String(20), nullable=False)
    owner_id = Column(t.Integer, ForeignKey("st_owners.id", on_delete="CASCADE"), nullable=False, unique=True)
    owner = BelongsTo(Owner, foreign_key="owner_id", inverse="licence")


MAPPERS = (OwnerMapper, PugMapper, LicenceMapper)


def bulk_insert(backend, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Rows written with the bare driver (COPY on PostgreSQL), fast enough for 200,000 rows."""
    conn = backend.raw_connect()
    try:
        cur = conn.cursor()
        cols = ", ".join(backend.q(c) for c in columns)
        if backend.name == "postgresql":
            with cur.copy(f"COPY {backend.q(table)} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            ph = "?" if backend.name == "sqlite" else "%s"
            sql = f"INSERT INTO {backend.q(table)} ({cols}) VALUES ({', '.join([ph] * len(columns))})"
            for i in range(0, len(rows), 20_000):
                cur.executemany(sql, rows[i : i + 20_000])
        if backend.name == "sqlite":
            conn.commit()
    finally:
        conn.close()


def seed(backend, owners: int, pugs_per_owner: int, licences_every: int = 0) -> None:
    """Owners 1..n ranked by (i * 7) % 5 with a NULL every fourth; pugs numbered in owner order."""
    bulk_insert(backend, "st_owners", ["id", "name", "rank"],
                [(i, f"o{i:06d}", None if i % 4 == 0 else (i * 7) % 5) for i in range(1, owners + 1)])
    pugs = [(o * pugs_per_owner + k, f"p{o:06d}.{k}", None if k == 1 else (o + k) % 9, o)
            for o in range(1, owners + 1) for k in range(pugs_per_owner)]
    if pugs:
        bulk_insert(backend, "st_pugs", ["id", "name", "age", "owner_id"], pugs)
    if licences_every:
        bulk_insert(backend, "st_licences", ["id", "number", "owner_id"],
                    [(i, f"L{i}", i) for i in range(1, owners + 1) if i % licences_every == 0])


def live_domain_objects(collect: bool = False) -> int:
    """Live instances of the domain classes above (stand-ins included), from the collector.

    ``collect``: run the cycle collector first. Objects that reference each other (an owner
    and its loaded pugs) are garbage only the collector frees, whenever it next runs.
    """
    if collect:
        gc.collect()
    classes = (Owner, Pug, Licence)
    return sum(1 for o in gc.get_objects() if issubclass(type(o), classes))


def batch_statements(s, stream, batch_size: int) -> tuple[list[Any], list[int]]:
    """Stream to the end; returns the objects' names and the statements each batch cost."""
    names: list[Any] = []
    marks: list[int] = []
    start = s.query_count
    for i, obj in enumerate(stream):
        if i % batch_size == 0:
            marks.append(s.query_count)
        names.append(obj.name)
    marks.append(s.query_count)
    points = [start, *marks]
    # The statements sent to get each batch, and those after its last object (none).
    return names, [b - a for a, b in zip(points, points[1:])]


# -- order and statements -------------------------------------------------------------------------


ORDERS = [
    (),
    ("name",),
    ("-name",),
    ("rank",),
    ("-rank",),
    ("rank", "-name"),
    ("-rank", "id"),
    ("-rank", "-id"),
]


@pytest.mark.parametrize("order", ORDERS, ids=lambda o: ",".join(o) or "none")
def test_stream_returns_exactly_what_all_returns_in_the_same_order(backend, make_db, order):
    """Pages as small as one row over ties and NULLs (ascending and descending), with a window
    and a filter. A stream orders ties by primary key, so all() is given the key as well."""
    db = make_db(*MAPPERS)
    seed(backend, owners=40, pugs_per_owner=0)
    with db.session() as s:
        q = s.query(Owner).order_by(*order) if order else s.query(Owner)
        expected = [o.id for o in q.order_by("id").all()]
        assert len(expected) == 40
        for batch in (1, 3, 7, 40, 41, 1000):
            assert [o.id for o in q.stream(batch_size=batch)] == expected, batch
        expected_window = [o.id for o in q.order_by("id").offset(5).limit(17).all()]
        assert expected_window == expected[5:22]
        for batch in (1, 3, 16, 17, 18):
            assert [o.id for o in q.offset(5).limit(17).stream(batch_size=batch)] == expected_window, batch
        filtered = q.where(OwnerMapper.rank.in_([1, 2]) | OwnerMapper.rank.is_(None))
        expected_filtered = [o.id for o in filtered.order_by("id").all()]
        assert len(expected_filtered) == 22
        assert [o.id for o in filtered.stream(batch_size=4)] == expected_filtered


def test_stream_ordered_through_a_joined_reference(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=12, pugs_per_owner=3)
    with db.session() as s:
        expected = [p.name for p in s.query(Pug).order_by("-owner.rank", "name", "id").all()]
    with db.session() as s:
        q = s.query(Pug).order_by("-owner.rank", "name")
        assert [p.name for p in q.stream(batch_size=5)] == expected


def test_stream_sends_one_select_per_batch_everywhere(backend, make_db, count):
    db = make_db(*MAPPERS)
    seed(backend, owners=53, pugs_per_owner=0)
    bulk_insert(backend, "st_pugs", ["id", "name", "age", "owner_id"], [(i, f"x{i}", i, 1) for i in range(1, 21)])
    with db.session() as s:
        names, per_batch = batch_statements(s, s.query(Owner).order_by("-name").stream(batch_size=7), 7)
        assert names == [f"o{i:06d}" for i in range(53, 0, -1)]
        # Each batch: its SELECT and the HasOne licence (loaded with its parents); nothing after.
        assert per_batch == [2] * 8 + [0]
        names, per_batch = batch_statements(s, s.query(Pug).where(age=-1).stream(batch_size=10), 10)
        assert names == [] and per_batch == [1]  # no rows: one SELECT
        names, per_batch = batch_statements(s, s.query(Pug).stream(batch_size=10), 10)
        # 20 rows in batches of 10: two SELECTs (each asks for one row more than it yields).
        assert len(names) == 20 and per_batch == [1, 1, 0]
        names, per_batch = batch_statements(s, s.query(Pug).stream(batch_size=1), 1)
        assert len(names) == 20 and per_batch == [1] * 20 + [0]
        with count(s, 1):
            got = [p.age for p in s.query(Pug).where(PugMapper.age < 5).order_by("-age").stream(batch_size=10)]
            assert got == [4, 3, 2, 1]


class Mood(enum.Enum):
    CALM = "calm"
    WILD = "wild"


@attrs.define
class Reading:
    at: datetime.datetime | None = None
    amount: Decimal | None = None
    flag: bool | None = None
    day: datetime.date | None = None
    mood: Mood | None = None
    ref: uuid.UUID | None = None
    doc: Any = None
    id: int | None = None


class ReadingMapper(Mapper[Reading]):
    table = "st_readings"
    id = Column(t.Integer, primary_key=True)
    at = Column(t.DateTime(timezone=True))
    amount = Column(t.Numeric(10, 2))
    flag = Column(t.Boolean)
    day = Column(t.Date)
    mood = Column(t.Enum(Mood))
    ref = Column(t.Uuid)
    doc = Column(t.Json)


@pytest.mark.parametrize("column", ["at", "amount", "flag", "day", "mood", "ref"])
def test_stream_pages_by_columns_of_every_type_with_ties_and_nulls(backend, make_db, column):
    db = make_db(ReadingMapper)
    base = datetime.datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc)
    refs = [uuid.UUID(int=i * 7919) for i in range(5)]
    with db.session() as s:
        s.add_all([
            Reading(
                at=None if i % 6 == 0 else base + datetime.timedelta(minutes=i % 4, microseconds=i % 3),
                amount=None if i % 5 == 0 else Decimal(i % 4) + Decimal("0.25"),
                flag=None if i % 7 == 0 else i % 2 == 0,
                day=None if i % 4 == 0 else datetime.date(2024, 2, 1 + i % 3),
                mood=None if i % 3 == 0 else (Mood.CALM if i % 2 else Mood.WILD),
                ref=None if i % 8 == 0 else refs[i % 5],
            )
            for i in range(30)
        ])
    with db.session() as s:
        for order in (column, "-" + column):
            expected = [r.id for r in s.query(Reading).order_by(order, "id").all()]
            assert [r.id for r in s.query(Reading).order_by(order).stream(batch_size=2)] == expected, order


def test_stream_refuses_an_order_by_a_json_column(backend, make_db, count):
    db = make_db(ReadingMapper)
    with db.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError) as exc:
                s.query(Reading).order_by("doc").stream()
    assert "Reading" in str(exc.value) and "Json" in str(exc.value)


# -- what loads alongside a stream -----------------------------------------------------------------


def test_stream_loads_has_one_and_includes_per_batch_with_the_same_statements_everywhere(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=25, pugs_per_owner=2, licences_every=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with db.session() as s:
            seen: list[tuple[str, str | None, list[str]]] = []
            q = s.query(Owner).order_by("id").include("pugs")
            marks = [s.query_count]
            for i, o in enumerate(q.stream(batch_size=10)):
                if i % 10 == 0:
                    marks.append(s.query_count)
                seen.append((o.name, o.licence.number if o.licence else None, [p.name for p in o.pugs]))
                assert all(p.owner is o for p in o.pugs)
            marks.append(s.query_count)
    assert caught == [], [str(w.message) for w in caught]
    assert len(seen) == 25
    assert seen[0] == ("o000001", None, ["p000001.0", "p000001.1"])
    assert seen[1] == ("o000002", "L2", ["p000002.0", "p000002.1"])
    # Each batch: the owners, their licences (HasOne), their pugs (include); nothing else.
    assert [b - a for a, b in zip(marks, marks[1:])] == [3, 3, 3, 0]


def test_stream_allows_lazy_loads_queries_and_flushes_inside_the_loop(backend, make_db, count):
    db = make_db(*MAPPERS)
    seed(backend, owners=10, pugs_per_owner=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with db.session() as s:
            out = []
            for p in s.query(Pug).order_by("id").stream(batch_size=4):
                out.append((p.name, p.owner.name))  # a stand-in: loads every pending one of the batch
                if p.age == 0:
                    p.age = 100
                    assert s.query(Owner).where(name="o000001").count() == 1  # autoflush, then a count
    assert caught == [], [str(w.message) for w in caught]
    assert len(out) == 30 and out[0] == ("p000001.0", "o000001")
    zero = backend.raw(f"SELECT count(*) FROM {backend.q('st_pugs')} WHERE age = 100")
    assert zero[0][0] == sum(1 for o in range(1, 11) for k in (0, 2) if (o + k) % 9 == 0)


def test_stream_left_early_leaves_nothing_behind(backend, make_db, count):
    """Breaking out of a stream leaves no open result behind: no driver warning, the session works."""
    db = make_db(*MAPPERS)
    seed(backend, owners=30, pugs_per_owner=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with db.session() as s:
            for p in s.query(Pug).stream(batch_size=5):
                if p.name == "p000007.0":
                    break
            with count(s, 1):
                assert s.query(Owner).count() == 30
            it = iter(s.query(Owner).stream(batch_size=5))
            next(it)
            del it
            gc.collect()
            with count(s, 1):
                assert len(s.query(Pug).where(PugMapper.age.is_(None)).all()) == 0
    assert caught == [], [str(w.message) for w in caught]


# -- commit and rollback inside the loop ------------------------------------------------------------


def test_commit_inside_the_stream_loop_works_and_keeps_streaming(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=23, pugs_per_owner=0)
    with db.session() as s:
        seen = []
        for i, o in enumerate(s.query(Owner).order_by("name").stream(batch_size=5)):
            o.rank = 1000 + i
            seen.append(o.name)
            if i % 5 == 4:
                s.commit()  # each batch's changes, committed as they go
        assert seen == [f"o{i:06d}" for i in range(1, 24)]
        # The last three are committed by the with block.
    ranks = backend.raw(f"SELECT name, {backend.q('rank')} FROM {backend.q('st_owners')} ORDER BY name")
    assert ranks == [(f"o{i:06d}", 999 + i) for i in range(1, 24)]


def test_commit_inside_a_stream_that_changes_the_rows_it_filters_on(backend, make_db):
    """In key order (the default), rows changed and committed inside the loop are neither
    read again nor skipped, even when the change takes them out of the query's filter."""
    db = make_db(*MAPPERS)
    seed(backend, owners=20, pugs_per_owner=0)
    with db.session() as s:
        seen = []
        for o in s.query(Owner).where(OwnerMapper.rank.is_(None) | (OwnerMapper.rank >= 0)).stream(batch_size=3):
            seen.append(o.id)
            o.rank = -o.id
            o.name = "z" + o.name
            s.commit()
        assert seen == list(range(1, 21))
    assert backend.raw(f"SELECT count(*) FROM {backend.q('st_owners')} WHERE {backend.q('rank')} < 0") == [(20,)]


def test_rollback_inside_the_stream_loop_keeps_streaming(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=12, pugs_per_owner=0)
    with db.session() as s:
        seen = []
        for o in s.query(Owner).order_by("id").stream(batch_size=5):
            seen.append(o.id)
            o.rank = -1
            s.flush()
            s.rollback()
            assert o.rank != -1
        assert seen == list(range(1, 13))
    assert backend.raw(f"SELECT count(*) FROM {backend.q('st_owners')} WHERE {backend.q('rank')} = -1") == [(0,)]


def test_closing_the_session_inside_the_loop_stops_the_stream_with_a_clear_error(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=12, pugs_per_owner=0)
    s = db.session()
    seen = []
    with pytest.raises(errors.SessionClosedError):
        for o in s.query(Owner).stream(batch_size=5):
            seen.append(o.name)
            if len(seen) == 3:
                s.close()
    assert len(seen) == 5  # the batch read before the close


def test_stream_after_a_write_lets_go_and_rollback_still_restores_what_it_kept(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=400, pugs_per_owner=0)
    with db.session() as s:
        first = s.get(Owner, 1)
        first.name = "first"
        s.flush()  # the transaction has written: what it loads from now on may be undone
        kept = []
        peak = 0
        for o in s.query(Owner).order_by("id").stream(batch_size=50):
            if o.id % 100 == 0:
                o.name = "changed"
                kept.append(o)
            peak = max(peak, len(managed_states(s)), len(tracker(s).loaded_after_write))
        assert peak <= 2 * 50 + len(kept) + 1, f"{peak} states held while streaming"
        s.rollback()
        assert first.name == "o000001"
        assert [o.name for o in kept] == ["o000100", "o000200", "o000300", "o000400"]
        assert all(o in s for o in kept)
    assert backend.raw(f"SELECT count(*) FROM {backend.q('st_owners')} WHERE name LIKE 'o%'") == [(400,)]


def test_stream_inside_a_failed_savepoint_restores_what_it_kept(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=200, pugs_per_owner=0)
    with db.session() as s:
        before = s.get(Owner, 1)
        before.name = "outside"
        s.flush()
        kept = []
        with pytest.raises(ZeroDivisionError):
            with s.begin_nested():
                for o in s.query(Owner).order_by("id").stream(batch_size=30):
                    if o.id in (2, 150):
                        o.rank = 1234
                        kept.append(o)
                s.flush()
                1 / 0  # noqa: B018
        assert before.name == "outside"
        assert [o.rank for o in kept] == [(2 * 7) % 5, (150 * 7) % 5]
    rows = backend.raw(f"SELECT id, name, {backend.q('rank')} FROM {backend.q('st_owners')} WHERE id IN (1, 2, 150) ORDER BY id")
    assert rows == [(1, "outside", (7 % 5)), (2, "o000002", 4), (150, "o000150", 0)]


# -- memory ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_streaming_200000_rows_keeps_live_objects_within_two_batches(backend, make_db, count):
    """Pugs with a stand-in owner each (one owner per ten pugs); the loop variable holds the last."""
    db = make_db(*MAPPERS)
    rows, batch = 200_000, 1000
    seed(backend, owners=rows // 10, pugs_per_owner=10)
    gc.collect()
    baseline = live_domain_objects()
    with db.session() as s:
        peak = 0
        seen = 0
        with count(s, rows // batch):
            for p in s.query(Pug).order_by("id").stream(batch_size=batch):
                seen += 1
                if seen % 10_000 == 5_000:
                    peak = max(peak, live_domain_objects() - baseline)
        assert seen == rows
        # Two batches of pugs and the owners they reference.
        assert peak <= 2 * (batch + batch // 10), f"{peak} domain objects alive while streaming"
        held = len(managed_states(s))
        assert held <= 2 * (batch + batch // 10), f"the session holds {held} objects"
        del p
        assert live_domain_objects() - baseline <= 2 * (batch + batch // 10)


def test_stream_with_includes_and_lazy_loads_keeps_live_objects_bounded(backend, make_db):
    """Cycles between owners and pugs (include and inverse), HasOne licences, and stand-ins
    loaded by touching them in the loop: all let go once the loop is past them (owners and their
    pugs reference each other, so the cycle collector frees them: it runs before each count)."""
    db = make_db(*MAPPERS)
    seed(backend, owners=3000, pugs_per_owner=3, licences_every=2)
    gc.collect()
    baseline = live_domain_objects()
    batch = 200
    bound = 2 * batch * 5  # two batches of owners, with their pugs and licences
    with db.session() as s:
        peak = 0
        for i, o in enumerate(s.query(Owner).include("pugs").stream(batch_size=batch)):
            assert len(o.pugs) == 3
            if i % 500 == 250:
                peak = max(peak, live_domain_objects(collect=True) - baseline)
        assert peak <= bound, f"{peak} domain objects alive while streaming owners with their pugs"
        peak = 0
        for i, p in enumerate(s.query(Pug).stream(batch_size=batch)):
            assert p.owner.name.startswith("o")  # loads the batch's stand-ins, and their licences
            assert len(p.owner.pugs) == 3  # and, two steps away, the pugs of those owners
            if i % 500 == 250:
                peak = max(peak, live_domain_objects(collect=True) - baseline)
        assert peak <= bound, f"{peak} domain objects alive while streaming pugs and loading their owners"
        peak = 0
        for i, o in enumerate(s.query(Owner).stream(batch_size=batch)):
            other = s.query(Pug).where(PugMapper.owner_id == o.id).all()  # a query of the loop's own
            assert len(other) == 3
            if i % 500 == 250:
                peak = max(peak, live_domain_objects(collect=True) - baseline)
        assert peak <= bound, f"{peak} domain objects alive while streaming owners and querying their pugs"
        del o, p, other
        assert live_domain_objects(collect=True) - baseline <= bound


def test_a_stream_left_by_an_exception_does_not_disturb_the_next_one(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=600, pugs_per_owner=1)
    with db.session() as s:
        with pytest.raises(ZeroDivisionError) as failed:
            for o in s.query(Owner).stream(batch_size=50):
                if o.id == 70:
                    1 / 0  # noqa: B018
        # The traceback keeps the first stream's generator alive, unfinished.
        gc.collect()
        baseline = live_domain_objects(collect=True)
        peak = 0
        for i, p in enumerate(s.query(Pug).stream(batch_size=50)):
            p.owner.name  # noqa: B018
            if i % 100 == 50:
                peak = max(peak, live_domain_objects(collect=True) - baseline)
        assert peak <= 2 * 50 * 3, f"{peak} domain objects alive"
        del failed, o, p
        gc.collect()
        assert tracker(s).collecting == []


def test_objects_kept_from_a_stream_stay_managed_and_lazy_load_together(backend, make_db, count):
    """What a batch keeps stays managed; a lazy load serves what its batch kept, together."""
    db = make_db(*MAPPERS)
    seed(backend, owners=50, pugs_per_owner=2)
    with db.session() as s:
        kept: list[Owner] = []
        pugs_of_7: Any = None
        with count(s, 2 * 5):  # five batches: owners and their licences each
            for o in s.query(Owner).order_by("id").stream(batch_size=10):
                if o.id in (3, 5, 13):
                    kept.append(o)
                if o.id == 7:
                    pugs_of_7 = o.pugs  # only its (unloaded) collection is kept
        assert all(o in s for o in kept)
        with count(s, 1):  # the pugs of 3, 5 and 7: what the first batch kept
            assert [p.name for p in kept[0].pugs] == ["p000003.0", "p000003.1"]
        with count(s, 0):
            assert [p.name for p in kept[1].pugs] == ["p000005.0", "p000005.1"]
            assert [p.name for p in pugs_of_7] == ["p000007.0", "p000007.1"]
        with count(s, 1):
            assert [p.name for p in kept[2].pugs] == ["p000013.0", "p000013.1"]
        kept[2].name = "renamed"
        with count(s, 1):
            s.flush()
    assert backend.raw(f"SELECT name FROM {backend.q('st_owners')} WHERE id = 13") == [("renamed",)]


def test_objects_reachable_from_a_kept_object_stay_managed(backend, make_db, count):
    db = make_db(*MAPPERS)
    seed(backend, owners=30, pugs_per_owner=2)
    with db.session() as s:
        kept = []
        for p in s.query(Pug).include("owner").order_by("id").stream(batch_size=8):
            if p.name == "p000004.1":
                kept.append(p)
        owner = kept[0].owner
        assert owner in s and owner.name == "o000004"
        with count(s, 0):
            assert s.get(Owner, 4) is owner
        with count(s, 1):
            assert [x.name for x in owner.pugs] == ["p000004.0", "p000004.1"]
        assert owner.pugs[1] is kept[0]


def test_stand_in_kept_from_a_stream_still_loads(backend, make_db, count):
    db = make_db(*MAPPERS)
    seed(backend, owners=30, pugs_per_owner=2)
    with db.session() as s:
        owners = []
        for p in s.query(Pug).order_by("id").stream(batch_size=8):
            if p.id % 20 == 0:
                owners.append(p.owner)  # a stand-in, not loaded yet
        with count(s, 2):  # the owners, and their licences (a HasOne loads with its parents)
            assert [o.name for o in owners] == [f"o{i:06d}" for i in (10, 20, 30)]


# -- close ----------------------------------------------------------------------------------------


def test_close_lets_go_of_every_object_while_the_session_stays_bound(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=20, pugs_per_owner=2, licences_every=3)
    with db.session() as s:
        owners = s.query(Owner).order_by("id").all()
        pugs = s.query(Pug).all()  # owners already held: no stand-ins
        owners[0].pugs.append(Pug("new"))
        s.flush()
        refs = [weakref.ref(o) for o in [*owners, *pugs]]
        refs += [weakref.ref(o.licence) for o in owners if o.licence is not None]
        kept = owners[1]
        del owners, pugs
    assert s.closed
    gc.collect()
    alive = [r() for r in refs if r() is not None]
    # The one owner still held, and what it references (its licence, its loaded pugs).
    assert {type(o).__name__ for o in alive} <= {"Owner", "Pug", "Licence"}
    assert all(o is kept or o is kept.licence or any(o is p for p in kept.pugs) for o in alive)
    assert kept not in s and kept.name == "o000002"


def test_objects_of_a_closed_session_are_detached_and_keep_their_values(backend, make_db):
    db = make_db(*MAPPERS)
    seed(backend, owners=3, pugs_per_owner=2)
    bulk_insert(backend, "st_owners", ["id", "name"], [(99, "lonely")])
    with db.session() as s:
        pugs = s.query(Pug).order_by("id").all()
        ref = weakref.ref(s.query(Owner).where(name="lonely").one())
    gc.collect()
    assert ref() is None  # the session held it; nothing else did
    assert [p.name for p in pugs] == ["p000001.0", "p000001.1", "p000002.0", "p000002.1", "p000003.0", "p000003.1"]
    assert all(p not in s for p in pugs)
    owner = pugs[0].owner  # a stand-in that never loaded
    with pytest.raises(errors.RelationNotLoadedError) as exc:
        owner.name  # noqa: B018
    assert "include('owner')" in str(exc.value) and "closed" in str(exc.value)
    with db.session() as s2:
        again = s2.query(Owner).order_by("id").first()
        s2.add(Pug("another", owner=again))
    with pytest.raises(errors.RelationNotLoadedError) as exc:
        len(again.pugs)
    assert "include('pugs')" in str(exc.value)
    with pytest.raises(errors.SessionClosedError):
        s.query(Owner).all()
