"""Public errors on every backend: PoolTimeoutError as importable from ``mapper`` and raised by
each pool, and FlushError messages that call a persistent object by its key."""

from __future__ import annotations

import time

import pytest

import mapper
from mapper import DatabaseError, FlushError, MapperError, PoolTimeoutError
from tests.rel_models import LIBRARY, PETS, Book, Owner, Profile, Pug, Toy, User, rows


def test_pool_timeout_error_is_raised_by_the_pool_and_importable_from_mapper(backend, make_db):
    db = make_db(*PETS, pool_size=1, pool_timeout=0.3)
    holder = db.session()
    waiter = db.session()
    try:
        holder.execute("SELECT 1 AS one")
        started = time.monotonic()
        with pytest.raises(PoolTimeoutError) as info:
            waiter.execute("SELECT 1 AS one")
        assert 0.25 <= time.monotonic() - started < 5
        error = info.value
        assert type(error) is mapper.errors.PoolTimeoutError
        assert isinstance(error, MapperError) and isinstance(error, TimeoutError)
        assert not isinstance(error, DatabaseError)  # the database reported nothing: see docs/decisions.md
        assert "pool_size=1" in str(error) and "0.3 s" in str(error) and "pool_timeout" in str(error)
        holder.close()
        assert waiter.execute("SELECT 2 AS two")[0].two == 2  # the waiter can try again
    finally:
        holder.close()
        waiter.close()


def test_pool_timeout_is_not_retried_by_a_transaction(backend, make_db):
    db = make_db(*PETS, pool_size=1, pool_timeout=0.2)
    calls = []

    @db.transaction(retries=3, backoff=0)
    def work(s):
        calls.append(1)
        s.execute("SELECT 1 AS one")

    with db.session() as holder:
        holder.execute("SELECT 1 AS one")
        with pytest.raises(PoolTimeoutError):
            work()
    assert calls == [1]


def _persistent_pets(db):
    with db.session() as s:
        tom = Owner("Tom", pugs=[Pug("Cody", toys=[Toy("ball")])])
        s.add(tom)
    return tom.id, tom.pugs[0].id, tom.pugs[0].toys[0].id


def test_wrong_type_in_a_collection_names_a_persistent_object_by_its_key(backend, make_db):
    db = make_db(*PETS)
    tom_id, _, ball_id = _persistent_pets(db)
    with db.session() as s:
        tom = s.query(Owner).where(id=tom_id).include("pugs").one()
        ball = s.get_one(Toy, ball_id)
        tom.pugs.append(ball)  # type: ignore[arg-type]
        with pytest.raises(FlushError) as info:
            s.flush()
        message = str(info.value)
        assert f"Owner.pugs holds Toy({ball_id!r}), a Toy; it takes Pug objects" in message
        assert "new" not in message
        s.rollback()
    assert rows(backend, "SELECT name, pug_id FROM {rel_toys}") == [("ball", tom_id)]


def test_wrong_type_in_a_reference_names_a_persistent_object_by_its_key(backend, make_db):
    db = make_db(*PETS)
    tom_id, _, ball_id = _persistent_pets(db)
    with db.session() as s:
        ball = s.get_one(Toy, ball_id)
        ball.pug = s.get_one(Owner, tom_id)  # type: ignore[assignment]
        with pytest.raises(FlushError) as info:
            s.flush()
        assert f"Toy.pug holds Owner({tom_id!r}), a Owner; it takes Pug objects" in str(info.value)
        s.rollback()
    assert rows(backend, "SELECT name, pug_id FROM {rel_toys}") == [("ball", tom_id)]


def test_wrong_type_in_a_many_to_many_names_a_persistent_object_by_its_key(backend, make_db):
    db = make_db(*LIBRARY)
    with db.session() as s:
        ann, bio = User("Ann"), Profile("reads")
        s.add_all([ann, bio])
    with db.session() as s:
        ann = s.query(User).include("favorites").one()
        profile = s.get_one(Profile, bio.id)
        ann.favorites.append(profile)  # type: ignore[arg-type]
        with pytest.raises(FlushError) as info:
            s.flush()
        assert f"User.favorites holds Profile({bio.id!r}), a Profile; it takes Book objects" in str(info.value)
        s.rollback()
    assert rows(backend, "SELECT count(*) FROM {rel_user_favorites}") == [(0,)]
    assert rows(backend, "SELECT title FROM {rel_books}") == []


def test_wrong_type_that_is_new_is_still_called_new(backend, make_db):
    db = make_db(*PETS)
    tom_id, _, _ = _persistent_pets(db)
    with db.session() as s:
        tom = s.query(Owner).where(id=tom_id).include("pugs").one()
        tom.pugs.append(Toy("rope"))  # type: ignore[arg-type]
        with pytest.raises(FlushError) as info:
            s.flush()
        assert "Owner.pugs holds new Toy 'rope', a Toy; it takes Pug objects" in str(info.value)
        s.rollback()
    assert rows(backend, "SELECT name FROM {rel_toys}") == [("ball",)]

