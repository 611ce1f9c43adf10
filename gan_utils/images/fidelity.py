r"""Fidelity and diversity in a feature space, k nearest neighbours, and a memorisation check.

Notation: real features :math:`R = \{R_1, \dots, R_n\}` and fake (generated) features
:math:`F = \{F_1, \dots, F_m\}`, rows of (n, d) and (m, d) arrays; Euclidean distances,
computed in float64. For a point :math:`x` of a set :math:`S`, :math:`r_k(x)` is the
distance from :math:`x` to its k-th nearest neighbour among the *other* points of
:math:`S` (the point itself excluded; a duplicate of it counts as a neighbour at
distance 0), and :math:`B(x, r) = \{y : \|y - x\| < r\}` is the open ball.

* **Precision** (Kynkäänniemi et al. 2019, "Improved precision and recall metric for
  assessing generative models"): the share of fakes inside at least one real ball,
  :math:`\frac{1}{m} \sum_j 1[\exists i: F_j \in B(R_i, r_k(R_i))]`. Fidelity: do the
  samples land where real data lives?
* **Recall** (same paper): the share of reals inside at least one fake ball, the fake
  radii :math:`r_k(F_j)` taken from the fakes' own k nearest neighbours,
  :math:`\frac{1}{n} \sum_i 1[\exists j: R_i \in B(F_j, r_k(F_j))]`. Diversity: is every
  part of the real data reached? A few outlying fakes have large balls and inflate it.
* **Density** (Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative
  models"): :math:`\frac{1}{k m} \sum_j \sum_i 1[F_j \in B(R_i, r_k(R_i))]`, how many real
  balls hold a fake on average, over k. Not bounded by 1: it lies in :math:`[0, n/k]`;
  fakes crowded into dense real regions push it above 1.
* **Coverage** (same paper): the share of reals whose own ball holds at least one fake,
  :math:`\frac{1}{n} \sum_i 1[\exists j: F_j \in B(R_i, r_k(R_i))]`. Diversity measured
  with real balls only, so outlying fakes cannot inflate it; mode collapse lowers it.

When fakes and reals come from the same distribution, whatever it is:
:math:`\mathbb{E}[\text{density}] = 1` and :math:`\mathbb{E}[\text{coverage}] = 1 -
\prod_{i=1}^{k} \frac{n - i}{n + m - i}`, about :math:`1 - 2^{-k}` (0.97 at k = 5) for
n = m (Naeem et al.); precision and recall then still fall below 1, by how much depends on
the dimension and on k.

The default k = 5 is Naeem et al.'s; Kynkäänniemi et al. use k = 3 in their experiments.
The balls are open, as in the prdc reference code of Naeem et al.: a point exactly on a
ball's boundary is outside. For continuous features this changes nothing, but with it two
identical sets in general position give precision = recall = coverage = density = 1.

**Memorisation**: a generator that copies its training images scores well on all four
numbers, so ``memorisation_summary`` compares the distance from each generated sample to
its nearest *training* sample with the same distance for *held-out* real samples (real
images the generator never saw). The ratio of the medians is about 1 for a generator that
generalises, and well below 1 for one that reproduces training images (0 for exact copies).
Both distances are to the same training set, so the set sizes of the generated and held-out
samples do not bias the ratio. The functions take plain arrays and leave the space to the
caller: the course uses both the digit classifier's feature layer
(``DigitClassifier.features``) and pixel space (images flattened to rows).

Distances are computed in chunks of rows (a few tens of MB each), so 5,000 x 5,000 sets
never hold a full distance matrix in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..core.checks import check_int, check_tensor

NEAREST_K = 5  # neighbours for the k-NN balls (Naeem et al.'s default)
_CHUNK_ELEMENTS = 2**22  # distances held at once: 4M float64 = 32 MiB
_EXACT = "donot_use_mm_for_euclid_dist"  # sqrt(sum((x - y)^2)): a copy is at distance 0
_FAST = "use_mm_for_euclid_dist"  # sqrt(|x|^2 + |y|^2 - 2 x.y): ~10x faster, round-off


def _as_rows(name: str, value: Any, flatten: bool = False) -> Tensor:
    """``value`` (a NumPy array or torch tensor of real numbers) as a float64 (N, d) tensor.

    With ``flatten``, any array of 2 or more dimensions becomes (N, rest) rows; otherwise it
    must be 2-D. At least one row and one column, every value finite.
    """
    allowed = "a numpy array or torch tensor of real numbers"
    if isinstance(value, Tensor):
        if value.dtype == torch.bool or value.is_complex():
            raise TypeError(f"{name} must be {allowed}, got a tensor of dtype {value.dtype}")
        tensor = value.detach().cpu().to(torch.float64)
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be {allowed}, got an array of dtype {value.dtype}")
        tensor = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float64))
    else:
        raise TypeError(f"{name} must be {allowed}, got {type(value).__name__}")
    if flatten and tensor.dim() > 2:
        tensor = tensor.reshape(tensor.shape[0], int(np.prod(tensor.shape[1:])))
    what = "rows of (N, d) or images of (N, ...)" if flatten else "(N, d)"
    if tensor.dim() != 2 or tensor.shape[1] < 1:
        raise ValueError(f"{name} must be {what} with d >= 1, got shape {tuple(value.shape)}")
    check_tensor(name, tensor, min_rows=1)
    bad = int((~torch.isfinite(tensor)).sum())
    if bad:
        raise ValueError(f"{name} must be finite, got {bad} NaN or inf values")
    return tensor.contiguous()


def _same_columns(reference: tuple[str, Tensor], *others: tuple[str, Tensor]) -> None:
    ref_name, ref = reference
    for name, other in others:
        if other.shape[1] != ref.shape[1]:
            raise ValueError(
                f"{name} must have as many columns as {ref_name} ({ref.shape[1]}), "
                f"got shape {tuple(other.shape)}"
            )


def _chunks(rows: int, cols: int) -> Iterator[slice]:
    """Consecutive row slices of at most ``_CHUNK_ELEMENTS`` distances each."""
    step = max(1, _CHUNK_ELEMENTS // max(cols, 1))
    for start in range(0, rows, step):
        yield slice(start, min(start + step, rows))


def _kth_neighbour_radii(points: Tensor, k: int) -> Tensor:
    """:math:`r_k(x)` for every row: distance to its k-th nearest *other* row, (N,)."""
    n = points.shape[0]
    radii = torch.empty(n, dtype=torch.float64)
    for rows in _chunks(n, n):
        distances = torch.cdist(points[rows], points, compute_mode=_EXACT)  # (c, n)
        own = torch.arange(rows.start, rows.stop)
        distances[own - rows.start, own] = torch.inf  # exclude the point itself
        radii[rows] = torch.kthvalue(distances, k, dim=1).values
    return radii


def precision_recall_density_coverage(
    real_features: Any, fake_features: Any, k: int = NEAREST_K
) -> dict[str, float]:
    r"""Precision, recall, density and coverage of fakes against reals (see module docstring).

    With :math:`r_k` the k-th nearest-neighbour distance within a point's own set and
    :math:`1_{ij} = 1[\|F_j - R_i\| < r_k(R_i)]` ("fake j lies in real i's ball"):
    precision :math:`= \frac{1}{m} \sum_j \max_i 1_{ij}`, recall :math:`= \frac{1}{n}
    \sum_i \max_j 1[\|R_i - F_j\| < r_k(F_j)]`, density :math:`= \frac{1}{k m} \sum_{ij}
    1_{ij}` and coverage :math:`= \frac{1}{n} \sum_i \max_j 1_{ij}`. Exact distances
    :math:`\sqrt{\sum (x - y)^2}` in float64, chunked over rows; O((n + m)^2 d) time.

    Args:
        real_features: (n, d) NumPy array or torch tensor of real numbers, finite.
        fake_features: (m, d) likewise, the same d.
        k: neighbours for the balls, 1 <= k < min(n, m) (5 by default, Naeem et al.'s).

    Returns:
        ``{"precision", "recall", "density", "coverage"}`` as floats; precision, recall and
        coverage in [0, 1], density in [0, n / k].
    """
    real = _as_rows("real_features", real_features)
    fake = _as_rows("fake_features", fake_features)
    _same_columns(("real_features", real), ("fake_features", fake))
    k = check_int("k", k, minimum=1)
    n, m = real.shape[0], fake.shape[0]
    if k >= min(n, m):
        raise ValueError(
            f"k must be an integer in [1, {min(n, m) - 1}] (below the number of rows of each "
            f"set: real_features has {n}, fake_features has {m}), got {k}"
        )
    real_radii = _kth_neighbour_radii(real, k)  # r_k(R_i), (n,)
    fake_radii = _kth_neighbour_radii(fake, k)  # r_k(F_j), (m,)

    balls_per_fake = torch.zeros(m, dtype=torch.int64)  # sum_i 1_ij
    real_ball_has_fake = torch.zeros(n, dtype=torch.bool)  # max_j 1_ij
    real_in_fake_ball = torch.zeros(n, dtype=torch.bool)
    for rows in _chunks(n, m):
        distances = torch.cdist(real[rows], fake, compute_mode=_EXACT)  # (c, m)
        inside_real = distances < real_radii[rows, None]  # 1_ij for this chunk of reals
        balls_per_fake += inside_real.sum(dim=0)
        real_ball_has_fake[rows] = inside_real.any(dim=1)
        real_in_fake_ball[rows] = (distances < fake_radii[None, :]).any(dim=1)

    return {
        "precision": float((balls_per_fake > 0).double().mean()),
        "recall": float(real_in_fake_ball.double().mean()),
        "density": float(balls_per_fake.sum()) / (k * m),
        "coverage": float(real_ball_has_fake.double().mean()),
    }


def _nearest_distances(queries: Tensor, references: Tensor) -> np.ndarray:
    out = torch.empty(queries.shape[0], dtype=torch.float64)
    for rows in _chunks(queries.shape[0], references.shape[0]):
        block = queries[rows]
        # the fast matrix-product form finds the nearest reference; its distance is then
        # recomputed by subtraction, so a copy of a reference is at distance exactly 0
        nearest = torch.cdist(block, references, compute_mode=_FAST).argmin(dim=1)
        out[rows] = torch.linalg.vector_norm(block - references[nearest], dim=1)
    return out.numpy()


def nearest_neighbour_distances(queries: Any, references: Any) -> np.ndarray:
    r"""For every query row, the Euclidean distance to its nearest reference row, float64.

    :math:`\delta(q) = \min_r \|q - r\|`. The nearest row is found with the matrix-product
    form :math:`\|q\|^2 + \|r\|^2 - 2 q \cdot r` (chunked over queries, float64) and its
    distance recomputed as :math:`\sqrt{\sum (q - r)^2}`, so a query that copies a reference
    gets exactly 0. Only when two references lie within float64 round-off of the same
    distance can the one picked differ from the true nearest, by that round-off.

    Args:
        queries: (N, d) NumPy array or torch tensor of real numbers, or images (N, ...)
            (flattened to rows).
        references: (M, d) likewise, the same number of values per row.

    Returns:
        (N,) float64 array of distances.
    """
    q = _as_rows("queries", queries, flatten=True)
    r = _as_rows("references", references, flatten=True)
    _same_columns(("references", r), ("queries", q))
    return _nearest_distances(q, r)


def memorisation_summary(generated: Any, train: Any, held_out: Any) -> dict[str, float]:
    r"""Distances to the nearest training sample, of generated and of held-out real samples.

    With :math:`\delta(x) = \min_t \|x - t\|` over the training rows :math:`t`: the median
    and mean of :math:`\delta` over the generated rows and over the held-out rows, and
    ``ratio`` = median over generated / median over held-out. A generator that
    generalises lands about as far from its training set as unseen real data (ratio near 1);
    a ratio well below 1 means it copies training images (0 for exact copies). The caller
    chooses the space: the course uses the classifier's feature layer and pixel space.

    Args:
        generated: (N_g, d) generated samples (NumPy array or torch tensor; images (N, ...)
            are flattened to rows).
        train: (N_t, d) the generator's training samples, in the same space.
        held_out: (N_h, d) real samples the generator never trained on, in the same space;
            they must not repeat the training rows (a median distance of 0 is an error).

    Returns:
        ``generated_to_train_median``, ``generated_to_train_mean``,
        ``held_out_to_train_median``, ``held_out_to_train_mean`` and ``ratio``, floats.
    """
    g = _as_rows("generated", generated, flatten=True)
    t = _as_rows("train", train, flatten=True)
    h = _as_rows("held_out", held_out, flatten=True)
    _same_columns(("train", t), ("generated", g), ("held_out", h))
    generated_distances = _nearest_distances(g, t)
    held_out_distances = _nearest_distances(h, t)
    held_out_median = float(np.median(held_out_distances))
    if held_out_median == 0.0:
        raise ValueError(
            "held_out must be real samples outside the training set, got a median distance of "
            "0 to train (at least half of its rows repeat training rows)"
        )
    generated_median = float(np.median(generated_distances))
    return {
        "generated_to_train_median": generated_median,
        "generated_to_train_mean": float(generated_distances.mean()),
        "held_out_to_train_median": held_out_median,
        "held_out_to_train_mean": float(held_out_distances.mean()),
        "ratio": generated_median / held_out_median,
    }


__all__ = [
    "NEAREST_K",
    "memorisation_summary",
    "nearest_neighbour_distances",
    "precision_recall_density_coverage",
]
