"""After a flush: both sides of every relation it changed brought into line in memory, deleted
objects taken out of the collections that held them, and relation snapshots taken again (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..lazy import is_unloaded, set_member
from ..mapping import ClassMapping, RelationInfo
from ..relations import HasOne
from ..state import DELETED, GHOST, PERSISTENT, ObjectState
from .cascade import Edge, JunctionOp, RelationPlan
from .execute import UnitOfWork
from .tracker import Tracker

__all__ = ["Mirror"]


class Mirror:
    """Brings memory into line with what one flush wrote (step 11 of the flush pipeline).

    Attributes:
        t: the session's tracker.
        through: BelongsToMany relations by their association mapping (the Database's).
    """

    def __init__(self, tracker: Tracker, through: Callable[[], dict[ClassMapping[Any], list[Any]]]) -> None:
        self.t = tracker
        self.through = through
        self._edge_cache: dict[tuple[ClassMapping[Any], Any], tuple[list[RelationInfo], list[RelationInfo]]] = {}

    def after_flush(
        self, plan: RelationPlan, uow: UnitOfWork, rekeyed: list[tuple[ObjectState, Any]], dropped: Sequence[ObjectState] = ()
    ) -> None:
        """Mirror the moves, junction pairs and deletes of a flush, then take relation snapshots.

        ``dropped``: new objects the flush's cascades dropped; they leave loaded collections too.
        """
        # Many children share a parent: each parent's state is looked up once.
        parent_states: dict[int, ObjectState | None] = {}
        self._moves(plan, parent_states)
        for op in plan.junction_add + plan.assoc_add:
            self._mirror_pair(op, True)
        for op in plan.junction_remove + plan.assoc_remove:
            self._mirror_pair(op, False)
        for st, old_key in rekeyed:
            self._follow_key(st, old_key)
        self.drop_deleted([*uow.deleted, *dropped] if dropped else uow.deleted)
        self.t.gone += uow.deleted
        self._associations(uow)
        self._snapshot_relations(self._touched(plan, parent_states))

    def _moves(self, plan: RelationPlan, parent_states: dict[int, ObjectState | None]) -> None:
        """Both sides of each child's move, in memory (the child's reference, the collections)."""
        settled, in_parent = plan.settled, plan.in_parent
        # Moves come grouped by mapping and edge: the child references to set, looked up per group.
        last: tuple[Any, Any] | None = None
        ref_keys: list[str] = []
        set_ref: Callable[[Any, str, Any], None] = setattr
        for move in plan.moves:
            child_state, edge, new, old_parents = move.child, move.edge, move.new, move.old_parents
            if new is not None and not old_parents:
                k = id(child_state)
                if k in settled:
                    continue
                if k in in_parent:  # the collection holds it already: point the child at its parent
                    m = child_state.mapping
                    if last is None or last[0] is not m or last[1] != edge:
                        last = (m, edge)
                        ref_keys = [info.key for info in self._edge_relations(m, edge)[0]]
                        set_ref = self.t.spec(m).setattr
                    for key in ref_keys:
                        set_ref(child_state.obj, key, new)
                    continue
            self._mirror(child_state, edge, new, old_parents, parent_states)

    def _associations(self, uow: UnitOfWork) -> None:
        """Association objects written directly: the loaded plain lists of targets follow."""
        through = self.through()
        if through:
            for st in uow.inserted:
                for info in through.get(st.mapping, ()):
                    self._mirror_association(st, info, True)
            for st in uow.deleted:
                for info in through.get(st.mapping, ()):
                    self._mirror_association(st, info, False)

    def _touched(self, plan: RelationPlan, parent_states: dict[int, ObjectState | None]) -> dict[int, ObjectState]:
        """What this flush looked at or changed: only their relation snapshots can have moved."""
        touched: dict[int, ObjectState] = {id(st): st for st in plan.touched}
        parents_seen: set[int] = set()
        for move in plan.moves:
            child_state, new, old_parents = move.child, move.new, move.old_parents
            touched[id(child_state)] = child_state
            for parent in (new, *old_parents) if old_parents else (new,):
                if parent is None or id(parent) in parents_seen:
                    continue
                parents_seen.add(id(parent))
                pst = parent_states[id(parent)] if id(parent) in parent_states else self.t.lookup(parent)
                if pst is not None:
                    touched[id(pst)] = pst
        for op in plan.junction_add + plan.assoc_add + plan.junction_remove + plan.assoc_remove:
            for obj in (op.source, op.target):
                ost = self.t.lookup(obj)
                if ost is not None:
                    touched[id(ost)] = ost
        return touched

    def _snapshot_relations(self, touched: dict[int, ObjectState]) -> None:
        """Take the relation snapshots of the persistent states a flush touched."""
        tx_new = self.t.tx_new
        # Per mapping: (attribute, is a reference, is to-many), looked up once per flush.
        plans: dict[ClassMapping[Any], list[tuple[str, bool, bool]]] = {}
        for st in touched.values():
            if st.status != PERSISTENT or not st.mapping.relations:
                continue
            if st.crels is None and id(st.obj) not in tx_new:
                self.t.keep_committed_rels(st)
            plan_m = plans.get(st.mapping)
            if plan_m is None:
                plan_m = plans[st.mapping] = [
                    (info.key, info.kind.reference, info.to_many) for info in st.mapping.relations.values()
                ]
            obj = st.obj
            rels = st.rels
            for key, reference, to_many in plan_m:
                value = getattr(obj, key, None)
                if reference:
                    rels[key] = value
                elif value is not None and is_unloaded(value):
                    continue
                elif to_many:
                    rels[key] = tuple(value) if value is not None else ()
                else:
                    rels[key] = value

    def _mirror(self, child_state: ObjectState, edge: Edge, new: object, old_parents: list[Any], parent_states: dict[int, ObjectState | None]) -> None:
        child = child_state.obj
        refs, _ = self._edge_relations(child_state.mapping, edge)
        for info in refs:
            self.t.spec(child_state.mapping).setattr(child, info.key, new)
        ends = [(p, False) for p in old_parents if p is not None and p is not new] if old_parents else []
        # A child deleted in this flush joins no parent: in a HasOne it would take the place of
        # the parent's living target, which drop_deleted() would then clear.
        if new is not None and child_state.status != DELETED:
            ends.append((new, True))
        for parent, adding in ends:
            k = id(parent)
            if k in parent_states:
                pst = parent_states[k]
            else:
                pst = parent_states[k] = self.t.lookup(parent)
            if pst is None or pst.status == GHOST:
                # A stand-in has nothing loaded to mirror into (touching it would load it); its
                # collections load after this flush, from the rows it wrote.
                continue
            for info in self._edge_relations(pst.mapping, edge)[1]:
                value = getattr(parent, info.key, None)
                if value is not None and is_unloaded(value):
                    continue
                if info.kind is HasOne:
                    if adding:
                        self.t.spec(pst.mapping).setattr(parent, info.key, child)
                    elif value is child:
                        self.t.spec(pst.mapping).setattr(parent, info.key, None)
                    continue
                if value is not None:
                    set_member(value, child, adding)

    def _edge_relations(self, m: ClassMapping[Any], edge: Edge) -> tuple[list[RelationInfo], list[RelationInfo]]:
        """The BelongsTo relations of ``m`` on a foreign key, and its HasMany/HasOne ones (cached)."""
        found = self._edge_cache.get((m, edge))
        if found is None:
            infos = [i for i in m.relations.values() if i.edge == edge]
            found = self._edge_cache[(m, edge)] = (
                [i for i in infos if i.kind.reference],
                [i for i in infos if i.kind.children],
            )
        return found

    def _mirror_association(self, st: ObjectState, info: RelationInfo, adding: bool) -> None:
        """An association object written directly: the loaded plain list of targets follows."""
        ends: dict[tuple[str, ...], Any] = {}
        for ref in st.mapping.relations.values():
            if ref.kind.reference:
                ends[ref.edge[1]] = getattr(st.obj, ref.key, None)
        source = ends.get(tuple(c.name for c in info.fk_cols))
        target = ends.get(tuple(c.name for c in info.other_cols))
        src = self.t.lookup(source) if source is not None else None
        if src is None or target is None or src.status == GHOST:
            return
        coll = getattr(source, info.key, None)
        if coll is None or is_unloaded(coll):
            return
        if set_member(coll, target, adding):
            self.t.keep_committed_rels(src)  # rollback and savepoints return to the snapshot before
            src.rels[info.key] = tuple(coll)

    def drop_deleted(self, deleted: Sequence[ObjectState]) -> None:
        """Deleted objects leave every loaded collection (and HasOne) of the objects the session holds.

        Every holder is looked at, not only the parent the child's snapshot names: a child may
        have been moved into another collection in the same flush, and a deleted object left in
        a collection would be inserted again by the save cascade of a later flush.
        """
        if not deleted:
            return
        gone: dict[ClassMapping[Any], set[int]] = {}
        for st in deleted:
            gone.setdefault(st.mapping, set()).add(id(st.obj))
        for m, states in self.t.identity.items():
            infos = [i for i in m.relations.values() if not i.kind.reference and i.target in gone]
            if not infos:
                continue
            for hst in list(states.values()):
                if hst.status == GHOST:
                    continue
                obj = hst.obj
                for info in infos:
                    ids = gone[info.target]
                    value = getattr(obj, info.key, None)
                    if value is None or is_unloaded(value):
                        continue
                    if info.to_many:
                        for x in [x for x in value if id(x) in ids]:
                            self._discard(hst, info, x)
                    elif id(value) in ids:
                        self._discard(hst, info, value)

    def _discard(self, holder: ObjectState, info: RelationInfo, obj: object) -> None:
        value = getattr(holder.obj, info.key, None)
        if value is None or is_unloaded(value):
            return
        self.t.keep_committed_rels(holder)
        spec = self.t.spec(holder.mapping)
        if not info.to_many:
            if value is obj:
                spec.setattr(holder.obj, info.key, None)
                holder.rels[info.key] = None
            return
        if set_member(value, obj, False):
            holder.rels[info.key] = tuple(value)

    def _mirror_pair(self, op: JunctionOp, adding: bool) -> None:
        inverse = op.info.inverse
        if inverse is None:
            return
        coll = getattr(op.target, inverse.key, None)
        if coll is None or is_unloaded(coll):
            return
        set_member(coll, op.source, adding)

    def _follow_key(self, st: ObjectState, old_key: Any) -> None:
        """A natural key changed (ON UPDATE CASCADE moved the children): bring held children in line."""
        for edge in self.t.edges(st.mapping):
            holder = edge.holder
            if holder is None:
                continue
            spec = self.t.spec(holder)
            cols = edge.cols
            new = [self.t.spec(st.mapping).get(st, c.key) for c in edge.ref_cols]
            old = [old_key] if len(edge.ref_cols) == 1 else list(old_key)
            for h in self.t.identity.for_mapping(holder).values():
                if [spec.get(h, c.key) for c in cols] == old:
                    for c, v in zip(cols, new):
                        spec.set(h, c.key, v)
                    self.t.take(h)
