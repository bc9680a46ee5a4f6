"""Tables that reference each other, on every backend: the flush breaks the cycle at a nullable key
whatever the order of ``Database(mappers=[...])``, and a cycle of NOT NULL keys is a FlushError
that names every table and key of the cycle."""

from __future__ import annotations

import itertools

import attrs
import pytest

from mapper import BelongsTo, Column, ForeignKey, Mapper, errors
from mapper import types as t
from tests.rel_models import rows

# -- a department and its people: only the department's key to its manager may be NULL -----------------


@attrs.define
class Dept:
    name: str
    manager: Person | None = None
    id: int | None = None


@attrs.define
class Person:
    name: str
    dept: Dept | None = None
    id: int | None = None


class DeptMapper(Mapper[Dept]):
    table = "cyc_depts"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    manager_id = Column(t.Integer, ForeignKey("cyc_people.id"))  # nullable: the cycle breaks here
    manager = BelongsTo("Person", foreign_key="manager_id")


class PersonMapper(Mapper[Person]):
    table = "cyc_people"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    dept_id = Column(t.Integer, ForeignKey("cyc_depts.id"), nullable=False)
    dept = BelongsTo(Dept, foreign_key="dept_id")


ORDERS = {"dept-first": (DeptMapper, PersonMapper), "person-first": (PersonMapper, DeptMapper)}


def _pairs(n: int) -> list[Dept]:
    depts = []
    for i in range(n):
        dept = Dept(f"d{i}")
        dept.manager = Person(f"p{i}", dept=dept)
        depts.append(dept)
    return depts


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("n", [1, 3])
def test_pairs_pointing_at_each_other_insert_in_one_flush_in_either_mapper_order(backend, make_db, count, order, n):
    db = make_db(*ORDERS[order])
    with db.session() as s:
        depts = _pairs(n)
        s.add_all(depts)
        # INSERT the departments with no manager, INSERT the people, UPDATE the managers.
        with count(s, 3):
            s.flush()
        assert all(isinstance(d.id, int) and isinstance(d.manager.id, int) for d in depts)
    got = rows(
        backend,
        "SELECT d.name, m.name, p.name, pd.name FROM {cyc_depts} d JOIN {cyc_people} m ON m.id = d.manager_id "
        "JOIN {cyc_people} p ON p.dept_id = d.id JOIN {cyc_depts} pd ON pd.id = p.dept_id ORDER BY d.name",
    )
    assert got == [(f"d{i}", f"p{i}", f"p{i}", f"d{i}") for i in range(n)]
    assert rows(backend, "SELECT count(*) FROM {cyc_people}") == [(n,)]


@pytest.mark.parametrize("order", list(ORDERS))
def test_a_person_whose_department_is_new_and_managed_by_someone_else(backend, make_db, count, order):
    db = make_db(*ORDERS[order])
    with db.session() as s:
        boss_dept = Dept("board")
        boss = Person("boss", dept=boss_dept)
        boss_dept.manager = boss
        s.add(boss_dept)
    with db.session() as s:
        boss = s.get_one(Person, boss.id)
        dept = Dept("sales", manager=boss)  # points at a persistent row: no cycle among new rows
        worker = Person("worker", dept=dept)
        s.add(worker)
        with count(s, 2):  # the department, then its worker; nothing is set afterwards
            s.flush()
    assert rows(
        backend,
        "SELECT p.name, d.name, m.name FROM {cyc_people} p JOIN {cyc_depts} d ON d.id = p.dept_id "
        "JOIN {cyc_people} m ON m.id = d.manager_id ORDER BY p.name",
    ) == [("boss", "board", "boss"), ("worker", "sales", "boss")]


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("first", ["dept", "person"])
def test_pairs_pointing_at_each_other_delete_in_one_flush_in_either_mapper_order(backend, make_db, count, order, first):
    db = make_db(*ORDERS[order])
    with db.session() as s:
        s.add_all(_pairs(2))
    with db.session() as s:
        depts = s.query(Dept).include("manager").order_by("name").all()
        gone = depts[0]
        pair = [gone, gone.manager] if first == "dept" else [gone.manager, gone]
        for obj in pair:
            s.delete(obj)
        # NULL the deleted department's manager key, DELETE the person, check that no person the
        # session does not hold is in the department, DELETE the department, NULL the manager key
        # of departments the session does not hold.
        with count(s, 5):
            s.flush()
    assert rows(backend, "SELECT d.name, m.name FROM {cyc_depts} d JOIN {cyc_people} m ON m.id = d.manager_id") == [
        ("d1", "p1")
    ]
    assert rows(backend, "SELECT name FROM {cyc_people}") == [("p1",)]


