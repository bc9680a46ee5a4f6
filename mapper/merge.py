"""``session.merge(obj)``: bring an object (and its graph along "save" relations) edited
outside the session back into it, onto the managed instances of the same rows.

Three phases, so that no read sees a half-merged graph: collect the detached graph, find the
managed instances (identity map, then one batched SELECT per class per level of the graph;
collections the copy will replace are loaded first, which usually finds the next level's
objects too), then copy the state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import errors
from .lazy import GHOST_HOOK, LazyList, LazySet, is_unloaded
from .mapping import ClassMapping, RelationInfo
from .state import DETACHED, GHOST, PENDING, ObjectState

if TYPE_CHECKING:
    from .seam import SessionSeam
    from .uow.tracker import Tracker

_SESSION_COLLECTIONS = (LazyList, LazySet)

__all__ = ["merge", "refuse_detached"]


def refuse_detached(t: Tracker, obj: Any) -> None:
    """``add()`` of an object another session loaded: a SessionError pointing at merge().

    Such an object is told by the session machinery it still carries in a relation attribute
    (a lazy collection, loaded or not, or a stand-in); an object of a class without relations
    carries none and is not told from a new one (the database refuses a duplicate row at the
    flush). Objects this session or another open one manages are left to ``Tracker.add``.
    """
    m = t.by_class.get(type(obj)) or t.mapping_of(obj)
    for col in m.pk:
        # The common case first, cheaply: a new object without its (generated) key.
        if col.hidden or getattr(obj, col.key, None) is None:
            return
    st = t.states.get(id(obj))
    if st is not None and st.obj is obj:
        return
    key = t.spec(m).key_of(ObjectState(obj, m, None, None, (None,) * len(m.hidden_columns) or None, PENDING))
    if key is None or not _carries_session_values(m, obj):
        return
    if any(other.manages(obj, m, key) for other in t.open_trackers.others(t)):
        return
    msg = (
        f"{m.cls.__name__} with key {key!r} was loaded by another session (closed since, or the "
        f"object was expunged or let go); add() would INSERT its row again: use "
        f"session.merge(obj), which copies its state onto this session's instance and returns it"
    )
    raise errors.SessionError(msg)


def _carries_session_values(m: ClassMapping[Any], obj: Any) -> bool:
    """Whether a relation attribute holds a loader-made value (a lazy collection or a stand-in)."""
    for info in m.relations.values():
        value: Any = getattr(obj, info.key, None)
        kind = type(value)
        if kind in _SESSION_COLLECTIONS:
            # Not one rebuilt by hand with type(x)(items): that belongs to no session.
            if value.owner_state is not None or value._loader is not None:
                return True
        elif GHOST_HOOK in kind.__dict__:
            return True
    return False


class _Node:
    """One detached object of the graph: its mapping, key, and whether its state is copied."""

    __slots__ = ("obj", "m", "key", "copy", "target")

    def __init__(self, obj: Any, m: ClassMapping[Any], key: Any, copy: bool) -> None:
        self.obj = obj
        self.m = m
        self.key = key
        self.copy = copy
        #: The managed counterpart (found or fetched), else the object itself (added as new).
        self.target: Any = None


def merge(s: SessionSeam, obj: Any) -> Any:
    """Copy ``obj``'s graph onto the managed instances of its rows; returns obj's counterpart."""
    t = s.tracker
    st = t.states.get(id(obj))
    if st is not None and st.obj is obj:
        return obj  # already managed here: nothing to copy
    nodes: dict[int, _Node] = {}
    levels = _collect(s, obj, nodes)
    s.read()
    _find(s, levels)
    for node in nodes.values():
        _resolve(s, node)
    copied = [n for n in nodes.values() if n.copy]
    for node in copied:
        _check_version(node)  # before anything is copied: a stale graph changes nothing
    for node in copied:
        _copy(s, node, nodes)
    states = t.states
    for node in copied:
        if node.target is node.obj:
            t.add(node.obj, states)  # new (or its row is gone): inserted at the next flush
    return nodes[id(obj)].target


def _node_for(s: SessionSeam, obj: Any, copy: bool, nodes: dict[int, _Node]) -> _Node | None:
    """The node of a detached object (None for an object this session manages)."""
    t = s.tracker
    st = t.states.get(id(obj))
    if st is not None and st.obj is obj:
        return None
    node = nodes.get(id(obj))
    if node is not None:
        node.copy = node.copy or copy
        return node
    m = t.mapping_of(obj)
    probe = ObjectState(obj, m, None, None, (None,) * len(m.hidden_columns) if m.hidden_columns else None, PENDING)
    key = t.spec(m).key_of(probe) if not m.hidden_columns or not _hidden_key(m) else None
    node = nodes[id(obj)] = _Node(obj, m, key, copy)
    return node


def _hidden_key(m: ClassMapping[Any]) -> bool:
    hidden = {c.key for c in m.hidden_columns}
    return any(c.key in hidden for c in m.pk)


def _collect(s: SessionSeam, root: Any, nodes: dict[int, _Node]) -> list[list[_Node]]:
    """The detached graph by levels: the root, then what its "save" relations reach, and so on."""
    if is_unloaded(root):
        msg = (
            f"merge() needs a loaded object; this {type(root).__mro__[1].__name__} is a stand-in "
            f"for a relation that was never loaded"
        )
        raise errors.SessionError(msg)
    first = _node_for(s, root, True, nodes)
    assert first is not None
    levels = [[first]]
    seen = {id(root): True}  # id -> whether it was queued as copied (and so expanded)
    while levels[-1]:
        nxt: list[_Node] = []
        for node in levels[-1]:
            if not node.copy:
                continue
            for info, value in _loaded_relations(node):
                for target in _members(info, value):
                    child = _node_for(s, target, "save" in info.cascade, nodes)
                    if child is not None and seen.get(id(target)) is not True and (id(target) not in seen or child.copy):
                        seen[id(target)] = child.copy
                        nxt.append(child)
        levels.append(nxt)
    return levels[:-1]


def _loaded_relations(node: _Node) -> list[tuple[RelationInfo, Any]]:
    """The relations of a detached object whose values were loaded (or set by hand)."""
    out = []
    for info in node.m.relations.values():
        value = getattr(node.obj, info.key, None)
        if not is_unloaded(value):
            out.append((info, value))
    return out


def _members(info: RelationInfo, value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if info.to_many else [value]


def _find(s: SessionSeam, levels: list[list[_Node]]) -> None:
    """Managed instances for the keyed nodes, level by level: the identity map, then one
    batched SELECT per class; then the collections the copy replaces, loaded for the level."""
    t = s.tracker
    g = s.graph
    for level in levels:
        missing: dict[ClassMapping[Any], list[Any]] = {}
        for node in level:
            if node.key is None:
                continue
            held = t.identity.get(node.m, node.key)
            if held is None or held.status == GHOST:
                keys = missing.setdefault(node.m, [])
                if node.key not in keys:
                    keys.append(node.key)
        for m, keys in missing.items():
            g.fetch(m, m.pk, keys)
        to_load: dict[RelationInfo, dict[int, ObjectState]] = {}
        for node in level:
            if not node.copy or node.key is None:
                continue
            held = t.identity.get(node.m, node.key)
            if held is None or held.status == GHOST:
                continue
            for info, _value in _loaded_relations(node):
                if info.to_many and is_unloaded(getattr(held.obj, info.key, None)):
                    to_load.setdefault(info, {})[id(held)] = held
        for info, states in to_load.items():
            g.load(list(states.values()), info)


def _resolve(s: SessionSeam, node: _Node) -> None:
    held = s.tracker.identity.get(node.m, node.key) if node.key is not None else None
    node.target = held.obj if held is not None and held.status not in (GHOST, DETACHED) else node.obj


def _counterpart(value: Any, nodes: dict[int, _Node]) -> Any:
    node = nodes.get(id(value))
    return value if node is None else node.target


def _copy(s: SessionSeam, node: _Node, nodes: dict[int, _Node]) -> None:
    """Copy a detached object's columns and loaded relations onto its counterpart."""
    m = node.m
    target = node.target
    spec = s.tracker.spec(m)
    setattr_ = spec.setattr
    if target is not node.obj:
        pk = {c.key for c in m.pk}
        for col in m.attr_columns:
            if col.key in pk or col is m.version:
                continue
            value = getattr(node.obj, col.key)
            if getattr(target, col.key) is not value:
                setattr_(target, col.key, value)
        for key in m.embedded:
            value = getattr(node.obj, key)
            if getattr(target, key) != value:
                setattr_(target, key, value)
    for info, value in _loaded_relations(node):
        if info.to_many:
            _copy_collection(target, info, [_counterpart(v, nodes) for v in _members(info, value)], setattr_)
        else:
            new = _counterpart(value, nodes) if value is not None else None
            if getattr(target, info.key, None) is not new:
                setattr_(target, info.key, new)


def _copy_collection(target: Any, info: RelationInfo, members: list[Any], setattr_: Any) -> None:
    current = getattr(target, info.key, None)
    if isinstance(current, set):
        if len(current) != len(members) or any(all(x is not y for y in current) for x in members):
            current.clear()
            current.update(members)
    elif isinstance(current, list):
        if len(current) != len(members) or any(x is not y for x, y in zip(current, members)):
            current[:] = members
    else:
        setattr_(target, info.key, set(members) if info.collection is set else list(members))


def _check_version(node: _Node) -> None:
    m = node.m
    if node.target is node.obj or m.version is None or m.version.key in {c.key for c in m.hidden_columns}:
        return
    mine = getattr(node.obj, m.version.key)
    current = getattr(node.target, m.version.key)
    if mine != current:
        msg = (
            f"{m.cls.__name__} with key {node.key!r} was changed since this copy was loaded "
            f"(its {m.version.key} is {mine!r}, the database has {current!r}); load it again "
            f"and reapply the change"
        )
        raise errors.StaleDataError(msg)
