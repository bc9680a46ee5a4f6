"""The checks that keep a mistake in a mapping from turning into a value silently never written.

The registry (``mapping.Registry``) runs them while it resolves mappers; each raises a
``ConfigurationError`` naming mapper, attribute, the name probably meant and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from .errors import ConfigurationError
from .types import ColumnType, DateTime, Enum

if TYPE_CHECKING:
    from .mapping import ClassMapping, RelationInfo
    from .schema import Column

__all__ = [
    "check_hidden_columns",
    "check_unfilled_fields",
    "fields_without_default",
    "check_key_types",
    "refuse_unknown_key",
    "value_kind",
]


def check_hidden_columns(mappings: Iterable[ClassMapping[Any]], cm: ClassMapping[Any], named: set[int]) -> None:
    """Refuse a declared column that no attribute of the class holds, unless a relation names it
    as its key or it says ``hidden=True`` (``timestamps`` columns are hidden by definition).

    Args:
        mappings: every mapping of the registry, relations resolved.
        cm: the mapping to check.
        named: ``id()`` of every column that some relation uses as a key.

    Raises:
        ConfigurationError: naming the column, the attribute probably meant and both fixes.
    """
    for col in cm.hidden_columns:
        if col.hidden or id(col) in named:
            continue
        if cm.timestamps and col.key in ("created_at", "updated_at"):
            continue
        cls = cm.cls.__name__
        mapped = set(cm.by_key) | set(cm.relations)
        fields = [a for a in cm.domain_attributes if a not in mapped] or cm.domain_attributes
        guess = difflib.get_close_matches(col.key, fields, n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else ""
        keys = [
            f"{i.source.name}.{i.key} names {c.key!r} as its key (did you mean {col.key!r} there?)"
            for i, c in _derived_keys(mappings, cm)
            if difflib.get_close_matches(col.key, [c.key])
        ]
        also = f"; {', '.join(keys)}" if keys else ""
        rename = (
            f"Rename it `{guess[0]} = Column(..., name={col.name!r})` (name= keeps the database column)"
            if guess
            else "Name it after the attribute it stores (name= keeps the database column)"
        )
        msg = (
            f"{cm.name}.{col.key}: {cls} has no attribute {col.key!r}{hint} and no relation names it as "
            f"its key, so a value set on the object would never be written{also}. {rename}, or declare "
            f"`{col.key} = Column(..., hidden=True)` if its value lives only in the session"
        )
        raise ConfigurationError(msg)


def _derived_keys(mappings: Iterable[ClassMapping[Any]], cm: ClassMapping[Any]) -> list[tuple[RelationInfo, Column]]:
    """Key columns that relations derived on ``cm`` (its mapper did not declare them)."""
    declared = cm.mapper_class.__columns__
    return [
        (i, c)
        for m in mappings
        for i in m.relations.values()
        if i.holder is cm
        for c in (*i.fk_cols, *i.other_cols)
        if c.key not in declared
    ]


def check_unfilled_fields(cm: ClassMapping[Any], without_default: Iterable[str]) -> None:
    """Refuse domain fields that a loaded object would lack: no column or relation maps them,
    they have no default, and the mapper has no ``on_load`` (trusted to set them).

    Args:
        cm: the mapping, with its derived key columns.
        without_default: the fields of the domain class that have no default.

    Raises:
        ConfigurationError: naming the class, the fields and the fixes.
    """
    if cm.on_load is not None:
        return  # on_load is where such state is filled; the registry cannot see what it sets
    mapped = {c.key for c in cm.attr_columns} | set(cm.relations) | set(cm.embedded)
    missing = [f for f in without_default if f not in mapped]
    if not missing:
        return
    cls = cm.cls.__name__
    unused = [c.key for c in cm.hidden_columns]
    hints = [
        f"{f!r} (did you mean column {g[0]!r}?)" if (g := difflib.get_close_matches(f, unused, n=1)) else repr(f)
        for f in missing
    ]
    it = "it" if len(missing) == 1 else "them"
    msg = (
        f"{cm.name}: {cls} declares {', '.join(hints)} but no column or relation of {cm.name} maps {it} "
        f"and {cls} gives no default, so a loaded {cls} would lack {it}. Map each with a Column or "
        f"relation, give it a default in {cls}, or set it in `{cm.name}.on_load(self, obj)`"
    )
    raise ConfigurationError(msg)


def fields_without_default(cls: type, init_assignments: Callable[[type], set[str]]) -> list[str]:
    """The attributes a domain class declares that nothing gives a value when an object is built
    without ``__init__``.

    Args:
        cls: the domain class.
        init_assignments: the names a plain class's ``__init__`` assigns (read from its source).

    Returns:
        Fields with no default (attrs, dataclasses) or, on a plain class, annotated, slotted or
        ``__init__``-assigned names with no class-level value.
    """
    if attrs.has(cls):
        return [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]
    if dataclasses.is_dataclass(cls):
        return [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
    names: set[str] = set()
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        for n, ann in vars(klass).get("__annotations__", {}).items():
            if "ClassVar" not in str(ann):
                names.add(n)
        slots = vars(klass).get("__slots__", ())
        names.update(n for n in ([slots] if isinstance(slots, str) else slots) if n not in ("__weakref__", "__dict__"))
    names |= init_assignments(cls)
    # A class-level value serves as the default of an instance that never set the name; a slot
    # is a descriptor on the class, not a value.
    return sorted(n for n in names if not _class_value(cls, n))


def _class_value(cls: type, name: str) -> bool:
    """Whether the class (or a base) gives ``name`` a value that instances read through."""
    for klass in cls.__mro__:
        if name in vars(klass):
            return not inspect.ismemberdescriptor(vars(klass)[name])
    return False


def value_kind(ct: ColumnType) -> tuple[Any, ...]:
    """What values a column holds, for comparing a foreign key with the key it references: the
    Python type of its values, and the enum class or time-zone awareness that also changes
    them. Integer types share one kind, as do String and Text.

    Returns:
        A tuple that is equal for two types whose values can match.
    """
    if isinstance(ct, Enum):
        return (ct.python_type, ct.enum_class)
    if isinstance(ct, DateTime):
        return (ct.python_type, ct.timezone)
    return (ct.python_type,)


def check_key_types(where: str, cols: list[Column], refs: list[Column], ref_table: str) -> None:
    """Refuse a foreign key whose columns cannot hold the values of the key they reference.

    Args:
        where: ``Mapper.attribute`` for the message.
        cols: the referencing columns; refs: the referenced ones, in the same order.
        ref_table: the referenced table's name.

    Raises:
        ConfigurationError: naming both columns, both types and the type to declare.
    """
    for col, ref in zip(cols, refs):
        if value_kind(col.type) != value_kind(ref.type):
            msg = (
                f"{where}: {col.table}.{col.name} is {col.type!r} but references {ref_table}.{ref.name}, "
                f"which is {ref.type!r}; a foreign key holds the values of the key it references "
                f"(integer types mix, and String and Text mix), so declare it `Column(t.{ref.type!r}, ...)`"
            )
            raise ConfigurationError(msg)


def refuse_unknown_key(
    holder: ClassMapping[Any], name: str, parent: ClassMapping[Any], where: str, given: str, siblings: bool
) -> None:
    """Refuse a given key name that the holder does not know while the holder already declares
    a key to ``parent`` under another name: that is a typo, not a new key to derive.

    Args:
        holder: the mapping whose table holds the key; parent: the one it references.
        name: the name given; given: the option that gave it (``foreign_key``, ``other_key``).
        where: ``Mapper.relation`` for the message.
        siblings: a BelongsTo of the holder to the parent counts as a declared key (not for a
            BelongsTo itself: two of them to one class are two keys).

    Raises:
        ConfigurationError: naming the relation, the name, the key probably meant and the fix.
    """
    others = keys_to(holder, parent, siblings)
    if not others or name in others:
        return  # a new key (derived under that name), or one another declaration names too
    # The keys the holder declares come first: they do not depend on which relations were
    # resolved before this one.
    fields = [a for a in (*holder.by_key, *holder.domain_attributes) if a not in holder.mapper_class.__relations__]
    guess = difflib.get_close_matches(name, sorted(others), n=1) or difflib.get_close_matches(name, fields, n=1)
    guess = guess or sorted(others)[:1]
    msg = (
        f"{where}: {given}={name!r} is neither a column of {holder.name} nor an attribute of "
        f"{holder.cls.__name__} (did you mean {guess[0]!r}?), and {holder.name} already references "
        f"{parent.table.name} through {sorted(others)}. Name one of those in {given}=, or, if {name!r} "
        f"is another key, declare it on {holder.name}: `{name} = Column(..., "
        f"ForeignKey(\"{parent.table.name}.{parent.pk[0].name}\"))`"
    )
    raise ConfigurationError(msg)


def keys_to(holder: ClassMapping[Any], parent: ClassMapping[Any], siblings: bool) -> set[str]:
    """Names by which the holder's mapper declares a reference to ``parent``: its columns with a
    ForeignKey to the parent's table and, with ``siblings``, the keys of its BelongsTo relations
    to the parent's class (given or derived). Declarations only, so the answer does not depend
    on the order in which relations are resolved."""
    names = {c.key for c in holder.by_key.values() if any(fk.table == parent.table.name for fk in c.foreign_keys)}
    if siblings:
        for key, decl in holder.mapper_class.__relations__.items():
            target = decl.target
            if decl.reference and (target is parent.cls or target in (parent.cls.__name__, parent.name)):
                if decl.foreign_key is not None:
                    names.update(decl.foreign_key)
                elif len(parent.pk) == 1:
                    names.add(f"{key}_id")
                else:
                    names.update(f"{key}_{c.key}" for c in parent.pk)
    return names
