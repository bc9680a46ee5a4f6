"""The identity map: one object per (mapping, primary key) in a session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .mapping import ClassMapping
from .state import ObjectState

__all__ = ["IdentityMap"]


class IdentityMap:
    """Persistent objects by mapping and key; lookups never touch the database."""

    __slots__ = ("_maps",)

    def __init__(self) -> None:
        self._maps: dict[ClassMapping[Any], dict[Any, ObjectState]] = {}

    def for_mapping(self, mapping: ClassMapping[Any]) -> dict[Any, ObjectState]:
        """The key -> state dict of one mapping (created on first use; loaders write to it)."""
        m = self._maps.get(mapping)
        if m is None:
            m = self._maps[mapping] = {}
        return m

    def get(self, mapping: ClassMapping[Any], key: Any) -> ObjectState | None:
        """The state with this key, or None."""
        m = self._maps.get(mapping)
        return None if m is None else m.get(key)

    def add(self, state: ObjectState) -> None:
        """Register a state under its key."""
        self.for_mapping(state.mapping)[state.key] = state

    def discard(self, state: ObjectState) -> None:
        """Remove a state if it is the one registered under its key."""
        m = self._maps.get(state.mapping)
        if m is not None and m.get(state.key) is state:
            del m[state.key]

    def states(self) -> Iterator[ObjectState]:
        """Every registered state."""
        for m in self._maps.values():
            yield from m.values()

    def items(self) -> list[tuple[ClassMapping[Any], dict[Any, ObjectState]]]:
        """(mapping, key -> state) pairs of the mappings that hold at least one state."""
        return [(cm, m) for cm, m in self._maps.items() if m]

    def mappings(self) -> list[ClassMapping[Any]]:
        """Mappings that have at least one registered state."""
        return [cm for cm, m in self._maps.items() if m]

    def clear(self) -> None:
        """Forget every state (the per-mapping dicts stay: generated loaders hold them)."""
        for m in self._maps.values():
            m.clear()

    def __len__(self) -> int:
        return sum(len(m) for m in self._maps.values())
