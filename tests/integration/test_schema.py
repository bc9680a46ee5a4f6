"""Schema from the mappers on every backend: create_all / drop_all, keys, constraints, defaults.

Structure is checked in each backend's catalog; constraints are checked by behaviour
(rows read back with plain SQL, errors raised as mapper.errors classes).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
import uuid
from typing import Any

import attrs
import pytest

from mapper import Column, ForeignKey, Mapper, errors
from mapper import types as t

# -- domain classes (persistence-free) -----------------------------------------------------------

POST_INIT_CALLS = {"parent": 0, "country": 0}


@attrs.define
class Parent:
    name: str | None
    id: int | None = None
    tags: list[str] = attrs.Factory(list)  # not mapped: filled from its default on load

    def __attrs_post_init__(self) -> None:
        POST_INIT_CALLS["parent"] += 1


@attrs.define
class Child:
    name: str
    parent_id: int | None = None
    id: int | None = None


@attrs.define
class Pet:
    name: str
    parent_id: int | None = None
    id: int | None = None


@attrs.define
class Membership:
    group: str
    member_no: int
    role: str = "member"


@dataclasses.dataclass
class Country:
    code: str
    name: str

    def __post_init__(self) -> None:
        POST_INIT_CALLS["country"] += 1


class Gadget:
    """A plain class whose __init__ takes an argument that is not stored."""

    id: int | None
    label: str
    init_calls = 0
    maker: object = None  # not mapped: a loaded Gadget reads this class-level default

    def __init__(self, label: str, maker: object) -> None:
        type(self).init_calls += 1
        self.label = label
        self.maker = maker
        self.id = None


@attrs.define
class Setting:
    key: str
    level: int | None = None
    status: str | None = None
    enabled: bool | None = None
    id: int | None = None


@attrs.define
class Flag:
    code: str
    weight: int | None = None


TOKENS: list[str] = []


def make_token() -> str:
    token = f"tok-{len(TOKENS) + 1}"
    TOKENS.append(token)
    return token


@attrs.define
class Ticket:
    title: str
    priority: int | None = None
    token: str | None = None
    id: int | None = None


@attrs.define
class Book:
    title: str
    id: int | None = None


@attrs.define
class Note:
    text: str
    id: int | None = None


@attrs.define
class Tag:
    label: str  # no id and no code on the domain class: both are hidden columns


@attrs.define
class Token:
    label: str
    id: uuid.UUID | None = None


@attrs.define
class Counter:
    label: str
    id: int | None = None


@attrs.define
class Alpha:
    name: str
    beta_id: int | None = None
    id: int | None = None


@attrs.define
class Beta:
    name: str
    alpha_id: int | None = None
    id: int | None = None


# -- mappers --------------------------------------------------------------------------------------


class ChildMapper(Mapper[Child]):  # listed before its parent on purpose
    table = "sc_children"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    parent_id = Column(
        t.Integer, ForeignKey("sc_parents.id", on_delete="CASCADE", on_update="CASCADE"), nullable=False, index=True
    )


class PetMapper(Mapper[Pet]):
    table = "sc_pets"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    parent_id = Column(t.Integer, ForeignKey("sc_parents.id", on_delete="SET NULL"))


class ParentMapper(Mapper[Parent]):
    table = "sc_parents"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False, unique=True)


class MembershipMapper(Mapper[Membership]):
    table = "sc_memberships"
    group = Column(t.String(20), primary_key=True)  # a reserved word as a column name
    member_no = Column(t.Integer, primary_key=True)
    role = Column(t.String(20), nullable=False)


class CountryMapper(Mapper[Country]):
    table = "sc_countries"
    code = Column(t.String(2), primary_key=True)
    name = Column(t.String(50), nullable=False)


class GadgetMapper(Mapper[Gadget]):
    table = "sc_gadgets"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(50), nullable=False)


class SettingMapper(Mapper[Setting]):
    table = "sc_settings"
    id = Column(t.Integer, primary_key=True)
    key = Column(t.String(30), nullable=False)
    level = Column(t.Integer, nullable=False, server_default="7")
    status = Column(t.String(10), nullable=False, server_default="'new'")
    enabled = Column(t.Boolean, nullable=False, server_default="TRUE")


class FlagMapper(Mapper[Flag]):
    table = "sc_flags"
    code = Column(t.String(20), primary_key=True)
    weight = Column(t.Integer, nullable=False, server_default="5")


class TicketMapper(Mapper[Ticket]):
    table = "sc_tickets"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(50), nullable=False)
    priority = Column(t.Integer, nullable=False, default=3)
    token = Column(t.String(40), nullable=False, default=make_token)


class BookMapper(Mapper[Book]):
    table = "sc_books"
    id = Column(t.Integer, primary_key=True, name="book_id")
    title = Column(t.String(100), nullable=False, name="title_text", index=True)


class NoteMapper(Mapper[Note]):
    table = "sc_notes"
    timestamps = True
    id = Column(t.Integer, primary_key=True)
    text = Column(t.String(100), nullable=False)


class TagMapper(Mapper[Tag]):
    table = "sc_tags"
    id = Column(t.Integer, primary_key=True, hidden=True)
    code = Column(t.String(10), nullable=False, default="T-1", hidden=True)
    label = Column(t.String(50), nullable=False)


class TokenMapper(Mapper[Token]):
    table = "sc_tokens"
    id = Column(t.Uuid, primary_key=True, default=uuid.uuid4)
    label = Column(t.String(20), nullable=False)


class CounterMapper(Mapper[Counter]):
    table = "sc_counters"
    id = Column(t.BigInteger, primary_key=True)
    label = Column(t.String(20), nullable=False)


class AlphaMapper(Mapper[Alpha]):
    table = "sc_alpha"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)
    beta_id = Column(t.Integer, ForeignKey("sc_beta.id"))


class BetaMapper(Mapper[Beta]):
    table = "sc_beta"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)
    alpha_id = Column(t.Integer, ForeignKey("sc_alpha.id"))


FAMILY = (ChildMapper, PetMapper, ParentMapper)


# -- catalog helpers (plain SQL through the bare driver) ------------------------------------------


def schema_filter(backend: Any) -> str:
    return "current_schema()" if backend.name == "postgresql" else "DATABASE()"


def table_names(backend: Any) -> set[str]:
    """Tables of this test file (prefix sc_) that exist."""
    if backend.name == "sqlite":
        rows = backend.raw("SELECT name FROM sqlite_master WHERE type = 'table'")
    else:
        rows = backend.raw(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = {schema_filter(backend)}"
        )
    return {r[0] for r in rows if r[0].startswith("sc_")}


def columns(backend: Any, table: str) -> dict[str, bool]:
    """Column name -> nullable."""
    if backend.name == "sqlite":
        rows = backend.raw('SELECT name, "notnull" FROM pragma_table_info(?) ORDER BY cid', [table])
        return {name: not notnull for name, notnull in rows}
    rows = backend.raw(
        "SELECT column_name, is_nullable FROM information_schema.columns "
        f"WHERE table_schema = {schema_filter(backend)} AND table_name = ? ORDER BY ordinal_position",
        [table],
    )
    return {name: nullable == "YES" for name, nullable in rows}


def primary_key(backend: Any, table: str) -> list[str]:
    if backend.name == "sqlite":
        return [r[0] for r in backend.raw("SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk", [table])]
    rows = backend.raw(
        "SELECT kcu.column_name FROM information_schema.table_constraints tc "
        "JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name "
        "AND kcu.table_schema = tc.table_schema AND kcu.table_name = tc.table_name "
        f"WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = {schema_filter(backend)} "
        "AND tc.table_name = ? ORDER BY kcu.ordinal_position",
        [table],
    )
    return [r[0] for r in rows]


def indexes(backend: Any, table: str) -> dict[tuple[str, ...], bool]:
    """Indexed column tuples -> unique, from the catalog (primary-key indexes may be included)."""
    found: dict[str, tuple[list[str], bool]] = {}
    if backend.name == "sqlite":
        names = [r[0] for r in backend.raw("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", [table])]
        flags = {r[0]: bool(r[1]) for r in backend.raw('SELECT name, "unique" FROM pragma_index_list(?)', [table])}
        for name in names:
            cols = [r[0] for r in backend.raw("SELECT name FROM pragma_index_info(?) ORDER BY seqno", [name])]
            found[name] = (cols, flags[name])
    elif backend.name == "postgresql":
        for name, definition in backend.raw(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = ?", [table]
        ):
            inside = re.search(r"\(([^)]*)\)\s*$", definition)
            assert inside is not None, definition
            cols = [c.strip().strip('"') for c in inside.group(1).split(",")]
            found[name] = (cols, definition.startswith("CREATE UNIQUE INDEX"))
    else:
        for name, non_unique, col in backend.raw(
            "SELECT index_name, non_unique, column_name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND table_name = ? ORDER BY index_name, seq_in_index",
            [table],
        ):
            cols, _ = found.setdefault(name, ([], not int(non_unique)))
            cols.append(col)
    return {tuple(cols): unique for cols, unique in found.values()}


def rows(backend: Any, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Raw rows, with identifiers written as [name] and quoted for the backend."""
    return backend.raw(re.sub(r"\[(\w+)\]", lambda m: backend.q(m.group(1)), sql), params)


