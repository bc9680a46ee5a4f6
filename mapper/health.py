"""The readiness probe: can this Database reach its server now, and how quickly (``db.health_check()``)."""

from __future__ import annotations

import time

import attrs

from . import errors
from .engine import Engine
from .pool import PoolStatus

__all__ = ["Health", "check_health"]


@attrs.frozen
class Health:
    """The result of ``db.health_check()``; true when the database answered.

    Attributes:
        ok: the database answered ``SELECT 1``.
        backend: ``sqlite``, ``postgresql`` or ``mysql``.
        url: the Database's URL, password masked.
        latency: seconds the check took (taking a connection, the query, giving it back).
        error: why the check failed (the exception's class and message, password masked), or None.
        pool: the pool's status after the check.
    """

    ok: bool
    backend: str
    url: str
    latency: float
    error: str | None
    pool: PoolStatus

    def __bool__(self) -> bool:
        return self.ok


def check_health(engine: Engine, timeout: float, raise_on_failure: bool) -> Health:
    """Take a connection (waiting at most ``timeout`` for a free one), run ``SELECT 1``, give it back.

    The query goes to the driver directly: statement callbacks and budgets do not see it.

    Raises:
        DatabaseError, PoolTimeoutError: only with ``raise_on_failure``, the failure itself.
    """
    started = time.perf_counter()
    error: str | None = None
    try:
        _probe(engine, timeout)
    except errors.MapperError as exc:
        if raise_on_failure:
            raise
        error = engine.url.mask(f"{type(exc).__name__}: {exc}")
    return Health(
        ok=error is None,
        backend=engine.dialect.name,
        url=engine.url.safe(),
        latency=time.perf_counter() - started,
        error=error,
        pool=engine.pool.status(),
    )


def _probe(engine: Engine, timeout: float) -> None:
    pool = engine.pool
    raw = pool.acquire(timeout)
    broken = True
    try:
        try:
            cur = raw.cursor()
            try:
                cur.execute("SELECT 1")
                cur.fetchall()
            finally:
                cur.close()
            raw.rollback()  # PostgreSQL and MySQL opened a transaction for the SELECT
        except engine.dialect.driver_errors() as exc:
            klass = engine.dialect.error_class(exc)
            msg = f"the database did not answer SELECT 1: {exc}"
            raise klass(msg, orig=exc, statement="SELECT 1") from exc
        broken = False
    finally:
        pool.release(raw, discard=broken)
