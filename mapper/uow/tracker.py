"""What a session knows about the objects it manages: states, the identity map and the lists the
unit of work keeps between flushes and commits (no I/O)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import errors
from ..identity import IdentityMap
from ..mapping import ClassMapping, Registry, RelationInfo
from ..state import DELETED, DETACHED, GHOST, NO_RELS, PENDING, PERSISTENT, ObjectState, SnapshotSpec, take_snapshots
from .cascade import DeleteEdge, delete_edges, label

if TYPE_CHECKING:
    from ..loading import Loader
    from .persister import Persister
    from .restore import Frame

__all__ = ["Tracker", "OpenTrackers", "MappingRuntime"]


class MappingRuntime(NamedTuple):
    """The objects a Database builds for one mapping on first use, shared by its sessions."""

    #: Fast reads, writes and comparisons of the mapping's columns.
    spec: SnapshotSpec
    #: The generated hydration function: rows into objects.
    loader: Loader
    #: The flush's bind processors, hooks and generated row collectors.
    persister: Persister


class OpenTrackers:
    """The trackers of the open sessions of one Database (weakly held), safe from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._trackers: weakref.WeakSet[Tracker] = weakref.WeakSet()
        #: At least the number of open sessions (a session dropped without close() stays counted
        #: until it is collected, which only costs the slower check): read without the lock by
        #: every add(), so that a lone session skips the check with one comparison.
        self.count = 0

    def add(self, tracker: Tracker) -> None:
        """Register the tracker of a session that opened."""
        with self._lock:
            if tracker not in self._trackers:
                self._trackers.add(tracker)
                self.count += 1

    def discard(self, tracker: Tracker) -> None:
        """Forget the tracker of a session that closed."""
        with self._lock:
            if tracker in self._trackers:
                self._trackers.discard(tracker)
                self.count -= 1

    def others(self, tracker: Tracker) -> list[Tracker]:
        """The open sessions' trackers besides ``tracker`` (empty at once in the common case)."""
        if self.count < 2:
            return []
        with self._lock:
            self.count = len(self._trackers)  # forget the sessions collected without close()
            return [t for t in self._trackers if t is not tracker]


