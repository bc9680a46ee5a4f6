"""Driver errors become mapper.errors, the same class for the same fault on every backend.

Also: the statement log (echo), passwords kept out of messages, and bad Database options.
"""

from __future__ import annotations

import logging
import re

import attrs
import pytest

from mapper import Column, Database, ForeignKey, Mapper, errors
from mapper import types as t
from tests.models import Owner, OwnerMapper, Pug, PugMapper


@attrs.define
class Kennel:
    name: str
    id: int | None = None


@attrs.define
class Dog:
    name: str
    kennel_id: int | None = None
    id: int | None = None


class KennelMapper(Mapper[Kennel]):
    table = "err_kennels"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)


class DogMapper(Mapper[Dog]):
    table = "err_dogs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    kennel_id = Column(t.Integer, ForeignKey("err_kennels.id"))


def flat_params(params) -> list:
    out = []
    for p in params or ():
        if isinstance(p, (list, tuple)):
            out.extend(flat_params(p))
        else:
            out.append(p)
    return out


def check_translated(exc: errors.DatabaseError, backend, klass: type[errors.DatabaseError]) -> None:
    assert type(exc) is klass, f"{backend.name}: expected {klass.__name__}, got {type(exc).__name__}: {exc}"
    assert isinstance(exc, errors.DatabaseError) and isinstance(exc, errors.MapperError)
    assert isinstance(exc.orig, backend.driver_error())
    assert exc.__cause__ is exc.orig
    assert isinstance(exc.statement, str) and exc.statement


def test_unique_violation_is_integrity_error(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add(Owner("Tom"))
    s = db.session()
    try:
        s.add(Owner("Tom"))
        with pytest.raises(errors.IntegrityError) as info:
            s.flush()
        check_translated(info.value, backend, errors.IntegrityError)
        assert "INSERT" in info.value.statement.upper()
        assert "owners" in info.value.statement
        assert "Tom" in flat_params(info.value.params)
        assert "[SQL: " in str(info.value)
        s.rollback()
    finally:
        s.close()
    assert backend.raw(f"SELECT name FROM {backend.q('owners')}") == [("Tom",)]


def test_unique_violation_through_execute(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    backend.raw(f"INSERT INTO {backend.q('owners')} (name) VALUES (?)", ("Ann",))
    s = db.session()
    try:
        with pytest.raises(errors.IntegrityError) as info:
            s.execute("INSERT INTO owners (name) VALUES (:name)", {"name": "Ann"})
        check_translated(info.value, backend, errors.IntegrityError)
        assert list(info.value.params) == ["Ann"]
        assert "owners" in info.value.statement
        s.rollback()
    finally:
        s.close()


def test_not_null_violation_is_integrity_error(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    s = db.session()
    try:
        s.add(Owner(None))
        with pytest.raises(errors.IntegrityError) as info:
            s.flush()
        check_translated(info.value, backend, errors.IntegrityError)
        assert "INSERT" in info.value.statement.upper()
        s.rollback()
        with pytest.raises(errors.IntegrityError) as info:
            s.execute("INSERT INTO owners (name) VALUES (:name)", {"name": None})
        check_translated(info.value, backend, errors.IntegrityError)
        assert list(info.value.params) == [None]
        s.rollback()
    finally:
        s.close()
    assert backend.raw(f"SELECT count(*) FROM {backend.q('owners')}") == [(0,)]


def test_foreign_key_violation_is_integrity_error(backend, make_db):
    db = make_db(KennelMapper, DogMapper)
    s = db.session()
    try:
        s.add(Dog("Rex", kennel_id=4242))
        with pytest.raises(errors.IntegrityError) as info:
            s.flush()
        check_translated(info.value, backend, errors.IntegrityError)
        assert "err_dogs" in info.value.statement
        assert 4242 in flat_params(info.value.params)
        s.rollback()
    finally:
        s.close()
    with db.session() as s:
        k = Kennel("Home")
        s.add(k)
        s.flush()
        s.add(Dog("Rex", kennel_id=k.id))
    s = db.session()
    try:
        # deleting a referenced row (no ON DELETE rule) is refused by the database
        with pytest.raises(errors.IntegrityError) as info:
            s.execute("DELETE FROM err_kennels WHERE id = :id", {"id": k.id})
        check_translated(info.value, backend, errors.IntegrityError)
        assert list(info.value.params) == [k.id]
        s.rollback()
    finally:
        s.close()
    assert backend.raw(f"SELECT name FROM {backend.q('err_kennels')}") == [("Home",)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELEC 1",
        "SELECT * FROM owners WHERE",
        "SELECT * FROM no_such_table_here",
        "SELECT no_such_column FROM owners",
        "INSERT INTO owners (no_such_column) VALUES (:v)",
        "UPDATE no_such_table_here SET x = :v",
        "SELECT 'unterminated",
    ],
)
def test_bad_sql_is_programming_error(backend, make_db, sql):
    db = make_db(OwnerMapper, PugMapper)
    s = db.session()
    try:
        with pytest.raises(errors.ProgrammingError) as info:
            s.execute(sql, {"v": 1} if ":v" in sql else None)
        check_translated(info.value, backend, errors.ProgrammingError)
        marker = "?" if backend.name == "sqlite" else "%s"
        assert info.value.statement == sql.replace(":v", marker)
        s.rollback()
    finally:
        s.close()


def test_error_leaves_session_usable_after_rollback(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        with pytest.raises(errors.ProgrammingError):
            s.execute("SELECT * FROM no_such_table_here")
        s.rollback()
        assert s.execute("SELECT count(*) AS n FROM owners")[0].n == 0


# -- the statement log ---------------------------------------------------------------------------


def _sql_records(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "mapper.sql"]


TIME = re.compile(r"\d+(\.\d+)? ?ms")


def test_echo_logs_statements_parameters_and_time(backend, make_db, caplog):
    db = make_db(OwnerMapper, PugMapper, echo=True)
    caplog.set_level(logging.INFO, logger="mapper.sql")
    caplog.clear()
    with db.session() as s:
        s.add(Owner("Logan"))
        s.flush()
        s.query(Owner).where(name="Logan").all()
    messages = _sql_records(caplog)
    inserts = [m for m in messages if m.upper().startswith("INSERT") and "owners" in m]
    selects = [m for m in messages if m.upper().startswith("SELECT") and "owners" in m]
    assert len(inserts) == 1 and len(selects) == 1, messages
    for m in inserts + selects:
        assert "'Logan'" in m
        assert TIME.search(m), m
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == "mapper.sql")


def test_echo_logs_parameters_of_batched_statements(backend, make_db, caplog):
    db = make_db(OwnerMapper, PugMapper, echo=True)
    with db.session() as s:
        s.add_all([Pug("Cody", age=1), Pug("Doug", age=2)])
    caplog.set_level(logging.INFO, logger="mapper.sql")
    caplog.clear()
    with db.session() as s:
        cody, doug = s.query(Pug).order_by("name").all()
        cody.age = 41
        doug.age = 42
        s.flush()  # one batched UPDATE for both rows
    updates = [m for m in _sql_records(caplog) if m.upper().startswith("UPDATE")]
    assert updates, _sql_records(caplog)
    logged = " ".join(updates)
    assert "41" in logged and "42" in logged, updates
    assert all(TIME.search(m) for m in updates)


def test_no_log_without_echo(backend, make_db, caplog):
    db = make_db(OwnerMapper, PugMapper)
    caplog.set_level(logging.INFO, logger="mapper.sql")
    caplog.clear()
    with db.session() as s:
        s.query(Owner).all()
    assert _sql_records(caplog) == []


# -- passwords --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres:s3cret@127.0.0.1:1/test",
        "mysql://root:s3cret@127.0.0.1:1/test",
    ],
)
def test_password_never_shown(url):
    db = Database(url, mappers=[OwnerMapper], pool_timeout=2)
    try:
        assert "s3cret" not in repr(db)
        assert "s3cret" not in db.url
        assert "s3cret" not in str(db.url)
        assert "127.0.0.1" in db.url
        with pytest.raises(errors.DatabaseError) as info:
            with db.session() as s:
                s.query(Owner).all()
        assert isinstance(info.value, errors.OperationalError)
        assert "s3cret" not in str(info.value)
        assert "s3cret" not in repr(info.value)
        assert "127.0.0.1" in str(info.value)
    finally:
        db.close()


