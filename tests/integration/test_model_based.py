"""A model-based (Hypothesis stateful) test of the unit of work, on every backend.

A state machine drives random sequences of session work on owners and their pugs, starting
from a few committed rows (or none) read back by a new session: adding owners (with new pugs),
adding pugs, editing columns, moving pugs between owners from either side of the relation
(``pug.owner = x``, or removing from / appending to ``owner.pugs``), deleting pugs and owners
(and cancelling a delete; a pug moved into an owner just before it is deleted, or out of it just
after), orphans from either side, flushing, committing, rolling back, savepoints that end or
raise, failed flushes (NOT NULL, contradicting sides, a stale version), a row changed by another
connection, ``refresh()``, queries and ``get()`` (autoflush, identity map), ``query.update()``,
adding again what a rollback expunged, and reloading everything in a new session in five ways
(with and without ``include("pugs")``, and inside a savepoint that may then raise). Plain dicts
model what the database holds at the last commit and in the current transaction, what the
session holds in memory (both sides of the relation, which collections are loaded, and which of
those were first loaded after the transaction wrote, so that rollback unloads them again) and
what the next flush must write. After every flush, commit, rollback and reload the database is
read with plain SQL (another connection, and the session's own) and compared with the model row
for row: keys, names, ages, owner keys, versions. After every step the objects in memory are
compared with the model.

Four mappings are exercised: ``cascade="all"`` with no database rule (the session deletes the
children), ``cascade="all"`` over ``ON DELETE CASCADE``, the default cascade (deleting an owner
nulls its pugs' key) with no database rule, and the default cascade over ``ON DELETE SET NULL``.
The pug carries a version column.

``MAPPER_HYPOTHESIS_EXAMPLES`` raises the number of examples per configuration for a long local
run (``MAPPER_HYPOTHESIS_STEPS`` the steps per example; ``MAPPER_HYPOTHESIS_STATS=1`` with
``pytest -s`` prints what the machine did). The bugs the machine found are at the end of the
file, each as its smallest example; all of them are fixed, and the machine walks into their
states and checks them like any other.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mapper import BelongsTo, Column, ForeignKey, HasMany, Mapper, errors
from mapper import types as t
from mapper.lazy import is_unloaded

# -- the domain: plain attrs classes (compared by value, as attrs does by default) -----------------


@attrs.define
class MbOwner:
    name: str
    pugs: list[MbPug] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class MbPug:
    name: str
    age: int = 0
    owner: MbOwner | None = None
    version: int | None = None
    id: int | None = None


CONFIGS = ("all", "all_db_cascade", "nullify", "set_null")
CASCADE_ALL = {"all", "all_db_cascade"}


def make_mappers(config: str) -> tuple[type, type]:
    """The mappers of one configuration: the relation's cascade and the key's ON DELETE rule."""
    cascade: dict[str, Any] = {"cascade": "all"} if config in CASCADE_ALL else {}
    rule_ = {"all_db_cascade": "CASCADE", "set_null": "SET NULL"}.get(config)
    fk = ForeignKey("mb_owners.id", on_delete=rule_) if rule_ else ForeignKey("mb_owners.id")

    class OwnerMapper(Mapper[MbOwner]):
        table = "mb_owners"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(100), nullable=False)
        pugs = HasMany(MbPug, foreign_key="owner_id", inverse="owner", order_by="id", **cascade)

    class PugMapper(Mapper[MbPug]):
        table = "mb_pugs"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(100), nullable=False)
        age = Column(t.Integer, nullable=False, default=0)
        version = Column(t.Integer, version=True)
        owner_id = Column(t.Integer, fk, index=True)
        owner = BelongsTo(MbOwner, foreign_key="owner_id", inverse="pugs")

    return OwnerMapper, PugMapper


EXAMPLES = int(os.environ.get("MAPPER_HYPOTHESIS_EXAMPLES", "0") or 0)
STEPS = int(os.environ.get("MAPPER_HYPOTHESIS_STEPS", "0") or 0)
#: Examples per configuration and backend in CI (30 steps each): 3-6 s per configuration.
CI_EXAMPLES = {"sqlite": 180, "postgresql": 100, "mysql": 90}

#: The ways _reload() reads everything back ("include" and "load" load the collections too).
RELOADS = st.sampled_from(["include", "owners_first", "pugs_first", "include_owner", "load"])
NAMES = st.sampled_from(["Rex", "rex", "Cody", "Doug", "Zoé", "🐶", "a b", "Rex "])
AGES = st.one_of(st.integers(min_value=0, max_value=20), st.sampled_from([-1, 2**31 - 1]))

#: With MAPPER_HYPOTHESIS_STATS=1 (and pytest -s), what the machine did is printed per test.
STATS: Counter[str] | None = Counter() if os.environ.get("MAPPER_HYPOTHESIS_STATS") else None


def _note(what: str) -> None:
    if STATS is not None:
        STATS[what] += 1


CONFLICT = "conflict"
ORPHAN = "orphan"


class Boom(Exception):
    """Raised inside a savepoint block to make it roll back."""


def _without(lst: list[Any], obj: Any) -> None:
    """Remove ``obj`` from a list by identity (domain objects compare by value)."""
    for i, x in enumerate(lst):
        if x is obj:
            del lst[i]
            return
    raise AssertionError(f"{obj!r} is not in the list")


# -- the machine -----------------------------------------------------------------------------------


def build_machine(
    db: Any, backend: Any, config: str, pug_mapper: Any, raw: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]
) -> type:
    """A state machine class bound to one Database (its tables exist) on one backend."""
    cascade_all = config in CASCADE_ALL
    q = backend.q
    owners_sql = f"SELECT id, name FROM {q('mb_owners')}"
    pugs_sql = f"SELECT id, name, age, owner_id, version FROM {q('mb_pugs')}"

    class SessionMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            raw(f"DELETE FROM {q('mb_pugs')}", ())
            raw(f"DELETE FROM {q('mb_owners')}", ())
            self.s = db.session()
            self.next_uid = 0
            self.objs: dict[int, Any] = {}  # uid -> the domain object the machine holds
            self.frames: list[tuple[Any, dict[str, Any], dict[int, Any]]] = []
            #: Whether the transaction may have written (a flush that wrote, execute(), a set-based
            #: update): a collection first loaded from then on is unloaded again by rollback().
            #: Not part of a savepoint's state: a failed block leaves it as it is.
            self.wrote = False
            self.expunged: list[Any] = []  # pugs a rollback expunged: they may be added again
            self.carried: dict[int, int | None] = {}  # the version such a pug carries when added again
            self._reset_model()

        def _reset_model(self) -> None:
            # What the user asked for (the next flush must write it): alive objects only.
            self.owners: dict[int, str] = {}
            self.pugs: dict[int, list[Any]] = {}  # uid -> [name, age, owner uid | None]
            # The rows in the current transaction, and at the last commit (as the session knows them).
            self.flushed_owners: dict[int, str] = {}
            self.flushed_pugs: dict[int, tuple[Any, ...]] = {}  # uid -> (name, age, owner, version)
            self.committed_owners: dict[int, str] = {}
            self.committed_pugs: dict[int, tuple[Any, ...]] = {}
            #: pug uid -> (name, version) another connection committed behind the session's back;
            #: it is what the row holds while the session's version of it is another.
            self.overlay: dict[int, tuple[str, int]] = {}
            self.ids: dict[int, int] = {}  # uid -> database key, once flushed
            self.tx_new: set[int] = set()  # created since the last commit
            self.doomed: set[int] = set()  # deleted since the last commit (still `in session`)
            self.unflushed_deletes: dict[int, Any] = {}  # deleted by session.delete() since the last flush
            self.added: set[int] = set()  # objects that must be `in session`
            # The relation as it is in memory (pug.owner, loaded owner.pugs), and as the session
            # last saw it (its snapshot at the last flush or load).
            self.mem_ref: dict[int, int | None] = {}
            self.mem_list: dict[int, set[int] | None] = {}
            self.snap_ref: dict[int, int | None] = {}
            self.snap_list: dict[int, set[int] | None] = {}
            #: Owners (alive or deleted) whose collection was first loaded since the last commit
            #: while self.wrote: rollback() makes it unloaded again.
            self.fresh_lists: set[int] = set()

        _MODEL = (
            "owners", "pugs", "flushed_owners", "flushed_pugs", "committed_owners", "committed_pugs",
            "overlay", "ids", "tx_new", "doomed", "unflushed_deletes", "added", "mem_ref", "mem_list",
            "snap_ref", "snap_list", "fresh_lists",
        )

        def teardown(self) -> None:
            try:
                while self.frames:
                    cm, _, _ = self.frames.pop()
                    try:
                        cm.__exit__(Boom, Boom(), None)
                    except Boom:
                        pass
            finally:
                self.s.close()

        # -- helpers ------------------------------------------------------------------------------

        def _uid(self, obj: Any) -> int:
            self.next_uid += 1
            self.objs[self.next_uid] = obj
            self.tx_new.add(self.next_uid)
            return self.next_uid

        def _new_owner(self, name: str) -> int:
            u = self._uid(MbOwner(name))
            self.owners[u] = name
            self.mem_list[u] = set()
            self.snap_list[u] = set()
            return u

        def _new_pug(self, name: str, age: int, owner: int | None) -> int:
            u = self._uid(MbPug(name, age))
            self.pugs[u] = [name, age, owner]
            self.mem_ref[u] = None
            self.snap_ref[u] = None
            return u

        def _set_ref(self, pu: int, ou: int | None) -> None:
            self.objs[pu].owner = self.objs[ou] if ou is not None else None
            self.mem_ref[pu] = ou

        def _append(self, ou: int, pu: int) -> None:
            members = self.mem_list[ou]
            assert members is not None and pu not in members
            self.objs[ou].pugs.append(self.objs[pu])
            members.add(pu)

        def _remove(self, ou: int, pu: int) -> None:
            members = self.mem_list[ou]
            assert members is not None and pu in members
            _without(self.objs[ou].pugs, self.objs[pu])
            members.discard(pu)

        def _pin_owner_of(self, pu: int) -> None:
            """add() a new owner known only through this pug's reference, before the pug lets go of it.

            Otherwise pugs put into its collection would lose their owner with it (nothing
            would reach it), a case the model leaves alone."""
            ou = self.mem_ref.get(pu)
            if ou is not None and ou in self.owners and ou not in self.added and ou not in self.flushed_owners:
                self.s.add(self.objs[ou])
                self.added.add(ou)

        def _lists_holding(self, pu: int) -> list[int]:
            return [
                o for o, m in self.mem_list.items()
                if m is not None and pu in m and (o in self.owners or o in self.flushed_owners)
            ]

        def claimed_owner(self, pu: int) -> Any:
            """The owner the documented rules derive from the in-memory edits of pug ``pu``.

            The to-one side wins if it changed; else a collection the pug joined; else, if it
            left a collection, it is detached (deleted with the "orphan" cascade); two parents
            that disagree are a FlushError. With "orphan", clearing the reference of a flushed pug
            (from an owner) orphans it too, as leaving the collection does. Joining the collection
            of an owner deleted since the last flush (or pointing at it) is a move to that owner:
            the delete then cascades to the pug or detaches it (see predict()).
            """
            pending = pu not in self.flushed_pugs
            snap_ref = None if pending else self.snap_ref[pu]
            lists = [o for o in self.mem_list if o in self.owners or o in self.flushed_owners]
            adds = [
                o for o in lists
                if self.mem_list[o] is not None and pu in self.mem_list[o] and pu not in (self.snap_list[o] or ())  # type: ignore[operator]
            ]
            removes = [
                o for o in lists
                if self.snap_list[o] is not None and pu in self.snap_list[o] and pu not in (self.mem_list[o] or ())  # type: ignore[operator]
            ]
            ref = self.mem_ref[pu]
            if len(adds) > 1:
                return CONFLICT
            if (pending and ref is not None) or (not pending and ref != snap_ref):
                if adds and adds[0] != ref:
                    return CONFLICT
                if ref is None and cascade_all:
                    return ORPHAN  # the reference left a flushed owner (snap_ref is not None)
                return ref
            if adds:
                return adds[0]
            if removes:
                return ORPHAN if cascade_all else None
            return snap_ref

        def _check_claims(self) -> None:
            for u, row in self.pugs.items():
                assert self.claimed_owner(u) == row[2], f"model error: pug {u} claims {self.claimed_owner(u)}, intent {row[2]}"

        # -- the flush: prediction and its effect on the model ------------------------------------

        def reachable(self) -> tuple[set[int], set[int]]:
            """The alive objects the flush will write: added ones, and new ones reached from them."""
            owners = {o for o in self.owners if o in self.added or o in self.flushed_owners}
            pugs = {u for u in self.pugs if u in self.added or u in self.flushed_pugs}
            while True:
                more_pugs = {u for o in owners for u in self.mem_list[o] or () if u in self.pugs} - pugs
                more_owners = {self.mem_ref[u] for u in pugs if self.mem_ref[u] in self.owners} - owners  # type: ignore[misc]
                if not more_pugs and not more_owners:
                    return owners, pugs
                owners |= more_owners  # type: ignore[arg-type]
                pugs |= more_pugs

        def predict(self) -> dict[str, Any]:
            live_owners, live_pugs = self.reachable()
            pugs = {u: list(v) for u, v in self.pugs.items() if u in live_pugs}
            for v in pugs.values():
                assert v[2] is None or v[2] in live_owners or v[2] not in self.owners, "model error: unreachable owner"
            cascaded = set()
            for u, v in pugs.items():
                if v[2] is not None and v[2] not in self.owners:
                    assert v[2] in self.flushed_owners, "model error: pug of an unflushed deleted owner"
                    if cascade_all:
                        cascaded.add(u)
                    else:
                        v[2] = None
            for u in cascaded:
                del pugs[u]
            flushed: dict[int, tuple[Any, ...]] = {}
            writes = {u for u, row in self.flushed_pugs.items() if u not in pugs or tuple(pugs[u]) != row[:3]}
            for u, v in pugs.items():
                old = self.flushed_pugs.get(u)
                if old is None:  # "1 on insert unless the object already carries a value"
                    version = self.carried.get(u) or 1
                else:
                    version = old[3] + 1 if tuple(v) != old[:3] else old[3]
                flushed[u] = (v[0], v[1], v[2], version)
            owners = {o: name for o, name in self.owners.items() if o in live_owners}
            return {
                "owners": owners,
                "pugs": flushed,
                "stale": bool(writes & self.stale(self.flushed_pugs)),
                # Whether the flush sends anything (a row inserted, updated or deleted).
                "writes": owners != self.flushed_owners or flushed != self.flushed_pugs,
            }

        def stale(self, rows: dict[int, tuple[Any, ...]]) -> set[int]:
            """Pugs whose row another connection changed since the session last read or wrote it."""
            return {u for u, (_, version) in self.overlay.items() if u in rows and rows[u][3] < version}

        def apply_flush(self, pred: dict[str, Any]) -> None:
            if STATS is not None:
                self._note_moves()
            for u in list(pred["owners"]) + list(pred["pugs"]):
                obj = self.objs[u]
                if u not in self.ids:
                    assert obj.id is not None, f"no key generated for {obj!r}"
                    self.ids[u] = obj.id
                else:
                    assert obj.id == self.ids[u]
            for group in (pred["owners"], pred["pugs"]):
                keys = [self.ids[u] for u in group]
                assert len(keys) == len(set(keys)), "two objects got the same key"
            for u in set(self.pugs) - set(pred["pugs"]):  # cascaded deletes
                if u in self.flushed_pugs:
                    self.doomed.add(u)
                else:
                    assert self.objs.pop(u) not in self.s, "a cascaded new pug is still in the session"
                    self.tx_new.discard(u)
                    self.added.discard(u)
            for u in set(self.owners) - set(pred["owners"]):  # new, and nothing reaches them
                assert u not in self.flushed_owners
                assert self.objs.pop(u) not in self.s, "an unreachable new owner was saved"
                self.tx_new.discard(u)
                self.mem_list.pop(u, None)
            for u in set(self.flushed_owners) - set(self.owners):
                self.doomed.add(u)
            for u in set(self.flushed_pugs) - set(pred["pugs"]):
                self.doomed.add(u)
            self.pugs = {u: list(v[:3]) for u, v in pred["pugs"].items()}
            self.owners = dict(pred["owners"])
            self.flushed_owners = dict(pred["owners"])
            self.flushed_pugs = dict(pred["pugs"])
            self.unflushed_deletes.clear()
            self._mirror()
            self.added |= set(self.owners) | set(self.pugs)

        def _note_moves(self) -> None:
            """For the statistics: pugs this flush moves into, or away from, an owner it deletes."""
            for u, (_, _, to) in self.pugs.items():
                old = self.snap_ref.get(u) if u in self.flushed_pugs else None
                if to is not None and to not in self.owners and to != old:
                    side = "by reference" if self.mem_ref[u] == to else "by collection"
                    _note(f"flush: moved into a deleted owner ({side})")
                if old is not None and old not in self.owners and to != old:
                    loaded = "unloaded" if self.mem_list.get(old) is None else "loaded"
                    _note(f"flush: moved away from a deleted owner ({loaded})")

        def _mirror(self) -> None:
            """After a flush (or a rollback, or a load) both sides in memory agree with the rows."""
            for u, v in self.pugs.items():
                self.mem_ref[u] = self.snap_ref[u] = v[2]
            for o in self.owners:
                if self.mem_list[o] is not None:
                    members = {u for u, v in self.pugs.items() if v[2] == o}
                    self.mem_list[o] = members
                    self.snap_list[o] = set(members)

        def _lists_from_session(self) -> None:
            """Which collections are loaded, as the session says (their members are then _mirror()ed)."""
            for o in self.owners:
                loaded = not is_unloaded(self.objs[o].pugs)
                self.mem_list[o] = set() if loaded else None
                self.snap_list[o] = set() if loaded else None

        def _sync_loaded(self, early: tuple[set[int], bool] = (set(), False), only: set[int] | None = None) -> None:
            """Collections the session loaded (a lazy load serves a whole cohort) join the model.

            Deleted owners are part of the cohort too: their collection's contents are not
            checked, but whether it is loaded is (after rollback() brings them back). One loaded
            after the transaction wrote is "fresh": rollback() unloads it again. ``early``: the
            collections the flush itself loaded, and whether the transaction had written by then
            (see _flush_loads()); ``only``: look at these owners only.
            """
            for o, obj in self.objs.items():
                if only is not None and o not in only:
                    continue
                if isinstance(obj, MbOwner) and self.mem_list.get(o) is None and not is_unloaded(obj.pugs):
                    members = {u for u, v in self.pugs.items() if v[2] == o} if o in self.owners else set()
                    self.mem_list[o] = members
                    self.snap_list[o] = set(members)
                    if (early[1] if o in early[0] else self.wrote):
                        self.fresh_lists.add(o)

        def _flush_loads(self) -> tuple[set[int], bool]:
            """The collections the next flush itself may load, and whether the transaction wrote before it.

            With the "delete" cascade and no database rule, the flush loads the unloaded collection
            of an owner it deletes (to delete its pugs) before it writes anything: rollback unloads
            that collection again only if the transaction had written before this flush.
            """
            if config != "all":
                return set(), self.wrote
            return {o for o in self.flushed_owners if o not in self.owners and self.mem_list.get(o) is None}, self.wrote

        def flush_via(
            self,
            action: Callable[[], Any],
            *,
            extra: type[BaseException] | None = None,
            then: Callable[[], None] | None = None,
            look: bool = True,
        ) -> bool:
            """Run something that flushes; check the outcome the model predicts. False if it failed.

            ``look=False`` checks the committed rows only, not what the session's own connection
            reads (that read is an execute(), which rollback counts as a write).
            """
            pred = self.predict()
            _note(f"flush: {'stale' if pred['stale'] else 'ok'}")
            early = self._flush_loads()
            self.wrote |= pred["writes"]  # before what the action loads after its autoflush
            if pred["stale"]:
                with pytest.raises(errors.StaleDataError) as info:
                    action()
                self.after_failed_flush(info.value, early)
                return False
            if extra is not None:
                with pytest.raises(extra):
                    action()
            else:
                action()
            self.apply_flush(pred)
            self._sync_loaded(early)
            if then is not None:
                then()
            self.check_memory()
            self.check_database(in_transaction=look)
            return True

        def ensure_loaded(self, ou: int) -> bool:
            """Touch an owner's collection; an unloaded one autoflushes, then loads (with its cohort)."""
            if self.mem_list[ou] is not None:
                return True
            pugs = self.objs[ou].pugs
            assert is_unloaded(pugs)
            _note("lazy load (autoflush)")
            if not self.flush_via(lambda: len(pugs)):
                return False
            assert self.mem_list[ou] is not None
            return True

        def after_failed_flush(self, exc: BaseException, early: tuple[set[int], bool]) -> None:
            """A failed flush put back everything it wrote; the session waits for rollback().

            Collections the flush loaded before it failed (``early``, see _flush_loads()) stay
            loaded: rollback() then unloads them if the transaction had written before the flush.
            """
            self._sync_loaded(early, only=early[0])
            self._check_memory(failed=True)
            with pytest.raises(errors.PendingRollbackError):
                self.s.flush()
            with pytest.raises(errors.PendingRollbackError):
                self.s.query(MbOwner).count()
            if self.frames:
                # Inside a savepoint: the block ends with the error and returns to the savepoint.
                cm, saved, held = self.frames.pop()
                assert cm.__exit__(type(exc), exc, exc.__traceback__) is False
                self.restore_frame(saved, held)
            else:
                self.check_database(in_transaction=False)
                self.do_rollback()

        # -- checks -------------------------------------------------------------------------------

        def expected_rows(self, owners: dict[int, str], pugs: dict[int, tuple[Any, ...]]) -> tuple[list[Any], list[Any]]:
            o_rows = sorted((self.ids[u], name) for u, name in owners.items())
            p_rows = []
            stale = self.stale(pugs)
            for u, (name, age, owner, version) in pugs.items():
                if u in stale:
                    name, version = self.overlay[u]
                p_rows.append((self.ids[u], name, age, self.ids[owner] if owner is not None else None, version))
            return o_rows, sorted(p_rows)

        def check_database(self, *, in_transaction: bool) -> None:
            """The committed rows (read by another connection), and the session's own view."""
            committed = self.expected_rows(self.committed_owners, self.committed_pugs)
            seen = (sorted(raw(owners_sql, ())), sorted(raw(pugs_sql, ())))
            assert seen == committed, f"committed rows differ from the model:\n{seen}\n{committed}"
            if in_transaction:
                self.wrote = True  # execute() counts as a write (rollback cannot tell a SELECT)
                mine = self.expected_rows(self.flushed_owners, self.flushed_pugs)
                with self.s.budget(queries=2):
                    got = (
                        sorted(tuple(r) for r in self.s.execute(owners_sql)),
                        sorted(tuple(r) for r in self.s.execute(pugs_sql)),
                    )
                assert got == mine, f"rows in the transaction differ from the model:\n{got}\n{mine}"

        @invariant()
        def check_memory(self) -> None:
            self._check_memory(failed=False)

        def _check_memory(self, *, failed: bool) -> None:
            """Objects in memory agree with the model: columns, keys, versions, both sides.

            After a failed flush, a new object the flush's cascade had dropped (a new pug of a
            deleted owner) may be out of the session until rollback() expunges it anyway.
            """
            s = self.s
            for u, name in self.owners.items():
                o = self.objs[u]
                assert o.name == name
                assert o.id == self.ids.get(u)
                if u in self.added:
                    assert o in s
                members = self.mem_list[u]
                value = o.pugs
                if members is None:
                    assert is_unloaded(value), f"{u}: collection loaded behind the model's back"
                    continue
                assert not is_unloaded(value)
                got = [id(x) for x in value]
                assert len(got) == len(set(got)), f"owner {u}: a pug twice in the collection"
                want = {id(self.objs[x]) for x in members}
                assert set(got) == want, f"owner {u}: pugs {sorted(map(str, self._names(value)))} != model {sorted(members)}"
            for u, (name, age, owner) in self.pugs.items():
                p = self.objs[u]
                assert (p.name, p.age) == (name, age), f"pug {u}: {(p.name, p.age)} != {(name, age)}"
                assert p.id == self.ids.get(u)
                flushed = self.flushed_pugs.get(u)
                assert p.version == (flushed[3] if flushed is not None else self.carried.get(u)), f"pug {u}: version {p.version}"
                if u in self.added and not (failed and u not in self.flushed_pugs):
                    assert p in s
                ref = self.mem_ref[u]
                assert p.owner is (self.objs[ref] if ref is not None else None), (
                    f"pug {u}: owner {p.owner!r} != model {ref}"
                )
            for u in self.doomed:
                assert self.objs[u] in s, f"{u}: a deleted object left the session before the commit"
            self._check_claims()

        def _names(self, objs: Any) -> list[Any]:
            by_id = {id(v): u for u, v in self.objs.items()}
            return [by_id.get(id(x), repr(x)) for x in objs]

        def check_identity_map(self) -> None:
            with self.s.budget(queries=0):
                for u in self.owners:
                    if u in self.ids:
                        assert self.s.get(MbOwner, self.ids[u]) is self.objs[u]
                for u in self.pugs:
                    if u in self.ids:
                        assert self.s.get(MbPug, self.ids[u]) is self.objs[u]

        # -- rules: building ----------------------------------------------------------------------

        @initialize(owners=st.lists(st.tuples(NAMES, st.lists(st.tuples(NAMES, AGES), max_size=3)), max_size=3),
                    how=RELOADS, nested=st.booleans())
        def seed(self, owners: list[tuple[str, list[tuple[str, int]]]], how: str, nested: bool) -> None:
            """Start from committed owners and pugs (or none), read by a new session in one of the
            reload ways (most leave collections unloaded): the work of an example is then mostly
            on rows the session loaded, not only on those it added."""
            for name, pugs in owners:
                self.add_owner(None, name, pugs, "constructor")
            if owners:
                self.commit(look=False)
                self._reload(how, nested)

        @rule(data=st.data(), name=NAMES, pugs=st.lists(st.tuples(NAMES, AGES), max_size=3),
              how=st.sampled_from(["constructor", "reference", "both"]))
        def add_owner(self, data: Any, name: str, pugs: list[tuple[str, int]], how: str) -> None:
            ou = self._new_owner(name)
            owner = self.objs[ou]
            pus = [self._new_pug(n, a, ou) for n, a in pugs]
            if how in ("constructor", "both"):
                owner.pugs = [self.objs[u] for u in pus]
                self.mem_list[ou] = set(pus)
            if how in ("reference", "both"):
                for u in pus:
                    self._set_ref(u, ou)
            if how == "reference" and pus:
                for u in pus:
                    self.s.add(self.objs[u])  # the owner comes along through the reference
                self.added |= set(pus)
            else:
                self.s.add(owner)
                self.added.add(ou)

        @rule(data=st.data(), name=NAMES, age=AGES, how=st.sampled_from(["list", "reference", "both", "alone"]))
        def add_pug(self, data: Any, name: str, age: int, how: str) -> None:
            live = sorted(self.reachable()[0])  # owners the flush will see
            if how == "alone" or not live:
                u = self._new_pug(name, age, None)
                self.s.add(self.objs[u])
                self.added.add(u)
                return
            ou = data.draw(st.sampled_from(live), label="owner")
            if how in ("list", "both") and not self.ensure_loaded(ou):
                return
            u = self._new_pug(name, age, ou)
            if how in ("reference", "both"):
                self._set_ref(u, ou)
            if how in ("list", "both"):
                self._append(ou, u)
            if how == "reference" or data.draw(st.booleans(), label="add it too"):
                self.s.add(self.objs[u])
                self.added.add(u)

        @precondition(lambda self: self.owners or self.pugs)
        @rule(data=st.data(), name=NAMES, age=st.one_of(st.none(), AGES))
        def edit(self, data: Any, name: str, age: int | None) -> None:
            u = data.draw(st.sampled_from(sorted([*self.owners, *self.pugs])), label="object")
            obj = self.objs[u]
            if u in self.owners:
                obj.name = self.owners[u] = name
                return
            if data.draw(st.booleans(), label="rename"):
                obj.name = self.pugs[u][0] = name
            if age is not None:
                obj.age = self.pugs[u][1] = age

        # -- rules: the relation, from either side -----------------------------------------------

        @precondition(lambda self: self.pugs)
        @rule(data=st.data(), how=st.sampled_from(["reference", "list", "append", "both"]))
        def move_pug(self, data: Any, how: str) -> None:
            """Move a pug: ``pug.owner = x``, or remove it from / append it to collections, or both.

            Moving to None detaches the pug; with "orphan" (cascade_all) a flushed pug that leaves
            its owner that way, from either side, is an orphan and is deleted.
            """
            pu = data.draw(st.sampled_from(sorted(self.pugs)), label="pug")
            self._pin_owner_of(pu)
            targets: list[int | None] = [*sorted(self.reachable()[0]), None]  # owners the flush will see
            to = data.draw(st.sampled_from(targets), label="to")
            self._move(pu, to, how)

        def _move(self, pu: int, to: int | None, how: str) -> bool:
            """Move pug ``pu`` to ``to`` by ``how`` (falling back to both sides); False if it did not.

            Touching an unloaded collection first autoflushes (then the move is in the next flush).
            """

            def reached(owner: Any) -> bool:
                return owner == to or (to is None and owner == ORPHAN)

            if how == "append" and to is None:
                how = "list"
            if how != "reference" and to is not None and not self.ensure_loaded(to):
                return False
            if pu not in self.pugs or (to is not None and to not in self.owners):
                return False
            if how == "append" and pu in self.mem_list[to]:  # type: ignore[index, operator]
                how = "list"
            ops = self._move_ops(pu, to, how)
            owner = self._claim_after(pu, ops)
            if not reached(owner):
                # That side alone would contradict earlier unflushed edits: edit both sides.
                if to is not None and not self.ensure_loaded(to):
                    return False
                if pu not in self.pugs or (to is not None and to not in self.owners):
                    return False
                ops = self._move_ops(pu, to, "both")
                owner = self._claim_after(pu, ops)
                assert reached(owner), f"model error: moving pug {pu} to {to} claims {owner}"
                how = "both (fallback)"
            _note(f"move: {how}{' to None' if to is None else ''}{' (orphan)' if owner == ORPHAN else ''}")
            self._apply_ops(pu, ops)
            if owner == ORPHAN:
                del self.pugs[pu]
                self.doomed.add(pu)
            else:
                self.pugs[pu][2] = to
            return True

        def _apply_ops(self, pu: int, ops: list[tuple[str, Any]]) -> None:
            for op, o in ops:
                if op == "ref":
                    self._set_ref(pu, o)
                elif op == "remove":
                    self._remove(o, pu)
                else:
                    self._append(o, pu)

        def _move_ops(self, pu: int, to: int | None, how: str) -> list[tuple[str, Any]]:
            ops: list[tuple[str, Any]] = []
            if how in ("reference", "both"):
                ops.append(("ref", to))
            if how in ("list", "both"):
                ops += [("remove", o) for o in self._lists_holding(pu)]
            if how in ("list", "append", "both") and to is not None:
                ops.append(("append", to))
            return ops

        def _claim_after(self, pu: int, ops: list[tuple[str, Any]]) -> Any:
            """The owner the flush would derive after ``ops`` (the model is left as it was)."""
            saved = (dict(self.mem_ref), {k: (set(v) if v is not None else None) for k, v in self.mem_list.items()})
            row = list(self.pugs[pu])
            try:
                for op, o in ops:
                    if op == "ref":
                        self.mem_ref[pu] = o
                    elif op == "remove":
                        self.mem_list[o].discard(pu)  # type: ignore[union-attr]
                    else:
                        self.mem_list[o].add(pu)  # type: ignore[union-attr]
                return self.claimed_owner(pu)
            finally:
                self.mem_ref, self.mem_list = saved
                self.pugs[pu] = row

        @precondition(lambda self: cascade_all and self.pugs)
        @rule(data=st.data(), how=st.sampled_from(["list", "reference", "both"]))
        def orphan_pug(self, data: Any, how: str) -> None:
            """With "orphan": a pug that leaves its owner (and joins no other) is deleted.

            It leaves from either side: removed from ``owner.pugs``, ``pug.owner = None``, or both.
            """
            candidates = [
                u for u in sorted(self.pugs)
                if u in self.flushed_pugs and self.snap_ref[u] in self.owners and self.claimed_owner(u) == self.snap_ref[u]
                and self.mem_ref[u] == self.snap_ref[u] and not any(o != self.snap_ref[u] for o in self._lists_holding(u))
            ]
            if not candidates:
                return
            pu = data.draw(st.sampled_from(candidates), label="pug")
            ou = self.snap_ref[pu]
            assert ou is not None
            if how != "reference":
                if not self.ensure_loaded(ou) or pu not in self.pugs or self.snap_ref[pu] != ou:
                    return
                if self.mem_ref[pu] != ou or self._lists_holding(pu) != [ou] or self.claimed_owner(pu) != ou:
                    return
                self._remove(ou, pu)
            if how != "list":
                self._set_ref(pu, None)
            _note(f"orphan: {how}")
            assert self.claimed_owner(pu) == ORPHAN
            del self.pugs[pu]
            self.doomed.add(pu)

        # -- rules: deleting ----------------------------------------------------------------------

        @precondition(lambda self: self.pugs)
        @rule(data=st.data(), how=st.sampled_from(["session", "both"]))
        def delete_pug(self, data: Any, how: str) -> None:
            pu = data.draw(st.sampled_from(sorted(self.pugs)), label="pug")
            self._pin_owner_of(pu)
            p = self.objs[pu]
            if pu not in self.flushed_pugs:
                how = "both"  # a new pug left in a collection would be saved again by the cascade
            if how == "both":
                for o in self._lists_holding(pu):
                    self._remove(o, pu)
            if pu in self.added:
                self.s.delete(p)
            # else: new and reached only through a collection it has now left: nothing saves it
            del self.pugs[pu]
            if pu in self.flushed_pugs:
                self.doomed.add(pu)
                if how == "session":
                    self.unflushed_deletes[pu] = [p.name, p.age, self.claimed_owner(pu)]
            else:
                self.added.discard(pu)
                assert p not in self.s
                self.objs.pop(pu)
                self.tx_new.discard(pu)

        @precondition(lambda self: self.owners)
        @rule(data=st.data(), also=st.sampled_from(["", "move_in", "move_out"]),
              how=st.sampled_from(["reference", "list", "append", "both"]))
        def delete_owner(self, data: Any, also: str, how: str) -> None:
            """Delete an owner; ``also`` moves a pug into it just before, or out of it just after (the
            same flush: its pugs are deleted or detached, a pug moved in too, one moved out not)."""
            candidates = self._deletable_owners()
            if not candidates:
                return
            ou = data.draw(st.sampled_from(candidates), label="owner")
            if also == "move_in":
                pugs = [u for u in sorted(self.pugs) if self.pugs[u][2] != ou]
                if pugs:
                    pu = data.draw(st.sampled_from(pugs), label="pug moved in")
                    self._pin_owner_of(pu)
                    if self._move(pu, ou, how):
                        _note(f"delete owner: moved a pug in ({how})")
                if ou not in self._deletable_owners():
                    return
            move: tuple[int, int] | None = None  # (pug, to)
            if also == "move_out":
                pugs = [u for u in sorted(self.pugs) if self.pugs[u][2] == ou]
                targets = [o for o in sorted(self.reachable()[0]) if o != ou]
                if pugs and targets:
                    pu = data.draw(st.sampled_from(pugs), label="pug moved out")
                    move = pu, data.draw(st.sampled_from(targets), label="to")
                    # Load the target now: loading it after the delete would flush the delete first.
                    # (By reference alone, nothing loads: the lazy load of the target would load the
                    # deleted owner's collection too, as one cohort.)
                    if how != "reference" and not self.ensure_loaded(move[1]):
                        return
                    if ou not in self._deletable_owners():
                        return
                    if move[0] not in self.pugs or self.pugs[move[0]][2] != ou or move[1] not in self.owners:
                        move = None
            self._delete_owner(ou)
            if move is not None:
                self._pin_owner_of(move[0])
                if self._move(*move, how):
                    loaded = "loaded" if self.mem_list.get(ou) is not None else "unloaded"
                    _note(f"delete owner: moved a pug out ({how}, {loaded})")

        def _deletable_owners(self) -> list[int]:
            return [
                u for u in sorted(self.owners)
                if (u in self.flushed_owners and (cascade_all or not any(
                    x not in self.flushed_pugs and x not in self.added for x in self.mem_list[u] or ()
                )))
                or (u in self.added and not self.mem_list[u] and u not in self.mem_ref.values() and all(v[2] != u for v in self.pugs.values()))
            ]

        def _delete_owner(self, ou: int) -> None:
            o = self.objs[ou]
            _note(f"delete owner with {sum(1 for v in self.pugs.values() if v[2] == ou)} pugs")
            self.s.delete(o)
            del self.owners[ou]
            if ou in self.flushed_owners:
                self.doomed.add(ou)
                self.unflushed_deletes[ou] = o.name
            else:
                assert o not in self.s
                self.added.discard(ou)
                self.objs.pop(ou)
                self.tx_new.discard(ou)

        @precondition(lambda self: self.expunged)
        @rule(data=st.data())
        def add_again(self, data: Any) -> None:
            """An object the rollback expunged (its generated key cleared) can be added again."""
            i = data.draw(st.integers(0, len(self.expunged) - 1), label="expunged pug")
            p = self.expunged.pop(i)
            assert p.id is None and p not in self.s
            p.owner = None
            u = self._uid(p)
            self.carried[u] = p.version
            self.pugs[u] = [p.name, p.age, None]
            self.mem_ref[u] = self.snap_ref[u] = None
            self.s.add(p)
            self.added.add(u)
            _note(f"add again (version {p.version})")

        @precondition(lambda self: self.unflushed_deletes)
        @rule(data=st.data())
        def undelete(self, data: Any) -> None:
            """add() of an object marked for deletion cancels the deletion."""
            u = data.draw(st.sampled_from(sorted(self.unflushed_deletes)), label="object")
            saved = self.unflushed_deletes.pop(u)
            self.s.add(self.objs[u])
            self.doomed.discard(u)
            if isinstance(self.objs[u], MbOwner):
                self.owners[u] = saved
            else:
                assert self.claimed_owner(u) == saved[2]
                self.pugs[u] = list(saved)

        # -- rules: reading and set-based writes (each autoflushes first) --------------------------

        @rule(data=st.data(), how=st.sampled_from(["pugs", "owners", "owners_include", "count", "get"]))
        def read(self, data: Any, how: str) -> None:
            """Queries see the session's changes (autoflush) and return the objects it holds."""
            out: list[Any] = []

            def action() -> None:
                if how == "pugs":
                    out.extend(self.s.query(MbPug).order_by("-age", "id").all())
                elif how in ("owners", "owners_include"):
                    q = self.s.query(MbOwner)
                    out.extend((q.include("pugs") if how == "owners_include" else q).all())
                elif how == "count":
                    out.append((self.s.query(MbOwner).count(), self.s.query(MbPug).where(pug_mapper.age >= 0).count()))
                else:
                    self.s.flush()

            def then() -> None:
                if how == "pugs":
                    assert [id(x) for x in out] == [id(self.objs[u]) for u in self._by_age()]
                elif how in ("owners", "owners_include"):
                    assert sorted(id(x) for x in out) == sorted(id(self.objs[u]) for u in self.owners)
                elif how == "count":
                    assert out == [(len(self.owners), sum(1 for v in self.pugs.values() if v[1] >= 0))]
                else:
                    with self.s.budget(queries=0):
                        for u in self.flushed_pugs:
                            assert self.s.get(MbPug, self.ids[u]) is self.objs[u]
                    for u in self.doomed:
                        cls = MbOwner if isinstance(self.objs[u], MbOwner) else MbPug
                        assert self.s.get(cls, self.ids[u]) is None, "get() of an object deleted in this session"

            self.flush_via(action, then=then)

        def _by_age(self) -> list[int]:
            """Alive pugs in ``order_by("-age", "id")`` order."""
            return sorted(self.pugs, key=lambda u: (-self.pugs[u][1], self.ids[u]))

        @rule(data=st.data(), age=AGES)
        def bulk_update(self, data: Any, age: int) -> None:
            """query.update(): one UPDATE; held objects follow in memory; no version bump."""
            choices: list[int | None] = [o for o in sorted(self.owners) if o in self.flushed_owners]
            o = data.draw(st.sampled_from([*choices, None]), label="owner")
            key = self.ids[o] if o is not None else None
            count: list[int] = []

            def then() -> None:
                hits = [u for u, v in self.pugs.items() if v[2] == o]
                assert count == [len(hits)]
                for u in hits:
                    self.pugs[u][1] = age
                    name, _, owner, version = self.flushed_pugs[u]
                    self.flushed_pugs[u] = (name, age, owner, version)

            _note("bulk update")
            self.flush_via(lambda: count.append(self.s.query(MbPug).where(owner_id=key).update(age=age)), then=then)

        @rule(data=st.data())
        def refresh(self, data: Any) -> None:
            """refresh() reads the row again (no autoflush): unflushed column changes are dropped."""
            candidates = sorted(u for u in [*self.owners, *self.pugs] if u in self.flushed_owners or u in self.flushed_pugs)
            if not candidates:
                return
            u = data.draw(st.sampled_from(candidates), label="object")
            self.s.refresh(self.objs[u])
            if u in self.owners:
                self.owners[u] = self.flushed_owners[u]
                return
            name, age, owner, version = self.flushed_pugs[u]
            if u in self.stale(self.flushed_pugs):
                _note("refresh a stale pug")
                name, version = self.overlay[u]
            self.flushed_pugs[u] = (name, age, owner, version)
            self.pugs[u][:2] = [name, age]  # relations are left as they are

        # -- rules: the unit of work --------------------------------------------------------------

        @rule()
        def flush(self) -> None:
            if self.flush_via(self.s.flush):
                self.check_identity_map()

        @rule(look=st.booleans())
        def commit(self, look: bool) -> None:
            """``look``: read the rows through the session afterwards too (that execute() counts as
            a write, so collections loaded next are unloaded by a rollback; without it they keep
            their committed contents)."""
            if self.frames:
                # commit() flushes, then refuses inside begin_nested().
                self.flush_via(self.s.commit, extra=errors.SessionError)
                return
            self.flush_via(self.s.commit, then=self._committed, look=look)

        def _committed(self) -> None:
            self.committed_owners = dict(self.flushed_owners)
            self.committed_pugs = dict(self.flushed_pugs)
            self.overlay = {u: row for u, row in self.overlay.items() if u in self.stale(self.committed_pugs)}
            self.tx_new.clear()
            self.wrote = False
            self.fresh_lists = set()
            for u in self.doomed:
                assert self.objs[u] not in self.s, f"{u}: a deleted object is still in the session after commit"
                self.objs.pop(u)
                self.added.discard(u)
                self.mem_ref.pop(u, None)
                self.mem_list.pop(u, None)
            self.doomed.clear()
            self.check_database(in_transaction=False)

        @precondition(lambda self: not self.frames)
        @rule(data=st.data(), touch=st.booleans())
        def rollback(self, data: Any, touch: bool) -> None:
            """``touch``: first load a collection (after the transaction wrote, rollback unloads it)."""
            if touch and not self._touch(data):
                return
            self.do_rollback()

        def _touch(self, data: Any) -> bool:
            """Load an unloaded collection, if any (with its cohort); False if the autoflush failed."""
            unloaded = [o for o in sorted(self.owners) if self.mem_list[o] is None]
            if not unloaded:
                return True
            return self.ensure_loaded(data.draw(st.sampled_from(unloaded), label="touch"))

        def do_rollback(self) -> None:
            """Back to the last commit: new objects expunged (keys cleared), deleted ones back, values back.

            References and loaded collections go back to the last commit (a pug whose delete was
            flushed is back in its owner's collection); a collection first loaded after the
            transaction wrote is unloaded again, one loaded before keeps its committed contents.
            """
            self.s.rollback()
            for u in self.tx_new:
                obj = self.objs.pop(u, None)
                if obj is not None:
                    assert obj not in self.s, f"{u}: an object added since the commit is still in the session"
                    assert obj.id is None, f"{u}: the key generated for an expunged object was kept"
                    if isinstance(obj, MbPug) and obj.name is not None:
                        self.expunged.append(obj)
                self.ids.pop(u, None)
                self.mem_ref.pop(u, None)
                self.mem_list.pop(u, None)
            self.tx_new.clear()
            self.doomed.clear()
            self.unflushed_deletes.clear()
            self.owners = dict(self.committed_owners)
            self.pugs = {u: list(v[:3]) for u, v in self.committed_pugs.items()}
            self.flushed_owners = dict(self.committed_owners)
            self.flushed_pugs = dict(self.committed_pugs)
            self.added = set(self.owners) | set(self.pugs)
            for o in self.owners:  # deleted ones are back, and so is whether their collection was loaded
                kept = self.mem_list.get(o) is not None and o not in self.fresh_lists
                if self.mem_list.get(o) is not None:
                    _note(f"rollback: collection {'kept' if kept else 'unloaded (loaded after a write)'}")
                self.mem_list[o] = set() if kept else None
                self.snap_list[o] = set() if kept else None
            self.fresh_lists = set()
            self.wrote = False
            self._mirror()
            self.check_memory()
            self.check_database(in_transaction=False)

        @precondition(lambda self: not self.frames)
        @rule(how=RELOADS, commit_first=st.booleans(), nested=st.booleans())
        def reload(self, how: str, commit_first: bool, nested: bool) -> None:
            """A new session reads everything back; the machine's handles move to the new objects.

            ``nested``: the new session opens a savepoint first and loads everything inside it
            (the savepoint stays open): if that block later raises, the objects it loaded stay
            in the session with the values they were loaded with.
            """
            if commit_first:
                self.commit(look=False)
            self._reload(how, nested)

        def _reload(self, how: str, nested: bool = False) -> None:
            _note(f"reload: {how}{' (in savepoint)' if nested else ''}")
            self.s.close()  # anything not committed is discarded
            self.s = s = db.session()
            cm = s.begin_nested() if nested else None
            if cm is not None:
                cm.__enter__()  # nothing to flush: opens the transaction and the savepoint
            if how == "include":
                owners = s.query(MbOwner).include("pugs").all()
                pugs = s.query(MbPug).all()
            elif how == "owners_first":
                owners = s.query(MbOwner).all()
                pugs = s.query(MbPug).all()
            elif how == "pugs_first":
                pugs = s.query(MbPug).all()
                owners = s.query(MbOwner).all()
            elif how == "include_owner":
                pugs = s.query(MbPug).include("owner").all()
                owners = s.query(MbOwner).all()
            else:
                owners = s.query(MbOwner).all()
                s.load(owners, "pugs")
                pugs = s.query(MbPug).all()
            by_id = {MbOwner: {self.ids[u]: u for u in self.committed_owners}, MbPug: {self.ids[u]: u for u in self.committed_pugs}}
            assert sorted(o.id for o in owners) == sorted(self.ids[u] for u in self.committed_owners)
            assert sorted(p.id for p in pugs) == sorted(self.ids[u] for u in self.committed_pugs)
            for u in self.stale(self.committed_pugs):
                name, version = self.overlay[u]
                row = self.committed_pugs[u]
                self.committed_pugs[u] = (name, row[1], row[2], version)
            self.overlay.clear()
            ids = self.ids
            self.objs = {}
            for obj in [*owners, *pugs]:
                assert type(obj) in (MbOwner, MbPug)
                self.objs[by_id[type(obj)][obj.id]] = obj
            self.ids = {u: ids[u] for u in self.objs}
            self.tx_new = set()
            self.doomed = set()
            self.unflushed_deletes = {}
            self.owners = dict(self.committed_owners)
            self.pugs = {u: list(v[:3]) for u, v in self.committed_pugs.items()}
            self.flushed_owners = dict(self.committed_owners)
            self.flushed_pugs = dict(self.committed_pugs)
            self.added = set(self.objs)
            self.mem_ref, self.snap_ref, self.mem_list, self.snap_list = {}, {}, {}, {}
            self.wrote = False  # a new transaction: the collections were loaded before any write
            self.fresh_lists = set()
            self._lists_from_session()
            for u in self.owners:
                assert (self.mem_list[u] is not None) == (how in ("include", "load")), f"{how}: loaded {u}?"
            for u in self.pugs:
                owner = self.objs[u].owner
                assert owner is None or type(owner) is MbOwner, f"{how}: pug.owner is {type(owner)}"
            self._mirror()
            self.check_memory()
            self.check_database(in_transaction=True)
            if cm is not None:
                # The savepoint's state is what was just loaded: a failed block returns to it (the
                # objects it loaded stay, as loaded; so do collections loaded before any write).
                self.frames.append((cm, self._saved_model(), dict(self.objs)))

        @precondition(lambda self: not self.frames)
        @rule(data=st.data(), name=NAMES)
        def commit_then_another_connection_edits(self, data: Any, name: str) -> None:
            """Another connection changes a committed pug (and its version) after our commit."""
            if not self.flush_via(self.s.commit, then=self._committed):
                return
            self.s.commit()  # end the read that checked the rows (SQLite keeps its lock until then)
            self.wrote = False
            candidates = sorted(u for u in self.committed_pugs)
            if not candidates:
                return
            u = data.draw(st.sampled_from(candidates), label="pug")
            version = self.overlay.get(u, self.committed_pugs[u][::3])[1]
            raw(f"UPDATE {q('mb_pugs')} SET name = ?, version = version + 1 WHERE id = ?", (name, self.ids[u]))
            self.overlay[u] = (name, version + 1)
            self.check_database(in_transaction=False)

        # -- rules: failed flushes ----------------------------------------------------------------

        @rule(data=st.data(), how=st.sampled_from(["not_null", "two_collections", "two_sides"]))
        def failed_flush(self, data: Any, how: str) -> None:
            """A flush that fails writes nothing, puts back what it wrote, and waits for rollback()."""
            if self.predict()["stale"]:
                return  # that flush fails anyway (StaleDataError)
            early = self._flush_loads()
            if how == "not_null":
                written = sorted(u for u in self.predict()["pugs"] if u not in self.stale(self.flushed_pugs))
                if not written:
                    return
                u = data.draw(st.sampled_from(written), label="pug")
                self.objs[u].name = None
                self.pugs[u][0] = None
                self.wrote = True  # the flush sends statements before the database refuses one
                expected: type[BaseException] = errors.IntegrityError
            else:
                pu, b, c = self._contradiction(data, how)
                if pu is None:
                    return
                expected = errors.FlushError
            _note(f"failed flush: {how}{' (in savepoint)' if self.frames else ''}")
            if how != "not_null":
                early = self._flush_loads()  # _contradiction() may have flushed
            with pytest.raises(expected) as info:
                self.s.flush()
            self.after_failed_flush(info.value, early)

        def _contradiction(self, data: Any, how: str) -> tuple[Any, Any, Any]:
            """Edit both sides so that they disagree (or put a pug in two collections)."""
            candidates = [u for u in sorted(self.pugs) if u in self.flushed_pugs and self.claimed_owner(u) == self.snap_ref[u]]
            if not candidates:
                return None, None, None
            pu = data.draw(st.sampled_from(candidates), label="pug")
            others = [o for o in sorted(self.reachable()[0]) if o != self.snap_ref[pu] and pu not in (self.mem_list[o] or ())]  # type: ignore[operator]
            if len(others) < 2:
                return None, None, None
            b, c = data.draw(st.permutations(others), label="owners")[:2]
            for o in ((b, c) if how == "two_collections" else (c,)):
                if not self.ensure_loaded(o):
                    return None, None, None
            if pu not in self.pugs or b not in self.owners or c not in self.owners or self.claimed_owner(pu) != self.snap_ref[pu]:
                return None, None, None
            if how == "two_collections":
                self._append(b, pu)
                self._append(c, pu)
            else:
                self._set_ref(pu, b)
                self._append(c, pu)
            assert self.claimed_owner(pu) == CONFLICT
            self.pugs[pu][2] = CONFLICT  # not a state the flush can reach
            return pu, b, c

        # -- rules: savepoints --------------------------------------------------------------------

        @precondition(lambda self: len(self.frames) < 2)
        @rule()
        def begin_nested(self) -> None:
            cm = self.s.begin_nested()
            if not self.flush_via(cm.__enter__):
                return
            self.frames.append((cm, self._saved_model(), dict(self.objs)))

        def _saved_model(self) -> dict[str, Any]:
            return {k: copy.deepcopy(getattr(self, k)) for k in self._MODEL}

        @precondition(lambda self: self.frames)
        @rule(data=st.data(), fail=st.booleans(), touch=st.booleans())
        def end_nested(self, data: Any, fail: bool, touch: bool) -> None:
            """``touch``: first load a collection inside the block (if it raises, unloaded again)."""
            if touch and (not self._touch(data) or not self.frames):
                return  # a failed autoflush ended the block
            cm, saved, held = self.frames[-1]
            _note(f"end savepoint: {'raise' if fail else 'ok'}")
            if fail:
                self.frames.pop()
                assert cm.__exit__(Boom, Boom(), None) is False
                self.restore_frame(saved, held)
                return
            pred = self.predict()
            if pred["stale"]:
                self.frames.pop()
                with pytest.raises(errors.StaleDataError):
                    cm.__exit__(None, None, None)
                self.restore_frame(saved, held)
                return
            self.frames.pop()
            early = self._flush_loads()
            cm.__exit__(None, None, None)
            self.apply_flush(pred)
            self._sync_loaded(early)
            self.check_memory()
            self.check_database(in_transaction=True)

        def restore_frame(self, saved: dict[str, Any], held: dict[int, Any]) -> None:
            """The savepoint's state: objects added inside are expunged, the rest as they were.

            Collections loaded at the savepoint get its members back; one first loaded inside the
            block is unloaded again (its edits discarded). Objects the block merely loaded stay
            (see _reload(nested=True)): the identity map still serves them.
            """
            for o in self.owners:
                if self.mem_list.get(o) is not None and o in saved["mem_list"] and saved["mem_list"][o] is None:
                    _note("failed savepoint: collection loaded inside unloaded")
            if any(u not in saved["tx_new"] and u not in self.tx_new for u in held):
                _note("failed savepoint: objects loaded inside kept")
            for u in set(self.objs) - set(held):
                obj = self.objs.pop(u)
                assert obj not in self.s, f"{u}: added inside the savepoint, still in the session"
                assert obj.id is None, f"{u}: key of an object expunged by the savepoint kept"
            self.objs = dict(held)
            for k, v in saved.items():
                setattr(self, k, copy.deepcopy(v))
            self._mirror()
            self.check_memory()
            self.check_identity_map()
            self.check_database(in_transaction=True)

    return SessionMachine


