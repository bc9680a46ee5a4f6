"""Schema migrations with Alembic: a Database's tables as SQLAlchemy ``MetaData``, and the hooks
that make Alembic's autogenerate compare them the way ``check_schema()`` does.

Needs the ``migrations`` extra (``pip install 'mapper-uow[migrations]'``: Alembic and
SQLAlchemy); ``import mapper`` never imports this module. ``python -m mapper migrations init``
writes an Alembic set-up whose ``env.py`` calls :func:`run_migrations`.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import errors
from .dialects.mysql import MySQLDialect
from .drift import normalize_default, normalize_type
from .schema import Column, Table, derived_name
from .types import ColumnType, DateTime, Numeric
from .uow.ordering import table_order

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from .database import Database

__all__ = [
    "metadata",
    "sqlalchemy_url",
    "compare_type",
    "compare_server_default",
    "include_object",
    "run_migrations",
    "autogenerate_diff",
    "init",
    "sqlite_type",
    "ENV_TEMPLATE",
]


def _sa() -> Any:
    try:
        import sqlalchemy
    except ModuleNotFoundError:
        msg = "mapper.migrations needs Alembic and SQLAlchemy: pip install 'mapper-uow[migrations]'"
        raise errors.ConfigurationError(msg) from None
    return sqlalchemy


_SQLITE_TYPES: dict[str, Any] = {}


def _sqlite_type(name: str) -> Any:
    """A SQLAlchemy type spelled ``NAME`` or ``NAME(p, s)`` in SQLite DDL (create_all's own names).

    Registered with SQLAlchemy's SQLite reflection too, so that a table Alembic rebuilds in batch
    mode keeps the declared type instead of falling back to TEXT.
    """
    found = _SQLITE_TYPES.get(name)
    if found is not None:
        return found
    sa = _sa()
    from sqlalchemy.dialects.sqlite import base as sqlite_base

    class Spelled(sa.types.UserDefinedType):  # type: ignore[misc,name-defined]
        cache_ok = True

        def __init__(self, *args: int) -> None:
            self.args = tuple(int(a) for a in args)

        def get_col_spec(self, **kw: Any) -> str:
            return name + (f"({', '.join(map(str, self.args))})" if self.args else "")

        def __repr__(self) -> str:
            return f"sqlite_type({name!r})({', '.join(map(str, self.args))})"

    Spelled.__name__ = Spelled.__qualname__ = name
    sqlite_base.ischema_names[name] = Spelled
    _SQLITE_TYPES[name] = Spelled
    return Spelled


_prepared: list[bool] = []


def _prepare_sqlite() -> None:
    """Teach SQLAlchemy's SQLite reflection create_all's own type names, and keep AUTOINCREMENT
    through a batch-mode rebuild (SQLAlchemy does not reflect it, so the copy would lose it)."""
    if _prepared:
        return
    sa = _sa()
    for name in ("DECIMAL_TEXT", "JSON_TEXT"):
        _sqlite_type(name)

    def keep_autoincrement(table: Any, connection: Any, **kw: Any) -> None:
        if connection.dialect.name != "sqlite" or not table.name.startswith("_alembic_tmp_"):
            return
        original = table.name.removeprefix("_alembic_tmp_")
        row = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (original,)).first()
        if row is not None and "AUTOINCREMENT" in (row[0] or "").upper():
            table.dialect_options["sqlite"]["autoincrement"] = True

    sa.event.listen(sa.Table, "before_create", keep_autoincrement)
    _prepared.append(True)


def sqlite_type(name: str) -> Any:
    """The SQLAlchemy type class of create_all's SQLite-only type ``name`` (``DECIMAL_TEXT``, ``JSON_TEXT``).

    Migration scripts that autogenerate writes name it as ``mapper.migrations.sqlite_type(...)``.
    """
    return _sqlite_type(name)


def _sa_type(t: ColumnType) -> Any:
    """The SQLAlchemy type that every backend spells as create_all spells ``t`` there."""
    sa = _sa()
    from sqlalchemy.dialects import mysql, postgresql

    kind = t.kind
    if kind in ("string", "enum"):
        length = getattr(t, "length", None)
        if length is None:
            return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
        return sa.String(length)
    if kind == "text":
        return sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
    if kind == "numeric" and isinstance(t, Numeric):
        p, s = t.digits
        # SQLite keeps wide decimals as text (see the SQLite dialect's type_sql).
        spelled = sa.Numeric(p, s)
        return spelled if p <= 15 else spelled.with_variant(_sqlite_type("DECIMAL_TEXT")(p, s), "sqlite")
    if kind == "datetime" and isinstance(t, DateTime):
        fsp = 6 if t.precision is None else t.precision
        spelled = sa.DateTime(timezone=t.timezone).with_variant(mysql.DATETIME(fsp=fsp or None), "mysql", "mariadb")
        if t.precision is not None:
            spelled = spelled.with_variant(postgresql.TIMESTAMP(timezone=t.timezone, precision=t.precision), "postgresql")
        return spelled
    simple: dict[str, Any] = {
        "integer": sa.Integer(),
        "biginteger": sa.BigInteger(),
        "smallinteger": sa.SmallInteger(),
        "boolean": sa.Boolean(create_constraint=False),
        "float": sa.Double().with_variant(sa.REAL(), "sqlite"),
        "date": sa.Date(),
        "time": sa.Time().with_variant(mysql.TIME(fsp=6), "mysql", "mariadb"),
        "uuid": sa.CHAR(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql"),
        "json": sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(_sqlite_type("JSON_TEXT")(), "sqlite"),
        "binary": sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb"),
    }
    return simple[kind]


def _column(table: Table, col: Column) -> Any:
    sa = _sa()
    auto = col is table.autoincrement_column
    extra = [sa.Identity()] if auto else []
    sa_type = _sa_type(col.type)
    if auto:
        sa_type = sa_type.with_variant(sa.Integer(), "sqlite")  # only INTEGER makes the rowid alias
    return sa.Column(
        col.name,
        sa_type,
        *extra,
        nullable=col.nullable and not any(c is col for c in table.primary_key),
        server_default=sa.text(col.server_default) if col.server_default is not None else None,
        # False only where SQLAlchemy would otherwise generate a key create_all does not; a
        # plain column keeps "auto", or Alembic writes autoincrement=False into every change.
        autoincrement=True if auto else (False if any(c is col for c in table.primary_key) else "auto"),
    )


def metadata(db: Database, *, mysql_collation: str | None = None) -> MetaData:
    """The tables of ``db`` as SQLAlchemy ``MetaData``, matching what ``create_all()`` builds.

    Columns (hidden and relation key columns included) with the types each backend spells as
    ``create_all()`` does, nullability, server defaults and the generated key; primary keys;
    UNIQUE, FOREIGN KEY (with ON DELETE/UPDATE) constraints and indexes under create_all's names.
    Junction tables of ``BelongsToMany`` are included.

    Args:
        db: the Database whose mappers describe the schema.
        mysql_collation: the collation of new tables on MySQL/MariaDB (create_all uses
            ``utf8mb4_nopad_bin`` on MariaDB, ``utf8mb4_0900_bin`` on MySQL 8).
    """
    sa = _sa()
    _prepare_sqlite()
    md: MetaData = sa.MetaData()
    # A reference to a table that comes later in create_all's order closes a cycle: create_all
    # adds it with ALTER TABLE afterwards, and so does SQLAlchemy with use_alter.
    position = {name: i for i, name in enumerate(table_order(db.registry.tables))}
    for table in sorted(db.registry.tables.values(), key=lambda t: t.name):
        items: list[Any] = [_column(table, c) for c in table.columns]
        items.append(sa.PrimaryKeyConstraint(*(c.name for c in table.primary_key)))
        items += [sa.UniqueConstraint(*cols, name=derived_name("uq", table.name, cols)) for cols in table.uniques]
        items += [
            sa.ForeignKeyConstraint(
                list(fk.columns), [f"{fk.ref_table}.{c}" for c in fk.ref_columns],
                name=fk.name, ondelete=fk.on_delete, onupdate=fk.on_update,
                use_alter=position[fk.ref_table] > position[table.name],
            )
            for fk in table.foreign_keys
        ]
        options: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}
        if mysql_collation:
            options["mysql_collate"] = mysql_collation
        if table.autoincrement_column is not None:
            options["sqlite_autoincrement"] = True
        sa_table = sa.Table(table.name, md, *items, **options)
        for ix in table.indexes:
            sa.Index(ix.name, *(sa_table.c[c] for c in ix.columns), unique=ix.unique)
    return md


def sqlalchemy_url(db: Database) -> str:
    """The SQLAlchemy URL of ``db``, naming the driver mapper uses (psycopg, PyMySQL or mysqlclient)."""
    url = db.engine.url
    rest = url.driver_url.partition("://")[2]
    dialect = db.engine.dialect
    if isinstance(dialect, MySQLDialect):
        return f"mysql+{dialect.sqlalchemy_driver}://{rest}"
    scheme = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}[db.backend]
    return f"{scheme}://{rest}"


def _backend(dialect: Any) -> str:
    return "mysql" if dialect.name in ("mysql", "mariadb") else str(dialect.name)


def compare_type(context: Any, inspected_column: Any, metadata_column: Any, inspected_type: Any, metadata_type: Any) -> bool:
    """Alembic's ``compare_type`` hook: types differ when ``check_schema()`` would say so."""
    dialect = context.dialect
    backend = _backend(dialect)
    want = normalize_type(backend, metadata_type.compile(dialect=dialect))
    have = normalize_type(backend, inspected_type.compile(dialect=dialect))
    if backend == "mysql" and {want, have} == {"json", "longtext"} and getattr(dialect, "is_mariadb", False):
        return False  # MariaDB's JSON is LONGTEXT with a check; SQLAlchemy reflects the LONGTEXT
    return want != have


def compare_server_default(
    context: Any, inspected_column: Any, metadata_column: Any, inspected_default: str | None,
    metadata_default: Any, rendered_metadata_default: str | None,
) -> bool:
    """Alembic's ``compare_server_default`` hook: defaults compared as ``check_schema()`` does."""
    if metadata_column.autoincrement is True:
        return False  # the generated key's sequence or identity is not a default to compare
    want = metadata_column.server_default.arg.text if metadata_column.server_default is not None else None
    return normalize_default(want) != normalize_default(inspected_default)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's ``include_object`` hook: tables no mapper names are left alone, as check_schema() does."""
    return not (type_ == "table" and reflected and compare_to is None)


def _collation(connection: Any) -> str | None:
    dialect = connection.dialect
    if _backend(dialect) != "mysql":
        return None
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"
    return "utf8mb4_0900_bin" if dialect.server_version_info >= (8,) else "utf8mb4_bin"


def _options(md: Any, backend: str) -> dict[str, Any]:
    return {
        "target_metadata": md,
        "render_as_batch": backend == "sqlite",  # SQLite alters most things by rebuilding the table
        "compare_type": compare_type,
        # PostgreSQL: Alembic's own comparison runs both expressions on the server, and a user
        # hook cannot be given there (Alembic reads an identity column's default as text first).
        "compare_server_default": True if backend == "postgresql" else compare_server_default,
        "include_object": include_object,
        "user_module_prefix": "mapper.migrations.",
    }


def autogenerate_diff(db: Database) -> list[Any]:
    """What ``alembic revision --autogenerate`` would find for ``db``: Alembic's diff tuples.

    An empty list when the live database matches the mappers (as after ``create_all()``).
    """
    sa = _sa()
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine(sqlalchemy_url(db), poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            md = metadata(db, mysql_collation=_collation(connection))
            context = MigrationContext.configure(connection, opts=_options(md, db.backend))
            return list(compare_metadata(context, md))
    finally:
        engine.dispose()


def run_migrations(db: Database) -> None:
    """Run Alembic's migrations against ``db``: the body of the ``env.py`` that ``init`` writes.

    Online (the usual), it connects with SQLAlchemy to ``db``'s URL and compares with
    :func:`metadata`; offline (``alembic upgrade --sql``), it prints the SQL.
    """
    sa = _sa()
    from alembic import context

    url = sqlalchemy_url(db)
    backend = db.backend
    if context.is_offline_mode():
        context.configure(url=url, literal_binds=True, **_options(metadata(db), backend))
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            md = metadata(db, mysql_collation=_collation(connection))
            context.configure(connection=connection, **_options(md, backend))
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


ENV_TEMPLATE = '''"""Alembic's environment for the mapper Database {target}.

The schema comes from the mappers (mapper.migrations.metadata), and the URL from the Database:
alembic revision --autogenerate compares them with the live database as check_schema() does.
"""

from logging.config import fileConfig

from alembic import context

from mapper.__main__ import load_database
from mapper.migrations import run_migrations

# Alembic's messages ("Detected added column ...") through alembic.ini's logging set-up; the
# application's own loggers keep working.
if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

#: The Database, as MODULE:ATTRIBUTE (resolved with alembic.ini's prepend_sys_path).
DATABASE = {target!r}

db, made = load_database(DATABASE)
try:
    run_migrations(db)
finally:
    if made:
        db.close()
'''


def init(directory: str | Path, target: str, ini: str | Path = "alembic.ini") -> None:
    """Write an Alembic set-up for the Database ``target`` (``MODULE:ATTRIBUTE``).

    ``directory`` gets Alembic's generic scripts with an ``env.py`` that runs
    :func:`run_migrations`; ``ini`` (default ``alembic.ini`` in the current directory) points at
    it. Then ``alembic revision --autogenerate -m "..."`` writes a migration and ``alembic
    upgrade head`` applies it.

    Raises:
        ConfigurationError: ``directory`` exists and is not empty, or ``ini`` exists.
    """
    _sa()
    from alembic import command
    from alembic.config import Config

    where, ini_path = Path(directory), Path(ini)
    if where.exists() and any(where.iterdir()):
        msg = f"migrations init: {str(where)!r} exists and is not empty; choose a new directory"
        raise errors.ConfigurationError(msg)
    if ini_path.exists():
        msg = f"migrations init: {str(ini_path)!r} exists; pass another path with --ini"
        raise errors.ConfigurationError(msg)
    # Alembic's own "please edit alembic.ini" advice does not apply: the set-up is complete.
    command.init(Config(str(ini_path), stdout=io.StringIO()), str(where), template="generic")
    (where / "env.py").write_text(ENV_TEMPLATE.format(target=target))
    mako = where / "script.py.mako"
    mako.write_text(mako.read_text().replace("import sqlalchemy as sa\n", "import sqlalchemy as sa\nimport mapper.migrations\n", 1))
    text = ini_path.read_text()
    text = re.sub(
        r"^sqlalchemy\.url = .*$",
        f"# The URL comes from the mapper Database named in {where.name}/env.py ({target}).",
        text, count=1, flags=re.MULTILINE,
    )
    ini_path.write_text(text)
