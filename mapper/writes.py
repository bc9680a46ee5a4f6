"""Writes outside the flush: upserts of objects, and plain rows inserted or updated without objects.

``upsert`` writes objects at once with ``INSERT ... ON CONFLICT DO UPDATE`` (``ON DUPLICATE KEY
UPDATE`` on MariaDB) and makes them persistent in the session, holding the row's values as the
database returned them. ``insert_rows`` / ``update_rows`` send rows given as dicts, converted by
the column types, one statement per chunk, and build no objects.

Every name and value is checked, and converted, before the first statement is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from . import errors
from .dialects.base import Dialect
from .engine import Connection
from .mapping import ClassMapping
from .schema import Column
from .seam import SessionSeam
from .state import PENDING, PERSISTENT, ObjectState

__all__ = ["upsert", "insert_rows", "update_rows"]


# -- upsert ---------------------------------------------------------------------------------------


def _conflict_columns(m: ClassMapping[Any], on: Sequence[str] | str | None) -> list[Column]:
    """The columns of the key the upsert matches on: the primary key, or a unique key named by ``on``."""
    if on is None:
        return list(m.pk)
    names = [on] if isinstance(on, str) else list(on)
    if not names:
        msg = f"upsert(on=...) names the attributes of a unique key of {m.name}; got none"
        raise errors.QueryError(msg)
    cols: list[Column] = []
    for name in names:
        col = m.by_key.get(name) if isinstance(name, str) else None
        if col is None:
            msg = f"upsert(on={on!r}): {m.cls.__name__} has no mapped attribute {name!r}; {m.name} maps {sorted(m.by_key)}"
            raise errors.QueryError(msg)
        cols.append(col)
    db_names = tuple(c.name for c in cols)
    unique = (
        [c.name for c in m.pk] == list(db_names)
        or (len(cols) == 1 and cols[0].unique)
        or any(tuple(u) == db_names for u in m.table.uniques)
    )
    if not unique:
        msg = (
            f"upsert(on={on!r}): {m.name} has no primary or unique key on exactly {list(names)}; "
            "the conflict must be on a declared key (Column(..., unique=True), or the primary key)"
        )
        raise errors.QueryError(msg)
    return cols


def _refuse_held(s: SessionSeam, m: ClassMapping[Any], obj: Any, conflict: list[Column], key: tuple[Any, ...], pk: tuple[Any, ...]) -> None:
    """An object the session holds already has the row's key: upserting another would put two
    objects on one row (``DuplicateIdentityError``, as ``add()``)."""
    t = s.tracker
    held = t.identity.get(m, pk[0] if len(pk) == 1 else pk) if None not in pk else None
    on_pk = len(conflict) == len(m.pk) and all(c is p for c, p in zip(conflict, m.pk))
    if held is None and not on_pk:
        spec = t.spec(m)
        held = next((h for h in t.identity.for_mapping(m).values()
                     if h.snap is not None and tuple(spec.get(h, c.key) for c in conflict) == key), held)
    if held is not None and held.obj is not obj:
        names = ", ".join(f"{c.key}={v!r}" for c, v in zip(conflict, key))
        msg = (
            f"{m.cls.__name__} with {names} is already in this session; change that object "
            "(session.get() or a query) instead of upserting another"
        )
        raise errors.DuplicateIdentityError(msg)


def _row_of(s: SessionSeam, m: ClassMapping[Any], obj: Any, st: ObjectState | None) -> dict[str, Any]:
    """The column values of an object by attribute name, hidden key columns derived from its references."""
    out: dict[str, Any] = {}
    for c in m.attr_columns:
        out[c.key] = getattr(obj, c.key)
    hidden = {c.key for c in m.hidden_columns}
    spec = s.tracker.spec(m)
    for c in m.hidden_columns:
        out[c.key] = spec.get(st, c.key) if st is not None else None
    for info in m.relations.values():
        if not info.kind.reference or not any(c.key in hidden for c in info.fk_cols):
            continue
        target = getattr(obj, info.key, None)
        if target is None:
            for c in info.fk_cols:
                out[c.key] = None
            continue
        tst = s.tracker.lookup(target)
        tspec = s.tracker.spec(info.target)
        for fk, ref in zip(info.fk_cols, info.ref_cols):
            value = tspec.get(tst, ref.key) if tst is not None else getattr(target, ref.key, None)
            if value is None:
                msg = (
                    f"upsert(): {m.cls.__name__}.{info.key} refers to a {info.target.cls.__name__} without a key; "
                    "add and flush it first, or upsert it before"
                )
                raise errors.QueryError(msg)
            out[fk.key] = value
    sync = spec.embedded
    if sync is not None:
        # Value objects (Embedded): their parts, from the object itself.
        parts = sync.to_hidden(obj, tuple(out[c.key] for c in m.hidden_columns))
        out.update(zip((c.key for c in m.hidden_columns), parts))
    return out


def upsert(s: SessionSeam, objs: Sequence[Any], on: Sequence[str] | str | None) -> None:
    """Insert each object, or update the row with the same key; the objects become persistent.

    See ``Session.upsert``.
    """
    if not objs:
        return
    t = s.tracker
    by_mapping: dict[ClassMapping[Any], list[Any]] = {}
    for obj in objs:
        by_mapping.setdefault(t.mapping_of(obj), []).append(obj)
    plans = [_plan_upsert(s, m, group, on) for m, group in by_mapping.items()]
    conn = s.read()
    t.wrote = True
    for plan in plans:
        plan(conn)


def _plan_upsert(s: SessionSeam, m: ClassMapping[Any], objs: list[Any], on: Sequence[str] | str | None) -> Callable[[Connection], None]:
    """Check and convert everything first; return what sends the statements and registers the objects."""
    t = s.tracker
    d = s.dialect
    if m.version is not None:
        msg = (
            f"upsert() cannot check {m.name}.{m.version.key} (a version column): an upsert overwrites whatever "
            "is there; add() new objects and change loaded ones instead"
        )
        raise errors.QueryError(msg)
    conflict = _conflict_columns(m, on)
    now = d.now() if m.timestamps else None
    auto = m.autoinc
    rows: list[tuple[Any, ObjectState | None, dict[str, Any]]] = []
    seen: set[Any] = set()
    for obj in objs:
        st = t.lookup(obj)
        if st is not None and st.status != PERSISTENT:
            msg = f"upsert(): {type(obj).__name__} {obj!r} is already pending or deleted in this session; flush it first"
            raise errors.SessionError(msg)
        values = _row_of(s, m, obj, st)
        key = tuple(values[c.key] for c in conflict)
        if any(v is None for v in key):
            msg = (
                f"upsert(): {m.cls.__name__} {obj!r} has no value for {[c.key for c in conflict]}, the key the upsert "
                "matches on; set it, or pass on=(...) naming a unique key the object has"
            )
            raise errors.QueryError(msg)
        if key in seen:
            msg = f"upsert(): two {m.cls.__name__} objects have the key {key!r}; one row can take only one of them"
            raise errors.QueryError(msg)
        seen.add(key)
        pk = tuple(values[c.key] for c in m.pk)
        if st is None:
            _refuse_held(s, m, obj, conflict, key, pk)
        for c in m.columns:
            if values[c.key] is None and c is not auto and c.has_default:
                values[c.key] = c.default_value()
        if now is not None:
            values["updated_at"] = now
            if values.get("created_at") is None:
                values["created_at"] = now
        rows.append((obj, st, values))
    # The columns: every column, less a generated key the objects leave to the database.
    cols = [c for c in m.columns if not (c is auto and any(v[c.key] is None for _, _, v in rows))]
    if auto is not None and not any(c is auto for c in cols) and any(r[2][auto.key] is not None for r in rows):
        msg = f"upsert(): some {m.cls.__name__} objects carry {auto.key} and some do not; upsert them in two calls"
        raise errors.QueryError(msg)
    binds = [d.bind_processor(c.type) for c in cols]
    params = [[v if b is None or v is None else b(v) for b, v in zip(binds, (vals[c.key] for c in cols))] for _, _, vals in rows]
    keep = {c.name for c in conflict} | {c.name for c in m.pk}
    if m.timestamps:
        keep.add("created_at")
    update = [c.name for c in cols if c.name not in keep]

    def send(conn: Connection) -> None:
        _send_upsert(s, conn, m, cols, conflict, update, rows, params)

    return send


def _send_upsert(
    s: SessionSeam,
    conn: Connection,
    m: ClassMapping[Any],
    cols: list[Column],
    conflict: list[Column],
    update: list[str],
    rows: list[tuple[Any, ObjectState | None, dict[str, Any]]],
    params: list[list[Any]],
) -> None:
    d = conn.dialect
    every = list(m.columns)
    names = [c.name for c in cols]
    step = max(1, min(d.max_insert_rows, d.max_params // max(1, len(cols))))
    procs = [d.result_processor(c.type) for c in every]
    fetched: list[list[Any]] = []
    for i in range(0, len(rows), step):
        chunk = params[i : i + step]
        returning = [c.name for c in every] if d.insert_returning else []
        sql = d.upsert_sql(m.table.name, names, len(chunk), [c.name for c in conflict], update, returning)
        flat = [v for row in chunk for v in row]
        if returning:
            got = conn.fetchall(sql, flat)
        else:
            conn.execute(sql, flat)
            keys = [tuple(vals[c.key] for c in conflict) for _, _, vals in rows[i : i + step]]
            sel = conn.compiler.select_by_keys(m.table, every, conflict, len(keys))
            got = conn.fetchall(sel, d.key_params(conflict, [k[0] for k in keys] if len(conflict) == 1 else keys))
        fetched += [[v if p is None else p(v) for p, v in zip(procs, r)] for r in got]
    pos = [_index(every, c) for c in conflict]
    by_key = {tuple(r[p] for p in pos): r for r in fetched}
    for obj, st, vals in rows:
        row = by_key.get(tuple(vals[c.key] for c in conflict))
        if row is None:
            msg = f"upsert(): the database returned no row for {m.cls.__name__} {obj!r}"
            raise errors.FlushError(msg)
        if st is None:
            pk = tuple(row[_index(every, c)] for c in m.pk)
            other = s.tracker.identity.get(m, pk[0] if len(pk) == 1 else pk)
            if other is not None and other.obj is not obj:
                # The held object's unique value differs from its row's: only the row can tell.
                msg = (
                    f"upsert(): the row of {m.cls.__name__} {obj!r} has the key {pk if len(pk) > 1 else pk[0]!r}, "
                    "which another object of this session holds; roll back and change that object instead"
                )
                raise errors.DuplicateIdentityError(msg)
        _register(s, m, obj, st, {c.key: v for c, v in zip(every, row)})


def _register(s: SessionSeam, m: ClassMapping[Any], obj: Any, st: ObjectState | None, by_key: dict[str, Any]) -> None:
    """Make ``obj`` a persistent object of the session holding the row's values."""
    t = s.tracker
    if st is None:
        t.add(obj, t.states)
        st = t.lookup(obj)
        assert st is not None and st.status == PENDING
        t.new.pop(id(obj), None)
        t.set_row(st, by_key)
        st.status = PERSISTENT
        st.key = t.spec(m).key_of(st)
        t.identity.add(st)
        # References are as written; collections stay unsnapshotted so that their members
        # follow the usual save cascade at the next flush.
        rels = st.rels
        for info in m.relations.values():
            if info.kind.reference:
                rels[info.key] = getattr(obj, info.key, None)
        return
    t.keep_committed(st)
    t.set_row(st, by_key)


