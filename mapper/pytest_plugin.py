"""The pytest plugin: a test database per run, a rolled-back transaction per test, statement counts.

Installed with mapper as a ``pytest11`` entry point, it stays inert (it only declares its
options) until a project turns it on, by any of:

- ``-p mapper.pytest_plugin`` on the command line or in ``addopts``;
- ``pytest_plugins = ["mapper.pytest_plugin"]`` in a ``conftest.py`` when entry points are not
  loaded (``PYTEST_DISABLE_PLUGIN_AUTOLOAD``);
- one of the ini options ``mapper_plugin = true``, ``mapper_mappers`` or ``mapper_url``;
- ``--mapper-url URL`` or the ``MAPPER_TEST_URL`` environment variable.

Then it offers the fixtures ``mapper_url``, ``mapper_mappers``, ``mapper_options``,
``mapper_database`` (one per run, its tables created at the start and dropped at the end),
``mapper_db`` (that Database with every session of the test inside one transaction rolled back
at its end), ``mapper_session``, ``assert_queries`` and ``assert_max_queries``, and the marker
``@pytest.mark.max_queries(n)``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from .database import Database
from .mapping import Mapper
from .session import Session
from .testing import QueryRecorder, TestTransaction, record_queries

__all__ = ["MapperPlugin", "ENV_URL", "DEFAULT_URL", "load_object"]

#: The environment variable naming the test database's URL.
ENV_URL = "MAPPER_TEST_URL"
#: The URL used when none is given: a private in-memory SQLite database.
DEFAULT_URL = "sqlite:///:memory:"
_NAME = "mapper.pytest_plugin"
_MAX_QUERIES = pytest.StashKey[tuple[QueryRecorder, int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mapper", "mapper test database")
    group.addoption(
        "--mapper-url",
        dest="mapper_url",
        default=None,
        help=f"URL of the database the mapper fixtures use (also ${ENV_URL}; default {DEFAULT_URL})",
    )
    parser.addini("mapper_plugin", "turn the mapper fixtures on", type="bool", default=False)
    parser.addini("mapper_url", f"URL of the test database (--mapper-url and ${ENV_URL} win)", default="")
    parser.addini("mapper_mappers", "MODULE:ATTRIBUTE naming the list of Mapper classes to test with", default="")


def _active(config: pytest.Config) -> bool:
    pm = config.pluginmanager
    module = pm.get_plugin(_NAME)
    from_entry_point = any(plugin is module for plugin, _ in pm.list_plugin_distinfo())
    return bool(
        _NAME in (getattr(config.option, "plugins", None) or [])
        or (module is not None and not from_entry_point)
        or config.getini("mapper_plugin")
        or config.getini("mapper_mappers")
        or config.getini("mapper_url")
        or config.getoption("mapper_url", None)
        or os.environ.get(ENV_URL)
    )


def pytest_configure(config: pytest.Config) -> None:
    if not _active(config) or config.pluginmanager.has_plugin(f"{_NAME}.fixtures"):
        return
    config.addinivalue_line(
        "markers", "max_queries(n): fail the test when it sends more than n statements to mapper_database"
    )
    config.pluginmanager.register(MapperPlugin(), f"{_NAME}.fixtures")


def load_object(spec: str) -> Any:
    """The object that ``"package.module:attribute"`` names (the ``mapper_mappers`` ini option).

    Raises:
        pytest.UsageError: the spec is malformed, or the module or attribute does not exist.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        msg = f"mapper_mappers = {spec!r}: write MODULE:ATTRIBUTE, for example myapp.db:MAPPERS"
        raise pytest.UsageError(msg)
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        msg = f"mapper_mappers = {spec!r}: {type(exc).__name__}: {exc}"
        raise pytest.UsageError(msg) from exc
    return found


