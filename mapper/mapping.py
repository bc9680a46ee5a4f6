"""Mapper[T] classes and the per-Database registry that validates and resolves them."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from .errors import ConfigurationError, MapperError
from .schema import FK_ACTIONS, IDENTIFIER, Column, ForeignKeyConstraint, Index, Table
from .types import ColumnType, DateTime, Integer, BigInteger, SmallInteger

__all__ = ["Mapper", "ClassMapping", "Registry", "FieldDefault"]

T = TypeVar("T")

#: Class-level names a Mapper may set besides columns (checked so typos are caught).
MAPPER_OPTIONS: frozenset[str] = frozenset({"table", "timestamps", "lazy"})
#: Hook method names a Mapper may define.
MAPPER_HOOKS: frozenset[str] = frozenset(
    {
        "on_load",
        "before_insert",
        "after_insert",
        "before_update",
        "after_update",
        "before_delete",
        "after_delete",
    }
)


class Mapper(Generic[T]):
    """Base class of mappers: ``class PugMapper(Mapper[Pug])`` says how Pug is stored.

    Class attributes:
        table: the database table name.
        timestamps: add ``created_at`` / ``updated_at`` (aware UTC datetimes set by the flush).

    Columns are ``Column(...)`` attributes. A mapper instance is created per Database, so
    hook methods such as ``on_load(self, obj)`` may keep per-Database state.
    """

    table: ClassVar[str]
    timestamps: ClassVar[bool] = False
    __columns__: ClassVar[dict[str, Column]] = {}
    __domain__: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        columns: dict[str, Column] = {}
        for base in reversed(cls.__mro__[1:]):
            columns.update(getattr(base, "__columns__", {}))
        for key, value in list(vars(cls).items()):
            if isinstance(value, Column):
                if value.owner is not cls:
                    value.bind(cls, key)
                columns[key] = value
        cls.__columns__ = columns
        table = vars(cls).get("table")
        for col in columns.values():
            if col.owner is cls and isinstance(table, str):
                col.table = table
        domain = None
        for base in getattr(cls, "__orig_bases__", ()):
            if typing.get_origin(base) is Mapper:
                args = typing.get_args(base)
                if args:
                    domain = args[0]
        if domain is not None:
            cls.__domain__ = domain

    def on_load(self, obj: T) -> None:
        """Called with each object built from a row; override to fill derived state."""


class FieldDefault:
    """How to initialise a domain attribute that no column fills (when built without __init__)."""

    __slots__ = ("name", "value", "factory", "takes_self")

    def __init__(self, name: str, value: Any, factory: Callable[..., Any] | None, takes_self: bool) -> None:
        self.name = name
        self.value = value
        self.factory = factory
        self.takes_self = takes_self


def _domain_fields(cls: type) -> tuple[list[str], list[FieldDefault]]:
    """Attribute names of a domain class and the defaults of those that have one."""
    names: list[str] = []
    defaults: list[FieldDefault] = []
    if attrs.has(cls):
        for f in attrs.fields(cls):
            names.append(f.name)
            d = f.default
            if isinstance(d, attrs.Factory):  # type: ignore[arg-type]
                defaults.append(FieldDefault(f.name, None, d.factory, d.takes_self))
            elif d is not attrs.NOTHING:
                defaults.append(FieldDefault(f.name, d, None, False))
        return names, defaults
    if dataclasses.is_dataclass(cls):
        for df in dataclasses.fields(cls):
            names.append(df.name)
            if df.default_factory is not dataclasses.MISSING:
                defaults.append(FieldDefault(df.name, None, df.default_factory, False))
            elif df.default is not dataclasses.MISSING:
                defaults.append(FieldDefault(df.name, df.default, None, False))
        return names, defaults
    # A plain class: annotations, slots and __init__ parameters name its attributes.
    seen: set[str] = set()
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        for n in getattr(klass, "__annotations__", {}):
            seen.add(n)
        slots = vars(klass).get("__slots__", ())
        for n in [slots] if isinstance(slots, str) else slots:
            if n not in ("__weakref__", "__dict__"):
                seen.add(n)
    init = vars(cls).get("__init__") or getattr(cls, "__init__", None)
    if init is not None and init is not object.__init__:
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        for p in list(params.values())[1:]:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                seen.add(p.name)
    names = sorted(seen)
    return names, defaults


class ClassMapping(Generic[T]):
    """The resolved mapping of one domain class in one Database.

    Attributes:
        mapper_class / mapper: the Mapper subclass and its instance for this Database.
        cls: the domain class.
        table: its Table metadata.
        columns: every column in table order, hidden ones included.
        attr_columns: columns stored in a domain attribute of the same name.
        hidden_columns: columns whose value lives in the session.
        pk: the primary-key columns; ``autoinc`` the generated one, if any.
        version: the optimistic-lock column, if any.
        by_key: mapper attribute name -> column.
        field_defaults: how to initialise unmapped domain attributes on load.
        direct_setattr: the class keeps object.__setattr__, so ``obj.x = v`` is safe on load.
    """

    def __init__(self, mapper_class: type[Mapper[T]], cls: type[T]) -> None:
        self.mapper_class = mapper_class
        self.mapper: Mapper[T] = mapper_class()
        self.cls = cls
        self.name = mapper_class.__name__
        self.table = Table(mapper_class.table)
        self.columns: list[Column] = []
        self.attr_columns: list[Column] = []
        self.hidden_columns: list[Column] = []
        self.pk: list[Column] = []
        self.autoinc: Column | None = None
        self.version: Column | None = None
        self.by_key: dict[str, Column] = {}
        self.field_defaults: list[FieldDefault] = []
        self.domain_attributes: list[str] = []
        self.direct_setattr = getattr(cls, "__setattr__", object.__setattr__) is object.__setattr__
        self.plain_new = getattr(cls, "__new__", object.__new__) is object.__new__
        self.on_load: Callable[[Any], None] | None = None
        self.timestamps = bool(getattr(mapper_class, "timestamps", False))
        #: Hooks by name, only those the mapper overrides.
        self.hooks: dict[str, Callable[[Any], None]] = {}
        #: Index of each column in ``columns`` (the snapshot and row order).
        self.index: dict[str, int] = {}

    @property
    def pk_single(self) -> bool:
        """Whether the primary key is one column."""
        return len(self.pk) == 1

    def __repr__(self) -> str:
        return f"<ClassMapping {self.cls.__name__} by {self.name}>"


def _hook_overridden(mapper_class: type, name: str) -> bool:
    fn = getattr(mapper_class, name, None)
    return fn is not None and fn is not getattr(Mapper, name, None)


class Registry:
    """The mappers of one Database, validated and resolved.

    Raises:
        ConfigurationError: for every mistake in a mapping, naming mapper and attribute.
    """

    def __init__(self, mappers: Iterable[type[Mapper[Any]]]) -> None:
        self.mappings: list[ClassMapping[Any]] = []
        self.by_class: dict[type, ClassMapping[Any]] = {}
        self.by_mapper: dict[type, ClassMapping[Any]] = {}
        self.tables: dict[str, Table] = {}
        mapper_list = list(mappers)
        for m in mapper_list:
            self._add(m)
        for cm in self.mappings:
            self._resolve_foreign_keys(cm)

    def _add(self, mapper_class: Any) -> None:
        if not (isinstance(mapper_class, type) and issubclass(mapper_class, Mapper)):
            msg = f"Database(mappers=...) takes Mapper subclasses, got {mapper_class!r}"
            raise ConfigurationError(msg)
        name = mapper_class.__name__
        if mapper_class in self.by_mapper:
            msg = f"{name} is listed twice in Database(mappers=...); list it once"
            raise ConfigurationError(msg)
        cls = mapper_class.__domain__
        if not isinstance(cls, type):
            msg = (
                f"{name} does not name its domain class; declare it as "
                f"`class {name}(Mapper[YourClass])`"
            )
            raise ConfigurationError(msg)
        if cls in self.by_class:
            other = self.by_class[cls].name
            msg = f"{cls.__name__} is mapped twice, by {other} and {name}; keep one mapper per class"
            raise ConfigurationError(msg)
        table = vars(mapper_class).get("table", getattr(mapper_class, "table", None))
        if not isinstance(table, str) or not table:
            msg = f'{name} has no table; add `table = "{cls.__name__.lower()}s"`'
            raise ConfigurationError(msg)
        if not IDENTIFIER.match(table):
            msg = (
                f"{name}.table {table!r} is not a valid table name; use letters, digits and "
                "underscores, starting with a letter (at most 63 characters)"
            )
            raise ConfigurationError(msg)
        if table in self.tables:
            other = next(cm.name for cm in self.mappings if cm.table.name == table)
            msg = f"table {table!r} is mapped twice, by {other} and {name}; keep one mapper per table"
            raise ConfigurationError(msg)
        self._check_unknown_attributes(mapper_class)
        cm: ClassMapping[Any] = ClassMapping(mapper_class, cls)
        names, defaults = _domain_fields(cls)
        cm.domain_attributes = names
        attr_names = set(names)
        columns = dict(mapper_class.__columns__)
        if cm.timestamps:
            for ts in ("created_at", "updated_at"):
                if ts not in columns:
                    col = Column(DateTime(timezone=True), nullable=False)
                    col.bind(mapper_class, ts)
                    col.table = table
                    columns[ts] = col
        if not columns:
            msg = f"{name} maps no columns; declare at least a primary key, e.g. `id = Column(t.Integer, primary_key=True)`"
            raise ConfigurationError(msg)
        db_names: dict[str, str] = {}
        for key, col in columns.items():
            where = f"{name}.{key}"
            if col.table != table:
                # A column inherited from a mapper base class: bind a copy to this table.
                col = col.copy()
                col.bind(mapper_class, key)
                col.table = table
            if type(col.type) is ColumnType:
                msg = (
                    f"{where} has unknown type {col.type_arg!r}; use a type from mapper.types, "
                    "e.g. Column(t.String(100))"
                )
                raise ConfigurationError(msg)
            if not IDENTIFIER.match(col.name):
                msg = f"{where}: column name {col.name!r} is not valid; use letters, digits and underscores"
                raise ConfigurationError(msg)
            if col.name in db_names:
                msg = f"{where} and {name}.{db_names[col.name]} both use column name {col.name!r}; rename one with name="
                raise ConfigurationError(msg)
            db_names[col.name] = key
            if col.primary_key and col.nullable:
                msg = f"{where} is a primary key and cannot be nullable; drop nullable=True"
                raise ConfigurationError(msg)
            if col.has_default and col.server_default is not None:
                msg = f"{where} has both default and server_default; keep one"
                raise ConfigurationError(msg)
            if col.server_default is not None and not isinstance(col.server_default, str):
                msg = f"{where}: server_default takes SQL text such as \"0\", got {col.server_default!r}; use default= for Python values"
                raise ConfigurationError(msg)
            if col.version:
                if not isinstance(col.type, (Integer, BigInteger, SmallInteger)):
                    msg = f"{where} is a version column and must be an integer type, not {col.type!r}"
                    raise ConfigurationError(msg)
                if cm.version is not None:
                    msg = f"{name} has two version columns ({cm.version.key} and {key}); keep one"
                    raise ConfigurationError(msg)
                cm.version = col
            for fk in col.foreign_keys:
                for action, label in ((fk.on_delete, "on_delete"), (fk.on_update, "on_update")):
                    if action is not None and action not in FK_ACTIONS:
                        msg = f"{where}: ForeignKey {label}={action!r} is not one of {sorted(FK_ACTIONS)}"
                        raise ConfigurationError(msg)
                if "." not in fk.target:
                    msg = f'{where}: ForeignKey({fk.target!r}) must name "table.column"'
                    raise ConfigurationError(msg)
            cm.index[key] = len(cm.columns)
            cm.columns.append(col)
            cm.by_key[key] = col
            cm.table.columns.append(col)
            if col.primary_key:
                cm.pk.append(col)
            (cm.attr_columns if key in attr_names else cm.hidden_columns).append(col)
        if not cm.pk:
            msg = (
                f"{name} has no primary key; mark a column with primary_key=True, "
                "e.g. `id = Column(t.Integer, primary_key=True)`"
            )
            raise ConfigurationError(msg)
        cm.table.primary_key = list(cm.pk)
        cm.autoinc = cm.table.autoincrement_column
        for col in cm.columns:
            if col.unique:
                cm.table.uniques.append((col.name,))
            if col.index and not col.unique and not col.primary_key:
                cm.table.indexes.append(Index(f"ix_{table}_{col.name}"[:63], table, (col.name,)))
        mapped = set(cm.by_key)
        cm.field_defaults = [d for d in defaults if d.name not in mapped]
        if _hook_overridden(mapper_class, "on_load"):
            cm.on_load = cm.mapper.on_load
        for hook in MAPPER_HOOKS - {"on_load"}:
            if _hook_overridden(mapper_class, hook):
                cm.hooks[hook] = getattr(cm.mapper, hook)
        self.mappings.append(cm)
        self.by_class[cls] = cm
        self.by_mapper[mapper_class] = cm
        self.tables[table] = cm.table

    def _check_unknown_attributes(self, mapper_class: type) -> None:
        name = mapper_class.__name__
        for klass in mapper_class.__mro__:
            if klass is Mapper or klass is Generic or klass is object:
                break
            for key, value in vars(klass).items():
                if key.startswith("_") or key in MAPPER_OPTIONS or key in MAPPER_HOOKS:
                    continue
                if isinstance(value, Column):
                    continue
                if isinstance(value, ColumnType) or (isinstance(value, type) and issubclass(value, ColumnType)):
                    msg = f"{name}.{key} is a bare type; wrap it in a column: `{key} = Column({getattr(value, '__name__', type(value).__name__)})`"
                    raise ConfigurationError(msg)
                if callable(value) or isinstance(value, (staticmethod, classmethod, property)):
                    continue
                msg = (
                    f"{name}.{key} = {value!r} is not a mapper attribute; declare columns with "
                    f"Column(...), and use only the options {sorted(MAPPER_OPTIONS)}"
                )
                raise ConfigurationError(msg)

    def _resolve_foreign_keys(self, cm: ClassMapping[Any]) -> None:
        for col in cm.columns:
            for fk in col.foreign_keys:
                where = f"{cm.name}.{col.key}"
                target = self.tables.get(fk.table)
                if target is None:
                    msg = (
                        f"{where}: ForeignKey({fk.target!r}) names unknown table {fk.table!r}; "
                        f"mapped tables are {sorted(self.tables)}"
                    )
                    raise ConfigurationError(msg)
                ref = target.column(fk.column)
                if ref is None:
                    msg = (
                        f"{where}: ForeignKey({fk.target!r}) names unknown column {fk.column!r} of "
                        f"table {fk.table!r}; its columns are {[c.name for c in target.columns]}"
                    )
                    raise ConfigurationError(msg)
                cm.table.foreign_keys.append(
                    ForeignKeyConstraint(cm.table.name, (col.name,), fk.table, (fk.column,), fk.on_delete, fk.on_update)
                )

    def mapping_for(self, cls: Any) -> ClassMapping[Any]:
        """The mapping of a domain class (or of a mapper class), else a MapperError naming the fix."""
        cm = self.by_class.get(cls)
        if cm is None:
            cm = self.by_mapper.get(cls)
        if cm is None:
            label = cls.__name__ if isinstance(cls, type) else repr(cls)
            msg = (
                f"{label} is not mapped in this Database; add its mapper to "
                f"Database(mappers=[...])"
            )
            raise MapperError(msg)
        return cm

    def mapping_of(self, obj: object) -> ClassMapping[Any]:
        """The mapping of an instance's class."""
        cm = self.by_class.get(type(obj))
        if cm is None:
            return self.mapping_for(type(obj))
        return cm


def attribute_names(cm: ClassMapping[Any]) -> Sequence[str]:
    """Mapper attribute names usable in queries, for error messages."""
    return sorted(cm.by_key)
