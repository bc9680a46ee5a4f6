"""Faults on every backend: lost connections, failed batches, an exhausted pool, leaks, secrets.

A connection that dies (the server ends it, its socket is shut down, the driver connection is
closed under the session) surfaces as a DatabaseError, is thrown out of the pool, and the next
session works; an error on a healthy connection keeps the connection. An exception of a session
block stays the one raised when the ROLLBACK after it fails. A failed COMMIT waits for rollback()
like a failed flush. A session whose connection died between transactions goes on with a new one.
A flush that fails halfway leaves nothing behind. The pool never opens more than pool_size
connections and gives every one back. No error shows a password.

Connections are counted on the server (pg_stat_activity / information_schema.PROCESSLIST) and,
for SQLite, as the file handles this process holds on the database file.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import attrs
import pytest

from mapper import BelongsTo, Column, Database, ForeignKey, HasMany, Mapper, errors
from mapper import types as t

# -- domain classes and mappers (tables of their own) ----------------------------------------------


@attrs.define
class FOwner:
    name: str
    pets: list["FPet"] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class FPet:
    name: str | None
    tag: str | None = None
    owner: FOwner | None = None
    id: int | None = None


@attrs.define
class FNote:
    text: str
    owner_ref: int | None = None
    id: int | None = None


class FOwnerMapper(Mapper[FOwner]):
    table = "fault_owners"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False, unique=True)
    pets = HasMany(FPet, foreign_key="owner_id", inverse="owner", cascade="all", order_by="id")


class FPetMapper(Mapper[FPet]):
    table = "fault_pets"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    tag = Column(t.String(20), unique=True)
    owner_id = Column(t.Integer, ForeignKey("fault_owners.id", on_delete="CASCADE"), index=True)
    owner = BelongsTo(FOwner, foreign_key="owner_id", inverse="pets")


class FNoteMapper(Mapper[FNote]):
    """A plain foreign-key column without a relation: the flush writes it after the owners."""

    table = "fault_notes"
    id = Column(t.Integer, primary_key=True)
    text = Column(t.String(100), nullable=False)
    owner_ref = Column(t.Integer, ForeignKey("fault_owners.id"))


@attrs.define
class FDoc:
    title: str
    version: int | None = None
    id: int | None = None


class FDocMapper(Mapper[FDoc]):
    """A version column: a write whose row changed since it was read raises StaleDataError."""

    table = "fault_docs"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(100), nullable=False)
    version = Column(t.Integer, version=True)


MAPPERS = (FOwnerMapper, FPetMapper, FNoteMapper)
N = 50
BAD = 36  # the 37th object of a batch is the one that fails


# -- helpers ---------------------------------------------------------------------------------------


def wait_until(probe: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    """Poll ``probe()`` until ``ok(value)`` or the deadline; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value) or time.monotonic() >= deadline:
            return value
        time.sleep(0.01)


def scratch_name(backend) -> str:
    return backend.url.rsplit("/", 1)[1].split("?", 1)[0]


def sqlite_path(backend) -> str:
    return os.path.realpath(backend.url.removeprefix("sqlite:///"))


class Server:
    """An autocommit admin connection of the test's own, to count and kill the framework's connections."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.name = backend.name
        self.db = scratch_name(backend) if backend.name != "sqlite" else None
        self.conn = backend.raw_connect() if backend.name != "sqlite" else None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def scalar(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params)
            return cur.fetchone()[0]
        finally:
            cur.close()

    def ids(self) -> set[int]:
        """Server-side ids of the connections to the scratch database (this admin one excluded)."""
        if self.name == "postgresql":
            sql = "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
        else:
            sql = "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()"
        cur = self.conn.cursor()
        try:
            cur.execute(sql, (self.db,))
            return {int(r[0]) for r in cur.fetchall()}
        finally:
            cur.close()

    def count(self) -> int:
        """Connections open to the database: on the server, or SQLite's handles on the file."""
        if self.name == "sqlite":
            path = sqlite_path(self.backend)
            n = 0
            for fd in os.listdir("/proc/self/fd"):
                try:
                    if os.path.realpath(f"/proc/self/fd/{fd}") == path:
                        n += 1
                except OSError:
                    pass
            return n
        return len(self.ids())

    def settled_count(self) -> int:
        """The count once connections closed just before (by another test, by backend.raw) are gone."""
        last = [-1, 0]

        def stable(n: int) -> bool:
            if n == last[0]:
                last[1] += 1
            else:
                last[0], last[1] = n, 0
            return last[1] >= 3

        return wait_until(self.count, stable, timeout=3.0)

    def kill(self, server_id: int) -> None:
        """End a connection from the server side and wait until it is gone."""
        if self.name == "postgresql":
            assert self.scalar("SELECT pg_terminate_backend(%s, 5000)", (server_id,)) is True
        else:
            cur = self.conn.cursor()
            cur.execute(f"KILL {int(server_id)}")
            cur.close()
        gone = wait_until(self.ids, lambda ids: server_id not in ids)
        assert server_id not in gone


@pytest.fixture
def server(backend) -> Iterator[Server]:
    if backend.name == "sqlite" and not os.path.isdir("/proc/self/fd"):
        pytest.skip("counting SQLite's file handles needs /proc")
    srv = Server(backend)
    try:
        yield srv
    finally:
        srv.close()


@contextmanager
def own_db(backend, *mappers: Any, **options: Any) -> Iterator[Database]:
    """A Database with its tables, which the test itself closes (make_db would drop after close)."""
    db = Database(backend.url, mappers=list(mappers), **options)
    try:
        if mappers:
            db.drop_all()
            db.create_all()
        yield db
        if mappers:
            db.drop_all()
    finally:
        db.close()


def checked_out(db: Database) -> int:
    """Connections lent to sessions, as the framework's pool counts them."""
    return int(db.engine.pool.checked_out)


def settle_checked_out(db: Database) -> int:
    """Connections still lent once every session closed: the pool counts them back at once."""
    return checked_out(db)


