"""When loads and flushes pause the cyclic GC (docs/decisions.md), and the option that turns it off."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from mapper import Column, ConfigurationError, Database, HasMany, Mapper
from mapper import types as t
from mapper.loading import PAUSE_ROWS


@attrs.define
class Kennel:
    name: str
    pugs: list[Any] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Dog:
    name: str
    id: int | None = None


#: gc.isenabled() seen by each on_load and before_flush hook, in order.
SEEN: list[bool] = []


class KennelMapper(Mapper[Kennel]):
    table = "gcp_kennels"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)
    pugs = HasMany(Dog, foreign_key="kennel_id", order_by="id")


class DogMapper(Mapper[Dog]):
    table = "gcp_dogs"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(20), nullable=False)

    def on_load(self, obj: Dog) -> None:
        SEEN.append(gc.isenabled())


MANY = PAUSE_ROWS + 1


@pytest.fixture
def seeded(make_db: Callable[..., Database]) -> Callable[..., Database]:
    """``seeded(**options)``: a Database with one kennel of MANY dogs (written by a second Database)."""
    writer = make_db(KennelMapper, DogMapper)
    with writer.session() as s:
        s.add(Kennel("big", pugs=[Dog(f"d{i}") for i in range(MANY)]))
        s.commit()

    def make(**options: Any) -> Database:
        return make_db(KennelMapper, DogMapper, create=False, **options)

    return make


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    gc.enable()
    SEEN.clear()
    yield
    gc.enable()


def _flush_seen(db: Database) -> list[bool]:
    seen: list[bool] = []
    db.before_flush(lambda s: seen.append(gc.isenabled()))
    return seen


def test_a_query_pauses_whatever_its_size_a_get_and_a_small_flush_do_not(seeded: Callable[..., Database]) -> None:
    db = seeded()
    flushes = _flush_seen(db)
    with db.session() as s:
        s.query(Dog).where(id=1).all()  # one row, through a query
        assert SEEN == [False] and gc.isenabled()
        SEEN.clear()
        s.get(Dog, 2)  # one row, not through a query
        assert SEEN == [True]
        s.add(Dog("one"))
        s.commit()
    assert flushes and all(flushes)  # the autoflushes and the commit's flush of one object


def test_a_big_load_or_flush_pauses_and_the_collector_runs_again_after(seeded: Callable[..., Database]) -> None:
    db = seeded()
    flushes = _flush_seen(db)
    with db.session() as s:
        kennel = s.query(Kennel).one()
        assert len(kennel.pugs) == MANY  # a lazy load of MANY rows
        assert SEEN == [False] * MANY and gc.isenabled()
        s.add_all([Dog(f"n{i}") for i in range(MANY)])
        s.commit()
    assert flushes.count(False) == 1 and gc.isenabled()  # the commit's flush; the autoflushes had nothing to do


def test_an_application_that_turned_the_collector_off_keeps_it_off(seeded: Callable[..., Database]) -> None:
    db = seeded()
    gc.disable()
    with db.session() as s:
        kennel = s.query(Kennel).one()
        assert len(kennel.pugs) == MANY
        assert not gc.isenabled()
        dogs = s.query(Dog).all()
        assert len(dogs) == MANY and not gc.isenabled()
        for d in list(s.query(Dog).stream(batch_size=500))[:1]:
            d.name = "first"
        s.add_all([Dog(f"n{i}") for i in range(MANY)])
        s.commit()
    assert not gc.isenabled()


def test_pause_gc_false_never_touches_the_collector(seeded: Callable[..., Database], monkeypatch: pytest.MonkeyPatch) -> None:
    db = seeded(pause_gc=False)
    calls: list[str] = []
    monkeypatch.setattr(gc, "disable", lambda: calls.append("disable"))
    monkeypatch.setattr(gc, "enable", lambda: calls.append("enable"))
    with db.session() as s:
        kennel = s.query(Kennel).one()
        assert len(kennel.pugs) == MANY
        dogs = s.query(Dog).all()
        assert sum(1 for _ in s.query(Dog).stream(batch_size=500)) == MANY
        for d in dogs:
            d.name = d.name + "!"
        s.add_all([Dog(f"n{i}") for i in range(MANY)])
        s.commit()
    assert calls == []
    assert SEEN == [True] * MANY  # the later queries found the dogs in the identity map


def test_pause_gc_must_be_a_bool(backend: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"Database\(pause_gc='no'\): use True or False"):
        Database(backend.url, mappers=[DogMapper], pause_gc="no")  # type: ignore[arg-type]
