"""Embedded value objects: one attribute stored in several columns, on every backend."""

from __future__ import annotations

import dataclasses
import logging
import pickle
from decimal import Decimal
from typing import Optional

import attrs
import pytest

from mapper import Column, Database, Embedded, HasMany, BelongsTo, Mapper, errors, to_dict
from mapper import types as t
from tests.rel_models import rows


@attrs.frozen
class Money:
    amount: Decimal
    currency: str


@dataclasses.dataclass(frozen=True)
class Geo:
    lat: float
    lon: float


@attrs.frozen
class Address:
    street: str
    city: str
    geo: Optional[Geo] = None


@attrs.define(eq=False)
class Shop:
    name: str
    address: Address
    items: list[Item] = attrs.Factory(list)
    id: int | None = None


@attrs.define(eq=False)
class Item:
    name: str
    price: Money
    discount: Optional[Money] = None
    shop: Shop | None = None
    id: int | None = None


class ShopMapper(Mapper[Shop]):
    table = "emb_shops"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    address = Embedded(Address, prefix="addr_", columns={"street": t.String(80), "city": t.String(40)})
    items = HasMany("Item", inverse="shop", cascade="all", order_by="id")


class ItemMapper(Mapper[Item]):
    table = "emb_items"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    price = Embedded(Money, prefix="price_", columns={"amount": t.Numeric(10, 2), "currency": t.String(3)})
    discount = Embedded(Money, columns={"amount": t.Numeric(10, 2), "currency": t.String(3)})
    shop = BelongsTo(Shop, inverse="items")


def eur(x: str) -> Money:
    return Money(Decimal(x), "EUR")


@pytest.fixture
def db(make_db):
    db = make_db(ShopMapper, ItemMapper, echo=True)
    with db.session() as s:
        shop = Shop("Corner", Address("1 Main St", "Leeds", Geo(53.8, -1.5)))
        shop.items = [Item("tea", eur("3.50")), Item("cake", eur("12.00"), discount=eur("2.00")), Item("jam", Money(Decimal("7.25"), "GBP"))]
        s.add(shop)
    return db


def _statements(caplog, verb):
    return [r.getMessage() for r in caplog.records if r.name == "mapper.sql" and r.getMessage().lstrip().upper().startswith(verb)]


def test_columns_are_written_and_read_back_as_value_objects(db, backend, count):
    assert rows(backend, "SELECT name, price_amount, price_currency, discount_amount, discount_currency FROM {emb_items} ORDER BY id") == [
        ("tea", Decimal("3.50"), "EUR", None, None),
        ("cake", Decimal("12.00"), "EUR", Decimal("2.00"), "EUR"),
        ("jam", Decimal("7.25"), "GBP", None, None),
    ]
    assert rows(backend, "SELECT addr_street, addr_city, addr_geo_lat, addr_geo_lon FROM {emb_shops}") == [("1 Main St", "Leeds", 53.8, -1.5)]
    with db.session() as s:
        with count(s, 2):
            shop = s.query(Shop).include("items").one()
        assert shop.address == Address("1 Main St", "Leeds", Geo(53.8, -1.5))
        assert [i.price for i in shop.items] == [eur("3.50"), eur("12.00"), Money(Decimal("7.25"), "GBP")]
        assert [i.discount for i in shop.items] == [None, eur("2.00"), None]  # all columns NULL: None


def test_an_equal_value_writes_nothing_and_a_new_value_only_its_changed_columns(db, backend, caplog, count):
    caplog.set_level(logging.INFO, logger="mapper.sql")
    with db.session() as s:
        tea = s.query(Item).where(ItemMapper.name == "tea").one()
        tea.price = eur("3.50")  # another object, equal value
        with count(s, 0):
            s.flush()
        tea.price = eur("4.00")
        caplog.clear()
        with count(s, 1):
            s.flush()
        (update,) = _statements(caplog, "UPDATE")
        set_clause = update.upper().split(" SET ", 1)[1].split(" WHERE ", 1)[0]
        assert "PRICE_AMOUNT" in set_clause and "PRICE_CURRENCY" not in set_clause and "NAME" not in set_clause
        tea.discount = eur("0.50")
        s.flush()
        cake = s.query(Item).where(ItemMapper.name == "cake").one()
        cake.discount = None
    assert rows(backend, "SELECT name, price_amount, price_currency, discount_amount, discount_currency FROM {emb_items} ORDER BY id")[:2] == [
        ("tea", Decimal("4.00"), "EUR", Decimal("0.50"), "EUR"),
        ("cake", Decimal("12.00"), "EUR", None, None),
    ]