def settle_after_pool_timeout(backend, server: Server, limit: int) -> None:
    """Let the server see connections closed just before go (a PostgreSQL backend exits a little later)."""
    if backend.name == "postgresql":
        wait_until(server.count, lambda n: n <= limit)


def server_id(session, backend) -> Any:
    """The server's id of the session's connection (for SQLite: the driver connection itself)."""
    if backend.name == "postgresql":
        return session.execute("SELECT pg_backend_pid() AS id")[0].id
    if backend.name == "mysql":
        return int(session.execute("SELECT CONNECTION_ID() AS id")[0].id)
    session.execute("SELECT 1 AS one")
    return session.connection.raw


def names(backend, table: str) -> list[str]:
    return sorted(r[0] for r in backend.raw(f"SELECT name FROM {backend.q(table)}"))


def row_count(backend, table: str) -> int:
    return backend.raw(f"SELECT count(*) FROM {backend.q(table)}")[0][0]


def break_connection(session, backend, server: Server, mode: str) -> Any:
    """Kill the session's connection; returns what identifies it (server id, or the raw connection)."""
    ident = server_id(session, backend)
    kill(session.connection.raw, ident, backend, server, mode)
    return ident


def break_idle_connection(session, backend, server: Server, mode: str) -> Any:
    """Commit, then kill the session's connection while no transaction is open on it."""
    ident = server_id(session, backend)
    raw = session.connection.raw
    session.commit()
    kill(raw, ident, backend, server, mode)
    return ident


def kill(raw: Any, ident: Any, backend, server: Server, mode: str) -> None:
    """End a connection: from the server, by shutting its socket down, or by closing the driver connection."""
    if mode == "terminate":
        server.kill(ident)
    elif mode == "shutdown":
        if backend.name == "postgresql":
            fd = raw.pgconn.socket
        else:
            fd = raw.fileno() if backend.driver == "MySQLdb" else raw._sock.fileno()
        dup = socket.socket(fileno=os.dup(fd))
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()
        if backend.name == "mysql":
            wait_until(server.ids, lambda ids: ident not in ids)
    else:
        raw.close()


# Observed classes of the first statement on a dead connection.
LOST = {
    ("postgresql", "terminate"): errors.OperationalError,  # AdminShutdown, SQLSTATE 57P01
    ("postgresql", "shutdown"): errors.OperationalError,  # "server closed the connection unexpectedly"
    ("postgresql", "close"): errors.OperationalError,  # "the connection is closed"
    ("mysql", "terminate"): errors.OperationalError,  # 2013 lost connection during query
    ("mysql", "shutdown"): errors.OperationalError,  # 2006 gone away (or 2013)
    ("mysql", "close"): errors.InterfaceError,  # PyMySQL's InterfaceError(0, '')
}

# -- 1. a connection lost in the middle of a transaction ------------------------------------------


@pytest.mark.parametrize("op", ["execute", "commit"])
@pytest.mark.parametrize("mode", ["terminate", "shutdown", "close"])
def test_lost_connection_is_discarded_and_next_session_works(backend, server, mode, op):
    if mode != "close" and backend.name == "sqlite":
        pytest.skip("SQLite has no server and no socket: its fault is the closed connection")
    with own_db(backend, *MAPPERS, pool_size=2, pool_timeout=2) as db:
        s = db.session()
        try:
            doomed = FOwner("Doomed", pets=[FPet("Lost")])
            s.add(doomed)
            s.flush()  # written in the transaction that dies
            assert doomed.id is not None
            raw = s.connection.raw
            ident = break_connection(s, backend, server, mode)
            late = FOwner("Late")
            with pytest.raises(errors.DatabaseError) as info:
                if op == "execute":
                    s.execute("SELECT count(*) AS n FROM fault_owners")
                else:
                    s.add(late)
                    s.commit()  # the flush of Late meets the dead connection
            exc = info.value
            if backend.name == "sqlite":
                import sqlite3

                assert isinstance(exc.orig, sqlite3.ProgrammingError) and "closed" in str(exc.orig)
            else:
                assert type(exc) is LOST[backend.name, mode], f"{type(exc).__name__}: {exc}"
            assert exc.__cause__ is exc.orig
            if op == "commit":
                assert "fault_owners" in exc.statement and late.id is None
                with pytest.raises(errors.PendingRollbackError):
                    s.query(FOwner).all()
                s.rollback()  # the flush already gave up the transaction: nothing left to fail
                assert late not in s and doomed not in s and doomed.id is None
        finally:
            s.close()
        assert settle_checked_out(db) == 0
        # thrown out: closed on our side, gone on the server, never lent again
        if backend.name == "postgresql":
            assert raw.closed
        elif backend.name == "mysql":
            assert not raw.open
        if backend.name != "sqlite":
            assert ident not in wait_until(server.ids, lambda ids: ident not in ids)
        with db.session() as s2:
            assert server_id(s2, backend) != ident
            assert s2.connection.raw is not raw
            assert s2.query(FOwner).all() == []
            s2.add(FOwner("After", pets=[FPet("Fine")]))
        with db.session() as s3:
            assert [o.name for o in s3.query(FOwner).include("pets").all()] == ["After"]
        assert settle_checked_out(db) == 0
        assert names(backend, "fault_owners") == ["After"]  # nothing of the lost transaction
        assert names(backend, "fault_pets") == ["Fine"]


def test_closed_driver_connection_is_operational_or_interface_error(backend, make_db):
    """The same fault, the same class: a closed driver connection is not 'SQL that is wrong'."""
    db = make_db(*MAPPERS)
    s = db.session()
    try:
        s.execute("SELECT 1 AS one")
        s.connection.raw.close()
        with pytest.raises(errors.DatabaseError) as info:
            s.execute("SELECT 1 AS one")
    finally:
        s.close()
    assert isinstance(info.value, (errors.OperationalError, errors.InterfaceError)), repr(info.value)


