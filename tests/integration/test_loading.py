"""Loading relations on every backend: include, nested paths, session.load for each relation kind,
cohort lazy loading, lazy="raise", closed sessions and bad paths, with exact query counts."""

from __future__ import annotations

import pytest

from mapper import Column, HasMany, Mapper, errors
from mapper import types as t
from tests.rel_models import (
    LIBRARY,
    PETS,
    SHOP,
    Book,
    Item,
    Order,
    Owner,
    OwnerMapper,
    Product,
    Profile,
    Pug,
    PugMapper,
    Toy,
    ToyMapper,
    User,
    UserBook,
)


def _seed(db, *objs):
    with db.session() as s:
        s.add_all(objs)
    return objs


def _owners(n, pugs_per_owner=2, every=3):
    """n owners; each one but every third has pugs; each pug has one toy."""
    return [
        Owner(
            f"o{i:04d}",
            pugs=[] if i % every == 0 else [Pug(f"o{i:04d}-p{j}", age=j, toys=[Toy(f"t{i}-{j}")]) for j in range(pugs_per_owner)],
        )
        for i in range(n)
    ]


def _shop(n_orders=40, items_per_order=3, n_products=7):
    products = [Product(f"prod{k}") for k in range(n_products)]
    orders = [
        Order(f"ord{i:04d}", items=[Item(qty=j + 1, product=products[(i + j) % n_products]) for j in range(items_per_order)])
        for i in range(n_orders)
    ]
    return products, orders


# -- include ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [3, 1000])
def test_include_costs_one_query_per_segment_whatever_the_size(backend, make_db, count, n):
    db = make_db(*PETS)
    _seed(db, *_owners(n))
    with db.session() as s:
        with count(s, 3):
            owners = s.query(Owner).order_by("name").include("pugs.toys").all()
        with count(s, 0):
            assert len(owners) == n
            for i, o in enumerate(owners):
                if i % 3 == 0:
                    assert o.pugs == []  # parents without rows get an empty collection
                else:
                    assert [p.name for p in o.pugs] == [f"o{i:04d}-p0", f"o{i:04d}-p1"]
                    assert all(p.owner is o for p in o.pugs)
                    assert [x.name for x in o.pugs[1].toys] == [f"t{i}-1"]
                    assert o.pugs[1].toys[0].pug is o.pugs[1]


def test_nested_include_through_belongs_to(backend, make_db, count):
    db = make_db(*SHOP)
    products, orders = _shop(n_orders=300)
    _seed(db, *orders)
    with db.session() as s:
        with count(s, 3):
            loaded = s.query(Order).order_by("number").include("items.product").all()
        with count(s, 0):
            assert len(loaded) == 300
            for i, o in enumerate(loaded):
                assert [(it.qty, it.product.name) for it in o.items] == [
                    (j + 1, f"prod{(i + j) % 7}") for j in range(3)
                ]
            # One object per product row, shared by every item that references it.
            by_name = {}
            for o in loaded:
                for it in o.items:
                    assert by_name.setdefault(it.product.name, it.product) is it.product
            assert len(by_name) == 7


def test_include_with_limit_offset_and_order_by(backend, make_db, count):
    db = make_db(*PETS)
    _seed(db, *_owners(10))
    with db.session() as s:
        with count(s, 2):
            page = s.query(Owner).order_by("-name").limit(3).offset(2).include("pugs").all()
        assert [o.name for o in page] == ["o0007", "o0006", "o0005"]
        with count(s, 0):
            assert [[p.name for p in o.pugs] for o in page] == [
                ["o0007-p0", "o0007-p1"],
                [],
                ["o0005-p0", "o0005-p1"],
            ]
        with count(s, 2):
            first = s.query(Owner).order_by("name").include("pugs").first()
        assert first.name == "o0000" and first.pugs == []


def test_include_keeps_held_objects_and_their_changes(backend, make_db, count):
    db = make_db(*PETS)
    _seed(db, *_owners(4))
    with db.session(autoflush=False) as s:
        held = s.query(Pug).where(name="o0001-p0").one()
        held.age = 42  # pending change, not flushed
        with count(s, 2):
            o1 = s.query(Owner).where(name="o0001").include("pugs").one()
        assert o1.pugs[0] is held
        assert held.age == 42
        assert held.owner is o1
        s.rollback()


def test_include_of_an_unknown_relation_raises_before_any_sql(backend, make_db, count):
    db = make_db(*PETS)
    _seed(db, *_owners(2))
    with db.session() as s:
        owner = s.query(Owner).first()
        with count(s, 0):
            with pytest.raises(errors.QueryError) as exc:
                s.query(Owner).include("nonexistent")
            assert "nonexistent" in str(exc.value)
            assert "pugs" in str(exc.value)  # the relations that do exist
            with pytest.raises(errors.QueryError) as exc:
                s.query(Owner).include("pugs.nonexistent")
            assert "nonexistent" in str(exc.value) and "Pug" in str(exc.value)
            with pytest.raises(errors.QueryError):
                s.query(Owner).include("name")  # a column, not a relation
            with pytest.raises(errors.QueryError):
                s.load([owner], "pugs.bogus")


