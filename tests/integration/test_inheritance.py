"""Single-table inheritance on every backend: one table, a discriminator, subclass mappers."""

from __future__ import annotations

import pickle

import attrs
import pytest

from mapper import BelongsTo, BelongsToMany, Column, HasMany, Mapper, errors, to_dict
from mapper import types as t


@attrs.define
class Keeper:
    name: str
    animals: list[Animal] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Animal:
    name: str
    keeper: Keeper | None = None
    toys: list[Plaything] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Dog(Animal):
    breed: str | None = None
    kennel: Kennel | None = None


@attrs.define
class Pug(Dog):
    wrinkles: int = 0


@attrs.define
class Cat(Animal):
    lives: int = 9


@attrs.define
class Kennel:
    name: str
    dogs: list[Dog] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Plaything:
    name: str
    animal: Animal | None = None
    id: int | None = None


@attrs.define
class Collar:
    colour: str
    cat: Cat | None = None
    id: int | None = None


class KeeperMapper(Mapper[Keeper]):
    table = "inh_keepers"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    animals = HasMany(Animal, inverse="keeper", cascade="all", order_by="id")


class AnimalMapper(Mapper[Animal]):
    table = "inh_animals"
    discriminator = "kind"
    discriminator_value = "animal"
    id = Column(t.Integer, primary_key=True)
    kind = Column(t.String(20), nullable=False, index=True)
    name = Column(t.String(50), nullable=False)
    keeper = BelongsTo(Keeper, inverse="animals")
    toys = HasMany("Plaything", inverse="animal", cascade="all", order_by="id")


class DogMapper(AnimalMapper, Mapper[Dog]):
    discriminator_value = "dog"
    breed = Column(t.String(50))
    kennel = BelongsTo("Kennel", inverse="dogs")


class PugMapper(DogMapper, Mapper[Pug]):
    discriminator_value = "pug"
    wrinkles = Column(t.Integer, nullable=False, default=0)


class CatMapper(AnimalMapper, Mapper[Cat]):
    discriminator_value = "cat"
    lives = Column(t.Integer, default=9)


class KennelMapper(Mapper[Kennel]):
    table = "inh_kennels"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    dogs = HasMany(Dog, inverse="kennel", order_by="id")


class PlaythingMapper(Mapper[Plaything]):
    table = "inh_toys"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    animal = BelongsTo(Animal, inverse="toys")


class CollarMapper(Mapper[Collar]):
    table = "inh_collars"
    id = Column(t.Integer, primary_key=True)
    colour = Column(t.String(20), nullable=False)
    cat = BelongsTo(Cat)


@attrs.define
class Leash:
    length: int
    dog: Dog | None = None
    id: int | None = None


class LeashMapper(Mapper[Leash]):
    table = "inh_leashes"
    id = Column(t.Integer, primary_key=True)
    length = Column(t.Integer, nullable=False)
    dog = BelongsTo(Dog)


MAPPERS = (
    KeeperMapper, KennelMapper, AnimalMapper, DogMapper, PugMapper, CatMapper, PlaythingMapper, CollarMapper, LeashMapper,
)


@pytest.fixture
def db(make_db):
    return make_db(*MAPPERS)


def _zoo(db):
    """Keeper Ann with a plain animal, a dog, a pug and a cat (ids 1-4), toys for each, a kennel."""
    with db.session() as s:
        kennel = Kennel("North")
        ann = Keeper("Ann", animals=[
            Animal("Blob", toys=[Plaything("stone")]),
            Dog("Rex", breed="boxer", kennel=kennel, toys=[Plaything("ball")]),
            Pug("Cody", breed="pug", wrinkles=7, kennel=kennel, toys=[Plaything("rope"), Plaything("bone")]),
            Cat("Tom", lives=7, toys=[Plaything("mouse")]),
        ])
        s.add_all([kennel, ann])
        s.add(Collar("red", cat=ann.animals[3]))
    return ann


