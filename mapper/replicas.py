"""Read replicas: which server a session's connection comes from.

``Database(url, replicas=[url, ...])`` gives read-only sessions (``db.session(readonly=True)``)
a connection to a replica, taken round robin. A replica that cannot be reached is skipped and
left alone for a back-off that doubles with each failure in a row (``backoff``, ``2 * backoff``,
... at most ``max_backoff`` seconds); the first session after that tries it again, and one
success puts it back in the rotation. When no replica can serve, the read-only session reads
from the primary. Every other session, and every read-only session pinned to the primary
(``db.session(readonly=True, pin_primary=True)``), uses the primary.

The connections lent to read-only sessions refuse writes at the server (``Connection.
set_read_only``), on the primary too, so a raw write in one fails loudly instead of landing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from . import errors
from .engine import Connection, Engine

__all__ = ["Replicas", "ReplicaStatus"]

log = logging.getLogger("mapper.replicas")


@attrs.frozen
class ReplicaStatus:
    """One replica as ``db.replica_status()`` reports it.

    Attributes:
        url: the replica's URL, password masked.
        up: whether read-only sessions may be sent to it now.
        failures: connection attempts that failed in a row (0 once one succeeds).
        retry_in: seconds until it is tried again (0.0 when up).
        error: the last connection error, or None.
    """

    url: str
    up: bool
    failures: int
    retry_in: float
    error: str | None


class _Replica:
    """A replica's engine and its health (guarded by the ``Replicas`` lock)."""

    __slots__ = ("engine", "failures", "retry_at", "error")

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.failures = 0
        self.retry_at = 0.0
        self.error: str | None = None


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        msg = f"Database({name}={value!r}): give a positive number of seconds"
        raise errors.ConfigurationError(msg)
    return float(value)


class Replicas:
    """The primary engine and the replica engines, and the choice between them.

    Args:
        primary: the primary's engine; its statement observers serve the replicas too.
        urls: the replicas' URLs, of the primary's backend.
        make_engine: builds an engine for a URL with the Database's options.
        backoff: seconds a replica is left alone after its first failure in a row.
        max_backoff: the longest it is left alone.
        clock: the time source (``time.monotonic``).
    """

    def __init__(
        self,
        primary: Engine,
        urls: Sequence[str],
        make_engine: Callable[[str], Engine],
        *,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(urls, str) or not all(isinstance(u, str) for u in urls):
            msg = f"Database(replicas={urls!r}): give a list of URLs, for example replicas=['postgresql://...']"
            raise errors.ConfigurationError(msg)
        self.backoff = _seconds("replica_backoff", backoff)
        self.max_backoff = _seconds("replica_max_backoff", max_backoff)
        self.primary = primary
        self.clock = clock
        self._lock = threading.Lock()
        self._next = 0
        self._replicas: list[_Replica] = []
        for url in urls:
            engine = make_engine(url)
            if engine.dialect.name != primary.dialect.name:
                engine.close()
                msg = (
                    f"Database(replicas=[{engine.server!r}]): a replica must be a {primary.dialect.name} "
                    f"server like the primary, not {engine.dialect.name}"
                )
                raise errors.ConfigurationError(msg)
            # One list of observers: db.on_statement() callbacks and the echo see every route.
            engine.observers = primary.observers
            engine.route = "replica"
            # A replica's connections are checked every time they are lent: a dead one must be
            # found while the router can still send the session elsewhere (another replica, the
            # primary), not at its first statement, where a replacement could only come from the
            # same dead server.
            engine.set_ping_window(0.0)
            self._replicas.append(_Replica(engine))
        if self._replicas:
            primary.route = "primary"

    def connect(self, owner: object, readonly: bool, pin_primary: bool) -> Connection:
        """The connection for a session: a replica's for a read-only one when one is up."""
        primary = self.primary
        if not readonly:
            return primary.connect(owner)
        if not pin_primary and primary.pinned is None:
            for replica in self._candidates():
                try:
                    conn = replica.engine.connect(owner, read_only=True)
                except errors.DatabaseError as exc:
                    self._failed(replica, exc)
                    continue
                self._succeeded(replica)
                return conn
        return primary.connect(owner, read_only=True)

    def _candidates(self) -> list[_Replica]:
        """The replicas that are up (or due for a retry), starting with the next in turn."""
        with self._lock:
            n = len(self._replicas)
            if not n:
                return []
            start = self._next
            self._next = (start + 1) % n
            now = self.clock()
            order = self._replicas[start:] + self._replicas[:start]
            return [r for r in order if r.retry_at <= now]

    def _failed(self, replica: _Replica, exc: errors.DatabaseError) -> None:
        with self._lock:
            replica.failures += 1
            wait = min(self.backoff * 2 ** (replica.failures - 1), self.max_backoff)
            replica.retry_at = self.clock() + wait
            replica.error = str(exc)
        log.warning("replica %s is unreachable (%s); retrying in %.1f s", replica.engine.server, exc, wait)

    def _succeeded(self, replica: _Replica) -> None:
        if replica.failures:
            with self._lock:
                replica.failures = 0
                replica.retry_at = 0.0
                replica.error = None
            log.info("replica %s is back", replica.engine.server)

    def status(self) -> list[ReplicaStatus]:
        """Each replica's health, in the order they were given."""
        with self._lock:
            now = self.clock()
            return [
                ReplicaStatus(
                    r.engine.server, r.retry_at <= now, r.failures, max(0.0, r.retry_at - now), r.error
                )
                for r in self._replicas
            ]

    def close(self) -> None:
        """Close every replica's pooled connections."""
        for replica in self._replicas:
            replica.engine.close()
