"""The command ``python -m gan_utils.core.lesson_sweep``: its arguments, the grid they
give, the progress it prints, and ``main``."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from ..executor import ClusterUnavailable
from ..runtime import resolve_threads
from .grid import _check_name, check_parameters, expand_grid, parse_values, read_grid
from .sweep import _default_out, sweep_lesson


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
    from . import __doc__ as usage  # the package's docstring, the command's usage

    parser = argparse.ArgumentParser(
        prog="python -m gan_utils.core.lesson_sweep",
        description=usage.splitlines()[0],
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
