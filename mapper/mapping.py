"""Mapper[T] classes and the per-Database registry that validates and resolves them."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import attrs

from . import inheritance
from .embedded import Embedded, bind_embedded, check_embedded
from .errors import ConfigurationError, MapperError
from .expressions import BoolExpr
from .scopes import resolve_scopes
from .relations import BelongsTo, BelongsToMany, HasMany, HasOne, Relation, parse_cascade, LAZY
from .schema import FK_ACTIONS, IDENTIFIER, Column, ForeignKeyConstraint, Index, Table, derived_name
from .types import ColumnType, DateTime, Integer, BigInteger, SmallInteger
from .validation import (
    check_hidden_columns,
    check_key_types,
    check_unfilled_fields,
    fields_without_default,
    refuse_unknown_key,
)

if TYPE_CHECKING:
    from .inheritance import Hierarchy
    from .uow.tracker import MappingRuntime

__all__ = ["Mapper", "ClassMapping", "Registry", "FieldDefault", "RelationInfo"]

T = TypeVar("T")

#: Class-level names a Mapper may set besides columns (checked so typos are caught).
MAPPER_OPTIONS: frozenset[str] = frozenset({"table", "timestamps", "lazy", "soft_delete", "default_scope"})
MAPPER_OPTIONS = MAPPER_OPTIONS | inheritance.OPTIONS
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
        "after_flush",
        "before_commit",
        "after_rollback",
    }
)


#: Every Mapper subclass declared, by its domain class (what ``to_dict`` reads relations from;
#: a Database resolves its own mappers through its Registry).
MAPPERS_BY_DOMAIN: dict[Any, list[type[Mapper[Any]]]] = {}


class Mapper(Generic[T]):
    """Base class of mappers: ``class PugMapper(Mapper[Pug])`` says how Pug is stored.

    Class attributes:
        table: the database table name.
        timestamps: add ``created_at`` / ``updated_at`` (aware UTC datetimes set by the flush).
        discriminator / discriminator_value: single-table inheritance; a base mapper names its
            discriminator column, and each mapper of the hierarchy (``class DogMapper(AnimalMapper,
            Mapper[Dog])``) the value its rows carry (see ``mapper.inheritance``).
        soft_delete: the name of a column (``"deleted_at"``) that ``session.delete()`` sets
            instead of deleting the row; reads skip rows where it is set (see ``mapper.scopes``).
        default_scope: a condition on the mapper's columns that every query of it adds.

    Columns are ``Column(...)`` attributes. A mapper instance is created per Database, so
    hook methods such as ``on_load(self, obj)`` may keep per-Database state.
    """

    table: ClassVar[str]
    timestamps: ClassVar[bool] = False
    soft_delete: ClassVar[str | None] = None
    default_scope: ClassVar[BoolExpr | None] = None
    __columns__: ClassVar[dict[str, Column]] = {}
    __relations__: ClassVar[dict[str, Relation]] = {}
    __embedded__: ClassVar[dict[str, Embedded]] = {}
    __domain__: ClassVar[Any] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        columns: dict[str, Column] = {}
        relations: dict[str, Relation] = {}
        for base in reversed(cls.__mro__[1:]):
            columns.update(getattr(base, "__columns__", {}))
            relations.update(getattr(base, "__relations__", {}))
        for key, value in list(vars(cls).items()):
            if isinstance(value, Column):
                if value.owner is not cls:
                    value.bind(cls, key)
                columns[key] = value
            elif isinstance(value, Relation):
                relations[key] = value
        cls.__columns__ = columns
        cls.__relations__ = relations
        table = vars(cls).get("table")
        if table is None and isinstance(getattr(cls, "discriminator", None), str):
            table = getattr(cls, "table", None)  # a subclass mapper shares its base's table
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
            MAPPERS_BY_DOMAIN.setdefault(domain, []).append(cls)
        cls.__embedded__ = bind_embedded(cls, columns, table if isinstance(table, str) else None)

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
    seen |= _init_assignments(cls)
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


def _init_assignments(cls: type) -> set[str]:
    """Names that ``__init__`` (of the class or its bases) assigns as ``self.<name> = ...``."""
    import ast
    import textwrap

    found: set[str] = set()
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
        except (OSError, TypeError, SyntaxError):
            continue
        fn = tree.body[0]
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) or not fn.args.args:
            continue
        me = fn.args.args[0].arg
        for node in ast.walk(fn):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = list(node.targets)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for t in targets:
                for leaf in ast.walk(t):
                    if isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) and leaf.value.id == me:
                        found.add(leaf.attr)
    return found


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
        #: The soft-delete column and the default scope (``mapper.scopes``), if declared.
        self.soft_delete: Column | None = None
        self.default_scope: BoolExpr | None = None
        #: Value objects stored in several (hidden) columns, by attribute name.
        self.embedded: dict[str, Embedded] = dict(getattr(mapper_class, "__embedded__", {}))
        self.direct_setattr = getattr(cls, "__setattr__", object.__setattr__) is object.__setattr__
        self.plain_new = getattr(cls, "__new__", object.__new__) is object.__new__
        self.on_load: Callable[[Any], None] | None = None
        self.timestamps = bool(getattr(mapper_class, "timestamps", False))
        #: Hooks by name, only those the mapper overrides.
        self.hooks: dict[str, Callable[[Any], None]] = {}
        #: Index of each column in ``columns`` (the snapshot and row order).
        self.index: dict[str, int] = {}
        #: Its SnapshotSpec, Loader and Persister in this Database, built on first use.
        self.runtime: MappingRuntime | None = None
        #: Resolved relations by attribute name, in declaration order.
        self.relations: dict[str, RelationInfo] = {}
        #: Relations of other mappings whose foreign key references this one (for deletes).
        self.referenced_by: list[RelationInfo] = []
        #: References on one foreign-key column (wired by the generated loader), by attribute
        #: name: their position in a loaded row's snapshot tuple, after the attribute columns.
        #: A loaded row keeps these reference snapshots there instead of in a dict of its own.
        self.ref_slots: dict[str, int] = {}
        #: Whether loaded objects need ``GraphLoader.wire``: a reference on several columns or
        #: a HasOne (the generated loader sets everything else).
        self.needs_wiring = False
        self.lazy: str | None = getattr(mapper_class, "lazy", None)
        #: Its place in a single-table hierarchy (see ``inheritance``), None outside one.
        self.hierarchy: Hierarchy | None = None
        #: The mappings of its mapper's base classes in that hierarchy, nearest first: the
        #: identity map registers its objects under them too.
        self.ancestors: tuple[ClassMapping[Any], ...] = ()
        if self.lazy is not None and self.lazy not in LAZY:
            msg = f"{mapper_class.__name__}.lazy = {self.lazy!r}; use one of {LAZY}"
            raise ConfigurationError(msg)

    def add_hidden_column(self, key: str, col: Column) -> Column:
        """Add a column the mapper did not declare (a derived foreign key).

        The column is hidden, unless the domain class has an attribute of that name: the
        attribute then holds the key, as a declared column would, instead of being left to
        its default while the key lives in the session.
        """
        col.bind(self.mapper_class, key)
        col.table = self.table.name
        self.index[key] = len(self.columns)
        self.columns.append(col)
        self.by_key[key] = col
        self.table.columns.append(col)
        if key in self.domain_attributes:
            self.attr_columns.append(col)
            self.field_defaults = [d for d in self.field_defaults if d.name != key]
        else:
            self.hidden_columns.append(col)
        if col.index and not col.primary_key:
            self.table.indexes.append(Index(derived_name("ix", self.table.name, (col.name,)), self.table.name, (col.name,)))
        return col

    def __repr__(self) -> str:
        return f"<ClassMapping {self.cls.__name__} by {self.name}>"


class RelationInfo:
    """A relation resolved in one Database.

    Attributes:
        decl: the declaration (BelongsTo, HasMany, HasOne, BelongsToMany).
        key: the attribute name on the source class.
        kind: the declaration class: BelongsTo, HasMany, HasOne or BelongsToMany (with the
            flags ``reference``, ``children``, ``links`` and ``to_many``).
        source / target: the mappings on either side.
        cascade: the set of "save", "delete", "orphan".
        holder: the mapping whose table holds the foreign key (None for a string junction).
        fk_cols: the foreign-key columns on the holder (or the junction columns to the source).
        ref_cols: the columns they reference (the parent's key).
        parent: the mapping the foreign key references.
        junction: the junction table of a BelongsToMany through a string.
        through: the association mapping of a BelongsToMany through a class.
        other_cols: junction/association columns referencing the target (BelongsToMany).
        edge: (holder table, fk column names): relations on one edge describe the same key.
        inverse: the mirrored relation on the target, if declared.
        order: ordering of collection members as (column, descending).
    """

    def __init__(self, decl: Relation, source: ClassMapping[Any], target: ClassMapping[Any]) -> None:
        self.decl = decl
        self.key = decl.key
        #: The declaration's class (BelongsTo, HasMany, HasOne, BelongsToMany): what kind it is.
        self.kind: type[Relation] = type(decl)
        self.to_many = decl.to_many
        self.source = source
        self.target = target
        self.name = f"{source.cls.__name__}.{decl.key}"
        self.cascade: frozenset[str] = frozenset()
        self.lazy: str | None = decl.lazy
        self.collection: type = getattr(decl, "collection", list)
        self.holder: ClassMapping[Any] | None = None
        self.fk_cols: list[Column] = []
        self.ref_cols: list[Column] = []
        self.parent: ClassMapping[Any] = target
        self.junction: Table | None = None
        self.through: ClassMapping[Any] | None = None
        self.other_cols: list[Column] = []
        self.other_ref_cols: list[Column] = []
        self.edge: tuple[str, tuple[str, ...]] = ("", ())
        self.inverse: RelationInfo | None = None
        self.order: list[tuple[Column, bool]] = []

    def fk_rule(self, which: str = "on_delete") -> str | None:
        """The database ON DELETE / ON UPDATE rule of this relation's foreign key, if any."""
        names = tuple(c.name for c in self.fk_cols)
        table = self.junction if self.junction is not None else (self.holder.table if self.holder else None)
        if table is None:
            return None
        for fk in table.foreign_keys:
            if fk.columns == names:
                return getattr(fk, which)  # type: ignore[no-any-return]
        return None

    def __repr__(self) -> str:
        return f"<RelationInfo {self.name} {self.kind.__name__}>"


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _check_column_options(where: str, col: Column) -> None:
    """Options of one column that contradict each other or take the wrong kind of value."""
    if col.primary_key and col.nullable:
        msg = f"{where} is a primary key and cannot be nullable; drop nullable=True"
        raise ConfigurationError(msg)
    if col.has_default and col.server_default is not None:
        msg = f"{where} has both default and server_default; keep one"
        raise ConfigurationError(msg)
    if col.server_default is not None and not isinstance(col.server_default, str):
        msg = f"{where}: server_default takes SQL text such as \"0\", got {col.server_default!r}; use default= for Python values"
        raise ConfigurationError(msg)
    if col.version and not isinstance(col.type, (Integer, BigInteger, SmallInteger)):
        msg = f"{where} is a version column and must be an integer type, not {col.type!r}"
        raise ConfigurationError(msg)
    for fk in col.foreign_keys:
        for action, label in ((fk.on_delete, "on_delete"), (fk.on_update, "on_update")):
            if action is not None and action not in FK_ACTIONS:
                msg = f"{where}: ForeignKey {label}={action!r} is not one of {sorted(FK_ACTIONS)}"
                raise ConfigurationError(msg)
        if "." not in fk.target:
            msg = f'{where}: ForeignKey({fk.target!r}) must name "table.column"'
            raise ConfigurationError(msg)


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
        #: Junction tables created for BelongsToMany relations through a table name.
        self.junctions: dict[str, Table] = {}
        mapper_list = inheritance.order_bases_first(list(mappers))
        for m in mapper_list:
            self._add(m)
        for cm in self.mappings:
            self._resolve_relations(cm)
        named = {id(c) for cm in self.mappings for i in cm.relations.values() for c in (*i.fk_cols, *i.other_cols)}
        named |= inheritance.discriminator_columns(self.mappings)
        for cm in self.mappings:
            check_hidden_columns(self.mappings, cm, named)
        for cm in self.mappings:
            self._resolve_foreign_keys(cm)
        for cm in self.mappings:
            for info in cm.relations.values():
                holder = info.junction.name if info.junction is not None else (info.holder.table.name if info.holder else "")
                info.edge = (holder, tuple(c.name for c in info.fk_cols))
        for cm in self.mappings:
            for info in cm.relations.values():
                self._finish_relation(info)
        for cm in self.mappings:
            refs = [i for i in cm.relations.values() if i.kind.reference and len(i.fk_cols) == 1]
            cm.ref_slots = {info.key: len(cm.attr_columns) + j for j, info in enumerate(refs)}
            cm.needs_wiring = any(not i.to_many and i.key not in cm.ref_slots for i in cm.relations.values())
        inheritance.resolve(self)
        for cm in self.mappings:
            check_unfilled_fields(cm, fields_without_default(cm.cls, _init_assignments))

    def _add(self, listed: object) -> None:
        """Validate one mapper class and resolve its columns into a ClassMapping."""
        mapper_class, cls, table = self._check_mapper(listed)
        self._check_unknown_attributes(mapper_class)
        cm: ClassMapping[Any] = ClassMapping(mapper_class, cls)
        names, defaults = _domain_fields(cls)
        cm.domain_attributes = names
        attr_names = set(names)
        db_names: dict[str, str] = {}
        check_embedded(cm.name, cm.cls, cm.embedded, attr_names, mapper_class.__relations__)
        for key, col in self._declared_columns(mapper_class, cm, table).items():
            if col.table != table:
                # A column inherited from a mapper base class: bind a copy to this table.
                col = col.copy()
                col.bind(mapper_class, key)
                col.table = table
            self._add_column(cm, key, col, attr_names, db_names)
        if not cm.pk:
            msg = (
                f"{cm.name} has no primary key; mark a column with primary_key=True, "
                "e.g. `id = Column(t.Integer, primary_key=True)`"
            )
            raise ConfigurationError(msg)
        cm.table.primary_key = list(cm.pk)
        cm.autoinc = cm.table.autoincrement_column
        resolve_scopes(cm)
        for col in cm.columns:
            if col.unique:
                cm.table.uniques.append((col.name,))
            # A key column of a composite key may have an index of its own (a lone key is one).
            if col.index and not col.unique and not (col.primary_key and len(cm.pk) == 1):
                cm.table.indexes.append(Index(derived_name("ix", table, (col.name,)), table, (col.name,)))
        mapped = set(cm.by_key) | set(mapper_class.__relations__) | set(cm.embedded)
        cm.field_defaults = [d for d in defaults if d.name not in mapped]
        if _hook_overridden(mapper_class, "on_load"):
            cm.on_load = cm.mapper.on_load
        for hook in MAPPER_HOOKS - {"on_load"}:
            if _hook_overridden(mapper_class, hook):
                cm.hooks[hook] = getattr(cm.mapper, hook)
        self.mappings.append(cm)
        self.by_class[cls] = cm
        self.by_mapper[mapper_class] = cm
        self.tables.setdefault(table, cm.table)  # a hierarchy's table is its base mapper's

    def _check_mapper(self, mapper_class: object) -> tuple[type[Mapper[Any]], type, str]:
        """The mapper class, its domain class and table, once they are known to be valid and unique."""
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
            if inheritance.declares_discriminator(mapper_class) and issubclass(mapper_class, self.by_class[cls].mapper_class):
                msg = (
                    f"{name} extends {other} but maps the same class {cls.__name__}; name its own "
                    f"domain class: `class {name}({other}, Mapper[YourSubclass])`"
                )
                raise ConfigurationError(msg)
            msg = f"{cls.__name__} is mapped twice, by {other} and {name}; keep one mapper per class"
            raise ConfigurationError(msg)
        table = vars(mapper_class).get("table", getattr(mapper_class, "table", None))
        if not isinstance(table, str) or not table:
            msg = f'{name} has no table; add `table = "{cls.__name__.lower()}s"`'
            raise ConfigurationError(msg)
        if not IDENTIFIER.fullmatch(table):
            msg = (
                f"{name}.table {table!r} is not a valid table name; use letters, digits and "
                "underscores, starting with a letter (at most 63 characters)"
            )
            raise ConfigurationError(msg)
        if table in self.tables:
            other = next(cm.name for cm in self.mappings if cm.table.name == table)
            owner = next(cm for cm in self.mappings if cm.table.name == table)
            if inheritance.shared_table_owner(mapper_class, owner):
                return mapper_class, cls, table
            msg = f"table {table!r} is mapped twice, by {other} and {name}; keep one mapper per table"
            raise ConfigurationError(msg)
        return mapper_class, cls, table

    def _declared_columns(self, mapper_class: Any, cm: ClassMapping[Any], table: str) -> dict[str, Column]:
        """The mapper's columns, with the ``timestamps`` ones added when it has that option."""
        name = mapper_class.__name__
        columns = dict(mapper_class.__columns__)
        if cm.timestamps:
            for ts in ("created_at", "updated_at"):
                if ts not in columns:
                    col = Column(DateTime(timezone=True), nullable=False)
                    col.bind(mapper_class, ts)
                    col.table = table
                    columns[ts] = col
                elif not (isinstance(ts_type := columns[ts].type, DateTime) and ts_type.timezone):
                    # The flush writes aware UTC instants, which a naive DateTime() refuses.
                    msg = (
                        f"{name}.{ts} is {columns[ts].type!r}, but timestamps = True writes aware UTC "
                        f"datetimes; declare it as Column(t.DateTime(timezone=True)), or leave it out "
                        "and let timestamps add it"
                    )
                    raise ConfigurationError(msg)
        if not columns:
            msg = f"{name} maps no columns; declare at least a primary key, e.g. `id = Column(t.Integer, primary_key=True)`"
            raise ConfigurationError(msg)
        return columns

    def _add_column(self, cm: ClassMapping[Any], key: str, col: Column, attr_names: set[str], db_names: dict[str, str]) -> None:
        """Check one column and add it to the mapping (an attribute column, or a hidden one)."""
        name = cm.name
        where = f"{name}.{key}"
        if type(col.type) is ColumnType:
            msg = (
                f"{where} has unknown type {col.type_arg!r}; use a type from mapper.types, "
                "e.g. Column(t.String(100))"
            )
            raise ConfigurationError(msg)
        if not isinstance(col.name, str) or not IDENTIFIER.fullmatch(col.name):
            msg = (
                f"{where}: column name {col.name!r} is not valid; use letters, digits and underscores, "
                f"starting with a letter or _ (at most 63), or leave out name= to use {key!r}"
            )
            raise ConfigurationError(msg)
        if col.name in db_names:
            msg = f"{where} and {name}.{db_names[col.name]} both use column name {col.name!r}; rename one with name="
            raise ConfigurationError(msg)
        db_names[col.name] = key
        _check_column_options(where, col)
        if col.version:
            if cm.version is not None:
                msg = f"{name} has two version columns ({cm.version.key} and {key}); keep one"
                raise ConfigurationError(msg)
            cm.version = col
        cm.index[key] = len(cm.columns)
        cm.columns.append(col)
        cm.by_key[key] = col
        cm.table.columns.append(col)
        if col.primary_key:
            cm.pk.append(col)
        if col.hidden and key in attr_names:
            msg = (
                f"{where} says hidden=True but {cm.cls.__name__} has an attribute {key!r}, which would never "
                f"be written or loaded; drop hidden=True to store the attribute, or rename the column"
            )
            raise ConfigurationError(msg)
        (cm.attr_columns if key in attr_names else cm.hidden_columns).append(col)

    def _check_unknown_attributes(self, mapper_class: type) -> None:
        name = mapper_class.__name__
        for klass in mapper_class.__mro__:
            if klass is Mapper or klass is Generic or klass is object:
                break
            for key, value in vars(klass).items():
                if key.startswith("_") or key in MAPPER_OPTIONS or key in MAPPER_HOOKS:
                    continue
                if isinstance(value, (Column, Relation, Embedded)):
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
                check_key_types(where, [col], [ref], fk.table)
                cm.table.foreign_keys.append(
                    ForeignKeyConstraint(cm.table.name, (col.name,), fk.table, (fk.column,), fk.on_delete, fk.on_update)
                )

    # -- relations --------------------------------------------------------------------------------

    def _target(self, cm: ClassMapping[Any], decl: Relation, what: Any = None) -> ClassMapping[Any]:
        target = decl.target if what is None else what
        where = f"{cm.name}.{decl.key}"
        if isinstance(target, str):
            found = [m for m in self.mappings if m.cls.__name__ == target or m.name == target]
            if len(found) != 1:
                msg = (
                    f"{where}: target {target!r} names no mapped class; mapped classes are "
                    f"{sorted(m.cls.__name__ for m in self.mappings)}"
                )
                raise ConfigurationError(msg)
            return found[0]
        found_cm = self.by_class.get(target) if isinstance(target, type) else None
        if found_cm is None:
            label = target.__name__ if isinstance(target, type) else repr(target)
            msg = f"{where}: target {label} is not mapped in this Database; add its mapper to Database(mappers=[...])"
            raise ConfigurationError(msg)
        return found_cm

    def _key_columns(
        self,
        holder: ClassMapping[Any],
        names: tuple[str, ...] | None,
        parent: ClassMapping[Any],
        default_prefix: str,
        where: str,
        nullable: bool = True,
        given: str | None = None,
        siblings: bool = False,
    ) -> list[Column]:
        """The holder's foreign-key columns for a reference to ``parent``'s key (derived if absent).

        Args:
            given: the option that named ``names`` (``"foreign_key"``, ``"other_key"``), or
                None when the names follow the derived-key rule. A given name that is no
                column and no attribute of the holder is derived only while nothing on the
                holder already references the parent under another name (else it is a typo).
            siblings: a BelongsTo of the holder to the parent counts as such a reference (not
                for a BelongsTo itself: two of them to one class are two keys).
        """
        pk = parent.pk
        if names is None:
            names = (f"{default_prefix}_id",) if len(pk) == 1 else tuple(f"{default_prefix}_{c.key}" for c in pk)
        if len(names) != len(pk):
            msg = f"{where}: foreign_key {names!r} has {len(names)} columns but {parent.cls.__name__}'s key has {len(pk)}"
            raise ConfigurationError(msg)
        cols = []
        for name, ref in zip(names, pk):
            col = holder.by_key.get(name)
            if col is None:
                if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
                    msg = f"{where}: {given or 'foreign_key'} {name!r} is not a valid column name"
                    raise ConfigurationError(msg)
                if name in holder.mapper_class.__relations__:
                    msg = (
                        f"{where}: {given or 'foreign_key'} {name!r} names the relation {holder.name}.{name}, "
                        f"not a key column; give the name of the column that holds {parent.cls.__name__}'s key "
                        f"(such as {name + '_id'!r})"
                    )
                    raise ConfigurationError(msg)
                if given is not None and name not in holder.domain_attributes:
                    refuse_unknown_key(holder, name, parent, where, given, siblings)
                col = holder.add_hidden_column(name, Column(ref.type, nullable=nullable, index=True))
            cols.append(col)
        return cols

    def _resolve_relations(self, cm: ClassMapping[Any]) -> None:
        attrs_ = set(cm.domain_attributes)
        for key, decl in cm.mapper_class.__relations__.items():
            where = f"{cm.name}.{key}"
            if key not in attrs_:
                msg = (
                    f"{where}: {cm.cls.__name__} has no attribute {key!r} to hold the relation; "
                    f"add `{key}` to the class (relations live in domain attributes)"
                )
                raise ConfigurationError(msg)
            if key in cm.by_key:
                msg = f"{where} is both a column and a relation; rename one"
                raise ConfigurationError(msg)
            target = self._target(cm, decl)
            info = RelationInfo(decl, cm, target)
            info.cascade = parse_cascade(decl.cascade_arg, where, decl.allowed_cascades)
            if decl.lazy is not None and decl.lazy not in LAZY:
                msg = f"{where}: lazy={decl.lazy!r}; use one of {LAZY}"
                raise ConfigurationError(msg)
            if isinstance(decl, BelongsTo):
                info.holder = cm
                info.parent = target
                given = "foreign_key" if decl.foreign_key is not None else None
                info.fk_cols = self._key_columns(cm, decl.foreign_key, target, key, where, given=given)
                info.ref_cols = list(target.pk)
            elif isinstance(decl, (HasMany, HasOne)):
                info.holder = target
                info.parent = cm
                fk_names = decl.foreign_key
                given = "foreign_key" if fk_names is not None else None
                siblings = True
                if fk_names is None and decl.inverse:
                    inv = target.mapper_class.__relations__.get(decl.inverse)
                    if isinstance(inv, BelongsTo):
                        # The inverse's key, checked as that BelongsTo checks it, whichever
                        # of the two is resolved first.
                        given = "foreign_key" if inv.foreign_key is not None else None
                        siblings = False
                        fk_names = inv.foreign_key or (
                            (f"{decl.inverse}_id",) if len(cm.pk) == 1 else tuple(f"{decl.inverse}_{c.key}" for c in cm.pk)
                        )
                info.fk_cols = self._key_columns(
                    target, fk_names, cm, _snake(cm.cls.__name__), where, given=given, siblings=siblings
                )
                info.ref_cols = list(cm.pk)
            elif isinstance(decl, BelongsToMany):
                self._resolve_junction(info, decl, where)
            if info.collection not in (list, set):
                msg = f"{where}: collection must be list or set, got {info.collection!r}"
                raise ConfigurationError(msg)
            cm.relations[key] = info
        for key, info in cm.relations.items():
            for item in info.decl.order_by:
                desc = item.startswith("-")
                name = item[1:] if desc else item
                col = info.target.by_key.get(name)
                if col is None:
                    msg = f"{cm.name}.{key}: order_by {item!r} is not an attribute of {info.target.name}"
                    raise ConfigurationError(msg)
                info.order.append((col, desc))

    def _resolve_junction(self, info: RelationInfo, decl: BelongsToMany, where: str) -> None:
        cm, target = info.source, info.target
        through = decl.through
        through_cm = None
        if isinstance(through, type) or (isinstance(through, str) and any(m.cls.__name__ == through for m in self.mappings)):
            through_cm = self._target(cm, decl, through)
        if through_cm is not None:
            info.through = through_cm
            info.holder = through_cm
            info.fk_cols = self._key_columns(
                through_cm, decl.foreign_key, cm, _snake(cm.cls.__name__), where, nullable=False,
                given="foreign_key" if decl.foreign_key is not None else None, siblings=True,
            )
            info.other_cols = self._key_columns(
                through_cm, decl.other_key, target, _snake(target.cls.__name__), where, nullable=False,
                given="other_key" if decl.other_key is not None else None, siblings=True,
            )
        elif isinstance(through, str):
            if not IDENTIFIER.fullmatch(through):
                msg = f"{where}: through={through!r} is not a valid table name"
                raise ConfigurationError(msg)
            src_names = decl.foreign_key or ((f"{_snake(cm.cls.__name__)}_id",) if len(cm.pk) == 1 else tuple(f"{_snake(cm.cls.__name__)}_{c.key}" for c in cm.pk))
            dst_names = decl.other_key or ((f"{_snake(target.cls.__name__)}_id",) if len(target.pk) == 1 else tuple(f"{_snake(target.cls.__name__)}_{c.key}" for c in target.pk))
            for option, names in (("foreign_key", src_names), ("other_key", dst_names)):
                for name in names:
                    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
                        msg = (
                            f"{where}: {option} {name!r} is not a valid column name for the junction "
                            f"{through!r}; use letters, digits and _ (63 at most, not starting with a digit)"
                        )
                        raise ConfigurationError(msg)
            if set(src_names) & set(dst_names):
                msg = f"{where}: the junction columns {src_names} and {dst_names} collide; give foreign_key= and other_key="
                raise ConfigurationError(msg)
            table = self.tables.get(through)
            if table is None:
                table = Table(through)
                cols = []
                for names, parent in ((src_names, cm), (dst_names, target)):
                    for name, ref in zip(names, parent.pk):
                        col = Column(ref.type, primary_key=True)
                        col.key = col.name = name
                        col.table = through
                        cols.append(col)
                table.columns = cols
                table.primary_key = list(cols)
                table.foreign_keys.append(ForeignKeyConstraint(through, src_names, cm.table.name, [c.name for c in cm.pk], "CASCADE"))
                table.foreign_keys.append(ForeignKeyConstraint(through, dst_names, target.table.name, [c.name for c in target.pk], "CASCADE"))
                table.indexes.append(Index(derived_name("ix", through, dst_names), through, dst_names))
                self.tables[through] = table
                self.junctions[through] = table
            elif through not in self.junctions:
                msg = f"{where}: through={through!r} is the table of a mapped class; pass the class itself"
                raise ConfigurationError(msg)
            by_name = {c.name: c for c in table.columns}
            for names in (src_names, dst_names):
                for name in names:
                    if name not in by_name:
                        msg = f"{where}: junction {through!r} has no column {name!r} (another relation declared it with other keys)"
                        raise ConfigurationError(msg)
            info.junction = table
            info.fk_cols = [by_name[n] for n in src_names]
            info.other_cols = [by_name[n] for n in dst_names]
        else:
            msg = f"{where}: through= takes a junction table name or a mapped association class, got {through!r}"
            raise ConfigurationError(msg)
        info.ref_cols = list(cm.pk)
        info.other_ref_cols = list(target.pk)
        info.parent = cm

    def _finish_relation(self, info: RelationInfo) -> None:
        where = info.name
        mapper_where = f"{info.source.name}.{info.key}"
        check_key_types(mapper_where, info.fk_cols, info.ref_cols, info.parent.table.name)
        check_key_types(mapper_where, info.other_cols, info.other_ref_cols, info.target.table.name)
        # Deleting a parent must visit every relation whose key points at it.
        info.parent.referenced_by.append(info)
        # A relation whose key column has no FOREIGN KEY gets one, so the schema and the flush
        # order know about it.
        tables = [(info.junction or (info.holder.table if info.holder else None), info.fk_cols, info.parent)]
        if info.kind.links:
            tables.append((info.junction or (info.holder.table if info.holder else None), info.other_cols, info.target))
        for table, cols, parent in tables:
            if table is None:
                continue
            names = tuple(c.name for c in cols)
            if not any(fk.columns == names for fk in table.foreign_keys):
                rule = "CASCADE" if info.kind.links else None
                table.foreign_keys.append(
                    ForeignKeyConstraint(table.name, names, parent.table.name, [c.name for c in parent.pk], rule)
                )
        if info.decl.inverse:
            inv = info.target.relations.get(info.decl.inverse)
            if inv is None:
                msg = (
                    f"{where}: inverse={info.decl.inverse!r} is not a relation of {info.target.name}; "
                    f"its relations are {sorted(info.target.relations)}"
                )
                raise ConfigurationError(msg)
            if inv.edge != info.edge and not (info.kind.links and inv.kind.links):
                msg = (
                    f"{where} and its inverse {inv.name} use different keys "
                    f"({info.edge[0]}.{info.edge[1]} vs {inv.edge[0]}.{inv.edge[1]}); give them the same foreign_key"
                )
                raise ConfigurationError(msg)
            info.inverse = inv
            if inv.inverse is None:
                inv.inverse = info

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
