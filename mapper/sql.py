"""Statements rendered through a dialect into ``(sql, params)``.

Every value becomes a bound parameter; identifiers come only from the mapping and are
quoted. Shapes that the flush sends over and over (INSERT of n rows, UPDATE of a column
set) are cached per compiler, so building SQL costs nothing on the hot path.
"""

from __future__ import annotations

import re
import threading

from collections.abc import Sequence
from typing import Any

from .dialects.base import Dialect
from .expressions import (
    And,
    Between,
    BoolExpr,
    Compare,
    Expr,
    InList,
    IsNull,
    Like,
    Literal,
    Not,
    Or,
    Ordering,
    RawBool,
    ValueExpr,
)
from .functions import ExistsSubquery, Function, InSubquery, Name, Outer, Subquery
from .schema import Column, ForeignKeyConstraint, Table, derived_name

__all__ = ["Select", "Compiler", "CountStar", "Exists", "Join", "AliasedColumn", "Lock"]


class CountStar(ValueExpr):
    """``count(*)`` as a selectable value."""

    __slots__ = ()


class AliasedColumn(ValueExpr):
    """A column read through a table alias (a joined table, or a correlated subquery)."""

    __slots__ = ("col", "alias")

    def __init__(self, col: Column, alias: str) -> None:
        self.col = col
        self.alias = alias

    def value_type(self) -> Any:
        return self.col.type


class Exists(BoolExpr):
    """``EXISTS (SELECT 1 FROM target AS alias [JOIN ...] WHERE correlation AND where)``.

    Attributes:
        table / alias: the related table and its alias inside the subquery.
        correlate: (inner column, outer column) pairs tying the subquery to the outer row.
        junction: for many-to-many, (junction table, junction alias, [(junction col, target col)],
            [(junction col, outer col)]); ``correlate`` is then empty.
        where: conditions on the related rows (columns of ``table`` render through the alias).
    """

    __slots__ = ("table", "alias", "correlate", "junction", "where")

    def __init__(
        self,
        table: str,
        alias: str,
        correlate: Sequence[tuple[Column, Column]],
        where: BoolExpr | None,
        junction: tuple[str, str, Sequence[tuple[Column, Column]], Sequence[tuple[Column, Column]]] | None = None,
    ) -> None:
        self.table = table
        self.alias = alias
        self.correlate = list(correlate)
        self.where = where
        self.junction = junction


class Join:
    """A join of a related table under an alias: ``on`` pairs are (joined col, outer col).

    LEFT JOIN for to-one paths (a missing parent keeps the row); ``inner`` for an explicit
    ``query.join(path)``, which multiplies rows by design. ``where`` is a further condition of
    the ON clause on the joined rows (the discriminator of a subclass in a shared table).
    """

    __slots__ = ("table", "alias", "on", "outer_alias", "inner", "where")

    def __init__(
        self, table: str, alias: str, on: Sequence[tuple[Column, Column]], outer_alias: str | None = None, inner: bool = False,
        where: BoolExpr | None = None,
    ) -> None:
        self.table = table
        self.alias = alias
        self.on = list(on)
        self.outer_alias = outer_alias
        self.inner = inner
        self.where = where


class Lock:
    """A row lock on a SELECT: ``FOR UPDATE`` (or shared), ``NOWAIT`` / ``SKIP LOCKED``, ``OF`` tables.

    Attributes:
        shared: a shared lock (``FOR SHARE`` / ``LOCK IN SHARE MODE``) instead of an exclusive one.
        nowait / skip_locked: fail at once on a locked row / leave locked rows out.
        of: the table names or aliases whose rows are locked (empty: the dialect's default).
    """

    __slots__ = ("shared", "nowait", "skip_locked", "of")

    def __init__(self, shared: bool = False, nowait: bool = False, skip_locked: bool = False, of: Sequence[str] = ()) -> None:
        self.shared = shared
        self.nowait = nowait
        self.skip_locked = skip_locked
        self.of = tuple(of)


