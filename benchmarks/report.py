"""Results: the per-backend tables, the JSON file, the chart, and the README's table.

``python -m benchmarks.report --markdown results.json`` prints the table of the README's
Performance section from a ``--json`` file of ``python -m benchmarks``: per workload and backend
mapper's ratio to raw, SQLAlchemy's, and mapper's statements, with the project's targets, misses in
bold.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Cell", "Results", "render_tables", "write_json", "draw_chart", "render_markdown", "TARGETS"]


@dataclass
class Cell:
    """One system on one workload on one backend."""

    times: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and self.error is None else None

    @property
    def query_text(self) -> str:
        if not self.queries:
            return "-"
        lo, hi = min(self.queries), max(self.queries)
        return str(lo) if lo == hi else f"{lo}-{hi}"


@dataclass
class BackendResult:
    name: str
    label: str
    url: str
    #: workload key -> system name -> Cell
    cells: dict[str, dict[str, Cell]] = field(default_factory=dict)
    describe: dict[str, str] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    #: system name -> label (the raw driver differs per backend)
    system_labels: dict[str, str] = field(default_factory=dict)

    def ratio(self, key: str, system: str) -> float | None:
        row = self.cells.get(key, {})
        raw = row.get("raw")
        cell = row.get(system)
        if raw is None or cell is None or raw.median is None or cell.median is None or raw.median <= 0:
            return None
        return cell.median / raw.median


@dataclass
class Results:
    systems: list[str]
    system_labels: dict[str, str]
    repeat: int
    warmup: int
    quick: bool
    backends: list[BackendResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _fmt_s(v: float | None) -> str:
    if v is None:
        return "FAILED"
    if v >= 10:
        return f"{v:.2f}"
    if v >= 1:
        return f"{v:.3f}"
    return f"{v:.4f}"


def render_tables(res: Results) -> str:
    lines: list[str] = []
    systems = res.systems
    for br in res.backends:
        lines.append("")
        lines.append(f"== {br.label} ({br.url}) ==")
        lines.append(
            "   " + "; ".join(f"{s} = {br.system_labels.get(s, s)}" for s in systems)
            + f". Median of {res.repeat} timed run(s), seconds; (x) = ratio to raw in the same run;"
            " queries = statements per run."
        )
        header = ["workload"]
        for s in systems:
            header.append(f"{s} s" if s == "raw" else f"{s} s (ratio)")
        header.append("queries " + "/".join(systems))
        rows = [header]
        for key, row in br.cells.items():
            line = [f"{key} {br.titles[key]}: {br.describe[key]}"]
            for s in systems:
                cell = row.get(s)
                if cell is None:
                    line.append("-")
                    continue
                text = _fmt_s(cell.median)
                ratio = br.ratio(key, s)
                if s != "raw" and ratio is not None:
                    text += f" ({ratio:.2f}x)"
                line.append(text)
            line.append("/".join(row[s].query_text if s in row else "-" for s in systems))
            rows.append(line)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for i, r in enumerate(rows):
            cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:])]
            lines.append(" | ".join(cells))
            if i == 0:
                lines.append("-+-".join("-" * w for w in widths))
        failed = [(k, s, c.error) for k, row in br.cells.items() for s, c in row.items() if c.error]
        for k, s, err in failed:
            lines.append(f"  FAILED {k} [{s}]: {err}")
        lines.append(f"  ({br.name}: {br.seconds:.1f} s wall time including seeding and checks)")
    lines.append("")
    for note in res.notes:
        lines.append(f"* {note}")
    lines.append(f"Total wall time: {res.seconds:.1f} s")
    return "\n".join(lines)


def to_json(res: Results) -> dict[str, Any]:
    out: dict[str, Any] = {
        "systems": res.systems,
        "system_labels": res.system_labels,
        "repeat": res.repeat,
        "warmup": res.warmup,
        "quick": res.quick,
        "total_seconds": res.seconds,
        "notes": res.notes,
        "backends": [],
    }
    for br in res.backends:
        b: dict[str, Any] = {
            "name": br.name, "label": br.label, "url": br.url, "seconds": br.seconds,
            "system_labels": br.system_labels, "workloads": {},
        }
        for key, row in br.cells.items():
            w: dict[str, Any] = {"title": br.titles[key], "description": br.describe[key], "systems": {}}
            for s, cell in row.items():
                w["systems"][s] = {
                    "times": cell.times,
                    "median": cell.median,
                    "ratio_to_raw": br.ratio(key, s),
                    "queries": cell.queries,
                    "error": cell.error,
                }
            b["workloads"][key] = w
        out["backends"].append(b)
    return out


def write_json(res: Results, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_json(res), f, indent=2)
        f.write("\n")


def draw_chart(res: Results, path: str) -> None:
    """Grouped bars: per backend one panel, per workload one group, one bar per ORM (ratio to raw)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    orms = [s for s in res.systems if s != "raw"]
    n = len(res.backends)
    fig, axes = plt.subplots(n, 1, figsize=(max(8.0, 1.1 * max(len(b.cells) for b in res.backends) + 2), 3.6 * n), squeeze=False)
    colors = {"mapper": "#1f77b4", "sqla": "#d62728"}
    for ax, br in zip(axes[:, 0], res.backends):
        keys = list(br.cells)
        width = 0.8 / max(1, len(orms))
        for j, s in enumerate(orms):
            xs, ys = [], []
            for i, key in enumerate(keys):
                r = br.ratio(key, s)
                if r is not None:
                    xs.append(i - 0.4 + width * (j + 0.5))
                    ys.append(r)
            bars = ax.bar(xs, ys, width, label=res.system_labels.get(s, s), color=colors.get(s))
            for bar, y in zip(bars, ys):
                ax.annotate(f"{y:.1f}", (bar.get_x() + bar.get_width() / 2, y), ha="center", va="bottom", fontsize=7)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--", label="raw driver = 1")
        ax.set_yscale("log")
        ax.set_xticks(range(len(keys)))
        ax.set_xticklabels([f"{k}\n{br.titles[k]}" for k in keys], fontsize=7)
        ax.set_ylabel("time / raw driver (log)")
        ax.set_title(f"{br.label}: median time relative to the raw driver (lower is better)", fontsize=9)
        # Outside the axes: inside, it covered the labels of the first bars.
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0))
        ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- the README's table -------------------------------------------------------------------------

