"""The demo (``python -m domain``) runs on every backend, its single-table inheritance steps included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_shows_dogs_and_cats_from_one_table(backend):
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "domain", "--db", backend.url, "--reset"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Take in dogs and cats (one table, told apart by its kind column) (4 statements)" in out
    assert "rows of the animals table: dog Rex, dog Bella, cat Misty" in out
    assert "Read the shelter's animals back as dogs and cats (3 queries)" in out
    assert "   Misty: a Cat, indoor True" in out
    assert "query(Dog) filters by kind: Bella, Rex" in out
    assert "get(Animal, id) and get(Dog, id) give the same object: True" in out
    assert "a cat is no dog: get(Dog, 3) = None" in out
    assert out.rstrip().endswith("done.")
