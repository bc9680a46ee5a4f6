"""Relation semantics users rely on, on every backend: what a delete cascade takes, linking what
is linked already, junction rows of deleted objects, the collections of deleted parents, and
objects that belong to another open session."""

from __future__ import annotations

import logging
from decimal import Decimal

import attrs
import pytest

from domain.chinook.mappers import AlbumMapper, ArtistMapper, GenreMapper, MediaTypeMapper, PlaylistMapper, TrackMapper
from domain.chinook.model import Album, Artist, MediaType, Playlist, Track
from mapper import BelongsTo, BelongsToMany, Column, ForeignKey, HasMany, Mapper, errors
from mapper import types as t
from tests.rel_models import LIBRARY, PETS, Book, BookMapper, Owner, Pug, User, UserBook, UserMapper, rows

# -- parents and children whose cascade deletes, with each kind of key ---------------------------


@attrs.define
class Shelf:
    name: str
    books: list[Volume] = attrs.Factory(list)
    id: int | None = None


@attrs.define
class Volume:
    title: str
    shelf: Shelf | None = None
    id: int | None = None


class ShelfMapper(Mapper[Shelf]):
    table = "sem_shelves"
    id = Column(t.Integer, primary_key=True)
    name = Column(t.String(50), nullable=False)
    books = HasMany("Volume", foreign_key="shelf_id", inverse="shelf", cascade="save,delete", order_by="id")


def _volume_mapper(nullable: bool, rule: str | None) -> type[Mapper[Volume]]:
    class VolumeMapper(Mapper[Volume]):
        table = "sem_volumes"
        id = Column(t.Integer, primary_key=True)
        title = Column(t.String(50), nullable=False)
        shelf_id = Column(t.Integer, ForeignKey("sem_shelves.id", on_delete=rule), nullable=nullable)
        shelf = BelongsTo(Shelf, foreign_key="shelf_id", inverse="books")

    return VolumeMapper


def _shelf_with_three(db):
    with db.session() as s:
        shelf = Shelf("s", books=[Volume("a"), Volume("b"), Volume("c")])
        s.add(shelf)
    return shelf.id


def _volumes(backend):
    return rows(backend, "SELECT {title}, {shelf_id} FROM {sem_volumes} ORDER BY {id}")


def _take_out(s, how):
    """Load the shelf and take volume "a" out of it, by one side or the other."""
    if how == "reference":
        a = s.query(Volume).where(title="a").one()
        shelf = a.shelf
        a.shelf = None
        return shelf, a
    shelf = s.query(Shelf).include("books").one()
    a = shelf.books[0]
    shelf.books.remove(a)
    return shelf, a


# -- 1. a removed child is not deleted by its old parent's delete cascade ------------------------


@pytest.mark.parametrize("rule", [None, "CASCADE"])
@pytest.mark.parametrize("how", ["collection", "reference"])
@pytest.mark.parametrize("flushes", ["one flush", "two flushes"])
def test_child_taken_out_survives_its_old_parents_delete_cascade(backend, make_db, rule, how, flushes):
    db = make_db(ShelfMapper, _volume_mapper(True, rule))
    _shelf_with_three(db)
    with db.session() as s:
        shelf, a = _take_out(s, how)
        if flushes == "two flushes":
            s.flush()
        s.delete(shelf)
        s.flush()
        assert a.shelf is None
        assert s.get(Volume, a.id) is a
    assert _volumes(backend) == [("a", None)]
    assert rows(backend, "SELECT count(*) FROM {sem_shelves}") == [(0,)]


def test_child_taken_out_of_an_unloaded_collection_survives_the_delete_that_loads_it(backend, make_db, count):
    db = make_db(ShelfMapper, _volume_mapper(True, None))
    _shelf_with_three(db)
    with db.session() as s:
        a = s.query(Volume).where(title="a").one()
        shelf = s.query(Shelf).one()
        a.shelf = None
        s.delete(shelf)
        # Load the collection (no database cascade), detach "a", delete "b" and "c", delete the shelf.
        with count(s, 4):
            s.flush()
    assert _volumes(backend) == [("a", None)]


@pytest.mark.parametrize("how", ["collection", "reference"])
def test_child_taken_out_with_a_not_null_key_is_refused_naming_the_relation(backend, make_db, how):
    db = make_db(ShelfMapper, _volume_mapper(False, None))
    _shelf_with_three(db)
    before = _volumes(backend)
    with db.session() as s:
        shelf, a = _take_out(s, how)
        s.delete(shelf)
        with pytest.raises(errors.FlushError) as caught:
            s.flush()
        s.rollback()
    message = str(caught.value)
    assert "Shelf.books" in message and "sem_volumes.shelf_id is NOT NULL" in message and "'orphan'" in message
    assert _volumes(backend) == before


