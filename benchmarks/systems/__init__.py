"""The three systems under test. Each has one method per workload (``w1`` ... ``w9``, ``w7q``)
taking the workload's context and returning what the workload produces (objects, or the
number of rows deleted); the harness times the call, reads ``queries`` and verifies."""

from __future__ import annotations

from .base import System

__all__ = ["System", "SYSTEMS", "ASYNC_SYSTEMS", "EXTRA_SYSTEMS", "load_system"]

#: In the order runs alternate within a repetition.
SYSTEMS = ["raw", "mapper", "sqla"]
#: Added by ``--async``: the asyncio faces, beside the sync ones.
ASYNC_SYSTEMS = ["mapper_async", "sqla_async"]
#: Run only when named with ``--system``: mapper without its counting callback (the hook's cost).
EXTRA_SYSTEMS = ["mapper_unwatched"]


def load_system(name: str) -> type[System]:
    if name == "raw":
        from .raw_system import RawSystem

        return RawSystem
    if name == "mapper":
        from .mapper_system import MapperSystem

        return MapperSystem
    if name == "mapper_unwatched":
        from .mapper_system import UnwatchedMapperSystem

        return UnwatchedMapperSystem
    if name == "sqla":
        from .sqla_system import SqlaSystem

        return SqlaSystem
    if name in ASYNC_SYSTEMS:
        from .async_systems import MapperAsyncSystem, SqlaAsyncSystem

        return MapperAsyncSystem if name == "mapper_async" else SqlaAsyncSystem
    raise KeyError(name)


def available(name: str) -> tuple[bool, str]:
    """Whether the system's optional dependency is installed (only SQLAlchemy is optional)."""
    if name == "sqla_async":
        try:
            import greenlet  # noqa: F401 - SQLAlchemy's asyncio layer runs on it
        except ImportError:
            return False, "SQLAlchemy's asyncio ORM needs greenlet (pip install -e '.[bench]')"
        name = "sqla"
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


