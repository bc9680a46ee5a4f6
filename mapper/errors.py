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
    "ReadOnlySessionError",
    "SchemaDriftError",
    "SchemaDriftWarning",
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


class ReadOnlySessionError(SessionError):
    """A read-only session (``db.session(readonly=True)``) was asked to write; nothing was sent."""


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
        # A flush statement can be megabytes of SQL and parameters: str() stays readable (it
        # ends up in logs and tracebacks), and the attributes keep everything.
        text = _cut(super().__str__(), MESSAGE_SHOWN, ".orig")
        if self.statement:
            text = f"{text}\n[SQL: {_cut(self.statement, SQL_SHOWN, '.statement')}]"
            if self.params:
                text = f"{text}\n[parameters: {_shown_params(self.params)}]"
        return text


#: Characters of the failing SQL that ``str(DatabaseError)`` shows (``.statement`` has it all).
SQL_SHOWN = 1000
#: Characters of the driver's message that it shows (``.orig`` has it all).
MESSAGE_SHOWN = 2000
#: Parameters shown: values of a flat list, rows (or arrays) of a nested one, and items of each row.
_FLAT_SHOWN = 10
_ROWS_SHOWN = 5
#: Characters shown of any one parameter value.
_VALUE_SHOWN = 60


def _cut(text: str, limit: int, where: str) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters; all of it in {where})"


def _shown_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        body = ", ".join(_shown_value(v) for v in value[:_ROWS_SHOWN])
        more = f", ... {len(value):,} in all" if len(value) > _ROWS_SHOWN else ""
        return f"({body}{more})" if isinstance(value, tuple) else f"[{body}{more}]"
    text = repr(value)
    return text if len(text) <= _VALUE_SHOWN else f"{text[:_VALUE_SHOWN]}...({len(text):,} characters)"


def _shown_params(params: Sequence[Any] | dict[str, Any]) -> str:
    """The first parameters (the first rows, for an executemany or arrays) and how many there were."""
    if isinstance(params, dict):
        shown = [f"{k!r}: {_shown_value(v)}" for k, v in list(params.items())[:_FLAT_SHOWN]]
        total, kind = len(params), "values"
    else:
        nested = len(params) > 0 and isinstance(params[0], (list, tuple))
        top = _ROWS_SHOWN if nested else _FLAT_SHOWN
        shown = [_shown_value(v) for v in params[:top]]
        total, kind = len(params), "rows" if nested else "values"
    if total <= len(shown):
        return "[" + ", ".join(shown) + "]"
    return f"{total:,} {kind}, the first {len(shown)}: [" + ", ".join(shown) + ", ...]"


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


class SchemaDriftError(MapperError):
    """The live database's tables differ from the mappers (``Database.check_schema()`` lists how).

    Attributes:
        differences: the ``mapper.drift.Difference`` items found.
    """

    def __init__(self, message: str, differences: list[Any] | None = None) -> None:
        super().__init__(message)
        self.differences = list(differences or [])


class SchemaDriftWarning(UserWarning):
    """``create_all(on_drift="warn")`` found tables that differ from the mappers."""
