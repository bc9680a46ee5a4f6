"""Single-table inheritance: mapper hierarchies sharing one table, told apart by a discriminator.

A base mapper names its discriminator column (``discriminator = "kind"``); each subclass mapper
inherits the base mapper, names its own domain class and gives the value its rows carry
(``class DogMapper(AnimalMapper, Mapper[Dog]): discriminator_value = "dog"``). The registry
calls :func:`resolve` once every mapper is resolved; loaders read the rows of a mapping through
:class:`Hierarchy` (which mapping a row belongs to, where its columns are). No SQL here.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .expressions import BoolExpr
from .schema import Column

if TYPE_CHECKING:
    from .mapping import ClassMapping, Registry

__all__ = [
    "Hierarchy",
    "OPTIONS",
    "resolve",
    "order_bases_first",
    "shared_table_owner",
    "declares_discriminator",
    "discriminator_columns",
    "mapper_base",
    "scope_condition",
    "load_group",
]

#: The class-level options of a mapper in a hierarchy.
OPTIONS: frozenset[str] = frozenset({"discriminator", "discriminator_value"})


class Hierarchy:
    """A mapping's place in a single-table hierarchy.

    Attributes:
        mapping: the mapping this describes.
        root: the mapping whose mapper declares the discriminator.
        column: the discriminator column (its key on the root mapper).
        value: the discriminator value of this mapping's rows (None for an abstract base).
        parent: the mapping of the nearest mapper base class (None for the root).
        subtree: this mapping and every mapping below it, parents first.
        values: discriminator value -> mapping, for the whole subtree.
        columns: what a SELECT of this mapping returns: its own columns, then the columns
            only its subclasses have (by database name), so that each row can become any of them.
        getters: per mapping of the subtree, the function picking its own columns out of a
            row of ``columns`` (None when the row is exactly this mapping's own).
        position: where the discriminator sits in a row of ``columns``.
    """

    def __init__(self, mapping: ClassMapping[Any], root: ClassMapping[Any], column: Column, value: Any) -> None:
        self.mapping = mapping
        self.root = root
        self.column = column
        self.value = value
        self.parent: ClassMapping[Any] | None = None
        self.subtree: list[ClassMapping[Any]] = [mapping]
        self.values: dict[Any, ClassMapping[Any]] = {}
        self.columns: list[Column] = []
        self.getters: dict[ClassMapping[Any], Any] = {}
        self.position = 0

    @property
    def polymorphic(self) -> bool:
        """Whether rows of this mapping may belong to other mappings (it has subclasses)."""
        return len(self.subtree) > 1

    def mapping_for(self, value: Any, key: Any) -> ClassMapping[Any] | None:
        """The mapping of a row with this discriminator value; None for a row of another branch.

        Raises:
            ConfigurationError: no mapper of the hierarchy has this value.
        """
        found = self.values.get(value)
        if found is not None:
            return found
        root = self.root.hierarchy
        assert root is not None
        if value in root.values:
            return None  # a row of a sibling branch (a Cat read while looking for Dogs)
        known = sorted(repr(v) for v in root.values)
        msg = (
            f"{self.root.name}: a row of table {self.root.table.name!r} (key {key!r}) has "
            f"{self.column.key} = {value!r}, which no mapper of the hierarchy declares (known: "
            f"{', '.join(known) or 'none'}); map a subclass with discriminator_value = {value!r}"
        )
        raise ConfigurationError(msg)

    def split(self, rows: Sequence[Sequence[Any]], key_of: Any) -> list[tuple[ClassMapping[Any], list[int] | None, list[Any]]]:
        """Rows grouped by the mapping they belong to: (mapping, row positions, its own columns),
        in the order each mapping first appears; rows of another branch are left out. The
        positions are None when one group holds every row, in order (the common case of a
        subclass's query, read without a Python loop per row)."""
        values = list(map(itemgetter(self.position), rows))
        distinct = list(dict.fromkeys(values))
        out: list[tuple[ClassMapping[Any], list[int] | None, list[Any]]] = []
        for value in distinct:
            idx = [i for i, v in enumerate(values) if v == value] if len(distinct) > 1 else None
            m = self.mapping_for(value, key_of(rows[idx[0] if idx else 0]))
            if m is None:
                continue
            picked = list(rows) if idx is None else [rows[i] for i in idx]
            get = self.getters[m]
            out.append((m, idx, picked if get is None else list(map(get, picked))))
        return out


def mapper_base(mapper_class: type, registered: dict[type, Any]) -> type | None:
    """The nearest base class of ``mapper_class`` that is a registered mapper."""
    for base in mapper_class.__mro__[1:]:
        if base in registered:
            return base
    return None


def declares_discriminator(mapper_class: type) -> bool:
    """Whether a mapper class (or a base of it) declares a discriminator."""
    return isinstance(getattr(mapper_class, "discriminator", None), str)


def discriminator_columns(mappings: Sequence[ClassMapping[Any]]) -> set[int]:
    """The ids of the discriminator columns: hidden columns the session fills, named by the
    ``discriminator`` option rather than by a relation."""
    out: set[int] = set()
    for cm in mappings:
        name = getattr(cm.mapper_class, "discriminator", None)
        col = cm.by_key.get(name) if isinstance(name, str) else None
        if col is not None:
            out.add(id(col))
    return out


def order_bases_first(mappers: list[Any]) -> list[Any]:
    """The mapper list with each mapper of a hierarchy after the listed mappers it subclasses
    (the order is kept otherwise, repeats included, so the registry still reports them)."""
    listed = {m for m in mappers if isinstance(m, type)}
    out: list[Any] = []
    pulled: set[Any] = set()  # bases placed ahead of where they are listed
    placed: set[Any] = set()
    for m in mappers:
        if isinstance(m, type) and m in pulled:
            pulled.discard(m)
            continue
        if isinstance(m, type) and declares_discriminator(m):
            for base in reversed(m.__mro__[1:]):
                if base in listed and base not in placed:
                    out.append(base)
                    placed.add(base)
                    pulled.add(base)
        out.append(m)
        if isinstance(m, type):
            placed.add(m)
    return out


def shared_table_owner(mapper_class: type, owner: ClassMapping[Any]) -> bool:
    """Whether ``mapper_class`` may share the table of ``owner``: it subclasses owner's mapper
    (or a mapper of owner's hierarchy) and the hierarchy has a discriminator."""
    return declares_discriminator(mapper_class) and issubclass(mapper_class, owner.mapper_class)


def resolve(registry: Registry) -> None:
    """Link the hierarchies of a registry's mappings, check them, and merge their tables.

    Raises:
        ConfigurationError: a hierarchy mistake, naming the mapper and the fix.
    """
    by_mapper = registry.by_mapper
    roots: list[ClassMapping[Any]] = []
    for cm in registry.mappings:
        mc = cm.mapper_class
        if "discriminator" in vars(mc):
            roots.append(_make_root(cm))
        elif declares_discriminator(mc):
            base = mapper_base(mc, by_mapper)
            if base is None:
                root_class = next(k for k in mc.__mro__ if "discriminator" in vars(k))
                msg = (
                    f"{cm.name} extends {root_class.__name__}, which is not listed in Database(mappers=...); "
                    f"list {root_class.__name__} too"
                )
                raise ConfigurationError(msg)
            _attach(cm, by_mapper[base])
        elif "discriminator_value" in vars(mc):
            msg = (
                f"{cm.name}.discriminator_value is set but no base mapper declares a discriminator; "
                f'declare `discriminator = "kind"` (a column of the base mapper) on the base mapper'
            )
            raise ConfigurationError(msg)
    for root in roots:
        h = root.hierarchy
        assert h is not None
        for cm in h.subtree[1:]:
            _align_columns(cm)
            _check_subclass_columns(cm)
        _merge_tables(registry, root)
        for cm in h.subtree:
            _finish(cm)
    if roots:
        for cm in registry.mappings:
            _reference_slots(cm)


def _make_root(cm: ClassMapping[Any]) -> ClassMapping[Any]:
    mc = cm.mapper_class
    name = vars(mc)["discriminator"]
    col = cm.by_key.get(name) if isinstance(name, str) else None
    if col is None:
        msg = (
            f"{cm.name}.discriminator = {name!r} names no column of {cm.name}; declare the column, "
            f"e.g. `kind = Column(t.String(20), nullable=False)`, and set discriminator = \"kind\""
        )
        raise ConfigurationError(msg)
    if col not in cm.hidden_columns:
        msg = (
            f"{cm.name}.{name} is the discriminator, but {cm.cls.__name__} has an attribute {name!r}; "
            f"the class of an object is its discriminator, so remove the attribute from the domain class "
            f"(the session keeps the column)"
        )
        raise ConfigurationError(msg)
    if col.primary_key or col.has_default or col.server_default is not None:
        msg = f"{cm.name}.{name} is the discriminator: it takes no primary_key, default or server_default (each mapper's discriminator_value is its default)"
        raise ConfigurationError(msg)
    value = vars(mc).get("discriminator_value")
    h = Hierarchy(cm, cm, col, value)
    cm.hierarchy = h
    _own_discriminator(cm, h)
    return cm


def _attach(cm: ClassMapping[Any], parent: ClassMapping[Any]) -> None:
    mc = cm.mapper_class
    ph = parent.hierarchy
    assert ph is not None
    if "discriminator_value" not in vars(mc):
        msg = (
            f"{cm.name} extends {parent.name} but gives no discriminator_value; add e.g. "
            f"`discriminator_value = {cm.cls.__name__.lower()!r}` (the {ph.column.key} its rows carry)"
        )
        raise ConfigurationError(msg)
    if not issubclass(cm.cls, parent.cls):
        msg = (
            f"{cm.name} extends {parent.name}, but {cm.cls.__name__} is not a subclass of "
            f"{parent.cls.__name__}; derive the domain class from {parent.cls.__name__}"
        )
        raise ConfigurationError(msg)
    if cm.table.name != parent.table.name:
        msg = (
            f"{cm.name}.table = {cm.table.name!r}, but {cm.name} extends {parent.name}, whose hierarchy "
            f"is stored in {parent.table.name!r}: only single-table inheritance is supported (one "
            f"table, told apart by {ph.column.key}); remove `table` from {cm.name}"
        )
        raise ConfigurationError(msg)
    value = vars(mc)["discriminator_value"]
    h = Hierarchy(cm, ph.root, ph.column, value)
    h.parent = parent
    cm.hierarchy = h
    cm.ancestors = (parent, *parent.ancestors)
    for a in cm.ancestors:
        assert a.hierarchy is not None
        a.hierarchy.subtree.append(cm)
    _own_discriminator(cm, h)


def _own_discriminator(cm: ClassMapping[Any], h: Hierarchy) -> None:
    """Give the mapping its own copy of the discriminator column, whose default is its value
    (so the flush writes it on insert like any default), and check the value is unique."""
    root_h = h.root.hierarchy
    assert root_h is not None
    if h.value is not None:
        if not isinstance(h.value, (str, int)) or isinstance(h.value, bool):
            msg = f"{cm.name}.discriminator_value must be a str or an int, got {h.value!r}"
            raise ConfigurationError(msg)
        other = root_h.values.get(h.value)
        if other is not None:
            msg = f"{cm.name} and {other.name} both use discriminator_value {h.value!r}; give each mapper its own"
            raise ConfigurationError(msg)
        root_h.values[h.value] = cm
    key = h.column.key
    old = cm.by_key[key]
    col = old.copy()
    col.bind(cm.mapper_class, key)
    col.table = old.table
    col.default = h.value if h.value is not None else old.default
    col.nullable = False
    cm.by_key[key] = col
    cm.columns[cm.index[key]] = col
    cm.hidden_columns = [col if c is old else c for c in cm.hidden_columns]


def _align_columns(cm: ClassMapping[Any]) -> None:
    """Give a subclass mapping every column of its parent, hidden ones at the parent's positions.

    Code that reads a column of a whole hierarchy's objects through the base mapping (a foreign
    key of children of ``owner.animals``) finds hidden values by position, so a subclass keeps
    its parent's hidden columns first, in the parent's order, and its own after them.
    """
    h = cm.hierarchy
    assert h is not None and h.parent is not None
    parent = h.parent
    by_name = {c.name: c for c in cm.columns}
    for col in parent.columns:
        if col.name not in by_name:
            # A key column the parent got from a relation only it declares.
            cm.index[col.key] = len(cm.columns)
            cm.columns.append(col)
            cm.by_key[col.key] = col
            (cm.attr_columns if col.key in cm.domain_attributes else cm.hidden_columns).append(col)
            by_name[col.name] = col
    own_hidden = {c.name: c for c in cm.hidden_columns}
    first = [own_hidden[c.name] for c in parent.hidden_columns if c.name in own_hidden]
    taken = {id(c) for c in first}
    cm.hidden_columns = first + [c for c in cm.hidden_columns if id(c) not in taken]


def _check_subclass_columns(cm: ClassMapping[Any]) -> None:
    """A column only a subclass has is NULL in the other subclasses' rows: it must allow that."""
    h = cm.hierarchy
    assert h is not None and h.parent is not None
    parent_names = {c.name for c in h.parent.columns}
    for col in cm.columns:
        if col.name in parent_names:
            continue
        where = f"{cm.name}.{col.key}"
        if col.primary_key:
            msg = f"{where} is a primary key, but the key of a hierarchy is the base mapper's; declare it on {h.root.name}"
            raise ConfigurationError(msg)
        if not col.nullable and not col.has_default and col.server_default is None:
            msg = (
                f"{where} is NOT NULL without a default, but the rows of the other mappers of "
                f"{h.root.name}'s table have no {col.key}; drop nullable=False (it is stored in the "
                f"shared table {h.root.table.name!r}) or give it a default or server_default"
            )
            raise ConfigurationError(msg)


def _merge_tables(registry: Registry, root: ClassMapping[Any]) -> None:
    """One table for the whole hierarchy: the root's, with every subclass column (NULL-able
    when another branch's rows leave it empty), key, index and unique set."""
    h = root.hierarchy
    assert h is not None
    table = root.table
    names = {c.name for c in table.columns}
    for cm in h.subtree[1:]:
        for col in cm.columns:
            if col.name not in names:
                names.add(col.name)
                if not col.nullable:
                    # Rows of the other mappers leave it empty: the default covers this one's.
                    shared = col.copy()
                    shared.bind(cm.mapper_class, col.key)
                    shared.table = table.name
                    shared.nullable = True
                    col = shared
                table.columns.append(col)
        own = cm.table
        for fk in own.foreign_keys:
            if not any(f.columns == fk.columns for f in table.foreign_keys):
                table.foreign_keys.append(fk)
        for ix in own.indexes:
            if not any(i.name == ix.name for i in table.indexes):
                table.indexes.append(ix)
        for u in own.uniques:
            if u not in table.uniques:
                table.uniques.append(u)
        cm.table = table
        for a in cm.ancestors:
            for info in a.referenced_by:
                if info not in cm.referenced_by:
                    cm.referenced_by.append(info)
    registry.tables[table.name] = table


def _finish(cm: ClassMapping[Any]) -> None:
    """The columns a SELECT of ``cm`` returns and how each subtree mapping picks its own."""
    h = cm.hierarchy
    assert h is not None
    cols = list(cm.columns)
    names = {c.name: i for i, c in enumerate(cols)}
    for sub in h.subtree[1:]:
        for col in sub.columns:
            if col.name not in names:
                names[col.name] = len(cols)
                cols.append(col)
    h.columns = cols
    h.position = names[h.column.name]
    root_h = h.root.hierarchy
    assert root_h is not None
    h.values = {sub.hierarchy.value: sub for sub in h.subtree if sub.hierarchy is not None and sub.hierarchy.value is not None}
    for sub in h.subtree:
        if sub is cm:
            # Its own columns are the head of the row.
            h.getters[sub] = None if len(cols) == len(cm.columns) else itemgetter(slice(0, len(cm.columns)))
        else:
            h.getters[sub] = itemgetter(*[names[c.name] for c in sub.columns])


def _reference_slots(cm: ClassMapping[Any]) -> None:
    """A reference to a mapping with subclasses is loaded with its objects, not as a stand-in.

    A stand-in is an instance of the target's class that becomes the loaded object in place,
    and a slotted class cannot become a subclass with more slots: the row must be read first.
    """
    refs = [
        i for i in cm.relations.values()
        if i.kind.reference and len(i.fk_cols) == 1 and not (i.target.hierarchy is not None and i.target.hierarchy.polymorphic)
    ]
    cm.ref_slots = {info.key: len(cm.attr_columns) + j for j, info in enumerate(refs)}
    cm.needs_wiring = any(not i.to_many and i.key not in cm.ref_slots for i in cm.relations.values())


def load_group(cm: ClassMapping[Any], paths: Sequence[str]) -> ClassMapping[Any]:
    """The mapping through which ``session.load()`` loads ``paths`` for objects of ``cm``: its
    farthest ancestor that has the first relation of every path (so objects of several classes
    of a hierarchy load together), else ``cm`` itself."""
    found = cm
    firsts = [p.split(".", 1)[0] for p in paths if isinstance(p, str)]
    for a in cm.ancestors:
        if all(f in a.relations for f in firsts):
            found = a
    return found


def scope_condition(cm: ClassMapping[Any]) -> tuple[BoolExpr, ...]:
    """The condition that keeps a query of ``cm`` to its own rows: none for a mapping outside a
    hierarchy or for a root, the discriminator values of its subtree otherwise."""
    h = cm.hierarchy
    if h is None or h.parent is None:
        return ()
    values = list(h.values)
    col = h.root.by_key[h.column.key]
    return (col == values[0],) if len(values) == 1 else (col.in_(values),)
