"""Queries over one mapped class, without relations, on every backend.

Each query is checked for its result (objects or rows read back with plain SQL) and for the
exact number of statements it sends.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import attrs
import pytest

from mapper import Column, Mapper, errors
from mapper import types as t
from tests.models import Owner, OwnerMapper, Pug, PugMapper
from tests.conftest import managed_states


@attrs.define
class Cat:
    name: str
    color: str | None = None
    born: datetime.date | None = None
    indoor: bool = True
    weight: Decimal | None = None
    mood: str = "calm"  # a domain attribute that is not mapped
    id: int | None = None


class CatMapper(Mapper[Cat]):
    table = "q_cats"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    color = Column(t.String(20))
    born = Column(t.Date)
    indoor = Column(t.Boolean, nullable=False)
    weight = Column(t.Numeric(6, 2))


PUGS = [("Cody", 1), ("Doug", 3), ("Bella", 5), ("Max", 3), ("Luna", 7), ("Ace", 2)]
ALL = {n for n, _ in PUGS}
EVIL = "x'); DROP TABLE owners; --"


def seed_pugs(db, rows=PUGS) -> dict[str, int]:
    with db.session() as s:
        pugs = [Pug(n, age=a) for n, a in rows]
        s.add_all(pugs)
    return {p.name: p.id for p in pugs}


def seed_cats(db) -> None:
    with db.session() as s:
        s.add_all(
            [
                Cat("Tom", color="grey", born=datetime.date(2019, 5, 1), indoor=True, weight=Decimal("4.25")),
                Cat("Kit", color=None, born=datetime.date(2021, 12, 31), indoor=False, weight=None),
                Cat("Zed", color="black", born=None, indoor=True, weight=Decimal("5.50")),
            ]
        )


def names(objs) -> set[str]:
    return {o.name for o in objs}


def pug_ages(backend) -> dict[str, int | None]:
    return dict(backend.raw(f"SELECT name, age FROM {backend.q('pugs')}"))


# -- where ---------------------------------------------------------------------------------------


def test_where_keyword_equalities(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        with count(s, 1):
            assert names(s.query(Pug).where(name="Doug").all()) == {"Doug"}
        with count(s, 1):
            assert names(s.query(Pug).where(age=3).all()) == {"Doug", "Max"}
        with count(s, 1):
            assert names(s.query(Pug).where(age=3, name="Max").all()) == {"Max"}
        with count(s, 1):
            assert names(s.query(Pug).where(age=3).where(name="Doug").all()) == {"Doug"}
        with count(s, 1):
            assert s.query(Pug).where(name="Nobody").all() == []


def test_where_none_means_is_null(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper, CatMapper)
    ids = seed_pugs(db)
    seed_cats(db)
    with db.session() as s:
        tom = Owner("Tom")
        s.add(tom)
    backend.raw(
        f"UPDATE {backend.q('pugs')} SET owner_id = ? WHERE id IN (?, ?)", (tom.id, ids["Cody"], ids["Luna"])
    )
    with db.session() as s:
        with count(s, 1):
            assert names(s.query(Pug).where(owner_id=None).all()) == ALL - {"Cody", "Luna"}
        with count(s, 1):
            assert names(s.query(Pug).where(owner_id=tom.id).all()) == {"Cody", "Luna"}
        with count(s, 1):
            assert names(s.query(Cat).where(color=None).all()) == {"Kit"}
        with count(s, 1):
            assert names(s.query(Cat).where(CatMapper.color == None).all()) == {"Kit"}  # noqa: E711
        with count(s, 1):
            assert names(s.query(Cat).where(CatMapper.color != None).all()) == {"Tom", "Zed"}  # noqa: E711
        with count(s, 1):
            assert names(s.query(Cat).where(CatMapper.born.is_(None)).all()) == {"Zed"}
        with count(s, 1):
            assert names(s.query(Cat).where(CatMapper.weight.is_not(None)).all()) == {"Tom", "Zed"}


def test_column_expressions(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    age, name = PugMapper.age, PugMapper.name
    cases = [
        (age == 3, {"Doug", "Max"}),
        (age != 3, {"Cody", "Bella", "Luna", "Ace"}),
        (age < 3, {"Cody", "Ace"}),
        (age <= 3, {"Cody", "Ace", "Doug", "Max"}),
        (age > 3, {"Bella", "Luna"}),
        (age >= 3, {"Doug", "Max", "Bella", "Luna"}),
        (3 < age, {"Bella", "Luna"}),  # reflected comparison
        (age.in_([1, 7, 42]), {"Cody", "Luna"}),
        (age.not_in([1, 7]), {"Doug", "Bella", "Max", "Ace"}),
        (name.in_(["Max", "Ace"]), {"Max", "Ace"}),
        (name.in_([]), set()),
        (name.not_in([]), ALL),
        (age.in_(iter([5])), {"Bella"}),
        (name.like("D%"), {"Doug"}),
        (name.like("%a"), {"Bella", "Luna"}),
        (name.like("_ce"), {"Ace"}),
        (age.between(2, 5), {"Ace", "Doug", "Max", "Bella"}),
        ((age < 2) | (age > 6), {"Cody", "Luna"}),
        ((age >= 3) & name.like("%a"), {"Bella", "Luna"}),
        (~(age == 3), {"Cody", "Bella", "Luna", "Ace"}),
        (~((age < 2) | (age > 6)), {"Doug", "Bella", "Max", "Ace"}),
        (((age == 3) | (age == 5)) & ~name.like("M%"), {"Doug", "Bella"}),
        (age == PugMapper.age, ALL),  # column compared with column
    ]
    with db.session() as s:
        for expr, expected in cases:
            with count(s, 1):
                got = s.query(Pug).where(expr).all()
            assert names(got) == expected
        # several conditions in one where() and chained where() are ANDed
        with count(s, 1):
            assert names(s.query(Pug).where(age >= 3, age <= 5).all()) == {"Doug", "Max", "Bella"}
        with count(s, 1):
            assert names(s.query(Pug).where(age >= 3).where(name.like("%a"), age < 7).all()) == {"Bella"}


def test_ilike_is_case_insensitive_everywhere(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db, [("Cody", 1), ("cooper", 2), ("COLE", 3), ("Doug", 4)])
    with db.session() as s:
        with count(s, 1):
            assert names(s.query(Pug).where(PugMapper.name.ilike("co%")).all()) == {"Cody", "cooper", "COLE"}
        with count(s, 1):
            assert names(s.query(Pug).where(PugMapper.name.ilike("%OU%")).all()) == {"Doug"}
        with count(s, 1):
            assert names(s.query(Pug).where(~PugMapper.name.ilike("CO%")).all()) == {"Doug"}


def test_expression_misuse_is_refused(backend, make_db):
    make_db(OwnerMapper, PugMapper)
    with pytest.raises(TypeError):
        PugMapper.age.is_(3)
    with pytest.raises(TypeError):
        PugMapper.age.in_("abc")
    with pytest.raises(TypeError):
        bool(PugMapper.age == 3)


# -- order_by, limit, offset ------------------------------------------------------------------------


def test_order_by(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:

        def order(*keys):
            with count(s, 1):
                return [p.name for p in s.query(Pug).order_by(*keys).all()]

        assert order("name") == ["Ace", "Bella", "Cody", "Doug", "Luna", "Max"]
        assert order("-name") == ["Max", "Luna", "Doug", "Cody", "Bella", "Ace"]
        assert order("age", "name") == ["Cody", "Ace", "Doug", "Max", "Bella", "Luna"]
        assert order("-age", "name") == ["Luna", "Bella", "Doug", "Max", "Ace", "Cody"]
        assert order("age", "-name") == ["Cody", "Ace", "Max", "Doug", "Bella", "Luna"]
        assert order(PugMapper.age.desc(), PugMapper.name.desc()) == ["Luna", "Bella", "Max", "Doug", "Ace", "Cody"]
        assert order(PugMapper.name.asc()) == ["Ace", "Bella", "Cody", "Doug", "Luna", "Max"]
        assert order(PugMapper.name) == ["Ace", "Bella", "Cody", "Doug", "Luna", "Max"]
        assert order(PugMapper.age.asc(), "-name") == ["Cody", "Ace", "Max", "Doug", "Bella", "Luna"]
        with count(s, 1):
            got = s.query(Pug).where(PugMapper.age >= 3).order_by("-age", "name").all()
        assert [p.name for p in got] == ["Luna", "Bella", "Doug", "Max"]


def test_limit_and_offset_with_order(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        q = s.query(Pug).order_by("name")
        with count(s, 1):
            assert [p.name for p in q.limit(2).all()] == ["Ace", "Bella"]
        with count(s, 1):
            assert [p.name for p in q.offset(2).limit(2).all()] == ["Cody", "Doug"]
        with count(s, 1):
            assert [p.name for p in q.limit(2).offset(2).all()] == ["Cody", "Doug"]
        with count(s, 1):
            assert [p.name for p in q.offset(4).all()] == ["Luna", "Max"]
        with count(s, 1):
            assert [p.name for p in q.offset(10).all()] == []
        with count(s, 1):
            assert q.limit(0).all() == []
        with count(s, 1):
            assert len(q.limit(None).all()) == 6
        with count(s, 1):
            assert [p.name for p in q.limit(100).all()] == ["Ace", "Bella", "Cody", "Doug", "Luna", "Max"]


def test_pages_without_order_do_not_overlap(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    ids = seed_pugs(db)
    with db.session() as s:
        pages = []
        for start in (0, 2, 4):
            with count(s, 1):
                pages.append([p.id for p in s.query(Pug).limit(2).offset(start).all()])
        flat = [i for page in pages for i in page]
        assert all(len(page) == 2 for page in pages)
        assert len(set(flat)) == 6
        assert set(flat) == set(ids.values())
        # offset alone (no limit, no order) returns exactly the rows the first page skipped
        with count(s, 1):
            rest = [p.id for p in s.query(Pug).offset(2).all()]
        assert len(rest) == 4
        assert set(rest) | set(pages[0]) == set(ids.values())
        assert not set(rest) & set(pages[0])


@pytest.mark.parametrize("bad", [-1, "3", True, False, 1.5, [2]])
def test_bad_limit_and_offset_values(backend, make_db, count, bad):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add(Pug("Pending"))
        with count(s, 0):
            with pytest.raises(errors.QueryError):
                s.query(Pug).limit(bad)
            with pytest.raises(errors.QueryError):
                s.query(Pug).offset(bad)


# -- all / first / one / count / exists / iteration ----------------------------------------------


def test_all_returns_identity_mapped_objects(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    ids = seed_pugs(db)
    with db.session() as s:
        with count(s, 1):
            first = s.query(Pug).order_by("id").all()
        assert [(p.name, p.age, p.id) for p in first] == [(n, a, ids[n]) for n, a in PUGS]
        assert all(type(p) is Pug for p in first)
        with count(s, 1):
            again = s.query(Pug).order_by("id").all()
        assert all(a is b for a, b in zip(first, again))
        with count(s, 0):
            assert s.get(Pug, ids["Doug"]) is first[1]


def test_first(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        with count(s, 1):
            assert s.query(Pug).order_by("-age").first().name == "Luna"
        with count(s, 1):
            assert s.query(Pug).order_by("name").offset(1).first().name == "Bella"
        with count(s, 1):
            assert s.query(Pug).where(age=3).order_by("name").first().name == "Doug"
        with count(s, 1):
            assert s.query(Pug).where(name="Nobody").first() is None


def test_one_and_one_or_none(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        with count(s, 1):
            doug = s.query(Pug).where(name="Doug").one()
        assert (doug.name, doug.age) == ("Doug", 3)
        with count(s, 1):
            with pytest.raises(errors.MultipleResultsError):
                s.query(Pug).where(age=3).one()
        with count(s, 1):
            with pytest.raises(errors.NotFoundError):
                s.query(Pug).where(name="Nobody").one()
        with count(s, 1):
            assert s.query(Pug).where(name="Nobody").one_or_none() is None
        with count(s, 1):
            assert s.query(Pug).where(name="Doug").one_or_none() is doug
        with count(s, 1):
            with pytest.raises(errors.MultipleResultsError):
                s.query(Pug).where(age=3).one_or_none()
        # a window of one row is "one"
        with count(s, 1):
            assert s.query(Pug).where(age=3).order_by("name").limit(1).one().name == "Doug"
    assert issubclass(errors.NotFoundError, errors.MapperError)
    assert issubclass(errors.MultipleResultsError, errors.MapperError)


def test_count(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        cases = [
            (s.query(Pug), 6),
            (s.query(Pug).where(age=3), 2),
            (s.query(Pug).where(PugMapper.age > 100), 0),
            (s.query(Pug).limit(4), 4),
            (s.query(Pug).limit(10), 6),
            (s.query(Pug).limit(0), 0),
            (s.query(Pug).offset(4), 2),
            (s.query(Pug).order_by("name").limit(3).offset(1), 3),
            (s.query(Pug).where(PugMapper.age >= 3).limit(3).offset(2), 2),
        ]
        for q, expected in cases:
            with count(s, 1):
                assert q.count() == expected
        assert len(managed_states(s)) == 0  # count() builds no objects


def test_exists(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        with count(s, 1):
            assert s.query(Pug).where(age=7).exists() is True
        with count(s, 1):
            assert s.query(Pug).where(age=99).exists() is False
        with count(s, 1):
            assert s.query(Pug).exists() is True
        assert len(managed_states(s)) == 0


def test_exists_agrees_with_count_on_windows(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        for q in (
            s.query(Pug).offset(5),
            s.query(Pug).offset(6),
            s.query(Pug).limit(0),
            s.query(Pug).limit(1),
            s.query(Pug).where(age=3).offset(1),
            s.query(Pug).where(age=3).offset(2),
        ):
            with count(s, 1):
                n = q.count()
            with count(s, 1):
                assert q.exists() is (n > 0), f"exists() disagrees with count()={n} for {q!r}"


def test_iteration(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        with count(s, 1):
            got = [p.name for p in s.query(Pug).order_by("name")]
        assert got == ["Ace", "Bella", "Cody", "Doug", "Luna", "Max"]
        with count(s, 1):
            assert [p.name for p in s.query(Pug).where(age=3).order_by("-name")] == ["Max", "Doug"]


def test_builders_leave_the_original_query_unchanged(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        base = s.query(Pug)
        base.where(age=3)
        base.limit(1)
        base.offset(3)
        base.order_by("-age")
        with count(s, 1):
            assert base.count() == 6
        with count(s, 1):
            assert sorted(p.name for p in base.all()) == sorted(ALL)
        by_age = base.order_by("age")
        by_age.order_by("-name")
        by_age.limit(1)
        with count(s, 1):
            assert [p.name for p in by_age.all()] == ["Cody", "Ace", "Doug", "Max", "Bella", "Luna"]


def test_autoflush_before_query(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        s.add(Pug("Newbie", age=3))
        with count(s, 2):  # the INSERT, then the SELECT
            assert names(s.query(Pug).where(age=3).all()) == {"Doug", "Max", "Newbie"}


# -- values ------------------------------------------------------------------------------------------


def test_values_returns_plain_tuples(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        with count(s, 1):
            rows = s.query(Pug).order_by("name").values("name", PugMapper.age)
        assert rows == [("Ace", 2), ("Bella", 5), ("Cody", 1), ("Doug", 3), ("Luna", 7), ("Max", 3)]
        assert all(type(r) is tuple for r in rows)
        with count(s, 1):
            assert s.query(Pug).where(age=3).order_by("-name").values(PugMapper.name) == [("Max",), ("Doug",)]
        with count(s, 1):
            assert s.query(Pug).where(name="Cody").values("owner_id", "age") == [(None, 1)]
        assert len(managed_states(s)) == 0  # no objects were added to the session
        with count(s, 1):
            doug = s.query(Pug).where(name="Doug").one()
        with count(s, 1):
            assert s.query(Pug).where(name="Doug").values("age") == [(3,)]
        assert len(managed_states(s)) == 1 and s.get(Pug, doug.id) is doug


def test_values_converts_column_types(backend, make_db, count):
    db = make_db(CatMapper)
    seed_cats(db)
    with db.session() as s:
        with count(s, 1):
            rows = s.query(Cat).order_by("name").values("name", "born", "indoor", CatMapper.weight, "color")
        assert rows == [
            ("Kit", datetime.date(2021, 12, 31), False, None, None),
            ("Tom", datetime.date(2019, 5, 1), True, Decimal("4.25"), "grey"),
            ("Zed", None, True, Decimal("5.50"), "black"),
        ]
        kit, tom, zed = rows
        assert type(tom[1]) is datetime.date
        assert type(tom[2]) is bool and type(kit[2]) is bool
        assert type(tom[3]) is Decimal
        assert len(managed_states(s)) == 0


def test_values_needs_a_column(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError):
                s.query(Pug).values()


# -- stream ------------------------------------------------------------------------------------------


def test_stream_yields_every_row_in_order_with_one_statement_per_batch(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db, [(f"p{i:03d}", i) for i in range(53)])
    with db.session() as s:
        with count(s, 8):  # 53 rows in batches of 7
            got = [(p.name, p.age) for p in s.query(Pug).order_by("-age").stream(batch_size=7)]
        assert got == [(f"p{i:03d}", i) for i in reversed(range(53))]
        with count(s, 4):  # 10 rows in batches of 3
            got = [p.age for p in s.query(Pug).where(PugMapper.age < 10).order_by("age").stream(batch_size=3)]
        assert got == list(range(10))
        with count(s, 1):
            assert list(s.query(Pug).where(age=-1).stream()) == []


def test_stream_kept_and_changed_objects_stay_managed(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db, [(f"p{i:03d}", i) for i in range(50)])
    with db.session() as s:
        kept = []
        with count(s, 5):  # 50 rows in batches of 10
            for p in s.query(Pug).order_by("age").stream(batch_size=10):
                if p.age % 10 == 0:
                    kept.append(p)
                if p.age == 15:
                    p.age = 1500  # changed, not kept
        assert [p.age for p in kept] == [0, 10, 20, 30, 40]
        for p in kept:
            assert p in s
        with count(s, 0):
            assert s.get(Pug, kept[2].id) is kept[2]
        kept[1].age = 999
        with count(s, 1):  # one UPDATE for both changed rows (same column set)
            s.flush()
        with count(s, 1):
            again = s.query(Pug).where(name="p000").one()
        assert again is kept[0]
    ages = pug_ages(backend)
    assert ages["p010"] == 999
    assert ages["p015"] == 1500
    assert ages["p020"] == 20
    assert len(ages) == 50


def test_stream_keeps_memory_flat(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    n = 20_000
    with db.session() as s:
        s.add_all([Pug(f"p{i}", age=i) for i in range(n)])
    with db.session() as s:
        seen = 0
        peak = 0
        last_age = -1
        ordered = True
        with count(s, n // 500):
            for p in s.query(Pug).order_by("age").stream(batch_size=500):
                seen += 1
                ordered = ordered and p.age > last_age
                last_age = p.age
                peak = max(peak, len(managed_states(s)))
        assert seen == n
        assert ordered
        assert len(managed_states(s)) <= 500, f"the session still holds {len(managed_states(s))} streamed objects"
        assert peak <= 1000, f"the session held {peak} objects at once"


def test_stream_releases_unchanged_objects_with_references_and_keeps_a_moved_one(backend, make_db, count):
    from tests.rel_models import PETS
    from tests.rel_models import Owner as ROwner
    from tests.rel_models import Pug as RPug

    db = make_db(*PETS)
    with db.session() as s:
        tom, bob = ROwner("Tom"), ROwner("Bob")
        s.add_all([tom, bob])
        s.add_all([RPug(f"p{i:04d}", age=i, owner=tom) for i in range(2000)])
    with db.session() as s:
        bob = s.query(ROwner).where(name="Bob").one()
        peak = 0
        with count(s, 10):  # 2,000 rows in batches of 200
            for p in s.query(RPug).order_by("age").stream(batch_size=200):
                if p.age == 1234:
                    p.owner = bob  # changed only in its reference: it must stay managed
                peak = max(peak, len(managed_states(s)))
        assert peak <= 500, f"the session held {peak} objects at once"
        with count(s, 1):
            s.flush()
    moved = backend.raw(f"SELECT name FROM {backend.q('rel_pugs')} WHERE owner_id = ?", (bob.id,))
    assert [r[0] for r in moved] == ["p1234"]


@pytest.mark.parametrize("bad", [0, -5, "10", 2.5, None, True])
def test_stream_rejects_bad_batch_size(backend, make_db, count, bad):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError):
                next(iter(s.query(Pug).stream(batch_size=bad)))


# -- set-based update and delete -------------------------------------------------------------------


def test_update_with_nothing_held_is_one_statement(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        with count(s, 1):
            assert s.query(Pug).where(age=3).update(age=4) == 2
        with count(s, 1):
            assert s.query(Pug).where(name="Nobody").update(age=4) == 0
    ages = pug_ages(backend)
    assert ages == {"Cody": 1, "Doug": 4, "Bella": 5, "Max": 4, "Luna": 7, "Ace": 2}


def test_update_brings_held_objects_into_line(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    ids = seed_pugs(db)
    # MariaDB has no UPDATE ... RETURNING: the keys of held rows are read first.
    expected = 2 if backend.name == "mysql" else 1
    with db.session() as s:
        held = {p.name: p for p in s.query(Pug).all()}
        with count(s, expected):
            n = s.query(Pug).where(PugMapper.age.in_([3, 7])).update(age=10)
        assert n == 3
        assert {k: p.age for k, p in held.items()} == {"Cody": 1, "Doug": 10, "Bella": 5, "Max": 10, "Luna": 10, "Ace": 2}
        # the database agrees, in the same transaction
        with count(s, 1):
            assert sorted(s.query(Pug).where(age=10).values("name")) == [("Doug",), ("Luna",), ("Max",)]
        # held objects are in line with their rows: nothing left to write
        with count(s, 0):
            s.flush()
        # a later change to an updated object is still tracked against the new value
        held["Doug"].age = 11
        with count(s, 1):
            s.flush()
        with count(s, 0):
            assert s.get(Pug, ids["Max"]) is held["Max"]
    assert pug_ages(backend) == {"Cody": 1, "Doug": 11, "Bella": 5, "Max": 10, "Luna": 10, "Ace": 2}


def test_update_keeps_unflushed_changes_of_held_objects(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session(autoflush=False) as s:
        doug = s.query(Pug).where(name="Doug").one()
        doug.name = "Dougie"  # a pending change the set-based UPDATE does not touch
        assert s.query(Pug).where(age=3).update(age=4) == 2
        assert (doug.name, doug.age) == ("Dougie", 4)
        with count(s, 1):  # the rename is still a change to write
            s.flush()
    assert pug_ages(backend) == {"Cody": 1, "Dougie": 4, "Bella": 5, "Max": 4, "Luna": 7, "Ace": 2}


def test_update_converts_values_and_can_set_null(backend, make_db, count):
    db = make_db(CatMapper)
    seed_cats(db)
    with db.session() as s:
        tom = s.query(Cat).where(name="Tom").one()
        n = s.query(Cat).where(CatMapper.born.is_not(None)).update(born=datetime.date(2020, 2, 29), color=None)
        assert n == 2
        assert tom.born == datetime.date(2020, 2, 29) and tom.color is None
        with count(s, 0):
            s.flush()
    with db.session() as s:
        rows = s.query(Cat).order_by("name").values("name", "born", "color")
    assert rows == [
        ("Kit", datetime.date(2020, 2, 29), None),
        ("Tom", datetime.date(2020, 2, 29), None),
        ("Zed", None, "black"),
    ]
    raw = dict(backend.raw(f"SELECT name, color FROM {backend.q('q_cats')}"))
    assert raw == {"Kit": None, "Tom": None, "Zed": "black"}


def test_update_is_undone_by_rollback(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        doug = s.query(Pug).where(name="Doug").one()
        s.query(Pug).where(age=3).update(age=30)
        assert doug.age == 30
        s.rollback()
        assert doug.age == 3
        with count(s, 1):
            assert s.query(Pug).where(age=30).count() == 0
    assert pug_ages(backend)["Doug"] == 3


def test_update_refuses_bad_requests(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        s.add(Pug("Pending"))
        with count(s, 0):
            with pytest.raises(errors.QueryError):
                s.query(Pug).update()
            with pytest.raises(errors.QueryError, match="nope"):
                s.query(Pug).update(nope=1)
            with pytest.raises(errors.QueryError):
                s.query(Pug).update(id=100)
            with pytest.raises(errors.QueryError):
                s.query(Pug).limit(1).update(age=1)
            with pytest.raises(errors.QueryError):
                s.query(Pug).order_by("age").delete()
            with pytest.raises(errors.QueryError):
                s.query(Pug).offset(1).delete()
    assert sorted(pug_ages(backend).values()) == [0, 1, 2, 3, 3, 5, 7]


def test_delete_with_nothing_held(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    seed_pugs(db)
    with db.session() as s:
        with count(s, 1):
            assert s.query(Pug).where(PugMapper.age >= 5).delete() == 2
        with count(s, 1):
            assert s.query(Pug).where(name="Nobody").delete() == 0
    assert set(pug_ages(backend)) == {"Cody", "Doug", "Max", "Ace"}


def test_delete_brings_held_objects_into_line(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    ids = seed_pugs(db)
    with db.session() as s:
        held = {p.name: p for p in s.query(Pug).all()}
        with count(s, 1):  # DELETE ... RETURNING on all three backends (MariaDB >= 10.5)
            assert s.query(Pug).where(PugMapper.age >= 5).delete() == 2
        assert s.get(Pug, ids["Bella"]) is None
        assert s.get(Pug, ids["Luna"]) is None
        with count(s, 0):
            assert s.get(Pug, ids["Doug"]) is held["Doug"]
        with count(s, 1):
            assert names(s.query(Pug).all()) == {"Cody", "Doug", "Max", "Ace"}
        # the deleted objects are not written again (no UPDATE, no second DELETE)
        held["Bella"].age = 50
        with count(s, 0):
            s.flush()
    assert set(pug_ages(backend)) == {"Cody", "Doug", "Max", "Ace"}
    with db.session() as s:
        assert s.get(Pug, ids["Bella"]) is None


def test_delete_is_undone_by_rollback(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    ids = seed_pugs(db)
    with db.session() as s:
        bella = s.get(Pug, ids["Bella"])
        s.query(Pug).where(name="Bella").delete()
        assert s.get(Pug, ids["Bella"]) is None
        s.rollback()
        with count(s, 0):
            assert s.get(Pug, ids["Bella"]) is bella
    assert "Bella" in pug_ages(backend)


# -- names that are not mapped, other mappers' columns -----------------------------------------------


def test_unmapped_names_raise_before_any_sql(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper, CatMapper)
    with db.session() as s:
        s.add(Pug("Pending"))  # would be autoflushed by any query that reaches the database
        s.add(Cat("Pending"))
        attempts = [
            (lambda: s.query(Pug).where(nope=1), "nope"),
            (lambda: s.query(Pug).where(**{"name; DROP TABLE pugs": 1}), "name; DROP TABLE pugs"),
            (lambda: s.query(Pug).order_by("nope"), "nope"),
            (lambda: s.query(Pug).order_by("-nope"), "nope"),
            (lambda: s.query(Pug).order_by("age DESC"), "age DESC"),
            (lambda: s.query(Pug).order_by("age; DROP TABLE pugs"), "age; DROP TABLE pugs"),
            (lambda: s.query(Pug).values("nope"), "nope"),
            (lambda: s.query(Pug).values("name", "age + 1"), "age + 1"),
            (lambda: s.query(Cat).where(mood="calm"), "mood"),  # a domain attribute, but not mapped
            (lambda: s.query(Cat).order_by("mood"), "mood"),
            (lambda: s.query(Pug).where(OwnerMapper.name == "Tom"), "OwnerMapper.name"),
            (lambda: s.query(Pug).where((PugMapper.age > 1) & (OwnerMapper.id == 1)), "OwnerMapper.id"),
            (lambda: s.query(Pug).where(CatMapper.name.like("T%")), "CatMapper.name"),
            (lambda: s.query(Pug).order_by(OwnerMapper.name.desc()), "OwnerMapper.name"),
            (lambda: s.query(Pug).order_by(CatMapper.name), "CatMapper.name"),
            (lambda: s.query(Pug).values(OwnerMapper.name), "OwnerMapper.name"),
            (lambda: s.query(Pug).where("age > 3"), None),
            (lambda: s.query(Pug).where(PugMapper.age), None),
            (lambda: s.query(Pug).order_by(3), None),
        ]
        with count(s, 0):
            for attempt, mention in attempts:
                with pytest.raises(errors.QueryError) as info:
                    attempt()
                assert isinstance(info.value, errors.MapperError)
                if mention is not None:
                    assert mention in str(info.value), str(info.value)
        s.rollback()
    assert pug_ages(backend) == {}


# -- values are always bound parameters -------------------------------------------------------------


def test_values_are_bound_parameters(backend, make_db, count):
    db = make_db(OwnerMapper, PugMapper)
    odd = "50% :name ? %s \\ \" ` '' ;"
    with db.session() as s:
        s.add_all([Owner(EVIL), Owner(odd), Owner("Tom")])
    with db.session() as s:
        with count(s, 1):
            assert s.query(Owner).where(name=EVIL).one().name == EVIL
        with count(s, 1):
            assert s.query(Owner).where(OwnerMapper.name == odd).one().name == odd
        with count(s, 1):
            assert names(s.query(Owner).where(OwnerMapper.name.in_([EVIL, odd])).all()) == {EVIL, odd}
        with count(s, 1):
            assert names(s.query(Owner).where(OwnerMapper.name.like("x'); DROP%")).all()) == {EVIL}
        with count(s, 1):
            assert s.query(Owner).where(OwnerMapper.name != EVIL).count() == 2
        with count(s, 1):
            assert s.query(Owner).where(name=EVIL).values("name") == [(EVIL,)]
        # the session holds objects now; MariaDB reads their keys before its UPDATE (no RETURNING)
        with count(s, 2 if backend.name == "mysql" else 1):
            assert s.query(Owner).where(name=EVIL).update(name=EVIL + EVIL) == 1
    rows = {r[0] for r in backend.raw(f"SELECT name FROM {backend.q('owners')}")}
    assert rows == {EVIL + EVIL, odd, "Tom"}
    assert backend.raw(f"SELECT name FROM {backend.q('owners')} WHERE name = ?", (odd,)) == [(odd,)]
