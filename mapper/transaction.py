"""Transactions that re-run themselves: ``db.transaction(retries=N)``.

A serialization failure or a deadlock is the database saying "run this again": the work was
rolled back and nothing of it was kept. This module re-runs a unit of work in a fresh session
when that happens, with exponential backoff and jitter, and lets every other error through.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from . import errors
from .session import note_failed_rollback

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Attempt", "Transaction", "is_retryable"]

P = ParamSpec("P")
R = TypeVar("R")


def is_retryable(exc: BaseException, extra: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether re-running the unit of work that raised ``exc`` is the right answer.

    True for serialization failures and deadlocks (``DatabaseError.retryable``) and for the
    exception types the caller opted into with ``retry_on``; false for everything else.
    """
    if isinstance(exc, errors.DatabaseError) and exc.retryable:
        return True
    return bool(extra) and isinstance(exc, extra)


class Attempt:
    """One run of a unit of work: a context manager that yields a fresh session.

    A clean exit commits. A retryable failure (in the block or at commit) is rolled back and
    swallowed so that the loop over ``db.transaction(retries=N)`` runs the next attempt; on the
    last attempt it propagates. Any other error is rolled back and propagates at once.
    """

    __slots__ = ("_tx", "number", "last", "session", "succeeded", "error")

    def __init__(self, tx: Transaction, number: int, last: bool) -> None:
        self._tx = tx
        self.number = number
        self.last = last
        self.session: Session | None = None
        self.succeeded = False
        self.error: BaseException | None = None

    def __enter__(self) -> Session:
        self.session = self._tx.open_session()
        return self.session

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        session = self.session
        assert session is not None, "Attempt.__exit__ without __enter__"
        try:
            if exc is None:
                try:
                    session.commit()
                except BaseException as commit_exc:
                    if not self._swallow(session, commit_exc):
                        raise
                    return False
                self.succeeded = True
                return False
            return self._swallow(session, exc)
        finally:
            session.close()

    def _swallow(self, session: Session, exc: BaseException) -> bool:
        """Roll back after ``exc``; True when it is retryable and another attempt will follow."""
        self.error = exc
        if not session.closed:
            try:
                session.rollback()
            except Exception as failure:  # noqa: BLE001 - the connection is gone; ``exc`` is what counts
                note_failed_rollback(exc, failure)
        return not self.last and is_retryable(exc, self._tx.retry_on)


class Transaction:
    """A unit of work run in its own session, committed at the end, re-run on retryable errors.

    Made by :meth:`Database.transaction`. Three ways to use it:

    * ``@db.transaction(retries=3)`` on a function whose first parameter is the session; each
      call runs it (again, on a retryable failure) and returns its result.
    * ``for attempt in db.transaction(retries=3):`` then ``with attempt as session:``; the
      loop ends after the first attempt that commits.
    * ``with db.transaction() as session:`` for a single attempt (``retries=0``): a with-block
      cannot run its body a second time, so retries there are refused.
    """

    def __init__(
        self,
        open_session: Callable[[], Session],
        *,
        retries: int,
        backoff: float,
        max_backoff: float,
        retry_on: tuple[type[BaseException], ...],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            msg = f"transaction(retries={retries!r}): retries must be an int >= 0"
            raise errors.ConfigurationError(msg)
        for name, value in (("backoff", backoff), ("max_backoff", max_backoff)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                msg = f"transaction({name}={value!r}): use a number of seconds >= 0"
                raise errors.ConfigurationError(msg)
        for klass in retry_on:
            if not (isinstance(klass, type) and issubclass(klass, BaseException)):
                msg = f"transaction(retry_on=...): {klass!r} is not an exception class"
                raise errors.ConfigurationError(msg)
        self.open_session = open_session
        self.retries = retries
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.retry_on = retry_on
        self._sleep = sleep
        self._single: Attempt | None = None
        #: Attempts made by the last run (1 when the first one committed). A decorated function
        #: shared by threads shares this too; in the loop form ``attempt.number`` is per run.
        self.attempts = 0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts: exponential, capped, jittered.

        ``backoff * 2**(failures-1)``, at most ``max_backoff``, times a random 0.5 to 1: the
        jitter keeps two transactions that deadlocked each other from waking at the same
        moment and colliding again, also once both waits reach the cap.
        """
        # The exponent stops growing long before the cap matters, so it never overflows; the
        # jitter applies after the cap, so waits at the cap still differ.
        base = min(self.max_backoff, self.backoff * 2.0 ** min(failures - 1, 30))
        wait: float = base * random.uniform(0.5, 1.0)
        return wait

    def __iter__(self) -> Iterator[Attempt]:
        total = self.retries + 1
        for n in range(1, total + 1):
            attempt = Attempt(self, n, last=n == total)
            self.attempts = n
            yield attempt
            if attempt.succeeded:
                return
            if attempt.session is None:
                msg = "each attempt of db.transaction() must be used as `with attempt as session:`"
                raise errors.SessionError(msg)
            if attempt.error is None:
                # The block left through break/return/continue without finishing the attempt.
                return
            if n < total:
                self._sleep(self.delay(n))

    def __call__(self, fn: Callable[Concatenate[Session, P], R]) -> Callable[P, R]:
        """Decorate ``fn(session, *args, **kwargs)``: each call runs it as a retried transaction."""

        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            for attempt in self:
                with attempt as session:
                    result = fn(session, *args, **kwargs)
                if attempt.succeeded:
                    return result
            # Unreachable: the last attempt either succeeds or raises.
            raise AssertionError("transaction ended without a result")  # pragma: no cover

        return run

    def __enter__(self) -> Session:
        if self.retries:
            msg = (
                f"`with db.transaction(retries={self.retries})` cannot run its block again; use "
                "`@db.transaction(retries=N)` on a function, or `for attempt in "
                "db.transaction(retries=N): with attempt as session: ...`"
            )
            raise errors.SessionError(msg)
        if self._single is not None:
            msg = "this db.transaction() is already in use; call db.transaction() for each block"
            raise errors.SessionError(msg)
        self._single = Attempt(self, 1, last=True)
        self.attempts = 1
        return self._single.__enter__()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
        single, self._single = self._single, None
        assert single is not None
        return single.__exit__(exc_type, exc, tb)
