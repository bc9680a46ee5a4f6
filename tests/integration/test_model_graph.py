"""A model-based (Hypothesis stateful) test of the relation kinds the owner/pug machine lacks.

``test_model_based.py`` drives a ``HasMany``/``BelongsTo`` pair in depth. This machine drives
the other kinds, on every backend, against a plain model of sets and dicts:

- a self-referencing tree (``GNode.parent`` / ``GNode.children``): nodes added under a parent
  from either side, moved (never under their own subtree) from either side, taken out of their
  parent, deleted (the subtree goes with them, or is detached, by the configuration);
- a ``BelongsToMany`` through a junction table (``GNode.tags`` / ``GTag.nodes``, a list on one
  side and a set on the other): linked from either side or through ``related()`` (loaded or
  not), linked again when already linked, unlinked, either end deleted;
- a ``HasOne`` (``GNode.badge`` / ``GBadge.node``): set from either side, replaced, moved from
  one node to another, cleared, deleted;
- a ``BelongsToMany`` through an association class with a payload (``GNode.groups`` through
  ``GMember(node, group, role)``): linked through the collection (an association object with the
  default role) or by creating the association object, its role edited, unlinked, the association
  object deleted, either end deleted.

A removal followed by the parent's delete (in one flush or in two) is one of the sequences the
rules reach. Flushes, commits, rollbacks, savepoints that end or raise, and reloads into a new
session (with random includes, so collections are loaded or not) are rules too. After every
flush, commit and rollback the database is read with plain SQL and compared with the model row
for row, and every object the machine holds is compared with the model: its columns, references,
and loaded collections, by identity and count (a member held twice is a failure).

Three configurations: the tree's ``children`` and the ``badge`` with the default cascade (a
deleted node's children and badge are detached), with ``"save, delete"`` (they are deleted, a
child taken out is detached), and with ``"all"`` (a child taken out, or a badge replaced, is an
orphan and deleted).

``MAPPER_HYPOTHESIS_EXAMPLES`` / ``MAPPER_HYPOTHESIS_STEPS`` raise the examples per configuration
and the steps per example for a soak; ``MAPPER_HYPOTHESIS_STATS=1`` with ``pytest -s`` prints
what the machine did.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    precondition,
    rule,
    run_state_machine_as_test,
)

from mapper import BelongsTo, BelongsToMany, Column, ForeignKey, HasMany, HasOne, Mapper
from mapper import types as t
from mapper.lazy import is_unloaded

# -- the domain: plain attrs classes, hashable by identity (GTag.nodes is a set) ------------------


@attrs.define(eq=False)
class GNode:
    name: str
    parent: GNode | None = None
    children: list[GNode] = attrs.Factory(list)
    tags: list[GTag] = attrs.Factory(list)
    badge: GBadge | None = None
    groups: list[GGroup] = attrs.Factory(list)
    id: int | None = None


@attrs.define(eq=False)
class GTag:
    label: str
    nodes: set[GNode] = attrs.Factory(set)
    id: int | None = None


@attrs.define(eq=False)
class GBadge:
    code: str
    node: GNode | None = None
    id: int | None = None


@attrs.define(eq=False)
class GGroup:
    name: str
    id: int | None = None


@attrs.define(eq=False)
class GMember:
    node: GNode | None = None
    group: GGroup | None = None
    role: int = 0
    id: int | None = None


CONFIGS = ("nullify", "delete", "all")
CASCADES: dict[str, dict[str, Any]] = {"nullify": {}, "delete": {"cascade": "save, delete"}, "all": {"cascade": "all"}}


def make_mappers(config: str) -> list[type]:
    """The mappers of one configuration (the cascade of ``children`` and ``badge``)."""
    cascade = CASCADES[config]

    class NodeMapper(Mapper[GNode]):
        table = "mg_nodes"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(40), nullable=False)
        parent_id = Column(t.Integer, ForeignKey("mg_nodes.id"), index=True)
        parent = BelongsTo(GNode, foreign_key="parent_id", inverse="children")
        children = HasMany(GNode, foreign_key="parent_id", inverse="parent", order_by="id", **cascade)
        tags = BelongsToMany(
            GTag, through="mg_node_tags", foreign_key="node_id", other_key="tag_id", inverse="nodes", order_by="id"
        )
        badge = HasOne(GBadge, foreign_key="node_id", inverse="node", **cascade)
        groups = BelongsToMany(GGroup, through="GMember", foreign_key="node_id", other_key="group_id", order_by="id")

    class TagMapper(Mapper[GTag]):
        table = "mg_tags"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(40), nullable=False)
        nodes = BelongsToMany(
            GNode, through="mg_node_tags", foreign_key="tag_id", other_key="node_id", inverse="tags", collection=set
        )

    class BadgeMapper(Mapper[GBadge]):
        table = "mg_badges"
        id = Column(t.Integer, primary_key=True)
        code = Column(t.String(40), nullable=False)
        node_id = Column(t.Integer, ForeignKey("mg_nodes.id"), index=True)
        node = BelongsTo(GNode, foreign_key="node_id", inverse="badge")

    class GroupMapper(Mapper[GGroup]):
        table = "mg_groups"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(40), nullable=False)

    class MemberMapper(Mapper[GMember]):
        table = "mg_members"
        id = Column(t.Integer, primary_key=True)
        node_id = Column(t.Integer, ForeignKey("mg_nodes.id", on_delete="CASCADE"), nullable=False, index=True)
        group_id = Column(t.Integer, ForeignKey("mg_groups.id", on_delete="CASCADE"), nullable=False, index=True)
        role = Column(t.Integer, nullable=False, default=0)
        node = BelongsTo(GNode, foreign_key="node_id")
        group = BelongsTo(GGroup, foreign_key="group_id")

    return [NodeMapper, TagMapper, BadgeMapper, GroupMapper, MemberMapper]


EXAMPLES = int(os.environ.get("MAPPER_HYPOTHESIS_EXAMPLES", "0") or 0)
STEPS = int(os.environ.get("MAPPER_HYPOTHESIS_STEPS", "0") or 0)
#: Examples per configuration and backend in CI (30 steps each).
CI_EXAMPLES = {"sqlite": 120, "postgresql": 60, "mysql": 50}
NAMES = st.sampled_from(["a", "b", "c", "Zoé", "🌲"])

#: With MAPPER_HYPOTHESIS_STATS=1 (and pytest -s), what the machine did is printed per test.
STATS: Counter[str] | None = Counter() if os.environ.get("MAPPER_HYPOTHESIS_STATS") else None


def _note(what: str) -> None:
    if STATS is not None:
        STATS[what] += 1


class Boom(Exception):
    """Raised inside a savepoint block to make it roll back."""


@attrs.define
class Model:
    """What the database holds (after the next flush, for the pending part), by machine uid."""

    nodes: dict[int, list[Any]] = attrs.Factory(dict)  # uid -> [name, parent uid]
    tags: dict[int, str] = attrs.Factory(dict)
    links: set[tuple[int, int]] = attrs.Factory(set)  # (node uid, tag uid)
    badges: dict[int, list[Any]] = attrs.Factory(dict)  # uid -> [code, node uid]
    groups: dict[int, str] = attrs.Factory(dict)
    members: dict[tuple[int, int], int] = attrs.Factory(dict)  # (node uid, group uid) -> role
    member_uid: dict[tuple[int, int], int] = attrs.Factory(dict)  # pairs whose GMember is held
    unlinked_members: set[int] = attrs.Factory(set)  # held GMembers of pairs unlinked since the flush
    left: set[tuple[int, int]] = attrs.Factory(set)  # pairs unlinked since the flush
    moved_by: dict[int, str] = attrs.Factory(dict)  # node uid -> the side that set its parent since
    badge_side: dict[int, str] = attrs.Factory(dict)  # badge uid -> the side that set it since
    pending: set[int] = attrs.Factory(set)  # new, not flushed yet
    explicit: set[int] = attrs.Factory(set)  # the new ones passed to add()

    def fragile(self) -> set[int]:
        """New objects only a relation reaches ("save" cascades at the flush): the rules never
        take them out of that relation before the flush, which would leave them unsaved."""
        return self.pending - self.explicit
    marked: set[int] = attrs.Factory(set)  # s.delete()d, not flushed yet
    flushed_parent: dict[int, Any] = attrs.Factory(dict)  # node uid -> parent uid at the last flush
    flushed_badge: dict[int, Any] = attrs.Factory(dict)  # badge uid -> node uid at the last flush
    taken_out: dict[int, int] = attrs.Factory(dict)  # node uid -> the parent the last flush took it from

    def living(self) -> set[int]:
        held_members = set(self.member_uid.values()) | self.unlinked_members
        return set(self.nodes) | set(self.tags) | set(self.badges) | set(self.groups) | held_members

    def subtree(self, uid: int) -> set[int]:
        out, todo = {uid}, [uid]
        while todo:
            u = todo.pop()
            for c, (_, p) in self.nodes.items():
                if p == u and c not in out:
                    out.add(c)
                    todo.append(c)
        return out

    def badge_of(self, nu: int) -> int | None:
        held = [b for b, (_, n) in self.badges.items() if n == nu]
        assert len(held) <= 1, held
        return held[0] if held else None


def build_machine(db: Any, backend: Any, config: str, raw: Any) -> type:
    """A state machine class bound to one Database (its tables exist) on one backend."""
    q = backend.q
    deletes = config in ("delete", "all")
    orphans = config == "all"
    tables = ("mg_members", "mg_node_tags", "mg_badges", "mg_groups", "mg_tags", "mg_nodes")

    class GraphMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            raw(f"UPDATE {q('mg_nodes')} SET parent_id = NULL", ())
            for table in tables:
                raw(f"DELETE FROM {q(table)}", ())
            self.s = db.session()
            self.m = Model()
            self.committed = Model()
            self.frames: list[tuple[Any, Model, set[int]]] = []
            self.objs: dict[int, Any] = {}  # uid -> the object the machine holds
            self.doomed: set[int] = set()  # deleted by a flush, in the session until the commit
            self.uid_of: dict[int, int] = {}  # id(obj) -> uid
            self.next_uid = 0

        def teardown(self) -> None:
            for cm, _, _ in reversed(self.frames):
                cm.__exit__(Boom, Boom(), None)
            self.s.close()

        # -- bookkeeping -------------------------------------------------------------------------

        def _hold(self, obj: Any) -> int:
            self.next_uid += 1
            self.objs[self.next_uid] = obj
            self.uid_of[id(obj)] = self.next_uid
            return self.next_uid

        def _uid(self, obj: Any) -> Any:
            if obj is None:
                return None
            assert id(obj) in self.uid_of and self.objs.get(self.uid_of[id(obj)]) is obj, f"{obj!r} is not held"
            return self.uid_of[id(obj)]

        def _pick(self, data: Any, pool: Any, label: str) -> int | None:
            choices = sorted(u for u in pool if u not in self.m.marked)
            return data.draw(st.sampled_from(choices), label=label) if choices else None

        def _ready(self, *needs: tuple[int | None, str]) -> bool:
            """Load the collections a rule edits in place; False when none needed loading.

            A load autoflushes, so the machine flushes first (and checks); the caller then checks
            that what it picked survived that flush.
            """
            unloaded = [(u, a) for u, a in needs if u is not None and is_unloaded(getattr(self.objs[u], a))]
            if not unloaded:
                return False
            self.flush()
            for u, a in unloaded:
                if u in self.m.living():
                    len(getattr(self.objs[u], a))
            self.check_memory()
            return True

        # -- the flush, in the model -------------------------------------------------------------

        def settle(self) -> None:
            """Apply what the next flush does to the model: cascades, detaching, orphans."""
            m = self.m
            m.explicit.clear()
            dead = {u for u in m.marked if u in m.nodes}
            if orphans:
                dead |= {u for u, (_, p) in m.nodes.items() if p is None and m.flushed_parent.get(u) is not None}
            if deletes:
                for u in list(dead):
                    dead |= m.subtree(u)
            for u, row in m.nodes.items():
                if u not in dead and row[1] in dead:
                    row[1] = None
                if u not in dead and row[1] is None and m.flushed_parent.get(u) in dead:
                    _note("taken out of a parent deleted in the same flush")
            if dead & set(m.taken_out.values()):
                _note("a parent deleted after a flush that took a child out")
            dead_badges = {u for u in m.marked if u in m.badges}
            for b, row in m.badges.items():
                if row[1] in dead:
                    if deletes:
                        dead_badges.add(b)
                    row[1] = None
                elif orphans and row[1] is None and m.flushed_badge.get(b) is not None:
                    dead_badges.add(b)
            dead_tags = {u for u in m.marked if u in m.tags}
            dead_groups = {u for u in m.marked if u in m.groups}
            dead_members = {u for u in m.marked if u in m.member_uid.values()} | m.unlinked_members
            m.unlinked_members = set()
            m.left = set()
            m.moved_by = {}
            m.badge_side = {}
            for u in dead:
                del m.nodes[u]
            for u in dead_badges:
                del m.badges[u]
            for u in dead_tags:
                del m.tags[u]
            for u in dead_groups:
                del m.groups[u]
            m.links = {(n, g) for n, g in m.links if n in m.nodes and g in m.tags}
            for pair, mu in list(m.member_uid.items()):
                if mu in dead_members:
                    del m.member_uid[pair]
                    del m.members[pair]
            for pair in list(m.members):
                if pair[0] not in m.nodes or pair[1] not in m.groups:
                    del m.members[pair]
                    mu = m.member_uid.pop(pair, None)
                    if mu is not None:
                        # Deleted with its node or group (ON DELETE CASCADE): in the session,
                        # marked deleted, until the commit, like any deleted object.
                        dead_members.add(mu)
            m.pending.clear()
            m.marked.clear()
            m.taken_out = {u: p for u, p in m.flushed_parent.items() if u in m.nodes and p in m.nodes and m.nodes[u][1] is None}
            m.flushed_parent = {u: p for u, (_, p) in m.nodes.items()}
            m.flushed_badge = {u: n for u, (_, n) in m.badges.items()}
            # A deleted object stays in the session until the commit (guide, Session API).
            self.doomed |= dead | dead_badges | dead_tags | dead_groups | dead_members

        def flush(self) -> None:
            self.s.flush()
            self.settle()

        # -- checks ------------------------------------------------------------------------------

        def check(self, sql_in_session: bool) -> None:
            self.check_database(sql_in_session)
            self.check_memory()

        def _rows(self, sql: str, in_session: bool) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in (self.s.execute(sql) if in_session else raw(sql, ()))]

        def check_database(self, in_session: bool) -> None:
            m, ids = self.m, {}
            for u in m.living():
                ids[(type(self.objs[u]), self.objs[u].id)] = u

            def uid(cls: type, key: Any) -> Any:
                return None if key is None else ids.get((cls, key), ("unknown", cls.__name__, key))

            rows = self._rows(f"SELECT id, name, parent_id FROM {q('mg_nodes')}", in_session)
            assert sorted((uid(GNode, i), n, uid(GNode, p)) for i, n, p in rows) == sorted((u, n, p) for u, (n, p) in m.nodes.items())
            rows = self._rows(f"SELECT id, label FROM {q('mg_tags')}", in_session)
            assert sorted((uid(GTag, i), lb) for i, lb in rows) == sorted(m.tags.items())
            rows = self._rows(f"SELECT node_id, tag_id FROM {q('mg_node_tags')}", in_session)
            assert sorted((uid(GNode, n), uid(GTag, g)) for n, g in rows) == sorted(m.links)
            rows = self._rows(f"SELECT id, code, node_id FROM {q('mg_badges')}", in_session)
            assert sorted((uid(GBadge, i), c, uid(GNode, n)) for i, c, n in rows) == sorted((u, c, n) for u, (c, n) in m.badges.items())
            rows = self._rows(f"SELECT id, name FROM {q('mg_groups')}", in_session)
            assert sorted((uid(GGroup, i), n) for i, n in rows) == sorted(m.groups.items())
            rows = self._rows(f"SELECT node_id, group_id, role FROM {q('mg_members')}", in_session)
            assert sorted((uid(GNode, n), uid(GGroup, g), r) for n, g, r in rows) == sorted((n, g, r) for (n, g), r in m.members.items())

        def _same(self, got: Any, want: list[int], what: str) -> None:
            assert sorted(self._uid(x) for x in got) == sorted(want), what

        def check_memory(self) -> None:
            m = self.m
            for u in m.living():
                obj = self.objs[u]
                assert obj in self.s, f"{obj!r} left the session"
                if isinstance(obj, GNode):
                    name, parent = m.nodes[u]
                    assert obj.name == name
                    assert self._uid(obj.parent) == parent, f"{name}.parent"
                    if not is_unloaded(obj.children):
                        self._same(obj.children, [c for c, (_, p) in m.nodes.items() if p == u], f"{name}.children")
                    if not is_unloaded(obj.tags):
                        self._same(obj.tags, [g for n, g in m.links if n == u], f"{name}.tags")
                    if not is_unloaded(obj.groups):
                        self._same(obj.groups, [g for n, g in m.members if n == u], f"{name}.groups")
                    assert self._uid(obj.badge) == m.badge_of(u), f"{name}.badge"
                elif isinstance(obj, GTag):
                    assert obj.label == m.tags[u]
                    if not is_unloaded(obj.nodes):
                        self._same(obj.nodes, [n for n, g in m.links if g == u], f"{obj.label}.nodes")
                elif isinstance(obj, GBadge):
                    assert [obj.code, self._uid(obj.node)] == m.badges[u]
                elif isinstance(obj, GMember):
                    pair = next(p for p, mu in m.member_uid.items() if mu == u)
                    assert (self._uid(obj.node), self._uid(obj.group), obj.role) == (*pair, m.members[pair])

        # -- rules: the tree ---------------------------------------------------------------------

        @rule(data=st.data(), name=NAMES, how=st.sampled_from(["root", "reference", "list"]))
        def add_node(self, data: Any, name: str, how: str) -> None:
            node = GNode(name)
            parent = None if how == "root" else self._pick(data, self.m.nodes, "parent")
            explicit = parent is None or how == "reference"
            if parent is None:
                self.s.add(node)
            elif how == "reference":
                node.parent = self.objs[parent]
                self.s.add(node)
            else:
                if self._ready((parent, "children")) and parent not in self.m.nodes:
                    return
                self.objs[parent].children.append(node)
            u = self._hold(node)
            self.m.nodes[u] = [name, parent]
            self.m.moved_by[u] = "list" if how == "list" else "reference"
            self.m.pending.add(u)
            if explicit:
                self.m.explicit.add(u)
            _note(f"add node ({how if parent is not None else 'root'})")

        @rule(data=st.data(), name=NAMES)
        def rename(self, data: Any, name: str) -> None:
            u = self._pick(data, self.m.nodes, "node")
            if u is not None:
                self.objs[u].name = name
                self.m.nodes[u][0] = name

        @rule(data=st.data(), how=st.sampled_from(["reference", "list", "related"]), out=st.booleans())
        def move_node(self, data: Any, how: str, out: bool) -> None:
            """Move a node under another (``out``: take it out of its parent), from either side."""
            u = self._pick(data, set(self.m.nodes) - self.m.fragile(), "node")
            if u is None:
                return
            old = self.m.nodes[u][1]
            if out:
                if old is None:
                    return
                to = None
            else:
                to = self._pick(data, set(self.m.nodes) - self.m.subtree(u) - {old}, "to")
                if to is None:
                    return
            if self._move(u, old, to, how):
                _note(f"move node {'out' if out else 'to'} ({how})")

        def _move(self, u: int, old: int | None, to: int | None, how: str) -> bool:
            """Move node ``u`` from ``old`` to ``to`` through ``how``; False if it did not happen."""
            side = "reference" if how == "reference" else "list"
            if self.m.moved_by.setdefault(u, side) != side:
                self.flush()  # moved from both sides since the flush contradicts: a FlushError
                self.check(sql_in_session=True)
                return False
            if how == "list" and self._ready((old, "children"), (to, "children")):
                if u not in self.m.nodes or self.m.nodes[u][1] != old or (to is not None and (to not in self.m.nodes or to in self.m.subtree(u))):
                    return False
            node = self.objs[u]
            if how == "list" and old is not None and not any(c is node for c in self.objs[old].children):
                return False  # moved by reference: the old list shows it after the flush
            if how == "reference":
                node.parent = None if to is None else self.objs[to]
            elif how == "list":
                if old is not None:
                    self.objs[old].children.remove(node)
                if to is not None:
                    self.objs[to].children.append(node)
            else:
                if {old, to} & self.m.fragile():
                    return False  # related() needs an object the session holds
                if old is not None:
                    self.s.related(self.objs[old], "children").remove(node)
                if to is not None:
                    self.s.related(self.objs[to], "children").add(node)
            self.m.nodes[u][1] = to
            return True

        @rule(data=st.data(), how=st.sampled_from(["reference", "list", "related"]), flush_between=st.booleans())
        def take_out_then_delete_parent(self, data: Any, how: str, flush_between: bool) -> None:
            """Take a child out of its parent, then delete the parent (in the same flush or the next):
            the child stays, detached, whatever the cascade (with "orphan" it goes as an orphan)."""
            if self.m.pending:
                self.flush()
                self.check(sql_in_session=True)
            u = self._pick(data, {c for c, (_, p) in self.m.nodes.items() if p is not None and p not in self.m.marked}, "child")
            if u is None:
                return
            parent = self.m.nodes[u][1]
            if not self._move(u, parent, None, how) or parent not in self.m.nodes:
                return
            if flush_between:
                self.flush()
                self.check(sql_in_session=True)
                if parent not in self.m.nodes:
                    return
            self.s.delete(self.objs[parent])
            self.m.marked.add(parent)
            _note(f"take out, {'flush, ' if flush_between else ''}delete the parent ({how})")

        # -- rules: deleting (what was flushed: dropping a new object is the owner/pug machine's) --

        @rule(data=st.data(), kind=st.sampled_from(["node", "node", "node", "tag", "badge", "group", "member"]))
        def delete(self, data: Any, kind: str) -> None:
            if self.m.pending:
                self.flush()  # new objects are flushed first: deleting them only drops them
                self.check(sql_in_session=True)
            pool = {"node": self.m.nodes, "tag": self.m.tags, "badge": self.m.badges, "group": self.m.groups,
                    "member": set(self.m.member_uid.values())}[kind]
            u = self._pick(data, pool, kind)
            if u is None:
                return
            self.s.delete(self.objs[u])
            self.m.marked.add(u)
            _note(f"delete {kind}")

        # -- rules: tags (a junction table) ------------------------------------------------------

        @rule(data=st.data(), label=NAMES, link=st.booleans())
        def add_tag(self, data: Any, label: str, link: bool) -> None:
            tag = GTag(label)
            u = self._hold(tag)
            nu = self._pick(data, self.m.nodes, "node") if link else None
            if nu is None:
                self.s.add(tag)
                self.m.explicit.add(u)
            else:
                if self._ready((nu, "tags")) and nu not in self.m.nodes:
                    return
                self.objs[nu].tags.append(tag)
                self.m.links.add((nu, u))
            self.m.tags[u] = label
            self.m.pending.add(u)

        @rule(data=st.data(), how=st.sampled_from(["node", "tag", "related_node", "related_tag"]), link=st.booleans())
        def link_tag(self, data: Any, how: str, link: bool) -> None:
            """Link (again, if it is linked) or unlink a node and a tag from either side."""
            nu, tu = self._pick(data, self.m.nodes, "node"), self._pick(data, self.m.tags, "tag")
            if nu is None or tu is None:
                return
            if self._ready((nu if how == "node" else None, "tags"), (tu if how == "tag" else None, "nodes")):
                if nu not in self.m.nodes or tu not in self.m.tags:
                    return
            node, tag = self.objs[nu], self.objs[tu]
            linked = (nu, tu) in self.m.links
            if not link and linked and {nu, tu} & self.m.fragile():
                return
            if how.startswith("related") and {nu if how == "related_node" else tu} & self.m.fragile():
                return  # related() needs an object the session holds
            shown = node.tags if how in ("node", "related_node") else tag.nodes
            other = tag if how in ("node", "related_node") else node
            if not is_unloaded(shown) and any(x is other for x in shown) != linked:
                return  # linked from the other side: this side shows it after the flush
            if how == "node":
                if link and not linked:
                    node.tags.append(tag)
                elif not link and linked:
                    node.tags.remove(tag)
            elif how == "tag":
                (tag.nodes.add if link else tag.nodes.discard)(node)
            elif how == "related_node":
                acc = self.s.related(node, "tags")
                if link:
                    acc.add(tag)
                elif linked:
                    acc.remove(tag)
            else:
                acc = self.s.related(tag, "nodes")
                if link:
                    acc.add(node)
                elif linked:
                    acc.remove(node)
            (self.m.links.add if link else self.m.links.discard)((nu, tu))
            _note(f"{'link' if link else 'unlink'} tag{' again' if link and linked else ''} ({how})")

        # -- rules: the badge (a HasOne) ---------------------------------------------------------

        def _badges_mirrored(self, nodes: list[int], badges: list[int]) -> bool:
            """Whether both sides of the HasOne show what the model says (they agree again only
            after a flush when one side was set); if not, flush (and check) instead."""
            m, obj = self.m, (lambda u: None if u is None else self.objs[u])
            if all(self.objs[n].badge is obj(m.badge_of(n)) for n in nodes) and all(
                self.objs[b].node is obj(m.badges[b][1]) for b in badges
            ):
                return True
            self.flush()
            self.check(sql_in_session=True)
            return False

        def _badge_sides(self, bu: int, side: str) -> bool:
            """True (after a flush) when the badge was set from the other side since the flush:
            both sides edited before a flush contradict each other (a FlushError)."""
            if self.m.badge_side.setdefault(bu, side) == side:
                return False
            self.flush()
            self.check(sql_in_session=True)
            return True

        @rule(data=st.data(), code=NAMES, new=st.booleans(), side=st.sampled_from(["node", "badge"]))
        def set_badge(self, data: Any, code: str, new: bool, side: str) -> None:
            """Give a node a badge (new, or moved from another node), from either side."""
            nu = self._pick(data, self.m.nodes, "node")
            if nu is None:
                return
            old = self.m.badge_of(nu)
            bu = None if new else self._pick(data, set(self.m.badges) - {old} - self.m.fragile(), "badge")
            if old in self.m.fragile() or (bu is None and not new):
                return
            moved_from = None if bu is None else self.m.badges[bu][1]
            nodes = [n for n in (nu, moved_from) if n is not None]
            if not self._badges_mirrored(nodes, [b for b in (old, bu) if b is not None]):
                return
            if bu is not None and self._badge_sides(bu, "badge" if side == "badge" and old is None else "node"):
                return
            if old is not None and self._badge_sides(old, "node"):  # replaced: cleared from the node's side
                return
            if new:
                badge = GBadge(code)
                bu = self._hold(badge)
                self.m.badges[bu] = [code, None]
                self.m.badge_side[bu] = "badge" if side == "badge" and old is None else "node"
                self.m.pending.add(bu)
            else:
                assert bu is not None
                badge = self.objs[bu]
            node = self.objs[nu]
            if side == "badge" and old is not None:
                side = "node"  # two badges pointing at one node is not a state to reach
            if side == "node":
                node.badge = badge
            else:
                badge.node = node
                if new:
                    self.s.add(badge)
                    self.m.explicit.add(bu)
            if old is not None:
                self.m.badges[old][1] = None
            self.m.badges[bu][1] = nu
            _note(f"set badge ({'new' if new else 'moved'}, {side}{', replacing' if old is not None else ''})")

        @rule(data=st.data(), side=st.sampled_from(["node", "badge"]))
        def clear_badge(self, data: Any, side: str) -> None:
            bu = self._pick(data, {b for b, (_, n) in self.m.badges.items() if n is not None} - self.m.fragile(), "badge")
            if bu is None:
                return
            nu = self.m.badges[bu][1]
            if not self._badges_mirrored([nu], [bu]) or self._badge_sides(bu, side):
                return
            if side == "node":
                self.objs[nu].badge = None
            else:
                self.objs[bu].node = None
            self.m.badges[bu][1] = None
            _note(f"clear badge ({side})")

        # -- rules: groups (an association class with a payload) ---------------------------------

        @rule(name=NAMES)
        def add_group(self, name: str) -> None:
            group = GGroup(name)
            u = self._hold(group)
            self.s.add(group)
            self.m.groups[u] = name
            self.m.pending.add(u)
            self.m.explicit.add(u)

        @rule(data=st.data(), how=st.sampled_from(["collection", "object", "related"]), role=st.integers(0, 3))
        def join_group(self, data: Any, how: str, role: int) -> None:
            nu, gu = self._pick(data, self.m.nodes, "node"), self._pick(data, self.m.groups, "group")
            if nu is None or gu is None or (nu, gu) in self.m.members or (nu, gu) in self.m.left:
                return  # (joining again a group left since the flush is no change: not modelled)
            if how == "collection" and self._ready((nu, "groups")):
                if nu not in self.m.nodes or gu not in self.m.groups or (nu, gu) in self.m.members:
                    return
            node, group = self.objs[nu], self.objs[gu]
            if how == "collection":
                node.groups.append(group)
                role = 0
            elif how == "related":
                if nu in self.m.fragile():
                    return  # related() needs an object the session holds
                self.s.related(node, "groups").add(group)
                role = 0
            else:
                member = GMember(node=node, group=group, role=role)
                self.s.add(member)
                mu = self._hold(member)
                self.m.member_uid[(nu, gu)] = mu
                self.m.pending.add(mu)
                self.m.explicit.add(mu)
            self.m.members[(nu, gu)] = role
            _note(f"join group ({how})")

        @rule(data=st.data(), role=st.integers(0, 3))
        def set_role(self, data: Any, role: int) -> None:
            pairs = [p for p, mu in self.m.member_uid.items() if mu not in self.m.marked]
            if not pairs:
                return
            pair = data.draw(st.sampled_from(sorted(pairs)), label="member")
            self.objs[self.m.member_uid[pair]].role = role
            self.m.members[pair] = role

        @rule(data=st.data(), how=st.sampled_from(["collection", "related"]))
        def leave_group(self, data: Any, how: str) -> None:
            marked = [p for p, mu in self.m.member_uid.items() if mu in self.m.marked]
            choices = sorted(p for p in set(self.m.members) - set(marked) if not self.m.marked & set(p))
            if not choices:
                return
            nu, gu = data.draw(st.sampled_from(choices), label="membership")
            if how == "collection" and self._ready((nu, "groups")) and (nu, gu) not in self.m.members:
                return
            node, group = self.objs[nu], self.objs[gu]
            if not is_unloaded(node.groups) and not any(g is group for g in node.groups):
                return  # joined by an association object: the list shows it after the flush
            if how == "collection":
                node.groups.remove(group)
            else:
                if nu in self.m.fragile():
                    return  # related() needs an object the session holds
                self.s.related(node, "groups").remove(group)
            del self.m.members[(nu, gu)]
            self.m.left.add((nu, gu))
            mu = self.m.member_uid.pop((nu, gu), None)
            if mu is not None:  # the held association object is deleted at the flush
                self.m.marked.add(mu)
                self.m.unlinked_members.add(mu)
            _note(f"leave group ({how})")

        # -- rules: the transaction --------------------------------------------------------------

        @rule()
        def do_flush(self) -> None:
            self.flush()
            self.check(sql_in_session=True)

        @rule()
        def commit(self) -> None:
            if self.frames:
                return
            self.s.commit()
            self.settle()
            self._committed()
            self.check(sql_in_session=False)
            _note("commit")

        def _committed(self) -> None:
            for u in self.doomed:
                assert self.objs[u] not in self.s, f"deleted {self.objs[u]!r} is in the session after the commit"
                del self.objs[u]
            self.doomed = set()
            self.committed = copy.deepcopy(self.m)

        @rule(now=st.integers(0, 2))
        def rollback(self, now: int) -> None:
            if self.frames or now:
                return  # (two times in three: a rollback undoes what the rules built up)
            self.s.rollback()
            self._restore(self.committed, set())
            self.check(sql_in_session=False)
            _note("rollback")

        def _restore(self, model: Model, doomed: set[int]) -> None:
            """Back to ``model``: what was added since leaves the session, what was deleted since
            is back (``doomed``: what was deleted before and stays so until the commit)."""
            keep = model.living() | doomed
            for u, obj in list(self.objs.items()):
                if u not in keep:
                    assert obj not in self.s, f"{obj!r}, added since, is still in the session"
                    del self.objs[u]
            self.m = copy.deepcopy(model)
            self.doomed = set(doomed)

        @precondition(lambda self: not self.frames)
        @rule()
        def begin_nested(self) -> None:
            cm = self.s.begin_nested()
            cm.__enter__()
            self.settle()
            self.frames.append((cm, copy.deepcopy(self.m), set(self.doomed)))
            _note("savepoint")

        @precondition(lambda self: self.frames)
        @rule(fail=st.booleans())
        def end_nested(self, fail: bool) -> None:
            cm, saved, doomed = self.frames.pop()
            if fail:
                assert cm.__exit__(Boom, Boom(), None) is False
                self._restore(saved, doomed)
            else:
                cm.__exit__(None, None, None)
                self.settle()
            self.check(sql_in_session=True)
            _note(f"end savepoint ({'raise' if fail else 'ok'})")

        # -- rules: reading ----------------------------------------------------------------------

        @precondition(lambda self: not self.frames)
        @rule(data=st.data(), includes=st.sets(st.sampled_from(["children", "tags", "groups", "parent"])), now=st.booleans())
        def reload(self, data: Any, includes: set[str], now: bool) -> None:
            """Commit, then read everything back in a new session (collections loaded or not)."""
            if not now:
                return
            self.s.commit()
            self.settle()
            self._committed()
            self.s.close()
            self.s = db.session()
            by_id = {(type(self.objs[u]), self.objs[u].id): u for u in self.m.living()}
            self.objs, self.uid_of = {}, {}
            query = self.s.query(GNode).order_by("id")
            if includes:
                query = query.include(*sorted(includes))
            loaded: list[Any] = query.all()
            if data.draw(st.booleans(), label="tags with nodes"):
                loaded += self.s.query(GTag).include("nodes").all()
            else:
                loaded += self.s.query(GTag).all()
            loaded += self.s.query(GBadge).all() + self.s.query(GGroup).all()
            members = self.s.query(GMember).all()
            for obj in loaded:
                u = by_id[(type(obj), obj.id)]
                self.objs[u] = obj
                self.uid_of[id(obj)] = u
            self.m.member_uid = {}
            for member in members:
                u = self._hold(member)
                self.m.member_uid[(self._uid(member.node), self._uid(member.group))] = u
            self.committed = copy.deepcopy(self.m)
            self.check(sql_in_session=False)
            _note(f"reload ({len(includes)} includes)")

        @rule(data=st.data(), attr=st.sampled_from(["children", "tags", "groups"]))
        def touch(self, data: Any, attr: str) -> None:
            """Load one collection (after a flush, so the load sees what the model says)."""
            u = self._pick(data, self.m.nodes, "node")
            if u is not None and is_unloaded(getattr(self.objs[u], attr)):
                self.flush()
                len(getattr(self.objs[u], attr))
                self.check_memory()
                _note(f"touch {attr}")

    return GraphMachine


@pytest.mark.parametrize("config", CONFIGS)
def test_graph_against_a_model(backend, make_db, config):
    """Random work on a tree, a junction, a HasOne and an association class agrees with a model."""
    db = make_db(*make_mappers(config))
    conn = backend.raw_connect()

    def raw(sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            rows = [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            cur.close()
        conn.commit()
        return rows

    try:
        run_state_machine_as_test(
            build_machine(db, backend, config, raw),
            settings=settings(
                max_examples=EXAMPLES or CI_EXAMPLES[backend.name],
                stateful_step_count=STEPS or 30,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
                database=None,
                report_multiple_bugs=False,
            ),
        )
    finally:
        conn.close()
        if STATS is not None:
            print(f"\n{backend.name}-{config}:", dict(sorted(STATS.items())))
            STATS.clear()


# -- regressions: the bugs the machine and its first runs found, each as its smallest example --------


def _badge_rows(backend):
    q = backend.q
    sql = f"SELECT b.code, n.name FROM {q('mg_badges')} b LEFT JOIN {q('mg_nodes')} n ON n.id = b.node_id ORDER BY b.code"
    return backend.raw(sql)


def test_badge_moved_to_a_node_and_deleted_in_one_flush_leaves_the_nodes_badge(backend, make_db):
    """(Was: moving b1 to n by its reference, then deleting it, put b1 in n.badge for the flush's
    mirror and then took it out again, so n.badge ended None while b2's row still names n.)"""
    db = make_db(*make_mappers("nullify"))
    with db.session() as s:
        s.add(GNode("n", badge=GBadge("b2")))
        s.add(GNode("m", badge=GBadge("b1")))
    with db.session() as s:
        n, m = s.query(GNode).order_by("id").all()
        b1, b2 = m.badge, n.badge
        b1.node = n
        s.delete(b1)
        s.flush()
        assert n.badge is b2 and m.badge is None
    assert _badge_rows(backend) == [("b2", "n")]


def test_association_object_created_then_unlinked_in_one_flush_is_dropped(backend, make_db):
    """Removing a pair through related() drops the association object created for it since the
    last flush. (Was: its row was inserted and then deleted by the removal, and the object stayed
    managed without a row, so a later edit of it would have updated nothing.)"""
    db = make_db(*make_mappers("nullify"))
    with db.session() as s:
        s.add(GNode("n"))
        s.add(GGroup("g"))
    with db.session() as s:
        n, g = s.query(GNode).one(), s.query(GGroup).one()  # n.groups not loaded
        member = GMember(node=n, group=g, role=2)
        s.add(member)
        s.related(n, "groups").remove(g)
        s.commit()
        assert member not in s
        assert s.related(n, "groups").count() == 0
    assert backend.raw(f"SELECT node_id, group_id, role FROM {backend.q('mg_members')}") == []


@pytest.mark.parametrize("config", ["nullify", "all"])
def test_pair_linked_then_unlinked_through_related_in_one_flush_ends_unlinked(backend, make_db, config):
    """related() edits are made one after another: link then unlink of the same pair leaves it
    unlinked, and unlink then link leaves it linked. (Was: a FlushError saying the two sides
    contradict each other.)"""
    db = make_db(*make_mappers(config))
    with db.session() as s:
        s.add(GNode("n"))
        s.add(GGroup("g"))
        s.add(GGroup("h"))
    with db.session() as s:
        n = s.query(GNode).one()
        g, h = s.query(GGroup).order_by("name").all()
        s.related(n, "groups").add(g)
        s.related(n, "groups").remove(g)
        s.related(n, "groups").remove(h)
        s.related(n, "groups").add(h)
        s.commit()
        assert [x.name for x in s.related(n, "groups").all()] == ["h"]
    rows = backend.raw(
        f"SELECT g.name FROM {backend.q('mg_members')} m JOIN {backend.q('mg_groups')} g ON g.id = m.group_id"
    )
    assert rows == [("h",)]


@pytest.mark.parametrize("config", ["nullify", "all"])
def test_child_added_then_removed_through_related_in_one_flush_ends_out(backend, make_db, config):
    """related() edits of a collection count in order for children too: added to a parent and
    then removed from it leaves the child out of it (an orphan where the cascade says so);
    removed and added back leaves it in. (Was: the child ended in the parent it was removed from.)"""
    db = make_db(*make_mappers(config))
    with db.session() as s:
        s.add(GNode("p", children=[GNode("kept")]))
        s.add(GNode("c"))
    with db.session() as s:
        p, c, kept = (s.query(GNode).where(name=n).one() for n in ("p", "c", "kept"))
        s.related(p, "children").add(c)
        s.related(p, "children").remove(c)
        s.related(p, "children").remove(kept)
        s.related(p, "children").add(kept)
        s.commit()
    rows = backend.raw(
        f"SELECT n.name, p.name FROM {backend.q('mg_nodes')} n LEFT JOIN {backend.q('mg_nodes')} p ON p.id = n.parent_id ORDER BY n.name"
    )
    # With "orphan" ("all"), the last edit took c out of its parent: it goes as an orphan.
    assert rows == ([("kept", "p"), ("p", None)] if config == "all" else [("c", None), ("kept", "p"), ("p", None)])


@pytest.mark.parametrize("end", ["group", "node"])
def test_pair_added_to_a_group_deleted_in_the_same_flush_leaves_nothing_behind(backend, make_db, end):
    """A group appended to a node's groups (a BelongsToMany through an association class) and
    deleted, or its node deleted, in the same flush: no association row, no association object
    left managed, and the pair gone from the loaded collections. (Was: the association object
    made for the pair stayed in the session without a row, and put the deleted group back into
    ``node.groups``; found by ``test_graph_against_a_model``.)"""
    db = make_db(*make_mappers("all"))
    with db.session() as s:
        n, g, kept = GNode("n"), GGroup("g"), GGroup("kept")
        s.add_all([n, g, kept])
        s.flush()
        n.groups.append(kept)
        n.groups.append(g)
        s.delete(g if end == "group" else n)
        s.flush()
        if end == "group":
            assert n.groups == [kept]
        # What the session holds of the members is what the table has.
        assert [(m.node.name, m.group.name) for m in s.query(GMember).all()] == ([("n", "kept")] if end == "group" else [])
        s.commit()
    rows = backend.raw(
        f"SELECT n.name, g.name FROM {backend.q('mg_members')} m JOIN {backend.q('mg_groups')} g ON g.id = m.group_id "
        f"JOIN {backend.q('mg_nodes')} n ON n.id = m.node_id"
    )
    assert rows == ([("n", "kept")] if end == "group" else [])
    assert backend.raw(f"SELECT name FROM {backend.q('mg_groups')} ORDER BY name") == (
        [("kept",)] if end == "group" else [("g",), ("kept",)]
    )


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("how", ["delete", "take out"])
def test_new_grandchildren_of_a_parent_deleted_in_the_same_flush(backend, make_db, config, how):
    """New nodes hung by reference below a node that this flush deletes (or drops as an orphan):
    with the "delete" cascade the new child is dropped and so is the new grandchild below it;
    without, the child is detached and keeps its own child. (Was: the grandchild kept a link
    to the dropped child, and the flush failed with "is not in the session"; found by
    ``test_graph_against_a_model``.)"""
    db = make_db(*make_mappers(config))
    with db.session() as s:
        p = GNode("p")
        c = GNode("c", parent=p)
        s.add_all([p, c])
        s.flush()
        if how == "delete":
            s.delete(c)
        else:
            c.parent = None  # an orphan where the cascade says "orphan" ("all")
        g1 = GNode("g1", parent=c)
        g2 = GNode("g2", parent=g1)
        s.add_all([g1, g2])
        s.commit()
        gone = config != "nullify" and (how == "delete" or config == "all")
        assert (g1 in s, g2 in s) == ((False, False) if gone else (True, True))
    rows = backend.raw(
        f"SELECT n.name, p.name FROM {backend.q('mg_nodes')} n LEFT JOIN {backend.q('mg_nodes')} p ON p.id = n.parent_id ORDER BY n.name"
    )
    if gone:
        assert rows == [("p", None)]
    elif how == "delete":  # c deleted, its new child detached
        assert rows == [("g1", None), ("g2", "g1"), ("p", None)]
    else:  # c taken out and kept (no "orphan")
        assert rows == [("c", None), ("g1", "c"), ("g2", "g1"), ("p", None)]


def test_pair_of_a_new_node_the_delete_cascade_drops_is_not_written(backend, make_db):
    """A new node hung below a node deleted by the cascade of its parent's delete, and joined to
    a group, in the same flush: the node is dropped, and the association object made for its
    pair with it. (Was: the association object was inserted with a link to the dropped node,
    and the flush failed with "is not in the session"; found by ``test_graph_against_a_model``.)"""
    db = make_db(*make_mappers("delete"))
    with db.session() as s:
        n1 = GNode("n1")
        n2 = GNode("n2", parent=n1)
        g = GGroup("g")
        s.add_all([n1, n2, g])
        s.flush()
        s.delete(n1)  # and n2 with it: the "delete" cascade
        n3 = GNode("n3", parent=n2)
        s.add(n3)
        n3.groups.append(g)
        s.commit()
        assert n3 not in s
        assert s.query(GMember).all() == []
    assert backend.raw(f"SELECT name FROM {backend.q('mg_nodes')}") == []
    assert backend.raw(f"SELECT node_id FROM {backend.q('mg_members')}") == []
    assert backend.raw(f"SELECT name FROM {backend.q('mg_groups')}") == [("g",)]