# -- session.load for the four kinds --------------------------------------------------------------------


def test_load_has_many_and_belongs_to_paths(backend, make_db, count):
    db = make_db(*PETS)
    _seed(db, *_owners(600))
    with db.session() as s:
        with count(s, 1):
            owners = s.query(Owner).order_by("name").all()
        with count(s, 2):
            s.load(owners, "pugs.toys")
        with count(s, 0):
            assert sum(len(o.pugs) for o in owners) == 800
            assert owners[1].pugs[0].toys[0].name == "t1-0"
    with db.session() as s:
        with count(s, 1):
            toys = s.query(Toy).order_by("name").all()
        with count(s, 2):  # toys -> pug -> owner: references, one query per segment
            s.load(toys, "pug.owner")
        with count(s, 0):
            assert all(x.pug.owner.name + "-p" in x.pug.name for x in toys)
            assert len({id(x.pug.owner) for x in toys}) == 400


def test_load_skips_targets_already_in_the_identity_map(backend, make_db, count):
    db = make_db(*PETS)
    _seed(db, *_owners(30))
    with db.session() as s:
        with count(s, 1):
            owners = s.query(Owner).all()
        with count(s, 1):
            pugs = s.query(Pug).all()
        with count(s, 0):  # every owner is held already
            s.load(pugs, "owner")
            assert all(p.owner in owners for p in pugs)
    with db.session(autoflush=False) as s:
        some = s.query(Owner).where(OwnerMapper.name.in_(["o0001", "o0002"])).order_by("name").all()
        some[0].name = "changed"  # a pending change the load must not overwrite
        pugs = s.query(Pug).all()
        with count(s, 1):  # only the owners not held are read
            s.load(pugs, "owner")
        assert some[0].name == "changed"
        assert {p.owner.name for p in pugs if p.name.startswith("o0001")} == {"changed"}
        with count(s, 0):
            s.load(pugs, "owner")  # loaded now: nothing left to read
        s.rollback()


def test_load_has_one_and_belongs_to_many(backend, make_db, count):
    db = make_db(*LIBRARY)
    books = [Book(f"B{k}") for k in range(5)]
    users = [
        User(
            f"u{i:03d}",
            profile=Profile(f"bio {i}") if i % 2 else None,
            favorites=[books[i % 5], books[(i + 1) % 5]],
            books=[books[(i + 2) % 5]] if i % 3 else [],
        )
        for i in range(60)
    ]
    _seed(db, *users)
    with db.session() as s:
        with count(s, 2):  # users, and their HasOne profiles with them
            loaded = s.query(User).order_by("name").all()
        with count(s, 0):
            s.load(loaded, "profile")  # already loaded with the users
            assert [u.profile.bio if u.profile else None for u in loaded[:3]] == [None, "bio 1", None]
        with count(s, 3):  # one query per segment, through the junction table and the association class
            s.load(loaded, "favorites.fans", "books")
        with count(s, 0):
            assert [b.title for b in loaded[0].favorites] == ["B0", "B1"]
            assert [b.title for b in loaded[7].favorites] == ["B2", "B3"]
            assert loaded[0].books == []
            assert [b.title for b in loaded[1].books] == ["B3"]
            b0 = loaded[0].favorites[0]
            assert sorted(u.name for u in b0.fans) == sorted(f"u{i:03d}" for i in range(60) if i % 5 in (0, 4))
            assert all(u in loaded for u in b0.fans)
    with db.session() as s:
        with count(s, 1):
            links = s.query(UserBook).all()
        with count(s, 3):  # user, the users' profiles (a HasOne, loaded with them), book
            s.load(links, "user.profile", "book")
        with count(s, 0):
            assert all(ub.book.title for ub in links)
            assert {ub.user.name for ub in links} == {f"u{i:03d}" for i in range(60) if i % 3}


def test_load_gives_empty_collections_to_parents_without_rows(backend, make_db, count):
    db = make_db(*LIBRARY)
    _seed(db, User("lonely"), User("reader", favorites=[Book("B")]))
    with db.session() as s:
        lonely, reader = s.query(User).order_by("name").all()
        with count(s, 2):
            s.load([lonely, reader], "favorites", "user_books")
        with count(s, 0):
            assert lonely.favorites == [] and lonely.user_books == []
            assert [b.title for b in reader.favorites] == ["B"]


# -- cohort lazy loading -----------------------------------------------------------------------------------


def test_lazy_collection_loads_for_the_whole_cohort(backend, make_db, count):
    db = make_db(*PETS)
    _seed(db, *_owners(1000))
    with db.session() as s:
        with count(s, 2):
            owners = s.query(Owner).order_by("name").all()
            total = sum(len(o.pugs) for o in owners)
        assert total == 2 * sum(1 for i in range(1000) if i % 3)
        with count(s, 0):
            assert owners[0].pugs == []
            assert owners[1].pugs[0].owner is owners[1]


