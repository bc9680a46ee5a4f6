"""Hostile input on every backend.

1. Values: stored and read back verbatim (fresh session and bare driver) and usable as bound
   parameters that find exactly their own row: quotes, SQL, backslashes, every placeholder
   syntax, NUL, huge strings, unicode edge cases, empty vs NULL, whitespace and case.
2. Names: a name that is not mapped is refused with QueryError before any SQL is sent, by
   every API that takes one.
3. Raw SQL: ``session.execute`` binds values, never splices them, and leaves ``:name`` text
   inside quoted strings and values alone.
4. Identifiers: reserved words and mixed case work as table and column names everywhere.
5. Passwords: never echoed by errors, whatever their characters or place in the URL.

Overlap with other files, kept here so each promise is complete in one place:
tests/integration/test_types.py (EVIL strings, 1 MB text, bytes with NUL round-trip),
tests/integration/test_query.py (some unmapped names, bound values),
tests/integration/test_session.py (execute: ``::`` casts, ``':x'`` literals, missing names),
tests/integration/test_errors.py (passwords in the userinfo, ``?password=`` in ``db.url``).
"""

from __future__ import annotations

import traceback
from typing import Any

import attrs
import pytest

from mapper import BelongsTo, BelongsToMany, Column, Database, ForeignKey, HasMany, Mapper, errors
from mapper import types as t
from tests.rel_models import PETS, Owner, OwnerMapper, Pug, PugMapper, Toy, ToyMapper, column_type


@attrs.define
class Note:
    title: str | None = None
    body: str | None = None
    short: str | None = None
    blob: bytes | None = None
    id: int | None = None


class NoteMapper(Mapper[Note]):
    table = "hostile_notes"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(200))
    body = Column(t.Text)
    short = Column(t.String(5))
    blob = Column(t.LargeBinary)


def q_notes(backend: Any, *cols: str) -> str:
    q = backend.q
    return f"SELECT {', '.join(q(c) for c in cols)} FROM {q('hostile_notes')} ORDER BY {q('id')}"


def raw_count(backend: Any) -> int:
    return int(backend.raw(f"SELECT count(*) FROM {backend.q('hostile_notes')}")[0][0])


DROP = "'; DROP TABLE hostile_notes; --"

# Every value is distinct from every other one, so each lookup must find exactly one row.
HOSTILE = [
    # quotes and SQL
    "'",
    "''",
    '"',
    '""',
    "`",
    "it's",
    'say "hi"',
    DROP,
    '"; DROP TABLE hostile_notes; --',
    "`; DROP TABLE hostile_notes; --",
    "x' OR '1'='1",
    "x') OR ('1'='1",
    "1; SELECT 1",
    "/* comment */",
    "-- comment",
    "# comment",
    # backslashes (MySQL reads them as escapes inside literals: they must still round-trip)
    "\\",
    "\\\\",
    "a\\",
    "\\'",
    '\\"',
    "\\' OR 1=1 --",
    "C:\\new\\table\\x",
    "\\0 \\n \\r \\t \\Z \\b \\% \\_",
    # placeholder syntaxes of every driver and of execute()
    "%s",
    "%%",
    "%",
    "%d %r %",
    "%(name)s",
    "%(title)s",
    "?",
    "??",
    "$1",
    ":name",
    ":title",
    "::text",
    ":1",
    "@title",
    "{title}",
    "{}",
    # LIKE wildcards are plain characters in an equality
    "_",
    "a%b",
    "a_b",
    # unicode edge cases
    "\U0001f600",
    "Zo\u00eb \U0001f436\U0001f43e \u65e5\u672c\u8a9e \U0001d11e",
    "\U0001f469\u200d\U0001f4bb",  # zero-width joiner sequence
    "e\u0301",  # combining acute accent: decomposed é
    "\u00e9",  # precomposed é: a different string
    "\u200fabc\u200e",  # RTL / LTR marks
    "\u202eevil\u202c",  # right-to-left override
    "x\u200by",  # zero-width space
    "\ufeffbom",
    "\ufffe\uffff",  # noncharacters
    "\U0010ffff\U0001fffe",
    "\x01\x1b[31m\x7f",  # control characters
    "a\r\nb\tc\n",
    "T\u043em",  # Cyrillic o
    # whitespace and case
    "",
    " ",
    "  ",
    "\t",
    "\n",
    " lead",
    "trail ",
    "trail",
    "  both  ",
    "Tom",
    "tom",
    "TOM",
]


