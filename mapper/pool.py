"""The connection pool of every backend: sizes, timeouts, idle and lifetime limits, its status.

The pool starts no thread. A connection is opened by the caller that needs one, so a server
that cannot be reached fails that caller at once, with the driver's error; and the pool's
housekeeping (closing connections idle too long or open too long) runs whenever the pool is
used: when a connection is taken, given back, or the status is read.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import attrs

from . import errors
from ._typing import DBAPIConnection

__all__ = ["QueuePool", "PoolStatus", "PoolSettings", "close_quietly"]


@attrs.frozen
class PoolStatus:
    """What the pool holds right now (``db.pool_status()``).

    Attributes:
        size: connections open (in use plus idle; a connection being opened counts as in use).
        in_use: connections lent to sessions.
        idle: open connections waiting in the pool.
        waiting: callers waiting for a connection.
        min_size, max_size: ``pool_min`` and ``pool_size``.
        discarded: connections thrown away so far, found dead or given back broken.
        expired: connections closed so far for ``pool_max_idle`` or ``pool_max_lifetime``.
    """

    size: int
    in_use: int
    idle: int
    waiting: int
    min_size: int
    max_size: int
    discarded: int
    expired: int


#: Seconds a connection may have sat idle and still be lent (or reused by its session for the
#: next transaction) without the ``pre_ping`` round trip, as HikariCP's 500 ms bypass window. One
#: that died within it is found by its first statement, replaced, and that statement sent again
#: (``Connection._heal``), so no session sees it either way.
PING_WINDOW = 0.5


@attrs.frozen
class PoolSettings:
    """The pool's limits, checked once (``PoolSettings.check``).

    Attributes:
        size: most connections open at once (``pool_size``).
        timeout: seconds a caller waits for a free connection (``pool_timeout``).
        min: idle connections kept however long they sit (``pool_min``).
        max_idle: seconds an idle connection above ``min`` is kept (``pool_max_idle``), or None.
        max_lifetime: seconds after which a connection is closed when it next comes back or
            would be lent (``pool_max_lifetime``), or None.
    """

    size: int = 5
    timeout: float = 30.0
    min: int = 0
    max_idle: float | None = None
    max_lifetime: float | None = None

    @classmethod
    def check(
        cls,
        size: Any,
        timeout: Any,
        min: Any = 0,  # noqa: A002 - the option's own name
        max_idle: Any = None,
        max_lifetime: Any = None,
    ) -> PoolSettings:
        """Settings from the Database's options, or a ConfigurationError naming the bad one."""
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            msg = f"pool_size must be a positive int, got {size!r}"
            raise errors.ConfigurationError(msg)
        if isinstance(min, bool) or not isinstance(min, int) or not 0 <= min <= size:
            msg = f"pool_min must be an int from 0 to pool_size ({size}), got {min!r}"
            raise errors.ConfigurationError(msg)
        _seconds("pool_timeout", timeout, zero=True)
        for name, value in (("pool_max_idle", max_idle), ("pool_max_lifetime", max_lifetime)):
            if value is not None:
                _seconds(name, value, zero=False)
        return cls(
            size,
            float(timeout),
            min,
            None if max_idle is None else float(max_idle),
            None if max_lifetime is None else float(max_lifetime),
        )


def _seconds(name: str, value: Any, zero: bool) -> None:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and (value >= 0 if zero else value > 0)
    if not ok:  # NaN fails both comparisons
        what = "a number of seconds >= 0" if zero else "a positive number of seconds (or None: no limit)"
        msg = f"{name} must be {what}, got {value!r}"
        raise errors.ConfigurationError(msg)


