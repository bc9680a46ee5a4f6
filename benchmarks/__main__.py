"""``python -m benchmarks``: the benchmark workloads (W1-W10) on every backend, for the raw
driver, mapper and SQLAlchemy, over the same schema and data.

    python -m benchmarks                                   # embedded SQLite only, no server
    python -m benchmarks --db postgresql://postgres@127.0.0.1:5432/test \\
                         --db mysql://root@127.0.0.1:3306/test
    python -m benchmarks --quick --workload W1 --workload W3 --system mapper --system raw
    python -m benchmarks --chart ratios.png --json results.json

Progress goes to stderr; the tables (median seconds, ratio to the raw driver measured in the
same run, statements per run) go to stdout. Every run of every system is verified against the
database and its returned objects; a failure is reported in the table and makes the exit
status 1.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import traceback
from typing import Any

from . import schema
from .backends import Backend, default_sqlite, parse_backend
from .report import BackendResult, Cell, Results, draw_chart, render_tables, write_json
from .systems import ASYNC_SYSTEMS, EXTRA_SYSTEMS, SYSTEMS, available, load_system
from .workloads import WORKLOADS, Admin, VerificationError, sizes_for

ORDER = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W7q", "W8", "W9", "W10"]

NOTES = [
    "Each timed run is one call: open the session/transaction, do the work, commit, return the objects; "
    "seeding, restoring and checking are untimed. Runs alternate between systems (raw, mapper, sqla, raw, ...) "
    "and write workloads start every run from a freshly seeded database.",
    "raw builds the same attrs objects by hand and wires both sides; its W8 keeps a dict of the owners it "
    "already fetched (a hand-made identity map) and its W9 loads the pugs of all owners in one IN query "
    "(there is no lazy trap without an ORM). In W2/W6 the raw pugs get owner=None, where the ORMs leave "
    "an unloaded owner reference.",
    "W7: the ORMs load the owners to delete and delete them through the session (the database cascades to the "
    "pugs); raw sends one DELETE ... IN. W7q: mapper query(...).delete(), SQLAlchemy ORM-enabled delete().",
    "Query counts: statements sent by the system (BEGIN/COMMIT not counted); an executemany counts as one "
    "statement, although PyMySQL sends one round trip per row for an executemany UPDATE. mapper's are counted "
    "by a db.on_statement callback and checked against session.query_count after every session.",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmark workloads W1-W10 against the raw drivers, mapper and SQLAlchemy.",
    )
    p.add_argument("--db", action="append", default=[], metavar="URL",
                   help="add a backend (postgresql://..., mysql://...); repeatable. A sqlite:///file URL "
                        "replaces the default temporary SQLite file.")
    p.add_argument("--no-sqlite", action="store_true", help="skip the default embedded SQLite backend")
    p.add_argument("--workload", action="append", default=[], metavar="W",
                   help=f"run only these workloads (repeatable): {', '.join(ORDER)}")
    p.add_argument("--system", action="append", default=[], metavar="S",
                   help=f"run only these systems (repeatable): {', '.join(SYSTEMS)}; also "
                        f"{', '.join(EXTRA_SYSTEMS)} (mapper counting without its statement callback)")
    p.add_argument("--async", dest="use_async", action="store_true",
                   help=f"also run the asyncio systems ({', '.join(ASYNC_SYSTEMS)}) beside the sync ones")
    p.add_argument("--quick", action="store_true", help="a tenth of the rows, 2 runs, no warm-up (smoke test)")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per system (default 5; --quick: 2)")
    p.add_argument("--warmup", type=int, default=None, help="untimed (but checked) runs first (default 1; --quick: 0)")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    p.add_argument("--chart", metavar="FILE.png", help="draw the ratios as a grouped bar chart (needs matplotlib)")
    return p.parse_args(argv)


def choose(args: argparse.Namespace) -> tuple[list[str], list[str], list[Backend]]:
    workloads: list[str] = []
    for w in args.workload or ORDER:
        match = next((k for k in ORDER if k.lower() == w.lower()), None)
        if match is None:
            raise SystemExit(f"--workload {w!r}: choose from {', '.join(ORDER)}")
        if match not in workloads:
            workloads.append(match)
    workloads.sort(key=ORDER.index)

    systems: list[str] = []
    known = SYSTEMS + EXTRA_SYSTEMS + ASYNC_SYSTEMS
    for s in args.system or (SYSTEMS + ASYNC_SYSTEMS if args.use_async else SYSTEMS):
        s = s.lower()
        if s in ("sqlalchemy",):
            s = "sqla"
        if s not in known:
            raise SystemExit(f"--system {s!r}: choose from {', '.join(known)}")
        if s not in systems:
            systems.append(s)
    for s in list(systems):
        ok, why = available(s)
        if not ok:
            if args.system:
                raise SystemExit(f"--system {s}: {why}")
            log(f"note: skipping {s}: {why}")
            systems.remove(s)
    systems.sort(key=known.index)

    backends: list[Backend] = []
    extra = [parse_backend(u) for u in args.db]
    if not args.no_sqlite and not any(b.kind == "sqlite" for b in extra):
        backends.append(default_sqlite())
    backends += extra
    if not backends:
        raise SystemExit("no backend to run on")
    if args.chart:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise SystemExit("--chart needs matplotlib: pip install -e '.[bench]'") from None
    return workloads, systems, backends


def run_backend(
    backend: Backend, workloads: list[str], system_names: list[str], repeat: int, warmup: int, quick: bool,
    res: Results,
) -> BackendResult:
    from mapper import Database

    started = time.perf_counter()
    backend.probe()
    br = BackendResult(backend.name, backend.label, backend.safe_url)
    log(f"[{backend.name}] {backend.label} at {backend.safe_url}: creating the bench_ tables")
    ddl = Database(backend.url, mappers=schema.MAPPERS)
    systems: list[Any] = []
    admin: Admin | None = None
    try:
        ddl.drop_all()  # left over from an interrupted run
        ddl.create_all()
        admin = Admin(backend)
        for name in system_names:
            systems.append(load_system(name)(backend))
            br.system_labels[name] = systems[-1].label
            if name != "raw":
                res.system_labels[name] = systems[-1].label
        for key in workloads:
            run_workload(backend, br, admin, systems, key, repeat, warmup, quick)
        for s in systems:
            for note in sorted(s.notes):
                if note not in res.notes:
                    res.notes.append(note)
    finally:
        for s in systems:
            try:
                s.close()
            except Exception as exc:  # pragma: no cover - best effort
                log(f"[{backend.name}] closing {s.name}: {exc}")
        if admin is not None:
            admin.close()
        try:
            ddl.drop_all()
            log(f"[{backend.name}] dropped the bench_ tables")
        finally:
            ddl.close()
            backend.cleanup()
    br.seconds = time.perf_counter() - started
    return br


def run_workload(
    backend: Backend, br: BackendResult, admin: Admin, systems: list[Any], key: str, repeat: int, warmup: int,
    quick: bool,
) -> None:
    wl = WORKLOADS[key]
    sizes = sizes_for(key, quick)
    br.titles[key] = wl.title
    br.describe[key] = wl.describe(sizes)
    row = br.cells[key] = {s.name: Cell() for s in systems}
    tag = f"[{backend.name}] {key}"
    log(f"{tag} {wl.title}: {br.describe[key]}")
    ctx = wl.seed(admin, sizes)
    dirty = False
    total = warmup + repeat
    for rep in range(total):
        timed = rep >= warmup
        parts = []
        for system in systems:
            cell = row[system.name]
            if cell.error is not None:
                continue
            if dirty:
                ctx = wl.seed(admin, sizes)
                dirty = False
            # Each timed run starts from an empty young heap, and what already lives (the other
            # systems' modules and caches, SQLAlchemy's above all) is frozen out of collections,
            # so a system's collector time depends on its own allocations only.
            gc.collect()
            gc.freeze()
            system.queries = 0
            out: Any = None
            stage = "run"
            try:
                t0 = time.perf_counter()
                try:
                    out = getattr(system, key.lower())(ctx)
                finally:
                    gc.unfreeze()
                elapsed = time.perf_counter() - t0
                dirty = wl.mutates
                stage = "check"
                wl.verify(admin, system, ctx, out)
            except Exception as exc:
                dirty = True
                if isinstance(exc, VerificationError):
                    cell.error = str(exc)
                    log(f"{tag} !!! {system.name} FAILED its check: {exc}")
                else:
                    cell.error = f"{type(exc).__name__} during the {stage}: {exc}"
                    log(f"{tag} !!! {system.name} raised during the {stage}:\n{traceback.format_exc()}")
                    system.recover()
                continue
            finally:
                del out
            if timed:
                cell.times.append(elapsed)
                cell.queries.append(system.queries)
            parts.append(f"{system.name} {elapsed:.4f}s/{system.queries}q")
        label = f"run {rep - warmup + 1}/{repeat}" if timed else f"warm-up {rep + 1}/{warmup}"
        log(f"{tag}   {label}: " + "  ".join(parts))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workloads, systems, backends = choose(args)
    repeat = args.repeat if args.repeat is not None else (2 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else (0 if args.quick else 1)
    if repeat < 1 or warmup < 0:
        raise SystemExit("--repeat must be at least 1 and --warmup at least 0")
    res = Results(systems, {}, repeat, warmup, args.quick)
    started = time.perf_counter()
    log(
        f"benchmarks: {len(workloads)} workload(s) x {len(systems)} system(s) x {len(backends)} backend(s), "
        f"{warmup} warm-up + {repeat} timed run(s) each{' (quick sizes)' if args.quick else ''}"
    )
    aborted: list[str] = []
    try:
        for backend in backends:
            try:
                res.backends.append(run_backend(backend, workloads, systems, repeat, warmup, args.quick, res))
            except Exception as exc:
                log(f"[{backend.name}] backend aborted:\n{traceback.format_exc()}")
                aborted.append(f"{backend.safe_url}: {type(exc).__name__}: {exc}")
    finally:
        for b in backends:
            b.cleanup()
    res.seconds = time.perf_counter() - started
    res.notes = NOTES + res.notes
    if "sqla" in systems:
        res.notes.append(
            "SQLAlchemy maps @attrs.define(slots=False) copies of the classes (imperative mapping cannot "
            "instrument slotted classes); sessionmaker(expire_on_commit=False) keeps objects readable after "
            "commit as with mapper; relationships keep the default lazy='select' (hence W9's N+1)."
        )
        if any(b.name == "sqlite" for b in res.backends):
            res.notes.append(
                "SQLAlchemy on SQLite inserts one row per statement: it cannot match RETURNING rows to "
                "objects without a sentinel column, so its unit of work does not batch there (documented)."
            )
    print(render_tables(res), flush=True)
    if args.json:
        write_json(res, args.json)
        log(f"wrote {args.json}")
    if args.chart:
        draw_chart(res, args.chart)
        log(f"wrote {args.chart}")
    for msg in aborted:
        print(f"BACKEND ABORTED {msg}", flush=True)
    failed = aborted or any(c.error for br in res.backends for row in br.cells.values() for c in row.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