def test_hostile_values_are_stored_verbatim_and_find_exactly_their_row(backend, make_db, count):
    assert len(set(HOSTILE)) == len(HOSTILE)
    db = make_db(NoteMapper)
    with db.session() as s:
        notes = [Note(title=v) for v in HOSTILE]
        s.add_all(notes)  # multi-row INSERT
    ids = [n.id for n in notes]
    with db.session() as s:
        loaded = s.query(Note).order_by("id").all()
        for n in loaded:
            n.body = n.title
        with count(s, 1):
            s.flush()  # one executemany UPDATE
    # A fresh session: objects and plain rows.
    with db.session() as s:
        for i, v in zip(ids, HOSTILE):
            got = s.get(Note, i)
            assert got is not None
            assert (got.title, got.body) == (v, v), repr(v)
        assert s.query(Note).order_by("id").values("title", "body") == [(v, v) for v in HOSTILE]
    # The bare driver sees the same text.
    assert backend.raw(q_notes(backend, "id", "title", "body")) == [(i, v, v) for i, v in zip(ids, HOSTILE)]
    # Each value, as a parameter, finds exactly its own row: String and Text columns.
    with db.session() as s:
        with count(s, len(HOSTILE)):
            for i, v in zip(ids, HOSTILE):
                assert s.query(Note).where(title=v).values("id") == [(i,)], repr(v)
        with count(s, len(HOSTILE)):
            for i, v in zip(ids, HOSTILE):
                assert s.query(Note).where(NoteMapper.body == v).values("id") == [(i,)], repr(v)
        with count(s, 1):
            assert s.query(Note).where(NoteMapper.title.in_(HOSTILE[:10])).count() == 10
    # Set-based update with a value made of everything at once.
    everything = "".join(HOSTILE[:45])
    with db.session() as s:
        assert s.query(Note).where(title=DROP).update(body=everything) == 1
    assert backend.raw(
        f"SELECT {backend.q('body')} FROM {backend.q('hostile_notes')} WHERE {backend.q('title')} = ?", (DROP,)
    ) == [(everything,)]
    assert raw_count(backend) == len(HOSTILE)


def test_empty_string_and_null_stay_distinct(backend, make_db, count):
    db = make_db(NoteMapper)
    with db.session() as s:
        empty, null, space = Note(title=""), Note(title=None), Note(title=" ")
        s.add_all([empty, null, space])
    with db.session() as s:
        with count(s, 1):
            assert s.query(Note).where(title="").values("id") == [(empty.id,)]
        with count(s, 1):
            assert s.query(Note).where(title=None).values("id") == [(null.id,)]
        assert s.query(Note).where(NoteMapper.title.is_not(None)).count() == 2
        assert s.get(Note, empty.id).title == "" and s.get(Note, null.id).title is None
    assert backend.raw(q_notes(backend, "title")) == [("",), (None,), (" ",)]


def test_case_is_preserved_and_lookups_are_case_sensitive(backend, make_db):
    db = make_db(NoteMapper)
    variants = ["Tom", "tom", "TOM", "tOm", "TOM "]
    with db.session() as s:
        s.add_all([Note(title=v) for v in variants])
    with db.session() as s:
        for v in variants:
            assert s.query(Note).where(title=v).values("title") == [(v,)]
        assert s.query(Note).where(title="toM").count() == 0
    assert [r[0] for r in backend.raw(q_notes(backend, "title"))] == variants


# -- NUL ---------------------------------------------------------------------------------------------

NUL_TEXT = ["\x00", "a\x00b", "\x00\x00" + DROP + "\x00", "end\x00"]
NUL_BYTES = [b"\x00", b"a\x00b", b"\x00" + DROP.encode() + b"\\%s:title?\x00", bytes(range(256)), b""]


def test_nul_in_text_round_trips_where_the_backend_allows_it(backend, make_db):
    if backend.name == "postgresql":
        pytest.skip("PostgreSQL text cannot hold NUL: test_nul_in_text_is_refused_cleanly_on_postgresql")
    db = make_db(NoteMapper)
    with db.session() as s:
        notes = [Note(title=v, body=v) for v in NUL_TEXT]
        s.add_all(notes)
    with db.session() as s:
        for n, v in zip(notes, NUL_TEXT):
            got = s.get(Note, n.id)
            assert (got.title, got.body) == (v, v)
            assert s.query(Note).where(title=v).values("id") == [(n.id,)], repr(v)
            assert s.query(Note).where(NoteMapper.body == v).count() == 1
    assert backend.raw(q_notes(backend, "title", "body")) == [(v, v) for v in NUL_TEXT]