class Select:
    """A SELECT over one table.

    Attributes:
        table: the table name.
        columns: the columns (or ``CountStar``) to return, in order.
        where: the condition, or None.
        order_by: ordering items.
        limit / offset: row window (ints, validated by the query).
        for_update: lock the selected rows.
    """

    __slots__ = (
        "table", "columns", "where", "order_by", "limit", "offset", "for_update", "joins",
        "group_by", "having", "distinct", "lock", "labels",
    )

    def __init__(
        self,
        table: str,
        columns: Sequence[ValueExpr],
        where: BoolExpr | None = None,
        order_by: Sequence[Ordering] = (),
        limit: int | None = None,
        offset: int | None = None,
        for_update: bool = False,
        joins: Sequence[Join] = (),
        group_by: Sequence[ValueExpr] = (),
        having: BoolExpr | None = None,
        distinct: bool = False,
        lock: Lock | None = None,
        labels: Sequence[str | None] = (),
    ) -> None:
        self.joins = list(joins)
        self.table = table
        self.columns = list(columns)
        self.where = where
        self.order_by = list(order_by)
        self.limit = limit
        self.offset = offset
        self.for_update = for_update
        self.group_by = list(group_by)
        self.having = having
        self.distinct = distinct
        self.lock = lock
        #: Column aliases (``AS name``) by position; None or missing: no alias.
        self.labels = list(labels)