# -- create_all / drop_all ------------------------------------------------------------------------


def test_create_all_creates_tables_parent_first_and_returns_them(backend, make_db):
    db = make_db(*FAMILY, create=False)
    db.drop_all()
    assert table_names(backend) == set()
    created = db.create_all()
    assert sorted(created) == ["sc_children", "sc_parents", "sc_pets"]
    assert created.index("sc_parents") < created.index("sc_children")
    assert created.index("sc_parents") < created.index("sc_pets")
    assert table_names(backend) == {"sc_children", "sc_parents", "sc_pets"}
    assert columns(backend, "sc_children").keys() == {"id", "name", "parent_id"}
    assert columns(backend, "sc_parents").keys() == {"id", "name"}
    assert primary_key(backend, "sc_parents") == ["id"]
    assert primary_key(backend, "sc_children") == ["id"]
    nullable = columns(backend, "sc_children")
    assert nullable["name"] is False
    assert nullable["parent_id"] is False
    assert columns(backend, "sc_pets")["parent_id"] is True


def test_create_all_leaves_existing_tables_alone(backend, make_db):
    db = make_db(*FAMILY)
    with db.session() as s:
        ann = Parent("Ann")
        s.add(ann)
        s.flush()
        s.add(Child("Cody", parent_id=ann.id))
    assert db.create_all() == []
    assert rows(backend, "SELECT [name] FROM [sc_parents]") == [("Ann",)]
    assert rows(backend, "SELECT [name], [parent_id] FROM [sc_children]") == [("Cody", ann.id)]
    # A missing table is created; the others keep their rows.
    rows(backend, "DROP TABLE [sc_pets]")
    assert db.create_all() == ["sc_pets"]
    assert table_names(backend) == {"sc_children", "sc_parents", "sc_pets"}
    assert rows(backend, "SELECT [name] FROM [sc_parents]") == [("Ann",)]
    assert rows(backend, "SELECT [name] FROM [sc_children]") == [("Cody",)]


