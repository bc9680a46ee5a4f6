"""Hidden columns on every backend: declared with ``hidden=True``, or key columns that relations
derive; a derived key whose name the domain class has is stored in that attribute. Rows are read
back with plain SQL."""

from __future__ import annotations

import attrs

from mapper import BelongsTo, Column, HasMany, Mapper
from mapper import types as t
from tests.rel_models import rows


@attrs.define
class Signup:
    email: str
    id: int | None = None


class SignupMapper(Mapper[Signup]):
    table = "hid_signups"
    id = Column(t.Integer, primary_key=True)
    email = Column(t.String(100), nullable=False)
    source = Column(t.String(20), nullable=False, default="web", hidden=True)


def test_a_hidden_column_is_written_queried_and_updated(backend, make_db, count):
    db = make_db(SignupMapper)
    with db.session() as s:
        a, b = Signup("a@example.com"), Signup("b@example.com")
        s.add_all([a, b])
        with count(s, 1):
            s.flush()
    assert rows(backend, "SELECT email, source FROM {hid_signups} ORDER BY email") == [
        ("a@example.com", "web"),
        ("b@example.com", "web"),
    ]
    with db.session() as s:
        with count(s, 1):
            assert s.query(Signup).where(email="b@example.com").update(source="import") == 1
        with count(s, 1):
            got = s.query(Signup).where(source="import").all()
        assert got == [Signup("b@example.com", id=b.id)]
        assert repr(got[0]) == f"Signup(email='b@example.com', id={b.id})"
        assert not hasattr(got[0], "source")  # its value lives in the session
        assert s.query(Signup).order_by("email").values("email", "source") == [
            ("a@example.com", "web"),
            ("b@example.com", "import"),
        ]
    assert rows(backend, "SELECT source FROM {hid_signups} ORDER BY email") == [("web",), ("import",)]


# -- derived keys -----------------------------------------------------------------------------------


@attrs.define
class Squad:
    name: str
    players: list[Player] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Player:
    name: str
    squad: Squad | None = None
    id: int | None = None


class SquadMapper(Mapper[Squad]):
    table = "hid_squads"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    players = HasMany(Player, inverse="squad", order_by="name")


class PlayerMapper(Mapper[Player]):
    table = "hid_players"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    squad = BelongsTo(Squad, inverse="players")  # no key declared: squad_id is derived, hidden


def test_a_key_no_mapper_declares_is_still_derived_as_a_hidden_column(backend, make_db, count):
    db = make_db(SquadMapper, PlayerMapper)
    with db.session() as s:
        reds = Squad("reds", players=[Player("ann"), Player("bob")])
        s.add(reds)
        with count(s, 2):
            s.flush()
    assert rows(backend, "SELECT name, squad_id FROM {hid_players} ORDER BY name") == [("ann", reds.id), ("bob", reds.id)]
    with db.session() as s:
        with count(s, 2):
            got = s.query(Squad).include("players").one()
        assert [p.name for p in got.players] == ["ann", "bob"]
        assert all(p.squad is got for p in got.players)
        assert not hasattr(got.players[0], "squad_id")


@attrs.define
class Coach:
    name: str
    trainees: list[Trainee] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Trainee:
    name: str
    id: int | None = None


class CoachMapper(Mapper[Coach]):
    table = "hid_coaches"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    # A key name of its own, that nothing else on trainees declares: derived under that name.
    trainees = HasMany(Trainee, foreign_key="mentor_ref", order_by="name")


class TraineeMapper(Mapper[Trainee]):
    table = "hid_trainees"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)


def test_a_new_key_name_given_to_a_has_many_is_derived_under_that_name(backend, make_db, count):
    db = make_db(CoachMapper, TraineeMapper)
    with db.session() as s:
        coach = Coach("kim", trainees=[Trainee("lee"), Trainee("max")])
        s.add(coach)
        with count(s, 2):
            s.flush()
    assert rows(backend, "SELECT name, mentor_ref FROM {hid_trainees} ORDER BY name") == [
        ("lee", coach.id),
        ("max", coach.id),
    ]


@attrs.define
class Badge:
    code: str
    squad: Squad | None = None
    squad_id: int | None = None  # the derived key's name: the attribute holds the key
    id: int | None = None


class BadgeMapper(Mapper[Badge]):
    table = "hid_badges"
    id = Column(t.Integer, primary_key=True)
    code = Column(t.String(20), nullable=False)
    squad = BelongsTo(Squad)


def test_a_derived_key_whose_name_the_class_has_is_stored_in_the_attribute(backend, make_db, count):
    db = make_db(SquadMapper, PlayerMapper, BadgeMapper)
    with db.session() as s:
        reds = Squad("reds")
        badge = Badge("B1", squad=reds)
        s.add(badge)
        with count(s, 2):
            s.flush()
        assert badge.squad_id == reds.id
    assert rows(backend, "SELECT code, squad_id FROM {hid_badges}") == [("B1", reds.id)]
    with db.session() as s:
        with count(s, 1):
            got = s.query(Badge).one()
        assert got.squad_id == reds.id
        blues = Squad("blues")
        got.squad = blues
        s.flush()
        assert got.squad_id == blues.id
    assert rows(backend, "SELECT code, squad_id FROM {hid_badges}") == [("B1", blues.id)]
