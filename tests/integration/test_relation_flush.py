"""The flush with relations on every backend: foreign-key order, cycles, batching, both sides of a
relation edited in memory, and the lifecycle hooks."""

from __future__ import annotations

import attrs
import pytest

from mapper import BelongsTo, Column, ForeignKey, HasMany, Mapper, errors
from mapper import types as t
from tests.rel_models import PETS, Category, CategoryMapper, Employee, EmployeeMapper, Owner, Pug, Toy, rows

# -- domain classes for ordering and cycles ------------------------------------------------------------


@attrs.define
class Customer:
    code: str
    name: str


@attrs.define
class Invoice:
    number: str
    customer_code: str
    total: int = 0


class InvoiceMapper(Mapper[Invoice]):
    """Declared first, and its foreign key belongs to no relation."""

    table = "rel_invoices"
    number = Column(t.String(20), primary_key=True)
    customer_code = Column(t.String(20), ForeignKey("rel_customers.code"), nullable=False)
    total = Column(t.Integer, nullable=False, default=0)


class CustomerMapper(Mapper[Customer]):
    table = "rel_customers"
    code = Column(t.String(20), primary_key=True)
    name = Column(t.String(50), nullable=False)


@attrs.define
class Team:
    name: str
    captain: Player | None = None
    id: int | None = None


@attrs.define
class Player:
    name: str
    team: Team | None = None
    id: int | None = None


class TeamMapper(Mapper[Team]):
    table = "rel_teams"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    captain_id = Column(t.Integer, ForeignKey("rel_players.id"))
    captain = BelongsTo("Player", foreign_key="captain_id")


class PlayerMapper(Mapper[Player]):
    table = "rel_players"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    team_id = Column(t.Integer, ForeignKey("rel_teams.id"))
    team = BelongsTo(Team, foreign_key="team_id")


@attrs.define
class Hen:
    name: str
    egg: Egg | None = None
    id: int | None = None


@attrs.define
class Egg:
    name: str
    hen: Hen | None = None
    id: int | None = None


class HenMapper(Mapper[Hen]):
    table = "rel_hens"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    egg_id = Column(t.Integer, ForeignKey("rel_eggs.id"), nullable=False)
    egg = BelongsTo("Egg", foreign_key="egg_id")


class EggMapper(Mapper[Egg]):
    table = "rel_eggs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    hen_id = Column(t.Integer, ForeignKey("rel_hens.id"), nullable=False)
    hen = BelongsTo(Hen, foreign_key="hen_id")


class OwnerSaveOnlyMapper(Mapper[Owner]):
    table = "rel_owners"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    pugs = HasMany("Pug", foreign_key="owner_id", inverse="owner", order_by="id")


class PugPlainMapper(Mapper[Pug]):
    table = "rel_pugs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    age = Column(t.Integer, default=0)
    owner_id = Column(t.Integer, ForeignKey("rel_owners.id"))
    owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")


def _pug_owners(backend):
    return rows(backend, "SELECT name, owner_id FROM {rel_pugs} ORDER BY id")


def _seed(db, *objs):
    with db.session() as s:
        s.add_all(objs)
    return objs


# -- order from the foreign-key graph --------------------------------------------------------------------


def test_inserts_parent_first_and_deletes_child_first_by_undeclared_foreign_keys(backend, make_db, count):
    db = make_db(InvoiceMapper, CustomerMapper)
    with db.session() as s:
        s.add(Invoice("I-1", "C1", 10))  # added before the customer it references
        s.add(Customer("C1", "Acme"))
        with count(s, 2):
            s.flush()
    assert rows(backend, "SELECT code, name FROM {rel_customers}") == [("C1", "Acme")]
    assert rows(backend, "SELECT number, customer_code, total FROM {rel_invoices}") == [("I-1", "C1", 10)]
    with db.session() as s:
        old_customer = s.get_one(Customer, "C1")
        old_invoice = s.get_one(Invoice, "I-1")
        # In one flush: a new customer and its invoice, and the old pair deleted parent first.
        s.delete(old_customer)
        s.delete(old_invoice)
        s.add(Invoice("I-2", "C2", 20))
        s.add(Customer("C2", "Bolt"))
        with count(s, 4):
            s.flush()
    assert rows(backend, "SELECT code, name FROM {rel_customers}") == [("C2", "Bolt")]
    assert rows(backend, "SELECT number, customer_code, total FROM {rel_invoices}") == [("I-2", "C2", 20)]