class MapperPlugin:
    """The fixtures, the marker and its check; registered when the plugin is turned on."""

    @pytest.fixture(scope="session")
    def mapper_url(self, pytestconfig: pytest.Config) -> str:
        """The test database's URL: ``--mapper-url``, ``$MAPPER_TEST_URL``, ini ``mapper_url``, or in-memory SQLite."""
        url = pytestconfig.getoption("mapper_url", None) or os.environ.get(ENV_URL) or pytestconfig.getini("mapper_url")
        return str(url or DEFAULT_URL)

    @pytest.fixture(scope="session")
    def mapper_mappers(self, pytestconfig: pytest.Config) -> list[type[Mapper[Any]]]:
        """The Mapper classes to test with, from the ini option ``mapper_mappers`` (override it in conftest.py)."""
        spec = pytestconfig.getini("mapper_mappers")
        if not spec:
            msg = (
                "the mapper fixtures need your mappers: set mapper_mappers = MODULE:ATTRIBUTE in the "
                "pytest configuration, or define a session-scoped mapper_mappers fixture in conftest.py"
            )
            raise pytest.UsageError(msg)
        return list(load_object(str(spec)))

    @pytest.fixture(scope="session")
    def mapper_options(self) -> dict[str, Any]:
        """More ``Database(...)`` keyword arguments (none; override it in conftest.py)."""
        return {}

    @pytest.fixture(scope="session")
    def mapper_database(
        self, mapper_url: str, mapper_mappers: list[type[Mapper[Any]]], mapper_options: dict[str, Any]
    ) -> Iterator[Database]:
        """The Database of the test run: its tables dropped and created at the start, dropped at the end."""
        db = Database(mapper_url, mappers=mapper_mappers, **mapper_options)
        try:
            db.drop_all()
            db.create_all()
            yield db
            db.drop_all()
        finally:
            db.close()

    @pytest.fixture
    def mapper_db(self, mapper_database: Database) -> Iterator[Database]:
        """The run's Database, with every session of this test in one transaction rolled back at the end.

        The code under test may commit: a session's commit() releases a savepoint instead, so
        its sessions see each other's work and nothing outlives the test.
        """
        with TestTransaction(mapper_database):
            yield mapper_database

    @pytest.fixture
    def mapper_session(self, mapper_db: Database) -> Iterator[Session]:
        """A session of ``mapper_db``, closed after the test (the test transaction undoes its work).

        It is closed, not committed, so a test that leaves it waiting for ``rollback()`` (after
        a flush it expected to fail) ends cleanly.
        """
        s = mapper_db.session()
        try:
            yield s
        finally:
            s.close()

    @pytest.fixture
    def assert_queries(self, mapper_database: Database) -> Callable[[int], AbstractContextManager[QueryRecorder]]:
        """``with assert_queries(n): ...`` fails unless the block sends exactly ``n`` statements."""
        return lambda n: record_queries(mapper_database, exactly=n)

    @pytest.fixture
    def assert_max_queries(self, mapper_database: Database) -> Callable[[int], AbstractContextManager[QueryRecorder]]:
        """``with assert_max_queries(n): ...`` fails when the block sends more than ``n`` statements."""
        return lambda n: record_queries(mapper_database, at_most=n)

    @pytest.fixture(autouse=True)
    def _mapper_max_queries(self, request: pytest.FixtureRequest) -> Iterator[None]:
        """For a test marked ``max_queries(n)``: record its statements (checked after its call)."""
        marker = request.node.get_closest_marker("max_queries")
        if marker is None:
            yield
            return
        limit = _marker_limit(marker.args, marker.kwargs)
        db: Database = request.getfixturevalue("mapper_database")
        recorder = QueryRecorder()
        request.node.stash[_MAX_QUERIES] = (recorder, limit)
        with db.on_statement(recorder):
            yield

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        watched = item.stash.get(_MAX_QUERIES, None)
        if watched is None:
            return (yield)
        recorder, limit = watched
        # Only the test's own statements count, not those of the fixtures set up before it.
        recorder.events.clear()
        result = yield
        recorder.check(at_most=limit, what=item.name)
        return result


def _marker_limit(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    n = args[0] if args else kwargs.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        msg = f"@pytest.mark.max_queries takes one int >= 0, got {args or kwargs!r}"
        raise pytest.UsageError(msg)
    return n
