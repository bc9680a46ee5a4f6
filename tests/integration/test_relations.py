"""Relation kinds on every backend: keys (explicit, derived, composite, natural), inverses, aliases,
string targets, self-references, ordering, set collections, and many-to-many through a junction
table or an association class with a payload."""

from __future__ import annotations

import attrs
import pytest

from mapper import BelongsTo, Column, HasMany, Mapper, errors
from mapper import types as t
from tests.rel_models import (
    LIBRARY,
    PETS,
    Book,
    Box,
    BoxMapper,
    Category,
    CategoryMapper,
    City,
    CityMapper,
    Country,
    CountryMapper,
    Employee,
    EmployeeMapper,
    Owner,
    Post,
    PostMapper,
    Profile,
    Pug,
    Shelf,
    ShelfMapper,
    Tag,
    TagMapper,
    Town,
    TownMapper,
    Toy,
    User,
    UserBook,
    column_type,
    fk_rules,
    rows,
)

# -- BelongsTo / HasMany with explicit keys and inverses -------------------------------------------


def test_has_many_insert_writes_explicit_foreign_keys_and_fills_inverse(backend, make_db, count):
    db = make_db(*PETS)
    with db.session() as s:
        tom = Owner("Tom", pugs=[Pug("Cody"), Pug("Doug", age=3)])
        s.add(tom)
        with count(s, 2):  # one INSERT per table
            s.flush()
        assert tom.id is not None
        assert all(p.owner is tom for p in tom.pugs)
        # The to-one side alone attaches a pug; the loaded collection follows at flush.
        rex = Pug("Rex", owner=tom)
        s.add(rex)
        s.flush()
        assert [p.name for p in tom.pugs] == ["Cody", "Doug", "Rex"]
    assert rows(backend, "SELECT name, age, owner_id FROM {rel_pugs} ORDER BY id") == [
        ("Cody", 0, tom.id),
        ("Doug", 3, tom.id),
        ("Rex", 0, tom.id),
    ]
    with db.session() as s:
        with count(s, 2):
            (owner,) = s.query(Owner).include("pugs").all()
        with count(s, 0):
            assert [p.name for p in owner.pugs] == ["Cody", "Doug", "Rex"]
            assert all(p.owner is owner for p in owner.pugs)


def test_belongs_to_reference_reads_back_as_the_same_object(backend, make_db, count):
    db = make_db(*PETS)
    with db.session() as s:
        tom, ann = Owner("Tom"), Owner("Ann")
        s.add_all([Pug("Cody", owner=tom), Pug("Doug", owner=ann), Pug("Stray")])
    with db.session() as s:
        with count(s, 2):
            pugs = s.query(Pug).order_by("name").include("owner").all()
        with count(s, 0):
            assert [(p.name, p.owner.name if p.owner else None) for p in pugs] == [
                ("Cody", "Tom"),
                ("Doug", "Ann"),
                ("Stray", None),
            ]
            assert s.get(Owner, tom.id) is pugs[0].owner


# -- derived keys: hidden columns of the parent key's type ---------------------------------------------


