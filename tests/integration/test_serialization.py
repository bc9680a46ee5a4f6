"""Serialization of loaded graphs on every backend: pickle, copy, plain collections, attrs.asdict, to_dict."""

from __future__ import annotations

import copy
import datetime
import decimal
import json
import pickle
import uuid

import attr
import attrs
import pytest

from mapper import BelongsTo, Column, HasMany, Mapper, errors, to_dict
from mapper import types as t
from tests.rel_models import Post, PostMapper, Tag, TagMapper


@attrs.define
class Shelter:
    name: str
    founded: datetime.date
    budget: decimal.Decimal
    ref: uuid.UUID
    dogs: list[Dog] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Dog:
    name: str
    born: datetime.datetime
    shelter: Shelter | None = None
    toys: list[Chew] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Chew:
    name: str
    dog: Dog | None = None
    id: int | None = None


class ShelterMapper(Mapper[Shelter]):
    table = "ser_shelters"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    founded = Column(t.Date, nullable=False)
    budget = Column(t.Numeric(10, 2), nullable=False)
    ref = Column(t.Uuid, nullable=False)
    dogs = HasMany("Dog", inverse="shelter", cascade="all", order_by="id")


class DogMapper(Mapper[Dog]):
    table = "ser_dogs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    born = Column(t.DateTime, nullable=False)
    shelter = BelongsTo(Shelter, inverse="dogs")
    toys = HasMany("Chew", inverse="dog", cascade="all", order_by="id")


class ChewMapper(Mapper[Chew]):
    table = "ser_chews"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    dog = BelongsTo(Dog, inverse="toys")


MAPPERS = (ShelterMapper, DogMapper, ChewMapper)
REF = uuid.UUID("12345678-1234-5678-1234-567812345678")
BORN = datetime.datetime(2020, 5, 17, 8, 30, 15)


@pytest.fixture
def db(make_db):
    db = make_db(*MAPPERS)
    with db.session() as s:
        home = Shelter("Home", datetime.date(1999, 12, 31), decimal.Decimal("1234.50"), REF)
        home.dogs.append(Dog("Rex", BORN, toys=[Chew("bone"), Chew("ball")]))
        home.dogs.append(Dog("Fido", BORN))
        s.add(home)
        s.add(Shelter("Empty", datetime.date(2001, 1, 2), decimal.Decimal("0.00"), uuid.UUID(int=7)))
    return db


def _home(s):
    return s.query(Shelter).where(name="Home").include("dogs.toys").one()


# -- pickle ----------------------------------------------------------------------------------------


def test_a_loaded_graph_pickles_and_unpickles_with_plain_collections_and_its_cycles(db, count):
    with db.session() as s:
        with count(s, 3):
            home = _home(s)
        with count(s, 0):
            data = pickle.dumps(home)
    back = pickle.loads(data)
    assert back is not home and (back.name, back.founded, back.id) == (home.name, home.founded, home.id)
    assert [(d.name, d.born, d.id) for d in back.dogs] == [(d.name, d.born, d.id) for d in home.dogs]
    assert type(back.dogs) is list and type(back.dogs[0].toys) is list
    assert back.dogs[0].shelter is back  # the inverse references survive as the same object
    assert back.dogs[0].toys[1].dog is back.dogs[0]
    assert [c.name for c in back.dogs[0].toys] == ["bone", "ball"]
    assert back.budget == decimal.Decimal("1234.50") and back.ref == REF


def test_an_unloaded_collection_unpickles_as_a_marker_that_refuses_reads(db, count):
    with db.session() as s:
        home = s.query(Shelter).where(name="Home").one()
        with count(s, 0):  # pickling never loads
            data = pickle.dumps(home)
    back = pickle.loads(data)
    assert back.name == "Home"
    assert repr(back.dogs) == "<Shelter.dogs not loaded>"
    with pytest.raises(errors.RelationNotLoadedError) as exc:
        len(back.dogs)
    assert str(exc.value) == (
        "Shelter.dogs was not loaded when its object was pickled or copied; load it first "
        "(.include() on the query or session.load()), or bring the object back with "
        "session.merge() and read it there"
    )
    again = pickle.loads(pickle.dumps(back))  # the marker pickles as itself
    with pytest.raises(errors.RelationNotLoadedError, match="^Shelter.dogs was not loaded"):
        list(again.dogs)


def test_an_unloaded_reference_unpickles_as_a_marker_of_its_class(db, count):
    with db.session() as s:
        rex = s.query(Dog).where(name="Rex").include("toys").one()
        with count(s, 0):
            data = pickle.dumps(rex)
            deep = copy.deepcopy(rex)
    back = pickle.loads(data)
    assert back.toys[0].dog is back
    assert isinstance(back.shelter, Shelter)
    assert type(pickle.loads(data).shelter) is type(back.shelter)  # one marker class per relation
    assert repr(back.shelter) == "<Shelter not loaded>"
    for restored in (back, deep):
        with pytest.raises(errors.RelationNotLoadedError) as exc:
            restored.shelter.name  # noqa: B018 - the read is the test
        assert str(exc.value).startswith(
            "Dog.shelter (a Shelter) was not loaded when its object was pickled or copied;"
        )


def test_a_reference_still_unloaded_when_the_session_closed_pickles_as_a_marker(db):
    with db.session() as s:
        rex = s.query(Dog).where(name="Rex").one()
    back = pickle.loads(pickle.dumps(rex))
    with pytest.raises(errors.RelationNotLoadedError, match=r"^Dog.shelter \(a Shelter\) was not loaded"):
        back.shelter.name  # noqa: B018
    with pytest.raises(errors.RelationNotLoadedError, match="^Dog.toys was not loaded"):
        back.toys[0]  # noqa: B018


