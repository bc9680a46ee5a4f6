"""The value rule of mapper.to_dict, on objects built in memory (no database needed)."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid

import pytest

from mapper import BelongsTo, Column, HasMany, Mapper, errors, to_dict
from mapper import types as t


class Size(enum.Enum):
    SMALL = "s"
    LARGE = "l"


@dataclasses.dataclass(frozen=True)
class Money:
    amount: decimal.Decimal
    currency: str


@dataclasses.dataclass(eq=False)
class Crate:
    label: str
    packed_at: datetime.time
    size: Size
    blob: bytes
    price: Money | None
    tags: tuple[str, ...] = ()
    extra: dict[str, object] = dataclasses.field(default_factory=dict)
    items: list[Item] = dataclasses.field(default_factory=list)
    id: int | None = None


@dataclasses.dataclass(eq=False)
class Item:
    name: str
    crate: Crate | None = None
    id: int | None = None


class CrateMapper(Mapper[Crate]):
    table = "td_crates"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(20))
    items = HasMany("Item", inverse="crate")


class ItemMapper(Mapper[Item]):
    table = "td_items"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20))
    crate = BelongsTo(Crate, inverse="items")


def _crate() -> Crate:
    crate = Crate(
        "c1", datetime.time(8, 30), Size.LARGE, b"\x00\xff", Money(decimal.Decimal("2.50"), "EUR"),
        tags=("a", "b"), extra={"when": datetime.date(2024, 1, 2), "ids": {uuid.UUID(int=1)}}, id=7,
    )
    crate.items.append(Item("nail", crate, id=1))
    return crate


def test_every_kind_of_value_is_converted_by_the_documented_rule():
    assert to_dict(_crate()) == {
        "label": "c1",
        "packed_at": "08:30:00",
        "size": "l",
        "blob": "AP8=",
        "price": {"amount": "2.50", "currency": "EUR"},
        "tags": ["a", "b"],
        "extra": {"when": "2024-01-02", "ids": ["00000000-0000-0000-0000-000000000001"]},
        "id": 7,
    }


def test_paths_through_an_inverse_stay_finite():
    crate = _crate()
    out = to_dict(crate, include=("items", "items.crate"))
    assert out["items"][0]["crate"]["label"] == "c1"
    assert "items" not in out["items"][0]["crate"]  # only the paths given, so no cycle


def test_a_value_of_an_unsupported_type_names_the_field():
    crate = _crate()
    crate.extra["x"] = object()
    with pytest.raises(errors.MapperError, match=r"^to_dict\(\) cannot convert Crate\.extra: a object is not one of"):
        to_dict(crate)


def test_a_relation_named_by_a_string_resolves_in_its_mapper_module_despite_namesakes():
    @dataclasses.dataclass
    class Item:  # a namesake of this module's Item, mapped elsewhere
        label: str
        id: int | None = None

    class OtherItemMapper(Mapper[Item]):
        table = "td_other_items"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(20))

    out = to_dict([_crate()], include=("items", "items.crate"))
    assert out[0]["items"][0]["name"] == "nail"
    with pytest.raises(errors.QueryError, match="^ItemMapper has no relation 'box'"):
        to_dict(_crate(), include="items.box")
