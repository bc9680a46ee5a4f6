"""Value objects stored in several columns of their entity's table: ``Embedded``.

``price = Embedded(Money, prefix="price_")`` on a mapper stores the ``price`` attribute (a
``Money``, an attrs class or dataclass, frozen or not) in the columns ``price_amount`` and
``price_currency``. The columns are hidden columns of the mapping (their values live in the
session); the session composes the value object from them when a row is loaded and takes it
apart again before each flush, so that a change is a change of the value object.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum as _enum
import operator
import types as _types
import typing
import uuid as _uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from .codegen import compile_function
from .errors import ConfigurationError, FlushError, QueryError
from .expressions import And, BoolExpr, Not
from .schema import IDENTIFIER, Column
from .types import (
    Boolean,
    ColumnType,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Time,
    Uuid,
    resolve_type,
)

__all__ = ["Embedded", "embedded_of", "compose", "decompose", "embedded_columns"]

#: Column types inferred from a value class's field annotations.
_INFERRED: dict[Any, type[ColumnType]] = {
    int: Integer,
    bool: Boolean,
    str: String,
    float: Float,
    Decimal: Numeric,
    _dt.datetime: DateTime,
    _dt.date: Date,
    _dt.time: Time,
    _uuid.UUID: Uuid,
    bytes: LargeBinary,
}


def _is_value_class(cls: Any) -> bool:
    return isinstance(cls, type) and (attrs.has(cls) or dataclasses.is_dataclass(cls))


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``Optional[X]`` / ``X | None`` -> (X, True); anything else -> (hint, False)."""
    if isinstance(hint, str):  # annotation text that did not resolve: read as written
        text = hint.replace(" ", "")
        if text.startswith("Optional[") or text.endswith("|None") or text.startswith("None|"):
            return hint, True
        return hint, False
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is _types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return args[0], True
    return hint, False


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # a name that does not resolve (a class local to a function): one by one
        pass
    import sys

    module = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, hint in vars(klass).get("__annotations__", {}).items():
            if isinstance(hint, str):
                try:
                    hint = eval(hint, dict(module), {})  # noqa: S307 - the class's own annotation text
                except Exception:
                    pass  # left as text: no inference for it, columns= decides
            out[name] = hint
    return out


def _init_names(cls: type, where: str) -> list[tuple[str, str]]:
    """(field name, __init__ keyword) of every field of a value class."""
    out: list[tuple[str, str]] = []
    if attrs.has(cls):
        for a in attrs.fields(cls):
            if not a.init:
                msg = f"{where}: {cls.__name__}.{a.name} has init=False, so a loaded {cls.__name__} could not be built; drop init=False or map another class"
                raise ConfigurationError(msg)
            out.append((a.name, getattr(a, "alias", None) or a.name.lstrip("_")))
        return out
    for f in dataclasses.fields(cls):
        if not f.init:
            msg = f"{where}: {cls.__name__}.{f.name} has init=False, so a loaded {cls.__name__} could not be built; drop init=False or map another class"
            raise ConfigurationError(msg)
        out.append((f.name, f.name))
    return out


def _optional_attribute(domain: Any, key: str) -> bool:
    """Whether the domain class annotates ``key`` as Optional (the value may be None)."""
    if not isinstance(domain, type):
        return False
    hint = _hints(domain).get(key)
    return hint is not None and _unwrap_optional(hint)[1]