def test_nested_value_objects_and_an_absent_nested_value(db, backend):
    with db.session() as s:
        shop = s.query(Shop).one()
        shop.address = attrs.evolve(shop.address, geo=None)
    assert rows(backend, "SELECT addr_street, addr_geo_lat, addr_geo_lon FROM {emb_shops}") == [("1 Main St", None, None)]
    with db.session() as s:
        assert s.query(Shop).one().address == Address("1 Main St", "Leeds", None)


def test_queries_filter_and_order_by_parts_and_compare_whole_values(db):
    with db.session() as s:
        assert [i.name for i in s.query(Item).where(ItemMapper.price.amount > 5).order_by(ItemMapper.price.amount).all()] == ["jam", "cake"]
        assert [i.name for i in s.query(Item).order_by(ItemMapper.price.currency, ItemMapper.price.amount.desc()).all()] == ["cake", "tea", "jam"]
        assert [i.name for i in s.query(Item).where(ItemMapper.price == eur("12.00")).all()] == ["cake"]
        assert [i.name for i in s.query(Item).where(ItemMapper.price != eur("12.00")).order_by("id").all()] == ["tea", "jam"]
        assert [i.name for i in s.query(Item).where(ItemMapper.discount == None).order_by("id").all()] == ["tea", "jam"]  # noqa: E711
        assert [sh.name for sh in s.query(Shop).where(ShopMapper.address.geo.lat > 50).all()] == ["Corner"]


def test_rollback_puts_the_value_object_back(db):
    with db.session() as s:
        tea = s.query(Item).where(ItemMapper.name == "tea").one()
        tea.price = eur("9.99")
        s.flush()
        s.rollback()
        assert tea.price == eur("3.50")
        assert rows_of(s) == [eur("3.50")]  # the row is back too


def rows_of(s):
    return [i.price for i in s.query(Item).where(ItemMapper.name == "tea").all()]


def test_a_none_that_is_not_optional_is_refused_at_the_flush(db):
    with db.session() as s:
        tea = s.query(Item).where(ItemMapper.name == "tea").one()
        tea.price = None
        with pytest.raises(errors.FlushError, match=r"ItemMapper.price is None, but it is not Optional"):
            s.flush()
        s.rollback()


def test_to_dict_pickle_merge_and_replace(db, backend, count):
    with db.session() as s:
        shop = s.query(Shop).include("items").one()
        d = to_dict(shop, include=("items",))
        assert d["address"] == {"street": "1 Main St", "city": "Leeds", "geo": {"lat": 53.8, "lon": -1.5}}
        assert d["items"][1]["price"] == {"amount": "12.00", "currency": "EUR"}
        copy = pickle.loads(pickle.dumps(shop))
        assert copy.address == shop.address and copy.items[1].discount == eur("2.00")
    copy.items[0].price = eur("5.00")
    copy.address = attrs.evolve(copy.address, city="York")
    with db.session() as s:
        merged = s.merge(copy)
        assert merged.address.city == "York"
    assert rows(backend, "SELECT addr_city FROM {emb_shops}") == [("York",)]
    assert rows(backend, "SELECT price_amount FROM {emb_items} WHERE name = 'tea'") == [(Decimal("5.00"),)]


@attrs.frozen
class Parcel:
    weight: Money
    id: int | None = None


