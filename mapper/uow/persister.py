"""What the flush needs per mapping (bind processors, hooks, generated row collectors), the
journal of attribute writes it undoes on failure, and the set-based writes on unheld rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..codegen import compile_function
from ..dialects.base import Dialect, Processor
from ..mapping import ClassMapping, RelationInfo
from ..schema import Column, Table
from ..state import ObjectState, SnapshotSpec, compare_columns
from .changes import compute_changes

__all__ = ["Persister", "Journal", "ParentOp", "old_value"]


def old_value(st: ObjectState, spec: SnapshotSpec, col: Column) -> Any:
    """A column's value as of the last load or flush (its snapshot)."""
    pos = spec.position.get(col.key)
    if pos is not None:
        assert st.snap is not None
        return st.snap[pos]
    assert st.hsnap is not None
    return st.hsnap[spec.hidden_position[col.key]]


class Journal:
    """Attribute writes made during a flush, undone in reverse if the flush fails."""

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: list[tuple[SnapshotSpec, ObjectState, str, Any]] = []

    def set(self, spec: SnapshotSpec, state: ObjectState, key: str, value: Any) -> None:
        """Set a column value on an object (attribute or hidden), remembering the old one."""
        self.entries.append((spec, state, key, spec.get(state, key)))
        spec.set(state, key, value)

    def undo(self) -> None:
        """Put back every value this journal wrote."""
        for spec, state, key, old in reversed(self.entries):
            spec.set(state, key, old)
        self.entries.clear()