def test_drop_all_removes_every_table_with_rows(backend, make_db):
    db = make_db(*FAMILY)
    with db.session() as s:
        ann = Parent("Ann")
        s.add(ann)
        s.flush()
        s.add_all([Child("Cody", parent_id=ann.id), Pet("Rex", parent_id=ann.id)])
    db.drop_all()
    assert table_names(backend) == set()
    db.drop_all()  # nothing left to drop is not an error
    assert table_names(backend) == set()


def test_tables_that_reference_each_other(backend, make_db):
    db = make_db(AlphaMapper, BetaMapper, create=False)
    db.drop_all()
    assert sorted(db.create_all()) == ["sc_alpha", "sc_beta"]
    assert table_names(backend) == {"sc_alpha", "sc_beta"}
    with db.session() as s:
        a = Alpha("a")
        s.add(a)
        s.flush()
        b = Beta("b", alpha_id=a.id)
        s.add(b)
        s.flush()
        a.beta_id = b.id
    assert rows(backend, "SELECT [name], [beta_id] FROM [sc_alpha]") == [("a", b.id)]
    assert rows(backend, "SELECT [name], [alpha_id] FROM [sc_beta]") == [("b", a.id)]
    # Both foreign keys exist, the one created first as well as the one added after.
    with pytest.raises(errors.IntegrityError), db.session() as s:
        s.add(Alpha("dangling", beta_id=98765))
        s.flush()
    with pytest.raises(errors.IntegrityError), db.session() as s:
        s.add(Beta("dangling", alpha_id=98765))
        s.flush()
    db.drop_all()
    assert table_names(backend) == set()
    assert sorted(db.create_all()) == ["sc_alpha", "sc_beta"]


