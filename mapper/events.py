"""Statement events: what each statement sent, how long it took and what it touched.

Every statement goes through ``engine.Connection``; when anything watches statements, the
connection describes each one as a ``StatementEvent`` and hands it to two kinds of listener:

- *guards*, which run before the statement is sent and may refuse it by raising (a session's
  ``budget()`` blocks are guards: they count the statement, or refuse the one over the limit);
- *observers*, which run after it (``db.on_statement`` callbacks, and the SQL echo).

When nothing watches, the connection skips all of this (two empty-list tests per statement).
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from . import errors

__all__ = ["StatementEvent", "Budget", "Subscription", "EchoLog", "StatementCallback"]

log = logging.getLogger("mapper.sql")


class StatementEvent:
    """One statement sent to the database, as statement callbacks see it.

    Attributes:
        sql: the SQL text as sent to the driver (with its parameter markers).
        params: the bound parameters: a sequence, or a sequence of rows for an executemany.
        param_count: how many values were bound (every row of an executemany counted; an
            array bound as one parameter counts once).
        executemany: the rows of an executemany; 0 for a single statement.
        duration: seconds the driver took, the fetch included for a query read at once.
        rows: rows a query returned when it was read at once, else the driver's row count
            (rows changed by a write; -1 where the driver does not know, as SQLite for a
            cursor read later).
        control: a savepoint statement (``SAVEPOINT``, ``RELEASE``, ``ROLLBACK TO``): sent like
            any other, but budgets do not count it.
        error: the ``DatabaseError`` the statement raised, or None.
        thread: ``threading.get_ident()`` of the thread that sent it.
        route: ``"primary"`` or ``"replica"`` when the Database has replicas
            (``Database(url, replicas=[...])``), else None.
        server: the URL (password masked) of the server the statement went to.
    """

    __slots__ = (
        "sql", "params", "executemany", "duration", "rows", "control", "error", "thread", "_owner",
        "route", "server",
    )

    def __init__(
        self,
        sql: str,
        params: Any,
        executemany: int,
        control: bool,
        owner: weakref.ref[Any] | None,
        route: str | None = None,
        server: str = "",
    ) -> None:
        self.sql = sql
        self.params = params
        self.executemany = executemany
        self.control = control
        self.duration = 0.0
        self.rows = -1
        self.error: errors.DatabaseError | None = None
        self.thread = threading.get_ident()
        self._owner = owner
        self.route = route
        self.server = server

    @property
    def session(self) -> Any:
        """The Session that sent the statement; None for the Database's own (``create_all()``...)."""
        owner = self._owner
        return owner() if owner is not None else None

    @property
    def param_count(self) -> int:
        """How many values were bound (see the class docstring)."""
        params = self.params
        if not params:
            return 0
        if self.executemany:
            return sum(len(row) for row in params)
        return len(params)

    def __repr__(self) -> str:
        return (
            f"<StatementEvent {self.sql[:60]!r} params={self.param_count} rows={self.rows} "
            f"{self.duration * 1000:.3f} ms{' failed' if self.error is not None else ''}>"
        )


#: What ``db.on_statement`` takes: a callable of one ``StatementEvent``.
StatementCallback = Callable[[StatementEvent], None]


class Budget:
    """A statement budget, a guard on its session's statements: ``limit`` at most in its block.

    Attributes:
        limit: the most statements the block may send.
        used: statements sent inside the block so far.
    """

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def check(self, event: StatementEvent) -> None:
        """Refuse the statement over the limit, before it is sent.

        Raises:
            QueryBudgetExceeded: the budget is used up.
        """
        if self.used >= self.limit:
            sql = event.sql
            shown = sql if len(sql) <= 200 else sql[:200] + "..."
            msg = f"query budget of {self.limit} exceeded by statement {self.used + 1}: {shown}"
            raise errors.QueryBudgetExceeded(msg)

    def charge(self, event: StatementEvent) -> None:
        """Count a statement that every guard let through."""
        self.used += 1


class Subscription:
    """What ``db.on_statement(callback)`` returns: ``remove()`` stops the callbacks.

    Also a context manager: ``with db.on_statement(cb): ...`` removes ``cb`` when the block ends.
    """

    __slots__ = ("_observers", "_callback")

    def __init__(self, observers: list[StatementCallback], callback: StatementCallback) -> None:
        self._observers: list[StatementCallback] | None = observers
        self._callback = callback

    @property
    def active(self) -> bool:
        """Whether the callback still receives statements."""
        return self._observers is not None

    def remove(self) -> None:
        """Stop calling the callback (calling it again does nothing)."""
        observers, self._observers = self._observers, None
        if observers is not None:
            observers.remove(self._callback)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class EchoLog:
    """The SQL echo (``echo=True``): each statement, its parameters and its time on ``mapper.sql``.

    With replicas, each line ends with the route: ``[primary]`` or ``[replica <url>]``.
    """

    __slots__ = ()

    def __call__(self, event: StatementEvent) -> None:
        if event.error is not None:
            return
        ms = event.duration * 1000
        route = event.route
        where = "" if route is None else (" [primary]" if route == "primary" else f" [replica {event.server}]")
        if event.executemany:
            many = event.executemany
            params: Sequence[Any] | None = event.params
            shown = list(params[:10]) if params is not None else []
            more = f" ... and {many - len(shown)} more" if many > len(shown) else ""
            log.info("%s [executemany x%d] %r%s (%.3f ms)%s", event.sql, many, shown, more, ms, where)
        else:
            log.info("%s %r (%.3f ms)%s", event.sql, event.params, ms, where)
