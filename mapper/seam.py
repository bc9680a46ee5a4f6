"""The seam between a session and what it drives: loaders, queries and accessors see this, never
the Session itself (as psycopg's ``abc.py`` describes what its collaborators need)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from .dialects.base import Dialect
    from .engine import Connection
    from .expressions import BoolExpr
    from .graph import GraphLoader
    from .mapping import ClassMapping
    from .schema import Column
    from .state import ObjectState
    from .uow.tracker import Tracker

__all__ = ["SessionSeam"]

T = TypeVar("T")


class SessionSeam(Protocol):
    """What loaders, queries and accessors need from the session that drives them.

    Attributes:
        tracker: the session's bookkeeping: states, identity map, pending lists.
        graph: the session's relation loader.
        lazy: the session's ``lazy`` setting ("select", "raise", or "async": never on touch).
        pause_gc: the Database's option: whether loads may pause the cyclic collector.
    """

    tracker: Tracker
    graph: GraphLoader
    lazy: str
    pause_gc: bool

    @property
    def closed(self) -> bool:
        """Whether the session is closed."""

    @property
    def connection(self) -> Connection:
        """The session's connection (no autoflush)."""

    @property
    def dialect(self) -> Dialect:
        """The Database's dialect."""

    def read(self) -> Connection:
        """Check the session, autoflush, and return its connection: what every read starts with."""

    def add(self, obj: object) -> None:
        """``session.add(obj)``."""

    def load_rows(self, m: ClassMapping[T], rows: Sequence[Sequence[Any]], row_states: list[ObjectState] | None = None) -> list[T]:
        """Objects for ``rows`` through the identity map; ``row_states`` receives their states."""

    def release_unused(self, states: list[ObjectState]) -> list[ObjectState]:
        """Let go of the unchanged objects of a streamed batch that nothing outside references."""

    def bulk_update(self, m: ClassMapping[Any], assignments: list[tuple[Column, Any]], where: BoolExpr | None) -> int:
        """One set-based UPDATE; held objects follow in memory. Returns the rows matched."""

    def bulk_delete(self, m: ClassMapping[Any], where: BoolExpr | None) -> int:
        """One set-based DELETE; held objects are marked deleted. Returns the rows matched."""
