"""The generated functions, run directly on hand-made rows and states (no database is queried),
for mappings of unusual shapes; their source in tracebacks and inspect; ``python -m mapper source``."""

from __future__ import annotations

import dataclasses
import inspect
import io
import linecache
import re
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from mapper import BelongsTo, Column, Database, Mapper, MapperError
from mapper import types as t
from mapper.__main__ import main
from mapper.codegen import compile_function, source_of
from mapper.lazy import ghost_class
from mapper.state import PENDING, PERSISTENT, ObjectState
from mapper.uow.persister import Journal

# -- the mappings --------------------------------------------------------------------------------


@attrs.define
class Owner:
    name: str
    id: int | None = None


class OwnerMapper(Mapper[Owner]):
    table = "cg_owners"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)


@attrs.define
class Membership:  # a composite key, no generated key
    org: str
    user: int
    role: str
    owner: Owner | None = None


class MembershipMapper(Mapper[Membership]):
    table = "cg_memberships"
    org = Column(t.String(20), primary_key=True)
    user = Column(t.Integer, primary_key=True)
    role = Column(t.String(20), nullable=False)
    owner = BelongsTo(Owner)


@attrs.frozen
class Point:  # frozen: the loader must write through object.__setattr__
    x: int
    y: int
    label: str = "unnamed"  # unmapped: filled with its default on load
    owner: Owner | None = None
    id: int | None = None


class PointMapper(Mapper[Point]):
    table = "cg_points"
    id = Column(t.Integer, primary_key=True)
    x = Column(t.Integer, nullable=False)
    y = Column(t.Integer, nullable=False)
    owner = BelongsTo(Owner)


@attrs.define
class Tag:  # its key and a bookkeeping column live in the session only
    label: str
    owner: Owner | None = None


class TagMapper(Mapper[Tag]):
    table = "cg_tags"
    id = Column(t.Integer, primary_key=True, hidden=True)
    label = Column(t.String(50), nullable=False)
    source = Column(t.String(20), nullable=False, default="web", hidden=True)
    owner = BelongsTo(Owner)


@attrs.define
class Doc:  # a mutable JSON value: in-place edits are changes
    data: Any
    owner: Owner | None = None
    id: int | None = None


class DocMapper(Mapper[Doc]):
    table = "cg_docs"
    id = Column(t.Integer, primary_key=True)
    data = Column(t.Json, nullable=False)
    owner = BelongsTo(Owner)


class Slotted:  # a plain class with __slots__
    __slots__ = ("name", "owner", "id")

    def __init__(self, name: str, owner: Owner | None = None, id: int | None = None) -> None:
        self.name = name
        self.owner = owner
        self.id = id


class SlottedMapper(Mapper[Slotted]):
    table = "cg_slotted"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    owner = BelongsTo(Owner)


class Plain:  # a plain class with a __dict__
    kind: str = "plain"  # unmapped: the class-level value serves

    def __init__(self, name: str, owner: Owner | None = None, id: int | None = None) -> None:
        self.name = name
        self.owner = owner
        self.id = id


class PlainMapper(Mapper[Plain]):
    table = "cg_plain"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    owner = BelongsTo(Owner)


@dataclasses.dataclass
class Note:
    text: str
    tags: list[str] = dataclasses.field(default_factory=list)  # unmapped: a fresh list per object
    owner: Owner | None = None
    id: int | None = None


class NoteMapper(Mapper[Note]):
    table = "cg_notes"
    id = Column(t.Integer, primary_key=True)
    text = Column(t.String(50), nullable=False)
    owner = BelongsTo(Owner)


MAPPERS = [OwnerMapper, MembershipMapper, PointMapper, TagMapper, DocMapper, SlottedMapper, PlainMapper, NoteMapper]


def make_db() -> Database:
    """The Database the command-line tests name as ``tests.unit.test_codegen:make_db``."""
    return Database("sqlite:///:memory:", mappers=MAPPERS)


