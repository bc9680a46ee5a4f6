"""Query[T]: a chainable, immutable description of a SELECT over one mapped class."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import errors
from .expressions import (
    And,
    BoolExpr,
    Compare,
    Expr,
    IsNull,
    Literal,
    Not,
    Or,
    Ordering,
    RelationFilter,
    ValueExpr,
    as_bool_expr,
)
from .mapping import ClassMapping
from .schema import Column
from .sql import AliasedColumn, Exists, Join, Select
from .graph import PathTree, resolve_paths
from .loading import collector_paused

if TYPE_CHECKING:
    from .seam import SessionSeam

__all__ = ["Query"]

T = TypeVar("T")


class Query(Generic[T]):
    """Rows of one mapped class, filtered, ordered and windowed.

    Every builder method returns a new Query; the original is unchanged. Names given as
    strings must be mapper attributes; anything else raises QueryError before SQL is sent.
    """

    __slots__ = ("_session", "_mapping", "_where", "_order", "_limit", "_offset", "_include", "_joins")

    def __init__(self, session: SessionSeam, mapping: ClassMapping[T]) -> None:
        self._session = session
        self._mapping = mapping
        self._where: tuple[BoolExpr, ...] = ()
        self._order: tuple[Ordering, ...] = ()
        self._limit: int | None = None
        self._offset: int | None = None
        self._include: PathTree = {}
        self._joins: tuple[Join, ...] = ()

    def _copy(self) -> Query[T]:
        q: Query[T] = Query.__new__(Query)
        q._session = self._session
        q._mapping = self._mapping
        q._where = self._where
        q._order = self._order
        q._limit = self._limit
        q._offset = self._offset
        q._include = self._include
        q._joins = self._joins
        return q

    # -- validation -------------------------------------------------------------------------------

    def _column(self, name: Any, what: str) -> Column:
        return _column_of(self._mapping, name, what)

    def _check_expr(self, e: Expr, what: str) -> None:
        _check_columns(self._mapping, e, what)

    # -- builders ---------------------------------------------------------------------------------

    def where(self, *conditions: BoolExpr, **equals: Any) -> Query[T]:
        """Add conditions (ANDed): column expressions, relation filters, and ``name=value`` equalities.

        Relation filters such as ``PugMapper.owner.has(name="Tom")`` or
        ``OwnerMapper.pugs.any(PugMapper.age > 3)`` become EXISTS subqueries, so roots are
        never duplicated; combine them with ``&``, ``|`` and ``~``.

        Raises:
            QueryError: a name is not a mapped attribute, or a column of another mapper.
        """
        counter = [len(self._where)]
        items = self._conditions(self._mapping, conditions, equals, "where()", counter)
        q = self._copy()
        q._where = self._where + tuple(items)
        return q

    def _conditions(
        self, m: ClassMapping[Any], conditions: tuple[Any, ...], equals: dict[str, Any], what: str, counter: list[int]
    ) -> list[BoolExpr]:
        items: list[BoolExpr] = []
        for c in conditions:
            try:
                cond = as_bool_expr(c)
            except TypeError as exc:
                raise errors.QueryError(str(exc)) from None
            items.append(self._resolve(m, cond, what, counter))
        for name, value in equals.items():
            col = _column_of(m, name, what)
            items.append(IsNull(col, False) if value is None else Compare(col, "=", Literal(value, col.type)))
        return items

    def _resolve(self, m: ClassMapping[Any], e: BoolExpr, what: str, counter: list[int]) -> BoolExpr:
        """Check columns against ``m`` and turn relation filters into EXISTS subqueries."""
        if isinstance(e, RelationFilter):
            return self._exists(m, e, what, counter)
        if isinstance(e, And):
            return And(tuple(self._resolve(m, i, what, counter) for i in e.items))
        if isinstance(e, Or):
            return Or(tuple(self._resolve(m, i, what, counter) for i in e.items))
        if isinstance(e, Not):
            return Not(self._resolve(m, e.item, what, counter))
        _check_columns(m, e, what)
        return e

    def _exists(self, m: ClassMapping[Any], rf: RelationFilter, what: str, counter: list[int]) -> Exists:
        info = next((i for i in m.relations.values() if i.decl is rf.relation), None)
        if info is None:
            msg = (
                f"{rf.relation!r} is not a relation of {m.cls.__name__} (in {what}); "
                f"its relations are {sorted(m.relations)}"
            )
            raise errors.QueryError(msg)
        counter[0] += 1
        alias = f"r{counter[0]}"
        inner = self._conditions(info.target, rf.conditions, rf.equals, f"{info.name} filter", counter)
        where: BoolExpr | None = None if not inner else (inner[0] if len(inner) == 1 else And(tuple(inner)))
        table = info.target.table.name
        if info.kind.reference:
            return Exists(table, alias, list(zip(info.ref_cols, info.fk_cols)), where)
        if info.kind.children:
            return Exists(table, alias, list(zip(info.fk_cols, info.ref_cols)), where)
        jtable = info.junction.name if info.junction is not None else info.holder.table.name  # type: ignore[union-attr]
        join_on = list(zip(info.other_cols, info.other_ref_cols))
        correlate = list(zip(info.fk_cols, info.ref_cols))
        return Exists(table, alias, [], where, (jtable, f"j{counter[0]}", join_on, correlate))

    def order_by(self, *items: str | Ordering | Column) -> Query[T]:
        """Order by attribute names (``"-age"`` for descending) or ``col.asc()/.desc()``."""
        out: list[Ordering] = []
        joins = list(self._joins)
        for item in items:
            if isinstance(item, str) and "." in item:
                desc = item.startswith("-")
                out.append(Ordering(self._joined(item[1:] if desc else item, joins), desc))
            elif isinstance(item, str):
                desc = item.startswith("-")
                out.append(Ordering(self._column(item[1:] if desc else item, "order_by()"), desc))
            elif isinstance(item, Ordering):
                self._check_expr(item, "order_by()")
                out.append(item)
            elif isinstance(item, Column):
                self._check_expr(item, "order_by()")
                out.append(Ordering(item, False))
            else:
                msg = f"order_by() takes attribute names or column.asc()/.desc(), got {item!r}"
                raise errors.QueryError(msg)
        q = self._copy()
        q._order = self._order + tuple(out)
        q._joins = tuple(joins)
        return q

    def _joined(self, path: str, joins: list[Join]) -> AliasedColumn:
        """``"owner.name"``: a column reached through to-one relations, joined once each (LEFT JOIN)."""
        *rels, attr = path.split(".")
        m = self._mapping
        outer_alias: str | None = None
        for name in rels:
            info = m.relations.get(name)
            if info is None or info.to_many:
                msg = (
                    f"order_by({path!r}): {name!r} is not a to-one relation of {m.cls.__name__}; "
                    f"ordering can follow BelongsTo and HasOne relations: "
                    f"{sorted(k for k, i in m.relations.items() if not i.to_many)}"
                )
                raise errors.QueryError(msg)
            pairs = list(zip(info.ref_cols, info.fk_cols)) if info.kind.reference else list(zip(info.fk_cols, info.ref_cols))
            found = next((j for j in joins if j.outer_alias == outer_alias and j.table == info.target.table.name
                          and [(a.name, b.name) for a, b in j.on] == [(a.name, b.name) for a, b in pairs]), None)
            if found is None:
                found = Join(info.target.table.name, f"o{len(joins) + 1}", pairs, outer_alias)
                joins.append(found)
            outer_alias = found.alias
            m = info.target
        return AliasedColumn(_column_of(m, attr, f"order_by({path!r})"), outer_alias or "")

    def include(self, *paths: str) -> Query[T]:
        """Load these relation paths with the results: one query per path segment per chunk.

        Raises:
            QueryError: a segment names no relation.
        """
        tree = resolve_paths(self._mapping, paths)
        q = self._copy()
        q._include = _merge(dict(self._include), tree)
        return q

    def limit(self, n: int | None) -> Query[T]:
        """Return at most ``n`` rows."""
        q = self._copy()
        q._limit = _count_arg(n, "limit")
        return q

    def offset(self, n: int | None) -> Query[T]:
        """Skip the first ``n`` rows."""
        q = self._copy()
        q._offset = _count_arg(n, "offset")
        return q

    # -- execution --------------------------------------------------------------------------------

    def _condition(self) -> BoolExpr | None:
        if not self._where:
            return None
        if len(self._where) == 1:
            return self._where[0]
        return And(self._where)

    def _select(self, columns: list[ValueExpr] | None = None, limit: int | None = None) -> Select:
        m = self._mapping
        cols: list[ValueExpr] = list(columns) if columns is not None else list(self._session.tracker.loader(m).columns)
        order = list(self._order)
        if not order and (self._limit is not None or self._offset or limit is not None):
            # A window without an order is not repeatable: order by key so pages don't overlap.
            order = [Ordering(c, False) for c in m.pk]
        return Select(m.table.name, cols, self._condition(), order, self._limit if limit is None else limit, self._offset,
                      joins=self._joins)

    def all(self) -> list[T]:
        """Every matching object (identity-mapped: objects already held are returned as they are)."""
        s = self._session
        conn = s.read()
        sql, params = conn.compiler.select(self._select())
        with collector_paused(s):
            rows = conn.fetchall(sql, params)
            row_states: list[Any] = []
            return self._finish(s.load_rows(self._mapping, rows, row_states), row_states)

    def _finish(self, objs: list[T], row_states: list[Any]) -> list[T]:
        """Load the includes below the objects (``row_states``: their states, row by row)."""
        if self._include and objs:
            states = list({id(st): st for st in row_states}.values())
            self._session.graph.load_tree(states, self._include)
        return objs

    def __iter__(self) -> Iterator[T]:
        return iter(self.all())

    def first(self) -> T | None:
        """The first matching object, or None."""
        s = self._session
        conn = s.read()
        sql, params = conn.compiler.select(self._select(limit=1))
        sts: list[Any] = []
        found = self._finish(s.load_rows(self._mapping, conn.fetchall(sql, params), sts), sts)
        return found[0] if found else None

    def one_or_none(self) -> T | None:
        """The only matching object, None if there is none.

        Raises:
            MultipleResultsError: more than one row matched.
        """
        s = self._session
        conn = s.read()
        limit = 2 if self._limit is None else min(2, self._limit)
        sql, params = conn.compiler.select(self._select(limit=limit))
        sts: list[Any] = []
        found = self._finish(s.load_rows(self._mapping, conn.fetchall(sql, params), sts), sts)
        if len(found) > 1:
            msg = f"expected at most one {self._mapping.cls.__name__}, found several; add conditions or use first()"
            raise errors.MultipleResultsError(msg)
        return found[0] if found else None

    def one(self) -> T:
        """The only matching object.

        Raises:
            NotFoundError: nothing matched.
            MultipleResultsError: more than one row matched.
        """
        obj = self.one_or_none()
        if obj is None:
            msg = f"no {self._mapping.cls.__name__} matched the query; use one_or_none() or first() to allow none"
            raise errors.NotFoundError(msg)
        return obj

    def count(self) -> int:
        """How many rows match (one ``SELECT count(*)``)."""
        conn = self._session.read()
        sql, params = conn.compiler.count(self._select())
        rows = conn.fetchall(sql, params)
        return int(rows[0][0])

    def exists(self) -> bool:
        """Whether any row matches."""
        conn = self._session.read()
        sql, params = conn.compiler.exists(self._select())
        return bool(conn.fetchall(sql, params))

    def values(self, *columns: str | Column) -> list[tuple[Any, ...]]:
        """Plain tuples of the given attributes, converted to Python values; no objects are built."""
        if not columns:
            msg = f"values() needs at least one attribute of {self._mapping.name}"
            raise errors.QueryError(msg)
        cols: list[Column] = []
        for c in columns:
            if isinstance(c, Column):
                self._check_expr(c, "values()")
                cols.append(c)
            else:
                cols.append(self._column(c, "values()"))
        s = self._session
        conn = s.read()
        sql, params = conn.compiler.select(self._select(list(cols)))
        rows = conn.fetchall(sql, params)
        procs = [conn.dialect.result_processor(c.type) for c in cols]
        if not any(procs):
            return [tuple(r) for r in rows]
        return [tuple(v if p is None else p(v) for p, v in zip(procs, r)) for r in rows]

    def stream(self, batch_size: int = 1000) -> Iterator[T]:
        """Objects read ``batch_size`` rows at a time, each batch with its own SELECT.

        Batches are pages by key: each SELECT asks for the rows after the last one read, in the
        query's order followed by the primary key (one row more than a batch, to know whether
        another batch follows). No cursor stays open between batches, so includes, HasOne
        relations, lazy loads, other queries, flushes, ``commit()`` and ``rollback()`` all work
        inside the loop, the same way and with the same statements on every backend.

        Memory stays flat: after each batch, the objects loaded while it ran that nothing
        outside the session references any more and that are unchanged are let go, with the
        stand-ins and related objects only they referenced. Objects you keep or change stay
        managed and are flushed as usual.

        Raises:
            QueryError: ``batch_size`` is not a positive int, or the query is ordered by a Json
                column (pages compare the values of the order columns).
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            msg = f"stream(batch_size) takes a positive int, got {batch_size!r}"
            raise errors.QueryError(msg)
        for o in self._order:
            typ = o.expr.value_type()
            if typ is not None and typ.kind == "json":
                msg = (
                    f"stream() pages {self._mapping.cls.__name__} by the values of its order_by columns, "
                    "and a Json column cannot be compared; order the stream by other columns"
                )
                raise errors.QueryError(msg)
        return self._pages(batch_size)

    def _pages(self, batch_size: int) -> Iterator[T]:
        s = self._session
        s.read()
        m = self._mapping
        loader = s.tracker.loader(m)
        width = len(loader.columns)
        order = list(self._order)
        order += [Ordering(c, False) for c in m.pk if not any(o.expr is c for o in order)]
        # Where each order value is found in a row: one of the loaded columns, or one selected
        # after them (a column of a joined table).
        extra: list[ValueExpr] = []
        positions: list[int] = []
        for o in order:
            i = next((i for i, c in enumerate(loader.columns) if c is o.expr), None)
            if i is None:
                extra.append(o.expr)
                i = width + len(extra) - 1
            positions.append(i)
        columns: list[ValueExpr] = [*loader.columns, *extra]
        nulls_first = s.connection.dialect.nulls_first
        after: BoolExpr | None = None
        remaining = self._limit
        offset = self._offset
        carried: list[Any] = []
        while remaining is None or remaining > 0:
            want = batch_size if remaining is None else min(batch_size, remaining)
            ask = want + 1 if remaining is None or remaining > want else want
            where = self._condition()
            if after is not None:
                where = after if where is None else And((where, after))
            conn = s.connection
            sql, params = conn.compiler.select(Select(m.table.name, columns, where, order, ask, offset, joins=self._joins))
            rows = conn.fetchall(sql, params)
            more = len(rows) > want
            if more:
                del rows[want:]
            if not rows:
                return
            last = rows[-1]
            after = _after([last[i] for i in positions], order, nulls_first)
            del last
            batch = [r[:width] for r in rows] if extra else rows
            del rows
            # Every state loaded while this batch is read and used: its rows, their includes and
            # HasOne relations, and whatever the loop body loads.
            collected: list[list[Any]] = []
            s.tracker.collecting.append(collected)
            try:
                with collector_paused(s):
                    sts: list[Any] = []
                    objs = self._finish(s.load_rows(m, batch, sts), sts)
                    del sts, batch
                yield from objs
                del objs
            finally:
                # By identity: a stream left unfinished (and closed later) must not take
                # another stream's list away.
                s.tracker.collecting[:] = [c for c in s.tracker.collecting if c is not collected]
            kept = s.release_unused([st for cohort in collected for st in cohort] + carried)
            # The objects still referenced at the end of a batch (the loop variable holds the
            # last one) are looked at once more after the next batch, then left managed.
            seen = {id(st) for st in carried}
            carried = [st for st in kept if id(st) not in seen]
            del collected, kept, seen
            if not more:
                return
            offset = None
            if remaining is not None:
                remaining -= want

    def update(self, **values: Any) -> int:
        """Set attributes on every matching row with one UPDATE; returns the rows matched.

        Objects the session holds that match are updated in memory as well. The change is
        not version-checked and sets no timestamps: it is a set-based write.

        Raises:
            QueryError: no values, an unknown name, a primary-key column, or limit/offset/order_by.
            DataError: a value its column's type refuses (NaN in a Float, an aware datetime in a
                naive DateTime...); nothing is sent.
        """
        m = self._mapping
        if not values:
            msg = f"update() needs at least one attribute=value for {m.name}"
            raise errors.QueryError(msg)
        if self._limit is not None or self._offset or self._order:
            msg = "update() works on the whole filtered set; remove limit(), offset() and order_by()"
            raise errors.QueryError(msg)
        assignments = []
        for name, value in values.items():
            col = self._column(name, "update()")
            if col.primary_key:
                msg = f"update() cannot change primary-key attribute {m.cls.__name__}.{name}; change the object and flush"
                raise errors.QueryError(msg)
            assignments.append((col, value))
        # Each value is checked by its column's type now, before the autoflush and any SELECT
        # that go first: a value no backend takes sends nothing.
        dialect = self._session.dialect
        for col, value in assignments:
            bind = dialect.bind_processor(col.type)
            if bind is not None and value is not None:
                bind(value)
        return self._session.bulk_update(m, assignments, self._condition())

    def delete(self) -> int:
        """Delete every matching row with one DELETE; returns the rows deleted.

        Objects the session holds that match are marked deleted. Database ON DELETE rules
        apply to referencing rows.

        Raises:
            QueryError: limit/offset/order_by were set.
        """
        if self._limit is not None or self._offset or self._order:
            msg = "delete() works on the whole filtered set; remove limit(), offset() and order_by()"
            raise errors.QueryError(msg)
        return self._session.bulk_delete(self._mapping, self._condition())

    def __repr__(self) -> str:
        return f"<Query {self._mapping.cls.__name__} where={len(self._where)} order={len(self._order)}>"