def test_rows_written_with_discriminator_and_own_columns(db, backend, count):
    with db.session() as s:
        kennel = Kennel("North")
        s.add(kennel)
        s.flush()
        s.add_all([Animal("Blob"), Dog("Rex", breed="boxer", kennel=kennel), Pug("Cody", wrinkles=7), Cat("Tom", lives=7)])
        # One INSERT per mapper: their column sets differ.
        with count(s, 4):
            s.flush()
    assert backend.raw("SELECT id, kind, name, breed, kennel_id, wrinkles, lives FROM inh_animals ORDER BY id") == [
        (1, "animal", "Blob", None, None, None, None),
        (2, "dog", "Rex", "boxer", 1, None, None),
        (3, "pug", "Cody", None, None, 7, None),
        (4, "cat", "Tom", None, None, None, 7),
    ]


def test_query_base_returns_each_subclass(db, count):
    _zoo(db)
    with db.session() as s:
        with count(s, 1):
            found = s.query(Animal).order_by("id").all()
        assert [type(a) for a in found] == [Animal, Dog, Pug, Cat]
        assert [a.name for a in found] == ["Blob", "Rex", "Cody", "Tom"]
        assert (found[1].breed, found[2].wrinkles, found[3].lives) == ("boxer", 7, 7)


def test_query_subclass_filters_by_discriminator(db, count):
    _zoo(db)
    with db.session() as s:
        with count(s, 4):
            dogs = s.query(Dog).order_by("id").all()
            pugs = s.query(Pug).all()
            cats = s.query(Cat).where(CatMapper.lives < 9).count()
            named = s.query(Dog).where(name="Tom").all()
        assert [(type(d), d.name) for d in dogs] == [(Dog, "Rex"), (Pug, "Cody")]
        assert [p.name for p in pugs] == ["Cody"]
        assert cats == 1
        assert named == []


def test_query_subclass_update_and_delete_touch_its_rows_only(db, backend):
    with db.session() as s:
        s.add_all([Animal("Blob"), Dog("Rex"), Pug("Cody"), Cat("Tom")])
    with db.session() as s:
        assert s.query(Dog).update(name="Dogged") == 2
        assert s.query(Cat).delete() == 1
    assert backend.raw("SELECT kind, name FROM inh_animals ORDER BY id") == [
        ("animal", "Blob"), ("dog", "Dogged"), ("pug", "Dogged"),
    ]


def test_get_by_base_and_subclass(db, count):
    _zoo(db)
    with db.session() as s:
        with count(s, 1):
            cody = s.get(Animal, 3)
        assert type(cody) is Pug and cody.wrinkles == 7
        with count(s, 0):
            assert s.get(Dog, 3) is cody
            assert s.get(Pug, 3) is cody
            assert s.get(Cat, 3) is None
    with db.session() as s:
        with count(s, 1):
            assert s.get(Dog, 4) is None  # a cat's row is no dog
        with count(s, 1):
            tom = s.get(Cat, 4)
        assert type(tom) is Cat
        with count(s, 0):
            assert s.get(Animal, 4) is tom


def test_identity_map_one_object_per_row(db, count):
    _zoo(db)
    with db.session() as s:
        dogs = s.query(Dog).order_by("id").all()
        animals = s.query(Animal).order_by("id").all()
        assert animals[1] is dogs[0] and animals[2] is dogs[1]


def test_includes_across_the_hierarchy(db, count):
    _zoo(db)
    with db.session() as s:
        with count(s, 3):
            ann = s.query(Keeper).include("animals.toys").one()
        assert [type(a) for a in ann.animals] == [Animal, Dog, Pug, Cat]
        assert [[x.name for x in a.toys] for a in ann.animals] == [["stone"], ["ball"], ["rope", "bone"], ["mouse"]]
        assert all(a.keeper is ann for a in ann.animals)
        assert ann.animals[2].toys[0].animal is ann.animals[2]
    with db.session() as s:
        with count(s, 2):
            north = s.query(Kennel).include("dogs").one()
        assert [(type(d), d.name) for d in north.dogs] == [(Dog, "Rex"), (Pug, "Cody")]
        assert north.dogs[1].kennel is north


