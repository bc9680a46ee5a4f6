"""The three systems under test. Each has one method per workload (``w1`` ... ``w9``, ``w7q``)
taking the workload's context and returning what the workload produces (objects, or the
number of rows deleted); the harness times the call, reads ``queries`` and verifies."""

from __future__ import annotations

from .base import System

__all__ = ["System", "SYSTEMS", "load_system"]

#: In the order runs alternate within a repetition.
SYSTEMS = ["raw", "mapper", "sqla"]


def load_system(name: str) -> type[System]:
    if name == "raw":
        from .raw_system import RawSystem

        return RawSystem
    if name == "mapper":
        from .mapper_system import MapperSystem

        return MapperSystem
    if name == "sqla":
        from .sqla_system import SqlaSystem

        return SqlaSystem
    raise KeyError(name)


def available(name: str) -> tuple[bool, str]:
    """Whether the system's optional dependency is installed (only SQLAlchemy is optional)."""
    if name != "sqla":
        return True, ""
    try:
        import sqlalchemy
    except ImportError:
        return False, "SQLAlchemy is not installed (pip install -e '.[bench]')"
    major = int(sqlalchemy.__version__.split(".")[0])
    if major < 2:
        return False, f"SQLAlchemy {sqlalchemy.__version__} is too old (need 2.x)"
    return True, ""


