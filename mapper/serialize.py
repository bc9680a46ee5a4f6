"""Domain objects to JSON-ready dicts along named relation paths (``mapper.to_dict``).

Only the relations named in ``include`` are followed, so the output is a tree of finite
depth whatever cycles the graph has. Values are converted by one rule (see ``to_dict``).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import sys
import uuid
from collections.abc import Iterable
from typing import Any

import attrs

from .errors import MapperError, QueryError
from .mapping import MAPPERS_BY_DOMAIN
from .relations import Relation

__all__ = ["to_dict"]

#: A tree of relation names: ``{"pugs": {"toys": {}}}`` for ``("pugs", "pugs.toys")``.
_Paths = dict[str, "_Paths"]


def to_dict(objs: Any, include: Iterable[str] = ()) -> Any:
    """Turn a mapped object (or an iterable of them) into JSON-ready dicts.

    Each object becomes a dict of its domain fields that are not relations; the relations
    named in ``include`` (dotted paths, as for ``Query.include``) are added as a nested dict
    (to-one, or None) or a list of dicts (to-many). No other relation is followed, so there
    are no cycles. Hidden columns (they live in the session, not in the object) are not part
    of it. An include path whose relation is not loaded is read as usual: it loads while its
    session is open and raises RelationNotLoadedError once it is closed.

    Values: ``datetime``, ``date`` and ``time`` become ISO 8601 strings (``isoformat()``),
    ``Decimal`` and ``UUID`` become ``str``, ``bytes`` base64 ASCII text, an ``Enum`` its
    value, an attrs or dataclass value object a dict of its fields, lists, tuples and sets
    lists, dicts dicts (keys as given); ``str``, ``int``, ``float``, ``bool`` and ``None`` stay
    as they are. Any other type is refused with a MapperError naming the field.

    Args:
        objs: one mapped domain object (gives a dict) or an iterable of them (gives a list).
        include: dotted relation paths such as ``("pugs", "pugs.toys")``.

    Raises:
        QueryError: a path names no relation of the class it applies to (before any output).
        MapperError: an object whose class has no Mapper, or a value of an unsupported type.
    """
    if isinstance(include, str):
        include = (include,)
    single = _mappers_of(type(objs)) is not None
    items = [objs] if single else _as_list(objs)
    paths: _Paths = {}
    for path in include:
        if not isinstance(path, str) or not path:
            msg = f"to_dict() include takes dotted relation names such as 'pugs' or 'pugs.toys', got {path!r}"
            raise QueryError(msg)
        node = paths
        for segment in path.split("."):
            node = node.setdefault(segment, {})
    for cls in {type(o) for o in items}:
        _check(_class_of(cls), paths, include)
    out = [_object(o, paths) for o in items]
    return out[0] if single else out


def _as_list(objs: Any) -> list[Any]:
    if isinstance(objs, (str, bytes, dict)) or not isinstance(objs, Iterable):
        msg = f"to_dict() takes a mapped object or an iterable of them, got {type(objs).__name__}"
        raise MapperError(msg)
    items = list(objs)
    for o in items:
        if _mappers_of(type(o)) is None:
            msg = f"to_dict() takes mapped objects; {type(o).__name__} has no Mapper"
            raise MapperError(msg)
    return items


def _class_of(cls: type) -> type:
    """The domain class of an instance's type (an unloaded stand-in's type is a subclass)."""
    return cls if cls in MAPPERS_BY_DOMAIN else cls.__mro__[1]


def _mappers_of(cls: type) -> list[type] | None:
    found = MAPPERS_BY_DOMAIN.get(cls)
    if found is None and len(cls.__mro__) > 1:
        found = MAPPERS_BY_DOMAIN.get(cls.__mro__[1])  # an unloaded stand-in's generated subclass
    return list(found) if found else None


def _relations(cls: type) -> dict[str, Relation]:
    rels: dict[str, Relation] = {}
    for mapper_cls in MAPPERS_BY_DOMAIN.get(cls, ()):
        rels.update(getattr(mapper_cls, "__relations__", {}))
    return rels


def _target(decl: Relation) -> type | None:
    """The target class of a declaration; a name is looked up in the declaring mapper's module,
    then among the mapped classes. None when that is ambiguous: the path is then checked
    against the objects found (a Database resolves names through its own mappers; this has none)."""
    if not isinstance(decl.target, str):
        return decl.target
    module = sys.modules.get(decl.owner.__module__) if decl.owner is not None else None
    found = getattr(module, decl.target, None)
    if isinstance(found, type) and found in MAPPERS_BY_DOMAIN:
        return found
    named = [c for c in MAPPERS_BY_DOMAIN if getattr(c, "__name__", None) == decl.target]
    return named[0] if len(named) == 1 else None


def _check(cls: type, paths: _Paths, include: Iterable[str]) -> None:
    """Refuse a path segment that names no relation, before anything is converted."""
    rels = _relations(cls)
    for name, sub in paths.items():
        decl = rels.get(name)
        if decl is None:
            mappers = "/".join(m.__name__ for m in MAPPERS_BY_DOMAIN.get(cls, ()))
            msg = (
                f"{mappers} has no relation {name!r} (to_dict include={tuple(include)!r}); "
                f"its relations are {sorted(rels)}"
            )
            raise QueryError(msg)
        target = _target(decl)
        if sub and target is not None:
            _check(target, sub, include)


def _object(obj: Any, paths: _Paths) -> dict[str, Any]:
    cls = _class_of(type(obj))
    rels = _relations(cls)
    out: dict[str, Any] = {}
    for name in _field_names(cls):
        if name in rels:
            continue
        out[name] = _value(getattr(obj, name), cls, name)
    for name, sub in paths.items():
        decl = rels.get(name)
        if decl is None:  # a target declared by a name no mapper class answers to
            _check(cls, {name: {}}, (name,))
        value = getattr(obj, name)
        if value is None:
            out[name] = None
        elif decl is not None and decl.to_many:
            out[name] = [_object(v, sub) for v in value]
        else:
            out[name] = _object(value, sub)
    return out


def _field_names(cls: type) -> list[str]:
    if attrs.has(cls):
        return [a.name for a in attrs.fields(cls)]
    if dataclasses.is_dataclass(cls):
        return [f.name for f in dataclasses.fields(cls)]
    return [n for n in vars(cls).get("__annotations__", {})]


_PLAIN = (str, int, float, bool, type(None))


def _value(v: Any, cls: type, name: str) -> Any:
    """One field value converted by the rule of ``to_dict``."""
    if isinstance(v, _PLAIN) and not isinstance(v, enum.Enum):
        return v
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return v.isoformat()
    if isinstance(v, (decimal.Decimal, uuid.UUID)):
        return str(v)
    if isinstance(v, enum.Enum):
        return _value(v.value, cls, name)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(v, dict):
        return {k: _value(x, cls, name) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [_value(x, cls, name) for x in v]
    if attrs.has(type(v)) or (dataclasses.is_dataclass(v) and not isinstance(v, type)):
        return {f: _value(getattr(v, f), cls, name) for f in _field_names(type(v))}
    msg = (
        f"to_dict() cannot convert {cls.__name__}.{name}: a {type(v).__name__} is not one of the "
        f"supported types (str, int, float, bool, None, datetime, date, time, Decimal, UUID, bytes, "
        f"Enum, attrs/dataclass value objects, lists, tuples, sets, dicts); convert it first"
    )
    raise MapperError(msg)