# -- keys -----------------------------------------------------------------------------------------


def test_composite_primary_key(backend, make_db, count):
    db = make_db(MembershipMapper)
    assert primary_key(backend, "sc_memberships") == ["group", "member_no"]
    with db.session() as s:
        m1 = Membership("admins", 1, "owner")
        m2 = Membership("admins", 2)
        m3 = Membership("users", 1)
        s.add_all([m1, m2, m3])
        with count(s, 1):
            s.flush()
        assert s.identity(m1) == ("admins", 1)
        assert s.get(Membership, ("admins", 2)) is m2
    with db.session() as s:
        got = s.get(Membership, ("admins", 1))
        assert got == Membership("admins", 1, "owner")
        assert s.identity(got) == ("admins", 1)
        assert s.get(Membership, ("users", 2)) is None
        got.role = "chair"
        with count(s, 1):
            s.flush()
    assert rows(backend, "SELECT [group], [member_no], [role] FROM [sc_memberships] ORDER BY [group], [member_no]") == [
        ("admins", 1, "chair"),
        ("admins", 2, "member"),
        ("users", 1, "member"),
    ]
    with pytest.raises(errors.IntegrityError), db.session() as s:
        s.add(Membership("users", 1))
        s.flush()
    assert rows(backend, "SELECT count(*) FROM [sc_memberships]") == [(3,)]


def test_natural_string_key_and_dataclass(backend, make_db, count):
    db = make_db(CountryMapper)
    assert primary_key(backend, "sc_countries") == ["code"]
    with db.session() as s:
        nl = Country("NL", "Nederland")
        s.add_all([nl, Country("BE", "België")])
        s.flush()
        assert s.identity(nl) == "NL"
    calls = POST_INIT_CALLS["country"]
    with db.session() as s:
        got = s.get(Country, "NL")
        assert type(got) is Country
        assert (got.code, got.name) == ("NL", "Nederland")
        assert POST_INIT_CALLS["country"] == calls  # loading called no __init__
        got.name = "Nederland 🌷"
        with count(s, 1):
            s.flush()
    assert rows(backend, "SELECT [code], [name] FROM [sc_countries] ORDER BY [code]") == [
        ("BE", "België"),
        ("NL", "Nederland 🌷"),
    ]
    with pytest.raises(errors.IntegrityError), db.session() as s:
        s.add(Country("NL", "again"))
        s.flush()


def test_uuid_primary_key_from_a_callable_default(backend, make_db, count):
    db = make_db(TokenMapper)
    fixed = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with db.session() as s:
        a, b = Token("a"), Token("b", id=fixed)
        s.add_all([a, b])
        s.flush()
        assert isinstance(a.id, uuid.UUID) and a.id != fixed
        assert b.id == fixed
        assert s.identity(a) == a.id
    raw = rows(backend, "SELECT [id], [label] FROM [sc_tokens]")
    assert sorted((str(i), label) for i, label in raw) == sorted([(str(a.id), "a"), (str(fixed), "b")])
    with db.session() as s:
        got = s.get(Token, fixed)
        assert got == Token("b", fixed)
        assert s.get(Token, a.id) == Token("a", a.id)
        got.label = "bee"
        with count(s, 1):
            s.flush()
    assert rows(backend, "SELECT [label] FROM [sc_tokens] WHERE [label] = ?", ["bee"]) == [("bee",)]


