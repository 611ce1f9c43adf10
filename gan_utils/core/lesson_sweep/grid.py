"""The grid of a sweep: command-line values, YAML grid files, the expansion into runs,
and the checks of the runs and of their names against the lesson's parameters."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

SCALARS = (bool, int, float, str, type(None))


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
