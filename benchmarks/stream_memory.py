"""How much memory ``query.stream()`` holds while it reads a large table, per backend.

    python -m benchmarks.stream_memory                       # embedded SQLite, 1,000,000 rows
    python -m benchmarks.stream_memory --db postgresql://postgres@127.0.0.1:5432/test --rows 200000
    python -m benchmarks.stream_memory --db sqlite:///x.db --db mysql://root@127.0.0.1:3306/test

For each backend it creates two tables of its own (``bench_stream_<pid>_owners`` and
``..._pugs``; dropped at the end), seeds ``--rows`` pugs, one owner per ten pugs, with plain SQL,
then streams every pug with ``session.query(Pug).stream(batch_size)``, reading each one's name
and age (each pug's ``owner`` is an unloaded stand-in, as a stream leaves it). Every
``--sample-every`` rows it counts, with ``gc.get_objects()``, the live domain objects (pugs and
owner stand-ins) and the session's live object states, and reads the process's resident set
size; the RSS is also read after every batch. It prints, per backend: the largest number of live
domain objects and states seen, the largest RSS growth over the RSS before the stream began, the
same counts after the loop, the time and the statements sent.

Each backend is measured in a process of its own (a child process when several are given), so
memory one backend freed does not flatter the next.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import Any

import attrs

from mapper import BelongsTo, Column, Database, ForeignKey, HasMany, Mapper
from mapper import types as t
from mapper.state import ObjectState

from .backends import Backend, default_sqlite, parse_backend

__all__ = ["main", "measure"]


def _model(prefix: str) -> SimpleNamespace:
    """Owner/Pug classes and mappers on tables named after ``prefix``."""

    @attrs.define
    class Owner:
        name: str
        pugs: list[Any] = attrs.Factory(list)
        id: int | None = None

    @attrs.define
    class Pug:
        name: str
        age: int = 0
        owner: Any = None
        id: int | None = None

    owners, pugs = f"{prefix}_owners", f"{prefix}_pugs"

    class OwnerMapper(Mapper[Owner]):
        table = owners
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(100), nullable=False)
        pugs = HasMany(Pug, foreign_key="owner_id", inverse="owner", order_by="id")

    class PugMapper(Mapper[Pug]):
        table = pugs
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(100), nullable=False)
        age = Column(t.Integer, nullable=False, default=0)
        owner_id = Column(t.Integer, ForeignKey(owners + ".id", on_delete="CASCADE"), index=True)
        owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")

    return SimpleNamespace(Owner=Owner, Pug=Pug, mappers=[OwnerMapper, PugMapper], owners=owners, pugs=pugs)


def _seed(backend: Backend, model: SimpleNamespace, rows: int) -> None:
    """``rows`` pugs and one owner per ten, written with plain SQL (untimed)."""
    owners = (rows + 9) // 10
    conn = backend.connect()
    try:
        cur = conn.cursor()
        backend.begin(conn)
        if backend.kind == "postgresql":
            cur.execute(f"INSERT INTO {model.owners} (id, name) SELECT i, 'o' || i FROM generate_series(1, %s) i", (owners,))
            cur.execute(
                f"INSERT INTO {model.pugs} (id, name, age, owner_id) "
                "SELECT i, 'p' || i, i %% 20, (i - 1) / 10 + 1 FROM generate_series(1, %s) i",
                (rows,),
            )
        else:
            ph = backend.ph
            step = 20_000
            for lo in range(1, owners + 1, step):
                cur.executemany(
                    f"INSERT INTO {model.owners} (id, name) VALUES ({ph}, {ph})",
                    [(i, f"o{i}") for i in range(lo, min(owners, lo + step - 1) + 1)],
                )
            for lo in range(1, rows + 1, step):
                cur.executemany(
                    f"INSERT INTO {model.pugs} (id, name, age, owner_id) VALUES ({ph}, {ph}, {ph}, {ph})",
                    [(i, f"p{i}", i % 20, (i - 1) // 10 + 1) for i in range(lo, min(rows, lo + step - 1) + 1)],
                )
        backend.commit(conn)
        cur.close()
    finally:
        conn.close()


def rss_bytes() -> int:
    """The resident set size of this process (Linux ``/proc``; else the peak from getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def live(classes: tuple[type, ...]) -> tuple[int, int]:
    """(live instances of ``classes``, stand-ins included; live ObjectStates), from the collector."""
    objects = states = 0
    for o in gc.get_objects():
        k = type(o)
        if k is ObjectState:
            states += 1
        elif issubclass(k, classes):
            objects += 1
    return objects, states


def measure(url: str, rows: int, batch_size: int, sample_every: int) -> dict[str, Any]:
    """Seed, stream and measure one backend; returns the figures as a dict."""
    backend = default_sqlite() if url == "sqlite" else parse_backend(url)
    backend.probe()
    model = _model(f"bench_stream_{os.getpid()}")
    db = Database(backend.url, mappers=model.mappers)
    try:
        db.drop_all()
        db.create_all()
        _seed(backend, model, rows)
        classes = (model.Owner, model.Pug)
        gc.collect()
        base_rss = rss_bytes()
        peak_rss = base_rss
        peak_objects = peak_states = 0
        seen = 0
        total_age = 0
        started = time.perf_counter()
        with db.session() as s:
            q = s.query(model.Pug).order_by("id")
            for p in q.stream(batch_size=batch_size):
                seen += 1
                total_age += p.age + len(p.name)
                if seen % batch_size == 0:
                    peak_rss = max(peak_rss, rss_bytes())
                if seen % sample_every == 0:
                    objects, states = live(classes)
                    peak_objects = max(peak_objects, objects)
                    peak_states = max(peak_states, states)
            del p
            elapsed = time.perf_counter() - started
            statements = s.query_count
            peak_rss = max(peak_rss, rss_bytes())
            gc.collect()
            after_objects, after_states = live(classes)
            after_rss = rss_bytes()
        if seen != rows:
            msg = f"streamed {seen} rows of {rows}"
            raise RuntimeError(msg)
        return {
            "backend": backend.label,
            "rows": rows,
            "batch_size": batch_size,
            "peak_live_objects": peak_objects,
            "peak_live_states": peak_states,
            "peak_rss_growth_mb": round((peak_rss - base_rss) / 2**20, 1),
            "after_live_objects": after_objects,
            "after_live_states": after_states,
            "after_rss_growth_mb": round((after_rss - base_rss) / 2**20, 1),
            "seconds": round(elapsed, 2),
            "statements": statements,
        }
    finally:
        try:
            db.drop_all()
        finally:
            db.close()
            backend.cleanup()


COLUMNS = [
    ("backend", "backend", 18),
    ("rows", "rows", 9),
    ("batch_size", "batch", 6),
    ("peak_live_objects", "live objects (peak)", 19),
    ("peak_live_states", "live states (peak)", 18),
    ("peak_rss_growth_mb", "RSS growth MB (peak)", 20),
    ("after_live_objects", "live objects after", 18),
    ("seconds", "seconds", 8),
    ("statements", "statements", 10),
]


def render(results: list[dict[str, Any]]) -> str:
    """The figures as a plain-text table."""
    lines = [" | ".join(title.ljust(width) for _, title, width in COLUMNS)]
    for r in results:
        lines.append(" | ".join(str(r[key]).ljust(width) for key, _, width in COLUMNS))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stream_memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", action="append", default=[], metavar="URL", help="a backend (repeatable; default: a temporary SQLite file)")
    p.add_argument("--rows", type=int, default=1_000_000, help="pugs to stream (default 1,000,000)")
    p.add_argument("--batch-size", type=int, default=1000, help="stream(batch_size) (default 1,000)")
    p.add_argument("--sample-every", type=int, default=0, help="rows between object counts (default: rows / 20)")
    p.add_argument("--json", action="store_true", help="print one JSON object per backend instead of the table")
    args = p.parse_args(argv)
    if args.rows < 1 or args.batch_size < 1:
        p.error("--rows and --batch-size must be positive")
    urls = args.db or ["sqlite"]
    sample_every = args.sample_every or max(args.batch_size, args.rows // 20)
    results: list[dict[str, Any]] = []
    if len(urls) == 1:
        results.append(measure(urls[0], args.rows, args.batch_size, sample_every))
    else:
        for url in urls:
            cmd = [sys.executable, "-m", "benchmarks.stream_memory", "--db", url, "--rows", str(args.rows),
                   "--batch-size", str(args.batch_size), "--sample-every", str(sample_every), "--json"]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                return proc.returncode
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if args.json:
        for r in results:
            print(json.dumps(r))
    else:
        print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
