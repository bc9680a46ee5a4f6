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

from .cascade import relations_changed
from .lazy import is_unloaded
from .mapping import ClassMapping
from .state import DETACHED, GHOST, PERSISTENT, ObjectState, SnapshotSpec

__all__ = ["unused", "related_objects"]

_refcount = sys.getrefcount

#: ``sys.getrefcount(st.obj)`` of an object that only its state references: ``st.obj`` and the
#: call's own argument.
_ONLY_STATE = 2


def related_objects(st: ObjectState) -> Iterator[Any]:
    """The objects a persistent state's object references through its loaded relations
    (a stand-in references nothing, and reading from it would load it)."""
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


def _snapshot_objects(st: ObjectState) -> Iterator[Any]:
    """The objects a state's relation snapshots reference (as many times as they do)."""
    snap = st.snap
    n = len(st.mapping.ref_slots)
    if n and snap is not None and len(snap) > len(st.mapping.attr_columns):
        yield from snap[-n:]
    committed = st.committed
    if n and committed is not None and committed[0] is not None and len(committed[0]) > len(st.mapping.attr_columns):
        yield from committed[0][-n:]
    for rels in (st._rels, st.crels):
        if rels:
            for value in rels.values():
                if type(value) is tuple:
                    yield from value
                else:
                    yield value


def unused(
    states: list[ObjectState],
    lookup: Callable[[Any], ObjectState | None],
    spec_of: Callable[[ClassMapping[Any]], SnapshotSpec],
    pinned: Callable[[ObjectState], bool],
) -> tuple[list[ObjectState], list[ObjectState]]:
    """Split ``states``, and the managed objects they reference, into those to let go and
    those kept only because something outside references them.

    Args:
        states: the states of one batch (repeats and detached ones are ignored).
        lookup: the managed state of an object, or None.
        spec_of: the SnapshotSpec of a mapping (to tell changed objects).
        pinned: states that must stay managed whatever references them.

    Returns:
        ``(unused, spared)``: unchanged persistent objects and stand-ins that nothing outside
        the batch can reach, and unchanged ones that something outside still reaches.
    """
    by_obj: dict[int, ObjectState] = {}
    for st in states:
        if st.status != DETACHED:
            by_obj[id(st.obj)] = st
    # The managed objects the batch references, one step out: stand-ins, parents, children a
    # lazy load brought in. Their references back into the batch are then accounted for.
    for st in list(by_obj.values()):
        if st.status == PERSISTENT:
            try:
                for value in related_objects(st):
                    if id(value) not in by_obj:
                        other = lookup(value)
                        if other is not None and other.status != DETACHED:
                            by_obj[id(value)] = other
            except AttributeError:  # a relation attribute deleted from the object
                continue
    candidates = _unchanged(list(by_obj.values()), spec_of, pinned)
    internal, roots = _references(by_obj, candidates)
    for key, st in by_obj.items():
        if key in candidates and _refcount(st.obj) - _ONLY_STATE > internal.get(key, 0):
            roots.append(st)
    reached = _reach(roots, by_obj)
    out: list[ObjectState] = []
    spared: list[ObjectState] = []
    for key in candidates:
        (spared if key in reached else out).append(by_obj[key])
    return out, spared


def _unchanged(
    states: list[ObjectState],
    spec_of: Callable[[ClassMapping[Any]], SnapshotSpec],
    pinned: Callable[[ObjectState], bool],
) -> set[int]:
    """``id(obj)`` of the stand-ins and of the persistent states that changed nothing."""
    out: set[int] = set()
    by_mapping: dict[ClassMapping[Any], list[ObjectState]] = {}
    for st in states:
        if st.status == GHOST:
            if not pinned(st):
                out.add(id(st.obj))
        elif st.status == PERSISTENT and not pinned(st):
            by_mapping.setdefault(st.mapping, []).append(st)
    for m, group in by_mapping.items():
        spec = spec_of(m)
        changed = {id(st) for st in spec.changed(group)}
        if m.relations:
            infos = list(m.relations.values())
            for st in group:
                try:
                    if relations_changed(infos, spec.relation_candidates((st,))):
                        changed.add(id(st))
                except AttributeError:  # an attribute deleted from the object: keep it
                    changed.add(id(st))
        out.update(id(st.obj) for st in group if id(st) not in changed)
    return out


def _references(by_obj: dict[int, ObjectState], candidates: set[int]) -> tuple[dict[int, int], list[ObjectState]]:
    """References between the states of ``by_obj``: for each object, how many come from the
    other objects' relations and from the states' snapshots; and the states that must stay
    (not candidates, or holding a collection someone else holds too)."""
    internal: dict[int, int] = {}
    roots: list[ObjectState] = []
    for key, st in by_obj.items():
        if key not in candidates:
            roots.append(st)
        if st.status != PERSISTENT:
            continue
        obj = st.obj
        for info in st.mapping.relations.values():
            try:
                value = getattr(obj, info.key, None)
            except AttributeError:  # deleted from the object: such a state is a root already
                continue
            if value is None:
                continue
            if info.to_many:
                # The attribute, ``value`` and the call's argument: any more is a holder outside.
                if _refcount(value) > 3:
                    roots.append(st)
                if not is_unloaded(value):
                    for member in value:
                        internal[id(member)] = internal.get(id(member), 0) + 1
            else:
                internal[id(value)] = internal.get(id(value), 0) + 1
        for value in _snapshot_objects(st):
            if value is not None:
                internal[id(value)] = internal.get(id(value), 0) + 1
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