class ParcelMapper(Mapper[Parcel]):
    table = "emb_parcels"
    id = Column(t.Integer, primary_key=True)
    weight = Embedded(Money, columns={"amount": t.Numeric(8, 3), "currency": t.String(3)})


def test_replace_of_a_frozen_entity_with_a_new_value(make_db, backend, count):
    db = make_db(ParcelMapper)
    with db.session() as s:
        s.add(Parcel(Money(Decimal("1.5"), "KG")))
    with db.session() as s:
        p = s.query(Parcel).one()
        s.replace(p, attrs.evolve(p, weight=Money(Decimal("2"), "KG")))
        with count(s, 1):
            s.flush()
    assert rows(backend, "SELECT weight_amount, weight_currency FROM {emb_parcels}") == [(Decimal("2.000"), "KG")]


def test_ddl_and_drift_know_the_columns(db, backend):
    from mapper.ddl import create_statements, offline_dialect

    assert db.check_schema() == []
    text = "\n".join(sql for _, sql in create_statements(offline_dialect(backend.name), db.registry.tables))
    for name in ("price_amount", "price_currency", "discount_amount", "addr_street", "addr_geo_lat", "addr_geo_lon"):
        assert name in text


ddl_db = Database("sqlite:///:memory:", mappers=[ParcelMapper])


def test_the_ddl_command_prints_the_part_columns():
    import io

    from mapper.__main__ import main

    out = io.StringIO()
    assert main(["ddl", "tests.integration.test_embedded:ddl_db", "--dialect", "postgresql"], out) == 0
    assert '"weight_amount" NUMERIC(8, 3) NOT NULL,\n  "weight_currency" VARCHAR(3) NOT NULL' in out.getvalue()


def test_upsert_writes_the_parts(db, backend, count):
    with db.session() as s:
        with count(s, 1):
            s.upsert(Item("tea", eur("6.00"), id=1))
        tea = s.get(Item, 1)
        assert tea.price == eur("6.00")
        with count(s, 0):  # the row holds what the object holds
            s.flush()
    assert rows(backend, "SELECT name, price_amount, price_currency, discount_amount FROM {emb_items} WHERE id = 1") == [("tea", Decimal("6.00"), "EUR", None)]


def test_dotted_names_reach_the_parts(db):
    with db.session() as s:
        assert [i.name for i in s.query(Item).order_by("price.currency", "-price.amount").all()] == ["cake", "tea", "jam"]
        assert s.query(Item).order_by("price.amount").values("name", "price.amount") == [
            ("tea", Decimal("3.50")), ("jam", Decimal("7.25")), ("cake", Decimal("12.00"))
        ]
        assert s.query(Shop).values("address.geo.lat") == [(53.8,)]
        with pytest.raises(errors.QueryError, match=r"names a value object, not one of its columns; name a part, such as 'address.geo.lat'"):
            s.query(Shop).values("address.geo")
        with pytest.raises(errors.QueryError, match=r"'price.amout': ItemMapper.price has no part 'amout'"):
            s.query(Item).order_by("price.amout").all()


@attrs.define
class Dims:  # a mutable value class: edits in place are changes too
    width: int
    height: int


@attrs.define
class Box:
    dims: Dims
    id: int | None = None


class BoxMapper(Mapper[Box]):
    table = "emb_boxes"
    id = Column(t.Integer, primary_key=True)
    dims = Embedded(Dims)


def test_a_mutable_value_edited_in_place_is_written_and_rolled_back(make_db, backend, count):
    db = make_db(BoxMapper)
    with db.session() as s:
        s.add(Box(Dims(2, 3)))
    with db.session() as s:
        box = s.query(Box).one()
        box.dims.width = 5
        with count(s, 1):
            s.flush()
        assert [tuple(r) for r in s.execute("SELECT dims_width, dims_height FROM emb_boxes")] == [(5, 3)]
        s.rollback()
        assert box.dims == Dims(2, 3)
    assert rows(backend, "SELECT dims_width, dims_height FROM {emb_boxes}") == [(2, 3)]
