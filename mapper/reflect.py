"""Reflection: Python source of attrs domain classes and mappers for tables that already exist.

Each table becomes a domain class and its mapper; a foreign key becomes a ``BelongsTo`` with a
``HasMany`` inverse; a junction table (a key of two foreign keys and nothing else) becomes a
``BelongsToMany`` on both ends; a table with two foreign keys and payload columns stays an
association class. Every column type is chosen so that the mapper's DDL compares equal to the
catalogue's (``check_schema()`` is clean against the result); what a mapper cannot say (a
composite foreign key, a multi-column index) is written as a comment.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from .dialects import Dialect
from .drift import normalize_default, normalize_type
from .schema import Column
from .schema_read import ColumnInfo, ForeignKeyInfo, TableInfo
from .types import (
    BigInteger, Boolean, ColumnType, Date, DateTime, Float, Json, LargeBinary, Numeric, SmallInteger, String,
    Text, Time, Uuid, Integer,
)

__all__ = ["generate_module"]


def _snake(name: str) -> str:
    """``AlbumId`` -> ``album_id``; ``billing_city`` stays; never a keyword or a dunder."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    text = re.sub(r"\W+", "_", text).strip("_").lower() or "column"
    if text[0].isdigit():
        text = "c_" + text
    return text + "_" if keyword.iskeyword(text) or text in ("table", "metadata") else text


def _camel(name: str) -> str:
    """``playlist_track`` or ``PlaylistTrack`` -> ``PlaylistTrack``."""
    return "".join(part[:1].upper() + part[1:] for part in _snake(name).split("_") if part) or "Table"


def _plural(name: str) -> str:
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


def _candidates(info: ColumnInfo) -> list[ColumnType]:
    """Mapper types that may spell the catalogue type, most specific first."""
    numbers = [int(n) for n in re.findall(r"\d+", info.type)]
    out: list[ColumnType] = [
        Integer(), BigInteger(), SmallInteger(), Boolean(), Text(), Float(), Date(), DateTime(), DateTime(timezone=True),
        Time(), Uuid(), Json(), LargeBinary(),
    ]
    if numbers:
        out.insert(0, String(numbers[0]))
        out.append(Numeric(numbers[0], numbers[1] if len(numbers) > 1 else None))
        if numbers[0] <= 6:
            out += [DateTime(precision=numbers[0]), DateTime(timezone=True, precision=numbers[0])]
    if "datetime" == info.type.lower() or info.type.lower().startswith("timestamp"):
        out += [DateTime(precision=0), DateTime(timezone=True, precision=0)]
    out.append(String())
    return out


def _type_for(dialect: Dialect, info: ColumnInfo, auto: bool) -> ColumnType | None:
    """The first mapper type whose DDL on ``dialect`` compares equal to the column's type."""
    have = normalize_type(dialect.name, info.type)
    for candidate in _candidates(info):
        col = Column(candidate)
        if normalize_type(dialect.name, dialect.type_sql(col, auto and candidate.autoincrement_capable)) == have:
            return candidate
    return None


_ANNOTATIONS = {
    "int": "int", "str": "str", "bool": "bool", "float": "float", "Decimal": "Decimal", "date": "date",
    "datetime": "datetime", "time": "time", "UUID": "UUID", "bytes": "bytes",
}


@dataclass
class _Field:
    attr: str
    info: ColumnInfo
    type: ColumnType | None
    hidden: bool = False
    primary_key: bool = False
    fk: ForeignKeyInfo | None = None
    index: bool = False
    unique: bool = False


@dataclass
class _Class:
    table: TableInfo
    name: str
    fields: list[_Field] = field(default_factory=list)
    relations: list[tuple[str, str, str]] = field(default_factory=list)  # (attr, annotation, declaration)
    notes: list[str] = field(default_factory=list)
    junction: tuple[ForeignKeyInfo, ForeignKeyInfo] | None = None

    def taken(self) -> set[str]:
        return {f.attr for f in self.fields} | {r[0] for r in self.relations}

    def fresh(self, name: str) -> str:
        out, n = name, 2
        while out in self.taken():
            out, n = f"{name}_{n}", n + 1
        return out


