"""Tables, columns and keys: pure metadata, no SQL and no I/O."""

from __future__ import annotations

import builtins
import datetime as _dt
import hashlib
import re
import uuid as _uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, Protocol, overload

from .expressions import BoolExpr, ValueExpr
from .types import (
    BigInteger,
    Boolean,
    ColumnType,
    Date,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    Uuid,
    resolve_type,
)

if TYPE_CHECKING:
    # A default, so that a bare ``Column`` (in annotations inside the package) means Column[Any].
    from typing_extensions import TypeVar

    P = TypeVar("P", default=Any)
else:
    from typing import TypeVar

    P = TypeVar("P")

class _SubquerySource(Protocol):
    """What ``in_()`` takes besides values: a subquery (``query.subquery("id")``) or a query."""

    def _in_condition(self, left: ValueExpr, negate: bool) -> BoolExpr: ...


_IntTypes = builtins.type[Integer] | Integer | builtins.type[BigInteger] | BigInteger | builtins.type[SmallInteger] | SmallInteger
_StrTypes = builtins.type[String] | String | builtins.type[Text] | Text
_BoolTypes = builtins.type[Boolean] | Boolean
_FloatTypes = builtins.type[Float] | Float
_NumericTypes = builtins.type[Numeric] | Numeric
_DateTimeTypes = builtins.type[DateTime] | DateTime
_DateTypes = builtins.type[Date] | Date
_TimeTypes = builtins.type[Time] | Time
_UuidTypes = builtins.type[Uuid] | Uuid
_BinaryTypes = builtins.type[LargeBinary] | LargeBinary

__all__ = [
    "derived_name",
    "Column",
    "ForeignKey",
    "ForeignKeyConstraint",
    "Index",
    "Table",
    "NO_DEFAULT",
    "IDENTIFIER",
    "FK_ACTIONS",
]


class _NoDefault:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT: Final = _NoDefault()

#: What a table or column name may be. Names are always quoted as well; the pattern keeps
#: a mapping from smuggling SQL through an identifier and keeps names portable.
IDENTIFIER: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def derived_name(prefix: str, table: str, columns: Sequence[str]) -> str:
    """The name of an index or constraint: ``prefix_table_columns``, at most 63 characters.

    A longer name keeps its first 54 characters and ends with 8 hex digits of a hash of the
    whole, so two long names that share a beginning stay distinct (servers cut at 63/64).
    """
    full = f"{prefix}_{table}_{'_'.join(columns)}"
    if len(full) <= 63:
        return full
    return f"{full[:54]}_{hashlib.sha1(full.encode()).hexdigest()[:8]}"

FK_ACTIONS: Final = frozenset({"CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT", "NO ACTION"})


class ForeignKey:
    """A database-level reference from a column to ``"table.column"`` (database names).

    Args:
        target: ``"table.column"`` using database names.
        on_delete: the ON DELETE rule (CASCADE, SET NULL, SET DEFAULT, RESTRICT, NO ACTION).
        on_update: the ON UPDATE rule, same choices.
    """

    __slots__ = ("target", "on_delete", "on_update")

    def __init__(self, target: str, on_delete: str | None = None, on_update: str | None = None) -> None:
        self.target = target
        self.on_delete = on_delete.upper() if isinstance(on_delete, str) else on_delete
        self.on_update = on_update.upper() if isinstance(on_update, str) else on_update

    @property
    def table(self) -> str:
        """The referenced table's name."""
        return self.target.rpartition(".")[0]

    @property
    def column(self) -> str:
        """The referenced column's name."""
        return self.target.rpartition(".")[2]

    def __repr__(self) -> str:
        return f"ForeignKey({self.target!r})"


