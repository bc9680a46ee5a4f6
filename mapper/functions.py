"""SQL functions, aggregates, outer references and subqueries as expression nodes.

``func.count(PugMapper.id)`` builds ``Function("count", (PugMapper.id,))``. Like the other
expression nodes these are pure data: the query resolves names and checks columns, the compiler
renders them. A function name is an identifier checked here, never free text.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Final

from .expressions import BoolExpr, Expr, Literal, ValueExpr
from .types import ColumnType, Float, Integer, Numeric

__all__ = [
    "Function",
    "Name",
    "Outer",
    "Subquery",
    "InSubquery",
    "ExistsSubquery",
    "func",
    "outer",
    "exists",
    "AGGREGATES",
    "is_aggregate",
    "result_converter",
]

#: Functions that aggregate rows (they belong in values(), having() and order_by(), not where()).
AGGREGATES: Final = frozenset({"count", "sum", "avg", "min", "max"})

_FUNCTION_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class Name(ValueExpr):
    """An attribute name or dotted relation path (``"owner.name"``) inside a function call,
    resolved against the query's class when the query takes the function."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"Name({self.path!r})"


class Function(ValueExpr):
    """``name(args)``: a SQL function or aggregate.

    Attributes:
        name: the function name (an identifier, lower case for the five aggregates).
        args: the arguments (columns, names, literals, other functions); empty for ``count(*)``.
        distinct: ``name(DISTINCT arg)``.
        type: the column type of the result when known (converts literals compared with it
            and the values read back), else None.
    """

    __slots__ = ("name", "args", "distinct", "type")

    def __init__(self, name: str, args: tuple[ValueExpr, ...], distinct: bool = False, type: ColumnType | None = None) -> None:
        self.name = name
        self.args = args
        self.distinct = distinct
        self.type = type

    def value_type(self) -> ColumnType | None:
        if self.type is not None:
            return self.type
        if self.name == "count":
            return Integer()
        if self.name in ("sum", "min", "max") and self.args:
            return self.args[0].value_type()
        if self.name == "avg" and self.args:
            arg = self.args[0].value_type()
            return arg if isinstance(arg, Numeric) else Float()
        return None

    def children(self) -> tuple[Expr, ...]:
        return self.args

    def __repr__(self) -> str:
        return f"func.{self.name}({', '.join(map(repr, self.args))})"


class Outer(ValueExpr):
    """A column of the enclosing query, referenced inside a subquery (a correlated subquery).

    ``outer(OwnerMapper.id)`` inside ``s.query(Pug).where(PugMapper.owner_id == outer(OwnerMapper.id))``.
    """

    __slots__ = ("col",)

    def __init__(self, col: ValueExpr) -> None:
        self.col = col

    def value_type(self) -> ColumnType | None:
        return self.col.value_type()

    def __repr__(self) -> str:
        return f"outer({self.col!r})"


class Subquery(ValueExpr):
    """A SELECT used as a value set (``col.in_(query.subquery("id"))``) or in ``exists()``.

    Attributes:
        select: the statement (a ``mapper.sql.Select``), built by the query.
        outers: the ``Outer`` columns it references, checked by the enclosing query.
        source: a description for error messages ("Owner query").
    """

    __slots__ = ("select", "outers", "source")

    def __init__(self, select: Any, outers: tuple[Outer, ...], source: str) -> None:
        self.select = select
        self.outers = outers
        self.source = source

    def value_type(self) -> ColumnType | None:
        cols = self.select.columns
        return cols[0].value_type() if len(cols) == 1 else None

    def _in_condition(self, left: ValueExpr, negate: bool) -> InSubquery:
        if len(self.select.columns) != 1:
            msg = f"in_() takes a subquery of one column; the subquery of {self.source} has {len(self.select.columns)}"
            raise TypeError(msg)
        return InSubquery(left, self, negate)

    def __repr__(self) -> str:
        return f"<subquery of {self.source}>"


class InSubquery(BoolExpr):
    """``left [NOT] IN (SELECT ...)``."""

    __slots__ = ("left", "sub", "negate")

    def __init__(self, left: ValueExpr, sub: Subquery, negate: bool) -> None:
        self.left = left
        self.sub = sub
        self.negate = negate

    def children(self) -> tuple[Expr, ...]:
        return (self.left,)


class ExistsSubquery(BoolExpr):
    """``EXISTS (SELECT ...)`` of another query."""

    __slots__ = ("sub",)

    def __init__(self, sub: Subquery) -> None:
        self.sub = sub


