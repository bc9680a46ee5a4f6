"""The floor: the bare driver (sqlite3, psycopg, PyMySQL or mysqlclient) and hand-written SQL.

It builds the same attrs objects as the ORMs (``Pug(name, age, owner, id)`` straight from the
row tuples), wires both sides of every relation it loads, keeps one dict per workload as its
identity map where the workload needs one (W4 products, W5 books, W8 owners), and runs each
workload in the same transactions as the ORMs: one per workload, committed at the end.

The fastest honest statement shapes, per backend:
- inserts: on PostgreSQL one ``INSERT ... SELECT FROM unnest(%s::type[], ...) WITH ORDINALITY
  ... ORDER BY ord RETURNING id`` per table; elsewhere multi-row ``INSERT ... VALUES (...), (...)
  RETURNING id`` in chunks of ``INSERT_ROWS`` (SQLite 3.35+, MariaDB 10.5+; on MySQL the first
  generated key from ``lastrowid``, the rest consecutive); keys are paired with objects in
  ascending order;
- loading children: one ``IN`` list per chunk of parent keys (one ``= ANY(%s)`` array
  parameter on PostgreSQL), exactly like the ORMs' batched loaders;
- updates: on PostgreSQL one ``UPDATE ... FROM unnest(%s::int[], %s::int[])``; elsewhere one
  ``executemany`` of ``UPDATE ... SET age = ? WHERE id = ?``;
- deletes: one ``DELETE ... WHERE id IN (...)``; the database cascades to the pugs.
"""

from __future__ import annotations

from typing import Any

from .. import schema
from ..backends import Backend
from ..workloads import build_owner_graph
from .base import System

#: Rows per multi-row INSERT (also capped by the backend's parameter limit).
INSERT_ROWS = 1000