def test_derived_foreign_keys_are_hidden_columns_of_the_parent_key_type(backend, make_db):
    db = make_db(*PETS, *LIBRARY, ShelfMapper, BoxMapper)
    # Toy.pug, Profile.user and Box.shelf declare no key column: the mapper creates them.
    assert "int" in (column_type(backend, "rel_toys", "pug_id") or "")
    assert "int" in (column_type(backend, "rel_profiles", "user_id") or "")
    assert "char" in (column_type(backend, "rel_boxes", "shelf_room") or "")
    assert "int" in (column_type(backend, "rel_boxes", "shelf_number") or "")
    # ... and references for them, so the schema and the flush order know about them.
    assert fk_rules(backend, "rel_toys")[("pug_id",)][0] == "rel_pugs"
    assert fk_rules(backend, "rel_profiles")[("user_id",)][0] == "rel_users"
    assert fk_rules(backend, "rel_boxes")[("shelf_room", "shelf_number")][0] == "rel_shelves"
    with db.session() as s:
        cody = Pug("Cody", toys=[Toy("ball"), Toy("rope")])
        u = User("Ann", profile=Profile("hello"))
        shelf = Shelf("attic", 7, "top", boxes=[Box("books")])
        s.add_all([cody, u, shelf])
    assert rows(backend, "SELECT name, pug_id FROM {rel_toys} ORDER BY id") == [("ball", cody.id), ("rope", cody.id)]
    assert rows(backend, "SELECT bio, user_id FROM {rel_profiles}") == [("hello", u.id)]
    assert rows(backend, "SELECT content, shelf_room, shelf_number FROM {rel_boxes}") == [("books", "attic", 7)]
    for obj, name in ((Toy("x"), "pug_id"), (Profile("x"), "user_id"), (Box("x"), "shelf_room")):
        assert not hasattr(obj, name)
    with db.session() as s:
        toys = s.query(Toy).order_by("name").all()
        assert [(x.name, x.pug.name) for x in toys] == [("ball", "Cody"), ("rope", "Cody")]
        assert toys[0].pug is toys[1].pug
        assert s.query(Profile).one().user.name == "Ann"


def test_has_one_insert_load_and_replace(backend, make_db, count):
    db = make_db(*LIBRARY)
    with db.session() as s:
        ann, bob = User("Ann", profile=Profile("first")), User("Bob")
        s.add_all([ann, bob])
        s.flush()
        assert ann.profile.user is ann
    with db.session() as s:
        with count(s, 2):  # a HasOne is loaded with its parents: one batched query
            users = s.query(User).order_by("name").all()
        with count(s, 0):
            assert users[0].profile.bio == "first"
            assert users[0].profile.user is users[0]
            assert users[1].profile is None
        old = users[0].profile
        users[0].profile = Profile("second")  # cascade="all": the replaced profile is an orphan
        users[1].profile = Profile("bob's")
        s.flush()
        assert users[0].profile.user is users[0]
        assert s.get(Profile, old.id) is None
    assert rows(backend, "SELECT bio, user_id FROM {rel_profiles} ORDER BY id") == [
        ("second", ann.id),
        ("bob's", bob.id),
    ]


# -- aliases: several relations between the same two classes ----------------------------------------


def test_aliases_use_their_own_junction_tables(backend, make_db, count):
    db = make_db(*LIBRARY)
    for junction in ("rel_user_favorites", "rel_user_read"):
        assert "int" in (column_type(backend, junction, "user_id") or "")
        assert "int" in (column_type(backend, junction, "book_id") or "")
        found = fk_rules(backend, junction)
        assert found[("user_id",)][:2] == ("rel_users", "CASCADE")
        assert found[("book_id",)][:2] == ("rel_books", "CASCADE")
    with db.session() as s:
        b1, b2, b3 = Book("B1"), Book("B2"), Book("B3")
        ann = User("Ann", favorites=[b1, b2], read=[b2, b3])
        s.add(ann)
        s.flush()
        # Both sides in memory: the inverses were loaded (new objects), so they follow.
        assert [u.name for u in b2.fans] == ["Ann"]
        assert [u.name for u in b3.readers] == ["Ann"]
        assert b3.fans == []
    assert rows(backend, "SELECT user_id, book_id FROM {rel_user_favorites} ORDER BY book_id") == [
        (ann.id, b1.id),
        (ann.id, b2.id),
    ]
    assert rows(backend, "SELECT user_id, book_id FROM {rel_user_read} ORDER BY book_id") == [
        (ann.id, b2.id),
        (ann.id, b3.id),
    ]
    with db.session() as s:
        with count(s, 4):  # users (+ profiles, a HasOne), favorites, read
            u = s.query(User).include("favorites", "read").one()
        assert [b.title for b in u.favorites] == ["B1", "B2"]
        assert [b.title for b in u.read] == ["B2", "B3"]
        assert u.favorites[1] is u.read[0]
        with count(s, 3):
            b2 = s.query(Book).where(title="B2").include("fans", "readers").one()
        assert b2.fans[0] is u and b2.readers[0] is u


