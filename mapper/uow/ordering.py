"""Commit order from the table foreign-key graph (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..schema import ForeignKeyConstraint, Table

__all__ = ["table_order", "cycle_keys"]

#: The full order of recently seen table sets, by ``id`` (each entry holds its mapping, so the
#: id cannot be reused while cached). A registry's tables do not change once it is built, and
#: every flush asks for their order.
_ORDERS: dict[int, tuple[Mapping[str, Table], int, list[str]]] = {}
_ORDERS_KEPT = 16


def table_order(tables: Mapping[str, Table], only: Iterable[str] | None = None) -> list[str]:
    """Table names parent-first: every table after the tables its foreign keys reference.

    Tables that reference each other (a cycle) are ordered by the graph too: the cycle is
    broken at its nullable foreign keys, so a table whose NOT NULL key references another
    table of the cycle comes after that table, and the flush writes the nullable key with a
    follow-up UPDATE. A nullable key is kept in the order where it closes no cycle with the
    keys kept before it (NOT NULL keys first, then by table name), so fewer keys are broken,
    and the same ones whatever the order of the mappers. Only a cycle of NOT NULL keys falls back to declaration order (the
    flush then refuses rows that need it). Self-references are ignored here.

    Args:
        tables: every table of the registry, in declaration order.
        only: restrict the result to these names (the order still follows the whole graph).

    Returns:
        The table names, parent-first.
    """
    hit = _ORDERS.get(id(tables))
    if hit is not None and hit[0] is tables and hit[1] == len(tables):
        out = hit[2]
    else:
        out = _graph_order(tables)
        if len(_ORDERS) >= _ORDERS_KEPT:
            del _ORDERS[next(iter(_ORDERS))]
        _ORDERS[id(tables)] = (tables, len(tables), out)
    if only is not None:
        wanted = set(only)
        return [n for n in out if n in wanted]
    return list(out)


def _graph_order(tables: Mapping[str, Table]) -> list[str]:
    """The whole parent-first order (see ``table_order``)."""
    position = {name: i for i, name in enumerate(tables)}
    edges = _edges(tables)
    component = _components(tables, edges)
    deps: dict[str, set[str]] = {name: set() for name in tables}
    breakable: list[tuple[str, str]] = []
    for name, refs in edges.items():
        for ref, nullable in refs.items():
            if nullable and component[ref] == component[name]:
                breakable.append((name, ref))
            else:
                deps[name].add(ref)
    # Keep a nullable key inside a cycle only where it closes no cycle with what is kept. They
    # are tried by table name, not by position, so that which keys break never depends on the
    # order of the mappers. (A key left out always points backwards in the final order: what
    # it references already depends on its table through kept keys.)
    for name, ref in sorted(breakable):
        if not _reaches(deps, ref, name):
            deps[name].add(ref)
    ordered = {name: sorted(refs, key=position.__getitem__) for name, refs in deps.items()}
    out: list[str] = []
    done: set[str] = set()
    active: set[str] = set()

    def visit(name: str) -> None:
        if name in done or name in active:
            return
        active.add(name)
        for dep in ordered[name]:
            visit(dep)
        active.discard(name)
        done.add(name)
        out.append(name)

    for name in tables:
        visit(name)
    return out


def cycle_keys(tables: Mapping[str, Table], name: str) -> list[ForeignKeyConstraint]:
    """The foreign keys between the tables of the cycle that ``name`` is part of (its strongly
    connected component), self-references excepted, in declaration order; empty when the
    table is in no cycle."""
    edges = _edges(tables)
    component = _components(tables, edges)
    return [
        fk
        for table_name, t in tables.items()
        if component[table_name] == component[name]
        for fk in t.foreign_keys
        if fk.ref_table != table_name and fk.ref_table in tables and component[fk.ref_table] == component[name]
    ]


def _edges(tables: Mapping[str, Table]) -> dict[str, dict[str, bool]]:
    """table -> {referenced table: whether every key from one to the other may be NULL}."""
    edges: dict[str, dict[str, bool]] = {}
    for name, t in tables.items():
        refs = edges.setdefault(name, {})
        for fk in t.foreign_keys:
            if fk.ref_table == name or fk.ref_table not in tables:
                continue
            cols = [t.column(c) for c in fk.columns]
            nullable = all(c is not None and c.nullable for c in cols)
            refs[fk.ref_table] = refs.get(fk.ref_table, True) and nullable
    return edges


def _components(tables: Mapping[str, Table], edges: Mapping[str, Mapping[str, bool]]) -> dict[str, int]:
    """The strongly connected component of each table (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    component: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    labels = 0
    for root in tables:
        if root in index:
            continue
        work: list[tuple[str, list[str]]] = [(root, list(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, list(edges[nxt])))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component[member] = labels
                    if member == node:
                        break
                labels += 1
    return component


def _reaches(deps: Mapping[str, set[str]], start: str, goal: str) -> bool:
    """Whether ``goal`` is reachable from ``start`` through ``deps``."""
    seen = {start}
    todo = [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for nxt in deps[node]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False