@pytest.mark.parametrize("order", list(ORDERS))
def test_deleting_a_manager_first_releases_departments_the_session_does_not_hold(backend, make_db, count, order):
    db = make_db(*ORDERS[order])
    with db.session() as s:
        board = Dept("board")
        boss = Person("boss", dept=board)
        board.manager = boss
        s.add_all([board, Dept("sales", manager=boss)])
    with db.session() as s:
        gone = s.get_one(Person, boss.id)
        s.delete(gone)
        with count(s, 2):  # UPDATE the departments he managed (not loaded), then DELETE him
            s.flush()
    assert rows(backend, "SELECT name, manager_id FROM {cyc_depts} ORDER BY name") == [("board", None), ("sales", None)]
    assert rows(backend, "SELECT count(*) FROM {cyc_people}") == [(0,)]


# -- three tables in a ring, one nullable key -------------------------------------------------------------


@attrs.define
class Ant:
    name: str
    bee: Bee | None = None
    id: int | None = None


@attrs.define
class Bee:
    name: str
    cat: Cat | None = None
    id: int | None = None


@attrs.define
class Cat:
    name: str
    ant: Ant | None = None
    id: int | None = None


class AntMapper(Mapper[Ant]):
    table = "cyc_ants"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)
    bee_id = Column(t.Integer, ForeignKey("cyc_bees.id"), nullable=False)
    bee = BelongsTo("Bee", foreign_key="bee_id")


class BeeMapper(Mapper[Bee]):
    table = "cyc_bees"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)
    cat_id = Column(t.Integer, ForeignKey("cyc_cats.id"), nullable=False)
    cat = BelongsTo("Cat", foreign_key="cat_id")


class CatMapper(Mapper[Cat]):
    table = "cyc_cats"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)
    ant_id = Column(t.Integer, ForeignKey("cyc_ants.id"))  # the only nullable key of the ring
    ant = BelongsTo(Ant, foreign_key="ant_id")


@pytest.mark.parametrize(
    "mappers", list(itertools.permutations([AntMapper, BeeMapper, CatMapper])), ids=lambda ms: "-".join(m.table[4] for m in ms)
)
def test_a_ring_of_three_tables_breaks_at_its_nullable_key_in_any_mapper_order(backend, make_db, count, mappers):
    db = make_db(*mappers)
    with db.session() as s:
        ant = Ant("a")
        ant.bee = Bee("b", cat=Cat("c", ant=ant))
        s.add(ant)
        with count(s, 4):  # cats (ant_id NULL), bees, ants, then the cat's ant_id
            s.flush()
    assert rows(
        backend,
        "SELECT a.name, b.name, c.name, a2.name FROM {cyc_ants} a JOIN {cyc_bees} b ON b.id = a.bee_id "
        "JOIN {cyc_cats} c ON c.id = b.cat_id JOIN {cyc_ants} a2 ON a2.id = c.ant_id",
    ) == [("a", "b", "c", "a")]


# -- no nullable key: refused, naming the whole cycle --------------------------------------------------------


@attrs.define
class Hen:
    name: str
    egg: Egg | None = None
    id: int | None = None


@attrs.define
class Egg:
    name: str
    hen: Hen | None = None
    id: int | None = None


class HenMapper(Mapper[Hen]):
    table = "cyc_hens"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    egg_id = Column(t.Integer, ForeignKey("cyc_eggs.id"), nullable=False)
    egg = BelongsTo("Egg", foreign_key="egg_id")


class EggMapper(Mapper[Egg]):
    table = "cyc_eggs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    laid_by = Column(t.Integer, ForeignKey("cyc_hens.id"), nullable=False)
    hen = BelongsTo(Hen, foreign_key="laid_by")


@pytest.mark.parametrize("order", ["hen-first", "egg-first"])
def test_a_cycle_of_not_null_keys_names_both_tables_and_keys_in_either_order(backend, make_db, count, order):
    db = make_db(*((HenMapper, EggMapper) if order == "hen-first" else (EggMapper, HenMapper)))
    with db.session() as s:
        hen = Hen("Henny")
        hen.egg = Egg("first", hen=hen)
        s.add(hen)
        sent = s.query_count
        with pytest.raises(errors.FlushError) as exc:
            s.flush()
        assert s.query_count == sent  # refused before any row is written
        message = str(exc.value)
        for word in ("cyc_hens", "cyc_eggs", "cyc_hens.egg_id", "cyc_eggs.laid_by", "NOT NULL", "nullable"):
            assert word in message, message
        s.rollback()
        assert hen.id is None and hen.egg.id is None
    assert rows(backend, "SELECT count(*) FROM {cyc_hens}") == [(0,)]
    assert rows(backend, "SELECT count(*) FROM {cyc_eggs}") == [(0,)]
