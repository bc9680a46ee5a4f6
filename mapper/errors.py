"""The exception tree: everything mapper raises derives from MapperError."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "MapperError",
    "ConfigurationError",
    "SessionError",
    "SessionClosedError",
    "PendingRollbackError",
    "DuplicateIdentityError",
    "NotFoundError",
    "MultipleResultsError",
    "QueryError",
    "QueryBudgetExceeded",
    "RelationNotLoadedError",
    "FlushError",
    "StaleDataError",
    "DatabaseError",
    "InterfaceError",
    "DataError",
    "OperationalError",
    "IntegrityError",
    "InternalError",
    "ProgrammingError",
    "NotSupportedError",
    "PoolTimeoutError",
]


class MapperError(Exception):
    """Base class of every error raised by mapper."""


class ConfigurationError(MapperError):
    """A mapping is wrong; raised when the Database is built, naming mapper and attribute."""


class SessionError(MapperError):
    """The session was used in a way it does not allow."""


class SessionClosedError(SessionError):
    """The session was closed and cannot run statements any more."""


class PendingRollbackError(SessionError):
    """A flush failed; only rollback() or close() are allowed until the user rolls back."""


class DuplicateIdentityError(SessionError):
    """Another managed object already has this primary key."""


class NotFoundError(MapperError, LookupError):
    """A row that had to exist was not found."""


class MultipleResultsError(MapperError, LookupError):
    """A query expected at most one row and found more."""


class QueryError(MapperError, ValueError):
    """A query names something that is not mapped, or combines options that do not fit."""


class QueryBudgetExceeded(MapperError):
    """More statements were sent than a ``session.budget(queries=N)`` block allows."""


class RelationNotLoadedError(MapperError, AttributeError):
    """A relation was read that was not loaded and may not be loaded now."""


class FlushError(MapperError):
    """The unit of work cannot be written as it stands; nothing was written."""


class StaleDataError(FlushError):
    """An UPDATE or DELETE matched fewer rows than expected (a version check failed)."""


class PoolTimeoutError(MapperError, TimeoutError):
    """No pooled connection became free within the pool timeout."""

    @classmethod
    def waited(cls, timeout: float, size: int) -> PoolTimeoutError:
        """The error after waiting ``timeout`` seconds on a pool of ``size`` connections."""
        return cls(
            f"no connection became free within {timeout:g} s (pool_size={size}, all in use); "
            "close sessions you are done with, or raise pool_size / pool_timeout"
        )


class DatabaseError(MapperError):
    """The database or its driver reported an error.

    Attributes:
        orig: the driver's exception (also the ``__cause__``).
        statement: the SQL that failed, if any.
        params: its parameters, if any.
        code: the SQLSTATE (PostgreSQL), error number (MySQL) or result code name (SQLite).
        retryable: True for a serialization failure or deadlock: the transaction was rolled
            back and running it again may succeed (what ``db.transaction(retries=N)`` does).
    """

    def __init__(
        self,
        message: str,
        orig: BaseException | None = None,
        statement: str | None = None,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        code: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.orig = orig
        self.statement = statement
        self.params = params
        self.code = code
        self.retryable = retryable

    def __str__(self) -> str:
        text = super().__str__()
        if self.statement:
            text = f"{text}\n[SQL: {self.statement}]"
            if self.params:
                shown = repr(self.params)
                if len(shown) > 500:
                    shown = shown[:500] + "...]"
                text = f"{text}\n[parameters: {shown}]"
        return text


class InterfaceError(DatabaseError):
    """The driver interface itself failed (for example, a closed connection)."""


class DataError(DatabaseError):
    """A value does not fit its column (too long, out of range, invalid)."""


class OperationalError(DatabaseError):
    """The database could not carry out the operation (lost connection, lock timeout...)."""


class IntegrityError(DatabaseError):
    """A constraint was violated (unique, not null, foreign key, check)."""


class InternalError(DatabaseError):
    """The database reported an internal error."""


class ProgrammingError(DatabaseError):
    """The SQL is wrong (syntax error, unknown table or column)."""


class NotSupportedError(DatabaseError):
    """The database does not support the operation."""


# DB-API class name -> our class; the one place driver errors are classified by name.
DBAPI_ERRORS: dict[str, type[DatabaseError]] = {
    "IntegrityError": IntegrityError,
    "ProgrammingError": ProgrammingError,
    "OperationalError": OperationalError,
    "DataError": DataError,
    "InterfaceError": InterfaceError,
    "NotSupportedError": NotSupportedError,
    "InternalError": InternalError,
    "DatabaseError": DatabaseError,
}
