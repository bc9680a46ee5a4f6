"""session.replace(old, new) for immutable entities (frozen attrs classes, frozen dataclasses) on every backend."""

from __future__ import annotations

import dataclasses
import logging

import attrs
import pytest

from mapper import BelongsTo, Column, HasMany, Mapper, errors
from mapper import types as t
from tests.rel_models import rows


@attrs.frozen
class Team:
    name: str
    city: str
    players: list[Player] = attrs.Factory(list)
    id: int | None = None


@attrs.frozen(eq=False)
class Player:
    name: str
    rating: int = 0
    team: Team | None = None
    id: int | None = None


@dataclasses.dataclass(frozen=True)
class Badge:
    label: str
    level: int
    id: int | None = None


class TeamMapper(Mapper[Team]):
    table = "imm_teams"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    city = Column(t.String(50), nullable=False)
    players = HasMany("Player", inverse="team", cascade="all", order_by="id")


class PlayerMapper(Mapper[Player]):
    table = "imm_players"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    rating = Column(t.Integer, nullable=False)
    team = BelongsTo(Team, inverse="players")


class BadgeMapper(Mapper[Badge]):
    table = "imm_badges"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(50), nullable=False)
    level = Column(t.Integer, nullable=False)


@pytest.fixture
def db(make_db):
    db = make_db(TeamMapper, PlayerMapper, BadgeMapper, echo=True)
    with db.session() as s:
        s.add(Team("Owls", "Leeds", players=[Player("Ann", 3), Player("Bob", 4)]))
        s.add(Badge("gold", 1))
    return db


def _updates(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "mapper.sql" and r.getMessage().lstrip().upper().startswith("UPDATE")]


def _set_clause(sql):
    return sql.upper().split(" SET ", 1)[1].split(" WHERE ", 1)[0]


def test_replace_updates_only_changed_columns_and_swaps_the_identity_map(db, backend, caplog, count):
    caplog.set_level(logging.INFO, logger="mapper.sql")
    with db.session() as s:
        team = s.query(Team).include("players").one()
        ann = team.players[0]
        with count(s, 0):
            new = s.replace(ann, attrs.evolve(ann, rating=9))
        assert s.get(Player, ann.id) is new and new in s and ann not in s
        assert team.players[0] is new and new.team is team  # the collection holds the new object
        caplog.clear()
        with count(s, 1):
            s.flush()
    (update,) = _updates(caplog)
    assert "RATING" in _set_clause(update) and "NAME" not in _set_clause(update)
    assert rows(backend, "SELECT name, rating, team_id FROM {imm_players} ORDER BY id") == [("Ann", 9, 1), ("Bob", 4, 1)]


def test_replacing_a_parent_repoints_the_references_of_held_children(db, backend, count):
    with db.session() as s:
        team = s.query(Team).include("players").one()
        with count(s, 0):
            moved = s.replace(team, attrs.evolve(team, city="York"))
        assert all(p.team is moved for p in moved.players)
        assert moved.players is team.players  # evolve passes the loaded collection on
        with count(s, 1):  # the team's UPDATE; the players' references are unchanged rows
            s.flush()
        with count(s, 0):
            s.flush()
    assert rows(backend, "SELECT name, city FROM {imm_teams}") == [("Owls", "York")]
    assert rows(backend, "SELECT team_id FROM {imm_players} ORDER BY id") == [(1,), (1,)]


def test_replace_of_a_frozen_dataclass_and_an_unchanged_copy(db, backend, count):
    with db.session() as s:
        gold = s.get(Badge, 1)
        same = s.replace(gold, dataclasses.replace(gold))
        with count(s, 0):  # nothing differs from the row
            s.flush()
        s.replace(same, dataclasses.replace(same, level=2))
        with count(s, 1):
            s.flush()
    assert rows(backend, "SELECT label, level FROM {imm_badges}") == [("gold", 2)]


def test_a_relation_changed_through_evolve_is_flushed_as_an_edit(db, backend):
    with db.session() as s:
        s.add(Team("Hawks", "Hull"))
    with db.session() as s:
        owls, hawks = s.query(Team).order_by("id").include("players").all()
        bob = owls.players[1]
        s.replace(bob, attrs.evolve(bob, team=hawks))
    assert rows(backend, "SELECT name, team_id FROM {imm_players} ORDER BY id") == [("Ann", 1), ("Bob", 2)]


def test_replace_refuses_other_classes_keys_and_unmanaged_objects_before_sql(db, count):
    with db.session() as s:
        gold = s.get(Badge, 1)
        team = s.query(Team).one()
        with count(s, 0):
            with pytest.raises(errors.SessionError) as exc:
                s.replace(gold, Team("x", "y", id=1))
            assert str(exc.value) == (
                "replace() takes a new version of the same class: old is a Badge, new a Team; "
                "build it with attrs.evolve(old, ...) or dataclasses.replace(old, ...)"
            )
            with pytest.raises(errors.SessionError) as exc:
                s.replace(gold, dataclasses.replace(gold, id=2))
            assert str(exc.value) == (
                "replace() keeps the row: the new Badge has key 2, the old one 1; a primary key cannot "
                "change (delete the old object and add a new one instead)"
            )
            with pytest.raises(errors.SessionError, match="^replace\\(\\) needs an object this session holds as persistent; this Badge is not managed by this session$"):
                s.replace(Badge("loose", 1, id=1), gold)
            with pytest.raises(errors.SessionError, match="the new Team is already managed by this session"):
                s.replace(team, team)
            fresh = Badge("new", 1)
            s.add(fresh)
            with pytest.raises(errors.SessionError, match="this Badge is pending \\(flush it first\\)$"):
                s.replace(fresh, dataclasses.replace(fresh, level=2))
        assert s.get(Badge, 1) is gold
