r"""How a toy run collapses over training, the committed sweep tables, and the comparisons
lesson 02 draws from them.

* ``occupancy``: per snapshot, the share of samples near each mode (within a quarter of
  the spacing between neighbouring centres, the rule of ``collapse_verdict``); a
  collapsed generator shows a few bright rows, one hopping from mode to mode shows
  bright cells that move.
* ``modes_over_training``: modes covered per snapshot, with the 20-of-2,500 rule scaled
  to the snapshot's size.
* ``CommittedSweep``: a ``gan-toy`` sweep written under ``figures/`` (its runs, the
  commands that made them and their wall time), read back for the lesson.
* ``beats``: a remedy beats the plain GAN when it covers more modes at no lower % HQ
  (means over seeds).
* ``PACGAN_TABLE``: PacGAN's published synthetic-data rows (Lin et al. 2018, Table 1).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.checks import check_number
from ..core.compare import clear_gap
from ..core.paths import committed_figures_dir
from .coverage import (
    MIN_HQ_PER_MODE,
    NEAR_RADIUS_IN_SPACING,
    NUM_EVAL_SAMPLES,
    mode_coverage,
    mode_spacing,
)
from .mixtures import GaussianMixture
from .runs import SweepResult, mean_std_text, read_runs_csv, verdict_counts


# ---- one run over training ------------------------------------------------------------------
def occupancy(
    snapshots: Sequence[tuple[int, np.ndarray]], mixture: GaussianMixture
) -> tuple[np.ndarray, np.ndarray]:
    """Steps (T,) and shares (T, K): the share of each snapshot's samples near each mode."""
    if not snapshots:
        raise ValueError("snapshots must hold at least one (step, samples) pair, got none")
    centres = mixture.centres.detach().to("cpu", torch.float64)
    radius = NEAR_RADIUS_IN_SPACING * mode_spacing(centres)
    steps, shares = [], []
    for step, samples in snapshots:
        x = torch.as_tensor(np.asarray(samples), dtype=torch.float64)
        distance, nearest = torch.cdist(x, centres).min(dim=1)
        near = distance <= radius  # NaN compares False
        counts = torch.bincount(nearest[near], minlength=centres.shape[0])
        steps.append(int(step))
        shares.append((counts.double() / x.shape[0]).numpy())
    return np.asarray(steps), np.stack(shares)


def occupied_modes(shares: np.ndarray, min_share: float = 0.1) -> list[frozenset[int]]:
    """Per snapshot, the modes holding at least ``min_share`` of the samples."""
    check_number("min_share", min_share, 0, 1, min_open=True)
    return [frozenset(np.flatnonzero(row >= min_share).tolist()) for row in shares]


def mode_hops(shares: np.ndarray, min_share: float = 0.1) -> int:
    """How often the set of occupied modes (``occupied_modes``) changes from one snapshot
    to the next, counting only pairs where both sets are non-empty: a generator that
    settles once makes few hops, one chased around by its critic makes many."""
    sets = occupied_modes(shares, min_share)
    return sum(1 for a, b in zip(sets[:-1], sets[1:], strict=True) if a and b and a != b)