class Persister:
    """Per-mapping data the flush needs, computed once per Database."""

    def __init__(self, mapping: ClassMapping[Any], dialect: Dialect, spec: SnapshotSpec) -> None:
        self.mapping = mapping
        self.spec = spec
        self.binds: dict[str, Processor | None] = {c.key: dialect.bind_processor(c.type) for c in mapping.columns}
        self.hooks = mapping.hooks
        #: Where each column's value lives: (True, attribute position) or (False, hidden position).
        self.sources: list[tuple[bool, int]] = [
            (True, spec.position[c.key]) if c.key in spec.position else (False, spec.hidden_position[c.key])
            for c in mapping.columns
        ]
        self.bind_list: list[Processor | None] = [self.binds[c.key] for c in mapping.columns]
        self.all_names: tuple[str, ...] = tuple(c.name for c in mapping.columns)
        ts = mapping.timestamps
        self.created_at = mapping.by_key.get("created_at") if ts else None
        self.updated_at = mapping.by_key.get("updated_at") if ts else None
        # The common insert: the generated key is None and every other None is a plain NULL.
        # Positions where a None means more (a default, a version, a timestamp, a server
        # default, a key that must be set) send the row down the general path instead.
        auto = mapping.autoinc
        self.auto_pos: int | None = next((i for i, c in enumerate(mapping.columns) if c is auto), None)
        self.special: list[int] = [
            i
            for i, c in enumerate(mapping.columns)
            if c is not auto
            and (c.has_default or c.version or c is self.created_at or c is self.updated_at
                 or c.server_default is not None or c.primary_key)
        ]
        self.keep = [i for i in range(len(mapping.columns)) if i != self.auto_pos]
        self.keep_names = tuple(self.all_names[i] for i in self.keep)
        self.auto_returning = (auto.name,) if auto is not None else ()
        self.collect: Callable[[ObjectState], tuple[tuple[str, ...], list[Any], tuple[str, ...]] | None] = self._generate_collect()
        #: Columns in the order of the snapshot comparison: attribute columns, then hidden ones.
        self.compared: list[Column] = [*mapping.attr_columns, *mapping.hidden_columns]
        self._update_names: dict[Any, tuple[str, ...]] = {}
        self.pk_binds = [(k, self.binds[k.key]) for k in mapping.pk]
        #: ``update_row(state, journal, now)``: (the row's group, its UPDATE parameters: the
        #: changed values, the key as last loaded or flushed, the old version), or None when
        #: nothing changed; ``update_names(group)`` names the group's columns. One interface,
        #: two implementations: generated straight-line comparisons where a row's change is
        #: only its changed columns; the general rules (a version to check and bump,
        #: ``updated_at``, a ``before_update`` hook) otherwise.
        self.update_row: Callable[[ObjectState, Journal, Any], tuple[Any, list[Any]] | None] = (
            self._generate_update_row()
            if mapping.version is None and self.updated_at is None and "before_update" not in self.hooks
            else self._general_update_row
        )

    def _generate_collect(self) -> Callable[[ObjectState], tuple[tuple[str, ...], list[Any], tuple[str, ...]] | None]:
        """``collect(state)``: (columns, values, returning) of the common INSERT, else None.

        Generated per mapping, like the loader: the column values are read straight off the
        object (and its hidden values), the binds applied inline. Common means: every value
        set, or only the generated key missing while every column whose None means more
        (defaults, versions, timestamps, keys) is set. Anything else takes the general path.
        """
        ns: dict[str, Any] = {"ALL": self.all_names, "KEEP": self.keep_names, "AUTO": self.auto_returning}
        lines = ["def collect(st):", "    o = st.obj", "    h = st.hidden"]
        for i, (attr, pos) in enumerate(self.sources):
            name = self.mapping.columns[i].key
            lines.append(f"    v{i} = o.{name}" if attr else f"    v{i} = h[{pos}]")

        def bound(i: int) -> str:
            b = self.bind_list[i]
            if b is None:
                return f"v{i}"
            ns[f"b{i}"] = b
            return f"(None if v{i} is None else b{i}(v{i}))"

        n = len(self.sources)
        if self.auto_pos is not None:
            a = self.auto_pos
            lines.append(f"    if v{a} is None:")
            if self.special:
                lines.append("        if " + " or ".join(f"v{i} is None" for i in self.special) + ":")
                lines.append("            return None")
            lines.append("        return KEEP, [" + ", ".join(bound(i) for i in self.keep) + "], AUTO")
        lines.append("    if " + " or ".join(f"v{i} is None" for i in range(n)) + ":")
        lines.append("        return None")
        lines.append("    return ALL, [" + ", ".join(bound(i) for i in range(n)) + "], ()")
        fn: Callable[[ObjectState], tuple[tuple[str, ...], list[Any], tuple[str, ...]] | None] = compile_function(
            "\n".join(lines), ns, owner=self.mapping.name, name="collect"
        )
        return fn

    def _generate_update_row(self) -> Callable[[ObjectState, Journal, Any], tuple[Any, list[Any]] | None]:
        """``update_row(state, journal, now)``, generated per mapping like ``collect``: one
        comparison per column against the snapshot (identity first), the changed values bound
        inline, then the key as it was at the last load or flush. Its group is a mask: bit ``i``
        is ``compared[i]``. It writes nothing to the object, so it needs no journal."""
        m = self.mapping
        ns: dict[str, Any] = {}

        def bound(i: int, value: str) -> str:
            b = self.binds[self.compared[i].key]
            if b is None:
                return value
            ns[f"b{i}"] = b
            return f"(None if {value} is None else b{i}({value}))"

        def record(i: int) -> list[str]:
            return [f"mask |= {1 << i}", f"params.append({bound(i, 'v')})"]

        n = len(m.attr_columns)
        lines = ["def update_row(st, journal, now):", "    o = st.obj", "    s = st.snap", "    mask = 0", "    params = []", *compare_columns(m, record)]
        lines += ["    if not mask:", "        return None"]
        for k in m.pk:
            i = next(i for i, c in enumerate(self.compared) if c is k)
            old = f"s[{i}]" if i < n else f"st.hsnap[{i - n}]"
            lines.append(f"    params.append({bound(i, old)})")
        lines.append("    return mask, params")
        fn: Callable[[ObjectState, Journal, Any], tuple[Any, list[Any]] | None] = compile_function(
            "\n".join(lines), ns, owner=m.name, name="update_row"
        )
        return fn

    def _general_update_row(self, st: ObjectState, journal: Journal, now: Any) -> tuple[Any, list[Any]] | None:
        """``update_row`` where more than the changed columns is written: the ``before_update``
        hook may change the object first, ``updated_at`` takes the flush's instant, and a version
        column is checked (its old value) and bumped, unless the domain set the next one. Its
        group is the tuple of column names."""
        spec = self.spec
        cs = compute_changes(st, spec)
        if cs is None:
            return None
        before = self.hooks.get("before_update")
        if before is not None:
            before(st.obj)
            cs = compute_changes(st, spec)
            if cs is None:
                return None
        cols = list(cs.columns)
        vals = list(cs.values)
        # Columns overload ==, so membership is tested by identity.
        if self.updated_at is not None and not any(c is self.updated_at for c in cols):
            journal.set(spec, st, self.updated_at.key, now)
            cols.append(self.updated_at)
            vals.append(now)
        version = self.mapping.version
        old_version = None
        if version is not None:
            old_version = old_value(st, spec, version)
            if not any(c is version for c in cols):  # else the domain set the next version itself
                new_version = (old_version or 0) + 1
                journal.set(spec, st, version.key, new_version)
                cols.append(version)
                vals.append(new_version)
        binds = self.binds
        params = [v if v is None or (b := binds[c.key]) is None else b(v) for c, v in zip(cols, vals)]
        for k, b in self.pk_binds:
            v = old_value(st, spec, k)
            params.append(v if b is None or v is None else b(v))
        if version is not None:
            params.append(self.bind(version, old_version))
        return tuple(c.name for c in cols), params

    def update_names(self, group: Any) -> tuple[str, ...]:
        """The column names of an ``update_row`` group, in order (a mask, or the names themselves)."""
        if type(group) is tuple:
            return group
        names = self._update_names.get(group)
        if names is None:
            names = self._update_names[group] = tuple(c.name for i, c in enumerate(self.compared) if group >> i & 1)
        return names

    def bind(self, col: Column, value: Any) -> Any:
        """The driver value of one column value."""
        b = self.binds[col.key]
        return value if b is None or value is None else b(value)


class ParentOp:
    """A set-based write on children that the session does not hold, for parents being deleted.

    Attributes:
        kind: "delete" the rows, "nullify" their foreign key, or "check" that none exist.
        table: the children's table; cols: their foreign-key columns; keys: the parents' keys.
        info: the relation, for messages.
    """

    __slots__ = ("kind", "table", "cols", "keys", "info")

    def __init__(self, kind: str, table: Table, cols: list[Column], keys: list[Any], info: RelationInfo) -> None:
        self.kind = kind
        self.table = table
        self.cols = cols
        self.keys = keys
        self.info = info
