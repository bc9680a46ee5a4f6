"""The mapper demo: ``python -m domain`` (embedded SQLite) or ``python -m domain --db URL``.

It builds the schema of the seed scenarios, creates all their data in one unit of work,
reads it back with batched includes, uses relation accessors, updates a versioned row, stores
a value object (an order's shipping address) and deletes with a cascade, printing how many statements each step sent to the database.
Against a server (``--db``) it drops its tables at the end.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from mapper import Database, Session

from .mappers import ALL_MAPPERS, CategoryMapper, EmployeeMapper, OrderMapper
from .model import Animal, Cat, Dog, Shelter
from .model import (
    Address,
    Book,
    Category,
    Comment,
    Employee,
    Order,
    OrderItem,
    Owner,
    Product,
    Profile,
    Pug,
    Tutorial,
    User,
    UserBook,
)


class Steps:
    """Numbers the demo's steps and prints each with the statements it sent."""

    def __init__(self, echo: bool = False) -> None:
        self.number = 0
        #: With --echo the SQL is printed as it runs, so each step also announces its start.
        self.echo = echo

    @contextmanager
    def __call__(self, title: str, session: Session | None = None, noun: str = "queries") -> Iterator[list[str]]:
        """Run one step; lines appended to the yielded list are printed under its heading."""
        self.number += 1
        lines: list[str] = []
        before = session.query_count if session is not None else 0
        if self.echo:
            print(f"\n{self.number}. {title} ...", flush=True)
        try:
            yield lines
        except BaseException:
            print(f"\n{self.number}. {title}: FAILED", flush=True)
            raise
        if session is not None:
            n = session.query_count - before
            unit = noun if n != 1 else {"queries": "query", "statements": "statement"}.get(noun, noun)
            title = f"{title} ({n} {unit})"
        print(f"\n{self.number}. {title}")
        for line in lines:
            print(f"   {line}")


def _names(objs: Sequence[object], attr: str = "name") -> str:
    return ", ".join(str(getattr(o, attr)) for o in objs) or "-"


def create_data(s: Session) -> list[str]:
    """Every scenario's objects, added through their roots (the rest follows by cascade)."""
    # Owners and pugs: only the collection side is set; the flush fills pug.owner.
    tom = Owner("Tom", pugs=[Pug("Cody", age=3), Pug("Doug", age=2)])
    eve = Owner("Eve", pugs=[Pug("Biscuit", age=1)])

    # A tutorial and its comments.
    tutorial = Tutorial(
        "Getting started with mapper",
        body="Plain classes, separate mappers, one unit of work.",
        comments=[Comment("Very clear, thanks!"), Comment("Does it run on MariaDB?")],
    )

    # Users with a profile (one-to-one), books rated through UserBook, and two plain
    # many-to-many lists (favorites, read) through junction tables.
    dune, emma, ulysses, hyperion = Book("Dune"), Book("Emma"), Book("Ulysses"), Book("Hyperion")
    ann = User("ann", profile=Profile("Reads on the train"), favorites=[dune], read=[dune, emma, ulysses])
    ann.user_books = [UserBook(book=dune, rating=5), UserBook(book=emma, rating=4)]
    bob = User("bob", profile=Profile("Sci-fi only"), favorites=[emma, hyperion], read=[hyperion])
    bob.user_books = [UserBook(book=dune, rating=3)]

    # A category tree and its products.
    pets = Category("Pets")
    beds = Category("Beds", parent=pets)
    toys = Category("Toys", parent=pets)
    bed = Product("Pug bed", price=Decimal("39.90"), category=beds)
    chew = Product("Chew toy", price=Decimal("4.50"), category=toys)
    duck = Product("Squeaky duck", price=Decimal("3.20"), category=toys)

    # Orders with items that refer to the products.
    orders = [
        Order("ann", items=[OrderItem(bed, quantity=1), OrderItem(chew, quantity=3)]),
        Order("bob", items=[OrderItem(duck, quantity=2), OrderItem(chew, quantity=1)]),
    ]

    # Employees: only the to-one side (manager) is set; the flush fills manager.reports.
    grace = Employee("Grace")
    ada = Employee("Ada", manager=grace)
    alan = Employee("Alan", manager=grace)
    linus = Employee("Linus", manager=ada)

    owners = [tom, eve]
    users = [ann, bob]
    employees = [grace, ada, alan, linus]
    s.add_all([*owners, tutorial, *users, pets, *orders, *employees])
    s.flush()
    sample: list[Any] = [*owners, *tom.pugs, tutorial, *tutorial.comments, *users, dune, *ann.user_books, bed, *orders[0].items, linus]
    ids_set = all(o.id is not None for o in sample)
    return [
        f"{len(owners)} owners with {sum(len(o.pugs) for o in owners)} pugs",
        f"a tutorial with {len(tutorial.comments)} comments",
        f"{len(users)} users with profiles, {sum(len(u.user_books) for u in users)} ratings, favorites and read lists of 4 books",
        "a category tree of 3 with 3 products",
        f"{len(orders)} orders with {sum(len(o.items) for o in orders)} items",
        f"{len(employees)} employees under one manager chain",
        f"every object has its generated id: {ids_set}",
    ]


