"""Must NOT type-check under mypy --strict: each line marked ``# E:`` is an error mypy reports."""

from __future__ import annotations

from tests.typing.typed_ok import Pug, PugMapper

from mapper import Database


def wrong(db: Database) -> None:
    with db.session() as s:
        s.query(Pug).where(PugMapper.age == "x")  # E: arg-type
        s.query(Pug).where(PugMapper.name < 3)  # E: operator
        s.query(Pug).where(PugMapper.born > "2020-01-01")  # E: operator
        s.query(Pug).where(PugMapper.age.in_(["a"]))  # E: list-item
        rows = s.query(Pug).values(PugMapper.name, PugMapper.age)
        total: int = rows[0][1]  # E: assignment
        count: str = rows[0][0] + 1  # E: operator