class Tracker:
    """The bookkeeping of one session, shared by the session, its loaders and its unit of work.

    Attributes:
        by_id: managed states by ``id(obj)``: pending, persistent and deleted. Loads do not
            index their rows here (at tens of thousands of rows that was a third of a load):
            they queue each cohort in ``unindexed``, and the first read of ``states`` indexes
            what is queued, so a read-only session never pays it.
        unindexed: cohorts loaded since ``states`` was last read.
        identity: the identity map, one state per (mapping, key).
        new: pending states in ``add()`` order.
        deleted: persistent states marked for deletion, not yet flushed.
        tx_new: states added since the last commit (rollback expunges them).
        frames: the open savepoints, innermost last.
        since_commit: states whose committed values were set aside since the last commit.
        gone: states whose rows were deleted since the last commit.
        relation_ops: edits of unloaded collections made through ``related()``:
            (adding, parent, relation, child).
        pending_keys: keys of pending objects known at ``add()``, to refuse a second object
            with the same key.
        wrote: whether this transaction may have written: a collection loaded from then on
            shows uncommitted rows, so its loader keeps the committed relation snapshot.
        loaded_after_write: states loaded while ``wrote`` was set: their values may be
            uncommitted, so a rollback (or a failed savepoint) reads them again.
        collecting: one list per ``stream()`` batch being read and used: each receives every
            cohort loaded meanwhile, so that the batch can let go of what nothing references.
        closed: the session closed (other sessions stop asking it about their objects).
    """

    def __init__(self, registry: Registry, runtime: Callable[[ClassMapping[Any]], MappingRuntime], open_trackers: OpenTrackers) -> None:
        self.registry = registry
        self.runtime = runtime
        self.open_trackers = open_trackers
        self.by_class = registry.by_class
        self.by_id: dict[int, ObjectState] = {}
        self.unindexed: list[list[ObjectState]] = []
        self.identity = IdentityMap()
        self.new: dict[int, ObjectState] = {}
        self.deleted: dict[int, ObjectState] = {}
        self.tx_new: dict[int, ObjectState] = {}
        self.frames: list[Frame] = []
        self.since_commit: list[ObjectState] = []
        self.gone: list[ObjectState] = []
        self.relation_ops: list[tuple[bool, Any, Any, Any]] = []
        self.pending_keys: dict[tuple[ClassMapping[Any], Any], ObjectState] = {}
        self.wrote = False
        self.loaded_after_write: list[ObjectState] = []
        self.collecting: list[list[list[ObjectState]]] = []
        self.closed = False
        self._edges: dict[ClassMapping[Any], list[DeleteEdge]] = {}
        open_trackers.add(self)

    # -- the mapping's runtime objects --------------------------------------------------------------

    def spec(self, m: ClassMapping[Any]) -> SnapshotSpec:
        """The mapping's SnapshotSpec in this Database."""
        rt = m.runtime
        return (rt if rt is not None else self.runtime(m)).spec

    def loader(self, m: ClassMapping[Any]) -> Loader:
        """The mapping's generated Loader in this Database."""
        rt = m.runtime
        return (rt if rt is not None else self.runtime(m)).loader

    def persister(self, m: ClassMapping[Any]) -> Persister:
        """The mapping's Persister in this Database."""
        rt = m.runtime
        return (rt if rt is not None else self.runtime(m)).persister

    def edges(self, m: ClassMapping[Any]) -> list[DeleteEdge]:
        """The foreign keys that reference ``m``'s rows (``cascade.delete_edges``, cached)."""
        found = self._edges.get(m)
        if found is None:
            found = self._edges[m] = delete_edges(m, self.registry.mappings)
        return found

    def mapping_of(self, obj: object) -> ClassMapping[Any]:
        """The mapping of an object's class, else a MapperError naming the fix."""
        m = self.by_class.get(type(obj))
        if m is not None:
            return m
        try:
            return self.registry.mapping_of(obj)
        except errors.MapperError:
            msg = (
                f"{obj!r} is a {type(obj).__name__}, which is not mapped in this Database; "
                "add its mapper to Database(mappers=[...])"
            )
            raise errors.MapperError(msg) from None

    # -- states -------------------------------------------------------------------------------------

    @property
    def states(self) -> dict[int, ObjectState]:
        """Managed states by id(obj), with every loaded cohort indexed."""
        if self.unindexed:
            by_id = self.by_id
            for cohort in self.unindexed:
                for st in cohort:
                    if st.status != DETACHED:
                        by_id[id(st.obj)] = st
            self.unindexed.clear()
        return self.by_id

    def lookup(self, obj: object) -> ObjectState | None:
        """The state of a managed object, or None."""
        st = (self.states if self.unindexed else self.by_id).get(id(obj))
        return st if st is not None and st.obj is obj and st.status != DETACHED else None

    def state_of(self, obj: object, what: str) -> ObjectState:
        """The state of a managed object.

        Raises:
            SessionError: the object is not in this session (``what`` names the call).
        """
        st = self.states.get(id(obj))
        if st is None or st.obj is not obj:
            msg = (
                f"{type(obj).__name__} {obj!r} is not in this session ({what}); "
                "add() it or load it through this session first"
            )
            raise errors.SessionError(msg)
        return st

    def add(self, obj: object, states: dict[int, ObjectState]) -> None:
        """Manage ``obj``; ``states`` is the indexed ``states``.

        Raises:
            SessionError: another open session of the Database manages the object.
            DuplicateIdentityError: another managed object has the same key.
        """
        st = states.get(id(obj))
        if st is not None and st.obj is obj:
            if st.status == DELETED and not st.deleted_flushed:
                st.status = PERSISTENT
                self.deleted.pop(id(obj), None)
            return
        m = self.by_class.get(type(obj))
        if m is None:
            m = self.mapping_of(obj)
        if m.hierarchy is not None and m.hierarchy.value is None:
            msg = (
                f"{m.cls.__name__} cannot be stored: {m.name} has no discriminator_value, so its "
                f"rows must be of a subclass; add an instance of a mapped subclass, or give "
                f"{m.name} a discriminator_value"
            )
            raise errors.MapperError(msg)
        hidden = (None,) * len(m.hidden_columns) if m.hidden_columns else None
        st = ObjectState(obj, m, None, None, hidden, PENDING)
        key = self.spec(m).key_of(st)
        if self.open_trackers.count > 1:
            self._refuse_managed_elsewhere(obj, m, key)
        if key is not None:
            self._refuse_duplicate(m, key)
        k = id(obj)
        states[k] = st
        self.new[k] = st
        self.tx_new[k] = st
        if key is not None:
            self.pending_keys[(m, key)] = st

    def _refuse_managed_elsewhere(self, obj: object, m: ClassMapping[Any], key: Any) -> None:
        for elsewhere in self.open_trackers.others(self):
            if elsewhere.manages(obj, m, key):
                what = f"{m.cls.__name__} with key {key!r}" if key is not None else label(obj)
                msg = (
                    f"{what} is managed by another open session; use that session, or detach it "
                    "there first (expunge() it, or close that session)"
                )
                raise errors.SessionError(msg)

    def _refuse_duplicate(self, m: ClassMapping[Any], key: Any) -> None:
        # In a single-table hierarchy the key is the whole table's: a Cat may not take a Dog's.
        other = self.identity.get(m if m.hierarchy is None else m.hierarchy.root, key)
        if other is None:
            pend = self.pending_keys.get((m, key))
            if pend is not None and pend.status == PENDING and self.spec(m).key_of(pend) == key:
                other = pend
        if other is not None:
            msg = (
                f"{m.cls.__name__} with key {key!r} is already in this session; "
                "use session.get() to work on the existing object instead of adding another"
            )
            raise errors.DuplicateIdentityError(msg)

    def manages(self, obj: object, m: ClassMapping[Any], key: Any) -> bool:
        """Whether this open session manages ``obj`` (asked by another session's add()).

        It may run in another thread, so it only reads: the pending objects, the identity
        map by the key the object carries, and the index of states (not the queued cohorts).
        """
        if self.closed:
            return False
        k = id(obj)
        st = self.new.get(k) or self.by_id.get(k)
        if st is None and key is not None:
            st = self.identity.get(m, key)
        return st is not None and st.obj is obj and st.status != DETACHED

    def forget(self, st: ObjectState) -> None:
        """Stop managing a state's object."""
        k = id(st.obj)
        self.states.pop(k, None)
        self.new.pop(k, None)
        self.deleted.pop(k, None)
        self.tx_new.pop(k, None)
        if st.key is not None:
            self.identity.discard(st)
        st.status = DETACHED

    def forget_all(self) -> None:
        """Stop managing every object (``session.clear()``)."""
        states = self.states
        for st in states.values():
            st.status = DETACHED
        states.clear()
        self.new.clear()
        self.deleted.clear()
        self.tx_new.clear()
        self.identity.clear()

    def mark_deleted(self, st: ObjectState) -> bool:
        """Mark a state for deletion (a pending one is forgotten); True if it was persistent."""
        if st.status == PENDING:
            self.forget(st)
            return False
        if st.status == PERSISTENT:
            st.status = DELETED
            self.deleted[id(st.obj)] = st
            return True
        return False

    # -- snapshots ----------------------------------------------------------------------------------

    def keep_committed(self, st: ObjectState) -> None:
        """Before a column snapshot changes, remember the committed one (for rollback)."""
        if st.committed is None and st.snap is not None:
            st.committed = (st.snap, st.hsnap)
            self.since_commit.append(st)

    def keep_committed_rels(self, st: ObjectState) -> None:
        """Before a relation snapshot changes, remember the committed one (for rollback)."""
        if st.crels is None and id(st.obj) not in self.tx_new:
            st.crels = dict(st.rels)
            self.since_commit.append(st)

    def take(self, st: ObjectState) -> None:
        """Make a state's current values its snapshot."""
        self.keep_committed(st)
        st.retake(self.spec(st.mapping).take(st.obj))
        st.hsnap = st.hidden

    def set_row(self, st: ObjectState, by_key: dict[str, Any]) -> None:
        """Set a state's columns (attribute and hidden) and snapshots to a row read by key."""
        m = st.mapping
        spec = self.spec(m)
        for c in m.attr_columns:
            spec.setattr(st.obj, c.key, by_key[c.key])
        if st.hidden is not None:
            st.hidden = tuple([by_key[c.key] for c in m.hidden_columns])
            if spec.embedded is not None:
                spec.embedded.to_object(st.obj, st.hidden, spec.setattr)
        st.retake(spec.take(st.obj))
        st.hsnap = st.hidden

    def take_all(self, states: list[ObjectState]) -> None:
        """Make the current values of written states their snapshots (the end of a flush)."""
        take_snapshots(states, self.spec, self.since_commit)

    # -- letting go ---------------------------------------------------------------------------------

    def let_go(
        self,
        states: list[ObjectState],
        by_id: dict[int, ObjectState],
        cohorts: dict[int, list[ObjectState]],
        ghosts: dict[ClassMapping[Any], dict[Any, ObjectState]],
    ) -> None:
        """Take unused states out of the session and drop their objects (``stream()``).

        ``by_id`` is the indexed ``states``; ``cohorts`` receives the cohorts they leave, to
        prune; ``ghosts`` are the stand-ins waiting to load, by mapping and key.
        """
        identity = self.identity.for_mapping
        for st in states:
            k = id(st.obj)
            if by_id.get(k) is st:
                del by_id[k]
            imap = identity(st.mapping)
            key = st.key
            if imap.get(key) is st:
                del imap[key]
                if st.mapping.ancestors:
                    self.identity.discard(st)
            if st.status == GHOST:
                pending = ghosts.get(st.mapping)
                if pending is not None and pending.get(key) is st:
                    del pending[key]
            st.status = DETACHED
            st.obj = None
            st.snap = None
            st._rels = NO_RELS
            if st.committed is not None or st.crels is not None:
                st.committed = st.crels = None
            cohort = st.cohort
            if type(cohort) is list:
                cohorts[id(cohort)] = cohort

    def drop_detached(self) -> None:
        """Forget states let go from the lists that rollback and commit go through."""
        if self.since_commit:
            self.since_commit = [st for st in self.since_commit if st.status != DETACHED]
        loaded = self.loaded_after_write
        if loaded:
            # Savepoints remember how long the list was when they opened: keep their marks true.
            keep: list[ObjectState] = []
            marks = {f.loaded_mark for f in self.frames}
            moved: dict[int, int] = {}
            for i, st in enumerate(loaded):
                if i in marks:
                    moved[i] = len(keep)
                if st.status != DETACHED:
                    keep.append(st)
            for f in self.frames:
                f.loaded_mark = moved.get(f.loaded_mark, len(keep))
            self.loaded_after_write = keep

    def let_go_all(self, ghosts: dict[ClassMapping[Any], dict[Any, ObjectState]], closed_refs: dict[int, RelationInfo]) -> None:
        """Drop every reference to managed objects (the session closed).

        Only the session's own containers are emptied, and the cohorts: an object the caller
        keeps must not keep the rest of its result alive through them. A stand-in's relation
        goes to ``closed_refs``, so that touching it later can name the include to add.
        """
        self.closed = True
        self.open_trackers.discard(self)
        for cohort in self.unindexed:
            cohort.clear()
        for k, st in self.by_id.items():
            cohort = st.cohort
            if type(cohort) is list:
                if cohort:
                    cohort.clear()
            elif st.status == GHOST and isinstance(cohort, RelationInfo):
                closed_refs[k] = cohort
        self.unindexed.clear()
        self.by_id.clear()
        self.identity.clear()
        for pending in ghosts.values():
            pending.clear()
        for held in (self.new, self.deleted, self.tx_new, self.pending_keys):
            held.clear()
        for log in (self.since_commit, self.gone, self.loaded_after_write, self.relation_ops):
            log.clear()
        self.collecting.clear()