def test_percent_encoded_password_never_shown():
    db = Database("postgresql://postgres:s3cr%40et%3A@127.0.0.1:1/test", mappers=[OwnerMapper], pool_timeout=2)
    try:
        for text in (repr(db), db.url):
            assert "s3cr" not in text
    finally:
        db.close()


def test_password_in_query_string_never_shown():
    db = Database("postgresql://postgres@127.0.0.1:1/test?password=s3cret", mappers=[OwnerMapper], pool_timeout=2)
    try:
        assert "s3cret" not in repr(db)
        assert "s3cret" not in db.url
    finally:
        db.close()


def test_password_hidden_on_a_live_server(backend, make_db):
    if backend.name == "sqlite":
        url = backend.url
    else:
        # PostgreSQL trusts local connections and ignores the password; MariaDB's root has none,
        # so the password goes in where the server ignores it (PG) or refuses it (MariaDB).
        scheme, rest = backend.url.split("://", 1)
        user, host = rest.split("@", 1)
        url = f"{scheme}://{user}:s3cret@{host}"
    db = Database(url, mappers=[OwnerMapper])
    try:
        assert "s3cret" not in repr(db) and "s3cret" not in db.url
        try:
            with db.session() as s:
                s.execute("SELECT no_such_column FROM no_such_table")
        except errors.DatabaseError as exc:
            assert "s3cret" not in str(exc)
    finally:
        db.close()


# -- bad options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["oracle://scott:tiger@localhost/db", "mongodb://localhost/db", "pugs.db", "", "sqlite"],
)
def test_bad_url_is_configuration_error(url):
    with pytest.raises(errors.ConfigurationError) as info:
        Database(url, mappers=[OwnerMapper])
    assert "tiger" not in str(info.value)


def test_unknown_isolation_level_is_configuration_error(backend):
    with pytest.raises(errors.ConfigurationError) as info:
        db = Database(backend.url, mappers=[OwnerMapper], isolation_level="CHAOS")
        try:
            with db.session() as s:
                s.execute("SELECT 1")
        finally:
            db.close()
    assert "CHAOS" in str(info.value)
    assert "isolation_level" in str(info.value)


def test_serializable_isolation_level_works(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, isolation_level="SERIALIZABLE")
    with db.session() as s:
        s.add(Owner("Iso"))
        s.flush()
        if backend.name == "postgresql":
            assert s.execute("SHOW transaction_isolation")[0][0] == "serializable"
        elif backend.name == "mysql":
            assert s.execute("SELECT @@SESSION.tx_isolation")[0][0] == "SERIALIZABLE"
    with db.session() as s:
        assert [o.name for o in s.query(Owner).all()] == ["Iso"]
    assert backend.raw(f"SELECT name FROM {backend.q('owners')}") == [("Iso",)]