def test_biginteger_primary_key_generated_or_given(backend, make_db):
    db = make_db(CounterMapper)
    big = 2**40 + 7
    with db.session() as s:
        given, generated = Counter("given", id=big), Counter("generated")
        s.add_all([given, generated])
        s.flush()
        assert given.id == big
        assert isinstance(generated.id, int) and generated.id != big
    assert sorted(rows(backend, "SELECT [id], [label] FROM [sc_counters]")) == sorted(
        [(big, "given"), (generated.id, "generated")]
    )
    with db.session() as s:
        assert s.get(Counter, big) == Counter("given", big)


def test_loaded_objects_are_built_without_calling_init(backend, make_db):
    db = make_db(GadgetMapper, ParentMapper)
    with db.session() as s:
        g = Gadget("widget", maker=object())
        p = Parent("Ann", tags=["in memory only"])
        s.add_all([g, p])
        s.flush()
        gid, pid = g.id, p.id
    gadget_calls, parent_calls = Gadget.init_calls, POST_INIT_CALLS["parent"]
    with db.session() as s:
        got = s.get(Gadget, gid)
        assert type(got) is Gadget
        assert (got.id, got.label) == (gid, "widget")
        assert got.maker is None  # the class-level default: __init__ never ran
        parent = s.query(Parent).one()
        assert (parent.id, parent.name) == (pid, "Ann")
        assert parent.tags == []  # an unmapped attribute gets its declared default
    assert Gadget.init_calls == gadget_calls
    assert POST_INIT_CALLS["parent"] == parent_calls


# -- foreign keys ---------------------------------------------------------------------------------


def family(db: Any) -> dict[str, int]:
    with db.session() as s:
        ann, bob, cy = Parent("Ann"), Parent("Bob"), Parent("Cy")
        s.add_all([ann, bob, cy])
        s.flush()
        s.add_all(
            [
                Child("ann-1", parent_id=ann.id),
                Child("ann-2", parent_id=ann.id),
                Child("bob-1", parent_id=bob.id),
                Child("cy-1", parent_id=cy.id),
                Pet("ann-pet", parent_id=ann.id),
                Pet("bob-pet", parent_id=bob.id),
            ]
        )
    return {"ann": ann.id, "bob": bob.id, "cy": cy.id}


def test_on_delete_cascade_and_set_null(backend, make_db):
    db = make_db(*FAMILY)
    ids = family(db)
    with db.session() as s:
        s.execute("DELETE FROM sc_parents WHERE id = :id", {"id": ids["ann"]})
    assert rows(backend, "SELECT [name], [parent_id] FROM [sc_children] ORDER BY [name]") == [
        ("bob-1", ids["bob"]),
        ("cy-1", ids["cy"]),
    ]
    assert rows(backend, "SELECT [name], [parent_id] FROM [sc_pets] ORDER BY [name]") == [
        ("ann-pet", None),
        ("bob-pet", ids["bob"]),
    ]


def test_on_update_cascade(backend, make_db):
    db = make_db(*FAMILY)
    ids = family(db)
    with db.session() as s:
        s.execute("UPDATE sc_parents SET id = :new WHERE id = :old", {"new": 1000, "old": ids["cy"]})
    assert rows(backend, "SELECT [name], [parent_id] FROM [sc_children] WHERE [name] = ?", ["cy-1"]) == [("cy-1", 1000)]


def test_dangling_foreign_key_raises_integrity_error(backend, make_db):
    db = make_db(*FAMILY)
    ids = family(db)
    with pytest.raises(errors.IntegrityError) as caught, db.session() as s:
        s.add(Child("lost", parent_id=ids["bob"] + 1000))
        s.flush()
    assert caught.value.orig is not None
    assert caught.value.__cause__ is caught.value.orig
    assert caught.value.statement is not None and "sc_children" in caught.value.statement
    with pytest.raises(errors.IntegrityError), db.session() as s:
        s.add(Pet("lost", parent_id=ids["bob"] + 1000))
        s.flush()
    assert rows(backend, "SELECT count(*) FROM [sc_children]") == [(4,)]
    assert rows(backend, "SELECT count(*) FROM [sc_pets]") == [(2,)]


