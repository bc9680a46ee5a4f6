"""The distribution: its metadata, and static type checkers seeing mapper's types from an editable install."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_distribution_is_mapper_uow_with_an_spdx_licence_and_only_the_library():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == "mapper-uow"
    assert project["project"]["license"] == "MIT"
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["mapper", "mapper.*"]
    assert set(project["project"]["optional-dependencies"]["migrations"]) == {"alembic>=1.13", "SQLAlchemy>=2.0"}
    assert (ROOT / "mapper" / "py.typed").is_file()


def test_mypy_finds_the_types_of_an_editable_install(tmp_path: Path):
    # The installed dist-info, not a checkout's egg-info build artefact (which has no direct_url.json).
    installs = [json.loads(d.read_text("direct_url.json") or "{}") for d in metadata.distributions(name="mapper-uow")]
    assert any(i.get("dir_info", {}).get("editable") for i in installs), "install the checkout with pip install -e . (./run does)"
    probe = tmp_path / "probe.py"
    probe.write_text('import mapper\nx: int = mapper.Database("sqlite:///:memory:")\n')
    # Run outside the checkout, so that only the installed package can answer the import.
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", "/dev/null", "--python-executable", sys.executable, str(probe)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert 'Incompatible types in assignment (expression has type "Database", variable has type "int")' in done.stdout, done.stdout
    assert "missing library stubs" not in done.stdout and "Cannot find implementation" not in done.stdout