class Compiler:
    """Renders statements for one dialect instance."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.marker = dialect.marker
        self.quote = dialect.quote
        self._cache: dict[tuple[Any, ...], str | None] = {}
        # One compiler serves every connection of an engine, so what a rendering keeps while it
        # runs is per thread.
        self._local = threading.local()

    @property
    def _aliases(self) -> dict[str, str]:
        """Table name -> alias while rendering the inside of a subquery (this thread's)."""
        try:
            return self._local.aliases  # type: ignore[no-any-return]
        except AttributeError:
            self._local.aliases = {}
            return self._local.aliases  # type: ignore[no-any-return]

    @_aliases.setter
    def _aliases(self, value: dict[str, str]) -> None:
        self._local.aliases = value

    @property
    def _outer(self) -> list[dict[str, str]]:
        """The aliases in force outside each subquery being rendered (for ``outer()`` columns)."""
        try:
            return self._local.outer  # type: ignore[no-any-return]
        except AttributeError:
            self._local.outer = []
            return self._local.outer  # type: ignore[no-any-return]

    # -- expressions ------------------------------------------------------------------------------

    def column(self, col: Column) -> str:
        """A qualified column reference (through the alias of its table inside a subquery)."""
        return f"{self.quote(self._aliases.get(col.table, col.table))}.{self.quote(col.name)}"

    def value(self, e: ValueExpr, params: list[Any]) -> str:
        """Render a value expression, appending bound parameters to ``params``."""
        if isinstance(e, Column):
            return self.column(e)
        if isinstance(e, Literal):
            params.append(self.bind(e))
            return self.marker
        if isinstance(e, CountStar):
            return "count(*)"
        if isinstance(e, AliasedColumn):
            return f"{self.quote(e.alias)}.{self.quote(e.col.name)}"
        if isinstance(e, Function):
            args = ", ".join(self.value(a, params) for a in e.args) if e.args else "*"
            sql = f"{e.name}({'DISTINCT ' if e.distinct else ''}{args})"
            typ = e.value_type()
            if self.dialect.cast_numeric_results and typ is not None and typ.kind == "numeric":
                # SQLite: a function's result has no affinity, so a Numeric literal (bound as
                # text) would compare as text; the CAST gives it the column's NUMERIC affinity.
                sql = f"CAST({sql} AS NUMERIC)"
            return sql
        if isinstance(e, Outer):
            if not self._outer:
                msg = f"{e!r} is used outside a subquery; outer() refers to the enclosing query"
                raise TypeError(msg)
            saved = self._aliases
            self._aliases = self._outer[-1]
            self._outer.pop()
            try:
                return self.value(e.col, params)
            finally:
                self._outer.append(self._aliases)
                self._aliases = saved
        if isinstance(e, Subquery):
            return "(" + self._subquery(e, params) + ")"
        if isinstance(e, Name):
            msg = f"{e!r} was not resolved by a query"
            raise TypeError(msg)
        msg = f"cannot render {e!r} as a value"
        raise TypeError(msg)

    def bind(self, lit: Literal) -> Any:
        """The driver value of a literal."""
        v = lit.value
        if lit.type is not None and v is not None:
            proc = self.dialect.bind_processor(lit.type)
            if proc is not None:
                return proc(v)
        return v

    def condition(self, e: Expr, params: list[Any]) -> str:
        """Render a condition, appending bound parameters to ``params``."""
        if isinstance(e, Compare):
            return f"{self.value(e.left, params)} {e.op} {self.value(e.right, params)}"
        if isinstance(e, And):
            if not e.items:
                return "1 = 1"
            return "(" + " AND ".join(self.condition(i, params) for i in e.items) + ")"
        if isinstance(e, Or):
            if not e.items:
                return "1 = 0"
            return "(" + " OR ".join(self.condition(i, params) for i in e.items) + ")"
        if isinstance(e, Not):
            return f"NOT ({self.condition(e.item, params)})"
        if isinstance(e, IsNull):
            return f"{self.value(e.left, params)} IS {'NOT ' if e.negate else ''}NULL"
        if isinstance(e, InList):
            return self._in(e, params)
        if isinstance(e, Like):
            left = self.value(e.left, params)
            pattern = self.value(e.pattern, params)
            if not e.insensitive:
                return f"{left} LIKE {pattern}"
            op = self.dialect.ilike_operator
            if op:
                return f"{left} {op} {pattern}"
            return f"lower({left}) LIKE lower({pattern})"
        if isinstance(e, Between):
            return (
                f"{self.value(e.left, params)} BETWEEN {self.value(e.low, params)} "
                f"AND {self.value(e.high, params)}"
            )
        if isinstance(e, RawBool):
            return "1 = 1" if e.value else "1 = 0"
        if isinstance(e, Exists):
            return self._exists(e, params)
        if isinstance(e, InSubquery):
            return f"{self.value(e.left, params)} {'NOT IN' if e.negate else 'IN'} ({self._subquery(e.sub, params)})"
        if isinstance(e, ExistsSubquery):
            return f"EXISTS ({self._subquery(e.sub, params)})"
        msg = f"cannot render {e!r} as a condition"
        raise TypeError(msg)

    def _exists(self, e: Exists, params: list[Any]) -> str:
        q = self.quote
        # Outer columns render with the aliases in force outside the subquery.
        if e.junction is not None:
            jtable, jalias, join_on, correlate = e.junction
            outer = [f"{q(jalias)}.{q(jc.name)} = {self.column(oc)}" for jc, oc in correlate]
        else:
            outer = [f"{q(e.alias)}.{q(ic.name)} = {self.column(oc)}" for ic, oc in e.correlate]
        saved = self._aliases
        self._aliases = {**saved, e.table: e.alias}
        try:
            sql = f"EXISTS (SELECT 1 FROM {q(e.table)} {q(e.alias)}"
            if e.junction is not None:
                on = " AND ".join(f"{q(e.alias)}.{q(tc.name)} = {q(jalias)}.{q(jc.name)}" for jc, tc in join_on)
                sql = f"EXISTS (SELECT 1 FROM {q(jtable)} {q(jalias)} JOIN {q(e.table)} {q(e.alias)} ON {on}"
            conds = outer + ([self.condition(e.where, params)] if e.where is not None else [])
            return sql + " WHERE " + " AND ".join(conds) + ")"
        finally:
            self._aliases = saved

    def _in(self, e: InList, params: list[Any]) -> str:
        if not e.values:
            return "1 = 1" if e.negate else "1 = 0"
        left = self.value(e.left, params)
        if self.dialect.array_in and all(isinstance(v, Literal) for v in e.values):
            params.append([self.bind(v) for v in e.values])  # type: ignore[arg-type]
            return f"{left} <> ALL({self.marker})" if e.negate else f"{left} = ANY({self.marker})"
        items = ", ".join(self.value(v, params) for v in e.values)
        return f"{left} {'NOT IN' if e.negate else 'IN'} ({items})"

    def ordering(self, items: Sequence[Ordering], params: list[Any]) -> str:
        """The ORDER BY clause (empty when there is nothing to order by)."""
        if not items:
            return ""
        parts = [f"{self.value(o.expr, params)}{' DESC' if o.descending else ''}" for o in items]
        return " ORDER BY " + ", ".join(parts)

    def _subquery(self, sub: Subquery, params: list[Any]) -> str:
        """A SELECT inside another statement: its table under an alias of its own, so that
        ``outer()`` columns (rendered with the enclosing aliases) stay distinct even when both
        queries read the same table."""
        s = sub.select
        alias = f"sq{len(self._outer) + 1}"
        self._outer.append(self._aliases)
        saved = self._aliases
        self._aliases = {**saved, s.table: alias}
        try:
            return self._select_sql(s, params, alias)
        finally:
            self._aliases = saved
            self._outer.pop()

    # -- SELECT -----------------------------------------------------------------------------------

    def select(self, s: Select) -> tuple[str, list[Any]]:
        """Render a SELECT."""
        params: list[Any] = []
        return self._select_sql(s, params), params

    def _select_sql(self, s: Select, params: list[Any], alias: str | None = None) -> str:
        q = self.quote
        cols = []
        for i, c in enumerate(s.columns):
            label = s.labels[i] if i < len(s.labels) else None
            cols.append(self.value(c, params) + (f" AS {q(label)}" if label else ""))
        sql = f"SELECT {'DISTINCT ' if s.distinct else ''}{', '.join(cols)} FROM {q(s.table)}"
        if alias is not None:
            sql += f" {q(alias)}"
        for j in s.joins:
            on = " AND ".join(
                f"{q(j.alias)}.{q(jc.name)} = "
                + (f"{q(j.outer_alias)}.{q(oc.name)}" if j.outer_alias else self.column(oc))
                for jc, oc in j.on
            )
            if j.where is not None:
                on += " AND " + self.condition(j.where, params)
            sql += f" {'JOIN' if j.inner else 'LEFT JOIN'} {q(j.table)} {q(j.alias)} ON {on}"
        if s.where is not None:
            sql += " WHERE " + self.condition(s.where, params)
        if s.group_by:
            sql += " GROUP BY " + ", ".join(self.value(g, params) for g in s.group_by)
        if s.having is not None:
            sql += " HAVING " + self.condition(s.having, params)
        sql += self.ordering(s.order_by, params)
        sql += self.dialect.limit_sql(s.limit, s.offset)
        if s.for_update:
            sql += self.dialect.for_update_sql
        if s.lock is not None:
            sql += self.dialect.lock_sql(s.lock.shared, s.lock.nowait, s.lock.skip_locked, [q(t) for t in s.lock.of])
        return sql

    def count(self, s: Select) -> tuple[str, list[Any]]:
        """``SELECT count(*)`` of what a Select would return (rows after DISTINCT, GROUP BY and joins)."""
        if s.limit is None and not s.offset and not s.distinct and not s.group_by and not any(j.inner for j in s.joins):
            inner = Select(s.table, [CountStar()], s.where, joins=s.joins)
            return self.select(inner)
        # The rows themselves, counted: DISTINCT compares every selected column, so keep them.
        cols = s.columns if s.distinct or s.group_by else s.columns[:1]
        # Labelled, so that a joined table's "id" and the root's "id" stay two columns.
        labels = [f"c{i}" for i in range(len(cols))] if len(cols) > 1 else []
        sub, params = self.select(Select(s.table, cols, s.where, s.order_by if s.limit is not None or s.offset else (),
                                         s.limit, s.offset, joins=s.joins, group_by=s.group_by, having=s.having,
                                         distinct=s.distinct, labels=labels))
        return f"SELECT count(*) FROM ({sub}) AS sub", params

    def exists(self, s: Select) -> tuple[str, list[Any]]:
        """``SELECT 1 ... LIMIT 1``: whether a Select would return any row."""
        params: list[Any] = []
        if s.joins or s.group_by or s.distinct:
            sub, params = self.count(s)
            sub = sub.replace("SELECT count(*) FROM", "SELECT 1 FROM", 1) if sub.startswith("SELECT count(*) FROM (") else sub
            if not sub.startswith("SELECT 1 FROM ("):
                sub = f"SELECT 1 FROM ({sub}) AS sub"
            return sub + self.dialect.limit_sql(1, None), params
        sql = f"SELECT 1 FROM {self.quote(s.table)}"
        if s.where is not None:
            sql += " WHERE " + self.condition(s.where, params)
        sql += self.dialect.limit_sql(1 if s.limit is None else min(1, s.limit), s.offset)
        return sql, params

    def key_condition(self, keys: Sequence[Column], n: int) -> tuple[str, int]:
        """A WHERE clause matching ``n`` key values; returns the SQL and the parameter count.

        One column: ``= ANY(%s)`` with one array parameter where the dialect has arrays,
        else an IN list. Several columns: a row-value IN list.
        """
        if len(keys) == 1:
            col = self.column(keys[0])
            if self.dialect.array_in:
                return f"{col} = ANY({self.marker})", 1
            return f"{col} IN ({', '.join([self.marker] * n)})", n
        row = "(" + ", ".join([self.marker] * len(keys)) + ")"
        cols = "(" + ", ".join(self.column(k) for k in keys) + ")"
        return f"{cols} IN ({', '.join([row] * n)})", n * len(keys)

    def select_by_keys(
        self,
        table: Table,
        columns: Sequence[Column],
        keys: Sequence[Column],
        n: int,
        order: Sequence[tuple[Column, bool]] = (),
        for_update: bool = False,
        live: Column | None = None,
    ) -> str:
        """SELECT ``columns`` of the rows whose ``keys`` match ``n`` values, in ``order`` (cached);
        ``for_update`` locks them and reads their latest committed values; ``live``: only rows
        where that (soft-delete) column IS NULL."""
        one_array = self.dialect.array_in and len(keys) == 1
        ck = ("sk", table.name, tuple(c.name for c in columns), tuple(k.name for k in keys), 0 if one_array else n,
              tuple((c.name, d) for c, d in order), for_update, live.name if live is not None else None)
        sql = self._cache.get(ck)
        if sql is None:
            cols = ", ".join(self.column(c) for c in columns)
            cond, _ = self.key_condition(keys, n)
            sql = f"SELECT {cols} FROM {self.quote(table.name)} WHERE {cond}{self._live(live)}"
            if order:
                sql += " ORDER BY " + ", ".join(f"{self.column(c)}{' DESC' if d else ''}" for c, d in order)
            if for_update:
                sql += self.dialect.for_update_sql
            self._cache[ck] = sql
        return sql

    def select_by_key(self, table: Table, columns: Sequence[Column], keys: Sequence[Column], live: Column | None = None) -> str:
        """SELECT ``columns`` of the row whose ``keys`` equal one value each (cached).

        ``key = ?`` with scalar parameters, never an array: the same statement every time,
        which PostgreSQL prepares after a few runs, and the plainest plan. ``live``: only a row
        where that (soft-delete) column IS NULL."""
        ck = ("sk1", table.name, tuple(c.name for c in columns), tuple(k.name for k in keys), live.name if live is not None else None)
        sql = self._cache.get(ck)
        if sql is None:
            cols = ", ".join(self.column(c) for c in columns)
            cond = " AND ".join(f"{self.column(k)} = {self.marker}" for k in keys)
            sql = self._cache[ck] = f"SELECT {cols} FROM {self.quote(table.name)} WHERE {cond}{self._live(live)}"
        return sql

    def _live(self, live: Column | None) -> str:
        return "" if live is None else f" AND {self.column(live)} IS NULL"

    def select_through(
        self,
        junction: str,
        local: Sequence[Column],
        remote: Sequence[Column],
        target: Table,
        columns: Sequence[Column],
        n: int,
        order: Sequence[tuple[Column, bool]] = (),
        live: Column | None = None,
    ) -> str:
        """Targets joined through a junction: ``SELECT j.local..., t.* ... WHERE j.local IN (n keys)``
        (``live``: only targets where that soft-delete column IS NULL)."""
        one_array = self.dialect.array_in and len(local) == 1
        ck = ("st", junction, tuple(c.name for c in local), target.name, 0 if one_array else n, tuple((c.name, d) for c, d in order),
              live.name if live is not None else None)
        sql = self._cache.get(ck)
        if sql is None:
            q = self.quote
            j = q(junction)
            head = ", ".join(f"{j}.{q(c.name)}" for c in local)
            cols = ", ".join(self.column(c) for c in columns)
            on = " AND ".join(
                f"{self.column(t)} = {j}.{q(r.name)}" for r, t in zip(remote, target.primary_key)
            )
            if one_array:
                cond = f"{j}.{q(local[0].name)} = ANY({self.marker})"
            elif len(local) == 1:
                cond = f"{j}.{q(local[0].name)} IN ({', '.join([self.marker] * n)})"
            else:
                row = "(" + ", ".join([self.marker] * len(local)) + ")"
                cond = "(" + ", ".join(f"{j}.{q(c.name)}" for c in local) + f") IN ({', '.join([row] * n)})"
            sql = f"SELECT {head}, {cols} FROM {j} JOIN {q(target.name)} ON {on} WHERE {cond}{self._live(live)}"
            if order:
                sql += " ORDER BY " + ", ".join(f"{self.column(c)}{' DESC' if d else ''}" for c, d in order)
            self._cache[ck] = sql
        return sql

    # -- writes -----------------------------------------------------------------------------------

    def insert(self, table: str, columns: Sequence[str], nrows: int, returning: Sequence[str] = ()) -> str:
        """A multi-row INSERT of ``nrows`` rows, with RETURNING when asked (cached)."""
        ck = ("ins", table, tuple(columns), nrows, tuple(returning))
        sql = self._cache.get(ck)
        if sql is None:
            q = self.quote
            if columns:
                row = "(" + ", ".join([self.marker] * len(columns)) + ")"
                cols = "(" + ", ".join(q(c) for c in columns) + ")"
                sql = f"INSERT INTO {q(table)} {cols} VALUES " + ", ".join([row] * nrows)
            else:
                sql = f"INSERT INTO {q(table)} {self.dialect.default_values_sql}"
            if returning:
                sql += " RETURNING " + ", ".join(q(c) for c in returning)
            self._cache[ck] = sql
        return sql

    def insert_skipping_existing(self, table: str, columns: Sequence[str]) -> str:
        """A one-row INSERT that skips the row when its key exists already (cached)."""
        ck = ("insx", table, tuple(columns))
        sql = self._cache.get(ck)
        if sql is None:
            sql = self._cache[ck] = self.insert(table, columns, 1) + self.dialect.skip_existing_sql(columns)
        return sql

    def insert_arrays(self, table: Table, columns: Sequence[str], returning: Sequence[str]) -> str | None:
        """The dialect's array-bound INSERT of many rows, or None (cached)."""
        ck = ("insa", table.name, tuple(columns), tuple(returning))
        if ck not in self._cache:
            cols = [table.column(n) for n in columns]
            self._cache[ck] = None if any(c is None for c in cols) else self.dialect.insert_arrays_sql(table.name, cols, returning)  # type: ignore[arg-type]
        return self._cache[ck]

    def update_arrays(self, table: Table, set_columns: Sequence[str], keys: Sequence[str], version: str | None) -> str | None:
        """The dialect's array-bound UPDATE of many rows by key, or None (cached)."""
        ck = ("upda", table.name, tuple(set_columns), tuple(keys), version)
        if ck not in self._cache:
            cols = _update_columns(table, set_columns, keys, version)
            self._cache[ck] = None if cols is None else self.dialect.update_arrays_sql(table.name, *cols)
        return self._cache[ck]

    def update_values(self, table: Table, set_columns: Sequence[str], keys: Sequence[str], version: str | None, n: int) -> str | None:
        """The dialect's UPDATE of ``n`` rows bound as a table of values, or None (cached)."""
        ck = ("updv", table.name, tuple(set_columns), tuple(keys), version, n)
        if ck not in self._cache:
            cols = _update_columns(table, set_columns, keys, version)
            self._cache[ck] = None if cols is None else self.dialect.update_values_sql(table.name, *cols, n)
        return self._cache[ck]

    def update_row(self, table: str, set_columns: Sequence[str], keys: Sequence[str], version: str | None) -> str:
        """``UPDATE t SET a = ?, b = ? WHERE key = ? [AND version = ?]`` for executemany (cached)."""
        ck = ("upd", table, tuple(set_columns), tuple(keys), version)
        sql = self._cache.get(ck)
        if sql is None:
            q, m = self.quote, self.marker
            sets = ", ".join(f"{q(c)} = {m}" for c in set_columns)
            conds = [f"{q(k)} = {m}" for k in keys]
            if version is not None:
                conds.append(f"{q(version)} = {m}")
            sql = self._cache[ck] = f"UPDATE {q(table)} SET {sets} WHERE " + " AND ".join(conds)
        return sql

    def delete_rows(self, table: Table, keys: Sequence[Column], n: int, version: Column | None) -> str:
        """DELETE of ``n`` rows by key (and version, when checked) (cached)."""
        ck = ("del", table.name, tuple(k.name for k in keys), n, version.name if version is not None else None)
        sql = self._cache.get(ck)
        if sql is None:
            cols = list(keys) + ([version] if version is not None else [])
            if version is None:
                cond, _ = self.key_condition(cols, n)
            else:
                # Row values carry the version check per row, on every backend.
                row = "(" + ", ".join([self.marker] * len(cols)) + ")"
                cond = "(" + ", ".join(self.column(k) for k in cols) + ") IN (" + ", ".join([row] * n) + ")"
            sql = self._cache[ck] = f"DELETE FROM {self.quote(table.name)} WHERE {cond}"
        return sql

    def delete_arrays(self, table: Table, keys: Sequence[Column], version: Column | None) -> str | None:
        """The dialect's array-bound DELETE of many rows by key (and version), or None (cached)."""
        ck = ("dela", table.name, tuple(k.name for k in keys), version.name if version is not None else None)
        if ck not in self._cache:
            self._cache[ck] = self.dialect.delete_arrays_sql(table.name, keys, version)
        return self._cache[ck]

    def update_null_by_keys(self, table: Table, cols: Sequence[Column], n: int) -> str:
        """``UPDATE t SET fk = NULL WHERE fk IN (n keys)``."""
        sets = ", ".join(f"{self.quote(c.name)} = NULL" for c in cols)
        cond, _ = self.key_condition(cols, n)
        return f"UPDATE {self.quote(table.name)} SET {sets} WHERE {cond}"

    def update_null_where_keys(self, table: Table, set_cols: Sequence[Column], keys: Sequence[Column], n: int) -> str:
        """``UPDATE t SET a = NULL, ... WHERE key IN (n keys)``."""
        sets = ", ".join(f"{self.quote(c.name)} = NULL" for c in set_cols)
        cond, _ = self.key_condition(keys, n)
        return f"UPDATE {self.quote(table.name)} SET {sets} WHERE {cond}"

    def exists_by_keys(self, table: Table, cols: Sequence[Column], n: int) -> str:
        """``SELECT 1 FROM t WHERE fk IN (n keys) LIMIT 1``."""
        cond, _ = self.key_condition(cols, n)
        return f"SELECT 1 FROM {self.quote(table.name)} WHERE {cond}{self.dialect.limit_sql(1, None)}"

    def update_where(
        self,
        table: str,
        assignments: Sequence[tuple[Column, Any]],
        where: BoolExpr | None,
        returning: Sequence[Column] = (),
    ) -> tuple[str, list[Any]]:
        """A set-based UPDATE."""
        params: list[Any] = []
        sets = []
        for col, value in assignments:
            sets.append(f"{self.quote(col.name)} = {self.marker}")
            params.append(self.bind(Literal(value, col.type)))
        sql = f"UPDATE {self.quote(table)} SET {', '.join(sets)}"
        if where is not None:
            sql += " WHERE " + self.condition(where, params)
        if returning:
            sql += " RETURNING " + ", ".join(self.column(c) for c in returning)
        return sql, params

    def delete_where(self, table: str, where: BoolExpr | None, returning: Sequence[Column] = ()) -> tuple[str, list[Any]]:
        """A set-based DELETE."""
        params: list[Any] = []
        sql = f"DELETE FROM {self.quote(table)}"
        if where is not None:
            sql += " WHERE " + self.condition(where, params)
        if returning:
            sql += " RETURNING " + ", ".join(self.column(c) for c in returning)
        return sql, params

    # -- DDL --------------------------------------------------------------------------------------

    def create_table(self, table: Table, skip_fks: Sequence[ForeignKeyConstraint] = ()) -> str:
        """CREATE TABLE with keys, uniques and the foreign keys not in ``skip_fks``."""
        d, q = self.dialect, self.quote
        auto = table.autoincrement_column
        inline_pk = d.inline_primary_key(table)
        lines = []
        for col in table.columns:
            is_auto = col is auto
            line = f"{q(col.name)} {d.type_sql(col, is_auto)}"
            if is_auto and inline_pk:
                line += " PRIMARY KEY" + d.autoincrement_clause(col)
            elif is_auto:
                line += d.autoincrement_clause(col)
            if not col.nullable and not (is_auto and inline_pk):
                line += " NOT NULL"
            if col.server_default is not None:
                line += f" DEFAULT {col.server_default}"
            lines.append(line)
        if not inline_pk:
            lines.append("PRIMARY KEY (" + ", ".join(q(c.name) for c in table.primary_key) + ")")
        for cols in table.uniques:
            name = derived_name("uq", table.name, cols)
            lines.append(f"CONSTRAINT {q(name)} UNIQUE (" + ", ".join(q(c) for c in cols) + ")")
        skipped = {id(fk) for fk in skip_fks}
        for fk in table.foreign_keys:
            if id(fk) not in skipped:
                lines.append(self.foreign_key(fk))
        body = ",\n  ".join(lines)
        return f"CREATE TABLE {q(table.name)} (\n  {body}\n){d.table_suffix}"

    def foreign_key(self, fk: ForeignKeyConstraint) -> str:
        """A FOREIGN KEY table constraint."""
        q = self.quote
        sql = (
            f"CONSTRAINT {q(fk.name)} FOREIGN KEY (" + ", ".join(q(c) for c in fk.columns) + ") "
            f"REFERENCES {q(fk.ref_table)} (" + ", ".join(q(c) for c in fk.ref_columns) + ")"
        )
        if fk.on_delete:
            sql += f" ON DELETE {fk.on_delete}"
        if fk.on_update:
            sql += f" ON UPDATE {fk.on_update}"
        return sql

    def add_foreign_key(self, fk: ForeignKeyConstraint) -> str:
        """ALTER TABLE ... ADD a foreign key (for cycles, after both tables exist)."""
        return f"ALTER TABLE {self.quote(fk.table)} ADD {self.foreign_key(fk)}"


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def _ident_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def bind_named(
    sql: str,
    params: dict[str, Any] | Sequence[Any] | None,
    marker: str,
    *,
    backslash_escapes: bool = False,
    e_strings: bool = False,
    dollar_quotes: bool = False,
    mysql_comments: bool = False,
) -> tuple[str, list[Any]]:
    """Turn ``:name`` placeholders into the driver's marker, with positional parameters.

    Only placeholders in SQL proper are bound: string literals, quoted identifiers, comments
    (``--``, ``/* */``) and PostgreSQL ``::type`` casts are copied as they are. The scanner
    must end a literal exactly where the server does, or a placeholder inside a literal would
    be bound, and a driver that pastes values into the text (PyMySQL) would close the literal
    early. So, per dialect: ``backslash_escapes`` (MySQL: ``\'`` inside '...' and "..."),
    ``e_strings`` (PostgreSQL ``E'...'``), ``dollar_quotes`` (PostgreSQL ``$tag$...$tag$``),
    ``mysql_comments`` (``#`` comments, and ``--`` only before a space). With the ``%s``
    marker a literal ``%`` is doubled everywhere, so the driver reads no marker but ours.

    Raises:
        QueryError: a ``:name`` has no value in ``params``, or params is not a mapping.
    """
    from .errors import QueryError

    if params is None:
        params = {}
    if not isinstance(params, dict):
        msg = f"execute() takes its parameters as a dict for :name placeholders, got {type(params).__name__}"
        raise QueryError(msg)
    out: list[str] = []
    values: list[Any] = []
    i, n = 0, len(sql)
    percent = marker == "%s"

    def copy(j: int) -> None:
        chunk = sql[i:j]
        out.append(chunk.replace("%", "%%") if percent else chunk)

    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if (ch == "-" and nxt == "-" and (not mysql_comments or sql[i + 2 : i + 3] in ("", " ", "\t", "\n", "\r"))) or (
            ch == "#" and mysql_comments
        ):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            copy(j)
            i = j
            continue
        if ch == "/" and nxt == "*":
            j = sql.find("*/", i + 2)
            j = n if j < 0 else j + 2
            copy(j)
            i = j
            continue
        if ch == "$" and dollar_quotes and (i == 0 or not _ident_char(sql[i - 1])):
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is not None:
                close = sql.find(tag.group(), tag.end())
                j = n if close < 0 else close + len(tag.group())
                copy(j)
                i = j
                continue
        if ch in ("'", '"', "`"):
            escapes = ch != "`" and backslash_escapes
            if not escapes and e_strings and ch == "'" and i > 0 and sql[i - 1] in "eE":
                escapes = i < 2 or not _ident_char(sql[i - 2])
            j = i + 1
            while j < n:
                c = sql[j]
                if escapes and c == "\\":
                    j += 2
                    continue
                if c == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            copy(min(j + 1, n))
            i = j + 1
            continue
        if ch == ":" and nxt == ":":
            out.append("::")
            i += 2
            continue
        if ch == ":" and (nxt.isalpha() or nxt == "_"):
            j = i + 1
            while j < n and _ident_char(sql[j]):
                j += 1
            name = sql[i + 1 : j]
            if name not in params:
                msg = f"execute(): no value for :{name}; pass it in the parameters dict"
                raise QueryError(msg)
            values.append(params[name])
            out.append(marker)
            i = j
            continue
        if ch == "%" and percent:
            out.append("%%")
        else:
            out.append(ch)
        i += 1
    return "".join(out), values


def _update_columns(
    table: Table, set_columns: Sequence[str], keys: Sequence[str], version: str | None
) -> tuple[list[Column], list[Column], Column | None] | None:
    """The columns of a many-row UPDATE by name, or None when one is not the table's."""
    sets = [table.column(n) for n in set_columns]
    keyc = [table.column(n) for n in keys]
    ver = table.column(version) if version is not None else None
    if any(c is None for c in [*sets, *keyc]) or (version is not None and ver is None):
        return None
    return [c for c in sets if c is not None], [c for c in keyc if c is not None], ver