@pytest.fixture
def db() -> Iterator[Database]:
    d = make_db()
    yield d
    d.close()


# -- one case per mapping ------------------------------------------------------------------------


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # frozen classes too: the way a test edits any object


def _hide(pos: int, value: Any) -> Callable[[Any, ObjectState], None]:
    def change(obj: Any, st: ObjectState) -> None:
        h = st.hidden
        assert h is not None
        st.hidden = (*h[:pos], value, *h[pos + 1 :])

    return change


@dataclasses.dataclass
class Case:
    mapper: type[Mapper[Any]]
    #: One row as the driver returns it, by column key; owner_id 1 is the owner the session holds.
    row: dict[str, Any]
    #: The loaded object's attribute values (owner excepted), and its key and hidden values.
    values: dict[str, Any]
    key: Any
    hidden: tuple[Any, ...] | None
    #: An edit of the loaded object (or of its hidden values), and what diff() then reports.
    change: Callable[[Any, ObjectState], None]
    diff: dict[str, Any]
    #: update_row(): the changed columns' names, then the UPDATE's parameters (new values, old key).
    update: tuple[tuple[str, ...], list[Any]]
    #: A new object and its hidden values, and what collect() makes of it.
    new: Callable[[], tuple[Any, tuple[Any, ...] | None]]
    collect: tuple[tuple[str, ...], list[Any], tuple[str, ...]] | None


CASES = {
    "composite key": Case(
        MembershipMapper,
        row={"org": "acme", "user": 7, "role": "admin", "owner_id": 1},
        values={"org": "acme", "user": 7, "role": "admin"},
        key=("acme", 7),
        hidden=(1,),
        change=lambda o, st: _set(o, "role", "owner"),
        diff={"role": "owner"},
        update=(("role",), ["owner", "acme", 7]),
        new=lambda: (Membership("acme", 8, "member"), (1,)),
        collect=(("org", "user", "role", "owner_id"), ["acme", 8, "member", 1], ()),
    ),
    "frozen attrs class": Case(
        PointMapper,
        row={"id": 3, "x": 1, "y": 2, "owner_id": 1},
        values={"id": 3, "x": 1, "y": 2, "label": "unnamed"},
        key=3,
        hidden=(1,),
        change=lambda o, st: _set(o, "y", 20),
        diff={"y": 20},
        update=(("y",), [20, 3]),
        new=lambda: (Point(4, 5), (None,)),
        collect=(("x", "y", "owner_id"), [4, 5, None], ("id",)),
    ),
    "hidden-only columns": Case(
        TagMapper,
        row={"id": 5, "label": "red", "source": "api", "owner_id": 1},
        values={"label": "red"},
        key=5,
        hidden=(5, "api", 1),
        change=_hide(1, "web"),
        diff={"source": "web"},
        update=(("source",), ["web", 5]),
        new=lambda: (Tag("blue"), (None, "web", None)),
        collect=(("label", "source", "owner_id"), ["blue", "web", None], ("id",)),
    ),
    "mutable JSON column": Case(
        DocMapper,
        row={"id": 1, "data": '{"a":[1,2]}', "owner_id": 1},
        values={"id": 1, "data": {"a": [1, 2]}},
        key=1,
        hidden=(1,),
        change=lambda o, st: o.data["a"].append(3),  # in place: only the deep-copied snapshot sees it
        diff={"data": {"a": [1, 2, 3]}},
        update=(("data",), ['{"a":[1,2,3]}', 1]),
        new=lambda: (Doc({"k": [None, "x"]}), (1,)),
        collect=(("data", "owner_id"), ['{"k":[null,"x"]}', 1], ("id",)),
    ),
    "plain class with slots": Case(
        SlottedMapper,
        row={"id": 2, "name": "rex", "owner_id": 1},
        values={"id": 2, "name": "rex"},
        key=2,
        hidden=(1,),
        change=lambda o, st: _set(o, "name", "max"),
        diff={"name": "max"},
        update=(("name",), ["max", 2]),
        new=lambda: (Slotted("bo", id=9), (1,)),
        collect=(("id", "name", "owner_id"), [9, "bo", 1], ()),
    ),
    "plain class without slots": Case(
        PlainMapper,
        row={"id": 2, "name": "rex", "owner_id": None},
        values={"id": 2, "name": "rex", "kind": "plain"},
        key=2,
        hidden=(None,),
        change=_hide(0, 1),  # the derived key moved without the relation: a column change
        diff={"owner_id": 1},
        update=(("owner_id",), [1, 2]),
        new=lambda: (Plain("bo"), (1,)),
        collect=(("name", "owner_id"), ["bo", 1], ("id",)),
    ),
    "dataclass": Case(
        NoteMapper,
        row={"id": 6, "text": "hello", "owner_id": 1},
        values={"id": 6, "text": "hello", "tags": []},
        key=6,
        hidden=(1,),
        change=lambda o, st: _set(o, "text", "bye"),
        diff={"text": "bye"},
        update=(("text",), ["bye", 6]),
        new=lambda: (Note("hi", id=1), (1,)),
        collect=(("id", "text", "owner_id"), [1, "hi", 1], ()),
    ),
}