def test_with_block_reports_the_lost_connection_not_a_failed_rollback(backend, make_db):
    db = make_db(*MAPPERS)
    s = db.session()
    try:
        s.add(FOwner("Doomed"))
        s.flush()
        s.connection.raw.close()
        with pytest.raises(errors.DatabaseError) as info:
            with s:
                s.execute("SELECT count(*) AS n FROM fault_owners")
        assert "fault_owners" in (info.value.statement or ""), f"the block raised {info.value!r}"
    finally:
        s.close()
    # and an explicit rollback after catching the error does not raise either
    s = db.session()
    try:
        s.add(FOwner("Doomed"))
        s.flush()
        s.connection.raw.close()
        with pytest.raises(errors.DatabaseError):
            s.execute("SELECT 1 AS one")
        s.rollback()
    finally:
        s.close()


@pytest.mark.parametrize("where", ["open_session", "idle_in_pool"])
def test_connection_killed_between_transactions_is_not_lent_again(backend, server, where):
    """A connection that died while no statement ran is found out before a session gets it."""
    if backend.name == "sqlite" and where == "idle_in_pool":
        pytest.skip("nothing can end an idle SQLite connection from outside")
    with own_db(backend, *MAPPERS, pool_size=1, pool_timeout=2) as db:
        s = db.session()
        try:
            s.add(FOwner("Kept"))
            s.commit()
            if backend.name == "sqlite":
                s.connection.raw.close()
            else:
                ident = server_id(s, backend)
                s.commit()
                if where == "idle_in_pool":
                    s.close()
                server.kill(ident)
        finally:
            s.close()
        try:
            with db.session() as s2:
                assert [o.name for o in s2.query(FOwner).all()] == ["Kept"]
        finally:
            assert settle_checked_out(db) == 0


# -- 1b. an exception inside the block, then a ROLLBACK that fails ---------------------------------

SQLITE_CLOSES_ONLY = "SQLite has no server and no socket: its fault is the closed connection"


class AppError(Exception):
    """The application's own exception, raised inside a session block."""


@pytest.mark.parametrize("mode", ["terminate", "shutdown", "close"])
def test_application_exception_wins_when_the_rollback_after_it_fails(backend, server, mode, caplog):
    if mode != "close" and backend.name == "sqlite":
        pytest.skip(SQLITE_CLOSES_ONLY)
    caplog.set_level("DEBUG", logger="mapper")
    with own_db(backend, *MAPPERS, pool_size=2, pool_timeout=2) as db:
        s = db.session()
        boom = AppError("the application's own error")
        with pytest.raises(AppError) as info:
            with s:
                s.add(FOwner("Doomed", pets=[FPet("Lost")]))
                s.flush()
                raw = s.connection.raw
                ident = break_connection(s, backend, server, mode)
                raise boom  # the connection is gone: the ROLLBACK that follows fails
        # the same exception object, unchanged, with the failed ROLLBACK attached as a note
        assert info.value is boom and type(info.value) is AppError
        assert str(boom) == "the application's own error"
        notes = getattr(boom, "__notes__", [])
        assert len(notes) == 1 and "ROLLBACK" in notes[0] and "discarded" in notes[0], notes
        # and logged once, with the rollback's own error and traceback
        records = [r for r in caplog.records if r.name.startswith("mapper")]
        assert [r.levelname for r in records] == ["WARNING"], [r.getMessage() for r in records]
        assert "AppError" in records[0].getMessage() and "ROLLBACK" in records[0].getMessage()
        assert records[0].exc_info is not None and isinstance(records[0].exc_info[1], errors.DatabaseError)
        assert s.closed
        assert settle_checked_out(db) == 0
        # thrown away, not given back to the pool
        if backend.name == "postgresql":
            assert raw.closed
        elif backend.name == "mysql":
            assert not raw.open
        if backend.name != "sqlite":
            assert ident not in wait_until(server.ids, lambda ids: ident not in ids)
        with db.session() as s2:
            assert s2.connection.raw is not raw
            assert s2.query(FOwner).all() == []
        assert names(backend, "fault_owners") == [] and names(backend, "fault_pets") == []
        # a rollback that works adds nothing to the exception and logs nothing
        caplog.clear()
        plain = AppError("plain")
        with pytest.raises(AppError) as info:
            with db.session() as s3:
                s3.add(FOwner("Undone"))
                s3.flush()
                raise plain
        assert info.value is plain and not hasattr(plain, "__notes__")
        assert [r for r in caplog.records if r.name.startswith("mapper")] == []
        assert names(backend, "fault_owners") == []
        assert settle_checked_out(db) == 0



@pytest.mark.parametrize("mode", ["terminate", "shutdown", "close"])
def test_application_exception_wins_in_a_transaction_whose_rollback_fails(backend, server, mode, caplog):
    if mode != "close" and backend.name == "sqlite":
        pytest.skip(SQLITE_CLOSES_ONLY)
    caplog.set_level("DEBUG", logger="mapper")
    with own_db(backend, *MAPPERS, pool_size=2, pool_timeout=2) as db:
        boom = AppError("the application's own error")

        @db.transaction(retries=2)
        def work(s):
            s.add(FOwner("Doomed"))
            s.flush()
            break_connection(s, backend, server, mode)
            raise boom

        with pytest.raises(AppError) as info:
            work()
        assert info.value is boom
        notes = getattr(boom, "__notes__", [])
        assert len(notes) == 1 and "ROLLBACK" in notes[0], notes
        assert [r.levelname for r in caplog.records if r.name.startswith("mapper")] == ["WARNING"]
        assert settle_checked_out(db) == 0
        assert names(backend, "fault_owners") == []


# -- 1c. a COMMIT that fails -------------------------------------------------------------------------


@attrs.define
class DParent:
    name: str
    version: int | None = None
    id: int | None = None


@attrs.define
class DChild:
    name: str
    parent_ref: int | None = None
    id: int | None = None


class DParentMapper(Mapper[DParent]):
    table = "fault_dparents"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    version = Column(t.Integer, version=True)