@pytest.mark.parametrize("config", CONFIGS)
def test_session_against_a_model(backend, make_db, config):
    """Random sessions of work agree with a plain-dict model, in memory and in the database."""
    owner_mapper, pug_mapper = make_mappers(config)
    db = make_db(owner_mapper, pug_mapper)
    conn = backend.raw_connect()

    def raw(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if backend.name != "sqlite":
            sql = sql.replace("%", "%%").replace("?", "%s")
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            cur.close()
        if backend.name == "sqlite":
            conn.commit()
        return rows

    machine = build_machine(db, backend, config, pug_mapper, raw)
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=EXAMPLES or CI_EXAMPLES[backend.name],
                stateful_step_count=STEPS or 30,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                database=None,
                report_multiple_bugs=False,
            ),
        )
    finally:
        conn.close()
        if STATS is not None:
            print(f"\n{backend.name}-{config}:", dict(sorted(STATS.items())))
            STATS.clear()


# -- regressions: the bugs the machine found, each as its smallest example -------------------------
#
# The state machine above found each of these; all are fixed. The machine walks into their states
# and checks them like any other, and each test below keeps its bug from coming back unnoticed.


def _pug_rows(backend):
    return sorted(backend.raw(f"SELECT name, owner_id FROM {backend.q('mb_pugs')}"), key=lambda r: r[0])


