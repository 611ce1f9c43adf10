"""The sweep's table: the rows of the runs, their CSV and markdown text, and, for
``--append``, the old table and its commands sidecar read back and merged with new rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .grid import SCALARS

FIXED_COLUMNS = ("status", "wall_time_s", "notebook", "cell", "error")
RESULT_PREFIX = "result_"  # for a result named like a parameter or a fixed column


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
