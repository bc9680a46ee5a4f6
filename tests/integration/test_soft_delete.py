"""Soft delete and default scopes on every backend: the rows written, what reads skip, how to lift it."""

from __future__ import annotations

import datetime
import logging

import attrs
import pytest

from mapper import BelongsTo, BelongsToMany, Column, Database, HasMany, HasOne, Mapper, errors
from mapper import types as t
from tests.rel_models import rows


@attrs.define(eq=False)
class Author:
    name: str
    posts: list[Post] = attrs.Factory(list)
    notes: list[Note] = attrs.Factory(list)
    id: int | None = None


@attrs.define(eq=False)
class Post:
    title: str
    published: bool = True
    author: Author | None = None
    deleted_at: datetime.datetime | None = None
    id: int | None = None


@attrs.define(eq=False)
class Note:
    text: str
    author: Author | None = None
    id: int | None = None


class AuthorMapper(Mapper[Author]):
    table = "sd_authors"
    soft_delete = "deleted_at"  # no attribute on Author: a hidden column
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    posts = HasMany("Post", inverse="author", cascade="all", order_by="id")
    notes = HasMany("Note", inverse="author", cascade="all", order_by="id")


class PostMapper(Mapper[Post]):
    table = "sd_posts"
    soft_delete = "deleted_at"  # Post.deleted_at holds it
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(50), nullable=False)
    published = Column(t.Boolean, nullable=False)
    author = BelongsTo(Author, inverse="posts")
    default_scope = published == True  # noqa: E712


class NoteMapper(Mapper[Note]):
    table = "sd_notes"
    id = Column(t.Integer, primary_key=True)
    text = Column(t.String(50), nullable=False)
    author = BelongsTo(Author, inverse="notes")


@pytest.fixture
def db(make_db):
    db = make_db(AuthorMapper, PostMapper, NoteMapper, echo=True)
    with db.session() as s:
        s.add(Author("Ann", posts=[Post("one"), Post("two"), Post("draft", published=False)], notes=[Note("n1")]))
        s.add(Author("Bob", posts=[Post("three")]))
    return db


def _sql(caplog, verb):
    return [r.getMessage() for r in caplog.records if r.name == "mapper.sql" and r.getMessage().lstrip().upper().startswith(verb)]


def test_delete_marks_the_row_and_soft_deletes_the_soft_deletable_children(db, backend, caplog, count):
    caplog.set_level(logging.INFO, logger="mapper.sql")
    with db.session() as s:
        ann = s.query(Author).where(name="Ann").one()
        s.delete(ann)
        caplog.clear()
        # the posts are loaded (one SELECT), then one UPDATE per table; notes stay as they are
        with count(s, 3):
            s.flush()
        assert not _sql(caplog, "DELETE")
        assert len(_sql(caplog, "UPDATE")) == 2
        assert s.get(Author, ann.id) is None
    marked = rows(backend, "SELECT name, deleted_at IS NOT NULL FROM {sd_authors} ORDER BY id")
    assert [(n, bool(d)) for n, d in marked] == [("Ann", True), ("Bob", False)]
    posts = rows(backend, "SELECT title, author_id, deleted_at IS NOT NULL FROM {sd_posts} ORDER BY id")
    assert [(ti, a, bool(d)) for ti, a, d in posts] == [("one", 1, True), ("two", 1, True), ("draft", 1, True), ("three", 2, False)]
    assert rows(backend, "SELECT text, author_id FROM {sd_notes}") == [("n1", 1)]  # not soft-deletable: left alone


def test_reads_skip_soft_deleted_rows_until_with_deleted(db, count):
    with db.session() as s:
        s.delete(s.query(Post).where(title="two").one())
    with db.session() as s:
        assert [p.title for p in s.query(Post).order_by("id").all()] == ["one", "three"]
        assert s.query(Post).count() == 2
        assert [p.title for p in s.query(Post).with_deleted().order_by("id").all()] == ["one", "two", "three"]
        assert s.query(Post).with_deleted().where(title="two").one().deleted_at is not None
    with db.session() as s:
        assert s.get(Post, 2) is None  # soft-deleted
        with count(s, 2):
            ann = s.query(Author).where(name="Ann").include("posts").one()
        assert [p.title for p in ann.posts] == ["one", "draft"]  # the default scope is for queries only
    with db.session() as s:
        bob, ann = s.query(Author).order_by("-id").all()
        with count(s, 1):  # one cohort load for both authors
            assert [p.title for p in ann.posts] == ["one", "draft"]
            assert [p.title for p in bob.posts] == ["three"]