def _tom_and_ann(db, *pugs):
    with db.session() as s:
        s.add(MbOwner("Tom", pugs=[MbPug(name) for name in pugs]))
        s.add(MbOwner("Ann"))


@pytest.mark.parametrize("side", ["reference", "collection"])
def test_child_moved_away_from_a_deleted_parent_survives(backend, make_db, side):
    """Either side moves a child (guide, 'Editing either side'), and a moved child is not the
    deleted parent's any more. (Was: its row was deleted while memory showed it in Ann's
    collection, and a later flush of that collection inserted it again.)"""
    db = make_db(*make_mappers("all"))
    _tom_and_ann(db, "Cody")
    with db.session() as s:
        tom, ann = s.query(MbOwner).order_by("id").include("pugs").all()
        cody = tom.pugs[0]
        s.delete(tom)
        if side == "reference":
            cody.owner = ann
        else:
            ann.pugs.append(cody)  # not removed from tom.pugs by hand
        s.flush()
        assert cody.owner is ann and ann.pugs == [cody]  # what memory says ...
    assert _pug_rows(backend) == [("Cody", ann.id)]  # ... and the database agrees


def test_child_moved_away_from_a_parent_deleted_with_unloaded_children_survives(backend, make_db):
    """The same as above when tom.pugs is not loaded and no ON DELETE CASCADE spares the
    session from loading it. (Was: the cascade loaded Tom's children and deleted Cody although the
    flush moved him to Ann, who showed him in memory: owner Ann, version 1, no UPDATE written.)"""
    db = make_db(*make_mappers("all"))
    _tom_and_ann(db, "Cody")
    with db.session() as s:
        tom, ann = s.query(MbOwner).order_by("id").all()  # collections not loaded
        cody = s.query(MbPug).one()
        s.delete(tom)
        cody.owner = ann
        s.flush()
        assert cody.owner is ann
    assert _pug_rows(backend) == [("Cody", ann.id)]


