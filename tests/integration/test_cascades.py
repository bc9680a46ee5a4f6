"""Cascades on every backend: save, delete, orphan, the default (detach or refuse), and the
database's ON DELETE rules, which the session relies on instead of loading children."""

from __future__ import annotations

import pytest

from mapper import BelongsTo, Column, ForeignKey, HasMany, Mapper, errors
from mapper import types as t
from tests.conftest import managed_states
from tests.rel_models import (
    LIBRARY,
    NO_RULE,
    PETS,
    Book,
    CityMapper,
    CountryMapper,
    Owner,
    OwnerMapper,
    Profile,
    Pug,
    Toy,
    ToyMapper,
    TownMapper,
    User,
    UserBook,
    fk_rules,
    rows,
)

# -- variants of the pet mappers: other cascades and other database rules ----------------------------


class OwnerSaveOnlyMapper(Mapper[Owner]):
    """No "delete" cascade: deleting an owner detaches its pugs."""

    table = "rel_owners"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    pugs = HasMany("Pug", foreign_key="owner_id", inverse="owner", order_by="id")


class OwnerNoSaveMapper(Mapper[Owner]):
    table = "rel_owners"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    pugs = HasMany("Pug", foreign_key="owner_id", inverse="owner", cascade="delete", order_by="id")


class PugNoRuleMapper(Mapper[Pug]):
    """A nullable key with no ON DELETE rule."""

    table = "rel_pugs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    age = Column(t.Integer, default=0)
    owner_id = Column(t.Integer, ForeignKey("rel_owners.id"))
    owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")
    toys = HasMany("Toy", inverse="pug", cascade="all", order_by="id")


class PugNotNullMapper(Mapper[Pug]):
    """A NOT NULL key with no ON DELETE rule."""

    table = "rel_pugs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    age = Column(t.Integer, default=0)
    owner_id = Column(t.Integer, ForeignKey("rel_owners.id"), nullable=False)
    owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")


class PugSetNullMapper(Mapper[Pug]):
    table = "rel_pugs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    age = Column(t.Integer, default=0)
    owner_id = Column(t.Integer, ForeignKey("rel_owners.id", on_delete="SET NULL"))
    owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")


def _pug_owners(backend):
    return rows(backend, "SELECT name, owner_id FROM {rel_pugs} ORDER BY id")


def _seed(db, *objs):
    with db.session() as s:
        s.add_all(objs)
    return objs


# -- save ------------------------------------------------------------------------------------------------


def test_save_cascade_adds_children_and_grandchildren(backend, make_db, count):
    db = make_db(*PETS)
    with db.session() as s:
        tom = Owner("Tom", pugs=[Pug("Cody", toys=[Toy("ball"), Toy("rope")]), Pug("Doug", toys=[Toy("bone")])])
        s.add(tom)
        with count(s, 3):  # one INSERT per table, parents first
            s.flush()
        cody, doug = tom.pugs
        assert s.get(Toy, cody.toys[1].id) is cody.toys[1]
        assert cody.toys[0].pug is cody
    assert rows(backend, "SELECT name FROM {rel_owners}") == [("Tom",)]
    assert _pug_owners(backend) == [("Cody", tom.id), ("Doug", tom.id)]
    assert rows(backend, "SELECT name, pug_id FROM {rel_toys} ORDER BY id") == [
        ("ball", cody.id),
        ("rope", cody.id),
        ("bone", doug.id),
    ]


def test_save_cascade_adds_new_parents_the_object_references(backend, make_db, count):
    db = make_db(*PETS)
    with db.session() as s:
        zed = Owner("Zed")
        ball = Toy("ball", pug=Pug("Cody", owner=zed))
        s.add(ball)  # the pug and the owner it references are new: both are inserted, parents first
        with count(s, 3):
            s.flush()
        cody = ball.pug
        assert zed.id is not None and cody.id is not None
        assert zed.pugs == [cody] and cody.toys == [ball]
    assert rows(backend, "SELECT id, name FROM {rel_owners}") == [(zed.id, "Zed")]
    assert _pug_owners(backend) == [("Cody", zed.id)]
    assert rows(backend, "SELECT name, pug_id FROM {rel_toys}") == [("ball", cody.id)]


