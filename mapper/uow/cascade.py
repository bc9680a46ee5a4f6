"""Cascades and relation reconciliation: what a flush must add, delete and link (pure: no I/O).

Both sides of a relation may be edited in memory (``pug.owner = bob``, ``bob.pugs.append(pug)``).
Each edit is a *claim* about the parent a child row should point at; the claims of one
foreign key (an *edge*) are reconciled here into *links* that the flush turns into key
values once the parents have keys. Claims that contradict each other are a FlushError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import is_
from typing import Any

from ..errors import FlushError
from ..lazy import is_unloaded
from ..mapping import ClassMapping, RelationInfo
from ..schema import Column, Table
from ..state import DETACHED, PENDING, PERSISTENT, ObjectState

__all__ = [
    "Link",
    "JunctionOp",
    "RelationPlan",
    "DeleteEdge",
    "delete_edges",
    "reachable_unmanaged",
    "reconcile",
    "refuse_null_links",
    "delete_targets",
]

_MISSING: Any = object()


class Link:
    """A child row's foreign key must reference ``parent``'s key (or be NULL when parent is None)."""

    __slots__ = ("fk_cols", "ref_cols", "parent", "info")

    def __init__(self, fk_cols: list[Column], ref_cols: list[Column], parent: Any, info: RelationInfo) -> None:
        self.fk_cols = fk_cols
        self.ref_cols = ref_cols
        self.parent = parent
        self.info = info


class JunctionOp:
    """A junction row between ``source`` and ``target`` to insert or delete (BelongsToMany)."""

    __slots__ = ("info", "source", "target")

    def __init__(self, info: RelationInfo, source: Any, target: Any) -> None:
        self.info = info
        self.source = source
        self.target = target


class _Claim:
    __slots__ = ("child", "to_one", "adds", "removes")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.to_one: tuple[Any, RelationInfo] | None = None
        self.adds: list[tuple[Any, RelationInfo]] = []
        self.removes: list[tuple[Any, RelationInfo]] = []


class RelationPlan:
    """What the relation edits of one flush amount to.

    Attributes:
        links: child state id -> links to resolve into foreign-key values.
        moves: (child state, edge, new parent, old parents) to mirror in memory after the flush.
        in_parent: ids of child states that moved (with no old parent) into the one collection
            of their new parent on the edge: that side needs no mirroring, only the reference.
        settled: those of them whose one reference on the edge names that parent already.
        orphans: states removed from a collection with the "orphan" cascade.
        junction_add / junction_remove: rows of string junction tables.
        assoc_add / assoc_remove: pairs of a BelongsToMany through an association class.
    """

    def __init__(self) -> None:
        self.links: dict[int, list[Link]] = {}
        self.moves: list[tuple[ObjectState, tuple[str, tuple[str, ...]], Any, list[Any]]] = []
        self.in_parent: set[int] = set()
        self.settled: set[int] = set()
        self.orphans: list[ObjectState] = []
        self.junction_add: list[JunctionOp] = []
        self.junction_remove: list[JunctionOp] = []
        self.assoc_add: list[JunctionOp] = []
        self.assoc_remove: list[JunctionOp] = []
        #: The states the flush examined for relation edits (their snapshots are refreshed).
        self.touched: list[ObjectState] = []


def label(obj: Any, lookup: Callable[[Any], ObjectState | None] | None = None) -> str:
    """A short name for an object in messages: ``Pug(1)``, or ``new Pug 'Cody'``."""
    st = lookup(obj) if lookup is not None else None
    name = type(obj).__name__
    if st is not None and st.key is not None:
        return f"{name}({st.key!r})"
    for attr in ("name", "title"):
        value = getattr(obj, attr, None) if not hasattr(type(obj), "__mapper_ghost_load__") else None
        if isinstance(value, str):
            return f"new {name} {value[:40]!r}"
    return f"new {name} at 0x{id(obj):x}"


def _members(value: Any, info: RelationInfo) -> list[Any]:
    if value is None:
        return []
    if not info.to_many:
        return [value]
    items = list(value)
    # By identity, in C: `None in items` would call each member's __eq__.
    if any(map(is_, items, repeat(None))):
        msg = f"{info.name} contains None; a collection holds {info.target.cls.__name__} objects only"
        raise FlushError(msg)
    return items


def _check_type(obj: Any, info: RelationInfo, lookup: Callable[[Any], ObjectState | None]) -> None:
    # ``lookup`` names a managed object by its key (``Owner(3)``); only an unknown one is "new".
    if not isinstance(obj, info.target.cls):
        msg = f"{info.name} holds {label(obj, lookup)}, a {type(obj).__name__}; it takes {info.target.cls.__name__} objects"
        raise FlushError(msg)


def relations_changed(infos: Sequence[RelationInfo], states: Iterable[ObjectState]) -> list[ObjectState]:
    """The persistent states (of one mapping, whose relations are ``infos``) with a loaded
    relation that differs from its snapshot.

    Unchanged relations produce no claims and reach nothing new, so a flush only needs to
    reconcile these; the test is identity-only and runs over every managed object at each
    flush, so the common case (the same object as in the snapshot) is checked first.
    """
    out: list[ObjectState] = []
    keyed = [(info.key, info) for info in infos]
    for st in states:
        rel = st.rel
        obj = st.obj
        for key, info in keyed:
            value = getattr(obj, key, None)
            snap = rel(key, _MISSING)
            if value is snap:
                continue
            if info.kind == "belongs_to" or snap is _MISSING or not info.to_many:
                if snap is _MISSING and value is not None and is_unloaded(value):
                    continue
                out.append(st)
                break
            if is_unloaded(value):
                continue
            if value is None or len(value) != len(snap):
                out.append(st)
                break
            # Same length: a set is unchanged when it holds every snapshot member, a list when
            # each position holds the same object (both compared in C).
            if isinstance(value, set):
                if not value.issuperset(snap):
                    out.append(st)
                    break
            elif not all(map(is_, value, snap)):
                out.append(st)
                break
    return out


def reachable_unmanaged(
    states: Iterable[ObjectState], managed: dict[int, ObjectState]
) -> list[tuple[Any, RelationInfo]]:
    """Objects referenced from loaded relations of ``states`` that the session does not manage.

    ``managed`` is the session's index of states by ``id(obj)``. Returns (object, relation)
    pairs in discovery order; the caller adds those whose relation has the "save" cascade
    and reports the others.
    """
    out: list[tuple[Any, RelationInfo]] = []
    seen: set[int] = set()
    for st in states:
        rels = st.mapping.relations
        if not rels:
            continue
        obj = st.obj
        for info in rels.values():
            value = getattr(obj, info.key, None)
            if value is None or is_unloaded(value):
                continue
            for item in _members(value, info):
                k = id(item)
                if k in seen:
                    continue
                mst = managed.get(k)
                if mst is not None and mst.obj is item and mst.status != DETACHED:
                    continue
                _check_type(item, info, lambda o: mst if mst is not None and mst.obj is o else None)
                seen.add(id(item))
                out.append((item, info))
    return out


def reconcile(
    states: Iterable[ObjectState],
    lookup: Callable[[Any], ObjectState | None],
    ops: Iterable[tuple[bool, Any, RelationInfo, Any]] = (),
) -> RelationPlan:
    """Reconcile the relation edits of ``states`` (pending and persistent) into a plan.

    ``ops`` are (adding, parent, relation, child) edits made through ``session.related()``
    on collections that were not loaded.

    Raises:
        FlushError: two sides contradict each other, a child is put into two parents'
            collections, or a collection holds None or a wrong type.
    """
    plan = RelationPlan()
    # Per (child mapping, parent mapping, edge): whether each has one relation on that edge.
    sole: dict[tuple[int, int, Any], bool] = {}

    def alone(child_state: ObjectState, pinfo: RelationInfo, edge: Any) -> bool:
        """Whether ``pinfo`` (a collection) and at most one child reference are all the edge has."""
        k3 = (id(child_state.mapping), id(pinfo.source), edge)
        one = sole.get(k3)
        if one is None:
            one = sole[k3] = _sole_on_edge(pinfo.source, edge) and _sole_on_edge(child_state.mapping, edge, True)
        return one
    claims: dict[tuple[int, tuple[str, tuple[str, ...]]], _Claim] = {}
    pairs: dict[tuple[Any, ...], tuple[str, JunctionOp]] = {}

    def claim(child: Any, edge: tuple[str, tuple[str, ...]]) -> _Claim:
        k = (id(child), edge)
        c = claims.get(k)
        if c is None:
            c = claims[k] = _Claim(child)
        return c

    def pair(info: RelationInfo, obj: Any, x: Any, adding: bool) -> None:
        if adding:
            _check_type(x, info, lookup)
        op = JunctionOp(info, obj, x)
        key = _pair_key(info, obj, x)
        previous = pairs.get(key)
        word = "add" if adding else "remove"
        if previous is not None and previous[0] != word:
            msg = (
                f"{info.name}: {label(obj, lookup)} and {label(x, lookup)} are both linked and unlinked in this flush "
                "(one side added the pair, the other removed it); change one side only"
            )
            raise FlushError(msg)
        if previous is None:
            pairs[key] = (word, op)
            through = info.through is not None
            if adding:
                (plan.assoc_add if through else plan.junction_add).append(op)
            else:
                (plan.assoc_remove if through else plan.junction_remove).append(op)

    for adding, parent, info, child in ops:
        if info.kind == "belongs_to_many":
            pair(info, parent, child, adding)
        else:
            (claim(child, info.edge).adds if adding else claim(child, info.edge).removes).append((parent, info))

    for st in states:
        rels = st.mapping.relations
        if not rels:
            continue
        obj = st.obj
        pending = st.status == PENDING
        for info in rels.values():
            value = getattr(obj, info.key, None)
            kind = info.kind
            if kind == "belongs_to":
                snap = st.rel(info.key, _MISSING)
                changed = value is not None if (pending or snap is _MISSING) else value is not snap
                if changed:
                    if value is not None:
                        _check_type(value, info, lookup)
                    claim(obj, info.edge).to_one = (value, info)
                continue
            if value is not None and is_unloaded(value):
                continue
            members = _members(value, info)
            snap_members = st.rel(info.key, ())
            if snap_members is None:
                snap_members = ()
            elif not isinstance(snap_members, tuple):
                snap_members = (snap_members,)
            if snap_members:
                snap_ids = {id(x) for x in snap_members}
                cur_ids = {id(x) for x in members}
                added = [x for x in members if id(x) not in snap_ids]
                removed = [x for x in snap_members if id(x) not in cur_ids]
            else:  # a new parent, or a collection that was empty: every member is added
                added, removed = members, []
            if kind in ("has_many", "has_one"):
                edge = info.edge
                target_cls = info.target.cls
                entry = (obj, info)
                for x in added:
                    if not isinstance(x, target_cls):
                        _check_type(x, info, lookup)
                    k = (id(x), edge)
                    c = claims.get(k)
                    if c is None:
                        c = claims[k] = _Claim(x)
                    c.adds.append(entry)
                for x in removed:
                    claim(x, info.edge).removes.append((obj, info))
                continue
            # belongs_to_many: one junction row per (source, target) pair.
            for x in added:
                pair(info, obj, x, True)
            for x in removed:
                pair(info, obj, x, False)

    links, moves = plan.links, plan.moves
    for (_, edge), c in claims.items():
        child_state = lookup(c.child)
        if child_state is None:
            continue  # not managed: reported by the save cascade
        if c.to_one is None and len(c.adds) == 1 and not c.removes and child_state.status == PENDING:
            # The common case, a new child found in one parent's collection, without the lists
            # the general case below builds (same outcome: one link, one move, no old parent).
            new, info = c.adds[0]
            link = Link(info.fk_cols, info.ref_cols, new, info)
            known = links.get(id(child_state))
            if known is None:
                links[id(child_state)] = [link]
            else:
                known.append(link)
            moves.append((child_state, edge, new, []))
            if alone(child_state, info, edge):
                plan.in_parent.add(id(child_state))
            continue
        add_parents: list[tuple[Any, RelationInfo]] = c.adds if len(c.adds) < 2 else []
        if len(c.adds) > 1:
            for parent, info in c.adds:
                if not any(p is parent for p, _ in add_parents):
                    add_parents.append((parent, info))
        if len(add_parents) > 1:
            (a, ia), (b, _) = add_parents[0], add_parents[1]
            msg = (
                f"{label(c.child, lookup)} was put into {ia.name} of two objects ({label(a, lookup)} and "
                f"{label(b, lookup)}); a child belongs to one parent: remove it from one collection"
            )
            raise FlushError(msg)
        old_parents = [p for p, _ in c.removes] if c.removes else []
        if c.to_one is not None:
            new, info = c.to_one
            if add_parents and add_parents[0][0] is not new:
                parent, pinfo = add_parents[0]
                msg = (
                    f"{info.name} of {label(c.child, lookup)} is {label(new, lookup)}, but it was added to "
                    f"{pinfo.name} of {label(parent, lookup)}; the two sides contradict each other: change one side only"
                )
                raise FlushError(msg)
            old = child_state.rel(info.key)
            if old is not None and old is not new:
                old_parents.append(old)
            if new is None and old_parents and _orphans(info, c.removes):
                plan.orphans.append(child_state)
                continue
        elif add_parents:
            new, info = add_parents[0]
            if child_state.status != PENDING:  # a new child has no relation snapshots: no old parent
                for ref in child_state.mapping.relations.values():
                    if ref.kind == "belongs_to" and ref.edge == edge:
                        old = child_state.rel(ref.key)
                        if old is not None and old is not new:
                            old_parents.append(old)
        elif c.removes:
            new, info = None, c.removes[0][1]
            if _orphans(None, c.removes):
                plan.orphans.append(child_state)
                continue
        else:
            continue
        plan.links.setdefault(id(child_state), []).append(Link(info.fk_cols, info.ref_cols, new, info))
        plan.moves.append((child_state, edge, new, old_parents))
        if add_parents and not old_parents and alone(child_state, add_parents[0][1], edge):
            # Found in the new parent's collection: memory needs at most the child's reference.
            (plan.settled if c.to_one is not None else plan.in_parent).add(id(child_state))
    return plan


def refuse_null_links(plan: RelationPlan, lookup: Callable[[Any], ObjectState | None]) -> None:
    """Refuse, before any SQL, a child that stays while its NOT NULL key loses its parent.

    Run once the delete cascades have decided which children go: a child taken out of its
    parent (removed from the collection, or its reference cleared) is detached, which a NOT
    NULL key cannot express; the database would refuse it half-way through the flush.

    Raises:
        FlushError: naming the child, the relation and the ways out.
    """
    for child_state, edge, new, old_parents in plan.moves:
        if new is not None or child_state.status not in (PENDING, PERSISTENT):
            continue
        for link in plan.links.get(id(child_state), ()):
            if link.parent is not None or link.info.edge != edge or all(c.nullable for c in link.fk_cols):
                continue
            info = link.info
            owning = info if info.to_many or info.kind == "has_one" else info.inverse
            where = f" of {label(old_parents[0], lookup)}" if old_parents else ""
            column = ", ".join(f"{edge[0]}.{c.name}" for c in link.fk_cols)
            fix = f"give {owning.name} the 'orphan' cascade, " if owning is not None else ""
            msg = (
                f"{label(child_state.obj, lookup)} was taken out of {(owning or info).name}{where}, but its key "
                f"{column} is NOT NULL, so it cannot be detached; delete it, move it to another parent, "
                f"or {fix}or make the key nullable"
            )
            raise FlushError(msg)


def _sole_on_edge(m: Any, edge: Any, at_most: bool = False) -> bool:
    """Whether ``m`` has one relation on ``edge`` (``at_most``: none or one), so no alias needs mirroring."""
    n = sum(1 for i in m.relations.values() if i.edge == edge)
    return n == 1 or (at_most and n == 0)


def _orphans(to_one: RelationInfo | None, removes: list[tuple[Any, RelationInfo]]) -> bool:
    """Whether a child that leaves its parent (from either side) is an orphan to delete."""
    if any("orphan" in i.cascade for _, i in removes):
        return True
    inverse = to_one.inverse if to_one is not None else None
    return inverse is not None and "orphan" in inverse.cascade


def _pair_key(info: RelationInfo, source: Any, target: Any) -> tuple[Any, ...]:
    """The same junction row seen from either side of the relation has the same key."""
    table = info.edge[0]
    a = (tuple(c.name for c in info.fk_cols), id(source))
    b = (tuple(c.name for c in info.other_cols), id(target))
    return (table, *sorted([a, b]))


def delete_targets(st: ObjectState) -> list[tuple[RelationInfo, list[Any] | None]]:
    """For a state being deleted: its relations with the "delete" cascade and their loaded members.

    A None member list means the relation is not loaded.
    """
    out: list[tuple[RelationInfo, list[Any] | None]] = []
    for info in st.mapping.relations.values():
        if "delete" not in info.cascade or info.kind not in ("has_many", "has_one"):
            continue
        value = getattr(st.obj, info.key, None)
        if value is not None and is_unloaded(value):
            out.append((info, None))
        else:
            out.append((info, _members(value, info)))
    return out


class DeleteEdge:
    """Rows that reference a mapping through one foreign key: what deleting a parent row affects.

    Attributes:
        table: the table holding the key (a mapped table, or a junction table).
        cols / ref_cols: the referencing columns and the parent columns they reference.
        holder: the mapping of ``table``, or None for a junction table (no objects).
        infos: the relations declared on this key (for messages and the owning cascade).
        owning: the parent's HasMany/HasOne on this key, if declared.
        link: the rows are the links of a BelongsToMany (junction rows, association objects):
            they go with either end, whatever the database's ON DELETE rule says.
        rule: the database's ON DELETE rule of the key, if any.
    """

    __slots__ = ("table", "cols", "ref_cols", "holder", "infos", "owning", "link", "rule", "key")

    def __init__(self, table: Table, cols: list[Column], ref_cols: list[Column], holder: ClassMapping[Any] | None) -> None:
        self.table = table
        self.cols = cols
        self.ref_cols = ref_cols
        self.holder = holder
        self.infos: list[RelationInfo] = []
        self.owning: RelationInfo | None = None
        self.link = False
        names = tuple(c.name for c in cols)
        self.key = (table.name, names)
        self.rule = next((fk.on_delete for fk in table.foreign_keys if fk.columns == names), None)

    @property
    def name(self) -> str:
        """The relation to name in messages."""
        return (self.owning or self.infos[0]).name

    @property
    def deletes(self) -> bool:
        """Whether deleting a parent deletes these rows (a link, or a "delete" cascade)."""
        return self.link or (self.owning is not None and "delete" in self.owning.cascade)


def delete_edges(m: ClassMapping[Any], mappings: Iterable[ClassMapping[Any]]) -> list[DeleteEdge]:
    """Every foreign key that references ``m``'s rows, with the relations declared on it.

    Besides the relations whose key points at ``m`` (``m.referenced_by``), the other end of a
    BelongsToMany that targets ``m``: its junction (or association) rows reference ``m`` too,
    even when ``m`` declares no relation back.
    """
    edges: dict[tuple[str, tuple[str, ...]], DeleteEdge] = {}

    def edge(table: Table | None, cols: list[Column], ref_cols: list[Column], holder: ClassMapping[Any] | None) -> DeleteEdge | None:
        if table is None:
            return None
        key = (table.name, tuple(c.name for c in cols))
        found = edges.get(key)
        if found is None:
            found = edges[key] = DeleteEdge(table, cols, ref_cols, holder)
        return found

    for info in m.referenced_by:
        holder = info.holder if info.junction is None else None
        e = edge(info.junction or (info.holder.table if info.holder else None), info.fk_cols, info.ref_cols, holder)
        if e is None:
            continue
        e.infos.append(info)
        if info.kind == "belongs_to_many":
            e.link = True
        elif info.source is m and info.kind in ("has_many", "has_one") and e.owning is None:
            e.owning = info
    for other in mappings:
        for info in other.relations.values():
            if info.kind != "belongs_to_many" or info.target is not m:
                continue
            holder = info.holder if info.junction is None else None
            e = edge(info.junction or (info.holder.table if info.holder else None), info.other_cols, info.other_ref_cols, holder)
            if e is not None:
                e.infos.append(info)
                e.link = True
    return list(edges.values())
