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
    assert cells == ["raw", "floor", "floor", "columnar", "mapper"], line
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


def test_a_statement_count_that_differs_from_query_count_fails_the_run(monkeypatch, capsys, tmp_path):
    from benchmarks.__main__ import main
    from benchmarks.systems.base import StatementCounter

    def count_twice(self, event):
        self.sent += 2

    monkeypatch.setattr(StatementCounter, "count", count_twice)
    status = main([
        "--quick", "--repeat", "1", "--workload", "W2", "--system", "raw", "--system", "mapper",
        "--db", f"sqlite:///{tmp_path / 'bench.db'}",
    ])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAILED W2 [mapper]: mapper: db.on_statement saw 2 statement(s) where session.query_count says 1" in out
    assert "[raw]" not in out  # raw counts by hand and passes


def test_the_readme_table_marks_the_cells_that_miss_their_target(tmp_path):
    import json

    def cell(ratio, queries):
        return {"times": [], "median": None, "ratio_to_raw": ratio, "queries": queries, "error": None}

    data = {
        "repeat": 7, "warmup": 1, "quick": False,
        "backends": [{
            "name": "sqlite", "label": "SQLite 3.40.1",
            "workloads": {
                "W2": {"title": "load flat", "systems": {"raw": cell(1.0, [1]), "mapper": cell(1.29, [1]), "sqla": cell(4.5, [1])}},
                "W3": {"title": "eager one-to-many", "systems": {"mapper": cell(1.31, [2, 3]), "sqla": cell(3.0, [2])}},
                "W7": {"title": "delete (UoW)", "systems": {"mapper": cell(None, [2])}},
                "W10": {"title": "bulk import", "systems": {"mapper": cell(9.0, [1])}},
            },
        }],
    }
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    cmd = [sys.executable, "-m", "benchmarks.report", "--markdown", str(path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "| workload | target | SQLite mapper | SQLAlchemy | statements |"
    assert lines[2] == "| W2 load flat | ≤ 1.3x, 1 statement | 1.29x | 4.50x | 1 |"
    assert lines[3] == "| W3 eager one-to-many | ≤ 1.3x, 2 statements | **1.31x** | 3.00x | **2-3** |"
    assert lines[4] == "| W7 delete (UoW) | ≤ 3x | FAILED | - | 2 |"
    assert not any(line.startswith("| W10") for line in lines)  # no target: left to the full tables
    assert "Median of 7 timed runs after 1 warm-up" in proc.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", "--markdown", str(tmp_path / "none.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert missing.returncode != 0 and "cannot read the results" in missing.stderr