def test_relation_without_save_cascade_refuses_new_objects(backend, make_db):
    db = make_db(OwnerNoSaveMapper, PugNoRuleMapper, ToyMapper)
    with db.session() as s:
        s.add(Owner("Tom", pugs=[Pug("Cody")]))
        with pytest.raises(errors.FlushError) as exc:
            s.flush()
        assert "Owner.pugs" in str(exc.value)
        assert "save" in str(exc.value)
        with pytest.raises(errors.PendingRollbackError):
            s.flush()
        s.rollback()
    assert rows(backend, "SELECT name FROM {rel_owners}") == []
    assert rows(backend, "SELECT name FROM {rel_pugs}") == []


# -- delete ------------------------------------------------------------------------------------------


def test_delete_cascade_removes_loaded_children_and_grandchildren(backend, make_db):
    db = make_db(OwnerMapper, PugNoRuleMapper, ToyMapper)
    tom, ann = _seed(
        db,
        Owner("Tom", pugs=[Pug("Cody", toys=[Toy("ball")]), Pug("Doug", toys=[Toy("bone"), Toy("rope")])]),
        Owner("Ann", pugs=[Pug("Rex", toys=[Toy("stick")])]),
    )
    with db.session() as s:
        owner = s.query(Owner).where(name="Tom").include("pugs.toys").one()
        pugs = list(owner.pugs)
        toys = [x for p in pugs for x in p.toys]
        s.delete(owner)
        s.flush()
        assert s.get(Owner, tom.id) is None
        assert all(s.get(Pug, p.id) is None for p in pugs)
        assert all(s.get(Toy, x.id) is None for x in toys)
    assert rows(backend, "SELECT name FROM {rel_owners}") == [("Ann",)]
    assert _pug_owners(backend) == [("Rex", ann.id)]
    assert rows(backend, "SELECT name FROM {rel_toys}") == [("stick",)]


def test_delete_cascade_loads_unloaded_children_when_the_database_does_not_cascade(backend, make_db, count):
    db = make_db(OwnerMapper, PugNoRuleMapper, ToyMapper)
    tom, ann = _seed(
        db,
        Owner("Tom", pugs=[Pug("Cody", toys=[Toy("ball")]), Pug("Doug", toys=[Toy("bone"), Toy("rope")])]),
        Owner("Ann", pugs=[Pug("Rex", toys=[Toy("stick")])]),
    )
    with db.session() as s:
        owner = s.get_one(Owner, tom.id)
        s.delete(owner)
        # One SELECT per relation level (pugs, toys), then one DELETE per table, children first.
        with count(s, 5):
            s.flush()
    assert rows(backend, "SELECT name FROM {rel_owners}") == [("Ann",)]
    assert _pug_owners(backend) == [("Rex", ann.id)]
    assert rows(backend, "SELECT name FROM {rel_toys}") == [("stick",)]


def test_database_cascade_deletes_unloaded_children_without_loading_them(backend, make_db, count):
    db = make_db(*PETS)
    tom, ann = _seed(
        db,
        Owner("Tom", pugs=[Pug("Cody", toys=[Toy("ball")]), Pug("Doug"), Pug("Fido")]),
        Owner("Ann", pugs=[Pug("Rex", toys=[Toy("bone")])]),
    )
    with db.session() as s:
        owner = s.get_one(Owner, tom.id)
        s.delete(owner)
        # ON DELETE CASCADE removes the pugs; their toys' key has no rule and Pug.toys cascades
        # "delete", so the session selects the doomed pugs' keys (no objects are built), deletes
        # their toys with one statement, then deletes the owner.
        with count(s, 3):
            s.flush()
        assert s.get(Owner, tom.id) is None
        assert all(st.mapping.cls is Owner for st in managed_states(s).values())  # no pug or toy was built
    assert rows(backend, "SELECT name FROM {rel_owners}") == [("Ann",)]
    assert _pug_owners(backend) == [("Rex", ann.id)]
    assert rows(backend, "SELECT name FROM {rel_toys}") == [("bone",)]


def test_database_cascade_alone_costs_one_statement(backend, make_db, count):
    from tests.models import Owner as PlainOwner, OwnerMapper as PlainOwnerMapper, PugMapper as PlainPugMapper

    db = make_db(PlainOwnerMapper, PlainPugMapper)
    with db.session() as s:
        tom = PlainOwner("Tom")
        s.add(tom)
        s.flush()
        s.execute("INSERT INTO pugs (name, age, owner_id) VALUES ('Cody', 1, :o), ('Doug', 2, :o)", {"o": tom.id})
    with db.session() as s:
        owner = s.get_one(PlainOwner, tom.id)
        s.delete(owner)
        with count(s, 1):  # the database deletes the pugs: nothing is loaded or selected
            s.flush()
    assert rows(backend, "SELECT count(*) FROM {pugs}") == [(0,)]


