"""The Python examples of README.md and docs/guide.md run as written.

Every ```python block of a document runs, top to bottom, in one namespace per document (a
module of its own, as if the document were one file), so each block continues from the ones
before it. Other fences (```bash, plain ```) are not run.

An HTML comment on the line before a block's fence (invisible once rendered) sets options:

- ``<!-- doc-test: all -->``: the block runs on PostgreSQL and MariaDB too. Without it a block
  runs on SQLite only. On a server, only the blocks marked ``all`` run, in order, so a marked
  block may build only on marked blocks.
- ``<!-- doc-test: sqlite -->``: SQLite only, on purpose (it shows SQLite's own values). The
  guide's main walkthrough (the blocks on ``db``) must be marked one way or the other.
- ``<!-- doc-test: fresh -->``: the namespace starts empty again at this block.
- ``<!-- doc-test: skip -->``: the block is not run (a fragment); keep these few.

Several options go in one comment: ``<!-- doc-test: fresh all -->``.

On a server, the test replaces each string literal ``"sqlite:///:memory:"`` in a block by the
URL of this run's scratch database, and drops the tables the document created afterwards. On
SQLite the blocks run exactly as printed.

A failing block fails the test with the document, the line of the block and the traceback, whose
lines point into the document itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mapper import Database
from mapper.dialects import MYSQLCLIENT_SCHEMES

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/guide.md")
MEMORY_URL = '"sqlite:///:memory:"'
OPTIONS = frozenset({"all", "sqlite", "fresh", "skip"})
MARKER = re.compile(r"^<!--\s*doc-test:(?P<words>[^>]*?)-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>\S*)\s*$")


@dataclass(frozen=True)
class Block:
    """One ```python block: the document, the line of its first code line, its code, its options."""

    doc: str
    line: int
    source: str
    options: frozenset[str]

    def runs_on(self, backend: str) -> bool:
        return "skip" not in self.options and (backend == "sqlite" or "all" in self.options)

    def where(self) -> str:
        return f"{self.doc}, block at line {self.line}"


class DocFormatError(Exception):
    """A marker or fence the extractor cannot place."""


def extract(doc: str, text: str) -> list[Block]:
    """The ```python blocks of ``text`` in order, with the options of the marker before each.

    Raises:
        DocFormatError: an unknown option, a marker not followed by a ```python block, a
            Python block fenced with another name (```py), or a fence left open.
    """
    blocks: list[Block] = []
    lines = text.splitlines()
    pending: tuple[int, frozenset[str]] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = MARKER.match(line)
        fence = FENCE.match(line)
        if marker:
            words = frozenset(marker["words"].split())
            unknown = words - OPTIONS
            if unknown or not words or {"all", "sqlite"} <= words:
                msg = f"{doc}:{i + 1}: doc-test options are {sorted(OPTIONS)}, got {marker['words'].strip()!r}"
                raise DocFormatError(msg)
            pending = (i + 1, words)
        elif fence:
            info = fence["info"]
            if info.lower() in {"py", "python3", "pycon", "py3"}:
                msg = f"{doc}:{i + 1}: fence Python blocks as ```python (this one is ```{info}), so they run"
                raise DocFormatError(msg)
            end = _closing_fence(doc, lines, i)
            if info == "python":
                options = pending[1] if pending is not None else frozenset()
                # A block inside a list item is indented like its fence: the code is not.
                indent = fence["indent"]
                code = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[i + 1 : end]]
                blocks.append(Block(doc, i + 2, "\n".join(code) + "\n", options))
            elif pending is not None:
                msg = f"{doc}:{pending[0]}: a doc-test marker must stand right before a ```python block"
                raise DocFormatError(msg)
            pending = None
            i = end
        elif line.strip() and pending is not None:
            msg = f"{doc}:{pending[0]}: a doc-test marker must stand right before a ```python block"
            raise DocFormatError(msg)
        i += 1
    if pending is not None:
        msg = f"{doc}:{pending[0]}: a doc-test marker must stand right before a ```python block"
        raise DocFormatError(msg)
    return blocks


def _closing_fence(doc: str, lines: list[str], start: int) -> int:
    for j in range(start + 1, len(lines)):
        if lines[j].strip() == "```":
            return j
    msg = f"{doc}:{start + 1}: this fence is never closed"
    raise DocFormatError(msg)


def document_blocks(doc: str) -> list[Block]:
    return extract(doc, (ROOT / doc).read_text(encoding="utf-8"))


# -- running ---------------------------------------------------------------------------------------


class DocumentRun:
    """Runs one document's blocks in a module namespace of its own, on one backend."""

    def __init__(self, doc: str, backend: str, url: str | None) -> None:
        self.doc = doc
        self.backend = backend
        self.url = url  # None on SQLite: the blocks run exactly as printed
        self.module_name = "doc_" + re.sub(r"\W", "_", doc)
        self.module = self._new_module()
        self.databases: list[Database] = []

    def _new_module(self) -> types.ModuleType:
        module = types.ModuleType(self.module_name)
        module.__file__ = str(ROOT / self.doc)
        sys.modules[self.module_name] = module
        return module

    def code_of(self, block: Block) -> str:
        source = block.source
        if self.url is not None:
            # AsyncDatabase refuses a URL naming mysqlclient: the same server through aiomysql.
            scheme, _, rest = self.url.partition("://")
            async_url = f"mysql://{rest}" if scheme in MYSQLCLIENT_SCHEMES else self.url
            source = source.replace(f"AsyncDatabase({MEMORY_URL}", f"AsyncDatabase({async_url!r}")
            source = source.replace(MEMORY_URL, repr(self.url))
        # Blank lines in front keep line numbers equal to the document's, for tracebacks.
        return "\n" * (block.line - 1) + source

    def run(self, block: Block) -> None:
        if "fresh" in block.options:
            self._collect_databases()
            self.module = self._new_module()
        code = compile(self.code_of(block), str(ROOT / self.doc), "exec")
        shown = None
        try:
            exec(code, self.module.__dict__)  # noqa: S102 - running the documentation is the test
        except BaseException as exc:  # noqa: BLE001 - any failure of the block fails the test
            # The traceback starts in the document: the frame of this method is left out.
            shown = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next))
        finally:
            self._collect_databases()
        if shown is not None:
            pytest.fail(f"{block.where()} failed on {self.backend}:\n{shown}", pytrace=False)

    def _collect_databases(self) -> None:
        for value in list(vars(self.module).values()):
            if isinstance(value, Database) and not any(value is d for d in self.databases):
                self.databases.append(value)

    def close(self) -> None:
        for db in self.databases:
            db.close()
        sys.modules.pop(self.module_name, None)