def test_cohort_lazy_load_serves_every_subclass(db, count):
    _zoo(db)
    with db.session() as s:
        animals = s.query(Animal).order_by("id").all()
        with count(s, 1):
            assert [t.name for t in animals[3].toys] == ["mouse"]
            # The same query loaded every animal's toys, whatever its class.
            assert [t.name for t in animals[0].toys] == ["stone"]
            assert [t.name for t in animals[2].toys] == ["rope", "bone"]
        with count(s, 1):
            # A relation of Dog only: one query for the dogs of the result.
            assert animals[1].kennel.name == "North"
            assert animals[2].kennel is animals[1].kennel


def test_reference_to_a_base_with_subclasses_loads_with_its_objects(db, count):
    _zoo(db)
    with db.session() as s:
        # A stand-in cannot turn into whichever subclass the row holds: the animals are read
        # with the toys, one query for all of them.
        with count(s, 2):
            toys = s.query(Plaything).order_by("id").all()
        with count(s, 0):
            assert [type(x.animal) for x in toys] == [Animal, Dog, Pug, Pug, Cat]
            assert toys[2].animal is toys[3].animal


def test_reference_to_a_leaf_subclass_is_a_lazy_stand_in(db, count):
    _zoo(db)
    with db.session() as s:
        with count(s, 1):
            collar = s.query(Collar).one()
        with count(s, 1):
            assert collar.cat.lives == 7
        assert type(collar.cat) is Cat


def test_relation_filters_across_the_hierarchy(db, count):
    _zoo(db)
    with db.session() as s:
        assert s.query(Keeper).where(KeeperMapper.animals.any(name="Cody")).count() == 1
        assert [x.name for x in s.query(Plaything).where(PlaythingMapper.animal.has(name="Cody")).order_by("id")] == ["rope", "bone"]
        assert s.query(Kennel).where(KennelMapper.dogs.any(breed="boxer")).count() == 1


def test_subclass_columns_updated_and_rows_deleted(db, backend, count):
    _zoo(db)
    with db.session() as s:
        cody = s.get(Pug, 3)
        tom = s.get(Cat, 4)
        cody.wrinkles = 9
        cody.name = "Cody II"
        tom.lives = 6
        with count(s, 2):
            s.flush()
        s.delete(s.get(Animal, 1))
    assert backend.raw("SELECT id, kind, name, wrinkles, lives FROM inh_animals ORDER BY id") == [
        (2, "dog", "Rex", None, None),
        (3, "pug", "Cody II", 9, None),
        (4, "cat", "Tom", None, 6),
    ]
    assert backend.raw("SELECT name FROM inh_toys ORDER BY id") == [("ball",), ("rope",), ("bone",), ("mouse",)]


def test_moving_an_animal_between_keepers(db, backend):
    _zoo(db)
    with db.session() as s:
        bob = Keeper("Bob")
        ann = s.query(Keeper).include("animals").one()
        cat = ann.animals.pop()
        bob.animals.append(cat)
        s.add(bob)
    assert backend.raw("SELECT a.name, k.name FROM inh_animals a JOIN inh_keepers k ON k.id = a.keeper_id WHERE a.kind = 'cat'") == [
        ("Tom", "Bob")
    ]


def test_unknown_discriminator_value_is_a_clear_error(db, backend):
    _zoo(db)
    backend.raw("INSERT INTO inh_animals (id, kind, name) VALUES (9, 'fish', 'Wanda')")
    with db.session() as s:
        with pytest.raises(errors.ConfigurationError) as info:
            s.query(Animal).all()
    msg = str(info.value)
    assert "AnimalMapper" in msg and "'fish'" in msg and "key 9" in msg and "discriminator_value = 'fish'" in msg


