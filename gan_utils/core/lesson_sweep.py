"""Run one lesson over a grid of parameter sets with papermill; one table row per run.

Usage::

    python -m gan_utils.core.lesson_sweep notebooks/01_gan_basics.ipynb \\
        -p seed 0 1 -p num_steps 50 100 [--grid grid.yaml] [--workers N] \\
        [--cluster ADDRESS] [--threads T] [--out DIR] [--name NAME] [--append]

``-p NAME V1 V2 ...`` (repeatable) is one axis of the grid; each value is read as a YAML
scalar (``1`` an int, ``1e-3`` and ``0.5`` floats, ``true`` a bool, ``[a, b]`` a list,
anything else a string). ``--grid FILE`` is a YAML file, either a mapping
``name: [values ...]`` (more axes; a value that is itself a list is one list-valued
setting) or a list of parameter dicts (one run each). The runs are the Cartesian product
of the grid file and the ``-p`` axes, in the order given, the last axis fastest. Every
name is checked against the lesson's parameters (its cell tagged ``parameters``) before
anything runs.

Every run executes in its own temporary output root (``GAN_UTILS_ROOT``), so parallel runs
of one lesson never share artifacts, with ``OMP_NUM_THREADS`` = ``--threads``; the runs go
through ``gan_utils.core.executor.run_jobs``: one after the other here (``--workers 1``),
in N local worker processes, or on a Dask cluster (``--cluster``). A run returns its
executed notebook and results to this process, which writes every file, so workers need
no shared file system:

* ``<out>/<name>/<parameters>.ipynb``: each executed notebook (also the failed ones, which
  show the error in place), e.g. ``seed=0,num_steps=50.ipynb``;
* ``<out>/<name>.csv`` and ``<out>/<name>.md``: one row per run in the grid's order: the
  parameters, ``status`` (ok / failed), ``wall_time_s``, ``notebook``, ``cell`` and
  ``error`` of a failure, then the lesson's scalar results; the md header lists every
  command that ran runs into the table and the total wall time;
* ``<out>/<name>_commands.json``: those commands, each with its wall time and its number
  of runs.

An existing table of the same name is an error (exit 2) unless ``--append``: then the
sweep resumes it. The runs whose parameters have an "ok" row there and whose executed
notebook still exists are not run again (their rows are kept as they were); the others
(failed, missing, or new in the grid) run. The rows stay in the grid's order; rows of
the old table outside the grid are kept after them, so ``--append`` never throws away
finished work.

Defaults: ``--out <root>/runs/sweeps``, ``--name <notebook stem>_sweep``. The command
prints how many runs the table already holds and how many will run, then every failure
(cell and error), and exits with 1 when a run of the grid failed, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import itertools
import json
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write_text
from .checks import check_int
from .executor import ClusterUnavailable, JobFailure, cluster_address, run_jobs
from .runtime import resolve_threads

KERNEL = "python3"  # the kernel the project's own runner uses (gan_utils.core.lessons)
ROOT_ENV = "GAN_UTILS_ROOT"
DATA_ENV = "GAN_UTILS_DATA"
THREADS_ENV = "OMP_NUM_THREADS"
FIXED_COLUMNS = ("status", "wall_time_s", "notebook", "cell", "error")
RESULT_PREFIX = "result_"  # for a result named like a parameter or a fixed column
SCALARS = (bool, int, float, str, type(None))
MAX_STEM = 150  # characters of a run's file name before it is shortened with a hash

__all__ = [
    "FIXED_COLUMNS",
    "check_grid",
    "check_notebook",
    "check_parameters",
    "expand_grid",
    "main",
    "parse_value",
    "parse_values",
    "read_grid",
    "run_file_stem",
    "run_lesson",
    "sweep_lesson",
    "table_rows",
]


# ---- values and grids ------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, plus YAML 1.2 floats without a dot (``1e-3``, ``5E+2``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_value(text: str) -> Any:
    """One command-line value: an int, else a float, else YAML (bool, null, list, ...), else
    the text itself (``"1"`` -> 1, ``"1e-3"`` -> 0.001, ``"true"`` -> True, ``"[a, b]"`` ->
    ``["a", "b"]``, ``"cpu"`` -> ``"cpu"``)."""
    if not isinstance(text, str):
        raise TypeError(f"a parameter value must be a string, got {text!r} ({type(text).__name__})")
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


def parse_values(texts: Iterable[str]) -> list[Any]:
    """``parse_value`` of every text, in order."""
    return [parse_value(text) for text in texts]


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{where}: a parameter name must be a Python identifier, got {name!r}")
    return name


def read_grid(path: str | Path) -> tuple[dict[str, list[Any]], list[dict[str, Any]] | None]:
    """A YAML grid file as ``(axes, runs)``.

    A mapping ``name: [values ...]`` gives axes (a scalar is one value; a list inside the
    list is one list-valued setting) and ``runs`` None; a list of parameter dicts gives no
    axes and one run per dict.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--grid must be a YAML file, got {str(path)!r}, which does not exist")
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from exc
    if isinstance(data, dict):
        axes = {}
        for name, values in data.items():
            _check_name(name, str(path))
            axes[name] = list(values) if isinstance(values, list) else [values]
        return axes, None
    if isinstance(data, list):
        for index, run in enumerate(data):
            if not isinstance(run, dict):
                raise ValueError(
                    f"{path}: every item of a list grid must be a mapping of parameters "
                    f"(one run), got item {index}: {run!r}"
                )
            for name in run:
                _check_name(name, f"{path}, run {index}")
        return {}, [dict(run) for run in data]
    raise ValueError(
        f"{path}: a grid must be a mapping 'name: [values]' or a list of parameter mappings, "
        f"got {type(data).__name__} {data!r}"
    )


