"""session.merge() of detached objects and graphs, and add() of detached objects, on every backend."""

from __future__ import annotations

import attrs
import pytest

from mapper import BelongsTo, Column, Mapper, errors
from mapper import types as t
from tests import models
from tests.rel_models import PETS, Owner, Pug, Toy, rows


@attrs.define
class Doc:
    title: str
    version: int = 0
    id: int | None = None


class DocMapper(Mapper[Doc]):
    table = "merge_docs"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(50), nullable=False)
    version = Column(t.Integer, nullable=False, version=True)


@attrs.define
class Breed:
    name: str
    id: int | None = None


@attrs.define
class Dog:
    name: str
    breed: Breed | None = None
    id: int | None = None


class BreedMapper(Mapper[Breed]):
    table = "merge_breeds"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)


class DogMapper(Mapper[Dog]):
    table = "merge_dogs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    breed = BelongsTo(Breed, cascade=())  # no "save": merge() does not copy the breed


@pytest.fixture
def db(make_db):
    db = make_db(*PETS)
    with db.session() as s:
        s.add(Owner("Ann", pugs=[Pug("Rex", toys=[Toy("bone")]), Pug("Fido")]))
        s.add(Owner("Bob"))
    return db


def _detached(db):
    with db.session() as s:
        return s.query(Owner).where(name="Ann").include("pugs.toys").one()


def _graph(backend):
    return (
        rows(backend, "SELECT id, name FROM {rel_owners} ORDER BY id"),
        rows(backend, "SELECT id, name, owner_id FROM {rel_pugs} ORDER BY id"),
        rows(backend, "SELECT id, name, pug_id FROM {rel_toys} ORDER BY id"),
    )


def test_merge_copies_a_detached_graph_with_one_select_per_level(db, backend, count):
    ann = _detached(db)
    ann.name = "Anna"
    ann.pugs[0].name = "Rexy"
    ann.pugs[0].toys.append(Toy("ball"))
    del ann.pugs[1]  # Fido: an orphan, deleted (cascade "all")
    ann.pugs.append(Pug("Max"))
    with db.session() as s:
        with count(s, 3):  # the owner by key, then Owner.pugs and Pug.toys (which find the pugs and toys)
            managed = s.merge(ann)
        assert managed is not ann and s.identity(managed) == 1
        assert managed.name == "Anna" and [p.name for p in managed.pugs] == ["Rexy", "Max"]
        assert managed.pugs[1] is ann.pugs[1]  # the new pug itself was added
        s.flush()  # the flush sets the inverse sides of the new members
        assert managed.pugs[0].owner is managed and managed.pugs[0].toys[1].pug is managed.pugs[0]
        assert ann.name == "Anna" and ann.pugs[0] is not managed.pugs[0]  # the detached graph is left as it was
    assert _graph(backend) == (
        [(1, "Anna"), (2, "Bob")],
        [(1, "Rexy", 1), (3, "Max", 1)],
        [(1, "bone", 1), (2, "ball", 1)],
    )


def test_merge_finds_held_instances_in_the_identity_map_without_a_select(db, backend, count):
    ann = _detached(db)
    ann.pugs[1].age = 7
    with db.session() as s:
        held = s.query(Owner).where(name="Ann").include("pugs.toys").one()
        with count(s, 0):
            assert s.merge(ann) is held
            assert s.merge(held) is held  # a managed object is returned as it is
        assert held.pugs[1].age == 7
    assert rows(backend, "SELECT name, age FROM {rel_pugs} ORDER BY id") == [("Rex", 0), ("Fido", 7)]


def test_merge_leaves_relations_that_were_never_loaded_alone(db, backend, count):
    with db.session() as s:
        bob = s.query(Owner).where(name="Ann").one()  # pugs not loaded
    bob.name = "Ann B."
    with db.session() as s:
        with count(s, 1):
            managed = s.merge(bob)
        with count(s, 1):  # UPDATE only the name
            s.flush()
        assert [p.name for p in managed.pugs] == ["Rex", "Fido"]
    assert _graph(backend)[0] == [(1, "Ann B."), (2, "Bob")]
    assert len(_graph(backend)[1]) == 2


