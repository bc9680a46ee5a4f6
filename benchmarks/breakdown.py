"""Where the time of a workload goes, phase by phase, for raw and for mapper.

``python -m benchmarks.breakdown [--db URL ...] [--workload W2 --workload W1 ...] [--repeat N]``
runs each workload as the main harness does (same seeding, same checks, runs alternating between
raw and mapper), and times mapper's phases by wrapping the methods that do them:

- ``driver``: the statements, executed and fetched by the driver (``Connection.fetchall``,
  ``execute`` and ``executemany``);
- ``hydrate``: rows into objects, states and snapshots (``SessionCore.load_rows``), stand-ins for
  unloaded references included;
- ``relations``: includes and lazy loads without their statements and rows: keys of the
  parents, members grouped and put into collections, inverse references (``GraphLoader.load``,
  ``load_tree``);
- ``flush: cascades``: the save cascade and the reconciling of relation edits
  (``FlushPlanner.prepare``), and the scan for changed objects (``FlushPlanner.dirty``), without
  the statements they send;
- ``flush: write``: rows, keys and links of the statements (``UnitOfWork.run`` and ``finalize``,
  without the statements themselves);
- ``flush: mirror``: both sides of each relation in memory, relation snapshots
  (``Mirror.after_flush``);
- ``add``: ``session.add_all``;
- ``close``: ``session.close``, which lets go of every state;
- ``collector``: the cyclic garbage collector's runs (``gc.callbacks``), for both systems;
- ``other``: the rest (session and transaction, query building, COMMIT).

For raw, ``driver`` is its statements (``RawSystem._select``, ``_select_in`` and ``_insert``,
the last with the lists of values it binds), and ``build`` the rest of its run (objects built
and wired by hand). Each cell is the median in milliseconds and, in parentheses, its
share of raw's median total in the same run: mapper's column adds up to its ratio to raw.
The wrappers cost a few microseconds per call: nothing next to a load of thousands of rows, but
W8 calls ``fetchall`` and ``load_rows`` once per ``get`` that misses (1,000 times), so its mapper
column is that much slower than in the main harness.
"""

from __future__ import annotations

import argparse
import functools
import gc
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from mapper import Session
from mapper.core import SessionCore
from mapper.engine import Connection
from mapper.graph import GraphLoader
from mapper.uow.execute import UnitOfWork
from mapper.uow.mirror import Mirror
from mapper.uow.plan import FlushPlanner

from .backends import Backend, add_backend_options, chosen_backends
from .floor import bench_tables
from .systems.mapper_system import MapperSystem
from .systems.raw_system import RawSystem
from .workloads import WORKLOADS, Admin, sizes_for

#: (class, method, phase): the methods timed, outermost first (an inner one's time is taken out
#: of the phase that encloses it).
PHASES: list[tuple[type, str, str]] = [
    (Session, "add_all", "add"),
    (Session, "close", "close"),
    (FlushPlanner, "prepare", "flush: cascades"),
    (FlushPlanner, "dirty", "flush: cascades"),
    (UnitOfWork, "run", "flush: write"),
    (UnitOfWork, "finalize", "flush: write"),
    (Mirror, "after_flush", "flush: mirror"),
    (GraphLoader, "load", "relations"),
    (GraphLoader, "load_tree", "relations"),
    (SessionCore, "load_rows", "hydrate"),
    (Connection, "fetchall", "driver"),
    (Connection, "execute", "driver"),
    (Connection, "executemany", "driver"),
]

#: The raw system's phases.
RAW_PHASES: list[tuple[type, str, str]] = [
    (RawSystem, "_insert", "driver"),
    (RawSystem, "_select", "driver"),
    (RawSystem, "_select_in", "driver"),
]