def test_nul_in_text_is_refused_cleanly_on_postgresql(backend, make_db):
    if backend.name != "postgresql":
        pytest.skip("only PostgreSQL refuses NUL in text")
    db = make_db(NoteMapper)
    s = db.session()
    try:
        note = Note(title="a\x00b")
        s.add(note)
        with pytest.raises(errors.DataError) as info:
            s.flush()
        assert "NUL" in str(info.value)
        assert note.id is None  # nothing the flush did is kept
        with pytest.raises(errors.PendingRollbackError):
            s.query(Note).count()
        s.rollback()
        # As a query parameter and through execute(): the same clear error.
        with pytest.raises(errors.DataError):
            s.query(Note).where(title="\x00").all()
        s.rollback()
        with pytest.raises(errors.DataError):
            s.execute("INSERT INTO hostile_notes (title) VALUES (:v)", {"v": "x\x00"})
        s.rollback()
        # The session is usable again.
        s.add(Note(title="after"))
        s.commit()
    finally:
        s.close()
    assert backend.raw(q_notes(backend, "title")) == [("after",)]


def test_nul_in_binary_round_trips_and_is_a_usable_parameter(backend, make_db):
    db = make_db(NoteMapper)
    with db.session() as s:
        notes = [Note(blob=v) for v in NUL_BYTES]
        s.add_all(notes)
    with db.session() as s:
        for n, v in zip(notes, NUL_BYTES):
            assert s.get(Note, n.id).blob == v
            assert s.query(Note).where(blob=v).values("id") == [(n.id,)], repr(v)
    assert [bytes(r[0]) for r in backend.raw(q_notes(backend, "blob"))] == NUL_BYTES


# -- size -----------------------------------------------------------------------------------------

# About 1 MB of characters and more in bytes: past MySQL's TEXT (64 KB), within LONGTEXT and
# well under MariaDB's max_allowed_packet (16 MB).
HUGE = ("'; DROP TABLE hostile_notes; -- \\ %s %(n)s :title ? \U0001f600 e\u0301 \u200f\n" * 25_000)[:1_000_000]


def test_huge_text_and_binary_round_trip_and_bind(backend, make_db):
    db = make_db(NoteMapper)
    # The dialect maps Text to a type that holds it.
    expected_type = {"sqlite": "text", "postgresql": "text", "mysql": "longtext"}[backend.name]
    assert column_type(backend, "hostile_notes", "body") == expected_type
    huge_bytes = HUGE.encode() + b"\x00"
    assert len(huge_bytes) > 1_000_000
    with db.session() as s:
        note = Note(body=HUGE, blob=huge_bytes)
        s.add(note)
        s.add(Note(body=HUGE[:-1], blob=huge_bytes[:-1]))
    with db.session() as s:
        got = s.get(Note, note.id)
        assert got.body == HUGE and got.blob == huge_bytes
        assert s.query(Note).where(body=HUGE).values("id") == [(note.id,)]
        assert s.query(Note).where(blob=huge_bytes).values("id") == [(note.id,)]
    [(body, blob)] = backend.raw(
        f"SELECT {backend.q('body')}, {backend.q('blob')} FROM {backend.q('hostile_notes')} WHERE {backend.q('id')} = ?",
        (note.id,),
    )
    assert body == HUGE and bytes(blob) == huge_bytes


def test_string_longer_than_its_column(backend, make_db):
    """PostgreSQL and MariaDB refuse it with DataError; SQLite does not enforce VARCHAR(n) and stores it as given."""
    db = make_db(NoteMapper)
    fits = ["12345", "\U0001f600" * 5, "e\u0301" * 2, "'\\%s?"]  # lengths count characters
    with db.session() as s:
        s.add_all([Note(short=v) for v in fits])
    assert [r[0] for r in backend.raw(q_notes(backend, "short"))] == fits
    for too_long in ["123456", "\U0001f600" * 6, DROP]:
        s = db.session()
        try:
            note = Note(short=too_long)
            s.add(note)
            if backend.name == "sqlite":
                s.commit()
                assert s.query(Note).where(short=too_long).one().short == too_long
                continue
            with pytest.raises(errors.DataError) as info:
                s.flush()
            assert isinstance(info.value, errors.DatabaseError) and info.value.orig is not None
            assert note.id is None
            s.rollback()
            with pytest.raises(errors.DataError):
                s.query(Note).where(short="12345").update(short=too_long)
            s.rollback()
            assert s.query(Note).count() == len(fits)  # usable, nothing written
        finally:
            s.close()
    stored = [r[0] for r in backend.raw(q_notes(backend, "short"))]
    if backend.name == "sqlite":
        assert stored == fits + ["123456", "\U0001f600" * 6, DROP]
    else:
        assert stored == fits


# -- lone surrogates --------------------------------------------------------------------------------

SURROGATES = ["\ud800", "a\udfffb", "\udcff", "\ud83d"]  # \udcff would be a raw byte under surrogateescape


