"""Figures of lesson 02: sample snapshots, GIF frames and modes covered per variant.

Generated samples are dark (blue), the real mixture light grey, so panels print in grey.
Used by the notebook, ``gan-toy`` and ``gan_utils.toy.explorer``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image

from ..core.checks import check_int
from ..core.plotting import figure_to_image, scatter_samples
from .mixtures import GaussianMixture, get_toy_dataset
from .runs import SweepResult, ToyRun

REAL_POINTS = 1000  # real samples drawn behind each panel


def axis_limit(mixture: GaussianMixture) -> float:
    """Half-width of a square view that shows every mode with a margin."""
    return float(mixture.centres.abs().max()) * 1.3 + 0.3


def real_points(mixture: GaussianMixture, num_samples: int = REAL_POINTS) -> np.ndarray:
    """A fixed set of real samples for backgrounds (own RNG: training is untouched)."""
    rng = torch.Generator(device=mixture.device).manual_seed(0)
    return mixture.sample(num_samples, generator=rng).cpu().numpy()


def _panel(ax, samples: np.ndarray, mixture: GaussianMixture, title: str) -> None:
    finite = samples[np.isfinite(samples).all(1)]
    scatter_samples(ax, finite, real_points(mixture), title=title, limit=axis_limit(mixture))
    ax.set_xlabel("x1 (data units)")
    ax.set_ylabel("x2 (data units)")


def snapshot_frames(run: ToyRun, dpi: int = 60, size: float = 3.0) -> list[Image.Image]:
    """One image per snapshot of ``run`` (GIF frames), titled with the step."""
    mixture = get_toy_dataset(run.dataset)
    frames = []
    for step, samples in run.snapshots:
        fig, ax = plt.subplots(figsize=(size, size))
        critic_steps = (
            ""
            if run.settings is None or run.settings.n_critic is None
            else (f", n_critic {run.settings.n_critic}")
        )
        _panel(ax, samples, mixture, f"{run.variant}{critic_steps} on {run.dataset}, step {step}")
        ax.title.set_fontsize(9)
        fig.tight_layout()
        frames.append(figure_to_image(fig, dpi=dpi))
        plt.close(fig)
    return frames


def plot_snapshots(runs: Sequence[ToyRun], num_columns: int = 5, size: float = 1.7):
    """Rows: runs; columns: ``num_columns`` snapshots evenly spaced over training."""
    if not runs or not runs[0].snapshots:
        raise ValueError("runs must hold at least one run with snapshots (num_snapshots > 0)")
    check_int("num_columns", num_columns, minimum=1)
    count = len(runs[0].snapshots)
    columns = sorted({round(i * (count - 1) / max(1, num_columns - 1)) for i in range(num_columns)})
    fig, axes = plt.subplots(
        len(runs),
        len(columns),
        figsize=(size * len(columns), size * len(runs)),
        squeeze=False,
    )
    for row, run in enumerate(runs):
        mixture = get_toy_dataset(run.dataset)
        for col, index in enumerate(columns):
            step, samples = run.snapshots[min(index, len(run.snapshots) - 1)]
            ax = axes[row, col]
            _panel(ax, samples, mixture, f"step {step}" if row == 0 else "")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel("")
            ax.set_ylabel(run.variant if col == 0 else "", fontsize=8)
    fig.suptitle(f"Generated (blue) and real (grey) samples on the {runs[0].dataset} over training")
    fig.tight_layout()
    return fig


def plot_final_samples(runs: Sequence[ToyRun], num_columns: int = 5, size: float = 2.0):
    """The last snapshot of each run, titled with its modes covered and % HQ."""
    if not runs:
        raise ValueError("runs must hold at least one run")
    check_int("num_columns", num_columns, minimum=1)
    rows = math.ceil(len(runs) / num_columns)
    fig, axes = plt.subplots(
        rows, num_columns, figsize=(size * num_columns, size * rows), squeeze=False
    )
    for ax in axes.flat[len(runs) :]:
        ax.axis("off")
    for ax, run in zip(axes.flat, runs, strict=False):
        mixture = get_toy_dataset(run.dataset)
        m = run.metrics
        samples = run.snapshots[-1][1] if run.snapshots else np.empty((0, 2))
        _panel(
            ax,
            samples,
            mixture,
            f"{run.variant}\n{m.modes_covered}/{m.num_modes} modes, "
            f"{m.high_quality_percent:.0f}% HQ",
        )
        ax.title.set_fontsize(8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.tight_layout()
    return fig


def plot_modes_covered(result: SweepResult, dataset: str, ax=None):
    """Modes covered per variant on ``dataset``: mean over seeds with a +/- std bar."""
    rows = [r for r in result.summary() if r["dataset"] == dataset]
    if not rows:
        raise ValueError(f"no runs on dataset={dataset!r} in this sweep")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 0.35 * len(rows) + 1.2))
    names = [r["variant"] for r in rows]
    means = [r["modes_covered_mean"] for r in rows]
    stds = [
        0.0 if not math.isfinite(r["modes_covered_std"]) else r["modes_covered_std"] for r in rows
    ]
    y = np.arange(len(rows))
    ax.barh(y, means, xerr=stds, color="0.45", ecolor="black", capsize=3)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.axvline(rows[0]["num_modes"], color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, rows[0]["num_modes"] + 1)
    ax.set_xlabel(f"modes covered (of {rows[0]['num_modes']}; >= 20 HQ samples of 2,500)")
    ax.set_title(f"Modes covered on the {dataset}, mean ± std over {rows[0]['num_seeds']} seeds")
    return ax


def plot_occupancy(steps: np.ndarray, shares: np.ndarray, ax=None, title: str = ""):
    """Heat map of ``collapse.occupancy``: rows are modes, columns snapshots, the shade
    the share of samples near the mode (white 0, black at 0.5 or the largest share if
    higher). A collapsed generator shows a few dark rows; one hopping between modes, dark
    cells that move from row to row."""
    shares = np.asarray(shares, dtype=float)
    if shares.ndim != 2 or shares.shape[0] != len(steps) or not len(steps):
        raise ValueError(
            f"shares must have shape (len(steps), modes) with len(steps) >= 1, got "
            f"{shares.shape} for {len(steps)} steps"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 0.25 * shares.shape[1] + 1.2))
    image = ax.imshow(
        shares.T, aspect="auto", cmap="Greys", vmin=0, vmax=max(0.5, float(np.nanmax(shares))),
        interpolation="nearest",
        extent=(-0.5, len(steps) - 0.5, shares.shape[1] - 0.5, -0.5),
    )  # fmt: skip
    ticks = sorted({round(i * (len(steps) - 1) / 4) for i in range(5)})
    ax.set_xticks(ticks, [str(int(steps[i])) for i in ticks])
    ax.set_yticks(range(shares.shape[1]))
    ax.set_xlabel("generator step")
    ax.set_ylabel("mode")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label="share of samples near the mode")
    return ax


def plot_over_training(
    curves: dict[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    ylabel: str,
    top: float,
    ax=None,
    run_labels: Sequence[str] | None = None,
):
    """A quantity against generator step: one line per run, one shade and line style per
    label (``curves``: label -> [(steps, values), ...]). With ``run_labels`` (one per run
    of a label, e.g. its seed) each run gets its own marker and legend entry, so seeds can
    be told apart; without, the legend names the labels only. A dotted line marks ``top``."""
    if not curves:
        raise ValueError("curves must hold at least one label with runs, got none")
    longest = max(len(runs) for runs in curves.values())
    if run_labels is not None and len(run_labels) < longest:
        raise ValueError(
            f"run_labels must name every run of a label ({longest}), got {len(run_labels)}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    shades = ("0.1", "0.55", "0.35", "0.75")
    styles = ("-", "--", "-.", ":")
    markers = ("o", "s", "^", "D", "v", "P", "X", "*")
    for i, (label, runs) in enumerate(curves.items()):
        for j, (steps, values) in enumerate(runs):
            if run_labels is None:
                name, marker = (label if j == 0 else None), None
            else:
                name, marker = f"{label}, {run_labels[j]}", markers[j % len(markers)]
            ax.plot(
                steps, values, styles[i % len(styles)], color=shades[i % len(shades)],
                marker=marker, markersize=3.5, label=name, linewidth=1.4,
            )  # fmt: skip
    ax.axhline(top, color="black", linewidth=0.8, linestyle=":")
    ax.set_ylim(-0.04 * top, top * 1.06)
    ax.set_xlabel("generator step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return ax


def plot_modes_over_training(
    curves: dict[str, Sequence[tuple[np.ndarray, np.ndarray]]],
    num_modes: int,
    ax=None,
    run_labels: Sequence[str] | None = None,
):
    """Modes covered against generator step (``plot_over_training`` with the mode count as
    the top line; ``curves`` e.g. from ``collapse.modes_over_training``)."""
    return plot_over_training(curves, f"modes covered (of {num_modes})", num_modes, ax, run_labels)