def _junction(t: TableInfo) -> tuple[ForeignKeyInfo, ForeignKeyInfo] | None:
    """The two single-column foreign keys of a junction table: its key is both and it has no other column."""
    fks = [fk for fk in t.foreign_keys if len(fk.columns) == 1]
    if len(t.columns) != 2 or len(fks) != 2 or set(t.primary_key) != {fk.columns[0] for fk in fks}:
        return None
    return fks[0], fks[1]


def generate_module(dialect: Dialect, tables: dict[str, TableInfo], source: str) -> str:
    """Python source of domain classes and mappers for ``tables`` (as ``schema_read`` reads them).

    Args:
        dialect: the backend the tables live on (types are chosen for it).
        tables: the tables to map, by name.
        source: where they were read, for the module docstring (no password).
    """
    classes = {name: _build_class(dialect, t) for name, t in sorted(tables.items())}
    _name_classes(classes)
    for cls in classes.values():
        _add_belongs_to(cls, classes)
        _add_composite(cls, classes, dialect.name)
    for cls in classes.values():
        if cls.junction is not None:
            _add_belongs_to_many(cls, classes)
    return _render(classes, source, dialect.name)


def _name_classes(classes: dict[str, _Class]) -> None:
    seen: set[str] = set()
    for cls in classes.values():
        name, n = cls.name, 2
        while name in seen or name in ("Mapper", "Column", "Database"):
            name, n = f"{cls.name}{n}", n + 1
        cls.name = name
        seen.add(name)


def _build_class(dialect: Dialect, t: TableInfo) -> _Class:
    cls = _Class(t, _camel(t.name))
    cls.junction = _junction(t)
    single_fks = {fk.columns[0]: fk for fk in t.foreign_keys if len(fk.columns) == 1 and fk.ref_table}
    indexed = {ix.columns[0] for ix in t.indexes if len(ix.columns) == 1}
    unique = {u.columns[0] for u in t.uniques if len(u.columns) == 1}
    lone_auto = len(t.primary_key) == 1
    # A composite key to the whole primary key of another table is a relation too.
    composite = {c for fk in t.foreign_keys if len(fk.columns) > 1 for c in fk.columns}
    for info in t.columns:
        attr = cls.fresh(_snake(info.name))
        pk = info.name in t.primary_key
        ctype = _type_for(dialect, info, lone_auto and pk and info.generated)
        fk = single_fks.get(info.name)
        hidden = (fk is not None or info.name in composite) and not pk
        cls.fields.append(_Field(attr, info, ctype, hidden, pk, fk, info.name in indexed, info.name in unique))
        if ctype is None:
            cls.notes.append(f"{info.name}: no mapper type is spelled {info.type!r} on {dialect.name}; Text is a guess")
    for ix in t.indexes:
        if len(ix.columns) > 1:
            cls.notes.append(f"index {ix.name} on ({', '.join(ix.columns)}): a mapper declares single-column indexes only")
    for u in t.uniques:
        if len(u.columns) > 1:
            cls.notes.append(f"UNIQUE ({', '.join(u.columns)}): a mapper declares single-column unique constraints only")
    return cls


