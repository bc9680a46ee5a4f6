"""``session.replace(old, new)``: an immutable entity's new version takes the old one's place.

Frozen attrs classes and frozen dataclasses change by making a new object
(``attrs.evolve``, ``dataclasses.replace``). The session moves the old object's state to the
new one (so the next flush compares the new values with the row as loaded and UPDATEs only
the changed columns) and puts the new object wherever the session's held objects, and the
relation snapshots it compares them with, had the old one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .lazy import is_unloaded
from .mapping import ClassMapping, RelationInfo
from .state import PENDING, PERSISTENT, ObjectState

if TYPE_CHECKING:
    from .uow.tracker import Tracker

__all__ = ["replace"]


def replace(t: Tracker, old: Any, new: Any) -> None:
    """Make ``new`` the managed object of ``old``'s row (checks first, then the swap)."""
    st = _check(t, old, new)
    states = t.states
    del states[id(old)]
    states[id(new)] = st
    for held in (t.tx_new, t.new, t.deleted):
        if held.pop(id(old), None) is not None:
            held[id(new)] = st
    st.obj = new
    for mm, info in _relations_to(t, st.mapping):
        spec = t.spec(mm)
        for other in list(t.identity.for_mapping(mm).values()) + [p for p in t.new.values() if p.mapping is mm]:
            if other.status in (PERSISTENT, PENDING) and other is not st:
                _swap_in(other, info, old, new, spec.setattr)
    for info in st.mapping.relations.values():
        if info.target is st.mapping:  # a relation to its own class: a tree may point at itself
            _swap_in(st, info, old, new, t.spec(st.mapping).setattr)


def _check(t: Tracker, old: Any, new: Any) -> ObjectState:
    st = t.states.get(id(old))
    if st is None or st.obj is not old or st.status != PERSISTENT:
        what = "pending (flush it first)" if st is not None and st.status == PENDING else "not managed by this session"
        msg = (
            f"replace() needs an object this session holds as persistent; this {type(old).__name__} "
            f"is {what}"
        )
        raise errors.SessionError(msg)
    if type(new) is not type(old):
        msg = (
            f"replace() takes a new version of the same class: old is a {type(old).__name__}, new a "
            f"{type(new).__name__}; build it with attrs.evolve(old, ...) or dataclasses.replace(old, ...)"
        )
        raise errors.SessionError(msg)
    other = t.states.get(id(new))
    if other is not None and other.obj is new:
        msg = f"replace(): the new {type(new).__name__} is already managed by this session; pass a fresh object"
        raise errors.SessionError(msg)
    m = st.mapping
    spec = t.spec(m)
    probe = ObjectState(new, m, None, None, st.hidden, PENDING)
    key = spec.key_of(probe)
    if key != st.key:
        msg = (
            f"replace() keeps the row: the new {m.cls.__name__} has key {key!r}, the old one {st.key!r}; "
            f"a primary key cannot change (delete the old object and add a new one instead)"
        )
        raise errors.SessionError(msg)
    return st


def _relations_to(t: Tracker, m: ClassMapping[Any]) -> list[tuple[ClassMapping[Any], RelationInfo]]:
    """The relations of other mappings whose targets are objects of ``m``."""
    return [
        (mm, info)
        for mm in t.registry.mappings
        if mm is not m
        for info in mm.relations.values()
        if info.target is m
    ]


def _swap_in(holder: ObjectState, info: RelationInfo, old: Any, new: Any, setattr_: Any) -> None:
    """Put ``new`` where ``holder``'s relation (live value and snapshots) has ``old``."""
    key = info.key
    value: Any = getattr(holder.obj, key, None)
    if info.to_many:
        if value is not None and not is_unloaded(value):
            _swap_member(value, old, new)
    elif value is old:
        setattr_(holder.obj, key, new)
    snap = holder.rel(key, _ABSENT)
    if snap is _ABSENT:
        return
    if info.to_many:
        if any(x is old for x in snap):
            holder.rels[key] = tuple(new if x is old else x for x in snap)
    elif snap is old:
        holder.rels[key] = new
    crels = holder.crels
    if crels is not None and key in crels:
        was = crels[key]
        if info.to_many and any(x is old for x in was):
            crels[key] = tuple(new if x is old else x for x in was)
        elif was is old:
            crels[key] = new


def _swap_member(collection: Any, old: Any, new: Any) -> None:
    if isinstance(collection, set):
        if any(x is old for x in collection):
            collection.discard(old)  # set members hash by identity (eq=False classes)
            collection.add(new)
    else:
        for i, x in enumerate(collection):
            if x is old:
                collection[i] = new


_ABSENT: Any = object()
