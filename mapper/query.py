"""Query[T]: a chainable, immutable description of a SELECT over one mapped class."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from . import errors
from .inheritance import scope_condition
from .clauses import Scope, bool_or_none, column_of
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
from .functions import Function, InSubquery, Outer, Subquery, is_aggregate, result_converter
from .mapping import ClassMapping
from .schema import Column
from .scopes import UNSCOPED, WITH_DELETED, read_conditions
from .sql import AliasedColumn, Exists, Join, Lock, Select, bind_named
from .engine import row_class
from .graph import PathTree, resolve_paths
from .loading import collector_paused

if TYPE_CHECKING:
    from .seam import SessionSeam

__all__ = ["Query", "Page"]

_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")


class Query(Generic[T]):
    """Rows of one mapped class, filtered, ordered and windowed.

    Every builder method returns a new Query; the original is unchanged. Names given as
    strings must be mapper attributes; anything else raises QueryError before SQL is sent.
    """

    __slots__ = (
        "_session", "_mapping", "_where", "_order", "_limit", "_offset", "_include", "_joins",
        "_paths", "_group", "_having", "_distinct", "_locking", "_lifted",
    )

    def __init__(self, session: SessionSeam, mapping: ClassMapping[T]) -> None:
        self._session = session
        self._mapping = mapping
        # A subclass of a single-table hierarchy sees its own rows (and its subclasses') only.
        self._where: tuple[BoolExpr, ...] = scope_condition(mapping)
        self._order: tuple[Ordering, ...] = ()
        self._limit: int | None = None
        self._offset: int | None = None
        self._include: PathTree = {}
        self._joins: tuple[Join, ...] = ()
        #: Relation paths joined so far: path -> (join, mapping reached).
        self._paths: dict[str, tuple[Join, ClassMapping[Any]]] = {}
        self._group: tuple[ValueExpr, ...] = ()
        self._having: tuple[BoolExpr, ...] = ()
        self._distinct = False
        self._locking: Lock | None = None
        #: The mapper's read conditions this query lifts (``with_deleted()``, ``unscoped()``).
        self._lifted: frozenset[str] = frozenset()

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
        q._paths = self._paths
        q._group = self._group
        q._having = self._having
        q._distinct = self._distinct
        q._locking = self._locking
        q._lifted = self._lifted
        return q

    def _scope(self) -> Scope:
        """A scope to resolve names in; its joins are copies, so this query stays unchanged."""
        joins = [Join(j.table, j.alias, j.on, j.outer_alias, j.inner, j.where) for j in self._joins]
        by_id = {id(old): new for old, new in zip(self._joins, joins)}
        paths = {k: (by_id[id(j)], m) for k, (j, m) in self._paths.items()}
        return Scope(self._mapping, tuple(joins), paths)

    def _with(self, scope: Scope) -> Query[T]:
        """A copy holding the joins ``scope`` made."""
        q = self._copy()
        q._joins = tuple(scope.joins)
        q._paths = scope.paths
        return q

    # -- validation -------------------------------------------------------------------------------

    def _column(self, name: Any, what: str) -> Column:
        return column_of(self._mapping, name, what)

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
        scope = self._scope()
        items = self._conditions(self._mapping, conditions, equals, "where()", counter, scope)
        for item, given in zip(items, [*conditions, *equals]):
            if is_aggregate(item):
                msg = f"where() cannot test an aggregate ({given!r}); use having() for conditions on func.count() and the like"
                raise errors.QueryError(msg)
        q = self._with(scope)
        q._where = self._where + tuple(items)
        return q

    def _conditions(
        self, m: ClassMapping[Any], conditions: tuple[Any, ...], equals: dict[str, Any], what: str, counter: list[int],
        scope: Scope | None = None,
    ) -> list[BoolExpr]:
        """Conditions on ``m``; with a ``scope`` (the query's own class), names may be dotted paths."""
        items: list[BoolExpr] = []
        for c in conditions:
            try:
                cond = as_bool_expr(c)
            except TypeError as exc:
                raise errors.QueryError(str(exc)) from None
            items.append(self._resolve(m, cond, what, counter, scope))
        for name, value in equals.items():
            col: ValueExpr = scope.column(name, what) if scope is not None else column_of(m, name, what)
            items.append(IsNull(col, False) if value is None else Compare(col, "=", Literal(value, col.value_type())))
        return items

    def _resolve(self, m: ClassMapping[Any], e: BoolExpr, what: str, counter: list[int], scope: Scope | None = None) -> BoolExpr:
        """Check columns against ``m`` and turn relation filters into EXISTS subqueries."""
        if isinstance(e, RelationFilter):
            return self._exists(m, e, what, counter)
        if isinstance(e, And):
            return And(tuple(self._resolve(m, i, what, counter, scope) for i in e.items))
        if isinstance(e, Or):
            return Or(tuple(self._resolve(m, i, what, counter, scope) for i in e.items))
        if isinstance(e, Not):
            return Not(self._resolve(m, e.item, what, counter, scope))
        if scope is not None:
            return scope.resolve(e, what)  # type: ignore[return-value]
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
        inner = [*scope_condition(info.target), *self._conditions(info.target, rf.conditions, rf.equals, f"{info.name} filter", counter)]
        if not info.kind.reference and info.target.soft_delete is not None:
            inner.append(IsNull(info.target.soft_delete, False))  # as its collection loads skip them
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

    def order_by(self, *items: str | Ordering | ValueExpr) -> Query[T]:
        """Order by attribute names or to-one paths (``"-age"``, ``"owner.name"``; a leading ``-``
        for descending), columns, ``col.asc()/.desc()``, or aggregates of a grouped query."""
        out: list[Ordering] = []
        scope = self._scope()
        for item in items:
            if isinstance(item, str):
                desc = item.startswith("-")
                out.append(Ordering(scope.column(item[1:] if desc else item, "order_by()"), desc))
            elif isinstance(item, Ordering):
                out.append(scope.resolve(item, "order_by()"))  # type: ignore[arg-type]
            elif isinstance(item, ValueExpr):
                out.append(Ordering(scope.value(item, "order_by()"), False))
            else:
                msg = f"order_by() takes attribute names or column.asc()/.desc(), got {item!r}"
                raise errors.QueryError(msg)
        q = self._with(scope)
        q._order = self._order + tuple(out)
        return q

    def with_deleted(self) -> Query[T]:
        """Rows a soft delete marked as deleted too (the mapper's ``soft_delete`` filter lifted)."""
        q = self._copy()
        q._lifted = self._lifted | {WITH_DELETED}
        return q

    def unscoped(self) -> Query[T]:
        """Rows outside the mapper's ``default_scope`` too (soft-deleted rows stay hidden unless
        ``with_deleted()`` is also called)."""
        q = self._copy()
        q._lifted = self._lifted | {UNSCOPED}
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

    def join(self, *paths: str) -> Query[T]:
        """Join relation paths (INNER JOIN): one result row per related row, as in SQL.

        A to-many join repeats the root object once per related row (``distinct()`` takes the
        repeats out); its columns are then reachable by path (``path("pugs.age")``,
        ``values("name", "pugs.name")``) and by column (``PugMapper.age``).

        Raises:
            QueryError: a segment names no relation.
        """
        scope = self._scope()
        for p in paths:
            if not isinstance(p, str) or not p:
                msg = f"join() takes relation paths such as 'pugs' or 'items.product' of {self._mapping.name}, got {p!r}"
                raise errors.QueryError(msg)
            scope.join(p, f"join({p!r})", True)
        return self._with(scope)

    def group_by(self, *items: str | ValueExpr) -> Query[T]:
        """Group the rows by attribute names, paths or columns (for aggregates in ``values()``).

        Raises:
            QueryError: a name is not mapped, or an item is an aggregate.
        """
        if not items:
            msg = f"group_by() needs at least one attribute of {self._mapping.name}"
            raise errors.QueryError(msg)
        scope = self._scope()
        out = tuple(scope.value(i, "group_by()", aggregates=False) for i in items)
        q = self._with(scope)
        q._group = self._group + out
        return q

    def having(self, *conditions: BoolExpr, **equals: Any) -> Query[T]:
        """Conditions on groups: ``having(func.count(PugMapper.id) > 2)``.

        Raises:
            QueryError: a name is not mapped, or a condition is not an expression.
        """
        scope = self._scope()
        items: list[BoolExpr] = []
        for c in conditions:
            try:
                cond = as_bool_expr(c)
            except TypeError as exc:
                raise errors.QueryError(str(exc)) from None
            items.append(scope.resolve(cond, "having()"))  # type: ignore[arg-type]
        for name, value in equals.items():
            col = scope.column(name, "having()")
            items.append(IsNull(col, False) if value is None else Compare(col, "=", Literal(value, col.value_type())))
        q = self._with(scope)
        q._having = self._having + tuple(items)
        return q

    def distinct(self, on: bool = True) -> Query[T]:
        """``SELECT DISTINCT``: each root object (or each ``values()`` row) once."""
        q = self._copy()
        q._distinct = bool(on)
        return q

    def for_update(self, *, nowait: bool = False, skip_locked: bool = False, of: Sequence[Any] | Any = ()) -> Query[T]:
        """Lock the selected rows until the transaction ends (``SELECT ... FOR UPDATE``).

        ``nowait`` fails at once (``OperationalError``) instead of waiting for a locked row;
        ``skip_locked`` leaves locked rows out (a job queue); ``of`` names what to lock: the
        query's class or joined relation paths (PostgreSQL; MariaDB locks every table read).
        On SQLite, which locks the whole database on write, a plain lock adds nothing and
        ``nowait``/``skip_locked`` are refused.

        Raises:
            QueryError: both nowait and skip_locked, an ``of`` that is not the class or a joined
                path, or an option the backend lacks.
        """
        return self._locked(False, nowait, skip_locked, of, "for_update()")

    def for_share(self, *, nowait: bool = False, skip_locked: bool = False, of: Sequence[Any] | Any = ()) -> Query[T]:
        """A shared lock on the selected rows (``FOR SHARE``; ``LOCK IN SHARE MODE`` on MariaDB):
        others may read and share-lock them, not change them. Options as ``for_update()``."""
        return self._locked(True, nowait, skip_locked, of, "for_share()")

    def _locked(self, shared: bool, nowait: bool, skip_locked: bool, of: Any, what: str) -> Query[T]:
        m = self._mapping
        d = self._session.dialect
        if nowait and skip_locked:
            msg = f"{what}: choose nowait=True or skip_locked=True, not both"
            raise errors.QueryError(msg)
        if (nowait or skip_locked) and not d.row_locks:
            msg = (
                f"{what} with {'nowait' if nowait else 'skip_locked'}=True: {d.name} locks the whole database on "
                "write, not rows, so locked rows cannot be skipped or refused; drop the option on this backend"
            )
            raise errors.QueryError(msg)
        items = list(of) if isinstance(of, (list, tuple)) else ([] if of == () else [of])
        names: list[str] = []
        for item in items:
            if item is m.cls or item is m.mapper_class:
                names.append(m.table.name)
            elif isinstance(item, str) and item in self._paths:
                names.append(self._paths[item][0].alias)
            else:
                msg = (
                    f"{what}: of={item!r} is neither {m.cls.__name__} nor a relation path joined with join() or "
                    f"used in the query; joined paths: {sorted(self._paths)}"
                )
                raise errors.QueryError(msg)
        if names and not d.lock_of and names != [m.table.name]:
            msg = f"{what}: {d.name} cannot lock some tables of a join and not others (no OF); drop of= or the join"
            raise errors.QueryError(msg)
        if not d.lock_of:
            names = []
        q = self._copy()
        q._locking = Lock(shared, bool(nowait), bool(skip_locked), names)
        return q

    def after(self, last: Any) -> Query[T]:
        """The rows after ``last`` in the query's order (keyset pagination): fast on deep pages,
        since the database seeks to the position instead of counting rows to skip.

        ``last`` is an object of the query's class (the last of the previous page) or the values
        of the order columns (a value or a tuple). The order is completed with the primary key,
        so it is unique. Call it after ``order_by()``.

        Raises:
            QueryError: a tuple of the wrong length, an object of another class, or an order by
                a joined column with an object as ``last``.
        """
        m = self._mapping
        order = list(self._order)
        order += [Ordering(c, False) for c in m.pk if not any(o.expr is c for o in order)]
        if isinstance(last, m.cls):
            values = []
            st = self._session.tracker.lookup(last)
            for o in order:
                if not isinstance(o.expr, Column):
                    msg = (
                        f"after(obj) reads the order values from the {m.cls.__name__} object, and {o.expr!r} is not "
                        "one of its columns; pass the values of the order columns as a tuple"
                    )
                    raise errors.QueryError(msg)
                key = o.expr.key
                if key in m.domain_attributes:
                    values.append(getattr(last, key))
                elif st is not None:
                    values.append(self._session.tracker.spec(m).get(st, key))
                else:
                    msg = f"after(obj): {m.cls.__name__}.{key} is a hidden column and the object is not in this session"
                    raise errors.QueryError(msg)
        else:
            values = list(last) if isinstance(last, tuple) else [last]
            if len(values) != len(order):
                names = [getattr(o.expr, "key", repr(o.expr)) for o in order]
                msg = (
                    f"after() got {len(values)} value(s) for the {len(order)} order column(s) of {m.cls.__name__} "
                    f"{names} (the order ends with the primary key); pass a tuple of them or the last object"
                )
                raise errors.QueryError(msg)
        if any(v is None for v in values):
            msg = f"after() got None among the order values {values!r}; keyset pages need non-NULL order values"
            raise errors.QueryError(msg)
        terms: list[BoolExpr] = []
        same: list[BoolExpr] = []
        for value, o in zip(values, order):
            lit = Literal(value, o.expr.value_type())
            step: BoolExpr = Compare(o.expr, "<" if o.descending else ">", lit)
            terms.append(And((*same, step)) if same else step)
            same.append(Compare(o.expr, "=", lit))
        q = self._copy()
        q._order = tuple(order)
        q._where = self._where + (terms[0] if len(terms) == 1 else Or(tuple(terms)),)
        return q

    def paginate(self, page: int, per_page: int) -> Page[T]:
        """Page ``page`` (from 1) of ``per_page`` objects, with the total: two statements.

        Raises:
            QueryError: page or per_page below 1, or limit()/offset() already set.
        """
        for name, n in (("page", page), ("per_page", per_page)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                msg = f"paginate({name}) takes an int >= 1, got {n!r}"
                raise errors.QueryError(msg)
        if self._limit is not None or self._offset:
            msg = "paginate() sets the window itself; remove limit() and offset()"
            raise errors.QueryError(msg)
        total = self.count()
        items = self.offset((page - 1) * per_page).limit(per_page).all() if total > (page - 1) * per_page else []
        return Page(items, total, page, per_page)

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        """``q[20:40]``: the objects of that window (LIMIT 20 OFFSET 20); ``q[5]``: one object.

        Raises:
            QueryError: a negative index or bound, or a step.
            IndexError: ``q[n]`` past the last row.
        """
        if isinstance(index, slice):
            if index.step not in (None, 1):
                msg = f"a query slice takes no step, got {index!r}"
                raise errors.QueryError(msg)
            start, stop = index.start or 0, index.stop
            for v in (start, stop):
                if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                    msg = f"a query slice takes ints >= 0 (no negative indexes: the end is not known), got {index!r}"
                    raise errors.QueryError(msg)
            q = self.offset(start or None)
            if stop is not None:
                q = q.limit(max(0, stop - start))
            return q.all()
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            msg = f"a query index takes an int >= 0, got {index!r}"
            raise errors.QueryError(msg)
        found = self.offset(index or None).first()
        if found is None:
            msg = f"no {self._mapping.cls.__name__} at index {index} of the query"
            raise IndexError(msg)
        return found

    def subquery(self, column: str | ValueExpr) -> Subquery:
        """This query as ``SELECT column ...`` inside another: ``PugMapper.owner_id.in_(owners.subquery("id"))``.

        Raises:
            QueryError: the name is not mapped.
        """
        return self._as_subquery([column])

    def _as_subquery(self, columns: list[Any] | None) -> Subquery:
        m = self._mapping
        scope = self._scope()
        cols: list[ValueExpr] = [scope.value(c, "subquery()") for c in columns] if columns else list(m.pk)
        outers: list[Outer] = []
        stack: list[Expr] = [*self._where, *self._having, *cols]
        while stack:
            node = stack.pop()
            if isinstance(node, Outer):
                outers.append(node)
            elif isinstance(node, Exists):
                if node.where is not None:
                    stack.append(node.where)
            else:
                stack.extend(node.children())
        sel = Select(m.table.name, cols, self._condition(), self._order if self._limit is not None or self._offset else (),
                     self._limit, self._offset, joins=scope.joins, group_by=self._group,
                     having=bool_or_none(list(self._having)), distinct=self._distinct)
        return Subquery(sel, tuple(outers), f"{m.cls.__name__} query")

    def _in_condition(self, left: ValueExpr, negate: bool) -> InSubquery:
        """``col.in_(query)``: the query's primary key as the subquery."""
        m = self._mapping
        if len(m.pk) != 1:
            msg = f"in_(query of {m.cls.__name__}): its key has several columns; pass query.subquery('column')"
            raise TypeError(msg)
        return InSubquery(left, self._as_subquery(None), negate)

    # -- execution --------------------------------------------------------------------------------

    def _condition(self) -> BoolExpr | None:
        where = self._where + read_conditions(self._mapping, self._lifted)
        if not where:
            return None
        if len(where) == 1:
            return where[0]
        return And(where)

    def _select(self, columns: list[ValueExpr] | None = None, limit: int | None = None) -> Select:
        m = self._mapping
        cols: list[ValueExpr] = list(columns) if columns is not None else list(self._session.tracker.loader(m).columns)
        order = list(self._order)
        if not order and (self._limit is not None or self._offset or limit is not None):
            # A window without an order is not repeatable: order by key so pages don't overlap
            # (by the groups, for a grouped query).
            order = [Ordering(c, False) for c in (self._group or m.pk)]
        return Select(m.table.name, cols, self._condition(), order, self._limit if limit is None else limit, self._offset,
                      joins=self._joins, group_by=self._group, having=bool_or_none(list(self._having)),
                      distinct=self._distinct, lock=self._lock_for(m))

    def _lock_for(self, m: ClassMapping[Any]) -> Lock | None:
        """The query's lock; on PostgreSQL a join locks the root's rows only, unless ``of`` says
        otherwise (the nullable side of a LEFT JOIN cannot be locked)."""
        lock = self._locking
        if lock is None:
            return None
        if self._group or self._distinct:
            msg = "a row lock cannot apply to grouped or distinct rows; lock a plain query, then aggregate"
            raise errors.QueryError(msg)
        if not self._session.dialect.row_locks:
            return None
        if self._joins and not lock.of and self._session.dialect.lock_of:
            return Lock(lock.shared, lock.nowait, lock.skip_locked, [m.table.name])
        return lock

    def all(self) -> list[T]:
        """Every matching object (identity-mapped: objects already held are returned as they are)."""
        s = self._session
        conn = s.read()
        sql, params = conn.compiler.select(self._select())
        with collector_paused(s):
            rows = conn.fetchall(sql, params)
            # Only includes need each row's state.
            row_states: list[Any] | None = [] if self._include else None
            return self._finish(s.load_rows(self._mapping, rows, row_states), row_states)

    def _finish(self, objs: list[T], row_states: list[Any] | None) -> list[T]:
        """Load the includes below the objects (``row_states``: their states, row by row)."""
        if self._include and objs and row_states is not None:
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

    @overload
    def values(self, c1: Column[A], /) -> list[tuple[A]]: ...

    @overload
    def values(self, c1: Column[A], c2: Column[B], /) -> list[tuple[A, B]]: ...

    @overload
    def values(self, c1: Column[A], c2: Column[B], c3: Column[C], /) -> list[tuple[A, B, C]]: ...

    @overload
    def values(self, c1: Column[A], c2: Column[B], c3: Column[C], c4: Column[D], /) -> list[tuple[A, B, C, D]]: ...

    @overload
    def values(self, *columns: str | ValueExpr, **labeled: str | ValueExpr) -> list[tuple[Any, ...]]: ...

    def values(self, *columns: str | ValueExpr, **labeled: str | ValueExpr) -> list[tuple[Any, ...]]:
        """Plain rows of the given attributes, paths (``"owner.name"``), columns and functions,
        converted to Python values; no objects are built.

        Keyword arguments are labelled values: ``values("owner.name", total=func.count(PugMapper.id))``
        returns rows that also read by name (``row.total``). With an aggregate and no
        ``group_by()``, the rows are grouped by the other values (as Django's
        ``values().annotate()``). ``count`` reads back as an int, ``sum`` as the column's kind
        (int, Decimal or float), ``avg`` as a float (a Decimal for Numeric columns).

        Columns alone (up to four) give typed tuples to a type checker: ``values(PugMapper.name,
        PugMapper.age)`` is a ``list[tuple[str, int | None]]``.

        Raises:
            QueryError: no values, a name that is not mapped, a path through a relation that
                is not to-one and not joined, or a label that is not an identifier.
        """
        m = self._mapping
        if not columns and not labeled:
            msg = f"values() needs at least one attribute of {m.name}"
            raise errors.QueryError(msg)
        scope = self._scope()
        cols: list[ValueExpr] = [scope.value(c, "values()") for c in columns]
        names: list[str] = [c if isinstance(c, str) else getattr(c, "key", "") or f"c{i}" for i, c in enumerate(columns)]
        for label, c in labeled.items():
            if not _LABEL.match(label):
                msg = f"values(): the label {label!r} is not an identifier"
                raise errors.QueryError(msg)
            cols.append(scope.value(c, f"values({label}=...)"))
            names.append(label)
        q = self._with(scope)
        if not q._group and any(is_aggregate(c) for c in cols) and not all(is_aggregate(c) for c in cols):
            q._group = tuple(c for c in cols if not is_aggregate(c))
        s = self._session
        conn = s.read()
        sel = q._select(cols)
        sel.labels = list(labeled) and [None] * len(columns) + list(labeled)
        sql, params = conn.compiler.select(sel)
        rows = conn.fetchall(sql, params)
        procs = [result_converter(c, conn.dialect) for c in cols]
        if labeled:
            klass = row_class(names)
            return [klass(v if p is None else p(v) for p, v in zip(procs, r)) for r in rows]
        if not any(procs):
            return [tuple(r) for r in rows]
        return [tuple(v if p is None else p(v) for p, v in zip(procs, r)) for r in rows]

    def from_sql(self, sql: str, params: dict[str, Any] | None = None) -> list[T]:
        """Objects from a raw SELECT, through the identity map (``:name`` parameters bound).

        Result columns are matched to the mapped columns by their database names (any order,
        extra columns ignored); every mapped column must be there, the key first of all, so that
        an object is never built half-read. Objects the session holds already are returned as
        they are. ``include()`` paths load as for ``all()``.

        Raises:
            QueryError: a mapped column (the key above all) is missing from the result, or the
                query has conditions, an order or a window (write those in the SQL).
        """
        m = self._mapping
        # A subclass's own discriminator condition is no condition of the user's: rows of other
        # classes the SQL returns are left out as they are read.
        conditions = self._where[len(scope_condition(m)):]
        if conditions or self._order or self._limit is not None or self._offset or self._group or self._joins:
            msg = "from_sql() runs the SQL as given; put conditions, order and limits in the SQL, not on the query"
            raise errors.QueryError(msg)
        if not isinstance(sql, str):
            msg = f"from_sql() takes SQL text, got {sql!r}"
            raise errors.QueryError(msg)
        s = self._session
        conn = s.read()
        d = conn.dialect
        text, values = bind_named(sql, params, d.marker, backslash_escapes=d.backslash_escapes, e_strings=d.e_strings,
                                  dollar_quotes=d.dollar_quotes, mysql_comments=d.mysql_comments)
        cur = conn.execute(text, values)
        if cur.description is None:
            msg = f"from_sql() needs a SELECT that returns rows of {m.cls.__name__}; the statement returned none"
            raise errors.QueryError(msg)
        found = {str(desc[0]).lower(): i for i, desc in reversed(list(enumerate(cur.description)))}
        loader = s.tracker.loader(m)
        positions: list[int] = []
        for col in loader.columns:
            i = found.get(col.name.lower())
            if i is None:
                what = "key column" if col.primary_key else "column"
                msg = (
                    f"from_sql(): the result has no {what} {col.name!r} ({m.name}.{col.key}); select every column of "
                    f"{m.table.name} (SELECT {m.table.name}.* ...); it returned {[d[0] for d in cur.description]}"
                )
                raise errors.QueryError(msg)
            positions.append(i)
        raw = cur.fetchall()
        rows = raw if positions == list(range(len(positions))) and len(cur.description) == len(positions) else [
            tuple(r[i] for i in positions) for r in raw
        ]
        with collector_paused(s):
            sts: list[Any] = []
            return self._finish(s.load_rows(m, rows, sts), sts)

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


class Page(Generic[T]):
    """One page of a query: ``items`` and the ``total`` of matching rows.

    Attributes:
        items: the objects of this page.
        total: how many rows match the whole query.
        page / per_page: the page number (from 1) and its size.
    """

    __slots__ = ("items", "total", "page", "per_page")

    def __init__(self, items: list[T], total: int, page: int, per_page: int) -> None:
        self.items = items
        self.total = total
        self.page = page
        self.per_page = per_page

    @property
    def pages(self) -> int:
        """How many pages there are (0 for no rows)."""
        return -(-self.total // self.per_page)

    @property
    def has_next(self) -> bool:
        """Whether a page follows this one."""
        return self.page < self.pages

    def __repr__(self) -> str:
        return f"<Page {self.page}/{self.pages} of {self.total}: {len(self.items)} items>"


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
