"""``session.related(obj, name)``: Sequelize-style accessors over one object's relation.

Writes (``add``, ``remove``, ``set``) are recorded in the unit of work like attribute edits and
reach the database at the next flush; reads (``all``, ``count``, ``has``) run one statement
each (after the autoflush) and do not mark the collection as loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import errors
from .expressions import And, Compare, Literal
from .graph import with_key
from .inheritance import scope_condition
from .lazy import is_unloaded, set_member
from .mapping import RelationInfo
from .sql import CountStar, Select
from .state import PENDING, ObjectState

if TYPE_CHECKING:
    from .seam import SessionSeam

__all__ = ["CollectionAccessor", "ReferenceAccessor"]

T = TypeVar("T")


class _Accessor:
    def __init__(self, session: SessionSeam, state: ObjectState, info: RelationInfo) -> None:
        self._s = session
        self._st = state
        self._info = info

    def _parent_key(self) -> list[Any] | None:
        """The parent's key values after the autoflush (None while it has no row)."""
        s, st = self._s, self._st
        s.read()
        if st.status == PENDING:
            return None
        spec = s.tracker.spec(st.mapping)
        return [spec.get(st, c.key) for c in self._info.ref_cols]

    def _where_children(self, key: list[Any]) -> Any:
        conds = [Compare(c, "=", Literal(v, c.type)) for c, v in zip(self._info.fk_cols, key)]
        return conds[0] if len(conds) == 1 else And(tuple(conds))

    def _check_target(self, obj: object) -> None:
        if not isinstance(obj, self._info.target.cls):
            msg = (
                f"{self._info.name} takes {self._info.target.cls.__name__} objects, got "
                f"{type(obj).__name__} {obj!r}"
            )
            raise errors.QueryError(msg)

    def _new_target(self, fields: dict[str, Any]) -> Any:
        cls = self._info.target.cls
        try:
            obj = cls(**fields)
        except TypeError as exc:
            msg = f"{self._info.name}.create(): {cls.__name__}({', '.join(fields)}) failed: {exc}"
            raise errors.QueryError(msg) from None
        self._s.add(obj)
        return obj