class Embedded:
    """A mapper attribute that stores a value object in several columns of the table.

    ``price = Embedded(Money, prefix="price_")`` maps ``Product.price`` (a ``Money`` with fields
    ``amount`` and ``currency``) onto the columns ``price_amount`` and ``price_currency``. Column
    types are inferred from the value class's annotations (``int``, ``str``, ``bool``, ``float``,
    ``Decimal``, dates and times, ``UUID``, ``bytes``, Enum subclasses), or given per field. A
    field whose annotation is itself an attrs class or dataclass is embedded in turn, its prefix
    added to this one (``address_geo_lat``).

    When the attribute may be None (annotated ``Optional[Money]``, or ``nullable=True``), every
    column is nullable and a row whose columns are all NULL loads as None. Otherwise a column is
    nullable only when its field is Optional.

    In queries, ``ProductMapper.price.amount`` is the column of one part and
    ``ProductMapper.price == Money(...)`` compares every part (``== None``: all are NULL).

    Args:
        value_class: an attrs class or a dataclass; its ``__init__`` takes every field.
        prefix: prepended to each field name to name its column; default ``"<attribute>_"``.
        columns: per field, a type (``t.Numeric(10, 2)``), a ``Column(...)`` (options such as
            ``name=`` or ``index=``) or a nested ``Embedded(...)``.
        nullable: whether the attribute may be None; default: its annotation says so.
    """

    __hash__ = object.__hash__

    def __init__(
        self,
        value_class: type,
        prefix: str | None = None,
        columns: dict[str, Any] | None = None,
        nullable: bool | None = None,
    ) -> None:
        self._value_class = value_class
        self._prefix_arg = prefix
        self._columns_arg = dict(columns or {})
        self._nullable_arg = nullable
        #: The mapper attribute (``price``, or ``address.geo`` for a nested one).
        self._key = ""
        self._mapper_class: type | None = None
        self._prefix = ""
        self._nullable = bool(nullable)
        #: Field name -> (__init__ keyword, Column or nested Embedded), in field order.
        self._parts: dict[str, tuple[str, Column | Embedded]] = {}
        self._width = 0
        self._getter: Any = None

    # -- binding (at mapper class creation) --------------------------------------------------------

    def _bind(self, owner: type, key: str, domain: Any, outer_prefix: str = "", outer_nullable: bool = False) -> list[Column]:
        """Build the part columns for ``owner.key``; returns them in field order (flattened)."""
        where = f"{owner.__name__}.{key}"
        cls = self._value_class
        if not _is_value_class(cls):
            msg = f"{where}: Embedded() takes an attrs class or a dataclass, got {cls!r}; declare the value object with @attrs.frozen or @dataclass(frozen=True)"
            raise ConfigurationError(msg)
        prefix = self._prefix_arg if self._prefix_arg is not None else f"{key.rsplit('.', 1)[-1]}_"
        if not isinstance(prefix, str):
            msg = f"{where}: prefix takes a string such as 'price_', got {prefix!r}"
            raise ConfigurationError(msg)
        self._mapper_class, self._key, self._prefix = owner, key, outer_prefix + prefix
        if self._nullable_arg is not None:
            self._nullable = bool(self._nullable_arg)
        else:
            self._nullable = _optional_attribute(domain, key) if "." not in key else False
        fields = _init_names(cls, where)
        names = [n for n, _ in fields]
        unknown = sorted(set(self._columns_arg) - set(names))
        if unknown:
            msg = f"{where}: columns= names {unknown}, which are not fields of {cls.__name__}; its fields are {names}"
            raise ConfigurationError(msg)
        if not names:
            msg = f"{where}: {cls.__name__} has no fields to store"
            raise ConfigurationError(msg)
        hints = _hints(cls)
        nullable_ctx = outer_nullable or self._nullable
        out: list[Column] = []
        self._parts = {}
        for name, kw in fields:
            hint, optional = _unwrap_optional(hints.get(name))
            spec = self._columns_arg.get(name)
            if spec is None and _is_value_class(hint):
                spec = Embedded(hint, nullable=optional)
            if isinstance(spec, Embedded):
                if spec._nullable_arg is None:
                    spec._nullable_arg = optional
                out += spec._bind(owner, f"{key}.{name}", domain, self._prefix, nullable_ctx)
                self._parts[name] = (kw, spec)
                continue
            col = self._part_column(where, name, hint, optional or nullable_ctx, spec)
            col.bind(owner, self._prefix + name)
            if not IDENTIFIER.fullmatch(col.name):
                msg = f"{where}: column name {col.name!r} (prefix {self._prefix!r} + field {name!r}) is not valid; choose another prefix"
                raise ConfigurationError(msg)
            out.append(col)
            self._parts[name] = (kw, col)
        self._width = len(out)
        flat = [name for name, (_, part) in self._parts.items() if isinstance(part, Column)]
        # The common flat value of several fields is taken apart by one attrgetter call.
        self._getter = operator.attrgetter(*flat) if len(flat) == len(self._parts) > 1 else None
        return out

    def _part_column(self, where: str, name: str, hint: Any, nullable: bool, spec: Any) -> Column:
        cls = self._value_class.__name__
        if isinstance(spec, Column):
            if nullable and not spec.nullable:
                msg = (
                    f"{where}: the column of {cls}.{name} is declared nullable=False, but the value "
                    f"may be absent ({self._why_nullable()}), which stores NULL in every column; drop "
                    f"nullable=False, or make the attribute non-optional with Embedded(..., nullable=False)"
                )
                raise ConfigurationError(msg)
            if spec.primary_key or spec.version:
                msg = f"{where}: the column of {cls}.{name} cannot be a primary key or a version column"
                raise ConfigurationError(msg)
            return spec
        if spec is not None:
            ctype = resolve_type(spec)
            if ctype is None:
                msg = f"{where}: columns[{name!r}] takes a type such as t.Numeric(10, 2), a Column(...) or an Embedded(...), got {spec!r}"
                raise ConfigurationError(msg)
            return Column(ctype, nullable=nullable)
        if isinstance(hint, type) and issubclass(hint, _enum.Enum):
            return Column(Enum(hint), nullable=nullable)
        inferred = _INFERRED.get(hint)
        if inferred is None:
            msg = (
                f"{where}: cannot infer a column type for {cls}.{name} (annotated {hint!r}); give one: "
                f"Embedded({cls}, columns={{{name!r}: t.String(100)}})"
            )
            raise ConfigurationError(msg)
        return Column(inferred, nullable=nullable)

    def _why_nullable(self) -> str:
        return "nullable=True" if self._nullable_arg else "the attribute or an enclosing value is Optional"

    # -- queries ------------------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        part = self._parts.get(name)
        if part is None:
            where = f"{self._mapper_class.__name__ if self._mapper_class else '?'}.{self._key or '?'}"
            msg = f"{where} has no part {name!r}; {self._value_class.__name__}'s fields are {list(self._parts)}"
            raise AttributeError(msg)
        return part[1]

    def __eq__(self, other: Any) -> BoolExpr:  # type: ignore[override]
        """Every part equal to the value's (``== None``: every column IS NULL)."""
        cols = embedded_columns(self)
        try:
            values = decompose(self, other, as_query=True)
        except FlushError as e:
            raise QueryError(str(e)) from None
        return And(tuple(c == v for c, v in zip(cols, values)))

    def __ne__(self, other: Any) -> BoolExpr:  # type: ignore[override]
        return Not(self == other)

    def __repr__(self) -> str:
        owner = self._mapper_class.__name__ if self._mapper_class is not None else "?"
        return f"<Embedded {owner}.{self._key or '?'} {self._value_class.__name__}>"