def test_string_junction_add_and_remove_from_either_side(backend, make_db):
    db = make_db(*LIBRARY)
    with db.session() as s:
        s.add_all([User("Ann"), User("Bob"), Book("B1"), Book("B2")])
    with db.session() as s:
        ann, bob = s.query(User).order_by("name").include("favorites").all()
        b1, b2 = s.query(Book).order_by("title").include("fans").all()
        ann.favorites.append(b1)  # from the user side
        b2.fans.append(bob)  # from the book side
        s.flush()
        assert [u.name for u in b1.fans] == ["Ann"]
        assert [b.title for b in bob.favorites] == ["B2"]
    assert rows(backend, "SELECT user_id, book_id FROM {rel_user_favorites} ORDER BY user_id") == [
        (ann.id, b1.id),
        (bob.id, b2.id),
    ]
    with db.session() as s:
        ann = s.query(User).where(name="Ann").include("favorites").one()
        b1 = ann.favorites[0]
        ann.favorites.remove(b1)
        s.flush()
        # The book's collection was never loaded: it is loaded from the database now, without the pair.
        assert b1.fans == []
    assert rows(backend, "SELECT user_id, book_id FROM {rel_user_favorites}") == [(bob.id, b2.id)]


# -- targets named by string -----------------------------------------------------------------------


def test_target_named_by_an_unknown_string_is_a_configuration_error(backend, make_db):
    @attrs.define
    class Leash:
        name: str
        pug: Pug | None = None
        id: int | None = None

    class LeashMapper(Mapper[Leash]):
        table = "rel_leashes"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(20))
        pug = BelongsTo("Pugg")

    with pytest.raises(errors.ConfigurationError) as exc:
        make_db(*PETS, LeashMapper, create=False)
    assert "LeashMapper.pug" in str(exc.value)
    assert "'Pugg'" in str(exc.value)


# -- self-references -------------------------------------------------------------------------------


def test_category_tree_inserts_and_loads(backend, make_db, count):
    db = make_db(CategoryMapper)
    with db.session() as s:
        root = Category("root", children=[Category("b"), Category("a", children=[Category("a2"), Category("a1")])])
        s.add(root)  # children and grandchildren follow through the "save" cascade
        s.flush()
        a = root.children[1]
        assert a.parent is root and a.children[0].parent is a
    assert rows(
        backend,
        "SELECT c.name, p.name FROM {rel_categories} c LEFT JOIN {rel_categories} p ON p.id = c.parent_id ORDER BY c.name",
    ) == [("a", "root"), ("a1", "a"), ("a2", "a"), ("b", "root"), ("root", None)]
    with db.session() as s:
        with count(s, 3):  # one query per path segment
            (root,) = s.query(Category).where(parent_id=None).include("children.children").all()
        with count(s, 0):
            assert [c.name for c in root.children] == ["a", "b"]  # order_by="name"
            assert [c.name for c in root.children[0].children] == ["a1", "a2"]
            assert root.children[0].children[0].parent is root.children[0]
            assert root.children[1].children == []


def test_employee_manager_chain_added_from_the_bottom(backend, make_db):
    db = make_db(EmployeeMapper)
    with db.session() as s:
        boss = Employee("Boss")
        mid = Employee("Mid", manager=boss)
        emp = Employee("Emp", manager=mid)
        s.add(emp)  # the new managers it references are saved too, parent first
    assert rows(
        backend,
        "SELECT e.name, m.name FROM {rel_employees} e LEFT JOIN {rel_employees} m ON m.id = e.manager_id ORDER BY e.id",
    ) == [("Boss", None), ("Mid", "Boss"), ("Emp", "Mid")]
    with db.session() as s:
        e = s.get_one(Employee, emp.id)
        assert e.manager.name == "Mid"
        assert e.manager.manager.name == "Boss"
        assert e.manager.manager.manager is None


