"""The benchmark counts mapper's statements through the public hook, and the count is the session's.

``benchmarks.systems.base.StatementCounter`` subscribes with ``db.on_statement``; the harness
checks after every session that what the hook saw equals ``session.query_count`` and fails the
run otherwise. These tests run it at quick sizes on every backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.systems.base import StatementCounter
from tests.models import Owner, OwnerMapper, PugMapper

ROOT = Path(__file__).resolve().parents[2]

#: Statements per run that do not depend on the backend at quick sizes (W8: 100 distinct ids).
FIXED_COUNTS = {"W2": 1, "W3": 2, "W4": 3, "W5": 3, "W7q": 1, "W8": 100, "W9": 2}


def test_the_hook_sees_no_begin_or_commit_and_flags_savepoints(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    counter = StatementCounter()
    seen: list[tuple[str, bool]] = []
    with db.on_statement(counter.count), db.on_statement(lambda e: seen.append((e.sql.split()[0].upper(), e.control))):
        with db.session() as s:
            s.add(Owner("Tom"))
            with s.begin_nested():
                s.add(Owner("Ann"))
            s.commit()  # a second transaction follows in the same session
            assert s.query(Owner).count() == 2
            sent = s.query_count
    # BEGIN and COMMIT are transaction control on every backend: the hook never sees them.
    assert [word for word, control in seen if not control] == ["INSERT", "INSERT", "SELECT"]
    assert [word for word, control in seen if control] == ["SAVEPOINT", "RELEASE"]
    assert counter.sent == sent == 3


def test_a_quick_run_counts_every_workload_through_the_hook(backend, tmp_path):
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable, "-m", "benchmarks", "--quick", "--repeat", "1", "--no-sqlite", "--db", backend.url,
        "--async", "--system", "mapper", "--system", "mapper_async", "--json", str(out),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    # A count the hook and query_count disagree on fails the run (exit 1, the cell FAILED).
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    (result,) = json.loads(out.read_text())["backends"]
    workloads = result["workloads"]
    assert set(workloads) == {"W1", "W2", "W3", "W4", "W5", "W6", "W7", "W7q", "W8", "W9", "W10"}
    for key, row in workloads.items():
        for system in ("mapper", "mapper_async"):
            cell = row["systems"][system]
            assert cell["error"] is None and len(cell["queries"]) == 1, (key, system, cell)
            assert cell["queries"][0] >= 1, (key, system)
            if key in FIXED_COUNTS:
                assert cell["queries"] == [FIXED_COUNTS[key]], (key, system, cell["queries"])
        # The async session sends what the sync one does.
        assert row["systems"]["mapper"]["queries"] == row["systems"]["mapper_async"]["queries"], key
