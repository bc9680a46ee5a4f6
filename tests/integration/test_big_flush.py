"""Big flushes on every backend: 100,000 versioned and composite-key rows updated and deleted in
a handful of statements, a stale row among them named, and errors of huge statements kept readable."""

from __future__ import annotations

import math

import attrs
import pytest

from mapper import Column, Mapper, errors
from mapper import types as t

N = 100_000


@attrs.define
class BigDoc:
    title: str
    n: int = 0
    id: int | None = None
    version: int | None = None


class BigDocMapper(Mapper[BigDoc]):
    table = "big_docs"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(50), nullable=False)
    n = Column(t.Integer, nullable=False)
    version = Column(t.Integer, nullable=False, version=True)


@attrs.define
class Cell:
    row: int
    col: int
    value: int = 0


class CellMapper(Mapper[Cell]):
    table = "big_cells"
    row = Column(t.Integer, primary_key=True)
    col = Column(t.Integer, primary_key=True)
    value = Column(t.Integer, nullable=False)


def _statements(backend, db, ncols):
    """Statements for N rows matched by ``ncols`` key (and version) columns, per backend.

    PostgreSQL binds one array per column, 20,000 rows a statement. SQLite and MariaDB cut
    row-value IN lists to the live parameter limit (250,000 parameters on this SQLite build,
    MariaDB's packet size / 32): one statement here. An UPDATE there (``ncols`` 0) binds its
    rows as a table of values, 1,000 rows a statement (the parameter limits allow more).
    """
    d = db.engine.dialect
    if backend.name == "postgresql":
        assert d.array_dml_rows == 20_000
        return math.ceil(N / d.array_dml_rows)
    if ncols == 0:
        assert d.update_values_rows == 1000 and d.max_params // 4 >= 1000
        return math.ceil(N / d.update_values_rows)
    return math.ceil(N / min(d.max_params // ncols, d.max_row_values))


def _seed_docs(db):
    with db.session() as s:
        s.add_all([BigDoc(f"t{i}", n=i) for i in range(N)])


def _seed_cells(db):
    with db.session() as s:
        s.add_all([Cell(i // 250, i % 250, value=i) for i in range(N)])


def _docs(backend):
    return backend.raw(
        f"SELECT count(*), sum(n), min(version), max(version) FROM {backend.q('big_docs')}"
    )[0]


@pytest.mark.slow
def test_100000_versioned_rows_are_updated_then_deleted_in_a_handful_of_statements(backend, make_db, count):
    db = make_db(BigDocMapper)
    _seed_docs(db)
    with db.session() as s:
        docs = s.query(BigDoc).all()
        assert len(docs) == N
        for d in docs:
            d.n += 1
        with count(s, _statements(backend, db, 0)):
            s.flush()
        s.commit()
        assert {d.version for d in docs} == {2}
        assert [int(v) for v in _docs(backend)] == [N, N * (N - 1) // 2 + N, 2, 2]
        for d in docs:
            s.delete(d)
        with count(s, _statements(backend, db, 2)):
            s.flush()
        s.commit()
    assert int(_docs(backend)[0]) == 0
    if backend.name == "postgresql":
        assert _statements(backend, db, 2) == 5
    else:
        assert _statements(backend, db, 2) <= 5


@pytest.mark.slow
def test_100000_composite_key_rows_are_updated_then_deleted_in_a_handful_of_statements(backend, make_db, count):
    db = make_db(CellMapper)
    _seed_cells(db)
    with db.session() as s:
        cells = s.query(Cell).all()
        assert len(cells) == N
        for c in cells:
            c.value = c.row * 1000 + c.col
        with count(s, _statements(backend, db, 0)):
            s.flush()
        s.commit()
        wrong = backend.raw(
            f"SELECT count(*) FROM {backend.q('big_cells')} WHERE {backend.q('value')} <> "
            f"{backend.q('row')} * 1000 + {backend.q('col')}"
        )
        assert wrong == [(0,)]
        assert backend.raw(f"SELECT count(*) FROM {backend.q('big_cells')}") == [(N,)]
        for c in cells:
            s.delete(c)
        with count(s, _statements(backend, db, 2)):
            s.flush()
        s.commit()
    assert backend.raw(f"SELECT count(*) FROM {backend.q('big_cells')}") == [(0,)]


@pytest.mark.slow
def test_a_stale_row_among_100000_updates_is_named_and_nothing_is_written(backend, make_db):
    db = make_db(BigDocMapper)
    _seed_docs(db)
    with db.session() as s:
        docs = s.query(BigDoc).order_by("id").all()
        victim = docs[N // 2]
        s.commit()
        # Another writer moves the row to the very version this flush would write.
        backend.raw(f"UPDATE {backend.q('big_docs')} SET version = version + 1, title = ? WHERE id = ?", ("theirs", victim.id))
        for d in docs:
            d.n += 1
        with pytest.raises(errors.StaleDataError) as info:
            s.flush()
        text = str(info.value)
        assert f"UPDATE of BigDoc matched {N - 1} of {N} rows" in text
        assert f"stale: BigDoc(id={victim.id!r}) (version 2 in the database, 1 when read)." in text
        assert "not identified" not in text
        with pytest.raises(errors.PendingRollbackError):
            s.get(BigDoc, victim.id)
        # Nothing was written: every n as seeded, only the other writer's version moved.
        assert [int(v) for v in _docs(backend)] == [N, N * (N - 1) // 2, 1, 2]
        s.rollback()
        assert (victim.n, victim.version) == (N // 2, 1)


@pytest.mark.slow
def test_a_stale_row_among_100000_deletes_is_named_and_nothing_is_deleted(backend, make_db):
    db = make_db(BigDocMapper)
    _seed_docs(db)
    with db.session() as s:
        docs = s.query(BigDoc).order_by("id").all()
        victim = docs[N - 7]
        s.commit()
        backend.raw(f"UPDATE {backend.q('big_docs')} SET version = 5 WHERE id = ?", (victim.id,))
        for d in docs:
            s.delete(d)
        with pytest.raises(errors.StaleDataError) as info:
            s.flush()
        text = str(info.value)
        assert f"BigDoc(id={victim.id!r}) (version 5 in the database, 1 when read)" in text
        assert "DELETE of BigDoc matched" in text
        with pytest.raises(errors.PendingRollbackError):
            s.get(BigDoc, victim.id)
        assert [int(v) for v in _docs(backend)] == [N, N * (N - 1) // 2, 1, 5]
        s.rollback()
        assert victim in s


@pytest.mark.slow
def test_a_composite_key_row_gone_among_100000_updates_is_named(backend, make_db):
    db = make_db(CellMapper)
    _seed_cells(db)
    with db.session() as s:
        cells = s.query(Cell).all()
        s.commit()
        backend.raw(f"DELETE FROM {backend.q('big_cells')} WHERE {backend.q('row')} = ? AND {backend.q('col')} = ?", (123, 45))
        for c in cells:
            c.value += 1
        with pytest.raises(errors.StaleDataError) as info:
            s.flush()
        text = str(info.value)
        assert f"UPDATE of Cell matched {N - 1} of {N} rows" in text
        assert "Cell(row=123, col=45) (deleted)" in text
        s.rollback()
    assert backend.raw(f"SELECT count(*), sum({backend.q('value')}) FROM {backend.q('big_cells')}") == [
        (N - 1, N * (N - 1) // 2 - (123 * 250 + 45))
    ]


# -- errors of huge statements stay readable ------------------------------------------------------


def test_integrity_error_inside_a_10000_row_insert_is_readable_and_keeps_every_parameter(backend, make_db):
    db = make_db(CellMapper)
    backend.raw(f"INSERT INTO {backend.q('big_cells')} VALUES (7000, 0, -1)")  # row 7,000's key, taken
    rows = [Cell(i, 0, value=i) for i in range(10_000)]
    with db.session() as s:
        s.add_all(rows)
        with pytest.raises(errors.IntegrityError) as info:
            s.flush()
        s.rollback()
    err = info.value
    text = str(err)
    assert len(text) < 3_000, len(text)
    assert type(err) is errors.IntegrityError and "[SQL: INSERT INTO" in text
    assert "10,000" in text  # how many parameter rows (or array values) there were
    # The attributes keep everything: 10,000 rows of 3 values, as rows or as one array per column.
    assert sum(len(p) for p in err.params) == 30_000
    assert backend.raw(f"SELECT count(*) FROM {backend.q('big_cells')}") == [(1,)]


def test_huge_failing_statement_shows_the_first_1000_characters(backend, make_db):
    db = make_db(CellMapper)
    sql = "SELECT 1 FROM no_such_table WHERE x IN (" + ", ".join(f"{i}" for i in range(40_000)) + ")"
    with db.session() as s:
        with pytest.raises(errors.ProgrammingError) as info:
            s.execute(sql)
    err = info.value
    text = str(err)
    assert len(sql) > 200_000
    assert err.statement == sql
    assert len(text) < 3_500, len(text)
    assert f"[SQL: {sql[:1000]}... ({len(sql) - 1000:,} more characters; all of it in .statement)]" in text


def test_huge_parameter_lists_show_their_first_rows_and_their_count():
    err = errors.DatabaseError("boom", statement="UPDATE t SET a = ? WHERE id = ?", params=[(i, "x" * 500) for i in range(10_000)])
    text = str(err)
    assert "[parameters: 10,000 rows, the first 5: [(0, 'xxxx" in text
    assert "...(502 characters)" in text
    assert len(text) < 1_000
    flat = errors.DatabaseError("boom", statement="INSERT ...", params=list(range(30_000)))
    assert "[parameters: 30,000 values, the first 10: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...]]" in str(flat)
    arrays = errors.DatabaseError("boom", statement="INSERT ... unnest", params=[list(range(20_000)), ["a"] * 20_000])
    assert "[parameters: [[0, 1, 2, 3, 4, ... 20,000 in all], ['a', 'a', 'a', 'a', 'a', ... 20,000 in all]]]" in str(arrays)
    small = errors.DatabaseError("boom", statement="SELECT ?", params=[1])
    assert str(small) == "boom\n[SQL: SELECT ?]\n[parameters: [1]]"


@pytest.mark.slow
def test_deleting_10000_composite_key_parents_detaches_their_unloaded_children(backend, make_db, count):
    from tests.rel_models import Box, BoxMapper, Shelf, ShelfMapper

    n = 10_000
    db = make_db(ShelfMapper, BoxMapper)
    with db.session() as s:
        s.add_all([Shelf("attic", i, f"s{i}", boxes=[Box(f"b{i}")]) for i in range(n)])
    with db.session() as s:
        shelves = s.query(Shelf).all()
        for shelf in shelves:
            s.delete(shelf)
        # The boxes are not loaded: one UPDATE ... SET shelf = NULL by the shelves' keys, cut to
        # the longest row-value list PostgreSQL parses (1,000 rows), then the shelves' DELETE.
        d = db.engine.dialect
        nullify = math.ceil(n / min(d.max_params // 2, d.max_row_values))
        with count(s, nullify + 1):
            s.flush()
        assert nullify == (10 if backend.name == "postgresql" else 1)
    assert backend.raw(f"SELECT count(*) FROM {backend.q('rel_shelves')}") == [(0,)]
    assert backend.raw(f"SELECT count(*) FROM {backend.q('rel_boxes')} WHERE shelf_room IS NULL AND shelf_number IS NULL") == [(n,)]


def test_a_row_changed_elsewhere_to_the_very_values_written_is_counted_not_guessed(backend, make_db):
    db = make_db(BigDocMapper)
    with db.session() as s:
        s.add_all([BigDoc(f"t{i}", n=i) for i in range(30)])
    with db.session() as s:
        docs = s.query(BigDoc).order_by("id").all()
        s.commit()
        # Another writer does exactly what this session is about to do to row 4.
        backend.raw(f"UPDATE {backend.q('big_docs')} SET n = n + 1, version = 2 WHERE id = ?", (docs[3].id,))
        for d in docs:
            d.n += 1
        with pytest.raises(errors.StaleDataError) as info:
            s.flush()
        assert str(info.value).startswith(
            "UPDATE of BigDoc matched 29 of 30 rows; stale: 1 row changed elsewhere to exactly the values "
            "and version this flush writes (not identified)."
        )
        s.rollback()
    assert backend.raw(f"SELECT sum(n), sum(version) FROM {backend.q('big_docs')}") == [(sum(range(30)) + 1, 31)]


@pytest.mark.slow
def test_including_10000_composite_key_references_loads_them_in_chunks(backend, make_db, count):
    from tests.rel_models import Box, BoxMapper, Shelf, ShelfMapper

    n = 10_000
    db = make_db(ShelfMapper, BoxMapper)
    with db.session() as s:
        s.add_all([Shelf("attic", i, f"s{i}", boxes=[Box(f"b{i}")]) for i in range(n)])
    with db.session() as s:
        # The shelves by their two-column key: row-value lists cut like the flush's.
        chunks = math.ceil(n / db.engine.dialect.keys_per_statement(2, n))
        with count(s, 1 + chunks):
            boxes = s.query(Box).include("shelf").all()
        assert chunks == (10 if backend.name == "postgresql" else 1)
        assert all(b.shelf.label == f"s{b.shelf.number}" and b.content == f"b{b.shelf.number}" for b in boxes)
