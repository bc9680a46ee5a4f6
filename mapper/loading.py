"""Hydration: rows into domain objects through the identity map.

Row hydration is the hottest path in the framework, so each mapping gets a loader
function generated once per Database (as attrs generates ``__init__``): straight-line
attribute stores, result conversion only for the columns whose type needs it, and the
identity-map check before any object is built.
"""

from __future__ import annotations

import copy
import gc
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from .codegen import compile_function
from .dialects.base import Dialect
from .embedded import compose, embedded_columns
from .lazy import LazyList, LazySet
from .mapping import ClassMapping, RelationInfo
from .schema import Column
from .state import GHOST, NO_RELS, PERSISTENT, ObjectState, SnapshotSpec

__all__ = ["Loader", "LoadFn", "pause_gc", "resume_gc", "collector_paused", "PAUSE_ROWS"]

LoadFn = Callable[..., list[Any]]


class PauseOption(Protocol):
    """What the pause reads its option from (the Database)."""

    pause_gc: bool


#: A load or flush of more rows than this pauses the collector (a query always does).
PAUSE_ROWS = 1000

# The pause is process-wide, so it is counted: the first pause turns the collector off, the
# last resume turns it back on, and only if it was on when the first pause began (an
# application that turned it off keeps it off). The lock makes the count and the switch one step.
_lock = threading.Lock()
_holders = 0
_resume = False


def pause_gc(rows: int, db: PauseOption) -> bool:
    """Pause the cyclic GC for a batch of more than PAUSE_ROWS rows; True if the caller must
    call :func:`resume_gc` when the batch ends.

    What a load or a flush builds (objects, states, snapshots, change sets, parameters) lives
    until the batch is done, so a collection in the middle only traverses it again and again;
    at 50,000 rows that was half a load and two thirds of a flush. The collector resumes when
    the last batch that paused it ends, and runs as usual from there.

    Args:
        rows: the batch's size.
        db: the Database; nothing is paused when its ``pause_gc`` option is off.

    Returns:
        Whether this call paused (and so must be matched by one ``resume_gc()``).
    """
    if rows > PAUSE_ROWS and db.pause_gc:
        _hold()
        return True
    return False


def resume_gc() -> None:
    """End one pause begun by :func:`pause_gc` (the collector runs again after the last one)."""
    global _holders, _resume
    with _lock:
        _holders -= 1
        if _holders == 0 and _resume:
            _resume = False
            gc.enable()


def _hold() -> None:
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            if _resume:
                gc.disable()
        _holders += 1


@contextmanager
def collector_paused(db: PauseOption) -> Iterator[None]:
    """Hold the cyclic GC for a whole query or lazy load, fetch included, whatever its size: the
    driver's rows die once they are objects, so a collection meanwhile would only traverse them.
    Nothing is paused when the Database's ``pause_gc`` option is off."""
    if not db.pause_gc:
        yield
        return
    _hold()
    try:
        yield
    finally:
        resume_gc()


