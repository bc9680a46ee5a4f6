"""The pytest plugin, run by pytest's own pytester on every backend.

Each test writes a small application (domain class, mapper, a function that commits) and a test
file for it, runs pytest on them with ``--mapper-url`` set to the backend, and checks the
outcomes; rows are checked with the bare driver, from outside the test transaction.
"""

from __future__ import annotations

import json
import textwrap

import pytest

pytest_plugins = ["pytester"]

APP = '''
import attrs
from mapper import Column, Mapper
from mapper import types as t


@attrs.define
class Note:
    text: str
    id: int | None = None


class NoteMapper(Mapper[Note]):
    table = "pt_notes"
    id = Column(t.Integer, primary_key=True)
    text = Column(t.String(100), nullable=False)


MAPPERS = [NoteMapper]


def create_note(db, text):
    """Application code: its own session, committed."""
    with db.session() as s:
        s.add(Note(text))
'''

# The inner tests reach the database from outside the plugin's transaction with the bare driver.
RAW = '''
import json, os

BACKEND = json.loads(os.environ["PT_BACKEND"])


def outside_count():
    """Rows of pt_notes, counted on a connection of its own (committed rows only)."""
    name, url = BACKEND["name"], BACKEND["url"]
    if name == "sqlite":
        import sqlite3
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        sql = "SELECT count(*) FROM pt_notes"
    elif name == "postgresql":
        import psycopg
        conn = psycopg.connect(url, autocommit=True)
        sql = "SELECT count(*) FROM pt_notes"
    else:
        import pymysql
        from urllib.parse import urlsplit
        u = urlsplit(url)
        conn = pymysql.connect(host=u.hostname, port=u.port or 3306, user=u.username or "root",
                               password=u.password or "", database=u.path.lstrip("/"), autocommit=True)
        sql = "SELECT count(*) FROM pt_notes"
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return cur.fetchone()[0]
    finally:
        conn.close()
'''


@pytest.fixture
def project(pytester, backend, monkeypatch):
    """The application and the helper module in pytester's directory, mappers named in the ini."""
    pytester.makepyfile(app=APP, raw_helper=RAW)
    pytester.makeini("[pytest]\nmapper_mappers = app:MAPPERS\n")
    monkeypatch.setenv("PT_BACKEND", json.dumps({"name": backend.name, "url": backend.url}))
    monkeypatch.delenv("MAPPER_TEST_URL", raising=False)
    return pytester


def run(pytester, backend, *args):
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", f"--mapper-url={backend.url}", *args)


def test_code_that_commits_leaves_no_rows_after_its_test(project, backend):
    project.makepyfile(
        test_notes=textwrap.dedent(
            '''
            import pytest
            from app import Note, create_note
            from mapper.errors import IntegrityError
            from raw_helper import outside_count


            def test_1_commits(mapper_db, mapper_session):
                create_note(mapper_db, "from the app")          # commits in its own session
                mapper_session.add(Note("from the test"))
                mapper_session.commit()
                # Every session of the test sees what the others committed...
                with mapper_db.session() as s:
                    assert sorted(n.text for n in s.query(Note).all()) == ["from the app", "from the test"]
                # ...and nothing is committed for real.
                assert outside_count() == 0


            def test_2_nothing_left(mapper_db):
                assert outside_count() == 0
                with mapper_db.session() as s:
                    assert s.query(Note).count() == 0


            def test_3_rollback_in_the_test(mapper_session):
                mapper_session.add(Note("kept"))
                mapper_session.commit()
                mapper_session.add(Note("dropped"))
                mapper_session.flush()
                mapper_session.rollback()                       # back to the test's last commit
                assert [n.text for n in mapper_session.query(Note).all()] == ["kept"]
                with mapper_session.begin_nested():
                    mapper_session.add(Note("nested"))
                assert mapper_session.query(Note).count() == 2
                assert outside_count() == 0


            def test_4_left_waiting_for_rollback(mapper_session):
                mapper_session.add(Note(None))                  # NOT NULL: the flush fails
                with pytest.raises(IntegrityError):
                    mapper_session.flush()


            def test_5_nothing_left_again(mapper_session):
                assert mapper_session.query(Note).count() == 0 and outside_count() == 0
            '''
        )
    )
    result = run(project, backend, "-v")
    result.assert_outcomes(passed=5)
    # The schema lived for the run only: created at its start, dropped at its end.
    tables = {r[0].lower() for r in backend.raw(_tables_sql(backend))}
    assert "pt_notes" not in tables


def _tables_sql(backend) -> str:
    if backend.name == "sqlite":
        return "SELECT name FROM sqlite_master WHERE type = 'table'"
    if backend.name == "postgresql":
        return "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
    return "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()"


