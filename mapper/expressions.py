"""Expression nodes built from mapper columns: pure data, rendered later by ``mapper.sql``.

``PugMapper.age < 3`` builds ``Compare(PugMapper.age, "<", Literal(3))``. Values never
become SQL text: a ``Literal`` is always sent as a bound parameter.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .types import ColumnType

__all__ = [
    "Expr",
    "ValueExpr",
    "BoolExpr",
    "Literal",
    "Compare",
    "InList",
    "Like",
    "IsNull",
    "Between",
    "And",
    "Or",
    "Not",
    "Ordering",
    "RawBool",
    "RelationFilter",
    "as_bool_expr",
]


class Expr:
    """Base class of every expression node."""

    __slots__ = ()

    def children(self) -> tuple[Expr, ...]:
        """The sub-expressions, for walks that validate or collect columns."""
        return ()


class BoolExpr(Expr):
    """An expression that is true or false: combine with ``&``, ``|`` and ``~``."""

    __slots__ = ()

    def __and__(self, other: BoolExpr) -> BoolExpr:
        return And((self, as_bool_expr(other)))

    def __or__(self, other: BoolExpr) -> BoolExpr:
        return Or((self, as_bool_expr(other)))

    def __invert__(self) -> BoolExpr:
        return Not(self)

    def __bool__(self) -> bool:
        # `a < b < c` or `if col == 3:` would silently do the wrong thing.
        msg = (
            "a column expression has no truth value; combine conditions with & | ~ "
            "and pass them to query.where()"
        )
        raise TypeError(msg)


class ValueExpr(Expr):
    """An expression with a value (a column, or a bound literal) that can be compared."""

    __slots__ = ()

    def value_type(self) -> ColumnType | None:
        """The column type used to convert literals compared with this expression."""
        return None

    def _lit(self, value: Any) -> ValueExpr:
        if isinstance(value, ValueExpr):
            return value
        if isinstance(value, Expr):
            msg = f"cannot compare a value with the condition {value!r}"
            raise TypeError(msg)
        return Literal(value, self.value_type())

    def __eq__(self, other: Any) -> BoolExpr:  # type: ignore[override]
        if other is None:
            return IsNull(self, False)
        return Compare(self, "=", self._lit(other))

    def __ne__(self, other: Any) -> BoolExpr:  # type: ignore[override]
        if other is None:
            return IsNull(self, True)
        return Compare(self, "<>", self._lit(other))

    def __lt__(self, other: Any) -> BoolExpr:
        return Compare(self, "<", self._lit(other))

    def __le__(self, other: Any) -> BoolExpr:
        return Compare(self, "<=", self._lit(other))

    def __gt__(self, other: Any) -> BoolExpr:
        return Compare(self, ">", self._lit(other))

    def __ge__(self, other: Any) -> BoolExpr:
        return Compare(self, ">=", self._lit(other))

    # Comparison operators return expressions, so identity hashing must be restored.
    __hash__ = object.__hash__

    def in_(self, values: Iterable[Any]) -> BoolExpr:
        """``column IN (values)``; an empty list is false. ``values`` may be a subquery
        (``s.query(Owner).where(...).subquery("id")``): ``column IN (SELECT ...)``."""
        sub = getattr(values, "_in_condition", None)
        if sub is not None:
            return sub(self, False)  # type: ignore[no-any-return]
        return InList(self, tuple(self._lit(v) for v in _iter_values(values)), False)

    def not_in(self, values: Iterable[Any]) -> BoolExpr:
        """``column NOT IN (values)``; an empty list is true; a subquery as for ``in_()``."""
        sub = getattr(values, "_in_condition", None)
        if sub is not None:
            return sub(self, True)  # type: ignore[no-any-return]
        return InList(self, tuple(self._lit(v) for v in _iter_values(values)), True)

    def like(self, pattern: str) -> BoolExpr:
        """``column LIKE pattern`` (case sensitivity follows the backend's collation)."""
        return Like(self, self._pattern(pattern), False)

    def ilike(self, pattern: str) -> BoolExpr:
        """Case-insensitive LIKE on every backend."""
        return Like(self, self._pattern(pattern), True)

    def is_(self, value: None) -> BoolExpr:
        """``column IS NULL`` (only None is accepted)."""
        if value is not None:
            msg = f"is_() takes None, got {value!r}; use == for values"
            raise TypeError(msg)
        return IsNull(self, False)

    def is_not(self, value: None) -> BoolExpr:
        """``column IS NOT NULL`` (only None is accepted)."""
        if value is not None:
            msg = f"is_not() takes None, got {value!r}; use != for values"
            raise TypeError(msg)
        return IsNull(self, True)

    def between(self, low: Any, high: Any) -> BoolExpr:
        """``column BETWEEN low AND high`` (both ends included)."""
        return Between(self, self._lit(low), self._lit(high))

    def asc(self) -> Ordering:
        """Ascending order, for ``order_by``."""
        return Ordering(self, False)

    def desc(self) -> Ordering:
        """Descending order, for ``order_by``."""
        return Ordering(self, True)

    @staticmethod
    def _pattern(pattern: Any) -> Literal:
        if not isinstance(pattern, str):
            msg = f"like()/ilike() take a string pattern, got {pattern!r}"
            raise TypeError(msg)
        return Literal(pattern, None)


def _iter_values(values: Iterable[Any]) -> list[Any]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        msg = f"in_()/not_in() take a list of values, got {values!r}"
        raise TypeError(msg)
    return list(values)


class Literal(ValueExpr):
    """A value sent as a bound parameter, converted by ``type`` when one is known."""

    __slots__ = ("value", "type")

    def __init__(self, value: Any, type: ColumnType | None) -> None:
        self.value = value
        self.type = type

    def value_type(self) -> ColumnType | None:
        return self.type

    def __repr__(self) -> str:
        return f"Literal({self.value!r})"


class Compare(BoolExpr):
    """``left op right`` for op in = <> < <= > >=."""

    __slots__ = ("left", "op", "right")

    def __init__(self, left: ValueExpr, op: str, right: ValueExpr) -> None:
        self.left = left
        self.op = op
        self.right = right

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


class InList(BoolExpr):
    """``left [NOT] IN (values)``."""

    __slots__ = ("left", "values", "negate")

    def __init__(self, left: ValueExpr, values: tuple[ValueExpr, ...], negate: bool) -> None:
        self.left = left
        self.values = values
        self.negate = negate

    def children(self) -> tuple[Expr, ...]:
        return (self.left, *self.values)


class Like(BoolExpr):
    """``left LIKE pattern``, case-insensitive when ``insensitive``."""

    __slots__ = ("left", "pattern", "insensitive")

    def __init__(self, left: ValueExpr, pattern: ValueExpr, insensitive: bool) -> None:
        self.left = left
        self.pattern = pattern
        self.insensitive = insensitive

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.pattern)