class Loader:
    """Builds objects of one mapping from rows of ``columns`` (all mapped columns, in order).

    Attributes:
        columns: the columns a SELECT must return, in order.
        load: ``load(rows, identity_dict, fresh, refs, row_states, lazy) -> objects``
            (generated); states built or filled from these rows are appended to ``fresh``, the
            state of every row (new or already held) to ``row_states`` unless it is None; ``refs`` gives, per
            reference, the target's identity dict and a stand-in factory; ``lazy`` is the
            session's loader of unloaded collections.
    """

    def __init__(self, mapping: ClassMapping[Any], dialect: Dialect, spec: SnapshotSpec) -> None:
        self.mapping = mapping
        self.spec = spec
        self.columns: list[Column] = list(mapping.columns)
        self.procs = [dialect.result_processor(c.type) for c in self.columns]
        #: BelongsTo relations on one column, wired by the generated loader itself.
        self.references: list[RelationInfo] = [mapping.relations[key] for key in mapping.ref_slots]
        #: Collections, given an unloaded LazyList / LazySet by the generated loader itself.
        self.collections: list[RelationInfo] = [info for info in mapping.relations.values() if info.to_many]
        self.load: LoadFn = self._generate()
        if mapping.hierarchy is not None:
            # A SELECT of a hierarchy's mapping also returns its subclasses' columns (after its
            # own, so ``convert_row`` still reads its own from the head of a row).
            self.columns = list(mapping.hierarchy.columns)

    def convert_row(self, row: Sequence[Any]) -> list[Any]:
        """Python values of one row (for refresh)."""
        return [p(v) if p is not None else v for p, v in zip(self.procs, row)]

    def _generate(self) -> LoadFn:
        m = self.mapping
        ns: dict[str, Any] = {
            "ObjectState": ObjectState,
            "PERSISTENT": PERSISTENT,
            "GHOST": GHOST,
            "mapping": m,
            "cls": m.cls,
            "new": object.__new__ if m.plain_new else m.cls.__new__,
            "new_state": object.__new__,
            "_setattr": object.__setattr__,
            "deepcopy": copy.deepcopy,
            "on_load": m.on_load,
            "NO_RELS": NO_RELS,
        }
        index = {c.key: i for i, c in enumerate(self.columns)}
        lines = [
            "def load(rows, imap, fresh, refs, row_states, lazy):",
            "    out = []",
            "    append = out.append",
            # Queries without includes pass no row_states: an append per row saved.
            "    st_append = row_states.append if row_states is not None else None",
            "    fresh_append = fresh.append",
            "    get = imap.get",
        ]
        for r in range(len(self.references)):
            lines.append(f"    rmap{r}, ghost{r} = refs[{r}]")
            lines.append(f"    rget{r} = rmap{r}.get")
        # Unpack each row into locals (cheaper than indexing), then convert the columns whose
        # type needs it, once each.
        names = [f"v{i}" if p is None else f"w{i}" for i, p in enumerate(self.procs)]
        lines.append(f"    for {', '.join(names)}{',' if len(names) == 1 else ''} in rows:")
        for i, p in enumerate(self.procs):
            if p is not None:
                ns[f"p{i}"] = p
                lines.append(f"        v{i} = p{i}(w{i})")
        pk_idx = [index[c.key] for c in m.pk]
        key_expr = f"v{pk_idx[0]}" if len(pk_idx) == 1 else "(" + ", ".join(f"v{i}" for i in pk_idx) + ")"

        def store(name: str, value: str) -> str:
            return f"obj.{name} = {value}" if m.direct_setattr else f"_setattr(obj, {name!r}, {value})"

        fill: list[str] = [store(c.key, f"v{index[c.key]}") for c in m.attr_columns]
        # Relations this function sets need no default first, unless on_load, which runs
        # before the collections are set, must still see the defaults.
        own = set() if m.on_load is not None else {info.key for info in (*self.references, *self.collections)}
        for j, d in enumerate(m.field_defaults):
            if d.name in own:
                continue
            if d.factory is not None:
                ns[f"f{j}"] = d.factory
                fill.append(store(d.name, f"f{j}(obj)" if d.takes_self else f"f{j}()"))
            else:
                ns[f"d{j}"] = d.value
                fill.append(store(d.name, f"d{j}"))
        # Value objects (Embedded) composed from their columns.
        for j, (key, e) in enumerate(m.embedded.items()):
            ns[f"emb{j}"] = e
            ns["compose"] = compose
            parts = "".join(f"v{index[c.key]}, " for c in embedded_columns(e))
            fill.append(store(key, f"compose(emb{j}, ({parts}))"))
        # References (BelongsTo on one column): the target from the identity map, or a
        # stand-in that loads with the other pending references on first touch.
        for r, info in enumerate(self.references):
            fk = index[info.fk_cols[0].key]
            fill += [
                f"if v{fk} is None:",
                f"    r{r} = None",
                "else:",
                f"    t = rget{r}(v{fk})",
                f"    r{r} = t.obj if t is not None else ghost{r}(v{fk})",
                store(info.key, f"r{r}"),
            ]
        snap_items = [f"deepcopy(v{index[c.key]})" if c.type.mutable else f"v{index[c.key]}" for c in m.attr_columns]
        # The references' snapshots go at the end of the snapshot tuple (see ObjectState.rels):
        # a dict per row would cost more than the rest of the state.
        snap_items += [f"r{r}" for r in range(len(self.references))]
        snap = "(" + "".join(f"{x}, " for x in snap_items) + ")"
        if m.hidden_columns:
            hvals = [f"v{index[c.key]}" for c in m.hidden_columns]
            hidden = "(" + "".join(f"{x}, " for x in hvals) + ")"
        else:
            hidden = "None"
        rels = "None" if m.relations else "NO_RELS"
        state = [
            f"st.snap = {snap}",
            # One tuple for both: hidden values are replaced, never changed in place.
            f"st.hidden = st.hsnap = {hidden}",
            "st.status = PERSISTENT",
            f"st._rels = {rels}",
            "st.cohort = fresh",
        ]
        lines += [
            f"        key = {key_expr}",
            "        st = get(key)",
            "        if st is not None:",
            "            if st.status != GHOST:",
            "                append(st.obj)",
            "                if st_append is not None:",
            "                    st_append(st)",
            "                continue",
            # A stand-in created for a reference: make it the real class and fill it.
            "            obj = st.obj",
            "            _setattr(obj, '__class__', cls)",
            *(f"            {line}" for line in fill),
            *(f"            {line}" for line in state),
            "        else:",
            "            obj = new(cls)",
            *(f"            {line}" for line in fill),
            # The state is built inline: a constructor call per row costs more than the stores.
            "            st = new_state(ObjectState)",
            "            st.obj = obj",
            "            st.mapping = mapping",
            "            st.key = key",
            *(f"            {line}" for line in state),
            "            imap[key] = st",
            "        fresh_append(st)",
        ]
        if m.on_load is not None:
            lines.append("        on_load(obj)")
        # Each collection starts unloaded: it loads for the whole cohort on first use.
        for j, info in enumerate(self.collections):
            ns[f"coll{j}"] = info
            # Built inline (as ``lazy.new_unloaded`` does): two calls per row fewer. The base
            # type's ``__new__`` gives the empty collection; the four slots are set here.
            is_set = info.collection is set
            ns[f"lazy_cls{j}"] = LazySet if is_set else LazyList
            ns[f"lazy_new{j}"] = set.__new__ if is_set else list.__new__
            lines += [
                f"        unloaded = lazy_new{j}(lazy_cls{j})",
                "        unloaded._loader = lazy",
                f"        unloaded._what = {info.name!r}",
                "        unloaded.owner_state = st",
                f"        unloaded.relation = coll{j}",
                f"        {store(info.key, 'unloaded')}",
            ]
        lines += ["        append(obj)", "        if st_append is not None:", "            st_append(st)", "    return out"]
        fn: LoadFn = compile_function("\n".join(lines), ns, owner=m.name, name="load")
        return fn
