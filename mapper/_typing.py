"""Protocols for the DB-API objects mapper talks to (the seams between layers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .pool import PoolStatus


class DBAPIConnection(Protocol):
    """The part of a DB-API 2.0 connection that mapper uses."""

    def cursor(self, *args: Any, **kwargs: Any) -> Any: ...

    def commit(self) -> Any: ...

    def rollback(self) -> Any: ...

    def close(self) -> Any: ...


class ConnectionPool(Protocol):
    """A pool of DB-API connections (``pool.QueuePool``, the same for every backend; psycopg-pool's
    async pool behind ``aio_drivers.PsycopgPool`` for an AsyncDatabase on PostgreSQL)."""

    def acquire(self, timeout: float | None = None) -> Any: ...

    def release(self, raw: Any, discard: bool = False) -> None: ...

    def status(self) -> PoolStatus: ...

    def close(self) -> None: ...

    @property
    def checked_out(self) -> int:
        """Connections currently lent to sessions."""
        ...

    @property
    def waiting(self) -> int:
        """Callers waiting for a connection right now."""
        ...

    @property
    def discarded(self) -> int:
        """Connections thrown away so far (found dead, or given back broken)."""
        ...
