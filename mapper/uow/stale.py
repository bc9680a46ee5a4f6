"""Naming the stale rows of a flush, only after a statement matched fewer rows than it should:
which rows another writer changed or deleted, read back locked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import errors
from ..mapping import ClassMapping
from ..schema import Column, Table
from ..state import ObjectState
from .persister import Persister, old_value

if TYPE_CHECKING:
    from .execute import UnitOfWork

__all__ = ["stale_delete", "stale_update"]


def _rows_now(uow: UnitOfWork, table: Table, p: Persister, keys: list[Any], columns: list[Column]) -> dict[Any, list[Any]] | None:
    """The values of ``columns`` in the rows with these keys, by key; None if they cannot be read.

    The rows are read locked: that reads the latest committed version, where a plain SELECT
    under REPEATABLE READ (MariaDB's default) would show the snapshot from before the change.
    """
    pk = list(p.mapping.pk)
    sel = pk + columns
    out: dict[Any, list[Any]] = {}
    step = uow.dialect.keys_per_statement(len(pk), len(keys))
    try:
        for i in range(0, len(keys), step):
            chunk = keys[i : i + step]
            sql = uow.compiler.select_by_keys(table, sel, pk, len(chunk), for_update=True)
            for row in uow.conn.fetchall(sql, uow.dialect.key_params(pk, chunk)):
                vals = [uow.result(c, v) for c, v in zip(sel, row)]
                out[vals[0] if len(pk) == 1 else tuple(vals[: len(pk)])] = vals[len(pk) :]
    except (errors.DatabaseError, errors.QueryBudgetExceeded):
        # The flush fails either way; the message then names the batch instead.
        return None
    return out

def stale_delete(uow: UnitOfWork, table: Table, p: Persister, chunk: list[ObjectState], matched: int) -> str:
    m = p.mapping
    version = m.version
    assert version is not None
    keys = [uow.old_key(st, p.spec) for st in chunk]
    found = _rows_now(uow, table, p, keys, [version])
    head = f"DELETE of {m.cls.__name__} matched {matched} of {len(chunk)} rows"
    fix = "Roll back, reload and try again"
    if found is None:
        return f"{head} (their version changed, or they were deleted elsewhere); keys {keys[:10]}. {fix}"
    # A row still there was not deleted: its version changed. Rows deleted elsewhere are
    # gone like the ones this statement deleted, so they can only be counted.
    named = [
        f"{_describe(m, k)} (version {found[k][0]!r} in the database, {old_value(st, p.spec, version)!r} when read)"
        for st, k in zip(chunk, keys)
        if k in found
    ]
    gone = len(chunk) - matched - len(named)
    parts = [_names(named)] if named else []
    if gone > 0:
        parts.append(f"{gone} already deleted elsewhere")
    return f"{head}; stale: {'; '.join(parts)}. {fix}"

def stale_update(
    uow: UnitOfWork, table: Table, p: Persister, set_names: tuple[str, ...], items: list[tuple[ObjectState, list[Any]]], matched: int
) -> str:
    m = p.mapping
    spec = p.spec
    version = m.version
    sets = [c for c in (table.column(n) for n in set_names) if c is not None]
    old_keys = [uow.old_key(st, spec) for st, _ in items]
    # A row whose key this flush changed is found under its new key once written.
    new_keys = [spec.key_of(st) for st, _ in items]
    found = _rows_now(uow, table, p, list(dict.fromkeys([*old_keys, *new_keys])), sets)
    head = f"UPDATE of {m.cls.__name__} matched {matched} of {len(items)} rows"
    fix = "Roll back, reload the objects and apply the change again"
    if found is None:
        why = "their version changed (updated elsewhere)" if version is not None else "the rows are gone"
        return f"{head} ({why}); keys {old_keys[:10]}. {fix}"
    vpos = next((i for i, c in enumerate(sets) if c is version), None)
    sure: list[str] = []
    unsure: list[str] = []
    for (st, _), old, new in zip(items, old_keys, new_keys):
        now = found.get(new)
        if now is None:
            before = found.get(old)
            what = "deleted" if before is None else "not updated"
            if before is not None and vpos is not None:
                what = f"version {before[vpos]!r} in the database, {old_value(st, spec, sets[vpos])!r} when read"
            sure.append(f"{_describe(m, old)} ({what})")
        elif vpos is not None and now[vpos] != spec.get(st, sets[vpos].key):
            sure.append(f"{_describe(m, old)} (version {now[vpos]!r} in the database, "
                        f"{old_value(st, spec, sets[vpos])!r} when read)")
        elif any(v != spec.get(st, c.key) for c, v in zip(sets, now)):
            # The version this flush writes, but other values: another writer's change.
            what = "changed elsewhere"
            if vpos is not None:
                what = f"version {now[vpos]!r} in the database, {old_value(st, spec, sets[vpos])!r} when read"
            unsure.append(f"{_describe(m, old)} ({what})")
    missing = len(items) - matched
    # Values read back may differ from the ones written only in form (a JSON document's key
    # order, say): rows that differ only so are named when they account for the shortfall.
    named = sure + unsure if len(sure) + len(unsure) == missing else sure
    parts = [_names(named)] if named else []
    rest = missing - len(named)
    if rest > 0:
        rows = f"{rest} {'more ' if named else ''}row{'s' if rest > 1 else ''}"
        parts.append(f"{rows} changed elsewhere to exactly the values and version this flush writes (not identified)")
    return f"{head}; stale: {'; '.join(parts)}. {fix}"


def _describe(m: ClassMapping[Any], key: Any) -> str:
    """An object named by class and key, as in ``Cell(row=1, col=2)``."""
    values = [key] if len(m.pk) == 1 else list(key)
    return f"{m.cls.__name__}(" + ", ".join(f"{c.key}={v!r}" for c, v in zip(m.pk, values)) + ")"


def _names(items: list[str], shown: int = 10) -> str:
    """The first ``shown`` items, and how many more there are."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
