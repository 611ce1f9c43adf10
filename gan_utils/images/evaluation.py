r"""Watching an image GAN train: the per-epoch evaluation hook (lesson 04; lessons 05-06).

**The per-epoch evaluation hook.** ``EpochEvaluator`` is a training-loop callback
(``gan_utils.core.loop.every(steps_per_epoch, evaluator)``). Every ``steps_per_epoch``
generator steps it draws ``num_samples`` (N) fresh latents, generates N images in
evaluation mode, classifies them with the lesson-03 digit classifier and logs into the
training history, at that step:

* ``epoch``, ``eval_samples`` (= N, the same every epoch),
* ``is_mean``, ``is_std``: Inception Score over 10 equal splits of the N samples,
* ``classes_covered``: digits receiving at least 2 % of the argmax predictions,
* ``kl_to_uniform``: KL(h || uniform) of the histogram h of predicted digits (0 when
  balanced, log 10 = 2.30 when every sample is one digit),
* ``fid`` when real feature statistics are given (FID on the classifier's feature layer),

(scored by ``gan_utils.images.metrics.score_digits``, the course's one image scorer),
and for any images, digits or not,

* ``saturated_share``: share of the N samples' pixel values with |x| >= 0.98,
* ``grid_distance``: mean pairwise Euclidean distance between the images of the fixed
  latent batch ``fixed_z`` (near 0 when the generator repeats one output).

It keeps the class histogram and the images of ``fixed_z`` per epoch (the frames of the
GIF). Without a classifier (colour images) only the last two metrics are logged.

The hook leaves training unchanged: it draws its latents from its own
``torch.Generator``, seeded once from ``seed``, never from torch's global RNG, and it
generates in evaluation mode under ``no_grad`` (batch norm's running statistics are read,
not updated), restoring the generator's mode afterwards. A run with and without the hook
gives the same weights bit for bit (tested).

**Trained generators for later lessons** are saved and reused by
``gan_utils.images.recipe`` (``load_or_train``), through
``gan_utils.core.checkpoints.save_generator`` / ``load_generator``.

**Image diagnostics** for the colour experiment: ``saturated_share`` (pixels pinned at
the ends of [-1, 1]) and ``mean_pairwise_distance`` (diversity of a sample set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ..core.checks import check_choice, check_int, check_number, check_probability
from ..core.latent import LATENT_PRIORS, generate, sample_latent
from ..core.train import TrainState
from .metrics import IS_SPLITS, MIN_SHARE, FeatureStatistics, score_digits

EVAL_SAMPLES = 1000  # N: generated images scored per evaluation in lesson 04 (10 splits of 100)
GRID_SIZE = 64  # images in the fixed-noise grid (8 x 8)
SATURATION_THRESHOLD = 0.98  # |x| at or above this counts as a saturated pixel
IMAGE_KEYS = ("epoch", "eval_samples", "saturated_share", "grid_distance")
DIGIT_KEYS = ("is_mean", "is_std", "classes_covered", "kl_to_uniform")
EVAL_KEYS = IMAGE_KEYS + DIGIT_KEYS


@dataclass
class EpochRecord:
    """What the hook saw at one evaluation."""

    step: int
    epoch: int
    metrics: dict[str, float | int]
    class_counts: np.ndarray | None  # (10,) argmax predictions of the N samples (digits)
    grid: Tensor  # (GRID, C, H, W) images of fixed_z, on the CPU


class EpochEvaluator:
    """Training callback scoring the generator every ``steps_per_epoch`` steps (module doc).

    Use it as ``train(..., callbacks=[evaluator])``: its ``every`` attribute is
    ``steps_per_epoch``, so ``gan_utils.core.train`` calls it at steps k * steps_per_epoch.

    Args:
        classifier: the lesson-03 ``DigitClassifier`` (any model with ``logits(images)``
            and ``features(images)`` will do); None for images that are not digits.
        latent_dim: size of the generator's z.
        steps_per_epoch: generator steps between evaluations (one pass over the data).
        num_samples: N, images scored per evaluation (a multiple of ``splits``).
        seed: seeds the hook's own ``torch.Generator`` (fixed_z first, then the latents
            of each evaluation).
        latent_prior: "normal" (z ~ N(0, I)) or "uniform".
        grid_size: images generated from ``fixed_z`` per evaluation.
        reference: feature statistics of real digits; adds FID to the logged metrics.
        transform: applied to generated images before scoring (e.g. to map another
            range to [-1, 1]); default none.
        splits, min_share: Inception Score splits and the coverage threshold.
    """

    def __init__(
        self,
        classifier: nn.Module | None,
        latent_dim: int,
        steps_per_epoch: int,
        num_samples: int = EVAL_SAMPLES,
        seed: int = 0,
        latent_prior: str = "normal",
        grid_size: int = GRID_SIZE,
        reference: FeatureStatistics | None = None,
        transform: Callable[[Tensor], Tensor] | None = None,
        splits: int = IS_SPLITS,
        min_share: float = MIN_SHARE,
    ):
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.every = check_int("steps_per_epoch", steps_per_epoch, minimum=1)
        self.num_samples = check_int("num_samples", num_samples, minimum=1)
        self.splits = check_int("splits", splits, minimum=1)
        if self.num_samples % self.splits:
            raise ValueError(
                f"num_samples must be a multiple of splits={self.splits}, got {num_samples!r}"
            )
        self.grid_size = check_int("grid_size", grid_size, minimum=2)
        seed = check_int("seed", seed, minimum=0)
        self.latent_prior = check_choice("latent_prior", latent_prior, LATENT_PRIORS)
        self.classifier = classifier
        self.reference = reference
        self.transform = transform
        self.min_share = check_probability("min_share", min_share, min_open=True)
        self.rng = torch.Generator().manual_seed(seed)  # the hook's own stream
        self.fixed_z = sample_latent(self.grid_size, self.latent_dim, latent_prior, rng=self.rng)
        self.records: list[EpochRecord] = []

    def evaluate(self, generator: nn.Module, step: int) -> EpochRecord:
        """Score ``generator`` now (N fresh latents) and keep the fixed-noise grid."""
        z = sample_latent(self.num_samples, self.latent_dim, self.latent_prior, rng=self.rng)
        images = generate(generator, z)
        grid = generate(generator, self.fixed_z)
        if self.transform is not None:
            images, grid = self.transform(images), self.transform(grid)
        metrics: dict[str, float | int] = {
            "eval_samples": self.num_samples,
            "saturated_share": saturated_share(images, SATURATION_THRESHOLD),
            "grid_distance": mean_pairwise_distance(grid),
        }
        counts = None
        if self.classifier is not None:
            digit_metrics, counts = score_digits(
                images, self.classifier, self.reference, self.splits, self.min_share
            )
            metrics.update(digit_metrics)
        record = EpochRecord(int(step), int(step) // self.every, metrics, counts, grid)
        self.records.append(record)
        return record

    def advance(self, evaluations: int) -> None:
        """Draw and discard the latents of ``evaluations`` evaluations.

        A fresh evaluator with the same seed, advanced by k - 1, scores its next
        evaluation on the latents that the k-th evaluation of a training run used: the
        last epoch of a saved generator can be replayed exactly.
        """
        for _ in range(check_int("evaluations", evaluations, minimum=0)):
            sample_latent(self.num_samples, self.latent_dim, self.latent_prior, rng=self.rng)

    def __call__(self, state: TrainState) -> None:
        record = self.evaluate(state.generator, state.step)
        state.history.log(state.step, epoch=record.epoch, **record.metrics)

    # ---- views for the notebook ----------------------------------------------------
    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of a logged metric, e.g. ``"is_mean"``."""
        if not self.records:
            raise ValueError("no evaluations yet: train with this callback first")
        if key not in self.records[0].metrics:
            raise ValueError(f"key must be one of {sorted(self.records[0].metrics)}, got {key!r}")
        epochs = np.array([r.epoch for r in self.records])
        return epochs, np.array([float(r.metrics[key]) for r in self.records])

    def final(self) -> dict[str, float | int]:
        """The metrics of the last evaluation, with its epoch and step."""
        if not self.records:
            raise ValueError("no evaluations yet: train with this callback first")
        last = self.records[-1]
        return {"epoch": last.epoch, "step": last.step, **last.metrics}


