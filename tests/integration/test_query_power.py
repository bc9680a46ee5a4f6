"""Aggregates and grouping, joins and subqueries, pagination, raw SQL to objects: on every backend.

Each query is checked for its result (rows read back, or compared with plain SQL) and for the
exact number of statements it sends; every refusal happens before any SQL.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from mapper import Page, errors, exists, func, outer, path
from tests.conftest import managed_states
from tests.rel_models import (
    LIBRARY,
    PETS,
    Book,
    Owner,
    OwnerMapper,
    Pug,
    PugMapper,
    Toy,
    ToyMapper,
    User,
    UserMapper,
)


@pytest.fixture
def pets(make_db):
    db = make_db(*PETS)
    with db.session() as s:
        s.add_all([
            Owner("Tom", pugs=[Pug("a", 1, toys=[Toy("ball"), Toy("rope")]), Pug("b", 3)]),
            Owner("Ann", pugs=[Pug("c", 5, toys=[Toy("bone")])]),
            Owner("Zed"),
        ])
        s.add(Pug("d", 7))  # no owner
    return db


# -- 1. aggregates and grouping -----------------------------------------------------------------


def test_aggregates_over_the_whole_query_read_back_typed(pets, count):
    with pets.session() as s:
        with count(s, 1):
            [row] = s.query(Pug).values(n=func.count(), total=func.sum(PugMapper.age), low=func.min("age"),
                                         high=func.max(PugMapper.age), mean=func.avg(PugMapper.age))
        assert row == (4, 16, 1, 7, 4.0)
        assert (row.n, row.total, row.mean) == (4, 16, 4.0)
        assert type(row.total) is int and type(row.n) is int and type(row.mean) is float
        with count(s, 1):
            assert s.query(Pug).where(PugMapper.age > 100).values(func.count(), func.sum(PugMapper.age)) == [(0, None)]


def test_values_group_by_a_to_one_path_with_a_label(pets, backend, count):
    with pets.session() as s:
        with count(s, 1):
            rows = s.query(Pug).order_by("owner.name").values("owner.name", total=func.count(PugMapper.id))
        assert rows == [(None, 1), ("Ann", 1), ("Tom", 2)] if backend.name != "postgresql" else rows == [("Ann", 1), ("Tom", 2), (None, 1)]
        assert {r.total for r in rows} == {1, 2}
        q = backend.q
        raw = backend.raw(f"SELECT o.name, count(p.id) FROM {q('rel_pugs')} p LEFT JOIN {q('rel_owners')} o ON o.id = p.owner_id GROUP BY o.name")
        assert sorted(rows, key=lambda r: str(r[0])) == sorted(raw, key=lambda r: str(r[0]))


def test_group_by_having_and_order_by_an_aggregate(pets, count):
    with pets.session() as s:
        with count(s, 1):
            rows = (s.query(Pug).join("owner").group_by("owner.name").having(func.count(PugMapper.id) >= 1)
                    .order_by(func.sum(PugMapper.age).desc()).values("owner.name", ages=func.sum("age")))
        assert rows == [("Ann", 5), ("Tom", 4)]
        with count(s, 1):
            rows = s.query(Pug).group_by(PugMapper.owner_id).having(func.count() > 1).values("owner_id", func.count())
        [(owner_id, n)] = rows
        assert n == 2 and owner_id == s.query(Owner).where(name="Tom").one().id


def test_generic_function_and_count_distinct(pets, count):
    with pets.session() as s:
        with count(s, 1):
            assert s.query(Pug).order_by("name").values(func.upper(PugMapper.name)) == [("A",), ("B",), ("C",), ("D",)]
        with count(s, 1):
            assert s.query(Pug).values(func.count(PugMapper.owner_id, distinct=True)) == [(2,)]
        with count(s, 1):
            assert sorted(s.query(Pug).values(func.coalesce(PugMapper.owner_id, 0)))[0] == (0,)


def test_distinct_rows_and_count_stay_right(pets, count):
    with pets.session() as s:
        with count(s, 1):
            assert s.query(Pug).distinct().order_by("owner_id").values("owner_id") != []
        with count(s, 1):
            assert s.query(Pug).where(PugMapper.owner_id.is_not(None)).distinct().count() == 3
        with count(s, 1):
            assert len(s.query(Pug).where(PugMapper.owner_id.is_not(None)).distinct().values("owner_id")) == 2
        with count(s, 1):
            assert s.query(Owner).join("pugs").count() == 3  # a row per pug
        with count(s, 1):
            assert s.query(Owner).join("pugs").distinct().count() == 2
        with count(s, 1):
            assert s.query(Owner).where(OwnerMapper.pugs.any(PugMapper.age > 0)).count() == 2
        with count(s, 1):
            assert s.query(Pug).where(path("owner.name") == "Tom").count() == 2


def test_aggregate_refusals_before_sql(pets, count):
    with pets.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError, match="use having"):
                s.query(Pug).where(func.count() > 1)
            with pytest.raises(errors.QueryError, match="group_by.*aggregate"):
                s.query(Pug).group_by(func.count())
            with pytest.raises(errors.QueryError, match="Pug has no mapped attribute 'nope'"):
                s.query(Pug).values(total=func.sum("nope"))
            with pytest.raises(errors.QueryError, match="'owner' is not a relation of Owner"):
                s.query(Pug).values("owner.owner.name")
            with pytest.raises(errors.QueryError, match="label 'a b' is not an identifier"):
                s.query(Pug).values(**{"a b": func.count()})
            with pytest.raises(errors.QueryError, match="OwnerMapper.name in values.*not a column of PugMapper"):
                s.query(Pug).values(func.max(OwnerMapper.name))
            with pytest.raises(AttributeError, match="plain identifier"):
                getattr(func, "count(*); drop")
            with pytest.raises(errors.QueryError, match="no mapped attribute 'nope'"):
                s.query(Pug).having(nope=1)


# -- 2. pagination ------------------------------------------------------------------------------


def test_paginate_returns_items_and_total(pets, count):
    with pets.session() as s:
        with count(s, 2):
            page = s.query(Pug).order_by("name").paginate(2, 3)
        assert isinstance(page, Page)
        assert [p.name for p in page.items] == ["d"] and page.total == 4 and page.pages == 2 and not page.has_next
        with count(s, 1):  # past the end: the count says so, no SELECT of rows
            assert s.query(Pug).paginate(5, 3).items == []
        with count(s, 0):
            with pytest.raises(errors.QueryError, match=r"paginate\(page\) takes an int >= 1, got 0"):
                s.query(Pug).paginate(0, 3)
            with pytest.raises(errors.QueryError, match="remove limit"):
                s.query(Pug).limit(3).paginate(1, 3)


def test_keyset_pages_with_after(pets, count):
    with pets.session() as s:
        seen = []
        q = s.query(Pug).order_by("-age")
        last = None
        with count(s, 3):
            while True:
                page = (q.after(last) if last is not None else q).limit(2).all()
                seen += [p.name for p in page]
                if len(page) < 2:
                    break
                last = page[-1]
        assert seen == ["d", "c", "b", "a"]
        b_id = s.query(Pug).where(name="b").one().id
        with count(s, 1):
            assert [p.name for p in s.query(Pug).order_by("age").after((3, b_id)).limit(5)] == ["c", "d"]
        ids = sorted(r[0] for r in s.query(Pug).values("id"))
        with count(s, 1):
            assert [p.id for p in s.query(Pug).after(ids[1]).limit(10).all()] == ids[2:]
        with count(s, 0):
            with pytest.raises(errors.QueryError, match=r"after\(\) got 1 value\(s\) for the 2 order column"):
                s.query(Pug).order_by("age").after(3)
            with pytest.raises(errors.QueryError, match="None"):
                s.query(Pug).after(None)


def test_slicing_is_limit_and_offset(pets, count):
    with pets.session() as s:
        q = s.query(Pug).order_by("name")
        with count(s, 1):
            assert [p.name for p in q[1:3]] == ["b", "c"]
        with count(s, 1):
            assert q[3].name == "d"
        with count(s, 1):
            with pytest.raises(IndexError, match="no Pug at index 9"):
                q[9]
        with count(s, 0):
            with pytest.raises(errors.QueryError, match="no negative"):
                q[-2:]
            with pytest.raises(errors.QueryError, match="no step"):
                q[0:4:2]


# -- 4. raw SQL to objects ----------------------------------------------------------------------


def test_from_sql_goes_through_the_identity_map(pets, backend, count):
    q = backend.q
    with pets.session() as s:
        held = s.query(Pug).where(name="a").one()
        held.age = 99  # pending change: kept, not overwritten
        with count(s, 2):  # the autoflush, then the SELECT
            pugs = s.query(Pug).from_sql(
                f"SELECT age, name, owner_id, id FROM {q('rel_pugs')} WHERE age >= :min ORDER BY name", {"min": 1}
            )
        assert [p.name for p in pugs] == ["a", "b", "c", "d"]
        assert pugs[0] is held and held.age == 99
        assert s.get(Pug, pugs[1].id) is pugs[1]
        with count(s, 1):  # the owner stand-ins load as one cohort
            assert pugs[1].owner.name == "Tom"


def test_from_sql_refuses_a_missing_key_column(pets, backend, count):
    q = backend.q
    with pets.session() as s:
        with pytest.raises(errors.QueryError, match=r"no key column 'id' \(PugMapper.id\)"):
            s.query(Pug).from_sql(f"SELECT name, age, owner_id FROM {q('rel_pugs')}")
        with count(s, 0):
            with pytest.raises(errors.QueryError, match="put conditions"):
                s.query(Pug).where(age=1).from_sql("SELECT 1")


# -- 5. joins and subqueries --------------------------------------------------------------------


def test_filter_through_a_to_one_path_joins_once(pets, count):
    with pets.session() as s:
        with count(s, 1):
            pugs = s.query(Pug).where(**{"owner.name": "Tom"}).where(path("owner.name").like("T%")).order_by("name").all()
        assert [p.name for p in pugs] == ["a", "b"]
        with count(s, 1):
            toys = s.query(Toy).where(path("pug.owner.name") == "Tom").order_by("pug.name", "name").all()
        assert [t.name for t in toys] == ["ball", "rope"]


def test_explicit_join_multiplies_rows_and_distinct_takes_them_out(pets, count):
    with pets.session() as s:
        with count(s, 1):
            owners = s.query(Owner).join("pugs").where(PugMapper.age < 10).order_by("name").all()
        assert [o.name for o in owners] == ["Ann", "Tom", "Tom"]
        assert owners[1] is owners[2]
        with count(s, 1):
            assert [o.name for o in s.query(Owner).join("pugs").distinct().order_by("name").all()] == ["Ann", "Tom"]
        with count(s, 1):
            rows = s.query(Owner).join("pugs.toys").order_by("name", "pugs.toys.name").values("name", "pugs.toys.name")
        assert rows == [("Ann", "bone"), ("Tom", "ball"), ("Tom", "rope")]
        with count(s, 0):
            with pytest.raises(errors.QueryError, match="not a to-one relation.*join it with query.join\\('pugs'\\)"):
                s.query(Owner).where(path("pugs.age") > 1)


def test_join_through_many_to_many(make_db, count):
    db = make_db(*LIBRARY)
    with db.session() as s:
        s.add_all([User("u1", favorites=[Book("B1"), Book("B2")]), User("u2")])
    with db.session() as s:
        with count(s, 1):
            rows = s.query(User).join("favorites").order_by("favorites.title").values("name", "favorites.title")
        assert rows == [("u1", "B1"), ("u1", "B2")]
        with count(s, 2):  # the users, then their HasOne profile (always loaded with them)
            assert [u.name for u in s.query(User).where(UserMapper.favorites.any(title="B2")).all()] == ["u1"]


def test_uncorrelated_and_correlated_subqueries(pets, count):
    with pets.session() as s:
        with count(s, 1):
            toms = s.query(Owner).where(OwnerMapper.name.like("T%"))
            pugs = s.query(Pug).where(PugMapper.owner_id.in_(toms.subquery("id"))).order_by("name").all()
        assert [p.name for p in pugs] == ["a", "b"]
        with count(s, 1):
            assert [p.name for p in s.query(Pug).where(PugMapper.owner_id.in_(toms)).order_by("name")] == ["a", "b"]
        with count(s, 1):
            assert s.query(Pug).where(PugMapper.owner_id.not_in(toms.subquery("id"))).count() == 1
        with count(s, 1):
            old = s.query(Pug).where(PugMapper.owner_id == outer(OwnerMapper.id), PugMapper.age > 4)
            assert [o.name for o in s.query(Owner).where(exists(old)).all()] == ["Ann"]
        with count(s, 1):
            # Self-correlation: pugs older than some other pug of the same owner.
            other = s.query(Pug).where(PugMapper.owner_id == outer(PugMapper.owner_id), PugMapper.age < outer(PugMapper.age))
            assert [p.name for p in s.query(Pug).where(exists(other)).all()] == ["b"]
        with count(s, 1):
            # No duplicated roots: each owner once however many pugs match.
            assert s.query(Owner).where(exists(s.query(Pug).where(PugMapper.owner_id == outer(OwnerMapper.id)))).count() == 2
        with count(s, 0):
            bad = s.query(Toy).where(ToyMapper.name == outer(OwnerMapper.name))
            with pytest.raises(errors.QueryError, match="OwnerMapper.name.*outer\\(\\) in the subquery of Toy query.*not a column of PugMapper"):
                s.query(Pug).where(exists(bad))
            with pytest.raises(errors.QueryError, match="no mapped attribute 'nope'"):
                toms.subquery("nope")


def test_join_path_and_subquery_refusals_before_sql(pets, count):
    with pets.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError, match=r"join\('pugs.nope'\): 'nope' is not a relation of Pug \(after pugs\)"):
                s.query(Owner).join("pugs.nope")
            with pytest.raises(errors.QueryError, match="join\\(\\) takes relation paths"):
                s.query(Owner).join(3)
            with pytest.raises(errors.QueryError, match="Pug has no mapped attribute 'nope'"):
                s.query(Pug).group_by("nope")
            with pytest.raises(errors.QueryError, match="Owner has no mapped attribute 'nick'"):
                s.query(Pug).where(path("owner.nick") == "x")
            with pytest.raises(errors.QueryError, match="Owner has no mapped attribute 'nick'"):
                s.query(Pug).where(**{"owner.nick": "x"})
            with pytest.raises(errors.QueryError, match="ToyMapper.name in order_by.*not a column of PugMapper"):
                s.query(Pug).order_by(ToyMapper.name)
            with pytest.raises(TypeError, match="exists\\(\\) takes a query"):
                exists(3)
            with pytest.raises(errors.QueryError, match="after\\(\\) got None"):
                s.query(Pug).order_by("age").after((None, 1))
            with pytest.raises(errors.QueryError, match="a query index takes an int >= 0"):
                s.query(Pug)["a"]
