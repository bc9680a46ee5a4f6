"""The session's side of the seam: what loaders, queries and accessors call (``SessionSeam``),
turning rows into objects, letting go of streamed objects, and set-based writes."""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import release
from .dialects.base import Dialect
from .engine import Connection
from .expressions import BoolExpr
from .graph import GraphLoader
from .loading import pause_gc
from .mapping import ClassMapping
from .schema import Column
from .sql import Select
from .state import DELETED, DETACHED, ObjectState
from .uow.mirror import Mirror
from .uow.tracker import Tracker

if TYPE_CHECKING:
    from .database import Database

__all__ = ["SessionCore"]

T = TypeVar("T")


class SessionCore:
    """What a Session gives the loaders, queries and accessors it drives (a ``SessionSeam``).

    The session keeps its lifecycle (checks, the connection, flushing); the core reaches it
    through the three callables it is given, so nothing here imports the session.

    Attributes:
        t / tracker: the session's bookkeeping.
        graph: the relation loader.
        mirror: brings memory into line after writes (a set-based delete uses it too).
        lazy: the session's ``lazy`` setting.
    """

    def __init__(
        self,
        db: Database,
        tracker: Tracker,
        *,
        lazy: str,
        check: Callable[[], None],
        connect: Callable[[], Connection],
        autoflush: Callable[[], None],
    ) -> None:
        self.db = db
        self.t = self.tracker = tracker
        self.lazy = lazy
        self._check = check
        self._connect = connect
        self._autoflush = autoflush
        self.graph = GraphLoader(self)
        self.mirror = Mirror(tracker, db._through_relations)
        #: What an unloaded collection calls on first use (bound once, passed to every load).
        self._lazy = self.graph.lazy_collection
        #: Per mapping: (identity dict, stand-in factory) of each reference the loader wires.
        self._refs: dict[ClassMapping[Any], list[tuple[dict[Any, ObjectState], Callable[[Any], Any]]]] = {}

    @property
    def closed(self) -> bool:
        """Whether the session is closed."""
        return self.t.closed

    @property
    def connection(self) -> Connection:
        """The session's connection (no autoflush)."""
        return self._connect()

    @property
    def dialect(self) -> Dialect:
        """The Database's dialect."""
        return self.db.engine.dialect

    def read(self) -> Connection:
        """Check the session, autoflush, and return its connection."""
        self._check()
        self._autoflush()
        return self._connect()

    def add(self, obj: Any) -> None:
        """``session.add(obj)``."""
        self._check()
        self.t.add(obj, self.t.states)

    def let_go_all(self) -> None:
        """The session closed: let go of every object it managed."""
        self.t.let_go_all(self.graph.ghosts, self.graph.closed_refs)
        self._refs.clear()

    def load_rows(self, m: ClassMapping[T], rows: Sequence[Sequence[Any]], row_states: list[ObjectState] | None = None) -> list[T]:
        """Objects for ``rows`` through the identity map; ``row_states`` receives the state of each."""
        fresh: list[ObjectState] = []
        loader = self.t.loader(m)
        refs = self._refs.get(m)
        if refs is None:
            refs = self._refs[m] = [
                (self.t.identity.for_mapping(info.target), self.graph.ghost_factory(info)) for info in loader.references
            ]
        paused = pause_gc(len(rows))
        try:
            try:
                objs = loader.load(rows, self.t.identity.for_mapping(m), fresh, refs, [] if row_states is None else row_states, self._lazy)
            finally:
                if fresh:
                    self.t.unindexed.append(fresh)
                    for collected in self.t.collecting:
                        collected.append(fresh)
            if fresh:
                self.graph.wire(m, fresh)
                if self.t.wrote:
                    self.t.loaded_after_write += fresh
        finally:
            if paused:
                gc.enable()
        return objs

    def release_unused(self, states: list[ObjectState]) -> list[ObjectState]:
        """Let go of the objects of a streamed batch that nothing outside the session references
        and that are unchanged, then of the objects only they referenced, and so on.

        A state let go leaves every index of the session (and the cohort it was loaded with) and
        drops its object, so the object is freed at once, without waiting for the collector.
        Objects added in this transaction, changed or deleted ones, and those a savepoint will
        restore stay managed, with whatever they reach. Returns the unchanged states that stay
        only because something outside still references them.
        """
        if self.closed:
            return []
        by_id = self.t.states  # index what the batch loaded: it is about to leave again
        frames = self.t.frames
        tx_new = self.t.tx_new

        def lookup(obj: Any) -> ObjectState | None:
            st = by_id.get(id(obj))
            return st if st is not None and st.obj is obj else None

        def pinned(st: ObjectState) -> bool:
            k = id(st.obj)
            return k in tx_new or any(k in f.states for f in frames)

        pin = pinned if tx_new or frames else None
        cohorts: dict[int, list[ObjectState]] = {}

        # First the objects nothing references but their state (most of a batch), then the
        # objects only they referenced (stand-ins, parents), and so on.
        referenced: list[ObjectState] = []
        todo = states
        while todo:
            free, held = release.split(todo, self.t.spec, pin)
            referenced += held
            todo = release.neighbours(free, lookup)
            self.t.let_go(free, by_id, cohorts, self.graph.ghosts)
            del free, held
        # What is still referenced may be referenced only by other objects of the batch (an
        # owner and its loaded pugs reference each other): the reachability test tells.
        spared: list[ObjectState] = []
        todo = [st for st in referenced if st.status != DETACHED]
        del referenced
        while todo:
            gone, kept, examined = release.unused(todo, lookup, self.t.spec, pin)
            spared += kept
            # What the states referenced was examined with them; what those referenced, not yet.
            given = {id(st) for st in todo}
            todo = [n for n in release.neighbours([st for st in gone if id(st) not in given], lookup) if id(n.obj) not in examined]
            self.t.let_go(gone, by_id, cohorts, self.graph.ghosts)
            del gone, kept, examined
        if cohorts:
            for cohort in cohorts.values():
                cohort[:] = [st for st in cohort if st.status != DETACHED]
            self.t.drop_detached()
        return [st for st in spared if st.status != DETACHED]

    def bulk_update(self, m: ClassMapping[Any], assignments: list[tuple[Column, Any]], where: BoolExpr | None) -> int:
        """One set-based UPDATE; held objects follow in memory. Returns the rows matched."""
        conn = self.connection
        count, keys, held = self._bulk_write(
            m, where, lambda ret: conn.compiler.update_where(m.table.name, assignments, where, ret), conn.dialect.update_returning
        )
        spec = self.t.spec(m)
        for key in keys:
            st = held.get(key)
            if st is None or st.snap is None:
                continue
            # Only the assigned columns are now in the database: other unflushed
            # changes of the object must still be written by the next flush.
            self.t.keep_committed(st)
            snap = list(st.snap)
            hsnap = list(st.hsnap) if st.hsnap is not None else None
            for col, value in assignments:
                spec.set(st, col.key, value)
                pos = spec.position.get(col.key)
                if pos is not None:
                    snap[pos] = value
                elif hsnap is not None:
                    hsnap[spec.hidden_position[col.key]] = value
            st.snap = tuple(snap)
            st.hsnap = tuple(hsnap) if hsnap is not None else None
        return count

    def bulk_delete(self, m: ClassMapping[Any], where: BoolExpr | None) -> int:
        """One set-based DELETE; held objects are marked deleted. Returns the rows matched."""
        conn = self.connection
        count, keys, held = self._bulk_write(
            m, where, lambda ret: conn.compiler.delete_where(m.table.name, where, ret), conn.dialect.delete_returning
        )
        gone: list[ObjectState] = []
        for key in keys:
            st = held.get(key)
            if st is not None:
                st.status = DELETED
                st.deleted_flushed = True
                self.t.identity.discard(st)
                self.t.gone.append(st)
                gone.append(st)
        self.mirror.drop_deleted(gone)
        return count

    def _bulk_write(
        self,
        m: ClassMapping[Any],
        where: BoolExpr | None,
        build: Callable[[list[Column]], tuple[str, list[Any]]],
        returning_ok: bool,
    ) -> tuple[int, list[Any], dict[Any, ObjectState]]:
        """Send a set-based UPDATE/DELETE; returns the row count, the matched keys of held objects, and the held map.

        Keys come from RETURNING where the backend has it for this statement; otherwise, only
        when the session holds objects of the class, from a SELECT ... FOR UPDATE first.
        """
        conn = self.read()
        self.t.wrote = True
        held = self.t.identity.for_mapping(m)
        keys: list[Any] = []
        if held and not returning_ok:
            keys = self._matching_keys(m, where)
        sql, params = build(list(m.pk) if held and returning_ok else [])
        if held and returning_ok:
            rows = conn.fetchall(sql, params)
            return len(rows), self._returned_keys(m, rows), held
        return int(conn.execute(sql, params).rowcount), keys, held

    def _matching_keys(self, m: ClassMapping[Any], where: BoolExpr | None) -> list[Any]:
        conn = self.connection
        sql, params = conn.compiler.select(Select(m.table.name, list(m.pk), where, for_update=True))
        procs = [conn.dialect.result_processor(c.type) for c in m.pk]
        keys = []
        for row in conn.fetchall(sql, params):
            vals = [v if p is None else p(v) for p, v in zip(procs, row)]
            keys.append(vals[0] if len(vals) == 1 else tuple(vals))
        return keys

    def _returned_keys(self, m: ClassMapping[Any], rows: Sequence[Sequence[Any]]) -> list[Any]:
        d = self.dialect
        procs = [d.result_processor(c.type) for c in m.pk]
        out = []
        for row in rows:
            vals = [v if p is None else p(v) for p, v in zip(procs, row)]
            out.append(vals[0] if len(vals) == 1 else tuple(vals))
        return out