def image_grid(images: Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """Tile images (B, C, H, W) in [-1, 1] into one array (rows, cols[, 3]) in [0, 1]."""
    from torchvision.utils import make_grid

    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    grid = make_grid((images.detach().cpu().float() + 1) / 2, nrow=nrow, padding=padding)
    grid = grid.clamp(0, 1).permute(1, 2, 0).numpy()  # (rows, cols, 3)
    return grid[..., 0] if images.shape[1] == 1 else grid


@torch.no_grad()
def latent_walk(
    generator: nn.Module,
    latent_dim: int,
    values: Tensor | np.ndarray,
    axis: int = 0,
    base: Tensor | None = None,
) -> Tensor:
    """Images along one latent axis: z = base + t e_axis for each t in ``values``.

    For a generator with latent_dim = 1 this shows everything it can produce.

    Returns:
        (len(values), C, H, W) on the CPU.
    """
    latent_dim = check_int("latent_dim", latent_dim, minimum=1)
    axis = check_int("axis", axis, minimum=0, maximum=latent_dim - 1)
    t = torch.as_tensor(np.asarray(values, dtype=np.float32)).reshape(-1)
    z = (
        torch.zeros(t.shape[0], latent_dim)
        if base is None
        else base.reshape(1, -1).repeat(t.shape[0], 1)
    )
    z[:, axis] = t
    return generate(generator, z)


# ---- image diagnostics (colour experiment) -------------------------------------------------
def saturated_share(images: Tensor, threshold: float = 0.98) -> float:
    """Share of pixel values with |x| >= ``threshold`` (images in [-1, 1]): pinned pixels."""
    check_number("threshold", threshold, 0.0, 1.0, min_open=True)
    return float((images.detach().abs() >= threshold).double().mean())


def mean_pairwise_distance(images: Tensor) -> float:
    """Mean Euclidean distance between the flattened images of all distinct pairs (B >= 2).

    A generator that repeats one output scores near 0; compare with the real images' value.
    """
    flat = images.detach().reshape(images.shape[0], -1).double()  # (B, D)
    if flat.shape[0] < 2:
        raise ValueError(f"images must hold at least 2 images, got {flat.shape[0]}")
    distances = torch.pdist(flat)  # (B (B - 1) / 2,)
    return float(distances.mean())


__all__ = [
    "DIGIT_KEYS",
    "EVAL_KEYS",
    "EVAL_SAMPLES",
    "IMAGE_KEYS",
    "IS_SPLITS",
    "MIN_SHARE",
    "EpochEvaluator",
    "EpochRecord",
    "image_grid",
    "latent_walk",
    "mean_pairwise_distance",
    "saturated_share",
]
