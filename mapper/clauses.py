"""What a query's names reach: its class's columns and relation paths joined under aliases.

A ``Scope`` belongs to one query while it is built. It turns attribute names and dotted
paths (``"owner.name"``, ``path("pugs.age")``) into columns of the root table or of a joined
alias, checks that every column of an expression is reachable, and rewrites expressions that
hold names. Every name is checked here, before any SQL is built.
"""

from __future__ import annotations

from typing import Any

from . import errors
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
    RelationFilter,
    ValueExpr,
)
from .embedded import Embedded
from .functions import ExistsSubquery, Function, InSubquery, Name, Outer, Subquery, is_aggregate
from .mapping import ClassMapping, RelationInfo
from .schema import Column
from .sql import AliasedColumn, Exists, Join

__all__ = ["Scope", "path"]


def path(name: str) -> Name:
    """An attribute reached through relations, for conditions and values: ``path("owner.name") == "Tom"``.

    A to-one path (BelongsTo, HasOne) is joined once (LEFT JOIN); a to-many path must be joined
    explicitly with ``query.join(...)`` (or filtered with ``.any()``), because it multiplies rows.
    """
    if not isinstance(name, str) or not name:
        msg = f"path() takes a dotted attribute path such as 'owner.name', got {name!r}"
        raise TypeError(msg)
    return Name(name)


class Scope:
    """The root mapping of a query and the relation paths it joined.

    Attributes:
        mapping: the query's class mapping.
        joins: the joins in order (the query's FROM clause after the root table).
        paths: relation path ("owner", "owner.country") -> (its join, the mapping it reaches).
    """

    __slots__ = ("mapping", "joins", "paths")

    def __init__(self, mapping: ClassMapping[Any], joins: tuple[Join, ...], paths: dict[str, tuple[Join, ClassMapping[Any]]]) -> None:
        self.mapping = mapping
        self.joins = list(joins)
        self.paths = dict(paths)

    # -- joins ------------------------------------------------------------------------------------

    def join(self, rel_path: str, what: str, inner: bool) -> tuple[str | None, ClassMapping[Any]]:
        """Join every segment of ``rel_path`` (once each); returns the last alias and mapping.

        To-one segments are LEFT JOINed unless ``inner``; a to-many segment needs ``inner``
        (an explicit ``join()``), since it multiplies the rows.
        """
        if not rel_path:
            return None, self.mapping
        m = self.mapping
        alias: str | None = None
        done: list[str] = []
        for name in rel_path.split("."):
            info = m.relations.get(name)
            if info is None:
                where = f" (after {'.'.join(done)})" if done else ""
                msg = (
                    f"{what}: {name!r} is not a relation of {m.cls.__name__}{where}; "
                    f"{m.name} has the relations {sorted(m.relations)}"
                )
                raise errors.QueryError(msg)
            done.append(name)
            key = ".".join(done)
            found = self.paths.get(key)
            if found is None:
                if info.to_many and not inner:
                    msg = (
                        f"{what}: {info.name} ({name!r}) is not a to-one relation (it is to-many); filter through it with "
                        f"{m.name}.{name}.any(...), or join it with query.join({key!r}) to get a row per "
                        "related row"
                    )
                    raise errors.QueryError(msg)
                found = (self._add_join(info, alias, inner), info.target)
                self.paths[key] = found
            elif inner and not found[0].inner:
                found[0].inner = True
            alias = found[0].alias
            m = info.target
        return alias, m

    def _add_join(self, info: RelationInfo, outer_alias: str | None, inner: bool) -> Join:
        n = len(self.joins) + 1
        table = info.target.table.name
        if info.kind.reference:
            j = Join(table, f"o{n}", list(zip(info.ref_cols, info.fk_cols)), outer_alias, inner)
        elif info.kind.children:
            j = Join(table, f"o{n}", list(zip(info.fk_cols, info.ref_cols)), outer_alias, inner, _kind_of(info.target, f"o{n}"))
        else:
            # Many-to-many: the junction first, then the target through it.
            jtable = info.junction.name if info.junction is not None else info.holder.table.name  # type: ignore[union-attr]
            link = Join(jtable, f"o{n}", list(zip(info.fk_cols, info.ref_cols)), outer_alias, True)
            self.joins.append(link)
            j = Join(table, f"o{n + 1}", list(zip(info.other_ref_cols, info.other_cols)), link.alias, True,
                     _kind_of(info.target, f"o{n + 1}"))
        self.joins.append(j)
        return j

    # -- names ------------------------------------------------------------------------------------

    def column(self, name: Any, what: str) -> ValueExpr:
        """A column by attribute name (``"age"``) or dotted path (``"owner.name"``)."""
        if not isinstance(name, str):
            msg = f"{what} takes attribute names or columns of {self.mapping.name}, got {name!r}"
            raise errors.QueryError(msg)
        head, _, rest = name.partition(".")
        if rest and head in self.mapping.embedded:
            return embedded_part(self.mapping, name, what)
        rel_path, dot, attr = name.rpartition(".")
        if dot and not rel_path:
            msg = (
                f"{what} {name!r}: '' is not a relation of {self.mapping.cls.__name__}; a path is relation names "
                "and an attribute joined by single dots"
            )
            raise errors.QueryError(msg)
        alias, m = self.join(rel_path, f"{what} {name!r}", False)
        col = column_of(m, attr, what)
        return col if alias is None else AliasedColumn(col, alias)

    def own(self, col: Column, what: str) -> ValueExpr:
        """A mapper column as this query reaches it: the root's, or the one joined alias of its table."""
        m = self.mapping
        if col.table == m.table.name and m.by_key.get(col.key) is col:
            return col
        hits = [(j, jm) for j, jm in self.paths.values() if jm.table.name == col.table and jm.by_key.get(col.key) is col]
        if len(hits) == 1:
            return AliasedColumn(col, hits[0][0].alias)
        owner = col.owner.__name__ if col.owner is not None else "?"
        if hits:
            msg = f"{owner}.{col.key} in {what} is joined several times; name it by its path with path('...')"
        else:
            msg = (
                f"{owner}.{col.key} in {what} is not a column of {m.name}; "
                f"use {m.cls.__name__}'s own columns, a path such as path('owner.name'), or follow a relation with "
                f"{m.name}.<relation>.has(...)"
            )
        raise errors.QueryError(msg)

    def value(self, e: Any, what: str, aggregates: bool = True) -> ValueExpr:
        """A value for values(), group_by(), order_by(): a name, path, column or function."""
        if isinstance(e, str):
            return self.column(e, what)
        if not isinstance(e, ValueExpr):
            msg = f"{what} takes attribute names, columns or func.* expressions of {self.mapping.name}, got {e!r}"
            raise errors.QueryError(msg)
        out = self.resolve(e, what)
        if not aggregates and is_aggregate(out):
            msg = f"{what} cannot hold an aggregate ({e!r}); put conditions on aggregates in having()"
            raise errors.QueryError(msg)
        return out  # type: ignore[return-value]

    def resolve(self, e: Expr, what: str) -> Expr:
        """``e`` with names resolved and columns checked (relation filters are left to the query)."""
        r = self.resolve
        if isinstance(e, Column):
            return self.own(e, what)
        if isinstance(e, Name):
            return self.column(e.path, what)
        if isinstance(e, (Literal, AliasedColumn, RawBool, Exists, RelationFilter)):
            return e
        if isinstance(e, Function):
            return Function(e.name, tuple(r(a, what) for a in e.args), e.distinct, e.type)  # type: ignore[misc]
        if isinstance(e, Outer):
            return e  # checked by the enclosing query (``check_outer``)
        if isinstance(e, Subquery):
            self.check_outer(e, what)
            return e
        if isinstance(e, Compare):
            return Compare(r(e.left, what), e.op, r(e.right, what))  # type: ignore[arg-type]
        if isinstance(e, InList):
            return InList(r(e.left, what), tuple(r(v, what) for v in e.values), e.negate)  # type: ignore[arg-type, misc]
        if isinstance(e, InSubquery):
            self.check_outer(e.sub, what)
            return InSubquery(r(e.left, what), e.sub, e.negate)  # type: ignore[arg-type]
        if isinstance(e, ExistsSubquery):
            self.check_outer(e.sub, what)
            return e
        if isinstance(e, Like):
            return Like(r(e.left, what), r(e.pattern, what), e.insensitive)  # type: ignore[arg-type]
        if isinstance(e, IsNull):
            return IsNull(r(e.left, what), e.negate)  # type: ignore[arg-type]
        if isinstance(e, Between):
            return Between(r(e.left, what), r(e.low, what), r(e.high, what))  # type: ignore[arg-type]
        if isinstance(e, And):
            return And(tuple(r(i, what) for i in e.items))  # type: ignore[misc]
        if isinstance(e, Or):
            return Or(tuple(r(i, what) for i in e.items))  # type: ignore[misc]
        if isinstance(e, Not):
            return Not(r(e.item, what))  # type: ignore[arg-type]
        if isinstance(e, Ordering):
            return Ordering(r(e.expr, what), e.descending)  # type: ignore[arg-type]
        msg = f"{what}: cannot use {e!r} here"
        raise errors.QueryError(msg)

    def check_outer(self, sub: Subquery, what: str) -> None:
        """Every ``outer()`` column of a subquery must be a column this query reaches."""
        for o in sub.outers:
            if isinstance(o.col, Column):
                self.own(o.col, f"{what} (outer() in the subquery of {sub.source})")


