"""Lesson results: one helper every notebook ends with, and the summary ``make run`` prints.

A lesson starts a timer with ``lesson = start_lesson("01_gan_basics")`` and ends with
``lesson.show_results({...})``, which

* adds the notebook's wall time (``wall_time_s``),
* displays the figures as a table,
* emits them as an ``application/json`` display output (papermill and nbval can read it),
* writes ``<root>/runs/<notebook>/results.json`` atomically (``gan_utils.core.atomic``: a
  kill, or another lesson reading it at the same moment, sees the old file or the new one).

Reading them back (``load_results``, ``notebook_results``), a file that is not JSON or not
a results payload raises ``ResultsError`` naming it and the notebook that rewrites it.

``start_lesson`` also creates the lesson's **run id**, ``<lesson>@<commit>[+dirty]@<UTC time>``
(e.g. ``04_vanilla_gan@3f2c1ab+dirty@2026-12-02T11:30:00Z``). It becomes the current id of
the process: every figure and GIF saved through ``gan_utils.core.plotting`` carries it in
its metadata, and the results (``results.json`` and the JSON output) record it as
``run_id``, so a tracked figure can be traced to the notebook run that made it. Outside a
lesson (the ``gan-toy`` command, tests, a Python shell) the id has no lesson part:
``<commit>[+dirty]@<UTC time>``, one per process. ``+dirty`` means that tracked files
differ from the commit, not counting outputs (``figures/``, ``README.md`` and notebooks
whose cells' sources are unchanged).

A value that is a list of rows (dicts with the same keys), such as lesson 07's table of
every trained model, is shown as a table of its own, in the notebook and in the summary.

``python -m gan_utils.core.report`` prints one table of every lesson's results.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write_text
from .paths import PROJECT_ROOT, runs_dir

RESULTS_FILE = "results.json"
# Tracked paths whose changes are outputs of a run, not its code (see dirty_paths).
# Outputs, not code: a run id's "+dirty" ignores them. pretrained/ holds the shipped
# reference models, which carry their own provenance (manifest: sha256, commit, machine).
OUTPUT_PATHS = ("figures/", "runs/", "artifacts/", "data/", "README.md", "pretrained/")
RUN_ID_PATTERN = re.compile(
    r"^(?:(?P<lesson>[^@/]+)@)?(?P<commit>[0-9a-f]{4,40}|unknown)(?P<dirty>\+dirty)?"
    r"@(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$"
)

_active_run_id: str | None = None  # set by start_lesson
_process_run_id: str | None = None  # created on first use outside a lesson


class ResultsError(ValueError):
    """A results file (or an executed notebook) is damaged: not JSON, or not our payload."""


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def _cell_sources(notebook_text: str) -> list[tuple[str, str]] | None:
    try:
        cells = json.loads(notebook_text).get("cells", [])
    except (ValueError, AttributeError):
        return None
    out = []
    for cell in cells:
        source = cell.get("source", "")
        out.append(
            (cell.get("cell_type", ""), "".join(source) if isinstance(source, list) else source)
        )
    return out


def dirty_paths() -> list[str]:
    """Tracked files that differ from HEAD and can change a run's results.

    Ignores outputs (``figures/``, ``README.md``, ``runs/``, ...) and notebooks whose cell
    sources equal the committed ones (re-executed, new outputs only); of untracked files
    only Python files under ``gan_utils/`` count.
    """
    status = _git("status", "--porcelain", "--untracked-files=all")
    if status is None:
        return []
    changed = []
    for line in status.splitlines():
        code, path = line[:2], line[3:].strip().strip('"')
        if " -> " in path:  # a rename: the new path counts
            path = path.split(" -> ", 1)[1].strip('"')
        if path.startswith(OUTPUT_PATHS):
            continue
        if code == "??":
            if path.startswith("gan_utils/") and path.endswith(".py"):
                changed.append(path)
            continue
        if path.endswith(".ipynb") and "D" not in code:
            committed = _git("show", f"HEAD:{path}")
            current = PROJECT_ROOT / path
            if committed is not None and current.is_file():
                if _cell_sources(committed) == _cell_sources(current.read_text()):
                    continue
        changed.append(path)
    return changed


def git_state() -> str:
    """The short commit of the project, plus ``+dirty`` when code differs from it."""
    commit = (_git("rev-parse", "--short", "HEAD") or "").strip()
    if not commit:
        return "unknown"
    return commit + ("+dirty" if dirty_paths() else "")


def make_run_id(lesson: str | None = None, when: _dt.datetime | None = None) -> str:
    """``<lesson>@<commit>[+dirty]@<UTC time>``, or without ``<lesson>@`` when it is None."""
    when = (when or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
    prefix = f"{lesson}@" if lesson else ""
    return f"{prefix}{git_state()}@{stamp}"


def parse_run_id(run_id: str) -> dict[str, Any]:
    """The parts of a run id: ``lesson`` (None outside a lesson), ``commit``, ``dirty``, ``time``."""
    match = RUN_ID_PATTERN.match(run_id or "")
    if not match:
        raise ValueError(f"not a run id: {run_id!r}")
    return {
        "lesson": match["lesson"],
        "commit": match["commit"],
        "dirty": bool(match["dirty"]),
        "time": match["time"],
    }


def current_run_id() -> str:
    """The id of the lesson started in this process, else one id (without lesson) per process."""
    global _process_run_id
    if _active_run_id:
        return _active_run_id
    if _process_run_id is None:
        _process_run_id = make_run_id()
    return _process_run_id


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
    """A running lesson: its notebook name, its run id and when it started."""

    name: str
    run_id: str = ""
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if not self.run_id:
            self.run_id = make_run_id(self.name)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def show_results(self, results: dict[str, Any], display: bool = True) -> dict[str, Any]:
        """Record, display and save the lesson's key figures; returns what was saved."""
        return show_results(
            self.name,
            results,
            wall_time_s=self.elapsed(),
            display=display,
            run_id=self.run_id,
        )


