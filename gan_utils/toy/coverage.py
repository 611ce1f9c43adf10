r"""Mode-collapse metrics for the 2-D toy mixtures (lesson 02).

``mode_coverage(samples, centres, std)`` is the one definition every lesson, the CLI and
the widget use; ``evaluate_coverage`` draws the 2,500 samples from a generator first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..core.checks import as_real_tensor, check_int, check_number
from ..core.latent import fixed_latents, generate
from ..core.loop import Callback, every
from ..core.train import TrainState

NUM_EVAL_SAMPLES = 2500  # generated samples per evaluation, in every table of the course
HQ_RADIUS_IN_STD = 3.0  # a sample is high quality within 3 std of its nearest centre
MIN_HQ_PER_MODE = 20  # a mode is covered with at least 20 high-quality samples
NEAR_RADIUS_IN_SPACING = 0.25  # "near" a mode: within a quarter of the inter-mode spacing
COLLAPSE_NEAR_SHARE = 70.0  # collapse: >= 70 % of all samples near at most K / 2 modes ...
COLLAPSE_MIN_HQ_PERCENT = 50.0  # ... and >= 50 % of samples HQ (sharp, not blurred)
CURE_MIN_HQ_PERCENT = 85.0  # covering: every mode but (K // 12) covered, >= 85 % HQ


@dataclass(frozen=True)
class ModeCoverage:
    """The toy metrics of one set of samples (see ``mode_coverage`` for the rules)."""

    modes_covered: int  # modes with >= min_hq_per_mode high-quality samples
    modes_hit: int  # modes with >= 1 high-quality sample (the looser count some papers use)
    num_modes: int  # K, the number of mixture components
    high_quality_percent: float  # 100 * (# HQ samples) / (# samples)
    kl_to_uniform: float  # KL(HQ histogram over modes || uniform) in nats; NaN if no HQ sample
    num_samples: int  # N, the number of samples evaluated
    hq_counts: tuple[int, ...]  # HQ samples per mode, in the order of ``centres``
    near_counts: tuple[int, ...] = ()  # samples within a quarter spacing of each centre

    @property
    def few_modes(self) -> int:
        """K // 2: "few" modes in the collapse rule (4 of 8, 12 of 25)."""
        return self.num_modes // 2

    @property
    def near_few_percent(self) -> float:
        """100 x (samples near the ``few_modes`` most-visited modes) / N; NaN without
        ``near_counts``. High when the samples pile up on a few modes."""
        if not self.near_counts:
            return math.nan
        top = sorted(self.near_counts, reverse=True)[: self.few_modes]
        return 100.0 * sum(top) / self.num_samples

    def verdict(self) -> str:
        """ "collapsed", "covering", "blurry" or "partial" by the rules of ``collapse_verdict``."""
        return collapse_verdict(self)

    def as_dict(self) -> dict[str, float | int]:
        """The scalar figures (no per-mode counts), e.g. for a results table."""
        return {
            "modes_covered": self.modes_covered,
            "modes_hit": self.modes_hit,
            "num_modes": self.num_modes,
            "high_quality_percent": self.high_quality_percent,
            "kl_to_uniform": self.kl_to_uniform,
            "num_samples": self.num_samples,
            "near_few_percent": self.near_few_percent,
            "verdict": self.verdict(),
        }


def _as_points(name: str, value: Tensor | np.ndarray) -> Tensor:
    """``value`` as a float64 CPU tensor (``core.checks.as_real_tensor`` checks it)."""
    return as_real_tensor(name, value).detach().to("cpu", torch.float64)


def _check_centres(c: Tensor) -> None:
    if c.dim() != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise ValueError(
            f"centres must have shape (K, dim) with K >= 1 and dim >= 1, got {tuple(c.shape)}"
        )
    if not bool(torch.isfinite(c).all()):
        raise ValueError("centres must be finite, got NaN or inf values")


def mode_spacing(centres: Tensor | np.ndarray) -> float:
    """The smallest distance between two centres (ring of 8, radius 2: 4 sin(pi/8) = 1.53;
    the grid: 2); infinite for one centre."""
    c = _as_points("centres", centres)
    _check_centres(c)
    if c.shape[0] < 2:
        return math.inf
    distances = torch.cdist(c, c)
    distances.fill_diagonal_(math.inf)
    return float(distances.min())


