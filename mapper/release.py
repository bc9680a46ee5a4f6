"""Which loaded objects nothing outside the session references any more (no I/O).

``stream()`` lets go of the objects of each batch that the caller no longer holds. Counting
references is not enough on its own: objects of one batch reference each other (a pug its
owner, an owner its loaded pugs, and the snapshots of those relations), so an object is in use
only if something *outside* those references holds it, or if it can be reached from such an
object or from one that must stay managed (a changed one). This is the test CPython's cycle
collector makes, restricted to the states of one batch and the objects they reference: each
object's reference count, less the references the batch's own objects and states account
for, is what the rest of the program holds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

from .uow.cascade import relations_changed
from .lazy import is_unloaded
from .mapping import ClassMapping
from .state import DETACHED, GHOST, PERSISTENT, ObjectState, SnapshotSpec

__all__ = ["split", "unused", "related_objects", "neighbours"]

_refcount = sys.getrefcount

#: ``sys.getrefcount(st.obj)`` of an object that only its state references: ``st.obj`` and the
#: call's own argument.
_ONLY_STATE = 2

#: ``sys.getrefcount(value)`` of a collection that only its attribute holds, read into a local:
#: the attribute, the local and the call's argument.
_ONLY_ATTRIBUTE = 3


def related_objects(st: ObjectState) -> Iterator[Any]:
    """The objects a state's object references through its loaded relations (a stand-in
    references nothing, and reading from it would load it)."""
    if st.status == GHOST:
        return
    obj = st.obj
    for info in st.mapping.relations.values():
        value = getattr(obj, info.key, None)
        if value is None:
            continue
        if info.to_many:
            if not is_unloaded(value):
                yield from value
        else:
            yield value


def neighbours(states: list[ObjectState], lookup: Callable[[object], ObjectState | None]) -> list[ObjectState]:
    """The managed states of the objects that ``states`` reference through loaded relations.

    Args:
        states: persistent states and stand-ins (a stand-in references nothing).
        lookup: the managed state of an object, or None.

    Returns:
        The states found (repeats included), none of them detached.
    """
    out: list[ObjectState] = []
    keys: dict[ClassMapping[Any], list[tuple[str, bool]]] = {}
    for st in states:
        if st.status == GHOST:
            continue
        m = st.mapping
        shape = keys.get(m)
        if shape is None:
            shape = keys[m] = [(i.key, i.to_many) for i in m.relations.values()]
        obj = st.obj
        for name, to_many in shape:
            value = getattr(obj, name, None)
            if value is None:
                continue
            for member in (value if not is_unloaded(value) else ()) if to_many else (value,):
                other = lookup(member)
                if other is not None and other.status != DETACHED:
                    out.append(other)
    return out


def split(
    states: list[ObjectState],
    spec_of: Callable[[ClassMapping[Any]], SnapshotSpec],
    pinned: Callable[[ObjectState], bool] | None,
) -> tuple[list[ObjectState], list[ObjectState]]:
    """The unchanged persistent states and stand-ins among ``states``, split into those whose
    object nothing but its state references (free to let go at once) and the others.

    The cheap first pass: most objects of a batch are referenced by nothing at all once the
    loop is past them.

    Args:
        states: the states to look at (repeats and detached ones are ignored).
        spec_of: the SnapshotSpec of a mapping (to tell changed objects).
        pinned: states that must stay managed whatever references them (None: no such state).

    Returns:
        ``(free, held)``; changed and pinned states are in neither.
    """
    seen: set[int] = set()
    unique: list[ObjectState] = []
    for st in states:
        if st.status != DETACHED and id(st) not in seen:
            seen.add(id(st))
            unique.append(st)
    candidates = _unchanged(unique, spec_of, pinned)
    free: list[ObjectState] = []
    held: list[ObjectState] = []
    for st in unique:
        if id(st.obj) in candidates:
            (held if _referenced(st) else free).append(st)
    return free, held


def _referenced(st: ObjectState) -> bool:
    """Whether anything but its state references the object, or one of its collections."""
    if _refcount(st.obj) > _ONLY_STATE:
        return True
    if st.status == PERSISTENT:
        obj = st.obj
        for info in st.mapping.relations.values():
            if info.to_many:
                value = getattr(obj, info.key, None)
                if value is not None and _refcount(value) > _ONLY_ATTRIBUTE:
                    return True
    return False


def unused(
    states: list[ObjectState],
    lookup: Callable[[object], ObjectState | None],
    spec_of: Callable[[ClassMapping[Any]], SnapshotSpec],
    pinned: Callable[[ObjectState], bool] | None,
) -> tuple[list[ObjectState], list[ObjectState], dict[int, ObjectState]]:
    """Split ``states``, and the managed objects they reference, into those to let go and
    those kept only because something outside references them.

    Args:
        states: the states of one batch (repeats and detached ones are ignored).
        lookup: the managed state of an object, or None.
        spec_of: the SnapshotSpec of a mapping (to tell changed objects).
        pinned: states that must stay managed whatever references them (None: no such state).

    Returns:
        ``(unused, spared, examined)``: the unchanged persistent objects and stand-ins that
        nothing outside the batch can reach; the unchanged ones something outside still
        reaches; every state looked at, by ``id`` of its object.
    """
    by_obj: dict[int, ObjectState] = {}
    for st in states:
        if st.status != DETACHED:
            by_obj[id(st.obj)] = st
    _add_neighbours(by_obj, lookup)
    candidates = _unchanged(list(by_obj.values()), spec_of, pinned)
    internal, roots = _references(by_obj, candidates)
    for key in candidates:
        st = by_obj[key]
        if _refcount(st.obj) - _ONLY_STATE > internal.get(key, 0):
            roots.append(st)
    reached = _reach(roots, by_obj)
    out: list[ObjectState] = []
    spared: list[ObjectState] = []
    for key in candidates:
        (spared if key in reached else out).append(by_obj[key])
    return out, spared, by_obj


def _add_neighbours(by_obj: dict[int, ObjectState], lookup: Callable[[object], ObjectState | None]) -> None:
    """Add the managed objects the states reference, one step out: stand-ins, parents,
    children a lazy load brought in. Their references back into the batch are then counted."""
    for st in list(by_obj.values()):
        if st.status != PERSISTENT:
            continue
        try:
            for value in related_objects(st):
                if id(value) not in by_obj:
                    other = lookup(value)
                    if other is not None and other.status != DETACHED:
                        by_obj[id(value)] = other
        except AttributeError:  # a relation attribute deleted from the object
            continue


def _unchanged(
    states: list[ObjectState],
    spec_of: Callable[[ClassMapping[Any]], SnapshotSpec],
    pinned: Callable[[ObjectState], bool] | None,
) -> set[int]:
    """``id(obj)`` of the stand-ins and of the persistent states that changed nothing."""
    out: set[int] = set()
    by_mapping: dict[ClassMapping[Any], list[ObjectState]] = {}
    for st in states:
        status = st.status
        if (status == PERSISTENT or status == GHOST) and (pinned is None or not pinned(st)):
            if status == GHOST:
                out.add(id(st.obj))
            else:
                group = by_mapping.get(st.mapping)
                if group is None:
                    by_mapping[st.mapping] = [st]
                else:
                    group.append(st)
    for m, group in by_mapping.items():
        spec = spec_of(m)
        changed = {id(st) for st in spec.changed(group)}
        if m.relations:
            infos = list(m.relations.values())
            try:
                changed.update(id(st) for st in relations_changed(infos, spec.relation_candidates(group)))
            except AttributeError:  # an attribute deleted from an object: test them one by one
                for st in group:
                    try:
                        if relations_changed(infos, spec.relation_candidates((st,))):
                            changed.add(id(st))
                    except AttributeError:
                        changed.add(id(st))
        out.update(id(st.obj) for st in group if id(st) not in changed)
    return out


def _references(by_obj: dict[int, ObjectState], candidates: set[int]) -> tuple[dict[int, int], list[ObjectState]]:
    """References between the states of ``by_obj``: for each object, how many come from the
    other objects' relations and from the states' relation snapshots; and the states that must
    stay (not candidates, or holding a collection something else holds too)."""
    internal: dict[int, int] = {}
    get = internal.get
    roots: list[ObjectState] = []
    shapes: dict[ClassMapping[Any], tuple[list[tuple[str, bool]], int, int]] = {}
    for key, st in by_obj.items():
        if key not in candidates:
            roots.append(st)
        if st.status != PERSISTENT:
            continue
        m = st.mapping
        shape = shapes.get(m)
        if shape is None:
            shape = shapes[m] = ([(i.key, i.to_many) for i in m.relations.values()], len(m.attr_columns), len(m.ref_slots))
        keys, width, tail = shape
        obj = st.obj
        for name, to_many in keys:
            try:
                value = getattr(obj, name, None)
            except AttributeError:  # deleted from the object: such a state is a root already
                continue
            if value is None:
                continue
            if not to_many:
                internal[id(value)] = get(id(value), 0) + 1
                continue
            if _refcount(value) > _ONLY_ATTRIBUTE:
                roots.append(st)  # someone holds the collection itself
            if not is_unloaded(value):
                for member in value:
                    internal[id(member)] = get(id(member), 0) + 1
        # The relation snapshots: references at the end of the column snapshots, and dicts.
        if tail:
            for snap in (st.snap, st.committed[0] if st.committed is not None else None):
                if snap is not None and len(snap) > width:
                    for value in snap[width:]:
                        if value is not None:
                            internal[id(value)] = get(id(value), 0) + 1
        for rels in (st._rels, st.crels):
            if rels:
                for value in rels.values():
                    for member in value if type(value) is tuple else (value,):
                        if member is not None:
                            internal[id(member)] = get(id(member), 0) + 1
    return internal, roots


def _reach(roots: list[ObjectState], by_obj: dict[int, ObjectState]) -> set[int]:
    """``id(obj)`` of every object of ``by_obj`` reachable from ``roots`` through loaded relations."""
    reached = {id(st.obj) for st in roots}
    stack = list(roots)
    while stack:
        st = stack.pop()
        try:
            for value in related_objects(st):
                other = by_obj.get(id(value))
                if other is not None and id(value) not in reached:
                    reached.add(id(value))
                    stack.append(other)
        except AttributeError:
            continue
    return reached