def _after(values: list[Any], order: list[Ordering], nulls_first: bool) -> BoolExpr:
    """The rows that come after ``values`` in ``order`` (which ends with the primary key).

    ``(a, b) > (x, y)`` spelled out column by column, so that each column keeps its own
    direction and NULLs sit where the backend sorts them: ``a`` after ``x``, or ``a = x`` and
    ``b`` after ``y``. The values are the driver's own, bound back as they came.
    """
    terms: list[BoolExpr] = []
    same: list[BoolExpr] = []
    for value, o in zip(values, order):
        e = o.expr
        nullable = not isinstance(e, Column) or e.nullable
        # Whether NULLs come before the other values in this column's direction.
        nulls_lead = nulls_first != o.descending
        step: BoolExpr | None
        if value is None:
            step = IsNull(e, True) if nulls_lead else None
            equal: BoolExpr = IsNull(e, False)
        else:
            lit = Literal(value, None)
            step = Compare(e, "<" if o.descending else ">", lit)
            if nullable and not nulls_lead:
                step = Or((step, IsNull(e, False)))
            equal = Compare(e, "=", lit)
        if step is not None:
            terms.append(And((*same, step)) if same else step)
        same.append(equal)
    return terms[0] if len(terms) == 1 else Or(tuple(terms))