class DChildMapper(Mapper[DChild]):
    """Its FOREIGN KEY is DEFERRABLE INITIALLY DEFERRED: created by hand, checked at COMMIT."""

    table = "fault_dchildren"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    parent_ref = Column(t.Integer)


DEFERRED_DDL = {
    "postgresql": [
        "CREATE TABLE fault_dparents (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        "name VARCHAR(50) NOT NULL, version INTEGER NOT NULL)",
        "CREATE TABLE fault_dchildren (id INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        "name VARCHAR(50) NOT NULL, "
        "parent_ref INTEGER REFERENCES fault_dparents (id) DEFERRABLE INITIALLY DEFERRED)",
    ],
    "sqlite": [
        "CREATE TABLE fault_dparents (id INTEGER PRIMARY KEY AUTOINCREMENT, "
        "name VARCHAR(50) NOT NULL, version INTEGER NOT NULL)",
        "CREATE TABLE fault_dchildren (id INTEGER PRIMARY KEY AUTOINCREMENT, name VARCHAR(50) NOT NULL, "
        "parent_ref INTEGER REFERENCES fault_dparents (id) DEFERRABLE INITIALLY DEFERRED)",
    ],
}


def test_commit_refused_by_a_deferred_constraint_waits_for_rollback(backend, make_db):
    if backend.name == "mysql":
        pytest.skip("MariaDB checks every constraint at its statement: none is left for COMMIT")
    db = make_db(DParentMapper, DChildMapper, create=False)
    db.drop_all()
    for sql in DEFERRED_DDL[backend.name]:
        backend.raw(sql)
    with db.session() as s:
        kept = DParent("kept")
        s.add(kept)
    s = db.session()
    try:
        parent = s.get_one(DParent, kept.id)
        parent.name = "edited"
        orphan = DChild("orphan", parent_ref=10**6)  # no such parent: refused at COMMIT, not before
        fresh = DParent("fresh")
        s.add_all([orphan, fresh])
        with pytest.raises(errors.IntegrityError) as info:
            s.commit()
        assert info.value.statement == "COMMIT"
        # the flush had given them keys and bumped the version; the rows were never committed
        assert orphan.id is None and fresh.id is None
        for use in (
            lambda: s.query(DParent).all(),
            lambda: s.get(DParent, kept.id),
            lambda: s.add(DParent("more")),
            s.flush,
            s.commit,
        ):
            with pytest.raises(errors.PendingRollbackError):
                use()
        assert backend.raw("SELECT id, name, version FROM fault_dparents") == [(kept.id, "kept", 1)]
        assert backend.raw("SELECT id FROM fault_dchildren") == []
        s.rollback()
        assert orphan not in s and fresh not in s
        assert (parent.name, parent.version) == ("kept", 1)  # the committed values, version included
        assert s.get(DParent, kept.id) is parent
        # corrected, the same work commits; no StaleDataError for rows that were never there
        parent.name = "edited"
        orphan.parent_ref = kept.id
        s.add_all([orphan, fresh])
        s.commit()
        parent.name = "edited again"  # checks version 2, the committed one
        s.commit()
    finally:
        s.close()
    assert backend.raw("SELECT id, name, version FROM fault_dparents ORDER BY id") == [
        (kept.id, "edited again", 3),
        (fresh.id, "fresh", 1),
    ]
    assert backend.raw("SELECT id, name, parent_ref FROM fault_dchildren") == [(orphan.id, "orphan", kept.id)]


@pytest.mark.parametrize("mode", ["terminate", "shutdown", "close"])
def test_commit_on_a_lost_connection_waits_for_rollback_then_the_session_goes_on(backend, server, mode):
    if mode != "close" and backend.name == "sqlite":
        pytest.skip(SQLITE_CLOSES_ONLY)
    with own_db(backend, *MAPPERS, FDocMapper, pool_size=2, pool_timeout=2) as db:
        with db.session() as s0:
            doc = FDoc("committed")
            s0.add(doc)
        # leaving a block: the COMMIT fails, the keys the flush generated are taken back
        s = db.session()
        with pytest.raises(errors.DatabaseError) as info:
            with s:
                lost = FOwner("Lost at commit", pets=[FPet("Lost pet")])
                s.add(lost)
                s.flush()
                assert lost.id is not None
                break_connection(s, backend, server, mode)
        assert info.value.statement == "COMMIT", repr(info.value)
        assert lost.id is None and lost.pets[0].id is None
        assert s.closed and settle_checked_out(db) == 0
        # without a block: the session waits for rollback(), then goes on
        s = db.session()
        try:
            mine = s.get_one(FDoc, doc.id)
            mine.title = "mine"
            owner = FOwner("Saved later", pets=[FPet("Saved pet")])
            s.add(owner)
            s.flush()
            assert mine.version == 2 and owner.id is not None
            ident = break_connection(s, backend, server, mode)
            with pytest.raises(errors.DatabaseError) as info:
                s.commit()
            assert info.value.statement == "COMMIT", repr(info.value)
            assert owner.id is None and owner.pets[0].id is None
            with pytest.raises(errors.PendingRollbackError):
                s.query(FDoc).all()
            with pytest.raises(errors.PendingRollbackError):
                s.commit()
            s.rollback()  # the transaction died with the connection: nothing more to fail
            assert owner not in s and mine in s
            assert (mine.title, mine.version) == ("committed", 1)
            mine.title = "mine"
            s.add(owner)
            s.commit()  # on a new connection; the version check holds against the committed row
            assert server_id(s, backend) != ident
            s.commit()
        finally:
            s.close()
        assert settle_checked_out(db) == 0
        assert backend.raw("SELECT id, title, version FROM fault_docs") == [(doc.id, "mine", 2)]
        assert names(backend, "fault_owners") == ["Saved later"]
        assert names(backend, "fault_pets") == ["Saved pet"]


# -- 1d. a session whose connection died between its transactions ------------------------------------


