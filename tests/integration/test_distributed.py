"""The distributed-SQL profile (CockroachDB, YugabyteDB, TiDB, Vitess), each point run here.

- UUID keys made by the application, with relations, includes and cascades over them;
- cascades done by the unit of work on tables that have no foreign keys at all;
- SERIALIZABLE transactions whose 40001 failures ``db.transaction(retries=N)`` runs again
  (PostgreSQL here; CockroachDB and YugabyteDB report conflicts the same way);
- the MySQL-wire conflict codes of TiDB classified as retryable.
"""

from __future__ import annotations

import uuid

import attrs
import pytest

from mapper import BelongsTo, Column, Database, ForeignKey, HasMany, Mapper, errors
from mapper import types as t


@attrs.define
class Shelf:
    name: str
    books: list[Book] = attrs.Factory(list)
    id: uuid.UUID = attrs.Factory(uuid.uuid4)


@attrs.define
class Book:
    title: str
    shelf: Shelf | None = None
    id: uuid.UUID = attrs.Factory(uuid.uuid4)


class ShelfMapper(Mapper[Shelf]):
    table = "ds_shelves"
    id = Column(t.Uuid, primary_key=True)
    name = Column(t.String(40), nullable=False)
    books = HasMany(Book, foreign_key="shelf_id", inverse="shelf", cascade="all", order_by="title")


class BookMapper(Mapper[Book]):
    table = "ds_books"
    id = Column(t.Uuid, primary_key=True)
    title = Column(t.String(40), nullable=False)
    shelf_id = Column(t.Uuid, ForeignKey("ds_shelves.id", on_delete="CASCADE"), index=True)
    shelf = BelongsTo(Shelf, foreign_key="shelf_id", inverse="books")


# The same graph as TiDB or a sharded Vitess keyspace may have to hold it: no foreign keys.
@attrs.define
class Crate:
    name: str
    items: list[Item] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Item:
    name: str
    crate: Crate | None = None
    id: int | None = None


class CrateMapper(Mapper[Crate]):
    table = "ds_crates"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(40), nullable=False)
    items = HasMany(Item, foreign_key="crate_id", inverse="crate", cascade="all", order_by="name")


class ItemMapper(Mapper[Item]):
    table = "ds_items"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(40), nullable=False)
    crate_id = Column(t.Integer, index=True)  # no ForeignKey: the database checks nothing
    crate = BelongsTo(Crate, foreign_key="crate_id", inverse="items")


@attrs.define
class Counter:
    name: str
    value: int = 0
    id: int | None = None


class CounterMapper(Mapper[Counter]):
    table = "ds_counters"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(40), nullable=False)
    value = Column(t.Integer, nullable=False)


def _foreign_keys(backend, table: str) -> int:
    if backend.name == "sqlite":
        return len(backend.raw(f"PRAGMA foreign_key_list({table})"))
    schema = "DATABASE()" if backend.name == "mysql" else "current_schema()"
    rows = backend.raw(
        "SELECT count(*) FROM information_schema.table_constraints "
        f"WHERE constraint_type = 'FOREIGN KEY' AND table_name = ? AND table_schema = {schema}",
        (table,),
    )
    return int(rows[0][0])


def test_uuid_keys_made_by_the_application(backend, make_db, count):
    db = make_db(ShelfMapper, BookMapper)
    shelf = Shelf("fiction", books=[Book("Emma"), Book("Dune")])
    keys = {shelf.id, *(b.id for b in shelf.books)}
    with db.session() as s:
        with count(s, 2):  # one INSERT a table: the keys need no round trip back
            s.add(shelf)
            s.flush()
    assert len(keys) == 3 and shelf.id in keys
    assert {uuid.UUID(str(r[0])) for r in backend.raw(f"SELECT id FROM {backend.q('ds_books')}")} == {
        b.id for b in shelf.books
    }
    with db.session() as s:
        (found,) = s.query(Shelf).include("books").all()
        assert found.id == shelf.id and isinstance(found.id, uuid.UUID)
        assert [(b.title, b.shelf is found) for b in found.books] == [("Dune", True), ("Emma", True)]
        assert s.get(Book, shelf.books[0].id).title == "Emma"
        s.delete(found)
    assert backend.raw(f"SELECT count(*) FROM {backend.q('ds_books')}") == [(0,)]