class PhaseClock:
    """Exclusive time per phase: a phase entered inside another pauses the outer one."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._stack: list[list[Any]] = []  # [phase, start, time of inner phases]

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        if self._stack and self._stack[-1][0] == name:
            yield  # a phase re-entered through itself (load_rows of a hierarchy) counts once
            return
        self.begin(name)
        try:
            yield
        finally:
            self.end()

    def begin(self, name: str) -> None:
        self._stack.append([name, time.perf_counter(), 0.0])

    def end(self) -> None:
        frame = self._stack.pop()
        elapsed = time.perf_counter() - frame[1]
        self.spent[frame[0]] = self.spent.get(frame[0], 0.0) + elapsed - frame[2]
        if self._stack:
            self._stack[-1][2] += elapsed

    def on_gc(self, event: str, info: dict[str, Any]) -> None:
        """A ``gc.callbacks`` entry: collections are their own phase, wherever they happen."""
        if event == "start":
            self.begin("collector")
        elif self._stack and self._stack[-1][0] == "collector":
            self.end()

    def reset(self) -> None:
        self.spent = {}


@contextmanager
def instrumented(clock: PhaseClock, phases: list[tuple[type, str, str]]) -> Iterator[None]:
    """Wrap every method of ``phases`` so that ``clock`` times it; put them back afterwards."""
    saved: list[tuple[type, str, Any]] = []

    def wrap(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with clock.phase(name):
                return fn(*args, **kwargs)

        return timed

    try:
        for cls, attr, name in phases:
            original = cls.__dict__[attr]
            saved.append((cls, attr, original))
            setattr(cls, attr, wrap(original, name))
        yield
    finally:
        for cls, attr, original in reversed(saved):
            setattr(cls, attr, original)


def measure(backend: Backend, key: str, repeat: int, quick: bool) -> dict[str, dict[str, list[float]]]:
    """Per system, per phase, the seconds of each timed run (warm-up excluded)."""
    with bench_tables(backend) as (admin, raw, mp):
        return _alternate(admin, raw, mp, key, repeat, quick)


def _alternate(admin: Admin, raw: RawSystem, mp: MapperSystem, key: str, repeat: int, quick: bool) -> dict[str, dict[str, list[float]]]:
    """The workload run by raw and mapper in turn, each run's phases timed and its output checked."""
    clock = PhaseClock()
    wl = WORKLOADS[key]
    sizes = sizes_for(key, quick)
    times: dict[str, dict[str, list[float]]] = {"raw": {}, "mapper": {}}
    ctx = wl.seed(admin, sizes)
    for rep in range(repeat + 1):  # the first round warms up, untimed
        for system in (raw, mp):
            if wl.mutates:
                ctx = wl.seed(admin, sizes)
            gc.collect()
            gc.freeze()
            clock.reset()
            gc.callbacks.append(clock.on_gc)
            try:
                with instrumented(clock, PHASES if system is mp else RAW_PHASES):
                    t0 = time.perf_counter()
                    out = getattr(system, key.lower())(ctx)
                    total = time.perf_counter() - t0
            finally:
                gc.callbacks.remove(clock.on_gc)
                gc.unfreeze()
            wl.verify(admin, system, ctx, out)
            del out
            if not rep:
                continue
            spent = dict(clock.spent)
            rest = "build" if system is raw else "other"
            spent[rest] = total - sum(spent.values())
            spent["total"] = total
            for phase, seconds in spent.items():
                times[system.name].setdefault(phase, []).append(seconds)
    return times


ORDER = ["driver", "build", "hydrate", "relations", "add", "flush: cascades", "flush: write", "flush: mirror", "close", "collector", "other", "total"]


def report(backend: str, key: str, times: dict[str, dict[str, list[float]]]) -> str:
    """A table: one row per phase, raw and mapper side by side (ms, share of raw's total)."""
    base = statistics.median(times["raw"]["total"])
    lines = [f"{backend} {key}: {WORKLOADS[key].title}", f"{'phase':<16} | {'raw':>16} | {'mapper':>16}", "-" * 54]
    for phase in ORDER:
        cells = []
        for system in ("raw", "mapper"):
            values = times[system].get(phase)
            if not values:
                cells.append(f"{'':>16}")
                continue
            med = statistics.median(values)
            cells.append(f"{med * 1000:8.1f} ({med / base:4.2f}x)")
        if any(c.strip() for c in cells):
            lines.append(f"{phase:<16} | {cells[0]} | {cells[1]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__.split("\n\n")[0])
    add_backend_options(p)
    p.add_argument("--workload", action="append", choices=sorted(WORKLOADS), metavar="W", help="W1..W9 (default W2 and W1)")
    args = p.parse_args(argv)
    backends = chosen_backends(args)
    print(f"Median of {args.repeat} runs; (x) = share of raw's total in the same run", flush=True)
    for make in backends:
        backend = make()
        try:
            for key in args.workload or ["W2", "W1"]:
                print("\n" + report(backend.name, key, measure(backend, key, args.repeat, args.quick)), flush=True)
        finally:
            backend.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