@pytest.mark.parametrize("pre_ping", [True, False], ids=["pre_ping", "no_pre_ping"])
@pytest.mark.parametrize("mode", ["terminate", "shutdown", "close"])
def test_session_heals_when_its_connection_died_between_transactions(backend, server, mode, pre_ping):
    if mode != "close" and backend.name == "sqlite":
        pytest.skip(SQLITE_CLOSES_ONLY)
    with own_db(backend, *MAPPERS, pool_size=1, pool_timeout=2, pre_ping=pre_ping) as db:
        s = db.session()
        try:
            s.add(FOwner("Kept"))
            s.commit()
            raw = s.connection.raw
            ident = break_idle_connection(s, backend, server, mode)
            if not pre_ping:
                # nothing checks the idle connection: the first statement finds it dead...
                with pytest.raises(errors.DatabaseError):
                    s.query(FOwner).all()
                s.rollback()
            # ...and the next transaction of the same session runs on a live connection
            assert [o.name for o in s.query(FOwner).all()] == ["Kept"]
            assert s.connection.raw is not raw
            if backend.name != "sqlite":
                assert server_id(s, backend) != ident
            s.add(FOwner("Healed"))
            s.commit()
            assert checked_out(db) == 1
        finally:
            s.close()
        assert settle_checked_out(db) == 0
        assert names(backend, "fault_owners") == ["Healed", "Kept"]
        if backend.name != "sqlite":
            assert ident not in wait_until(server.ids, lambda ids: ident not in ids)


# -- 2. no leaked connections -----------------------------------------------------------------------


def test_no_connection_leaks_through_faults(backend, server):
    baseline = server.settled_count()
    size = 3
    seen: list[int] = []

    def at_most_pool_size() -> None:
        n = server.count()
        seen.append(n)
        assert n <= baseline + size, f"{n - baseline} connections open, pool_size={size}"

    with own_db(backend, *MAPPERS, pool_size=size, pool_timeout=0.3) as db:
        at_most_pool_size()
        sessions = [db.session() for _ in range(size)]
        try:
            for s in sessions:  # reads only: SQLite allows one writer at a time
                assert s.query(FOwner).count() == 0
                at_most_pool_size()
            assert checked_out(db) == size
            assert server.count() == baseline + size  # every session holds its own connection
            extra = db.session()
            with pytest.raises(errors.PoolTimeoutError):
                extra.execute("SELECT 1 AS one")
            extra.close()
            settle_after_pool_timeout(backend, server, baseline + size)
            at_most_pool_size()
            # a statement error, a failed flush and a lost connection, one on each held connection
            a, b, c = sessions
            with pytest.raises(errors.ProgrammingError):
                a.execute("SELEC 1")
            a.rollback()
            b.add_all([FOwner("Twin"), FOwner("Twin")])  # UNIQUE name
            with pytest.raises(errors.IntegrityError):
                b.commit()
            b.rollback()
            if backend.name == "sqlite":
                c.connection.raw.close()
            else:
                server.kill(server_id(c, backend))
            with pytest.raises(errors.DatabaseError):
                c.execute("SELECT 1 AS one")
            at_most_pool_size()
        finally:
            for s in sessions:
                s.close()
        assert settle_checked_out(db) == 0
        at_most_pool_size()
        for i in range(2 * size):  # sessions one after another reuse what the pool holds
            with db.session() as s:
                s.add(FOwner(f"Seq{i}"))
            at_most_pool_size()
        assert settle_checked_out(db) == 0
    assert wait_until(server.count, lambda n: n == baseline) == baseline
    assert max(seen) <= baseline + size


def test_database_close_returns_to_baseline_after_lost_connections(backend, server):
    """Sessions left open when the Database closes give their connections back when they close."""
    baseline = server.settled_count()
    db = Database(backend.url, mappers=[], pool_size=2, pool_timeout=0.3)
    try:
        s1, s2 = db.session(), db.session()
        try:
            server_id(s1, backend)
            ident = server_id(s2, backend)
            assert server.count() == baseline + 2
            if backend.name == "sqlite":
                s2.connection.raw.close()
            else:
                server.kill(ident)
            with pytest.raises(errors.DatabaseError):
                s2.execute("SELECT 1 AS one")
            db.close()  # s1 still holds a connection
            with pytest.raises(errors.InterfaceError):
                with db.session() as s3:
                    s3.execute("SELECT 1 AS one")
            assert s1.execute("SELECT 1 AS one")[0].one == 1
        finally:
            s1.close()
            s2.close()
        assert checked_out(db) == 0
    finally:
        db.close()
    assert wait_until(server.count, lambda n: n == baseline) == baseline


class Interrupted(BaseException):
    """Stands for a KeyboardInterrupt or a SystemExit arriving at the wrong moment."""


def test_interruption_at_the_wrong_moment_loses_no_pool_slot(backend, monkeypatch):
    import mapper.engine

    with own_db(backend, *MAPPERS, pool_size=1, pool_timeout=0.3) as db:
        # between taking a connection from the pool and handing it to the session
        def interrupted(self, engine, raw):
            raise Interrupted

        with monkeypatch.context() as m:
            m.setattr(mapper.engine.Connection, "__init__", interrupted)
            s = db.session()
            with pytest.raises(Interrupted):
                s.execute("SELECT 1 AS one")
            s.close()
        assert checked_out(db) == 0
        # while closing, in the ROLLBACK of what the session left open
        s = db.session()
        s.add(FOwner("Unfinished"))
        s.flush()
        raw = s.connection.raw
        discarded = db.engine.pool.discarded

        def interrupted_rollback(raw):
            raise Interrupted

        with monkeypatch.context() as m:
            m.setattr(db.engine.dialect, "rollback", interrupted_rollback)
            with pytest.raises(Interrupted):
                s.close()
        assert checked_out(db) == 0
        assert db.engine.pool.discarded == discarded + 1  # not known to be clean: thrown away
        with db.session() as s2:  # the one slot is free, on a new connection
            assert s2.connection.raw is not raw
            assert s2.query(FOwner).all() == []
        assert names(backend, "fault_owners") == []


# -- 3. a flush that fails halfway ------------------------------------------------------------------