def test_lone_surrogates_are_refused_with_a_clear_error_and_nothing_written(backend, make_db):
    db = make_db(NoteMapper)
    for bad in SURROGATES:
        s = db.session()
        try:
            note = Note(title=bad, body=bad)
            s.add(note)
            with pytest.raises((UnicodeEncodeError, errors.DataError)) as info:
                s.flush()
            assert "surrogate" in str(info.value)
            assert note.id is None and note.title == bad
            with pytest.raises(errors.PendingRollbackError):
                s.query(Note).count()
            s.rollback()
            with pytest.raises((UnicodeEncodeError, errors.DataError)):
                s.query(Note).where(title=bad).all()
            with pytest.raises((UnicodeEncodeError, errors.DataError)):
                s.execute("SELECT :v AS v", {"v": bad})
            s.rollback()
            s.add(Note(title="ok " + repr(bad)))
            s.commit()
        finally:
            s.close()
    # Only the good rows, and no mangled text (no U+FFFD, no raw bytes) anywhere.
    assert [r[0] for r in backend.raw(q_notes(backend, "title"))] == ["ok " + repr(b) for b in SURROGATES]


def test_unencodable_text_is_a_mapper_data_error(backend, make_db):
    db = make_db(NoteMapper)
    s = db.session()
    try:
        s.add(Note(title="\ud800"))
        with pytest.raises(errors.DataError):
            s.flush()
    finally:
        s.rollback()
        s.close()


# -- names that are not mapped ----------------------------------------------------------------------

BAD_NAMES = [
    "nope",
    "name; DROP TABLE rel_pugs",
    "name = name OR 1=1 --",
    "name desc",
    "name DESC NULLS FIRST",
    "name, age",
    "1",
    "-1",
    "*",
    "",
    " name",
    "name ",
    "Name",
    "NAME",
    "rel_pugs.name",
    '"name"',
    "`name`",
    "[name]",
    "name\x00",
    "n\u0430me",  # Cyrillic a
    "name)",
    "(SELECT 1)",
    "RANDOM()",
    "__class__",
    "__dict__",
    "table",
    "lazy",
    "on_load",
]


def _segment(bad: str, dotted: bool) -> str:
    return bad.split(".")[0] if dotted and "." in bad else bad


def _path(bad: str) -> tuple[str, str]:
    """(class named, name named) for an include()/load() path on Pug; an empty path is malformed, not a name."""
    return ("", "") if not bad else ("Pug", _segment(bad, True))


def _ordered(bad: str) -> str:
    """The name order_by() looks up: a leading '-' means descending."""
    return _segment(bad[1:] if bad.startswith("-") else bad, True)