def test_assert_queries_and_the_max_queries_marker_list_the_statements(project, backend):
    project.makepyfile(
        test_counts=textwrap.dedent(
            '''
            import pytest
            from app import Note


            def test_exact_count_passes(mapper_session, assert_queries):
                with assert_queries(1):
                    assert mapper_session.get(Note, 1) is None
                with assert_queries(0):
                    pass


            def test_exact_count_fails(mapper_session, assert_queries):
                with assert_queries(1):
                    mapper_session.get(Note, 1)
                    mapper_session.get(Note, 2)


            def test_at_most_fails(mapper_session, assert_max_queries):
                with assert_max_queries(1) as recorder:
                    mapper_session.add(Note("a"))
                    mapper_session.flush()
                    mapper_session.get(Note, 99)


            def test_at_most_passes(mapper_session, assert_max_queries):
                with assert_max_queries(2) as recorder:
                    mapper_session.get(Note, 1)
                assert recorder.count == 1 and "pt_notes" in recorder.statements[0]


            @pytest.mark.max_queries(1)
            def test_marker_passes(mapper_session):
                mapper_session.get(Note, 1)


            @pytest.mark.max_queries(1)
            def test_marker_fails(mapper_session):
                mapper_session.get(Note, 1)
                mapper_session.query(Note).where(text="x").all()
            '''
        )
    )
    result = run(project, backend)
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*AssertionError: the block sent 2 statements, expected exactly 1:",
            "*1. SELECT*pt_notes*",
            "*2. SELECT*pt_notes*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*AssertionError: the block sent 2 statements, expected at most 1:", "*1. INSERT*pt_notes*", "*2. SELECT*"]
    )
    result.stdout.fnmatch_lines(
        ["*AssertionError: test_marker_fails sent 2 statements, expected at most 1:", "*1. SELECT*", "*2. SELECT*"]
    )


def test_the_plugin_is_inert_until_turned_on(pytester, backend, monkeypatch):
    monkeypatch.delenv("MAPPER_TEST_URL", raising=False)
    pytester.makepyfile(
        test_inert="def test_needs_it(mapper_session):\n    pass\n\n"
                   "def test_plain():\n    pass\n"
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*fixture 'mapper_session' not found*"])
    # The environment variable turns it on (and names the database).
    monkeypatch.setenv("MAPPER_TEST_URL", backend.url)
    pytester.makeconftest(
        "import pytest\n\n"
        "@pytest.fixture(scope='session')\n"
        "def mapper_mappers():\n"
        "    from app import MAPPERS\n"
        "    return MAPPERS\n"
    )
    pytester.makepyfile(app=APP)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_missing_mappers_are_a_usage_error_naming_the_fix(pytester, backend, monkeypatch):
    monkeypatch.delenv("MAPPER_TEST_URL", raising=False)
    pytester.makepyfile(test_x="def test_x(mapper_session):\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "mapper.pytest_plugin", f"--mapper-url={backend.url}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the mapper fixtures need your mappers: set mapper_mappers = MODULE:ATTRIBUTE*"])


def test_the_entry_point_is_registered_under_the_modules_name():
    import importlib.metadata

    found = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.value == "mapper.pytest_plugin"]
    assert [ep.name for ep in found] == ["mapper.pytest_plugin"]


def test_explicit_p_and_the_entry_point_register_the_plugin_once(pytester, backend, monkeypatch):
    monkeypatch.delenv("MAPPER_TEST_URL", raising=False)
    pytester.makepyfile(app=APP)
    pytester.makeconftest(
        "import pytest\n\n"
        "@pytest.fixture(scope='session')\n"
        "def mapper_mappers():\n"
        "    from app import MAPPERS\n"
        "    return MAPPERS\n"
    )
    pytester.makepyfile(
        test_once=(
            "def test_once(pytestconfig, mapper_session):\n"
            "    pm = pytestconfig.pluginmanager\n"
            "    names = [pm.get_name(p) for p in pm.get_plugins()]\n"
            "    assert names.count('mapper.pytest_plugin') == 1\n"
            "    assert names.count('mapper.pytest_plugin.fixtures') == 1\n"
        )
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "mapper.pytest_plugin", f"--mapper-url={backend.url}")
    result.assert_outcomes(passed=1)


def test_record_queries_and_test_transaction_refuse_misuse(backend):
    from mapper import Database, errors
    from mapper.testing import TestTransaction, record_queries

    db = Database(backend.url)
    try:
        with pytest.raises(errors.ConfigurationError, match=r"^assert_queries\(\) takes an int >= 0, got -1$"):
            with record_queries(db, exactly=-1):
                pass
        with pytest.raises(errors.ConfigurationError, match=r"^assert_max_queries\(\) takes an int >= 0, got '3'$"):
            with record_queries(db, at_most="3"):  # type: ignore[arg-type]
                pass
        with TestTransaction(db):
            with pytest.raises(errors.SessionError, match="a test transaction is already running on this Database"):
                TestTransaction(db).start()
        with pytest.raises(AssertionError, match=r"^the block sent 1 statements, expected exactly 0:\n  1\. SELECT 1"):
            with record_queries(db, exactly=0):
                with db.session() as s:
                    s.execute("SELECT 1")
    finally:
        db.close()
