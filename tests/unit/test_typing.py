"""Typed columns under mypy --strict: ``tests/typing/typed_ok.py`` must type-check, and every line
of ``tests/typing/typed_fail.py`` marked ``# E: code`` must be an error of that code (and no other
line an error)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
OK = ROOT / "tests" / "typing" / "typed_ok.py"
FAIL = ROOT / "tests" / "typing" / "typed_fail.py"

pytest.importorskip("mypy")


def _mypy(tmp_path: pathlib.Path, *files: pathlib.Path) -> list[tuple[str, int, str]]:
    """mypy --strict on ``files``; returns (file name, line, error code) of every error."""
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--show-error-codes",
         "--cache-dir", str(tmp_path / "cache"), *map(str, files)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    found = []
    for line in proc.stdout.splitlines():
        m = re.match(r"^(.*?):(\d+): error: .*\[([a-z-]+)\]$", line)
        if m:
            found.append((pathlib.Path(m[1]).name, int(m[2]), m[3]))
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return found


def test_typed_columns_accept_their_types_and_refuse_others(tmp_path):
    errors = _mypy(tmp_path, OK, FAIL)
    assert [e for e in errors if e[0] == OK.name] == []
    expected = [
        (FAIL.name, n, m[1])
        for n, line in enumerate(FAIL.read_text().splitlines(), 1)
        if (m := re.search(r"# E: ([a-z-]+)$", line))
    ]
    assert len(expected) == 6
    assert sorted(e for e in errors if e[0] == FAIL.name) == sorted(expected)