class Env:
    """The runtime objects of one mapping, and what a session would hand the generated loader."""

    def __init__(self, db: Database, case: Case) -> None:
        self.mapping = db.registry.mapping_for(case.mapper)
        self.spec, self.loader, self.persister = db._runtime(self.mapping)
        self.owner = Owner("ann", id=1)
        owner_state = ObjectState(self.owner, db.registry.mapping_for(Owner), 1, ("ann", 1), None, PERSISTENT)
        self.ghosts: list[Any] = []
        # refs: per one-column reference, the target's identity dict and a stand-in factory.
        self.refs = [({1: owner_state}, self._ghost)]
        self.imap: dict[Any, ObjectState] = {}

    def _ghost(self, key: Any) -> Any:
        ghost = ("stand-in", key)
        self.ghosts.append(ghost)
        return ghost

    def row(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(values[c.key] for c in self.loader.columns)

    def load(self, *rows: dict[str, Any]) -> tuple[list[Any], list[ObjectState], list[ObjectState]]:
        fresh: list[ObjectState] = []
        row_states: list[ObjectState] = []
        objs = self.loader.load([self.row(r) for r in rows], self.imap, fresh, self.refs, row_states, None)
        return objs, fresh, row_states


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    return CASES[request.param]


def test_the_loader_builds_objects_and_states_from_rows(db: Database, case: Case) -> None:
    env = Env(db, case)
    (obj,), fresh, row_states = env.load(case.row)
    assert type(obj) is env.mapping.cls
    for name, value in case.values.items():
        assert getattr(obj, name) == value, name
    assert obj.owner is (env.owner if case.row["owner_id"] == 1 else None)
    (st,) = fresh
    assert row_states == [st] and st.obj is obj and env.imap[case.key] is st
    assert (st.status, st.key, st.hidden, st.hsnap, st.cohort) == (PERSISTENT, case.key, case.hidden, case.hidden, fresh)
    assert st.snap == (*(getattr(obj, c.key) for c in env.mapping.attr_columns), obj.owner)
    # The identity map first: the same row again is the same object, untouched.
    (again,), fresh2, row_states2 = env.load(case.row)
    assert again is obj and fresh2 == [] and row_states2 == [st]


def test_the_loader_makes_a_stand_in_for_a_reference_not_held(db: Database, case: Case) -> None:
    env = Env(db, case)
    other = {**case.row, "owner_id": 42}
    (obj,), (st,), _ = env.load(other)
    assert obj.owner == ("stand-in", 42) and env.ghosts == [("stand-in", 42)]
    assert st.rel("owner") is obj.owner


def test_the_snapshot_scans_see_no_change_on_a_loaded_object(db: Database, case: Case) -> None:
    env = Env(db, case)
    _, (st,), _ = env.load(case.row)
    assert env.spec.changed([st]) == []
    assert env.spec.diff(st) is None
    assert env.spec.relation_candidates([st]) == []
    assert env.persister.update_row(st, Journal(), None) is None
    st.rels  # the relation snapshots moved into their dict: the other path of the scan  # noqa: B018
    assert env.spec.relation_candidates([st]) == []


def test_the_snapshot_scans_see_a_column_change(db: Database, case: Case) -> None:
    env = Env(db, case)
    (obj,), (st,), _ = env.load(case.row)
    case.change(obj, st)
    assert env.spec.changed([st]) == [st]
    found = env.spec.diff(st)
    assert found is not None
    cols, vals = found
    assert {c.key: v for c, v in zip(cols, vals)} == case.diff
    # Only the column changed: the relation scan is for relations.
    assert env.spec.relation_candidates([st]) == []


def test_the_relation_scan_sees_a_moved_reference(db: Database, case: Case) -> None:
    env = Env(db, case)
    (obj,), (st,), _ = env.load(case.row)
    _set(obj, "owner", Owner("bea", id=2))
    assert env.spec.relation_candidates([st]) == [st]
    assert env.spec.changed([st]) == []  # a relation is not a column
    _set(obj, "owner", st.rel("owner"))
    st.rels  # noqa: B018 - the dict path
    _set(obj, "owner", Owner("cy", id=3))
    assert env.spec.relation_candidates([st]) == [st]


def test_the_scans_skip_states_that_are_not_persistent(db: Database, case: Case) -> None:
    env = Env(db, case)
    (obj,), (st,), _ = env.load(case.row)
    case.change(obj, st)
    _set(obj, "owner", None if case.row["owner_id"] else env.owner)
    st.status = PENDING
    assert env.spec.changed([st]) == [] and env.spec.relation_candidates([st]) == []


def test_the_update_row_collector_binds_the_changed_columns_and_the_old_key(db: Database, case: Case) -> None:
    env = Env(db, case)
    (obj,), (st,), _ = env.load(case.row)
    case.change(obj, st)
    journal = Journal()
    found = env.persister.update_row(st, journal, None)
    assert found is not None and journal.entries == []  # it writes nothing to the object
    mask, params = found
    names, expected = case.update
    assert env.persister.update_names(mask) == names
    assert params == expected


def test_the_insert_collector_gives_columns_values_and_returning(db: Database, case: Case) -> None:
    env = Env(db, case)
    obj, hidden = case.new()
    st = ObjectState(obj, env.mapping, None, None, hidden, PENDING)
    assert env.persister.collect(st) == case.collect


def test_the_insert_collector_leaves_a_missing_default_to_the_general_path(db: Database) -> None:
    env = Env(db, CASES["hidden-only columns"])
    st = ObjectState(Tag("blue"), env.mapping, None, None, (None, None, None), PENDING)
    assert env.persister.collect(st) is None  # source's default must be applied first
    membership = Env(db, CASES["composite key"])
    st = ObjectState(Membership("acme", 8, "member"), membership.mapping, None, None, (None,), PENDING)
    assert membership.persister.collect(st) is None  # no generated key: every None means more


def test_the_loader_fills_a_stand_in_in_place(db: Database) -> None:
    env = Env(db, CASES["frozen attrs class"])
    # A stand-in of the row, as a reference to it would have created, already in the identity map.
    standin: Any = object.__new__(ghost_class(Point, lambda obj: None))
    st = ObjectState(standin, env.mapping, 3, None, None, 4)  # GHOST
    env.imap[3] = st
    (obj,), fresh, _ = env.load(CASES["frozen attrs class"].row)
    assert obj is standin and type(obj) is Point and fresh == [st]
    assert (obj.x, obj.y, obj.label, obj.owner, st.status) == (1, 2, "unnamed", env.owner, PERSISTENT)


def test_unmapped_defaults_are_fresh_per_object(db: Database) -> None:
    env = Env(db, CASES["dataclass"])
    a, b = env.load(CASES["dataclass"].row, {**CASES["dataclass"].row, "id": 7})[0]
    assert a.tags == [] and a.tags is not b.tags


def test_a_json_snapshot_is_a_copy(db: Database) -> None:
    env = Env(db, CASES["mutable JSON column"])
    (obj,), (st,), _ = env.load(CASES["mutable JSON column"].row)
    assert st.snap is not None and st.snap[1] == obj.data and st.snap[1] is not obj.data


def test_a_mapping_with_a_version_column_has_no_update_row_fast_path() -> None:
    @attrs.define
    class Counter:
        n: int
        version: int | None = None
        id: int | None = None

    class CounterMapper(Mapper[Counter]):
        table = "cg_counters"
        id = Column(t.Integer, primary_key=True)
        n = Column(t.Integer, nullable=False)
        version = Column(t.Integer, version=True)

    with Database("sqlite:///:memory:", mappers=[CounterMapper]) as d:
        assert list(d.generated_source(Counter)) == ["load", "changed", "diff", "relation_candidates", "collect"]


# -- source in tracebacks and inspect ------------------------------------------------------------


def test_generated_functions_carry_their_source_and_names(db: Database) -> None:
    spec, loader, persister = db._runtime(db.registry.mapping_for(Point))
    fns = {
        "load": loader.load, "changed": spec.changed, "diff": spec.diff,
        "relation_candidates": spec.relation_candidates, "collect": persister.collect, "update_row": persister.update_row,
    }
    sources = db.generated_source(PointMapper)
    assert list(sources) == list(fns)
    for job, fn in fns.items():
        assert fn is not None
        assert fn.__name__ == job and fn.__qualname__ == f"PointMapper.{job}"
        assert fn.__code__.co_filename.startswith(f"<mapper generated PointMapper.{job}")
        assert inspect.getsource(fn) == sources[job]
        assert sources[job].startswith(f"def {job}(")
        assert fn.__mapper_source__ == sources[job]  # type: ignore[union-attr]


def test_a_traceback_through_the_loader_shows_the_generated_line() -> None:
    @attrs.define
    class Bomb:
        name: str
        id: int | None = None

    class BombMapper(Mapper[Bomb]):
        table = "cg_bombs"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(20), nullable=False)

        def on_load(self, obj: Bomb) -> None:
            raise ValueError(f"cannot load {obj.name}")

    with Database("sqlite:///:memory:", mappers=[BombMapper]) as d:
        _, loader, _ = d._runtime(d.registry.mapping_for(Bomb))
        with pytest.raises(ValueError, match="cannot load x") as info:
            loader.load([(1, "x")], {}, [], [], [], None)
    text = "".join(traceback.format_exception(info.value))
    assert re.search(r'File "<mapper generated BombMapper\.load(-\d+)?>", line \d+, in load\n', text)
    assert ", in load\n    on_load(obj)\n" in text


