"""Trained digit generators with their per-epoch scores, for side-by-side lessons (lesson 05).

Lesson 05 sets Dist-GAN against lesson 04's vanilla GAN at the same N (samples scored per
epoch), the same budget (epochs of ``steps_per_epoch`` steps, batch size) and the same
architecture family (``gan_utils.images.models``). This module trains either kind with the
course's loops and the same ``EpochEvaluator``, and returns one ``ImageRun`` per model:

* ``vanilla_config``: lesson 04's ``TrainConfig`` for its default variant
  (non-saturating loss, Adam with betas (0.5, 0.999), z ~ N(0, I));
* ``load_or_train_vanilla``: reuse lesson 04's checkpoint when it was trained with exactly
  that config and builder and scored at the same N; otherwise train it here (a fresh
  clone, other parameters). A reused run's last evaluation is replayed with the same
  latents, so its class histogram and fixed-noise grid are the ones lesson 04 saw;
* ``build_dist_gan`` / ``train_dist_gan_run``: the same generator and critic plus an
  encoder mirroring the critic (``gan_utils.images.dist_gan``), z ~ U[-1, 1]^d as in the paper;
* ``reconstruct``: x -> G(E(x)) in evaluation mode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..core.checkpoints import load_generator
from ..core.history import History
from ..core.runtime import set_seed
from ..core.train import TrainConfig, steps_per_second, train
from ..core.variants import get_variant
from .dist_gan import DistGANConfig, conv_encoder, mlp_encoder, train_dist_gan
from .evaluation import EpochEvaluator, EpochRecord, generate
from .metrics import FeatureStatistics
from .models import MNIST_SHAPE, ModelPair, build_pair

VANILLA_LESSON = "04_vanilla_gan"
VANILLA_VARIANT = "non_saturating"
VANILLA_BETAS = (0.5, 0.999)  # the DCGAN paper's Adam, as lesson 04
# config fields that do not change what is trained (ignored when matching a checkpoint)
NON_TRAINING_FIELDS = ("device", "progress", "checkpoint_every")


@dataclass
class ImageRun:
    """One trained generator and its evaluations (``EpochEvaluator`` rows in ``history``)."""

    kind: str  # "vanilla" or "dist_gan"
    architecture: str  # "dense" or "dcgan"
    latent_dim: int
    generator: nn.Module
    config: Any  # TrainConfig or DistGANConfig
    history: History
    final: dict[str, Any]  # the last evaluation's metrics (epoch, step, is_mean, ...)
    last: EpochRecord  # the last evaluation: class counts and the fixed-noise grid
    generator_builder: str
    generator_kwargs: dict[str, Any]
    seconds: float = float("nan")  # training wall time (nan when reused)
    steps_per_s: float = float("nan")
    source: str = "trained here"  # or "lesson 04's checkpoint"
    encoder: nn.Module | None = None  # Dist-GAN only
    evaluator: EpochEvaluator | None = None  # when trained here (per-epoch grids)
    extras: dict[str, Any] = field(default_factory=dict)

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of an evaluated metric, e.g. ``"is_mean"``."""
        rows = [r for r in self.history.rows if "epoch" in r and key in r]
        if not rows:
            raise KeyError(f"no evaluations of {key!r} in this run's history")
        return np.array([r["epoch"] for r in rows]), np.array([float(r[key]) for r in rows])