def _add_composite(cls: _Class, classes: dict[str, _Class], backend: str) -> None:
    """BelongsTo (with a HasMany inverse) for each foreign key of several columns that references
    the whole primary key of a mapped table, in the key's order; a comment for any other."""
    by_name = {f.info.name: f for f in cls.fields}
    for fk in cls.table.foreign_keys:
        if len(fk.columns) < 2:
            continue
        parent = classes.get(fk.ref_table)
        keys = [by_name[c] for c in fk.columns]
        if parent is None or fk.ref_columns != parent.table.primary_key or any(not f.hidden for f in keys):
            cls.notes.append(f"foreign key ({', '.join(fk.columns)}) -> {fk.ref_table}: not mapped as a relation")
            continue
        attrs_ = tuple(f.attr for f in keys)
        rel = cls.fresh(_snake(parent.name))
        children = _plural(_snake(cls.name))
        inverse = parent.fresh(children if children not in parent.taken() else f"{children}_by_{rel}")
        rules = _rules(fk, backend)
        cls.relations.append((rel, f"{parent.name} | None = None", f'BelongsTo("{parent.name}", foreign_key={attrs_!r}, inverse="{inverse}")'))
        parent.relations.append((
            inverse, f'list["{cls.name}"] = attrs.Factory(list)',
            f'HasMany("{cls.name}", foreign_key={attrs_!r}, inverse="{rel}"{_order_by(cls)})',
        ))
        if rules:
            cls.notes.append(f"foreign key ({', '.join(fk.columns)}) has {', '.join(rules)}, which a relation's key cannot declare")


def _rules(fk: ForeignKeyInfo, backend: str) -> list[str]:
    """The ON DELETE/UPDATE arguments of a key: none for NO ACTION (and InnoDB's RESTRICT, the same thing)."""
    return [
        f'{key}="{rule}"' for key, rule in (("on_delete", fk.on_delete), ("on_update", fk.on_update))
        if rule != "NO ACTION" and not (backend == "mysql" and rule == "RESTRICT")
    ]


def _add_belongs_to(cls: _Class, classes: dict[str, _Class]) -> None:
    for f in cls.fields:
        if not f.hidden or f.fk is None or f.fk.ref_table not in classes:
            continue
        parent = classes[f.fk.ref_table]
        base = f.attr[:-3] if f.attr.endswith("_id") and len(f.attr) > 3 else f"{f.attr}_{_snake(parent.name)}"
        rel = cls.fresh(base)
        children = _plural(_snake(cls.name))
        inverse = parent.fresh(children if children not in parent.taken() else f"{children}_by_{rel}")
        cls.relations.append((rel, f"{parent.name} | None = None", f'BelongsTo("{parent.name}", foreign_key="{f.attr}", inverse="{inverse}")'))
        order = _order_by(cls)
        parent.relations.append((
            inverse, f'list["{cls.name}"] = attrs.Factory(list)',
            f'HasMany("{cls.name}", foreign_key="{f.attr}", inverse="{rel}"{order})',
        ))


def _order_by(cls: _Class) -> str:
    keys = [f.attr for f in cls.fields if f.primary_key]
    return f', order_by="{keys[0]}"' if len(keys) == 1 else (f", order_by={tuple(keys)!r}" if keys else "")


def _add_belongs_to_many(junction: _Class, classes: dict[str, _Class]) -> None:
    assert junction.junction is not None
    first, second = junction.junction
    if first.ref_table not in classes or second.ref_table not in classes:
        return
    ends = [(classes[first.ref_table], first), (classes[second.ref_table], second)]
    attrs_of = {f.info.name: f.attr for f in junction.fields}
    names: list[str] = []
    for (end, fk), (other, other_fk) in (ends, ends[::-1]):
        names.append(end.fresh(_plural(_snake(other.name))))
        end.relations.append((names[-1], "", ""))  # reserve the name before the other end picks
    for i, ((end, fk), (other, other_fk)) in enumerate((ends, ends[::-1])):
        decl = (
            f'BelongsToMany("{other.name}", through="{junction.name}", foreign_key="{attrs_of[fk.columns[0]]}", '
            f'other_key="{attrs_of[other_fk.columns[0]]}", inverse="{names[1 - i]}"{_order_by(other)})'
        )
        end.relations[end.relations.index((names[i], "", ""))] = (names[i], f'list["{other.name}"] = attrs.Factory(list)', decl)