class IsNull(BoolExpr):
    """``left IS [NOT] NULL``."""

    __slots__ = ("left", "negate")

    def __init__(self, left: ValueExpr, negate: bool) -> None:
        self.left = left
        self.negate = negate

    def children(self) -> tuple[Expr, ...]:
        return (self.left,)


class Between(BoolExpr):
    """``left BETWEEN low AND high``."""

    __slots__ = ("left", "low", "high")

    def __init__(self, left: ValueExpr, low: ValueExpr, high: ValueExpr) -> None:
        self.left = left
        self.low = low
        self.high = high

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.low, self.high)


class And(BoolExpr):
    """All of ``items``."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[BoolExpr, ...]) -> None:
        self.items = items

    def children(self) -> tuple[Expr, ...]:
        return self.items


class Or(BoolExpr):
    """Any of ``items``."""

    __slots__ = ("items",)

    def __init__(self, items: tuple[BoolExpr, ...]) -> None:
        self.items = items

    def children(self) -> tuple[Expr, ...]:
        return self.items


class Not(BoolExpr):
    """The negation of ``item``."""

    __slots__ = ("item",)

    def __init__(self, item: BoolExpr) -> None:
        self.item = item

    def children(self) -> tuple[Expr, ...]:
        return (self.item,)


class RawBool(BoolExpr):
    """A fixed truth value (an empty IN list, an empty ``where()``)."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value


class RelationFilter(BoolExpr):
    """``EXISTS`` over a relation: its target matches ``conditions`` and ``equals``.

    ``relation`` is the declaration (a mapper attribute); the query resolves it.
    """

    __slots__ = ("relation", "conditions", "equals")

    def __init__(self, relation: Any, conditions: tuple[Any, ...], equals: dict[str, Any]) -> None:
        self.relation = relation
        self.conditions = conditions
        self.equals = equals


class Ordering(Expr):
    """An ``order_by`` item: an expression and its direction."""

    __slots__ = ("expr", "descending")

    def __init__(self, expr: ValueExpr, descending: bool) -> None:
        self.expr = expr
        self.descending = descending

    def children(self) -> tuple[Expr, ...]:
        return (self.expr,)


def as_bool_expr(value: Any) -> BoolExpr:
    """Return ``value`` if it is a condition, else raise a TypeError that says what was given."""
    if isinstance(value, BoolExpr):
        return value
    msg = (
        f"expected a condition such as PugMapper.age < 3, got {value!r}; "
        "use where(name=value) for equality on attribute names"
    )
    raise TypeError(msg)
