"""The Session: the unit of work over one connection.

It tracks every object it manages (state kept outside the object), flushes changes in
batches, and keeps memory in line with the database across commit, rollback and
savepoints.
"""

from __future__ import annotations

import logging
import threading
import weakref

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from . import errors
from .engine import Budget, Connection, Row, row_class
from .expressions import BoolExpr
from .accessors import CollectionAccessor, ReferenceAccessor
from .uow.cascade import (
    DeleteEdge,
    JunctionOp,
    Link,
    RelationPlan,
    delete_edges,
    delete_targets,
    label,
    reachable_unmanaged,
    reconcile,
    refuse_null_links,
    relations_changed,
)
from .uow.execute import ParentOp, Persister, UnitOfWork
from .lazy import is_unloaded, set_member
from .graph import GraphLoader, resolve_paths
from .identity import IdentityMap
from .loading import Loader, pause_gc, resume_gc
from .mapping import ClassMapping, RelationInfo
from .query import Query
from . import release
from .schema import Column
from .sql import bind_named
from .state import DELETED, DETACHED, GHOST, NO_RELS, PENDING, PERSISTENT, ObjectState, SnapshotSpec, take_snapshots

if TYPE_CHECKING:
    from .database import Database

__all__ = ["Session", "OpenSessions", "note_failed_rollback"]

T = TypeVar("T")

log = logging.getLogger("mapper.session")
_get_ident = threading.get_ident


#: ``ObjectState.rel`` default that tells a relation that is not loaded from one that is None.
_NOT_LOADED: Any = object()

class _Frame:
    """What a savepoint must restore: the snapshot of every state when it was opened."""

    __slots__ = ("name", "snaps", "states", "deleted", "new", "rels", "loaded_mark")

    def __init__(self, name: str, session: Session) -> None:
        self.name = name
        self.snaps = {k: (st.snap, st.hsnap, st.status, st.deleted_flushed) for k, st in session._states.items()}
        self.rels = {k: dict(st.rels) for k, st in session._states.items() if st.mapping.relations and st.rels}
        self.states = set(session._states)
        self.deleted = dict(session._deleted)
        self.new = dict(session._new)
        self.loaded_mark = len(session._loaded_after_write)


def _key_params(dialect: Any, cols: Sequence[Column]) -> Callable[[Any], list[Any]]:
    """``params(key)``: the driver values of one key (a value, or a tuple for several columns)."""
    binds = [dialect.bind_processor(c.type) for c in cols]
    if len(cols) == 1:
        b = binds[0]
        return lambda key: [key if b is None or key is None else b(key)]
    return lambda key: [v if b is None or v is None else b(v) for b, v in zip(binds, key)]


def note_failed_rollback(exc: BaseException | None, failure: Exception) -> None:
    """Attach a ROLLBACK that failed after ``exc`` to it (a PEP 678 note), and log it.

    ``exc`` stays the exception the application sees; the failure goes along with it.
    """
    what = type(exc).__name__ if exc is not None else "an exception"
    if exc is not None:
        exc.add_note(
            f"mapper: the ROLLBACK after this {what} failed too, and its connection was "
            f"discarded: {type(failure).__name__}: {failure}"
        )
    log.warning("the ROLLBACK after %s failed; the connection was discarded", what, exc_info=failure)


