"""Embedded declarations: column inference, nullability rules and the configuration errors."""

from __future__ import annotations

import dataclasses
import enum
import types
from decimal import Decimal
from typing import Optional

import attrs
import pytest

from mapper import Column, Database, Embedded, HasMany, Mapper, errors
from mapper import types as t


@attrs.frozen
class Money:
    amount: Decimal
    currency: str


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass(frozen=True)
class Label:
    text: str
    colour: Colour
    size: int
    weight: Optional[float] = None


@attrs.frozen
class TaggedMoney(Money):
    label: str = ""


@attrs.define
class Thing:
    price: Money
    label: Optional[Label] = None
    id: int | None = None


def test_types_and_nullability_are_inferred():
    class ThingMapper(Mapper[Thing]):
        table = "things"
        id = Column(t.Integer, primary_key=True)
        price = Embedded(Money)
        label = Embedded(Label, prefix="l_")

    db = Database("sqlite://", mappers=[ThingMapper])
    cols = {c.name: c for c in db.registry.tables["things"].columns}
    assert list(cols) == ["id", "price_amount", "price_currency", "l_text", "l_colour", "l_size", "l_weight"]
    assert cols["price_amount"].type == t.Numeric() and not cols["price_amount"].nullable
    assert cols["price_currency"].type == t.String() and not cols["price_currency"].nullable
    assert cols["l_colour"].type == t.Enum(Colour) and cols["l_size"].type == t.Integer()
    assert all(cols[n].nullable for n in ("l_text", "l_colour", "l_size", "l_weight"))  # Optional[Label]
    assert ThingMapper.price.amount is cols["price_amount"]
    db.close()


def _mapper(**attrs_):
    def body(ns):
        ns.update({"table": "things", "id": Column(t.Integer, primary_key=True), **attrs_})

    return types.new_class("BadMapper", (Mapper[Thing],), exec_body=body)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"price": Embedded(int)}, r"BadMapper\.price: Embedded\(\) takes an attrs class or a dataclass, got <class 'int'>"),
        ({"price": Embedded(Money, columns={"amout": t.Numeric(10, 2)})}, r"BadMapper\.price: columns= names \['amout'\], which are not fields of Money; its fields are \['amount', 'currency'\]"),
        ({"price": Embedded(Money, columns={"amount": 3})}, r"BadMapper\.price: columns\['amount'\] takes a type such as"),
        ({"label": Embedded(Label, columns={"text": Column(t.String(9), nullable=False)})}, r"BadMapper\.label: the column of Label\.text is declared nullable=False, but the value may be absent"),
        ({"price": Embedded(Money), "price_amount": Column(t.Integer)}, r"BadMapper\.price: the column 'price_amount' of Money is also a column of BadMapper; give Embedded another prefix="),
        ({"price": Embedded(Money, prefix="9")}, r"BadMapper\.price: column name '9amount' \(prefix '9' \+ field 'amount'\) is not valid"),
    ],
)
def test_bad_declarations_name_mapper_and_attribute(declared, message):
    with pytest.raises(errors.ConfigurationError, match=message):
        _mapper(**declared)


def test_an_attribute_the_domain_class_lacks_and_a_part_named_like_an_attribute():
    with pytest.raises(errors.ConfigurationError, match=r"BadMapper\.cost: Thing has no attribute 'cost' to hold the Money; add it to the class"):
        Database("sqlite://", mappers=[_mapper(price=Embedded(Money), cost=Embedded(Money))])
    with pytest.raises(errors.ConfigurationError, match=r"BadMapper\.price: its column 'label' has the name of the attribute Thing\.label"):
        Database("sqlite://", mappers=[_mapper(price=Embedded(TaggedMoney, prefix=""))])


def test_a_value_class_the_attribute_does_not_hold():
    with pytest.raises(errors.ConfigurationError, match=r"BadMapper\.price stores a Label, but Thing\.price is annotated Money; embed the class the attribute holds"):
        Database("sqlite://", mappers=[_mapper(price=Embedded(Label))])


def test_a_type_that_cannot_be_inferred_asks_for_one():
    @attrs.frozen
    class Odd:
        value: complex

    @attrs.define
    class Holder:
        odd: Odd
        id: int | None = None

    with pytest.raises(errors.ConfigurationError, match=r"HolderMapper\.odd: cannot infer a column type for Odd\.value .*columns=\{'value': t\.String\(100\)\}"):
        class HolderMapper(Mapper[Holder]):
            table = "holders"
            id = Column(t.Integer, primary_key=True)
            odd = Embedded(Odd)


def test_a_part_name_that_is_not_a_field_is_an_attribute_error_listing_the_fields():
    class ThingMapper(Mapper[Thing]):
        table = "things"
        id = Column(t.Integer, primary_key=True)
        price = Embedded(Money)

    with pytest.raises(AttributeError, match=r"ThingMapper\.price has no part 'amonut'; Money's fields are \['amount', 'currency'\]"):
        ThingMapper.price.amonut  # noqa: B018
    with pytest.raises(errors.QueryError, match=r"ThingMapper\.price holds 3, not a Money"):
        ThingMapper.price == 3  # noqa: B015


def test_an_inherited_embedded_is_bound_to_each_mapper():
    class Base(Mapper[Thing]):
        id = Column(t.Integer, primary_key=True)
        price = Embedded(Money, columns={"amount": t.Numeric(10, 2)})

    class AMapper(Base):
        table = "a_things"

    assert AMapper.price is not Base.price
    assert AMapper.price.amount.table == "a_things" and AMapper.price.amount.type == t.Numeric(10, 2)


def test_a_declared_soft_delete_column_is_used_as_declared():
    @attrs.define
    class Doc:
        title: str
        id: int | None = None

    class DocMapper(Mapper[Doc]):
        table = "docs"
        soft_delete = "removed_at"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(20), nullable=False)
        removed_at = Column(t.DateTime(timezone=True), hidden=True, index=True)

    db = Database("sqlite://", mappers=[DocMapper])
    m = db.registry.mapping_for(Doc)
    assert m.soft_delete is DocMapper.removed_at and m.hidden_columns == [DocMapper.removed_at]
    db.close()


def test_an_explicit_nested_embedded_takes_its_nullability_from_the_annotation():
    from mapper.embedded import compose

    @dataclasses.dataclass(frozen=True)
    class Geo:
        lat: float
        lon: float

    @attrs.frozen
    class Place:
        name: str
        geo: Optional[Geo] = None

    @attrs.define
    class Site:
        place: Place
        id: int | None = None

    class SiteMapper(Mapper[Site]):
        table = "sites"
        id = Column(t.Integer, primary_key=True)
        place = Embedded(Place, columns={"geo": Embedded(Geo, prefix="g_")})

    assert [c.key for c in SiteMapper.__columns__.values()][1:] == ["place_name", "place_g_lat", "place_g_lon"]
    assert not SiteMapper.place.name.nullable and SiteMapper.place.geo.lat.nullable
    assert compose(SiteMapper.place, ["x", None, None]) == Place("x", None)
    assert compose(SiteMapper.place, ["x", 1.0, 2.0]) == Place("x", Geo(1.0, 2.0))


def test_the_flush_scan_of_value_objects_is_listed_with_the_generated_source():
    class ThingMapper(Mapper[Thing]):
        table = "things"
        id = Column(t.Integer, primary_key=True)
        price = Embedded(Money)

    db = Database("sqlite://", mappers=[ThingMapper])
    try:
        source = db.generated_source(Thing)
        assert list(source)[-1] == "sync_embedded"
        assert source["sync_embedded"].startswith("def sync_embedded(states):")
    finally:
        db.close()