def test_child_moved_by_reference_into_a_parent_deleted_in_the_same_flush_is_detached(backend, make_db):
    """Without the "delete" cascade, deleting a parent detaches the children the session holds,
    and a child that was just pointed at it is one of them. (Was: it was written with the deleted
    parent's key instead: an IntegrityError with no ON DELETE rule, a row the database deleted or
    nulled behind the session's back with CASCADE or SET NULL.)"""
    db = make_db(*make_mappers("nullify"))
    _tom_and_ann(db, "Cody")
    with db.session() as s:
        tom, ann = s.query(MbOwner).order_by("id").include("pugs").all()
        cody = tom.pugs[0]
        cody.owner = ann
        s.delete(ann)
        s.flush()
        assert cody.owner is None
    assert _pug_rows(backend) == [("Cody", None)]


def test_deleted_child_leaves_the_collection_it_was_moved_to(backend, make_db):
    """(Was: the deleted child stayed in Ann's loaded collection, and after the commit the next
    flush of that collection inserted it again, with its old key.)"""
    db = make_db(*make_mappers("nullify"))
    _tom_and_ann(db, "Cody")
    with db.session() as s:
        tom, ann = s.query(MbOwner).order_by("id").include("pugs").all()
        cody = tom.pugs[0]
        tom.pugs.remove(cody)
        ann.pugs.append(cody)
        s.delete(cody)
        s.commit()
        ann.pugs.append(MbPug("Rex"))
        s.commit()
        assert not any(p is cody for p in ann.pugs)
    assert _pug_rows(backend) == [("Rex", ann.id)]  # not Cody, deleted above, back from the dead