def modes_over_training(
    snapshots: Sequence[tuple[int, np.ndarray]], mixture: GaussianMixture
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Steps, modes covered and % HQ per snapshot. A mode counts as covered with
    ceil(20 n / 2,500) HQ samples of the snapshot's n (the table's rule, scaled)."""
    steps, covered, hq = [], [], []
    for step, samples in snapshots:
        n = len(samples)
        m = mode_coverage(
            samples,
            mixture.centres,
            mixture.std,
            min_hq_per_mode=max(1, math.ceil(MIN_HQ_PER_MODE * n / NUM_EVAL_SAMPLES)),
        )
        steps.append(int(step))
        covered.append(m.modes_covered)
        hq.append(m.high_quality_percent)
    return np.asarray(steps), np.asarray(covered), np.asarray(hq)


# ---- committed sweeps -----------------------------------------------------------------------
@dataclass
class CommittedSweep:
    """A ``gan-toy`` sweep under ``figures/``: ``<name>_runs.csv`` and
    ``<name>_commands.json`` (the commands, their wall times and run counts)."""

    name: str
    result: SweepResult
    settings: str  # the settings text every run was made with
    commands: list[dict]

    @property
    def wall_time_s(self) -> int:
        """Total wall time of the commands that trained the runs."""
        return int(sum(c["wall_time_s"] for c in self.commands))

    def commands_markdown(self) -> str:
        """The commands with their wall times and run counts, as a Markdown list."""
        return "\n".join(
            f"* `{c['command']}` ({c['wall_time_s']} s, {c['runs']} runs)" for c in self.commands
        )

    @property
    def finished(self) -> bool:
        """True when the last command that added runs ran to its end (an interrupted
        command resumed by a later one counts as finished)."""
        return bool(self.commands[-1].get("finished", True)) if self.commands else True

    def markdown(self) -> str:
        """The commands (``commands_markdown``) above the table (``SweepResult.to_markdown``)."""
        return self.commands_markdown() + "\n\n" + self.result.to_markdown()

    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.result.runs})


def committed_sweep(name: str, folder: str | Path | None = None) -> CommittedSweep:
    """Read the sweep ``name`` that ``gan-toy --out figures --name <name>`` wrote.

    Raises:
        FileNotFoundError: naming the missing file and the command that writes it.
    """
    folder = Path(folder) if folder is not None else committed_figures_dir()
    runs_path = folder / f"{name}_runs.csv"
    commands_path = folder / f"{name}_commands.json"
    for path in (runs_path, commands_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing: it is written by `gan-toy ... --out {folder} --name {name}`"
                " (see the commands in docs/lesson02_sweeps.md)"
            )
    pairs = read_runs_csv(runs_path)
    if not pairs:
        raise ValueError(f"{runs_path} holds no runs")
    settings = {text for _, text in pairs}
    if len(settings) != 1:
        raise ValueError(f"{runs_path} mixes runs made with different settings: {sorted(settings)}")
    commands = json.loads(commands_path.read_text())
    return CommittedSweep(name, SweepResult([r for r, _ in pairs]), settings.pop(), commands)


# ---- comparisons ----------------------------------------------------------------------------
def beats(result: SweepResult, remedy: str, plain: str, dataset: str) -> bool:
    """True when ``remedy`` covers more modes than ``plain`` at no lower % HQ (means over
    the seeds of ``result``)."""
    a, b = result.row(remedy, dataset), result.row(plain, dataset)
    more_modes = a["modes_covered_mean"] > b["modes_covered_mean"]
    return bool(more_modes and a["high_quality_percent_mean"] >= b["high_quality_percent_mean"])


def relative_speed(result: SweepResult, variant: str, plain: str, dataset: str) -> float:
    """Steps/s of ``variant`` divided by those of ``plain`` (means over seeds)."""
    return result.row(variant, dataset)["steps_per_second"] / max(
        result.row(plain, dataset)["steps_per_second"], 1e-12
    )


@dataclass(frozen=True)
class PublishedRow:
    """One row of a paper's table: modes (its counting rule), % HQ and KL (means)."""

    model: str
    dataset: str
    modes: float
    hq_percent: float
    kl: float


# PacGAN (Lin et al. 2018), Table 1, means over 10 trials; a mode counts with >= 1 HQ sample
# of 2,500; ring: 8 Gaussians on the unit circle, std 0.01; grid: 25 on {-4,...,4}^2, std 0.05.
PACGAN_TABLE = (
    PublishedRow("GAN", "ring", 6.3, 98.2, 0.45),
    PublishedRow("PacGAN2", "ring", 7.9, 95.6, 0.07),
    PublishedRow("PacGAN3", "ring", 7.8, 97.7, 0.10),
    PublishedRow("PacGAN4", "ring", 7.8, 95.9, 0.07),
    PublishedRow("GAN", "grid", 17.3, 94.8, 0.70),
    PublishedRow("PacGAN2", "grid", 23.8, 91.3, 0.13),
    PublishedRow("PacGAN3", "grid", 24.6, 94.2, 0.06),
    PublishedRow("PacGAN4", "grid", 24.8, 93.6, 0.04),
)
PACGAN_PROTOCOL = {
    "networks": "G 4 x 400 with batch norm, D 3 maxout layers x 200 (5 pieces)",
    "optimiser": "Adam lr 1e-4, beta1 0.8, batch 100",
    "steps": "400,000 iterations",
    "ring": "radius 1, std 0.01 (ours: radius 2, std 0.02: the same shape, scaled by 2)",
    "trials": "10 trials (means shown)",
    "high quality": "within 3 std of the nearest mode per axis (ours: Euclidean distance)",
}


