"""The ten benchmark workloads (plus W7q): sizes, seeding and verification.

Each workload has a seed step (untimed: empties the benchmark tables and inserts the rows the
workload starts from, with plain SQL on the harness's own connection) and a verify step
(untimed: runs after every run of every system). Verification reads the database back with
plain SQL and inspects the objects the system returned, so a system that skips work, builds
fewer objects, leaves a relation unwired or writes the wrong rows fails loudly.

The timed part lives in the systems (``benchmarks/systems``): one method per workload, same
name on every system (``w1`` ... ``w10``, ``w7q``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import schema
from .backends import Backend, analyze, clear_tables

__all__ = ["WORKLOADS", "Workload", "VerificationError", "sizes_for", "build_owner_graph"]


class VerificationError(AssertionError):
    """A system's run did not do the work the workload asks for."""


# -- sizes ---------------------------------------------------------------------------------------

FULL: dict[str, dict[str, int]] = {
    "W1": {"owners": 2000, "pugs_each": 5},
    "W2": {"owners": 10000, "pugs_each": 5},  # 50,000 pugs
    "W3": {"owners": 6000, "pugs_each": 5},  # 30,000 pugs
    "W4": {"orders": 4000, "items_each": 5, "products": 200},
    "W5": {"users": 4000, "links_each": 5, "books": 1000},
    "W6": {"owners": 2000, "pugs_each": 5},  # 10,000 pugs updated
    "W7": {"owners": 2000, "pugs_each": 5, "delete": 1000},
    "W7q": {"owners": 2000, "pugs_each": 5, "delete": 1000},
    "W8": {"owners": 1000, "pugs_each": 5, "lookups": 10000},
    "W9": {"owners": 1000, "pugs_each": 5},
    "W10": {"owners": 1000, "rows": 100000},
}


