"""Every mistake in a mapping is a ConfigurationError raised when the Database is built.

The message names the mapper and the attribute and says how to fix it. No database is used:
``sqlite:///:memory:`` is only opened once the mappings are valid.
"""

from __future__ import annotations

import attrs
import pytest

from mapper import BelongsTo, Column, ConfigurationError, Database, ForeignKey, HasMany, Mapper, errors
from mapper import types as t


@attrs.define
class Thing:
    name: str
    rev: int = 0
    id: int | None = None


@attrs.define
class Part:
    label: str
    thing_id: int | None = None
    id: int | None = None


def build(*mappers) -> None:
    db = Database("sqlite:///:memory:", mappers=list(mappers))
    db.close()


def config_error(*mappers) -> str:
    with pytest.raises(ConfigurationError) as info:
        build(*mappers)
    assert isinstance(info.value, errors.MapperError)
    return str(info.value)


class GoodThingMapper(Mapper[Thing]):
    table = "cfg_things"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    rev = Column(t.Integer, version=True)


class GoodPartMapper(Mapper[Part]):
    table = "cfg_parts"
    id = Column(t.Integer, primary_key=True)
    label = Column(t.String(50), nullable=False)
    thing_id = Column(t.Integer, ForeignKey("cfg_things.id", on_delete="CASCADE"))


def test_valid_mappers_build_and_serve_several_databases():
    db1 = Database("sqlite:///:memory:", mappers=[GoodThingMapper, GoodPartMapper])
    db2 = Database("sqlite:///:memory:", mappers=[GoodThingMapper, GoodPartMapper])
    try:
        db1.create_all()
        db2.create_all()
        with db1.session() as s:
            s.add(Thing("one"))
        with db2.session() as s:
            assert s.query(Thing).count() == 0
        with db1.session() as s:
            assert [x.name for x in s.query(Thing).all()] == ["one"]
    finally:
        db1.close()
        db2.close()


def test_unknown_option_typo():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        timestamp = True  # meant: timestamps
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    msg = config_error(ThingMapper)
    assert "ThingMapper.timestamp" in msg
    assert "timestamps" in msg  # the option that exists
    assert "Column(" in msg


def test_unknown_plain_value_attribute():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = "varchar"

    msg = config_error(ThingMapper)
    assert "ThingMapper.name" in msg
    assert "Column(" in msg


@pytest.mark.parametrize("bare", [t.String(100), t.String, t.Integer])
def test_type_without_column(bare):
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = bare

    msg = config_error(ThingMapper)
    assert "ThingMapper.name" in msg
    assert "Column(" in msg


def test_no_primary_key():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer)
        name = Column(t.String(50))

    msg = config_error(ThingMapper)
    assert "ThingMapper" in msg
    assert "primary key" in msg
    assert "primary_key=True" in msg


@pytest.mark.parametrize("bad_type", [int, str, "VARCHAR(10)", None, object()])
def test_unknown_column_type(bad_type):
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(bad_type)

    msg = config_error(ThingMapper)
    assert "ThingMapper.name" in msg
    assert "mapper.types" in msg


def test_foreign_key_to_unknown_table():
    class PartMapper(Mapper[Part]):
        table = "cfg_parts"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(50))
        thing_id = Column(t.Integer, ForeignKey("cfg_thingz.id"))

    msg = config_error(GoodThingMapper, PartMapper)
    assert "PartMapper.thing_id" in msg
    assert "cfg_thingz" in msg
    assert "cfg_things" in msg  # the tables that do exist


def test_foreign_key_to_unknown_column():
    class PartMapper(Mapper[Part]):
        table = "cfg_parts"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(50))
        thing_id = Column(t.Integer, ForeignKey("cfg_things.ident"))

    msg = config_error(GoodThingMapper, PartMapper)
    assert "PartMapper.thing_id" in msg
    assert "ident" in msg
    assert "'id'" in msg  # the columns that do exist


def test_foreign_key_to_a_mapper_listed_later_is_fine():
    build(GoodPartMapper, GoodThingMapper)


def test_foreign_key_without_column_part():
    class PartMapper(Mapper[Part]):
        table = "cfg_parts"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(50))
        thing_id = Column(t.Integer, ForeignKey("cfg_things"))

    msg = config_error(GoodThingMapper, PartMapper)
    assert "PartMapper.thing_id" in msg
    assert "table.column" in msg