def existing_tables(url: str) -> set[str]:
    with Database(url, mappers=[]) as db, db.session() as s:
        return {row[0] for row in s.execute(db.engine.dialect.existing_tables_sql())}


def drop_tables_except(url: str, keep: set[str]) -> None:
    with Database(url, mappers=[]) as db, db.session() as s:
        dialect = db.engine.dialect
        names = sorted({row[0] for row in s.execute(dialect.existing_tables_sql())} - keep)
        for sql in dialect.drop_tables_sql(names):
            s.execute(sql)


@pytest.fixture
def run_document(backend: Any) -> Iterator[Any]:
    """``run_document(doc)``: run the document's blocks for this backend; returns the blocks run."""
    server = backend.name != "sqlite"
    before = existing_tables(backend.url) if server else set()
    runs: list[DocumentRun] = []

    def run(doc: str) -> list[Block]:
        blocks = [b for b in document_blocks(doc) if b.runs_on(backend.name)]
        doc_run = DocumentRun(doc, backend.name, backend.url if server else None)
        runs.append(doc_run)
        for block in blocks:
            doc_run.run(block)
        return blocks

    yield run
    for doc_run in runs:
        doc_run.close()
    if server:
        drop_tables_except(backend.url, before)


# -- the documents ---------------------------------------------------------------------------------


