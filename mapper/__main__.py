"""The command line, ``python -m mapper COMMAND``: tools that work on an application's Database.

Each command is a subparser added by one ``_add_*`` function listed in ``COMMANDS``; it names
the Database as ``MODULE:ATTRIBUTE`` (:func:`load_database`) and sets ``run`` to the function
that carries it out. ``source`` prints the Python code mapper generates for each mapping.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import contextmanager
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import mapper

from .database import Database
from .ddl import DIALECT_NAMES, create_statements, offline_dialect
from .mapping import ClassMapping

__all__ = ["main", "load_database", "CommandError"]

#: The jobs of ``Database.generated_source``, in the order they are printed.
JOBS = ("load", "changed", "diff", "relation_candidates", "collect", "update_row")


class CommandError(Exception):
    """A mistake on the command line, reported in one line on stderr (exit status 2)."""


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run ``python -m mapper`` with ``argv`` (default ``sys.argv[1:]``).

    Args:
        argv: the arguments after ``python -m mapper``.
        out: where a command writes its output (default stdout).

    Returns:
        The exit status: 0 on success, 2 on a usage mistake (reported on stderr).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args, sys.stdout if out is None else out)
    except CommandError as exc:
        print(f"python -m mapper {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mapper",
        description="Tools that work on an application's mapper Database, named as MODULE:ATTRIBUTE.",
    )
    parser.add_argument("--version", action="version", version=f"mapper {mapper.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(commands)
    return parser


def load_database(target: str) -> tuple[Database, bool]:
    """The Database that ``MODULE:ATTRIBUTE`` names, and whether it was made here (to close).

    ``ATTRIBUTE`` may be dotted (``app.settings:config.db``) and may name a function that takes
    no arguments and returns the Database.

    Raises:
        CommandError: the text is not ``MODULE:ATTRIBUTE``, the module cannot be found, the
            attribute does not exist, or it is not a Database.
    """
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        msg = f"{target!r} does not name a Database; write MODULE:ATTRIBUTE, for example myapp.models:db"
        raise CommandError(msg)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the module asked for (or a package above it) is the user's mistake; a module
        # that fails to import something of its own raises as usual.
        if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise
        msg = f"no module named {module_name!r} (run from the directory that contains it, or set PYTHONPATH)"
        raise CommandError(msg) from None
    where = module_name
    for part in attr.split("."):
        if not hasattr(obj, part):
            msg = f"{where} has no attribute {part!r}"
            raise CommandError(msg)
        obj = getattr(obj, part)
        where = f"{where}.{part}" if where != module_name else f"{module_name}:{part}"
    if isinstance(obj, Database):
        return obj, False
    if callable(obj) and not isinstance(obj, type):
        made = obj()
        if isinstance(made, Database):
            return made, True
        msg = f"{target}() returned {type(made).__name__}, not a mapper Database"
        raise CommandError(msg)
    msg = f"{target} is a {type(obj).__name__}, not a mapper Database (or a function that returns one)"
    raise CommandError(msg)



@contextmanager
def opened_database(target: str) -> Iterator[Database]:
    """The Database ``target`` names, closed afterwards if a factory made it for this command."""
    db, made = load_database(target)
    try:
        yield db
    finally:
        if made:
            db.close()

def _mappings(db: Database, names: Sequence[str]) -> list[ClassMapping[Any]]:
    """The mappings named by domain class or mapper class (plain or qualified name); all if none."""
    every = db.registry.mappings
    if not names:
        return list(every)
    chosen: list[ClassMapping[Any]] = []
    for name in names:
        found = [
            m for m in every
            if name in (m.cls.__name__, m.cls.__qualname__, f"{m.cls.__module__}.{m.cls.__qualname__}", m.name)
        ]
        if not found:
            known = ", ".join(m.cls.__name__ for m in every) or "none"
            msg = f"{name!r} is not a class mapped by this Database; its mapped classes are: {known}"
            raise CommandError(msg)
        chosen += [m for m in found if m not in chosen]
    return chosen


# -- source -----------------------------------------------------------------------------------------


def _add_source(commands: Any) -> None:
    p = commands.add_parser(
        "source",
        help="print the Python source mapper generates for each mapping",
        description=(
            "Print the functions mapper generates for each mapping of the Database: the loader "
            "(load), the snapshot scans of a flush (changed, diff, relation_candidates) and the "
            "row collectors of INSERT and UPDATE (collect, update_row). Tracebacks through them "
            "name them <mapper generated MAPPER.JOB>."
        ),
    )
    _database_argument(p)
    p.add_argument("classes", nargs="*", metavar="CLASS",
                   help="domain or mapper classes to show, by name (default: every mapping)")
    p.add_argument("--job", action="append", choices=JOBS, metavar="JOB",
                   help=f"show only this job (repeatable): {', '.join(JOBS)}")
    p.set_defaults(run=_run_source)



def _database_argument(parser: Any) -> None:
    """The positional MODULE:ATTRIBUTE argument every command that opens a Database takes."""
    parser.add_argument("database", metavar="MODULE:ATTRIBUTE",
                        help="the Database, for example myapp.models:db (or a function that returns one)")

def _run_source(args: argparse.Namespace, out: TextIO) -> int:
    with opened_database(args.database) as db:
        for m in _mappings(db, args.classes):
            for job, source in db.generated_source(m.cls).items():
                if args.job and job not in args.job:
                    continue
                out.write(f"# {m.name}.{job} ({m.cls.__qualname__})\n{source}\n\n")
    return 0


# -- ddl --------------------------------------------------------------------------------------------


def _add_ddl(commands: Any) -> None:
    p = commands.add_parser(
        "ddl",
        help="print the CREATE statements of the Database's tables, without connecting",
        description=(
            "Print the statements create_all() runs on an empty database: CREATE TABLE with keys "
            "and constraints, CREATE INDEX, and ALTER TABLE for foreign keys between tables that "
            "reference each other, for the Database's own backend or the one --dialect names. "
            "Nothing connects to a database."
        ),
    )
    _database_argument(p)
    p.add_argument("--dialect", choices=DIALECT_NAMES, metavar="DIALECT",
                   help=f"the SQL dialect: {', '.join(DIALECT_NAMES)} (default: the Database's backend)")
    p.set_defaults(run=_run_ddl)


def _run_ddl(args: argparse.Namespace, out: TextIO) -> int:
    with opened_database(args.database) as db:
        dialect = offline_dialect(args.dialect or db.backend)
        for _table, sql in create_statements(dialect, db.registry.tables):
            out.write(f"{sql};\n\n")
    return 0


# -- check ------------------------------------------------------------------------------------------


def _add_check(commands: Any) -> None:
    p = commands.add_parser(
        "check",
        help="compare the live database with the mappers; exit status 1 on drift",
        description=(
            "Connect to the Database and list how its tables differ from the mappers (missing "
            "or extra tables and columns, types, nullability, defaults, keys, foreign-key rules, "
            "unique constraints, indexes), as Database.check_schema() does. The exit status is 0 "
            "when they match and 1 when they differ, for CI."
        ),
    )
    _database_argument(p)
    p.set_defaults(run=_run_check)


def _run_check(args: argparse.Namespace, out: TextIO) -> int:
    with opened_database(args.database) as db:
        found = db.check_schema()
    if not found:
        out.write(f"{db.url}: the database matches the mappers\n")
        return 0
    out.write(f"{db.url}: the database differs from the mappers in {len(found)} place(s):\n")
    for difference in found:
        out.write(f"  - {difference}\n")
    out.write("Write a migration for them (python -m mapper migrations init, then alembic revision --autogenerate).\n")
    return 1


# -- migrations -------------------------------------------------------------------------------------


def _add_migrations(commands: Any) -> None:
    p = commands.add_parser(
        "migrations",
        help="set up Alembic migrations for the Database (needs mapper-uow[migrations])",
        description=(
            "Schema migrations with Alembic. 'init DIR MODULE:ATTRIBUTE' writes alembic.ini and "
            "an Alembic script directory whose env.py compares the Database's mappers with the "
            "live database; then run 'alembic revision --autogenerate -m MESSAGE', "
            "'alembic upgrade head' and 'alembic downgrade -1'."
        ),
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser(
        "init",
        help="write alembic.ini and a migrations directory for the Database",
        description=(
            "Write alembic.ini (or the file --ini names) and DIR with Alembic's scripts and an "
            "env.py that takes the schema and the URL from the Database MODULE:ATTRIBUTE. "
            "On SQLite, migrations rebuild tables in Alembic's batch mode."
        ),
    )
    init.add_argument("directory", metavar="DIR", help="the new migrations directory, for example migrations")
    _database_argument(init)
    init.add_argument("--ini", default="alembic.ini", metavar="PATH", help="where to write alembic.ini (default: ./alembic.ini)")
    init.set_defaults(run=_run_migrations_init)


def _run_migrations_init(args: argparse.Namespace, out: TextIO) -> int:
    db, made = load_database(args.database)  # refuse a wrong target before writing anything
    if made:
        db.close()
    from . import migrations

    try:
        migrations.init(args.directory, args.database, args.ini)
    except mapper.ConfigurationError as exc:
        raise CommandError(str(exc).removeprefix("migrations init: ")) from None
    out.write(
        f"Wrote {args.ini} and {args.directory}/ for {args.database}. Next:\n"
        "  alembic revision --autogenerate -m 'describe the change'\n"
        "  alembic upgrade head\n"
    )
    return 0


# -- inspect ----------------------------------------------------------------------------------------


def _add_inspect(commands: Any) -> None:
    p = commands.add_parser(
        "inspect",
        help="print domain classes and mappers for the tables of an existing database",
        description=(
            "Read the tables of the database at URL and print a Python module with an attrs "
            "domain class and a Mapper for each: keys, columns with types that compare equal to "
            "the database's, foreign keys as BelongsTo relations with HasMany inverses, junction "
            "tables as BelongsToMany, association tables with payload as association classes. "
            "check_schema() is clean against the result, apart from what a comment says a mapper "
            "cannot declare."
        ),
    )
    p.add_argument("url", metavar="URL", help="the database, for example postgresql://user@host/db")
    p.add_argument("--table", action="append", metavar="TABLE", help="map only this table (repeatable; default: all)")
    p.set_defaults(run=_run_inspect)


def _run_inspect(args: argparse.Namespace, out: TextIO) -> int:
    from .reflect import generate_module, table_names
    from .schema_read import read_schema

    try:
        db = Database(args.url)
    except mapper.ConfigurationError as exc:
        raise CommandError(str(exc)) from None
    path = db.engine.url.database
    if db.backend == "sqlite" and path not in ("", ":memory:") and not Path(path).is_file():
        db.close()  # connecting would create an empty database file
        msg = f"no SQLite database at {path!r}"
        raise CommandError(msg)
    try:
        conn = db.engine.connect()
        try:
            tables = read_schema(conn, args.table)
            conn.rollback()
        finally:
            conn.close()
        missing = sorted(set(args.table or ()) - set(tables))
        if missing:
            msg = f"no table named {', '.join(map(repr, missing))} in {db.url}"
            raise CommandError(msg)
        chosen = {name: tables[name] for name in table_names(list(tables))}
        out.write(generate_module(db.engine.dialect, chosen, db.url))
    finally:
        db.close()
    return 0


#: One function per command, each adding its subparser; later commands are added here.
COMMANDS: list[Callable[[Any], None]] = [_add_source, _add_ddl, _add_check, _add_migrations, _add_inspect]


if __name__ == "__main__":
    sys.exit(main())
