"""The least any pure-Python identity-mapped, change-tracked load can cost, measured against raw.

``python -m benchmarks.floor [--db URL ...] [--repeat N] [--quick]`` runs W2 (50,000 pugs as
objects) five ways on each backend, alternating, in one process:

- **raw**: the benchmark's raw system (one SELECT, one attrs object per row);
- **floor**: raw plus the bookkeeping of a per-object state design, written as tightly as
  Python allows: per row one state object (object, key, snapshot) stored in an identity map
  and a by-object index, the driver's row tuple reused as the snapshot (no copy), and at commit
  one identity comparison per mapped column to find changes;
- **floor + references**: the same, plus one unloaded stand-in (and its state) per distinct
  owner, so that ``pug.owner`` is an object as it is for mapper (raw leaves it None);
- **columnar**: the columnar cohort design: the identity map maps key to object and nothing
  else, the fetched row list is kept whole as the snapshots, by position (no per-row state, no
  by-object index), one shared stand-in per distinct owner gives ``pug.owner``, and commit
  walks objects and rows side by side (``zip(objects, rows)``, one identity test per column);
- **mapper**: ``session.query(Pug).all()``.

Each ratio is to raw's median in the same run. The floors show how far below it a ratio target
can go for a layer that keeps an identity map and snapshots in pure Python, and how much of
that the per-row state costs: per-row work is done by the interpreter whatever the code around
it.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mapper import Database

from . import schema
from .backends import Backend, add_backend_options, chosen_backends
from .systems.mapper_system import MapperSystem
from .systems.raw_system import RawSystem
from .workloads import WORKLOADS, Admin, VerificationError, sizes_for


class _State:
    """The smallest per-object record a unit of work needs: the object, its key, its snapshot."""

    __slots__ = ("obj", "key", "snap")

    def __init__(self, obj: Any, key: Any, snap: Any) -> None:
        self.obj = obj
        self.key = key
        self.snap = snap


class FloorSystem:
    """W2 with an identity map and snapshots and nothing else (see the module docstring)."""

    def __init__(self, raw: RawSystem, name: str, references: bool) -> None:
        self.raw = raw
        self.name = name
        self.classes = raw.classes
        self.references = references
        self.queries = 0

    def _rows(self) -> list[Any]:
        """Begin the transaction and fetch the pugs (the statement every variant sends)."""
        b, conn = self.raw.backend, self.raw.conn
        cur = conn.cursor()
        b.begin(conn)
        cur.execute(f"SELECT id, name, age, owner_id FROM {schema.PUGS} ORDER BY id")
        self.queries = 1
        rows: list[Any] = cur.fetchall()
        return rows

    def w2(self, ctx: dict[str, Any]) -> list[Any]:
        b, conn = self.raw.backend, self.raw.conn
        Pug, Owner = self.classes.Pug, self.classes.Owner
        rows = self._rows()
        held: dict[Any, Any] = {}  # identity map: key -> state
        by_obj: dict[int, _State] = {}  # the unit of work's index of what it tracks
        owners: dict[Any, Any] = {}
        out: list[Any] = []
        append = out.append
        new = object.__new__
        references = self.references
        for row in rows:
            pid = row[0]
            pug = new(Pug)
            pug.id = pid
            pug.name = row[1]
            pug.age = row[2]
            owner = None
            if references and row[3] is not None:
                owner = owners.get(row[3])
                if owner is None:
                    owner = owners[row[3]] = new(Owner)
                    by_obj[id(owner)] = _State(owner, row[3], None)
            pug.owner = owner
            st = held[pid] = _State(pug, pid, row)
            by_obj[id(pug)] = st
            append(pug)
        # Commit: find what changed since the load (nothing), one identity test per column.
        dirty = [
            st for st in by_obj.values()
            if st.snap is not None and (st.obj.name is not st.snap[1] or st.obj.age is not st.snap[2])
        ]
        if dirty:
            raise AssertionError(f"{len(dirty)} pugs changed during a load")
        b.commit(conn)
        return out


class ColumnarSystem(FloorSystem):
    """W2 with columnar cohorts: key -> object, the row list as the snapshots (see the module docstring)."""

    def __init__(self, raw: RawSystem, name: str) -> None:
        super().__init__(raw, name, references=True)

    def w2(self, ctx: dict[str, Any]) -> list[Any]:
        b, conn = self.raw.backend, self.raw.conn
        Pug, Owner = self.classes.Pug, self.classes.Owner
        rows = self._rows()
        held: dict[Any, Any] = {}  # identity map: key -> object, no state
        owners: dict[Any, Any] = {}  # the owners' identity map: key -> shared stand-in
        out: list[Any] = []
        append = out.append
        new = object.__new__
        owner_of = owners.get
        for pid, name, age, oid in rows:
            pug = new(Pug)
            pug.id = pid
            pug.name = name
            pug.age = age
            if oid is None:
                owner = None
            else:
                owner = owner_of(oid)
                if owner is None:
                    owner = owners[oid] = new(Owner)
            pug.owner = owner
            held[pid] = pug
            append(pug)
        # The cohort: the objects and the rows they came from, by position; the rows are the
        # snapshots. Commit walks the two side by side, one identity test per column.
        objects, snapshots = out, rows
        dirty = [obj for obj, snap in zip(objects, snapshots) if obj.name is not snap[1] or obj.age is not snap[2]]
        if dirty:
            raise AssertionError(f"{len(dirty)} pugs changed during a load")
        b.commit(conn)
        return out


def check_references(name: str, pugs: list[Any], owners: int) -> None:
    """Every pug refers to an owner object, one shared object per distinct owner.

    Raises:
        VerificationError: a pug has no owner, or one owner has several stand-ins.
    """
    missing = sum(1 for p in pugs if p.owner is None)
    if missing:
        raise VerificationError(f"W2 [{name}]: {missing} pugs have no owner reference")
    distinct = len({id(p.owner) for p in pugs})
    if distinct != owners:
        raise VerificationError(f"W2 [{name}]: {distinct} owner objects for {owners} owners")


@contextmanager
def bench_tables(backend: Backend) -> Iterator[tuple[Admin, RawSystem, MapperSystem]]:
    """The benchmark's tables created on ``backend`` (dropped afterwards), with the harness's
    connection and the raw and mapper systems."""
    ddl = Database(backend.url, mappers=schema.MAPPERS)
    ddl.drop_all()
    ddl.create_all()
    admin = Admin(backend)
    raw = RawSystem(backend)
    mp = MapperSystem(backend)
    try:
        yield admin, raw, mp
    finally:
        raw.close()
        mp.close()
        admin.close()
        ddl.drop_all()
        ddl.close()


def measure(backend: Backend, repeat: int, quick: bool) -> dict[str, list[float]]:
    """Seed W2 on ``backend``, run the five systems alternately, check each output."""
    try:
        with bench_tables(backend) as (admin, raw, mp):
            return _alternate(admin, raw, mp, repeat, quick)
    finally:
        backend.cleanup()


def _alternate(admin: Admin, raw: RawSystem, mp: MapperSystem, repeat: int, quick: bool) -> dict[str, list[float]]:
    """W2 run by each system in turn, ``repeat`` timed rounds after one warm-up, each checked."""
    wl = WORKLOADS["W2"]
    ctx = wl.seed(admin, sizes_for("W2", quick))
    systems: list[Any] = [
        raw,
        FloorSystem(raw, "floor", False),
        FloorSystem(raw, "floor + references", True),
        ColumnarSystem(raw, "columnar"),
        mp,
    ]
    times: dict[str, list[float]] = {s.name: [] for s in systems}
    for rep in range(repeat + 1):  # the first round warms up, untimed
        for system in systems:
            gc.collect()
            gc.freeze()
            t0 = time.perf_counter()
            try:
                out = system.w2(ctx)
            finally:
                gc.unfreeze()
            elapsed = time.perf_counter() - t0
            wl.verify(admin, system, ctx, out)
            if system is mp or getattr(system, "references", False):
                check_references(system.name, out, ctx["sizes"]["owners"])
            del out
            if rep:
                times[system.name].append(elapsed)
    return times


def report(name: str, times: dict[str, list[float]]) -> str:
    base = statistics.median(times["raw"])
    cells = [f"{k} {statistics.median(v) * 1000:.1f} ms ({statistics.median(v) / base:.2f}x)" for k, v in times.items()]
    return f"{name:<10} " + " | ".join(cells)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.split("\n\n")[0])
    add_backend_options(p)
    args = p.parse_args(argv)
    backends = chosen_backends(args)
    print(f"W2, median of {args.repeat}, ratio to raw in the same run", flush=True)
    for make in backends:
        backend = make()
        print(report(backend.name, measure(backend, args.repeat, args.quick)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