def test_unmapped_names_are_refused_before_any_sql(backend, make_db, count):
    db = make_db(*PETS)
    with db.session() as s:
        s.add(Owner("Tom", pugs=[Pug("Cody", 1, toys=[Toy("ball")])]))
    with db.session() as s:
        pug = s.query(Pug).one()
        owner = s.query(Owner).one()
        s.add(Pug("Pending", owner=owner))  # any statement would autoflush this first
        attempts: list[tuple[Any, str, str | None]] = []  # (call, class named, name named)
        for bad in BAD_NAMES:
            attempts += [
                (lambda b=bad: s.query(Pug).where(**{b: 1}), "Pug", bad),
                (lambda b=bad: s.query(Pug).order_by(b), "Pug", _ordered(bad)),
                (lambda b=bad: s.query(Pug).order_by("-" + b), "Pug", _segment(bad, True)),
                (lambda b=bad: s.query(Pug).order_by("name", b), "Pug", _ordered(bad)),
                (lambda b=bad: s.query(Pug).values(b), "Pug", bad),
                (lambda b=bad: s.query(Pug).values("name", b), "Pug", bad),
                (lambda b=bad: s.query(Pug).include(b), *_path(bad)),
                (lambda b=bad: s.query(Pug).include("toys", b), *_path(bad)),
                (lambda b=bad: s.load(pug, b), *_path(bad)),
                (lambda b=bad: s.load([pug], "owner", b), *_path(bad)),
                (lambda b=bad: s.related(pug, b), "Pug", bad),
                (lambda b=bad: s.query(Pug).where(PugMapper.owner.has(**{b: 1})), "Owner", bad),
                (lambda b=bad: s.query(Owner).where(OwnerMapper.pugs.any(**{b: 1})), "Pug", bad),
                (lambda b=bad: s.query(Owner).where(OwnerMapper.pugs.any(PugMapper.toys.any(**{b: 1}))), "Toy", bad),
                (lambda b=bad: s.query(Pug).where(name="Cody").update(**{b: 1}), "Pug", bad),
            ]
        attempts += [
            # dotted paths with a bad segment further along
            (lambda: s.query(Pug).order_by("owner.nope"), "Owner", "nope"),
            (lambda: s.query(Pug).order_by("-owner.nope"), "Owner", "nope"),
            (lambda: s.query(Pug).order_by("owner.name; DROP TABLE rel_owners"), "Owner", "name; DROP TABLE rel_owners"),
            (lambda: s.query(Pug).order_by("owner.name desc"), "Owner", "name desc"),
            (lambda: s.query(Pug).order_by("owner."), "Owner", ""),
            (lambda: s.query(Pug).order_by(".name"), "Pug", ""),
            (lambda: s.query(Pug).order_by("owner..name"), "Owner", ""),
            (lambda: s.query(Pug).order_by("toys.name"), "Pug", "toys"),  # to-many: refused
            (lambda: s.query(Toy).order_by("pug.owner.pugs.name"), "Owner", "pugs"),
            (lambda: s.query(Pug).values("owner.nope"), "Owner", "nope"),  # a to-one path: its last name checked
            (lambda: s.query(Pug).values("toys.name"), "Pug", "toys"),  # to-many without join(): refused
            (lambda: s.query(Pug).include("owner.nope"), "Owner", "nope"),
            (lambda: s.query(Pug).include("toys.pug.owner.name"), "Owner", "name"),  # a column
            (lambda: s.query(Pug).include("toys."), "Toy", ""),
            (lambda: s.query(Pug).include(".toys"), "Pug", ""),
            (lambda: s.query(Pug).include("toys..pug"), "Toy", ""),
            (lambda: s.query(Pug).include("toys; DROP TABLE rel_toys"), "Pug", "toys; DROP TABLE rel_toys"),
            (lambda: s.query(Pug).include("owner_id"), "Pug", "owner_id"),  # a hidden column
            (lambda: s.load(pug, "owner.pugs.nope"), "Pug", "nope"),
            (lambda: s.related(pug, "name"), "Pug", "name"),  # a column, not a relation
            (lambda: s.related(pug, "owner_id"), "Pug", "owner_id"),
            (lambda: s.query(Toy).where(ToyMapper.pug.has(PugMapper.owner.has(nope=1))), "Owner", "nope"),
            (lambda: s.query(Pug).update(owner=None), "Pug", "owner"),  # a relation, not a column
            (lambda: s.query(Pug).update(toys=[]), "Pug", "toys"),
            # names that are not strings
            (lambda: s.query(Pug).order_by(None), "", ""),
            (lambda: s.query(Pug).values(None), "", ""),
            (lambda: s.query(Pug).include(None), "", ""),
            (lambda: s.query(Pug).include(3), "", ""),
            (lambda: s.load(pug, None), "", ""),
            (lambda: s.related(pug, None), "Pug", None),
        ]
        unclear = []
        with count(s, 0):
            for call, klass, name in attempts:
                with pytest.raises(errors.QueryError) as info:
                    call()
                assert isinstance(info.value, errors.MapperError)
                msg = str(info.value)
                if klass not in msg or (klass and repr(name) not in msg):
                    unclear.append((klass, name, msg))
        assert unclear == [], "\n".join(map(repr, unclear))
        s.rollback()
    # Nothing was sent: the pending pug never reached the table, and every table is intact.
    q = backend.q
    assert backend.raw(f"SELECT name FROM {q('rel_pugs')}") == [("Cody",)]
    assert backend.raw(f"SELECT count(*) FROM {q('rel_owners')}") == [(1,)]
    assert backend.raw(f"SELECT count(*) FROM {q('rel_toys')}") == [(1,)]


# -- raw SQL through session.execute -----------------------------------------------------------------


def test_execute_binds_hostile_values_and_never_reads_them_as_sql(backend, make_db, count):
    db = make_db(NoteMapper)
    values = [v for v in HOSTILE if v] + [":missing", ":title:title", "::", "%(missing)s"]
    with db.session() as s:
        for v in values:
            # The same name twice, and values that look like :name, %s, ?, $1: all bound.
            assert s.execute("INSERT INTO hostile_notes (title, body) VALUES (:title, :title)", {"title": v}) == []
        for v in values:
            rows = s.execute("SELECT title, body FROM hostile_notes WHERE title = :title AND body = :title", {"title": v})
            assert rows == [(v, v)], repr(v)
        # A value that contains another placeholder's text needs no value for it.
        with count(s, 1):
            assert s.execute("SELECT :a AS a", {"a": ":b %s ? $1 %(b)s"})[0].a == ":b %s ? $1 %(b)s"
    assert [r[0] for r in backend.raw(q_notes(backend, "title"))] == values
    assert raw_count(backend) == len(values)