def _index(cols: Sequence[Column], col: Column) -> int:
    """The position of ``col`` in ``cols``, by identity (a Column's == builds an expression)."""
    return next(i for i, c in enumerate(cols) if c is col)


# -- rows without objects -------------------------------------------------------------------------


def _columns_of_rows(m: ClassMapping[Any], rows: Sequence[Any], what: str) -> list[Column]:
    """The columns named by the rows' keys (checked), in table order."""
    names: dict[str, None] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            msg = f"{what} takes a list of dicts of {m.name} attribute names to values; row {i} is {row!r}"
            raise errors.QueryError(msg)
        for k in row:
            names[k] = None
    for k in names:
        if k not in m.by_key:
            msg = f"{what}: {m.cls.__name__} has no mapped attribute {k!r}; {m.name} maps {sorted(m.by_key)}"
            raise errors.QueryError(msg)
    return [c for c in m.columns if c.key in names]


def _converted(d: Dialect, cols: Sequence[Column], rows: Sequence[dict[str, Any]], fill: dict[str, Any]) -> list[Any]:
    """Driver values of every row, column by column (defaults for the keys a row leaves out).

    Rows that name every column are read with one ``itemgetter`` call each; only the columns
    whose type converts values are then converted, value by value.
    """
    binds = [d.bind_processor(c.type) for c in cols]
    keys = [c.key for c in cols]
    get = itemgetter(*keys)
    out: list[Any] = []
    for row in rows:
        try:
            vals = get(row)
        except KeyError:
            vals = tuple(_filled(row, k, fill) for k in keys)
        out.append(vals if len(keys) > 1 else (vals,))
    convert = [(i, b) for i, b in enumerate(binds) if b is not None]
    if convert:
        for n, vals in enumerate(out):
            lst = list(vals)
            for i, b in convert:
                v = lst[i]
                if v is not None:
                    lst[i] = b(v)
            out[n] = lst
    return out


