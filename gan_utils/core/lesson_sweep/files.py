"""The files of a sweep's runs: the executed notebooks' names (from the parameters, never
overwriting a notebook the table keeps), their papermill paths, and the atomic writer."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text

MAX_STEM = 150  # characters of a run's file name before it is shortened with a hash


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
