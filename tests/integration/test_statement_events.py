"""Statement events on every backend: db.on_statement sees each statement; budgets and echo share the hook."""

from __future__ import annotations

import logging

import pytest

from mapper import StatementEvent, errors
from mapper.events import Subscription
from tests.models import Owner, OwnerMapper, Pug, PugMapper


class Boom(Exception):
    pass


def _seen(db):
    events: list[StatementEvent] = []
    return events, db.on_statement(events.append)


def test_on_statement_sees_sql_params_rows_time_and_session(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    events, sub = _seen(db)
    with db.session() as s:
        s.add(Owner("Tom"))
        s.add(Owner("Ann"))
        s.flush()
        found = s.query(Owner).where(OwnerMapper.name.in_(["Tom", "Ann", "Bob"])).order_by("name").all()
        assert [o.name for o in found] == ["Ann", "Tom"]
        inserted = s.execute(f"INSERT INTO {backend.q('owners')} (name) VALUES (:n)", {"n": "Raw"})
        assert inserted == []
        assert s.query_count == len(events)
    sub.remove()
    assert [e.sql.split()[0].upper() for e in events][-2:] == ["SELECT", "INSERT"]
    select, raw_insert = events[-2], events[-1]
    # PostgreSQL binds the IN list as one array (= ANY(%s)); the others bind three values.
    assert "owners" in select.sql and select.param_count == (1 if backend.name == "postgresql" else 3)
    assert select.rows == 2
    assert raw_insert.param_count == 1 and raw_insert.rows == 1 and list(raw_insert.params) == ["Raw"]
    (flush,) = events[:-2]  # both owners in one INSERT
    assert "owners" in flush.sql and flush.sql.upper().startswith("INSERT") and flush.rows == 2
    # Two names bound, or one array of them on PostgreSQL (INSERT ... SELECT FROM unnest(%s)).
    assert flush.param_count == (1 if backend.name == "postgresql" else 2)
    for e in events:
        assert e.session is s
        assert e.duration > 0 and e.error is None and not e.control
    assert backend.raw(f"SELECT count(*) FROM {backend.q('owners')}") == [(3,)]


def test_statements_outside_a_session_name_no_session(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, create=False)
    events, sub = _seen(db)
    with sub:
        db.create_all()
    assert events and all(e.session is None for e in events)
    assert any("CREATE TABLE" in e.sql.upper() and "owners" in e.sql for e in events)
    assert not sub.active
    db.drop_all()
    assert len(events) == len([e for e in events if e.session is None])  # removed: nothing more seen
    assert not any("DROP" in e.sql.upper() for e in events)


def test_executemany_reports_rows_and_every_bound_value(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    with db.session() as s:
        s.add_all([Pug("Cody", age=1), Pug("Doug", age=2), Pug("Eddy", age=3)])
    events, sub = _seen(db)
    with db.session() as s:
        pugs = s.query(Pug).order_by("name").all()
        for p in pugs:
            p.age += 10
        s.flush()
    sub.remove()
    updates = [e for e in events if e.sql.upper().startswith("UPDATE")]
    assert len(updates) == 1
    (u,) = updates
    if backend.name == "postgresql":  # one UPDATE ... FROM unnest(...): one array per column
        assert u.executemany == 0 and u.param_count == 2
    else:  # one UPDATE joined to the rows as a table of values: (age, id) for each of three rows
        assert u.executemany == 0 and u.param_count == 6
    assert u.rows == 3
    assert backend.raw(f"SELECT age FROM {backend.q('pugs')} ORDER BY age") == [(11,), (12,), (13,)]
    # One changed row is one plain UPDATE, sent as an executemany of one row.
    events, sub = _seen(db)
    with db.session() as s:
        p = s.query(Pug).order_by("name").first()
        p.age = 40
        s.flush()
    sub.remove()
    (u,) = [e for e in events if e.sql.upper().startswith("UPDATE")]
    assert (u.executemany, u.param_count, u.rows) == (1, 2, 1)


def test_a_failed_statement_is_reported_with_its_error_before_it_raises(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    events, sub = _seen(db)
    with db.session() as s:
        s.add(Owner("Tom"))
        s.commit()
        s.add(Owner("Tom"))  # the unique name again
        with pytest.raises(errors.IntegrityError) as info:
            s.flush()
        s.rollback()
    sub.remove()
    failed = [e for e in events if e.error is not None]
    assert len(failed) == 1
    assert failed[0].error is info.value and failed[0].sql.upper().startswith("INSERT")
    assert failed[0].session is s


def test_savepoints_are_reported_as_control_and_budgets_skip_them(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    events, sub = _seen(db)
    with db.session() as s:
        with s.budget(queries=1):
            with s.begin_nested():
                s.add(Owner("Tom"))
            with pytest.raises(Boom):
                with s.begin_nested():
                    raise Boom
    sub.remove()
    control = [e.sql.upper() for e in events if e.control]
    assert [c.split()[0] for c in control] == ["SAVEPOINT", "RELEASE", "SAVEPOINT", "ROLLBACK", "RELEASE"]
    assert [e.sql.upper().split()[0] for e in events if not e.control] == ["INSERT"]
    assert backend.raw(f"SELECT name FROM {backend.q('owners')}") == [("Tom",)]


def test_budget_refuses_before_the_hook_sees_the_statement(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    events, sub = _seen(db)
    with db.session() as s:
        with s.budget(queries=1) as b:
            assert s.get(Owner, 1) is None
            with pytest.raises(errors.QueryBudgetExceeded, match=r"^query budget of 1 exceeded by statement 2: SELECT"):
                s.get(Owner, 2)
            assert b.used == 1
    sub.remove()
    assert len(events) == 1  # the refused SELECT was never sent, so never reported


def test_removing_a_callback_and_adding_one_to_a_held_connection(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)
    first: list[StatementEvent] = []
    second: list[StatementEvent] = []
    with db.session() as s:
        s.get(Owner, 1)  # the session holds its connection from here
        sub1 = db.on_statement(first.append)
        s.get(Owner, 2)
        sub2 = db.on_statement(second.append)
        s.get(Owner, 3)
        sub1.remove()
        sub1.remove()  # twice does nothing
        s.get(Owner, 4)
        sub2.remove()
        s.get(Owner, 5)
    assert len(first) == 2 and len(second) == 2
    assert [e.params[0] if not isinstance(e.params[0], list) else e.params[0][0] for e in first] == [2, 3]


def test_a_callback_that_raises_fails_the_statements_caller(backend, make_db):
    db = make_db(OwnerMapper, PugMapper)

    def refuse(event: StatementEvent) -> None:
        if event.sql.upper().startswith("INSERT"):
            raise Boom("no inserts")

    with db.on_statement(refuse):
        with pytest.raises(Boom):
            with db.session() as s:
                s.add(Owner("Tom"))
    assert backend.raw(f"SELECT count(*) FROM {backend.q('owners')}") == [(0,)]


def test_on_statement_refuses_what_is_not_callable(backend, make_db):
    db = make_db(OwnerMapper, PugMapper, create=False)
    with pytest.raises(errors.ConfigurationError, match=r"on_statement\(\) takes a callable of one StatementEvent, got 42"):
        db.on_statement(42)  # type: ignore[arg-type]


def test_echo_is_an_observer_of_the_same_hook(backend, make_db, caplog):
    db = make_db(OwnerMapper, PugMapper, echo=True)
    caplog.set_level(logging.INFO, logger="mapper.sql")
    events, sub = _seen(db)
    caplog.clear()
    with db.session() as s:
        s.query(Owner).where(name="Logan").all()
    sub.remove()
    logged = [r.getMessage() for r in caplog.records if r.name == "mapper.sql"]
    assert len(logged) == len(events) == 1
    assert logged[0].startswith(events[0].sql) and f"({events[0].duration * 1000:.3f} ms)" in logged[0]
    assert isinstance(sub, Subscription) and not sub.active