# -- unique, not null, indexes --------------------------------------------------------------------


def test_unique_constraint_raises_integrity_error(backend, make_db):
    db = make_db(*FAMILY)
    with pytest.raises(errors.IntegrityError), db.session() as s:
        s.add_all([Parent("Ann"), Parent("Bob"), Parent("Ann")])
        s.flush()
    assert rows(backend, "SELECT count(*) FROM [sc_parents]") == [(0,)]
    with db.session() as s:
        s.add(Parent("Ann"))
    with pytest.raises(errors.IntegrityError) as caught, db.session() as s:
        s.add(Parent("Ann"))
        s.flush()
    assert caught.value.orig is not None
    assert rows(backend, "SELECT [name] FROM [sc_parents]") == [("Ann",)]
    assert indexes(backend, "sc_parents").get(("name",)) is True


def test_not_null_column_rejects_none(backend, make_db):
    db = make_db(*FAMILY)
    with pytest.raises(errors.IntegrityError), db.session() as s:
        s.add(Parent(None))
        s.flush()
    assert rows(backend, "SELECT count(*) FROM [sc_parents]") == [(0,)]


def test_indexes_exist_in_the_catalog(backend, make_db):
    make_db(*FAMILY, BookMapper)
    children = indexes(backend, "sc_children")
    assert children.get(("parent_id",)) is False  # index=True: a plain index
    assert ("name",) not in children  # no index asked for
    assert indexes(backend, "sc_parents").get(("name",)) is True  # unique=True
    assert indexes(backend, "sc_books").get(("title_text",)) is False  # by its database name


# -- defaults -------------------------------------------------------------------------------------


def test_server_default_fills_none_and_the_object(backend, make_db):
    db = make_db(SettingMapper, FlagMapper)
    with db.session() as s:
        a = Setting("a")
        b = Setting("b", level=2, status="old", enabled=False)
        c = Setting("c", level=0)
        s.add_all([a, b, c])
        s.flush()
        assert (a.level, a.status, a.enabled) == (7, "new", True)
        assert a.enabled is True
        assert (b.level, b.status, b.enabled) == (2, "old", False)
        assert (c.level, c.status, c.enabled) == (0, "new", True)
        f = Flag("x")
        g = Flag("y", weight=1)
        s.add_all([f, g])
        s.flush()
        assert (f.weight, g.weight) == (5, 1)
    raw = rows(backend, "SELECT [key], [level], [status], [enabled] FROM [sc_settings] ORDER BY [key]")
    assert [(k, lv, st, bool(en)) for k, lv, st, en in raw] == [
        ("a", 7, "new", True),
        ("b", 2, "old", False),
        ("c", 0, "new", True),
    ]
    assert rows(backend, "SELECT [code], [weight] FROM [sc_flags] ORDER BY [code]") == [("x", 5), ("y", 1)]
    with db.session() as s:
        got = s.get(Setting, a.id)
        assert got == Setting("a", 7, "new", True, a.id)
        assert s.get(Flag, "x") == Flag("x", 5)


def test_python_default_value_and_callable(backend, make_db):
    db = make_db(TicketMapper)
    before = len(TOKENS)
    with db.session() as s:
        t1 = Ticket("one")
        t2 = Ticket("two", priority=9, token="mine")
        t3 = Ticket("three", priority=0)
        s.add_all([t1, t2, t3])
        s.flush()
        assert len(TOKENS) == before + 2  # called once per row that needed it
        assert (t1.priority, t1.token) == (3, TOKENS[before])
        assert (t2.priority, t2.token) == (9, "mine")
        assert (t3.priority, t3.token) == (0, TOKENS[before + 1])
        assert t1.token != t3.token
    assert rows(backend, "SELECT [title], [priority], [token] FROM [sc_tickets] ORDER BY [id]") == [
        ("one", 3, TOKENS[before]),
        ("two", 9, "mine"),
        ("three", 0, TOKENS[before + 1]),
    ]


