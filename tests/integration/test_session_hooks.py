"""Session lifecycle hooks on every backend: after_flush, before_commit, after_rollback, their order and what they see."""

from __future__ import annotations

import attrs
import pytest

from mapper import Column, Mapper, errors
from mapper import types as t


class Boom(Exception):
    pass


@attrs.define
class Note:
    text: str
    id: int | None = None


@attrs.define
class Tag:
    label: str
    id: int | None = None


EVENTS: list[tuple[str, ...]] = []


class NoteMapper(Mapper[Note]):
    table = "notes"
    id = Column(t.Integer, primary_key=True)
    text = Column(t.String(100), nullable=False, unique=True)

    def before_insert(self, obj: Note) -> None:
        EVENTS.append(("before_insert", obj.text))

    def after_insert(self, obj: Note) -> None:
        EVENTS.append(("after_insert", obj.text))

    def after_flush(self, obj: Note) -> None:
        EVENTS.append(("mapper.after_flush", obj.text, "id set" if obj.id is not None else "no id"))

    def before_commit(self, obj: Note) -> None:
        EVENTS.append(("mapper.before_commit", obj.text))

    def after_rollback(self, obj: Note) -> None:
        EVENTS.append(("mapper.after_rollback", obj.text, repr(obj.id)))


class TagMapper(Mapper[Tag]):  # no hooks of its own: its objects reach only the database's hooks
    table = "tags"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(100), nullable=False)


@pytest.fixture
def db(make_db):
    EVENTS.clear()
    db = make_db(NoteMapper, TagMapper)

    @db.before_flush
    def _bf(s):
        EVENTS.append(("db.before_flush",))

    @db.after_flush
    def _af(s):
        EVENTS.append(("db.after_flush",))

    @db.before_commit
    def _bc(s):
        EVENTS.append(("db.before_commit",))

    @db.after_commit
    def _ac(s):
        EVENTS.append(("db.after_commit",))

    @db.after_rollback
    def _ar(s):
        EVENTS.append(("db.after_rollback",))

    return db


def _texts(backend) -> list[str]:
    return [r[0] for r in backend.raw(f"SELECT text FROM {backend.q('notes')} ORDER BY text")]


def test_commit_fires_the_hooks_in_the_documented_order(backend, db):
    with db.session() as s:
        s.add(Note("a"))
        s.add(Tag("t"))
        s.commit()
    assert EVENTS == [
        ("db.before_flush",),
        ("before_insert", "a"),
        ("after_insert", "a"),
        ("mapper.after_flush", "a", "id set"),
        ("db.after_flush",),
        ("mapper.before_commit", "a"),
        ("db.before_commit",),
        ("db.before_flush",),  # the flush after before_commit: nothing to write, no after_flush
        ("db.after_commit",),
        # the with block's own commit: nothing written in that transaction
        ("db.before_flush",),
        ("db.before_commit",),
        ("db.before_flush",),
        ("db.after_commit",),
    ]
    assert _texts(backend) == ["a"]


def test_before_commit_sees_every_object_the_transaction_wrote_and_its_changes_are_committed(backend, db):
    with db.session() as s:
        a, b = Note("a"), Note("b")
        s.add_all([a, b])
        s.flush()
        b.text = "b2"
        s.flush()
        EVENTS.clear()

        @db.before_commit
        def add_one(session):
            session.add(Note("late"))
            a.text = "a2"

        s.commit()
        assert [e for e in EVENTS if e[0] == "mapper.before_commit"] == [
            ("mapper.before_commit", "a"),
            ("mapper.before_commit", "b2"),
        ]
        # The hooks' edits were flushed before the COMMIT.
        assert _texts(backend) == ["a2", "b2", "late"]
        db._lifecycle.before_commit.remove(add_one)


def test_before_commit_that_raises_commits_nothing(backend, db):
    @db.before_commit
    def refuse(session):
        raise Boom("not today")

    with pytest.raises(Boom):
        with db.session() as s:
            s.add(Note("a"))
    assert _texts(backend) == []
    # The block's commit failed, so close() discarded the transaction: no rollback() was called.
    assert ("db.after_commit",) not in EVENTS and ("db.after_rollback",) not in EVENTS
    assert EVENTS[-2:] == [("mapper.before_commit", "a"), ("db.before_commit",)]


def test_after_flush_sees_keys_and_the_uncommitted_rows(backend, db):
    seen: list[object] = []

    @db.after_flush
    def count_rows(session):
        seen.append(session.execute(f"SELECT count(*) AS n FROM {backend.q('notes')}")[0].n)

    with db.session() as s:
        n = Note("a")
        s.add(n)
        s.flush()
        assert seen == [1] and n.id is not None
        s.flush()  # nothing to write: no hooks after it
        assert seen == [1]
        s.delete(n)
        s.flush()
        assert seen == [1, 0]
        s.rollback()
    flushed = [e for e in EVENTS if e[0] == "mapper.after_flush"]
    assert flushed == [("mapper.after_flush", "a", "id set"), ("mapper.after_flush", "a", "id set")]
    assert _texts(backend) == []


def test_after_rollback_sees_objects_back_at_the_last_commit(backend, db):
    with db.session() as s:
        kept = Note("kept")
        s.add(kept)
        s.commit()
        kept_id = kept.id
        kept.text = "changed"
        s.add(Note("new"))
        s.flush()
        EVENTS.clear()
        s.rollback()
        assert EVENTS == [
            # In the order the flush wrote them: inserts, then updates.
            ("mapper.after_rollback", "new", "None"),  # expunged, its generated key cleared
            ("mapper.after_rollback", "kept", repr(kept_id)),  # the committed value is back
            ("db.after_rollback",),
        ]
        EVENTS.clear()
        s.rollback()  # nothing written since: the mappers have nothing to see
        assert EVENTS == [("db.after_rollback",)]
    assert _texts(backend) == ["kept"]


def test_a_failed_flush_then_rollback_and_a_raising_block(backend, db):
    with db.session() as s:
        s.add(Note("a"))
        s.commit()
        EVENTS.clear()
        s.add(Note("a"))  # the unique text again
        with pytest.raises(errors.IntegrityError):
            s.flush()
        assert ("db.after_flush",) not in EVENTS and not any(e[0] == "mapper.after_flush" for e in EVENTS)
        s.rollback()
        assert EVENTS[-1] == ("db.after_rollback",)
    EVENTS.clear()
    with pytest.raises(Boom):
        with db.session() as s:
            s.add(Note("b"))
            s.flush()
            raise Boom
    assert EVENTS[-2:] == [("mapper.after_rollback", "b", "None"), ("db.after_rollback",)]
    assert _texts(backend) == ["a"]


def test_hooks_send_no_statements_of_their_own(backend, db):
    with db.session() as s:
        s.add(Note("a"))
        with s.budget(queries=1):
            s.commit()  # one INSERT; the hooks and the second flush send nothing
        s.get(Note, 1)
        n = s.query(Note).one()
        n.text = "b"
        with s.budget(queries=1):
            s.commit()
    assert _texts(backend) == ["b"]


@pytest.mark.parametrize("event", ["after_flush", "before_commit", "after_rollback"])
def test_a_hook_that_is_not_callable_is_refused(backend, make_db, event):
    db = make_db(NoteMapper, TagMapper, create=False)
    with pytest.raises(errors.ConfigurationError) as info:
        getattr(db, event)("not a function")
    assert str(info.value) == f"db.{event}() takes a callable fn(session), got 'not a function'"
