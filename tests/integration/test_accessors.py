"""session.related(obj, name): Sequelize-style accessors, on loaded and unloaded relations."""

from __future__ import annotations

import pytest

from mapper import errors
from tests.rel_models import LIBRARY, PETS, Book, Owner, OwnerMapper, Pug, User, rows


def _seed_pets(db):
    with db.session() as s:
        tom = Owner("Tom", pugs=[Pug("Cody", 1), Pug("Doug", 2)])
        ann = Owner("Ann")
        s.add_all([tom, ann])
    return tom.id, ann.id


def test_collection_reads_cost_one_statement_and_load_nothing(backend, make_db, count):
    db = make_db(*PETS)
    tom_id, _ = _seed_pets(db)
    with db.session() as s:
        tom = s.get_one(Owner, tom_id)
        pugs = s.related(tom, "pugs")
        with count(s, 1):
            assert pugs.count() == 2
        with count(s, 1):
            assert [p.name for p in pugs.all()] == ["Cody", "Doug"]
        cody = s.query(Pug).where(name="Cody").one()
        with count(s, 1):
            assert pugs.has(cody) is True
        # all() does not mark the collection loaded: touching it still loads (once).
        with count(s, 1):
            assert [p.name for p in tom.pugs] == ["Cody", "Doug"]


def test_collection_writes_are_recorded_and_flushed(backend, make_db, count):
    db = make_db(*PETS)
    tom_id, ann_id = _seed_pets(db)
    with db.session() as s:
        ann = s.get_one(Owner, ann_id)
        tom = s.get_one(Owner, tom_id)
        cody = s.query(Pug).where(name="Cody").one()
        acc = s.related(ann, "pugs")
        with count(s, 0):
            acc.add(cody)  # recorded, written at the next flush
        with count(s, 2):  # autoflush (UPDATE) + count
            assert acc.count() == 1
        assert cody.owner is ann
        rex = acc.create(name="Rex", age=4)
        assert isinstance(rex, Pug) and rex.id is None and rex in s
        with count(s, 2):  # INSERT + count
            assert acc.count() == 2
        acc.remove(cody)  # the orphan cascade deletes it
        s.flush()
        assert s.get(Pug, cody.id) is None
        s.related(tom, "pugs").set([])  # unloaded: loaded first, then emptied (orphans deleted)
    assert rows(backend, "SELECT name, owner_id FROM {rel_pugs} ORDER BY id") == [("Rex", ann_id)]


def test_loaded_collection_is_updated_at_once(backend, make_db, count):
    db = make_db(*PETS)
    tom_id, _ = _seed_pets(db)
    with db.session() as s:
        tom = s.query(Owner).where(id=tom_id).include("pugs").one()
        rex = Pug("Rex")
        with count(s, 0):
            s.related(tom, "pugs").add(rex)
        assert [p.name for p in tom.pugs] == ["Cody", "Doug", "Rex"]
        with count(s, 0):
            s.related(tom, "pugs").remove(tom.pugs[0])
        assert [p.name for p in tom.pugs] == ["Doug", "Rex"]
    assert rows(backend, "SELECT name FROM {rel_pugs} ORDER BY name") == [("Doug",), ("Rex",)]


def test_many_to_many_accessors(backend, make_db, count):
    db = make_db(*LIBRARY)
    with db.session() as s:
        ann = User("ann", favorites=[Book("Dune")])
        s.add_all([ann, Book("Emma")])
    with db.session() as s:
        ann = s.query(User).where(name="ann").one()
        dune = s.query(Book).where(title="Dune").one()
        emma = s.query(Book).where(title="Emma").one()
        fav = s.related(ann, "favorites")
        with count(s, 1):
            assert fav.has(emma) is False
        fav.add(emma)
        with count(s, 2):  # INSERT into the junction + count
            assert fav.count() == 2
        fav.remove(dune)
        with count(s, 2):  # DELETE from the junction + select
            assert [b.title for b in fav.all()] == ["Emma"]
        books = s.related(ann, "books")  # through the association class
        books.add(dune)
        with count(s, 2):  # is the pair linked already? no: the association row, with its payload default
            s.flush()
    assert rows(backend, "SELECT rating FROM {rel_user_books}") == [(3,)]
    assert rows(backend, "SELECT count(*) FROM {rel_user_favorites}") == [(1,)]


def test_reference_accessors(backend, make_db, count):
    db = make_db(*PETS)
    tom_id, ann_id = _seed_pets(db)
    with db.session() as s:
        cody = s.query(Pug).where(name="Cody").one()
        owner = s.related(cody, "owner")
        with count(s, 1):  # the unloaded reference loads
            assert owner.get().name == "Tom"
        ann = s.get_one(Owner, ann_id)
        owner.set(ann)
        s.flush()
        zed = owner.create(name="Zed")
        assert cody.owner is zed
    assert rows(backend, "SELECT o.name FROM {rel_pugs} p JOIN {rel_owners} o ON o.id = p.owner_id WHERE p.name = 'Cody'") == [("Zed",)]


def test_accessor_errors_name_the_problem(backend, make_db, count):
    db = make_db(*PETS)
    tom_id, _ = _seed_pets(db)
    with db.session() as s:
        tom = s.get_one(Owner, tom_id)
        with count(s, 0):
            with pytest.raises(errors.QueryError, match=r"Owner has no relation 'dogs'.*'pugs'"):
                s.related(tom, "dogs")
            with pytest.raises(errors.QueryError, match=r"Owner\.pugs takes Pug objects"):
                s.related(tom, "pugs").add(Owner("x"))
            with pytest.raises(errors.SessionError, match="not in this session"):
                s.related(Owner("stranger"), "pugs")
            with pytest.raises(errors.QueryError, match=r"create\(\)"):
                s.related(tom, "pugs").create(nickname="x")
    _ = OwnerMapper
