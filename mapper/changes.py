"""Change sets: what differs between a managed object and its snapshot (pure: no I/O)."""

from __future__ import annotations

from typing import Any

from .schema import Column
from .state import ObjectState, SnapshotSpec

__all__ = ["ChangeSet", "compute_changes"]


class ChangeSet:
    """The changed columns of one persistent object.

    Attributes:
        state: the object's state.
        columns: changed columns, attribute columns first, in mapping order.
        values: their new values, in the same order.
        current: all attribute-column values now (the next snapshot, before copying).
    """

    __slots__ = ("state", "columns", "values", "current")

    def __init__(self, state: ObjectState, columns: list[Column], values: list[Any], current: tuple[Any, ...]) -> None:
        self.state = state
        self.columns = columns
        self.values = values
        self.current = current

    def __repr__(self) -> str:
        return f"<ChangeSet {self.state!r} {[c.key for c in self.columns]}>"


def compute_changes(state: ObjectState, spec: SnapshotSpec) -> ChangeSet | None:
    """The ChangeSet of a persistent object, or None when nothing changed.

    Values compare by identity first, then ``==``; the tuple comparison does both in C,
    so an unchanged object costs one attrgetter call and one tuple comparison.
    """
    current = spec.current(state.obj)
    snap = state.snap
    hidden = state.hidden
    same_attrs = current == snap
    if same_attrs and (hidden is None or hidden == state.hsnap):
        return None
    columns: list[Column] = []
    values: list[Any] = []
    mapping = spec.mapping
    if not same_attrs:
        assert snap is not None
        attr_columns = mapping.attr_columns
        for i, (new, old) in enumerate(zip(current, snap)):
            if new is not old and new != old:
                columns.append(attr_columns[i])
                values.append(new)
    if hidden is not None and state.hsnap is not None:
        hidden_columns = mapping.hidden_columns
        for i, (new, old) in enumerate(zip(hidden, state.hsnap)):
            if new is not old and new != old:
                columns.append(hidden_columns[i])
                values.append(new)
    if not columns:
        return None
    return ChangeSet(state, columns, values, current)