def test_database_cascade_marks_held_children_deleted(backend, make_db):
    db = make_db(*PETS)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody"), Pug("Doug")]), Owner("Ann", pugs=[Pug("Rex")]))
    with db.session() as s:
        owner = s.get_one(Owner, tom.id)
        held = s.query(Pug).order_by("id").all()  # loaded on their own; tom.pugs is never loaded
        s.delete(owner)
        s.flush()
        assert s.get(Pug, held[0].id) is None
        assert s.get(Pug, held[1].id) is None
        assert s.get(Pug, held[2].id) is held[2]
        assert [p.name for p in s.query(Pug).all()] == ["Rex"]
    assert _pug_owners(backend) == [("Rex", ann.id)]


def test_deleting_a_parent_known_only_by_reference(backend, make_db):
    """session.get() of an owner that loaded pugs refer to, then delete(): the row goes."""
    db = make_db(*PETS)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody"), Pug("Doug")]), Owner("Ann", pugs=[Pug("Rex")]))
    with db.session() as s:
        held = s.query(Pug).order_by("id").all()  # their owners are references not loaded yet
        owner = s.get_one(Owner, tom.id)
        assert owner is held[0].owner
        s.delete(owner)
        s.flush()
        assert s.get(Owner, tom.id) is None
        assert s.get(Pug, held[0].id) is None
        assert s.get(Pug, held[2].id) is held[2]
    assert rows(backend, "SELECT name FROM {rel_owners}") == [("Ann",)]
    assert _pug_owners(backend) == [("Rex", ann.id)]


def test_database_set_null_detaches_children(backend, make_db, count):
    db = make_db(OwnerSaveOnlyMapper, PugSetNullMapper)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody"), Pug("Doug")]), Owner("Ann", pugs=[Pug("Rex")]))
    with db.session() as s:
        owner = s.get_one(Owner, tom.id)
        s.delete(owner)
        with count(s, 1):  # ON DELETE SET NULL: nothing to load or update
            s.flush()
    assert _pug_owners(backend) == [("Cody", None), ("Doug", None), ("Rex", ann.id)]
    with db.session() as s:
        held = s.get_one(Owner, ann.id)
        rex = s.query(Pug).where(name="Rex").one()  # held.pugs is never loaded
        assert rex.owner is held
        s.delete(held)
        s.flush()
        assert rex.owner is None  # held children follow in memory
        assert s.get(Pug, rex.id) is rex
    assert _pug_owners(backend) == [("Cody", None), ("Doug", None), ("Rex", None)]


def test_delete_cascade_through_has_one_and_junctions(backend, make_db):
    db = make_db(*LIBRARY)
    b1, b2 = Book("B1"), Book("B2")
    ann, bob = _seed(
        db,
        User("Ann", profile=Profile("hi"), favorites=[b1, b2], read=[b1], books=[b2]),
        User("Bob", favorites=[b1]),
    )
    with db.session() as s:
        user = s.get_one(User, ann.id)
        s.delete(user)
        s.flush()
    assert rows(backend, "SELECT name FROM {rel_users}") == [("Bob",)]
    assert rows(backend, "SELECT bio FROM {rel_profiles}") == []
    assert rows(backend, "SELECT user_id, book_id FROM {rel_user_favorites}") == [(bob.id, b1.id)]
    assert rows(backend, "SELECT user_id FROM {rel_user_read}") == []
    assert rows(backend, "SELECT user_id FROM {rel_user_books}") == []
    assert rows(backend, "SELECT title FROM {rel_books} ORDER BY title") == [("B1",), ("B2",)]


# -- orphan ------------------------------------------------------------------------------------------


def test_orphan_cascade_deletes_a_child_removed_from_its_collection(backend, make_db):
    db = make_db(*PETS)
    (tom,) = _seed(db, Owner("Tom", pugs=[Pug("Cody", toys=[Toy("ball")]), Pug("Doug")]))
    with db.session() as s:
        owner = s.get_one(Owner, tom.id)
        cody = owner.pugs[0]  # lazily loaded
        owner.pugs.remove(cody)
        s.flush()
        assert s.get(Pug, cody.id) is None
        assert [p.name for p in owner.pugs] == ["Doug"]
    assert _pug_owners(backend) == [("Doug", tom.id)]
    assert rows(backend, "SELECT name FROM {rel_toys}") == []  # the orphan's own children went with it


