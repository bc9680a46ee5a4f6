"""What every system offers the harness."""

from __future__ import annotations

from typing import Any

from ..backends import Backend


class System:
    #: Short name used on the command line and in the tables.
    name = ""
    #: Human-readable name and version, for the report.
    label = ""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        #: Statements sent during the last workload call (BEGIN/COMMIT not counted).
        self.queries = 0
        #: The domain classes this system builds (the attrs classes of benchmarks.schema).
        self.classes: Any = None
        #: Remarks for the report footnotes (collected once per run).
        self.notes: set[str] = set()

    def refers_to(self, child: Any, attr: str, parent: Any) -> bool:
        """Whether ``child.<attr>`` is ``parent`` (the inverse side of a loaded relation)."""
        return getattr(child, attr) is parent

    def recover(self) -> None:
        """After a failed run: leave no transaction open."""

    def close(self) -> None:
        """Release connections."""
