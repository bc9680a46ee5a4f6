"""Single-table inheritance: every mistake in a hierarchy is a ConfigurationError at Database(),
naming the mapper and the fix; the shared table is what the DDL creates."""

from __future__ import annotations

import attrs
import pytest

from mapper import Column, ConfigurationError, Database, Mapper
from mapper import types as t
from mapper.ddl import create_statements, offline_dialect


@attrs.define
class Animal:
    name: str
    id: int | None = None


@attrs.define
class Dog(Animal):
    breed: str | None = None


@attrs.define
class Cat(Animal):
    lives: int = 9


@attrs.define
class Rock:
    name: str
    id: int | None = None


class AnimalMapper(Mapper[Animal]):
    table = "cfg_animals"
    discriminator = "kind"
    id = Column(t.Integer, primary_key=True)
    kind = Column(t.String(10), nullable=False)
    name = Column(t.String(50), nullable=False)


class DogMapper(AnimalMapper, Mapper[Dog]):
    discriminator_value = "dog"
    breed = Column(t.String(50))


class CatMapper(AnimalMapper, Mapper[Cat]):
    discriminator_value = "cat"
    lives = Column(t.Integer, nullable=False, default=9)


def config_error(*mappers: type) -> str:
    with pytest.raises(ConfigurationError) as info:
        Database("sqlite:///:memory:", mappers=list(mappers)).close()
    return str(info.value)


def test_one_table_with_every_subclass_column():
    # Listed subclasses first: the registry places the base mapper before them.
    db = Database("sqlite:///:memory:", mappers=[CatMapper, DogMapper, AnimalMapper])
    try:
        tables = db.registry.tables
        assert list(tables) == ["cfg_animals"]
        assert [(c.name, c.nullable) for c in tables["cfg_animals"].columns] == [
            ("id", False), ("kind", False), ("name", False), ("lives", True), ("breed", True),
        ]
        ddl = "\n".join(sql for _, sql in create_statements(offline_dialect("sqlite"), tables))
        assert ddl.count("CREATE TABLE") == 1
        assert '"lives" INTEGER,' in ddl and '"breed" VARCHAR(50)' in ddl
    finally:
        db.close()


def test_subclass_column_not_null_without_default():
    class StrictDog(AnimalMapper, Mapper[Dog]):
        discriminator_value = "dog"
        breed = Column(t.String(50), nullable=False)

    assert config_error(AnimalMapper, StrictDog) == (
        "StrictDog.breed is NOT NULL without a default, but the rows of the other mappers of AnimalMapper's "
        "table have no breed; drop nullable=False (it is stored in the shared table 'cfg_animals') or give it "
        "a default or server_default"
    )


def test_subclass_without_discriminator_value():
    class Unvalued(AnimalMapper, Mapper[Dog]):
        breed = Column(t.String(50))

    assert config_error(AnimalMapper, Unvalued).startswith(
        "Unvalued extends AnimalMapper but gives no discriminator_value; add e.g. `discriminator_value = 'dog'`"
    )


def test_discriminator_names_no_column():
    class Base(Mapper[Animal]):
        table = "cfg_base"
        discriminator = "sort"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    assert config_error(Base).startswith("Base.discriminator = 'sort' names no column of Base")


def test_discriminator_must_not_be_a_domain_attribute():
    class Base(Mapper[Animal]):
        table = "cfg_base"
        discriminator = "name"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    assert config_error(Base).startswith("Base.name is the discriminator, but Animal has an attribute 'name'")


def test_two_mappers_with_one_value():
    class Other(AnimalMapper, Mapper[Cat]):
        discriminator_value = "dog"

    assert config_error(AnimalMapper, DogMapper, Other) == (
        "Other and DogMapper both use discriminator_value 'dog'; give each mapper its own"
    )


def test_another_table_is_joined_table_inheritance():
    class Joined(AnimalMapper, Mapper[Dog]):
        table = "cfg_dogs"
        discriminator_value = "dog"

    assert config_error(AnimalMapper, Joined).startswith(
        "Joined.table = 'cfg_dogs', but Joined extends AnimalMapper, whose hierarchy is stored in "
        "'cfg_animals': only single-table inheritance is supported"
    )


def test_subclass_mapper_must_name_its_class():
    class Forgot(AnimalMapper):
        discriminator_value = "dog"

    assert config_error(AnimalMapper, Forgot) == (
        "Forgot extends AnimalMapper but maps the same class Animal; name its own domain class: "
        "`class Forgot(AnimalMapper, Mapper[YourSubclass])`"
    )


def test_domain_class_must_be_a_subclass():
    class RockMapper(AnimalMapper, Mapper[Rock]):
        discriminator_value = "rock"

    assert config_error(AnimalMapper, RockMapper).startswith(
        "RockMapper extends AnimalMapper, but Rock is not a subclass of Animal"
    )


def test_base_mapper_must_be_listed():
    assert config_error(DogMapper) == (
        "DogMapper extends AnimalMapper, which is not listed in Database(mappers=...); list AnimalMapper too"
    )


def test_value_without_discriminator():
    class Plain(Mapper[Animal]):
        table = "cfg_plain"
        discriminator_value = "x"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(50))

    assert config_error(Plain).startswith("Plain.discriminator_value is set but no base mapper declares a discriminator")


def test_key_belongs_to_the_base():
    class Keyed(AnimalMapper, Mapper[Dog]):
        discriminator_value = "dog"
        breed = Column(t.String(50), primary_key=True)

    assert config_error(AnimalMapper, Keyed).startswith(
        "Keyed.breed is a primary key, but the key of a hierarchy is the base mapper's"
    )