def embedded_of(value: Any) -> Embedded | None:
    """The declaration, if ``value`` (a mapper class attribute) is an Embedded."""
    return value if isinstance(value, Embedded) else None


def embedded_columns(e: Embedded) -> list[Column]:
    """The part columns of a declaration, nested ones included, in field order."""
    out: list[Column] = []
    for _, part in e._parts.values():
        out += embedded_columns(part) if isinstance(part, Embedded) else [part]
    return out


def compose(e: Embedded, values: Sequence[Any]) -> Any:
    """The value object of the column values ``values`` (None when absent and all are NULL)."""
    return _build(e, values, 0)[0]


def _build(e: Embedded, values: Sequence[Any], i: int) -> tuple[Any, int]:
    end = i + e._width
    if e._nullable and all(v is None for v in values[i:end]):
        return None, end
    kwargs: dict[str, Any] = {}
    for kw, part in e._parts.values():
        if isinstance(part, Embedded):
            kwargs[kw], i = _build(part, values, i)
        else:
            kwargs[kw] = values[i]
            i += 1
    return e._value_class(**kwargs), end


def decompose(e: Embedded, value: Any, as_query: bool = False) -> list[Any]:
    """The column values of a value object (all None for None, when it may be absent).

    Raises:
        FlushError: None where the value may not be absent, or an object of another class.
    """
    out: list[Any] = []
    _split(e, value, out, as_query)
    return out