def test_two_tables_referencing_each_other_insert_in_one_flush(backend, make_db):
    db = make_db(TeamMapper, PlayerMapper)
    with db.session() as s:
        team = Team("Reds")
        cap = Player("Cap", team=team)
        team.captain = cap
        s.add(team)
        s.add(Player("Sub", team=team))
        s.flush()
        assert team.id is not None and cap.id is not None
    assert rows(backend, "SELECT name, captain_id FROM {rel_teams}") == [("Reds", cap.id)]
    assert rows(backend, "SELECT name, team_id FROM {rel_players} ORDER BY name") == [("Cap", team.id), ("Sub", team.id)]
    with db.session() as s:
        t_ = s.query(Team).include("captain").one()
        assert t_.captain.name == "Cap"
        assert t_.captain.team is t_


def test_two_tables_referencing_each_other_delete_in_one_flush(backend, make_db):
    db = make_db(TeamMapper, PlayerMapper)
    with db.session() as s:
        team = Team("Reds")
        team.captain = Player("Cap", team=team)
        s.add(team)
    with db.session() as s:
        t_ = s.query(Team).include("captain").one()
        s.delete(t_.captain)
        s.delete(t_)
        s.flush()
    assert rows(backend, "SELECT name FROM {rel_teams}") == []
    assert rows(backend, "SELECT name FROM {rel_players}") == []


def test_self_referencing_rows_inserted_in_the_same_flush(backend, make_db):
    db = make_db(EmployeeMapper, CategoryMapper)
    with db.session() as s:
        # Two new rows that point at each other: one key is set by a follow-up UPDATE.
        a, b = Employee("A"), Employee("B")
        a.manager, b.manager = b, a
        s.add_all([a, b])
        # A child added before the parent it points at, in the same table.
        leaf = Category("leaf")
        leaf.parent = Category("top")
        s.add(leaf)
        s.flush()
    assert rows(backend, "SELECT id, manager_id FROM {rel_employees} ORDER BY id") == sorted(
        [(a.id, b.id), (b.id, a.id)]
    )
    assert rows(
        backend,
        "SELECT c.name, p.name FROM {rel_categories} c LEFT JOIN {rel_categories} p ON p.id = c.parent_id ORDER BY c.name",
    ) == [("leaf", "top"), ("top", None)]


def test_unbreakable_cycle_is_a_flush_error_naming_the_tables(backend, make_db):
    db = make_db(HenMapper, EggMapper)
    with db.session() as s:
        hen = Hen("Henny")
        egg = Egg("first", hen=hen)
        hen.egg = egg
        s.add(hen)
        with pytest.raises(errors.FlushError) as exc:
            s.flush()
        message = str(exc.value)
        assert "rel_hens" in message and "rel_eggs" in message
        with pytest.raises(errors.PendingRollbackError):
            s.add(Hen("other"))
        s.rollback()
        assert hen.id is None and egg.id is None
    assert rows(backend, "SELECT name FROM {rel_hens}") == []
    assert rows(backend, "SELECT name FROM {rel_eggs}") == []


def test_batching_is_kept_with_relations(backend, make_db, count):
    db = make_db(*PETS)
    with db.session() as s:
        owners = [Owner(f"o{i}", pugs=[Pug(f"o{i}-p{j}", age=j) for j in range(5)]) for i in range(200)]
        s.add_all(owners)
        with count(s, 2):  # one INSERT for 200 owners, one for 1,000 pugs
            s.flush()
        assert all(p.owner is o for o in owners for p in o.pugs)
    pairs = rows(backend, "SELECT o.id, o.name, p.name FROM {rel_owners} o JOIN {rel_pugs} p ON p.owner_id = o.id")
    assert len(pairs) == 1000
    assert all(pname.startswith(oname + "-") for _, oname, pname in pairs)
    assert {oid for oid, _, _ in pairs} == {o.id for o in owners}
    with db.session() as s:
        loaded = s.query(Owner).include("pugs.toys").all()
        for o in loaded[:100]:
            s.delete(o)
        with count(s, 2):  # one DELETE per table, children first (toys are loaded and empty)
            s.flush()
    assert rows(backend, "SELECT count(*) FROM {rel_owners}") == [(100,)]
    assert rows(backend, "SELECT count(*) FROM {rel_pugs}") == [(500,)]


# -- both sides of a relation ----------------------------------------------------------------------------


def _three_owners(db):
    return _seed(db, Owner("Tom", pugs=[Pug("Cody"), Pug("Doug")]), Owner("Bob", pugs=[Pug("Rex")]), Owner("Ann"))