def test_rollback_puts_a_deleted_child_back_into_its_parents_collection(backend, make_db):
    """Guide, Rollback: 'references and the contents of loaded collections go back to the last
    commit'. (Was: the child came back, cody.owner is tom, but tom.pugs stayed without it.)"""
    db = make_db(*make_mappers("nullify"))
    _tom_and_ann(db, "Cody", "Doug")
    with db.session() as s:
        tom = s.query(MbOwner).where(name="Tom").include("pugs").one()
        cody = tom.pugs[0]
        s.delete(cody)  # or s.delete(tom) with cascade="all"
        s.flush()
        s.rollback()
        assert cody in s and cody.owner is tom
        assert [p.name for p in tom.pugs] == ["Cody", "Doug"]


def test_failed_savepoint_restores_a_collection_loaded_inside_it(backend, make_db):
    """Guide, Savepoints: 'If the block raises, the database and the session return to the
    savepoint'; a collection first loaded inside the block is unloaded again. (Was: it kept the
    block's removal, and the commit then applied it: Cody was deleted as an orphan although the
    block that removed him was undone.)"""
    db = make_db(*make_mappers("all"))
    _tom_and_ann(db, "Cody", "Doug")
    with db.session() as s:
        tom = s.query(MbOwner).where(name="Tom").one()  # pugs not loaded
        cody, doug = s.query(MbPug).order_by("id").all()
        with pytest.raises(Boom):
            with s.begin_nested():
                tom.pugs.remove(cody)  # loads tom.pugs inside the block
                raise Boom
        assert [p.name for p in tom.pugs] == ["Cody", "Doug"]
    assert _pug_rows(backend) == [("Cody", tom.id), ("Doug", tom.id)]


