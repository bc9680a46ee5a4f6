"""Relation declarations: BelongsTo, HasMany, HasOne, BelongsToMany (configuration only, no SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from .errors import ConfigurationError
from .expressions import RelationFilter

__all__ = ["Relation", "BelongsTo", "HasMany", "HasOne", "BelongsToMany", "parse_cascade", "CASCADES"]

CASCADES = frozenset({"save", "delete", "orphan"})
LAZY = ("select", "raise")

Keys = str | Sequence[str] | None


def _keys(value: Keys) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def parse_cascade(value: Any, where: str, allowed: frozenset[str] = CASCADES) -> frozenset[str]:
    """The cascade set from ``"save, delete"``, a tuple, or ``"all"``.

    Raises:
        ConfigurationError: an unknown word, or one the relation kind does not accept.
    """
    if value is None:
        return frozenset({"save"})
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
    out: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            msg = f"{where}: cascade items are strings, got {item!r}"
            raise ConfigurationError(msg)
        if item == "all":
            out |= allowed
        elif item == "":
            continue
        elif item not in CASCADES:
            msg = f"{where}: unknown cascade {item!r}; use any of 'save', 'delete', 'orphan' or 'all'"
            raise ConfigurationError(msg)
        elif item not in allowed:
            msg = f"{where}: cascade {item!r} is not allowed here; this relation accepts {sorted(allowed)}"
            raise ConfigurationError(msg)
        else:
            out.add(item)
    return frozenset(out)


class Relation:
    """Base class of relation declarations on a Mapper.

    Args:
        target: the related domain class, or its name as a string (forward reference).
        foreign_key: mapper attribute name(s) of the key column(s) (see each kind).
        inverse: the name of the relation on the target that mirrors this one.
        cascade: "save", "delete", "orphan", a comma-separated mix, a tuple, or "all".
        order_by: for collections, attribute names of the target ("-name" descending).
        lazy: "select" (load on first touch, for the whole result) or "raise".
    """

    to_many: ClassVar[bool] = False
    #: The source holds the foreign key and points at one parent (BelongsTo).
    reference: ClassVar[bool] = False
    #: The source is the parent: the target's rows hold the key (HasMany, HasOne).
    children: ClassVar[bool] = False
    #: Pairs of rows linked through a junction or association table (BelongsToMany).
    links: ClassVar[bool] = False
    allowed_cascades: ClassVar[frozenset[str]] = CASCADES

    def __init__(
        self,
        target: type | str,
        *,
        foreign_key: Keys = None,
        inverse: str | None = None,
        cascade: str | Sequence[str] | None = None,
        order_by: str | Sequence[str] | None = None,
        lazy: str | None = None,
    ) -> None:
        self.target = target
        self.foreign_key = _keys(foreign_key)
        self.inverse = inverse
        self.cascade_arg = cascade
        self.order_by = _keys(order_by) or ()
        self.lazy = lazy
        #: Set by ``__set_name__``: the Mapper class and attribute name.
        self.owner: type | None = None
        self.key = ""

    def __set_name__(self, owner: type, key: str) -> None:
        self.owner = owner
        self.key = key

    @property
    def target_name(self) -> str:
        """The target class name (for messages and forward references)."""
        return self.target if isinstance(self.target, str) else self.target.__name__

    def has(self, *conditions: Any, **equals: Any) -> RelationFilter:
        """A query condition: the related object exists and matches (``PugMapper.owner.has(name="Tom")``)."""
        return RelationFilter(self, conditions, equals)

    def any(self, *conditions: Any, **equals: Any) -> RelationFilter:
        """A query condition: at least one related object matches (``OwnerMapper.pugs.any(age=3)``)."""
        return RelationFilter(self, conditions, equals)

    def __repr__(self) -> str:
        owner = self.owner.__name__ if self.owner is not None else "?"
        return f"<{type(self).__name__} {owner}.{self.key} -> {self.target_name}>"


class BelongsTo(Relation):
    """This table holds the foreign key: ``Pug.owner`` with ``foreign_key="owner_id"`` on PugMapper.

    The default foreign key is ``<attribute>_id``, created as a hidden column if not declared.
    Only the ``"save"`` cascade applies.
    """

    reference = True
    allowed_cascades = frozenset({"save"})


class HasMany(Relation):
    """The target table holds the foreign key: ``Owner.pugs`` with ``foreign_key="owner_id"`` on PugMapper.

    Args:
        collection: ``list`` (default) or ``set``.
    """

    children = True
    to_many = True

    def __init__(self, target: type | str, *, collection: type = list, **kwargs: Any) -> None:
        super().__init__(target, **kwargs)
        self.collection = collection


class HasOne(Relation):
    """Like HasMany with at most one target: ``User.profile`` with ``foreign_key="user_id"`` on ProfileMapper.

    A HasOne relation is loaded together with its parents (one batched query per result),
    because an absent row must read as None.
    """

    children = True


class BelongsToMany(Relation):
    """Many-to-many through a junction: ``User.favorites`` through ``"user_favorites"``.

    Args:
        through: a junction table name (created by create_all) or a mapped association
            class whose rows carry payload columns (for example a rating).
        foreign_key: the junction attribute(s) referencing this side (default ``<class>_id``).
        other_key: the junction attribute(s) referencing the target (default ``<target>_id``).
        collection: ``list`` (default) or ``set``.
    """

    links = True
    to_many = True

    def __init__(
        self,
        target: type | str,
        *,
        through: str | type,
        other_key: Keys = None,
        collection: type = list,
        **kwargs: Any,
    ) -> None:
        super().__init__(target, **kwargs)
        self.through = through
        self.other_key = _keys(other_key)
        self.collection = collection