def test_merge_follows_save_relations_by_default(db, backend, count):
    with db.session() as s:
        toy = s.query(Toy).include("pug").one()
    toy.name = "chewed bone"
    toy.pug.name = "Rexy"  # Toy.pug has the default cascade, "save": the pug is copied too
    with db.session() as s:
        with count(s, 2):  # the toy, then its pug, by key
            managed = s.merge(toy)
        assert managed.pug.name == "Rexy" and s.identity(managed.pug) == 1
    assert rows(backend, "SELECT name FROM {rel_toys}") == [("chewed bone",)]
    assert rows(backend, "SELECT name FROM {rel_pugs} ORDER BY id") == [("Rexy",), ("Fido",)]


def test_merge_points_relations_without_save_at_managed_instances_without_copying(make_db, backend, count):
    db = make_db(BreedMapper, DogMapper)
    with db.session() as s:
        s.add(Breed("pug"))
        s.add(Breed("boxer"))
    with db.session() as s:
        pug, boxer = s.query(Breed).order_by("id").all()
        s.add(Dog("Rex", pug))
    with db.session() as s:
        rex = s.query(Dog).include("breed").one()
    with db.session() as s:
        boxer = s.get(Breed, 2)
    rex.breed = boxer
    boxer.name = "not copied"
    with db.session() as s:
        with count(s, 2):  # the dog, then the breed it now points at, by key
            managed = s.merge(rex)
        assert managed.breed.name == "boxer" and s.identity(managed.breed) == 2
    assert rows(backend, "SELECT name, breed_id FROM {merge_dogs}") == [("Rex", 2)]
    assert rows(backend, "SELECT name FROM {merge_breeds} ORDER BY id") == [("pug",), ("boxer",)]


def test_merge_adds_objects_without_a_key_and_objects_whose_row_is_gone(db, backend, count):
    ann = _detached(db)
    backend.raw(f"DELETE FROM {backend.q('rel_toys')}")
    with db.session() as s:
        cleo = Owner("Cleo", pugs=[Pug("Bella")])
        with count(s, 0):
            assert s.merge(cleo) is cleo
        s.flush()
        # The toy's row is gone, so merging inserts it again. Every relation here has "save",
        # so the whole detached graph is merged, a level at a time: the toy by key; its pug by
        # key and Pug.toys; the owner by key and Owner.pugs (which finds Fido); Fido's toys.
        with count(s, 6):
            assert s.merge(ann.pugs[0].toys[0]) is ann.pugs[0].toys[0]
    assert rows(backend, "SELECT name FROM {rel_owners} ORDER BY id") == [("Ann",), ("Bob",), ("Cleo",)]
    assert rows(backend, "SELECT id, name, pug_id FROM {rel_toys}") == [(1, "bone", 1)]


def test_merge_refuses_stand_ins_unmapped_objects_and_closed_sessions_before_sql(db, count):
    with db.session() as s:
        rex = s.query(Pug).where(name="Rex").one()
    with db.session() as s:
        with count(s, 0):
            with pytest.raises(errors.SessionError) as exc:
                s.merge(rex.owner)
            assert str(exc.value) == (
                "merge() needs a loaded object; this Owner is a stand-in for a relation that was never loaded"
            )
            with pytest.raises(errors.MapperError, match="^'Rex' is a str, which is not mapped in this Database"):
                s.merge("Rex")
    with pytest.raises(errors.SessionClosedError):
        s.merge(rex)


def test_merge_of_a_stale_versioned_object_raises_before_copying(make_db, backend, count):
    db = make_db(DocMapper)
    with db.session() as s:
        s.add(Doc("draft"))
    with db.session() as s:
        old = s.get(Doc, 1)
    with db.session() as s:
        s.get(Doc, 1).title = "edited elsewhere"
    old.title = "mine"
    with db.session() as s:
        with count(s, 1):
            with pytest.raises(errors.StaleDataError) as exc:
                s.merge(old)
        assert str(exc.value) == (
            "Doc with key 1 was changed since this copy was loaded (its version is 0, the database has 1); "
            "load it again and reapply the change"
        )
        assert s.get(Doc, 1).title == "edited elsewhere"
    old.version = 1
    with db.session() as s:
        s.merge(old)
    assert backend.raw(f"SELECT title, version FROM {backend.q('merge_docs')}") == [("mine", 2)]


# -- add() of a detached object -------------------------------------------------------------------


MERGE_HINT = (
    "was loaded by another session (closed since, or the object was expunged or let go); add() would "
    "INSERT its row again: use session.merge(obj), which copies its state onto this session's instance "
    "and returns it"
)