_NO_FK_DDL = {
    "sqlite": [
        "CREATE TABLE ds_crates (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL)",
        "CREATE TABLE ds_items (id INTEGER PRIMARY KEY, name VARCHAR(40) NOT NULL, crate_id INTEGER)",
    ],
    "postgresql": [
        "CREATE TABLE ds_crates (id SERIAL PRIMARY KEY, name VARCHAR(40) NOT NULL)",
        "CREATE TABLE ds_items (id SERIAL PRIMARY KEY, name VARCHAR(40) NOT NULL, crate_id INTEGER)",
    ],
    "mysql": [
        "CREATE TABLE ds_crates (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL)",
        "CREATE TABLE ds_items (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(40) NOT NULL, crate_id INT)",
    ],
}


def test_cascades_at_the_orm_level_with_no_foreign_keys_in_the_database(backend, make_db, count):
    # The schema as a TiDB or sharded Vitess deployment holds it: made by the migration tool,
    # without FOREIGN KEY clauses. The mappers declare no on_delete rule, so the unit of work
    # does every cascade itself.
    db = make_db(CrateMapper, ItemMapper, create=False)
    for sql in _NO_FK_DDL[backend.name]:
        backend.raw(sql)
    assert _foreign_keys(backend, "ds_items") == 0
    with db.session() as s:
        s.add_all([Crate("a", items=[Item("a1"), Item("a2")]), Crate("b", items=[Item("b1")]), Crate("c", items=[Item("c1")])])
    with db.session() as s:
        a = s.query(Crate).where(name="a").one()
        a.items.remove(a.items[0])  # an orphan: "all" deletes it
        s.flush()
        s.delete(a)
        b = s.query(Crate).where(name="b").one()
        s.delete(b)  # its items never loaded: the unit of work finds and deletes them
    q = backend.q
    assert backend.raw(f"SELECT name FROM {q('ds_crates')}") == [("c",)]
    c_id = backend.raw(f"SELECT id FROM {q('ds_crates')}")[0][0]
    assert backend.raw(f"SELECT name, crate_id FROM {q('ds_items')}") == [("c1", c_id)]


def test_a_serialization_failure_is_40001_and_retryable(backend, make_db):
    if backend.name != "postgresql":
        pytest.skip("SQLSTATE 40001 under SERIALIZABLE is PostgreSQL's (as CockroachDB's and YugabyteDB's)")
    db = make_db(CounterMapper, isolation_level="SERIALIZABLE")
    with db.session() as s:
        s.add(Counter("c"))
    first, second = db.session(), db.session()
    try:
        total = sum(c.value for c in first.query(Counter).all())
        sum(c.value for c in second.query(Counter).all())
        first.add(Counter("from-first", total + 1))
        second.add(Counter("from-second", total + 1))
        first.commit()
        with pytest.raises(errors.DatabaseError) as caught:
            second.commit()
        assert caught.value.code == "40001" and caught.value.retryable
        second.rollback()
    finally:
        first.close()
        second.close()


def test_serializable_work_is_run_again_after_40001_and_counts_exactly(backend, make_db):
    if backend.name != "postgresql":
        pytest.skip("SQLSTATE 40001 under SERIALIZABLE is PostgreSQL's (as CockroachDB's and YugabyteDB's)")
    db = make_db(CounterMapper, isolation_level="SERIALIZABLE")
    with db.session() as s:
        s.add(Counter("c"))
    runs = []

    @db.transaction(retries=3, backoff=0.001)
    def bump(s):
        counter = s.query(Counter).where(name="c").one()
        runs.append(counter.value)
        if len(runs) == 1:  # someone else changes the row after this attempt read it
            with db.session() as other:
                other.query(Counter).where(name="c").one().value += 10
        counter.value += 1
        s.add(Counter(f"log{len(runs)}", counter.value))

    bump()
    assert runs == [0, 10]  # the second attempt read the other writer's value
    assert backend.raw("SELECT name, value FROM ds_counters ORDER BY name") == [("c", 11), ("log2", 11)]


@pytest.mark.parametrize("code", [1213, 8002, 8005, 8022, 9007])
def test_mysql_wire_conflicts_are_retryable(code):
    import pymysql

    from mapper.dialects import dialect_for, parse_url

    dialect = dialect_for(parse_url("mysql://root@127.0.0.1/x"))
    exc = pymysql.err.OperationalError(code, "Write Conflict")
    assert dialect.error_code(exc) == str(code)
    assert dialect.error_code(exc) in dialect.retryable_codes
