"""Session lifecycle hooks: after a flush, before a commit, after a rollback; database-wide and per mapper.

A ``Database`` holds one ``Lifecycle``. Database-wide hooks take the session; a mapper's hook
methods (``after_flush``, ``before_commit``, ``after_rollback``) take each domain object of
that mapper the event concerns, as the flush hooks (``before_insert``...) do. For each event
the mappers' hooks run first, object by object, then the database-wide ones, in the order they
were registered. The session pays for none of this when no hook is defined.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from . import errors
from .mapping import ClassMapping
from .state import DETACHED, ObjectState

__all__ = ["Lifecycle", "SessionHook", "LIFECYCLE_HOOKS"]

#: What a database-wide lifecycle hook is: ``fn(session)``.
SessionHook = Callable[[Any], None]
#: The mapper hook methods this module calls.
LIFECYCLE_HOOKS = ("after_flush", "before_commit", "after_rollback")


class Lifecycle:
    """The lifecycle hooks of one Database and of its mappers.

    Attributes:
        after_flush, before_commit, after_rollback: the database-wide hooks, in order.
        tracks: some mapper has ``before_commit`` or ``after_rollback``: the session keeps the
            states each transaction writes, so that those hooks can be given their objects.
    """

    def __init__(self, mappings: Iterable[ClassMapping[Any]]) -> None:
        self.after_flush: list[SessionHook] = []
        self.before_commit: list[SessionHook] = []
        self.after_rollback: list[SessionHook] = []
        self._mapped = {name: {cm: cm.hooks[name] for cm in mappings if name in cm.hooks} for name in LIFECYCLE_HOOKS}
        self.tracks = bool(self._mapped["before_commit"] or self._mapped["after_rollback"])

    def add(self, event: str, fn: SessionHook) -> SessionHook:
        """Register a database-wide hook for ``event`` (one of ``LIFECYCLE_HOOKS``).

        Raises:
            ConfigurationError: ``fn`` is not callable.
        """
        if not callable(fn):
            msg = f"db.{event}() takes a callable fn(session), got {fn!r}"
            raise errors.ConfigurationError(msg)
        hooks: list[SessionHook] = getattr(self, event)
        hooks.append(fn)
        return fn

    def wants_flushed(self) -> bool:
        """Whether a flush must list the states it wrote (for the hooks, or to track them)."""
        return self.tracks or bool(self._mapped["after_flush"] or self.after_flush)

    def has_before_commit(self) -> bool:
        """Whether anything runs before a COMMIT (the session then flushes again afterwards)."""
        return bool(self.before_commit or self._mapped["before_commit"])

    def flushed(self, session: Any, written: list[ObjectState]) -> None:
        """A flush wrote these states: run the mappers' ``after_flush``, then the database's."""
        self._each("after_flush", written)
        for hook in list(self.after_flush):
            hook(session)

    def committing(self, session: Any, written: list[ObjectState]) -> None:
        """About to COMMIT a transaction that wrote these states."""
        self._each("before_commit", written)
        for hook in list(self.before_commit):
            hook(session)

    def rolled_back(self, session: Any, written: list[ObjectState]) -> None:
        """A transaction that wrote these states was rolled back, in the database and in memory."""
        self._each("after_rollback", written, detached_too=True)
        for hook in list(self.after_rollback):
            hook(session)

    def _each(self, name: str, states: list[ObjectState], detached_too: bool = False) -> None:
        hooks = self._mapped[name]
        if not hooks:
            return
        seen: set[int] = set()
        for st in states:
            hook = hooks.get(st.mapping)
            obj = st.obj
            # A state the session let go of (expunged, closed) has no object to show.
            if hook is None or obj is None or id(st) in seen or (st.status == DETACHED and not detached_too):
                continue
            seen.add(id(st))
            hook(obj)
