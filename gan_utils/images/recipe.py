"""The image-GAN training recipe of lessons 04-06: one config, one training function, one cache.

* ``ImageGANConfig`` (frozen) defines a run completely: the networks (architecture, size,
  generator output, critic normalisation, image shape), the method (``"gan"`` with a loss
  variant of ``gan_utils.core.variants``, ``"dist_gan"`` with its settings, ``"nu_gan"``
  with a ``NuGANConfig``), latent size and prior, batch size, generator steps, steps per
  epoch (the evaluation interval), optimiser, seed and evaluation settings. ``device`` is
  the only field that does not change what is trained.
* ``train_image_gan(config, data, classifier)`` seeds, builds the networks and trains
  them in the course's one step loop (``gan_utils.core.loop.run_steps``): the vanilla GAN
  and NU-GAN through ``gan_utils.core.train.train`` (NU-GAN's ``NuGANHook`` as its
  ``grad_hook``), Dist-GAN through ``gan_utils.images.dist_gan.train_dist_gan``. An
  ``EpochEvaluator`` scores the generator every epoch; the result is an ``ImageRun``.
* ``load_or_train(config, ...)`` reuses the generator saved for ``config`` when the
  config stored with it equals ``config`` field by field (device excluded), replaying its
  last evaluation on the same latents; otherwise it trains (printing one line naming the
  fields that differed) and saves the generator with the ``ImageGANConfig`` itself. The
  save is atomic, and an ``artifact_lock`` on the checkpoint makes two processes asking
  for the same run (two notebooks at once) train it once: the second waits and reuses it.
  A damaged saved file is a cache miss too (retrained and replaced, with a message).
* Checkpoints (``train_image_gan(..., checkpoint_path=, checkpoint_every=, resume_from=)``)
  are written atomically; a ``kill -9`` and a resume give the uninterrupted run's weights,
  and Ctrl-C keeps the last checkpoint and prints ``resume_from=<it>`` to continue.
* ``lesson04_config`` is lesson 04's config for its parameters, so that lesson 05 builds
  its vanilla baseline exactly as lesson 04 does and reuses lesson 04's run when equal.

The order of the random draws is the lessons': ``set_seed(seed)``, then the networks are
built (generator, critic, then Dist-GAN's encoder), then the loop seeds again and trains;
the evaluator draws from its own ``torch.Generator``. The same config therefore gives
bit-identical weights, and the same weights as building the pair by hand and calling
``gan_utils.core.train.train`` (tested).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..core.atomic import artifact_lock
from ..core.checkpoints import (
    CheckpointError,
    SavedGenerator,
    load_checkpoint,
    load_generator,
    model_checkpoint_path,
    save_generator,
)
from ..core.checks import check_bool, check_choice, check_int, check_number
from ..core.history import History
from ..core.latent import LATENT_PRIORS, generate
from ..core.loop import Callback
from ..core.runtime import get_device, set_seed
from ..core.train import MAX_SEED, OPTIMIZERS, TrainConfig, linear_lr_decay, steps_per_second, train
from ..core.variants import REMEDIES, VARIANTS, get_variant
from ..hessian.nu_gan import NuGANConfig, NuGANHook
from .dist_gan import (
    GP_SLOPES,
    RECON_WEIGHT_SCHEDULES,
    RECONSTRUCTIONS,
    DistGANConfig,
    check_betas,
    conv_encoder,
    mlp_encoder,
    train_dist_gan,
)
from .evaluation import EVAL_SAMPLES, EpochEvaluator, EpochRecord
from .metrics import IS_SPLITS, FeatureStatistics
from .models import (
    ARCHITECTURES,
    CRITIC_NORMALIZATIONS,
    DCGAN_SIZES,
    DENSE_SIZES,
    GENERATOR_OUTPUTS,
    MNIST_SHAPE,
    ModelPair,
    build_pair,
    check_image_shape,
)

METHODS = ("gan", "dist_gan", "nu_gan")
SIZES = {"dense": tuple(DENSE_SIZES), "dcgan": tuple(DCGAN_SIZES)}
NOT_TRAINING_FIELDS = ("device",)  # the only field that does not change what is trained
VANILLA_LESSON = "04_vanilla_gan"


# Lesson 04's optimiser per loss variant: (optimiser, learning rate or None = the
# architecture's, Adam betas), from the variants' papers (the Wasserstein rows from
# ``Variant.paper_optimizer``, the one table of them).
def _paper(name: str) -> tuple[str, float | None, tuple[float, float]]:
    paper = VARIANTS[name].paper_optimizer
    return paper.optimizer, paper.lr, tuple(paper.betas)


LESSON04_OPTIMISERS: dict[str, tuple[str, float | None, tuple[float, float]]] = {
    "non_saturating": ("adam", None, (0.5, 0.999)),  # DCGAN paper
    "least_squares": ("adam", None, (0.5, 0.999)),  # LSGAN paper (lr 2e-4, beta1 0.5)
    "wasserstein_clip": _paper("wasserstein_clip"),  # WGAN paper: RMSprop, lr 5e-5
    "wgan_gp": _paper("wgan_gp"),  # WGAN-GP paper: Adam(1e-4, 0, 0.9)
}
# Lesson 04's learning rates per architecture (its parameters dcgan_lr and dense_lr).
LESSON04_LEARNING_RATES: dict[str, float] = {"dcgan": 2e-4, "dense": 1e-3}


@dataclass(frozen=True)
class ImageGANConfig:
    """Everything that defines an image-GAN run of lessons 04-06 (stored with its generator).

    Two configs that are equal field by field, ``device`` excepted, train the same
    networks the same way (``load_or_train`` reuses a saved run on that condition).
    """

    method: str = "gan"  # "gan" (a loss variant), "dist_gan" or "nu_gan" (the NU-GAN hook)
    variant: str = "non_saturating"  # loss variant of gan_utils.core.variants ("gan", "nu_gan")
    architecture: str = "dcgan"  # "dense" or "dcgan" (gan_utils.images.models)
    size: str = "small"  # dense: "small" / "large"; dcgan: "small" / "reference" / "repository"
    output: str = "tanh"  # generator output: "tanh" or "sigmoid" (2 sigma - 1; dense only)
    critic_normalization: str = "batch"  # DCGAN critic: "batch", "layer" or "none"
    image_shape: tuple[int, int, int] = MNIST_SHAPE  # (C, H, W) of the images
    num_images: int | None = None  # rows of the training data (checked; None: not recorded)
    latent_dim: int = 10  # size of z
    latent_prior: str = "normal"  # "normal": z ~ N(0, I); "uniform": z ~ U[-1, 1]^d
    batch_size: int = 64  # real images per critic and generator step (Dist-GAN: per update)
    num_steps: int = 1000  # generator steps (Dist-GAN: full steps), a multiple of an epoch
    steps_per_epoch: int = 100  # steps between evaluations (one pass over the data)
    log_every: int | None = None  # steps between history rows; None: steps_per_epoch // 4
    optimizer: str = "adam"  # "adam", "rmsprop" or "sgd" (Dist-GAN: Adam only)
    lr_g: float = 2e-4  # generator learning rate
    lr_d: float = 2e-4  # critic learning rate
    lr_ae: float = 2e-4  # Dist-GAN: learning rate of the autoencoder update
    betas: tuple[float, float] = (0.5, 0.999)  # Adam's betas
    lr_decay_from: float | None = None  # share of steps after which every lr decays to 0
    seed: int = 0  # seeds the weights, the batches and the evaluator's latents
    eval_samples: int = EVAL_SAMPLES  # N: images scored per evaluation
    splits: int = IS_SPLITS  # Inception Score splits of the N samples
    # Dist-GAN (method "dist_gan"; see gan_utils.images.dist_gan.DistGANConfig)
    lambda_p: float = 1.0  # weight of the gradient penalty
    lambda_r: float = 1.0  # weight of the latent-data distance term
    lambda_w: float | None = None  # scale of md_z; None: sqrt(latent_dim / feature_dim)
    reconstruction: str = "feature"  # autoencoder error on D's features or on "pixel"s
    gp_slope: str = "rms"  # "rms" (the reference code) or "norm" (WGAN-GP)
    recon_weight_schedule: str = "ramp"  # "ramp" or "constant"
    autoencoder_trains_generator: bool = True  # the autoencoder update also moves G
    # NU-GAN (method "nu_gan"; None: NuGANConfig's defaults)
    nu: NuGANConfig | None = None
    device: str = "auto"  # "auto", "cpu", "cuda", "mps": not a training field

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise once, then validate
        for name in ("image_shape", "betas"):  # lists after some round trips, or torch.Size
            value = getattr(self, name)
            if isinstance(value, (list, tuple)) and type(value) is not tuple:
                set_(self, name, tuple(value))
        if isinstance(self.nu, dict):  # as stored by save_generator (asdict)
            known = {f.name for f in dataclasses.fields(NuGANConfig)}
            unknown = sorted(map(str, set(self.nu) - known))
            if unknown:
                raise ValueError(
                    f"nu must be a NuGANConfig or a dict of its fields {sorted(known)}, "
                    f"got unknown keys {unknown}"
                )
            set_(self, "nu", NuGANConfig(**self.nu))
        elif isinstance(self.nu, NuGANConfig):  # a copy: the caller's object may change
            set_(self, "nu", dataclasses.replace(self.nu))
        elif self.nu is None and self.method == "nu_gan":
            set_(self, "nu", NuGANConfig())
        self.validate()

    def validate(self) -> None:
        """Check every field (``gan_utils.core.checks``): TypeError for a value of the wrong
        type, ValueError for one out of range, each naming the field, the value and what
        is allowed."""
        check_choice("method", self.method, METHODS)
        image_variants = [name for name in VARIANTS if name not in REMEDIES]
        check_choice(
            "variant (image GANs; the remedies are toy-only)", self.variant, image_variants
        )
        if get_variant(self.variant).spectral_norm:
            raise ValueError(
                f"variant must be one without spectral normalisation for the image pairs, "
                f"got {self.variant!r}"
            )
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice(
            f"size (architecture={self.architecture!r})", self.size, SIZES[self.architecture]
        )
        check_choice("output", self.output, GENERATOR_OUTPUTS)
        if self.architecture == "dcgan" and self.output != "tanh":
            raise ValueError(f"output must be 'tanh' for architecture='dcgan', got {self.output!r}")
        check_choice("critic_normalization", self.critic_normalization, CRITIC_NORMALIZATIONS)
        if not isinstance(self.image_shape, tuple):
            raise TypeError(
                f"image_shape must be a tuple (C, H, W) of integers >= 1, got "
                f"{self.image_shape!r} ({type(self.image_shape).__name__})"
            )
        for i, value in enumerate(self.image_shape):
            check_int(f"image_shape[{i}]", value, minimum=1)
        check_image_shape(self.image_shape, multiple_of=4 if self.architecture == "dcgan" else 1)
        if self.num_images is not None:
            check_int("num_images (or None)", self.num_images, minimum=1)
        for name in ("latent_dim", "batch_size", "num_steps", "steps_per_epoch"):
            check_int(name, getattr(self, name), minimum=1)
        if self.num_steps % self.steps_per_epoch:
            raise ValueError(
                f"num_steps must be a multiple of steps_per_epoch={self.steps_per_epoch} "
                f"(whole epochs), got {self.num_steps!r}"
            )
        if self.log_every is not None:
            check_int("log_every (or None)", self.log_every, minimum=1)
        check_choice("latent_prior", self.latent_prior, LATENT_PRIORS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.method == "dist_gan" and self.optimizer != "adam":
            raise ValueError(
                f"optimizer must be 'adam' for method='dist_gan', got {self.optimizer!r}"
            )
        for name in ("lr_g", "lr_d", "lr_ae"):
            check_number(name, getattr(self, name), 0.0, min_open=True)
        check_betas(self.betas)
        if self.lr_decay_from is not None:
            check_number("lr_decay_from (or None)", self.lr_decay_from, 0, 1, max_open=True)
        check_int("seed", self.seed, minimum=0, maximum=MAX_SEED)
        check_int("eval_samples", self.eval_samples, minimum=1)
        check_int("splits", self.splits, minimum=1)
        if self.eval_samples % self.splits:
            raise ValueError(
                f"eval_samples must be a multiple of splits={self.splits}, got {self.eval_samples!r}"
            )
        for name in ("lambda_p", "lambda_r"):
            check_number(name, getattr(self, name), 0.0)
        if self.lambda_w is not None:
            check_number("lambda_w (or None)", self.lambda_w, 0.0, min_open=True)
        check_choice("reconstruction", self.reconstruction, RECONSTRUCTIONS)
        check_choice("gp_slope", self.gp_slope, GP_SLOPES)
        check_choice("recon_weight_schedule", self.recon_weight_schedule, RECON_WEIGHT_SCHEDULES)
        check_bool("autoencoder_trains_generator", self.autoencoder_trains_generator)
        if self.method == "nu_gan":
            if not isinstance(self.nu, NuGANConfig):
                raise TypeError(
                    f"nu must be a NuGANConfig (or None) for method='nu_gan', got {self.nu!r} "
                    f"({type(self.nu).__name__})"
                )
            self.nu.validate()
        elif self.nu is not None:
            raise ValueError(f"nu must be None unless method='nu_gan', got {self.nu!r}")
        if not isinstance(self.device, str):
            raise TypeError(
                f"device must be one of ['auto', 'cpu', 'cuda', 'mps'], got {self.device!r} "
                f"({type(self.device).__name__})"
            )
        get_device(self.device)

    # ---- views ----------------------------------------------------------------------------
    @property
    def epochs(self) -> int:
        """Evaluations of the run: num_steps // steps_per_epoch."""
        return self.num_steps // self.steps_per_epoch

    @property
    def decay_start(self) -> int | None:
        """The step after which the learning rates decay linearly to 0 (None: constant)."""
        if self.lr_decay_from is None:
            return None
        return int(self.lr_decay_from * self.num_steps)

    @property
    def history_every(self) -> int:
        """Steps between history rows (``log_every``, default a quarter epoch)."""
        return self.log_every if self.log_every is not None else max(1, self.steps_per_epoch // 4)

    def train_config(self) -> TrainConfig:
        """The ``TrainConfig`` of ``gan_utils.core.train.train`` (methods "gan", "nu_gan")."""
        return get_variant(self.variant).train_config(
            latent_dim=self.latent_dim,
            latent_prior=self.latent_prior,
            batch_size=self.batch_size,
            num_steps=self.num_steps,
            steps_per_epoch=self.steps_per_epoch,
            lr_g=self.lr_g,
            lr_d=self.lr_d,
            betas=self.betas,
            optimizer=self.optimizer,
            seed=self.seed,
            device=self.device,
            log_every=self.history_every,
            progress=False,
        )

    def dist_gan_config(self) -> DistGANConfig:
        """The ``DistGANConfig`` of ``gan_utils.images.dist_gan.train_dist_gan``."""
        return DistGANConfig(
            latent_dim=self.latent_dim,
            latent_prior=self.latent_prior,
            batch_size=self.batch_size,
            num_steps=self.num_steps,
            lr_ae=self.lr_ae,
            lr_g=self.lr_g,
            lr_d=self.lr_d,
            betas=self.betas,
            lambda_p=self.lambda_p,
            lambda_r=self.lambda_r,
            lambda_w=self.lambda_w,
            reconstruction=self.reconstruction,
            gp_slope=self.gp_slope,
            recon_weight_schedule=self.recon_weight_schedule,
            autoencoder_trains_generator=self.autoencoder_trains_generator,
            seed=self.seed,
            device=self.device,
            log_every=self.history_every,
            progress=False,
        )

    @property
    def checkpoint_loss(self) -> str:
        """The loss name of the run's checkpoint path: the variant; "dist_gan"; "nu_gan"
        (a NU-GAN hook in "monitor" mode changes nothing: the variant's name)."""
        if self.method == "dist_gan":
            return "dist_gan"
        if self.method == "nu_gan" and self.nu.mode != "monitor":
            return "nu_gan"
        return self.variant

    @property
    def model_name(self) -> str:
        """The default model name of its checkpoint: the architecture, plus the size unless small."""
        return self.architecture if self.size == "small" else f"{self.architecture}_{self.size}"


def config_differences(saved: Any, requested: ImageGANConfig) -> dict[str, tuple[Any, Any]]:
    """Fields (``device`` excluded) whose values differ: name -> (saved, requested).

    NU-GAN settings are compared one by one (``nu.k``, ``nu.mode``, ...). A ``saved`` that
    is not an ``ImageGANConfig`` differs as a whole (key ``"config class"``).
    """
    if not isinstance(saved, ImageGANConfig):
        return {"config class": (type(saved).__name__, "ImageGANConfig")}

    def flat(config: ImageGANConfig) -> dict[str, Any]:
        values = {}
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            if f.name in NOT_TRAINING_FIELDS:
                continue
            if isinstance(value, NuGANConfig):
                values |= {f"nu.{k}": v for k, v in dataclasses.asdict(value).items()}
            else:
                values[f.name] = value
        return values

    a, b = flat(saved), flat(requested)
    return {k: (a.get(k), b.get(k)) for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)}