def test_abstract_base_refuses_its_own_instances(make_db):
    class BaseMapper(Mapper[Animal]):
        table = "inh_abstract"
        discriminator = "kind"
        id = Column(t.Integer, primary_key=True)
        kind = Column(t.String(20), nullable=False)
        name = Column(t.String(50), nullable=False)

    class SubMapper(BaseMapper, Mapper[Cat]):
        discriminator_value = "cat"
        lives = Column(t.Integer)

    db = make_db(BaseMapper, SubMapper)
    with db.session() as s:
        with pytest.raises(errors.MapperError, match="Animal cannot be stored: BaseMapper has no discriminator_value"):
            s.add(Animal("Blob"))
        s.add(Cat("Tom", lives=3))
    with db.session() as s:
        assert [type(a) for a in s.query(Animal).all()] == [Cat]


def test_to_dict_pickle_and_merge_of_subclasses(db, count):
    _zoo(db)
    with db.session() as s:
        ann = s.query(Keeper).include("animals.toys").one()
        as_dicts = to_dict(ann.animals, include=("toys",))
        copy = pickle.loads(pickle.dumps(ann))
    assert as_dicts[2] == {"name": "Cody", "id": 3, "breed": "pug", "wrinkles": 7, "toys": [
        {"name": "rope", "id": 3}, {"name": "bone", "id": 4},
    ]}
    assert as_dicts[3]["lives"] == 7 and "breed" not in as_dicts[3]
    assert [type(a) for a in copy.animals] == [Animal, Dog, Pug, Cat]
    assert copy.animals[2].wrinkles == 7
    detached = copy.animals[2]
    detached.wrinkles = 11
    with db.session() as s:
        managed = s.merge(detached)
        assert type(managed) is Pug and managed is s.get(Animal, 3)
    with db.session() as s:
        assert s.get(Dog, 3).wrinkles == 11


def test_stream_refresh_from_sql_and_values(db, backend, count):
    _zoo(db)
    with db.session() as s:
        with count(s, 2):
            streamed = [(type(a), a.name) for a in s.query(Animal).order_by("id").stream(batch_size=3)]
        assert streamed == [(Animal, "Blob"), (Dog, "Rex"), (Pug, "Cody"), (Cat, "Tom")]
    with db.session() as s:
        cody = s.get(Pug, 3)
        s.execute("UPDATE inh_animals SET wrinkles = 12, name = 'Cody III' WHERE id = 3")
        s.refresh(cody)
        assert (cody.name, cody.wrinkles, cody.breed) == ("Cody III", 12, "pug")
        found = s.query(Dog).from_sql("SELECT * FROM inh_animals WHERE id >= :low ORDER BY id", {"low": 2})
        assert found[1] is cody and [type(d) for d in found] == [Dog, Pug]
        assert s.query(Dog).order_by("id").values("name") == [("Rex",), ("Cody III",)]
        assert s.query(Pug).values(PugMapper.wrinkles) == [(12,)]


@attrs.frozen
class Vehicle:
    name: str
    id: int | None = None


@attrs.frozen
class Bike(Vehicle):
    gears: int = 1


class VehicleMapper(Mapper[Vehicle]):
    table = "inh_vehicles"
    discriminator = "kind"
    discriminator_value = "vehicle"
    id = Column(t.Integer, primary_key=True)
    kind = Column(t.String(10), nullable=False)
    name = Column(t.String(50), nullable=False)


class BikeMapper(VehicleMapper, Mapper[Bike]):
    discriminator_value = "bike"
    gears = Column(t.Integer)


def test_replace_of_a_frozen_subclass(make_db, backend, count):
    db = make_db(VehicleMapper, BikeMapper)
    with db.session() as s:
        s.add_all([Vehicle("cart"), Bike("racer", gears=21)])
    with db.session() as s:
        racer = s.get(Vehicle, 2)
        assert type(racer) is Bike
        new = s.replace(racer, attrs.evolve(racer, gears=22))
        assert s.get(Bike, 2) is new and s.get(Vehicle, 2) is new
        with count(s, 1):
            s.flush()
    assert backend.raw("SELECT kind, name, gears FROM inh_vehicles ORDER BY id") == [
        ("vehicle", "cart", None), ("bike", "racer", 22),
    ]