def _load_three(s):
    tom, bob, ann = sorted(s.query(Owner).include("pugs").all(), key=lambda o: ["Tom", "Bob", "Ann"].index(o.name))
    return tom, bob, ann


def test_to_one_side_alone_moves_the_child(backend, make_db):
    db = make_db(*PETS)
    tom0, bob0, _ = _three_owners(db)
    with db.session() as s:
        tom, bob, _ = _load_three(s)
        cody = tom.pugs[0]
        cody.owner = bob
        s.flush()
        assert [p.name for p in tom.pugs] == ["Doug"]
        assert [p.name for p in bob.pugs] == ["Rex", "Cody"]
        assert cody.owner is bob
    assert _pug_owners(backend) == [("Cody", bob0.id), ("Doug", tom0.id), ("Rex", bob0.id)]


def test_collection_side_alone_moves_the_child(backend, make_db):
    db = make_db(*PETS)
    tom0, bob0, _ = _three_owners(db)
    with db.session() as s:
        tom, bob, _ = _load_three(s)
        cody = tom.pugs[0]
        bob.pugs.append(cody)  # not removed from tom.pugs by hand
        s.flush()
        assert cody.owner is bob
        assert [p.name for p in tom.pugs] == ["Doug"]
        assert [p.name for p in bob.pugs] == ["Rex", "Cody"]
    assert _pug_owners(backend) == [("Cody", bob0.id), ("Doug", tom0.id), ("Rex", bob0.id)]


def test_both_sides_changed_consistently(backend, make_db, count):
    db = make_db(*PETS)
    tom0, bob0, _ = _three_owners(db)
    with db.session() as s:
        tom, bob, _ = _load_three(s)
        cody = tom.pugs[0]
        cody.owner = bob
        tom.pugs.remove(cody)
        bob.pugs.append(cody)
        with count(s, 1):
            s.flush()
        assert cody.owner is bob
        assert [p.name for p in tom.pugs] == ["Doug"]
        assert [p.name for p in bob.pugs] == ["Rex", "Cody"]
    assert _pug_owners(backend) == [("Cody", bob0.id), ("Doug", tom0.id), ("Rex", bob0.id)]


def test_moving_to_a_new_parent_and_to_none(backend, make_db):
    db = make_db(OwnerSaveOnlyMapper, PugPlainMapper)
    tom0, bob0, _ = _three_owners(db)
    with db.session() as s:
        tom, bob, _ = _load_three(s)
        cody, doug = tom.pugs
        zed = Owner("Zed")
        cody.owner = zed  # a new parent, saved through the reference
        doug.owner = None  # detached: the key becomes NULL
        s.flush()
        assert zed.id is not None
        assert zed.pugs == [cody] and tom.pugs == []
    assert _pug_owners(backend) == [("Cody", zed.id), ("Doug", None), ("Rex", bob0.id)]


def test_unloaded_collections_are_untouched_when_the_reference_changes(backend, make_db, count):
    db = make_db(*PETS)
    tom0, bob0, _ = _three_owners(db)
    with db.session() as s:
        tom = s.get_one(Owner, tom0.id)
        bob = s.get_one(Owner, bob0.id)
        cody = s.query(Pug).where(name="Cody").one()
        assert cody.owner is tom
        cody.owner = bob
        with count(s, 1):  # neither tom.pugs nor bob.pugs is loaded to move the pug
            s.flush()
        with count(s, 1):  # loaded later from the database, they agree
            assert [p.name for p in bob.pugs] == ["Cody", "Rex"]
        with count(s, 1):
            assert [p.name for p in tom.pugs] == ["Doug"]
    assert _pug_owners(backend) == [("Cody", bob0.id), ("Doug", tom0.id), ("Rex", bob0.id)]


def _pugs_and_owners(s):
    """Cody, Doug, Rex and their owners Tom and Bob, loaded together."""
    cody, doug, rex = s.query(Pug).order_by("id").include("owner").all()
    return cody, doug, rex, cody.owner, rex.owner


def _cody_owner_in_transaction(s, backend):
    return s.execute(f"SELECT owner_id FROM {backend.q('rel_pugs')} WHERE name = 'Cody'")[0][0]