class Column(ValueExpr, Generic[P]):
    """A mapped column, declared as an attribute of a Mapper class.

    The attribute name is the domain attribute it stores. A column the domain class has no
    attribute for is *hidden* (its value lives in the session); the mapping accepts one only
    when a relation names it as its key column or when it says ``hidden=True``, so that a
    misspelt name is an error rather than a value that is never written.

    Args:
        type: a type from ``mapper.types`` (class or instance).
        *foreign_keys: ``ForeignKey`` constraints on this column.
        primary_key: part of the primary key. A lone Integer/BigInteger key is generated
            by the database when the object's value is None.
        nullable: NULL allowed; defaults to ``not primary_key``.
        unique: a UNIQUE constraint on this column alone.
        index: an index on this column.
        default: a value, or a zero-argument callable, used at insert when the value is None.
        server_default: SQL text for the column's DDL DEFAULT, used when the value is None.
        name: the database column name (defaults to the attribute name; ``""`` is refused).
        version: an optimistic-lock counter checked by every UPDATE and DELETE.
        hidden: the domain class has no attribute of this name on purpose: the value lives
            in the session (read it with ``where()``, ``values()`` or ``identity()``).
    """

    # Not slotted: ValueExpr is, but columns are few and carry configuration.

    if TYPE_CHECKING:
        # The comparisons behave as ValueExpr's at run time; only their signatures narrow here,
        # to the column's Python type (see the overloads of ``__init__``).
        def __eq__(self, other: P | ValueExpr | None) -> BoolExpr: ...  # type: ignore[override]
        def __ne__(self, other: P | ValueExpr | None) -> BoolExpr: ...  # type: ignore[override]
        def __lt__(self, other: P | ValueExpr) -> BoolExpr: ...
        def __le__(self, other: P | ValueExpr) -> BoolExpr: ...
        def __gt__(self, other: P | ValueExpr) -> BoolExpr: ...
        def __ge__(self, other: P | ValueExpr) -> BoolExpr: ...
        def in_(self, values: Iterable[P | ValueExpr] | _SubquerySource) -> BoolExpr: ...
        def not_in(self, values: Iterable[P | ValueExpr] | _SubquerySource) -> BoolExpr: ...
        def between(self, low: P | ValueExpr, high: P | ValueExpr) -> BoolExpr: ...

    # The Python type of the column's values is the generic argument: ``Column(t.Integer,
    # nullable=False)`` is a ``Column[int]``, a nullable one a ``Column[int | None]``, so a type
    # checker refuses ``PugMapper.age == "x"`` and ``PugMapper.name < 3``.
    @overload
    def __init__(self: Column[int], type: _IntTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[int], type: _IntTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[int | None], type: _IntTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[str], type: _StrTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[str], type: _StrTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[str | None], type: _StrTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[bool], type: _BoolTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[bool], type: _BoolTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[bool | None], type: _BoolTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[float], type: _FloatTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[float], type: _FloatTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[float | None], type: _FloatTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[Decimal], type: _NumericTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[Decimal], type: _NumericTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[Decimal | None], type: _NumericTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[_dt.datetime], type: _DateTimeTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[_dt.datetime], type: _DateTimeTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[_dt.datetime | None], type: _DateTimeTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[_dt.date], type: _DateTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[_dt.date], type: _DateTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[_dt.date | None], type: _DateTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[_dt.time], type: _TimeTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[_dt.time], type: _TimeTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[_dt.time | None], type: _TimeTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[_uuid.UUID], type: _UuidTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[_uuid.UUID], type: _UuidTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[_uuid.UUID | None], type: _UuidTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[bytes], type: _BinaryTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: Literal[True], nullable: Literal[False] | None = ...) -> None: ...
    @overload
    def __init__(self: Column[bytes], type: _BinaryTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: Literal[False]) -> None: ...
    @overload
    def __init__(self: Column[bytes | None], type: _BinaryTypes, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...
    @overload
    def __init__(self: Column[Any], type: builtins.type[ColumnType] | ColumnType, *foreign_keys: ForeignKey, unique: bool = ..., index: bool = ..., default: Any = ..., server_default: str | None = ..., name: str | None = ..., version: bool = ..., hidden: bool = ..., primary_key: bool = ..., nullable: bool | None = ...) -> None: ...

    def __init__(
        self,
        type: type[ColumnType] | ColumnType,
        *foreign_keys: ForeignKey,
        primary_key: bool = False,
        nullable: bool | None = None,
        unique: bool = False,
        index: bool = False,
        default: Any = NO_DEFAULT,
        server_default: str | None = None,
        name: str | None = None,
        version: bool = False,
        hidden: bool = False,
    ) -> None:
        self.type_arg = type
        self.type: ColumnType = resolve_type(type) or ColumnType()
        self.foreign_keys: tuple[ForeignKey, ...] = foreign_keys
        self.primary_key = bool(primary_key)
        self.nullable = (not primary_key) if nullable is None else bool(nullable)
        self.unique = bool(unique)
        self.index = bool(index)
        self.default = default
        self.server_default = server_default
        self.name_arg = name
        self.version = bool(version)
        self.hidden = bool(hidden)
        #: The mapper attribute name; set by ``__set_name__`` or by the mapper.
        self.key: str = name or ""
        #: The database column name.
        self.name: str = name if name is not None else ""
        #: The Mapper class the column was declared on.
        self.owner: builtins.type | None = None
        #: The database table name, set when the mapper class is created.
        self.table: str = ""

    def __set_name__(self, owner: type, key: str) -> None:
        self.bind(owner, key)

    def bind(self, owner: type, key: str) -> None:
        """Attach the column to a mapper class under attribute ``key``."""
        self.owner = owner
        self.key = key
        # An empty name= stays empty so that the registry refuses it: it must not quietly
        # become the attribute name.
        self.name = key if self.name_arg is None else self.name_arg
        # Its own copy of the type, so that a refused value names this column.
        self.type = self.type.bound(f"{owner.__name__}.{key}")

    @property
    def has_default(self) -> bool:
        """Whether a Python-side default is declared."""
        return self.default is not NO_DEFAULT

    def default_value(self) -> Any:
        """The default for a new row: the value, or the callable's result."""
        d = self.default
        return d() if callable(d) else d

    def value_type(self) -> ColumnType:
        """The column's type, used to convert values compared with it."""
        return self.type

    def copy(self) -> Column:
        """An unbound copy with the same options (for columns a mapper generates)."""
        c = Column(
            self.type,
            *self.foreign_keys,
            primary_key=self.primary_key,
            nullable=self.nullable,
            unique=self.unique,
            index=self.index,
            default=self.default,
            server_default=self.server_default,
            name=self.name_arg,
            version=self.version,
            hidden=self.hidden,
        )
        return c

    def __repr__(self) -> str:
        owner = self.owner.__name__ if self.owner is not None else "?"
        return f"<Column {owner}.{self.key or '?'} {self.type!r}>"


class ForeignKeyConstraint:
    """A (possibly composite) foreign key between two tables, by database names."""

    __slots__ = ("table", "columns", "ref_table", "ref_columns", "on_delete", "on_update", "name")

    def __init__(
        self,
        table: str,
        columns: Sequence[str],
        ref_table: str,
        ref_columns: Sequence[str],
        on_delete: str | None = None,
        on_update: str | None = None,
    ) -> None:
        self.table = table
        self.columns = tuple(columns)
        self.ref_table = ref_table
        self.ref_columns = tuple(ref_columns)
        self.on_delete = on_delete
        self.on_update = on_update
        self.name = derived_name("fk", table, self.columns)

    def __repr__(self) -> str:
        return f"<FK {self.table}({', '.join(self.columns)}) -> {self.ref_table}({', '.join(self.ref_columns)})>"


class Index:
    """An index on one or more columns of a table."""

    __slots__ = ("name", "table", "columns", "unique")

    def __init__(self, name: str, table: str, columns: Sequence[str], unique: bool = False) -> None:
        self.name = name
        self.table = table
        self.columns = tuple(columns)
        self.unique = unique


class Table:
    """A table's resolved metadata, built by the mapping registry from a mapper.

    Attributes:
        name: the database table name.
        columns: every column, in declaration order (hidden ones included).
        primary_key: the key columns, in declaration order.
        foreign_keys: outgoing foreign-key constraints.
        uniques: column-name tuples with a UNIQUE constraint.
        indexes: non-unique and unique indexes.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.columns: list[Column] = []
        self.primary_key: list[Column] = []
        self.foreign_keys: list[ForeignKeyConstraint] = []
        self.uniques: list[tuple[str, ...]] = []
        self.indexes: list[Index] = []

    def column(self, name: str) -> Column | None:
        """The column with database name ``name``, or None."""
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def autoincrement_column(self) -> Column | None:
        """The lone integer primary key the database generates, if the table has one."""
        if len(self.primary_key) != 1:
            return None
        pk = self.primary_key[0]
        if pk.type.autoincrement_capable and not pk.has_default and pk.server_default is None:
            return pk
        return None

    def __repr__(self) -> str:
        return f"<Table {self.name}>"