def test_execute_leaves_placeholder_text_in_literals_and_identifiers_alone(backend, make_db, count):
    db = make_db(NoteMapper)
    alias = backend.q("a:title")
    with db.session() as s:
        for params in ({}, {"title": "X", "x": "Y"}):
            row = s.execute(f"SELECT 'it''s :title' AS a, ':x' AS b, '%s %% ?' AS c, 1 AS {alias}", params)[0]
            assert tuple(row) == ("it's :title", ":x", "%s %% ?", 1)
            assert row["a:title"] == 1
        row = s.execute("SELECT 7 % :m AS r, '50%' AS p, :v AS v", {"m": 4, "v": "%s%%"})[0]
        assert tuple(row) == (3, "50%", "%s%%")
        if backend.name == "postgresql":
            row = s.execute("SELECT :v::text AS v, ':v'::text AS w", {"v": DROP})[0]
            assert tuple(row) == (DROP, ":v")
        # A missing name is refused before anything is sent, even when another value spells it.
        with count(s, 0):
            with pytest.raises(errors.QueryError, match=":b"):
                s.execute("SELECT :a AS a, :b AS b", {"a": ":b"})
            with pytest.raises(errors.QueryError, match=":title"):
                s.execute("INSERT INTO hostile_notes (title) VALUES (:title)", {"Title": "x", "title ": "y"})
            with pytest.raises(errors.QueryError):
                s.execute("SELECT :a AS a", [DROP])  # not a mapping: refused, not spliced
    assert raw_count(backend) == 0


def test_placeholder_text_after_a_backslash_escaped_quote_stays_in_the_literal(backend, make_db):
    if backend.name == "sqlite":
        pytest.skip("SQLite string literals have no backslash escapes")
    sql = r"SELECT 'it\'s :x' AS s" if backend.name == "mysql" else r"SELECT E'it\'s :x' AS s"
    db = Database(backend.url)
    try:
        with db.session() as s:
            # The value must not matter: :x is inside the literal. Today on MySQL this payload
            # closes the literal and adds a column of its own (user() and @@version come back).
            payload = " AS s, user() AS t, @@version AS v -- " if backend.name == "mysql" else "x"
            assert s.execute(sql, {"x": payload}) == [("it's :x",)]
            assert s.execute(sql, {}) == [("it's :x",)]
    finally:
        db.close()


# -- identifiers: reserved words and case -----------------------------------------------------------


@attrs.define(eq=False)
class Usr:
    select: str
    desc: str | None = None
    orders: list[Ord] = attrs.Factory(list)
    groups: list[Grp] = attrs.Factory(list)
    key: int | None = None


@attrs.define(eq=False)
class Ord:
    limit: int
    user: Usr | None = None
    id: int | None = None


@attrs.define(eq=False)
class Grp:
    index: str
    where: str
    users: list[Usr] = attrs.Factory(list)


class UsrMapper(Mapper[Usr]):
    table = "user"
    key = Column(t.Integer, primary_key=True)
    select = Column(t.String(50), nullable=False, unique=True)
    desc = Column(t.String(50), name="from")
    orders = HasMany("Ord", foreign_key="group", inverse="user", cascade="all", order_by="-limit")
    groups = BelongsToMany("Grp", through="select", foreign_key="from", other_key="to", inverse="users", order_by="index")


class OrdMapper(Mapper[Ord]):
    table = "order"
    id = Column(t.Integer, primary_key=True, name="table")
    limit = Column(t.Integer, nullable=False)
    group = Column(t.Integer, ForeignKey("user.key", on_delete="CASCADE"), index=True)  # hidden
    user = BelongsTo(Usr, foreign_key="group", inverse="orders")


class GrpMapper(Mapper[Grp]):
    table = "group"
    index = Column(t.String(20), primary_key=True)
    where = Column(t.String(50), nullable=False, index=True)
    users = BelongsToMany(Usr, through="select", foreign_key="to", other_key="from", order_by="select")


RESERVED = (UsrMapper, OrdMapper, GrpMapper)