def test_add_of_an_object_a_closed_session_loaded_points_at_merge(db, count):
    ann = _detached(db)
    with db.session() as s:
        rex = s.query(Pug).where(name="Rex").one()  # nothing loaded but itself: stand-ins tell it
    with db.session() as s, count(s, 0):
        with pytest.raises(errors.SessionError) as exc:
            s.add(ann)
        assert str(exc.value) == f"Owner with key 1 {MERGE_HINT}"
        with pytest.raises(errors.SessionError, match="^Pug with key 1 was loaded by another session"):
            s.add_all([ann.pugs[0]])
        with pytest.raises(errors.SessionError, match="^Pug with key 1 was loaded by another session"):
            s.add(rex)


def test_add_of_a_detached_object_of_a_class_without_relations_is_refused_by_the_database(make_db, backend):
    db = make_db(models.OwnerMapper, models.PugMapper)
    with db.session() as s:
        s.add(models.Pug("Solo"))
    with db.session() as s:
        solo = s.query(models.Pug).one()
    solo.age = 4
    with db.session() as s:
        s.add(solo)  # nothing in the object tells it from a new one with a key
        with pytest.raises(errors.IntegrityError):
            s.flush()
        s.rollback()
        assert s.merge(solo) is not solo
    assert backend.raw(f"SELECT name, age FROM {backend.q('pugs')}") == [("Solo", 4)]


def test_add_of_an_expunged_object_points_at_merge_and_other_sessions_keep_their_error(db, count):
    with db.session() as s, db.session() as other:
        ann = s.query(Owner).where(name="Ann").one()
        with pytest.raises(errors.SessionError, match="is managed by another open session"):
            other.add(ann)
        s.expunge(ann)
        with pytest.raises(errors.SessionError, match="^Owner with key 1 was loaded by another session"):
            s.add(ann)
        assert s.merge(ann) is not ann


def test_add_of_a_hand_built_object_with_an_existing_key_is_refused_by_the_database(db, backend):
    with db.session() as s:
        s.add(Owner("Ann again", id=1))  # add() sends no SQL, so it cannot know the row exists
        with pytest.raises(errors.IntegrityError):
            s.flush()
        s.rollback()
    with db.session() as s:
        managed = s.merge(Owner("Ann again", id=1))
    assert managed.name == "Ann again"
    assert rows(backend, "SELECT id, name FROM {rel_owners} ORDER BY id") == [(1, "Ann again"), (2, "Bob")]


def test_a_pickled_graph_with_has_one_and_many_to_many_merges_back(make_db, backend, count):
    import pickle

    from tests.rel_models import LIBRARY, Book, Profile, User

    db = make_db(*LIBRARY)
    with db.session() as s:
        s.add(User("Ann", profile=Profile("hi"), favorites=[Book("Alpha"), Book("Beta")]))
        s.add(Book("Gamma"))
    with db.session() as s:
        ann = s.query(User).include("profile", "favorites").one()
        gamma = s.query(Book).where(title="Gamma").one()
    ann = pickle.loads(pickle.dumps(ann))  # a cache or another process in between
    gamma = pickle.loads(pickle.dumps(gamma))
    ann.profile.bio = "hello"
    del ann.favorites[0]
    ann.favorites.append(gamma)
    with db.session() as s:
        # The user with its HasOne profile (two statements), User.favorites (which finds Beta),
        # then Gamma by key.
        with count(s, 4):
            managed = s.merge(ann)
        assert [b.title for b in managed.favorites] == ["Beta", "Gamma"]
    assert rows(backend, "SELECT bio FROM {rel_profiles}") == [("hello",)]
    assert rows(
        backend,
        "SELECT b.title FROM {rel_user_favorites} f JOIN {rel_books} b ON b.id = f.book_id ORDER BY b.title",
    ) == [("Beta",), ("Gamma",)]


def test_a_set_collection_merges_by_identity_of_its_members(make_db, backend, count):
    from tests.rel_models import Post, PostMapper, Tag, TagMapper

    db = make_db(PostMapper, TagMapper)
    with db.session() as s:
        s.add(Post("p", tags={Tag("a"), Tag("b")}))
    with db.session() as s:
        post = s.query(Post).include("tags").one()
    (a,) = [x for x in post.tags if x.label == "a"]
    post.tags.discard(a)
    post.tags.add(Tag("c"))
    with db.session() as s:
        with count(s, 2):  # the post by key, then Post.tags (which finds b)
            managed = s.merge(post)
        assert isinstance(managed.tags, set) and managed is not post
        assert sorted(x.label for x in managed.tags) == ["b", "c"]
    assert rows(backend, "SELECT label, post_id FROM {rel_tags} ORDER BY label") == [("a", None), ("b", 1), ("c", 1)]