def test_a_loaded_reference_changed_back_and_forth_writes_each_change_and_rolls_back(backend, make_db, count):
    # The reference snapshots are what each row held at load.
    db = make_db(*PETS)
    tom0, bob0, _ = _three_owners(db)
    with db.session() as s:
        cody, doug, rex, tom, bob = _pugs_and_owners(s)
        cody.owner = bob
        cody.owner = tom  # back to the loaded value before any flush: nothing to write
        with count(s, 0):
            s.flush()
        cody.owner = bob
        with count(s, 1):
            s.flush()
        assert _cody_owner_in_transaction(s, backend) == bob0.id
        cody.owner = tom  # back again, now against the flushed snapshot
        with count(s, 1):
            s.flush()
        assert _cody_owner_in_transaction(s, backend) == tom0.id
        doug.owner = bob
        s.flush()
        s.rollback()
        assert (cody.owner, doug.owner, rex.owner) == (tom, tom, bob)
        assert cody.owner is tom and doug.owner is tom
        with count(s, 0):  # the rollback left nothing to write
            s.flush()
    assert _pug_owners(backend) == [("Cody", tom0.id), ("Doug", tom0.id), ("Rex", bob0.id)]


def test_a_loaded_reference_is_restored_by_a_savepoint_and_kept_by_refresh(backend, make_db, count):
    db = make_db(*PETS)
    tom0, bob0, _ = _three_owners(db)
    with db.session() as s:
        cody, doug, rex, tom, bob = _pugs_and_owners(s)
        with pytest.raises(RuntimeError):
            with s.begin_nested():
                cody.owner = bob
                s.flush()
                raise RuntimeError("undo")
        assert cody.owner is tom
        assert _cody_owner_in_transaction(s, backend) == tom0.id
        s.refresh(doug)  # a new snapshot of the columns; the reference snapshot stays
        assert doug.owner is tom
        doug.owner = bob
        with count(s, 1):
            s.flush()
        s.commit()
    assert _pug_owners(backend) == [("Cody", tom0.id), ("Doug", bob0.id), ("Rex", bob0.id)]


def test_moving_a_child_between_stand_ins_loads_neither_parent(backend, make_db, count):
    db = make_db(*PETS)
    tom0, bob0, _ = _three_owners(db)
    with db.session() as s:
        cody, doug, rex = s.query(Pug).order_by("id").all()  # owners not included: stand-ins
        cody.owner = rex.owner
        with count(s, 1):  # the UPDATE only: the new key is the stand-in's, the old parent has nothing loaded
            s.flush()
        with count(s, 2):  # both stand-ins load on first touch, then both collections, from the rows written
            assert [p.name for p in rex.owner.pugs] == ["Cody", "Rex"]
        assert cody.owner is rex.owner
        with count(s, 0):
            assert [p.name for p in doug.owner.pugs] == ["Doug"]
    assert _pug_owners(backend) == [("Cody", bob0.id), ("Doug", tom0.id), ("Rex", bob0.id)]


def test_contradicting_sides_are_a_flush_error_and_nothing_is_written(backend, make_db):
    db = make_db(*PETS)
    tom0, bob0, ann0 = _three_owners(db)
    with db.session() as s:
        tom, bob, ann = _load_three(s)
        tom.name = "Thomas"  # would be written by the same flush
        s.add(Owner("Newcomer"))
        cody = tom.pugs[0]
        cody.owner = bob
        ann.pugs.append(cody)
        with pytest.raises(errors.FlushError) as exc:
            s.flush()
        message = str(exc.value)
        assert "Pug.owner" in message and "Owner.pugs" in message
        assert "contradict" in message
        with pytest.raises(errors.PendingRollbackError):
            s.query(Owner).all()
        with pytest.raises(errors.PendingRollbackError):
            s.commit()
        s.rollback()
        assert rows(backend, "SELECT name FROM {rel_owners} ORDER BY id") == [("Tom",), ("Bob",), ("Ann",)]
        assert _pug_owners(backend) == [("Cody", tom0.id), ("Doug", tom0.id), ("Rex", bob0.id)]
        # Rollback returns the objects to the last commit: columns and relations alike.
        assert tom.name == "Tom"
        assert cody.owner is tom
        assert ann.pugs == []
        assert [p.name for p in tom.pugs] == ["Cody", "Doug"]
    # ... so the clean exit commits nothing new.
    assert rows(backend, "SELECT name FROM {rel_owners} ORDER BY id") == [("Tom",), ("Bob",), ("Ann",)]
    assert _pug_owners(backend) == [("Cody", tom0.id), ("Doug", tom0.id), ("Rex", bob0.id)]


