"""What commit, rollback and a failed savepoint do to memory: committed values, relations and
statuses put back, objects added since expunged, objects loaded after a write read again.

The only I/O is reading rows again, through the connection it is handed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import errors
from ..engine import Connection
from ..lazy import is_unloaded
from ..mapping import ClassMapping
from ..state import DELETED, DETACHED, GHOST, PENDING, PERSISTENT, ObjectState
from .tracker import Tracker

if TYPE_CHECKING:
    from ..graph import GraphLoader

__all__ = ["Frame", "Restorer"]


class Frame:
    """What a savepoint must restore: the snapshot of every state when it was opened."""

    __slots__ = ("name", "snaps", "states", "deleted", "new", "rels", "loaded_mark", "ops")

    def __init__(self, name: str, tracker: Tracker) -> None:
        states = tracker.states
        self.name = name
        self.snaps = {k: (st.snap, st.hsnap, st.status, st.deleted_flushed) for k, st in states.items()}
        self.rels = {k: dict(st.rels) for k, st in states.items() if st.mapping.relations and st.rels}
        self.states = set(states)
        self.deleted = dict(tracker.deleted)
        self.new = dict(tracker.new)
        self.loaded_mark = len(tracker.loaded_after_write)
        #: related() edits of unloaded collections not flushed yet: those made inside the block
        #: are undone with it.
        self.ops = list(tracker.relation_ops)


class Restorer:
    """Puts memory back to the last commit or to a savepoint, and settles a commit.

    Attributes:
        t: the session's tracker.
        graph: the session's relation loader (gives collections loaded after a snapshot a fresh
            unloaded value, and chunks the keys of rows read again).
    """

    def __init__(self, tracker: Tracker, graph: GraphLoader) -> None:
        self.t = tracker
        self.graph = graph

    def committed(self) -> None:
        """The transaction committed: what rollback would have needed is let go."""
        t = self.t
        if t.gone:
            # Only then: reading ``states`` indexes every loaded cohort, which a session that
            # only read never needs.
            states = t.states
            for st in t.gone:
                if st.status == DELETED and st.deleted_flushed and states.get(id(st.obj)) is st:
                    del states[id(st.obj)]
                    st.status = DETACHED
            t.gone.clear()
        for st in t.since_commit:
            st.committed = None
            st.crels = None
        t.since_commit.clear()
        t.tx_new.clear()
        t.wrote = False
        t.loaded_after_write.clear()

    def forget_generated_keys(self) -> None:
        """Keys the database generated in a transaction that did not commit are nobody's."""
        for st in self.t.tx_new.values():
            self.clear_generated(st)

    def clear_generated(self, st: ObjectState) -> None:
        if st.generated and st.mapping.autoinc is not None:
            self.t.spec(st.mapping).set(st, st.mapping.autoinc.key, None)
            st.generated = False

    def restore_committed(self) -> None:
        self.t.relation_ops.clear()
        self.t.wrote = False
        for st in list(self.t.tx_new.values()):
            self.clear_generated(st)
            self.t.forget(st)
        self.t.tx_new.clear()
        self.t.new.clear()
        self.t.deleted.clear()
        self.t.identity.clear()
        self.t.since_commit.clear()
        self.t.gone.clear()
        for st in self.t.states.values():
            if st.status == GHOST:
                self.t.identity.add(st)
                continue
            if st.committed is not None:
                snap, hsnap = st.committed
                st.committed = None
            elif st.snap is not None:
                snap, hsnap = st.snap, st.hsnap
            else:
                continue
            self._revert(st, snap, hsnap)

    def _revert(self, st: ObjectState, snap: tuple[Any, ...] | None, hsnap: tuple[Any, ...] | None) -> None:
        """Put a state back to these values and its committed relations, persistent and held."""
        self._restore_values(st, snap, hsnap)
        if st.mapping.relations:
            self._restore_relations(st, st.crels if st.crels is not None else dict(st.rels))
            st.crels = None
        st.status = PERSISTENT
        st.deleted_flushed = False
        st.key = self.t.spec(st.mapping).key_of(st)
        self.t.identity.add(st)

    def _restore_relations(self, st: ObjectState, rels: dict[str, Any]) -> None:
        """Put loaded relations back to a snapshot: references and collection contents."""
        spec = self.t.spec(st.mapping)
        for info in st.mapping.relations.values():
            if info.key not in rels:
                if info.to_many and st.status != PENDING:
                    current = getattr(st.obj, info.key, None)
                    if current is not None and not is_unloaded(current):
                        # Loaded after the snapshot, it may show rows the rollback undid, or
                        # edits the rollback discards: it loads again on next use.
                        spec.setattr(st.obj, info.key, self.graph.unloaded(st, info))
                continue
            value = rels[info.key]
            current = getattr(st.obj, info.key, None)
            if not info.to_many:
                if current is not value:
                    spec.setattr(st.obj, info.key, value)
                continue
            members = list(value or ())
            if current is None or is_unloaded(current):
                spec.setattr(st.obj, info.key, info.collection(members))
            elif isinstance(current, set):
                current.clear()
                current.update(members)
            elif len(current) != len(members) or any(a is not b for a, b in zip(current, members)):
                current[:] = members
        st.rels = dict(rels)

    def _restore_values(self, st: ObjectState, snap: tuple[Any, ...] | None, hsnap: tuple[Any, ...] | None) -> None:
        spec = self.t.spec(st.mapping)
        # A loaded row's snapshot may end with its references (ObjectState.rels): not values.
        if snap is not None and spec.current(st.obj) != snap[: len(spec.names)]:
            spec.restore(st.obj, snap)
        st.snap = snap
        if hsnap is not None and st.hidden is not None:
            st.hidden = hsnap
            if spec.embedded is not None:
                spec.embedded.to_object(st.obj, hsnap, spec.setattr)
        st.hsnap = hsnap

    def restore_frame(self, frame: Frame) -> None:
        loaded: list[ObjectState] = []
        for k, st in list(self.t.states.items()):
            if k in frame.states:
                continue
            if k in self.t.tx_new:
                self.clear_generated(st)
                self.t.forget(st)
            else:
                loaded.append(st)
        self.t.new = {k: st for k, st in frame.new.items() if k in self.t.states}
        self.t.deleted = dict(frame.deleted)
        self.t.relation_ops[:] = frame.ops
        self.t.identity.clear()
        for k, st in self.t.states.items():
            if k not in frame.states:
                continue  # first loaded inside the block: restored below
            snap, hsnap, status, deleted_flushed = frame.snaps[k]
            if status == GHOST and st.status != GHOST:
                loaded.append(st)  # a stand-in loaded inside the block: as below
                continue
            if status == PENDING:
                st.status = PENDING
                continue
            self._restore_values(st, snap, hsnap)
            if st.mapping.relations:
                self._restore_relations(st, frame.rels.get(k, {}))
            st.status = status
            st.deleted_flushed = deleted_flushed
            st.key = self.t.spec(st.mapping).key_of(st)
            if status == PERSISTENT or (status == DELETED and not deleted_flushed):
                self.t.identity.add(st)
        for st in loaded:
            self._restore_loaded(st)

    def reread(self, states: list[ObjectState], conn: Connection | None) -> None:
        """Read again the rows of objects loaded after the transaction wrote, once it is undone.

        They were loaded with values the rollback may have undone. One SELECT per mapping and
        chunk of keys sets their columns to what the database holds now; an object whose row
        is gone (written by the undone work itself) leaves the session. Without a usable
        connection they leave the session too: nothing can say what their values are.
        """
        by_mapping: dict[ClassMapping[Any], dict[Any, ObjectState]] = {}
        for st in states:
            if (
                self.t.states.get(id(st.obj)) is st
                and st.status in (PERSISTENT, DELETED)
                and id(st.obj) not in self.t.tx_new
                and st.key is not None
            ):
                by_mapping.setdefault(st.mapping, {})[st.key] = st
        usable = conn is not None and not conn.closed and not conn.broken
        for m, held in by_mapping.items():
            loader = self.t.loader(m)
            names = [c.key for c in loader.columns]
            found: dict[Any, dict[str, Any]] = {}
            if usable:
                assert conn is not None
                try:
                    for chunk in self.graph.chunks(list(held), len(m.pk)):
                        sql = conn.compiler.select_by_keys(m.table, loader.columns, m.pk, len(chunk))
                        for row in conn.fetchall(sql, conn.dialect.key_params(m.pk, chunk)):
                            values = dict(zip(names, loader.convert_row(row)))
                            key = values[m.pk[0].key] if len(m.pk) == 1 else tuple(values[c.key] for c in m.pk)
                            found[key] = values
                except errors.DatabaseError:
                    found = {}
            for key, st in held.items():
                by_key = found.get(key)
                if by_key is None:
                    self.t.forget(st)
                else:
                    self.t.set_row(st, by_key)
                    st.committed = None

    def _restore_loaded(self, st: ObjectState) -> None:
        """An object first loaded inside a failed savepoint stays, with the values it was loaded with.

        Its row existed before the block (unless the block's own raw SQL wrote it), so, unlike
        an object added inside the block, it is not expunged: expunging it would silently drop
        later changes to it and let get() build a second object for the same row.
        """
        snap, hsnap = st.committed if st.committed is not None else (st.snap, st.hsnap)
        st.committed = None
        self.t.deleted.pop(id(st.obj), None)
        self._revert(st, snap, hsnap)