# -- rendering -------------------------------------------------------------------------------------


def _type_source(t: ColumnType | None) -> str:
    if t is None:
        return "t.Text"
    if isinstance(t, String):
        return f"t.String({t.length})" if t.length else "t.String()"
    if isinstance(t, Numeric):
        args = [str(a) for a in (t.precision, t.scale) if a is not None]
        return f"t.Numeric({', '.join(args)})"
    if isinstance(t, DateTime):
        args = (["timezone=True"] if t.timezone else []) + ([f"precision={t.precision}"] if t.precision is not None else [])
        return f"t.DateTime({', '.join(args)})" if args else "t.DateTime"
    return f"t.{type(t).__name__}"


def _annotation(t: ColumnType | None) -> str:
    name = (t.python_type.__name__ if t is not None else "str")
    return _ANNOTATIONS.get(name, "Any")


def _column_source(backend: str, default: str | None, f: _Field, related: bool) -> str:
    args = [_type_source(f.type)]
    if f.fk is not None:
        rules = _rules(f.fk, backend)
        args.append(f'ForeignKey("{f.fk.ref_table}.{f.fk.ref_columns[0]}"' + "".join(f", {r}" for r in rules) + ")")
    if f.primary_key:
        args.append("primary_key=True")
    elif not f.info.nullable:
        args.append("nullable=False")
    if f.unique:
        args.append("unique=True")
    if f.index and not f.unique:
        args.append("index=True")
    if default is not None:
        args.append(f"server_default={default!r}")
    if f.hidden and not related:
        args.append("hidden=True")  # a key to a table not mapped here: its value lives in the session
    if f.info.name != f.attr:
        args.append(f"name={f.info.name!r}")
    return f"Column({', '.join(args)})"


def _render(classes: dict[str, _Class], source: str, backend: str) -> str:
    lines = [
        f'"""Domain classes and mappers for the tables of {source} (written by python -m mapper inspect)."""',
        "",
        "from __future__ import annotations",
        "",
        "from datetime import date, datetime, time",
        "from decimal import Decimal",
        "from typing import Any",
        "from uuid import UUID",
        "",
        "import attrs",
        "",
        "from mapper import BelongsTo, BelongsToMany, Column, ForeignKey, HasMany, Mapper",
        "from mapper import types as t",
        "",
    ]
    for cls in classes.values():
        lines += ["", "@attrs.define", f"class {cls.name}:"]
        for f in cls.fields:
            if not f.hidden:
                lines.append(f"    {f.attr}: {_annotation(f.type)} | None = None")
        for attr, annotation, _decl in cls.relations:
            lines.append(f"    {attr}: {annotation}")
        if not any(not f.hidden for f in cls.fields) and not cls.relations:
            lines.append("    pass")
        lines.append("")
    for cls in classes.values():
        lines += ["", f"class {cls.name}Mapper(Mapper[{cls.name}]):", f"    table = {cls.table.name!r}"]
        for note in cls.notes:
            lines.append(f"    # {note}")
        for f in cls.fields:
            default = None if f.info.generated else f.info.default
            if normalize_default(default) is None:
                default = None
            related = any(
                decl.startswith("BelongsTo(") and (f'foreign_key="{f.attr}"' in decl or f"'{f.attr}'" in decl)
                for _a, _n, decl in cls.relations
            )
            lines.append(f"    {f.attr} = {_column_source(backend, default, f, related)}")
        for attr, _annotation_text, decl in cls.relations:
            lines.append(f"    {attr} = {decl}")
        lines.append("")
    names = ", ".join(f"{cls.name}Mapper" for cls in classes.values())
    lines += ["", f"MAPPERS = [{names}]", ""]
    return "\n".join(lines)


def table_names(tables: Sequence[str]) -> list[str]:
    """The tables ``inspect`` maps: all but Alembic's bookkeeping table."""
    return [t for t in tables if t != "alembic_version"]
