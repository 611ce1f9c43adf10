"""Hessian spectra set against mode collapse: the small helpers of lesson 06.

Durall et al. (VISAPP 2021, arXiv 2012.09673) relate mode collapse to *sharp* minima of
the generator's loss, i.e. to large top eigenvalues of its Hessian. To test that relation
on a run, the lesson logs two things into the same training history at the same steps:
the top eigenvalues (``gan_utils.hessian.spectrum_callback``, or ``nu_eig_*`` from
``gan_utils.nu_gan.NuGANHook``) and a coverage measure (``coverage_callback`` here for the
toy mixtures; ``gan_utils.evaluation.EpochEvaluator`` for digits). ``merged_series`` pairs
them up by step, ``rank_correlation`` says whether they move together within a run, and
``late_mean`` summarises a run by the second half of its curve (the first steps, far from
any minimum, say little about sharp minima).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.stats

from .history import History
from .mode_coverage import evaluate_generator
from .train import Callback, TrainState, every

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
    ``kl_to_uniform`` (``gan_utils.mode_coverage``, on ``num_samples`` samples from one
    fixed latent batch of its own RNG, so training is unchanged) at the current step.

    Args:
        mixture: the ``GaussianMixture`` being learnt.
        latent_dim: size of z.
        every_steps: generator steps between evaluations.
        num_samples: samples scored (2,500 everywhere in the course).
        prior: the run's latent prior.
        seed: seed of the latent batch.
    """
    for name, value in (
        ("latent_dim", latent_dim),
        ("every_steps", every_steps),
        ("num_samples", num_samples),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    def log_coverage(state: TrainState) -> None:
        was_training = state.generator.training
        state.generator.eval()
        try:
            metrics = evaluate_generator(
                state.generator, mixture, latent_dim, num_samples, prior=prior, seed=seed
            ).as_dict()
        finally:
            state.generator.train(was_training)
        state.history.log(state.step, **{k: float(metrics[k]) for k in COVERAGE_KEYS})

    return every(every_steps, log_coverage)


def merged_series(history: History, keys: Sequence[str]) -> tuple[np.ndarray, ...]:
    """(steps, values of keys[0], values of keys[1], ...) at the steps where every key was
    logged (in any rows of that step; the last value logged at a step wins).

    Raises:
        KeyError: a key was never logged (naming the logged keys).
    """
    if isinstance(keys, str) or not keys:
        raise ValueError(f"keys must be a non-empty sequence of names, got {keys!r}")
    by_key = {}
    for key in keys:
        steps, values = history.series(key)
        by_key[key] = dict(zip(steps.tolist(), values.tolist(), strict=True))
    common = sorted(set.intersection(*(set(v) for v in by_key.values())))
    return (
        np.asarray(common, dtype=int),
        *(np.asarray([by_key[k][s] for s in common], dtype=float) for k in keys),
    )


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of paired values; NaN with fewer than 3 finite pairs or
    when either side is constant (no ranking to compare)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(scipy.stats.spearmanr(x, y).statistic)


def late_mean(history: History, key: str, share: float = 0.5) -> float:
    """Mean of the last ``share`` of a logged series' finite values (at least one value)."""
    if not 0 < share <= 1:
        raise ValueError(f"share must lie in (0, 1], got {share!r}")
    values = history.series(key)[1]
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan")
    return float(np.mean(values[-max(1, math.ceil(share * len(values))) :]))


__all__ = ["COVERAGE_KEYS", "coverage_callback", "late_mean", "merged_series", "rank_correlation"]
