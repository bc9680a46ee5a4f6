"""Hydration: rows into domain objects through the identity map.

Row hydration is the hottest path in the framework, so each mapping gets a loader
function generated once per Database (as attrs generates ``__init__``): straight-line
attribute stores, result conversion only for the columns whose type needs it, and the
identity-map check before any object is built.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from .dialects.base import Dialect
from .mapping import ClassMapping
from .schema import Column
from .state import GHOST, PERSISTENT, ObjectState, SnapshotSpec

__all__ = ["Loader", "LoadFn"]

LoadFn = Callable[[Sequence[Sequence[Any]], dict[Any, ObjectState], dict[int, ObjectState], list[ObjectState]], list[Any]]


class Loader:
    """Builds objects of one mapping from rows of ``columns`` (all mapped columns, in order).

    Attributes:
        columns: the columns a SELECT must return, in order.
        load: ``load(rows, identity_dict, states, fresh) -> objects`` (generated); states
            built or filled from these rows are appended to ``fresh``.
    """

    def __init__(self, mapping: ClassMapping[Any], dialect: Dialect, spec: SnapshotSpec) -> None:
        self.mapping = mapping
        self.spec = spec
        self.columns: list[Column] = list(mapping.columns)
        self.procs = [dialect.result_processor(c.type) for c in self.columns]
        self.load: LoadFn = self._generate()

    def convert_row(self, row: Sequence[Any]) -> list[Any]:
        """Python values of one row (for refresh)."""
        return [p(v) if p is not None else v for p, v in zip(self.procs, row)]

    def _generate(self) -> LoadFn:
        m = self.mapping
        ns: dict[str, Any] = {
            "ObjectState": ObjectState,
            "PERSISTENT": PERSISTENT,
            "GHOST": GHOST,
            "mapping": m,
            "cls": m.cls,
            "new": object.__new__ if m.plain_new else m.cls.__new__,
            "_setattr": object.__setattr__,
            "deepcopy": copy.deepcopy,
            "on_load": m.on_load,
        }
        index = {c.key: i for i, c in enumerate(self.columns)}
        lines = [
            "def load(rows, imap, states, fresh):",
            "    out = []",
            "    append = out.append",
            "    get = imap.get",
            "    for row in rows:",
        ]
        # Convert each column once into a local.
        for i, p in enumerate(self.procs):
            if p is not None:
                ns[f"p{i}"] = p
                lines.append(f"        v{i} = p{i}(row[{i}])")
            else:
                lines.append(f"        v{i} = row[{i}]")
        pk_idx = [index[c.key] for c in m.pk]
        key_expr = f"v{pk_idx[0]}" if len(pk_idx) == 1 else "(" + ", ".join(f"v{i}" for i in pk_idx) + ")"
        fill: list[str] = []
        for c in m.attr_columns:
            i = index[c.key]
            if m.direct_setattr:
                fill.append(f"obj.{c.key} = v{i}")
            else:
                fill.append(f"_setattr(obj, {c.key!r}, v{i})")
        for j, d in enumerate(m.field_defaults):
            if d.factory is not None:
                ns[f"f{j}"] = d.factory
                value = f"f{j}(obj)" if d.takes_self else f"f{j}()"
            else:
                ns[f"d{j}"] = d.value
                value = f"d{j}"
            if m.direct_setattr:
                fill.append(f"obj.{d.name} = {value}")
            else:
                fill.append(f"_setattr(obj, {d.name!r}, {value})")
        snap_items = [f"deepcopy(v{index[c.key]})" if c.type.mutable else f"v{index[c.key]}" for c in m.attr_columns]
        snap = "(" + "".join(f"{x}, " for x in snap_items) + ")"
        hidden = "[" + ", ".join(f"v{index[c.key]}" for c in m.hidden_columns) + "]" if m.hidden_columns else "None"
        lines += [
            f"        key = {key_expr}",
            "        st = get(key)",
            "        if st is not None:",
            "            if st.status != GHOST:",
            "                append(st.obj)",
            "                continue",
            # A stand-in created for a reference: make it the real class and fill it.
            "            obj = st.obj",
            "            _setattr(obj, '__class__', cls)",
            *(f"            {line}" for line in fill),
            f"            st.snap = {snap}",
            f"            st.hidden = {hidden}",
            "            st.hsnap = None if st.hidden is None else tuple(st.hidden)",
            "            st.committed = (st.snap, st.hsnap)",
            "            st.status = PERSISTENT",
            "        else:",
            "            obj = new(cls)",
            *(f"            {line}" for line in fill),
            f"            st = ObjectState(obj, mapping, key, {snap}, {hidden}, PERSISTENT)",
            "            imap[key] = st",
            "            states[id(obj)] = st",
            "        fresh.append(st)",
        ]
        if m.on_load is not None:
            lines.append("        on_load(obj)")
        lines += ["        append(obj)", "    return out"]
        src = "\n".join(lines)
        exec(compile(src, f"<mapper loader {m.name}>", "exec"), ns)  # noqa: S102 - generated from the mapping only
        fn: LoadFn = ns["load"]
        return fn
