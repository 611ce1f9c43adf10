"""Hessian spectra set against mode collapse: the small helpers of lesson 06.

Durall et al. (VISAPP 2021, arXiv 2012.09673) relate mode collapse to *sharp* minima of
the generator's loss, i.e. to large top eigenvalues of its Hessian. To test that relation
on a run, the lesson logs two things into the same training history at the same steps:
the top eigenvalues (``gan_utils.hessian.spectra.spectrum_callback``, or ``nu_eig_*`` from
``gan_utils.hessian.nu_gan.NuGANHook``) and a coverage measure
(``gan_utils.toy.coverage.coverage_callback`` for the toy mixtures;
``gan_utils.images.evaluation.EpochEvaluator`` for digits). ``merged_series`` pairs
them up by step, ``rank_correlation`` says whether they move together within a run, and
``late_mean`` summarises a run by the second half of its curve (the first steps, far from
any minimum, say little about sharp minima; ``late_values`` are the values it averages).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.stats

from ..core.checks import check_number
from ..core.history import History


def merged_series(history: History, keys: Sequence[str]) -> tuple[np.ndarray, ...]:
    """(steps, values of keys[0], values of keys[1], ...) at the steps where every key was
    logged (in any rows of that step; the last value logged at a step wins).

    Raises:
        KeyError: a key was never logged (naming the logged keys).
    """
    allowed = f"keys must be a non-empty sequence of names, got {keys!r}"
    if isinstance(keys, str) or not isinstance(keys, Sequence):
        raise TypeError(f"{allowed} ({type(keys).__name__})")
    if not keys:
        raise ValueError(allowed)
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


def late_values(history: History, key: str, share: float = 0.5) -> np.ndarray:
    """The last ``share`` of a logged series' finite values (at least one value; empty when
    none is finite): what ``late_mean`` averages, e.g. to show the range behind a mean."""
    share = check_number("share", share, 0, 1, min_open=True)
    values = history.series(key)[1]
    values = values[np.isfinite(values)]
    if not len(values):
        return values
    return values[-max(1, math.ceil(share * len(values))) :]


def late_mean(history: History, key: str, share: float = 0.5) -> float:
    """Mean of the last ``share`` of a logged series' finite values (at least one value;
    NaN when none is finite)."""
    values = late_values(history, key, share)
    return float(np.mean(values)) if len(values) else float("nan")


__all__ = ["late_mean", "late_values", "merged_series", "rank_correlation"]
