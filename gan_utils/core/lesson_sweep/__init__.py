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

# The package, by job: ``grid`` (values, YAML grids, expansion, checks against the lesson),
# ``job`` (one run in a worker: ``run_lesson``), ``files`` (the executed notebooks' names),
# ``table`` (rows, CSV/markdown text, reading an old table back for --append), ``sweep``
# (``sweep_lesson``), ``cli`` (the command, ``main``; ``__main__`` runs it).
from .cli import main
from .files import MAX_STEM as MAX_STEM
from .files import run_file_stem
from .grid import SCALARS as SCALARS
from .grid import (
    check_grid,
    check_notebook,
    check_parameters,
    expand_grid,
    parse_value,
    parse_values,
    read_grid,
)
from .job import DATA_ENV as DATA_ENV
from .job import KERNEL as KERNEL
from .job import ROOT_ENV as ROOT_ENV
from .job import THREADS_ENV as THREADS_ENV
from .job import run_lesson
from .sweep import sweep_lesson
from .table import FIXED_COLUMNS, table_rows
from .table import RESULT_PREFIX as RESULT_PREFIX

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