def _split(e: Embedded, value: Any, out: list[Any], as_query: bool) -> None:
    where = f"{e._mapper_class.__name__ if e._mapper_class else '?'}.{e._key}"
    cls = e._value_class
    if value is None:
        if not e._nullable and not as_query:
            msg = f"{where} is None, but it is not Optional: give it a {cls.__name__}, or annotate the attribute Optional[{cls.__name__}]"
            raise FlushError(msg)
        out.extend([None] * e._width)
        return
    if not isinstance(value, cls):
        msg = f"{where} holds {value!r}, not a {cls.__name__}"
        raise FlushError(msg)
    if e._getter is not None:
        out.extend(e._getter(value))
        return
    for name, (_, part) in e._parts.items():
        v = getattr(value, name)
        if isinstance(part, Embedded):
            _split(part, v, out, as_query)
        else:
            out.append(v)


def _copy(e: Embedded) -> Embedded:
    """An unbound copy of a declaration (for a mapper that inherits it from a base mapper)."""
    cols = {k: (_copy(v) if isinstance(v, Embedded) else v.copy() if isinstance(v, Column) else v) for k, v in e._columns_arg.items()}
    return Embedded(e._value_class, e._prefix_arg, cols, e._nullable_arg)


def bind_embedded(owner: type, columns: dict[str, Column], table: str | None) -> dict[str, Embedded]:
    """Bind the Embedded attributes of a new mapper class, adding their columns to ``columns``.

    Declarations inherited from a base mapper are copied and bound to ``owner``, so that
    ``owner.price.amount`` is a column of ``owner``'s own table.

    Raises:
        ConfigurationError: a bad declaration, or a part column whose name another column has.
    """
    found: dict[str, Embedded] = {}
    for base in reversed(owner.__mro__[1:]):
        for key, e in getattr(base, "__embedded__", {}).items():
            for col in embedded_columns(e):
                columns.pop(col.key, None)
            found[key] = e
    for key, value in vars(owner).items():
        if isinstance(value, Embedded):
            found[key] = value
    domain = getattr(owner, "__domain__", None)
    for key, e in list(found.items()):
        if e._mapper_class is not owner:
            if e._mapper_class is not None:
                e = found[key] = _copy(e)
                setattr(owner, key, e)
            if key in columns:
                msg = f"{owner.__name__}.{key} is both a column and an Embedded; rename one"
                raise ConfigurationError(msg)
            for col in e._bind(owner, key, domain):
                col.hidden = True  # the domain class holds the value object, not this part
                if col.key in columns:
                    msg = (
                        f"{owner.__name__}.{key}: the column {col.key!r} of {e._value_class.__name__} "
                        f"is also a column of {owner.__name__}; give Embedded another prefix="
                    )
                    raise ConfigurationError(msg)
                if table is not None:
                    col.table = table
                columns[col.key] = col
    return found