def lesson04_config(
    architecture: str,
    latent_dim: int,
    steps_per_epoch: int,
    epochs: int,
    *,
    variant: str = "non_saturating",
    size: str = "small",
    output: str = "tanh",
    image_shape: Sequence[int] = MNIST_SHAPE,
    batch_size: int = 64,
    lr: float | None = None,
    seed: int = 0,
    eval_samples: int = EVAL_SAMPLES,
    num_images: int | None = None,
    device: str = "auto",
) -> ImageGANConfig:
    """Lesson 04's config for one run of its parameters (lesson 05's vanilla baseline too).

    The variant's optimiser, betas and (WGAN, WGAN-GP) learning rate come from
    ``LESSON04_OPTIMISERS``; otherwise the learning rate is ``lr`` or, when None, lesson
    04's default for the architecture (``LESSON04_LEARNING_RATES``). A variant with a
    gradient penalty gets a layer-normalised critic (the penalty is per sample, which
    batch statistics would mix). One history row per quarter epoch.
    """
    check_choice("variant (lesson 04)", variant, list(LESSON04_OPTIMISERS))
    check_choice("architecture", architecture, ARCHITECTURES)
    optimizer, variant_lr, betas = LESSON04_OPTIMISERS[variant]
    if lr is not None:
        check_number("lr", lr, 0.0, min_open=True)
    rate = variant_lr or lr or LESSON04_LEARNING_RATES[architecture]
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    return ImageGANConfig(
        method="gan",
        variant=variant,
        architecture=architecture,
        size=size,
        output=output,
        critic_normalization="layer" if get_variant(variant).gp_weight > 0 else "batch",
        image_shape=tuple(image_shape),
        num_images=num_images,
        latent_dim=latent_dim,
        batch_size=batch_size,
        num_steps=check_int("epochs", epochs, minimum=1) * steps_per_epoch,
        steps_per_epoch=steps_per_epoch,
        log_every=max(1, steps_per_epoch // 4),
        optimizer=optimizer,
        lr_g=rate,
        lr_d=rate,
        betas=betas,
        seed=seed,
        eval_samples=eval_samples,
        device=str(device),
    )


def dist_gan_image_config(**fields: Any) -> ImageGANConfig:
    """An ``ImageGANConfig`` for Dist-GAN with the paper's defaults (``DistGANConfig``'s:
    z ~ U[-1, 1]^d, Adam betas (0.5, 0.9), learning rates 2e-4) and a layer-normalised
    critic (the gradient penalty is per sample); ``fields`` set or override any field."""
    paper = DistGANConfig()
    defaults = {
        "method": "dist_gan",
        "latent_prior": paper.latent_prior,
        "betas": tuple(paper.betas),
        "lr_ae": paper.lr_ae,
        "lr_g": paper.lr_g,
        "lr_d": paper.lr_d,
        "critic_normalization": "layer",
    }
    return ImageGANConfig(**{**defaults, **fields})


# ---- networks ---------------------------------------------------------------------------------
@dataclass
class DistGANNetworks:
    """The three networks of a Dist-GAN and how to rebuild the generator."""

    encoder: nn.Module
    pair: ModelPair


def build_networks(config: ImageGANConfig) -> tuple[ModelPair, nn.Module | None]:
    """The run's generator and critic (``build_pair``), and Dist-GAN's encoder (else None).

    Draws the initial weights from torch's global RNG (``train_image_gan`` seeds first).
    """
    pair = build_pair(
        config.architecture,
        config.latent_dim,
        config.image_shape,
        size=config.size,
        output=config.output,
        critic_normalization=config.critic_normalization,
    )
    if config.method != "dist_gan":
        return pair, None
    return pair, _encoder_for(pair, config.architecture, config.latent_dim, config.image_shape)


def _encoder_for(pair: ModelPair, architecture: str, latent_dim: int, image_shape) -> nn.Module:
    if architecture == "dense":
        kwargs = pair.critic_kwargs
        data_dim = int(np.prod(image_shape))
        return mlp_encoder(data_dim, latent_dim, kwargs["width"], kwargs["depth"])
    return conv_encoder(latent_dim, image_shape, base_width=pair.critic_kwargs["base_width"])


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
    ``train_image_gan`` builds the same networks for ``method="dist_gan"``.
    """
    pair = build_pair(
        architecture, latent_dim, image_shape, size=size, critic_normalization=critic_normalization
    )
    return DistGANNetworks(_encoder_for(pair, architecture, latent_dim, image_shape), pair)


# ---- runs -----------------------------------------------------------------------------------
@dataclass
class ImageRun:
    """One trained (or reused) generator, its networks and its per-epoch evaluations."""

    config: ImageGANConfig
    generator: nn.Module
    history: History  # loss rows, EpochEvaluator rows (and whatever callbacks logged)
    final: dict[str, Any]  # the last evaluation's metrics (epoch, step, eval_samples, ...)
    last: EpochRecord | None  # the last evaluation: class counts, fixed-noise grid (None:
    # resumed from a checkpoint that had already finished: nothing was evaluated here)
    generator_builder: str
    generator_kwargs: dict[str, Any]
    critic: nn.Module | None = None  # None when reused (only the generator is saved)
    encoder: nn.Module | None = None  # Dist-GAN only
    hook: NuGANHook | None = None  # NU-GAN only
    evaluator: EpochEvaluator | None = None  # every epoch's records; None when reused
    seconds: float = float("nan")  # training wall time (nan when reused)
    steps_per_s: float = float("nan")
    source: str = "trained here"  # or "<lesson>'s checkpoint"
    path: Path | None = None  # where the generator is saved (None: not saved)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The method: "gan", "dist_gan" or "nu_gan"."""
        return self.config.method

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def reused(self) -> bool:
        """True when the generator came from a checkpoint instead of being trained."""
        return self.evaluator is None

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of an evaluated metric, e.g. ``"is_mean"``."""
        return evaluated_series(self.history, key)


def evaluated_series(
    history: History, key: str, where: str = "this run's history"
) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, values) of a metric the per-epoch evaluator logged, e.g. ``"is_mean"``."""
    rows = [r for r in history.rows if "epoch" in r and key in r]
    if not rows:
        raise KeyError(f"no evaluations of {key!r} in {where}")
    return np.array([r["epoch"] for r in rows]), np.array([float(r[key]) for r in rows])


def _evaluator(
    config: ImageGANConfig, classifier: nn.Module | None, reference: FeatureStatistics | None
) -> EpochEvaluator:
    """The run's per-epoch evaluator: latent size, prior, seed, N and splits from ``config``."""
    return EpochEvaluator(
        classifier,
        config.latent_dim,
        config.steps_per_epoch,
        num_samples=config.eval_samples,
        seed=config.seed,
        latent_prior=config.latent_prior,
        reference=reference,
        splits=config.splits,
    )


def _last_evaluation(history: History) -> dict[str, Any]:
    """The last evaluation row of a history (its metrics, epoch and step)."""
    rows = [r for r in history.rows if "epoch" in r and "eval_samples" in r]
    if not rows:
        raise ValueError("the history holds no evaluation: train at least one epoch")
    return dict(rows[-1])


def _check_data(config: ImageGANConfig, data: Tensor) -> None:
    if not isinstance(data, Tensor):
        raise TypeError(f"data must be a torch.Tensor of images, got {type(data).__name__}")
    shape = tuple(config.image_shape)
    if data.dim() != 4 or tuple(data.shape[1:]) != shape:
        raise ValueError(
            f"data must have shape (N, {', '.join(map(str, shape))}) for image_shape={shape}, "
            f"got {tuple(data.shape)}"
        )
    if config.num_images is not None and data.shape[0] != config.num_images:
        raise ValueError(
            f"data must hold num_images={config.num_images} images (the config's), got {data.shape[0]}"
        )


def train_image_gan(
    config: ImageGANConfig,
    data: Tensor,
    classifier: nn.Module | None = None,
    reference: FeatureStatistics | None = None,
    callbacks: Sequence[Callback] = (),
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int = 0,
    resume_from: str | Path | None = None,
) -> ImageRun:
    """Train the run ``config`` defines on ``data``, scored every epoch (module docstring).

    Args:
        config: the run.
        data: training images (N, C, H, W) in [-1, 1] (N = ``config.num_images`` if set).
        classifier: the lesson-03 digit classifier; None for images that are not digits
            (then only the saturated share and the grid distance are logged).
        reference: feature statistics of real digits; adds FID to the evaluations.
        callbacks: more training callbacks (e.g. lesson 06's ``spectrum_callback``), run
            after the evaluator at their own ``every``.
        checkpoint_path: where the loop writes its checkpoints (networks, optimisers, RNG
            states, history), every ``checkpoint_every`` steps and at the end.
        checkpoint_every: steps between checkpoints (0: only at the end); a multiple of
            the history interval, and for NU-GAN of its refresh interval, so that a
            resumed run is bit-identical to an uninterrupted one.
        resume_from: a checkpoint of this same config to continue from; the evaluator
            skips the latents of the evaluations already in the checkpoint's history.

    Returns:
        The ``ImageRun`` with the ``EpochRecord`` of every epoch trained in this call in
        ``run.evaluator`` (a resumed run: the epochs after the checkpoint).
    """
    if not isinstance(config, ImageGANConfig):
        raise TypeError(f"config must be an ImageGANConfig, got {type(config).__name__}")
    _check_data(config, data)
    check_int("checkpoint_every", checkpoint_every, minimum=0)
    set_seed(config.seed)  # the lessons' order: seed, build the networks, train
    pair, encoder = build_networks(config)
    evaluator = _evaluator(config, classifier, reference)
    if resume_from is not None:
        done = int(load_checkpoint(resume_from)["step"])
        evaluator.advance(done // config.steps_per_epoch)
    hooks = [evaluator, *callbacks]
    if config.decay_start is not None:
        hooks.insert(0, linear_lr_decay(config.decay_start, config.num_steps))
    saving = {"checkpoint_path": checkpoint_path, "resume_from": resume_from}
    hook = None
    extras: dict[str, Any] = {}
    if config.method == "dist_gan":
        settings = dataclasses.replace(config.dist_gan_config(), checkpoint_every=checkpoint_every)
        history = train_dist_gan(
            encoder, pair.generator, pair.critic, data, settings, callbacks=hooks, **saving
        )
        extras["lambda_w"] = history.extras["lambda_w"]
    else:
        if config.method == "nu_gan":
            needs_data = config.nu.hessian_of == "critic"
            hook = NuGANHook(config.nu, data=data if needs_data else None)
        settings = dataclasses.replace(config.train_config(), checkpoint_every=checkpoint_every)
        try:
            history = train(
                pair.generator, pair.critic, data, settings, hooks, grad_hook=hook, **saving
            )
        finally:
            if hook is not None:
                hook.remove()  # the critic-optimiser hook of hessian_of="critic", "layer"
    return ImageRun(
        config=config,
        generator=pair.generator,
        history=history,
        final=evaluator.final() if evaluator.records else _last_evaluation(history),
        last=evaluator.records[-1] if evaluator.records else None,
        generator_builder=pair.generator_builder,
        generator_kwargs=pair.generator_kwargs,
        critic=pair.critic,
        encoder=encoder,
        hook=hook,
        evaluator=evaluator,
        seconds=history.extras["seconds"],
        steps_per_s=steps_per_second(history),
        extras=extras,
    )


# ---- saved runs -----------------------------------------------------------------------------
def save_run(run: ImageRun, lesson: str, model_name: str | None = None) -> Path:
    """Save the run's generator with its ``ImageGANConfig``, final metrics and history.

    The path is ``model_checkpoint_path(lesson, model_name, config.checkpoint_loss,
    latent_dim, seed)``; ``model_name`` defaults to ``config.model_name``.
    """
    config = run.config
    path = save_generator(
        run.generator,
        lesson,
        model_name or config.model_name,
        config.checkpoint_loss,
        config,
        run.generator_builder,
        run.generator_kwargs,
        metrics=run.final,
        history=run.history,
    )
    run.path = path
    return path


def load_saved(
    lesson: str,
    model_name: str,
    loss: str,
    latent_dim: int,
    seed: int,
    device: str | torch.device = "cpu",
) -> SavedGenerator:
    """A saved generator and its config (an ``ImageGANConfig``, or for checkpoints older
    than the recipe a ``TrainConfig`` / ``DistGANConfig``); ``latent_prior_of`` its prior.

    Raises:
        FileNotFoundError: naming the path and the notebook that writes it.
    """
    return load_generator(lesson, model_name, loss, latent_dim, seed, device)


def latent_prior_of(saved: SavedGenerator) -> str:
    """The latent prior a saved generator was trained with ("normal" when not recorded)."""
    return getattr(saved.config, "latent_prior", "normal")


def load_or_train(
    config: ImageGANConfig,
    data: Tensor,
    classifier: nn.Module | None,
    reference: FeatureStatistics | None = None,
    lesson: str = VANILLA_LESSON,
    model_name: str | None = None,
    reuse: bool = True,
    save: bool = True,
    callbacks: Sequence[Callback] = (),
    log: Callable[[str], None] = print,
) -> ImageRun:
    """The run ``config`` defines: reused from ``lesson``'s checkpoint when it matches, else trained.

    A saved generator is reused only if the ``ImageGANConfig`` stored with it equals
    ``config`` field by field (``device`` excepted), its builder is the one ``config``
    builds now and its history holds every epoch's evaluation. Its last evaluation is then
    replayed on the same latents (the evaluator's stream is advanced past the earlier
    epochs), giving the class counts and the fixed-noise grid; ``extras["replay_matches"]``
    says whether the replayed scores equal the saved ones. Otherwise the run is trained
    (``train_image_gan``) after one ``log`` line naming the fields that differed, and
    saved with ``save_run`` when ``save``.

    Args:
        config: the run.
        data, classifier, reference, callbacks: as for ``train_image_gan``.
        lesson: the notebook whose checkpoint to reuse and where to save (e.g. lesson 05
            reuses "04_vanilla_gan"'s runs).
        model_name: the checkpoint's model name (default ``config.model_name``).
        reuse: False: always train (and save when ``save``).
        save: save a run trained here.
        log: where the cache-miss line goes.
    """
    if not isinstance(config, ImageGANConfig):
        raise TypeError(f"config must be an ImageGANConfig, got {type(config).__name__}")
    check_bool("reuse", reuse)
    check_bool("save", save)
    name = model_name or config.model_name
    path = model_checkpoint_path(
        lesson, name, config.checkpoint_loss, config.latent_dim, config.seed
    )
    # Two notebooks asking for the same saved run take turns: the second waits, then reuses it.
    with artifact_lock(path, log) if save else contextlib.nullcontext():
        if reuse:
            reason = None
            try:
                saved = load_saved(
                    lesson,
                    name,
                    config.checkpoint_loss,
                    config.latent_dim,
                    config.seed,
                    get_device(config.device),
                )
            except FileNotFoundError:
                saved, reason = None, "no saved run"
            except CheckpointError:  # truncated or altered: it is not good work, replace it
                saved, reason = None, "its file is damaged (not a complete checkpoint)"
            except ValueError as error:  # an older checkpoint format
                saved, reason = None, f"unreadable checkpoint ({error})"
            if saved is not None:
                reason = _mismatch(saved, config)
            if reason is None:
                return _replayed_run(saved, config, classifier, reference, lesson)
            log(f"{lesson}/{path.name}: not reused ({reason}); training it here")
        run = train_image_gan(config, data, classifier, reference, callbacks)
        if save:
            save_run(run, lesson, name)
    return run


def _mismatch(saved: SavedGenerator, config: ImageGANConfig) -> str | None:
    """Why ``saved`` cannot stand for ``config`` (None: it can)."""
    differences = config_differences(saved.config, config)
    if differences:
        shown = ", ".join(f"{k}: saved {a!r}, requested {b!r}" for k, (a, b) in differences.items())
        return f"fields differ: {shown}"
    with torch.random.fork_rng(devices=[]):  # building initialises weights: keep the RNG
        pair, _ = build_networks(config)
    if (saved.builder, saved.builder_kwargs) != (pair.generator_builder, pair.generator_kwargs):
        return "its generator was built differently from what this gan_utils builds now"
    evaluated = [r for r in saved.history.rows if "epoch" in r and "eval_samples" in r]
    if len(evaluated) != config.epochs:
        return f"its history holds {len(evaluated)} of {config.epochs} epoch evaluations"
    return None


def _replayed_run(saved, config, classifier, reference, lesson) -> ImageRun:
    evaluator = _evaluator(config, classifier, reference)
    evaluator.advance(config.epochs - 1)  # the latents of the earlier epochs' evaluations
    record = evaluator.evaluate(saved.generator, config.num_steps)
    keys = ("is_mean", "classes_covered", "kl_to_uniform", "fid", "saturated_share")
    replay_matches = all(
        np.isclose(float(record.metrics[k]), float(saved.metrics[k]), rtol=1e-6, atol=1e-9)
        for k in keys
        if k in saved.metrics and k in record.metrics
    )
    return ImageRun(
        config=config,
        generator=saved.generator,
        history=saved.history,
        final={"epoch": record.epoch, "step": record.step, **record.metrics},
        last=record,
        generator_builder=saved.builder,
        generator_kwargs=saved.builder_kwargs,
        source=f"{lesson}'s checkpoint",
        path=saved.path,
        extras={"replay_matches": bool(replay_matches)},
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
    "LESSON04_LEARNING_RATES",
    "LESSON04_OPTIMISERS",
    "METHODS",
    "NOT_TRAINING_FIELDS",
    "VANILLA_LESSON",
    "DistGANNetworks",
    "ImageGANConfig",
    "ImageRun",
    "build_dist_gan",
    "build_networks",
    "config_differences",
    "evaluated_series",
    "dist_gan_image_config",
    "latent_prior_of",
    "lesson04_config",
    "load_or_train",
    "load_saved",
    "reconstruct",
    "save_run",
    "train_image_gan",
]