def vanilla_config(
    latent_dim: int,
    batch_size: int,
    epochs: int,
    steps_per_epoch: int,
    lr: float,
    seed: int,
    device: str = "cpu",
) -> TrainConfig:
    """Lesson 04's ``TrainConfig`` for its default variant, the non-saturating GAN."""
    return get_variant(VANILLA_VARIANT).train_config(
        latent_dim=latent_dim,
        batch_size=batch_size,
        num_steps=epochs * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        lr_g=lr,
        lr_d=lr,
        betas=VANILLA_BETAS,
        optimizer="adam",
        seed=seed,
        device=str(device),
        log_every=max(1, steps_per_epoch // 4),
        progress=False,
    )


def _evaluator(
    classifier: nn.Module,
    config: TrainConfig | DistGANConfig,
    steps_per_epoch: int,
    eval_samples: int,
    reference: FeatureStatistics | None,
) -> EpochEvaluator:
    """The per-epoch evaluator of a run: its latent size, prior and seed come from ``config``."""
    return EpochEvaluator(
        classifier,
        config.latent_dim,
        steps_per_epoch,
        num_samples=eval_samples,
        seed=config.seed,
        latent_prior=config.latent_prior,
        reference=reference,
    )


def train_vanilla(
    architecture: str,
    data: Tensor,
    config: TrainConfig,
    classifier: nn.Module,
    eval_samples: int,
    reference: FeatureStatistics | None = None,
    size: str = "small",
) -> ImageRun:
    """Train lesson 04's vanilla GAN (``gan_utils.core.train``) with the per-epoch evaluator.

    The seed is set before building the pair, as lesson 04 does, so the same config gives
    the same initial weights and the same run.
    """
    set_seed(config.seed)
    pair = build_pair(architecture, config.latent_dim, MNIST_SHAPE, size=size)
    evaluator = _evaluator(classifier, config, config.steps_per_epoch, eval_samples, reference)
    history = train(pair.generator, pair.critic, data, config, callbacks=[evaluator])
    return _trained_run("vanilla", architecture, pair, config, history, evaluator)


def _trained_run(kind, architecture, pair, config, history, evaluator, **extra) -> ImageRun:
    """The ``ImageRun`` of a run just trained with ``evaluator`` as its callback."""
    return ImageRun(
        kind=kind,
        architecture=architecture,
        latent_dim=config.latent_dim,
        generator=pair.generator,
        config=config,
        history=history,
        final=evaluator.final(),
        last=evaluator.records[-1],
        generator_builder=pair.generator_builder,
        generator_kwargs=pair.generator_kwargs,
        seconds=history.extras["seconds"],
        steps_per_s=steps_per_second(history),
        evaluator=evaluator,
        **extra,
    )


def _training_fields(config_dict: dict[str, Any]) -> dict[str, Any]:
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in config_dict.items()
        if k not in NON_TRAINING_FIELDS
    }


def load_or_train_vanilla(
    architecture: str,
    data: Tensor,
    config: TrainConfig,
    classifier: nn.Module,
    eval_samples: int,
    reference: FeatureStatistics | None = None,
    size: str = "small",
    reuse: bool = True,
) -> ImageRun:
    """Lesson 04's generator for ``config`` when its checkpoint matches; else train it.

    A checkpoint is reused only if its config equals ``config`` (except
    ``NON_TRAINING_FIELDS``), its builder arguments equal those ``build_pair`` makes now,
    it was scored at ``eval_samples`` and its history holds every epoch's evaluation. The
    last evaluation is then replayed (same latents: the evaluator's stream is advanced past
    the earlier epochs), giving the class counts and the grid; ``extras["replay_matches"]``
    says whether the replayed scores equal the saved ones.
    """
    epochs = config.num_steps // config.steps_per_epoch
    if reuse:
        try:
            saved = load_generator(
                VANILLA_LESSON, architecture, VANILLA_VARIANT, config.latent_dim, config.seed
            )
        except (FileNotFoundError, ValueError):
            saved = None
        expected = build_pair(architecture, config.latent_dim, MNIST_SHAPE, size=size)
        evaluated = (
            [r for r in saved.history.rows if "epoch" in r and "is_mean" in r] if saved else []
        )
        if (
            saved is not None
            and isinstance(saved.config, TrainConfig)
            and _training_fields(dataclasses.asdict(saved.config))
            == _training_fields(dataclasses.asdict(config))
            and saved.builder == expected.generator_builder
            and saved.builder_kwargs == expected.generator_kwargs
            and saved.metrics.get("eval_samples") == eval_samples
            and len(evaluated) == epochs
        ):
            return _replayed_run(
                saved, architecture, config, classifier, eval_samples, reference, epochs
            )
    return train_vanilla(architecture, data, config, classifier, eval_samples, reference, size)