# ChristophReich1996/Mode_Collapse: modes its README figures show at step 10,000 (read off
# the scatter plots, hence approximate; None: the samples leave the ring). Its setting is
# REPOSITORY_SETTINGS on the wide ring; its G uses LeakyReLU and a tanh before its last
# layer where ours uses ReLU and no tanh (the critics match: 4 x 256, LeakyReLU).
REPOSITORY_FIGURES: dict[str, int | None] = {
    "minimax": 3,
    "non_saturating": 1,
    "non_saturating_topk": 1,
    "least_squares": 3,
    "hinge": 3,
    "wasserstein": None,
    "wgan_gp": 8,
}
_LOOP_BUG = (
    "its figure was made with a training loop (later fixed) that made 500 generator steps,"
    " each after 20 x d_updates critic steps, instead of 10,000 after d_updates each"
)
REPOSITORY_BUGS = {
    "least_squares": "its LSGAN losses have wrong signs and targets (ours: a = 0, b = 1, c = 1)",
    "wgan_gp": f"its gradient-penalty weight is 2 (the paper's and ours: 10); {_LOOP_BUG}",
    "wasserstein": _LOOP_BUG,
}


def pacgan_comparison_markdown(
    ours: dict[str, SweepResult], models: dict[str, str], published: Sequence[str]
) -> str:
    """Our rows beside PacGAN's, under both counting rules.

    Args:
        ours: dataset -> the sweep with our runs on it.
        models: our variant -> the label to show (e.g. {"minimax": "GAN (ours)"}).
        published: the PacGAN rows to show (e.g. ["GAN", "PacGAN4"]).
    """
    lines = [
        "| dataset | model | modes, >= 1 HQ (PacGAN's rule) | modes, >= 20 HQ (ours) | % HQ "
        "| KL | runs |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for dataset, result in ours.items():
        k = result.runs[0].metrics.num_modes
        for row in PACGAN_TABLE:
            if row.dataset == dataset and row.model in published:
                lines.append(
                    f"| {dataset} | {row.model} (published) | {row.modes:.1f} / {k} | - "
                    f"| {row.hq_percent:.1f} | {row.kl:.2f} | 10 trials |"
                )
        for variant, label in models.items():
            r = result.row(variant, dataset)
            lines.append(
                f"| {dataset} | {label} | {_pm(r, 'modes_hit', 1)} / {k} "
                f"| {_pm(r, 'modes_covered', 1)} / {k} | {_pm(r, 'high_quality_percent', 1)} "
                f"| {_pm(r, 'kl_to_uniform', 2)} | {r['num_seeds']} seeds, ± std |"
            )
    return "\n".join(lines)


def _pm(row: dict, key: str, digits: int) -> str:
    return mean_std_text(row[f"{key}_mean"], row[f"{key}_std"], digits)


def clear_difference(row_a: dict, row_b: dict, key: str) -> int:
    """+1 when ``row_a``'s mean of ``key`` exceeds ``row_b``'s by more than twice their
    pooled std over seeds, -1 when it falls short by as much, 0 otherwise (the seeds cannot
    tell them apart; also when no spread is known): ``core.compare.clear_gap`` on two
    ``SweepResult.row`` dicts."""
    return clear_gap(
        row_a[f"{key}_mean"], row_a[f"{key}_std"], row_a["num_seeds"],
        row_b[f"{key}_mean"], row_b[f"{key}_std"], row_b["num_seeds"],
    )  # fmt: skip


__all__ = [
    "PACGAN_PROTOCOL",
    "PACGAN_TABLE",
    "REPOSITORY_BUGS",
    "REPOSITORY_FIGURES",
    "CommittedSweep",
    "PublishedRow",
    "beats",
    "clear_difference",
    "committed_sweep",
    "mode_hops",
    "modes_over_training",
    "occupancy",
    "occupied_modes",
    "pacgan_comparison_markdown",
    "relative_speed",
    "verdict_counts",
]