def test_foreign_key_with_unknown_action():
    class PartMapper(Mapper[Part]):
        table = "cfg_parts"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(50))
        thing_id = Column(t.Integer, ForeignKey("cfg_things.id", on_delete="CASCADES"))

    msg = config_error(GoodThingMapper, PartMapper)
    assert "PartMapper.thing_id" in msg
    assert "CASCADES" in msg
    assert "'CASCADE'" in msg


def test_two_mappers_for_one_class():
    class OtherThingMapper(Mapper[Thing]):
        table = "cfg_other_things"
        id = Column(t.Integer, primary_key=True)

    msg = config_error(GoodThingMapper, OtherThingMapper)
    assert "GoodThingMapper" in msg and "OtherThingMapper" in msg
    assert "Thing" in msg


def test_two_mappers_for_one_table():
    class PartMapper(Mapper[Part]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)

    msg = config_error(GoodThingMapper, PartMapper)
    assert "GoodThingMapper" in msg and "PartMapper" in msg
    assert "cfg_things" in msg


def test_same_mapper_listed_twice():
    msg = config_error(GoodThingMapper, GoodThingMapper)
    assert "GoodThingMapper" in msg


def test_missing_table():
    class ThingMapper(Mapper[Thing]):
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    msg = config_error(ThingMapper)
    assert "ThingMapper" in msg
    assert "table" in msg
    assert "table = " in msg


def test_mapper_without_domain_class():
    class LonelyMapper(Mapper):  # type: ignore[type-arg]
        table = "cfg_lonely"
        id = Column(t.Integer, primary_key=True)

    msg = config_error(LonelyMapper)
    assert "LonelyMapper" in msg
    assert "Mapper[" in msg


def test_not_a_mapper():
    msg = config_error(Thing)
    assert "Thing" in msg


@pytest.mark.parametrize(
    "table",
    ["pugs; DROP TABLE x", "pugs\"", "two words", "1st", "", "a" * 64, "dash-ed", "dot.ted", "pugs`"],
)
def test_invalid_table_name(table):
    class ThingMapper(Mapper[Thing]):
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    ThingMapper.table = table
    msg = config_error(ThingMapper)
    assert "ThingMapper" in msg
    assert "table" in msg


@pytest.mark.parametrize("column", ["bad name", "x; DROP TABLE y", 'quo"te', "9lives", "a" * 64])
def test_invalid_column_name(column):
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50), name=column)

    msg = config_error(ThingMapper)
    assert "ThingMapper.name" in msg
    assert repr(column) in msg


def test_duplicate_database_column_name():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        rev = Column(t.Integer, name="name")

    msg = config_error(ThingMapper)
    assert "ThingMapper.rev" in msg and "ThingMapper.name" in msg
    assert "name=" in msg


def test_nullable_primary_key():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True, nullable=True)
        name = Column(t.String(50))

    msg = config_error(ThingMapper)
    assert "ThingMapper.id" in msg
    assert "nullable" in msg


@pytest.mark.parametrize("vtype", [t.String(10), t.Float, t.DateTime, t.Numeric(10, 2), t.Boolean])
def test_version_column_must_be_an_integer(vtype):
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        rev = Column(vtype, version=True)

    msg = config_error(ThingMapper)
    assert "ThingMapper.rev" in msg
    assert "integer" in msg


def test_two_version_columns():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.Integer, version=True)
        rev = Column(t.Integer, version=True)

    msg = config_error(ThingMapper)
    assert "ThingMapper" in msg
    assert "name" in msg and "rev" in msg


def test_default_and_server_default_together():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        rev = Column(t.Integer, default=0, server_default="0")

    msg = config_error(ThingMapper)
    assert "ThingMapper.rev" in msg
    assert "server_default" in msg


def test_server_default_must_be_sql_text():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        rev = Column(t.Integer, server_default=0)  # type: ignore[arg-type]

    msg = config_error(ThingMapper)
    assert "ThingMapper.rev" in msg
    assert "default=" in msg


def test_bad_mapping_opens_no_connection():
    class ThingMapper(Mapper[Thing]):
        table = "cfg_things"
        id = Column(t.Integer)

    # a server URL that cannot be reached: the mapping error must come first
    with pytest.raises(ConfigurationError) as info:
        Database("postgresql://postgres@127.0.0.1:1/test", mappers=[ThingMapper])
    assert "ThingMapper" in str(info.value)