def collapse_verdict(metrics: ModeCoverage) -> str:
    r"""One word for a run, from its ``ModeCoverage`` (K modes, N samples):

    * **collapsed**: sharp samples on few modes: at least 70 % of all N samples lie near
      (within a quarter of the spacing between neighbouring centres) at most K // 2
      modes (4 of 8, 12 of 25), *and* at least 50 % of the samples are HQ. The second
      condition keeps a blurred, undertrained cloud from being called collapsed: mode
      counts mean something only when most samples are sharp.
    * **covering**: at least K - K // 12 modes covered (8 of 8, 23 of 25) with at least
      85 % HQ;
    * **blurry**: under 50 % HQ and not collapsed (undertrained or diffuse);
    * **partial**: sharp, but neither on few modes nor on (almost) all of them.
    """
    if not isinstance(metrics, ModeCoverage):
        raise TypeError(
            f"metrics must be a ModeCoverage (from mode_coverage), got {type(metrics).__name__}"
        )
    hq = metrics.high_quality_percent
    near = metrics.near_few_percent
    if hq >= COLLAPSE_MIN_HQ_PERCENT and math.isfinite(near) and near >= COLLAPSE_NEAR_SHARE:
        return "collapsed"
    if (
        metrics.modes_covered >= metrics.num_modes - metrics.num_modes // 12
        and hq >= CURE_MIN_HQ_PERCENT
    ):
        return "covering"
    if hq < COLLAPSE_MIN_HQ_PERCENT:
        return "blurry"
    return "partial"


def mode_coverage(
    samples: Tensor | np.ndarray,
    centres: Tensor | np.ndarray,
    std: float,
    min_hq_per_mode: int = MIN_HQ_PER_MODE,
    hq_radius_in_std: float = HQ_RADIUS_IN_STD,
) -> ModeCoverage:
    r"""Modes covered, % high quality and KL to uniform of generated ``samples``.

    The rules, for N samples :math:`x_i` and a mixture with
    K centres :math:`c_k` and one isotropic std :math:`s`:

    * sample :math:`x_i` belongs to its nearest centre
      :math:`k(i) = \arg\min_k \lVert x_i - c_k \rVert_2`;
    * it is *high quality* (HQ) if :math:`\lVert x_i - c_{k(i)} \rVert_2 \le 3 s`;
    * :math:`n_k` = the number of HQ samples that belong to centre k;
    * a mode is *covered* if :math:`n_k \ge 20`; ``modes_hit`` counts :math:`n_k \ge 1`;
    * a sample is *near* its centre within a quarter of the smallest distance between
      two centres (``mode_spacing``); ``near_counts`` counts them per centre (they feed
      the collapse rule of ``collapse_verdict``);
    * % HQ :math:`= 100 \sum_k n_k / N`;
    * with :math:`p_k = n_k / \sum_j n_j` (empty modes included, :math:`0 \log 0 = 0`),
      :math:`\mathrm{KL}(p \,\|\, u) = \sum_k p_k \log(K p_k)` in nats, between 0 (HQ
      samples spread evenly) and :math:`\log K` (all on one mode); NaN when no sample
      is HQ, because p is then undefined.

    Samples that are NaN or infinite (a diverged generator) are never HQ. Evaluate on
    ``NUM_EVAL_SAMPLES`` = 2,500 samples so that numbers are comparable.

    Args:
        samples: generated points, shape (N, dim).
        centres: the mixture's centres, shape (K, dim) (``GaussianMixture.centres``).
        std: the mixture's std s (``GaussianMixture.std``).
        min_hq_per_mode: HQ samples a mode needs to count as covered (20).
        hq_radius_in_std: the HQ radius in units of std (3).

    Returns:
        A ``ModeCoverage``.
    """
    x = _as_points("samples", samples)
    c = _as_points("centres", centres)
    _check_centres(c)
    if x.dim() != 2 or x.shape[1] != c.shape[1] or x.shape[0] < 1:
        raise ValueError(
            f"samples must have shape (N, {c.shape[1]}) with N >= 1, got {tuple(x.shape)}"
        )
    std = check_number("std", std, minimum=0, min_open=True)
    min_hq_per_mode = check_int("min_hq_per_mode", min_hq_per_mode, minimum=1)
    hq_radius_in_std = check_number("hq_radius_in_std", hq_radius_in_std, minimum=0, min_open=True)

    distances = torch.cdist(x, c)  # (N, K)
    nearest_distance, nearest = distances.min(dim=1)  # (N,), (N,)
    high_quality = nearest_distance <= hq_radius_in_std * std  # NaN compares False
    num_modes = c.shape[0]
    counts = torch.bincount(nearest[high_quality], minlength=num_modes)  # (K,)
    near = nearest_distance <= NEAR_RADIUS_IN_SPACING * mode_spacing(c)
    near_counts = torch.bincount(nearest[near], minlength=num_modes)  # (K,)
    total_hq = int(counts.sum())
    if total_hq == 0:
        kl = math.nan
    else:
        p = counts.double() / total_hq
        nonzero = p > 0
        kl = float((p[nonzero] * torch.log(num_modes * p[nonzero])).sum())
    return ModeCoverage(
        modes_covered=int((counts >= min_hq_per_mode).sum()),
        modes_hit=int((counts >= 1).sum()),
        num_modes=num_modes,
        high_quality_percent=100.0 * total_hq / x.shape[0],
        kl_to_uniform=kl,
        num_samples=int(x.shape[0]),
        hq_counts=tuple(int(n) for n in counts),
        near_counts=tuple(int(n) for n in near_counts),
    )