def _arg(value: Any) -> ValueExpr:
    if isinstance(value, ValueExpr):
        return value
    if isinstance(value, str):
        return Name(value)
    if isinstance(value, Expr):
        msg = f"a function takes columns, attribute names or values, not the condition {value!r}"
        raise TypeError(msg)
    return Literal(value, None)


class _Func:
    """The ``func`` namespace: ``func.count()``, ``func.sum(col)``, ``func.coalesce(a, b)``..."""

    __slots__ = ()

    def count(self, arg: Any = None, *, distinct: bool = False) -> Function:
        """``count(*)`` with no argument, ``count(arg)`` (non-NULL values), ``count(DISTINCT arg)``."""
        if arg is None:
            if distinct:
                msg = "func.count(distinct=True) needs the column to count"
                raise TypeError(msg)
            return Function("count", ())
        return Function("count", (_arg(arg),), distinct)

    def sum(self, arg: Any, *, distinct: bool = False) -> Function:
        """``sum(arg)``: an int for integer columns, a Decimal for Numeric, a float for Float."""
        return Function("sum", (_arg(arg),), distinct)

    def avg(self, arg: Any, *, distinct: bool = False) -> Function:
        """``avg(arg)``: a Decimal for Numeric columns, else a float."""
        return Function("avg", (_arg(arg),), distinct)

    def min(self, arg: Any) -> Function:
        """``min(arg)``, converted by the column's type."""
        return Function("min", (_arg(arg),))

    def max(self, arg: Any) -> Function:
        """``max(arg)``, converted by the column's type."""
        return Function("max", (_arg(arg),))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if not _FUNCTION_NAME.match(name):
            msg = f"func.{name}: a SQL function name is a plain identifier"
            raise AttributeError(msg)

        def call(*args: Any, type: ColumnType | None = None) -> Function:
            return Function(name, tuple(_arg(a) for a in args), False, type)

        call.__name__ = name
        call.__doc__ = f"``{name}(...)`` (any SQL function; pass ``type=`` to convert its result)."
        return call


func: Final = _Func()


def outer(col: ValueExpr) -> Outer:
    """A column of the enclosing query, for a correlated subquery."""
    if not isinstance(col, ValueExpr):
        msg = f"outer() takes a mapper column such as OwnerMapper.id, got {col!r}"
        raise TypeError(msg)
    return Outer(col)


def exists(query: Any) -> ExistsSubquery:
    """``EXISTS (query)``: true when another query (``s.query(Pug).where(...)``) matches a row."""
    make = getattr(query, "_as_subquery", None)
    if make is None:
        msg = f"exists() takes a query such as s.query(Pug).where(...), got {query!r}"
        raise TypeError(msg)
    sub: Subquery = make(None)
    return ExistsSubquery(sub)


def is_aggregate(e: Expr) -> bool:
    """Whether ``e`` contains an aggregate function (outside subqueries)."""
    stack: list[Expr] = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, Function) and node.name.lower() in AGGREGATES:
            return True
        stack.extend(node.children())
    return False


def result_converter(e: ValueExpr, dialect: Any) -> Any:
    """A function converting a driver value of ``e`` to its Python value, or None.

    Columns convert by their type; aggregates read back the same on every backend: ``count``
    an int, ``sum`` of integers an int (MySQL and PostgreSQL give decimals), of Numeric a
    Decimal, of Float a float; ``avg`` a Decimal for Numeric and a float otherwise.
    """
    if isinstance(e, Function):
        name = e.name.lower()
        arg_type = e.args[0].value_type() if e.args else None
        if name == "count":
            return _to_int
        if name == "avg":
            return _to_decimal if isinstance(arg_type, Numeric) else _to_float
        if name == "sum":
            if isinstance(arg_type, Numeric):
                return _to_decimal
            if isinstance(arg_type, Float):
                return _to_float
            if arg_type is not None and arg_type.kind in ("integer", "biginteger", "smallinteger"):
                return _to_int
        typ = e.value_type()
        return None if typ is None else dialect.result_processor(typ)
    typ = e.value_type()
    return None if typ is None else dialect.result_processor(typ)


def _to_int(v: Any) -> Any:
    return v if v is None or type(v) is int else int(v)


def _to_float(v: Any) -> Any:
    return v if v is None or type(v) is float else float(v)


def _to_decimal(v: Any) -> Any:
    return v if v is None or isinstance(v, Decimal) else Decimal(str(v))