def test_lazy_references_load_for_the_whole_cohort(backend, make_db, count):
    db = make_db(*PETS)
    _seed(db, *_owners(300))
    with db.session() as s:
        with count(s, 2):
            pugs = s.query(Pug).all()
            names = {p.owner.name for p in pugs}
        assert len(names) == 200


def test_lazy_walk_order_items_product_costs_one_query_per_level(backend, make_db, count):
    db = make_db(*SHOP)
    products, orders = _shop(n_orders=500)
    _seed(db, *orders)
    with db.session() as s:
        with count(s, 3):
            seen = []
            for o in s.query(Order).order_by("number").all():
                for it in o.items:
                    seen.append((o.number, it.product.name))
        assert len(seen) == 1500
        assert seen[:3] == [("ord0000", "prod0"), ("ord0000", "prod1"), ("ord0000", "prod2")]


# -- lazy="raise" ------------------------------------------------------------------------------------------


def _check_raise(s, owner, pug):
    with pytest.raises(errors.RelationNotLoadedError) as exc:
        len(owner.pugs)
    assert "include('pugs')" in str(exc.value)
    with pytest.raises(errors.RelationNotLoadedError) as exc:
        pug.owner.name  # noqa: B018
    assert "include('owner')" in str(exc.value)


def test_database_lazy_raise(backend, make_db, count):
    db = make_db(*PETS, lazy="raise")
    _seed(db, *_owners(3))
    with db.session() as s:
        owner = s.query(Owner).where(name="o0001").one()
        pug = s.query(Pug).where(name="o0002-p0").one()
        with count(s, 0):
            _check_raise(s, owner, pug)
        with count(s, 2):  # explicit loads still work
            s.load(owner, "pugs")
            s.load(pug, "owner")
        assert [p.name for p in owner.pugs] == ["o0001-p0", "o0001-p1"]
        assert pug.owner.name == "o0002"
    with db.session(lazy="select") as s:  # the session may turn lazy loading back on
        owner = s.query(Owner).where(name="o0001").one()
        assert len(owner.pugs) == 2


def test_session_lazy_raise(backend, make_db, count):
    db = make_db(*PETS)
    _seed(db, *_owners(3))
    with db.session(lazy="raise") as s:
        owner = s.query(Owner).where(name="o0001").one()
        pug = s.query(Pug).where(name="o0002-p0").one()
        with count(s, 0):
            _check_raise(s, owner, pug)
        with count(s, 2):
            owner = s.query(Owner).where(name="o0002").include("pugs").one()
        assert [p.name for p in owner.pugs] == ["o0002-p0", "o0002-p1"]
    with db.session() as s:  # other sessions are unaffected
        owner = s.query(Owner).where(name="o0001").one()
        assert len(owner.pugs) == 2


def test_relation_lazy_raise(backend, make_db, count):
    class StrictOwnerMapper(Mapper[Owner]):
        table = "rel_owners"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(100), nullable=False)
        pugs = HasMany("Pug", foreign_key="owner_id", inverse="owner", cascade="all", order_by="id", lazy="raise")

    db = make_db(StrictOwnerMapper, PugMapper, ToyMapper)
    _seed(db, *_owners(3))
    with db.session() as s:
        owner = s.query(Owner).where(name="o0001").one()
        with count(s, 0):
            with pytest.raises(errors.RelationNotLoadedError) as exc:
                len(owner.pugs)
        assert "include('pugs')" in str(exc.value)
        pug = s.query(Pug).where(name="o0002-p0").one()
        with count(s, 1):  # other relations still load lazily
            assert [x.name for x in pug.toys] == ["t2-0"]
        with count(s, 1):
            assert pug.owner.name == "o0002"


# -- after the session is closed ---------------------------------------------------------------------------


def test_unloaded_relation_after_close_names_the_include(backend, make_db):
    db = make_db(*PETS)
    _seed(db, *_owners(3))
    with db.session() as s:
        owner = s.query(Owner).where(name="o0001").one()
        included = s.query(Owner).where(name="o0002").include("pugs").one()
        pug = s.query(Pug).where(name="o0002-p0").one()
        toy = s.query(Toy).where(name="t1-0").one()
    # Loaded relations stay usable.
    assert [p.name for p in included.pugs] == ["o0002-p0", "o0002-p1"]
    assert pug.owner is included
    with pytest.raises(errors.RelationNotLoadedError) as exc:
        list(owner.pugs)
    assert "include('pugs')" in str(exc.value)
    assert "closed" in str(exc.value)
    with pytest.raises(errors.RelationNotLoadedError) as exc:
        len(pug.toys)
    assert "include('toys')" in str(exc.value)
    # A reference that was never loaded is not silently empty either.
    with pytest.raises(errors.RelationNotLoadedError) as exc:
        toy.pug.name  # noqa: B018
    assert "include('pug')" in str(exc.value)
