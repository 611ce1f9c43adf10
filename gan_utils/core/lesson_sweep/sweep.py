"""``sweep_lesson``: checks everything, runs the jobs through the executor and writes the
executed notebooks, the table and the commands sidecar as the results come in."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..checks import check_int
from ..executor import cluster_address, run_jobs
from ..runtime import resolve_threads
from .files import _executed_notebook, _file_names, _file_names_besides, _write_atomic
from .grid import check_grid, check_notebook, check_parameters
from .job import _outcome, run_lesson
from .table import (
    RESULT_PREFIX,
    _cell_text,
    _columns_before_status,
    _csv_text,
    _md_text,
    _merged_rows,
    _read_commands,
    _read_table,
    table_rows,
)


def _default_out() -> Path:
    from ..paths import runs_dir

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