def _graph() -> tuple[list[FOwner], list[FNote]]:
    owners = [FOwner(f"owner{i:02}", pets=[FPet(f"pet{i:02}", tag=f"t{i:02}")]) for i in range(N)]
    notes = [FNote(f"note{i:02}") for i in range(N)]
    return owners, notes


def _counts(backend) -> dict[str, int]:
    return {name: row_count(backend, name) for name in ("fault_owners", "fault_pets", "fault_notes")}


@pytest.mark.parametrize("violation", ["not_null", "unique", "foreign_key"])
def test_failed_insert_batch_leaves_no_rows_and_session_recovers(backend, make_db, violation):
    db = make_db(*MAPPERS)
    owners, notes = _graph()
    bad_pet = owners[BAD].pets[0]
    if violation == "not_null":
        bad_pet.name = None
        failing, sent, fix = "fault_pets", 2, lambda: setattr(bad_pet, "name", f"pet{BAD:02}")
    elif violation == "unique":
        bad_pet.tag = "t05"  # the tag of the 6th pet of the same batch
        failing, sent, fix = "fault_pets", 2, lambda: setattr(bad_pet, "tag", f"t{BAD:02}")
    else:
        notes[BAD].owner_ref = 10**6  # no such owner
        failing, sent, fix = "fault_notes", 3, lambda: setattr(notes[BAD], "owner_ref", None)
    s = db.session()
    try:
        s.add_all(owners)
        s.add_all(notes)
        before = s.query_count
        with pytest.raises(errors.IntegrityError) as info:
            s.flush()
        # the owners' INSERT (and the pets' one, before the notes) went through, then this one failed
        assert info.value.statement.startswith(f"INSERT INTO {backend.q(failing)}")
        assert s.query_count - before == sent
        assert _counts(backend) == {"fault_owners": 0, "fault_pets": 0, "fault_notes": 0}
        assert all(o.id is None for o in owners) and all(p.id is None for o in owners for p in o.pets)
        with pytest.raises(errors.PendingRollbackError):
            s.query(FOwner).count()
        with pytest.raises(errors.PendingRollbackError):
            s.commit()
        s.rollback()
        assert all(o not in s for o in owners)
        fix()
        s.add_all(owners)
        s.add_all(notes)
        s.commit()
    finally:
        s.close()
    assert _counts(backend) == {"fault_owners": N, "fault_pets": N, "fault_notes": N}
    rows = backend.raw(
        f"SELECT o.name, p.name, p.tag FROM {backend.q('fault_pets')} p "
        f"JOIN {backend.q('fault_owners')} o ON o.id = p.owner_id ORDER BY o.name"
    )
    assert rows == [(f"owner{i:02}", f"pet{i:02}", f"t{i:02}") for i in range(N)]
    assert sorted(r[0] for r in backend.raw(f"SELECT text FROM {backend.q('fault_notes')}")) == [
        f"note{i:02}" for i in range(N)
    ]
    with db.session() as s:  # the session's connection went back healthy
        assert s.query(FOwner).count() == N


def test_failed_update_batch_rolls_back_the_first_tables_updates(backend, make_db):
    db = make_db(*MAPPERS)
    owners, _ = _graph()
    with db.session() as s:
        s.add_all(owners)
    committed_owners = names(backend, "fault_owners")
    committed_pets = names(backend, "fault_pets")
    s = db.session()
    try:
        loaded = s.query(FOwner).include("pets").order_by("name").all()
        for o in loaded:
            o.name = o.name.upper()
            o.pets[0].name = o.pets[0].name.upper()
        loaded[BAD].pets[0].name = None  # NOT NULL: the 37th row of the pets' UPDATE batch
        before = s.query_count
        with pytest.raises(errors.IntegrityError) as info:
            s.flush()
        assert info.value.statement.startswith(f"UPDATE {backend.q('fault_pets')}")
        assert s.query_count - before == 2  # the owners' UPDATE of 50 rows went through first
        assert names(backend, "fault_owners") == committed_owners
        assert names(backend, "fault_pets") == committed_pets
        with pytest.raises(errors.PendingRollbackError):
            s.flush()
        s.rollback()
        assert [o.name for o in loaded] == committed_owners  # back to the committed values
        assert [o.pets[0].name for o in loaded] == committed_pets
        for o in loaded:
            o.name = o.name.upper()
            o.pets[0].name = o.pets[0].name.upper()
        s.commit()
    finally:
        s.close()
    assert names(backend, "fault_owners") == [n.upper() for n in committed_owners]
    assert names(backend, "fault_pets") == [n.upper() for n in committed_pets]


# -- 4. pool exhaustion -----------------------------------------------------------------------------


def test_pool_exhaustion_times_out_then_recovers(backend, server):
    baseline = server.settled_count()
    with own_db(backend, pool_size=2, pool_timeout=0.3) as db:
        s1, s2, s3 = db.session(), db.session(), db.session()
        try:
            s1.execute("SELECT 1 AS one")
            s2.execute("SELECT 1 AS one")
            assert checked_out(db) == 2
            assert server.count() == baseline + 2
            started = time.monotonic()
            with pytest.raises(errors.PoolTimeoutError) as info:
                s3.execute("SELECT 1 AS one")
            elapsed = time.monotonic() - started
            assert 0.25 <= elapsed < 3, elapsed
            assert isinstance(info.value, TimeoutError)
            message = str(info.value)
            assert "pool_size=2" in message and "pool_timeout" in message and "0.3 s" in message
            assert checked_out(db) == 2
            settle_after_pool_timeout(backend, server, baseline + 2)
            assert server.count() == baseline + 2
            s1.close()
            assert s3.execute("SELECT 1 AS one")[0].one == 1  # the session that timed out can retry
            s3.close()
            with db.session() as s4:
                assert s4.execute("SELECT 2 AS two")[0].two == 2
            assert server.count() <= baseline + 2
        finally:
            for s in (s1, s2, s3):
                s.close()
        assert settle_checked_out(db) == 0
    assert wait_until(server.count, lambda n: n == baseline) == baseline


