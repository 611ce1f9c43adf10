"""``make run``: execute every lesson headless with papermill, then print the summary.

Usage: ``python -m gan_utils.core.lessons [PREFIX ...]`` (e.g. ``01 02``; default: all).
Executed copies go to ``<root>/runs/<notebook>/<notebook>.ipynb``; each lesson writes
its own ``results.json`` there, and the summary table is built from those files.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .paths import PROJECT_ROOT, runs_dir
from .report import load_results, results_table

NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def lesson_notebooks(prefixes: list[str] | None = None) -> list[Path]:
    """The committed lessons in order, optionally only those whose name starts with a prefix."""
    notebooks = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if prefixes:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(p) for p in prefixes)]
        if not notebooks:
            names = [nb.stem for nb in sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))]
            raise SystemExit(f"no lesson matches {prefixes}; lessons: {names}")
    return notebooks


def run_notebook(notebook: Path, parameters: dict | None = None) -> Path:
    """Execute one lesson with papermill (kernel cwd: notebooks/); returns the output path."""
    import papermill as pm

    out = runs_dir(notebook.stem) / notebook.name
    pm.execute_notebook(
        str(notebook),
        str(out),
        parameters=parameters or {},
        cwd=str(NOTEBOOKS_DIR),
        kernel_name="python3",
        progress_bar=False,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefixes", nargs="*", help="lesson number prefixes, e.g. 01 02")
    args = parser.parse_args(argv)
    timings = {}
    failed = []
    for notebook in lesson_notebooks(args.prefixes):
        print(f"running {notebook.name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            run_notebook(notebook)
        except Exception as exc:  # report and go on with the other lessons
            failed.append(notebook.name)
            print(f"  FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        timings[notebook.stem] = time.perf_counter() - t0
        print(f"  {timings[notebook.stem]:.0f} s", flush=True)
    print()
    print(results_table(load_results()))
    print()
    print(
        "wall time per lesson (papermill): "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    )
    if failed:
        print(f"failed lessons: {failed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