def test_delete_cascade_through_the_hierarchy(db, backend, count):
    _zoo(db)
    with db.session() as s:
        s.add(Keeper("Bob", animals=[Cat("Kit")]))
    with db.session() as s:
        s.query(Collar).delete()
        ann = s.query(Keeper).where(name="Ann").one()
        s.delete(ann)  # cascade="all": her animals, and with each its toys
        s.flush()
    assert backend.raw("SELECT kind, name FROM inh_animals ORDER BY id") == [("cat", "Kit")]
    assert backend.raw("SELECT count(*) FROM inh_toys") == [(0,)]


def test_load_on_objects_of_several_classes(db, count):
    _zoo(db)
    with db.session() as s:
        animals = s.query(Animal).order_by("id").all()
        with count(s, 1):
            s.load(animals, "toys")
        with count(s, 0):
            assert [len(a.toys) for a in animals] == [1, 1, 2, 1]
            assert animals[2].toys[1].animal is animals[2]


def test_bulk_rows_upsert_and_duplicate_keys(db, backend):
    with db.session() as s:
        assert s.insert_rows(Dog, [{"name": "A", "breed": "x"}, {"name": "B"}]) == 2
        s.upsert(Pug("P", wrinkles=3, id=10))
        s.upsert(Cat("Q", lives=5, id=11))
    assert backend.raw("SELECT id, kind, name, breed, wrinkles, lives FROM inh_animals ORDER BY id") == [
        (1, "dog", "A", "x", None, None), (2, "dog", "B", None, None, None),
        (10, "pug", "P", None, 3, None), (11, "cat", "Q", None, None, 5),
    ]
    with db.session() as s:
        s.get(Animal, 10)
        with pytest.raises(errors.DuplicateIdentityError, match="Cat with key 10 is already in this session"):
            s.add(Cat("dup", id=10))


@attrs.define
class Depot:
    name: str
    machines: list[Machine] = attrs.Factory(list)
    drills: list[Drill] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Machine:
    name: str
    depot: Depot | None = None
    id: int | None = None


@attrs.define
class Drill(Machine):
    torque: int | None = None


@attrs.define
class Saw(Machine):
    blade: int | None = None


@attrs.define
class Mechanic:
    name: str
    skills: list[Machine] = attrs.Factory(list)
    id: int | None = None


class DepotMapper(Mapper[Depot]):
    table = "inh_depots"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    machines = HasMany(Machine, inverse="depot", order_by="id")
    # The same foreign key, seen through a subclass: only the drills.
    drills = HasMany(Drill, foreign_key="depot_id", cascade="save", order_by="id")


class MachineMapper(Mapper[Machine]):
    table = "inh_machines"
    discriminator = "kind"
    id = Column(t.Integer, primary_key=True)
    kind = Column(t.String(10), nullable=False)
    name = Column(t.String(50), nullable=False)
    depot = BelongsTo(Depot, inverse="machines")


class DrillMapper(MachineMapper, Mapper[Drill]):
    discriminator_value = "drill"
    torque = Column(t.Integer)


class SawMapper(MachineMapper, Mapper[Saw]):
    discriminator_value = "saw"
    blade = Column(t.Integer)


class MechanicMapper(Mapper[Mechanic]):
    table = "inh_mechanics"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    skills = BelongsToMany(Machine, through="inh_skills", order_by="id")