def test_orphan_cascade_does_not_delete_a_child_moved_to_another_parent(backend, make_db):
    db = make_db(*PETS)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody"), Pug("Doug")]), Owner("Ann"))
    with db.session() as s:
        t_, a_ = s.query(Owner).order_by("name").include("pugs").all()[::-1]
        cody = t_.pugs[0]
        t_.pugs.remove(cody)
        a_.pugs.append(cody)
        s.flush()
        assert s.get(Pug, cody.id) is cody
        assert cody.owner is a_
    assert _pug_owners(backend) == [("Cody", ann.id), ("Doug", tom.id)]


def test_orphan_cascade_deletes_a_child_whose_reference_is_cleared(backend, make_db):
    """The same edit from the child's side: pug.owner = None (the relations are inverses)."""
    db = make_db(*PETS)
    (tom,) = _seed(db, Owner("Tom", pugs=[Pug("Cody", toys=[Toy("ball")]), Pug("Doug")]))
    with db.session() as s:
        cody = s.query(Pug).where(name="Cody").one()  # tom.pugs never loaded
        cody.owner = None
        s.flush()
        assert cody not in s or s.get(Pug, cody.id) is None
    assert _pug_owners(backend) == [("Doug", tom.id)]
    assert rows(backend, "SELECT name FROM {rel_toys}") == []


def test_child_moved_into_a_parent_deleted_in_the_same_flush_goes_with_it(backend, make_db):
    """With the "delete" cascade, a child moved into a deleted parent is one of its children."""
    db = make_db(*PETS)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody"), Pug("Doug")]), Owner("Ann"))
    with db.session() as s:
        cody = s.query(Pug).where(name="Cody").one()
        ann_ = s.get_one(Owner, ann.id)
        cody.owner = ann_
        rex = Pug("Rex", owner=ann_)  # a new child of the deleted parent, too
        s.add(rex)
        s.delete(ann_)
        s.flush()
        assert s.get(Pug, cody.id) is None and rex not in s
    assert _pug_owners(backend) == [("Doug", tom.id)]
    assert rows(backend, "SELECT name FROM {rel_owners}") == [("Tom",)]


def test_child_moved_into_a_deleted_parent_with_a_not_null_key_is_refused(backend, make_db):
    db = make_db(OwnerSaveOnlyMapper, PugNotNullMapper)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody")]), Owner("Ann"))
    with db.session() as s:
        cody = s.query(Pug).one()
        ann_ = s.get_one(Owner, ann.id)
        ann_.pugs.append(cody)
        s.delete(ann_)
        with pytest.raises(errors.FlushError) as e:
            s.flush()
        assert str(e.value) == (
            f"cannot delete Owner({ann.id}): Pug({cody.id}) was just linked to it through Owner.pugs, "
            "whose key is NOT NULL with no ON DELETE rule; link it to another parent, or give the "
            "relation cascade='delete' (or 'all')"
        )
        s.rollback()
    assert _pug_owners(backend) == [("Cody", tom.id)]
    assert rows(backend, "SELECT name FROM {rel_owners} ORDER BY id") == [("Tom",), ("Ann",)]


# -- the default: detach, or refuse when the key cannot be NULL -------------------------------------------


def test_default_sets_loaded_and_unloaded_children_keys_to_null(backend, make_db):
    db = make_db(OwnerSaveOnlyMapper, PugNoRuleMapper, ToyMapper)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody"), Pug("Doug")]), Owner("Ann", pugs=[Pug("Rex")]))
    with db.session() as s:
        owner = s.query(Owner).where(name="Tom").include("pugs").one()
        cody, doug = owner.pugs
        s.delete(owner)
        s.flush()
        assert cody.owner is None and doug.owner is None
        assert s.get(Pug, cody.id) is cody
    assert _pug_owners(backend) == [("Cody", None), ("Doug", None), ("Rex", ann.id)]
    with db.session() as s:
        owner = s.get_one(Owner, ann.id)  # pugs not loaded: a set-based UPDATE detaches them
        s.delete(owner)
        s.flush()
    assert rows(backend, "SELECT name FROM {rel_owners}") == []
    assert _pug_owners(backend) == [("Cody", None), ("Doug", None), ("Rex", None)]