def expand_grid(
    axes: dict[str, Sequence[Any]], runs: Sequence[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Every run of the grid: each of ``runs`` (or one run without parameters) combined with
    the Cartesian product of ``axes``, axes in their order, the last one fastest.

    Raises ValueError for an empty grid, an axis without values, or a name given twice.
    """
    for name, values in axes.items():
        _check_name(name, "the grid")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(f"the values of {name!r} must be a list, got {values!r}")
        if len(values) == 0:
            raise ValueError(f"parameter {name!r} has no values: give at least one")
    if runs is not None:
        runs = list(runs)
        for index, run in enumerate(runs):
            if not isinstance(run, dict):
                raise TypeError(f"run {index} of the grid must be a dict, got {run!r}")
            twice = sorted(set(run) & set(axes))
            if twice:
                raise ValueError(f"parameter(s) {twice} are set both by run {index} and as an axis")
    if not axes and not runs:
        raise ValueError("the grid is empty: give parameters with -p NAME VALUE ... or --grid FILE")
    bases = runs if runs is not None else [{}]
    combos = list(itertools.product(*axes.values()))
    return [{**base, **dict(zip(axes, combo, strict=True))} for base in bases for combo in combos]


def _check_setting(name: str, value: Any) -> None:
    """A value papermill can write into the notebook: None, bool, int, float, str, or lists
    and dicts of those."""
    if isinstance(value, SCALARS):
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_setting(name, item)
        return
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        for item in value.values():
            _check_setting(name, item)
        return
    raise TypeError(
        f"parameter {name!r} must be None, a bool, int, float, string, or a list or "
        f"mapping of those, got {value!r} ({type(value).__name__})"
    )


def check_grid(grid: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs as a list of dicts of plain values; ValueError/TypeError otherwise."""
    if isinstance(grid, dict) or not isinstance(grid, Sequence) or len(grid) == 0:
        raise ValueError(f"the grid must be a non-empty list of parameter dicts, got {grid!r}")
    runs = []
    for index, run in enumerate(grid):
        if not isinstance(run, dict):
            raise TypeError(f"run {index} of the grid must be a dict, got {run!r}")
        for name, value in run.items():
            _check_name(name, f"run {index}")
            _check_setting(name, value)
        runs.append(dict(run))
    return runs


# ---- the lesson ------------------------------------------------------------------------------
def check_notebook(notebook: str | Path) -> Path:
    """``notebook`` as an existing ``.ipynb`` path; ValueError otherwise."""
    path = Path(notebook)
    if path.suffix != ".ipynb":
        raise ValueError(f"notebook must be a .ipynb file, got {str(notebook)!r}")
    if not path.is_file():
        raise ValueError(f"notebook {str(notebook)!r} does not exist")
    return path


def check_parameters(notebook: str | Path, names: Iterable[str]) -> dict[str, Any]:
    """The lesson's parameters (``papermill.inspect_notebook``), after checking that every
    one of ``names`` is among them; ValueError naming the unknown ones otherwise."""
    import papermill as pm

    path = check_notebook(notebook)
    known = pm.inspect_notebook(str(path))
    unknown = [name for name in dict.fromkeys(names) if name not in known]
    if unknown:
        allowed = ", ".join(known) if known else "none (it has no cell tagged 'parameters')"
        raise ValueError(
            f"unknown parameter(s) {', '.join(unknown)} for {path.name}; "
            f"its parameters are: {allowed}"
        )
    return known


# ---- one run (in a worker) -------------------------------------------------------------------
@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (a kernel started meanwhile inherits
    them), then restore the previous values."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _failure(exc: Exception) -> tuple[int | None, str]:
    """The cell index and ``"ename: evalue"`` of a failed execution."""
    if getattr(exc, "ename", None):  # papermill.exceptions.PapermillExecutionError
        return exc.cell_index, f"{exc.ename}: {exc.evalue}"
    lines = str(exc).strip().splitlines()
    return None, f"{type(exc).__name__}: {lines[0] if lines else ''}"


def _failed_cell(notebook_text: str, default: int | None) -> int | None:
    """The index of the failed cell in the executed notebook as written (papermill adds red
    markdown banners above it, so its own ``cell_index`` counts differently)."""
    try:
        cells = json.loads(notebook_text).get("cells", [])
    except ValueError:
        return default
    for index, cell in enumerate(cells):
        if cell.get("metadata", {}).get("papermill", {}).get("exception"):
            return index
    return default


def run_lesson(
    notebook_text: str,
    notebook_name: str,
    notebook_dir: str,
    parameters: dict[str, Any],
    threads: int = 1,
) -> dict[str, Any]:
    """Execute one lesson at ``parameters``; the job function of a sweep (runs in a worker).

    The notebook travels as its JSON text and is executed into a temporary folder, with a
    fresh temporary ``GAN_UTILS_ROOT`` (the lesson's runs/, artifacts/ and figures/; data
    stay where they were, through ``GAN_UTILS_DATA``) and ``OMP_NUM_THREADS=threads``; the
    kernel's working directory is ``notebook_dir`` when this machine has it, else the
    temporary folder. Nothing of the run outlives the call: it returns ``parameters``,
    ``status`` ("ok" or "failed"), ``cell`` (the index of the failed cell in the executed
    notebook, from 0, markdown cells included) and ``error`` ("ename: evalue"; both None
    when ok), ``wall_time_s``, ``notebook_json`` (the executed notebook's text; None if
    papermill wrote none), ``results`` (the results dict the notebook displayed, or None)
    and ``run_id``.
    """
    import papermill as pm

    from .paths import data_dir
    from .report import notebook_results

    with tempfile.TemporaryDirectory(prefix="gan_sweep_") as folder:
        folder = Path(folder)
        source, executed = folder / notebook_name, folder / f"executed_{notebook_name}"
        atomic_write_text(source, notebook_text)
        (folder / "root").mkdir()
        cwd = notebook_dir if Path(notebook_dir).is_dir() else str(folder)
        env = {ROOT_ENV: str(folder / "root"), THREADS_ENV: str(threads)}
        if not os.environ.get(DATA_ENV):
            env[DATA_ENV] = str(data_dir())  # a shared dataset cache, not a fresh download
        status, cell, error = "ok", None, None
        started = time.perf_counter()
        with _environment(env):
            try:
                pm.execute_notebook(
                    str(source),
                    str(executed),
                    parameters=parameters,
                    cwd=cwd,
                    kernel_name=KERNEL,
                    progress_bar=False,
                )
            except Exception as exc:  # noqa: BLE001 - a failed run is a row, not a crash
                status = "failed"
                cell, error = _failure(exc)
        wall = time.perf_counter() - started
        text = executed.read_text() if executed.is_file() else None
        payload = notebook_results(executed) if text is not None else None
        if status == "failed" and text is not None:
            cell = _failed_cell(text, cell)
        return {
            "parameters": dict(parameters),
            "status": status,
            "cell": cell,
            "error": error,
            "wall_time_s": round(wall, 1),
            "notebook_json": text,
            "results": payload.get("results") if payload else None,
            "run_id": payload.get("run_id") if payload else None,
        }


# ---- writing ---------------------------------------------------------------------------------
def _write_atomic(path: Path, text: str) -> None:
    """``text`` to ``path`` through ``core.atomic`` (a temporary beside it, synced, renamed)."""
    atomic_write_text(path, text)


def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}={_value_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def run_file_stem(parameters: dict[str, Any]) -> str:
    """A file name (without suffix) from a run's parameters, e.g. ``seed=0,num_steps=50``:
    characters other than letters, digits and ``._=,+-[]{}`` become ``_``; a very long
    name is cut and ends with a hash of the full one; no parameters: ``defaults``."""
    text = ",".join(f"{name}={_value_text(value)}" for name, value in parameters.items())
    text = re.sub(r"[^A-Za-z0-9._=,+\-\[\]{}]", "_", text) or "defaults"
    if len(text) > MAX_STEM:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        text = f"{text[: MAX_STEM - 11]}-{digest}"
    return text


def _file_names(grid: list[dict[str, Any]]) -> list[str]:
    """One notebook file name per run; a name two runs would share gets ``-<run number>``."""
    stems = [run_file_stem(run) for run in grid]
    taken = {stem for stem in stems if stems.count(stem) > 1}
    return [
        f"{stem}-{index}.ipynb" if stem in taken else f"{stem}.ipynb"
        for index, stem in enumerate(stems)
    ]


def _executed_notebook(text: str, source: Path, target: Path) -> str:
    """The executed notebook with papermill's paths pointing at the lesson and the file
    written, not at the worker's temporary folder."""
    notebook = json.loads(text)
    meta = notebook.get("metadata", {}).get("papermill")
    if isinstance(meta, dict):
        meta["input_path"], meta["output_path"] = str(source), str(target)
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _outcome(result: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """A job's result, or a ``JobFailure`` (its worker died) as a failed result."""
    if isinstance(result, JobFailure):
        return {
            "parameters": dict(parameters),
            "status": "failed",
            "cell": None,
            "error": result.error,
            "wall_time_s": None,
            "notebook_json": None,
            "results": None,
            "run_id": None,
        }
    return result


def _is_scalar(value: Any) -> bool:
    return isinstance(value, SCALARS)


def table_rows(
    outcomes: Sequence[dict[str, Any]],
    notebooks: Sequence[str | None],
    *,
    parameters: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], list[str]]:
    """The table's rows and the result names left out (lists, dicts).

    Columns: every parameter (``parameters`` first, e.g. those of an existing table, then
    first seen first; empty where a run keeps the lesson's default), then
    ``FIXED_COLUMNS``, then every scalar result; a result named like a column before it
    is prefixed ``result_`` (lesson 01's ``num_steps`` and its own ``wall_time_s``).
    """
    parameters = list(
        dict.fromkeys([*parameters, *(name for o in outcomes for name in o["parameters"])])
    )
    taken = set(parameters) | set(FIXED_COLUMNS)
    results, left_out = [], []
    for outcome in outcomes:
        for key, value in (outcome["results"] or {}).items():
            target = results if _is_scalar(value) else left_out
            if key not in results and key not in left_out:
                target.append(key)
    left_out = [key for key in left_out if key not in results]
    rows = []
    for outcome, notebook in zip(outcomes, notebooks, strict=True):
        row = {name: outcome["parameters"].get(name) for name in parameters}
        row.update(
            status=outcome["status"],
            wall_time_s=outcome["wall_time_s"],
            notebook=notebook,
            cell=outcome["cell"],
            error=outcome["error"],
        )
        found = outcome["results"] or {}
        for key in results:
            value = found.get(key)
            row[RESULT_PREFIX + key if key in taken else key] = value if _is_scalar(value) else None
        rows.append(row)
    return rows, left_out


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return str(value)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(rows[0])
    for row in rows:
        writer.writerow(_cell_text(value) for value in row.values())
    return buffer.getvalue()


def _md_cell(value: Any) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return _cell_text(value).replace("|", "\\|").replace("\n", " ")


def _md_text(
    rows: list[dict[str, Any]],
    left_out: list[str],
    notebook: Path,
    commands: list[dict[str, Any]],
    total: int,
    unrecorded: str | None = None,
    others: int = 0,
) -> str:
    failed = sum(row["status"] != "ok" for row in rows)
    done = f"{len(rows)} runs" if len(rows) == total else f"{len(rows)} of {total} runs so far"
    wall_time_s = sum(entry["wall_time_s"] for entry in commands)
    lines = [f"# Sweep of {notebook.name}", ""]
    if len(commands) == 1 and unrecorded is None:
        lines += [f"Command: `{commands[0]['command']}`", ""]
    else:
        lines += ["Commands, in order (each with its wall time and the runs it ran):", ""]
        if unrecorded is not None:
            lines.append(f"* earlier commands, not recorded (there was no `{unrecorded}`)")
        lines += [
            f"* `{entry['command']}` ({entry['wall_time_s']:.1f} s, {entry['runs']} runs)"
            for entry in commands
        ]
        lines.append("")
    recorded = " (of the recorded commands)" if unrecorded is not None else ""
    lines += [
        f"Total wall time{recorded}: {wall_time_s:.1f} s ({done}, {failed} failed).",
        "",
        "One row per run, in the grid's order"
        + (f" (then {others} rows of earlier runs outside this grid)" if others else "")
        + ": the parameters (empty: the lesson's default), "
        "the status, the run's wall time in seconds (kernel start included), its executed "
        "notebook, the cell and error of a failure, then the lesson's scalar results (a "
        f"result named like a column before it is prefixed `{RESULT_PREFIX}`). Nested "
        "results (lists, dicts) are left out of this table; they are in each executed "
        "notebook" + (f": {', '.join(f'`{key}`' for key in left_out)}." if left_out else "."),
        "",
        "| " + " | ".join(rows[0]) + " |",
        "|" + " --- |" * len(rows[0]),
    ]
    lines += ["| " + " | ".join(_md_cell(v) for v in row.values()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ---- resuming: the table and commands of an earlier sweep ------------------------------------
def _from_cell(text: str) -> Any:
    """A table cell read back: None when empty, else the bool, int, float, list or dict whose
    cell text (``_cell_text``) is exactly ``text``, else the text itself; so a row read
    back is written again unchanged."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    for convert in (int, float):
        try:
            value = convert(text)
        except ValueError:
            continue
        if _cell_text(value) == text:
            return value
    if text[0] in "[{":
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if _cell_text(value) == text:
            return value
    return text


def _read_table(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and rows of a sweep's CSV table (values as ``_from_cell``); ValueError
    when it is not one."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            lines = [line for line in csv.reader(handle) if line]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read the sweep table {path}: {exc}") from exc
    header = lines[0] if lines else []
    missing = [column for column in FIXED_COLUMNS if column not in header]
    if missing or len(set(header)) != len(header):
        raise ValueError(
            f"{path} is not a sweep table: its header {header} "
            + (f"lacks {', '.join(missing)}" if missing else "repeats a column")
        )
    rows = []
    for number, line in enumerate(lines[1:], 1):
        if len(line) != len(header):
            raise ValueError(
                f"{path}: row {number} has {len(line)} cells for {len(header)} columns"
            )
        rows.append({column: _from_cell(text) for column, text in zip(header, line, strict=True)})
    return header, rows


def _read_commands(path: Path) -> dict[str, Any] | None:
    """The commands sidecar of a sweep (``{"commands": [...], "left_out": [...]}``), or None
    when there is none; ValueError when it is not one."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"cannot read the sweep's commands {path}: {exc}") from exc
    commands = data.get("commands") if isinstance(data, dict) else None
    if not isinstance(commands, list) or not all(
        isinstance(entry, dict)
        and isinstance(entry.get("command"), str)
        and isinstance(entry.get("wall_time_s"), (int, float))
        and isinstance(entry.get("runs"), int)
        for entry in commands
    ):
        raise ValueError(
            f"{path} is not a sweep's list of commands: expected "
            '{"commands": [{"command": ..., "wall_time_s": ..., "runs": ...}, ...]}'
        )
    left_out = data.get("left_out", [])
    return {"commands": commands, "left_out": [key for key in left_out if isinstance(key, str)]}


def _columns_before_status(columns: Sequence[str]) -> list[str]:
    return list(columns[: columns.index("status")] if "status" in columns else columns)


def _file_names_besides(
    files: list[str], todo: list[int], folder: str, reserved: set[str]
) -> dict[int, str]:
    """The notebook file of each run of ``todo``: its name from ``files``, unless a row the
    table keeps already points at ``<folder>/<name>`` (``reserved``); then ``-<run
    number>`` (and ``-2``, ``-3``, ... if need be) is added, so no kept notebook is
    overwritten."""
    used, chosen = set(reserved), {}
    for index in todo:
        file, stem, attempt = files[index], files[index].removesuffix(".ipynb"), 0
        while f"{folder}/{file}" in used:
            attempt += 1
            file = f"{stem}-{index}" + (f"-{attempt}" if attempt > 1 else "") + ".ipynb"
        used.add(f"{folder}/{file}")
        chosen[index] = file
    return chosen


def _merged_rows(
    old_columns: Sequence[str],
    kept: Sequence[dict[str, Any] | None],
    new: dict[int, dict[str, Any]],
    others: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """The whole table: per run of the grid its kept row or its new row (none yet: left
    out), then ``others``, every row with the union of the columns (parameters, the fixed
    columns, results; the old table's first); and the rows by run number."""
    new_columns = list(next(iter(new.values()))) if new else []
    parameters = list(
        dict.fromkeys([*_columns_before_status(old_columns), *_columns_before_status(new_columns)])
    )
    taken = set(parameters) | set(FIXED_COLUMNS)
    results = [c for c in dict.fromkeys([*old_columns, *new_columns]) if c not in taken]
    columns = [*parameters, *FIXED_COLUMNS, *results]
    by_run = {}
    for index, row in enumerate(kept):
        row = row if row is not None else new.get(index)
        if row is not None:
            by_run[index] = {column: row.get(column) for column in columns}
    rows = [*by_run.values(), *({column: row.get(column) for column in columns} for row in others)]
    return rows, by_run


# ---- a sweep ---------------------------------------------------------------------------------
def _default_out() -> Path:
    from .paths import runs_dir

    return runs_dir() / "sweeps"


def _check_name_of_sweep(name: Any) -> str:
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._=,+-]*", name):
        raise ValueError(
            f"name must be a plain file name (letters, digits and ._=,+-, no folders), got {name!r}"
        )
    return name


def sweep_lesson(
    notebook: str | Path,
    grid: Sequence[dict[str, Any]],
    *,
    workers: int = 1,
    cluster: str | None = None,
    threads: int | str = "auto",
    out: str | Path | None = None,
    name: str | None = None,
    append: bool = False,
    on_start: Callable[[int, int, int], None] | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    command: str | None = None,
) -> list[dict[str, Any]]:
    """Execute ``notebook`` once per parameter dict of ``grid``; returns the table's rows.

    Everything is checked before a run starts (the notebook, the grid, every name against
    the lesson's parameters, the existing table). The runs go through
    ``run_jobs(run_lesson, ...)`` (``workers`` local processes, or the Dask scheduler
    ``cluster``; ``threads`` per run, a count or "auto" = ``$OMP_NUM_THREADS`` if set, else
    the usable cores // workers, also as the kernel's ``OMP_NUM_THREADS``); a failed run is
    a row with status "failed" and the others finish. As each run comes in (in the grid's
    order) its executed notebook is written to ``<out>/<name>/`` and ``<out>/<name>.csv``,
    ``.md`` and ``<name>_commands.json`` (every command that ran runs into the table, with
    its wall time and number of runs; the md header lists them and their total wall time)
    are rewritten (atomically); ``on_row`` then gets the run's row. ``command`` names
    this call in the md header and the commands file.

    An existing table ``<out>/<name>.csv`` (or ``.md``) is a ValueError, unless ``append``:
    then the sweep resumes it. A run of the grid whose parameters (compared as the text
    of the table's cells) have a row with status "ok" there whose executed notebook still
    exists is not run again and keeps its row as it was (values read back from the CSV);
    every other run of the grid runs, its new row replacing the old one (until it comes in,
    the run has no row). The table keeps the grid's order, and the rows of the old table
    that no run of the grid takes up (other parameters) are kept after the grid's rows,
    so appending never throws away finished work; no column is lost. ``on_start(done, to_run, others)`` is called before
    the first run with the number of runs of the grid the table already holds, the number
    that will run and the number of rows outside the grid.

    Returns the whole table: the grid's rows in its order, then those other rows.
    """
    path = check_notebook(notebook).resolve()
    runs = check_grid(grid)
    check_parameters(path, (key for run in runs for key in run))
    check_int("workers", workers, minimum=1)
    threads = resolve_threads(threads, 1 if cluster_address(cluster) else workers)
    name = _check_name_of_sweep(name if name is not None else f"{path.stem}_sweep")
    out = Path(out) if out is not None else _default_out()
    folder = out / name
    table, md_file, log = out / f"{name}.csv", out / f"{name}.md", out / f"{name}_commands.json"
    old_columns: list[str] = []
    old_rows: list[dict[str, Any]] = []
    earlier: list[dict[str, Any]] = []
    left_out_before: list[str] = []
    unrecorded = None
    if not append:
        existing = [file for file in (table, md_file) if file.exists()]
        if existing:
            raise ValueError(
                f"the sweep table {existing[0]} already exists: pass --append (append=True) "
                "to resume that sweep, or another --name (name=) to start a new one"
            )
    elif table.is_file():
        old_columns, old_rows = _read_table(table)
        record = _read_commands(log)
        if record is None:
            unrecorded = log.name
        else:
            earlier, left_out_before = record["commands"], record["left_out"]
    names_in_grid = list(dict.fromkeys(key for run in runs for key in run))
    old_parameters = _columns_before_status(old_columns)
    clash = [key for key in names_in_grid if key in old_columns and key not in old_parameters]
    if clash:
        raise ValueError(
            f"cannot append to {table}: {', '.join(clash)} are result columns there but "
            "parameters of this grid; start a new sweep with another --name"
        )

    # which runs of the grid the table already holds (matched on the text of their cells)
    names = list(dict.fromkeys([*old_parameters, *names_in_grid]))

    def key_of(values: dict[str, Any]) -> tuple[str, ...]:
        return tuple(_cell_text(values.get(key)) for key in names)

    waiting: dict[tuple[str, ...], list[int]] = {}
    for number, row in enumerate(old_rows):
        waiting.setdefault(key_of(row), []).append(number)
    kept: list[dict[str, Any] | None] = []
    taken_up: set[int] = set()
    for run in runs:
        row = None
        if waiting.get(key_of(run)):
            number = waiting[key_of(run)].pop(0)
            taken_up.add(number)
            row = old_rows[number]
            written = row.get("notebook")
            if row["status"] != "ok" or not (
                isinstance(written, str) and (out / written).is_file()
            ):
                row = None
        kept.append(row)
    others = [row for number, row in enumerate(old_rows) if number not in taken_up]
    todo = [index for index, row in enumerate(kept) if row is None]
    reserved = {
        row["notebook"]
        for row in [*kept, *others]
        if row is not None and isinstance(row.get("notebook"), str)
    }
    files = _file_names_besides(_file_names(runs), todo, name, reserved)

    command = command or f"sweep_lesson({str(notebook)!r}, <{len(runs)} runs>)"
    text = path.read_text()
    jobs = [(text, path.name, str(path.parent), runs[index], threads) for index in todo]
    outcomes: dict[int, dict[str, Any]] = {}
    notebooks: dict[int, str | None] = {}
    started = time.perf_counter()

    def write() -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
        order = list(outcomes)
        new_rows, left_out = table_rows(
            [outcomes[index] for index in order],
            [notebooks[index] for index in order],
            parameters=old_parameters,
        )
        rows, by_run = _merged_rows(
            old_columns, kept, dict(zip(order, new_rows, strict=True)), others
        )
        left_out = [  # a result left out before may be a column now
            key
            for key in dict.fromkeys([*left_out_before, *left_out])
            if key not in rows[0] and RESULT_PREFIX + key not in rows[0]
        ]
        commands = list(earlier)
        if outcomes:
            elapsed = round(time.perf_counter() - started, 1)
            commands.append({"command": command, "wall_time_s": elapsed, "runs": len(outcomes)})
        md = _md_text(
            rows, left_out, path, commands, len(runs) + len(others), unrecorded, len(others)
        )
        _write_atomic(table, _csv_text(rows))
        _write_atomic(md_file, md)
        if outcomes:
            record = {"commands": commands, "left_out": left_out}
            _write_atomic(log, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        return rows, by_run

    def collect(result: Any) -> None:
        index = todo[len(outcomes)]
        outcome = _outcome(result, runs[index])
        written = None
        if outcome["notebook_json"] is not None:
            target = folder / files[index]
            _write_atomic(target, _executed_notebook(outcome["notebook_json"], path, target))
            written = target.relative_to(out).as_posix()
        outcomes[index] = outcome
        notebooks[index] = written
        by_run = write()[1]
        if on_row is not None:
            on_row(by_run[index])

    if on_start is not None:
        on_start(len(runs) - len(todo), len(todo), len(others))
    if jobs:
        run_jobs(
            run_lesson,
            jobs,
            workers,
            cluster=cluster,
            threads=threads,
            on_result=collect,
            keep_going=True,
        )
    return write()[0]


# ---- the command -----------------------------------------------------------------------------
def _threads(text: str) -> int | str:
    try:
        value: int | str = int(text)
    except ValueError:
        value = text
    try:
        resolve_threads(value)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gan_utils.core.lesson_sweep",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("notebook", help="the lesson, e.g. notebooks/01_gan_basics.ipynb")
    parser.add_argument(
        "-p",
        dest="axes",
        nargs="+",
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter and its values (YAML scalars: 1, 1e-3, true, cpu, '[a, b]'); "
        "repeat for more axes",
    )
    parser.add_argument("--grid", help="a YAML file: 'name: [values]' or a list of runs")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--cluster", help="a Dask scheduler address, e.g. tcp://host:8786")
    parser.add_argument(
        "--threads", type=_threads, default="auto",
        help="threads per run: a count, or auto ($OMP_NUM_THREADS if set, else the usable "
        "cores // workers; the default)",
    )  # fmt: skip
    parser.add_argument("--out", help="output folder (default <root>/runs/sweeps)")
    parser.add_argument("--name", help="sweep name (default <notebook stem>_sweep)")
    parser.add_argument(
        "--append",
        action="store_true",
        help="resume the sweep of this name: runs with an ok row and their notebook in its "
        "table are not run again; without it an existing table is an error",
    )
    return parser


def _command_axes(pairs: list[list[str]]) -> dict[str, list[Any]]:
    axes: dict[str, list[Any]] = {}
    for pair in pairs:
        if len(pair) < 2:
            raise ValueError(f"-p {pair[0]} needs at least one value: -p NAME VALUE [VALUE ...]")
        name = _check_name(pair[0], "-p")
        if name in axes:
            raise ValueError(f"-p {name} is given twice; list all its values after one -p")
        axes[name] = parse_values(pair[1:])
    return axes


class _Progress:
    """What the command prints: the plan (``start``), then a line per run (``row``)."""

    def __init__(self, runs: int, notebook: str, table: Path) -> None:
        self.runs, self.notebook, self.table = runs, notebook, table
        self.total, self.shown = runs, 0

    def start(self, done: int, to_run: int, others: int) -> None:
        self.total = to_run
        line = f"{self.runs} runs of {self.notebook}: "
        if done or others:
            line += f"{self.table} already holds {done} of them (ok, notebook present)"
            if others:
                line += f" and {others} rows of other runs, which it keeps"
            line += "; "
        print(line + f"{to_run} will run", flush=True)

    def row(self, row: dict[str, Any]) -> None:
        where = row["notebook"] or "no notebook written"
        self.shown += 1
        line = f"[{self.shown}/{self.total}] {row['status']}"
        if row["wall_time_s"] is not None:
            line += f" in {row['wall_time_s']:.0f} s"
        print(f"{line}: {where}", flush=True)
        if row["status"] != "ok":
            print(f"    cell {row['cell']}: {row['error']}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """The command: 0 when every run succeeded, 1 when one failed, 2 on a usage error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        axes = {}
        runs = None
        if args.grid:
            axes, runs = read_grid(args.grid)
        for name, values in _command_axes(args.axes).items():
            if name in axes:
                raise ValueError(f"parameter {name!r} is set both by -p and by --grid")
            axes[name] = values
        grid = expand_grid(axes, runs)
        check_parameters(args.notebook, (key for run in grid for key in run))
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    command = "python -m gan_utils.core.lesson_sweep " + shlex.join(argv)
    out = Path(args.out) if args.out else _default_out()
    name = args.name or f"{Path(args.notebook).stem}_sweep"
    progress = _Progress(len(grid), args.notebook, out / f"{name}.csv")
    started = time.perf_counter()
    try:
        rows = sweep_lesson(
            args.notebook,
            grid,
            workers=args.workers,
            cluster=args.cluster,
            threads=args.threads,
            out=args.out,
            name=args.name,
            append=args.append,
            on_start=progress.start,
            on_row=progress.row,
            command=command,
        )
    except (ValueError, TypeError, ImportError, ClusterUnavailable) as exc:
        parser.error(str(exc))
    failed = [row for row in rows[: len(grid)] if row["status"] != "ok"]
    print(
        f"\n{progress.shown} runs in {time.perf_counter() - started:.0f} s; "
        f"{len(failed)} of the grid's {len(grid)} runs failed"
    )
    print(f"table: {out / (name + '.csv')} and {out / (name + '.md')}")
    print(f"notebooks: {out / name}")
    for row in failed:
        print(f"FAILED {row['notebook'] or '(no notebook)'}: cell {row['cell']}: {row['error']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