def run(db: Database, step: Steps) -> None:
    """The demo proper, on a database whose schema exists."""
    # -- write everything in one unit of work ----------------------------------------------------
    with db.session() as s, step("Create every scenario in one unit of work", s, "statements") as out:
        out.extend(create_data(s))
        out.append("one session, one flush: the statements grow with the tables touched, not the rows")

    # -- read back with batched includes ---------------------------------------------------------
    with db.session() as s:
        with step("Read owners with their pugs", s) as out:
            owners = s.query(Owner).include("pugs").order_by("name").all()
            for owner in owners:
                pugs = ", ".join(f"{p.name} ({p.age})" for p in owner.pugs)
                out.append(f"{owner.name}: {pugs}")
            out.append(f"each pug knows its owner: {all(p.owner is o for o in owners for p in o.pugs)}")

        with step("Read orders with their items and products", s) as out:
            for order in s.query(Order).include("items.product").order_by("id").all():
                lines = [(i.quantity, i.product) for i in order.items if i.product is not None]
                total = sum((quantity * product.price for quantity, product in lines), Decimal(0))
                items = ", ".join(f"{quantity} x {product.name}" for quantity, product in lines)
                out.append(f"order #{order.id} for {order.customer}: {items} = {total}")

        with step("Read users with profile, ratings and favorites", s) as out:
            users = s.query(User).include("profile", "user_books.book", "favorites").order_by("name").all()
            for user in users:
                bio = user.profile.bio if user.profile is not None else "-"
                rated = ", ".join(f"{ub.book.title} {ub.rating}/5" for ub in user.user_books if ub.book is not None)
                out.append(f"{user.name} ({bio}): rated {rated}; favorites {_names(user.favorites, 'title')}")

        with step("Read the category tree with its products (self-reference)", s) as out:
            roots = (
                s.query(Category)
                .where(CategoryMapper.parent_id.is_(None))
                .include("children.products")
                .all()
            )
            for root in roots:
                out.append(root.name)
                for child in root.children:
                    prices = ", ".join(f"{p.name} {p.price}" for p in child.products) or "-"
                    out.append(f"  {child.name}: {prices}")

        with step("Read the org chart two levels deep (self-reference)", s) as out:
            bosses = s.query(Employee).where(EmployeeMapper.manager_id.is_(None)).include("reports.reports").all()
            for boss in bosses:
                out.append(boss.name)
                for report in boss.reports:
                    out.append(f"  {report.name}: manages {_names(report.reports)}")

    # -- accessors: read and change a relation without loading it --------------------------------
    with db.session() as s:
        ann = s.query(User).where(name="ann").one()
        emma = s.query(Book).where(title="Emma").one()
        dune = s.query(Book).where(title="Dune").one()
        with step("Use the accessor of ann's favorites", s, "statements") as out:
            favorites = s.related(ann, "favorites")
            out.append(f"all() = [{_names(favorites.all(), 'title')}], count() = {favorites.count()}")
            out.append(f"has(Emma) = {favorites.has(emma)}")
            favorites.add(emma)
            out.append(f"add(Emma)     -> count() = {favorites.count()}, has(Emma) = {favorites.has(emma)}")
            favorites.remove(dune)
            out.append(f"remove(Dune)  -> all() = [{_names(favorites.all(), 'title')}]")

        tutorial = s.query(Tutorial).one()
        with step("Create a comment through the tutorial's accessor", s, "statements") as out:
            comments = s.related(tutorial, "comments")
            comment = comments.create(text="Added through s.related(tutorial, 'comments')")
            s.flush()
            out.append(f"new comment #{comment.id}; the tutorial has {comments.count()} comments now")

    # -- an optimistic-lock update and a cascade delete ------------------------------------------
    with db.session() as s:
        with step("Ship an order (its version column is checked and bumped)", s, "statements") as out:
            order = s.query(Order).where(customer="ann").one()
            order.status = "shipped"
            s.flush()
            version = s.execute("SELECT version FROM orders WHERE id = :id", {"id": order.id})[0][0]
            out.append(f"order #{order.id} is {order.status}, version {version}")

        with step("Give an order a shipping address (a value object stored in three columns)", s, "statements") as out:
            order = s.query(Order).where(customer="bob").one()
            order.shipping = Address("1 Pug Lane", "Leeds", "LS1 4AP")
            s.flush()  # one UPDATE of ship_street, ship_city, ship_postcode (and the version)
            out.append(f"order #{order.id} ships to {order.shipping.street}, {order.shipping.city}")
            order.shipping = Address("1 Pug Lane", "Leeds", "LS1 4AP")  # an equal value
            before = s.query_count
            s.flush()
            out.append(f"an equal address written again: {s.query_count - before} statements")
            leeds = s.query(Order).where(OrderMapper.shipping.city == "Leeds").all()
            out.append(f"orders shipping to Leeds: {[f'#{o.id} {o.customer}' for o in leeds]}")
            unshipped = s.query(Order).where(OrderMapper.shipping == None).count()  # noqa: E711
            out.append(f"orders without an address (all three columns NULL): {unshipped}")

        with step("Delete an owner; the cascade deletes the pugs", s, "statements") as out:
            tom = s.query(Owner).where(name="Tom").include("pugs").one()
            before = s.query(Pug).count()
            names = _names(tom.pugs)
            s.delete(tom)  # cascade="all" on OwnerMapper.pugs: the pugs are deleted with him
            s.flush()
            after = s.query(Pug).count()
            out.append(f"deleted {tom.name} and his pugs {names}: pugs in the database {before} -> {after}")
            out.append(f"the deleted {tom.name}'s loaded pugs still list what went with him: [{_names(tom.pugs)}]")

    # -- a class hierarchy in one table ----------------------------------------------------------
    inheritance(db, step)