def test_waiter_gets_the_connection_another_session_gives_back(backend, make_db):
    timeout = 5.0
    db = make_db(pool_size=1, pool_timeout=timeout)
    holder = db.session()
    holder.execute("SELECT 1 AS one")
    results: list[tuple[int, float, float]] = []
    failures: list[BaseException] = []
    started = threading.Event()

    def wait_for_connection() -> None:
        try:
            t0 = time.monotonic()
            started.set()
            with db.session() as s:
                value = s.execute("SELECT 7 AS seven")[0].seven
                got_at = time.monotonic()
            results.append((value, t0, got_at))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failures.append(exc)

    thread = threading.Thread(target=wait_for_connection)
    released_at = None
    try:
        thread.start()
        assert started.wait(5)
        assert wait_until(lambda: db.engine.pool.waiting, lambda n: n == 1) == 1
        time.sleep(0.1)  # let it wait a while
    finally:
        released_at = time.monotonic()
        holder.close()
        thread.join(10)
    assert not thread.is_alive()
    assert failures == []
    assert len(results) == 1
    value, t0, got_at = results[0]
    assert value == 7
    assert got_at >= released_at  # it had to wait for the holder...
    assert got_at - t0 < timeout - 1  # ...and got the connection as soon as it was given back
    assert settle_checked_out(db) == 0


def test_pool_never_opens_more_than_pool_size_server_connections(backend):
    """With the server limiting the user to pool_size connections, exhaustion is still a PoolTimeoutError."""
    if backend.name == "sqlite":
        pytest.skip("SQLite has no server-side connection limit")
    user = f"fault_{uuid.uuid4().hex[:10]}"
    admin = backend.raw_connect()
    scratch = scratch_name(backend)
    try:
        cur = admin.cursor()
        if backend.name == "postgresql":
            cur.execute(f'CREATE ROLE "{user}" LOGIN CONNECTION LIMIT 2')
        else:
            cur.execute(f"CREATE USER '{user}'@'%' WITH MAX_USER_CONNECTIONS 2")
            cur.execute(f"GRANT ALL ON `{scratch}`.* TO '{user}'@'%'")
        u = urlsplit(backend.url)
        url = urlunsplit((u.scheme, f"{user}@{u.hostname}:{u.port}", u.path, u.query, ""))
        try:
            db = Database(url, mappers=[], pool_size=2, pool_timeout=0.3)
            try:
                s1, s2, s3 = db.session(), db.session(), db.session()
                try:
                    s1.execute("SELECT 1 AS one")
                    s2.execute("SELECT 1 AS one")
                    with pytest.raises(errors.PoolTimeoutError):
                        s3.execute("SELECT 1 AS one")
                    s2.close()
                    assert s3.execute("SELECT 1 AS one")[0].one == 1
                finally:
                    for s in (s1, s2, s3):
                        s.close()
            finally:
                db.close()
        finally:
            if backend.name == "postgresql":
                def pids() -> list[Any]:
                    cur.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", (user,))
                    return cur.fetchall()

                assert wait_until(pids, lambda rows: rows == []) == []
                cur.execute(f'DROP ROLE "{user}"')
            else:
                cur.execute(f"DROP USER '{user}'@'%'")
            cur.close()
    finally:
        admin.close()


# -- 5. errors on a healthy connection keep it --------------------------------------------------------


def _transient_operational_error(session, backend) -> None:
    """Cause an OperationalError that leaves the connection healthy."""
    if backend.name == "postgresql":
        session.execute("SET LOCAL statement_timeout = '20ms'")
        session.execute("SELECT pg_sleep(2)")  # QueryCanceled, SQLSTATE 57014
    elif backend.name == "mysql":
        session.execute("SET STATEMENT max_statement_time=0.02 FOR SELECT SLEEP(2)")  # 1969
    else:
        session.execute("PRAGMA query_only = 1")
        try:
            session.execute("INSERT INTO fault_owners (name) VALUES ('ReadOnly')")  # SQLITE_READONLY
        finally:
            session.connection.raw.execute("PRAGMA query_only = 0")


def _sqlite_busy(session, backend) -> None:
    """SQLite's retryable error: another connection holds the write lock past busy_timeout."""
    locker = backend.raw_connect()
    try:
        locker.execute("BEGIN EXCLUSIVE")
        session.execute("INSERT INTO fault_owners (name) VALUES ('Blocked')")  # SQLITE_BUSY
    finally:
        locker.close()


@pytest.mark.parametrize("fault", ["syntax", "duplicate_key", "operational", "serialization"])
def test_statement_error_keeps_the_healthy_connection(backend, server, fault):
    with own_db(backend, *MAPPERS, pool_size=1, pool_timeout=2, busy_timeout=0.05) as db:
        with db.session() as s:
            s.add(FOwner("Taken"))
            first = server_id(s, backend)
        discarded = db.engine.pool.discarded
        s = db.session()
        try:
            assert server_id(s, backend) == first
            s.commit()  # no read lock left behind on SQLite
            if fault == "syntax":
                with pytest.raises(errors.ProgrammingError):
                    s.execute("SELEC 1")
            elif fault == "duplicate_key":
                s.add(FOwner("Taken"))
                with pytest.raises(errors.IntegrityError):
                    s.flush()
            elif fault == "operational":
                with pytest.raises(errors.OperationalError) as info:
                    _transient_operational_error(s, backend)
                assert not s.connection.broken
                assert info.value.code == {"postgresql": "57014", "mysql": "1969", "sqlite": "SQLITE_READONLY"}[backend.name]
                assert info.value.retryable is False
            else:
                # a serialization failure / deadlock: OperationalError, retryable, and not a disconnect
                with pytest.raises(errors.OperationalError) as info:
                    if backend.name == "postgresql":
                        s.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
                    elif backend.name == "mysql":
                        s.execute("SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, MESSAGE_TEXT = 'conflict'")
                    else:
                        _sqlite_busy(s, backend)
                assert info.value.retryable is True
                assert info.value.code == {"postgresql": "40001", "mysql": "1213", "sqlite": "SQLITE_BUSY"}[backend.name]
                assert not s.connection.broken
            s.rollback()
            assert s.execute("SELECT 3 AS three")[0].three == 3  # still usable after the rollback
        finally:
            s.close()
        with db.session() as s2:
            assert server_id(s2, backend) == first  # the same connection, not a replacement
            assert [o.name for o in s2.query(FOwner).all()] == ["Taken"]
        assert db.engine.pool.discarded == discarded  # given back whole, not thrown away
        if backend.name != "sqlite":
            assert server.ids() == {first}
        assert checked_out(db) == 0


