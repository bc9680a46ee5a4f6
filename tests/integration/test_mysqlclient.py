"""mysqlclient, the optional C-backed MySQL driver, chosen by the URL scheme.

The whole integration suite runs on it in CI (``MAPPER_TEST_MYSQL=mysql+mysqlclient://...``,
after ``scripts/mysqlclient-setup``). These tests make sure such a run really talks through
``MySQLdb``, and check what is particular to the choice: the schemes that make it, values and
errors identical to PyMySQL's, and the statements an executemany INSERT costs.

Without mysqlclient installed the tests that need it skip with the command that installs it;
when MAPPER_REQUIRE_BACKENDS names ``mysqlclient`` (CI's mysqlclient step) they fail instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mapper import Database, errors
from tests.conftest import REQUIRED
from tests.integration.test_types import CASES, FIELDS, Sample, SampleMapper, assert_same
from tests.models import Owner, OwnerMapper

SETUP = "scripts/mysqlclient-setup"


def test_the_suite_talks_through_the_driver_its_url_names(backend):
    """A MAPPER_TEST_MYSQL naming mysqlclient must not quietly run the suite on PyMySQL."""
    with Database(backend.url) as db, db.session() as s:
        s.execute("SELECT 1 AS one")
        module = type(s.connection.raw).__module__
    assert module.split(".")[0] == backend.driver, module


@pytest.fixture
def mysqlclient_url(_servers: dict[str, str | None]) -> str:
    """This run's MySQL scratch database, as a mysql+mysqlclient:// URL."""
    url = _servers["mysql"]
    if url is None:
        reason = "the mysqlclient tests need the MySQL server of MAPPER_TEST_MYSQL"
        if "mysql" in REQUIRED or "mysqlclient" in REQUIRED:
            pytest.fail(f"MAPPER_REQUIRE_BACKENDS includes mysql, but {reason}")
        pytest.skip(reason)
    try:
        import MySQLdb  # noqa: F401
    except ImportError:
        reason = f"mysqlclient is not installed: run `{SETUP}` (the client library, then pip install -e '.[mysqlclient]')"
        if "mysqlclient" in REQUIRED:
            pytest.fail(f"MAPPER_REQUIRE_BACKENDS includes mysqlclient, but {reason}")
        pytest.skip(reason)
    return "mysql+mysqlclient://" + url.split("://", 1)[1]


def pymysql_url(url: str) -> str:
    return "mysql://" + url.split("://", 1)[1]


@pytest.fixture
def both(mysqlclient_url: str) -> Iterator[tuple[Database, Database]]:
    """One Database per driver on the same scratch database, with SampleMapper's table."""
    fast = Database(mysqlclient_url, mappers=[SampleMapper, OwnerMapper])
    slow = Database(pymysql_url(mysqlclient_url), mappers=[SampleMapper, OwnerMapper])
    fast.drop_all()
    fast.create_all()
    try:
        yield fast, slow
    finally:
        fast.drop_all()
        fast.close()
        slow.close()


@pytest.mark.parametrize("scheme", ["mysql+mysqlclient", "mariadb+mysqlclient", "mysql+mysqldb", "mariadb+mysqldb"])
def test_each_mysqlclient_scheme_connects_through_mysqldb(mysqlclient_url, scheme):
    url = scheme + "://" + mysqlclient_url.split("://", 1)[1]
    with Database(url) as db, db.session() as s:
        assert s.execute("SELECT 1 AS one") == [(1,)]
        raw = s.connection.raw
        assert type(raw).__module__ == "MySQLdb.connections"
        assert db.backend == "mysql"
        assert db.url.startswith(f"{scheme}://")


def test_every_value_written_by_one_driver_reads_back_equal_through_the_other(both):
    fast, slow = both
    for case in CASES:
        attr, values = case.values
        for writer, reader in ((fast, slow), (slow, fast)):
            with writer.session() as s:
                objs = [Sample(**{attr: v}) for v in values]
                s.add_all(objs)
                s.flush()
                ids = [o.id for o in objs]
            with reader.session() as s:
                for i, v in zip(ids, values):
                    got = s.get(Sample, i)
                    assert got is not None
                    assert_same(getattr(got, attr), v, f"{case.id}: get() {attr}")
                rows = s.query(Sample).where(SampleMapper.id.in_(ids)).order_by("id").values(attr)
                for (got,), v in zip(rows, values):
                    assert_same(got, v, f"{case.id}: values() {attr}")
    with fast.session() as a, slow.session() as b:
        # Every column as each driver reads it, row by row: the same Python values.
        assert a.query(Sample).order_by("id").values(*FIELDS) == b.query(Sample).order_by("id").values(*FIELDS)


def errors_of(db: Database) -> list[tuple[type[errors.DatabaseError], str | None, str]]:
    """The mapper error class, vendor code and driver of the same three faults on ``db``."""
    found = []
    with db.session() as s:
        s.add(Owner("Tom"))
    for sql in ("INSERT INTO owners (id, name) SELECT id, name FROM owners", "SELECT 1; SELECT 2", "SELECT nope FROM owners"):
        with db.session() as s, pytest.raises(errors.DatabaseError) as info:
            s.execute(sql)
        exc = info.value
        assert exc.__cause__ is exc.orig
        found.append((type(exc), exc.code, type(exc.orig).__module__.split(".")[0]))
    with db.session() as s:
        s.execute("DELETE FROM owners")
    return found


def test_faults_are_the_same_errors_on_both_drivers(both):
    fast, slow = both
    expected = [(errors.IntegrityError, "1062"), (errors.ProgrammingError, "1064"), (errors.ProgrammingError, "1054")]
    assert errors_of(slow) == [(*e, "pymysql") for e in expected]
    # "SELECT 1; SELECT 2" is one failing statement on both: mysqlclient's multi-statement
    # text is turned off, so a parameter can never smuggle in a second statement.
    assert errors_of(fast) == [(*e, "MySQLdb") for e in expected]


def inserts_sent(db: Database, first_id: int, rows: int) -> int:
    """How many INSERT statements the server counts for one flush of ``rows`` new samples
    whose keys are given (no RETURNING needed: one executemany)."""
    with db.session() as s:
        before = int(s.execute("SHOW SESSION STATUS LIKE 'Com_insert'")[0][1])
        s.add_all([Sample(id=first_id + i, label="x" * 90, body="y" * 200) for i in range(rows)])
        s.flush()
        sent = int(s.execute("SHOW SESSION STATUS LIKE 'Com_insert'")[0][1]) - before
    return sent


def test_a_big_insert_costs_the_same_statements_on_both_drivers(both):
    fast, slow = both
    # 3,000 rows of about 330 bytes: one 1 MB statement holds about 3,000 of them.
    sent = inserts_sent(slow, 1, 3000)
    assert 1 <= sent <= 3
    assert inserts_sent(fast, 10_001, 3000) == sent
    with fast.session() as s:
        assert s.query(Sample).count() == 6000


def test_a_connection_closed_on_our_side_is_the_same_error_on_both_drivers(both):
    found: list[Any] = []
    for db in both:
        s = db.session()
        try:
            s.execute("SELECT 1 AS one")
            s.connection.raw.close()
            with pytest.raises(errors.DatabaseError) as info:
                s.execute("SELECT 1 AS one")
            found.append(type(info.value))
        finally:
            s.close()
        with db.session() as again:  # the dead connection was thrown away
            assert again.execute("SELECT 2 AS two") == [(2,)]
    assert found == [errors.InterfaceError, errors.InterfaceError]
