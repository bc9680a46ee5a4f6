"""The Session: the public face of the unit of work, and its lifecycle over one connection.

What the session knows about its objects lives in its ``Tracker``; loaders, queries and
accessors reach it through the ``SessionCore`` (the seam); a flush is planned, executed and
mirrored by the ``uow`` package, and commit, rollback and savepoints restore memory through it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from . import errors, writes
from .accessors import CollectionAccessor, ReferenceAccessor
from .core import SessionCore, key_arg
from .engine import Budget, Connection, Row, row_class
from .graph import resolve_paths
from .inheritance import load_group
from .loading import pause_gc, resume_gc
from .mapping import ClassMapping
from .merge import merge as merge_graph
from .merge import refuse_detached
from .replace import replace as replace_object
from .query import Query
from .sql import bind_named
from .state import DELETED, DETACHED, GHOST, PERSISTENT, ObjectState
from .uow.execute import UnitOfWork
from .uow.plan import FlushPlanner
from .uow.restore import Frame, Restorer
from .uow.tracker import Tracker

if TYPE_CHECKING:
    from .database import Database

__all__ = ["Session", "note_failed_rollback"]

T = TypeVar("T")

log = logging.getLogger("mapper.session")
_get_ident = threading.get_ident


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


class Session:
    """A unit of work: use as ``with db.session() as s:``.

    A clean exit commits, an exception rolls back, and the session is closed either way.
    The session holds one pooled connection from its first statement until it is closed.
    It belongs to the thread that first uses it: any other thread gets a SessionError, except
    for close(), which any thread may call.
    """

    def __init__(
        self,
        db: Database,
        *,
        autoflush: bool = True,
        lazy: str | None = None,
        readonly: bool = False,
        pin_primary: bool = False,
        threads: tuple[int, int] | None = None,
    ) -> None:
        self._db = db
        #: Reads only, from a replica unless ``pin_primary`` (``db.session(readonly=True)``).
        self.readonly = readonly
        self.pin_primary = pin_primary
        self.autoflush = autoflush
        self.lazy = lazy if lazy is not None else db.lazy
        self._conn: Connection | None = None
        self._pending_rollback: BaseException | None = None
        self._closed = False
        #: The thread that first used the session (``threading.get_ident()``) and its name.
        self._owner: int | None = None
        self._owner_name = ""
        #: A second thread that may use the session: an AsyncSession's worker, which runs the
        #: session's I/O while the event loop's thread (the owner) awaits it.
        self._companion: int | None = None
        if threads is not None:
            self._owner, self._companion = threads
            self._owner_name = "the event loop"
        #: Guards claiming the session, taking its connection and closing it.
        self._lock = threading.RLock()
        self._budgets: list[Budget] = []
        self._flushing = False
        #: States written in this transaction, kept only for mapper lifecycle hooks
        #: (``before_commit``, ``after_rollback``) that need them.
        self._written: list[ObjectState] = []
        self._t = Tracker(db.registry, db._runtime, db._sessions)
        self._core = SessionCore(
            db, self._t, lazy=self.lazy, check=self._check, connect=self._connection, autoflush=self._autoflush
        )
        self._graph = self._core.graph
        self._planner = FlushPlanner(self._t, self._graph, lambda: self.connection)
        self._restorer = Restorer(self._t, self._graph)
        self._by_class = db.registry.by_class
        #: Identity dicts of classes with a one-column key, by class, for get()'s fast path.
        self._held: dict[type, dict[Any, ObjectState]] = {}

    # -- lifecycle --------------------------------------------------------------------------------

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
        if me.ident == self._companion and me.ident is not None:
            return
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
                    conn = self._db._router.connect(self, self.readonly, self.pin_primary)
                    conn.budgets = self._budgets
                    self._conn = conn
        return conn

    def _connection(self) -> Connection:
        """The connection once held, without the checks (what follows a check or a read)."""
        conn = self._conn
        return conn if conn is not None else self.connection

    @property
    def query_count(self) -> int:
        """Statements this session has sent (BEGIN, COMMIT and savepoints not counted)."""
        return self._conn.count if self._conn is not None else 0

    def _autoflush(self) -> None:
        """Flush before a read, unless autoflush is off or a flush is running."""
        if self.autoflush and not self._flushing:
            self.flush()

    def _read(self) -> Connection:
        self._check()
        self._autoflush()
        return self.connection

    def _mapping_for(self, cls: type) -> ClassMapping[Any]:
        return self._db.registry.mapping_for(cls)

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
        try:
            if conn is not None:
                conn.close()
        finally:
            self._core.let_go_all()
            self._held.clear()
            self._written = []

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
        return self._closed

    # -- adding and removing ----------------------------------------------------------------------

    def add(self, obj: object) -> None:
        """Manage ``obj``: a new object is inserted at the next flush.

        Adding an object already in the session does nothing; adding one marked for
        deletion cancels the deletion.

        Raises:
            MapperError: the object's class is not mapped.
            SessionError: another open session of this Database manages the object.
            SessionError: the object has a key and carries relations another session loaded
                (that session closed, or it was expunged): ``merge()`` brings it back.
            DuplicateIdentityError: another managed object has the same primary key.
        """
        self._check()
        refuse_detached(self._t, obj)
        self._t.add(obj, self._t.states)

    def add_all(self, objs: Iterable[Any]) -> None:
        """``add()`` each object, in order."""
        self._check()
        states = self._t.states
        for obj in objs:
            refuse_detached(self._t, obj)
            self._t.add(obj, states)

    def merge(self, obj: T) -> T:
        """Bring an object edited outside this session back; returns this session's instance.

        The managed instance of the same row is found by key (the identity map, then one
        batched SELECT per class and level of the graph), the object's columns and loaded
        relations are copied onto it, and the same happens along relations with "save" to the
        objects they hold. An object without a key (or whose row is gone) is added as new.
        Relations that were never loaded are left as they are. The changes are written at the
        next flush, as edits made in the session would be. An object this session already
        manages is returned as it is.

        Raises:
            MapperError: the object's class is not mapped.
            SessionError: the object is a stand-in for a relation that was never loaded.
            StaleDataError: its version column differs from the row's (it changed since).
        """
        self._check()
        result: T = merge_graph(self._core, obj)
        return result

    def replace(self, old: T, new: T) -> T:
        """Make ``new`` the managed object of ``old``'s row (immutable entities); returns ``new``.

        For frozen attrs classes and frozen dataclasses: ``s.replace(old, attrs.evolve(old,
        name="x"))``. The next flush UPDATEs the columns whose values differ from the row as
        loaded (only those). The identity map, and every loaded collection and reference of
        the objects this session holds, give ``new`` where they gave ``old``; ``old`` is no
        longer managed. Relations that ``new`` carries over from ``old`` (``evolve`` passes
        them on) stay loaded; a relation given another value is flushed as an edit.

        Raises:
            SessionError: ``old`` is not persistent in this session, ``new`` is of another
                class, already managed, or has another primary key.
        """
        self._check()
        replace_object(self._t, old, new)
        return new

    def delete(self, obj: object, hard: bool = False) -> None:
        """Delete ``obj`` at the next flush (a pending object is simply dropped).

        Where its mapper declares ``soft_delete``, the flush sets that column instead of deleting
        the row (and the "delete" cascade soft-deletes the children that can be); ``hard=True``
        deletes the row, and with it, along the cascade, its children's rows.

        Raises:
            SessionError: the object is not in this session.
        """
        self._check()
        st = self._t.state_of(obj, "delete()")
        st.hard_delete = bool(hard)
        if st.status == GHOST:
            # A reference not loaded yet: load it, so its relations can cascade.
            self.get(st.mapping.cls, st.key)
            if st.status == GHOST:
                return
        self._t.mark_deleted(st)

    def expunge(self, obj: object) -> None:
        """Stop managing ``obj``: its changes are no longer tracked or flushed.

        Raises:
            SessionError: the object is not in this session.
        """
        self._check()
        self._t.forget(self._t.state_of(obj, "expunge()"))

    def clear(self) -> None:
        """Stop managing every object (pending changes are dropped, nothing is written)."""
        self._check()
        self._t.forget_all()

    # -- reading ----------------------------------------------------------------------------------

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

    def held(self, cls: type[T], pk: Any) -> T | None:
        """The persistent object with this one-column key if the session holds it, else None;
        never sends a statement (what an AsyncSession's ``get`` answers without a trip to its
        worker)."""
        self._check()
        if type(pk) is tuple or pk is None:
            return None
        m = self._by_class.get(cls)
        if m is None:
            m = self._mapping_for(cls)
        if len(m.pk) != 1:
            return None
        st = self._t.identity.for_mapping(m).get(pk)
        return st.obj if st is not None and st.status == PERSISTENT else None

    def _get(self, cls: type[T], pk: Any) -> T | None:
        if self._closed or self._pending_rollback is not None or self._owner != _get_ident():
            self._check()
        m = self._by_class.get(cls)
        if m is None:
            m = self._mapping_for(cls)
        # The common case (a one-column key given as a plain value) skips argument checks.
        key = pk if len(m.pk) == 1 and pk is not None and type(pk) is not tuple else key_arg(m, pk)
        imap = self._t.identity.for_mapping(m)
        if len(m.pk) == 1:
            self._held[cls] = imap
        st = imap.get(key)
        if st is not None and st.status != GHOST:
            return None if st.status == DELETED else st.obj
        found: T | None = self._core.fetch_by_key(m, key, st)
        return found

    def get_one(self, cls: type[T], pk: Any) -> T:
        """Like get(), but a missing row raises NotFoundError.

        Raises:
            NotFoundError: no row has that key.
        """
        obj = self.get(cls, pk)
        if obj is None:
            m = self._mapping_for(cls)
            msg = f"no {m.cls.__name__} with {', '.join(c.key for c in m.pk)} = {pk!r}"
            raise errors.NotFoundError(msg)
        return obj

    def query(self, cls: type[T]) -> Query[T]:
        """A Query over a mapped class."""
        self._check()
        return Query(self._core, self._mapping_for(cls))

    def upsert(self, *objs: Any, on: str | Sequence[str] | None = None) -> None:
        """Insert each object, or update the row that has its key, now: ``INSERT ... ON CONFLICT
        DO UPDATE`` (``ON DUPLICATE KEY UPDATE`` on MariaDB), one statement per class and chunk.

        Pending changes are flushed first. The objects become persistent in this session,
        holding the values the row has afterwards (a generated key, defaults); the identity
        map holds them. ``on`` names the attributes of a unique key to match instead of the
        primary key. Related objects are not upserted: a reference must have its key, and
        collection members follow the save cascade at the next flush, as after ``add()``.

        Raises:
            MapperError: a class is not mapped.
            QueryError: an object lacks the key value, ``on`` names no unique key, two objects
                share a key, or the class has a version column.
            DuplicateIdentityError: another object of this session has the key.
        """
        self._check()
        items = list(objs[0]) if len(objs) == 1 and isinstance(objs[0], (list, tuple)) else list(objs)
        writes.upsert(self._core, items, on)

    def insert_rows(self, cls: type, rows: Sequence[dict[str, Any]], *, returning: bool = False) -> Any:
        """Insert plain rows (dicts of attribute names, hidden key columns included) without
        building objects: values converted by the column types, one statement per chunk.

        Column defaults, versions and timestamps are filled in as the flush would. Returns
        the number of rows, or with ``returning=True`` their keys in row order.

        Raises:
            MapperError: the class is not mapped.
            QueryError: a row is not a dict or names an attribute that is not mapped.
            DataError: a value its column's type refuses (nothing is sent).
        """
        self._check()
        return writes.insert_rows(self._core, self._mapping_for(cls), rows, returning)

    def update_rows(self, cls: type, rows: Sequence[dict[str, Any]]) -> int:
        """Update rows by key from dicts (the key attributes and the values to set, the same
        attributes in every row) without loading objects; one statement per chunk. Objects the
        session holds take the new values. Returns the rows matched.

        Raises:
            MapperError: the class is not mapped.
            QueryError: a name is not mapped, a row lacks its key or sets other attributes.
            DataError: a value its column's type refuses (nothing is sent).
        """
        self._check()
        return writes.update_rows(self._core, self._mapping_for(cls), rows)

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
        states = [self._t.state_of(o, "load()") for o in items]
        by_mapping: dict[ClassMapping[Any], list[ObjectState]] = {}
        for st in states:
            # Objects of one hierarchy load together, through the base that has the relations.
            by_mapping.setdefault(load_group(st.mapping, paths), []).append(st)
        trees = [(sts, resolve_paths(m, paths)) for m, sts in by_mapping.items()]
        self._read()
        for sts, tree in trees:
            self._graph.load_tree(sts, tree)

    def related(self, obj: object, name: str) -> Any:
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
        st = self._t.state_of(obj, "related()")
        info = st.mapping.relations.get(name) if isinstance(name, str) else None
        if info is None:
            msg = (
                f"{st.mapping.cls.__name__} has no relation {name!r}; its relations are "
                f"{sorted(st.mapping.relations)}"
            )
            raise errors.QueryError(msg)
        if info.to_many:
            return CollectionAccessor(self._core, st, info)
        return ReferenceAccessor(self._core, st, info)

    def refresh(self, obj: object) -> None:
        """Reload ``obj``'s columns from the database, discarding its unflushed changes.

        Raises:
            SessionError: the object is not persistent in this session.
            NotFoundError: its row no longer exists.
        """
        self._check()
        st = self._t.state_of(obj, "refresh()")
        if st.status != PERSISTENT:
            msg = f"refresh() needs a persistent object; {type(obj).__name__} {obj!r} is pending or deleted (flush first)"
            raise errors.SessionError(msg)
        self._core.refresh(st)

    def identity(self, obj: object) -> Any:
        """The primary key of a managed object (hidden or not): a value, or a tuple for composite keys.

        Raises:
            SessionError: the object is not in this session.
        """
        self._check()
        st = self._t.state_of(obj, "identity()")
        if st.key is not None:
            return st.key
        return self._t.spec(st.mapping).key_of(st)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[Row]:
        """Run raw SQL in the session's transaction, with ``:name`` parameters bound.

        Pending changes are flushed first. Returns the result rows (tuples that also allow
        access by column name); statements without a result return an empty list.

        Raises:
            QueryError: a ``:name`` has no value.
            DatabaseError: the database rejected the statement.
        """
        conn = self._read()
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
        self._t.wrote = True
        cur = conn.execute(text, values)
        if cur.description is None:
            return []
        rows = cur.fetchall()
        klass = row_class([d[0] for d in cur.description])
        return [klass(r) for r in rows]

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
        t = self._t
        # The cascades allocate per new object too (states, claims, links): pause from there.
        paused = pause_gc(len(t.new) + len(t.deleted), self._db)
        written: list[ObjectState] | None = None
        try:
            self._db._before_flush(self)
            plan, ops = self._planner.prepare()
            persistent = self._planner.dirty(plan)
            if not (t.new or t.deleted or persistent or ops or plan.junction_add or plan.junction_remove or plan.assoc_remove):
                return
            if self.readonly:
                self._refuse_write(len(t.new), len(persistent), len(t.deleted))
            conn = self.connection
            t.wrote = True
            if not paused:
                paused = pause_gc(len(t.new) + len(persistent) + len(t.deleted), self._db)
            # Links and junction rows find the states they point at by object: only they need
            # every loaded state indexed (see Tracker.states); an update-only flush after a big
            # load does not.
            linked = plan.links or plan.junction_add or plan.junction_remove or plan.assoc_add or plan.assoc_remove
            uow = UnitOfWork(conn, conn.compiler, conn.dialect, self._db.registry.tables, t.identity, t.persister,
                             t.states if linked else None)
            inserted, deleted = list(t.new.values()), list(t.deleted.values())
            uow.run(inserted, persistent, deleted, plan, ops)
            if self._db._lifecycle.wants_flushed():
                written = [*inserted, *persistent, *deleted]
            rekeyed = uow.finalize(t.take_all)
            self._core.mirror.after_flush(plan, uow, rekeyed, self._planner.dropped)
        except BaseException as exc:
            self._fail(exc)
            raise
        finally:
            self._flushing = False
            if paused:
                resume_gc()
        t.new.clear()
        t.deleted.clear()
        t.pending_keys.clear()
        t.relation_ops.clear()
        if written is not None:
            self._flushed(written)

    def _refuse_write(self, new: int, changed: int, deleted: int) -> None:
        what = f"{new} new, {changed} changed and {deleted} deleted objects"
        msg = (
            f"this session is read-only (db.session(readonly=True)) and has {what} to write; "
            "nothing was sent: write in a db.session() (or db.transaction()), which uses the primary"
        )
        raise errors.ReadOnlySessionError(msg)

    def _flushed(self, written: list[ObjectState]) -> None:
        """After a flush that wrote: the lifecycle hooks (``after_flush``)."""
        lifecycle = self._db._lifecycle
        if lifecycle.tracks:
            self._written += written
        lifecycle.flushed(self, written)

    def _fail(self, exc: BaseException) -> None:
        """A flush or a COMMIT failed: undo the transaction (or savepoint) and wait for rollback()."""
        conn = self._conn
        if conn is not None and not conn.closed:
            try:
                if self._t.frames:
                    conn.rollback_to_savepoint(self._t.frames[-1].name)
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
        if self._t.frames:
            msg = "commit() inside begin_nested(): leave the nested block first"
            raise errors.SessionError(msg)
        lifecycle = self._db._lifecycle
        if lifecycle.has_before_commit():
            lifecycle.committing(self, self._written)
            self.flush()  # what the hooks changed is committed too
        if self._conn is not None:
            try:
                self._conn.commit()
            except BaseException as exc:
                self._fail(exc)
                # Those rows were never committed: their keys are nobody's (rollback() then
                # expunges the objects and puts back versions and the rest).
                self._restorer.forget_generated_keys()
                raise
        self._restorer.committed()
        self._written = []
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
        t = self._t
        t.frames.clear()
        reread = t.loaded_after_write
        t.loaded_after_write = []
        try:
            if self._conn is not None:
                self._conn.rollback()
        finally:
            self._pending_rollback = None
            self._restorer.restore_committed()
            # Also when ROLLBACK failed: without a connection the objects leave the session.
            self._restorer.reread(reread, self._conn)
        written, self._written = self._written, []
        self._db._lifecycle.rolled_back(self, written)

    @contextmanager
    def begin_nested(self) -> Iterator[Session]:
        """A savepoint: if the block raises, the database and memory return to its start.

        Pending changes are flushed when the block starts and when it ends.
        """
        self.flush()
        conn = self.connection
        name = conn.savepoint()
        t = self._t
        frame = Frame(name, t)
        t.frames.append(frame)
        try:
            yield self
            self.flush()
        except BaseException:
            t.frames.remove(frame)
            try:
                if not conn.closed:
                    conn.rollback_to_savepoint(name)
                    conn.release_savepoint(name)
            finally:
                self._pending_rollback = None
                self._restorer.restore_frame(frame)
            reread = t.loaded_after_write[frame.loaded_mark:]
            del t.loaded_after_write[frame.loaded_mark:]
            self._restorer.reread(reread, self._conn)
            raise
        t.frames.remove(frame)
        conn.release_savepoint(name)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._t.states)} objects"
        return f"<Session {state}>"

    def __contains__(self, obj: object) -> bool:
        st = self._t.states.get(id(obj))
        return st is not None and st.obj is obj and st.status != DETACHED