# -- collections behave as the plain list or set ---------------------------------------------------


def test_a_loaded_collection_rebuilds_copies_and_dumps_as_its_plain_type(db, count):
    with db.session() as s:
        home = _home(s)
        with count(s, 0):
            dogs = home.dogs
            rebuilt = type(dogs)(dogs)
            assert rebuilt == list(dogs) and rebuilt is not dogs
            assert type(copy.copy(dogs)) is list and copy.copy(dogs) == list(dogs)
            assert list(rebuilt) == list(dogs)
            dumped = attrs.asdict(home, filter=lambda a, v: a.name not in ("shelter", "dog"))
            kept = attr.asdict(
                home, filter=lambda a, v: a.name not in ("shelter", "dog"), retain_collection_types=True,
            )
    assert [d["name"] for d in dumped["dogs"]] == ["Rex", "Fido"]
    assert dumped["dogs"][0]["toys"] == [{"name": "bone", "id": 1}, {"name": "ball", "id": 2}]
    assert kept["dogs"][0]["toys"][0] == {"name": "bone", "id": 1}


def test_copy_of_an_unloaded_collection_loads_it_for_the_cohort(db, count):
    with db.session() as s:
        shelters = s.query(Shelter).order_by("id").all()
        with count(s, 1):  # one IN query for both shelters' dogs
            dogs = copy.copy(shelters[0].dogs)
        assert type(dogs) is list and [d.name for d in dogs] == ["Rex", "Fido"]
        with count(s, 0):
            assert copy.copy(shelters[1].dogs) == []


def test_a_set_collection_rebuilds_and_copies_as_a_set(make_db, count):
    db = make_db(PostMapper, TagMapper)
    with db.session() as s:
        s.add(Post("p", tags={Tag("a"), Tag("b")}))
    with db.session() as s:
        post = s.query(Post).include("tags").one()
        with count(s, 0):
            tags = post.tags
            assert type(type(tags)(tags)) is type(tags) and set(type(tags)(tags)) == set(tags)
            assert type(copy.copy(tags)) is set and copy.copy(tags) == set(tags)
        data = pickle.dumps(post)
    back = pickle.loads(data)
    assert type(back.tags) is set and sorted(x.label for x in back.tags) == ["a", "b"]
    assert all(x.post is back for x in back.tags)


# -- to_dict -----------------------------------------------------------------------------------------


def test_to_dict_follows_only_the_given_paths_with_one_value_rule(db, count):
    with db.session() as s:
        shelters = s.query(Shelter).order_by("id").include("dogs.toys").all()
        with count(s, 0):
            out = to_dict(shelters, include=("dogs", "dogs.toys"))
    assert out == [
        {
            "name": "Home", "founded": "1999-12-31", "budget": "1234.50",
            "ref": "12345678-1234-5678-1234-567812345678", "id": 1,
            "dogs": [
                {"name": "Rex", "born": "2020-05-17T08:30:15", "id": 1,
                 "toys": [{"name": "bone", "id": 1}, {"name": "ball", "id": 2}]},
                {"name": "Fido", "born": "2020-05-17T08:30:15", "id": 2, "toys": []},
            ],
        },
        {"name": "Empty", "founded": "2001-01-02", "budget": "0.00",
         "ref": "00000000-0000-0000-0000-000000000007", "id": 2, "dogs": []},
    ]
    json.dumps(out)  # JSON-ready as it stands


def test_to_dict_of_one_object_and_of_a_reference_path(db, count):
    with db.session() as s:
        rex = s.query(Dog).where(name="Rex").include("shelter").one()
        with count(s, 0):
            assert to_dict(rex) == {"name": "Rex", "born": "2020-05-17T08:30:15", "id": 1}
            one = to_dict(rex, include=["shelter"])
        assert one["shelter"]["name"] == "Home" and "dogs" not in one["shelter"]
        with count(s, 1):  # a path that is not loaded loads as any read does (for the cohort)
            assert to_dict([rex], include="toys")[0]["toys"][1] == {"name": "ball", "id": 2}


def test_to_dict_refuses_unknown_paths_and_unmapped_values_before_reading(db, count):
    with db.session() as s:
        home = s.query(Shelter).where(name="Home").one()
        with count(s, 0):
            with pytest.raises(errors.QueryError) as exc:
                to_dict(home, include=("dogs", "dogs.chews"))
            assert str(exc.value) == (
                "DogMapper has no relation 'chews' (to_dict include=('dogs', 'dogs.chews')); "
                "its relations are ['shelter', 'toys']"
            )
            with pytest.raises(errors.QueryError, match="^ShelterMapper has no relation 'name'"):
                to_dict(home, include="name")
            with pytest.raises(errors.QueryError, match="include takes dotted relation names"):
                to_dict(home, include=("",))
            with pytest.raises(errors.MapperError, match="^to_dict\\(\\) takes mapped objects; int has no Mapper$"):
                to_dict([home, 3])
            with pytest.raises(errors.MapperError, match="takes a mapped object or an iterable of them, got int"):
                to_dict(3)
    home.budget = object()
    with pytest.raises(errors.MapperError, match="^to_dict\\(\\) cannot convert Shelter.budget: a object is not"):
        to_dict(home)
