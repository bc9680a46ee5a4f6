"""What every system offers the harness, and the statement counter of mapper's systems."""

from __future__ import annotations

from typing import Any

from mapper import StatementEvent

from ..backends import Backend
from ..workloads import VerificationError


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


class StatementCounter:
    """Counts a Database's statements through its public hook: ``db.on_statement(counter.count)``.

    Savepoint statements (``event.control``) are left out, as budgets and ``query_count`` leave
    them out; BEGIN and COMMIT never reach the hook (they are transaction control on every
    backend), so the count is the one the report's footnote describes.
    """

    __slots__ = ("sent",)

    def __init__(self) -> None:
        #: Statements seen since the counter was made.
        self.sent = 0

    def count(self, event: StatementEvent) -> None:
        """The callback: one more statement, unless it is a savepoint statement."""
        if not event.control:
            self.sent += 1


class StatementCountMismatch(VerificationError):
    """The hook saw another number of statements than the session counted."""


def check_count(system: str, hook: int, session: int) -> int:
    """``hook``, after checking that it equals the session's own ``query_count``.

    Raises:
        StatementCountMismatch: the two differ; the run fails, as a failed check does.
    """
    if hook != session:
        msg = (
            f"{system}: db.on_statement saw {hook} statement(s) where session.query_count says {session}"
        )
        raise StatementCountMismatch(msg)
    return hook
