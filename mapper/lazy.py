"""Unloaded relations that load themselves, for the whole cohort, on first use.

The domain class is never touched: an unloaded collection is a list (or set) subclass
stored in the attribute, and an unloaded to-one reference is an empty instance of a
generated subclass of the target class that becomes the real class once loaded
(Python allows assigning ``__class__`` between layout-compatible classes, slotted
attrs classes included).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from operator import is_
from typing import Any

from .errors import RelationNotLoadedError

__all__ = ["LazyList", "LazySet", "ghost_class", "is_unloaded", "set_member", "GHOST_HOOK"]

#: Name of the class attribute a ghost class uses to find its loader.
GHOST_HOOK = "__mapper_ghost_load__"


class _Unloaded:
    """Shared behaviour of unloaded collections (mixed into list and set subclasses)."""

    __slots__ = ()
    _loader: Callable[[Any], None] | None
    _what: str

    def _describe(self) -> str:
        return f"<{self._what} not loaded>"


def _wrap(base: type, name: str) -> Callable[..., Any]:
    method = getattr(base, name)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self._loader is not None:
            self._loader(self)
        return method(self, *args, **kwargs)

    wrapper.__name__ = name
    wrapper.__qualname__ = f"{base.__name__}.{name}"
    wrapper.__doc__ = method.__doc__
    return wrapper


_LIST_METHODS = (
    "__iter__", "__len__", "__getitem__", "__setitem__", "__delitem__", "__contains__",
    "__reversed__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__add__",
    "__iadd__", "__mul__", "__imul__", "__rmul__", "append", "extend", "insert", "remove",
    "pop", "clear", "index", "count", "sort", "reverse", "copy",
)
_SET_METHODS = (
    "__iter__", "__len__", "__contains__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__",
    "__ge__", "__or__", "__and__", "__sub__", "__xor__", "__ror__", "__rand__", "__rsub__",
    "__rxor__", "__ior__", "__iand__", "__isub__", "__ixor__", "add", "discard", "remove",
    "pop", "clear", "update", "difference", "difference_update", "intersection",
    "intersection_update", "symmetric_difference", "symmetric_difference_update", "union",
    "issubset", "issuperset", "isdisjoint", "copy",
)


def _make(base: Any, methods: tuple[str, ...], doc: str) -> type:
    ns: dict[str, Any] = {name: _wrap(base, name) for name in methods}
    ns["__slots__"] = ("_loader", "_what", "owner_state", "relation")
    ns["__doc__"] = doc
    ns["__hash__"] = None

    def __init__(self: Any, *args: Any) -> None:
        # ``type(x)(items)`` builds a loaded collection that belongs to no session.
        base.__init__(self, *args)
        self._loader = None
        self._what = ""
        self.owner_state = None
        self.relation = None

    def __reduce_ex__(self: Any, protocol: Any) -> Any:
        # Never loads: a pickle (or deep copy) holds what was loaded. A loaded collection
        # becomes the plain list or set; an unloaded one a marker that refuses to be read.
        if self._loader is None:
            return (base, (base(base.__iter__(self)),))
        return (_not_loaded_collection, (base, self._what))

    def __copy__(self: Any) -> Any:
        # ``copy.copy`` reads the collection (loading it, as any read does): the plain type.
        if self._loader is not None:
            self._loader(self)
        return base(base.__iter__(self))

    ns["__init__"] = __init__
    ns["__reduce_ex__"] = __reduce_ex__
    ns["__copy__"] = __copy__

    def __repr__(self: Any) -> str:
        if self._loader is not None:
            return str(self._describe())
        return str(base.__repr__(self))

    ns["__repr__"] = __repr__
    return type(f"Lazy{base.__name__.capitalize()}", (_Unloaded, base), ns)


LazyList: type[list[Any]] = _make(
    list, _LIST_METHODS, "A list that loads its members (and its cohort's) on first use."
)
LazySet: type[set[Any]] = _make(
    set, _SET_METHODS, "A set that loads its members (and its cohort's) on first use."
)


class _Refuse:
    """The loader of a relation that was not loaded when its object was pickled or copied."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what

    def __call__(self, _obj: Any) -> None:
        msg = (
            f"{self.what} was not loaded when its object was pickled or copied; load it first "
            f"(.include() on the query or session.load()), or bring the object back with "
            f"session.merge() and read it there"
        )
        raise RelationNotLoadedError(msg)

    def __reduce__(self) -> Any:
        return (_Refuse, (self.what,))


def _not_loaded_collection(base: type, what: str) -> Any:
    """Unpickling an unloaded collection: a marker that raises RelationNotLoadedError when used."""
    klass: Any = LazySet if base is set else LazyList
    obj = klass()
    obj._loader = _Refuse(what)
    obj._what = what
    return obj


def new_unloaded(collection: type, loader: Callable[[Any], None], what: str, owner_state: Any, relation: Any) -> Any:
    """An unloaded collection of the given kind (list or set)."""
    klass: Any = LazySet if collection is set else LazyList
    obj = klass()
    obj._loader = loader
    obj._what = what
    obj.owner_state = owner_state
    obj.relation = relation
    return obj