def test_child_taken_out_with_a_not_null_key_is_refused_without_a_delete(backend, make_db, count):
    db = make_db(ShelfMapper, _volume_mapper(False, None))
    _shelf_with_three(db)
    with db.session() as s:
        shelf, a = _take_out(s, "collection")
        with count(s, 0), pytest.raises(errors.FlushError, match="Shelf.books"):
            s.flush()
        s.rollback()
    assert [r[0] for r in _volumes(backend)] == ["a", "b", "c"]


# -- 2. linking what is already linked is a no-op ------------------------------------------------


def _linked_pair(db):
    with db.session() as s:
        user, book = User("ann"), Book("Dune")
        user.favorites.append(book)
        s.add(user)
    return user.id, book.id


def _favorites(backend):
    return rows(backend, "SELECT {user_id}, {book_id} FROM {rel_user_favorites}")


@pytest.mark.parametrize("side", ["favorites", "fans"])
def test_adding_a_pair_linked_long_ago_writes_nothing(backend, make_db, count, side):
    db = make_db(*LIBRARY)
    uid, bid = _linked_pair(db)
    with db.session() as s:
        user, book = s.get(User, uid), s.get(Book, bid)
        owner, other = (user, book) if side == "favorites" else (book, user)
        s.related(owner, side).add(other)
        with count(s, 1):  # the pair goes in as an INSERT that skips an existing key
            s.flush()
        assert s.related(owner, side).count() == 1
    assert _favorites(backend) == [(uid, bid)]


def test_adding_a_pair_flushed_earlier_in_the_session_writes_nothing(backend, make_db, count):
    db = make_db(*LIBRARY)
    with db.session() as s:
        user, book = User("ann"), Book("Dune")
        s.add_all([user, book])
        s.flush()
        s.related(user, "favorites").add(book)
        s.flush()
        s.related(user, "favorites").add(book)
        s.related(book, "fans").add(user)
        s.flush()
        assert s.related(user, "favorites").count() == 1
    assert _favorites(backend) == [(user.id, book.id)]


def test_appending_a_member_a_loaded_list_holds_sends_nothing(backend, make_db, count):
    db = make_db(*LIBRARY)
    uid, bid = _linked_pair(db)
    with db.session() as s:
        user = s.query(User).include("favorites").one()
        user.favorites.append(user.favorites[0])
        s.related(user, "favorites").add(user.favorites[0])
        with count(s, 0):
            s.flush()
    assert _favorites(backend) == [(uid, bid)]


def test_association_pair_linked_already_gets_no_second_association_row(backend, make_db, count):
    db = make_db(*LIBRARY)
    with db.session() as s:
        user, book = User("ann"), Book("Dune")
        s.add_all([user, book])
    with db.session() as s:
        user, book = s.get(User, user.id), s.get(Book, book.id)
        s.related(user, "books").add(book)
        with count(s, 2):  # is the pair linked? no: one INSERT of the association row
            s.flush()
        s.related(user, "books").add(book)  # held now: nothing to ask, nothing to write
        with count(s, 0):
            s.flush()
    with db.session() as s:
        user, book = s.get(User, user.id), s.get(Book, book.id)
        s.related(user, "books").add(book)  # linked in an earlier transaction
        with count(s, 1):
            s.flush()
        assert s.related(user, "books").count() == 1
    assert rows(backend, "SELECT {user_id}, {book_id}, {rating} FROM {rel_user_books}") == [(user.id, book.id, 3)]


# -- 3. deleting a linked object removes its junction rows first ---------------------------------


def _without_database_cascade(backend, table, first, first_ref, second, second_ref):
    """Recreate a two-column junction table with plain foreign keys (no ON DELETE rule)."""
    q = backend.q
    backend.raw(f"DROP TABLE {q(table)}")
    backend.raw(
        f"CREATE TABLE {q(table)} ({q(first)} INTEGER NOT NULL, {q(second)} INTEGER NOT NULL, "
        f"PRIMARY KEY ({q(first)}, {q(second)}), "
        f"FOREIGN KEY ({q(first)}) REFERENCES {q(first_ref)} ({q('id')}), "
        f"FOREIGN KEY ({q(second)}) REFERENCES {q(second_ref)} ({q('id')}))"
    )


