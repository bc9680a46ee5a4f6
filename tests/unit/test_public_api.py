"""The public names: every name in ``__all__`` exists, star-imports, and is documented."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

import mapper
from mapper import errors

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("module", [mapper, errors], ids=lambda m: m.__name__)
def test_star_import_gives_every_name_in_all(module):
    namespace: dict[str, object] = {}
    exec(f"from {module.__name__} import *", namespace)  # noqa: S102 - a fresh namespace, as a user's module
    namespace.pop("__builtins__")
    assert sorted(namespace) == sorted(module.__all__)
    for name in module.__all__:
        assert namespace[name] is getattr(module, name), name
    assert len(set(module.__all__)) == len(module.__all__), "a name is listed twice"


@pytest.mark.parametrize("module", [mapper, errors], ids=lambda m: m.__name__)
def test_every_public_name_has_a_docstring_and_a_place_in_the_guide(module):
    undocumented = [n for n in module.__all__ if not (inspect.getdoc(getattr(module, n)) or "").strip()]
    assert undocumented == []
    missing = [n for n in module.__all__ if not re.search(rf"`(mapper\.)?(errors\.)?{n}\b", GUIDE)]
    assert missing == [], f"not mentioned in docs/guide.md: {missing}"


def test_every_error_class_is_in_errors_all_and_in_the_guide_tree():
    classes = [
        name for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    ]
    assert sorted(classes) == sorted(errors.__all__)
    tree = GUIDE[GUIDE.index("```\nMapperError\n") + 4 :].split("```", 1)[0]
    # Each line is one class; its column is its depth, so the nearest line above that sits
    # further left is its parent, which must be its real base class.
    stack: list[tuple[int, str]] = []
    shown = []
    for line in tree.splitlines():
        found = re.search(r"\w+", line)
        assert found is not None, line
        depth, name = found.start(), found.group()
        shown.append(name)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            assert issubclass(getattr(errors, name), getattr(errors, stack[-1][1])), (name, stack[-1][1])
        stack.append((depth, name))
    assert sorted(shown) == sorted(errors.__all__)


def test_the_errors_mapper_reexports_are_the_same_classes():
    for name in mapper.__all__:
        if name in errors.__all__:
            assert getattr(mapper, name) is getattr(errors, name), name


def test_pool_timeout_error_is_public_and_placed_as_decided():
    """A MapperError and a TimeoutError, outside DatabaseError and SessionError (docs/decisions.md)."""
    from mapper import PoolTimeoutError

    assert PoolTimeoutError is errors.PoolTimeoutError
    assert "PoolTimeoutError" in mapper.__all__ and "PoolTimeoutError" in errors.__all__
    assert issubclass(PoolTimeoutError, mapper.MapperError) and issubclass(PoolTimeoutError, TimeoutError)
    assert not issubclass(PoolTimeoutError, (mapper.DatabaseError, mapper.SessionError))
    message = str(PoolTimeoutError.waited(0.5, 3))
    assert "0.5 s" in message and "pool_size=3" in message and "pool_timeout" in message