# -- composite and natural keys ----------------------------------------------------------------------


def test_composite_foreign_key(backend, make_db, count):
    db = make_db(ShelfMapper, BoxMapper)
    with db.session() as s:
        a1 = Shelf("A", 1, "low", boxes=[Box("nails"), Box("screws")])
        a2 = Shelf("A", 2, "high", boxes=[Box("paint")])
        b1 = Shelf("B", 1, "cellar")
        s.add_all([a1, a2, b1])
    assert rows(backend, "SELECT content, shelf_room, shelf_number FROM {rel_boxes} ORDER BY id") == [
        ("nails", "A", 1),
        ("screws", "A", 1),
        ("paint", "A", 2),
    ]
    with db.session() as s:
        with count(s, 2):
            shelves = s.query(Shelf).order_by("room", "number").include("boxes").all()
        assert [(x.room, x.number, [b.content for b in x.boxes]) for x in shelves] == [
            ("A", 1, ["nails", "screws"]),
            ("A", 2, ["paint"]),
            ("B", 1, []),
        ]
        assert shelves[0].boxes[0].shelf is shelves[0]
        assert s.identity(shelves[1]) == ("A", 2)
        paint = shelves[1].boxes[0]
        paint.shelf = shelves[2]  # moves both key columns
        s.flush()
        assert shelves[1].boxes == [] and shelves[2].boxes == [paint]
    assert rows(backend, "SELECT content, shelf_room, shelf_number FROM {rel_boxes} ORDER BY id") == [
        ("nails", "A", 1),
        ("screws", "A", 1),
        ("paint", "B", 1),
    ]
    with db.session() as s:
        with count(s, 2):
            boxes = s.query(Box).order_by("id").include("shelf").all()
        assert [(b.shelf.room, b.shelf.number) for b in boxes] == [("A", 1), ("A", 1), ("B", 1)]
        assert boxes[0].shelf is boxes[1].shelf


def test_natural_key_update_reaches_children(backend, make_db, count):
    db = make_db(CountryMapper, CityMapper, TownMapper)
    assert fk_rules(backend, "rel_cities")[("country_code",)][2] == "CASCADE"
    with db.session() as s:
        uk = Country("UK", "United Kingdom", cities=[City("London"), City("Leeds")])
        s.add(uk)
        s.add(Town("Ely", country=uk))
        s.flush()
        assert [c.country_code for c in uk.cities] == ["UK", "UK"]  # attribute kept in line with the relation
    with db.session() as s:
        uk = s.query(Country).include("cities").one()
        town = s.query(Town).include("country").one()
        assert town.country is uk
        uk.code = "GB"
        s.flush()
        # The database moved the children (ON UPDATE CASCADE); the loaded ones follow in memory.
        assert [(c.name, c.country_code) for c in uk.cities] == [("Leeds", "GB"), ("London", "GB")]
        assert all(c.country is uk for c in uk.cities)
        assert s.get(Country, "GB") is uk
        with count(s, 0):
            s.flush()  # nothing left to write: the children's snapshots follow too
        leeds = uk.cities[0]
        leeds.name = "Leeds!"
        with count(s, 1):
            s.flush()
    assert rows(backend, "SELECT code FROM {rel_countries}") == [("GB",)]
    assert rows(backend, "SELECT name, country_code FROM {rel_cities} ORDER BY name") == [
        ("Leeds!", "GB"),
        ("London", "GB"),
    ]
    assert rows(backend, "SELECT name, country_code FROM {rel_towns}") == [("Ely", "GB")]
    with db.session() as s:
        town = s.query(Town).include("country").one()
        assert town.country.code == "GB"