def test_a_traceback_through_a_snapshot_scan_shows_the_generated_line(db: Database) -> None:
    class Grumpy(Owner):
        def __ne__(self, other: object) -> bool:
            raise RuntimeError("no comparing")

    env = Env(db, CASES["composite key"])
    (obj,), (st,), _ = env.load(CASES["composite key"].row)
    _set(obj, "role", Grumpy("x"))
    with pytest.raises(RuntimeError) as info:
        env.spec.diff(st)
    frame = traceback.extract_tb(info.value.__traceback__)[-2]
    # Other tests map classes of the same names differently: their sources take numbered names.
    assert re.fullmatch(r"<mapper generated MembershipMapper\.diff(-\d+)?>", frame.filename) and frame.name == "diff"
    assert frame.line == "if v is not w and v != w:"


def test_compile_function_names_each_source_uniquely_and_survives_cache_checks() -> None:
    ns1: dict[str, Any] = {}
    ns2: dict[str, Any] = {}
    ns3: dict[str, Any] = {}
    f1 = compile_function("def job(x):\n    return x + 1", ns1, owner="TestOwner", name="job")
    f2 = compile_function("def job(x):\n    return x + 2", ns2, owner="TestOwner", name="job")
    f3 = compile_function("def job(x):\n    return x + 1", ns3, owner="TestOwner", name="job")
    assert (f1(1), f2(1), f3(1)) == (2, 3, 2)
    assert f1.__code__.co_filename == f3.__code__.co_filename == "<mapper generated TestOwner.job>"
    assert f2.__code__.co_filename.startswith("<mapper generated TestOwner.job-")
    linecache.checkcache()
    assert linecache.getline(f2.__code__.co_filename, 2) == "    return x + 2"
    linecache.clearcache()
    assert source_of(f2) == "def job(x):\n    return x + 2"
    assert inspect.getsource(f2) == "def job(x):\n    return x + 2"
    with pytest.raises(TypeError, match="not a function generated by mapper"):
        source_of(len)