class OpenSessions:
    """The open sessions of one Database (weakly held), safe to use from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: weakref.WeakSet[Session] = weakref.WeakSet()

    def add(self, session: Session) -> None:
        """Register a session that opened."""
        with self._lock:
            self._sessions.add(session)

    def discard(self, session: Session) -> None:
        """Forget a session that closed."""
        with self._lock:
            self._sessions.discard(session)

    def others(self, session: Session) -> list[Session]:
        """The open sessions besides ``session`` (empty at once in the common case of one)."""
        if len(self._sessions) < 2:
            return []
        with self._lock:
            return [s for s in self._sessions if s is not session]


class Session:
    """A unit of work: use as ``with db.session() as s:``.

    A clean exit commits, an exception rolls back, and the session is closed either way.
    The session holds one pooled connection from its first statement until it is closed.
    It belongs to the thread that first uses it: any other thread gets a SessionError, except
    for close(), which any thread may call.
    """

    def __init__(self, db: Database, *, autoflush: bool = True, lazy: str | None = None) -> None:
        self._db = db
        self.autoflush = autoflush
        self.lazy = lazy if lazy is not None else db.lazy
        self._conn: Connection | None = None
        # Every managed state by id(obj): pending, persistent and deleted. Loads do not index
        # their rows here (at tens of thousands of rows that was a third of a load): they queue
        # the cohort in _unindexed, and the first read of _states indexes what is queued. A
        # read-only session never pays it.
        self._by_id: dict[int, ObjectState] = {}
        self._unindexed: list[list[ObjectState]] = []
        self._edge_cache: dict[tuple[ClassMapping[Any], Any], tuple[list[RelationInfo], list[RelationInfo]]] = {}
        self._delete_edges: dict[ClassMapping[Any], list[DeleteEdge]] = {}
        #: Pending states in add() order.
        self._new: dict[int, ObjectState] = {}
        #: Persistent states marked for deletion, not yet flushed.
        self._deleted: dict[int, ObjectState] = {}
        self._identity = IdentityMap()
        #: States added since the last commit (rollback expunges them).
        self._tx_new: dict[int, ObjectState] = {}
        self._frames: list[_Frame] = []
        self._pending_rollback: BaseException | None = None
        self._closed = False
        #: The thread that first used the session (``threading.get_ident()``) and its name.
        self._owner: int | None = None
        self._owner_name = ""
        #: Guards claiming the session, taking its connection and closing it.
        self._lock = threading.RLock()
        self._budgets: list[Budget] = []
        self._flushing = False
        self._graph = GraphLoader(self)
        #: What an unloaded collection calls on first use (bound once, passed to every load).
        self._lazy = self._graph.lazy_collection
        self._by_class = db.registry.by_class
        #: Identity dicts of classes with a one-column key, by class, for get()'s fast path.
        self._held: dict[type, dict[Any, ObjectState]] = {}
        self._get_plans: dict[ClassMapping[Any], tuple[str, Callable[[Any], list[Any]]]] = {}
        #: States whose committed values were set aside since the last commit.
        self._since_commit: list[ObjectState] = []
        #: States whose rows were deleted since the last commit.
        self._gone: list[ObjectState] = []
        #: Per mapping: (identity dict, stand-in factory) of each reference the loader wires.
        self._refs: dict[ClassMapping[Any], list[tuple[dict[Any, ObjectState], Callable[[Any], Any]]]] = {}
        #: Edits of unloaded collections made through related(): (adding, parent, relation, child).
        self._relation_ops: list[tuple[bool, Any, Any, Any]] = []
        #: Keys of pending objects known at add(), to refuse a second object with the same key.
        self._pending_keys: dict[tuple[ClassMapping[Any], Any], ObjectState] = {}
        #: Whether this transaction may have written: a collection loaded from then on shows
        #: uncommitted rows, so its loader keeps the committed relation snapshot for rollback.
        self._wrote = False
        #: States loaded while ``_wrote`` was set: their values may be uncommitted, so a
        #: rollback (or a failed savepoint) reads them again.
        self._loaded_after_write: list[ObjectState] = []
        #: One list per stream() batch being read and used: each receives every cohort loaded
        #: meanwhile, so that the batch can let go of what nothing references once it is done
        #: (see ``_release_unused``). A stream removes its own list when the batch ends.
        self._collecting: list[list[list[ObjectState]]] = []
        db._sessions.add(self)

    # -- plumbing ---------------------------------------------------------------------------------

    def __enter__(self) -> Session:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                self.commit()
            elif not self._closed:
                try:
                    self.rollback()
                except Exception as failure:  # noqa: BLE001 - the block's exception goes on
                    self._rollback_failed(exc, failure)
        finally:
            self.close()

    def _rollback_failed(self, exc: BaseException | None, failure: Exception) -> None:
        """The block raised ``exc`` and the ROLLBACK after it failed with ``failure``.

        The block's exception is the one the application must see, unchanged: most often the
        ROLLBACK failed because the connection is gone, which says nothing new. The failure
        goes along as a note on that exception and a warning on the ``mapper.session`` logger,
        and the connection, in no known state, is thrown away.
        """
        if self._conn is not None:
            self._conn.broken = True
        note_failed_rollback(exc, failure)

    def _check(self) -> None:
        if self._closed:
            msg = "this session is closed; open a new one with db.session()"
            raise errors.SessionClosedError(msg)
        if self._owner != _get_ident():
            self._claim()
        if self._pending_rollback is not None:
            failed = self._pending_rollback
            where = "the COMMIT" if isinstance(failed, errors.DatabaseError) and failed.statement == "COMMIT" else "a flush"
            msg = (
                f"{where} failed ({type(failed).__name__}: {failed}); "
                "call session.rollback() before using the session again"
            )
            raise errors.PendingRollbackError(msg)

    def _claim(self) -> None:
        """Make the calling thread the session's owner on first use; refuse any other thread.

        A session, its objects and its connection are not safe to share between threads; what
        a second thread would do to them (two statements at once on one connection, two
        connections taken for one session) is refused before it starts.
        """
        me = threading.current_thread()
        with self._lock:
            if self._owner is None:
                self._owner, self._owner_name = me.ident, me.name
                return
            if self._owner == me.ident:
                return
        msg = (
            f"this session belongs to thread {self._owner_name!r}, and another thread ({me.name!r}) "
            "used it; a session serves the thread that first used it: open one per thread with "
            "db.session() (close() is the one call any thread may make)"
        )
        raise errors.SessionError(msg)

    @property
    def connection(self) -> Connection:
        """The session's connection (acquired from the pool on first use)."""
        self._check()
        conn = self._conn
        if conn is None:
            # Under the lock, so that a close() from another thread cannot come between taking
            # a connection from the pool and keeping it (the pool would lose that slot).
            with self._lock:
                self._check()
                conn = self._conn
                if conn is None:
                    conn = self._db.engine.connect()
                    conn.budgets = self._budgets
                    self._conn = conn
        return conn

    @property
    def query_count(self) -> int:
        """Statements this session has sent (BEGIN, COMMIT and savepoints not counted)."""
        return self._conn.count if self._conn is not None else 0

    def _mapping(self, cls: Any) -> ClassMapping[Any]:
        return self._db.registry.mapping_for(cls)

    def _mapping_of(self, obj: Any) -> ClassMapping[Any]:
        try:
            return self._db.registry.mapping_of(obj)
        except errors.MapperError:
            msg = (
                f"{obj!r} is a {type(obj).__name__}, which is not mapped in this Database; "
                "add its mapper to Database(mappers=[...])"
            )
            raise errors.MapperError(msg) from None

    def _spec(self, m: ClassMapping[Any]) -> SnapshotSpec:
        rt = m.runtime
        return (rt if rt is not None else self._db._runtime(m))[0]

    def _loader(self, m: ClassMapping[Any]) -> Loader:
        rt = m.runtime
        return (rt if rt is not None else self._db._runtime(m))[1]

    def _persister(self, m: ClassMapping[Any]) -> Persister:
        rt = m.runtime
        return (rt if rt is not None else self._db._runtime(m))[2]

    def _prepare_read(self) -> Connection:
        self._check()
        if self.autoflush and not self._flushing:
            self.flush()
        return self.connection

    @property
    def _states(self) -> dict[int, ObjectState]:
        """Managed states by id(obj), with every loaded cohort indexed."""
        if self._unindexed:
            by_id = self._by_id
            for cohort in self._unindexed:
                for st in cohort:
                    if st.status != DETACHED:
                        by_id[id(st.obj)] = st
            self._unindexed.clear()
        return self._by_id

    def _load_rows(self, m: ClassMapping[T], rows: Sequence[Sequence[Any]], row_states: list[ObjectState] | None = None) -> list[T]:
        """Objects for ``rows`` through the identity map; ``row_states`` receives the state of each."""
        fresh: list[ObjectState] = []
        loader = self._loader(m)
        refs = self._refs.get(m)
        if refs is None:
            refs = self._refs[m] = [
                (self._identity.for_mapping(info.target), self._graph.ghost_factory(info)) for info in loader.references
            ]
        paused = pause_gc(len(rows), self._db)
        try:
            try:
                objs = loader.load(rows, self._identity.for_mapping(m), fresh, refs, [] if row_states is None else row_states, self._lazy)
            finally:
                if fresh:
                    self._unindexed.append(fresh)
                    for collected in self._collecting:
                        collected.append(fresh)
            if fresh:
                self._graph.wire(m, fresh)
                if self._wrote:
                    self._loaded_after_write += fresh
        finally:
            if paused:
                resume_gc()
        return objs

    def _state(self, obj: Any, what: str) -> ObjectState:
        st = self._states.get(id(obj))
        if st is None or st.obj is not obj:
            msg = (
                f"{type(obj).__name__} {obj!r} is not in this session ({what}); "
                "add() it or load it through this session first"
            )
            raise errors.SessionError(msg)
        return st

    # -- adding and removing ----------------------------------------------------------------------

    def add(self, obj: Any) -> None:
        """Manage ``obj``: a new object is inserted at the next flush.

        Adding an object already in the session does nothing; adding one marked for
        deletion cancels the deletion.

        Raises:
            MapperError: the object's class is not mapped.
            DuplicateIdentityError: another managed object has the same primary key.
        """
        self._check()
        self._add(obj, self._states)

    def _add(self, obj: Any, states: dict[int, ObjectState]) -> None:
        """add() without the session check; ``states`` is the indexed ``_states``."""
        st = states.get(id(obj))
        if st is not None and st.obj is obj:
            if st.status == DELETED and not st.deleted_flushed:
                st.status = PERSISTENT
                self._deleted.pop(id(obj), None)
            return
        m = self._by_class.get(type(obj))
        if m is None:
            m = self._mapping_of(obj)
        hidden = (None,) * len(m.hidden_columns) if m.hidden_columns else None
        st = ObjectState(obj, m, None, None, hidden, PENDING)
        key = self._spec(m).key_of(st)
        for elsewhere in self._db._sessions.others(self):
            if elsewhere._manages(obj, m, key):
                what = f"{m.cls.__name__} with key {key!r}" if key is not None else label(obj)
                msg = (
                    f"{what} is managed by another open session; use that session, or detach it "
                    "there first (expunge() it, or close that session)"
                )
                raise errors.SessionError(msg)
        if key is not None:
            other = self._identity.get(m, key)
            if other is None:
                pend = self._pending_keys.get((m, key))
                if pend is not None and pend.status == PENDING and self._spec(m).key_of(pend) == key:
                    other = pend
            if other is not None:
                msg = (
                    f"{m.cls.__name__} with key {key!r} is already in this session; "
                    "use session.get() to work on the existing object instead of adding another"
                )
                raise errors.DuplicateIdentityError(msg)
        k = id(obj)
        states[k] = st
        self._new[k] = st
        self._tx_new[k] = st
        if key is not None:
            self._pending_keys[(m, key)] = st

    def _manages(self, obj: Any, m: ClassMapping[Any], key: Any) -> bool:
        """Whether this open session manages ``obj`` (asked by another session's add()).

        It may run in another thread, so it only reads: the pending objects, the identity
        map by the key the object carries, and the index of states (not the queued cohorts).
        """
        if self._closed:
            return False
        k = id(obj)
        st = self._new.get(k) or self._by_id.get(k)
        if st is None and key is not None:
            st = self._identity.get(m, key)
        return st is not None and st.obj is obj and st.status != DETACHED

    def add_all(self, objs: Iterable[Any]) -> None:
        """``add()`` each object, in order."""
        self._check()
        states = self._states
        for obj in objs:
            self._add(obj, states)

    def delete(self, obj: Any) -> None:
        """Delete ``obj`` at the next flush (a pending object is simply dropped).

        Raises:
            SessionError: the object is not in this session.
        """
        self._check()
        st = self._state(obj, "delete()")
        if st.status == GHOST:
            # A reference not loaded yet: load it, so its relations can cascade.
            self.get(st.mapping.cls, st.key)
            if st.status == GHOST:
                return
        if st.status == PENDING:
            self._forget(st)
            return
        if st.status == PERSISTENT:
            st.status = DELETED
            self._deleted[id(obj)] = st

    def expunge(self, obj: Any) -> None:
        """Stop managing ``obj``: its changes are no longer tracked or flushed.

        Raises:
            SessionError: the object is not in this session.
        """
        self._check()
        self._forget(self._state(obj, "expunge()"))

    def clear(self) -> None:
        """Stop managing every object (pending changes are dropped, nothing is written)."""
        self._check()
        for st in self._states.values():
            st.status = DETACHED
        self._states.clear()
        self._new.clear()
        self._deleted.clear()
        self._tx_new.clear()
        self._identity.clear()

    def _forget(self, st: ObjectState) -> None:
        k = id(st.obj)
        self._states.pop(k, None)
        self._new.pop(k, None)
        self._deleted.pop(k, None)
        self._tx_new.pop(k, None)
        if st.key is not None:
            self._identity.discard(st)
        st.status = DETACHED

    def _release_unused(self, states: list[ObjectState]) -> list[ObjectState]:
        """Let go of the objects of a streamed batch that nothing outside the session references
        and that are unchanged, then of the objects only they referenced, and so on.

        A state let go leaves every index of the session (and the cohort it was loaded with) and
        drops its object, so the object is freed at once, without waiting for the collector.
        Objects added in this transaction, changed or deleted ones, and those a savepoint will
        restore stay managed, with whatever they reach. Returns the unchanged states that stay
        only because something outside still references them.
        """
        if self._closed:
            return []
        by_id = self._states  # index what the batch loaded: it is about to leave again
        frames = self._frames
        tx_new = self._tx_new

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
            free, held = release.split(todo, self._spec, pin)
            referenced += held
            todo = release.neighbours(free, lookup)
            self._let_go(free, by_id, cohorts)
            del free, held
        # What is still referenced may be referenced only by other objects of the batch (an
        # owner and its loaded pugs reference each other): the reachability test tells.
        spared: list[ObjectState] = []
        todo = [st for st in referenced if st.status != DETACHED]
        del referenced
        while todo:
            gone, kept, examined = release.unused(todo, lookup, self._spec, pin)
            spared += kept
            # What the states referenced was examined with them; what those referenced, not yet.
            given = {id(st) for st in todo}
            todo = [n for n in release.neighbours([st for st in gone if id(st) not in given], lookup) if id(n.obj) not in examined]
            self._let_go(gone, by_id, cohorts)
            del gone, kept, examined
        if cohorts:
            for cohort in cohorts.values():
                cohort[:] = [st for st in cohort if st.status != DETACHED]
            self._drop_detached()
        return [st for st in spared if st.status != DETACHED]

    def _let_go(self, states: list[ObjectState], by_id: dict[int, ObjectState], cohorts: dict[int, list[ObjectState]]) -> None:
        """Take unused states out of the session and drop their references (see
        ``_release_unused``); ``cohorts`` receives the cohorts they leave, to prune."""
        identity = self._identity.for_mapping
        ghosts = self._graph.ghosts
        for st in states:
            k = id(st.obj)
            if by_id.get(k) is st:
                del by_id[k]
            imap = identity(st.mapping)
            key = st.key
            if imap.get(key) is st:
                del imap[key]
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

    def _drop_detached(self) -> None:
        """Forget states let go from the lists that rollback and commit go through."""
        if self._since_commit:
            self._since_commit = [st for st in self._since_commit if st.status != DETACHED]
        loaded = self._loaded_after_write
        if loaded:
            # Savepoints remember how long the list was when they opened: keep their marks true.
            keep: list[ObjectState] = []
            marks = {f.loaded_mark for f in self._frames}
            moved: dict[int, int] = {}
            for i, st in enumerate(loaded):
                if i in marks:
                    moved[i] = len(keep)
                if st.status != DETACHED:
                    keep.append(st)
            for f in self._frames:
                f.loaded_mark = moved.get(f.loaded_mark, len(keep))
            self._loaded_after_write = keep

    # -- reading ----------------------------------------------------------------------------------

    def _key_arg(self, m: ClassMapping[Any], pk: Any) -> Any:
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

    def get(self, cls: type[T], pk: Any) -> T | None:
        """The object with this primary key: from the identity map with no query, else one SELECT.

        Args:
            cls: a mapped domain class.
            pk: the key value, or a tuple in column order for a composite key.

        Returns:
            The object, or None when no row has that key (or it is deleted in this session).
        """
        held = self._held.get(cls)
        if held is not None and type(pk) is not tuple:
            # The hot case, a held object by a one-column key: one dict lookup.
            st = held.get(pk)
            if (
                st is not None
                and st.status == PERSISTENT
                and not self._closed
                and self._pending_rollback is None
                and self._owner == _get_ident()
            ):
                return st.obj  # type: ignore[no-any-return]
        return self._get(cls, pk)

    def _get(self, cls: type[T], pk: Any) -> T | None:
        if self._closed or self._pending_rollback is not None or self._owner != _get_ident():
            self._check()
        m = self._by_class.get(cls)
        if m is None:
            m = self._mapping(cls)
        # The common case (a one-column key given as a plain value) skips argument checks.
        key = pk if len(m.pk) == 1 and pk is not None and type(pk) is not tuple else self._key_arg(m, pk)
        imap = self._identity.for_mapping(m)
        if len(m.pk) == 1:
            self._held[cls] = imap
        st = imap.get(key)
        if st is not None and st.status != GHOST:
            return None if st.status == DELETED else st.obj
        # A SELECT by generated key reads one table, and deletes are answered by the identity
        # map: only new objects of this class can change its answer, so only they need a flush
        # (a full autoflush would compare every held object on each miss). A natural key may
        # have been edited on a held object, so those take the full autoflush.
        if m.autoinc is None or (self._new and any(p.mapping is m for p in self._new.values())):
            conn = self._prepare_read()
            st = imap.get(key)  # the flush may have given a new object this key
            if st is not None and st.status != GHOST:
                return None if st.status == DELETED else st.obj
        else:
            conn = self._conn if self._conn is not None else self.connection
        plan = self._get_plans.get(m)
        if plan is None:
            # The statement and the key conversion of get(), built once per session and class.
            sql = conn.compiler.select_by_key(m.table, self._loader(m).columns, m.pk)
            plan = self._get_plans[m] = (sql, _key_params(conn.dialect, m.pk))
        rows = conn.fetchall(plan[0], plan[1](key))
        found = self._load_rows(m, rows)
        if not found and st is not None:
            # A reference to a row that does not exist: drop the stand-in.
            self._forget(st)
        return found[0] if found else None

    def get_one(self, cls: type[T], pk: Any) -> T:
        """Like get(), but a missing row raises NotFoundError.

        Raises:
            NotFoundError: no row has that key.
        """
        obj = self.get(cls, pk)
        if obj is None:
            m = self._mapping(cls)
            msg = f"no {m.cls.__name__} with {', '.join(c.key for c in m.pk)} = {pk!r}"
            raise errors.NotFoundError(msg)
        return obj

    def query(self, cls: type[T]) -> Query[T]:
        """A Query over a mapped class."""
        self._check()
        return Query(self, self._mapping(cls))

    def load(self, objs: Any, *paths: str) -> None:
        """Load relation paths onto objects already loaded: one query per segment per chunk.

        Args:
            objs: one managed object or an iterable of them (of one class).
            paths: dotted relation paths, such as ``"pugs"`` or ``"items.product"``.

        Raises:
            QueryError: a path segment is not a relation.
            SessionError: an object is not in this session.
        """
        self._check()
        items = [objs] if not isinstance(objs, (list, tuple, set, frozenset)) else list(objs)
        if not items or not paths:
            return
        states = [self._state(o, "load()") for o in items]
        by_mapping: dict[ClassMapping[Any], list[ObjectState]] = {}
        for st in states:
            by_mapping.setdefault(st.mapping, []).append(st)
        trees = [(sts, resolve_paths(m, paths)) for m, sts in by_mapping.items()]
        self._prepare_read()
        for sts, tree in trees:
            self._graph.load_tree(sts, tree)

    def related(self, obj: Any, name: str) -> Any:
        """Accessors for one relation of ``obj``.

        A collection (HasMany, BelongsToMany) offers ``all()``, ``count()``, ``has(x)``,
        ``add(*x)``, ``remove(*x)``, ``set(xs)`` and ``create(**fields)``; a reference
        (BelongsTo, HasOne) offers ``get()``, ``set(x)`` and ``create(**fields)``.
        Writes are recorded in the unit of work and flushed like attribute edits.

        Raises:
            SessionError: the object is not in this session.
            QueryError: ``name`` is not a relation of its class.
        """
        self._check()
        st = self._state(obj, "related()")
        info = st.mapping.relations.get(name) if isinstance(name, str) else None
        if info is None:
            msg = (
                f"{st.mapping.cls.__name__} has no relation {name!r}; its relations are "
                f"{sorted(st.mapping.relations)}"
            )
            raise errors.QueryError(msg)
        if info.to_many:
            return CollectionAccessor(self, st, info)
        return ReferenceAccessor(self, st, info)

    def refresh(self, obj: Any) -> None:
        """Reload ``obj``'s columns from the database, discarding its unflushed changes.

        Raises:
            SessionError: the object is not persistent in this session.
            NotFoundError: its row no longer exists.
        """
        self._check()
        st = self._state(obj, "refresh()")
        if st.status != PERSISTENT:
            msg = f"refresh() needs a persistent object; {type(obj).__name__} {obj!r} is pending or deleted (flush first)"
            raise errors.SessionError(msg)
        m = st.mapping
        conn = self.connection
        loader = self._loader(m)
        sql = conn.compiler.select_by_keys(m.table, loader.columns, m.pk, 1)
        rows = conn.fetchall(sql, conn.dialect.key_params(m.pk, [st.key]))
        if not rows:
            msg = f"{m.cls.__name__} with key {st.key!r} no longer exists in the database"
            raise errors.NotFoundError(msg)
        self._keep_committed(st)
        self._set_row(st, dict(zip((c.key for c in loader.columns), loader.convert_row(rows[0]))))

    def _set_row(self, st: ObjectState, by_key: dict[str, Any]) -> None:
        """Set a state's columns (attribute and hidden) and snapshots to a row read by key."""
        m = st.mapping
        spec = self._spec(m)
        for c in m.attr_columns:
            spec.setattr(st.obj, c.key, by_key[c.key])
        if st.hidden is not None:
            st.hidden = tuple([by_key[c.key] for c in m.hidden_columns])
        st.retake(spec.take(st.obj))
        st.hsnap = st.hidden

    def identity(self, obj: Any) -> Any:
        """The primary key of a managed object (hidden or not): a value, or a tuple for composite keys.

        Raises:
            SessionError: the object is not in this session.
        """
        self._check()
        st = self._state(obj, "identity()")
        if st.key is not None:
            return st.key
        return self._spec(st.mapping).key_of(st)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        """Run raw SQL in the session's transaction, with ``:name`` parameters bound.

        Pending changes are flushed first. Returns the result rows (tuples that also allow
        access by column name); statements without a result return an empty list.

        Raises:
            QueryError: a ``:name`` has no value.
            DatabaseError: the database rejected the statement.
        """
        conn = self._prepare_read()
        d = conn.dialect
        text, values = bind_named(
            sql,
            params,
            d.marker,
            backslash_escapes=d.backslash_escapes,
            e_strings=d.e_strings,
            dollar_quotes=d.dollar_quotes,
            mysql_comments=d.mysql_comments,
        )
        self._wrote = True
        cur = conn.execute(text, values)
        if cur.description is None:
            return []
        rows = cur.fetchall()
        klass = row_class([d[0] for d in cur.description])
        return [klass(r) for r in rows]

    # -- budgets ----------------------------------------------------------------------------------

    @contextmanager
    def budget(self, queries: int) -> Iterator[Budget]:
        """Allow at most ``queries`` statements inside the block (budgets nest).

        Raises:
            QueryBudgetExceeded: at the first statement over the budget, before it is sent.
        """
        if isinstance(queries, bool) or not isinstance(queries, int) or queries < 0:
            msg = f"budget(queries=...) takes an int >= 0, got {queries!r}"
            raise errors.QueryError(msg)
        if self._owner != _get_ident():
            self._claim()  # the budgets are charged by the owner's statements
        b = Budget(queries)
        self._budgets.append(b)
        try:
            yield b
        finally:
            self._budgets.remove(b)

    # -- flush ------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write pending inserts, updates and deletes, in batches and in foreign-key order.

        Cascades run first: new objects reachable through "save" relations are added,
        children of deleted parents are deleted or detached, and edits to either side of a
        relation are reconciled into foreign keys.

        Raises:
            FlushError, StaleDataError, DuplicateIdentityError, DatabaseError: the
            transaction (or the innermost savepoint) is rolled back, every object is as it
            was before the flush, and the session waits for rollback().
        """
        self._check()
        if self._flushing:
            return
        self._flushing = True
        # The cascades allocate per new object too (states, claims, links): pause from there.
        paused = pause_gc(len(self._new) + len(self._deleted), self._db)
        try:
            self._db._before_flush(self)
            plan, ops = self._prepare_flush()
            persistent = self._dirty(plan)
            if not (self._new or self._deleted or persistent or ops or plan.junction_add or plan.junction_remove or plan.assoc_remove):
                return
            conn = self.connection
            db = self._db
            self._wrote = True
            if not paused:
                paused = pause_gc(len(self._new) + len(persistent) + len(self._deleted), db)
            # Links and junction rows find the states they point at by object: only they need
            # every loaded state indexed (see _states); an update-only flush after a big load does not.
            linked = plan.links or plan.junction_add or plan.junction_remove or plan.assoc_add or plan.assoc_remove
            uow = UnitOfWork(conn, conn.compiler, conn.dialect, db.registry.tables, self._identity, self._persister,
                             self._states if linked else None)
            uow.run(list(self._new.values()), persistent, list(self._deleted.values()), plan, ops)
            rekeyed = uow.finalize(self._take_all)
            self._after_flush(plan, uow, rekeyed)
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self._flushing = False
            if paused:
                resume_gc()
        self._new.clear()
        self._deleted.clear()
        self._pending_keys.clear()
        self._relation_ops.clear()

    # -- flush preparation: cascades and relation reconciliation ----------------------------------

    def _lookup(self, obj: Any) -> ObjectState | None:
        st = (self._states if self._unindexed else self._by_id).get(id(obj))
        return st if st is not None and st.obj is obj and st.status != DETACHED else None

    def _related_states(self) -> list[ObjectState]:
        """Pending states, and persistent ones whose loaded relations differ from their snapshot.

        Objects marked for deletion count too: a child appended to (or removed from) the
        collection of a parent deleted in this flush was moved by that edit, and the delete
        then deletes or detaches it with the parent's other children.
        """
        out = list(self._new.values())
        for m, states in self._identity.items():
            if m.relations:
                try:
                    candidates = self._spec(m).relation_candidates(states.values())
                except AttributeError:  # an attribute deleted from an object: the full test copes
                    candidates = [st for st in states.values() if st.status == PERSISTENT]
                out += relations_changed(list(m.relations.values()), candidates)
        doomed: dict[ClassMapping[Any], list[ObjectState]] = {}
        for st in self._deleted.values():
            if st.mapping.relations:
                doomed.setdefault(st.mapping, []).append(st)
        for m, sts in doomed.items():
            out += relations_changed(list(m.relations.values()), sts)
        return out

    def _mark_deleted(self, st: ObjectState) -> bool:
        if st.status == PENDING:
            self._forget(st)
            return False
        if st.status == PERSISTENT:
            st.status = DELETED
            self._deleted[id(st.obj)] = st
            return True
        return False

    def _prepare_flush(self) -> tuple[RelationPlan, list[ParentOp]]:
        # Save cascade: new objects reachable from managed ones join the unit of work.
        related = self._related_states()
        queue = list(related)
        while queue:
            found = reachable_unmanaged(queue, self._states)
            queue = []
            states = self._states if found else self._by_id
            for obj, info in found:
                if "save" not in info.cascade:
                    msg = (
                        f"{info.name} refers to {obj!r}, which is not in the session; add it with "
                        f"session.add(), or give {info.name} the 'save' cascade"
                    )
                    raise errors.FlushError(msg)
                self._add(obj, states)
                st = states[id(obj)]
                queue.append(st)
                related.append(st)
        plan = reconcile(related, self._lookup, self._relation_ops)
        plan.touched = related
        for st in plan.orphans:
            self._mark_deleted(st)
        for op in self._unlinked(plan.assoc_add):
            self._add_association(op, plan)
        for op in plan.assoc_remove:
            self._remove_association(op)
        ops = self._cascade_deletes(plan)
        refuse_null_links(plan, self._lookup)
        return plan, ops

    def _unlinked(self, ops: list[JunctionOp]) -> list[JunctionOp]:
        """The association pairs to create: those not linked already.

        A pair is linked when the session holds its association object, or, for two
        persistent ends whose collection was not loaded (so it cannot tell), when the table
        has the row: one SELECT per association class and chunk finds those.
        """
        out: list[JunctionOp] = []
        asked: dict[RelationInfo, list[tuple[tuple[Any, ...], JunctionOp]]] = {}
        for op in ops:
            src, tgt = self._lookup(op.source), self._lookup(op.target)
            coll = getattr(op.source, op.info.key, None)
            if src is None or tgt is None or PENDING in (src.status, tgt.status) or (coll is not None and not is_unloaded(coll)):
                out.append(op)  # a new end has no links; a loaded collection knew its members
                continue
            key = tuple(self._spec(src.mapping).get(src, c.key) for c in op.info.ref_cols) + tuple(
                self._spec(tgt.mapping).get(tgt, c.key) for c in op.info.other_ref_cols
            )
            asked.setdefault(op.info, []).append((key, op))
        for info, pairs in asked.items():
            linked = self._linked_pairs(info, [key for key, _ in pairs])
            out += [op for key, op in pairs if key not in linked]
        return out

    def _linked_pairs(self, info: RelationInfo, keys: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
        """Which of these (source key + target key) pairs an association table links now."""
        am: ClassMapping[Any] = info.through  # type: ignore[assignment]
        spec = self._spec(am)
        cols = info.fk_cols + info.other_cols
        held: dict[tuple[Any, ...], bool] = {}
        for st in self._identity.for_mapping(am).values():
            if st.status in (PERSISTENT, DELETED):
                held[tuple(spec.get(st, c.key) for c in cols)] = st.status == PERSISTENT
        linked = {key for key in keys if held.get(key)}
        ask = [key for key in keys if key not in held]
        if ask:
            conn = self.connection
            procs = [conn.dialect.result_processor(c.type) for c in cols]
            for chunk in self._graph._chunks(ask, len(cols)):
                sql = conn.compiler.select_by_keys(am.table, cols, cols, len(chunk))
                for row in conn.fetchall(sql, conn.dialect.key_params(cols, chunk)):
                    linked.add(tuple(v if p is None else p(v) for p, v in zip(procs, row)))
        return linked

    def _add_association(self, op: Any, plan: RelationPlan) -> None:
        """A target added to a BelongsToMany through a class: create the association object."""
        info = op.info
        am: ClassMapping[Any] = info.through
        edges = {tuple(c.name for c in info.fk_cols): op.source, tuple(c.name for c in info.other_cols): op.target}
        to_one = {r.key: edges[r.edge[1]] for r in am.relations.values() if r.kind == "belongs_to" and r.edge[1] in edges}
        for st in self._new.values():
            if st.mapping is am and to_one and all(getattr(st.obj, k, None) is v for k, v in to_one.items()):
                return  # the user created this association object already
        klass: Any = am.cls
        obj = object.__new__(klass) if am.plain_new else klass.__new__(klass)
        spec = self._spec(am)
        for d in am.field_defaults:
            value = d.factory(obj) if d.factory is not None and d.takes_self else (d.factory() if d.factory is not None else d.value)
            spec.setattr(obj, d.name, value)
        for name in am.domain_attributes:
            if not hasattr(obj, name):
                spec.setattr(obj, name, None)
        for key, value in to_one.items():
            spec.setattr(obj, key, value)
        self.add(obj)
        st = self._states[id(obj)]
        plan.touched.append(st)
        plan.links[id(st)] = [
            Link(info.fk_cols, info.ref_cols, op.source, info),
            Link(info.other_cols, info.other_ref_cols, op.target, info),
        ]
        src = self._lookup(op.source)
        if src is not None:
            for r in src.mapping.relations.values():
                if r.kind == "has_many" and r.target is am and r.edge == (am.table.name, tuple(c.name for c in info.fk_cols)):
                    coll = getattr(op.source, r.key, None)
                    if coll is not None and not is_unloaded(coll):
                        set_member(coll, obj, True)

    def _remove_association(self, op: Any) -> None:
        """A target removed from a BelongsToMany through a class: delete the held association objects."""
        info = op.info
        am: ClassMapping[Any] = info.through
        src, tgt = self._lookup(op.source), self._lookup(op.target)
        if src is None or tgt is None:
            return
        want = [self._spec(src.mapping).get(src, c.key) for c in info.ref_cols] + [
            self._spec(tgt.mapping).get(tgt, c.key) for c in info.other_ref_cols
        ]
        spec = self._spec(am)
        for st in list(self._identity.for_mapping(am).values()):
            if st.status == PERSISTENT and [spec.get(st, c.key) for c in info.fk_cols + info.other_cols] == want:
                self._mark_deleted(st)

    def _edges(self, m: ClassMapping[Any]) -> list[DeleteEdge]:
        """The foreign keys that reference ``m``'s rows (cached per session)."""
        found = self._delete_edges.get(m)
        if found is None:
            found = self._delete_edges[m] = delete_edges(m, self._db.registry.mappings)
        return found

    def _cascade_deletes(self, plan: RelationPlan) -> list[ParentOp]:
        """Delete or detach the children of deleted parents: loaded, held, or only in the database."""
        ops: list[ParentOp] = []
        done: set[int] = set()
        queue = list(self._deleted.values())
        # A child this flush moves to another parent, or takes out of its parent (by either
        # side), is no longer that parent's: the old parent's delete cascade does not take it,
        # whatever its collection (loaded now, or loaded by this cascade) still shows.
        moved = {(id(cst.obj), edge): new for cst, edge, new, _ in plan.moves} if queue else {}
        while queue:
            batch = [st for st in queue if id(st) not in done]
            queue = []
            for st in batch:
                done.add(id(st))
            need: dict[Any, list[ObjectState]] = {}
            for st in batch:
                for info, members in delete_targets(st):
                    if members is None:
                        if info.fk_rule("on_delete") != "CASCADE":
                            need.setdefault(info, []).append(st)
                        continue
                    queue += self._doom_children(st, info, members, moved)
            for info, sts in need.items():
                # No database cascade: the children must be loaded to be deleted (one query).
                self._graph.load(sts, info)
                for st in sts:
                    value: Any = getattr(st.obj, info.key, None)
                    items: list[Any] = list(value) if info.to_many and value is not None else ([value] if value is not None else [])
                    queue += self._doom_children(st, info, items, moved)
            by_mapping: dict[ClassMapping[Any], list[ObjectState]] = {}
            for st in batch:
                if st.status == DELETED:
                    by_mapping.setdefault(st.mapping, []).append(st)
            for m, parents in by_mapping.items():
                for edge in self._edges(m):
                    queue += self._detach_children(m, parents, edge, plan, ops)
        return ops

    def _doom_children(self, st: ObjectState, info: RelationInfo, members: list[Any], moved: dict[Any, Any]) -> list[ObjectState]:
        """Mark the members of a deleted parent's "delete" relation deleted; returns those newly marked."""
        out: list[ObjectState] = []
        for child in members:
            if moved.get((id(child), info.edge), st.obj) is not st.obj:
                continue  # moved to another parent, or taken out of this one
            cst = self._lookup(child)
            if cst is not None and self._mark_deleted(cst):
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
        if edge.owning is not None and not edge.link:
            # Parents whose collection is loaded had every child handled above.
            owning = edge.owning.key
            keys = [k for k, st in zip(keys, parents) if st.rel(owning, _NOT_LOADED) is _NOT_LOADED]
        self._plan_unheld_children(edge, keys, ops, {m})
        return queued

    def _detach_held(
        self, m: ClassMapping[Any], holder: ClassMapping[Any], keyset: set[Any], edge: DeleteEdge, plan: RelationPlan, delete: bool
    ) -> list[ObjectState]:
        """Held rows of ``holder`` that reference a deleted parent: deleted, detached or refused."""
        spec = self._spec(holder)
        cols = edge.cols
        queued: list[ObjectState] = []
        for h in list(self._identity.for_mapping(holder).values()):
            if h.status != PERSISTENT:
                continue
            fk = spec.get(h, cols[0].key) if len(cols) == 1 else tuple(spec.get(h, c.key) for c in cols)
            if fk not in keyset:
                continue
            if any(lk.info.edge == edge.key for lk in plan.links.get(id(h), ())):
                continue  # moved to another parent, or taken out of this one, in this flush
            if delete:
                if self._mark_deleted(h):
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
                plan.moves.append((h, edge.key, None, []))
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
        for i, (h, e, new, old_parents) in enumerate(plan.moves):
            if e != edge.key or new is None or id(new) not in ids or h.status not in (PENDING, PERSISTENT):
                continue
            links = [lk for lk in plan.links.get(id(h), ()) if lk.info.edge != edge.key]
            if delete:
                if self._mark_deleted(h):
                    queued.append(h)
                plan.links[id(h)] = links
                plan.moves[i] = (h, e, None, [*old_parents, new])
                continue
            if not all(c.nullable for c in edge.cols):
                msg = (
                    f"cannot delete {label(new, self._lookup)}: {label(h.obj, self._lookup)} was just linked to it through {edge.name}, "
                    "whose key is NOT NULL with no ON DELETE rule; link it to another parent, or give the "
                    "relation cascade='delete' (or 'all')"
                )
                raise errors.FlushError(msg)
            plan.links[id(h)] = [*links, Link(edge.cols, edge.ref_cols, None, edge.infos[0])]
            plan.moves[i] = (h, e, None, [*old_parents, new])

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
            child_keys = self._child_keys(holder, cols, keys)
            for child_edge in self._edges(holder):
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
        for edge in self._edges(m):
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
        return self._graph._values(st, cols)

    def _child_keys(self, holder: ClassMapping[Any], cols: list[Any], keys: list[Any]) -> list[Any]:
        """Primary keys of the ``holder`` rows whose ``cols`` match ``keys`` (one query per chunk)."""
        conn = self.connection
        graph = self._graph
        procs = [conn.dialect.result_processor(c.type) for c in holder.pk]
        out: list[Any] = []
        for chunk in graph._chunks(keys, len(cols)):
            sql = conn.compiler.select_by_keys(holder.table, holder.pk, cols, len(chunk))
            for row in conn.fetchall(sql, conn.dialect.key_params(cols, chunk)):
                vals = [v if p is None else p(v) for p, v in zip(procs, row)]
                out.append(vals[0] if len(vals) == 1 else tuple(vals))
        return out

    # -- after the flush: both sides in memory, relation snapshots --------------------------------

    def _after_flush(self, plan: RelationPlan, uow: UnitOfWork, rekeyed: list[tuple[ObjectState, Any]]) -> None:
        # Many children share a parent: each parent's state is looked up once.
        parent_states: dict[int, ObjectState | None] = {}
        settled, in_parent = plan.settled, plan.in_parent
        # Moves come grouped by mapping and edge: the child references to set, looked up per group.
        last: tuple[Any, Any] | None = None
        ref_keys: list[str] = []
        set_ref: Callable[[Any, str, Any], None] = setattr
        for child_state, edge, new, old_parents in plan.moves:
            if new is not None and not old_parents:
                k = id(child_state)
                if k in settled:
                    continue
                if k in in_parent:  # the collection holds it already: point the child at its parent
                    m = child_state.mapping
                    if last is None or last[0] is not m or last[1] != edge:
                        last = (m, edge)
                        ref_keys = [info.key for info in self._edge_relations(m, edge)[0]]
                        set_ref = self._spec(m).setattr
                    for key in ref_keys:
                        set_ref(child_state.obj, key, new)
                    continue
            self._mirror(child_state, edge, new, old_parents, parent_states)
        for op in plan.junction_add + plan.assoc_add:
            self._mirror_pair(op, True)
        for op in plan.junction_remove + plan.assoc_remove:
            self._mirror_pair(op, False)
        for st, old_key in rekeyed:
            self._follow_key(st, old_key)
        self._drop_deleted(uow.deleted)
        self._gone += uow.deleted
        through = self._db._through_relations()
        if through:
            for st in uow.inserted:
                for info in through.get(st.mapping, ()):
                    self._mirror_association(st, info, True)
            for st in uow.deleted:
                for info in through.get(st.mapping, ()):
                    self._mirror_association(st, info, False)
        # Relation snapshots move for what this flush looked at or changed; the rest is unchanged.
        touched: dict[int, ObjectState] = {id(st): st for st in plan.touched}
        parents_seen: set[int] = set()
        for child_state, _, new, old_parents in plan.moves:
            touched[id(child_state)] = child_state
            for parent in (new, *old_parents) if old_parents else (new,):
                if parent is None or id(parent) in parents_seen:
                    continue
                parents_seen.add(id(parent))
                pst = parent_states[id(parent)] if id(parent) in parent_states else self._lookup(parent)
                if pst is not None:
                    touched[id(pst)] = pst
        for op in plan.junction_add + plan.assoc_add + plan.junction_remove + plan.assoc_remove:
            for obj in (op.source, op.target):
                ost = self._lookup(obj)
                if ost is not None:
                    touched[id(ost)] = ost
        tx_new = self._tx_new
        # Per mapping: (attribute, is a reference, is to-many), looked up once per flush.
        plans: dict[ClassMapping[Any], list[tuple[str, bool, bool]]] = {}
        for st in touched.values():
            if st.status != PERSISTENT or not st.mapping.relations:
                continue
            if st.crels is None and id(st.obj) not in tx_new:
                self._keep_committed_rels(st)
            plan_m = plans.get(st.mapping)
            if plan_m is None:
                plan_m = plans[st.mapping] = [
                    (info.key, info.kind == "belongs_to", info.to_many) for info in st.mapping.relations.values()
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

    def _mirror(self, child_state: ObjectState, edge: Any, new: Any, old_parents: list[Any], parent_states: dict[int, ObjectState | None]) -> None:
        child = child_state.obj
        refs, _ = self._edge_relations(child_state.mapping, edge)
        for info in refs:
            self._spec(child_state.mapping).setattr(child, info.key, new)
        ends = [(p, False) for p in old_parents if p is not None and p is not new] if old_parents else []
        if new is not None:
            ends.append((new, True))
        for parent, adding in ends:
            k = id(parent)
            if k in parent_states:
                pst = parent_states[k]
            else:
                pst = parent_states[k] = self._lookup(parent)
            if pst is None or pst.status == GHOST:
                # A stand-in has nothing loaded to mirror into (touching it would load it); its
                # collections load after this flush, from the rows it wrote.
                continue
            for info in self._edge_relations(pst.mapping, edge)[1]:
                value = getattr(parent, info.key, None)
                if value is not None and is_unloaded(value):
                    continue
                if info.kind == "has_one":
                    if adding:
                        self._spec(pst.mapping).setattr(parent, info.key, child)
                    elif value is child:
                        self._spec(pst.mapping).setattr(parent, info.key, None)
                    continue
                if value is not None:
                    set_member(value, child, adding)

    def _edge_relations(self, m: ClassMapping[Any], edge: Any) -> tuple[list[RelationInfo], list[RelationInfo]]:
        """The BelongsTo relations of ``m`` on a foreign key, and its HasMany/HasOne ones (cached)."""
        found = self._edge_cache.get((m, edge))
        if found is None:
            infos = [i for i in m.relations.values() if i.edge == edge]
            found = self._edge_cache[(m, edge)] = (
                [i for i in infos if i.kind == "belongs_to"],
                [i for i in infos if i.kind in ("has_many", "has_one")],
            )
        return found

    def _mirror_association(self, st: ObjectState, info: Any, adding: bool) -> None:
        """An association object written directly: the loaded plain list of targets follows."""
        ends: dict[tuple[str, ...], Any] = {}
        for ref in st.mapping.relations.values():
            if ref.kind == "belongs_to":
                ends[ref.edge[1]] = getattr(st.obj, ref.key, None)
        source = ends.get(tuple(c.name for c in info.fk_cols))
        target = ends.get(tuple(c.name for c in info.other_cols))
        src = self._lookup(source) if source is not None else None
        if src is None or target is None or src.status == GHOST:
            return
        coll = getattr(source, info.key, None)
        if coll is None or is_unloaded(coll):
            return
        if set_member(coll, target, adding):
            src.rels[info.key] = tuple(coll)

    def _drop_deleted(self, deleted: Sequence[ObjectState]) -> None:
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
        for m, states in self._identity.items():
            infos = [i for i in m.relations.values() if i.kind != "belongs_to" and i.target in gone]
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

    def _keep_committed_rels(self, st: ObjectState) -> None:
        """Before a relation snapshot changes, remember the committed one (for rollback)."""
        if st.crels is None and id(st.obj) not in self._tx_new:
            st.crels = dict(st.rels)
            self._since_commit.append(st)

    def _discard(self, holder: ObjectState, info: Any, obj: Any) -> None:
        value = getattr(holder.obj, info.key, None)
        if value is None or is_unloaded(value):
            return
        self._keep_committed_rels(holder)
        spec = self._spec(holder.mapping)
        if not info.to_many:
            if value is obj:
                spec.setattr(holder.obj, info.key, None)
                holder.rels[info.key] = None
            return
        if set_member(value, obj, False):
            holder.rels[info.key] = tuple(value)

    def _mirror_pair(self, op: Any, adding: bool) -> None:
        inverse = op.info.inverse
        if inverse is None:
            return
        coll = getattr(op.target, inverse.key, None)
        if coll is None or is_unloaded(coll):
            return
        set_member(coll, op.source, adding)

    def _follow_key(self, st: ObjectState, old_key: Any) -> None:
        """A natural key changed (ON UPDATE CASCADE moved the children): bring held children in line."""
        for edge in self._edges(st.mapping):
            holder = edge.holder
            if holder is None:
                continue
            spec = self._spec(holder)
            cols = edge.cols
            new = [self._spec(st.mapping).get(st, c.key) for c in edge.ref_cols]
            old = [old_key] if len(edge.ref_cols) == 1 else list(old_key)
            for h in self._identity.for_mapping(holder).values():
                if [spec.get(h, c.key) for c in cols] == old:
                    for c, v in zip(cols, new):
                        spec.set(h, c.key, v)
                    self._take(h)

    def _take_all(self, states: list[ObjectState]) -> None:
        take_snapshots(states, self._spec, self._since_commit)

    def _take(self, st: ObjectState) -> None:
        self._keep_committed(st)
        st.retake(self._spec(st.mapping).take(st.obj))
        st.hsnap = st.hidden

    def _dirty(self, plan: RelationPlan) -> list[ObjectState]:
        """Persistent states the flush must visit: changed columns, or a foreign key to derive.

        Runs over every managed object at each flush and commit, through the mapping's
        generated ``changed`` scan (see ``SnapshotSpec``).
        """
        links = plan.links
        out: list[ObjectState] = []
        for m, states in self._identity.items():
            changed = self._spec(m).changed(states.values())
            if links:
                ids = {id(st) for st in changed}
                out += [st for st in states.values() if st.status == PERSISTENT and (id(st) in ids or id(st) in links)]
            else:
                out += changed
        return out

    def _keep_committed(self, st: ObjectState) -> None:
        """Before a snapshot changes, remember the committed values it stood for (for rollback)."""
        if st.committed is None and st.snap is not None:
            st.committed = (st.snap, st.hsnap)
            self._since_commit.append(st)

    def _fail(self, exc: BaseException) -> None:
        conn = self._conn
        if conn is not None and not conn.closed:
            try:
                if self._frames:
                    conn.rollback_to_savepoint(self._frames[-1].name)
                else:
                    conn.rollback()
            except errors.DatabaseError:
                conn.broken = True
        self._pending_rollback = exc

    # -- transactions -----------------------------------------------------------------------------

    def commit(self) -> None:
        """Flush, then commit. The session stays usable; objects keep their values.

        Raises:
            DatabaseError: the flush or the COMMIT failed (a constraint checked at COMMIT, a
                lost connection). Nothing of the transaction was committed; the keys the
                database generated in it are cleared, and, as after a failed flush, the
                session refuses everything but rollback() and close() until rolled back.
            FlushError, StaleDataError: the flush failed (see flush()).
        """
        self._check()
        self.flush()
        if self._frames:
            msg = "commit() inside begin_nested(): leave the nested block first"
            raise errors.SessionError(msg)
        if self._conn is not None:
            try:
                self._conn.commit()
            except BaseException as exc:
                self._fail(exc)
                # Those rows were never committed: their keys are nobody's (rollback() then
                # expunges the objects and puts back versions and the rest).
                for st in self._tx_new.values():
                    self._clear_generated(st)
                raise
        for st in self._gone:
            if st.status == DELETED and st.deleted_flushed and self._states.get(id(st.obj)) is st:
                del self._states[id(st.obj)]
                st.status = DETACHED
        self._gone.clear()
        for st in self._since_commit:
            st.committed = None
            st.crels = None
        self._since_commit.clear()
        self._tx_new.clear()
        self._wrote = False
        self._loaded_after_write.clear()
        self._db._after_commit(self)

    def rollback(self) -> None:
        """Roll back to the last commit, in the database and in memory.

        Objects added since are expunged (keys the database generated for them are
        cleared), objects deleted since are persistent again, and persistent objects get
        their last committed values back.

        Raises:
            SessionClosedError: the session is closed.
            SessionError: called from a thread other than the session's.
            DatabaseError: the ROLLBACK failed (memory is restored all the same, and the
                connection is thrown away; the next transaction runs on a new one).
        """
        if self._closed:
            msg = "this session is closed; open a new one with db.session()"
            raise errors.SessionClosedError(msg)
        if self._owner != _get_ident():
            self._claim()
        self._frames.clear()
        reread = self._loaded_after_write
        self._loaded_after_write = []
        try:
            if self._conn is not None:
                self._conn.rollback()
        finally:
            self._pending_rollback = None
            self._restore_committed()
            # Also when ROLLBACK failed: without a connection the objects leave the session.
            self._reread(reread)

    def _clear_generated(self, st: ObjectState) -> None:
        if st.generated and st.mapping.autoinc is not None:
            self._spec(st.mapping).set(st, st.mapping.autoinc.key, None)
            st.generated = False

    def _restore_committed(self) -> None:
        self._relation_ops.clear()
        self._wrote = False
        for st in list(self._tx_new.values()):
            self._clear_generated(st)
            self._forget(st)
        self._tx_new.clear()
        self._new.clear()
        self._deleted.clear()
        self._identity.clear()
        self._since_commit.clear()
        self._gone.clear()
        for st in self._states.values():
            if st.status == GHOST:
                self._identity.add(st)
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
        st.key = self._spec(st.mapping).key_of(st)
        self._identity.add(st)

    def _restore_relations(self, st: ObjectState, rels: dict[str, Any]) -> None:
        """Put loaded relations back to a snapshot: references and collection contents."""
        spec = self._spec(st.mapping)
        for info in st.mapping.relations.values():
            if info.key not in rels:
                if info.to_many and st.status != PENDING:
                    current = getattr(st.obj, info.key, None)
                    if current is not None and not is_unloaded(current):
                        # Loaded after the snapshot, it may show rows the rollback undid, or
                        # edits the rollback discards: it loads again on next use.
                        spec.setattr(st.obj, info.key, self._graph.unloaded(st, info))
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
        spec = self._spec(st.mapping)
        # A loaded row's snapshot may end with its references (ObjectState.rels): not values.
        if snap is not None and spec.current(st.obj) != snap[: len(spec.names)]:
            spec.restore(st.obj, snap)
        st.snap = snap
        if hsnap is not None and st.hidden is not None:
            st.hidden = hsnap
        st.hsnap = hsnap

    @contextmanager
    def begin_nested(self) -> Iterator[Session]:
        """A savepoint: if the block raises, the database and memory return to its start.

        Pending changes are flushed when the block starts and when it ends.
        """
        self.flush()
        conn = self.connection
        name = conn.savepoint()
        frame = _Frame(name, self)
        self._frames.append(frame)
        try:
            yield self
            self.flush()
        except BaseException:
            self._frames.remove(frame)
            try:
                if not conn.closed:
                    conn.rollback_to_savepoint(name)
                    conn.release_savepoint(name)
            finally:
                self._pending_rollback = None
                self._restore_frame(frame)
            reread = self._loaded_after_write[frame.loaded_mark:]
            del self._loaded_after_write[frame.loaded_mark:]
            self._reread(reread)
            raise
        self._frames.remove(frame)
        conn.release_savepoint(name)

    def _restore_frame(self, frame: _Frame) -> None:
        loaded: list[ObjectState] = []
        for k, st in list(self._states.items()):
            if k in frame.states:
                continue
            if k in self._tx_new:
                self._clear_generated(st)
                self._forget(st)
            else:
                loaded.append(st)
        self._new = {k: st for k, st in frame.new.items() if k in self._states}
        self._deleted = dict(frame.deleted)
        self._identity.clear()
        for k, st in self._states.items():
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
            st.key = self._spec(st.mapping).key_of(st)
            if status == PERSISTENT or (status == DELETED and not deleted_flushed):
                self._identity.add(st)
        for st in loaded:
            self._restore_loaded(st)

    def _reread(self, states: list[ObjectState]) -> None:
        """Read again the rows of objects loaded after the transaction wrote, once it is undone.

        They were loaded with values the rollback may have undone. One SELECT per mapping and
        chunk of keys sets their columns to what the database holds now; an object whose row
        is gone (written by the undone work itself) leaves the session. Without a usable
        connection they leave the session too: nothing can say what their values are.
        """
        by_mapping: dict[ClassMapping[Any], dict[Any, ObjectState]] = {}
        for st in states:
            if (
                self._states.get(id(st.obj)) is st
                and st.status in (PERSISTENT, DELETED)
                and id(st.obj) not in self._tx_new
                and st.key is not None
            ):
                by_mapping.setdefault(st.mapping, {})[st.key] = st
        conn = self._conn
        usable = conn is not None and not conn.closed and not conn.broken
        for m, held in by_mapping.items():
            loader = self._loader(m)
            names = [c.key for c in loader.columns]
            found: dict[Any, dict[str, Any]] = {}
            if usable:
                assert conn is not None
                try:
                    for chunk in self._graph._chunks(list(held), len(m.pk)):
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
                    self._forget(st)
                else:
                    self._set_row(st, by_key)
                    st.committed = None

    def _restore_loaded(self, st: ObjectState) -> None:
        """An object first loaded inside a failed savepoint stays, with the values it was loaded with.

        Its row existed before the block (unless the block's own raw SQL wrote it), so, unlike
        an object added inside the block, it is not expunged: expunging it would silently drop
        later changes to it and let get() build a second object for the same row.
        """
        snap, hsnap = st.committed if st.committed is not None else (st.snap, st.hsnap)
        st.committed = None
        self._deleted.pop(id(st.obj), None)
        self._revert(st, snap, hsnap)

    def close(self) -> None:
        """Release the connection (rolling back anything uncommitted) and every object.

        The objects become detached: they keep their values, the session no longer references
        them (they are freed once you drop them, even while the session stays bound), and a
        relation on them that was never loaded raises ``RelationNotLoadedError``. Any thread may
        close a session, for example a server cleaning up after a request, once the thread that
        uses the session is done with it (not while it is inside a call).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            conn, self._conn = self._conn, None
        self._db._sessions.discard(self)
        try:
            if conn is not None:
                conn.close()
        finally:
            self._let_go_all()

    def _let_go_all(self) -> None:
        """Drop every reference to managed objects (``close()``).

        Only the session's own containers are emptied, and the cohorts: an object the caller
        keeps must not keep the rest of its result alive through them.
        """
        for cohort in self._unindexed:
            cohort.clear()
        closed_refs = self._graph.closed_refs
        for k, st in self._by_id.items():
            cohort = st.cohort
            if type(cohort) is list:
                if cohort:
                    cohort.clear()
            elif st.status == GHOST and isinstance(cohort, RelationInfo):
                closed_refs[k] = cohort
        self._unindexed.clear()
        self._by_id.clear()
        self._identity.clear()
        for pending in self._graph.ghosts.values():
            pending.clear()
        for held in (self._new, self._deleted, self._tx_new, self._pending_keys, self._held, self._refs):
            held.clear()
        for log in (self._since_commit, self._gone, self._loaded_after_write, self._relation_ops):
            log.clear()
        self._collecting.clear()

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    # -- set-based writes (used by Query) ---------------------------------------------------------

    def _matching_keys(self, m: ClassMapping[Any], where: BoolExpr | None) -> list[Any]:
        conn = self.connection
        from .sql import Select

        sql, params = conn.compiler.select(Select(m.table.name, list(m.pk), where, for_update=True))
        procs = [conn.dialect.result_processor(c.type) for c in m.pk]
        keys = []
        for row in conn.fetchall(sql, params):
            vals = [v if p is None else p(v) for p, v in zip(procs, row)]
            keys.append(vals[0] if len(vals) == 1 else tuple(vals))
        return keys

    def _returned_keys(self, m: ClassMapping[Any], rows: Sequence[Sequence[Any]]) -> list[Any]:
        d = self._db.engine.dialect
        procs = [d.result_processor(c.type) for c in m.pk]
        out = []
        for row in rows:
            vals = [v if p is None else p(v) for p, v in zip(procs, row)]
            out.append(vals[0] if len(vals) == 1 else tuple(vals))
        return out

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
        conn = self._prepare_read()
        self._wrote = True
        held = self._identity.for_mapping(m)
        keys: list[Any] = []
        if held and not returning_ok:
            keys = self._matching_keys(m, where)
        sql, params = build(list(m.pk) if held and returning_ok else [])
        if held and returning_ok:
            rows = conn.fetchall(sql, params)
            return len(rows), self._returned_keys(m, rows), held
        return int(conn.execute(sql, params).rowcount), keys, held

    def _bulk_update(self, m: ClassMapping[Any], assignments: list[tuple[Column, Any]], where: BoolExpr | None) -> int:
        conn = self.connection
        count, keys, held = self._bulk_write(
            m, where, lambda ret: conn.compiler.update_where(m.table.name, assignments, where, ret), conn.dialect.update_returning
        )
        spec = self._spec(m)
        for key in keys:
            st = held.get(key)
            if st is None or st.snap is None:
                continue
            # Only the assigned columns are now in the database: other unflushed
            # changes of the object must still be written by the next flush.
            self._keep_committed(st)
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

    def _bulk_delete(self, m: ClassMapping[Any], where: BoolExpr | None) -> int:
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
                self._identity.discard(st)
                self._gone.append(st)
                gone.append(st)
        self._drop_deleted(gone)
        return count

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._states)} objects"
        return f"<Session {state}>"

    def __contains__(self, obj: Any) -> bool:
        st = self._states.get(id(obj))
        return st is not None and st.obj is obj and st.status != DETACHED