@pytest.mark.parametrize("doc", DOCUMENTS)
def test_every_python_block_runs(doc, backend, run_document):
    ran = run_document(doc)
    everything = document_blocks(doc)
    if backend.name == "sqlite":
        assert len(ran) == len([b for b in everything if "skip" not in b.options])
    assert ran, f"no block of {doc} is marked to run on {backend.name}"


def test_the_guide_main_walkthrough_runs_on_every_backend():
    """The guide's examples on ``db`` run on every backend, unless marked SQLite-only on purpose."""
    blocks = document_blocks("docs/guide.md")
    on_db = [b for b in blocks if re.search(r"\bdb\.", b.source)]
    assert len(on_db) >= 20
    unmarked = [b.where() for b in on_db if not b.options & {"all", "sqlite"}]
    assert unmarked == [], "mark these <!-- doc-test: all --> (or <!-- doc-test: sqlite --> if they cannot be)"


def test_few_blocks_are_left_out():
    skipped = [b.where() for doc in DOCUMENTS for b in document_blocks(doc) if "skip" in b.options]
    assert len(skipped) <= 2, skipped


def test_the_readme_quickstart_runs_as_a_file(tmp_path):
    """The README says to paste the Quickstart into a file and run it: do exactly that."""
    quickstart = document_blocks("README.md")[0]
    path = tmp_path / "quickstart.py"
    path.write_text(quickstart.source, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-W", "error", str(path)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{quickstart.where()} failed as a file:\n{done.stderr}"
    lines = done.stdout.splitlines()
    assert lines[0].startswith("[Owner(name='Tom', pugs=[Pug(name='Cody'")
    assert lines[1] == "1"


# -- the extractor ---------------------------------------------------------------------------------


SAMPLE = """\
# Title

```bash
./run demo
```

```python
x = 1
```

<!-- doc-test: all -->
```python
y = x + 1
```

<!-- doc-test: fresh skip -->

```python
z = 3
```
"""


def test_extract_finds_python_blocks_with_their_lines_and_options():
    blocks = extract("sample.md", SAMPLE + "\n- a list item:\n\n  ```python\n  if z:\n      w = 4\n  ```\n")
    assert [(b.line, b.source, b.options) for b in blocks] == [
        (8, "x = 1\n", frozenset()),
        (13, "y = x + 1\n", frozenset({"all"})),
        (19, "z = 3\n", frozenset({"fresh", "skip"})),
        (25, "if z:\n    w = 4\n", frozenset()),
    ]
    assert [b.runs_on("mysql") for b in blocks] == [False, True, False, False]
    assert [b.runs_on("sqlite") for b in blocks] == [True, True, False, True]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("<!-- doc-test: al -->\n```python\nx\n```\n", "options are"),
        ("<!-- doc-test: all sqlite -->\n```python\nx\n```\n", "options are"),
        ("<!-- doc-test: all -->\ntext\n```python\nx\n```\n", "right before"),
        ("<!-- doc-test: all -->\n```bash\nls\n```\n", "right before"),
        ("<!-- doc-test: all -->\n", "right before"),
        ("```py\nx = 1\n```\n", "```python"),
        ("```python\nx = 1\n", "never closed"),
    ],
)
def test_extract_rejects_what_it_cannot_place(text, words):
    with pytest.raises(DocFormatError, match=re.escape(words)):
        extract("bad.md", text)


def test_a_failing_block_names_the_document_line_and_traceback():
    text = "intro\n\n```python\nvalue = 1\n```\n\n```python\nvalue = 2\nassert value == 3, 'wrong'\n```\n"
    doc_run = DocumentRun("sample.md", "sqlite", None)
    try:
        blocks = extract("sample.md", text)
        doc_run.run(blocks[0])
        with pytest.raises(pytest.fail.Exception) as info:
            doc_run.run(blocks[1])
    finally:
        doc_run.close()
    message = str(info.value)
    assert "sample.md, block at line 8 failed on sqlite" in message
    assert 'sample.md", line 9' in message and "AssertionError: wrong" in message
