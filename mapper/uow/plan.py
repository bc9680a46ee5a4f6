"""Flush preparation: the save cascade, relation edits reconciled into links, association
objects, and what deleting objects does to the rows that reference them.

It reads the session's tracker and decides; the only I/O is through what it is handed: the
relation loader (a delete cascade loads the children it must delete) and the connection (the
keys of rows a delete reaches, and whether an association pair exists already).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import errors
from ..engine import Connection
from ..lazy import is_unloaded, set_member
from ..mapping import ClassMapping, RelationInfo
from ..relations import HasMany
from ..schema import Column
from ..scopes import soft_deleting
from ..state import DELETED, DETACHED, PENDING, PERSISTENT, ObjectState
from .cascade import (
    DeleteEdge,
    JunctionOp,
    Link,
    Move,
    RelationPlan,
    delete_targets,
    label,
    reachable_unmanaged,
    reconcile,
    refuse_null_links,
    relations_changed,
)
from .persister import ParentOp
from .tracker import Tracker

if TYPE_CHECKING:
    from ..graph import GraphLoader

__all__ = ["FlushPlanner"]

#: ``ObjectState.rel`` default that tells a relation that is not loaded from one that is None.
_NOT_LOADED: Any = object()


class FlushPlanner:
    """Plans one flush of a session (steps 2 to 5 of the flush pipeline).

    Attributes:
        t: the session's tracker.
        graph: the session's relation loader (loads the children a delete cascade needs).
        connection: the session's connection, for the few reads planning needs.
    """

    def __init__(self, tracker: Tracker, graph: GraphLoader, connection: Callable[[], Connection]) -> None:
        self.t = tracker
        self.graph = graph
        self.connection = connection
        #: New objects the running flush's cascades dropped (never inserted): like deleted ones,
        #: they leave the loaded collections of living objects after the flush.
        self.dropped: list[ObjectState] = []

    def prepare(self) -> tuple[RelationPlan, list[ParentOp]]:
        """The relation plan of the next flush and the set-based writes its deletes need.

        Raises:
            FlushError: a new object behind a relation without "save", contradicting sides,
                a child that cannot be detached or deleted.
            SessionError, DuplicateIdentityError: a new object the save cascade reaches is
                managed by another session, or has the key of one already managed.
        """
        self.dropped.clear()
        related = self._save_cascade()
        plan = reconcile(related, self.t.lookup, self.t.relation_ops)
        plan.touched = related
        for st in plan.orphans:
            self._doom(st)
        created = [(op, made) for op in self._unlinked(plan.assoc_add) if (made := self._add_association(op, plan)) is not None]
        for op in plan.assoc_remove:
            self._remove_association(op)
        ops = self._cascade_deletes(plan)
        self._drop_dead_associations(created)
        if plan.junction_add or plan.junction_remove:
            # A new object the delete cascade dropped is never inserted: its pairs have no row.
            # (The save cascade above has added every other end, so none is unmanaged here.)
            held = self.t.lookup
            plan.junction_add = [op for op in plan.junction_add if held(op.source) is not None and held(op.target) is not None]
            plan.junction_remove = [op for op in plan.junction_remove if held(op.source) is not None and held(op.target) is not None]
        refuse_null_links(plan, self.t.lookup)
        self._sync_embedded()
        return plan, ops

    def _sync_embedded(self) -> None:
        """New objects' value objects (Embedded) into their hidden values, which the INSERTs
        read (persistent ones are taken apart by the ``changed`` scan)."""
        for st in self.t.new.values():
            sync = self.t.spec(st.mapping).embedded
            if sync is not None:
                sync.sync((st,))

    def _doom(self, st: ObjectState) -> bool:
        """Mark a state deleted by a cascade; a new one is dropped instead, and remembered so that
        it leaves the loaded collections of living objects after the flush (see ``dropped``).

        Returns whether the state newly left the flush's writes (marked deleted, or dropped): its
        own children are the cascade's next step either way.
        """
        if st.status == PENDING:
            self.dropped.append(st)
            self.t.mark_deleted(st)
            return True
        return self.t.mark_deleted(st)

    def _save_cascade(self) -> list[ObjectState]:
        """New objects reachable from managed ones join the unit of work; returns the states to reconcile."""
        related = self._related_states()
        queue = list(related)
        while queue:
            found = reachable_unmanaged(queue, self.t.states)
            queue = []
            states = self.t.states if found else self.t.by_id
            for obj, info in found:
                if "save" not in info.cascade:
                    msg = (
                        f"{info.name} refers to {obj!r}, which is not in the session; add it with "
                        f"session.add(), or give {info.name} the 'save' cascade"
                    )
                    raise errors.FlushError(msg)
                self.t.add(obj, states)
                st = states[id(obj)]
                queue.append(st)
                related.append(st)
        return related

    def _related_states(self) -> list[ObjectState]:
        """Pending states, and persistent ones whose loaded relations differ from their snapshot.

        Objects marked for deletion count too: a child appended to (or removed from) the
        collection of a parent deleted in this flush was moved by that edit, and the delete
        then deletes or detaches it with the parent's other children.
        """
        out = list(self.t.new.values())
        for m, states in self.t.identity.items():
            if m.relations:
                try:
                    candidates = self.t.spec(m).relation_candidates(states.values())
                except AttributeError:  # an attribute deleted from an object: the full test copes
                    candidates = [st for st in states.values() if st.status == PERSISTENT]
                out += relations_changed(list(m.relations.values()), candidates)
        doomed: dict[ClassMapping[Any], list[ObjectState]] = {}
        for st in self.t.deleted.values():
            if st.mapping.relations:
                doomed.setdefault(st.mapping, []).append(st)
        for m, sts in doomed.items():
            out += relations_changed(list(m.relations.values()), sts)
        return out

    def _unlinked(self, ops: list[JunctionOp]) -> list[JunctionOp]:
        """The association pairs to create: those not linked already.

        A pair is linked when the session holds its association object, or, for two
        persistent ends whose collection was not loaded (so it cannot tell), when the table
        has the row: one SELECT per association class and chunk finds those.
        """
        out: list[JunctionOp] = []
        asked: dict[RelationInfo, list[tuple[tuple[Any, ...], JunctionOp]]] = {}
        for op in ops:
            src, tgt = self.t.lookup(op.source), self.t.lookup(op.target)
            coll = getattr(op.source, op.info.key, None)
            if src is None or tgt is None or PENDING in (src.status, tgt.status) or (coll is not None and not is_unloaded(coll)):
                out.append(op)  # a new end has no links; a loaded collection knew its members
                continue
            key = tuple(self.t.spec(src.mapping).get(src, c.key) for c in op.info.ref_cols) + tuple(
                self.t.spec(tgt.mapping).get(tgt, c.key) for c in op.info.other_ref_cols
            )
            asked.setdefault(op.info, []).append((key, op))
        for info, pairs in asked.items():
            linked = self._linked_pairs(info, [key for key, _ in pairs])
            out += [op for key, op in pairs if key not in linked]
        return out

    def _linked_pairs(self, info: RelationInfo, keys: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        """Which of these (source key + target key) pairs an association table links now."""
        am: ClassMapping[Any] = info.through  # type: ignore[assignment]
        spec = self.t.spec(am)
        cols = info.fk_cols + info.other_cols
        held: dict[tuple[Any, ...], bool] = {}
        for st in self.t.identity.for_mapping(am).values():
            if st.status in (PERSISTENT, DELETED):
                held[tuple(spec.get(st, c.key) for c in cols)] = st.status == PERSISTENT
        linked = {key for key in keys if held.get(key)}
        ask = [key for key in keys if key not in held]
        if ask:
            conn = self.connection()
            procs = [conn.dialect.result_processor(c.type) for c in cols]
            for chunk in self.graph.chunks(ask, len(cols)):
                sql = conn.compiler.select_by_keys(am.table, cols, cols, len(chunk))
                for row in conn.fetchall(sql, conn.dialect.key_params(cols, chunk)):
                    linked.add(tuple(v if p is None else p(v) for p, v in zip(procs, row)))
        return linked

    def _drop_dead_associations(self, created: list[tuple[JunctionOp, ObjectState]]) -> None:
        """Association objects this flush created for a pair whose end it deletes (or drops, a
        new end the delete cascade took) are dropped.

        Their row would reference a deleted row (and go with it, by ON DELETE CASCADE or the
        flush's own delete), or a row never inserted, so the object would stay managed without a
        row and put the pair back into the loaded collections. A soft-deleted end keeps its row,
        and the pair.
        """
        for op, st in created:
            for end in (op.source, op.target):
                est = self.t.lookup(end)  # None: a new end the cascade dropped
                if est is None or (est.status == DELETED and not soft_deleting(est)):
                    self._doom(st)
                    break

    def _add_association(self, op: JunctionOp, plan: RelationPlan) -> ObjectState | None:
        """A target added to a BelongsToMany through a class: create the association object
        (returns its state; None when the user created it already)."""
        info = op.info
        am = info.through
        assert am is not None  # an association pair
        to_one = self._association_ends(op)
        for st in self.t.new.values():
            if st.mapping is am and to_one and all(getattr(st.obj, k, None) is v for k, v in to_one.items()):
                return None  # the user created this association object already
        klass: Any = am.cls
        obj = object.__new__(klass) if am.plain_new else klass.__new__(klass)
        spec = self.t.spec(am)
        for d in am.field_defaults:
            value = d.factory(obj) if d.factory is not None and d.takes_self else (d.factory() if d.factory is not None else d.value)
            spec.setattr(obj, d.name, value)
        for name in am.domain_attributes:
            if not hasattr(obj, name):
                spec.setattr(obj, name, None)
        for key, value in to_one.items():
            spec.setattr(obj, key, value)
        self.t.add(obj, self.t.states)
        st = self.t.states[id(obj)]
        plan.touched.append(st)
        plan.links[id(st)] = [
            Link(info.fk_cols, info.ref_cols, op.source, info),
            Link(info.other_cols, info.other_ref_cols, op.target, info),
        ]
        src = self.t.lookup(op.source)
        if src is not None:
            for r in src.mapping.relations.values():
                if r.kind is HasMany and r.target is am and r.edge == (am.table.name, tuple(c.name for c in info.fk_cols)):
                    coll = getattr(op.source, r.key, None)
                    if coll is not None and not is_unloaded(coll):
                        set_member(coll, obj, True)
        return st

    def _remove_association(self, op: JunctionOp) -> None:
        """A target removed from a BelongsToMany through a class: delete the held association objects."""
        info = op.info
        am = info.through
        assert am is not None  # an association pair
        src, tgt = self.t.lookup(op.source), self.t.lookup(op.target)
        if src is None or tgt is None:
            return
        want = [self.t.spec(src.mapping).get(src, c.key) for c in info.ref_cols] + [
            self.t.spec(tgt.mapping).get(tgt, c.key) for c in info.other_ref_cols
        ]
        spec = self.t.spec(am)
        for st in list(self.t.identity.for_mapping(am).values()):
            if st.status == PERSISTENT and [spec.get(st, c.key) for c in info.fk_cols + info.other_cols] == want:
                self._doom(st)
        # An association object of the pair created since the last flush is dropped too: its row
        # would be inserted and then deleted by the pair's removal, leaving it managed without one.
        to_one = self._association_ends(op)
        for st in list(self.t.new.values()):
            if st.mapping is am and to_one and all(getattr(st.obj, k, None) is v for k, v in to_one.items()):
                self._doom(st)

    @staticmethod
    def _association_ends(op: JunctionOp) -> dict[str, object]:
        """The association class's references to the pair's two ends, by attribute name."""
        info = op.info
        am = info.through
        assert am is not None  # an association pair
        edges = {tuple(c.name for c in info.fk_cols): op.source, tuple(c.name for c in info.other_cols): op.target}
        return {r.key: edges[r.edge[1]] for r in am.relations.values() if r.kind.reference and r.edge[1] in edges}

    def _cascade_deletes(self, plan: RelationPlan) -> list[ParentOp]:
        """Delete or detach the children of deleted parents: loaded, held, or only in the database."""
        ops: list[ParentOp] = []
        done: set[int] = set()
        # New objects dropped so far (orphans never inserted) have children of their own too.
        queue = [*self.t.deleted.values(), *self.dropped]
        # A child this flush moves to another parent, or takes out of its parent (by either
        # side), is no longer that parent's: the old parent's delete cascade does not take it,
        # whatever its collection (loaded now, or loaded by this cascade) still shows.
        moved = {(id(mv.child.obj), mv.edge): mv.new for mv in plan.moves} if queue else {}
        while queue:
            batch = [st for st in queue if id(st) not in done]
            queue = []
            for st in batch:
                done.add(id(st))
            need: dict[Any, list[ObjectState]] = {}
            for st in batch:
                soft = soft_deleting(st)
                for info, members in delete_targets(st):
                    if soft and info.target.soft_delete is None:
                        continue  # the parent's row stays, and so do these (see docs/decisions.md)
                    if members is None:
                        # A soft delete is an UPDATE: no ON DELETE rule reaches the children.
                        if soft or info.fk_rule("on_delete") != "CASCADE":
                            need.setdefault(info, []).append(st)
                        continue
                    queue += self._doom_children(st, info, members, moved)
            for info, sts in need.items():
                # No database cascade: the children must be loaded to be deleted (one query).
                self.graph.load(sts, info)
                for st in sts:
                    value: Any = getattr(st.obj, info.key, None)
                    items: list[Any] = list(value) if info.to_many and value is not None else ([value] if value is not None else [])
                    queue += self._doom_children(st, info, items, moved)
            # Per mapping: the rows going (deleted, not soft), and the new objects dropped.
            deleted: dict[ClassMapping[Any], list[ObjectState]] = {}
            dropped: dict[ClassMapping[Any], list[ObjectState]] = {}
            dropped_ids = {id(st) for st in self.dropped}
            for st in batch:
                if st.status == DELETED and not soft_deleting(st):
                    deleted.setdefault(st.mapping, []).append(st)
                elif st.status == DETACHED and id(st) in dropped_ids:
                    dropped.setdefault(st.mapping, []).append(st)
            for m, parents in deleted.items():
                for edge in self.t.edges(m):
                    queue += self._detach_children(m, parents, edge, plan, ops)
            for m, parents in dropped.items():
                for edge in self.t.edges(m):
                    queue += self._detach_from_dropped(parents, edge, plan)
        return ops

    def _detach_from_dropped(self, parents: list[ObjectState], edge: DeleteEdge, plan: RelationPlan) -> list[ObjectState]:
        """New objects this flush links to a new parent it drops: the parent never gets a row,
        so they go as its children would (deleted with the "delete" cascade or ON DELETE
        CASCADE, else detached)."""
        queued: list[ObjectState] = []
        if edge.holder is not None:
            self._detach_moved_in(parents, edge, plan, queued, edge.deletes or edge.rule == "CASCADE")
        return queued

    def _doom_children(self, st: ObjectState, info: RelationInfo, members: list[Any], moved: dict[Any, Any]) -> list[ObjectState]:
        """Mark the members of a deleted parent's "delete" relation deleted; returns those newly marked."""
        out: list[ObjectState] = []
        for child in members:
            if moved.get((id(child), info.edge), st.obj) is not st.obj:
                continue  # moved to another parent, or taken out of this one
            cst = self.t.lookup(child)
            if cst is None:
                continue
            if not soft_deleting(st):
                cst.hard_delete = True  # the parent's row goes: a row referencing it cannot stay
            if self._doom(cst):
                out.append(cst)
        return out

    def _detach_children(
        self, m: ClassMapping[Any], parents: list[ObjectState], edge: DeleteEdge, plan: RelationPlan, ops: list[ParentOp]
    ) -> list[ObjectState]:
        """What deleting ``parents`` does to the rows that reference them through ``edge``.

        Held children are deleted (a link, a "delete" cascade or ON DELETE CASCADE), detached
        (their key set to NULL) or refused (NOT NULL, no rule); the rows the session does not
        hold get a set-based write (``_plan_unheld_children``). Returns the newly deleted states.
        """
        delete_mode = edge.deletes
        rule = edge.rule
        if rule in ("RESTRICT", "NO ACTION") and not delete_mode:
            return []  # the database refuses the delete while children exist: its error stands
        keys = [self._key_by(st, edge.ref_cols) for st in parents]
        queued: list[ObjectState] = []
        holder = edge.holder
        if holder is not None:
            queued = self._detach_held(m, holder, set(keys), edge, plan, delete_mode or rule == "CASCADE")
            self._detach_moved_in(parents, edge, plan, queued, delete_mode or rule == "CASCADE")
        if edge.owning is not None and not edge.link and (holder is None or holder.soft_delete is None):
            # Parents whose collection is loaded had every child handled above (a collection
            # of soft-deletable children leaves out those soft-deleted: they need the write).
            owning = edge.owning.key
            keys = [k for k, st in zip(keys, parents) if st.rel(owning, _NOT_LOADED) is _NOT_LOADED]
        self._plan_unheld_children(edge, keys, ops, {m})
        return queued

    def _detach_held(
        self, m: ClassMapping[Any], holder: ClassMapping[Any], keyset: set[Any], edge: DeleteEdge, plan: RelationPlan, delete: bool
    ) -> list[ObjectState]:
        """Held rows of ``holder`` that reference a deleted parent: deleted, detached or refused."""
        spec = self.t.spec(holder)
        cols = edge.cols
        queued: list[ObjectState] = []
        for h in list(self.t.identity.for_mapping(holder).values()):
            if h.status != PERSISTENT:
                continue
            fk = spec.get(h, cols[0].key) if len(cols) == 1 else tuple(spec.get(h, c.key) for c in cols)
            if fk not in keyset:
                continue
            if any(lk.info.edge == edge.key for lk in plan.links.get(id(h), ())):
                continue  # moved to another parent, or taken out of this one, in this flush
            if delete:
                if self._doom(h):
                    queued.append(h)
            elif edge.rule != "SET NULL" and not all(c.nullable for c in cols):
                msg = (
                    f"cannot delete {m.cls.__name__}: {h.obj!r} still references it through "
                    f"{edge.name}, whose key is NOT NULL with no ON DELETE rule; give the relation "
                    "cascade='delete' (or 'all'), or move or delete the child first"
                )
                raise errors.FlushError(msg)
            else:
                plan.links[id(h)] = [Link(cols, edge.ref_cols, None, edge.infos[0])]
                plan.moves.append(Move(h, edge.key, None, []))
        return queued

    def _detach_moved_in(
        self, parents: list[ObjectState], edge: DeleteEdge, plan: RelationPlan, queued: list[ObjectState], delete: bool
    ) -> None:
        """Children this flush moves to a parent it deletes: what the delete does to its children.

        Their keys still name the old parent, so the scan of held children above misses them;
        linked as planned, they would reference a deleted row. With the "delete" cascade (or
        ON DELETE CASCADE) they are deleted, otherwise detached (NOT NULL keys are refused).
        """
        ids = {id(st.obj) for st in parents}
        for move in plan.moves:
            h, new = move.child, move.new
            if move.edge != edge.key or new is None or id(new) not in ids or h.status not in (PENDING, PERSISTENT):
                continue
            links = [lk for lk in plan.links.get(id(h), ()) if lk.info.edge != edge.key]
            if delete:
                if self._doom(h):
                    queued.append(h)
                plan.links[id(h)] = links
                move.new, move.old_parents = None, [*move.old_parents, new]
                continue
            if not all(c.nullable for c in edge.cols):
                msg = (
                    f"cannot delete {label(new, self.t.lookup)}: {label(h.obj, self.t.lookup)} was just linked to it through {edge.name}, "
                    "whose key is NOT NULL with no ON DELETE rule; link it to another parent, or give the "
                    "relation cascade='delete' (or 'all')"
                )
                raise errors.FlushError(msg)
            plan.links[id(h)] = [*links, Link(edge.cols, edge.ref_cols, None, edge.infos[0])]
            move.new, move.old_parents = None, [*move.old_parents, new]

    def _plan_unheld_children(self, edge: DeleteEdge, keys: list[Any], ops: list[ParentOp], seen: set[Any]) -> None:
        """Set-based writes for rows referencing deleted parents that the session does not hold.

        Rows that will be deleted (by the database's ON DELETE CASCADE or by a set-based
        DELETE) may have children of their own that need work: their keys are selected (no
        objects are built) and the same planning applies one level down. The links of a
        BelongsToMany are always deleted by the flush, before their ends, whatever rule the
        database has for them.
        """
        if not keys:
            return
        holder = edge.holder
        delete_mode = edge.deletes
        rule = edge.rule
        cols = edge.cols
        if not edge.link and (rule == "SET NULL" or (rule in ("RESTRICT", "NO ACTION") and not delete_mode)):
            return
        if holder is not None and (rule == "CASCADE" or delete_mode) and holder not in seen and self._needs_unheld_work(holder):
            # Rows the session holds were handled in memory: deleted with their parent (their
            # own delete does their children), or moved away by this flush (they stay).
            held = self.t.identity.for_mapping(holder)
            child_keys = [
                k for k in self._child_keys(holder, cols, keys)
                if (h := held.get(k)) is None or h.status not in (PERSISTENT, DELETED)
            ]
            for child_edge in self.t.edges(holder):
                self._plan_unheld_children(child_edge, child_keys, ops, seen | {holder})
        if rule == "CASCADE" and not edge.link:
            return
        info = edge.owning or edge.infos[0]
        if delete_mode:
            ops.append(ParentOp("delete", edge.table, cols, keys, info))
        elif all(c.nullable for c in cols):
            ops.append(ParentOp("nullify", edge.table, cols, keys, info))
        else:
            ops.append(ParentOp("check", edge.table, cols, keys, info))

    def _needs_unheld_work(self, m: ClassMapping[Any]) -> bool:
        """Whether deleting rows of ``m`` needs the session's help for their children."""
        for edge in self.t.edges(m):
            rule = edge.rule
            if edge.link or rule not in ("CASCADE", "SET NULL", "RESTRICT", "NO ACTION"):
                return True
            if rule == "CASCADE" and edge.holder is not None and edge.holder is not m:
                if self._needs_unheld_work(edge.holder):
                    return True
        return False

    def _key_by(self, st: ObjectState, cols: list[Column]) -> Any:
        """A state's values of ``cols`` (its identity key when they are its primary key)."""
        if cols == st.mapping.pk:
            return st.key
        return self.graph.values(st, cols)

    def _child_keys(self, holder: ClassMapping[Any], cols: list[Any], keys: list[Any]) -> list[Any]:
        """Primary keys of the ``holder`` rows whose ``cols`` match ``keys`` (one query per chunk)."""
        conn = self.connection()
        procs = [conn.dialect.result_processor(c.type) for c in holder.pk]
        out: list[Any] = []
        for chunk in self.graph.chunks(keys, len(cols)):
            sql = conn.compiler.select_by_keys(holder.table, holder.pk, cols, len(chunk))
            for row in conn.fetchall(sql, conn.dialect.key_params(cols, chunk)):
                vals = [v if p is None else p(v) for p, v in zip(procs, row)]
                out.append(vals[0] if len(vals) == 1 else tuple(vals))
        return out

    def dirty(self, plan: RelationPlan) -> list[ObjectState]:
        """Persistent states the flush must visit: changed columns, or a foreign key to derive.

        Runs over every managed object at each flush and commit, through the mapping's
        generated ``changed`` scan (see ``SnapshotSpec``).
        """
        links = plan.links
        out: list[ObjectState] = []
        for m, states in self.t.identity.items():
            changed = self.t.spec(m).changed(states.values())
            if links:
                ids = {id(st) for st in changed}
                out += [st for st in states.values() if st.status == PERSISTENT and (id(st) in ids or id(st) in links)]
            else:
                out += changed
        return out