def sizes_for(key: str, quick: bool) -> dict[str, int]:
    """The workload's sizes; ``quick`` divides every count by 10 (per-parent counts stay)."""
    sizes = dict(FULL[key])
    if quick:
        for k, v in sizes.items():
            if not k.endswith("_each"):
                sizes[k] = max(1, v // 10)
    return sizes


# -- deterministic data --------------------------------------------------------------------------


def owner_name(i: int) -> str:
    return f"owner-{i:05d}"


def pug_row(i: int, k: int) -> tuple[str, int]:
    return f"pug-{i:05d}-{k}", (i + k) % 15


def item_product(i: int, k: int, products: int) -> int:
    return (i * 7 + k * 41) % products


def link_book(i: int, k: int, books: int) -> int:
    # 211 * k mod books is distinct for k < 5 whenever books is 1,000 or 100: no duplicate links.
    return (i * 7 + k * 211) % books


def build_owner_graph(classes: Any, owners: int, pugs_each: int) -> list[Any]:
    """W1's objects: the same constructor calls for every system (on its own classes)."""
    Owner, Pug = classes.Owner, classes.Pug
    out = []
    for i in range(owners):
        pugs = []
        for k in range(pugs_each):
            name, age = pug_row(i, k)
            pugs.append(Pug(name, age))
        out.append(Owner(owner_name(i), pugs))
    return out


# -- the harness connection ----------------------------------------------------------------------


class Admin:
    """Plain SQL for seeding and checking, on a connection of its own."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.conn = backend.connect()

    def close(self) -> None:
        self.conn.close()

    def fetchall(self, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
        b = self.backend
        cur = self.conn.cursor()
        try:
            b.begin(self.conn)
            cur.execute(sql.replace("?", b.ph), params)
            rows = [tuple(r) for r in cur.fetchall()]
        finally:
            cur.close()
            b.commit(self.conn)  # never leave a read transaction (or a metadata lock) open
        return rows

    def scalar(self, sql: str, params: Any = ()) -> Any:
        return self.fetchall(sql, params)[0][0]

    def insert_many(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        b = self.backend
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([b.ph] * len(columns))})"
        cur = self.conn.cursor()
        try:
            b.begin(self.conn)
            step = 5000
            for i in range(0, len(rows), step):
                cur.executemany(sql, rows[i : i + step])
            b.commit(self.conn)
        finally:
            cur.close()

    def ids(self, table: str) -> list[int]:
        return [r[0] for r in self.fetchall(f"SELECT id FROM {table} ORDER BY id")]

    def clear(self) -> None:
        clear_tables(self.backend, self.conn)

    def analyze(self, *tables: str) -> None:
        analyze(self.backend, self.conn, tables)


# -- seeding ---------------------------------------------------------------------------------------


def seed_owners(admin: Admin, owners: int, pugs_each: int) -> list[int]:
    """``owners`` owners with ``pugs_each`` pugs each; returns the owner ids in creation order."""
    admin.clear()
    admin.insert_many(schema.OWNERS, ["name"], [(owner_name(i),) for i in range(owners)])
    ids = admin.ids(schema.OWNERS)
    rows = []
    for i, oid in enumerate(ids):
        for k in range(pugs_each):
            name, age = pug_row(i, k)
            rows.append((name, age, oid))
    admin.insert_many(schema.PUGS, ["name", "age", "owner_id"], rows)
    admin.analyze(schema.OWNERS, schema.PUGS)
    return ids


def seed_orders(admin: Admin, orders: int, items_each: int, products: int) -> None:
    admin.clear()
    admin.insert_many(schema.PRODUCTS, ["name", "price"], [(f"product-{j:03d}", 100 + j) for j in range(products)])
    pids = admin.ids(schema.PRODUCTS)
    admin.insert_many(schema.ORDERS, ["customer", "status"], [(f"customer-{i:05d}", "open") for i in range(orders)])
    oids = admin.ids(schema.ORDERS)
    rows = []
    for i, oid in enumerate(oids):
        for k in range(items_each):
            rows.append((oid, pids[item_product(i, k, products)], 1 + (i + k) % 9))
    admin.insert_many(schema.ORDER_ITEMS, ["order_id", "product_id", "quantity"], rows)
    admin.analyze(schema.PRODUCTS, schema.ORDERS, schema.ORDER_ITEMS)


def seed_users(admin: Admin, users: int, links_each: int, books: int) -> None:
    admin.clear()
    admin.insert_many(schema.BOOKS, ["title"], [(f"book-{j:04d}",) for j in range(books)])
    bids = admin.ids(schema.BOOKS)
    admin.insert_many(schema.USERS, ["name"], [(f"user-{i:05d}",) for i in range(users)])
    uids = admin.ids(schema.USERS)
    rows = []
    for i, uid in enumerate(uids):
        for k in range(links_each):
            rows.append((uid, bids[link_book(i, k, books)], 1 + (i + k) % 5))
    admin.insert_many(schema.USER_BOOKS, ["user_id", "book_id", "rating"], rows)
    admin.analyze(schema.BOOKS, schema.USERS, schema.USER_BOOKS)


# -- checking ----------------------------------------------------------------------------------------


def fail(system: str, key: str, msg: str) -> None:
    raise VerificationError(f"{key} [{system}]: {msg}")


def expect(cond: bool, system: str, key: str, msg: str) -> None:
    if not cond:
        fail(system, key, msg)


def db_pugs(admin: Admin) -> dict[int, tuple[str, int, int | None]]:
    return {r[0]: (r[1], r[2], r[3]) for r in admin.fetchall(f"SELECT id, name, age, owner_id FROM {schema.PUGS}")}


def db_owners(admin: Admin) -> dict[int, str]:
    return {r[0]: r[1] for r in admin.fetchall(f"SELECT id, name FROM {schema.OWNERS}")}


def check_owner_graph(
    admin: Admin, system: Any, key: str, owners: Any, *, n_owners: int, pugs_each: int, loaded_pugs: bool = True
) -> None:
    """Owners (and, if ``loaded_pugs``, their pugs) match the database row for row, both sides wired."""
    name = system.name
    expect(isinstance(owners, list), name, key, f"expected a list of owners, got {type(owners).__name__}")
    expect(len(owners) == n_owners, name, key, f"{len(owners)} owner objects, expected {n_owners}")
    Owner, Pug = system.classes.Owner, system.classes.Pug
    dbo = db_owners(admin)
    dbp = db_pugs(admin)
    by_owner: dict[int, list[int]] = {}
    for pid in sorted(dbp):
        by_owner.setdefault(dbp[pid][2], []).append(pid)  # type: ignore[arg-type]
    seen: set[int] = set()
    npugs = 0
    for o in owners:
        expect(type(o) is Owner, name, key, f"got a {type(o).__name__}, not an Owner")
        expect(o.id in dbo, name, key, f"owner id {o.id!r} is not in the database")
        expect(o.id not in seen, name, key, f"owner {o.id} returned twice")
        seen.add(o.id)
        expect(o.name == dbo[o.id], name, key, f"owner {o.id} name {o.name!r} != {dbo[o.id]!r}")
        if not loaded_pugs:
            continue
        pugs = list(o.pugs)
        want = by_owner.get(o.id, [])
        expect(len(want) == pugs_each, name, key, f"owner {o.id} has {len(want)} pugs in the database, expected {pugs_each}")
        got = [p.id for p in pugs]
        expect(got == want, name, key, f"owner {o.id} pugs {got} != database {want} (in id order)")
        for p in pugs:
            expect(type(p) is Pug, name, key, f"got a {type(p).__name__}, not a Pug")
            row = dbp[p.id]
            expect((p.name, p.age) == row[:2], name, key, f"pug {p.id} is {(p.name, p.age)}, database has {row[:2]}")
            expect(system.refers_to(p, "owner", o), name, key, f"pug {p.id}.owner is not its owner object")
        npugs += len(pugs)
    if loaded_pugs:
        expect(npugs == n_owners * pugs_each, name, key, f"{npugs} pug objects, expected {n_owners * pugs_each}")


def check_counts(admin: Admin, system: Any, key: str, **want: int) -> None:
    for table, n in want.items():
        got = admin.scalar(f"SELECT count(*) FROM {schema.PREFIX}{table}")
        expect(got == n, system.name, key, f"{schema.PREFIX}{table} has {got} rows, expected {n}")


# -- the workloads ---------------------------------------------------------------------------------


@dataclass
class Workload:
    key: str
    title: str
    describe: Callable[[dict[str, int]], str]
    #: seed(admin, sizes) -> context passed to the systems and to verify.
    seed: Callable[[Admin, dict[str, int]], dict[str, Any]]
    #: verify(admin, system, ctx, output)
    verify: Callable[[Admin, Any, dict[str, Any], Any], None]
    #: True when a run changes the database: the seed runs again before every timed run.
    mutates: bool = False
    notes: list[str] = field(default_factory=list)


# W1 -------------------------------------------------------------------------------------------


def _seed_w1(admin: Admin, s: dict[str, int]) -> dict[str, Any]:
    admin.clear()
    return {"sizes": s}


def _verify_w1(admin: Admin, system: Any, ctx: dict[str, Any], out: Any) -> None:
    s = ctx["sizes"]
    check_counts(admin, system, "W1", owners=s["owners"], pugs=s["owners"] * s["pugs_each"])
    check_owner_graph(admin, system, "W1", out, n_owners=s["owners"], pugs_each=s["pugs_each"])
    dbo = db_owners(admin)
    for i, o in enumerate(out):
        expect(o.name == owner_name(i), system.name, "W1", f"owner {i} came back as {o.name!r}")
        for k, p in enumerate(o.pugs):
            expect((p.name, p.age) == pug_row(i, k), system.name, "W1", f"pug {p.id} is {(p.name, p.age)}")
    expect(len(dbo) == len(out), system.name, "W1", "owner rows and objects differ")


# W2 -------------------------------------------------------------------------------------------


def _seed_owner_graph(admin: Admin, s: dict[str, int]) -> dict[str, Any]:
    ids = seed_owners(admin, s["owners"], s["pugs_each"])
    return {"sizes": s, "owner_ids": ids}


def _verify_w2(admin: Admin, system: Any, ctx: dict[str, Any], out: Any) -> None:
    s = ctx["sizes"]
    n = s["owners"] * s["pugs_each"]
    name = system.name
    expect(isinstance(out, list), name, "W2", "expected a list of pugs")
    expect(len(out) == n, name, "W2", f"{len(out)} pug objects, expected {n}")
    dbp = db_pugs(admin)
    Pug = system.classes.Pug
    prev = 0
    for p in out:
        expect(type(p) is Pug, name, "W2", f"got a {type(p).__name__}, not a Pug")
        row = dbp.get(p.id)
        expect(row is not None and (p.name, p.age) == row[:2], name, "W2", f"pug {p.id} is {(p.name, p.age)}, db {row}")
        expect(p.id > prev, name, "W2", "pugs not in id order")
        prev = p.id
    check_counts(admin, system, "W2", owners=s["owners"], pugs=n)


# W3 / W9 --------------------------------------------------------------------------------------


def _verify_w3(admin: Admin, system: Any, ctx: dict[str, Any], out: Any, key: str = "W3") -> None:
    s = ctx["sizes"]
    check_owner_graph(admin, system, key, out, n_owners=s["owners"], pugs_each=s["pugs_each"])
    expect([o.id for o in out] == ctx["owner_ids"], system.name, key, "owners not in id order")
    check_counts(admin, system, key, owners=s["owners"], pugs=s["owners"] * s["pugs_each"])


def _verify_w9(admin: Admin, system: Any, ctx: dict[str, Any], out: Any) -> None:
    _verify_w3(admin, system, ctx, out, "W9")


# W4 -------------------------------------------------------------------------------------------


def _seed_w4(admin: Admin, s: dict[str, int]) -> dict[str, Any]:
    seed_orders(admin, s["orders"], s["items_each"], s["products"])
    return {"sizes": s}


def _verify_w4(admin: Admin, system: Any, ctx: dict[str, Any], out: Any) -> None:
    s = ctx["sizes"]
    name = system.name
    C = system.classes
    expect(isinstance(out, list) and len(out) == s["orders"], name, "W4", f"{len(out)} orders, expected {s['orders']}")
    orders = {r[0]: r[1:] for r in admin.fetchall(f"SELECT id, customer, status FROM {schema.ORDERS}")}
    items: dict[int, list[tuple[Any, ...]]] = {}
    for r in admin.fetchall(f"SELECT id, order_id, product_id, quantity FROM {schema.ORDER_ITEMS} ORDER BY id"):
        items.setdefault(r[1], []).append(r)
    products = {r[0]: r[1:] for r in admin.fetchall(f"SELECT id, name, price FROM {schema.PRODUCTS}")}
    product_objs: dict[int, Any] = {}
    nitems = 0
    prev = 0
    for o in out:
        expect(type(o) is C.Order, name, "W4", f"got a {type(o).__name__}, not an Order")
        expect(o.id > prev, name, "W4", "orders not in id order")
        prev = o.id
        expect((o.customer, o.status) == orders[o.id], name, "W4", f"order {o.id} is {(o.customer, o.status)}")
        want = items.get(o.id, [])
        got = list(o.items)
        expect([i.id for i in got] == [r[0] for r in want], name, "W4", f"order {o.id} items {[i.id for i in got]} != db")
        for it, row in zip(got, want):
            expect(type(it) is C.OrderItem, name, "W4", f"got a {type(it).__name__}, not an OrderItem")
            expect(it.quantity == row[3], name, "W4", f"item {it.id} quantity {it.quantity} != {row[3]}")
            expect(system.refers_to(it, "order", o), name, "W4", f"item {it.id}.order is not its order object")
            p = it.product
            expect(type(p) is C.Product, name, "W4", f"item {it.id}.product is a {type(p).__name__}, not a loaded Product")
            expect(p.id == row[2], name, "W4", f"item {it.id}.product is {p.id}, db says {row[2]}")
            expect((p.name, p.price) == products[p.id], name, "W4", f"product {p.id} is {(p.name, p.price)}")
            seen = product_objs.setdefault(p.id, p)
            expect(seen is p, name, "W4", f"product {p.id} was built twice (no identity map)")
        nitems += len(got)
    expect(nitems == s["orders"] * s["items_each"], name, "W4", f"{nitems} items, expected {s['orders'] * s['items_each']}")
    expect(len(product_objs) == min(s["products"], nitems), name, "W4", f"{len(product_objs)} distinct products")


# W5 -------------------------------------------------------------------------------------------


def _seed_w5(admin: Admin, s: dict[str, int]) -> dict[str, Any]:
    seed_users(admin, s["users"], s["links_each"], s["books"])
    return {"sizes": s}


def _verify_w5(admin: Admin, system: Any, ctx: dict[str, Any], out: Any) -> None:
    s = ctx["sizes"]
    name = system.name
    C = system.classes
    expect(isinstance(out, list) and len(out) == s["users"], name, "W5", f"{len(out)} users, expected {s['users']}")
    users = {r[0]: r[1] for r in admin.fetchall(f"SELECT id, name FROM {schema.USERS}")}
    links: dict[int, list[tuple[Any, ...]]] = {}
    for r in admin.fetchall(f"SELECT id, user_id, book_id, rating FROM {schema.USER_BOOKS} ORDER BY id"):
        links.setdefault(r[1], []).append(r)
    books = {r[0]: r[1] for r in admin.fetchall(f"SELECT id, title FROM {schema.BOOKS}")}
    book_objs: dict[int, Any] = {}
    nlinks = 0
    prev = 0
    for u in out:
        expect(type(u) is C.User, name, "W5", f"got a {type(u).__name__}, not a User")
        expect(u.id > prev, name, "W5", "users not in id order")
        prev = u.id
        expect(u.name == users[u.id], name, "W5", f"user {u.id} name {u.name!r}")
        want = links.get(u.id, [])
        got = list(u.user_books)
        expect([x.id for x in got] == [r[0] for r in want], name, "W5", f"user {u.id} links differ from the database")
        for ub, row in zip(got, want):
            expect(type(ub) is C.UserBook, name, "W5", f"got a {type(ub).__name__}, not a UserBook")
            expect(ub.rating == row[3], name, "W5", f"link {ub.id} rating {ub.rating} != {row[3]}")
            expect(system.refers_to(ub, "user", u), name, "W5", f"link {ub.id}.user is not its user object")
            b = ub.book
            expect(type(b) is C.Book, name, "W5", f"link {ub.id}.book is a {type(b).__name__}, not a loaded Book")
            expect(b.id == row[2] and b.title == books[b.id], name, "W5", f"link {ub.id}.book is {b.id} {b.title!r}")
            seen = book_objs.setdefault(b.id, b)
            expect(seen is b, name, "W5", f"book {b.id} was built twice (no identity map)")
        nlinks += len(got)
    expect(nlinks == s["users"] * s["links_each"], name, "W5", f"{nlinks} links, expected {s['users'] * s['links_each']}")
    expect(len(book_objs) == min(s["books"], nlinks), name, "W5", f"{len(book_objs)} distinct books")


# W6 -------------------------------------------------------------------------------------------


def _verify_w6(admin: Admin, system: Any, ctx: dict[str, Any], out: Any) -> None:
    s = ctx["sizes"]
    name = system.name
    n = s["owners"] * s["pugs_each"]
    expect(isinstance(out, list) and len(out) == n, name, "W6", f"{len(out)} pugs updated, expected {n}")
    dbp = db_pugs(admin)
    ids = ctx["owner_ids"]
    expected: dict[int, int] = {}
    # The seed gave the k-th pug of the i-th owner age pug_row(i, k)[1]; the run adds one.
    index = {oid: i for i, oid in enumerate(ids)}
    per_owner: dict[int, int] = {}
    for pid in sorted(dbp):
        oid = int(dbp[pid][2] or 0)
        k = per_owner.get(oid, 0)
        per_owner[oid] = k + 1
        expected[pid] = pug_row(index[oid], k)[1] + 1
    bad = [pid for pid, (_, age, _) in dbp.items() if age != expected[pid]]
    expect(not bad, name, "W6", f"{len(bad)} pugs have the wrong age in the database (e.g. id {bad[:3]})")
    seen = set()
    for p in out:
        expect(type(p) is system.classes.Pug, name, "W6", f"got a {type(p).__name__}, not a Pug")
        expect(p.age == expected.get(p.id), name, "W6", f"pug {p.id} object age {p.age} != {expected.get(p.id)}")
        seen.add(p.id)
    expect(len(seen) == n, name, "W6", "duplicate pugs in the output")
    check_counts(admin, system, "W6", owners=s["owners"], pugs=n)


# W7 / W7q -------------------------------------------------------------------------------------


def _seed_w7(admin: Admin, s: dict[str, int]) -> dict[str, Any]:
    ids = seed_owners(admin, s["owners"], s["pugs_each"])
    step = max(1, len(ids) // s["delete"])
    victims = ids[::step][: s["delete"]]  # every other owner: not one contiguous key range
    return {"sizes": s, "owner_ids": ids, "victims": victims}


def _verify_w7(admin: Admin, system: Any, ctx: dict[str, Any], out: Any, key: str = "W7") -> None:
    s = ctx["sizes"]
    name = system.name
    victims = set(ctx["victims"])
    expect(out == len(victims), name, key, f"reported {out!r} owners deleted, expected {len(victims)}")
    left = s["owners"] - len(victims)
    check_counts(admin, system, key, owners=left, pugs=left * s["pugs_each"])
    dbo = db_owners(admin)
    expect(not victims & set(dbo), name, key, "a deleted owner is still in the database")
    orphans = admin.scalar(
        f"SELECT count(*) FROM {schema.PUGS} p LEFT JOIN {schema.OWNERS} o ON o.id = p.owner_id WHERE o.id IS NULL"
    )
    expect(orphans == 0, name, key, f"{orphans} pugs survived their owner")


def _verify_w7q(admin: Admin, system: Any, ctx: dict[str, Any], out: Any) -> None:
    _verify_w7(admin, system, ctx, out, "W7q")


# W8 -------------------------------------------------------------------------------------------


def _seed_w8(admin: Admin, s: dict[str, int]) -> dict[str, Any]:
    ids = seed_owners(admin, s["owners"], s["pugs_each"])
    keys = [ids[i % len(ids)] for i in range(s["lookups"])]
    random.Random(8).shuffle(keys)
    return {"sizes": s, "owner_ids": ids, "keys": keys}


def _verify_w8(admin: Admin, system: Any, ctx: dict[str, Any], out: Any) -> None:
    name = system.name
    keys = ctx["keys"]
    expect(isinstance(out, list) and len(out) == len(keys), name, "W8", f"{len(out)} results for {len(keys)} lookups")
    dbo = db_owners(admin)
    first: dict[int, Any] = {}
    for k, o in zip(keys, out):
        expect(type(o) is system.classes.Owner, name, "W8", f"lookup {k} gave a {type(o).__name__}")
        expect(o.id == k and o.name == dbo[k], name, "W8", f"lookup {k} gave owner {o.id} {o.name!r}")
        expect(first.setdefault(k, o) is o, name, "W8", f"owner {k} built twice in one session (no identity map)")
    expect(len(first) == len(set(keys)), name, "W8", "distinct objects != distinct keys")


# W10 ------------------------------------------------------------------------------------------


def bulk_row(i: int, owner_ids: list[int]) -> tuple[str, int, int]:
    return f"bulk-{i:06d}", i % 15, owner_ids[(i * 7) % len(owner_ids)]


def _seed_w10(admin: Admin, s: dict[str, int]) -> dict[str, Any]:
    ids = seed_owners(admin, s["owners"], 0)
    rows = [bulk_row(i, ids) for i in range(s["rows"])]
    # The same rows in the shape each system takes them: tuples for the driver, dicts of
    # attribute names for mapper (what an import reading CSV or JSON has in hand).
    dicts = [{"name": n, "age": a, "owner_id": o} for n, a, o in rows]
    return {"sizes": s, "owner_ids": ids, "rows": rows, "dicts": dicts}


def _verify_w10(admin: Admin, system: Any, ctx: dict[str, Any], out: Any) -> None:
    name = system.name
    rows = ctx["rows"]
    expect(out == len(rows), name, "W10", f"reported {out!r} rows, expected {len(rows)}")
    got = admin.fetchall(f"SELECT count(*), sum(age), count(DISTINCT name), sum(owner_id) FROM {schema.PUGS}")[0]
    want = (len(rows), sum(r[1] for r in rows), len(rows), sum(r[2] for r in rows))
    expect(tuple(int(v) for v in got) == want, name, "W10", f"the table holds {got}, expected {want}")
    sample = admin.fetchall(f"SELECT name, age, owner_id FROM {schema.PUGS} WHERE name = ?", (rows[-1][0],))
    expect(sample == [rows[-1]], name, "W10", f"last row reads {sample}, expected {rows[-1]}")


WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in [
        Workload("W1", "insert graph", lambda s: f"{s['owners']:,} owners x {s['pugs_each']} pugs, one unit of work",
                 _seed_w1, _verify_w1, mutates=True),
        Workload("W2", "load flat", lambda s: f"{s['owners'] * s['pugs_each']:,} pugs as objects",
                 _seed_owner_graph, _verify_w2),
        Workload("W3", "eager one-to-many", lambda s: f"{s['owners']:,} owners + {s['owners'] * s['pugs_each']:,} pugs",
                 _seed_owner_graph, _verify_w3),
        Workload("W4", "nested eager", lambda s: f"{s['orders']:,} orders > {s['orders'] * s['items_each']:,} items > "
                 f"{s['products']:,} products", _seed_w4, _verify_w4),
        Workload("W5", "many-to-many", lambda s: f"{s['users']:,} users > {s['users'] * s['links_each']:,} "
                 f"links > {s['books']:,} books", _seed_w5, _verify_w5),
        Workload("W6", "update", lambda s: f"{s['owners'] * s['pugs_each']:,} pugs: load, change age, commit",
                 _seed_owner_graph, _verify_w6, mutates=True),
        Workload("W7", "delete (UoW)", lambda s: f"{s['delete']:,} of {s['owners']:,} owners + "
                 f"{s['delete'] * s['pugs_each']:,} pugs", _seed_w7, _verify_w7, mutates=True),
        Workload("W7q", "delete (query)", lambda s: f"{s['delete']:,} of {s['owners']:,} owners, one "
                 "set-based DELETE", _seed_w7, _verify_w7q, mutates=True),
        Workload("W8", "get by key", lambda s: f"{s['lookups']:,} lookups of {s['owners']:,} ids, one session",
                 _seed_w8, _verify_w8),
        Workload("W9", "lazy trap", lambda s: f"{s['owners']:,} owners, touch .pugs without include",
                 _seed_owner_graph, _verify_w9),
        Workload("W10", "bulk import", lambda s: f"{s['rows']:,} plain rows into pugs, no objects",
                 _seed_w10, _verify_w10, mutates=True),
    ]
}
