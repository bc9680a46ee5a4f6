"""Backends: each module holds what is particular to one database and its driver."""

from __future__ import annotations

from .base import URL, Dialect, parse_url

__all__ = ["Dialect", "URL", "parse_url", "dialect_for"]


def dialect_for(url: URL) -> Dialect:
    """The dialect instance for a parsed URL's scheme.

    Raises:
        ConfigurationError: for a scheme no dialect serves.
    """
    from ..errors import ConfigurationError

    scheme = url.scheme.split("+", 1)[0]
    if scheme == "sqlite":
        from .sqlite import SQLiteDialect

        return SQLiteDialect()
    if scheme in ("postgresql", "postgres"):
        from .postgresql import PostgreSQLDialect

        return PostgreSQLDialect()
    if scheme in ("mysql", "mariadb"):
        from .mysql import MySQLDialect

        return MySQLDialect()
    msg = f"no backend for URL scheme {url.scheme!r}; use sqlite, postgresql or mysql"
    raise ConfigurationError(msg)