def test_subclass_collection_on_a_shared_key_and_links_to_the_base(make_db, backend, count):
    db = make_db(DepotMapper, MachineMapper, DrillMapper, SawMapper, MechanicMapper)
    with db.session() as s:
        depot = Depot("East")
        s.add(depot)
        s.flush()
        machines = [Drill("d1", torque=5, depot=depot), Saw("s1", blade=30, depot=depot), Drill("d2", depot=depot)]
        s.add(Mechanic("Max", skills=machines))
    with db.session() as s:
        with count(s, 2):
            east = s.query(Depot).include("drills").one()
        # The saw's row has the same depot_id: it is read and left out, never built as a Drill.
        assert [(type(d), d.name) for d in east.drills] == [(Drill, "d1"), (Drill, "d2")]
        with count(s, 2):
            assert s.related(east, "drills").count() == 2
            assert s.related(east, "machines").count() == 3
        with count(s, 1):
            assert s.query(Depot).where(DepotMapper.drills.any(name="s1")).count() == 0
        with count(s, 2):
            # A join to a subclass collection joins that subclass's rows only.
            assert s.query(Depot).join("drills").order_by("drills.name").values("name", "drills.name") == [
                ("East", "d1"), ("East", "d2"),
            ]
            assert s.query(Mechanic).join("skills").count() == 3
        with count(s, 2):
            max_ = s.query(Mechanic).include("skills").one()
        # Rows are inserted class by class: the drills took the first keys.
        assert [(type(m), m.name) for m in max_.skills] == [(Drill, "d1"), (Drill, "d2"), (Saw, "s1")]
        s.delete(max_.skills[2])  # its junction rows go with it
    assert backend.raw("SELECT count(*) FROM inh_skills") == [(2,)]
    assert backend.raw("SELECT kind, name FROM inh_machines ORDER BY id") == [("drill", "d1"), ("drill", "d2")]


def test_base_mapper_hooks_apply_to_subclasses(make_db):
    seen: list[tuple[str, str]] = []

    class BaseMapper(Mapper[Animal]):
        table = "inh_hooked"
        discriminator = "kind"
        discriminator_value = "animal"
        id = Column(t.Integer, primary_key=True)
        kind = Column(t.String(10), nullable=False)
        name = Column(t.String(50), nullable=False)

        def on_load(self, obj: Animal) -> None:
            seen.append(("load", type(obj).__name__))

        def before_insert(self, obj: Animal) -> None:
            seen.append(("insert", type(obj).__name__))

    class SubMapper(BaseMapper, Mapper[Cat]):
        discriminator_value = "cat"
        lives = Column(t.Integer)

    db = make_db(BaseMapper, SubMapper)
    with db.session() as s:
        s.add_all([Animal("Blob"), Cat("Tom", lives=2)])
    with db.session() as s:
        s.query(Animal).all()
    assert sorted(seen) == [("insert", "Animal"), ("insert", "Cat"), ("load", "Animal"), ("load", "Cat")]


def test_get_by_base_flushes_new_subclass_objects_first(db, count):
    with db.session() as s:
        rex = Dog("Rex")
        s.add(rex)
        with count(s, 1):  # the INSERT; the identity map answers
            assert s.get(Animal, 1) is rex


def test_reference_to_a_subclass(db, backend, count):
    _zoo(db)
    with db.session() as s:
        rex, cody = s.get(Dog, 2), s.get(Dog, 3)
        s.add_all([Leash(120, dog=rex), Leash(90, dog=cody)])
    assert backend.raw("SELECT length, dog_id FROM inh_leashes ORDER BY id") == [(120, 2), (90, 3)]
    with db.session() as s:
        # Dog has a subclass (Pug): the dogs are read with the leashes, one query for all.
        with count(s, 3):
            leashes = s.query(Leash).order_by("id").include("dog.toys").all()
        assert [(type(x.dog), x.dog.name) for x in leashes] == [(Dog, "Rex"), (Pug, "Cody")]
        assert [t.name for t in leashes[1].dog.toys] == ["rope", "bone"]
        with count(s, 1):
            assert s.query(Leash).where(LeashMapper.dog.has(breed="pug")).count() == 1