#: The project's targets, per workload: (most mapper may take, as a ratio to raw; statements
#: per run, or None where the issue names no number). W7q's "about 1x" is read as at most 1.3x.
TARGETS: dict[str, tuple[float, int | None]] = {
    "W1": (1.5, None),
    "W2": (1.3, 1),
    "W3": (1.3, 2),
    "W4": (1.3, 3),
    "W5": (1.3, 3),
    "W6": (1.5, None),
    "W7": (3.0, None),
    "W7q": (1.3, None),
    "W8": (1.3, None),
    "W9": (1.5, 2),
}

#: The README's short names of the backends, by ``BackendResult.name``.
BACKEND_NAMES = {
    "sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB", "mysql": "MySQL",
    "mariadb+mysqlclient": "MariaDB (mysqlclient)", "mysql+mysqlclient": "MySQL (mysqlclient)",
}


def _ratio_cell(ratio: float | None, limit: float | None) -> str:
    if ratio is None:
        return "FAILED"
    text = f"{ratio:.2f}x"
    return f"**{text}**" if limit is not None and ratio > limit else text


def _count_cell(queries: list[int], target: int | None) -> str:
    if not queries:
        return "-"
    lo, hi = min(queries), max(queries)
    text = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
    return f"**{text}**" if target is not None and (lo != target or hi != target) else text


def render_markdown(data: dict[str, Any]) -> str:
    """The README's table from the dict a ``--json`` file holds (``to_json``).

    One row per workload of ``TARGETS`` that the run has (W10, with no target, is left to the full
    tables); per backend mapper's ratio to raw, SQLAlchemy's ratio to raw, and mapper's statements
    per run. A mapper cell over its target, or a statement count other than its target, is bold.
    """
    backends = data["backends"]
    head = ["workload", "target"]
    for b in backends:
        name = BACKEND_NAMES.get(b["name"], b["name"])
        head += [f"{name} mapper", "SQLAlchemy", "statements"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    keys = [k for k in TARGETS if any(k in b["workloads"] for b in backends)]
    for key in keys:
        limit, count = TARGETS[key]
        title = next(b["workloads"][key]["title"] for b in backends if key in b["workloads"])
        target = f"≤ {limit:g}x" + (f", {count} statement{'s' if count != 1 else ''}" if count is not None else "")
        row = [f"{key} {title}", target]
        for b in backends:
            systems = b["workloads"].get(key, {}).get("systems", {})
            mapper = systems.get("mapper")
            sqla = systems.get("sqla")
            row.append(_ratio_cell(mapper["ratio_to_raw"], limit) if mapper else "-")
            row.append(_ratio_cell(sqla["ratio_to_raw"], None) if sqla else "-")
            row.append(_count_cell(mapper["queries"], count) if mapper else "-")
        lines.append("| " + " | ".join(row) + " |")
    servers = ", ".join(f"{b['label']} ({b.get('system_labels', {}).get('raw', 'raw driver')})" for b in backends)
    others = list(data.get("system_labels", {}).values())
    lines.append("")
    lines.append(
        f"Median of {data['repeat']} timed runs after {data['warmup']} warm-up, as a ratio to the raw driver's "
        f"median in the same run{' (quick sizes)' if data['quick'] else ''}: {servers}"
        + (f"; {', '.join(others)}" if others else "") + "."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--markdown", metavar="FILE.json", required=True,
                   help="print the README's table from a --json file of python -m benchmarks")
    args = p.parse_args(argv)
    try:
        with open(args.markdown, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--markdown {args.markdown}: cannot read the results: {exc}") from None
    print(render_markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
