"""Query[T]: a chainable, immutable description of a SELECT over one mapped class."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import errors
from .expressions import And, BoolExpr, Compare, Expr, IsNull, Literal, Ordering, ValueExpr, as_bool_expr
from .mapping import ClassMapping
from .schema import Column
from .sql import Select
from .graph import PathTree, resolve_paths

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Query"]

T = TypeVar("T")


class Query(Generic[T]):
    """Rows of one mapped class, filtered, ordered and windowed.

    Every builder method returns a new Query; the original is unchanged. Names given as
    strings must be mapper attributes; anything else raises QueryError before SQL is sent.
    """

    __slots__ = ("_session", "_mapping", "_where", "_order", "_limit", "_offset", "_include")

    def __init__(self, session: Session, mapping: ClassMapping[T]) -> None:
        self._session = session
        self._mapping = mapping
        self._where: tuple[BoolExpr, ...] = ()
        self._order: tuple[Ordering, ...] = ()
        self._limit: int | None = None
        self._offset: int | None = None
        self._include: PathTree = {}

    def _copy(self) -> Query[T]:
        q: Query[T] = Query.__new__(Query)
        q._session = self._session
        q._mapping = self._mapping
        q._where = self._where
        q._order = self._order
        q._limit = self._limit
        q._offset = self._offset
        q._include = self._include
        return q

    # -- validation -------------------------------------------------------------------------------

    def _column(self, name: Any, what: str) -> Column:
        m = self._mapping
        if not isinstance(name, str):
            msg = f"{what} takes attribute names or columns of {m.name}, got {name!r}"
            raise errors.QueryError(msg)
        col = m.by_key.get(name)
        if col is None:
            msg = (
                f"{m.cls.__name__} has no mapped attribute {name!r} (in {what}); "
                f"{m.name} maps {sorted(m.by_key)}"
            )
            raise errors.QueryError(msg)
        return col

    def _check_expr(self, e: Expr, what: str) -> None:
        """Every column in ``e`` must belong to this query's mapping."""
        stack: list[Expr] = [e]
        m = self._mapping
        while stack:
            node = stack.pop()
            if isinstance(node, Column):
                if node.table != m.table.name or node.key not in m.by_key:
                    owner = node.owner.__name__ if node.owner is not None else "?"
                    msg = (
                        f"{owner}.{node.key} in {what} is not a column of {m.name}; "
                        f"filter {m.cls.__name__} by its own columns"
                    )
                    raise errors.QueryError(msg)
            stack.extend(node.children())

    # -- builders ---------------------------------------------------------------------------------

    def where(self, *conditions: BoolExpr, **equals: Any) -> Query[T]:
        """Add conditions (ANDed): column expressions, and ``name=value`` equalities.

        Raises:
            QueryError: a name is not a mapped attribute, or a column of another mapper.
        """
        items: list[BoolExpr] = []
        for c in conditions:
            try:
                cond = as_bool_expr(c)
            except TypeError as exc:
                raise errors.QueryError(str(exc)) from None
            self._check_expr(cond, "where()")
            items.append(cond)
        for name, value in equals.items():
            col = self._column(name, "where()")
            items.append(IsNull(col, False) if value is None else Compare(col, "=", Literal(value, col.type)))
        q = self._copy()
        q._where = self._where + tuple(items)
        return q

    def order_by(self, *items: str | Ordering | Column) -> Query[T]:
        """Order by attribute names (``"-age"`` for descending) or ``col.asc()/.desc()``."""
        out: list[Ordering] = []
        for item in items:
            if isinstance(item, str):
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
        return q

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
        cols: list[ValueExpr] = list(columns) if columns is not None else list(self._session._loader(m).columns)
        order = list(self._order)
        if not order and (self._limit is not None or self._offset):
            # A window without an order is not repeatable: order by key so pages don't overlap.
            order = [Ordering(c, False) for c in m.pk]
        return Select(m.table.name, cols, self._condition(), order, self._limit if limit is None else limit, self._offset)

    def all(self) -> list[T]:
        """Every matching object (identity-mapped: objects already held are returned as they are)."""
        s = self._session
        conn = s._prepare_read()
        sql, params = conn.compiler.select(self._select())
        rows = conn.fetchall(sql, params)
        return self._finish(s._load_rows(self._mapping, rows))

    def _finish(self, objs: list[T]) -> list[T]:
        if self._include and objs:
            s = self._session
            states = list({id(o): s._states[id(o)] for o in objs}.values())
            s._graph.load_tree(states, self._include)
        return objs

    def __iter__(self) -> Iterator[T]:
        return iter(self.all())

    def first(self) -> T | None:
        """The first matching object, or None."""
        s = self._session
        conn = s._prepare_read()
        sql, params = conn.compiler.select(self._select(limit=1))
        found = self._finish(s._load_rows(self._mapping, conn.fetchall(sql, params)))
        return found[0] if found else None

    def one_or_none(self) -> T | None:
        """The only matching object, None if there is none.

        Raises:
            MultipleResultsError: more than one row matched.
        """
        s = self._session
        conn = s._prepare_read()
        limit = 2 if self._limit is None else min(2, self._limit)
        sql, params = conn.compiler.select(self._select(limit=limit))
        found = self._finish(s._load_rows(self._mapping, conn.fetchall(sql, params)))
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
        conn = self._session._prepare_read()
        sql, params = conn.compiler.count(self._select())
        rows = conn.fetchall(sql, params)
        return int(rows[0][0])

    def exists(self) -> bool:
        """Whether any row matches."""
        conn = self._session._prepare_read()
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
        conn = s._prepare_read()
        sql, params = conn.compiler.select(self._select(list(cols)))
        rows = conn.fetchall(sql, params)
        procs = [conn.dialect.result_processor(c.type) for c in cols]
        if not any(procs):
            return [tuple(r) for r in rows]
        return [tuple(v if p is None else p(v) for p, v in zip(procs, r)) for r in rows]

    def stream(self, batch_size: int = 1000) -> Iterator[T]:
        """Objects read through a server-side cursor, ``batch_size`` rows at a time.

        Memory stays flat: after each batch, streamed objects that you neither kept a
        reference to nor changed are released from the session. Objects you keep or
        change stay managed and are flushed as usual. Do not send other statements on
        this session while a stream is open (MySQL cannot interleave them).
        """
        if not isinstance(batch_size, int) or batch_size < 1:
            msg = f"stream(batch_size) takes a positive int, got {batch_size!r}"
            raise errors.QueryError(msg)
        s = self._session
        conn = s._prepare_read()
        sql, params = conn.compiler.select(self._select())
        for rows in conn.stream(sql, params, batch_size):
            before = set(s._states)
            objs = self._finish(s._load_rows(self._mapping, rows))
            fresh = [s._states[id(o)] for o in objs if id(o) not in before]
            yield from objs
            del objs
            s._release_unused(fresh, sys.getrefcount)

    def update(self, **values: Any) -> int:
        """Set attributes on every matching row with one UPDATE; returns the rows matched.

        Objects the session holds that match are updated in memory as well. The change is
        not version-checked and sets no timestamps: it is a set-based write.

        Raises:
            QueryError: no values, an unknown name, a primary-key column, or limit/offset/order_by.
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
        return self._session._bulk_update(m, assignments, self._condition())

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
        return self._session._bulk_delete(self._mapping, self._condition())

    def __repr__(self) -> str:
        return f"<Query {self._mapping.cls.__name__} where={len(self._where)} order={len(self._order)}>"


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