def fill(collection: Any, members: list[Any]) -> None:
    """Put the loaded members into an unloaded collection and mark it loaded."""
    base = set if isinstance(collection, set) else list
    collection._loader = None
    if base is set:
        set.update(collection, members)
    else:
        list.extend(collection, members)


def set_member(collection: Any, obj: Any, present: bool) -> bool:
    """Make ``obj`` present in (or absent from) a list or set, comparing by identity.

    Returns whether the collection changed. Domain objects compare by value (attrs), so
    ``in`` and ``remove`` would find the wrong member.
    """
    found = any(map(is_, collection, repeat(obj)))
    if found == present:
        return False
    if present:
        collection.add(obj) if isinstance(collection, set) else collection.append(obj)
    elif isinstance(collection, set):
        collection.discard(obj)
    else:
        collection[:] = [x for x in collection if x is not obj]
    return True


def is_unloaded(value: Any) -> bool:
    """Whether a relation attribute still holds something that was never loaded."""
    t = type(value)
    # By type, not isinstance(): isinstance() would read a stand-in's __class__ through its
    # loading __getattribute__.
    if t is LazyList or t is LazySet:
        return value._loader is not None
    return GHOST_HOOK in t.__dict__


#: Name of the class attribute a ghost class uses to say what it stands for (for pickling).
GHOST_DESCRIBE = "__mapper_ghost_describe__"

# Read without loading: the reduce protocol (pickle and copy look these up on the instance).
_PASSTHROUGH = frozenset({
    "__class__", "__dict__", "__weakref__", "__slots__", "__attrs_attrs__",
    "__reduce_ex__", "__reduce__", "__copy__", "__deepcopy__", GHOST_DESCRIBE,
})


def _ghost_getattribute(self: Any, name: str) -> Any:
    if name in _PASSTHROUGH:
        return object.__getattribute__(self, name)
    hook = type(self).__dict__.get(GHOST_HOOK)
    if hook is not None:
        hook(self)
    return getattr(self, name)


def _ghost_setattr(self: Any, name: str, value: Any) -> None:
    hook = type(self).__dict__.get(GHOST_HOOK)
    if hook is not None:
        hook(self)
    setattr(self, name, value)


def _ghost_repr(self: Any) -> str:
    real = type(self).__mro__[1]
    return f"<{real.__name__} not loaded>"


def _ghost_reduce_ex(self: Any, protocol: Any) -> Any:
    # Never loads: an unloaded reference pickles (and deep-copies) as a marker.
    real = type(self).__mro__[1]
    describe = type(self).__dict__.get(GHOST_DESCRIBE)
    what = describe(self) if describe is not None else f"a reference to a {real.__name__}"
    return (_not_loaded_reference, (real, what))


_REFUSING_GHOSTS: dict[tuple[type, str], type] = {}


def _not_loaded_reference(cls: type, what: str) -> Any:
    """Unpickling an unloaded reference: an instance of ``cls`` that raises
    RelationNotLoadedError on any attribute read."""
    klass = _REFUSING_GHOSTS.get((cls, what))
    if klass is None:
        klass = _REFUSING_GHOSTS[(cls, what)] = ghost_class(cls, _Refuse(what))
    return object.__new__(klass)


def ghost_class(cls: type, loader: Callable[[Any], None], describe: Callable[[Any], str] | None = None) -> type:
    """A subclass of ``cls`` whose instances load themselves on first attribute access.

    ``describe(obj)`` names what a stand-in stands for when it is pickled (never loading it).
    Loading must set ``obj.__class__`` back to ``cls`` (``object.__setattr__``) and fill
    the attributes; the hook is looked up on the ghost class, so a loaded object is an
    ordinary instance of ``cls`` again.
    """
    ns: dict[str, Any] = {
        "__getattribute__": _ghost_getattribute,
        "__setattr__": _ghost_setattr,
        "__repr__": _ghost_repr,
        "__eq__": _ghost_eq,
        "__hash__": cls.__hash__,
        "__reduce_ex__": _ghost_reduce_ex,
        GHOST_HOOK: staticmethod(loader),
        GHOST_DESCRIBE: staticmethod(describe) if describe is not None else None,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
    }
    if "__slots__" in cls.__dict__:
        ns["__slots__"] = ()  # keep the layout identical so __class__ can be swapped back
    return type(cls.__name__, (cls,), ns)


def _ghost_eq(self: Any, other: Any) -> Any:
    hook = type(self).__dict__.get(GHOST_HOOK)
    if hook is not None:
        hook(self)
    return self == other


def not_loaded_error(what: str, path: str, closed: bool, *, awaited: bool = False) -> RelationNotLoadedError:
    """The error for touching an unloaded relation that may not load now (``awaited``: the
    session is an AsyncSession, which loads only when awaited)."""
    if awaited:
        msg = (
            f"{what} is not loaded, and an async session never loads on touch; add "
            f".include({path!r}) to the query or `await session.load(objects, {path!r})` first"
        )
    elif closed:
        msg = (
            f"{what} is not loaded and the session is closed; load it while the session is open "
            f"with .include({path!r}) on the query or session.load(objects, {path!r})"
        )
    else:
        msg = (
            f"{what} is not loaded and lazy loading is off (lazy='raise'); add .include({path!r}) "
            f"to the query or call session.load(objects, {path!r}) first"
        )
    return RelationNotLoadedError(msg)
