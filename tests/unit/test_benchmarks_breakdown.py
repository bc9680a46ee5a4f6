"""``python -m benchmarks.breakdown`` runs on embedded SQLite and its phases add up."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _table(out: str, title: str) -> dict[str, dict[str, float]]:
    """Phase -> {"raw": ms, "mapper": ms} of the table headed ``title``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows: dict[str, dict[str, float]] = {}
    for line in lines[start + 3:]:
        if not line.strip():
            break
        phase, raw, mapper = (c.strip() for c in line.split("|"))
        rows[phase] = {k: float(v.split()[0]) for k, v in (("raw", raw), ("mapper", mapper)) if v}
    return rows


def test_breakdown_times_the_phases_of_each_system_and_they_add_up():
    cmd = [sys.executable, "-m", "benchmarks.breakdown", "--quick", "--repeat", "1", "--workload", "W2", "--workload", "W1"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    w2 = _table(proc.stdout, "sqlite W2")
    w1 = _table(proc.stdout, "sqlite W1")
    # A load is fetched and hydrated; an insert goes through the flush's steps.
    assert {"driver", "hydrate", "flush: cascades", "close", "total"} <= {p for p, v in w2.items() if "mapper" in v}
    assert {"add", "flush: cascades", "flush: write", "flush: mirror", "total"} <= {p for p, v in w1.items() if "mapper" in v}
    assert {"driver", "build", "total"} <= {p for p, v in w2.items() if "raw" in v}
    assert {"driver", "build", "total"} <= {p for p, v in w1.items() if "raw" in v}
    for table in (w1, w2):
        for system in ("raw", "mapper"):
            parts = sum(v[system] for p, v in table.items() if p != "total" and system in v)
            # Each cell is rounded to 0.1 ms.
            assert abs(parts - table["total"][system]) <= 0.1 * len(table) + 0.05, (system, table)
    assert re.search(r"\(\d+\.\d\dx\)", proc.stdout)