def test_natural_key_update_keeps_held_hidden_keys_in_line(backend, make_db):
    db = make_db(CountryMapper, CityMapper, TownMapper)
    with db.session() as s:
        s.add_all([Town("Ely", country=Country("UK", "United Kingdom"))])
    with db.session() as s:
        town = s.query(Town).include("country").one()
        uk = town.country
        uk.code = "GB"
        s.flush()
        # The held town's hidden key is now "GB": deleting the parent finds the town in the
        # session and detaches it in memory as well as in the database.
        s.delete(uk)
        s.flush()
        assert town.country is None
    assert rows(backend, "SELECT name, country_code FROM {rel_towns}") == [("Ely", None)]


# -- order_by and set collections ----------------------------------------------------------------------


def test_order_by_descending_and_multiple_keys(backend, make_db, count):
    class AgedOwnerMapper(Mapper[Owner]):
        table = "rel_owners"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(100), nullable=False)
        pugs = HasMany("Pug", foreign_key="owner_id", inverse="owner", order_by=("-age", "name"))

    class PlainPugMapper(Mapper[Pug]):
        table = "rel_pugs"
        id = Column(t.Integer, primary_key=True)
        name = Column(t.String(100), nullable=False)
        age = Column(t.Integer, default=0)
        owner = BelongsTo(Owner, foreign_key="owner_id", inverse="pugs")

    db = make_db(AgedOwnerMapper, PlainPugMapper)
    with db.session() as s:
        s.add(Owner("Tom", pugs=[Pug("b", age=1), Pug("a", age=1), Pug("c", age=5), Pug("d", age=0)]))
        s.add(Owner("Ann", pugs=[Pug("z", age=2), Pug("y", age=9)]))
    with db.session() as s:
        owners = s.query(Owner).order_by("name").include("pugs").all()
        assert [[p.name for p in o.pugs] for o in owners] == [["y", "z"], ["c", "a", "b", "d"]]
    with db.session() as s:
        owners = s.query(Owner).order_by("name").all()
        with count(s, 1):  # lazy, for the cohort, in the same order
            assert [p.name for p in owners[1].pugs] == ["c", "a", "b", "d"]
            assert [p.name for p in owners[0].pugs] == ["y", "z"]


def test_set_collection(backend, make_db, count):
    db = make_db(PostMapper, TagMapper)
    with db.session() as s:
        x, y = Tag("x"), Tag("y")
        post = Post("hello", tags={x, y})
        s.add(post)
        s.flush()
        assert x.post is post and y.post is post
    assert rows(backend, "SELECT label, post_id FROM {rel_tags} ORDER BY label") == [("x", post.id), ("y", post.id)]
    with db.session() as s:
        with count(s, 2):
            post = s.query(Post).include("tags").one()
        assert isinstance(post.tags, set)
        assert {tag.label for tag in post.tags} == {"x", "y"}
        assert all(tag.post is post for tag in post.tags)
        x = next(tag for tag in post.tags if tag.label == "x")
        post.tags.discard(x)  # no "orphan" cascade: the tag is detached, not deleted
        post.tags.add(Tag("z"))
        s.flush()
        assert x.post is None
    assert rows(backend, "SELECT label, post_id FROM {rel_tags} ORDER BY label") == [
        ("x", None),
        ("y", post.id),
        ("z", post.id),
    ]
    with db.session() as s:
        post = s.query(Post).one()
        assert isinstance(post.tags, set)  # lazily loaded collections are sets too
        assert {tag.label for tag in post.tags} == {"y", "z"}


# -- BelongsToMany through an association class with a payload ----------------------------------------


