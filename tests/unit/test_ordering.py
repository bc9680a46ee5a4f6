"""The commit order of tables comes from the foreign-key graph, never from the order of the mappers:
a cycle is broken at its nullable keys (no database needed)."""

from __future__ import annotations

import itertools

import pytest

from mapper.uow.ordering import cycle_keys, table_order
from mapper.schema import Column, ForeignKeyConstraint, Table
from mapper.types import Integer


def table(name: str, *keys: tuple[str, str, bool]) -> Table:
    """A table with an id and one key column per (column, referenced table, nullable)."""
    t = Table(name)
    pk = Column(Integer, primary_key=True)
    pk.key = pk.name = "id"
    t.columns.append(pk)
    for col_name, ref, nullable in keys:
        col = Column(Integer, nullable=nullable)
        col.key = col.name = col_name
        t.columns.append(col)
        t.foreign_keys.append(ForeignKeyConstraint(name, (col_name,), ref, ("id",)))
    return t


def orders(*tables: Table) -> set[tuple[str, ...]]:
    """table_order for every order of declaration."""
    return {tuple(table_order({t.name: t for t in perm})) for perm in itertools.permutations(tables)}


def test_a_pair_is_broken_at_its_nullable_key_whatever_the_declaration_order():
    depts = table("depts", ("manager_id", "people", True))
    people = table("people", ("dept_id", "depts", False))
    assert orders(depts, people) == {("depts", "people")}


def test_a_ring_of_three_keeps_every_key_but_the_nullable_one():
    ants = table("ants", ("bee_id", "bees", False))
    bees = table("bees", ("cat_id", "cats", False))
    cats = table("cats", ("ant_id", "ants", True))
    assert orders(ants, bees, cats) == {("cats", "bees", "ants")}


def test_a_nullable_key_that_closes_no_cycle_is_kept():
    # a -> b nullable, b -> c nullable, c -> a NOT NULL: only one nullable key has to break.
    a = table("a", ("b_id", "b", True))
    b = table("b", ("c_id", "c", True))
    c = table("c", ("a_id", "a", False))
    # c -> a is kept, then a -> b (tried first by name); b -> c would close the ring and breaks.
    assert orders(a, b, c) == {("b", "a", "c")}


def test_a_pair_of_nullable_keys_breaks_at_the_same_key_whatever_the_declaration_order():
    a = table("a", ("b_id", "b", True))
    b = table("b", ("a_id", "a", True))
    assert orders(a, b) == {("b", "a")}


def test_tables_outside_a_cycle_keep_declaration_order_among_equals():
    owners = table("owners")
    pugs = table("pugs", ("owner_id", "owners", True))
    tags = table("tags")
    assert table_order({"tags": tags, "pugs": pugs, "owners": owners}) == ["tags", "owners", "pugs"]
    assert table_order({"pugs": pugs, "owners": owners, "tags": tags}, only={"pugs", "tags"}) == ["pugs", "tags"]


@pytest.mark.parametrize("start", ["hens", "eggs"])
def test_cycle_keys_lists_every_key_of_the_cycle(start):
    hens = table("hens", ("egg_id", "eggs", False))
    eggs = table("eggs", ("hen_id", "hens", False))
    other = table("other", ("hen_id", "hens", False))
    for perm in itertools.permutations([hens, eggs, other]):
        found = cycle_keys({t.name: t for t in perm}, start)
        assert sorted((fk.table, fk.columns) for fk in found) == [("eggs", ("hen_id",)), ("hens", ("egg_id",))]
    assert cycle_keys({t.name: t for t in (hens, eggs, other)}, "other") == []