def _replayed_run(saved, architecture, config, classifier, eval_samples, reference, epochs):
    evaluator = _evaluator(classifier, config, config.steps_per_epoch, eval_samples, reference)
    evaluator.advance(epochs - 1)  # the latents of the earlier epochs' evaluations
    record = evaluator.evaluate(saved.generator, config.num_steps)
    replay_matches = all(
        np.isclose(float(record.metrics[k]), float(saved.metrics[k]), rtol=1e-6, atol=1e-9)
        for k in ("is_mean", "classes_covered", "kl_to_uniform")
        if k in saved.metrics
    )
    return ImageRun(
        kind="vanilla",
        architecture=architecture,
        latent_dim=config.latent_dim,
        generator=saved.generator,
        config=saved.config,
        history=saved.history,
        final=dict(saved.metrics),
        last=record,
        generator_builder=saved.builder,
        generator_kwargs=saved.builder_kwargs,
        source="lesson 04's checkpoint",
        extras={"path": saved.path, "replay_matches": bool(replay_matches)},
    )


@dataclass
class DistGANNetworks:
    """The three networks of a Dist-GAN and how to rebuild the generator."""

    encoder: nn.Module
    pair: ModelPair


def build_dist_gan(
    architecture: str,
    latent_dim: int,
    size: str = "small",
    critic_normalization: str = "layer",
    image_shape: Sequence[int] = MNIST_SHAPE,
) -> DistGANNetworks:
    """Lesson 04's generator and critic plus an encoder that mirrors the critic.

    dense: ``mlp_encoder`` with the critic's width and depth; dcgan: ``conv_encoder``
    with the critic's base width (its batch norm kept, as the reference code's encoder).
    The critic's normalisation defaults to layer norm: the gradient penalty is per sample,
    which batch statistics would mix (lesson 04 makes the same choice for WGAN-GP).
    """
    pair = build_pair(
        architecture,
        latent_dim,
        image_shape,
        size=size,
        critic_normalization=critic_normalization,
    )
    if architecture == "dense":
        kwargs = pair.critic_kwargs
        data_dim = int(np.prod(image_shape))
        encoder: nn.Module = mlp_encoder(data_dim, latent_dim, kwargs["width"], kwargs["depth"])
    else:
        encoder = conv_encoder(latent_dim, image_shape, base_width=pair.critic_kwargs["base_width"])
    return DistGANNetworks(encoder=encoder, pair=pair)


def train_dist_gan_run(
    architecture: str,
    data: Tensor,
    config: DistGANConfig,
    classifier: nn.Module,
    eval_samples: int,
    steps_per_epoch: int,
    reference: FeatureStatistics | None = None,
    size: str = "small",
    critic_normalization: str = "layer",
) -> ImageRun:
    """Train Dist-GAN (``gan_utils.images.dist_gan.train_dist_gan``) with the per-epoch evaluator.

    The evaluator draws its latents from the config's prior (U[-1, 1]^d by default).
    """
    set_seed(config.seed)
    nets = build_dist_gan(architecture, config.latent_dim, size, critic_normalization)
    pair = nets.pair
    evaluator = _evaluator(classifier, config, steps_per_epoch, eval_samples, reference)
    history = train_dist_gan(
        nets.encoder, pair.generator, pair.critic, data, config, callbacks=[evaluator]
    )
    return _trained_run(
        "dist_gan",
        architecture,
        pair,
        config,
        history,
        evaluator,
        encoder=nets.encoder,
        extras={"lambda_w": history.extras["lambda_w"]},
    )


@torch.no_grad()
def reconstruct(encoder: nn.Module, generator: nn.Module, images: Tensor) -> Tensor:
    """G(E(x)) in evaluation mode, on the CPU; both networks' modes are restored."""
    parameter = next(encoder.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = encoder.training
    encoder.eval()
    try:
        z = encoder(images.to(device))  # (B, latent_dim)
    finally:
        encoder.train(was_training)
    return generate(generator, z)


__all__ = [
    "NON_TRAINING_FIELDS",
    "VANILLA_LESSON",
    "VANILLA_VARIANT",
    "DistGANNetworks",
    "ImageRun",
    "build_dist_gan",
    "load_or_train_vanilla",
    "reconstruct",
    "train_dist_gan_run",
    "train_vanilla",
    "vanilla_config",
]