def test_child_put_into_two_collections_is_a_flush_error(backend, make_db):
    db = make_db(*PETS)
    tom0, bob0, _ = _three_owners(db)
    with db.session() as s:
        tom, bob, ann = _load_three(s)
        cody = tom.pugs[0]
        bob.pugs.append(cody)
        ann.pugs.append(cody)
        with pytest.raises(errors.FlushError) as exc:
            s.flush()
        assert "Owner.pugs" in str(exc.value)
        assert "two" in str(exc.value)
        s.rollback()
        assert _pug_owners(backend) == [("Cody", tom0.id), ("Doug", tom0.id), ("Rex", bob0.id)]
        # Rollback returns the collections to the last commit.
        assert [p.name for p in bob.pugs] == ["Rex"]
        assert [p.name for p in ann.pugs] == []
    assert _pug_owners(backend) == [("Cody", tom0.id), ("Doug", tom0.id), ("Rex", bob0.id)]


def test_none_inside_a_collection_is_a_flush_error(backend, make_db):
    db = make_db(*PETS)
    with db.session() as s:
        tom = Owner("Tom", pugs=[Pug("Cody"), None])  # type: ignore[list-item]
        s.add(tom)
        with pytest.raises(errors.FlushError) as exc:
            s.flush()
        assert "Owner.pugs" in str(exc.value)
        assert "None" in str(exc.value)
        s.rollback()
    assert rows(backend, "SELECT name FROM {rel_owners}") == []
    assert rows(backend, "SELECT name FROM {rel_pugs}") == []


def test_wrong_type_inside_a_collection_is_a_flush_error(backend, make_db):
    db = make_db(*PETS)
    (tom0,) = _seed(db, Owner("Tom"))
    with db.session() as s:
        tom = s.query(Owner).include("pugs").one()
        tom.pugs.append(Toy("ball"))  # type: ignore[arg-type]
        with pytest.raises(errors.FlushError) as exc:
            s.flush()
        assert "Owner.pugs" in str(exc.value) and "Toy" in str(exc.value)
        s.rollback()
        assert rows(backend, "SELECT name FROM {rel_toys}") == []
        assert len(tom.pugs) == 0  # rollback returns the collection to the last commit
    assert rows(backend, "SELECT name FROM {rel_toys}") == []


def test_scalar_change_does_not_load_collections(backend, make_db, count):
    db = make_db(*PETS)
    tom0, _, _ = _three_owners(db)
    with db.session() as s:
        tom = s.get_one(Owner, tom0.id)
        tom.name = "Thomas"
        with count(s, 1):  # the UPDATE, and nothing else
            s.flush()
        cody = s.query(Pug).where(name="Cody").one()
        cody.age = 4
        with count(s, 1):
            s.flush()
    assert rows(backend, "SELECT name FROM {rel_owners} WHERE id = ?", (tom0.id,)) == [("Thomas",)]
    # Nothing was loaded behind the scenes: after the session, the collection is still unloaded.
    with pytest.raises(errors.RelationNotLoadedError):
        len(tom.pugs)
    with pytest.raises(errors.RelationNotLoadedError):
        len(cody.toys)


# -- lifecycle hooks -------------------------------------------------------------------------------------

EVENTS: list[tuple[str, ...]] = []


@attrs.define
class Note:
    text: str
    slug: str | None = None
    id: int | None = None


class NoteMapper(Mapper[Note]):
    table = "rel_notes"
    id = Column(t.Integer, primary_key=True)
    text = Column(t.String(100), nullable=False)
    slug = Column(t.String(100))

    def before_insert(self, obj: Note) -> None:
        if obj.text == "boom":
            raise ValueError("no boom allowed")
        EVENTS.append(("before_insert", obj.text, repr(obj.id)))
        obj.slug = obj.text.lower().replace(" ", "-")

    def after_insert(self, obj: Note) -> None:
        EVENTS.append(("after_insert", obj.text, "id set" if obj.id is not None else "no id"))

    def before_update(self, obj: Note) -> None:
        if obj.text == "boom":
            raise ValueError("no boom allowed")
        EVENTS.append(("before_update", obj.text))
        obj.slug = obj.text.lower().replace(" ", "-")

    def after_update(self, obj: Note) -> None:
        EVENTS.append(("after_update", obj.text))

    def before_delete(self, obj: Note) -> None:
        EVENTS.append(("before_delete", obj.text))

    def after_delete(self, obj: Note) -> None:
        EVENTS.append(("after_delete", obj.text))


@attrs.define
class AuditEntry:
    what: str
    id: int | None = None


