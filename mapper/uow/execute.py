"""The flush: plan the writes (pure), then emit them in batches, then finalize.

Stages follow SQLAlchemy's persistence naming: *organize* the states by table and kind,
*collect* the rows and parameters, *emit* one statement per (table, column set) chunk,
*finalize* snapshots and the identity map. Nothing in the session changes until finalize;
every attribute the flush writes before that (generated keys, defaults, versions) is
journaled, so a failure can put each object back exactly as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import errors
from ..dialects.base import Dialect
from ..engine import Connection
from ..identity import IdentityMap
from ..mapping import ClassMapping
from ..expressions import And, BoolExpr, IsNull, Or
from ..schema import Column, Table
from ..scopes import deleted_now, soft_deleting
from ..sql import Compiler
from ..state import DELETED, GHOST, PENDING, PERSISTENT, ObjectState, SnapshotSpec
from .cascade import JunctionOp, Link, RelationPlan
from .ordering import cycle_keys, table_order
from .persister import Journal, ParentOp, Persister, old_value
from .stale import stale_delete, stale_update

__all__ = ["UnitOfWork"]


class _InsertRow:
    __slots__ = ("state", "columns", "values", "returning")

    def __init__(self, state: ObjectState, columns: tuple[str, ...], values: list[Any], returning: tuple[str, ...]) -> None:
        self.state = state
        self.columns = columns
        self.values = values
        self.returning = returning


class UnitOfWork:
    """One flush of a session's pending, changed and deleted objects.

    Attributes:
        conn: the session's connection.
        identity: the session's identity map (read here; written in finalize).
        persisters: mapping -> Persister.
        inserted / updated / deleted: what the emit stage wrote, for finalize.
    """

    def __init__(
        self,
        conn: Connection,
        compiler: Compiler,
        dialect: Dialect,
        tables: dict[str, Table],
        identity: IdentityMap,
        persister_for: Callable[[ClassMapping[Any]], Persister],
        states: dict[int, ObjectState] | None = None,
    ) -> None:
        self.conn = conn
        self.compiler = compiler
        self.dialect = dialect
        self.tables = tables
        self.identity = identity
        self.persister_for = persister_for
        self.journal = Journal()
        self.inserted: list[ObjectState] = []
        self.updated: list[ObjectState] = []
        self.deleted: list[ObjectState] = []
        self.now = dialect.now()
        #: Every managed state by id(obj), to find the parents that links and junction rows
        #: point at (the session passes it only when the plan has some).
        self.states: dict[int, ObjectState] = states if states is not None else {}
        self.inserted_ids: set[int] = set()
        #: (state, link) pairs written as NULL at insert to break a cycle.
        self.post_updates: list[tuple[ObjectState, Link]] = []
        self._post_pk: dict[tuple[str, tuple[str, ...]], list[str]] = {}
        #: Tables whose generated key column received explicit values in this flush.
        self.explicit_keys: dict[str, str] = {}
        self.plan = RelationPlan()

    # -- organize ---------------------------------------------------------------------------------

    def run(
        self,
        pending: Sequence[ObjectState],
        persistent: Iterable[ObjectState],
        deleted: Sequence[ObjectState],
        plan: RelationPlan | None = None,
        parent_ops: Sequence[ParentOp] = (),
    ) -> None:
        """Emit the flush: inserts and updates parent-first, then junction rows, then deletes child-first.

        Raises:
            FlushError, StaleDataError, DuplicateIdentityError, DatabaseError: with every
            attribute the flush wrote put back (the caller rolls the transaction back).
        """
        self.plan = plan if plan is not None else RelationPlan()
        try:
            inserts = _by_table(pending)
            updates = _by_table(persistent)
            deletes = _by_table(deleted)
            ops: dict[str, list[ParentOp]] = {}
            for op in parent_ops:
                ops.setdefault(op.table.name, []).append(op)
            order = table_order(self.tables, set(inserts) | set(updates) | set(deletes) | set(ops))
            early = self._emit_parent_first(order, inserts, updates, deletes, ops)
            for table_name, column in self.explicit_keys.items():
                sync = self.dialect.sync_sequence_sql(table_name, column)
                if sync is not None:
                    self.conn.execute(sync)
            self._emit_post_updates()
            self._emit_junction(self.plan.junction_add, insert=True)
            self._emit_junction(self.plan.junction_remove + self.plan.assoc_remove, insert=False)
            # Soft-deleted rows stay: they let go of no key.
            self._break_delete_cycles({k: kept for k, v in deletes.items() if (kept := [st for st in v if not soft_deleting(st)])}, order, ops)
            self._emit_child_first(order, deletes, ops, early)
        except BaseException:
            self.journal.undo()
            raise

    def _emit_parent_first(
        self,
        order: list[str],
        inserts: dict[str, list[ObjectState]],
        updates: dict[str, list[ObjectState]],
        deletes: dict[str, list[ObjectState]],
        ops: dict[str, list[ParentOp]],
    ) -> set[str]:
        """Updates and inserts, table by table in parent-first order; returns the tables whose
        deletes went early."""
        referenced = {fk.ref_table for t in self.tables.values() for fk in t.foreign_keys}
        early: set[str] = set()
        for table in order:
            # Rows that release a unique value (a replaced one-to-one child, a moved key)
            # go before the inserts that take it: deletes of tables nothing references,
            # and updates whose new values do not wait for a row inserted here.
            if table in deletes and table not in referenced and table not in ops:
                self._emit_deletes(self.tables[table], deletes[table])
                early.add(table)
            later: list[ObjectState] = []
            if table in updates:
                later = self._emit_updates(self.tables[table], updates[table], defer_waiting=table in inserts)
            if table in inserts:
                self._emit_inserts(self.tables[table], inserts[table])
            if later:
                self._emit_updates(self.tables[table], later, defer_waiting=False)
        return early

    def _emit_child_first(
        self, order: list[str], deletes: dict[str, list[ObjectState]], ops: dict[str, list[ParentOp]], early: set[str]
    ) -> None:
        """Deletes and the set-based writes on unheld rows, table by table in child-first order."""
        for table in reversed(order):
            table_ops = ops.get(table, ())
            # Children in the same table (a tree) must let go before their parents go.
            for op in table_ops:
                if op.info.parent.table.name == table:
                    self._emit_parent_op(op)
            if table in deletes and table not in early:
                self._emit_deletes(self.tables[table], deletes[table])
            for op in table_ops:
                if op.info.parent.table.name != table:
                    self._emit_parent_op(op)

    # -- links ------------------------------------------------------------------------------------

    def _resolve_links(self, st: ObjectState, spec: SnapshotSpec, break_cycles: bool) -> ObjectState | None:
        """Write the foreign keys that relation edits ask for; returns a parent still waiting to be inserted.

        A parent in another table that is not inserted yet means the tables form a cycle: with
        ``break_cycles`` the key is written as NULL now and set by a follow-up UPDATE.
        """
        links = self.plan.links.get(id(st))
        if not links:
            return None
        waiting: ObjectState | None = None
        for link in links:
            parent = link.parent
            if parent is None:
                values: list[Any] = [None] * len(link.fk_cols)
            else:
                pst = self.states.get(id(parent))
                if pst is None or pst.obj is not parent:
                    msg = (
                        f"{link.info.name}: {parent!r} is not in the session; add it, or give the relation "
                        "the 'save' cascade"
                    )
                    raise errors.FlushError(msg)
                if pst.status == PENDING and id(pst) not in self.inserted_ids:
                    same_table = pst.mapping.table is st.mapping.table
                    if not break_cycles and (same_table or st.status == PENDING):
                        waiting = pst
                        continue
                    if not all(c.nullable for c in link.fk_cols):
                        raise errors.FlushError(self._cycle_message(st, pst, link))
                    self.post_updates.append((st, link))
                    values = [None] * len(link.fk_cols)
                else:
                    pspec = self.persister_for(pst.mapping).spec
                    if len(link.ref_cols) == 1:  # the usual one-column key, without the lists
                        v = _parent_value(pst, pspec, link.ref_cols[0])
                        key = link.fk_cols[0].key
                        pos = spec.hidden_position.get(key)
                        if pos is None:
                            old = getattr(st.obj, key)
                            if old is not v and old != v:
                                self.journal.set(spec, st, key, v)
                            continue
                        h = st.hidden
                        assert h is not None
                        old = h[pos]
                        if old is not v and old != v:
                            # A hidden foreign key (the common case), journaled inline.
                            self.journal.entries.append((spec, st, key, old))
                            st.hidden = (*h[:pos], v, *h[pos + 1 :])
                        continue
                    values = [_parent_value(pst, pspec, c) for c in link.ref_cols]
            for col, v in zip(link.fk_cols, values):
                old = spec.get(st, col.key)
                if old is not v and old != v:
                    self.journal.set(spec, st, col.key, v)
        return waiting

    def _cycle_message(self, st: ObjectState, pst: ObjectState, link: Link) -> str:
        """Why a row cannot be inserted: its NOT NULL key needs a row of a table inserted after
        it, in a cycle whose keys (all of them named, whatever the mapper order) cannot be NULL."""
        own = tuple(c.name for c in link.fk_cols)
        keys = cycle_keys(self.tables, st.mapping.table.name)
        # Rows of one table that point at each other: the cycle is the self-reference.
        keys += [fk for fk in st.mapping.table.foreign_keys if fk.columns == own and fk not in keys]
        tables = sorted({fk.table for fk in keys} | {st.mapping.table.name, pst.mapping.table.name})
        described = []
        for fk in keys:
            table = self.tables[fk.table]
            null = all((c := table.column(n)) is not None and c.nullable for n in fk.columns)
            cols = ", ".join(f"{fk.table}.{n}" for n in fk.columns)
            described.append(f"{cols} -> {fk.ref_table} ({'nullable' if null else 'NOT NULL'})")
        return (
            f"cannot order the flush: {link.info.name} points at a new {pst.mapping.cls.__name__} and the "
            f"tables {', '.join(tables)} reference each other through NOT NULL keys, so neither row can go "
            f"in first ({'; '.join(described)}); make one of those keys nullable, or flush the "
            f"{pst.mapping.cls.__name__} first and point at it afterwards"
        )

    def _emit_post_updates(self) -> None:
        """Set the foreign keys that a cycle forced to NULL at insert, now that parents have keys."""
        if not self.post_updates:
            return
        groups: dict[tuple[str, tuple[str, ...]], list[list[Any]]] = {}
        for st, link in self.post_updates:
            p = self.persister_for(st.mapping)
            pst = self.states[id(link.parent)]
            pspec = self.persister_for(pst.mapping).spec
            values = [pspec.get(pst, c.key) for c in link.ref_cols]
            for col, v in zip(link.fk_cols, values):
                self.journal.set(p.spec, st, col.key, v)
            params = [p.bind(c, v) for c, v in zip(link.fk_cols, values)]
            params += [p.bind(k, p.spec.get(st, k.key)) for k in st.mapping.pk]
            key = (st.mapping.table.name, tuple(c.name for c in link.fk_cols))
            groups.setdefault(key, []).append(params)
            self._post_pk[key] = [k.name for k in st.mapping.pk]
        for (table, cols), rows in groups.items():
            sql = self.compiler.update_row(table, cols, self._post_pk[(table, cols)], None)
            self.conn.executemany(sql, rows)

    # -- inserts ----------------------------------------------------------------------------------

    def _collect_insert(self, st: ObjectState, p: Persister) -> _InsertRow:
        """The general INSERT row: for the rows ``Persister.collect`` leaves (a None that means
        a default, a version, a timestamp, a server default, or a missing key)."""
        m = st.mapping
        spec = p.spec
        j = self.journal
        current = spec.current(st.obj)
        hidden = st.hidden
        # Every value in column order, read in one pass (attributes, then hidden values).
        raw = [current[i] if a else hidden[i] for a, i in p.sources] if hidden is not None else [current[i] for _, i in p.sources]
        cols: list[str] = []
        values: list[Any] = []
        returning: list[str] = []
        now = self.now
        for col, v in zip(m.columns, raw):
            if v is None:
                if col.has_default:
                    v = col.default_value()
                    j.set(spec, st, col.key, v)
                elif col.version:
                    v = 1
                    j.set(spec, st, col.key, v)
                elif col is p.created_at or col is p.updated_at:
                    v = now
                    j.set(spec, st, col.key, v)
                elif col is m.autoinc or col.server_default is not None:
                    returning.append(col.name)
                    continue
                elif col.primary_key:
                    msg = (
                        f"{m.cls.__name__}.{col.key} is part of the primary key of {m.name} and is None; "
                        "set it before flushing (only a lone integer key is generated by the database)"
                    )
                    raise errors.FlushError(msg)
            cols.append(col.name)
            values.append(v if v is None else p.bind(col, v))
        if returning and not any(c.name in returning for c in m.pk):
            # Rows are matched back by key when the key is not generated.
            returning = [c.name for c in m.pk] + returning
        return _InsertRow(st, tuple(cols), values, tuple(returning))

    def _emit_inserts(self, table: Table, states: list[ObjectState]) -> None:
        split = _per_mapping(states)
        if split is not None:
            for group in split:
                self._emit_inserts(table, group)
            return
        p = self.persister_for(states[0].mapping)
        hook = p.hooks.get("before_insert")
        if hook is not None:
            for st in states:
                hook(st.obj)
        seen: dict[Any, ObjectState] = {}
        left = states
        while left:
            # Rows whose parents (in this table) are not inserted yet wait for the next round:
            # a self-referencing tree goes in one statement per level.
            ready: list[ObjectState] = []
            waiting: list[ObjectState] = []
            for st in left:
                (ready if self._resolve_links(st, p.spec, False) is None else waiting).append(st)
            if not ready:
                for st in waiting:
                    self._resolve_links(st, p.spec, True)
                ready, waiting = waiting, []
            groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[_InsertRow]] = {}
            collect = p.collect
            for st in ready:
                got = collect(st)
                if got is None:
                    row = self._collect_insert(st, p)
                else:
                    row = _InsertRow(st, got[0], got[1], got[2])
                    if got[2]:
                        # Its generated key is missing: no identity to check.
                        groups.setdefault((row.columns, row.returning), []).append(row)
                        continue
                if st.key is None:
                    key = p.spec.key_of(st)
                    if key is not None:
                        other = self.identity.get(st.mapping, key) or seen.setdefault(key, st)
                        if other is not st:
                            msg = (
                                f"{st.mapping.cls.__name__} with key {key!r} is already in the session; "
                                "two objects cannot share a primary key (use session.get() to reuse the existing one)"
                            )
                            raise errors.DuplicateIdentityError(msg)
                groups.setdefault((row.columns, row.returning), []).append(row)
            for (columns, returning), rows in groups.items():
                self._insert_group(table, p, columns, returning, rows)
            for st in ready:
                self.inserted_ids.add(id(st))
                self.inserted.append(st)
            left = waiting
        after = p.hooks.get("after_insert")
        if after is not None:
            for st in states:
                after(st.obj)

    def _chunk(self, ncols: int) -> int:
        d = self.dialect
        return max(1, min(d.max_insert_rows, d.max_params // max(1, ncols)))

    def _insert_group(
        self,
        table: Table,
        p: Persister,
        columns: tuple[str, ...],
        returning: tuple[str, ...],
        rows: list[_InsertRow],
    ) -> None:
        conn, compiler, d = self.conn, self.compiler, self.dialect
        auto = p.mapping.autoinc
        if auto is not None and auto.name in columns:
            self.explicit_keys[table.name] = auto.name
        if not columns:
            # Every value comes from a default: one row per statement is all SQL allows.
            for r in rows:
                sql = compiler.insert(table.name, columns, 1, returning if d.insert_returning else ())
                cur = conn.execute(sql, [])
                if returning:
                    self._apply_returned(table, p, returning, [r], cur.fetchall() if d.insert_returning else None, cur)
            return
        if len(rows) > 1 and d.array_dml_rows:
            arrays_sql = compiler.insert_arrays(table, columns, returning if d.insert_returning else ())
            if arrays_sql is not None:
                # One statement binding one array per column (PostgreSQL's unnest).
                step = d.array_dml_rows
                for i in range(0, len(rows), step):
                    chunk = rows[i : i + step]
                    arrays = [list(col) for col in zip(*[r.values for r in chunk])]
                    if returning:
                        self._apply_returned(table, p, returning, chunk, conn.fetchall(arrays_sql, arrays), None)
                    else:
                        conn.execute(arrays_sql, arrays)
                return
        if not returning:
            if d.executemany_insert:
                conn.executemany(compiler.insert(table.name, columns, 1), [r.values for r in rows])
                return
            step = self._chunk(len(columns))
            for i in range(0, len(rows), step):
                chunk = rows[i : i + step]
                params = [v for r in chunk for v in r.values]
                conn.execute(compiler.insert(table.name, columns, len(chunk)), params)
            return
        step = self._chunk(len(columns))
        for i in range(0, len(rows), step):
            chunk = rows[i : i + step]
            params = [v for r in chunk for v in r.values]
            if d.insert_returning:
                sql = compiler.insert(table.name, columns, len(chunk), returning)
                self._apply_returned(table, p, returning, chunk, conn.fetchall(sql, params), None)
            else:
                cur = conn.execute(compiler.insert(table.name, columns, len(chunk)), params)
                self._apply_returned(table, p, returning, chunk, None, cur)

    def _apply_returned(
        self,
        table: Table,
        p: Persister,
        returning: tuple[str, ...],
        chunk: list[_InsertRow],
        returned: Sequence[Sequence[Any]] | None,
        cur: Any,
    ) -> None:
        m = p.mapping
        spec = p.spec
        auto = m.autoinc
        cols = [table.column(n) for n in returning]
        if returned is None:
            # No RETURNING (MySQL): consecutive generated keys from lastrowid, then read
            # server defaults back by key.
            if auto is not None and auto.name in returning:
                first = int(cur.lastrowid)
                for k, r in enumerate(chunk):
                    self.journal.set(spec, r.state, auto.key, first + k)
                    r.state.generated = True
            extra = [c for c in cols if c is not None and c is not auto and not c.primary_key]
            if extra:
                keys = [spec.key_of(r.state) for r in chunk]
                sel_cols = list(m.pk) + extra
                sql = self.compiler.select_by_keys(table, sel_cols, m.pk, len(keys))
                fetched = self.conn.fetchall(sql, self.dialect.key_params(m.pk, keys))
                self._assign_by_key(p, sel_cols, chunk, fetched)
            return
        if auto is not None and auto.name in returning:
            # Generated keys rise in VALUES order, so sorting by key pairs rows with objects.
            pos = returning.index(auto.name)
            ordered = sorted(returned, key=lambda row: row[pos])
            if len(ordered) != len(chunk):
                msg = f"INSERT into {table.name} returned {len(ordered)} rows for {len(chunk)} objects"
                raise errors.FlushError(msg)
            # Conversions looked up once per chunk, not once per value.
            targets = [(c.key, self.dialect.result_processor(c.type)) for c in cols if c is not None]
            assert len(targets) == len(cols), "RETURNING names a column the table does not have"
            if len(targets) == 1 and targets[0][1] is None and targets[0][0] in spec.position:
                # The usual case, a generated key alone: journal and set it inline.
                key = targets[0][0]
                entries = self.journal.entries
                set_ = spec.setattr
                for r, row in zip(chunk, ordered):
                    st = r.state
                    obj = st.obj
                    entries.append((spec, st, key, getattr(obj, key)))
                    set_(obj, key, row[0])
                    st.generated = True
                return
            jset = self.journal.set
            for r, row in zip(chunk, ordered):
                st = r.state
                for (key, proc), v in zip(targets, row):
                    jset(spec, st, key, v if proc is None else proc(v))
                st.generated = True
            return
        self._assign_by_key(p, [c for c in cols if c is not None], chunk, returned)

    def result(self, col: Column, value: Any) -> Any:
        proc = self.dialect.result_processor(col.type)
        return value if proc is None else proc(value)

    def _assign_by_key(self, p: Persister, cols: list[Column], chunk: list[_InsertRow], rows: Sequence[Sequence[Any]]) -> None:
        m = p.mapping
        npk = len(m.pk)
        by_key: dict[Any, Sequence[Any]] = {}
        for row in rows:
            conv = [self.result(c, v) for c, v in zip(cols, row)]
            key = conv[0] if npk == 1 else tuple(conv[:npk])
            by_key[key] = conv
        for r in chunk:
            found = by_key.get(p.spec.key_of(r.state))
            if found is None:
                continue
            for c, v in zip(cols[npk:], found[npk:]):
                self.journal.set(p.spec, r.state, c.key, v)

    # -- updates ----------------------------------------------------------------------------------

    def _emit_updates(self, table: Table, states: list[ObjectState], defer_waiting: bool = False) -> list[ObjectState]:
        """UPDATE changed rows grouped by column set; returns the rows deferred until after the inserts.

        With ``defer_waiting``, a row whose new foreign key points at a row of this table that
        is not inserted yet is returned instead of written.
        """
        split = _per_mapping(states)
        if split is not None:
            return [st for group in split for st in self._emit_updates(table, group, defer_waiting)]
        p = self.persister_for(states[0].mapping)
        spec = p.spec
        # Rows by their persister's group (a mask or the column names), in first-seen order.
        groups: dict[Any, list[tuple[ObjectState, list[Any]]]] = {}
        changes: list[ObjectState] = []
        deferred: list[ObjectState] = []
        update_row, journal, now = p.update_row, self.journal, self.now
        links = self.plan.links
        for st in states:
            if links:
                if defer_waiting and self._waits_here(st):
                    deferred.append(st)
                    continue
                self._resolve_links(st, spec, True)
            found = update_row(st, journal, now)
            if found is None:
                continue
            group, params = found
            rows = groups.get(group)
            if rows is None:
                rows = groups[group] = []
            rows.append((st, params))
            changes.append(st)
        self.updated += changes
        for group, items in groups.items():
            self._update_group(table, p, p.update_names(group), items)
        after = p.hooks.get("after_update")
        if after is not None:
            for st in changes:
                after(st.obj)
        return deferred

    def _update_group(self, table: Table, p: Persister, set_names: tuple[str, ...], items: list[tuple[ObjectState, list[Any]]]) -> None:
        """One column set's UPDATE: one array statement per chunk where the dialect binds arrays
        (PostgreSQL's UPDATE ... FROM unnest), else one executemany; checked against the rows matched."""
        m = p.mapping
        version = m.version
        key_names = [k.name for k in m.pk]
        vname = version.name if version is not None else None
        array_rows = self.dialect.array_dml_rows
        arrays_sql = self.compiler.update_arrays(table, set_names, key_names, vname) if array_rows and len(items) > 1 else None
        values_rows = self.dialect.update_values_rows if arrays_sql is None and len(items) > 1 else 0
        if arrays_sql is not None:
            count = 0
            for i in range(0, len(items), array_rows):
                arrays = [list(col) for col in zip(*[params for _, params in items[i : i + array_rows]])]
                count += int(self.conn.execute(arrays_sql, arrays).rowcount)
        elif values_rows and self.compiler.update_values(table, set_names, key_names, vname, 2) is not None:
            count = self._update_values(table, set_names, key_names, vname, items, values_rows)
        else:
            sql = self.compiler.update_row(table.name, set_names, key_names, vname)
            count = self.conn.executemany(sql, [params for _, params in items])
        if count != len(items):
            raise errors.StaleDataError(stale_update(self, table, p, set_names, items, count))

    def _update_values(
        self,
        table: Table,
        set_names: tuple[str, ...],
        key_names: list[str],
        vname: str | None,
        items: list[tuple[ObjectState, list[Any]]],
        most: int,
    ) -> int:
        """The rows of one column set as UPDATEs that bind a table of values, a chunk each
        (within the dialect's parameter limit); returns the rows matched."""
        width = len(items[0][1])
        per = max(1, min(most, self.dialect.max_params // width))
        count = 0
        for i in range(0, len(items), per):
            chunk = items[i : i + per]
            sql = self.compiler.update_values(table, set_names, key_names, vname, len(chunk))
            assert sql is not None  # the caller checked that the dialect has the statement
            count += int(self.conn.execute(sql, [v for _, params in chunk for v in params]).rowcount)
        return count

    def _waits_here(self, st: ObjectState) -> bool:
        """Whether a link of ``st`` points at a new row of its own table not inserted yet."""
        for link in self.plan.links.get(id(st), ()):
            if link.parent is None:
                continue
            pst = self.states.get(id(link.parent))
            if (
                pst is not None
                and pst.status == PENDING
                and id(pst) not in self.inserted_ids
                and pst.mapping.table is st.mapping.table
            ):
                return True
        return False

    # -- deletes ----------------------------------------------------------------------------------

    def _emit_deletes(self, table: Table, states: list[ObjectState]) -> None:
        split = _per_mapping(states)
        if split is not None:
            for group in split:
                self._emit_deletes(table, group)
            return
        p = self.persister_for(states[0].mapping)
        before = p.hooks.get("before_delete")
        if before is not None:
            for st in states:
                before(st.obj)
        soft = [st for st in states if soft_deleting(st)]
        if soft:
            self._soft_delete(table, soft, p)
        hard = [st for st in states if not soft_deleting(st)] if soft else states
        for level in self._delete_levels(table, hard, p) if hard else ():
            self._delete_batch(table, level, p)
        self.deleted.extend(states)
        after = p.hooks.get("after_delete")
        if after is not None:
            for st in states:
                after(st.obj)

    def _soft_delete(self, table: Table, states: list[ObjectState], p: Persister) -> None:
        """``UPDATE t SET deleted_at = now WHERE key IN (...) AND deleted_at IS NULL``: the rows
        stay, marked (a row marked before keeps its first time); the objects hold the time too."""
        m = p.mapping
        col = m.soft_delete
        assert col is not None
        pk = list(m.pk)
        now = deleted_now()
        step = self.dialect.keys_per_statement(len(pk), len(states))
        for i in range(0, len(states), step):
            keys = [self.old_key(st, p.spec) for st in states[i : i + step]]
            cond: BoolExpr = pk[0].in_(keys) if len(pk) == 1 else Or(tuple(And(tuple(c == v for c, v in zip(pk, k))) for k in keys))
            sql, params = self.compiler.update_where(table.name, [(col, now)], And((cond, IsNull(col, False))))
            self.conn.execute(sql, params)
        pos = p.spec.hidden_position.get(col.key)
        for st in states:
            if pos is None:
                p.spec.setattr(st.obj, col.key, now)
            elif st.hidden is not None:
                st.hidden = (*st.hidden[:pos], now, *st.hidden[pos + 1 :])

    def _break_delete_cycles(
        self, deletes: dict[str, list[ObjectState]], order: list[str], ops: dict[str, list[ParentOp]]
    ) -> None:
        """Tables of a cycle losing rows: release the keys the delete order goes against first.

        Deletes run child-first, in the reverse of ``order``; a key of a table that ``order``
        puts before the table it references (a key the insert order broke) would then point at
        rows already gone. So the rows being deleted let go of it first, and the parent
        operations on such a key (children the session does not hold) run now rather than
        after their parents' DELETE. A NOT NULL key cannot let go, and is left to the database's
        ON DELETE rule.
        """
        position = {name: i for i, name in enumerate(order)}
        for name, table_ops in ops.items():
            for op in list(table_ops):
                parent = op.info.parent.table.name
                if parent != name and position[name] < position.get(parent, -1):
                    self._emit_parent_op(op)
                    table_ops.remove(op)
        for name, states in deletes.items():
            table = self.tables[name]
            for fk in table.foreign_keys:
                other = fk.ref_table
                if other == name or other not in deletes or position[name] > position[other]:
                    continue
                cols = [table.column(c) for c in fk.columns]
                if any(c is None or not c.nullable for c in cols):
                    continue
                p = self.persister_for(states[0].mapping)
                pk = list(p.mapping.pk)
                keys = [self.old_key(st, p.spec) for st in states]
                step = self.dialect.keys_per_statement(len(pk), len(keys))
                for i in range(0, len(keys), step):
                    chunk = keys[i : i + step]
                    sql = self.compiler.update_null_where_keys(table, [c for c in cols if c is not None], pk, len(chunk))
                    self.conn.execute(sql, self.dialect.key_params(pk, chunk))

    def _delete_levels(self, table: Table, states: list[ObjectState], p: Persister) -> list[list[ObjectState]]:
        """Rows of a self-referencing table deleted children first (MySQL checks keys row by row)."""
        selfref = [fk for fk in table.foreign_keys if fk.ref_table == table.name]
        if not selfref or len(states) < 2:
            return [states]
        m = p.mapping
        by_key = {self.old_key(st, p.spec): st for st in states}
        depth: dict[int, int] = {}

        def level(st: ObjectState, seen: frozenset[int]) -> int:
            if id(st) in depth:
                return depth[id(st)]
            d = 0
            for fk in selfref:
                cols = [m.table.column(n) for n in fk.columns]
                vals = [old_value(st, p.spec, c) for c in cols if c is not None]
                parent = by_key.get(vals[0] if len(vals) == 1 else tuple(vals))
                if parent is not None and parent is not st and id(parent) not in seen:
                    d = max(d, level(parent, seen | {id(st)}) + 1)
            depth[id(st)] = d
            return d

        for st in states:
            level(st, frozenset())
        levels: dict[int, list[ObjectState]] = {}
        for st in states:
            levels.setdefault(depth[id(st)], []).append(st)
        return [levels[d] for d in sorted(levels, reverse=True)]

    def _delete_batch(self, table: Table, states: list[ObjectState], p: Persister) -> None:
        m = p.mapping
        version = m.version
        pk = list(m.pk)
        cols = pk + ([version] if version is not None else [])
        d = self.dialect
        # A key of several columns, or a key with its version: one array per column where the
        # dialect binds arrays (PostgreSQL), else row-value IN lists cut to the dialect's limits.
        arrays_sql: str | None = None
        if d.array_dml_rows and len(cols) > 1 and len(states) > 1:
            arrays_sql = self.compiler.delete_arrays(table, pk, version)
        step = d.array_dml_rows if arrays_sql is not None else self.dialect.keys_per_statement(len(cols), len(states))
        for i in range(0, len(states), step):
            chunk = states[i : i + step]
            if version is None and arrays_sql is None:
                keys = [self.old_key(st, p.spec) for st in chunk]
                self.conn.execute(self.compiler.delete_rows(table, pk, len(chunk), None), d.key_params(pk, keys))
                continue
            rows = [[p.bind(c, old_value(st, p.spec, c)) for c in cols] for st in chunk]
            if arrays_sql is not None:
                cur = self.conn.execute(arrays_sql, [list(col) for col in zip(*rows)])
            else:
                cur = self.conn.execute(self.compiler.delete_rows(table, pk, len(chunk), version), [v for r in rows for v in r])
            if version is not None and cur.rowcount != len(chunk):
                raise errors.StaleDataError(stale_delete(self, table, p, chunk, int(cur.rowcount)))

    # -- junction rows and set-based child writes -------------------------------------------------

    def _pair_values(self, op: JunctionOp) -> tuple[list[Column], list[Any]]:
        info = op.info
        src = self.states.get(id(op.source))
        tgt = self.states.get(id(op.target))
        if src is None or tgt is None:
            missing = op.source if src is None else op.target
            msg = f"{info.name}: {missing!r} is not in the session; add it or give the relation the 'save' cascade"
            raise errors.FlushError(msg)
        sspec = self.persister_for(src.mapping).spec
        tspec = self.persister_for(tgt.mapping).spec
        values = [sspec.get(src, c.key) for c in info.ref_cols] + [tspec.get(tgt, c.key) for c in info.other_ref_cols]
        return info.fk_cols + info.other_cols, values

    def _emit_junction(self, ops: list[JunctionOp], insert: bool) -> None:
        if not ops:
            return
        groups: dict[tuple[str, tuple[str, ...]], tuple[Table, list[Column], list[list[Any]]]] = {}
        for op in ops:
            cols, values = self._pair_values(op)
            info = op.info
            table = info.junction if info.junction is not None else info.holder.table  # type: ignore[union-attr]
            bound = [v if v is None or (b := self.dialect.bind_processor(c.type)) is None else b(v) for c, v in zip(cols, values)]
            key = (table.name, tuple(c.name for c in cols))
            groups.setdefault(key, (table, cols, []))[2].append(bound)
        for (name, names), (table, cols, rows) in groups.items():
            if insert:
                # A pair linked already (in another session, or long ago) is not linked twice.
                self.conn.executemany(self.compiler.insert_skipping_existing(name, names), rows)
                continue
            step = self.dialect.keys_per_statement(len(cols), len(rows))
            for i in range(0, len(rows), step):
                chunk = rows[i : i + step]
                sql = self.compiler.delete_rows(table, cols, len(chunk), None)
                self.conn.execute(sql, [v for r in chunk for v in r])

    def _emit_parent_op(self, op: ParentOp) -> None:
        cols = op.cols
        step = self.dialect.keys_per_statement(len(cols), len(op.keys))
        for i in range(0, len(op.keys), step):
            chunk = op.keys[i : i + step]
            params = self.dialect.key_params(cols, chunk)
            if op.kind == "delete":
                self.conn.execute(self.compiler.delete_rows(op.table, cols, len(chunk), None), params)
            elif op.kind == "nullify":
                self.conn.execute(self.compiler.update_null_by_keys(op.table, cols, len(chunk)), params)
            elif self.conn.fetchall(self.compiler.exists_by_keys(op.table, cols, len(chunk)), params):
                info = op.info
                names = ", ".join(f"{op.table.name}.{c.name}" for c in cols)
                fix = (
                    f"give {info.name} cascade='delete' (or 'all'), "
                    if info.kind.children
                    else ""
                )
                msg = (
                    f"cannot delete {info.parent.cls.__name__}: rows of {op.table.name} still reference it "
                    f"through {info.name}, and {names} is NOT NULL with no ON DELETE rule. To fix: "
                    f"{fix}delete or move those rows first, or declare ForeignKey(..., on_delete='CASCADE')"
                )
                raise errors.FlushError(msg)

    def old_key(self, st: ObjectState, spec: SnapshotSpec) -> Any:
        pk = st.mapping.pk
        if len(pk) == 1:
            return old_value(st, spec, pk[0])
        return tuple(old_value(st, spec, c) for c in pk)

    # -- finalize ---------------------------------------------------------------------------------

    def finalize(self, take_all: Callable[[list[ObjectState]], None]) -> list[tuple[ObjectState, Any]]:
        """Make what was written the new baseline: statuses, keys, snapshots, identity map.

        Returns the (state, old key) of objects whose primary key changed.
        """
        rekeyed: list[tuple[ObjectState, Any]] = []
        identity = self.identity
        last: ClassMapping[Any] | None = None
        for st in self.inserted:
            if st.mapping is not last:  # inserts come grouped by table: look these up per group
                last = st.mapping
                spec = self.persister_for(last).spec
                imap = identity.for_mapping(last)
            st.status = PERSISTENT
            key = st.key = spec.key_of(st)
            imap[key] = st
            if last.ancestors:
                identity.add(st)
        # New snapshots for every written row, in one pass (see state.take_snapshots).
        take_all(self.inserted)
        take_all(self.updated)
        for st in self.updated:
            if st.mapping is not last:
                last = st.mapping
                spec = self.persister_for(last).spec
            new_key = spec.key_of(st)
            if new_key is not st.key and new_key != st.key:
                identity.discard(st)
                rekeyed.append((st, st.key))
                st.key = new_key
                identity.add(st)
        for st in self.deleted:
            st.status = DELETED
            st.deleted_flushed = True
            identity.discard(st)
        self.journal.entries.clear()
        return rekeyed


def _per_mapping(states: list[ObjectState]) -> list[list[ObjectState]] | None:
    """The states of a shared table (a single-table hierarchy) by mapping, each written by its
    own persister; None when they are all of one mapping."""
    first = states[0].mapping
    if first.hierarchy is None or all(st.mapping is first for st in states):
        return None
    groups: dict[ClassMapping[Any], list[ObjectState]] = {}
    for st in states:
        groups.setdefault(st.mapping, []).append(st)
    return list(groups.values())


def _by_table(states: Iterable[ObjectState]) -> dict[str, list[ObjectState]]:
    """States grouped by their table's name, in order."""
    out: dict[str, list[ObjectState]] = {}
    for st in states:
        out.setdefault(st.mapping.table.name, []).append(st)
    return out


def _parent_value(pst: ObjectState, spec: SnapshotSpec, col: Column) -> Any:
    """A referenced column of a parent; a stand-in's key is known without loading it."""
    if pst.status == GHOST:
        pk = pst.mapping.pk
        if len(pk) == 1:
            if pk[0] is col:
                return pst.key
        else:
            for i, c in enumerate(pk):  # by identity: Column's == builds an expression
                if c is col:
                    return pst.key[i]
    return spec.get(pst, col.key)
