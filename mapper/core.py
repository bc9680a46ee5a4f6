"""The session's side of the seam: what loaders, queries and accessors call (``SessionSeam``),
turning rows into objects, letting go of streamed objects, and set-based writes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from . import errors, release
from .dialects.base import Dialect
from .engine import Connection
from .expressions import BoolExpr
from .graph import GraphLoader
from .loading import pause_gc, resume_gc
from .mapping import ClassMapping
from .schema import Column
from .sql import Select
from .state import DELETED, DETACHED, GHOST, ObjectState
from .uow.mirror import Mirror
from .uow.tracker import Tracker

if TYPE_CHECKING:
    from .database import Database

__all__ = ["SessionCore", "key_arg"]

T = TypeVar("T")


def key_arg(m: ClassMapping[Any], pk: Any) -> Any:
    """The identity key get() looks for: a value, or a tuple for a composite key.

    Raises:
        QueryError: the value does not fit the key (None, a tuple of the wrong length).
    """
    if len(m.pk) == 1:
        if isinstance(pk, tuple):
            if len(pk) != 1:
                msg = f"{m.cls.__name__} has a one-column key ({m.pk[0].key}); got {pk!r}"
                raise errors.QueryError(msg)
            pk = pk[0]
        if pk is None:
            msg = f"get({m.cls.__name__}, None): a primary key value is required"
            raise errors.QueryError(msg)
        return pk
    if not isinstance(pk, tuple) or len(pk) != len(m.pk) or any(v is None for v in pk):
        names = ", ".join(c.key for c in m.pk)
        msg = f"{m.cls.__name__} has a composite key ({names}); pass a tuple of {len(m.pk)} values, got {pk!r}"
        raise errors.QueryError(msg)
    return pk


def _key_params(dialect: Dialect, cols: Sequence[Column]) -> Callable[[Any], list[Any]]:
    """``params(key)``: the driver values of one key (a value, or a tuple for several columns)."""
    binds = [dialect.bind_processor(c.type) for c in cols]
    if len(cols) == 1:
        b = binds[0]
        return lambda key: [key if b is None or key is None else b(key)]
    return lambda key: [v if b is None or v is None else b(v) for b, v in zip(binds, key)]


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
        #: The Database's ``pause_gc`` option (loads pause the collector through the core).
        self.pause_gc: bool = db.pause_gc
        self._check = check
        self._connect = connect
        self._autoflush = autoflush
        self.graph = GraphLoader(self)
        self.mirror = Mirror(tracker, db._through_relations)
        #: What an unloaded collection calls on first use (bound once, passed to every load).
        self._lazy = self.graph.lazy_collection
        #: Per mapping: get()'s statement and key conversion, built on first use.
        self._get_plans: dict[ClassMapping[Any], tuple[str, Callable[[Any], list[Any]]]] = {}
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

    def add(self, obj: object) -> None:
        """``session.add(obj)``."""
        self._check()
        self.t.add(obj, self.t.states)

    def fetch_by_key(self, m: ClassMapping[Any], key: Any, st: ObjectState | None) -> Any:
        """get() after the identity map missed: one SELECT by key (``st``: a stand-in or None)."""
        h = m.hierarchy
        if h is not None and h.parent is not None:
            # Held as another branch of the hierarchy (a Cat asked for as a Dog): not one.
            other = self.t.identity.get(h.root, key)
            if other is not None and other.status != GHOST and other.mapping not in h.subtree:
                return None
        imap = self.t.identity.for_mapping(m)
        # A SELECT by generated key reads one table, and deletes are answered by the identity
        # map: only new objects of this class can change its answer, so only they need a flush
        # (a full autoflush would compare every held object on each miss). A natural key may
        # have been edited on a held object, so those take the full autoflush.
        if m.autoinc is None or (self.t.new and any(p.mapping is m or m in p.mapping.ancestors for p in self.t.new.values())):
            conn = self.read()
            st = imap.get(key)  # the flush may have given a new object this key
            if st is not None and st.status != GHOST:
                return None if st.status == DELETED else st.obj
        else:
            conn = self.connection
        if st is not None and m.soft_delete is not None:
            return self._fetch_stand_in(m, key, st, conn)
        plan = self._get_plans.get(m)
        if plan is None:
            # The statement and the key conversion of get(), built once per session and class.
            sql = conn.compiler.select_by_key(m.table, self.t.loader(m).columns, m.pk, m.soft_delete)
            plan = self._get_plans[m] = (sql, _key_params(conn.dialect, m.pk))
        rows = conn.fetchall(plan[0], plan[1](key))
        found = self.load_rows(m, rows)
        if not found and st is not None:
            # A reference to a row that does not exist: drop the stand-in.
            self.t.forget(st)
        return found[0] if found else None

    def _fetch_stand_in(self, m: ClassMapping[Any], key: Any, st: ObjectState, conn: Connection) -> Any:
        """get() of a soft-deletable row that a reference already stands in for: the row is read
        whatever its soft-delete column holds (the reference needs it), and get() answers None
        when it is soft-deleted."""
        sql = conn.compiler.select_by_key(m.table, self.t.loader(m).columns, m.pk)
        found = self.load_rows(m, conn.fetchall(sql, _key_params(conn.dialect, m.pk)(key)))
        if not found:
            self.t.forget(st)
            return None
        col = m.soft_delete
        assert col is not None
        return None if self.t.spec(m).get(st, col.key) is not None else found[0]

    def refresh(self, st: ObjectState) -> None:
        """Read a persistent state's row again; its unflushed changes are discarded.

        Raises:
            NotFoundError: its row no longer exists.
        """
        m = st.mapping
        conn = self.connection
        loader = self.t.loader(m)
        sql = conn.compiler.select_by_keys(m.table, loader.columns, m.pk, 1)
        rows = conn.fetchall(sql, conn.dialect.key_params(m.pk, [st.key]))
        if not rows:
            msg = f"{m.cls.__name__} with key {st.key!r} no longer exists in the database"
            raise errors.NotFoundError(msg)
        self.t.keep_committed(st)
        self.t.set_row(st, dict(zip((c.key for c in loader.columns), loader.convert_row(rows[0]))))

    def let_go_all(self) -> None:
        """The session closed: let go of every object it managed."""
        self.t.let_go_all(self.graph.ghosts, self.graph.closed_refs)
        self._refs.clear()

    def _refs_of(self, m: ClassMapping[Any]) -> list[tuple[dict[Any, ObjectState], Callable[[Any], Any]]]:
        refs = self._refs.get(m)
        if refs is None:
            refs = self._refs[m] = [
                (self.t.identity.for_mapping(info.target), self.graph.ghost_factory(info))
                for info in self.t.loader(m).references
            ]
        return refs

    def load_rows(self, m: ClassMapping[T], rows: Sequence[Sequence[Any]], row_states: list[ObjectState] | None = None) -> list[T]:
        """Objects for ``rows`` through the identity map; ``row_states`` receives the state of each."""
        if m.hierarchy is not None:
            return self._load_hierarchy(m, rows, row_states)
        fresh: list[ObjectState] = []
        loader = self.t.loader(m)
        refs = self._refs_of(m)
        paused = pause_gc(len(rows), self)
        try:
            try:
                objs = loader.load(rows, self.t.identity.for_mapping(m), fresh, refs, row_states, self._lazy)
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
                resume_gc()
        return objs

    def _load_hierarchy(self, m: ClassMapping[T], rows: Sequence[Sequence[Any]], row_states: list[ObjectState] | None) -> list[T]:
        """``load_rows`` for a mapping of a single-table hierarchy: each row becomes an object of
        the mapping its discriminator names, through that mapping's loader; rows of another
        branch (a Cat read by key as a Dog) are left out. One cohort for the whole result, so a
        lazy load serves every object of it, whatever its class.

        Raises:
            ConfigurationError: a row's discriminator value is mapped by no mapper.
        """
        h = m.hierarchy
        assert h is not None
        pk_at = [m.index[c.key] for c in m.pk]
        key_of = (lambda row: row[pk_at[0]]) if len(pk_at) == 1 else (lambda row: tuple(row[i] for i in pk_at))
        groups = h.split(rows, key_of)
        fresh: list[ObjectState] = []
        objs: list[Any] = [None] * len(rows)
        states: list[ObjectState | None] = [None] * len(rows)
        paused = pause_gc(len(rows), self)
        try:
            try:
                for sub, idx, sub_rows in groups:
                    sts: list[ObjectState] = []
                    loaded = self.t.loader(sub).load(
                        sub_rows, self.t.identity.for_mapping(sub), fresh, self._refs_of(sub), sts, self._lazy
                    )
                    if idx is None:  # every row, in order
                        objs, states = loaded, sts  # type: ignore[assignment]
                        continue
                    for i, obj, st in zip(idx, loaded, sts):
                        objs[i] = obj
                        states[i] = st
            finally:
                if fresh:
                    self.t.identity.add_to_ancestors(fresh)
                    self.t.unindexed.append(fresh)
                    for collected in self.t.collecting:
                        collected.append(fresh)
            if fresh:
                by_mapping: dict[ClassMapping[Any], list[ObjectState]] = {}
                for st in fresh:
                    by_mapping.setdefault(st.mapping, []).append(st)
                for sub, sts in by_mapping.items():
                    self.graph.wire(sub, sts)
                if self.t.wrote:
                    self.t.loaded_after_write += fresh
        finally:
            if paused:
                resume_gc()
        if len(groups) == 1 and groups[0][1] is None:
            if row_states is not None:
                row_states += states  # type: ignore[arg-type]
            return objs
        kept = [i for i, st in enumerate(states) if st is not None]
        if row_states is not None:
            row_states += [states[i] for i in kept]  # type: ignore[misc]
        return [objs[i] for i in kept]

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

        def lookup(obj: object) -> ObjectState | None:
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
            spec.set_committed(st, [(col.key, value) for col, value in assignments])
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
