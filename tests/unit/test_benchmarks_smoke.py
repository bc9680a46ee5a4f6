"""The benchmark suite runs end to end on embedded SQLite (no server, no timing assertions)."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_and_prints_the_table():
    cmd = [
        sys.executable, "-m", "benchmarks", "--quick",
        "--workload", "W1", "--workload", "W3",
        "--system", "mapper", "--system", "raw",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    out = proc.stdout
    assert "SQLite" in out
    header = next((line for line in out.splitlines() if line.startswith("workload")), None)
    assert header is not None, out
    assert "raw s" in header and "mapper s (ratio)" in header and "queries raw/mapper" in header
    rows = {line.split()[0]: line for line in out.splitlines() if line[:2] in ("W1", "W3")}
    assert set(rows) == {"W1", "W3"}, out
    for line in rows.values():
        assert "FAILED" not in line
        assert "x)" in line  # the mapper column carries its ratio to raw
    assert "W2" not in {line.split()[0] for line in out.splitlines() if line.strip()}
    # progress goes to stderr, one line per run
    assert "[sqlite] W1" in proc.stderr and "run 2/2" in proc.stderr


def test_async_systems_run_beside_the_sync_ones_and_pass_their_checks():
    cmd = [
        sys.executable, "-m", "benchmarks", "--quick", "--async", "--repeat", "1",
        "--workload", "W3", "--workload", "W9",
        "--system", "raw", "--system", "mapper", "--system", "mapper_async", "--system", "sqla_async",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    header = next(line for line in proc.stdout.splitlines() if line.startswith("workload"))
    assert "mapper_async s (ratio)" in header and "sqla_async s (ratio)" in header
    rows = [line for line in proc.stdout.splitlines() if line[:2] in ("W3", "W9")]
    assert len(rows) == 2 and not any("FAILED" in line for line in rows)
    # The async session sends what the sync one does: W3 two statements, W9 two (explicit load).
    assert all(line.rstrip().endswith("2/2/2/3") or line.rstrip().endswith("2/2/2/2") for line in rows), rows


def test_floor_measurement_runs_and_checks_every_system():
    cmd = [sys.executable, "-m", "benchmarks.floor", "--quick", "--repeat", "1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    line = next((x for x in proc.stdout.splitlines() if x.startswith("sqlite")), None)
    assert line is not None, proc.stdout
    cells = [c.strip().split(" ")[0] for c in line.removeprefix("sqlite").split("|")]
    assert cells == ["raw", "floor", "floor", "mapper"], line
    assert "(1.00x)" in line.split("|")[0]


def test_stream_memory_measurement_runs_and_reports_bounded_live_objects():
    cmd = [sys.executable, "-m", "benchmarks.stream_memory", "--rows", "3000", "--batch-size", "500", "--json"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    import json

    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"].startswith("SQLite")
    assert result["rows"] == 3000 and result["batch_size"] == 500
    assert result["statements"] == 6  # one SELECT per batch
    # Pugs of two batches at most, with the owners they reference (one per ten pugs).
    assert 0 < result["peak_live_objects"] <= 2 * (500 + 50)
    assert result["after_live_objects"] <= 2
    cmd = [sys.executable, "-m", "benchmarks.stream_memory", "--rows", "1200", "--batch-size", "400"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    header, row = proc.stdout.strip().splitlines()
    assert "live objects (peak)" in header and "RSS growth MB (peak)" in header
    assert row.startswith("SQLite") and "| 1200 " in row
