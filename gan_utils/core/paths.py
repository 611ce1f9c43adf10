"""Where the lessons write: one output root for runs/, artifacts/, figures/ and data/.

The root is the project root (the folder holding ``pyproject.toml`` above this package),
never the current directory: nbval and JupyterLab start kernels in ``notebooks/`` and
papermill in the caller's directory, and all of them must write to the same place.

Environment variables:
    GAN_UTILS_REFRESH_FIGURES=1  write figures to ``<root>/figures`` (``make refresh`` does).
    GAN_UTILS_ROOT  moves the whole output root (tests use a temporary folder, so they
                    never rewrite the tracked ``figures/``).
    GAN_UTILS_DATA  moves only the data folder (default ``<root>/data``).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
PROJECT_ROOT = PACKAGE_DIR.parent


def output_root() -> Path:
    """The folder under which runs/, artifacts/, figures/ and data/ live."""
    override = os.environ.get("GAN_UTILS_ROOT")
    root = Path(override).expanduser().resolve() if override else PROJECT_ROOT
    root.mkdir(parents=True, exist_ok=True)
    return root


def _subdir(name: str) -> Path:
    path = output_root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir(notebook: str | None = None) -> Path:
    """``<root>/runs`` or ``<root>/runs/<notebook>``: executed notebooks and results.json."""
    path = _subdir("runs")
    if notebook:
        path = path / notebook
        path.mkdir(parents=True, exist_ok=True)
    return path


def artifacts_dir(*parts: str) -> Path:
    """``<root>/artifacts/...``: checkpoints and other generated state (git-ignored)."""
    path = _subdir("artifacts").joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def figures_dir() -> Path:
    """Where lessons write their PNG/GIF figures.

    ``<root>/figures`` (tracked, shown in the README) only when GAN_UTILS_REFRESH_FIGURES=1,
    which ``make refresh`` sets; otherwise ``<root>/runs/figures``, so that a student's or a
    test's run never rewrites the tracked figures.
    """
    if os.environ.get("GAN_UTILS_REFRESH_FIGURES") == "1":
        return _subdir("figures")
    path = runs_dir() / "figures"
    path.mkdir(parents=True, exist_ok=True)
    return path


def committed_figures_dir() -> Path:
    """The tracked ``figures/`` of the project (read-only use: committed tables and GIFs)."""
    return PROJECT_ROOT / "figures"


def data_dir() -> Path:
    """``$GAN_UTILS_DATA`` if set, else ``<root>/data``: downloaded or cached datasets."""
    override = os.environ.get("GAN_UTILS_DATA")
    path = Path(override).expanduser().resolve() if override else output_root() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path
