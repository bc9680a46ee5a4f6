"""The CREATE statements of a set of mapped tables, for one dialect, with no connection needed.

``Database.create_all()`` runs them against the live database; ``python -m mapper ddl`` prints
them for a dialect chosen by name.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from . import errors
from .dialects import Dialect, dialect_for, parse_url
from .schema import ForeignKeyConstraint, Table
from .sql import Compiler
from .uow.ordering import table_order

__all__ = ["DIALECT_NAMES", "create_statements", "offline_dialect"]

#: The names ``offline_dialect`` takes; ``mariadb`` is ``mysql`` with MariaDB's collation.
DIALECT_NAMES = ("sqlite", "postgresql", "mysql", "mariadb")


def offline_dialect(name: str) -> Dialect:
    """A dialect by name, set up as a connection to a current server would set it up.

    Raises:
        ConfigurationError: ``name`` is not one of ``DIALECT_NAMES``.
    """
    if name not in DIALECT_NAMES:
        msg = f"no dialect named {name!r}; use one of {', '.join(DIALECT_NAMES)}"
        raise errors.ConfigurationError(msg)
    dialect = dialect_for(parse_url(f"{'mysql' if name == 'mariadb' else name}://localhost/db"))
    if name == "mariadb":
        # What MySQLDialect.initialize picks on a MariaDB server (binary, trailing spaces kept).
        dialect.table_suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"
    return dialect


def create_statements(dialect: Dialect, tables: Mapping[str, Table], existing: Collection[str] = ()) -> list[tuple[str, str]]:
    """The statements that create ``tables`` not in ``existing``, parent tables first.

    Each CREATE TABLE is followed by its indexes; foreign keys between tables that reference
    each other are added with ALTER TABLE at the end where the dialect cannot declare a
    reference to a table that does not exist yet.

    Returns:
        ``(table name, SQL)`` pairs in the order to run them.
    """
    compiler = Compiler(dialect)
    out: list[tuple[str, str]] = []
    later: list[ForeignKeyConstraint] = []
    seen: set[str] = set(existing)
    for name in table_order(tables):
        table = tables[name]
        seen.add(name)
        if name in existing:
            continue
        # A reference to a table created after this one (a cycle) is added afterwards.
        deferred = [
            fk for fk in table.foreign_keys
            if fk.ref_table not in seen and fk.ref_table != name and not dialect.inline_forward_fks
        ]
        later += deferred
        out.append((name, compiler.create_table(table, deferred)))
        for ix in table.indexes:
            out.append((name, dialect.create_index_sql(ix.name, ix.table, ix.columns, ix.unique)))
    out += [(fk.table, compiler.add_foreign_key(fk)) for fk in later]
    return out
