"""Kinds of domain classes and keys: slotted and dict attrs classes, dataclasses, plain classes,
the on_load hook, natural string keys and composite keys, on every backend.

Loaded objects are built without calling ``__init__``: each class here refuses to be
initialised while ``NO_INIT`` is on.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

import attrs
import pytest

from mapper import Column, Mapper, errors
from mapper import types as t

NO_INIT = {"on": False}


def _refuse_init() -> None:
    if NO_INIT["on"]:
        raise AssertionError("__init__ was called to build a loaded object")


@contextmanager
def init_forbidden():
    NO_INIT["on"] = True
    try:
        yield
    finally:
        NO_INIT["on"] = False


@attrs.define  # slotted
class SlotBook:
    title: str
    pages: int = 0
    tags: list[str] = attrs.Factory(list)  # not mapped
    shelf: str = "unsorted"  # not mapped
    label: str = attrs.Factory(lambda self: self.title.upper(), takes_self=True)  # not mapped
    id: int | None = None

    def __attrs_post_init__(self) -> None:
        _refuse_init()


@attrs.define(slots=False)
class DictBook:
    title: str
    pages: int = 0
    tags: list[str] = attrs.Factory(list)
    shelf: str = "unsorted"
    label: str = attrs.Factory(lambda self: self.title.upper(), takes_self=True)
    id: int | None = None

    def __attrs_post_init__(self) -> None:
        _refuse_init()


@dataclasses.dataclass
class DataBook:
    title: str
    pages: int = 0
    tags: list[str] = dataclasses.field(default_factory=list)
    shelf: str = "unsorted"
    id: int | None = None

    def __post_init__(self) -> None:
        _refuse_init()


class PlainBook:
    """A plain class whose __init__ takes other arguments than the stored attributes."""

    title: str
    pages: int
    id: int | None

    def __init__(self, heading: str, *, length: int) -> None:
        _refuse_init()
        self.title = heading
        self.pages = length
        self.id = None


class SlotBookMapper(Mapper[SlotBook]):
    table = "dk_slot_books"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(100), nullable=False)
    pages = Column(t.Integer, nullable=False)


class DictBookMapper(Mapper[DictBook]):
    table = "dk_dict_books"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(100), nullable=False)
    pages = Column(t.Integer, nullable=False)


class DataBookMapper(Mapper[DataBook]):
    table = "dk_data_books"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(100), nullable=False)
    pages = Column(t.Integer, nullable=False)


class PlainBookMapper(Mapper[PlainBook]):
    table = "dk_plain_books"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(100), nullable=False)
    pages = Column(t.Integer, nullable=False)


KINDS = {
    "attrs-slots": (SlotBook, SlotBookMapper, lambda title, pages: SlotBook(title, pages)),
    "attrs-dict": (DictBook, DictBookMapper, lambda title, pages: DictBook(title, pages)),
    "dataclass": (DataBook, DataBookMapper, lambda title, pages: DataBook(title, pages)),
    "plain": (PlainBook, PlainBookMapper, lambda title, pages: PlainBook(title, length=pages)),
}


def rows(backend, table: str) -> list[tuple]:
    return backend.raw(f"SELECT id, title, pages FROM {backend.q(table)} ORDER BY id")


@pytest.mark.parametrize("kind", list(KINDS))
def test_domain_kind_round_trip(backend, make_db, count, kind):
    cls, mapper, make = KINDS[kind]
    table = mapper.table
    db = make_db(mapper)
    with db.session() as s:
        dune, emma = make("Dune", 412), make("Emma", 300)
        s.add_all([dune, emma])
        with count(s, 1):
            s.flush()
        assert isinstance(dune.id, int) and isinstance(emma.id, int) and dune.id != emma.id
    assert rows(backend, table) == [(dune.id, "Dune", 412), (emma.id, "Emma", 300)]

    with init_forbidden():
        with db.session() as s:
            with count(s, 1):
                got = s.query(cls).order_by("title").all()
            assert [type(b) for b in got] == [cls, cls]
            assert [(b.id, b.title, b.pages) for b in got] == [(dune.id, "Dune", 412), (emma.id, "Emma", 300)]
            d2, e2 = got
            with count(s, 0):
                assert s.get(cls, dune.id) is d2
            d2.pages = 500
            s.delete(e2)
            with count(s, 2):  # one UPDATE, one DELETE
                s.flush()
    assert rows(backend, table) == [(dune.id, "Dune", 500)]


@pytest.mark.parametrize("kind", ["attrs-slots", "attrs-dict", "dataclass"])
def test_unmapped_fields_get_their_defaults_on_load(backend, make_db, kind):
    cls, mapper, make = KINDS[kind]
    db = make_db(mapper)
    with db.session() as s:
        a, b = make("Dune", 1), make("Emma", 2)
        a.tags.append("scifi")
        a.shelf = "top"
        s.add_all([a, b])
    with init_forbidden():
        with db.session() as s:
            d, e = s.query(cls).order_by("title").all()
    assert d.tags == [] and e.tags == []
    assert d.tags is not e.tags  # a fresh list per object, from the factory
    assert d.shelf == "unsorted" and e.shelf == "unsorted"
    if kind != "dataclass":
        assert (d.label, e.label) == ("DUNE", "EMMA")  # a factory that takes self sees the loaded columns
    d.tags.append("x")
    assert e.tags == []


class Person:
    """A plain class with no annotations: its attributes are set by an __init__ with other arguments."""

    def __init__(self, full_name: str) -> None:
        self.first, self.last = full_name.split(" ", 1)
        self.id = None


class PersonMapper(Mapper[Person]):
    table = "dk_people"
    id = Column(t.Integer, primary_key=True)
    first = Column(t.String(50), nullable=False)
    last = Column(t.String(50), nullable=False)


def test_plain_class_with_attributes_set_in_init(backend, make_db, count):
    db = make_db(PersonMapper)
    with db.session() as s:
        ada = Person("Ada Lovelace")
        s.add(ada)
        s.flush()
        assert isinstance(ada.id, int)
    assert backend.raw(f"SELECT id, first, last FROM {backend.q('dk_people')}") == [(ada.id, "Ada", "Lovelace")]
    with db.session() as s:
        p = s.get(Person, ada.id)
        assert type(p) is Person and (p.first, p.last) == ("Ada", "Lovelace")
        p.last = "King"
    assert backend.raw(f"SELECT last FROM {backend.q('dk_people')}") == [("King",)]


# -- on_load ------------------------------------------------------------------------------------------


@attrs.define
class Gauge:
    name: str
    raw: int = 0
    scaled: float = 0.0  # derived, not mapped
    loaded: bool = False  # not mapped
    id: int | None = None


HOOK_CALLS: list[tuple[int, str]] = []


class GaugeMapper(Mapper[Gauge]):
    table = "dk_gauges"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    raw = Column(t.Integer, nullable=False)

    def on_load(self, obj: Gauge) -> None:
        HOOK_CALLS.append((id(self), obj.name))
        obj.scaled = obj.raw / 10
        obj.loaded = True


def test_on_load_runs_for_each_loaded_object(backend, make_db, count):
    HOOK_CALLS.clear()
    db = make_db(GaugeMapper)
    with db.session() as s:
        fresh = [Gauge("a", 10), Gauge("b", 25), Gauge("c", 7)]
        s.add_all(fresh)
        s.flush()
    assert HOOK_CALLS == []  # inserting is not loading
    assert not any(g.loaded for g in fresh)
    with db.session() as s:
        with count(s, 1):
            got = s.query(Gauge).order_by("name").all()
        assert [(g.name, g.scaled, g.loaded) for g in got] == [("a", 1.0, True), ("b", 2.5, True), ("c", 0.7, True)]
        assert sorted(n for _, n in HOOK_CALLS) == ["a", "b", "c"]
        assert len({m for m, _ in HOOK_CALLS}) == 1  # one mapper instance per Database
    HOOK_CALLS.clear()
    with db.session() as s:
        g = s.get(Gauge, got[1].id)
        assert (g.scaled, g.loaded) == (2.5, True)
        assert [n for _, n in HOOK_CALLS] == ["b"]
        s.query(Gauge).where(name="b").one()
        first = s.query(Gauge).order_by("name").first()
        assert first.loaded
    with db.session() as s:
        streamed = list(s.query(Gauge).order_by("name").stream(batch_size=2))
        assert all(g.loaded for g in streamed)


# -- natural and composite keys ----------------------------------------------------------------------


@attrs.define
class Country:
    code: str
    name: str
    population: int = 0


class CountryMapper(Mapper[Country]):
    table = "dk_countries"
    code = Column(t.String(2), primary_key=True)
    name = Column(t.String(50), nullable=False)
    population = Column(t.BigInteger, default=0)


def countries(backend) -> list[tuple]:
    return backend.raw(f"SELECT code, name, population FROM {backend.q('dk_countries')} ORDER BY code")


def test_natural_string_primary_key(backend, make_db, count):
    db = make_db(CountryMapper)
    with db.session() as s:
        fr, de = Country("FR", "France", 68_000_000), Country("DE", "Germany")
        s.add_all([fr, de])
        with count(s, 1):
            s.flush()
        assert s.identity(fr) == "FR"
        with count(s, 0):
            assert s.get(Country, "FR") is fr
    assert countries(backend) == [("DE", "Germany", 0), ("FR", "France", 68_000_000)]
    with db.session() as s:
        with count(s, 1):
            fr = s.get(Country, "FR")
        assert (fr.code, fr.name, fr.population) == ("FR", "France", 68_000_000)
        with count(s, 1):
            assert s.get(Country, "XX") is None
        with pytest.raises(errors.NotFoundError):
            s.get_one(Country, "XX")
        fr.population = 68_100_000
        with count(s, 1):
            s.flush()
        s.delete(s.get(Country, "DE"))
        with count(s, 1):
            s.flush()
        assert s.get(Country, "DE") is None
    assert countries(backend) == [("FR", "France", 68_100_000)]
    with db.session() as s:
        s.add(Country("DE", "Germany again"))  # the key can be used again once deleted
    assert countries(backend) == [("DE", "Germany again", 0), ("FR", "France", 68_100_000)]


def test_duplicate_natural_key_in_session(backend, make_db):
    db = make_db(CountryMapper)
    with db.session() as s:
        s.add(Country("FR", "France"))
        s.flush()
        with pytest.raises(errors.DuplicateIdentityError):
            s.add(Country("FR", "Other France"))
    assert countries(backend) == [("FR", "France", 0)]


@attrs.define
class Enrollment:
    student: str
    course: int
    grade: str | None = None


class EnrollmentMapper(Mapper[Enrollment]):
    table = "dk_enrollments"
    student = Column(t.String(20), primary_key=True)
    course = Column(t.Integer, primary_key=True)
    grade = Column(t.String(2))


def enrollments(backend) -> list[tuple]:
    return backend.raw(
        f"SELECT student, course, grade FROM {backend.q('dk_enrollments')} ORDER BY student, course"
    )


def test_composite_primary_key(backend, make_db, count):
    db = make_db(EnrollmentMapper)
    with db.session() as s:
        a1, a2, b1 = Enrollment("ann", 1, "A"), Enrollment("ann", 2), Enrollment("bob", 1, "C")
        s.add_all([a1, a2, b1])
        with count(s, 1):
            s.flush()
        assert s.identity(a2) == ("ann", 2)
        with count(s, 0):
            assert s.get(Enrollment, ("ann", 2)) is a2
            assert s.get(Enrollment, ("bob", 1)) is b1
    assert enrollments(backend) == [("ann", 1, "A"), ("ann", 2, None), ("bob", 1, "C")]
    with db.session() as s:
        with count(s, 1):
            a2 = s.get(Enrollment, ("ann", 2))
        assert (a2.student, a2.course, a2.grade) == ("ann", 2, None)
        with count(s, 1):
            assert s.get(Enrollment, ("bob", 2)) is None
        with count(s, 1):
            a1, b1 = s.query(Enrollment).where(course=1).order_by("student").all()
        with pytest.raises(errors.QueryError):
            s.get(Enrollment, "ann")
        with pytest.raises(errors.QueryError):
            s.get(Enrollment, ("ann",))
        a2.grade = "B"
        b1.grade = "B"
        with count(s, 1):  # one batched UPDATE keyed on both columns
            s.flush()
        s.delete(a1)
        s.delete(b1)
        with count(s, 1):  # one DELETE for both rows
            s.flush()
    assert enrollments(backend) == [("ann", 2, "B")]
    with db.session() as s:
        s.add(Enrollment("ann", 1, "A+"))
    assert enrollments(backend) == [("ann", 1, "A+"), ("ann", 2, "B")]