def test_failed_savepoint_keeps_objects_loaded_inside_it(backend, make_db):
    """Only objects *added* inside the block are expunged. (Was: an object loaded inside it was
    dropped from the identity map: its later changes were silently not written, and get() built
    a second object for the same row.)"""
    db = make_db(*make_mappers("nullify"))
    with db.session() as s:
        s.add(MbPug("Cody"))
    with db.session() as s:
        with pytest.raises(Boom):
            with s.begin_nested():
                cody = s.query(MbPug).one()
                raise Boom
        cody.age = 5
        s.commit()
        assert cody in s and s.get(MbPug, cody.id) is cody
    assert backend.raw(f"SELECT name, age FROM {backend.q('mb_pugs')}") == [("Cody", 5)]


def test_orphan_removed_from_both_sides_is_deleted(backend, make_db):
    """Guide, Cascades: with "orphan", 'a child removed from the collection is deleted rather than
    detached', and so is one whose reference is cleared. (Was: tom.pugs.remove(cody) alone
    deleted Cody, but also clearing cody.owner, the same edit seen from the other side, left a
    row with a NULL key instead.)"""
    db = make_db(*make_mappers("all"))
    _tom_and_ann(db, "Cody")
    with db.session() as s:
        tom = s.query(MbOwner).where(name="Tom").include("pugs").one()
        cody = tom.pugs[0]
        tom.pugs.remove(cody)
        cody.owner = None
    assert _pug_rows(backend) == []