def test_postgresql_is_disconnect_only_for_lost_connections():
    psycopg = pytest.importorskip("psycopg")
    from mapper.dialects.postgresql import PostgreSQLDialect

    d = PostgreSQLDialect()
    lost = ["08000", "08003", "08006", "57P01", "57P02", "57P03"]
    healthy = ["40001", "40P01", "55P03", "57014", "53200"]
    for code in lost:
        exc = psycopg.errors.lookup(code)("gone")
        assert d.is_disconnect(exc), code
    for code in healthy:
        exc = psycopg.errors.lookup(code)("transient")
        assert isinstance(exc, psycopg.OperationalError), code
        assert not d.is_disconnect(exc), code
    assert d.is_disconnect(psycopg.OperationalError("server closed the connection unexpectedly"))  # no SQLSTATE
    assert d.is_disconnect(psycopg.InterfaceError("the connection is closed"))
    assert not d.is_disconnect(psycopg.errors.lookup("23505")("duplicate key"))
    assert not d.is_disconnect(psycopg.errors.lookup("42601")("syntax error"))


def test_mysql_is_disconnect_only_for_lost_connections():
    pymysql = pytest.importorskip("pymysql")
    from mapper.dialects.mysql import MySQLDialect

    d = MySQLDialect()
    for code in (2006, 2013):
        assert d.is_disconnect(pymysql.err.OperationalError(code, "lost")), code
    assert d.is_disconnect(pymysql.err.InterfaceError(0, ""))
    for code in (1205, 1213, 1969, 1317):
        assert not d.is_disconnect(pymysql.err.OperationalError(code, "transient")), code
    assert not d.is_disconnect(pymysql.err.IntegrityError(1062, "duplicate"))
    assert not d.is_disconnect(pymysql.err.ProgrammingError(1064, "syntax"))


# -- 6. no password in any error ---------------------------------------------------------------------


SECRET = "s3cr3tpw"


def _server_urls(backend) -> list[tuple[str, str]]:
    """(case, URL) pairs that a live server refuses, each carrying SECRET somewhere."""
    u = urlsplit(backend.url)
    host = f"{u.hostname}:{u.port}"
    user = u.username or ("postgres" if backend.name == "postgresql" else "root")
    if backend.name == "postgresql":
        # local connections are trusted: the password is ignored and the unknown database refused
        return [
            ("userinfo", f"postgresql://{user}:{SECRET}@{host}/nonexistent_db_xyz"),
            ("percent_encoded", f"postgresql://{user}:{quote(SECRET + '@:/', safe='')}@{host}/nonexistent_db_xyz"),
            ("query", f"postgresql://{user}@{host}/nonexistent_db_xyz?password={SECRET}"),
        ]
    # root has no password: the server refuses the one given
    return [
        ("userinfo", f"mysql://{user}:{SECRET}@{host}{u.path}"),
        ("percent_encoded", f"mysql://{user}:{quote(SECRET + '@:/', safe='')}@{host}{u.path}"),
    ]


def test_password_not_echoed_by_a_live_server_refusal(backend, caplog):
    if backend.name == "sqlite":
        pytest.skip("SQLite URLs carry no password")
    caplog.set_level("DEBUG")
    for case, url in _server_urls(backend):
        db = Database(url, mappers=list(MAPPERS), pool_timeout=0.5)
        try:
            for text in (repr(db), db.url, str(db.url), repr(db.engine.url), str(db.engine.url)):
                assert SECRET not in text, (case, text)
            s = db.session()
            try:
                with pytest.raises(errors.DatabaseError) as info:
                    s.query(FOwner).all()
            finally:
                s.close()
        finally:
            db.close()
        exc = info.value
        assert type(exc) is errors.OperationalError, (case, repr(exc))
        assert "nonexistent_db_xyz" in str(exc) if backend.name == "postgresql" else "denied" in str(exc).lower()
        shown = [
            str(exc),
            repr(exc),
            repr(exc.args),
            repr(exc.statement),
            repr(exc.params),
            "".join(traceback.format_exception(exc)),
        ]
        if exc.orig is not None:
            shown += [str(exc.orig), repr(exc.orig), repr(exc.orig.args)]
        for text in shown:
            assert SECRET not in text, (case, text)
    for record in caplog.records:  # the drivers' own log lines included
        assert SECRET not in record.getMessage(), record.getMessage()


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_invalid_url_error_does_not_carry_the_password(scheme):
    """A password with an unescaped '/' makes urlsplit read it as the port: the error must not show it."""
    with pytest.raises(errors.ConfigurationError) as info:
        Database(f"{scheme}://localhost:{SECRET}/x@127.0.0.1:5432/db", mappers=list(MAPPERS))
    assert SECRET not in str(info.value)  # the message itself is masked
    assert SECRET not in "".join(traceback.format_exception(info.value))


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_password_taken_for_a_port_is_not_shown(scheme):
    """'user:5432/secret@host' would parse as host:port with no password: it is refused unseen."""
    with pytest.raises(errors.ConfigurationError) as info:
        Database(f"{scheme}://localhost:5432/{SECRET}@127.0.0.1:5432/db", mappers=list(MAPPERS), pool_timeout=0.2)
    assert "percent-encode" in str(info.value)
    assert SECRET not in "".join(traceback.format_exception(info.value))
