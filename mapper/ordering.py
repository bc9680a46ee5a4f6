"""Commit order from the table foreign-key graph (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .schema import Table

__all__ = ["table_order"]


def table_order(tables: Mapping[str, Table], only: Iterable[str] | None = None) -> list[str]:
    """Table names parent-first: every table after the tables its foreign keys reference.

    Tables that reference each other (a cycle) keep declaration order among themselves;
    the flush breaks such cycles at a nullable foreign key. Self-references are ignored here.

    Args:
        tables: every table of the registry, in declaration order.
        only: restrict the result to these names (the order still follows the whole graph).
    """
    position = {name: i for i, name in enumerate(tables)}
    deps = {
        name: sorted({fk.ref_table for fk in t.foreign_keys if fk.ref_table != name and fk.ref_table in tables}, key=position.__getitem__)
        for name, t in tables.items()
    }
    out: list[str] = []
    done: set[str] = set()
    active: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in active:
            return
        active.add(name)
        for dep in deps[name]:
            visit(dep)
        active.discard(name)
        done.add(name)
        out.append(name)

    for name in tables:
        visit(name)
    if only is not None:
        wanted = set(only)
        return [n for n in out if n in wanted]
    return out