@pytest.mark.parametrize("loaded", [True, False], ids=["loaded", "unloaded"])
def test_default_with_not_null_key_and_no_rule_is_a_flush_error(backend, make_db, loaded):
    db = make_db(OwnerSaveOnlyMapper, PugNotNullMapper)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody")]), Owner("Ann"))
    with db.session() as s:
        owner = s.get_one(Owner, tom.id)
        if loaded:
            s.load(owner, "pugs")
        other = s.get_one(Owner, ann.id)
        other.name = "Anna"  # written before the failure, if anything is: must be undone
        s.delete(owner)
        with pytest.raises(errors.FlushError) as exc:
            s.flush()
        message = str(exc.value)
        assert "Owner.pugs" in message
        assert "NOT NULL" in message
        with pytest.raises(errors.PendingRollbackError):
            s.get(Owner, tom.id)
        s.rollback()
        assert s.get(Owner, tom.id) is owner
    assert rows(backend, "SELECT name FROM {rel_owners} ORDER BY id") == [("Tom",), ("Ann",)]
    assert _pug_owners(backend) == [("Cody", tom.id)]


def test_default_with_not_null_key_deletes_a_parent_without_children(backend, make_db):
    db = make_db(OwnerSaveOnlyMapper, PugNotNullMapper)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody")]), Owner("Ann"))
    with db.session() as s:
        s.delete(s.get_one(Owner, ann.id))
    assert rows(backend, "SELECT name FROM {rel_owners}") == [("Tom",)]


# -- the schema carries the database rules ---------------------------------------------------------------


def test_on_delete_and_on_update_rules_are_emitted(backend, make_db):
    make_db(*PETS, *LIBRARY)
    pugs = fk_rules(backend, "rel_pugs")
    assert pugs[("owner_id",)][:2] == ("rel_owners", "CASCADE")
    assert fk_rules(backend, "rel_toys")[("pug_id",)][1] in NO_RULE
    books = fk_rules(backend, "rel_user_books")
    assert books[("user_id",)][:2] == ("rel_users", "CASCADE")
    assert books[("book_id",)][:2] == ("rel_books", "CASCADE")


def test_set_null_and_on_update_rules_are_emitted(backend, make_db):
    make_db(OwnerSaveOnlyMapper, PugSetNullMapper, CountryMapper, CityMapper, TownMapper)
    assert fk_rules(backend, "rel_pugs")[("owner_id",)][:2] == ("rel_owners", "SET NULL")
    city = fk_rules(backend, "rel_cities")[("country_code",)]
    assert city[0] == "rel_countries"
    assert city[1] in NO_RULE
    assert city[2] == "CASCADE"
    assert fk_rules(backend, "rel_towns")[("country_code",)][2] == "CASCADE"


def test_not_null_key_with_database_cascade_deletes_in_one_statement(backend, make_db, count):
    """A NOT NULL key is fine to delete under when the database cascades it."""

    class PugCascadeNotNullMapper(Mapper[Pug]):
        table = "rel_pugs"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(100), nullable=False)
        owner_id = Column(t.Integer, ForeignKey("rel_owners.id", on_delete="CASCADE"), nullable=False)
        owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")

    db = make_db(OwnerSaveOnlyMapper, PugCascadeNotNullMapper)
    tom, ann = _seed(db, Owner("Tom", pugs=[Pug("Cody")]), Owner("Ann", pugs=[Pug("Rex")]))
    with db.session() as s:
        s.delete(s.get_one(Owner, tom.id))
        with count(s, 1):
            s.flush()
    assert _pug_owners(backend) == [("Rex", ann.id)]


def test_user_book_association_rows_go_with_their_user(backend, make_db):
    db = make_db(*LIBRARY)
    (ann,) = _seed(db, User("Ann", books=[Book("B1")]))
    with db.session() as s:
        u = s.query(User).include("user_books").one()
        ub = u.user_books[0]
        s.delete(u)
        s.flush()
        assert s.get(UserBook, ub.id) is None
    assert rows(backend, "SELECT id FROM {rel_user_books}") == []
    assert rows(backend, "SELECT title FROM {rel_books}") == [("B1",)]
