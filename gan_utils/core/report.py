"""Lesson results: one helper every notebook ends with, and the summary ``make run`` prints.

A lesson starts a timer with ``lesson = start_lesson("01_gan_basics")`` and ends with
``lesson.show_results({...})``, which

* adds the notebook's wall time (``wall_time_s``),
* displays the figures as a table,
* emits them as an ``application/json`` display output (papermill and nbval can read it),
* writes ``<root>/runs/<notebook>/results.json``.

A value that is a list of rows (dicts with the same keys), such as lesson 07's table of
every trained model, is shown as a table of its own, in the notebook and in the summary.

``python -m gan_utils.core.report`` prints one table of every lesson's results.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .paths import runs_dir

RESULTS_FILE = "results.json"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.detach().cpu().tolist())
    if hasattr(value, "item") and callable(value.item):  # NumPy scalars
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_format(v) for v in value)
    return str(value)


@dataclass
class LessonRun:
    """A running lesson: its notebook name and when it started."""

    name: str
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def show_results(self, results: dict[str, Any], display: bool = True) -> dict[str, Any]:
        """Record, display and save the lesson's key figures; returns what was saved."""
        return show_results(self.name, results, wall_time_s=self.elapsed(), display=display)


def start_lesson(name: str) -> LessonRun:
    """Start timing a lesson; ``name`` is the notebook's file name without ``.ipynb``."""
    if not name or "/" in name:
        raise ValueError(f"name must be a notebook name such as '01_gan_basics', got {name!r}")
    return LessonRun(name)


def show_results(
    name: str, results: dict[str, Any], wall_time_s: float | None = None, display: bool = True
) -> dict[str, Any]:
    """Display ``results`` as a table and a JSON output, and write runs/<name>/results.json."""
    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict of the lesson's key figures")
    record = dict(_jsonable(results))
    if wall_time_s is not None:
        record["wall_time_s"] = round(float(wall_time_s), 1)
    payload = {
        "notebook": name,
        "finished": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "results": record,
    }
    path = runs_dir(name) / RESULTS_FILE
    path.write_text(json.dumps(payload, indent=2, sort_keys=False))
    if display:
        _display(name, record, payload)
    return record


def is_row_table(value: Any) -> bool:
    """True for a non-empty list of dicts that all have the same keys (a table's rows)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(row, dict) for row in value)
        and all(row.keys() == value[0].keys() for row in value)
    )


def rows_as_text(rows: list[dict[str, Any]], indent: str = "") -> str:
    """Rows of equal keys as an aligned plain-text table (header line first)."""
    columns = list(rows[0])
    cells = [[_format(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    for line in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
    return "\n".join(indent + line.rstrip() for line in lines)


def rows_as_markdown(rows: list[dict[str, Any]]) -> str:
    """Rows of equal keys as a Markdown table."""
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(_format(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _display(name: str, record: dict[str, Any], payload: dict[str, Any]) -> None:
    try:
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython is a dependency
        print(results_table({name: record}))
        return
    lines = [f"**Results of {name}**", "", "| figure | value |", "| --- | --- |"]
    tables = {k: v for k, v in record.items() if is_row_table(v)}
    lines += [f"| {k} | {_format(v)} |" for k, v in record.items() if k not in tables]
    for key, rows in tables.items():
        lines += ["", f"**{key}**", "", rows_as_markdown(rows)]
    display(Markdown("\n".join(lines)))
    display({"application/json": payload}, raw=True)


def load_results(root_runs: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every lesson's saved results, keyed by notebook name, in lesson order."""
    base = root_runs or runs_dir()
    out = {}
    for path in sorted(base.glob(f"*/{RESULTS_FILE}")):
        payload = json.loads(path.read_text())
        out[payload["notebook"]] = payload["results"]
    return out


def results_table(all_results: dict[str, dict[str, Any]]) -> str:
    """A plain-text table: one block per lesson, one line per figure."""
    if not all_results:
        return "No lesson results yet: run the notebooks (make run)."
    width = max(len(k) for r in all_results.values() for k in r) if all_results else 10
    lines = []
    for name, record in all_results.items():
        lines.append(f"== {name} ==")
        tables = {k: v for k, v in record.items() if is_row_table(v)}
        for key, value in record.items():
            if key in tables:
                continue  # printed as tables after the lesson's other figures
            if isinstance(value, (dict, list)) and len(_format(value)) > 80:
                continue  # long series live in results.json, not the summary
            lines.append(f"  {key:<{width}}  {_format(value)}")
        for key, rows in tables.items():
            lines.append(f"  {key}:")
            lines.append(rows_as_text(rows, indent="    "))
    return "\n".join(lines)


def main() -> None:
    print(results_table(load_results()))


if __name__ == "__main__":
    main()
