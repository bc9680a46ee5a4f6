"""Which MySQL driver a URL chooses (PyMySQL, or the optional mysqlclient), with no server.

The integration suite runs whole on each driver (CI's mysqlclient step); these tests pin the
choice itself: the schemes, the error that names the extra when the driver is missing, the
SQLAlchemy URL that migrations build, and AsyncDatabase's refusal.
"""

from __future__ import annotations

import sys

import pytest

from mapper import Database, errors
from mapper.aio import AsyncDatabase
from mapper.dialects import dialect_for, parse_url
from mapper.dialects.mysql import MySQLClientDialect, MySQLDialect

MYSQLCLIENT = ["mysql+mysqlclient", "mariadb+mysqlclient", "mysql+mysqldb", "mariadb+mysqldb"]
PYMYSQL = ["mysql", "mariadb", "mysql+pymysql", "mariadb+pymysql"]


@pytest.mark.parametrize("scheme", MYSQLCLIENT)
def test_a_mysqlclient_scheme_chooses_the_mysqlclient_dialect(scheme):
    dialect = dialect_for(parse_url(f"{scheme}://root@127.0.0.1:3306/shop"))
    assert type(dialect) is MySQLClientDialect
    assert dialect.name == "mysql" and dialect.install_extra == "mysqlclient"


@pytest.mark.parametrize("scheme", PYMYSQL)
def test_every_other_mysql_scheme_stays_on_pymysql(scheme):
    dialect = dialect_for(parse_url(f"{scheme}://root@127.0.0.1:3306/shop"))
    assert type(dialect) is MySQLDialect
    assert dialect.install_extra == "mysql"


def test_both_drivers_write_the_same_sql():
    plain, fast = MySQLDialect(), MySQLClientDialect()
    for attr in ("marker", "quote_char", "max_params", "no_limit", "type_names", "table_suffix", "retryable_codes"):
        assert getattr(fast, attr) == getattr(plain, attr), attr
    assert fast.upsert_sql("t", ["a", "b"], 2, ["a"], ["b"], []) == plain.upsert_sql("t", ["a", "b"], 2, ["a"], ["b"], [])


def test_database_on_a_mysqlclient_url_is_a_mysql_database_and_opens_nothing():
    db = Database("mysql+mysqlclient://root@127.0.0.1:1/shop")  # nothing listens on port 1
    try:
        assert db.backend == "mysql"
        assert isinstance(db.engine.dialect, MySQLClientDialect)
    finally:
        db.close()


@pytest.mark.parametrize(
    ("scheme", "module", "extra"), [("mysql+mysqlclient", "MySQLdb", "mysqlclient"), ("mysql", "pymysql", "mysql")]
)
def test_a_missing_driver_names_the_extra_to_install(monkeypatch, scheme, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # the import fails as if not installed
    db = Database(f"{scheme}://root:s3cret@127.0.0.1:1/shop")
    try:
        with pytest.raises(errors.ConfigurationError) as info, db.session() as s:
            s.execute("SELECT 1")
    finally:
        db.close()
    assert str(info.value) == f"the driver for {scheme} is not installed ({module}); pip install 'mapper-uow[{extra}]'"


def test_import_mapper_with_a_mysqlclient_url_imports_no_driver():
    import subprocess

    code = (
        "import sys, mapper; db = mapper.Database('mysql+mysqlclient://root@127.0.0.1:1/shop'); "
        "bad = [m for m in ('MySQLdb', 'pymysql') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql+mysqlclient://app:pw@db:3306/shop", "mysql+mysqldb://app:pw@db:3306/shop"),
        ("mariadb+mysqldb://app:pw@db:3306/shop", "mysql+mysqldb://app:pw@db:3306/shop"),
        ("mysql://app:pw@db:3306/shop", "mysql+pymysql://app:pw@db:3306/shop"),
    ],
)
def test_migrations_name_the_same_driver_to_sqlalchemy(url, expected):
    pytest.importorskip("alembic")
    from mapper.migrations import sqlalchemy_url

    db = Database(url)
    try:
        assert sqlalchemy_url(db) == expected
    finally:
        db.close()


@pytest.mark.parametrize("scheme", MYSQLCLIENT)
def test_async_database_refuses_a_mysqlclient_url(scheme):
    with pytest.raises(errors.ConfigurationError) as info:
        AsyncDatabase(f"{scheme}://root@127.0.0.1:3306/shop")
    assert str(info.value) == (
        f"AsyncDatabase does not take a {scheme}:// URL: mysqlclient has no asyncio interface, and "
        "async sessions talk to MySQL/MariaDB through aiomysql; use mysql:// (pip install 'mapper-uow[async-mysql]')"
    )


def test_the_benchmark_runs_a_mysqlclient_url_on_mysqlclient_in_every_system():
    from benchmarks.backends import parse_backend

    fast = parse_backend("mariadb+mysqlclient://root@127.0.0.1:3306/test")
    assert (fast.kind, fast.driver, fast.url) == ("mysql", "mysqlclient", "mysql+mysqlclient://root@127.0.0.1:3306/test")
    assert fast.sqlalchemy_url == "mysql+mysqldb://root@127.0.0.1:3306/test?charset=utf8mb4"
    plain = parse_backend("mysql+pymysql://root@127.0.0.1:3306/test")
    assert (plain.driver, plain.url) == ("", "mysql://root@127.0.0.1:3306/test")
    assert plain.sqlalchemy_url == "mysql+pymysql://root@127.0.0.1:3306/test?charset=utf8mb4"
    fast.is_mariadb = plain.is_mariadb = True  # as probe() finds on MariaDB
    assert (fast.name, plain.name) == ("mariadb+mysqlclient", "mariadb")  # two columns, not one