def check_embedded(name: str, cls: type, embedded: dict[str, Embedded], attr_names: set[str], relations: dict[str, Any]) -> None:
    """Refuse an Embedded the domain class has no attribute for, one that is also a relation,
    and a part column named like a domain attribute (it would be read as that attribute).

    Raises:
        ConfigurationError: naming the mapper, the attribute and the fix.
    """
    for key, e in embedded.items():
        where = f"{name}.{key}"
        if key not in attr_names:
            msg = f"{where}: {cls.__name__} has no attribute {key!r} to hold the {e._value_class.__name__}; add it to the class"
            raise ConfigurationError(msg)
        if key in relations:
            msg = f"{where} is both an Embedded and a relation; rename one"
            raise ConfigurationError(msg)
        hint, _ = _unwrap_optional(_hints(cls).get(key))
        if isinstance(hint, type) and not issubclass(e._value_class, hint):
            msg = (
                f"{where} stores a {e._value_class.__name__}, but {cls.__name__}.{key} is annotated "
                f"{hint.__name__}; embed the class the attribute holds"
            )
            raise ConfigurationError(msg)
        for col in embedded_columns(e):
            if col.key in attr_names:
                msg = (
                    f"{where}: its column {col.key!r} has the name of the attribute {cls.__name__}.{col.key}; "
                    f"give Embedded another prefix="
                )
                raise ConfigurationError(msg)


class EmbeddedSync:
    """Moves a mapping's value objects between the domain object and the state's hidden values.

    Built per mapping by its SnapshotSpec: ``to_hidden`` before a flush looks for changes
    (the value object taken apart), ``to_object`` after hidden values were set from a row or
    put back by a rollback (the value object composed again).
    """

    __slots__ = ("items", "sync")

    def __init__(self, embedded: dict[str, Embedded], hidden_columns: Sequence[Column], owner: str = "") -> None:
        pos = {c.key: i for i, c in enumerate(hidden_columns)}
        self.items = [(key, e, [pos[c.key] for c in embedded_columns(e)]) for key, e in embedded.items()]
        #: ``sync(states)``: ``to_hidden`` for every new or persistent state (generated).
        self.sync: Any = self._generate(owner)

    def _generate(self, owner: str) -> Any:
        """The flush's scan, one straight loop per mapping (it runs over every held object of
        the class at each flush): a flat value of the declared class is read field by field and
        compared with the hidden values in place; None, subclasses and nested values take the
        general path (``decompose``), which also raises the errors."""
        ns: dict[str, Any] = {"decompose": decompose, "to_hidden": self.to_hidden}
        body: list[str] = []
        tests: list[str] = []
        for j, (key, e, positions) in enumerate(self.items):
            ns[f"e{j}"], ns[f"C{j}"] = e, e._value_class
            names = [f"a{j}_{i}" for i in range(len(positions))]
            if e._getter is not None:
                fields = list(e._parts)
                body += [
                    f"v = o.{key}",
                    f"if type(v) is C{j}:",
                    *(f"    {n} = v.{f}" for n, f in zip(names, fields)),
                    "else:",
                    f"    {', '.join(names)}, = decompose(e{j}, v)",
                ]
            else:
                body.append(f"{', '.join(names)}, = decompose(e{j}, o.{key})")
            tests += [f"({n} is not (w := h[{p}]) and {n} != w)" for n, p in zip(names, positions)]
        src = "\n".join([
            "def sync_embedded(states):",
            "    for st in states:",
            "        if st.status <= 1 and (h := st.hidden) is not None:",
            "            o = st.obj",
            *(f"            {line}" for line in body),
            f"            if {' or '.join(tests)}:",
            "                st.hidden = to_hidden(o, h)",
        ])
        return compile_function(src, ns, owner=owner or "Embedded", name="sync_embedded")

    def to_hidden(self, obj: Any, hidden: tuple[Any, ...]) -> tuple[Any, ...]:
        """``hidden`` with the parts of the object's value objects; the same tuple when equal."""
        new: list[Any] | None = None
        for key, e, positions in self.items:
            for p, v in zip(positions, decompose(e, getattr(obj, key))):
                if new is None:
                    if v == hidden[p]:
                        continue
                    new = list(hidden)
                new[p] = v
        return hidden if new is None or tuple(new) == hidden else tuple(new)

    def to_object(self, obj: Any, hidden: tuple[Any, ...], setattr_: Any) -> None:
        """Set each value object from ``hidden`` (unless the object holds an equal one)."""
        for key, e, positions in self.items:
            value = compose(e, [hidden[p] for p in positions])
            if getattr(obj, key, _MISSING) != value:
                setattr_(obj, key, value)


_MISSING: Any = object()