class RawSystem(System):
    name = "raw"

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        drivers = {"sqlite": "sqlite3", "postgresql": "psycopg", "mysql": "pymysql"}
        mod = __import__(drivers[backend.kind])
        version = getattr(mod, "__version__", None) or getattr(mod, "sqlite_version", "")
        if backend.kind == "sqlite":
            version = "stdlib"
        self.label = f"{drivers[backend.kind]} {version}".strip()
        if backend.driver == "mysqlclient":  # MySQLdb: the same SQL through the C client library
            from importlib.metadata import version as dist_version

            self.label = f"mysqlclient {dist_version('mysqlclient')}"
        self.classes = schema.M
        self.conn = backend.connect()

    # -- plumbing ----------------------------------------------------------------------------------

    def recover(self) -> None:
        b = self.backend
        try:
            if b.kind == "sqlite":
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
            else:
                self.conn.rollback()
        except Exception:  # a broken connection: open a new one
            self.conn = b.connect()

    def close(self) -> None:
        self.conn.close()

    def _insert(self, cur: Any, table: str, columns: list[str], objs: list[Any], values: Any, pg_types: list[str]) -> None:
        """Multi-row INSERT of ``objs`` (``values(obj)`` gives a row), setting each ``obj.id``.

        On PostgreSQL: one INSERT ... SELECT FROM unnest(...) binding one array per column
        (``pg_types`` are the arrays' element types), the fastest statement there.
        """
        b = self.backend
        if b.kind == "postgresql":
            rows = [values(o) for o in objs]
            arrays = [list(col) for col in zip(*rows)]
            names = ", ".join(f"c{i}" for i in range(len(columns)))
            unnest = ", ".join(f"%s::{t}[]" for t in pg_types)
            cur.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) SELECT {names} FROM unnest({unnest}) "
                f"WITH ORDINALITY AS v({names}, ord) ORDER BY ord RETURNING id",
                arrays,
            )
            self.queries += 1
            for o, key in zip(objs, sorted(r[0] for r in cur.fetchall())):
                o.id = key
            return
        ncols = len(columns)
        step = max(1, min(INSERT_ROWS, b.max_params // ncols))
        sql_full = b.insert_rows_sql(table, columns, step, "id")
        for i in range(0, len(objs), step):
            chunk = objs[i : i + step]
            params: list[Any] = []
            for o in chunk:
                params.extend(values(o))
            sql = sql_full if len(chunk) == step else b.insert_rows_sql(table, columns, len(chunk), "id")
            cur.execute(sql, params)
            self.queries += 1
            ids: list[int]
            if b.insert_returning:
                ids = sorted(r[0] for r in cur.fetchall())
            else:  # MySQL: the first key of a multi-row insert; the rest follow one by one
                first = cur.lastrowid
                ids = list(range(first, first + len(chunk)))
            if len(ids) != len(chunk):
                raise RuntimeError(f"INSERT into {table} returned {len(ids)} keys for {len(chunk)} rows")
            for o, key in zip(chunk, ids):
                o.id = key

    def _select(self, cur: Any, sql: str, params: Any = ()) -> list[Any]:
        cur.execute(sql, params)
        self.queries += 1
        rows: list[Any] = cur.fetchall()
        return rows

    def _select_in(self, cur: Any, sql: str, column: str, keys: list[Any], tail: str = "") -> list[Any]:
        """``sql WHERE column IN (keys) tail``, one statement per chunk of keys."""
        b = self.backend
        rows: list[Any] = []
        for chunk in b.key_chunks(keys):
            cond, params = b.in_list(column, chunk)
            cur.execute(f"{sql} WHERE {cond}{tail}", params)
            self.queries += 1
            rows.extend(cur.fetchall())
        return rows

    def _owners_with_pugs(self, cur: Any) -> list[Any]:
        Owner, Pug = self.classes.Owner, self.classes.Pug
        owners = [Owner(name, [], oid) for oid, name in self._select(cur, f"SELECT id, name FROM {schema.OWNERS} ORDER BY id")]
        by_id = {o.id: o for o in owners}
        rows = self._select_in(cur, f"SELECT id, name, age, owner_id FROM {schema.PUGS}", "owner_id", list(by_id), " ORDER BY id")
        for pid, name, age, oid in rows:
            o = by_id[oid]
            o.pugs.append(Pug(name, age, o, pid))
        return owners

    # -- the workloads -----------------------------------------------------------------------------

    def w1(self, ctx: dict[str, Any]) -> Any:
        s = ctx["sizes"]
        owners = build_owner_graph(self.classes, s["owners"], s["pugs_each"])
        b, conn = self.backend, self.conn
        cur = conn.cursor()
        b.begin(conn)
        self._insert(cur, schema.OWNERS, ["name"], owners, lambda o: (o.name,), ["varchar"])
        pugs = []
        for o in owners:
            for p in o.pugs:
                p.owner = o  # wire the other side, as the ORMs do
                pugs.append(p)
        self._insert(cur, schema.PUGS, ["name", "age", "owner_id"], pugs, lambda p: (p.name, p.age, p.owner.id), ["varchar", "int", "int"])
        b.commit(conn)
        return owners

    def w2(self, ctx: dict[str, Any]) -> Any:
        b, conn = self.backend, self.conn
        Pug = self.classes.Pug
        cur = conn.cursor()
        b.begin(conn)
        rows = self._select(cur, f"SELECT id, name, age, owner_id FROM {schema.PUGS} ORDER BY id")
        pugs = [Pug(name, age, None, pid) for pid, name, age, _ in rows]
        b.commit(conn)
        return pugs

    def w3(self, ctx: dict[str, Any]) -> Any:
        b, conn = self.backend, self.conn
        cur = conn.cursor()
        b.begin(conn)
        owners = self._owners_with_pugs(cur)
        b.commit(conn)
        return owners

    def w4(self, ctx: dict[str, Any]) -> Any:
        b, conn = self.backend, self.conn
        C = self.classes
        Order, OrderItem, Product = C.Order, C.OrderItem, C.Product
        cur = conn.cursor()
        b.begin(conn)
        rows = self._select(cur, f"SELECT id, customer, status FROM {schema.ORDERS} ORDER BY id")
        orders = [Order(customer, status, [], oid) for oid, customer, status in rows]
        by_id = {o.id: o for o in orders}
        items = self._select_in(
            cur, f"SELECT id, order_id, product_id, quantity FROM {schema.ORDER_ITEMS}", "order_id", list(by_id), " ORDER BY id"
        )
        wanted = list({r[2] for r in items})
        products = {
            pid: Product(name, price, pid)
            for pid, name, price in self._select_in(cur, f"SELECT id, name, price FROM {schema.PRODUCTS}", "id", wanted)
        }
        for iid, oid, pid, quantity in items:
            o = by_id[oid]
            o.items.append(OrderItem(products[pid], quantity, o, iid))
        b.commit(conn)
        return orders

    def w5(self, ctx: dict[str, Any]) -> Any:
        b, conn = self.backend, self.conn
        C = self.classes
        User, UserBook, Book = C.User, C.UserBook, C.Book
        cur = conn.cursor()
        b.begin(conn)
        users = [User(name, [], uid) for uid, name in self._select(cur, f"SELECT id, name FROM {schema.USERS} ORDER BY id")]
        by_id = {u.id: u for u in users}
        links = self._select_in(
            cur, f"SELECT id, user_id, book_id, rating FROM {schema.USER_BOOKS}", "user_id", list(by_id), " ORDER BY id"
        )
        wanted = list({r[2] for r in links})
        books = {bid: Book(title, bid) for bid, title in self._select_in(cur, f"SELECT id, title FROM {schema.BOOKS}", "id", wanted)}
        for lid, uid, bid, rating in links:
            u = by_id[uid]
            u.user_books.append(UserBook(u, books[bid], rating, lid))
        b.commit(conn)
        return users

    def w6(self, ctx: dict[str, Any]) -> Any:
        b, conn = self.backend, self.conn
        Pug = self.classes.Pug
        cur = conn.cursor()
        b.begin(conn)
        pugs = [Pug(name, age, None, pid) for pid, name, age, _ in self._select(cur, f"SELECT id, name, age, owner_id FROM {schema.PUGS}")]
        for p in pugs:
            p.age = p.age + 1
        if b.kind == "postgresql":  # one UPDATE ... FROM unnest(...), the fastest statement there
            cur.execute(
                f"UPDATE {schema.PUGS} AS t SET age = v.age FROM unnest(%s::int[], %s::int[]) AS v(age, id) WHERE t.id = v.id",
                [[p.age for p in pugs], [p.id for p in pugs]],
            )
        else:
            cur.executemany(f"UPDATE {schema.PUGS} SET age = {b.ph} WHERE id = {b.ph}", [(p.age, p.id) for p in pugs])
        self.queries += 1
        b.commit(conn)
        return pugs

    def w7(self, ctx: dict[str, Any]) -> Any:
        b, conn = self.backend, self.conn
        cur = conn.cursor()
        b.begin(conn)
        deleted = 0
        for chunk in b.key_chunks(ctx["victims"]):
            cond, params = b.in_list("id", chunk)
            cur.execute(f"DELETE FROM {schema.OWNERS} WHERE {cond}", params)  # ON DELETE CASCADE takes the pugs
            self.queries += 1
            deleted += cur.rowcount
        b.commit(conn)
        return deleted

    # The raw floor of a set-based delete is the same statement.
    w7q = w7

    def w8(self, ctx: dict[str, Any]) -> Any:
        b, conn = self.backend, self.conn
        Owner = self.classes.Owner
        cur = conn.cursor()
        b.begin(conn)
        sql = f"SELECT id, name FROM {schema.OWNERS} WHERE id = {b.ph}"
        held: dict[int, Any] = {}  # the hand-made identity map
        out = []
        n = 0
        for key in ctx["keys"]:
            o = held.get(key)
            if o is None:
                cur.execute(sql, (key,))
                n += 1
                oid, name = cur.fetchone()
                o = held[key] = Owner(name, [], oid)
            out.append(o)
        self.queries += n
        b.commit(conn)
        return out

    def w9(self, ctx: dict[str, Any]) -> Any:
        # Without an ORM there is no trap: the floor loads the pugs of all owners in one go.
        b, conn = self.backend, self.conn
        cur = conn.cursor()
        b.begin(conn)
        owners = self._owners_with_pugs(cur)
        touched = sum(len(o.pugs) for o in owners)
        b.commit(conn)
        assert touched >= 0
        return owners

    def w10(self, ctx: dict[str, Any]) -> Any:
        # The driver's executemany of a one-row INSERT: what a hand-written import does.
        b, conn = self.backend, self.conn
        cur = conn.cursor()
        b.begin(conn)
        cur.executemany(f"INSERT INTO {schema.PUGS} (name, age, owner_id) VALUES ({b.ph}, {b.ph}, {b.ph})", ctx["rows"])
        self.queries += 1
        b.commit(conn)
        return len(ctx["rows"])