def test_a_soft_deleted_author_is_gone_from_queries_and_get(db):
    with db.session() as s:
        s.delete(s.query(Author).where(name="Bob").one())
    with db.session() as s:
        assert [a.name for a in s.query(Author).all()] == ["Ann"]
        assert s.get(Author, 2) is None
        assert [a.name for a in s.query(Author).with_deleted().order_by("id").all()] == ["Ann", "Bob"]
        # a reference to it still loads: the child's row names it
        three = s.query(Post).with_deleted().where(title="three").one()
        assert three.author.name == "Bob"
    with db.session() as s:
        three = s.query(Post).with_deleted().where(title="three").one()  # its author is a stand-in
        assert s.get(Author, 2) is None  # get() reads the row for the stand-in, and skips it
        assert three.author.name == "Bob"


def test_hard_delete_removes_the_rows_and_its_cascade_the_children_rows(db, backend, caplog):
    with db.session() as s:
        s.delete(s.query(Post).where(title="one").one())  # soft first
    caplog.set_level(logging.INFO, logger="mapper.sql")
    with db.session() as s:
        ann = s.query(Author).where(name="Ann").one()
        s.delete(ann, hard=True)
        caplog.clear()
        s.flush()
        assert _sql(caplog, "DELETE")
    assert rows(backend, "SELECT name FROM {sd_authors}") == [("Bob",)]
    assert rows(backend, "SELECT title FROM {sd_posts}") == [("three",)]  # "one" too, though soft-deleted before
    assert rows(backend, "SELECT text FROM {sd_notes}") == []


def test_hard_delete_of_a_soft_deletable_object(db, backend, count):
    with db.session() as s:
        post = s.query(Post).where(title="three").one()
        s.delete(post, hard=True)
        with count(s, 1):
            s.flush()
    assert rows(backend, "SELECT title FROM {sd_posts} ORDER BY id") == [("one",), ("two",), ("draft",)]


def test_default_scope_and_unscoped(db):
    with db.session() as s:
        assert [p.title for p in s.query(Post).order_by("id").all()] == ["one", "two", "three"]
        assert [p.title for p in s.query(Post).unscoped().order_by("id").all()] == ["one", "two", "draft", "three"]
        assert s.query(Post).unscoped().where(title="draft").count() == 1
        s.delete(s.query(Post).unscoped().where(title="draft").one())
        s.flush()
        assert s.query(Post).unscoped().where(title="draft").count() == 0  # unscoped() keeps soft deletes hidden
        assert s.query(Post).unscoped().with_deleted().where(title="draft").count() == 1


def test_rollback_brings_a_soft_deleted_object_back(db, backend):
    with db.session() as s:
        post = s.query(Post).where(title="one").one()
        s.delete(post)
        s.flush()
        assert post.deleted_at is not None
        s.rollback()
        assert post.deleted_at is None and s.get(Post, post.id) is post
    assert rows(backend, "SELECT COUNT(*) FROM {sd_posts} WHERE deleted_at IS NULL") == [(4,)]


def test_set_based_update_and_delete_see_only_the_scoped_rows(db, backend):
    with db.session() as s:
        assert s.query(Post).update(title="x") == 3  # the draft is outside the default scope
    assert rows(backend, "SELECT title FROM {sd_posts} ORDER BY id") == [("x",), ("x",), ("draft",), ("x",)]