class AuditEntryMapper(Mapper[AuditEntry]):
    table = "rel_audit"
    id = Column(t.Integer, primary_key=True)
    what = Column(t.String(100), nullable=False)


@pytest.fixture
def events():
    EVENTS.clear()
    yield EVENTS
    EVENTS.clear()


def test_mapper_hooks_run_around_each_write(backend, make_db, events):
    db = make_db(NoteMapper)
    with db.session() as s:
        a, b = Note("Hello World"), Note("Second")
        s.add_all([a, b])
        s.flush()
        assert events == [
            ("before_insert", "Hello World", "None"),
            ("before_insert", "Second", "None"),
            ("after_insert", "Hello World", "id set"),
            ("after_insert", "Second", "id set"),
        ]
        events.clear()
        a.text = "Hello Again"
        s.flush()
        assert events == [("before_update", "Hello Again"), ("after_update", "Hello Again")]
        events.clear()
        s.flush()  # nothing changed: no update hooks
        assert events == []
        s.delete(b)
        s.flush()
        assert events == [("before_delete", "Second"), ("after_delete", "Second")]
    # What before_insert / before_update set is written.
    assert rows(backend, "SELECT text, slug FROM {rel_notes}") == [("Hello Again", "hello-again")]


@pytest.mark.parametrize("stage", ["insert", "update"])
def test_a_hook_that_raises_aborts_the_flush_with_nothing_written(backend, make_db, events, stage):
    db = make_db(*PETS, NoteMapper)
    if stage == "update":
        (note,) = _seed(db, Note("fine"))
    with db.session() as s:
        s.add(Owner("Tom", pugs=[Pug("Cody")]))  # inserted before the notes in the same flush
        if stage == "insert":
            s.add(Note("boom"))
        else:
            s.get_one(Note, note.id).text = "boom"
        with pytest.raises(ValueError, match="no boom allowed"):
            s.flush()
        with pytest.raises(errors.PendingRollbackError):
            s.flush()
        s.rollback()
    assert rows(backend, "SELECT name FROM {rel_owners}") == []
    assert rows(backend, "SELECT name FROM {rel_pugs}") == []
    assert rows(backend, "SELECT text FROM {rel_notes}") == ([] if stage == "insert" else [("fine",)])


def test_hooks_keep_inserts_batched(backend, make_db, events, count):
    db = make_db(NoteMapper)
    with db.session() as s:
        s.add_all([Note(f"note {i}") for i in range(100)])
        with count(s, 1):
            s.flush()
    assert len(events) == 200
    assert rows(backend, "SELECT count(*) FROM {rel_notes} WHERE slug LIKE 'note-%'") == [(100,)]


def test_before_flush_and_after_commit_on_the_database(backend, make_db):
    db = make_db(NoteMapper, AuditEntryMapper)
    flushes: list[object] = []
    commits: list[object] = []

    @db.before_flush
    def audit(session):
        flushes.append(session)
        if len(flushes) == 1:
            session.add(AuditEntry("first flush"))

    def committed(session):
        commits.append(session)

    assert db.after_commit(committed) is committed
    with db.session() as s:
        s.add(Note("x"))
        s.flush()
        assert flushes == [s]
        assert commits == []
        # The object the hook added was written by that same flush.
        assert [tuple(r) for r in s.execute("SELECT what FROM rel_audit")] == [("first flush",)]
        s.commit()
        assert commits == [s]
        s.add(Note("y"))
    assert commits == [s, s]
    assert all(x is s for x in flushes)
    assert rows(backend, "SELECT what FROM {rel_audit}") == [("first flush",)]
    assert rows(backend, "SELECT text FROM {rel_notes} ORDER BY id") == [("x",), ("y",)]
    with pytest.raises(RuntimeError):
        with db.session() as s2:
            s2.add(Note("z"))
            s2.flush()
            raise RuntimeError("abort")
    assert s2 in flushes and s2 not in commits
    assert rows(backend, "SELECT text FROM {rel_notes} ORDER BY id") == [("x",), ("y",)]


def test_before_flush_hook_that_raises_writes_nothing(backend, make_db):
    db = make_db(NoteMapper)

    @db.before_flush
    def refuse(session):
        raise RuntimeError("not now")

    s = db.session()
    try:
        s.add(Note("x"))
        with pytest.raises(RuntimeError, match="not now"):
            s.flush()
        with pytest.raises(errors.PendingRollbackError):
            s.flush()
        s.rollback()
    finally:
        s.close()
    assert rows(backend, "SELECT text FROM {rel_notes}") == []
