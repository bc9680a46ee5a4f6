"""mapper: a data-mapper / unit-of-work persistence framework for plain domain classes."""

from __future__ import annotations

from . import errors, types
from .aio import AsyncDatabase, AsyncQuery, AsyncSession, AsyncTransaction
from .database import Database
from .embedded import Embedded
from .engine import Row
from .events import StatementEvent
from .errors import (
    ConfigurationError,
    DatabaseError,
    DuplicateIdentityError,
    FlushError,
    IntegrityError,
    MapperError,
    MultipleResultsError,
    NotFoundError,
    OperationalError,
    PendingRollbackError,
    PoolTimeoutError,
    QueryBudgetExceeded,
    QueryError,
    ReadOnlySessionError,
    RelationNotLoadedError,
    SessionClosedError,
    SessionError,
    StaleDataError,
)
from .clauses import path
from .functions import exists, func, outer
from .mapping import Mapper
from .query import Page, Query
from .replicas import ReplicaStatus
from .relations import BelongsTo, BelongsToMany, HasMany, HasOne
from .schema import Column, ForeignKey
from .serialize import to_dict
from .session import Session
from .transaction import Transaction

__all__ = [
    "Database",
    "Mapper",
    "Column",
    "ForeignKey",
    "BelongsTo",
    "HasMany",
    "HasOne",
    "BelongsToMany",
    "Session",
    "Transaction",
    "Query",
    "Row",
    "types",
    "errors",
    "MapperError",
    "ConfigurationError",
    "SessionError",
    "SessionClosedError",
    "PendingRollbackError",
    "DuplicateIdentityError",
    "ReadOnlySessionError",
    "NotFoundError",
    "MultipleResultsError",
    "QueryError",
    "QueryBudgetExceeded",
    "RelationNotLoadedError",
    "FlushError",
    "StaleDataError",
    "DatabaseError",
    "IntegrityError",
    "OperationalError",
    "PoolTimeoutError",
    "StatementEvent",
    "ReplicaStatus",
    "func",
    "path",
    "outer",
    "exists",
    "Page",
    "to_dict",
    "Embedded",
    "AsyncDatabase",
    "AsyncSession",
    "AsyncQuery",
    "AsyncTransaction",
]

__version__ = "0.1.0"