def test_column_name_option(backend, make_db):
    db = make_db(BookMapper)
    assert columns(backend, "sc_books").keys() == {"book_id", "title_text"}
    assert primary_key(backend, "sc_books") == ["book_id"]
    with db.session() as s:
        book = Book("Dune")
        s.add(book)
        s.flush()
        assert isinstance(book.id, int)
    assert rows(backend, "SELECT [book_id], [title_text] FROM [sc_books]") == [(book.id, "Dune")]
    with db.session() as s:
        assert s.query(Book).where(title="Dune").values("id", "title") == [(book.id, "Dune")]
        got = s.get(Book, book.id)
        assert got == Book("Dune", book.id)
        got.title = "Dune Messiah"
    assert rows(backend, "SELECT [book_id], [title_text] FROM [sc_books]") == [(book.id, "Dune Messiah")]


def test_timestamps(backend, make_db, count):
    db = make_db(NoteMapper)
    nullable = columns(backend, "sc_notes")
    assert nullable.keys() == {"id", "text", "created_at", "updated_at"}
    assert nullable["created_at"] is False and nullable["updated_at"] is False
    start = dt.datetime.now(dt.timezone.utc)
    with db.session() as s:
        note = Note("first")
        s.add(note)
        s.flush()
    end = dt.datetime.now(dt.timezone.utc)
    with db.session() as s:
        [(created, updated)] = s.query(Note).values("created_at", "updated_at")
    for v in (created, updated):
        assert isinstance(v, dt.datetime)
        assert v.tzinfo is not None and v.utcoffset() == dt.timedelta(0)
        assert start - dt.timedelta(seconds=1) <= v <= end + dt.timedelta(seconds=1)
    assert created == updated
    [(raw_created, raw_updated)] = rows(backend, "SELECT [created_at], [updated_at] FROM [sc_notes]")
    assert raw_created is not None and raw_updated is not None
    time.sleep(0.01)
    with db.session() as s:
        got = s.get(Note, note.id)
        with count(s, 0):
            s.flush()
        got.text = "second"
        with count(s, 1):
            s.flush()
    with db.session() as s:
        [(created2, updated2, text)] = s.query(Note).values("created_at", "updated_at", "text")
    assert text == "second"
    assert created2 == created
    assert updated2 > updated
    assert updated2.utcoffset() == dt.timedelta(0)
    # The columns are NOT NULL: a row without them is refused.
    with pytest.raises(errors.IntegrityError), db.session() as s:
        s.execute("INSERT INTO sc_notes (text) VALUES (:text)", {"text": "raw"})


def test_hidden_columns(backend, make_db):
    db = make_db(TagMapper)
    with db.session() as s:
        tag = Tag("red")
        other = Tag("blue")
        s.add_all([tag, other])
        s.flush()
        tag_id = s.identity(tag)
        other_id = s.identity(other)
        assert isinstance(tag_id, int) and isinstance(other_id, int) and tag_id != other_id
    assert rows(backend, "SELECT [id], [code], [label] FROM [sc_tags] ORDER BY [id]") == sorted(
        [(tag_id, "T-1", "red"), (other_id, "T-1", "blue")]
    )
    with db.session() as s:
        got = s.get(Tag, tag_id)
        assert got == Tag("red")
        assert s.identity(got) == tag_id
        assert s.query(Tag).where(code="T-1").order_by("label").values("id", "code", "label") == [
            (other_id, "T-1", "blue"),
            (tag_id, "T-1", "red"),
        ]


def test_generated_keys_continue_after_explicit_ones(make_db, backend):
    from tests.models import Owner, OwnerMapper, PugMapper

    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add_all([Owner("a", id=1), Owner("b", id=7)])
    with db.session() as s:
        c = Owner("c")
        s.add(c)
        s.flush()
        assert c.id == 8
    assert backend.raw(f"SELECT id, name FROM {backend.q('owners')} ORDER BY id") == [(1, "a"), (7, "b"), (8, "c")]