def _filled(row: dict[str, Any], key: str, fill: dict[str, Any]) -> Any:
    if key in row:
        return row[key]
    v = fill.get(key)
    return v() if callable(v) else v


def insert_rows(s: SessionSeam, m: ClassMapping[Any], rows: Sequence[dict[str, Any]], returning: bool) -> list[Any] | int:
    """See ``Session.insert_rows``."""
    what = f"insert_rows({m.cls.__name__})"
    if isinstance(rows, dict) or not isinstance(rows, Sequence):
        msg = f"{what} takes a list of dicts, got {type(rows).__name__}"
        raise errors.QueryError(msg)
    cols = _columns_of_rows(m, rows, what)
    d = s.dialect
    fill: dict[str, Any] = {}
    for c in m.columns:
        if c.has_default and c is not m.autoinc:
            # A callable default is called per row (as the flush does), a value is shared.
            fill[c.key] = c.default if callable(c.default) else c.default_value()
        if c.version:
            fill[c.key] = 1
    if m.timestamps:
        now = d.now()
        fill["created_at"] = fill["updated_at"] = now
    named = {id(c) for c in cols}
    cols = [c for c in m.columns if id(c) in named or c.key in fill]
    if not rows:
        return [] if returning else 0
    if not cols:
        msg = f"{what}: the rows name no column; give at least one attribute"
        raise errors.QueryError(msg)
    params = _converted(d, cols, rows, fill)
    conn = s.read()
    s.tracker.wrote = True
    names = [c.name for c in cols]
    auto = m.autoinc
    given_keys = all(any(c is k for c in cols) for k in m.pk)
    want = returning and not given_keys
    if want and auto is None:
        msg = f"{what}: returning keys needs the rows to carry {[c.key for c in m.pk]} or a generated key"
        raise errors.QueryError(msg)
    ret = (auto.name,) if want and auto is not None else ()
    keys: list[Any] = []
    comp = conn.compiler
    if d.array_dml_rows:
        sql = comp.insert_arrays(m.table, names, ret if d.insert_returning else ())
        if sql is not None:
            for i in range(0, len(params), d.array_dml_rows):
                arrays = [list(col) for col in zip(*params[i : i + d.array_dml_rows])]
                if ret:
                    keys += sorted(r[0] for r in conn.fetchall(sql, arrays))
                else:
                    conn.execute(sql, arrays)
            return _keys_result(m, cols, rows, params, keys, returning, given_keys)
    if not ret and d.executemany_insert:
        conn.executemany(comp.insert(m.table.name, names, 1), params)
        return _keys_result(m, cols, rows, params, keys, returning, given_keys)
    step = max(1, min(d.max_insert_rows, d.max_params // len(cols)))
    for i in range(0, len(params), step):
        chunk = params[i : i + step]
        flat = [v for r in chunk for v in r]
        if ret and d.insert_returning:
            keys += sorted(r[0] for r in conn.fetchall(comp.insert(m.table.name, names, len(chunk), ret), flat))
        else:
            cur = conn.execute(comp.insert(m.table.name, names, len(chunk)), flat)
            if ret:
                first = int(cur.lastrowid)
                keys += list(range(first, first + len(chunk)))
    return _keys_result(m, cols, rows, params, keys, returning, given_keys)


def _keys_result(
    m: ClassMapping[Any], cols: list[Column], rows: Sequence[dict[str, Any]], params: list[list[Any]],
    keys: list[Any], returning: bool, given_keys: bool,
) -> list[Any] | int:
    if not returning:
        return len(rows)
    if given_keys:
        if len(m.pk) == 1:
            return [row[m.pk[0].key] for row in rows]
        return [tuple(row[c.key] for c in m.pk) for row in rows]
    return keys


def update_rows(s: SessionSeam, m: ClassMapping[Any], rows: Sequence[dict[str, Any]]) -> int:
    """See ``Session.update_rows``."""
    what = f"update_rows({m.cls.__name__})"
    if isinstance(rows, dict) or not isinstance(rows, Sequence):
        msg = f"{what} takes a list of dicts, got {type(rows).__name__}"
        raise errors.QueryError(msg)
    cols = _columns_of_rows(m, rows, what)
    if not rows:
        return 0
    pk_keys = {c.key for c in m.pk}
    sets = [c for c in cols if c.key not in pk_keys]
    first_keys = set(rows[0])
    for i, row in enumerate(rows):
        missing = [k for k in pk_keys if row.get(k) is None]
        if missing:
            msg = f"{what}: row {i} has no value for the key {sorted(missing)}; each row names the row it updates by its key"
            raise errors.QueryError(msg)
        if set(row) != first_keys:
            msg = f"{what}: row {i} sets {sorted(row)}, row 0 sets {sorted(first_keys)}; give every row the same attributes"
            raise errors.QueryError(msg)
    if not sets:
        msg = f"{what}: the rows set nothing but the key {sorted(pk_keys)}"
        raise errors.QueryError(msg)
    d = s.dialect
    ordered = [*sets, *m.pk]
    params = _converted(d, ordered, rows, {})
    conn = s.read()
    s.tracker.wrote = True
    comp = conn.compiler
    sql = comp.update_arrays(m.table, [c.name for c in sets], [c.name for c in m.pk], None)
    if sql is not None:
        count = 0
        for i in range(0, len(params), d.array_dml_rows or len(params)):
            arrays = [list(col) for col in zip(*params[i : i + (d.array_dml_rows or len(params))])]
            count += int(conn.execute(sql, arrays).rowcount)
    else:
        count = conn.executemany(comp.update_row(m.table.name, [c.name for c in sets], [c.name for c in m.pk], None), params)
    _follow_held(s, m, sets, rows)
    return count


def _follow_held(s: SessionSeam, m: ClassMapping[Any], sets: list[Column], rows: Sequence[dict[str, Any]]) -> None:
    """Objects the session holds take the new values (their snapshot too: the row has them now)."""
    t = s.tracker
    held = t.identity.for_mapping(m)
    if not held:
        return
    spec = t.spec(m)
    for row in rows:
        key = row[m.pk[0].key] if len(m.pk) == 1 else tuple(row[c.key] for c in m.pk)
        st = held.get(key)
        if st is None or st.snap is None:
            continue
        t.keep_committed(st)
        spec.set_committed(st, [(c.key, row[c.key]) for c in sets])