def _kind_of(target: ClassMapping[Any], alias: str) -> BoolExpr | None:
    """The joined rows' discriminator condition when the target is a subclass in a shared table."""
    h = target.hierarchy
    if h is None or h.parent is None:
        return None
    col = AliasedColumn(h.root.by_key[h.column.key], alias)
    values = list(h.values)
    return col == values[0] if len(values) == 1 else col.in_(values)


def column_of(m: ClassMapping[Any], name: Any, what: str) -> Column:
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


def embedded_part(m: ClassMapping[Any], name: str, what: str) -> Column:
    """The column of a part of an Embedded attribute named by a dotted name (``"price.amount"``)."""
    head, *parts = name.split(".")
    node: Any = m.embedded[head]
    for part in parts:
        if not isinstance(node, Embedded):
            node = None
            break
        try:
            node = getattr(node, part)
        except AttributeError as exc:
            raise errors.QueryError(f"{what} {name!r}: {exc}") from None
    if isinstance(node, Embedded):
        msg = f"{what} {name!r} names a value object, not one of its columns; name a part, such as {name + '.' + next(iter(node._parts))!r}"
        raise errors.QueryError(msg)
    if not isinstance(node, Column):
        msg = f"{what} {name!r}: the path goes on past a column of {head!r}"
        raise errors.QueryError(msg)
    return node


def bool_or_none(items: list[BoolExpr]) -> BoolExpr | None:
    """None, the one condition, or their AND."""
    if not items:
        return None
    return items[0] if len(items) == 1 else And(tuple(items))