# -- a column or key that names no attribute is a mistake, unless declared hidden -----------------


@attrs.define
class Member:
    email: str
    name: str = ""
    team: Team | None = None
    id: int | None = None


@attrs.define
class Team:
    title: str
    members: list[Member] = attrs.Factory(list)
    id: int | None = None


class TeamMapper(Mapper[Team]):
    table = "cfg_teams"
    id = Column(t.Integer, primary_key=True)
    title = Column(t.String(50), nullable=False)


def test_misspelt_column_is_refused_with_the_attribute_it_probably_meant():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        emial = Column(t.String(100), nullable=False)

    msg = config_error(MemberMapper)
    assert "MemberMapper.emial" in msg
    assert "Member has no attribute 'emial'" in msg
    assert "did you mean 'email'?" in msg
    assert "hidden=True" in msg and "name='emial'" in msg  # both fixes


def test_hidden_true_declares_a_column_the_class_lacks_on_purpose():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100), nullable=False)
        source = Column(t.String(20), default="signup", hidden=True)

    db = Database("sqlite:///:memory:", mappers=[MemberMapper])
    try:
        cm = db.registry.mapping_for(Member)
        assert [c.key for c in cm.hidden_columns] == ["source"]
        assert "source" not in {c.key for c in cm.attr_columns}
    finally:
        db.close()


def test_hidden_primary_key_must_say_so():
    @attrs.define
    class Label:
        text: str

    class LabelMapper(Mapper[Label]):
        table = "cfg_labels"
        id = Column(t.Integer, primary_key=True)
        text = Column(t.String(20))

    msg = config_error(LabelMapper)
    assert "LabelMapper.id" in msg and "hidden=True" in msg

    class HiddenKeyLabelMapper(Mapper[Label]):
        table = "cfg_labels"
        id = Column(t.Integer, primary_key=True, hidden=True)
        text = Column(t.String(20))

    build(HiddenKeyLabelMapper)


def test_hidden_true_on_an_attribute_is_refused():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100), hidden=True)

    msg = config_error(MemberMapper)
    assert "MemberMapper.email" in msg
    assert "hidden=True" in msg and "Member has an attribute 'email'" in msg


def test_empty_column_name_is_refused():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100), name="")

    msg = config_error(MemberMapper)
    assert "MemberMapper.email" in msg
    assert "column name ''" in msg and "name=" in msg


def test_a_declared_key_column_that_a_relation_names_needs_no_hidden_flag():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))
        team_ref = Column(t.Integer, ForeignKey("cfg_teams.id"))
        team = BelongsTo(Team, foreign_key="team_ref")

    class TeamWithMembersMapper(Mapper[Team]):
        table = "cfg_teams"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(50))
        members = HasMany(Member, foreign_key="team_ref", inverse="team")

    build(MemberMapper, TeamWithMembersMapper)


def test_a_key_column_that_only_a_has_many_names_needs_no_hidden_flag():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))
        team_ref = Column(t.Integer, ForeignKey("cfg_teams.id"))

    class TeamWithMembersMapper(Mapper[Team]):
        table = "cfg_teams"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(50))
        members = HasMany(Member, foreign_key="team_ref")

    build(TeamWithMembersMapper, MemberMapper)


def test_misspelt_column_mentions_the_relation_that_derived_another_key():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))
        team_id = Column(t.Integer)
        team = BelongsTo(Team, foreign_key="taem_id")

    msg = config_error(TeamMapper, MemberMapper)
    assert "MemberMapper.team_id" in msg
    assert "MemberMapper.team names 'taem_id'" in msg


def test_has_many_key_typo_is_refused_when_the_target_declares_its_key():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))
        team_id = Column(t.Integer, ForeignKey("cfg_teams.id"), hidden=True)

    class TeamWithMembersMapper(Mapper[Team]):
        table = "cfg_teams"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(50))
        members = HasMany(Member, foreign_key="taem_id")

    for order in ((MemberMapper, TeamWithMembersMapper), (TeamWithMembersMapper, MemberMapper)):
        msg = config_error(*order)
        assert "TeamWithMembersMapper.members" in msg
        assert "foreign_key='taem_id'" in msg
        assert "did you mean 'team_id'?" in msg
        assert "MemberMapper" in msg and "cfg_teams" in msg


