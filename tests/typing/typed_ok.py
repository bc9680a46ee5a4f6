"""Must type-check under mypy --strict: typed columns accept values of their Python type."""

from __future__ import annotations

import datetime
from decimal import Decimal

import attrs

from mapper import AsyncDatabase, Column, Database, Mapper, func
from mapper import types as t
from mapper.expressions import BoolExpr


@attrs.define
class Pug:
    name: str
    age: int | None = 0
    born: datetime.date | None = None
    weight: Decimal | None = None
    id: int | None = None


class PugMapper(Mapper[Pug]):
    table = "typed_pugs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    age = Column(t.Integer)
    born = Column(t.Date)
    weight = Column(t.Numeric(6, 2))


conditions: list[BoolExpr] = [
    PugMapper.age == 3,
    PugMapper.age != None,  # noqa: E711 - IS NOT NULL
    PugMapper.name < "m",
    PugMapper.name.like("C%"),
    PugMapper.age.in_([1, 2]),
    PugMapper.born >= datetime.date(2020, 1, 1),
    PugMapper.weight.between(Decimal("1"), Decimal("5")),
    PugMapper.age == PugMapper.id,
]


def report(db: Database) -> tuple[list[str], list[int | None]]:
    with db.session() as s:
        rows = s.query(Pug).where(*conditions).values(PugMapper.name, PugMapper.age)
        names: list[str] = [name for name, _ in rows]
        ages: list[int | None] = [age for _, age in rows]
        assert s.query(Pug).values("name", n=func.count())
        return names, ages


async def report_async(db: AsyncDatabase) -> tuple[list[str], list[Pug]]:
    async with db.session() as s:
        rows = await s.query(Pug).where(*conditions).values(PugMapper.name, PugMapper.age)
        names: list[str] = [name for name, _ in rows]
        pugs: list[Pug] = await s.query(Pug).order_by("name").limit(3).all()
        one: Pug | None = await s.get(Pug, 1)
        assert one is None or one in pugs
        return names, pugs
