"""Relation filters (has/any as EXISTS) and ordering through to-one relations (LEFT JOIN)."""

from __future__ import annotations

import pytest

from mapper import errors
from tests.rel_models import (
    LIBRARY,
    PETS,
    Book,
    BookMapper,
    Category,
    CategoryMapper,
    Owner,
    OwnerMapper,
    Pug,
    PugMapper,
    User,
    UserMapper,
)


@pytest.fixture
def pets(make_db):
    db = make_db(*PETS)
    with db.session() as s:
        s.add_all([
            Owner("Tom", pugs=[Pug("a", 1), Pug("b", 3)]),
            Owner("Ann", pugs=[Pug("c", 5)]),
            Owner("Zed"),
        ])
    return db


def test_has_and_any_filter_without_duplicating_roots(pets, count):
    with pets.session() as s:
        with count(s, 1):
            assert [p.name for p in s.query(Pug).where(PugMapper.owner.has(name="Tom")).order_by("name").all()] == ["a", "b"]
        with count(s, 1):
            # Tom has two pugs older than 0: still one Tom.
            assert [o.name for o in s.query(Owner).where(OwnerMapper.pugs.any(PugMapper.age > 0)).order_by("name").all()] == ["Ann", "Tom"]
        with count(s, 1):
            assert [o.name for o in s.query(Owner).where(~OwnerMapper.pugs.any()).all()] == ["Zed"]
        with count(s, 1):
            q = s.query(Owner).where(OwnerMapper.pugs.any(age=1) | OwnerMapper.name.like("Z%")).order_by("name")
            assert [o.name for o in q.all()] == ["Tom", "Zed"]
        with count(s, 1):
            assert s.query(Owner).where(OwnerMapper.pugs.any(PugMapper.age >= 3)).count() == 2


def test_order_by_a_to_one_column(pets, count):
    with pets.session() as s:
        with count(s, 1):
            assert [p.name for p in s.query(Pug).order_by("-owner.name", "name").all()] == ["a", "b", "c"]
        with count(s, 1):
            page = s.query(Pug).order_by("owner.name", "name").limit(2).all()
        assert [p.name for p in page] == ["c", "a"]
        with count(s, 1):
            assert s.query(Pug).order_by("owner.name").limit(2).count() == 2


def test_many_to_many_and_self_reference_filters(make_db, count):
    db = make_db(*LIBRARY, CategoryMapper)
    with db.session() as s:
        s.add_all([User("u", favorites=[Book("B1"), Book("B2")]), User("v")])
        s.add(Category("root", children=[Category("x", children=[Category("x1")]), Category("y")]))
    with db.session() as s:
        with count(s, 2):  # the users, then their HasOne profiles (always loaded with their parents)
            assert [u.name for u in s.query(User).where(UserMapper.favorites.any(title="B1")).all()] == ["u"]
        with count(s, 1):
            assert [b.title for b in s.query(Book).where(BookMapper.fans.any(name="u")).order_by("title").all()] == ["B1", "B2"]
        with count(s, 1):
            assert [c.name for c in s.query(Category).where(CategoryMapper.parent.has(name="root")).order_by("name").all()] == ["x", "y"]
        with count(s, 1):
            nested = CategoryMapper.parent.has(CategoryMapper.parent.has(name="root"))
            assert [c.name for c in s.query(Category).where(nested).all()] == ["x1"]


def test_bad_relation_filters_are_refused_before_sql(pets, count):
    with pets.session() as s:
        with count(s, 0):
            with pytest.raises(errors.QueryError, match="is not a relation of Pug"):
                s.query(Pug).where(OwnerMapper.pugs.any())
            with pytest.raises(errors.QueryError, match="not a column of PugMapper"):
                s.query(Pug).where(OwnerMapper.name == "Tom")
            with pytest.raises(errors.QueryError, match="no mapped attribute 'nope'"):
                s.query(Pug).where(PugMapper.owner.has(nope=1))
            with pytest.raises(errors.QueryError, match="not a to-one relation"):
                s.query(Owner).order_by("pugs.name")
