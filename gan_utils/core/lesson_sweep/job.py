"""One run of a sweep, in a worker: ``run_lesson`` executes the lesson in its own temporary
output root and returns everything (the executed notebook, results, status); ``_outcome``
turns a run whose worker died into a failed result."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..executor import JobFailure

KERNEL = "python3"  # the kernel the project's own runner uses (gan_utils.core.lessons)
ROOT_ENV = "GAN_UTILS_ROOT"
DATA_ENV = "GAN_UTILS_DATA"
THREADS_ENV = "OMP_NUM_THREADS"


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

    from ..paths import data_dir
    from ..report import notebook_results

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