def start_lesson(name: str) -> LessonRun:
    """Start timing a lesson and make its run id the current one (figures carry it).

    ``name`` is the notebook's file name without ``.ipynb``.
    """
    global _active_run_id
    if not name or "/" in name or "@" in name:
        raise ValueError(f"name must be a notebook name such as '01_gan_basics', got {name!r}")
    run = LessonRun(name)
    _active_run_id = run.run_id
    return run


def show_results(
    name: str,
    results: dict[str, Any],
    wall_time_s: float | None = None,
    display: bool = True,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Display ``results`` as a table and a JSON output, and write runs/<name>/results.json.

    ``run_id`` defaults to the current one when it belongs to lesson ``name``, else a new
    id for ``name``; it is saved beside the results (``payload["run_id"]``).
    """
    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty dict of the lesson's key figures")
    if run_id is None:
        current = current_run_id()
        run_id = current if current.startswith(f"{name}@") else make_run_id(name)
    record = dict(_jsonable(results))
    if wall_time_s is not None:
        record["wall_time_s"] = round(float(wall_time_s), 1)
    payload = {
        "notebook": name,
        "run_id": run_id,
        "finished": _dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "results": record,
    }
    path = runs_dir(name) / RESULTS_FILE
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False))
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
    lines = [f"**Results of {name}** (run `{payload['run_id']}`)", ""]
    lines += ["| figure | value |", "| --- | --- |"]
    tables = {k: v for k, v in record.items() if is_row_table(v)}
    lines += [f"| {k} | {_format(v)} |" for k, v in record.items() if k not in tables]
    for key, rows in tables.items():
        lines += ["", f"**{key}**", "", rows_as_markdown(rows)]
    display(Markdown("\n".join(lines)))
    display({"application/json": payload}, raw=True)


def _read_json(path: Path, fix: str) -> Any:
    """The JSON of ``path``; ``ResultsError`` naming it and ``fix`` when it is not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:  # JSONDecodeError is a ValueError
        raise ResultsError(f"{path} is damaged: not valid JSON ({error}). {fix}") from error


def read_results_file(path: str | Path) -> dict[str, Any]:
    """The payload ``show_results`` wrote to ``path`` (a ``results.json``).

    Raises:
        ResultsError: the file is not JSON or not a results payload, naming it and the
            notebook to run again.
    """
    path = Path(path)
    lesson = path.parent.name
    fix = (
        f"Delete it and run notebooks/{lesson}.ipynb again (e.g. `make run LESSONS={lesson}`), "
        "which rewrites it."
    )
    payload = _read_json(path, fix)
    if not (isinstance(payload, dict) and "notebook" in payload and "results" in payload):
        raise ResultsError(f"{path} is not a results file (no 'notebook' and 'results'). {fix}")
    return payload


def load_results(root_runs: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every lesson's saved results, keyed by notebook name, in lesson order.

    Raises:
        ResultsError: a ``results.json`` is damaged (``read_results_file``).
    """
    base = root_runs or runs_dir()
    out = {}
    for path in sorted(base.glob(f"*/{RESULTS_FILE}")):
        payload = read_results_file(path)
        out[payload["notebook"]] = payload["results"]
    return out


def notebook_results(notebook: Path) -> dict[str, Any] | None:
    """The results payload an executed notebook displayed (its last JSON results output).

    The payload is what ``show_results`` wrote to ``results.json``: ``notebook``,
    ``run_id`` (absent in notebooks executed before run ids existed), ``finished``,
    ``machine`` and ``results``. None when the notebook holds no such output.

    Raises:
        ResultsError: the notebook file is not JSON (damaged), naming it.
    """
    found = None
    fix = f"Restore it (`git checkout {Path(notebook).name}`) or execute the lesson again."
    content = _read_json(notebook, fix)
    cells = content.get("cells", []) if isinstance(content, dict) else None
    if not isinstance(cells, list):
        raise ResultsError(f"{notebook} is damaged: not a notebook (no list of cells). {fix}")
    for cell in cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {}).get("application/json")
            if isinstance(data, str):
                try:
                    data = json.loads(data)
                except ValueError:
                    continue
            if isinstance(data, dict) and "notebook" in data and "results" in data:
                found = data
    return found


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