@attrs.define
class Thing:
    name: str
    id: int | None = None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"soft_delete": 3}, r'ThingMapper\.soft_delete takes the name of the column that records the deletion, such as "deleted_at"; got 3'),
        ({"soft_delete": "name"}, r"ThingMapper\.soft_delete = 'name': ThingMapper\.name is String\(50\).*must be Column\(t\.DateTime\(timezone=True\), nullable=True\)"),
        ({"default_scope": "name = 'x'"}, r"ThingMapper\.default_scope takes a condition on the mapper's columns"),
        ({"default_scope": PostMapper.published == True}, r"ThingMapper\.default_scope uses PostMapper\.published, which is not a column of ThingMapper"),  # noqa: E712
    ],
)
def test_bad_options_are_configuration_errors(options, message):
    import types

    def body(ns):
        ns.update({"table": "things", "id": Column(t.Integer, primary_key=True), "name": Column(t.String(50)), **options})

    mapper_class = types.new_class("ThingMapper", (Mapper[Thing],), exec_body=body)
    with pytest.raises(errors.ConfigurationError, match=message):
        Database("sqlite://", mappers=[mapper_class])


def test_query_delete_is_a_hard_delete_of_the_rows_the_query_shows(db, backend):
    with db.session() as s:
        s.delete(s.query(Post).where(title="one").one())
        s.flush()
        assert s.query(Post).where(PostMapper.title.in_(["one", "two", "draft"])).delete() == 1
    # "one" is soft-deleted and "draft" outside the scope: only "two" goes
    assert rows(backend, "SELECT title FROM {sd_posts} ORDER BY id") == [("one",), ("draft",), ("three",)]


@attrs.define(eq=False)
class Reader:
    name: str
    badges: list[Badge] = attrs.Factory(list)
    card: Card | None = None
    id: int | None = None


@attrs.define(eq=False)
class Badge:
    label: str
    id: int | None = None


@attrs.define(eq=False)
class Card:
    number: str
    reader: Reader | None = None
    id: int | None = None


class ReaderMapper(Mapper[Reader]):
    table = "sd_readers"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    badges = BelongsToMany(Badge, through="sd_reader_badges", order_by="id")
    card = HasOne("Card", inverse="reader", cascade="all")


class BadgeMapper(Mapper[Badge]):
    table = "sd_badges"
    soft_delete = "deleted_at"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(50), nullable=False)


class CardMapper(Mapper[Card]):
    table = "sd_cards"
    soft_delete = "deleted_at"
    id = Column(t.Integer, primary_key=True)
    number = Column(t.String(10), nullable=False)
    reader = BelongsTo(Reader, inverse="card")


def test_many_to_many_targets_and_has_one_children_skip_soft_deleted_rows(make_db, backend, count):
    db = make_db(ReaderMapper, BadgeMapper, CardMapper)
    with db.session() as s:
        s.add(Reader("Ann", badges=[Badge("gold"), Badge("silver")], card=Card("C1")))
        s.add(Reader("Bob", badges=[Badge("bronze")]))
    with db.session() as s:
        s.delete(s.query(Badge).where(label="gold").one())
        s.delete(s.query(Card).one())
    assert rows(backend, "SELECT COUNT(*) FROM {sd_reader_badges}") == [(3,)]  # the links stay
    with db.session() as s:
        with count(s, 3):
            ann = s.query(Reader).where(name="Ann").include("badges", "card").one()
        assert [b.label for b in ann.badges] == ["silver"] and ann.card is None
    with db.session() as s:
        ann, bob = s.query(Reader).order_by("id").all()
        with count(s, 1):  # one cohort load of both readers' badges
            assert [b.label for b in ann.badges] == ["silver"]
            assert [b.label for b in bob.badges] == ["bronze"]


def test_removing_a_soft_deletable_orphan_soft_deletes_it(db, backend):
    with db.session() as s:
        ann = s.query(Author).where(name="Ann").include("posts").one()
        ann.posts.pop(0)  # cascade="all" includes "orphan"
    assert rows(backend, "SELECT title, author_id FROM {sd_posts} WHERE deleted_at IS NOT NULL") == [("one", 1)]


def test_any_skips_soft_deleted_members_and_has_follows_the_key(db):
    with db.session() as s:
        s.delete(s.query(Post).where(title="three").one())
        s.delete(s.query(Author).where(name="Bob").one())
    with db.session() as s:
        assert [a.name for a in s.query(Author).with_deleted().where(AuthorMapper.posts.any(title="three")).all()] == []
        assert [a.name for a in s.query(Author).where(AuthorMapper.posts.any(title="two")).all()] == ["Ann"]
        assert [p.title for p in s.query(Post).with_deleted().where(PostMapper.author.has(name="Bob")).all()] == ["three"]