def test_reserved_words_as_table_and_column_names(backend, make_db, count):
    db = make_db(*RESERVED)
    q = backend.q
    with db.session() as s:
        g1, g2 = Grp("g1", "w1"), Grp("g2", "w2")
        ann = Usr("ann", desc="from ann", orders=[Ord(3), Ord(5)], groups=[g2, g1])
        bob = Usr("bob", key=100, orders=[Ord(1)])  # an explicit key (PostgreSQL moves its sequence)
        s.add_all([ann, bob])
        s.flush()
        cat = Usr("cat", groups=[g1])
        s.add(cat)
    assert cat.key > 100
    with db.session() as s:
        assert s.query(Usr).where(select="ann").one().desc == "from ann"
        assert s.query(Usr).order_by("-select").values("select") == [("cat",), ("bob",), ("ann",)]
        assert s.query(Usr).order_by("key").limit(1).offset(1).values("select") == [("bob",)]
        assert s.query(Ord).order_by("user.select", "-limit").values("limit") == [(5,), (3,), (1,)]
        with count(s, 3):
            users = s.query(Usr).include("orders", "groups").order_by("select").all()
        assert [[o.limit for o in u.orders] for u in users] == [[5, 3], [1], []]
        assert [[g.index for g in u.groups] for u in users] == [["g1", "g2"], [], ["g1"]]
        assert s.query(Usr).where(UsrMapper.orders.any(OrdMapper.limit > 4)).values("select") == [("ann",)]
        assert s.query(Ord).where(OrdMapper.user.has(select="bob")).values("limit") == [(1,)]
        assert s.query(Usr).where(UsrMapper.groups.any(where="w2")).values("select") == [("ann",)]
        assert s.query(Grp).where(GrpMapper.users.any(select="cat")).values("index") == [("g1",)]
        assert s.query(Ord).where(group=ann.key).count() == 2
        assert s.query(Ord).where(OrdMapper.limit.in_([1, 5])).order_by("limit").values("group") == [(bob.key,), (ann.key,)]
        assert s.get(Usr, 100).select == "bob"
        assert [o.limit for o in s.query(Ord).order_by("limit").stream(batch_size=1)] == [1, 3, 5]
    with db.session() as s:
        everyone = s.query(Usr).order_by("key").all()
        with count(s, 1):
            assert [len(u.orders) for u in everyone] == [2, 1, 0]  # lazy load, one query
        assert s.query(Ord).where(limit=1).update(limit=2) == 1
        ann = everyone[0]
        s.related(ann, "groups").remove(s.get(Grp, "g2"))
        ann.desc = "changed"
        s.flush()
        s.delete(s.get(Usr, 100))  # cascade "all": bob's order goes too
        s.flush()
        assert s.query(Ord).where(OrdMapper.limit > 4).delete() == 1
    assert backend.raw(f"SELECT {q('select')}, {q('from')} FROM {q('user')} ORDER BY {q('key')}") == [
        ("ann", "changed"),
        ("cat", None),
    ]
    assert backend.raw(f"SELECT {q('limit')}, {q('group')} FROM {q('order')}") == [(3, ann.key)]
    assert sorted(backend.raw(f"SELECT {q('from')}, {q('to')} FROM {q('select')}")) == sorted(
        [(ann.key, "g1"), (cat.key, "g1")]
    )
    assert backend.raw(f"SELECT {q('index')}, {q('where')} FROM {q('group')} ORDER BY {q('index')}") == [
        ("g1", "w1"),
        ("g2", "w2"),
    ]


@attrs.define
class Camel:
    Name: str
    id: int | None = None


class CamelMapper(Mapper[Camel]):
    table = "CamelCase_Table"
    id = Column(t.Integer, primary_key=True, name="Id")
    Name = Column(t.String(50), nullable=False, unique=True)