def test_has_many_key_typo_is_refused_when_the_target_belongs_to_this_class_by_another_key():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))
        team = BelongsTo(Team)  # derived key team_id

    class TeamWithMembersMapper(Mapper[Team]):
        table = "cfg_teams"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(50))
        members = HasMany(Member, foreign_key="teamid")

    for order in ((MemberMapper, TeamWithMembersMapper), (TeamWithMembersMapper, MemberMapper)):
        msg = config_error(*order)
        assert "TeamWithMembersMapper.members" in msg and "'teamid'" in msg
        assert "'team_id'" in msg


def test_belongs_to_key_typo_is_refused_when_the_mapper_declares_the_key():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))
        team_id = Column(t.Integer, ForeignKey("cfg_teams.id"))
        team = BelongsTo(Team, foreign_key="team_di")

    msg = config_error(TeamMapper, MemberMapper)
    assert "MemberMapper.team" in msg and "foreign_key='team_di'" in msg
    assert "did you mean 'team_id'?" in msg


def test_key_naming_the_relation_itself_is_refused():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))
        team = BelongsTo(Team, foreign_key="team")

    msg = config_error(TeamMapper, MemberMapper)
    assert "MemberMapper.team" in msg and "'team'" in msg and "'team_id'" in msg


def test_a_new_key_name_is_derived_when_nothing_else_references_the_parent():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))

    class TeamWithMembersMapper(Mapper[Team]):
        table = "cfg_teams"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(50))
        members = HasMany(Member, foreign_key="squad_ref")

    db = Database("sqlite:///:memory:", mappers=[TeamWithMembersMapper, MemberMapper])
    try:
        cm = db.registry.mapping_for(Member)
        assert [c.key for c in cm.hidden_columns] == ["squad_ref"]
    finally:
        db.close()


def test_association_class_key_typo_is_refused():
    from mapper import BelongsToMany

    @attrs.define
    class Club:
        name: str
        people: list[Member] = attrs.Factory(list)
        id: int | None = None

    @attrs.define
    class Seat:
        club: Club | None = None
        member: Member | None = None
        id: int | None = None

    class ClubMapper(Mapper[Club]):
        table = "cfg_clubs"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))
        people = BelongsToMany(Member, through=Seat, foreign_key="club_id", other_key="memebr_id")

    class SeatMapper(Mapper[Seat]):
        table = "cfg_seats"
        id = Column(t.Integer, primary_key=True)
        club = BelongsTo(Club)
        member = BelongsTo(Member)

    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))

    msg = config_error(ClubMapper, SeatMapper, MemberMapper)
    assert "ClubMapper.people" in msg and "other_key='memebr_id'" in msg
    assert "did you mean 'member_id'?" in msg


def test_a_derived_key_on_an_attribute_name_is_stored_in_the_attribute():
    @attrs.define
    class Badge:
        code: str
        team: Team | None = None
        team_id: int | None = None
        id: int | None = None

    class BadgeMapper(Mapper[Badge]):
        table = "cfg_badges"
        id = Column(t.Integer, primary_key=True)
        code = Column(t.String(20))
        team = BelongsTo(Team)

    db = Database("sqlite:///:memory:", mappers=[TeamMapper, BadgeMapper])
    try:
        cm = db.registry.mapping_for(Badge)
        assert "team_id" in {c.key for c in cm.attr_columns}
        assert cm.hidden_columns == []
        assert "team_id" not in {d.name for d in cm.field_defaults}
    finally:
        db.close()


# -- a field that a loaded object would lack ------------------------------------------------------


def test_unmapped_field_without_default_is_refused():
    @attrs.define
    class Ticket:
        title: str
        priority: int  # no column, no default
        id: int | None = None

    class TicketMapper(Mapper[Ticket]):
        table = "cfg_tickets"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(50))
        prio = Column(t.Integer, hidden=True)

    msg = config_error(TicketMapper)
    assert "TicketMapper" in msg and "Ticket declares 'priority'" in msg
    assert "did you mean column 'prio'?" in msg
    assert "default" in msg and "on_load" in msg and "Column" in msg


