"""A database cascade two levels deep: children the database deletes still get their own children handled."""

from __future__ import annotations

import attrs

from mapper import BelongsTo, Column, ForeignKey, HasMany, Mapper
from mapper import types as t


@attrs.define
class Farm:
    name: str
    barns: list["Barn"] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Barn:
    name: str
    farm: Farm | None = None
    tools: list["Tool"] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Tool:
    name: str
    barn: Barn | None = None
    id: int | None = None


class FarmMapper(Mapper[Farm]):
    table = "cd_farms"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)
    barns = HasMany(Barn, foreign_key="farm_id", inverse="farm")


class BarnMapper(Mapper[Barn]):
    table = "cd_barns"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)
    farm_id = Column(t.Integer, ForeignKey("cd_farms.id", on_delete="CASCADE"), index=True)
    farm = BelongsTo(Farm, foreign_key="farm_id", inverse="barns")
    tools = HasMany(Tool, foreign_key="barn_id", inverse="barn")


class ToolMapper(Mapper[Tool]):
    table = "cd_tools"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)
    barn_id = Column(t.Integer, ForeignKey("cd_barns.id"), index=True)  # no rule: the session nulls it
    barn = BelongsTo(Barn, foreign_key="barn_id", inverse="tools")


def test_grandchildren_of_database_cascaded_children_are_nulled(backend, make_db, count):
    db = make_db(FarmMapper, BarnMapper, ToolMapper)
    with db.session() as s:
        s.add(Farm("a", barns=[Barn("b1", tools=[Tool("t1"), Tool("t2")]), Barn("b2")]))
        b3 = Barn("b3", tools=[Tool("t3")])
        s.add(Farm("z", barns=[b3]))
    b3_id = b3.id
    with db.session() as s:
        farm = s.query(Farm).where(name="a").one()
        # Select the doomed barns' keys, null their tools, delete the farm (the database
        # deletes the barns): nothing is loaded as objects.
        with count(s, 3):
            s.delete(farm)
            s.flush()
    q = backend.q
    # b3's key read back, not assumed: a Galera node hands out keys in steps of the cluster size.
    assert backend.raw(f"SELECT name, id FROM {q('cd_barns')} ORDER BY id") == [("b3", b3_id)]
    assert backend.raw(f"SELECT name, barn_id FROM {q('cd_tools')} ORDER BY id") == [("t1", None), ("t2", None), ("t3", b3_id)]
    assert backend.raw(f"SELECT name FROM {q('cd_farms')}") == [("z",)]