def _count_arg(n: Any, what: str) -> int | None:
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        msg = f"{what}() takes an int >= 0, got {n!r}"
        raise errors.QueryError(msg)
    return n


def _merge(a: PathTree, b: PathTree) -> PathTree:
    for k, v in b.items():
        a[k] = _merge(dict(a.get(k, {})), v)
    return a


def _column_of(m: ClassMapping[Any], name: Any, what: str) -> Column:
    """The column of mapper attribute ``name``, or a QueryError listing the mapped names."""
    if not isinstance(name, str):
        msg = f"{what} takes attribute names or columns of {m.name}, got {name!r}"
        raise errors.QueryError(msg)
    col = m.by_key.get(name)
    if col is None:
        hint = ""
        if name in m.relations:
            hint = f" ({name!r} is a relation: filter with {m.name}.{name}.has(...) or .any(...))"
        msg = (
            f"{m.cls.__name__} has no mapped attribute {name!r} (in {what}){hint}; "
            f"{m.name} maps {sorted(m.by_key)}"
        )
        raise errors.QueryError(msg)
    return col


def _check_columns(m: ClassMapping[Any], e: Expr, what: str) -> None:
    """Every column in ``e`` must belong to mapping ``m``."""
    stack: list[Expr] = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, RelationFilter):
            msg = f"relation filter {node.relation!r} must be given to where() directly or combined with & | ~"
            raise errors.QueryError(msg)
        if isinstance(node, Column):
            if node.table != m.table.name or node.key not in m.by_key:
                owner = node.owner.__name__ if node.owner is not None else "?"
                msg = (
                    f"{owner}.{node.key} in {what} is not a column of {m.name}; "
                    f"filter {m.cls.__name__} by its own columns, or follow a relation with "
                    f"{m.name}.<relation>.has(...)"
                )
                raise errors.QueryError(msg)
        stack.extend(node.children())