@pytest.mark.parametrize("database_cascade", [True, False])
@pytest.mark.parametrize("side", ["source", "target"])
def test_deleting_a_linked_object_deletes_its_junction_rows_first(backend, make_db, count, caplog, database_cascade, side):
    db = make_db(*LIBRARY, echo=True)
    if not database_cascade:
        _without_database_cascade(backend, "rel_user_favorites", "user_id", "rel_users", "book_id", "rel_books")
        _without_database_cascade(backend, "rel_user_read", "user_id", "rel_users", "book_id", "rel_books")
    with db.session() as s:
        ann, bob, dune = User("ann"), User("bob"), Book("Dune")
        ann.favorites.append(dune)
        ann.read.append(dune)
        bob.favorites.append(dune)
        s.add_all([ann, bob])
    caplog.set_level(logging.INFO, logger="mapper.sql")
    with db.session() as s:
        doomed = s.get(Book, dune.id) if side == "target" else s.get(User, ann.id)
        s.delete(doomed)
        caplog.clear()
        s.flush()
    sent = [r.getMessage().split(" ")[0:3] for r in caplog.records if r.name == "mapper.sql"]
    deletes = [words[2].strip('`"') for words in sent if words[0] == "DELETE"]
    # Both ends link through the two junction tables and the association class UserBook.
    assert sorted(deletes[:-1]) == ["rel_user_books", "rel_user_favorites", "rel_user_read"]
    assert deletes[-1] == ("rel_books" if side == "target" else "rel_users")
    remaining = rows(backend, "SELECT {user_id}, {book_id} FROM {rel_user_favorites} ORDER BY {user_id}")
    assert remaining == ([] if side == "target" else [(bob.id, dune.id)])
    assert rows(backend, "SELECT count(*) FROM {rel_user_read}") == [(0,)]


def test_deleting_a_book_with_unheld_association_rows_and_no_database_rule(backend, make_db, count):
    class LooseUserBookMapper(Mapper[UserBook]):
        table = "rel_user_books"
        id = Column(t.Integer, primary_key=True)
        user_id = Column(t.Integer, ForeignKey("rel_users.id"), nullable=False)
        book_id = Column(t.Integer, ForeignKey("rel_books.id"), nullable=False)
        rating = Column(t.Integer, default=3)
        user = BelongsTo(User, foreign_key="user_id", inverse="user_books")
        book = BelongsTo(Book, foreign_key="book_id")

    from tests.rel_models import ProfileMapper

    db = make_db(UserMapper, ProfileMapper, BookMapper, LooseUserBookMapper)
    with db.session() as s:
        ann, dune, emma = User("ann"), Book("Dune"), Book("Emma")
        ann.user_books += [UserBook(book=dune, rating=5), UserBook(book=emma, rating=4)]
        s.add(ann)
    with db.session() as s:
        s.delete(s.get(Book, dune.id))
        # Junction rows of favorites and read, the association rows, then the book.
        with count(s, 4):
            s.flush()
    assert rows(backend, "SELECT {book_id}, {rating} FROM {rel_user_books}") == [(emma.id, 4)]
    assert rows(backend, "SELECT {title} FROM {rel_books}") == [("Emma",)]


def test_deleting_a_book_drops_it_from_loaded_collections_of_living_objects(backend, make_db):
    db = make_db(*LIBRARY)
    with db.session() as s:
        ann, dune, emma = User("ann"), Book("Dune"), Book("Emma")
        ann.favorites += [dune, emma]
        s.add(ann)
    with db.session() as s:
        ann = s.query(User).include("favorites").one()
        dune = next(b for b in ann.favorites if b.title == "Dune")
        s.delete(dune)
        s.flush()
        assert [b.title for b in ann.favorites] == ["Emma"]
        s.flush()  # the dropped member is no removal to write: nothing is sent
    assert len(_favorites(backend)) == 1


class CascadingArtistMapper(ArtistMapper):
    albums = HasMany(Album, foreign_key="artist_id", inverse="artist", order_by="id", cascade="all")


class CascadingAlbumMapper(AlbumMapper):
    tracks = HasMany(Track, foreign_key="album_id", inverse="album", order_by="id", cascade="all")