class CollectionAccessor(_Accessor, Generic[T]):
    """Accessors of a HasMany or BelongsToMany relation of one object."""

    def all(self, cohort: bool = False) -> list[T]:
        """The related objects, read with one statement (identity-mapped; the collection stays as it is).

        Args:
            cohort: when the collection is not loaded, load it instead, for every object of
                this one's cohort (one statement, as the first touch of an unloaded collection
                does in a sync session), and return its members; an async session's accessor
                reads this way.
        """
        key = self._parent_key()
        if key is None:
            return list(getattr(self._st.obj, self._info.key) or [])
        s, info = self._s, self._info
        if cohort and is_unloaded(getattr(self._st.obj, info.key, None)):
            s.read()
            s.graph.load_cohort(self._st, info)
            return list(getattr(self._st.obj, info.key))
        graph = s.graph
        pk = key[0] if len(key) == 1 else tuple(key)
        if info.kind.links:
            groups: dict[Any, list[Any]] = {}
            graph.fetch_through(info, [pk], groups, [])
            return list(groups.get(pk, []))
        order = with_key(info.order, info.target.pk)
        return graph.fetch(info.target, info.fk_cols, [pk], order)

    def count(self) -> int:
        """How many objects are related (one ``SELECT count(*)``)."""
        key = self._parent_key()
        if key is None:
            value = getattr(self._st.obj, self._info.key)
            return 0 if value is None or is_unloaded(value) else len(value)
        info = self._info
        table = info.junction.name if info.junction is not None else info.holder.table.name  # type: ignore[union-attr]
        conn = self._s.connection
        where = self._where_children(key)
        if not info.kind.links and info.target.hierarchy is not None:
            where = And((where, *scope_condition(info.target)))  # a collection of a subclass
        sql, params = conn.compiler.count(Select(table, [CountStar()], where))
        return int(conn.fetchall(sql, params)[0][0])

    def has(self, obj: object) -> bool:
        """Whether ``obj`` is related (one statement)."""
        self._check_target(obj)
        key = self._parent_key()
        s, info = self._s, self._info
        other = s.tracker.lookup(obj)
        if key is None or other is None or other.status == PENDING:
            value = getattr(self._st.obj, info.key)
            return value is not None and not is_unloaded(value) and any(x is obj for x in value)
        ospec = s.tracker.spec(other.mapping)
        if info.kind.links:
            cols = info.other_cols
            vals = [ospec.get(other, c.key) for c in info.other_ref_cols]
            table = info.junction.name if info.junction is not None else info.holder.table.name  # type: ignore[union-attr]
        else:
            cols = list(info.target.pk)
            vals = [ospec.get(other, c.key) for c in cols]
            table = info.target.table.name
        conds = [self._where_children(key)] + [Compare(c, "=", Literal(v, c.type)) for c, v in zip(cols, vals)]
        conn = s.connection
        sql, params = conn.compiler.exists(Select(table, [CountStar()], And(tuple(conds))))
        return bool(conn.fetchall(sql, params))

    def add(self, *objs: object) -> None:
        """Relate ``objs`` (written at the next flush; a loaded collection is updated now)."""
        for obj in objs:
            self._check_target(obj)
        value = getattr(self._st.obj, self._info.key)
        if value is not None and not is_unloaded(value):
            for obj in objs:
                set_member(value, obj, True)
            return
        for obj in objs:
            if self._s.tracker.lookup(obj) is None:
                self._s.add(obj)
            self._s.tracker.relation_ops.append((True, self._st.obj, self._info, obj))

    def remove(self, *objs: object) -> None:
        """Unrelate ``objs`` (the default cascade nulls the key; "orphan" deletes the child)."""
        for obj in objs:
            self._check_target(obj)
        value = getattr(self._st.obj, self._info.key)
        if value is not None and not is_unloaded(value):
            for obj in objs:
                set_member(value, obj, False)
            return
        for obj in objs:
            self._s.tracker.relation_ops.append((False, self._st.obj, self._info, obj))

    def set(self, objs: Any) -> None:
        """Make ``objs`` exactly the related objects (an unloaded collection is loaded first)."""
        items = list(objs)
        for obj in items:
            self._check_target(obj)
        value = getattr(self._st.obj, self._info.key)
        if value is None or is_unloaded(value):
            if self._st.status != PENDING:
                self._s.read()
                self._s.graph.load([self._st], self._info)
            value = getattr(self._st.obj, self._info.key)
        if value is None:
            self._s.tracker.spec(self._st.mapping).setattr(self._st.obj, self._info.key, self._info.collection(items))
        elif isinstance(value, set):
            value.clear()
            value.update(items)
        else:
            value[:] = items

    def create(self, **fields: Any) -> T:
        """Build a target with its constructor, add it to the session and relate it."""
        obj = self._new_target(fields)
        self.add(obj)
        return obj  # type: ignore[no-any-return]


class ReferenceAccessor(_Accessor, Generic[T]):
    """Accessors of a BelongsTo or HasOne relation of one object."""

    def get(self) -> T | None:
        """The related object (a reference not loaded yet is loaded with its cohort)."""
        value = getattr(self._st.obj, self._info.key)
        if value is not None and is_unloaded(value):
            value.__class__  # noqa: B018 - touching the stand-in loads it
            getattr(value, self._info.target.pk[0].key)
        return value  # type: ignore[no-any-return]

    def set(self, obj: T | None) -> None:
        """Relate ``obj`` (or None), written at the next flush."""
        if obj is not None:
            self._check_target(obj)
        self._s.tracker.spec(self._st.mapping).setattr(self._st.obj, self._info.key, obj)

    def create(self, **fields: Any) -> T:
        """Build a target with its constructor, add it to the session and relate it."""
        obj = self._new_target(fields)
        self.set(obj)
        return obj  # type: ignore[no-any-return]