def inheritance(db: Database, step: Steps) -> None:
    """Dogs and cats in one table: each INSERT writes its class's discriminator, and reads
    build each row with its own class."""
    with db.session() as s, step("Take in dogs and cats (one table, told apart by its kind column)", s, "statements") as out:
        s.add(Shelter("Harbour", animals=[Dog("Rex", breed="boxer"), Cat("Misty"), Dog("Bella", breed="pug")]))
        s.flush()
        rows = s.execute("SELECT kind, name FROM animals ORDER BY id")
        out.append("rows of the animals table: " + ", ".join(f"{kind} {name}" for kind, name in rows))

    with db.session() as s, step("Read the shelter's animals back as dogs and cats", s) as out:
        harbour = s.query(Shelter).include("animals").one()
        for animal in harbour.animals:
            detail = f"breed {animal.breed}" if isinstance(animal, Dog) else f"indoor {animal.indoor}" if isinstance(animal, Cat) else "-"
            out.append(f"{animal.name}: a {type(animal).__name__}, {detail}")
        dogs = s.query(Dog).order_by("name").all()
        out.append(f"query(Dog) filters by kind: {_names(dogs)}")
        out.append(f"get(Animal, id) and get(Dog, id) give the same object: {s.get(Animal, dogs[0].id) is s.get(Dog, dogs[0].id)}")
        misty = next(a for a in harbour.animals if isinstance(a, Cat))
        out.append(f"a cat is no dog: get(Dog, {misty.id}) = {s.get(Dog, misty.id)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m domain",
        description="The mapper demo: the seed scenarios, written and read back with statement counts.",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help=(
            "database URL, e.g. postgresql://postgres@127.0.0.1:5432/test or "
            "mysql://root@127.0.0.1:3306/test (default: SQLite in a temporary directory)"
        ),
    )
    parser.add_argument("--echo", action="store_true", help="print every SQL statement as it is sent")
    parser.add_argument(
        "--reset",
        action="store_true",
        help="drop the demo's tables first if they already exist (for example after an interrupted run)",
    )
    args = parser.parse_args(argv)

    if args.echo:
        logging.basicConfig(level=logging.WARNING, format="      sql: %(message)s", stream=sys.stdout)
        logging.getLogger("mapper.sql").setLevel(logging.INFO)

    with tempfile.TemporaryDirectory(prefix="mapper-demo-") as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'demo.db'}"
        server = args.db is not None and not args.db.startswith("sqlite")
        db = Database(url, mappers=ALL_MAPPERS, echo=args.echo)
        try:
            print(f"mapper demo on {url}")
            return _run_with_schema(db, url, server, args.reset, Steps(echo=args.echo))
        finally:
            db.close()


def _run_with_schema(db: Database, url: str, server: bool, reset: bool, step: Steps) -> int:
    if reset:
        db.drop_all()
    clash = sorted(set(db.registry.tables) & _existing_tables(db, url))
    if clash:
        print(
            f"The tables {', '.join(clash)} already exist in this database and the demo will not "
            "touch them. Rerun with --reset to drop them first (their rows are lost).",
            file=sys.stderr,
        )
        return 1
    with step("Create the schema") as out:
        created = db.create_all()
        out.append(f"{len(created)} tables: {', '.join(sorted(created))}")
    try:
        run(db, step)
    finally:
        if server:
            db.drop_all()
            print(f"\n{step.number + 1}. Drop the demo's tables")
    print("\ndone.")
    return 0


#: Table names of the current database/schema, by URL scheme.
_TABLES_SQL = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgresql": "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
    "mysql": "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
}


def _existing_tables(db: Database, url: str) -> set[str]:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    scheme = {"postgres": "postgresql", "mariadb": "mysql"}.get(scheme, scheme)
    sql = _TABLES_SQL.get(scheme)
    if sql is None:
        return set()
    with db.session() as s:
        return {str(r[0]) for r in s.execute(sql)}


if __name__ == "__main__":
    raise SystemExit(main())