def test_generated_source_names_an_unmapped_class(db: Database) -> None:
    with pytest.raises(MapperError, match="int is not mapped in this Database"):
        db.generated_source(int)


# -- python -m mapper source ---------------------------------------------------------------------


def test_source_prints_each_job_of_the_named_classes() -> None:
    out = io.StringIO()
    assert main(["source", "tests.unit.test_codegen:make_db", "Tag", "DocMapper"], out) == 0
    text = out.getvalue()
    assert text.startswith("# TagMapper.load (Tag)\ndef load(rows, imap, fresh, refs, row_states, lazy):\n")
    headers = [line for line in text.splitlines() if line.startswith("# ")]
    jobs = ["load", "changed", "diff", "relation_candidates", "collect", "update_row"]
    assert headers == [f"# TagMapper.{j} (Tag)" for j in jobs] + [f"# DocMapper.{j} (Doc)" for j in jobs]


def test_source_of_every_mapping_and_of_one_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["source", "tests.unit.test_codegen:make_db", "--job", "diff"]) == 0
    headers = [line for line in capsys.readouterr().out.splitlines() if line.startswith("# ")]
    assert headers == [f"# {m.__name__}.diff ({m.__name__.removesuffix('Mapper')})" for m in MAPPERS]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests.unit.test_codegen", "does not name a Database; write MODULE:ATTRIBUTE"),
        ("tests.unit.no_such_module:db", "no module named 'tests.unit.no_such_module'"),
        ("tests.unit.test_codegen:nothing", "tests.unit.test_codegen has no attribute 'nothing'"),
        ("tests.unit.test_codegen:MAPPERS", "is a list, not a mapper Database"),
        ("tests.unit.test_codegen:Owner", "is a type, not a mapper Database"),
        ("tests.unit.test_codegen:_not_a_database", "returned str, not a mapper Database"),
    ],
)
def test_source_names_a_wrong_target(target: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["source", target]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m mapper source: error: ") and message in err


def _not_a_database() -> str:
    return "nope"


def test_source_names_an_unknown_class_and_lists_the_mapped_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["source", "tests.unit.test_codegen:make_db", "Pgu"]) == 2
    err = capsys.readouterr().err
    assert "'Pgu' is not a class mapped by this Database; its mapped classes are: Owner, Membership, Point" in err


def test_the_command_line_runs_as_a_module_with_help() -> None:
    done = subprocess.run([sys.executable, "-m", "mapper", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "source" in done.stdout and "MODULE:ATTRIBUTE" in done.stdout
    done = subprocess.run([sys.executable, "-m", "mapper", "source", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--job" in done.stdout
    done = subprocess.run([sys.executable, "-m", "mapper"], capture_output=True, text=True)
    assert done.returncode == 2 and "COMMAND" in done.stderr

