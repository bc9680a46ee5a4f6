"""Backends: each module holds what is particular to one database and its driver."""

from __future__ import annotations

from .base import URL, Dialect, parse_url

__all__ = ["Dialect", "URL", "SCHEMES", "MYSQLCLIENT_SCHEMES", "parse_url", "dialect_for"]


#: The URL schemes each backend answers to: its own names, and the SQLAlchemy spellings that
#: name the driver mapper uses for it. A scheme naming another driver is refused.
SCHEMES: dict[str, str] = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+psycopg": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "mysql+pymysql": "mysql",
    "mariadb+pymysql": "mysql",
    "mysql+mysqlclient": "mysql",
    "mariadb+mysqlclient": "mysql",
    "mysql+mysqldb": "mysql",
    "mariadb+mysqldb": "mysql",
}

#: The MySQL schemes that choose mysqlclient (``MySQLdb``, the optional C-backed driver, by its
#: package's name or by SQLAlchemy's); every other MySQL scheme uses PyMySQL.
MYSQLCLIENT_SCHEMES = frozenset({"mysql+mysqlclient", "mariadb+mysqlclient", "mysql+mysqldb", "mariadb+mysqldb"})


def dialect_for(url: URL) -> Dialect:
    """The dialect instance for a parsed URL's scheme.

    Raises:
        ConfigurationError: for a scheme no dialect serves, or one naming a driver mapper does
            not use (``postgresql+asyncpg``, ``mysql+mysqldb``).
    """
    from ..errors import ConfigurationError

    backend = SCHEMES.get(url.scheme)
    if backend == "sqlite":
        from .sqlite import SQLiteDialect

        return SQLiteDialect()
    if backend == "postgresql":
        from .postgresql import PostgreSQLDialect

        return PostgreSQLDialect()
    if backend == "mysql":
        from .mysql import MySQLClientDialect, MySQLDialect

        return MySQLClientDialect() if url.scheme in MYSQLCLIENT_SCHEMES else MySQLDialect()
    name, plus, driver = url.scheme.partition("+")
    if plus and name in SCHEMES:
        why = f"mapper talks to {SCHEMES[name]} through its own driver, not {driver}"
    else:
        why = "no backend serves it"
    supported = ", ".join(f"{scheme}://" for scheme in SCHEMES)
    msg = f"URL scheme {url.scheme!r} is not supported ({why}); use one of {supported}"
    raise ConfigurationError(msg)