def test_chinook_artist_deleted_with_albums_and_tracks_that_sit_in_playlists(backend, make_db, count):
    db = make_db(CascadingArtistMapper, CascadingAlbumMapper, GenreMapper, MediaTypeMapper, TrackMapper, PlaylistMapper)
    q = backend.q
    # Chinook's own schema has no ON DELETE rule on playlist_track.
    backend.raw(f"DROP TABLE {q('playlist_track')}")
    backend.raw(
        f"CREATE TABLE {q('playlist_track')} ({q('playlist_id')} INTEGER NOT NULL, {q('track_id')} INTEGER NOT NULL, "
        f"PRIMARY KEY ({q('playlist_id')}, {q('track_id')}), "
        f"FOREIGN KEY ({q('playlist_id')}) REFERENCES {q('playlist')} ({q('playlist_id')}), "
        f"FOREIGN KEY ({q('track_id')}) REFERENCES {q('track')} ({q('track_id')}))"
    )
    mp3 = MediaType("MPEG audio file")

    def track(name: str) -> Track:
        return Track(name, 300_000, Decimal("0.99"), media_type=mp3)

    with db.session() as s:
        acdc = Artist("AC/DC", albums=[Album("Back in Black", tracks=[track("Hells Bells"), track("Shoot to Thrill")]),
                                       Album("Powerage", tracks=[track("Riff Raff")])])
        other = Artist("Aerosmith", albums=[Album("Toys", tracks=[track("Walk This Way")])])
        rock = Playlist("Rock", tracks=[acdc.albums[0].tracks[0], acdc.albums[1].tracks[0], other.albums[0].tracks[0]])
        s.add_all([acdc, other, rock])
    with db.session() as s:
        rock = s.query(Playlist).include("tracks").one()
        s.delete(s.get(Artist, acdc.id))
        # Albums (one query), their tracks (one query), the playlist rows of those tracks,
        # the tracks, the albums, the artist.
        with count(s, 6):
            s.flush()
        assert [tr.name for tr in rock.tracks] == ["Walk This Way"]
    assert rows(backend, "SELECT {name} FROM {artist}") == [("Aerosmith",)]
    assert rows(backend, "SELECT {title} FROM {album}") == [("Toys",)]
    assert rows(backend, "SELECT {name} FROM {track}") == [("Walk This Way",)]
    assert rows(backend, "SELECT {playlist_id}, {track_id} FROM {playlist_track}") == [(rock.id, other.albums[0].tracks[0].id)]


# -- 4. the loaded collection of a deleted parent --------------------------------------------------


def test_deleted_parent_keeps_its_collection_and_living_parents_drop_deleted_children(backend, make_db):
    db = make_db(*PETS)
    with db.session() as s:
        tom, ann = Owner("Tom", pugs=[Pug("Cody"), Pug("Doug")]), Owner("Ann", pugs=[Pug("Rex")])
        s.add_all([tom, ann])
    with db.session() as s:
        tom, ann = s.query(Owner).include("pugs").order_by("name").all()[::-1]
        cody, doug = tom.pugs
        rex = ann.pugs[0]
        s.delete(tom)  # cascade="all": Cody and Doug go with him
        s.delete(rex)
        s.flush()
        # The deleted parent's collection stays as it was: what went with it.
        assert [p.name for p in tom.pugs] == ["Cody", "Doug"]
        assert cody.owner is tom
        # A living parent drops its deleted child.
        assert ann.pugs == []
        assert s.get(Pug, cody.id) is None and s.get(Pug, rex.id) is None
    assert rows(backend, "SELECT count(*) FROM {rel_pugs}") == [(0,)]


# -- 7. an object that belongs to another open session -----------------------------------------


def test_adding_an_object_another_open_session_manages_is_refused(backend, make_db):
    db = make_db(*PETS)
    with db.session() as s:
        s.add(Owner("Tom"))
    first, second = db.session(), db.session()
    try:
        tom = first.query(Owner).one()
        new = Owner("Ann")
        first.add(new)
        for obj, what in ((tom, "Owner with key"), (new, "new Owner 'Ann'")):
            with pytest.raises(errors.SessionError, match=f"{what}.* is managed by another open session"):
                second.add(obj)
        assert second.query(Owner).count() == 1  # the refused adds left the session usable
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
    assert sorted(r[0] for r in rows(backend, "SELECT {name} FROM {rel_owners}")) == ["Ann", "Tom"]


def test_save_cascade_refuses_an_object_another_open_session_manages(backend, make_db):
    db = make_db(*PETS)
    with db.session() as s:
        s.add(Owner("Tom"))
    with db.session() as first, db.session() as second:
        tom = first.query(Owner).one()
        second.add(Pug("Rex", owner=tom))
        with pytest.raises(errors.SessionError, match="managed by another open session"):
            second.flush()
        second.rollback()
    assert rows(backend, "SELECT count(*) FROM {rel_owners}") == [(1,)]
    assert rows(backend, "SELECT count(*) FROM {rel_pugs}") == [(0,)]