def evaluate_coverage(
    generator: nn.Module,
    mixture,
    latent_dim: int,
    num_samples: int = NUM_EVAL_SAMPLES,
    prior: str = "normal",
    seed: int = 12345,
) -> ModeCoverage:
    """``mode_coverage`` of ``num_samples`` samples G(z), z from a fixed seeded batch.

    Args:
        generator: maps (N, latent_dim) to (N, dim).
        mixture: a ``GaussianMixture`` (its ``centres`` and ``std`` are used).
        latent_dim: the size of z.
        num_samples: how many samples (2,500 in every table of the course).
        prior: "normal" or "uniform", as in training.
        seed: seed of the latent batch (its own RNG; training's RNG is untouched).
    """
    device = next(generator.parameters()).device
    z = fixed_latents(num_samples, latent_dim, prior, seed, device)
    return mode_coverage(generate(generator, z, batch_size=None), mixture.centres, mixture.std)


COVERAGE_KEYS = ("modes_covered", "modes_hit", "high_quality_percent", "kl_to_uniform")


def coverage_callback(
    mixture,
    latent_dim: int,
    every_steps: int,
    num_samples: int = 2500,
    prior: str = "normal",
    seed: int = 12345,
) -> Callback:
    """A ``train`` callback logging a toy generator's mode coverage every ``every_steps``.

    It logs ``modes_covered``, ``modes_hit``, ``high_quality_percent`` and
    ``kl_to_uniform`` (``gan_utils.toy.coverage``, on ``num_samples`` samples from one
    fixed latent batch of its own RNG, so training is unchanged) at the current step.

    Args:
        mixture: the ``GaussianMixture`` being learnt.
        latent_dim: size of z.
        every_steps: generator steps between evaluations.
        num_samples: samples scored (2,500 everywhere in the course).
        prior: the run's latent prior.
        seed: seed of the latent batch.
    """
    check_int("latent_dim", latent_dim, minimum=1)
    check_int("every_steps", every_steps, minimum=1)
    check_int("num_samples", num_samples, minimum=1)

    def log_coverage(state: TrainState) -> None:
        was_training = state.generator.training
        state.generator.eval()
        try:
            metrics = evaluate_coverage(
                state.generator, mixture, latent_dim, num_samples, prior=prior, seed=seed
            ).as_dict()
        finally:
            state.generator.train(was_training)
        state.history.log(state.step, **{k: float(metrics[k]) for k in COVERAGE_KEYS})

    return every(every_steps, log_coverage)
