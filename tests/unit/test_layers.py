"""The import direction of docs/architecture.md ("Layers"), read from the source: no module imports upward."""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PKG = ROOT / "mapper"

# Lower rank = lower layer. A module may import only modules of strictly lower rank
# (dialect modules may import dialects.base, which shares their rank).
RANK = {
    "errors": 0,
    "_typing": 0,
    "codegen": 0,
    "types": 1,
    "events": 1,
    "expressions": 2,
    "schema": 3,
    "functions": 3,
    "lazy": 3,
    "relations": 4,
    "dialects": 4,
    "validation": 4,
    "inheritance": 4,
    "embedded": 4,
    "scopes": 4,
    "mapping": 5,
    "sql": 5,
    "pool": 1,
    "engine": 6,
    "health": 7,
    "replicas": 7,
    "state": 6,
    "serialize": 6,
    "identity": 7,
    "lifecycle": 7,
    "seam": 8,
    "uow.__init__": 8,
    "uow.changes": 8,
    "uow.cascade": 8,
    "uow.ordering": 8,
    "uow.persister": 9,
    "uow.stale": 10,
    "uow.execute": 11,
    "loading": 9,
    "release": 9,
    "uow.tracker": 10,
    "graph": 10,
    "uow.plan": 12,
    "uow.mirror": 12,
    "uow.restore": 11,
    "core": 13,
    "clauses": 13,
    "query": 14,
    "writes": 14,
    "accessors": 15,
    "merge": 15,
    "replace": 15,
    "session": 16,
    "transaction": 17,
    "database": 18,
    "aio_drivers": 2,
    "aio": 18.5,
    "__init__": 19,
    "testing": 19,
    "__main__": 20,
    "pytest_plugin": 20,
    "schema_read": 7,
    "drift": 8,
    "ddl": 9,
    "migrations": 19,
    "reflect": 9,
}
# Branch rules of docs/architecture.md: (importer, forbidden import).
FORBIDDEN = [
    ("relations", "sql"), ("relations", "engine"), ("relations", "session"), ("relations", "dialects"),
    ("mapping", "sql"), ("mapping", "engine"), ("mapping", "session"), ("mapping", "dialects"),
    ("dialects", "mapping"), ("dialects", "session"), ("dialects", "relations"),
    *((f"uow.{pure}", io) for pure in ("changes", "cascade", "ordering") for io in ("engine", "sql", "dialects", "session")),
]


def _top(module: str) -> str:
    """'mapper.dialects.sqlite' -> 'dialects'; 'mapper.session' -> 'session';
    'mapper.uow.cascade' -> 'uow.cascade' (the unit of work's modules have ranks of their own)."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "uow":
        return f"uow.{parts[2]}"
    return parts[1] if len(parts) > 1 else "__init__"


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (annotation-only imports are allowed)."""
    out: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            stack.extend(node.orelse)
            continue
        out.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return out


def imports_of(src: str, package: list[str]) -> set[str]:
    """Every mapper-internal module that source in ``package`` imports at run time."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(src)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "mapper"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                if node.module is None:
                    found |= {".".join(base + [a.name]) for a in node.names}
                else:
                    found.add(".".join(base + [node.module]))
            elif node.module and node.module.split(".")[0] == "mapper":
                found.add(node.module)
    return found


def violations(me: str, imported: set[str]) -> list[str]:
    """Why each import of layer ``me`` breaks the direction rules (empty when none does)."""
    out = []
    for module in sorted(imported):
        target = _top(module)
        if target == me:
            continue
        if (me, target) in FORBIDDEN:
            out.append(f"imports {module}: forbidden by the branch rules of docs/architecture.md")
        elif RANK[target] >= RANK[me]:
            out.append(f"(rank {RANK[me]}) imports {module} (rank {RANK[target]}): imports must point down")
    return out


def _layer_and_imports(path: pathlib.Path) -> tuple[str, set[str]]:
    rel = path.relative_to(ROOT).with_suffix("")
    package = list(rel.parts[:-1])
    return _top(".".join(rel.parts)), imports_of(path.read_text(), package)


def _modules() -> list[pathlib.Path]:
    return sorted(PKG.rglob("*.py"))


def test_every_module_has_a_rank():
    for path in _modules():
        name = _top(".".join(path.relative_to(ROOT).with_suffix("").parts))
        assert name in RANK, f"{path.relative_to(ROOT)} has no layer in RANK; place it in the import order"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    me, imported = _layer_and_imports(path)
    problems = violations(me, imported)
    assert not problems, f"{path.relative_to(ROOT)} (layer {me}): " + "; ".join(problems)


def test_mapper_never_imports_domain():
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n == "domain" or n.startswith("domain.") for n in names), path


def test_a_wrong_way_import_is_caught():
    # The checker must flag an upward import, a forbidden branch import, and ignore TYPE_CHECKING.
    upward = imports_of("from .session import Session\n", ["mapper"])
    assert violations("relations", upward)
    assert violations("mapping", imports_of("from . import sql\n", ["mapper"]))
    assert violations("dialects", imports_of("from ..mapping import Mapper\n", ["mapper", "dialects"]))
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .session import Session\n"
    assert not violations("query", imports_of(guarded, ["mapper"]))


def test_import_mapper_needs_no_driver():
    import subprocess
    import sys

    code = (
        "import sys, mapper; "
        "bad = [m for m in ('psycopg', 'pymysql', 'psycopg_pool', 'MySQLdb') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _session_private_names() -> set[str]:
    """The private members of Session: the methods it defines and the attributes it sets."""
    tree = ast.parse((PKG / "session.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Session")
    names = {n.name for n in cls.body if isinstance(n, ast.FunctionDef) and n.name.startswith("_") and not n.name.startswith("__")}
    for node in ast.walk(cls):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            if node.attr.startswith("_") and not node.attr.startswith("__"):
                names.add(node.attr)
    return names


def test_no_module_touches_the_private_members_of_session():
    # Loaders, queries, accessors and the unit of work reach the session through the seam
    # (mapper.seam.SessionSeam, implemented by mapper.core.SessionCore), never through
    # Session's own private members: any `x._name` (x not `self`) with a name Session keeps
    # privately is refused outside session.py.
    private = _session_private_names()
    assert {"_t", "_core", "_check", "_conn"} <= private
    found = []
    for path in _modules():
        if path.name == "session.py" and path.parent == PKG:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in private
                and not (isinstance(node.value, ast.Name) and node.value.id == "self")
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert found == [], found


def test_nothing_below_the_session_knows_it():
    # The direction at run time too: the modules the session drives are handed the seam, so
    # none of them names Session, not even for annotations.
    allowed = {"session", "transaction", "database", "aio", "__init__", "__main__", "pytest_plugin"}
    for path in _modules():
        layer = _top(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if layer in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1] == "session":
                raise AssertionError(f"{path.relative_to(ROOT)} imports the session module (line {node.lineno})")