class QueuePool:
    """A thread-safe pool of at most ``settings.size`` connections; waits ``settings.timeout`` for one.

    Connections that a caller reports broken are closed and replaced on demand; an idle
    connection that fails ``check`` is closed and replaced before anyone sees it. Idle
    connections are lent most recently used first, so the ones left over age and are closed
    by ``max_idle`` when the load drops (never below ``min``).
    """

    def __init__(
        self,
        creator: Callable[[], DBAPIConnection],
        settings: PoolSettings,
        keeper: DBAPIConnection | None = None,
        check: Callable[[DBAPIConnection], bool] | None = None,
    ) -> None:
        self._creator = creator
        #: Seconds an idle connection is lent without ``check`` (``PING_WINDOW``; 0 checks all).
        self.ping_window = PING_WINDOW
        #: ``check(raw)``: False for an idle connection that died (the server restarted or
        #: killed it); it is closed and replaced before a session sees it.
        self._check = check
        self.settings = settings
        self._size = settings.size
        self._timeout = settings.timeout
        #: Idle connections with the time each came back, oldest first.
        self._idle: list[tuple[DBAPIConnection, float]] = []
        #: When each open connection was opened, by ``id(raw)`` (for ``max_lifetime``).
        self._born: dict[int, float] = {}
        self._out = 0
        self._waiting = 0
        self._discarded = 0
        self._expired = 0
        self._cond = threading.Condition()
        self._closed = False
        # Idle connections are closed when the pool is collected or the interpreter exits, even
        # if nobody called close(): a driver connection left to the garbage collector warns
        # (ResourceWarning), and at exit it may go after the modules it needs. The finalizer
        # holds the idle list and the keeper's box, never the pool (nor the engine behind it).
        # (The keeper keeps a shared in-memory SQLite database alive between sessions.)
        self._keeper_box: list[DBAPIConnection] = [keeper] if keeper is not None else []
        self._finalizer = weakref.finalize(self, _close_all, self._cond, self._idle, self._keeper_box)

    def acquire(self, timeout: float | None = None) -> DBAPIConnection:
        """A connection: an idle one (checked), or a new one while fewer than ``size`` are open.

        Args:
            timeout: seconds to wait for one; the pool's ``timeout`` when None.

        Raises:
            PoolTimeoutError: every connection stayed in use for the whole wait.
            InterfaceError: the pool is closed.
            DatabaseError: opening a new connection failed (the driver's error, translated).
        """
        wait = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        idle: DBAPIConnection | None = None
        since = 0.0
        expired: list[DBAPIConnection] = []
        with self._cond:
            while True:
                if self._closed:
                    msg = "the Database is closed; create a new one"
                    raise errors.InterfaceError(msg)
                expired += self._expire_idle()
                if self._idle:
                    self._out += 1
                    idle, since = self._idle.pop()
                    break
                if self._out < self._size:
                    self._out += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    close_quietly(*expired)
                    raise errors.PoolTimeoutError.waited(wait, self._size)
                self._waiting += 1
                try:
                    self._cond.wait(left)
                finally:
                    self._waiting -= 1
        close_quietly(*expired)
        # The slot is taken; checking and connecting happen outside the lock, and whatever
        # fails there gives the slot back.
        try:
            if idle is not None:
                if self._too_old(idle):
                    self._forget(idle, expired=True)
                    close_quietly(idle)
                elif self._check is None or time.monotonic() - since < self.ping_window or self._check(idle):
                    return idle
                else:
                    self._forget(idle, expired=False)
                    close_quietly(idle)
            raw = self._creator()
            with self._cond:
                self._born[id(raw)] = time.monotonic()
            return raw
        except BaseException:
            with self._cond:
                self._out -= 1
                self._cond.notify()
            raise

    def release(self, raw: DBAPIConnection, discard: bool = False) -> None:
        """Take a lent connection back; ``discard`` (or a closed pool, or its age) closes it."""
        too_old = not discard and self._too_old(raw)
        with self._cond:
            self._out -= 1
            keep = not (discard or too_old or self._closed)
            if keep:
                self._idle.append((raw, time.monotonic()))
            else:
                self._born.pop(id(raw), None)
                if discard:
                    self._discarded += 1
                elif too_old:
                    self._expired += 1
            expired = self._expire_idle()
            self._cond.notify()
        if not keep:
            expired.append(raw)
        # Outside the lock: closing a connection to a server that is gone may take a while.
        close_quietly(*expired)

    def status(self) -> PoolStatus:
        """The counts right now, after closing the idle connections past their limits."""
        with self._cond:
            expired = self._expire_idle()
            found = PoolStatus(
                size=self._out + len(self._idle),
                in_use=self._out,
                idle=len(self._idle),
                waiting=self._waiting,
                min_size=self.settings.min,
                max_size=self._size,
                discarded=self._discarded,
                expired=self._expired,
            )
        close_quietly(*expired)
        return found

    def _expire_idle(self) -> list[DBAPIConnection]:
        """Take out (under the lock) the idle connections past ``max_idle`` or ``max_lifetime``.

        ``max_idle`` spares the ``min`` most recently used; ``max_lifetime`` spares none. The
        caller closes what is returned, outside the lock.
        """
        s = self.settings
        if not self._idle or (s.max_idle is None and s.max_lifetime is None):
            return []
        now = time.monotonic()
        gone: list[DBAPIConnection] = []
        keep: list[tuple[DBAPIConnection, float]] = []
        spare = len(self._idle) - s.min  # how many may go for idleness, oldest first
        for raw, since in self._idle:
            born = self._born.get(id(raw), now)
            if (s.max_lifetime is not None and now - born >= s.max_lifetime) or (
                s.max_idle is not None and spare > 0 and now - since >= s.max_idle
            ):
                gone.append(raw)
                spare -= 1
                self._born.pop(id(raw), None)
            else:
                keep.append((raw, since))
        if gone:
            self._idle[:] = keep
            self._expired += len(gone)
        return gone

    def _too_old(self, raw: DBAPIConnection) -> bool:
        limit = self.settings.max_lifetime
        if limit is None:
            return False
        born = self._born.get(id(raw))
        return born is not None and time.monotonic() - born >= limit

    def _forget(self, raw: DBAPIConnection, expired: bool) -> None:
        with self._cond:
            self._born.pop(id(raw), None)
            if expired:
                self._expired += 1
            else:
                self._discarded += 1

    def close(self) -> None:
        """Close the idle connections now; lent ones are closed when they come back."""
        with self._cond:
            self._closed = True
            self._born.clear()
            self._cond.notify_all()
        self._finalizer()

    @property
    def checked_out(self) -> int:
        """Connections currently lent to sessions."""
        return self._out

    @property
    def waiting(self) -> int:
        """Callers waiting for a connection right now."""
        return self._waiting

    @property
    def discarded(self) -> int:
        """Connections thrown away so far: found dead by the check, or given back broken."""
        return self._discarded


def _close_all(
    cond: threading.Condition, idle: list[tuple[DBAPIConnection, float]], keeper_box: list[DBAPIConnection]
) -> None:
    """Close a pool's idle connections and its keeper (the pool's finalizer: runs once)."""
    with cond:
        raws = [raw for raw, _ in idle] + keeper_box[:]
        idle.clear()
        keeper_box.clear()
    close_quietly(*raws)


def close_quietly(*raws: Any) -> None:
    """Close driver connections (or cursors), ignoring the errors of ones already broken."""
    for raw in raws:
        try:
            raw.close()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
            pass