def test_association_append_creates_row_with_payload_default(backend, make_db):
    db = make_db(*LIBRARY)
    with db.session() as s:
        s.add_all([User("Ann"), Book("B1"), Book("B2")])
    with db.session() as s:
        ann = s.query(User).include("books", "user_books").one()
        b1, b2 = s.query(Book).order_by("title").all()
        ann.books.append(b1)
        ann.books.append(b2)
        s.flush()
        # The association objects are ordinary managed objects, in the loaded collection too.
        assert [(ub.book.title, ub.rating, ub.user is ann) for ub in ann.user_books] == [
            ("B1", 3, True),
            ("B2", 3, True),
        ]
        ub = ann.user_books[1]
        assert ub.id is not None and s.get(UserBook, ub.id) is ub
        ub.rating = 5
        s.flush()
    assert rows(backend, "SELECT user_id, book_id, rating FROM {rel_user_books} ORDER BY book_id") == [
        (ann.id, b1.id, 3),
        (ann.id, b2.id, 5),
    ]


def test_association_remove_deletes_the_row(backend, make_db):
    db = make_db(*LIBRARY)
    with db.session() as s:
        ann = User("Ann", books=[Book("B1"), Book("B2"), Book("B3")])
        s.add(ann)
    assert len(rows(backend, "SELECT id FROM {rel_user_books}")) == 3
    with db.session() as s:
        # Only the plain list is loaded: the association rows are not in the session.
        ann = s.query(User).include("books").one()
        assert [b.title for b in ann.books] == ["B1", "B2", "B3"]
        ann.books.remove(ann.books[0])
        s.flush()
    assert rows(backend, "SELECT b.title FROM {rel_user_books} ub JOIN {rel_books} b ON b.id = ub.book_id ORDER BY b.title") == [
        ("B2",),
        ("B3",),
    ]
    with db.session() as s:
        # Both views loaded: the held association object is deleted with its row.
        ann = s.query(User).include("books", "user_books").one()
        ub = next(x for x in ann.user_books if x.book.title == "B2")
        ann.books.remove(ub.book)
        s.flush()
        assert s.get(UserBook, ub.id) is None
        assoc_view = [x.book.title for x in ann.user_books]
    assert rows(backend, "SELECT b.title FROM {rel_user_books} ub JOIN {rel_books} b ON b.id = ub.book_id") == [("B3",)]
    assert len(rows(backend, "SELECT id FROM {rel_books}")) == 3  # the books themselves stay
    # The loaded association collection no longer shows the deleted association object.
    assert assoc_view == ["B3"]


def test_association_object_added_directly_shows_in_the_list_view(backend, make_db):
    db = make_db(*LIBRARY)
    with db.session() as s:
        s.add_all([User("Ann"), Book("B1")])
    with db.session() as s:
        ann = s.query(User).include("books", "user_books").one()
        b1 = s.query(Book).one()
        s.add(UserBook(user=ann, book=b1, rating=5))
        s.flush()
        assert [(x.book.title, x.rating) for x in ann.user_books] == [("B1", 5)]
        list_view = [b.title for b in ann.books]
    assert rows(backend, "SELECT user_id, book_id, rating FROM {rel_user_books}") == [(ann.id, b1.id, 5)]
    with db.session() as s:
        assert [b.title for b in s.query(User).include("books").one().books] == ["B1"]
    # In the session that added the association object, the loaded list view showed it too.
    assert list_view == ["B1"]


def test_same_pair_from_both_views_in_one_flush_is_one_row(backend, make_db):
    db = make_db(*LIBRARY)
    with db.session() as s:
        s.add_all([User("Ann"), Book("B1")])
    with db.session() as s:
        ann = s.query(User).include("books", "user_books").one()
        b1 = s.query(Book).one()
        ann.books.append(b1)
        ub = UserBook(user=ann, book=b1, rating=1)
        s.add(ub)
        s.flush()
        assert [b.title for b in ann.books] == ["B1"]
        assert ann.user_books == [ub] and ann.user_books[0] is ub
    assert rows(backend, "SELECT user_id, book_id, rating FROM {rel_user_books}") == [(ann.id, b1.id, 1)]
