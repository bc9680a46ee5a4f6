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
from ..relations import HasOne
from ..schema import Column, Table
from ..state import DETACHED, PENDING, PERSISTENT, ObjectState

__all__ = [
    "Link",
    "Move",
    "Edge",
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

    def __init__(self, fk_cols: list[Column], ref_cols: list[Column], parent: object, info: RelationInfo) -> None:
        self.fk_cols = fk_cols
        self.ref_cols = ref_cols
        self.parent = parent
        self.info = info


class JunctionOp:
    """A junction row between ``source`` and ``target`` to insert or delete (BelongsToMany)."""

    __slots__ = ("info", "source", "target")

    def __init__(self, info: RelationInfo, source: object, target: object) -> None:
        self.info = info
        self.source = source
        self.target = target


#: A foreign key seen from its holder table: (table name, key column names). Relations on one
#: edge (a BelongsTo and the HasMany of its parent) describe the same key from either side.
Edge = tuple[str, tuple[str, ...]]


class Move:
    """A child row's key on one edge changes in this flush: to ``new`` (None: detached).

    Attributes:
        child: the child's state.
        edge: the foreign key that changes.
        new: the parent it now references, or None.
        old_parents: the parents it leaves, whose loaded collections must let it go.
    """

    __slots__ = ("child", "edge", "new", "old_parents")

    def __init__(self, child: ObjectState, edge: Edge, new: object | None, old_parents: list[object]) -> None:
        self.child = child
        self.edge = edge
        self.new = new
        self.old_parents = old_parents


class _Claim:
    __slots__ = ("child", "to_one", "adds", "removes")

    def __init__(self, child: object) -> None:
        self.child = child
        self.to_one: tuple[Any, RelationInfo] | None = None
        self.adds: list[tuple[Any, RelationInfo]] = []
        self.removes: list[tuple[Any, RelationInfo]] = []


class RelationPlan:
    """What the relation edits of one flush amount to.

    Attributes:
        links: child state id -> links to resolve into foreign-key values.
        moves: the children whose key changes, to mirror in memory after the flush (``Move``).
        in_parent: ids of child states that moved (with no old parent) into the one collection
            of their new parent on the edge: that side needs no mirroring, only the reference.
        settled: those of them whose one reference on the edge names that parent already.
        orphans: states removed from a collection with the "orphan" cascade.
        junction_add / junction_remove: rows of string junction tables.
        assoc_add / assoc_remove: pairs of a BelongsToMany through an association class.
    """

    def __init__(self) -> None:
        self.links: dict[int, list[Link]] = {}
        self.moves: list[Move] = []
        self.in_parent: set[int] = set()
        self.settled: set[int] = set()
        self.orphans: list[ObjectState] = []
        self.junction_add: list[JunctionOp] = []
        self.junction_remove: list[JunctionOp] = []
        self.assoc_add: list[JunctionOp] = []
        self.assoc_remove: list[JunctionOp] = []
        #: The states the flush examined for relation edits (their snapshots are refreshed).
        self.touched: list[ObjectState] = []


def label(obj: object, lookup: Callable[[object], ObjectState | None] | None = None) -> str:
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


def _check_type(obj: object, info: RelationInfo, lookup: Callable[[object], ObjectState | None]) -> None:
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
            if info.kind.reference or snap is _MISSING or not info.to_many:
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
            target_cls = info.target.cls
            for item in _members(value, info):
                k = id(item)
                if k in seen:
                    continue
                mst = managed.get(k)
                if mst is not None and mst.obj is item and mst.status != DETACHED:
                    continue
                if not isinstance(item, target_cls):  # the check inline: it runs once per new object
                    _check_type(item, info, lambda o: mst if mst is not None and mst.obj is o else None)
                seen.add(k)
                out.append((item, info))
    return out


def reconcile(
    states: Iterable[ObjectState],
    lookup: Callable[[object], ObjectState | None],
    ops: Iterable[tuple[bool, Any, RelationInfo, Any]] = (),
) -> RelationPlan:
    """Reconcile the relation edits of ``states`` (pending and persistent) into a plan.

    ``ops`` are (adding, parent, relation, child) edits made through ``session.related()``
    on collections that were not loaded.

    Raises:
        FlushError: two sides contradict each other, a child is put into two parents'
            collections, or a collection holds None or a wrong type.
    """
    r = _Reconciler(lookup)
    for adding, parent, info, child in ops:
        r.related_op(adding, parent, info, child)
    r.edits_of_all(states)
    return r.resolve()


class _Reconciler:
    """The claims of one flush's relation edits, collected per kind and resolved into a plan.

    Attributes:
        claims: per (child, edge): what each side says the child's parent is.
        pairs: per junction row (either side): whether it is added or removed.
    """

    def __init__(self, lookup: Callable[[object], ObjectState | None]) -> None:
        self.lookup = lookup
        self.plan = RelationPlan()
        self.claims: dict[tuple[int, tuple[str, tuple[str, ...]]], _Claim] = {}
        self.pairs: dict[tuple[Any, ...], tuple[str, JunctionOp]] = {}
        #: Per (child mapping, parent mapping, edge): whether each has one relation on it.
        self._sole: dict[tuple[int, int, Any], bool] = {}

    # -- collecting ---------------------------------------------------------------------------------

    def claim(self, child: object, edge: Edge) -> _Claim:
        k = (id(child), edge)
        c = self.claims.get(k)
        if c is None:
            c = self.claims[k] = _Claim(child)
        return c

    def related_op(self, adding: bool, parent: object, info: RelationInfo, child: object) -> None:
        """An edit of an unloaded collection, made through ``session.related()``.

        These edits were made one after another, so a later one on a pair replaces an earlier
        opposite one (link then unlink leaves the pair unlinked), where the same pair added on
        one side and removed on the other by loaded collections contradict each other.
        """
        if info.kind.links:
            key = _pair_key(info, parent, child)
            previous = self.pairs.get(key)
            if previous is not None and previous[0] != ("add" if adding else "remove"):
                del self.pairs[key]
                plan = self.plan
                for ops in (plan.junction_add, plan.junction_remove, plan.assoc_add, plan.assoc_remove):
                    if previous[1] in ops:
                        ops.remove(previous[1])
            self.pair(info, parent, child, adding)
        else:
            c = self.claim(child, info.edge)
            # A later edit with the same parent replaces an earlier opposite one: added then
            # removed leaves the child out of that parent, removed then added leaves it in.
            if adding:
                c.removes = [e for e in c.removes if e[0] is not parent]
                c.adds.append((parent, info))
            else:
                c.adds = [e for e in c.adds if e[0] is not parent]
                c.removes.append((parent, info))

    def edits_of_all(self, states: Iterable[ObjectState]) -> None:
        """The claims of the states' relations, each the way its kind says.

        One loop with the per-kind steps as calls: it runs for every object of a flush, and a
        new object's empty reference (the common case of an insert) costs no call at all.
        """
        for st in states:
            rels = st.mapping.relations
            if not rels:
                continue
            obj = st.obj
            pending = st.status == PENDING
            for info in rels.values():
                value = getattr(obj, info.key, None)
                if info.kind.reference:
                    if value is not None or not pending:  # a new object's None claims nothing
                        self._reference(st, info, value, pending)
                elif value is None or not is_unloaded(value):
                    self._collection(st, info, value)

    def _collection(self, st: ObjectState, info: RelationInfo, value: Any) -> None:
        added, removed = _collection_edits(st, info, value)
        if info.kind.children:
            self._children(st.obj, info, added, removed)
        else:  # one junction row per (source, target) pair
            for x in added:
                self.pair(info, st.obj, x, True)
            for x in removed:
                self.pair(info, st.obj, x, False)

    def _reference(self, st: ObjectState, info: RelationInfo, value: Any, pending: bool) -> None:
        """BelongsTo: a reference not its snapshot's object claims that parent."""
        snap = st.rel(info.key, _MISSING)
        changed = value is not None if (pending or snap is _MISSING) else value is not snap
        if changed:
            if value is not None:
                _check_type(value, info, self.lookup)
            self.claim(st.obj, info.edge).to_one = (value, info)

    def _children(self, obj: object, info: RelationInfo, added: list[Any], removed: list[Any]) -> None:
        """HasMany, HasOne: a member added claims the parent; a member removed leaves it."""
        edge = info.edge
        target_cls = info.target.cls
        entry = (obj, info)
        claims = self.claims
        for x in added:
            if not isinstance(x, target_cls):
                _check_type(x, info, self.lookup)
            k = (id(x), edge)
            c = claims.get(k)
            if c is None:
                c = claims[k] = _Claim(x)
            c.adds.append(entry)
        for x in removed:
            self.claim(x, edge).removes.append(entry)

    def pair(self, info: RelationInfo, obj: object, x: object, adding: bool) -> None:
        """BelongsToMany: a junction row to add or remove (the same row from either side once)."""
        lookup = self.lookup
        if adding:
            _check_type(x, info, lookup)
        op = JunctionOp(info, obj, x)
        key = _pair_key(info, obj, x)
        previous = self.pairs.get(key)
        word = "add" if adding else "remove"
        if previous is not None and previous[0] != word:
            msg = (
                f"{info.name}: {label(obj, lookup)} and {label(x, lookup)} are both linked and unlinked in this flush "
                "(one side added the pair, the other removed it); change one side only"
            )
            raise FlushError(msg)
        if previous is None:
            self.pairs[key] = (word, op)
            plan = self.plan
            through = info.through is not None
            if adding:
                (plan.assoc_add if through else plan.junction_add).append(op)
            else:
                (plan.assoc_remove if through else plan.junction_remove).append(op)

    # -- resolving ----------------------------------------------------------------------------------

    def resolve(self) -> RelationPlan:
        """Each child's claims on each edge into one link and one move, or a FlushError."""
        lookup = self.lookup
        plan = self.plan
        links, moves, in_parent, sole = plan.links, plan.moves, plan.in_parent, self._sole
        for (_, edge), c in self.claims.items():
            child_state = lookup(c.child)
            if child_state is None:
                continue  # not managed: reported by the save cascade
            if c.to_one is not None or len(c.adds) != 1 or c.removes or child_state.status != PENDING:
                self._resolve(child_state, edge, c)
                continue
            # The common case, a new child found in one parent's collection, inline (it runs once
            # per object of an insert): what _resolve decides for it (one link, one move, no old
            # parent), without the lists it builds.
            new, info = c.adds[0]
            link = Link(info.fk_cols, info.ref_cols, new, info)
            known = links.get(id(child_state))
            if known is None:
                links[id(child_state)] = [link]
            else:
                known.append(link)
            moves.append(Move(child_state, edge, new, []))
            alone = sole.get((id(child_state.mapping), id(info.source), edge))
            if alone if alone is not None else self._alone(child_state, info, edge):
                in_parent.add(id(child_state))
        return plan

    def _resolve(self, child_state: ObjectState, edge: Edge, c: _Claim) -> None:
        plan = self.plan
        add_parents = self._one_new_parent(c)
        old_parents = [p for p, _ in c.removes] if c.removes else []
        if c.to_one is not None:
            new, info = c.to_one
            self._refuse_contradiction(c, new, info, add_parents)
            old = child_state.rel(info.key)
            if old is not None and old is not new:
                old_parents.append(old)
            if new is None and old_parents and _orphans(info, c.removes):
                plan.orphans.append(child_state)
                return
        elif add_parents:
            new, info = add_parents[0]
            old_parents += _old_references(child_state, edge, new)
        elif c.removes:
            new, info = None, c.removes[0][1]
            if _orphans(None, c.removes):
                plan.orphans.append(child_state)
                return
        else:
            return
        plan.links.setdefault(id(child_state), []).append(Link(info.fk_cols, info.ref_cols, new, info))
        plan.moves.append(Move(child_state, edge, new, old_parents))
        if add_parents and not old_parents and self._alone(child_state, add_parents[0][1], edge):
            # Found in the new parent's collection: memory needs at most the child's reference.
            (plan.settled if c.to_one is not None else plan.in_parent).add(id(child_state))

    def _one_new_parent(self, c: _Claim) -> list[tuple[Any, RelationInfo]]:
        """The distinct parents whose collections the child joined: one at most, else FlushError."""
        add_parents: list[tuple[Any, RelationInfo]] = c.adds if len(c.adds) < 2 else []
        if len(c.adds) > 1:
            for parent, info in c.adds:
                if not any(p is parent for p, _ in add_parents):
                    add_parents.append((parent, info))
        if len(add_parents) > 1:
            lookup = self.lookup
            (a, ia), (b, _) = add_parents[0], add_parents[1]
            msg = (
                f"{label(c.child, lookup)} was put into {ia.name} of two objects ({label(a, lookup)} and "
                f"{label(b, lookup)}); a child belongs to one parent: remove it from one collection"
            )
            raise FlushError(msg)
        return add_parents

    def _refuse_contradiction(self, c: _Claim, new: object, info: RelationInfo, add_parents: list[tuple[Any, RelationInfo]]) -> None:
        """The reference names one parent and a collection it joined another: FlushError."""
        if add_parents and add_parents[0][0] is not new:
            lookup = self.lookup
            parent, pinfo = add_parents[0]
            msg = (
                f"{info.name} of {label(c.child, lookup)} is {label(new, lookup)}, but it was added to "
                f"{pinfo.name} of {label(parent, lookup)}; the two sides contradict each other: change one side only"
            )
            raise FlushError(msg)

    def _alone(self, child_state: ObjectState, pinfo: RelationInfo, edge: Edge) -> bool:
        """Whether ``pinfo`` (a collection) and at most one child reference are all the edge has."""
        k3 = (id(child_state.mapping), id(pinfo.source), edge)
        one = self._sole.get(k3)
        if one is None:
            one = self._sole[k3] = _sole_on_edge(pinfo.source, edge) and _sole_on_edge(child_state.mapping, edge, True)
        return one


def _collection_edits(st: ObjectState, info: RelationInfo, value: Any) -> tuple[list[Any], list[Any]]:
    """The members added to and removed from a loaded collection since its snapshot."""
    members = _members(value, info)
    snap_members = st.rel(info.key, ())
    if snap_members is None:
        snap_members = ()
    elif not isinstance(snap_members, tuple):
        snap_members = (snap_members,)
    if not snap_members:  # a new parent, or a collection that was empty: every member is added
        return members, []
    snap_ids = {id(x) for x in snap_members}
    cur_ids = {id(x) for x in members}
    return [x for x in members if id(x) not in snap_ids], [x for x in snap_members if id(x) not in cur_ids]


def _old_references(child_state: ObjectState, edge: Edge, new: object) -> list[Any]:
    """The parents a persistent child's references on ``edge`` named before it joined ``new``."""
    if child_state.status == PENDING:  # a new child has no relation snapshots: no old parent
        return []
    out = []
    for ref in child_state.mapping.relations.values():
        if ref.kind.reference and ref.edge == edge:
            old = child_state.rel(ref.key)
            if old is not None and old is not new:
                out.append(old)
    return out


def refuse_null_links(plan: RelationPlan, lookup: Callable[[object], ObjectState | None]) -> None:
    """Refuse, before any SQL, a child that stays while its NOT NULL key loses its parent.

    Run once the delete cascades have decided which children go: a child taken out of its
    parent (removed from the collection, or its reference cleared) is detached, which a NOT
    NULL key cannot express; the database would refuse it half-way through the flush.

    Raises:
        FlushError: naming the child, the relation and the ways out.
    """
    for move in plan.moves:
        child_state, edge, new, old_parents = move.child, move.edge, move.new, move.old_parents
        if new is not None or child_state.status not in (PENDING, PERSISTENT):
            continue
        for link in plan.links.get(id(child_state), ()):
            if link.parent is not None or link.info.edge != edge or all(c.nullable for c in link.fk_cols):
                continue
            info = link.info
            owning = info if info.to_many or info.kind is HasOne else info.inverse
            where = f" of {label(old_parents[0], lookup)}" if old_parents else ""
            column = ", ".join(f"{edge[0]}.{c.name}" for c in link.fk_cols)
            fix = f"give {owning.name} the 'orphan' cascade, " if owning is not None else ""
            msg = (
                f"{label(child_state.obj, lookup)} was taken out of {(owning or info).name}{where}, but its key "
                f"{column} is NOT NULL, so it cannot be detached; delete it, move it to another parent, "
                f"or {fix}or make the key nullable"
            )
            raise FlushError(msg)


def _sole_on_edge(m: ClassMapping[Any], edge: Edge, at_most: bool = False) -> bool:
    """Whether ``m`` has one relation on ``edge`` (``at_most``: none or one), so no alias needs mirroring."""
    n = sum(1 for i in m.relations.values() if i.edge == edge)
    return n == 1 or (at_most and n == 0)


def _orphans(to_one: RelationInfo | None, removes: list[tuple[Any, RelationInfo]]) -> bool:
    """Whether a child that leaves its parent (from either side) is an orphan to delete."""
    if any("orphan" in i.cascade for _, i in removes):
        return True
    inverse = to_one.inverse if to_one is not None else None
    return inverse is not None and "orphan" in inverse.cascade


def _pair_key(info: RelationInfo, source: object, target: object) -> tuple[Any, ...]:
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
        if "delete" not in info.cascade or not info.kind.children:
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
        if info.kind.links:
            e.link = True
        elif info.source is m and info.kind.children and e.owning is None:
            e.owning = info
    for other in mappings:
        for info in other.relations.values():
            # A link to a base class of a hierarchy reaches its subclasses' rows too.
            if not info.kind.links or (info.target is not m and info.target not in m.ancestors):
                continue
            holder = info.holder if info.junction is None else None
            e = edge(info.junction or (info.holder.table if info.holder else None), info.other_cols, info.other_ref_cols, holder)
            if e is not None:
                e.infos.append(info)
                e.link = True
    return list(edges.values())
