"""Small domain classes and mappers shared by the tests (persistence-free classes, separate mappers)."""

from __future__ import annotations

import attrs

from mapper import Column, ForeignKey, Mapper
from mapper import types as t


@attrs.define
class Owner:
    name: str
    id: int | None = None


@attrs.define
class Pug:
    name: str
    age: int = 0
    id: int | None = None


class OwnerMapper(Mapper[Owner]):
    table = "owners"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False, unique=True)


class PugMapper(Mapper[Pug]):
    table = "pugs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(100), nullable=False)
    age = Column(t.Integer, default=0)
    owner_id = Column(t.Integer, ForeignKey("owners.id", on_delete="CASCADE"), index=True, hidden=True)  # no relation: its value lives in the session