def test_mixed_case_names_keep_their_case(backend, make_db):
    db = make_db(CamelMapper)
    with db.session() as s:
        a, b = Camel("Ann"), Camel("ann")
        s.add_all([a, b])
    with db.session() as s:
        assert s.query(Camel).where(Name="ann").values("id") == [(b.id,)]
        assert s.query(Camel).order_by("-Name").values("Name") == [("ann",), ("Ann",)]
        s.get(Camel, a.id).Name = "ANN"
    q = backend.q
    assert backend.raw(f"SELECT {q('Id')}, {q('Name')} FROM {q('CamelCase_Table')} ORDER BY {q('Id')}") == [
        (a.id, "ANN"),
        (b.id, "ann"),
    ]
    if backend.name == "postgresql":
        found = backend.raw("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
        assert ("CamelCase_Table",) in found and ("camelcase_table",) not in found


def test_explicit_key_into_a_mixed_case_table(backend, make_db):
    db = make_db(CamelMapper)
    with db.session() as s:
        s.add(Camel("given", id=10))
        s.flush()
        generated = Camel("generated")
        s.add(generated)
    assert generated.id > 10
    q = backend.q
    assert backend.raw(f"SELECT {q('Id')} FROM {q('CamelCase_Table')} ORDER BY {q('Id')}") == [(10,), (generated.id,)]


@attrs.define
class Longest:
    value: str
    parent_id: int | None = None
    id: int | None = None


LONG_TABLE = ("_long_table_name" * 4)[:63]


class LongestMapper(Mapper[Longest]):
    table = LONG_TABLE
    id = Column(t.Integer, primary_key=True, name="i" * 63)
    value = Column(t.String(50), nullable=False, unique=True, name="V" * 63)
    parent_id = Column(t.Integer, ForeignKey(f"{LONG_TABLE}.{'i' * 63}", on_delete="CASCADE"), index=True, name="p" * 63)


def test_names_of_the_longest_allowed_length_work(backend, make_db):
    assert len(LONG_TABLE) == 63
    db = make_db(LongestMapper)
    with db.session() as s:
        root = Longest("root", id=7)  # explicit key: PostgreSQL moves the sequence by name
        s.add(root)
        s.flush()
        child = Longest("child", parent_id=7)
        s.add(child)
    assert child.id > 7
    with db.session() as s:
        assert s.query(Longest).where(parent_id=7).order_by("-value").values("value") == [("child",)]
        s.get(Longest, 7).value = "ROOT"
    q = backend.q
    assert backend.raw(f"SELECT {q('V' * 63)}, {q('p' * 63)} FROM {q(LONG_TABLE)} ORDER BY {q('i' * 63)}") == [
        ("ROOT", None),
        ("child", 7),
    ]


# -- passwords --------------------------------------------------------------------------------------

# Decoded: p@ss:w/d%x y'"; each form and a distinctive fragment must stay out of every message.
SPECIAL_RAW = "p%40ss%3Aw%2Fd%25x%20y%27%22"
SPECIAL = "p@ss:w/d%x y'\""
FRAGMENTS = [SPECIAL_RAW, SPECIAL, "p@ss", "p%40ss", "ss:w", "ss%3Aw"]


def _all_text(exc: BaseException, db: Database) -> str:
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc)), db.url, repr(db)])


def _connect_error(url: str) -> tuple[BaseException, Database]:
    db = Database(url, mappers=[NoteMapper], pool_timeout=0.5)
    try:
        with pytest.raises(errors.DatabaseError) as info:
            with db.session() as s:
                s.query(Note).all()
        return info.value, db
    finally:
        db.close()


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{SPECIAL_RAW}@127.0.0.1:1/test",
        f"mysql://root:{SPECIAL_RAW}@127.0.0.1:1/test",
        f"postgresql://postgres@127.0.0.1:1/test?password={SPECIAL_RAW}",
        f"postgresql://postgres:{SPECIAL_RAW}@127.0.0.1:1/test?password={SPECIAL_RAW}x",
    ],
    ids=["pg-userinfo", "mysql-userinfo", "pg-query", "pg-both"],
)
def test_encoded_passwords_never_shown_by_connect_errors(url):
    exc, db = _connect_error(url)
    assert isinstance(exc, errors.OperationalError)
    text = _all_text(exc, db)
    for fragment in FRAGMENTS:
        assert fragment not in text, f"{fragment!r} shown in: {text}"
    assert "127.0.0.1" in str(exc)


def test_encoded_password_never_shown_by_a_live_server(backend):
    if backend.name == "sqlite":
        pytest.skip("SQLite URLs carry no password")
    # PostgreSQL trusts local connections (the password is ignored, so a query fails instead);
    # MariaDB's root has no password, so the server refuses this one.
    scheme, rest = backend.url.split("://", 1)
    user, host = rest.split("@", 1)
    db = Database(f"{scheme}://{user}:{SPECIAL_RAW}@{host}", mappers=[NoteMapper])
    try:
        with pytest.raises(errors.DatabaseError) as info:
            with db.session() as s:
                s.execute("SELECT no_such_column FROM no_such_table")
        if backend.name == "mysql":
            assert isinstance(info.value, errors.OperationalError) and "Access denied" in str(info.value)
        text = _all_text(info.value, db)
        for fragment in FRAGMENTS:
            assert fragment not in text, f"{fragment!r} shown in: {text}"
    finally:
        db.close()


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_password_in_query_never_shown_by_an_invalid_port_error(scheme):
    with pytest.raises(errors.ConfigurationError) as info:
        Database(f"{scheme}://someone@127.0.0.1:notaport/test?password=s3cret", mappers=[NoteMapper])
    assert "notaport" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_password_libpq_refuses_is_never_shown():
    exc, db = _connect_error("postgresql://postgres:s3cr%40et%00x@127.0.0.1:1/test")
    text = _all_text(exc, db)
    assert "s3cr" not in text, text


def test_sslpassword_in_query_never_shown():
    exc, db = _connect_error("postgresql://postgres@127.0.0.1:1/test?sslmode=disable&sslpassword=s3cret")
    assert "s3cret" not in _all_text(exc, db)

