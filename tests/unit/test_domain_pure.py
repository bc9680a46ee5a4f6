"""The domain model is persistence-free: domain/model.py imports nothing from ``mapper``."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "domain" / "model.py"


def _imported_modules(tree: ast.AST) -> list[str]:
    """Every module named by an import statement anywhere in the tree (TYPE_CHECKING blocks included)."""
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # a relative import stays inside the domain package
                base = "domain" + ("." + node.module if node.module else "")
                names.append(base)
                names.extend(f"{base}.{alias.name}" for alias in node.names)
            elif node.module:
                names.append(node.module)
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            names.extend(a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def test_model_source_imports_nothing_from_mapper() -> None:
    tree = ast.parse(MODEL.read_text(encoding="utf-8"), filename=str(MODEL))
    imported = _imported_modules(tree)
    assert imported, "the import reader found no imports at all in domain/model.py"
    offending = [m for m in imported if m == "mapper" or m.startswith("mapper.")]
    assert not offending, f"domain/model.py must not import the persistence layer: {offending}"
    # A relative import could reach the mappers module, which does import mapper.
    reaching = [m for m in imported if m.startswith("domain.") and m != "domain.model"]
    assert not reaching, f"domain/model.py must import no other domain module: {reaching}"


def test_importing_the_model_does_not_import_mapper() -> None:
    code = "import sys, domain.model; assert 'mapper' not in sys.modules, sorted(m for m in sys.modules if m.startswith('mapper'))"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
