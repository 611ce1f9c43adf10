r"""Image-GAN metrics on the lesson-03 digit classifier (lessons 03-07).

Definitions, for N samples in total:

* **Inception Score** over ``splits`` equal parts of the N samples:
  :math:`IS = \exp\big(\mathbb{E}_x\, KL(p(y \mid x) \,\|\, p(y))\big)` with
  :math:`p(y)` the mean of :math:`p(y \mid x)` over the part; reported as mean and
  standard deviation (ddof = 1) over the parts. It lies in [1, C] for C classes.
* **FID** between two sets of features with means :math:`\mu_1, \mu_2` and covariances
  :math:`\Sigma_1, \Sigma_2` (ddof = 1):
  :math:`\|\mu_1 - \mu_2\|^2 + \mathrm{Tr}(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2})`,
  in float64, with :math:`\mathrm{Tr}(\Sigma_1 \Sigma_2)^{1/2} = \sum_i \sqrt{\max(\mathrm{Re}\,
  \lambda_i, 0)}` over the eigenvalues :math:`\lambda_i` of :math:`\Sigma_1 \Sigma_2` (real and
  non-negative in exact arithmetic, since :math:`\Sigma_1 \Sigma_2` is similar to
  :math:`\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}`).
* **Classes covered**: classes whose share of the argmax-predicted labels is at least
  ``min_share`` (default 2 %, a fifth of the uniform share of 10 classes).
* **Confidence**: :math:`\frac{1}{N} \sum_x \max_y p(y \mid x)`, the classifier's mean
  certainty: collapse makes sharp digits of few classes (high confidence), undertraining
  makes ambiguous ones (low confidence); see ``gan_utils.images.collapse``.
* **KL to uniform**: :math:`KL(h \,\|\, u) = \sum_c h_c \log(C h_c)` of the histogram
  :math:`h` of argmax-predicted labels (natural log, :math:`0 \log 0 = 0`); 0 when
  balanced, :math:`\log C` when every sample falls in one class.

Both IS and FID depend on N (FID is biased upwards at small N): always report N and
compare models only at equal N.

``score_digits`` is the one entry point that scores a set of generated (or real) digit
images with the lesson-03 classifier: IS, classes covered, KL to uniform, FID when
reference statistics are given, and the class counts, from one classifier pass per
quantity. The per-epoch hook (``gan_utils.images.evaluation.EpochEvaluator``) and the
course table (``gan_utils.images.course_table``) both call it; images of a generator come
from ``gan_utils.core.latent.sample_latent`` and ``generate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import xlogy
from torch import Tensor, nn

from ..core.checks import check_int, check_probability
from .classifier import DigitClassifier, check_images

IS_SPLITS = 10  # Inception Score splits (the convention)
MIN_SHARE = 0.02  # a class is covered when >= 2 % of the samples are predicted as it


def _as_float64(values: Any, name: str) -> np.ndarray:
    if isinstance(values, Tensor):
        if values.dtype == torch.bool or values.is_complex():
            raise TypeError(f"{name} must be an array of real numbers, got dtype {values.dtype}")
        values = values.detach().cpu().double().numpy()
    if isinstance(values, np.ndarray) and values.dtype.kind in "bc":
        raise TypeError(f"{name} must be an array of real numbers, got dtype {values.dtype}")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{name} must be an array of numbers, got {type(values).__name__}"
        ) from error
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    return array


def _check_probs(probs: Any, name: str = "probs") -> np.ndarray:
    p = _as_float64(probs, name)
    if p.ndim != 2 or p.shape[0] < 1 or p.shape[1] < 2:
        raise ValueError(f"{name} must have shape (N, C) with N >= 1 and C >= 2, got {p.shape}")
    if p.min() < 0 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(
            f"{name} must hold probabilities: non-negative rows summing to 1 "
            "(apply softmax to logits first)"
        )
    return p


def inception_score(probs: Any, splits: int = IS_SPLITS) -> tuple[float, float]:
    r"""Inception Score of class probabilities ``probs`` (N, C), mean and std over splits.

    The N rows are cut in order into ``splits`` equal parts; in each part
    :math:`IS = \exp(\frac{1}{n} \sum_x \sum_y p(y|x) [\log p(y|x) - \log p(y)])` with
    :math:`p(y)` the part's mean of :math:`p(y|x)`. Computed in float64.

    Args:
        probs: (N, C) tensor or array of probabilities (rows sum to 1), N a multiple
            of ``splits``.
        splits: number of equal parts (10 by convention).

    Returns:
        (mean, std) over the parts, std with ddof = 1 (NaN when ``splits`` is 1).
    """
    p = _check_probs(probs)
    splits = check_int("splits", splits, minimum=1)
    n = p.shape[0]
    if n % splits != 0:
        raise ValueError(
            f"splits must divide the number of samples into equal parts: N = {n} is not a "
            f"multiple of splits = {splits} (use N = {max(splits, n - n % splits)})"
        )
    parts = p.reshape(splits, n // splits, p.shape[1])  # (splits, n / splits, C)
    marginal = parts.mean(axis=1, keepdims=True)  # p(y) per part, (splits, 1, C)
    # KL(p(y|x) || p(y)) per sample, with 0 log 0 = 0
    kl = (xlogy(parts, parts) - xlogy(parts, np.broadcast_to(marginal, parts.shape))).sum(axis=2)
    scores = np.exp(kl.mean(axis=1))  # (splits,)
    std = float(scores.std(ddof=1)) if splits > 1 else math.nan
    return float(scores.mean()), std


@dataclass(frozen=True)
class FeatureStatistics:
    """Mean (d,) and covariance (d, d, ddof = 1) of N feature vectors, float64."""

    mean: np.ndarray
    cov: np.ndarray
    n: int


def feature_statistics(features: Any) -> FeatureStatistics:
    """Mean and covariance (ddof = 1) of ``features`` (N, d), N >= 2, in float64."""
    f = _as_float64(features, "features")
    if f.ndim != 2 or f.shape[0] < 2 or f.shape[1] < 1:
        raise ValueError(f"features must have shape (N, d) with N >= 2 and d >= 1, got {f.shape}")
    return FeatureStatistics(
        f.mean(axis=0), np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1]), f.shape[0]
    )


COV_TOLERANCE = 1e-6  # relative round-off allowed in a covariance's symmetry and eigenvalues


def _check_covariance(name: str, cov: np.ndarray) -> None:
    """A covariance matrix: symmetric and positive semi-definite, both up to round-off
    (``COV_TOLERANCE`` times its largest entry; ``np.cov`` is within 1e-13 of both)."""
    tolerance = COV_TOLERANCE * float(np.abs(cov).max())
    if float(np.abs(cov - cov.T).max()) > tolerance:
        raise ValueError(f"{name} must be a symmetric covariance matrix, got an asymmetric one")
    smallest = float(np.linalg.eigvalsh(cov).min())
    if smallest < -tolerance:
        raise ValueError(
            f"{name} must be a positive semi-definite covariance matrix, got an eigenvalue "
            f"{smallest:.3g}"
        )


def fid_from_stats(mu1: Any, cov1: Any, mu2: Any, cov2: Any) -> float:
    r"""Fréchet distance between N(mu1, cov1) and N(mu2, cov2), in float64.

    :math:`\|\mu_1 - \mu_2\|^2 + \mathrm{Tr}\,\Sigma_1 + \mathrm{Tr}\,\Sigma_2
    - 2 \sum_i \sqrt{\max(\mathrm{Re}\,\lambda_i(\Sigma_1 \Sigma_2), 0)}`.
    Negative round-off eigenvalues are clipped to 0. The square roots amplify round-off:
    for near-singular covariances (fewer samples than features) the result can be off by
    about 1e-8 times the traces and fall slightly below 0, which is returned as is; equal
    covariances skip the eigenvalues (:math:`(\Sigma \Sigma)^{1/2} = \Sigma`), so identical
    statistics give exactly 0. ``cov1`` and ``cov2`` must be symmetric
    positive semi-definite up to round-off (ValueError naming the one that is not).
    """
    mu1, mu2 = _as_float64(mu1, "mu1"), _as_float64(mu2, "mu2")
    cov1, cov2 = _as_float64(cov1, "cov1"), _as_float64(cov2, "cov2")
    if mu1.ndim != 1 or mu1.shape != mu2.shape or mu1.shape[0] < 1:
        raise ValueError(
            f"mu1 and mu2 must be vectors of the same length d >= 1, got {mu1.shape} and "
            f"{mu2.shape}"
        )
    d = mu1.shape[0]
    for name, cov in (("cov1", cov1), ("cov2", cov2)):
        if cov.shape != (d, d):
            raise ValueError(f"{name} must have shape (d, d) = {(d, d)}, got {cov.shape}")
        _check_covariance(name, cov)
    if np.array_equal(cov1, cov2):
        # (Sigma Sigma)^(1/2) = Sigma for a PSD Sigma: exact, where the eigenvalues' square
        # roots would turn round-off near 0 into -1e-8 * Tr(Sigma) or worse (N < d)
        trace_sqrt = np.trace(cov1)
    else:
        eigenvalues = np.linalg.eigvals(cov1 @ cov2)
        trace_sqrt = np.sqrt(np.maximum(eigenvalues.real, 0.0)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt)


def fid(features_a: Any, features_b: Any) -> float:
    """FID between two sets of feature vectors (N_a, d) and (N_b, d) (see module docstring)."""
    a, b = feature_statistics(features_a), feature_statistics(features_b)
    if a.mean.shape != b.mean.shape:
        raise ValueError(
            f"features_a and features_b must have the same feature size, got "
            f"{a.mean.shape[0]} and {b.mean.shape[0]}"
        )
    return fid_from_stats(a.mean, a.cov, b.mean, b.cov)


def class_histogram(probs: Any, num_classes: int | None = None) -> np.ndarray:
    """Counts (C,) of the argmax-predicted class of each row of ``probs`` (N, C)."""
    p = _check_probs(probs)
    num_classes = (
        p.shape[1]
        if num_classes is None
        else check_int("num_classes", num_classes, minimum=p.shape[1])
    )
    return np.bincount(p.argmax(axis=1), minlength=num_classes)


def classes_covered(probs: Any, min_share: float = MIN_SHARE) -> int:
    """Number of classes that receive at least ``min_share`` of the argmax predictions."""
    check_probability("min_share", min_share, min_open=True)
    counts = class_histogram(probs)
    return int((counts / counts.sum() >= min_share).sum())


def class_kl_to_uniform(probs: Any) -> float:
    """KL(h || uniform) of the argmax histogram h of ``probs`` (N, C), natural log."""
    counts = class_histogram(probs)
    share = counts / counts.sum()
    return float(xlogy(share, share * len(share)).sum())


# --- with the classifier -----------------------------------------------------------------


class ClassifierLogits(nn.Module):
    """The classifier as torchmetrics' ``InceptionScore(feature=...)`` extractor.

    torchmetrics applies the softmax itself, so this returns logits (float64), (N, 10).
    """

    def __init__(self, classifier: DigitClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.logits(images).double()


class ClassifierFeatures(nn.Module):
    """The classifier's FID layer as torchmetrics' ``FrechetInceptionDistance(feature=...)``
    extractor (float64, (N, ``num_features``); torchmetrics reads ``num_features``)."""

    def __init__(self, classifier: DigitClassifier):
        super().__init__()
        self.classifier = classifier
        self.num_features = classifier.num_features

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier.features(images).double()


def classifier_statistics(images: Tensor, classifier: DigitClassifier) -> FeatureStatistics:
    """Feature statistics of ``images`` (N, 1, 28, 28) in [-1, 1] on the FID layer."""
    return feature_statistics(classifier.features(check_images(images)))


def score_digits(
    images: Tensor,
    classifier: DigitClassifier,
    reference: FeatureStatistics | None = None,
    splits: int = IS_SPLITS,
    min_share: float = MIN_SHARE,
) -> tuple[dict[str, float | int], np.ndarray]:
    """Score a set of digit images with the classifier: the course's one image scorer.

    One pass of the classifier's logits (softmax in float64) feeds IS, classes covered,
    KL to uniform and the class counts; with ``reference``, one pass of its feature
    layer gives the FID (``classifier_statistics`` then ``fid_from_stats``).

    Args:
        images: (N, 1, 28, 28) or (N, 784) in [-1, 1], N a multiple of ``splits``.
        classifier: the lesson-03 ``DigitClassifier`` (any model with ``logits(images)``
            and ``features(images)`` will do).
        reference: feature statistics of real images (``classifier_statistics``); adds FID.
        splits: Inception Score splits.
        min_share: share of samples a class needs to count as covered.

    Returns:
        (metrics, class_counts): metrics holds ``eval_samples`` (= N), ``is_mean``,
        ``is_std``, ``classes_covered``, ``kl_to_uniform``, ``confidence`` (the mean of
        max_y p(y|x): sharp digits score near 1, ambiguous ones lower) [and ``fid``]; class_counts
        (C,) are the counts of the argmax-predicted classes.
    """
    images = check_images(images)
    probs = classifier.logits(images).double().softmax(dim=1)  # (N, C)
    is_mean, is_std = inception_score(probs, splits)
    metrics: dict[str, float | int] = {
        "eval_samples": int(images.shape[0]),
        "is_mean": is_mean,
        "is_std": is_std,
        "classes_covered": classes_covered(probs, min_share),
        "kl_to_uniform": class_kl_to_uniform(probs),
        "confidence": float(probs.max(dim=1).values.mean()),
    }
    if reference is not None:
        stats = classifier_statistics(images, classifier)
        metrics["fid"] = fid_from_stats(stats.mean, stats.cov, reference.mean, reference.cov)
    return metrics, class_histogram(probs)


__all__ = [
    "IS_SPLITS",
    "MIN_SHARE",
    "ClassifierFeatures",
    "ClassifierLogits",
    "FeatureStatistics",
    "class_histogram",
    "class_kl_to_uniform",
    "classes_covered",
    "classifier_statistics",
    "feature_statistics",
    "fid",
    "fid_from_stats",
    "inception_score",
    "score_digits",
]
