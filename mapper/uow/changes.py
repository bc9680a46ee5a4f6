"""Change sets: what differs between a managed object and its snapshot (pure: no I/O)."""

from __future__ import annotations

from typing import Any

from ..schema import Column
from ..state import ObjectState, SnapshotSpec

__all__ = ["ChangeSet", "compute_changes"]


class ChangeSet:
    """The changed columns of one persistent object.

    Attributes:
        state: the object's state.
        columns: changed columns, attribute columns first, in mapping order.
        values: their new values, in the same order.
    """

    __slots__ = ("state", "columns", "values")

    def __init__(self, state: ObjectState, columns: list[Column], values: list[Any]) -> None:
        self.state = state
        self.columns = columns
        self.values = values

    def __repr__(self) -> str:
        return f"<ChangeSet {self.state!r} {[c.key for c in self.columns]}>"


def compute_changes(state: ObjectState, spec: SnapshotSpec) -> ChangeSet | None:
    """The ChangeSet of a persistent object, or None when nothing changed.

    Values compare by identity first, then ``==``, through the mapping's generated ``diff``
    (see ``SnapshotSpec``), so an unchanged object costs one straight-line pass.
    """
    assert state.snap is not None, "only states with a snapshot have changes"
    found = spec.diff(state)
    if found is None:
        return None
    return ChangeSet(state, found[0], found[1])