def test_unmapped_field_of_a_dataclass_and_of_a_plain_class_is_refused():
    import dataclasses

    @dataclasses.dataclass
    class Ticket:
        title: str
        priority: int
        id: int | None = None

    class TicketMapper(Mapper[Ticket]):
        table = "cfg_tickets"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(50))

    assert "'priority'" in config_error(TicketMapper)

    class Note:
        def __init__(self, text: str) -> None:
            self.text = text
            self.events: list[str] = []  # set by __init__, which a load does not call
            self.id = None

    class NoteMapper(Mapper[Note]):
        table = "cfg_notes"
        id = Column(t.Integer, primary_key=True)
        text = Column(t.String(50))

    msg = config_error(NoteMapper)
    assert "NoteMapper" in msg and "'events'" in msg

    class ListedNote(Note):
        events: tuple[str, ...] = ()  # a class-level value: a loaded note reads it

    class ListedNoteMapper(Mapper[ListedNote]):
        table = "cfg_notes"
        id = Column(t.Integer, primary_key=True)
        text = Column(t.String(50))

    build(ListedNoteMapper)


def test_on_load_may_fill_unmapped_fields():
    @attrs.define
    class Ticket:
        title: str
        words: int
        id: int | None = None

    class TicketMapper(Mapper[Ticket]):
        table = "cfg_tickets"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(50))

        def on_load(self, obj: Ticket) -> None:
            obj.words = len(obj.title.split())

    build(TicketMapper)


# -- a foreign key holds the values of the key it references --------------------------------------


@pytest.mark.parametrize(
    "key_type, ok",
    [
        (t.Integer, True),
        (t.BigInteger, True),
        (t.SmallInteger, True),
        (t.String(36), False),
        (t.Text, False),
        (t.Numeric(10, 0), False),
        (t.Uuid, False),
    ],
    ids=repr,
)
def test_foreign_key_type_must_hold_the_referenced_key(key_type, ok):
    class PartMapper(Mapper[Part]):
        table = "cfg_parts"
        id = Column(t.Integer, primary_key=True)
        label = Column(t.String(50))
        thing_id = Column(key_type, ForeignKey("cfg_things.id"))

    if ok:
        build(GoodThingMapper, PartMapper)
        return
    msg = config_error(GoodThingMapper, PartMapper)
    assert "PartMapper.thing_id" in msg
    assert "cfg_parts.thing_id" in msg and "cfg_things.id" in msg and "Integer()" in msg


def test_uuid_key_is_not_held_by_a_string_and_strings_mix():
    @attrs.define
    class Doc:
        id: object = None

    @attrs.define
    class Ref:
        doc_id: object = None
        id: int | None = None

    class DocMapper(Mapper[Doc]):
        table = "cfg_docs"
        id = Column(t.Uuid, primary_key=True)

    class RefMapper(Mapper[Ref]):
        table = "cfg_refs"
        id = Column(t.Integer, primary_key=True)
        doc_id = Column(t.String(36), ForeignKey("cfg_docs.id"))

    msg = config_error(DocMapper, RefMapper)
    assert "String(36)" in msg and "Uuid()" in msg

    class CodeMapper(Mapper[Doc]):
        table = "cfg_docs"
        id = Column(t.String(36), primary_key=True)

    class TextRefMapper(Mapper[Ref]):
        table = "cfg_refs"
        id = Column(t.Integer, primary_key=True)
        doc_id = Column(t.Text, ForeignKey("cfg_docs.id"))

    build(CodeMapper, TextRefMapper)


def test_relation_key_type_must_hold_the_parent_key():
    class MemberMapper(Mapper[Member]):
        table = "cfg_members"
        id = Column(t.Integer, primary_key=True)
        email = Column(t.String(100))
        team_code = Column(t.String(10))
        team = BelongsTo(Team, foreign_key="team_code")

    msg = config_error(TeamMapper, MemberMapper)
    assert "MemberMapper.team" in msg and "cfg_members.team_code" in msg and "String(10)" in msg


def test_naive_timestamp_column_with_timestamps_is_refused():
    @attrs.define
    class Stamped:
        name: str
        created_at: object = None
        id: int | None = None

    class StampedMapper(Mapper[Stamped]):
        table = "stamped"
        timestamps = True
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(20))
        created_at = Column(t.DateTime)

    msg = config_error(StampedMapper)
    assert "StampedMapper.created_at" in msg and "DateTime(timezone=True)" in msg

    class AwareStampedMapper(Mapper[Stamped]):
        table = "stamped"
        timestamps = True
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(20))
        created_at = Column(t.DateTime(timezone=True))

    build(AwareStampedMapper)
