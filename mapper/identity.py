"""The identity map: one object per (mapping, primary key) in a session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .mapping import ClassMapping
from .state import ObjectState

__all__ = ["IdentityMap"]


class IdentityMap:
    """Persistent objects by mapping and key; lookups never touch the database.

    An object of a mapping in a single-table hierarchy is registered under its own mapping and
    under each ancestor (a Dog under DogMapper and AnimalMapper), so a lookup by any class it
    is an instance of finds it, and one of a sibling class (a Cat by that key) does not. The
    listings (``states``, ``items``, ``mappings``, ``len``) show each object once, under its
    own mapping.
    """

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
        for a in state.mapping.ancestors:
            self.for_mapping(a)[state.key] = state

    def add_to_ancestors(self, states: list[ObjectState]) -> None:
        """Register freshly loaded states of a hierarchy under their ancestors too (a generated
        loader registers them under their own mapping only)."""
        for st in states:
            for a in st.mapping.ancestors:
                self.for_mapping(a)[st.key] = st

    def discard(self, state: ObjectState) -> None:
        """Remove a state if it is the one registered under its key."""
        m = self._maps.get(state.mapping)
        if m is not None and m.get(state.key) is state:
            del m[state.key]
        for a in state.mapping.ancestors:
            m = self._maps.get(a)
            if m is not None and m.get(state.key) is state:
                del m[state.key]

    def states(self) -> Iterator[ObjectState]:
        """Every registered state."""
        for cm, m in self.items():
            yield from m.values()

    def items(self) -> list[tuple[ClassMapping[Any], dict[Any, ObjectState]]]:
        """(mapping, key -> state) pairs of the mappings that hold at least one state (of their own)."""
        out = []
        for cm, m in self._maps.items():
            if not m:
                continue
            h = cm.hierarchy
            if h is not None and h.polymorphic:
                own = {k: st for k, st in m.items() if st.mapping is cm}
                if own:
                    out.append((cm, own))
            else:
                out.append((cm, m))
        return out

    def mappings(self) -> list[ClassMapping[Any]]:
        """Mappings that have at least one registered state (of their own)."""
        return [cm for cm, m in self.items()]

    def clear(self) -> None:
        """Forget every state (the per-mapping dicts stay: generated loaders hold them)."""
        for m in self._maps.values():
            m.clear()

    def __len__(self) -> int:
        return sum(len(m) for cm, m in self.items())
