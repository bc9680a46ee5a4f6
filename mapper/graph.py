"""Loading relations for many objects at once: includes, cohort lazy loads and references.

Every relation is loaded for a whole set of parents with one query per chunk of keys
(``= ANY(array)`` on PostgreSQL, IN lists sized to the parameter limit elsewhere), so no
access pattern costs one query per object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING, Any

from . import errors
from .lazy import GHOST_HOOK, fill, ghost_class, is_unloaded, new_unloaded, not_loaded_error
from .loading import collector_paused
from .mapping import ClassMapping, RelationInfo
from .relations import HasOne
from .schema import Column
from .state import DELETED, GHOST, NO_RELS, PERSISTENT, ObjectState, rel_values

_obj = attrgetter("obj")
_hidden = attrgetter("hidden")

if TYPE_CHECKING:
    from .seam import SessionSeam

__all__ = ["GraphLoader", "resolve_paths", "PathTree"]

PathTree = dict[RelationInfo, "PathTree"]


def resolve_paths(m: ClassMapping[Any], paths: Iterable[str]) -> PathTree:
    """Turn dotted relation paths into a tree of relations (shared prefixes load once).

    Raises:
        QueryError: a segment names no relation of the class it applies to.
    """
    tree: PathTree = {}
    for path in paths:
        if not isinstance(path, str) or not path:
            msg = f"include()/load() take dotted relation names such as 'pugs' or 'items.product', got {path!r}"
            raise errors.QueryError(msg)
        node = tree
        current = m
        for segment in path.split("."):
            info = current.relations.get(segment)
            if info is None:
                msg = (
                    f"{current.cls.__name__} has no relation {segment!r} (in path {path!r}); "
                    f"its relations are {sorted(current.relations)}"
                )
                raise errors.QueryError(msg)
            node = node.setdefault(info, {})
            current = info.target
    return tree


class GraphLoader:
    """Relation loading for one session."""

    def __init__(self, session: SessionSeam) -> None:
        self.s = session
        self._ghost_classes: dict[ClassMapping[Any], type] = {}
        #: Stand-ins created per mapping, by key (their rows are loaded together on first touch).
        self.ghosts: dict[ClassMapping[Any], dict[Any, ObjectState]] = {}
        #: Once the session is closed and has let go of its states: the relation each stand-in
        #: still alive then stood for, by ``id``, so that touching one names the include to add.
        self.closed_refs: dict[int, RelationInfo] = {}

    # -- values ---------------------------------------------------------------------------------

    def values(self, st: ObjectState, cols: Sequence[Column]) -> Any:
        """A state's values of ``cols``: a value, a tuple for several columns (None if any is None)."""
        spec = self.s.tracker.spec(st.mapping)
        if len(cols) == 1:
            return spec.get(st, cols[0].key)
        vals = tuple(spec.get(st, c.key) for c in cols)
        return None if any(v is None for v in vals) else vals

    def _keys_of(self, m: ClassMapping[Any], cols: Sequence[Column], states: list[ObjectState]) -> list[Any]:
        """The values of ``cols`` for each state (one column: read in C, with attrgetters)."""
        if len(cols) == 1:
            spec = self.s.tracker.spec(m)
            pos = spec.hidden_position.get(cols[0].key)
            if pos is not None:
                return list(map(itemgetter(pos), map(_hidden, states)))
            return list(map(attrgetter(cols[0].key), map(_obj, states)))
        return [self.values(st, cols) for st in states]

    def _parent_key(self, st: ObjectState, info: RelationInfo) -> Any:
        if [c.key for c in info.ref_cols] == [c.key for c in st.mapping.pk]:
            return st.key
        return self.values(st, info.ref_cols)

    # -- wiring freshly built objects -----------------------------------------------------------

    def wire(self, m: ClassMapping[Any], fresh: list[ObjectState]) -> None:
        """Give new objects the relation attributes the generated loader does not set: references
        on several columns, and HasOne rows."""
        if not fresh or not m.needs_wiring:
            return
        setattr_ = self.s.tracker.spec(m).setattr
        for info in m.relations.values():
            key = info.key
            if info.kind.reference:
                if key in m.ref_slots:
                    continue  # wired by the generated loader
                if info.target.hierarchy is not None and info.target.hierarchy.polymorphic:
                    # No stand-in can become whichever subclass the row holds: read the rows now.
                    self._load_references([st for st in fresh if st.status == PERSISTENT], info)
                    continue
                tmap = self.s.tracker.identity.for_mapping(info.target)
                make = self.ghost_factory(info)
                for st in fresh:
                    k = self.values(st, info.fk_cols)
                    if k is None:
                        target = None
                    else:
                        t = tmap.get(k)
                        target = t.obj if t is not None else make(k)
                    setattr_(st.obj, key, target)
                    st.rels[key] = target
            elif info.to_many:
                continue  # given an unloaded collection by the generated loader
            else:
                for st in fresh:
                    setattr_(st.obj, key, None)
                # HasOne is loaded with its parents: an absent row must read as None.
                self.load([st for st in fresh if st.status == PERSISTENT], info)

    def unloaded(self, st: ObjectState, info: RelationInfo) -> Any:
        """A fresh unloaded collection for ``info`` of ``st`` (it loads on first use)."""
        return new_unloaded(info.collection, self.lazy_collection, info.name, st, info)

    def ghost_factory(self, info: RelationInfo) -> Callable[[Any], Any]:
        """``make(key)``: a stand-in for the target of ``info`` with that key.

        Generated loaders call it once per distinct unloaded reference, so everything it
        needs is looked up here, once, rather than per stand-in.
        """
        m = info.target
        klass = self._ghost_class(m)
        identity = self.s.tracker.identity
        imap = identity.for_mapping(m)
        ancestors = m.ancestors
        states = self.s.tracker.by_id  # written to only: no need to index pending loads
        pending = self.ghosts.setdefault(m, {})
        new = object.__new__

        def make(key: Any) -> Any:
            obj: Any = new(klass)
            # Built inline: one per distinct reference of a load, a constructor call costs more.
            st = new(ObjectState)
            st.obj = obj
            st.mapping = m
            st.key = key
            st.snap = st.hidden = st.hsnap = None
            st.status = GHOST
            st.rels = NO_RELS
            st.cohort = info
            imap[key] = st
            if ancestors:
                for a in ancestors:
                    identity.for_mapping(a)[key] = st
            states[id(obj)] = st
            pending[key] = st
            return obj

        return make

    def _ghost_class(self, m: ClassMapping[Any]) -> type:
        klass = self._ghost_classes.get(m)
        if klass is None:
            klass = self._ghost_classes[m] = ghost_class(m.cls, self._load_ghost, self._describe_ghost)
        return klass

    def _describe_ghost(self, obj: object) -> str:
        """What an unloaded stand-in stands for, e.g. ``Pug.owner (an Owner)``.

        Without the key: unpickled markers share one class per description, so the number of
        classes stays bounded by the relations, not the rows.
        """
        st = self.s.tracker.states.get(id(obj))
        name = type(obj).__mro__[1].__name__
        ref = st.cohort if st is not None and isinstance(st.cohort, RelationInfo) else self.closed_refs.get(id(obj))
        return f"{ref.name} (a {name})" if ref is not None else f"a reference to a {name}"

    def _load_ghost(self, obj: object) -> None:
        s = self.s
        st = s.tracker.states.get(id(obj))
        if s.closed or st is None or st.status != GHOST:
            name = type(obj).__mro__[1].__name__
            ref = st.cohort if st is not None and isinstance(st.cohort, RelationInfo) else self.closed_refs.get(id(obj))
            if ref is not None:
                raise not_loaded_error(f"{ref.name} (a {name})", ref.key, True)
            raise not_loaded_error(f"this {name} (a reference from another object)", "<relation>", True)
        info: RelationInfo = st.cohort
        if s.lazy == "async" or (info.lazy or info.source.lazy or s.lazy) == "raise":
            # An async session never loads on touch, whatever the relation says: a load there
            # would be a blocking call hidden in an attribute read.
            raise not_loaded_error(info.name, info.key, False, awaited=s.lazy == "async")
        m = st.mapping
        pending = self.ghosts.get(m, {})
        keys = [k for k, g in pending.items() if g.status == GHOST]
        for k in keys:
            # Only these: loading them may create stand-ins for their own references.
            del pending[k]
        s.read()
        self.fetch(m, m.pk, keys)
        if st.status == GHOST:
            # The referenced row does not exist (no foreign-key constraint kept it).
            self.s.tracker.forget(st)
            object.__setattr__(obj, "__class__", m.cls)
            msg = f"{info.name} refers to {m.cls.__name__} with key {st.key!r}, which does not exist"
            raise errors.NotFoundError(msg)

    # -- batched queries ------------------------------------------------------------------------

    def chunks(self, keys: list[Any], ncols: int) -> list[list[Any]]:
        """``keys`` of ``ncols`` columns cut into the chunks one statement matches."""
        step = self.s.dialect.keys_per_statement(max(1, ncols), len(keys))
        return [keys[i : i + step] for i in range(0, len(keys), step)]

    def fetch(
        self,
        m: ClassMapping[Any],
        cols: Sequence[Column],
        keys: list[Any],
        order: Sequence[tuple[Column, bool]] = (),
        row_states: list[ObjectState] | None = None,
        live: Column | None = None,
    ) -> list[Any]:
        """Objects of ``m`` whose ``cols`` match any of ``keys``, one query per chunk
        (``row_states`` receives their states, in the same order; ``live``: the soft-delete
        column, for loads that skip soft-deleted rows)."""
        s = self.s
        conn = s.connection
        loader = s.tracker.loader(m)
        out: list[Any] = []
        for chunk in self.chunks(keys, len(cols)):
            sql = conn.compiler.select_by_keys(m.table, loader.columns, cols, len(chunk), order, live=live)
            out += s.load_rows(m, conn.fetchall(sql, self.s.dialect.key_params(cols, chunk)), row_states)
        return out

    def load(self, states: list[ObjectState], info: RelationInfo) -> list[ObjectState]:
        """Load one relation for ``states``; returns the states of the loaded members.

        Each kind loads its own way: a reference fetches its targets by key, a collection
        (HasMany, HasOne) its children by their foreign key, a BelongsToMany its targets joined
        through the junction; all three with one query per chunk of keys.
        """
        states = [st for st in states if st.status in (PERSISTENT, DELETED)]
        if not states:
            return []
        if info.kind.reference:
            return self._load_references(states, info)
        parents = self._parents_by_key(states, info)
        if info.kind.links:
            groups, child_states = self._fetch_linked(info, list(parents))
        else:
            groups, child_states, child_keys = self._fetch_children(info, list(parents))
        self._fill(parents, groups, info)
        if info.kind.links:
            return list({id(cst): cst for cst in child_states}.values())
        if info.inverse is not None and not info.inverse.to_many:
            self._set_inverse(parents, child_states, child_keys, info.inverse)
        return child_states  # a child row has one parent: no repeats

    def _load_references(self, states: list[ObjectState], info: RelationInfo) -> list[ObjectState]:
        """BelongsTo: the targets not held (or only as stand-ins) fetched by key, then set."""
        s = self.s
        setattr_ = s.tracker.spec(info.source).setattr
        key = info.key
        tm = info.target
        tmap = s.tracker.identity.for_mapping(tm)
        keys = self._keys_of(info.source, info.fk_cols, states)
        wanted: dict[Any, None] = {}
        for k in dict.fromkeys(keys):  # each distinct key once
            if k is not None:
                t = tmap.get(k)
                if t is None or t.status == GHOST:
                    wanted[k] = None
        if wanted:
            self.fetch(tm, tm.pk, list(wanted))
        members: dict[int, ObjectState] = {}
        for st, k, snap in zip(states, keys, rel_values(states, key, _MISSING)):
            t = tmap.get(k) if k is not None else None
            target = t.obj if t is not None and t.status != GHOST else None
            obj = st.obj
            # A stand-in the load just filled is already in place: no store needed.
            if getattr(obj, key, None) is not target:
                setattr_(obj, key, target)
            if snap is not target:
                st.rels[key] = target
            if target is not None:
                members[id(target)] = t  # type: ignore[assignment]
        return list(members.values())

    def _parents_by_key(self, states: list[ObjectState], info: RelationInfo) -> dict[Any, ObjectState]:
        """The states by the key their children (or junction rows) reference."""
        parents: dict[Any, ObjectState] = {}
        if all(a is b for a, b in zip(info.ref_cols, info.source.pk)) and len(info.ref_cols) == len(info.source.pk):
            # The relation hangs off the primary key (the usual case): each state's key is it.
            for st in states:
                if st.key is not None:
                    parents[st.key] = st
        else:
            for st in states:
                pk = self._parent_key(st, info)
                if pk is not None:
                    parents[pk] = st
        return parents

    def _fetch_children(self, info: RelationInfo, keys: list[Any]) -> tuple[dict[Any, list[Any]], list[ObjectState], list[Any]]:
        """HasMany, HasOne: the children of these parent keys, in the relation's order, grouped
        by parent key as objects (no lookup by object per child); also every child's state and
        key."""
        tm = info.target
        child_states: list[ObjectState] = []
        # Collections skip soft-deleted children; references load their row whatever it holds.
        objs = self.fetch(tm, info.fk_cols, keys, with_key(info.order, tm.pk), child_states, live=tm.soft_delete)
        child_keys = self._keys_of(tm, info.fk_cols, child_states)
        groups: dict[Any, list[Any]] = {}
        for k, child in zip(child_keys, objs):
            g = groups.get(k)
            if g is None:
                groups[k] = [child]
            else:
                g.append(child)
        return groups, child_states, child_keys

    def _fetch_linked(self, info: RelationInfo, keys: list[Any]) -> tuple[dict[Any, list[Any]], list[ObjectState]]:
        """BelongsToMany: the targets of these source keys, grouped by source key as objects."""
        groups: dict[Any, list[Any]] = {}
        child_states: list[ObjectState] = []
        self.fetch_through(info, keys, groups, child_states)
        return groups, child_states

    def _fill(self, parents: dict[Any, ObjectState], groups: dict[Any, list[Any]], info: RelationInfo) -> None:
        """Give each parent its members (an unloaded collection is filled in place) and their snapshot."""
        s = self.s
        setattr_ = s.tracker.spec(info.source).setattr
        key = info.key
        wrote = s.tracker.wrote
        if info.kind is HasOne:
            for pk, st in parents.items():
                found = groups.get(pk)
                if wrote:
                    # Rows written in this transaction may be among them: rollback must not keep them.
                    s.tracker.keep_committed_rels(st)
                value = found[0] if found else None
                setattr_(st.obj, key, value)
                st.rels[key] = value
            return
        empty: list[Any] = []
        for pk, st in parents.items():
            found = groups.get(pk, empty)
            if wrote:
                s.tracker.keep_committed_rels(st)
            current = getattr(st.obj, key, None)
            if current is not None and is_unloaded(current):
                fill(current, found)
            else:
                setattr_(st.obj, key, info.collection(found))
            st.rels[key] = tuple(found)

    def _set_inverse(self, parents: dict[Any, ObjectState], child_states: list[ObjectState], child_keys: list[Any], inverse: RelationInfo) -> None:
        """Point each loaded child at its parent (the to-one inverse of the collection)."""
        inv_key = inverse.key
        inv_set = self.s.tracker.spec(inverse.source).setattr
        for cst, k, snap in zip(child_states, child_keys, rel_values(child_states, inv_key, None)):
            pst = parents.get(k)
            if pst is None:
                continue
            parent_obj = pst.obj
            # The loader already points a child at a parent it holds: skip those.
            if snap is not parent_obj:
                inv_set(cst.obj, inv_key, parent_obj)
                cst.rels[inv_key] = parent_obj

    def fetch_through(self, info: RelationInfo, keys: list[Any], groups: dict[Any, list[Any]], row_states: list[ObjectState]) -> None:
        """Targets of a BelongsToMany for these source keys, joined through the junction:
        ``groups`` receives the objects by source key, ``row_states`` every row's state."""
        s = self.s
        conn = s.connection
        tm = info.target
        loader = s.tracker.loader(tm)
        junction = info.junction.name if info.junction is not None else info.holder.table.name  # type: ignore[union-attr]
        n = len(info.fk_cols)
        procs = [conn.dialect.result_processor(c.type) for c in info.fk_cols]
        order = with_key(info.order, tm.pk)
        for chunk in self.chunks(keys, n):
            sql = conn.compiler.select_through(junction, info.fk_cols, info.other_cols, tm.table, loader.columns, len(chunk), order, tm.soft_delete)
            rows = conn.fetchall(sql, self.s.dialect.key_params(info.fk_cols, chunk))
            sts: list[ObjectState] = []
            s.load_rows(tm, [r[n:] for r in rows], sts)
            for row, cst in zip(rows, sts):
                vals = [v if p is None else p(v) for p, v in zip(procs, row[:n])]
                groups.setdefault(vals[0] if n == 1 else tuple(vals), []).append(cst.obj)
            row_states += sts

    # -- includes and lazy loads ----------------------------------------------------------------

    def load_tree(self, states: list[ObjectState], tree: PathTree) -> None:
        """Load every path of ``tree`` below ``states``: one query per segment per chunk."""
        for info, sub in tree.items():
            need = []
            key = info.key
            if info.kind.reference:
                for st, v in zip(states, rel_values(states, key, _MISSING)):
                    if st.status == PERSISTENT or st.status == DELETED:
                        # A reference is unloaded when it is a stand-in (see lazy.is_unloaded).
                        if v is _MISSING or (v is not None and GHOST_HOOK in type(v).__dict__):
                            need.append(st)
            else:
                for st, v in zip(states, rel_values(states, key, _MISSING)):
                    if (st.status == PERSISTENT or st.status == DELETED) and v is _MISSING:
                        need.append(st)
            loaded = self.load(need, info)
            if sub:
                # When every state needed the load, its members are what load() returned.
                self.load_tree(loaded if len(need) == len(states) else self._members(states, info), sub)

    def _members(self, states: list[ObjectState], info: RelationInfo) -> list[ObjectState]:
        out: dict[int, ObjectState] = {}
        st_map = self.s.tracker.states
        for st in states:
            value = getattr(st.obj, info.key, None)
            if value is None:
                continue
            items = value if info.to_many else (value,)
            for obj in items:
                found = st_map.get(id(obj))
                if found is not None:
                    out.setdefault(id(obj), found)
        return list(out.values())

    def lazy_collection(self, coll: Any) -> None:
        """First touch of an unloaded collection: load it for the whole cohort."""
        s = self.s
        st: ObjectState = coll.owner_state
        info: RelationInfo = coll.relation
        if s.closed or s.tracker.states.get(id(st.obj)) is not st:
            raise not_loaded_error(info.name, info.key, True)
        if s.lazy == "async" or (info.lazy or info.source.lazy or s.lazy) == "raise":
            # An async session never loads on touch, whatever the relation says: a load there
            # would be a blocking call hidden in an attribute read.
            raise not_loaded_error(info.name, info.key, False, awaited=s.lazy == "async")
        s.read()
        self.load_cohort(st, info)

    def load_cohort(self, st: ObjectState, info: RelationInfo) -> None:
        """Load a collection for ``st`` and every object of its cohort that has not loaded it."""
        cohort = st.cohort if isinstance(st.cohort, list) else [st]
        targets = [
            c for c in cohort
            if c.status in (PERSISTENT, DELETED) and is_unloaded(getattr(c.obj, info.key, None))
        ]
        if not any(c is st for c in targets):
            targets.append(st)
        with collector_paused(self.s):
            self.load(targets, info)


_MISSING: Any = object()


def with_key(order: list[tuple[Column, bool]], pk: list[Column]) -> list[tuple[Column, bool]]:
    """A collection's order, then its key (so ties are stable), each column once."""
    out = list(order)
    for c in pk:
        if not any(o is c for o, _ in out):
            out.append((c, False))
    return out