def test_rollback_restores_a_collection_loaded_after_a_flush(backend, make_db):
    """A collection first loaded after the transaction wrote is unloaded by rollback: it loads
    again, with the committed rows. (Was: it kept what was loaded and appended: Cody, back with
    tom, was missing, and Rex, whom the rollback expunged, stayed in it, so the next commit
    inserted Rex after all.)"""
    db = make_db(*make_mappers("nullify"))
    _tom_and_ann(db, "Cody")
    with db.session() as s:
        tom = s.query(MbOwner).where(name="Tom").one()  # pugs not loaded
        cody = s.query(MbPug).one()
        cody.owner = None
        s.flush()
        tom.pugs.append(MbPug("Rex"))  # loads tom.pugs (now empty), then appends
        s.rollback()
        assert cody.owner is tom
        assert is_unloaded(tom.pugs)
        assert [p.name for p in tom.pugs] == ["Cody"]
        s.commit()
    assert _pug_rows(backend) == [("Cody", tom.id)]


def test_query_delete_takes_held_objects_out_of_loaded_collections(backend, make_db):
    """(Was: query.delete() marked the held objects deleted but left them in tom.pugs; after the
    commit, the next flush of tom.pugs inserted the deleted row again, with its old key.)"""
    db = make_db(*make_mappers("nullify"))
    _tom_and_ann(db, "Cody", "Doug")
    with db.session() as s:
        tom = s.query(MbOwner).where(name="Tom").include("pugs").one()
        assert s.query(MbPug).where(name="Cody").delete() == 1
        s.commit()
        tom.pugs.append(MbPug("Rex"))
        s.commit()
        assert [p.name for p in tom.pugs] == ["Doug", "Rex"]
    assert _pug_rows(backend) == [("Doug", tom.id), ("Rex", tom.id)]
