"""Soft delete and default scopes: the mapper options and the conditions they add to reads.

``soft_delete = "deleted_at"`` on a mapper makes ``session.delete(obj)`` set that column (an
aware UTC datetime) instead of deleting the row, and hides such rows from queries, collection
loads and ``session.get()``. ``default_scope = <condition>`` adds a condition on the mapper's
own columns to every query of the mapper. ``query.with_deleted()`` and ``query.unscoped()`` lift
them, one each.
"""

from __future__ import annotations

import datetime as _dt
from typing import TYPE_CHECKING, Any, Final

from .errors import ConfigurationError
from .expressions import BoolExpr, Expr, IsNull
from .schema import IDENTIFIER, Column
from .types import DateTime

if TYPE_CHECKING:
    from .mapping import ClassMapping

__all__ = ["resolve_scopes", "read_conditions", "soft_deleting", "WITH_DELETED", "UNSCOPED", "deleted_now"]

#: What a query may lift: the soft-delete filter, the default scope.
WITH_DELETED: Final = "deleted"
UNSCOPED: Final = "scope"


def resolve_scopes(cm: ClassMapping[Any]) -> None:
    """Check a mapping's ``soft_delete`` and ``default_scope`` options and resolve them.

    The soft-delete column is the mapper's column of that name, which must be a nullable
    ``DateTime(timezone=True)``; if the mapper declares none, it is added (held by the domain
    attribute of that name if there is one, else hidden).

    Raises:
        ConfigurationError: naming the mapper, the option and the fix.
    """
    mc = cm.mapper_class
    name = getattr(mc, "soft_delete", None)
    if name is not None:
        where = f"{cm.name}.soft_delete"
        if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
            msg = f'{where} takes the name of the column that records the deletion, such as "deleted_at"; got {name!r}'
            raise ConfigurationError(msg)
        col = cm.by_key.get(name)
        if col is None:
            hidden = name not in cm.domain_attributes
            col = cm.add_hidden_column(name, Column(DateTime(timezone=True), nullable=True, hidden=hidden))
        elif not (isinstance(col.type, DateTime) and col.type.timezone and col.nullable) or col.primary_key:
            msg = (
                f"{where} = {name!r}: {cm.name}.{name} is {col.type!r}{'' if col.nullable else ', NOT NULL'}; "
                f"the column must be Column(t.DateTime(timezone=True), nullable=True) (NULL while the row "
                f"lives), or leave it out and let soft_delete add it"
            )
            raise ConfigurationError(msg)
        cm.soft_delete = col
    scope = getattr(mc, "default_scope", None)
    if scope is not None:
        if not isinstance(scope, BoolExpr):
            msg = (
                f"{cm.name}.default_scope takes a condition on the mapper's columns, such as "
                f"`default_scope = published == True`; got {scope!r}"
            )
            raise ConfigurationError(msg)
        _check_own_columns(cm, scope)
        cm.default_scope = scope


def _check_own_columns(cm: ClassMapping[Any], e: Expr) -> None:
    stack: list[Expr] = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, Column):
            if cm.by_key.get(node.key) is not node:
                owner = node.owner.__name__ if node.owner is not None else "?"
                msg = f"{cm.name}.default_scope uses {owner}.{node.key}, which is not a column of {cm.name}; a default scope tests the mapper's own columns"
                raise ConfigurationError(msg)
        elif type(node).__name__ in ("RelationFilter", "Name", "Exists", "InSubquery", "ExistsSubquery"):
            msg = f"{cm.name}.default_scope: use conditions on {cm.name}'s own columns (no paths, relation filters or subqueries)"
            raise ConfigurationError(msg)
        else:
            stack.extend(node.children())


def read_conditions(cm: ClassMapping[Any], lifted: frozenset[str] = frozenset()) -> tuple[BoolExpr, ...]:
    """The conditions every query of ``cm`` adds, less those ``lifted``."""
    out: tuple[BoolExpr, ...] = ()
    if cm.soft_delete is not None and WITH_DELETED not in lifted:
        out += (IsNull(cm.soft_delete, False),)
    if cm.default_scope is not None and UNSCOPED not in lifted:
        out += (cm.default_scope,)
    return out


def soft_deleting(st: Any) -> bool:
    """Whether a state marked deleted keeps its row (a soft delete): its mapping has a
    soft-delete column and neither ``delete(obj, hard=True)`` nor a hard-deleted parent asked
    for the row to go."""
    return st.mapping.soft_delete is not None and not st.hard_delete


def deleted_now() -> _dt.datetime:
    """The time a soft delete records: now, aware UTC, whole microseconds as every backend keeps."""
    return _dt.datetime.now(_dt.timezone.utc)
