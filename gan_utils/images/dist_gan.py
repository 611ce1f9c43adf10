r"""Dist-GAN: a GAN regularised by an autoencoder and two distance constraints (lesson 05).

Tran, Bui and Cheung, "Dist-GAN: An Improved GAN using Distance Constraints", ECCV 2018,
and the authors' TensorFlow reference code (github.com/tntrung/gan, ``distgan_image/
distgan.py``; ``distgan_mnist.py`` for the MNIST settings). Three networks:

* an encoder :math:`E: x \mapsto z` (``conv_encoder`` for 28x28 digits, ``mlp_encoder``
  for toy 2-D data or flattened images);
* the generator :math:`G: z \mapsto x`, which is also the decoder of the autoencoder
  :math:`x \mapsto G(E(x))`;
* the discriminator :math:`D`, wrapped by ``DistGANCritic`` so that one call returns the
  logit :math:`D(x)` and a feature vector :math:`f(x)`: the input of the critic's last
  linear layer (in the reference code, the last convolutional feature map, 4,096 numbers
  on MNIST).

One training step runs three updates, in this order (the reference code's ``train``),
each with its own minibatch of real data x and its own :math:`z \sim U[-1, 1]^d`:

1. **autoencoder** (``autoencoder_step``; E and G together, as the reference code does on
   MNIST; E only with ``autoencoder_trains_generator=False``, its setting elsewhere):

   .. math:: L_{AE} = \underbrace{\operatorname{mean}\,(f(x) - f(G(E(x))))^2}_{recon}
             + \lambda_r \underbrace{(md_x - md_z)^2}_{reg}

   with :math:`md_x = \operatorname{mean}(f(G(E(x))) - f(G(z)))` over batch and features,
   :math:`md_z = \lambda_w \operatorname{mean}(E(x) - z)` over batch and latent
   dimensions, and :math:`\lambda_w = \sqrt{d / D_f}` (d = ``latent_dim``, :math:`D_f` =
   the feature size), as ``distgan_mnist.py`` sets it ("as in the paper", says its
   comment). ``recon`` is the autoencoder's reconstruction error, measured on D's
   features as the reference code does (``ae_loss = mean(square(f_real - f_recon))``);
   ``reconstruction="pixel"`` measures it on pixels instead, the textbook autoencoder
   loss (``reg`` stays on features). ``reg`` is the *latent-data distance constraint*:
   distances between samples in D's feature space should follow the distances between
   the latents they come from, so that different z cannot collapse onto one output. We
   use the reference code's form, a squared difference of mean differences (first
   moments); the paper states the constraint with general distance functions between
   data samples and between latent samples.
   With ``md_x`` and ``md_z`` as signed means, the term is cheap and its gradient reaches
   E (through ``md_z`` and ``f(G(E(x)))``) and G (through both feature means).

2. **critic** (``critic_step``; D only):

   .. math:: L_D = w_{real}\,BCE(D(x), 1) + w_{recon}\,BCE(D(G(E(x))), 1)
             + BCE(D(G(z)), 0) + \lambda_p\,GP

   Reconstructions count as "real" with a small weight. The weights follow the reference
   code: :math:`w_{real} = 0.95 + \mu`, :math:`w_{recon} = 0.05 - \mu`,
   :math:`\mu = \mathrm{clip}(0.2 t - 0.1, 0, 0.05)`, :math:`t` = step / ``num_steps``:
   zero for the first half of training, a linear ramp to 0.05 at t = 0.75, then 0.05
   (reconstructions drop out of D's loss). The code comments call this "slightly
   improved from the original paper", whose fixed weights 0.95 / 0.05 remain available
   as ``recon_weight_schedule="constant"``. BCE works on logits
   (``binary_cross_entropy_with_logits``), never on sigmoid outputs.

   The gradient penalty (``gradient_penalty``) is the reference code's:
   :math:`\hat x = \epsilon x + (1-\epsilon) G(z)` with **one** :math:`\epsilon \sim U[0,1]`
   per sample, :math:`s = \sqrt{\operatorname{mean}_j (\partial D(\hat x)/\partial \hat
   x_j)^2}` the **root mean square** of the input gradient over its n dimensions (not its
   L2 norm; :math:`s = \lVert \nabla D \rVert_2 / \sqrt n`), and
   :math:`GP = \operatorname{mean}_i (s_i - 1)^2`. WGAN-GP (Gulrajani et al. 2017), whose
   penalty the paper takes up, uses the L2 norm; we follow the reference code
   (``gp_slope="rms"``, the default), which produced the paper's numbers, and offer the
   norm as ``gp_slope="norm"``. On 28x28 images the RMS target
   of 1 allows an L2 gradient norm of :math:`\sqrt{784} = 28`: a far weaker constraint
   than WGAN-GP's. The interpolates lie between x and G(z) (not the reconstructions),
   as in the code.

3. **generator** (``generator_step``; G only), the paper's *discriminator-score distance*:

   .. math:: L_G = \left| \operatorname{mean}\,\sigma(D(x))
             - \operatorname{mean}\,\sigma(D(G(z))) \right|

   G is pushed until fakes score like real data on average, not beyond.

Defaults follow ``distgan.py`` / ``distgan_mnist.py``: :math:`\lambda_p = \lambda_r = 1`,
Adam with learning rate 2e-4 and betas (0.5, 0.9) for all three optimisers (on MNIST the
autoencoder optimiser holds E's and G's parameters, so G has two Adam states, as in the
code), z uniform in [-1, 1]. What we do not copy: the code's images lie in [0, 1] with a
sigmoid generator output, ours in [-1, 1] with tanh (the course's convention); its
networks are larger (latent 100, 64-128-256 channels, 5x5 kernels; see
``gan_utils.images.models`` for ours); it has a learning-rate decay switched off on MNIST
(decay rate 1.0).

Cost: one step runs E twice, G five times, D nine times (plus the penalty's double
backward pass): 2.3-3.5 times a plain GAN step of ``gan_utils.core.train`` with the same
networks, measured on one CPU thread with lesson 04's small DCGAN and dense pairs at
batch 64 (lesson 05).

**Bugs of the NUGAN-DISTGAN repository's Dist-GAN, and how this module avoids them**
(each checked by a test in ``tests/test_dist_gan.py``):

* *one interpolation coefficient per pixel instead of per sample*: ``gradient_penalty``
  uses ``gan_utils.core.losses.interpolate``, whose :math:`\epsilon` has shape (B, 1, ..., 1);
* *a gradient penalty that does not propagate into the critic's gradients*: the input
  gradient is taken with ``create_graph=True`` and the penalty is added to D's loss
  before its backward pass, so it reaches D's parameters;
* *a generator loss on detached fakes* (G received no gradient): in ``generator_step`` the
  fakes keep their graph; D is frozen with ``requires_grad(critic, False)``, not by
  detaching its input.

``train_dist_gan`` makes the state (``make_state``) and runs ``dist_gan_step`` in the
course's one step loop, ``gan_utils.core.loop.run_steps`` (the loop of
``gan_utils.core.train.train`` too): the same callbacks (``every``; a state with
``.generator``, ``.critic``, ``.step``, ``.history``, ``.config``, ``.device``),
checkpoints with models, optimisers, RNG states, config and history, bit-identical
resume, and ``DivergenceError`` on NaN/inf. The lessons reach it through
``gan_utils.images.recipe.train_image_gan`` (``ImageGANConfig(method="dist_gan")``),
which builds the networks and adds the per-epoch evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.checkpoints import load_checkpoint, rng_state, set_rng_state
from ..core.checks import check_bool, check_choice, check_int, check_number
from ..core.history import History
from ..core.latent import sample_latent
from ..core.loop import Callback, check_resumable, run_steps
from ..core.losses import interpolate
from ..core.mlp import mlp, requires_grad
from ..core.runtime import get_device, set_seed
from ..core.train import LATENT_PRIORS, check_data, draw_real
from .models import MNIST_SHAPE, check_image_shape, dcgan_init_

RECONSTRUCTIONS = ("feature", "pixel")
GP_SLOPES = ("rms", "norm")
RECON_WEIGHT_SCHEDULES = ("ramp", "constant")
ENCODER_NORMALIZATIONS = ("batch", "layer", "none")
# num_steps is not among them: it sets the schedule t = step / num_steps of the weights.
RESUMABLE_CHANGES = ("checkpoint_every", "progress", "device")


# ---- networks ------------------------------------------------------------------------------
class ConvEncoder(nn.Module):
    """E: images (B, C, H, W) -> latents (B, latent_dim) by two stride-2 convs and a linear map.

    The mirror image of ``gan_utils.images.models.DCGANCritic`` (and of the reference
    code's ``encoder_dcgan_mnist``, which has a third conv and 5x5 kernels)::

        Conv(C -> b, 4, 2, 1), LeakyReLU(0.2)                # (b, H/2, W/2)
        Conv(b -> 2b, 4, 2, 1), norm, LeakyReLU(0.2)         # (2b, H/4, W/4)
        flatten, Linear(2b * H/4 * W/4 -> latent_dim)        # no output activation

    The output is not squashed into [-1, 1], as in the reference code.
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int] = MNIST_SHAPE,
        base_width: int = 32,
        normalization: str = "batch",
    ):
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.image_shape = check_image_shape(image_shape, multiple_of=4)
        check_int("base_width", base_width, minimum=1)
        check_choice("normalization", normalization, ENCODER_NORMALIZATIONS)
        channels, height, width = self.image_shape
        b = base_width
        if normalization == "batch":
            norm: nn.Module = nn.BatchNorm2d(2 * b)
        elif normalization == "layer":
            norm = nn.GroupNorm(1, 2 * b)
        else:
            norm = nn.Identity()
        self.conv = nn.Sequential(
            nn.Conv2d(channels, b, 4, 2, 1),  # (C, H, W) -> (b, H/2, W/2)
            nn.LeakyReLU(0.2),
            nn.Conv2d(b, 2 * b, 4, 2, 1),  # -> (2b, H/4, W/4)
            norm,
            nn.LeakyReLU(0.2),
        )
        self.fc = nn.Linear(2 * b * (height // 4) * (width // 4), latent_dim)
        dcgan_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x).flatten(start_dim=1)  # (B, 2b * H/4 * W/4)
        return self.fc(h)  # (B, latent_dim)


class MLPEncoder(nn.Module):
    """E: samples (B, ...) -> latents (B, latent_dim) by an MLP on the flattened sample."""

    def __init__(self, data_dim: int, latent_dim: int, width: int = 128, depth: int = 3):
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.net = mlp(data_dim, latent_dim, width, depth, "leaky_relu", "none")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(start_dim=1))  # (B, data_dim) -> (B, latent_dim)


def conv_encoder(
    latent_dim: int,
    image_shape: Sequence[int] = MNIST_SHAPE,
    base_width: int = 32,
    normalization: str = "batch",
) -> ConvEncoder:
    """Convolutional encoder for small images (H, W multiples of 4); see ``ConvEncoder``.

    Args:
        latent_dim: size of z (>= 1).
        image_shape: (C, H, W), e.g. (1, 28, 28).
        base_width: b, the channels of the first feature map (2b in the second).
        normalization: "batch" (as the reference code), "layer" or "none".
    """
    return ConvEncoder(latent_dim, image_shape, base_width, normalization)


def mlp_encoder(data_dim: int, latent_dim: int, width: int = 128, depth: int = 3) -> MLPEncoder:
    """MLP encoder (LeakyReLU(0.2) hidden layers) for toy data or flattened images.

    Args:
        data_dim: numbers per sample (2 for the toy mixtures, 784 for MNIST).
        latent_dim: size of z (>= 1).
        width, depth: units per hidden layer and number of hidden layers.
    """
    return MLPEncoder(data_dim, latent_dim, width, depth)


class DistGANCritic(nn.Module):
    """Wraps a critic so that one call returns its logits and its features f(x).

    f(x) is the input of ``feature_layer`` (default: the critic's last ``nn.Linear``, the
    layer that makes the logit), flattened to (B, feature_dim). For
    ``gan_utils.images.models.DCGANCritic`` that is the last conv feature map after its
    activation, as in the reference code; for ``gan_utils.core.mlp.mlp_critic`` and
    ``gan_utils.images.models.DenseCritic`` the last hidden layer. The feature is captured by a forward pre-hook that exists only during the
    call, so the wrapped critic can still be used alone (``wrapper.critic(x)`` -> logits).

    Args:
        critic: any module mapping samples to logits of shape (B,) or (B, 1).
        feature_layer: the module whose input is f(x); default the last ``nn.Linear``.

    Raises:
        ValueError: naming ``critic`` when it has no ``nn.Linear`` and no layer is given.
    """

    def __init__(self, critic: nn.Module, feature_layer: nn.Module | None = None):
        super().__init__()
        if isinstance(critic, DistGANCritic):
            raise ValueError("critic is already a DistGANCritic; pass it to train_dist_gan as is")
        if feature_layer is None:
            linears = [m for m in critic.modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ValueError(
                    "critic must contain an nn.Linear whose input is the feature vector f(x), "
                    "or pass feature_layer"
                )
            feature_layer = linears[-1]
        elif not any(m is feature_layer for m in critic.modules()):
            raise ValueError("feature_layer must be a submodule of critic")
        self.critic = critic
        self._feature_layer = [feature_layer]  # a list: not registered twice as a submodule

    @property
    def feature_layer(self) -> nn.Module:
        return self._feature_layer[0]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns (logits (B,), features (B, feature_dim))."""
        captured: list[Tensor] = []
        handle = self.feature_layer.register_forward_pre_hook(
            lambda module, inputs: captured.append(inputs[0])
        )
        try:
            logits = self.critic(x)
        finally:
            handle.remove()
        if len(captured) != 1:
            raise ValueError(
                f"feature_layer ran {len(captured)} times in one critic call; it must run once"
            )
        return logits.reshape(x.shape[0]), captured[0].reshape(x.shape[0], -1)  # (B,), (B, F)


# ---- configuration ---------------------------------------------------------------------------
@dataclass
class DistGANConfig:
    """Everything that defines a Dist-GAN run (saved in every checkpoint with ``asdict``).

    Defaults: the paper and the reference code's ``distgan_mnist.py`` (except
    ``latent_dim``, ``batch_size`` and ``num_steps``, which are lesson-sized).
    """

    latent_dim: int = 10  # size of z (the reference code uses 100 on MNIST)
    latent_prior: str = "uniform"  # "uniform": z ~ U[-1, 1]^d (the paper); or "normal"
    batch_size: int = 64  # real samples per update (each of the three draws its own batch)
    num_steps: int = 1000  # training steps (one = autoencoder + critic + generator update)
    lr_ae: float = 2e-4  # Adam learning rate of the autoencoder update
    lr_g: float = 2e-4  # Adam learning rate of the generator update
    lr_d: float = 2e-4  # Adam learning rate of the critic update
    betas: tuple[float, float] = (0.5, 0.9)  # Adam's betas for all three optimisers
    lambda_p: float = 1.0  # weight of the gradient penalty in the critic's loss
    lambda_r: float = 1.0  # weight of the latent-data distance term in the autoencoder's loss
    lambda_w: float | None = None  # scale of md_z; None: sqrt(latent_dim / feature_dim)
    reconstruction: str = "feature"  # "feature": MSE on D's features f(x); "pixel": on x
    gp_slope: str = "rms"  # "rms": RMS of the input gradient (the code); "norm": its L2 norm
    recon_weight_schedule: str = "ramp"  # "ramp": w_real = 0.95 + mu(t); "constant": 0.95
    autoencoder_trains_generator: bool = True  # the AE update also moves G (code, on MNIST)
    seed: int = 0  # seeds every RNG at the start of a fresh run
    device: str = "auto"  # "auto", "cpu", "cuda", "mps"
    log_every: int = 10  # steps between history rows (and NaN/inf checks)
    checkpoint_every: int = 0  # steps between checkpoints (0: only at the end)
    progress: bool = True  # show a tqdm progress bar

    def validate(self) -> None:
        """Check every field (``gan_utils.core.checks``): TypeError for a value of the wrong
        type, ValueError for one out of range, each naming the field and what is allowed."""
        for name in ("latent_dim", "batch_size", "num_steps", "log_every"):
            check_int(name, getattr(self, name), minimum=1)
        check_int("checkpoint_every", self.checkpoint_every, minimum=0)
        if self.checkpoint_every % self.log_every:
            raise ValueError(
                f"checkpoint_every must be 0 or a multiple of log_every={self.log_every}, "
                f"got {self.checkpoint_every!r}"
            )
        check_choice("latent_prior", self.latent_prior, LATENT_PRIORS)
        check_choice("reconstruction", self.reconstruction, RECONSTRUCTIONS)
        check_choice("gp_slope", self.gp_slope, GP_SLOPES)
        check_choice("recon_weight_schedule", self.recon_weight_schedule, RECON_WEIGHT_SCHEDULES)
        for name in ("lr_ae", "lr_g", "lr_d"):
            check_number(name, getattr(self, name), 0.0, min_open=True)
        check_betas(self.betas)
        for name in ("lambda_p", "lambda_r"):
            check_number(name, getattr(self, name), 0.0)
        if self.lambda_w is not None:
            check_number(
                "lambda_w (None: sqrt(latent_dim / feature_dim))",
                self.lambda_w,
                0.0,
                min_open=True,
            )
        check_bool("autoencoder_trains_generator", self.autoencoder_trains_generator)
        check_int("seed", self.seed, minimum=0)
        get_device(self.device)


# ---- the loss terms --------------------------------------------------------------------------
def mu_schedule(step: int, num_steps: int) -> float:
    r""":math:`\mu = \mathrm{clip}(0.2 t - 0.1, 0, 0.05)`, t = step / num_steps (reference code).

    0 up to t = 0.5, then a linear ramp reaching 0.05 at t = 0.75, then 0.05.
    """
    t = step / num_steps
    return min(max(0.2 * t - 0.1, 0.0), 0.05)


def recon_weights(step: int, num_steps: int, schedule: str = "ramp") -> tuple[float, float]:
    r"""(w_real, w_recon) of the critic's loss: (0.95 + mu, 0.05 - mu); mu = 0 if "constant"."""
    check_choice("recon_weight_schedule", schedule, RECON_WEIGHT_SCHEDULES)
    mu = mu_schedule(step, num_steps) if schedule == "ramp" else 0.0
    return 0.95 + mu, 0.05 - mu


def reconstruction_loss(target: Tensor, reconstruction: Tensor) -> Tensor:
    r"""recon = mean over batch and features of :math:`(f(x) - f(G(E(x))))^2`.

    Pass features (the paper and code) or pixels (``reconstruction="pixel"``).
    """
    return ((target - reconstruction) ** 2).mean()


def latent_data_distance(
    recon_features: Tensor, fake_features: Tensor, encoded: Tensor, z: Tensor, lambda_w: float
) -> Tensor:
    r"""reg = :math:`(md_x - md_z)^2`, the latent-data distance constraint (reference code).

    :math:`md_x = \operatorname{mean}(f(G(E(x))) - f(G(z)))` over batch and features,
    :math:`md_z = \lambda_w \operatorname{mean}(E(x) - z)` over batch and latent dimensions.
    """
    md_x = (recon_features - fake_features).mean()
    md_z = lambda_w * (encoded - z).mean()
    return (md_x - md_z) ** 2


def critic_loss(
    real_logits: Tensor,
    recon_logits: Tensor,
    fake_logits: Tensor,
    w_real: float,
    w_recon: float,
) -> Tensor:
    r""":math:`w_{real} BCE(D(x), 1) + w_{recon} BCE(D(G(E(x))), 1) + BCE(D(G(z)), 0)`.

    BCE on logits, each averaged over the batch; the gradient penalty is added separately.
    """
    bce = F.binary_cross_entropy_with_logits
    return (
        w_real * bce(real_logits, torch.ones_like(real_logits))
        + w_recon * bce(recon_logits, torch.ones_like(recon_logits))
        + bce(fake_logits, torch.zeros_like(fake_logits))
    )


def generator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    r""":math:`|\operatorname{mean}\sigma(D(x)) - \operatorname{mean}\sigma(D(G(z)))|`,
    the discriminator-score distance of the paper and the code."""
    return (torch.sigmoid(real_logits).mean() - torch.sigmoid(fake_logits).mean()).abs()


def gradient_penalty(
    critic: DistGANCritic, real: Tensor, fake: Tensor, slope: str = "rms"
) -> Tensor:
    r"""The reference code's gradient penalty (unweighted), mean over samples of (s - 1)^2.

    :math:`\hat x_i = \epsilon_i x_i + (1 - \epsilon_i) G(z)_i` with one
    :math:`\epsilon_i \sim U[0, 1]` per sample (``gan_utils.core.losses.interpolate``);
    :math:`g_i = \nabla_{\hat x} D(\hat x_i)` flattened to n numbers;
    ``slope="rms"``: :math:`s_i = \sqrt{\tfrac1n \sum_j g_{ij}^2} = \lVert g_i \rVert_2 /
    \sqrt n` (the reference code: ``sqrt(reduce_mean(square(gradients)))``);
    ``slope="norm"``: :math:`s_i = \lVert g_i \rVert_2` (the paper's formula, WGAN-GP's).
    The RMS is computed as norm / sqrt(n), which has the same value but a finite gradient
    at g = 0. The input gradient keeps its graph (``create_graph=True``), so the penalty's
    gradient reaches the critic's parameters. ``real`` and ``fake`` are detached: the
    penalty trains the critic only.

    Args:
        critic: a ``DistGANCritic``.
        real, fake: batches of the same shape (B, ...).
        slope: "rms" or "norm".
    """
    check_choice("slope", slope, GP_SLOPES)
    x_hat = interpolate(real.detach(), fake.detach()).requires_grad_(True)
    logits, _ = critic(x_hat)
    (grad,) = torch.autograd.grad(logits.sum(), x_hat, create_graph=True)
    grad = grad.flatten(start_dim=1)  # (B, n)
    slopes = torch.linalg.vector_norm(grad, dim=1)  # (B,)
    if slope == "rms":
        slopes = slopes / math.sqrt(grad.shape[1])
    return ((slopes - 1.0) ** 2).mean()


# ---- the three updates -------------------------------------------------------------------------
def autoencoder_step(
    encoder: nn.Module,
    generator: nn.Module,
    critic: DistGANCritic,
    real: Tensor,
    z: Tensor,
    optimizer: torch.optim.Optimizer,
    config: DistGANConfig,
    lambda_w: float,
) -> dict[str, Tensor]:
    r"""One autoencoder update: minimise :math:`recon + \lambda_r\, reg` over E (and G).

    The optimiser holds E's parameters, and G's when ``config.autoencoder_trains_generator``.
    D is frozen (``requires_grad(critic, False)``): gradients flow through it, it is not
    updated. Returns detached tensors ae_loss, recon, reg (no host sync).
    """
    requires_grad(critic, False)  # D only measures here
    if not config.autoencoder_trains_generator:
        requires_grad(generator, False)  # E only: keep G's gradients out of this update
    try:
        encoded = encoder(real)  # E(x), (B, d)
        recon_x = generator(encoded)  # G(E(x)), shaped like x
        fake_x = generator(z)  # G(z)
        _, real_features = critic(real)  # f(x): a target, no parameter of E or G in it
        _, recon_features = critic(recon_x)  # f(G(E(x)))
        _, fake_features = critic(fake_x)  # f(G(z))
        if config.reconstruction == "feature":
            recon = reconstruction_loss(real_features, recon_features)
        else:
            recon = reconstruction_loss(real, recon_x)
        reg = latent_data_distance(recon_features, fake_features, encoded, z, lambda_w)
        ae_loss = recon + config.lambda_r * reg
        optimizer.zero_grad(set_to_none=True)
        ae_loss.backward()
    finally:
        requires_grad(critic, True)
        requires_grad(generator, True)
    optimizer.step()
    return {"ae_loss": ae_loss.detach(), "recon": recon.detach(), "reg": reg.detach()}


def critic_step(
    encoder: nn.Module,
    generator: nn.Module,
    critic: DistGANCritic,
    real: Tensor,
    z: Tensor,
    optimizer: torch.optim.Optimizer,
    config: DistGANConfig,
    step: int,
) -> dict[str, Tensor]:
    r"""One critic update: minimise :math:`L_D` (module docstring) + :math:`\lambda_p GP` over D.

    ``step`` (0-based) sets t = step / ``config.num_steps`` in the weights. The gradient
    penalty interpolates between x and G(z), as in the reference code.
    """
    w_real, w_recon = recon_weights(step, config.num_steps, config.recon_weight_schedule)
    with torch.no_grad():  # this update trains D only: no graph through E and G
        recon_x = generator(encoder(real))  # G(E(x))
        fake_x = generator(z)  # G(z)
    real_logits, _ = critic(real)
    recon_logits, _ = critic(recon_x)
    fake_logits, _ = critic(fake_x)
    d_loss = critic_loss(real_logits, recon_logits, fake_logits, w_real, w_recon)
    gp = gradient_penalty(critic, real, fake_x, config.gp_slope)
    total = d_loss + config.lambda_p * gp
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    sigmoid = torch.sigmoid
    return {
        "d_loss": d_loss.detach(),
        "gp": gp.detach(),
        "w_real": torch.tensor(w_real, dtype=d_loss.dtype, device=d_loss.device),
        "d_real": sigmoid(real_logits.detach()).mean(),
        "d_recon": sigmoid(recon_logits.detach()).mean(),
        "d_fake": sigmoid(fake_logits.detach()).mean(),
    }


def generator_step(
    generator: nn.Module,
    critic: DistGANCritic,
    real: Tensor,
    z: Tensor,
    optimizer: torch.optim.Optimizer,
) -> dict[str, Tensor]:
    r"""One generator update: minimise :math:`|\operatorname{mean}\sigma(D(x)) -
    \operatorname{mean}\sigma(D(G(z)))|` over G.

    The fakes are not detached (G must get a gradient); D is frozen with
    ``requires_grad(critic, False)`` instead. mean sigma(D(x)) is a constant here, but
    its side of the gap sets the sign of G's gradient.
    """
    requires_grad(critic, False)  # gradients flow through D into G, but D is not updated
    try:
        with torch.no_grad():  # D(x) does not depend on G
            real_logits, _ = critic(real)
        fake_logits, _ = critic(generator(z))
        g_loss = generator_loss(real_logits, fake_logits)
        optimizer.zero_grad(set_to_none=True)
        g_loss.backward()
    finally:
        requires_grad(critic, True)
    optimizer.step()
    return {"g_loss": g_loss.detach()}


# ---- state and one full step -------------------------------------------------------------------
@dataclass
class DistGANState:
    """What callbacks see; the fields lesson-04 callbacks use have ``TrainState``'s names.

    ``critic`` is the plain critic (returns logits); ``feature_critic`` wraps it and also
    returns f(x).
    """

    encoder: nn.Module
    generator: nn.Module
    critic: nn.Module
    feature_critic: DistGANCritic
    ae_optimizer: torch.optim.Optimizer
    g_optimizer: torch.optim.Optimizer
    d_optimizer: torch.optim.Optimizer
    config: DistGANConfig
    history: History
    device: torch.device
    lambda_w: float
    step: int = 0
    stop: bool = False  # set True (or return True from a callback) to end training
    extras: dict = field(default_factory=dict)


def make_state(
    encoder: nn.Module,
    generator: nn.Module,
    critic: nn.Module,
    config: DistGANConfig,
    device: torch.device | None = None,
    lambda_w: float | None = None,
) -> DistGANState:
    """Build the state (three Adam optimisers) for ``dist_gan_step`` / ``train_dist_gan``.

    The autoencoder optimiser holds E's parameters and, when
    ``config.autoencoder_trains_generator``, G's (with its own Adam moments, as in the
    reference code). ``lambda_w`` defaults to ``config.lambda_w`` or, when that is None,
    to sqrt(latent_dim / feature_dim) with feature_dim the feature layer's ``in_features``.
    """
    feature_critic = critic if isinstance(critic, DistGANCritic) else DistGANCritic(critic)
    if lambda_w is None:
        lambda_w = config.lambda_w
    if lambda_w is None:
        layer = feature_critic.feature_layer
        if not isinstance(layer, nn.Linear):
            raise ValueError("lambda_w must be given when the feature layer is not an nn.Linear")
        lambda_w = math.sqrt(config.latent_dim / layer.in_features)
    device = device if device is not None else get_device(config.device)
    betas = tuple(config.betas)
    ae_params = list(encoder.parameters())
    if config.autoencoder_trains_generator:
        ae_params += list(generator.parameters())
    return DistGANState(
        encoder=encoder,
        generator=generator,
        critic=feature_critic.critic,
        feature_critic=feature_critic,
        ae_optimizer=torch.optim.Adam(ae_params, lr=config.lr_ae, betas=betas),
        g_optimizer=torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=betas),
        d_optimizer=torch.optim.Adam(feature_critic.parameters(), lr=config.lr_d, betas=betas),
        config=config,
        history=History(),
        device=device,
        lambda_w=float(lambda_w),
    )


def dist_gan_step(state: DistGANState, data: Tensor | Callable[[int], Tensor]) -> dict[str, Tensor]:
    """One training step at ``state.step``: autoencoder, then critic, then generator update.

    Each update draws its own real batch and its own z (in that order), as the reference
    code does. Does not advance ``state.step``. Returns the detached values to log.
    """
    config, device = state.config, state.device

    def batch() -> tuple[Tensor, Tensor]:  # a fresh real batch x and z ~ p(z) per update
        real = draw_real(data, config.batch_size, device)
        z = sample_latent(config.batch_size, config.latent_dim, config.latent_prior, device)
        return real, z.to(real.dtype)

    encoder, generator, critic = state.encoder, state.generator, state.feature_critic
    real, z = batch()
    out = autoencoder_step(
        encoder, generator, critic, real, z, state.ae_optimizer, config, state.lambda_w
    )
    real, z = batch()
    out |= critic_step(encoder, generator, critic, real, z, state.d_optimizer, config, state.step)
    real, z = batch()
    out |= generator_step(generator, critic, real, z, state.g_optimizer)
    return out


# ---- the loop ------------------------------------------------------------------------------------
def _check_models(state: DistGANState, data) -> int:
    """Run E, G and D once on two samples (eval mode, no RNG use); return the feature size."""
    nets = (state.encoder, state.generator, state.feature_critic)
    for net in nets:
        net.eval()
    try:
        with torch.no_grad():
            real = data(2) if callable(data) else data[:2]
            encoded = state.encoder(real)
            if tuple(encoded.shape) != (real.shape[0], state.config.latent_dim):
                raise ValueError(
                    f"encoder must map a batch of shape {tuple(real.shape)} to "
                    f"({real.shape[0]}, latent_dim={state.config.latent_dim}), "
                    f"got {tuple(encoded.shape)}"
                )
            recon = state.generator(encoded)
            if recon.shape != real.shape:
                raise ValueError(
                    f"generator must map latents to samples shaped like the data "
                    f"{tuple(real.shape)}, got {tuple(recon.shape)}"
                )
            _, features = state.feature_critic(real)
    finally:
        for net in nets:
            net.train()
    return int(features.shape[1])


def _payload(state: DistGANState) -> dict:
    return {
        "step": state.step,
        "encoder": state.encoder.state_dict(),
        "generator": state.generator.state_dict(),
        "critic": state.critic.state_dict(),
        "ae_optimizer": state.ae_optimizer.state_dict(),
        "g_optimizer": state.g_optimizer.state_dict(),
        "d_optimizer": state.d_optimizer.state_dict(),
        "rng": rng_state(),
        "config": asdict(state.config),
        "lambda_w": state.lambda_w,
        "history": state.history.to_list(),
    }


def _restore(state: DistGANState, checkpoint: dict) -> None:
    check_resumable(checkpoint["config"], asdict(state.config), RESUMABLE_CHANGES)
    for name in ("encoder", "generator", "critic", "ae_optimizer", "g_optimizer", "d_optimizer"):
        getattr(state, name).load_state_dict(checkpoint[name])
    state.history = History(checkpoint["history"])
    state.step = int(checkpoint["step"])
    state.lambda_w = float(checkpoint["lambda_w"])
    set_rng_state(checkpoint["rng"])


def train_dist_gan(
    encoder: nn.Module,
    generator: nn.Module,
    critic: nn.Module,
    data: Tensor | Callable[[int], Tensor],
    config: DistGANConfig,
    callbacks: Sequence[Callback] = (),
    checkpoint_path: str | Path | None = None,
    resume_from: str | Path | None = None,
) -> History:
    """Train Dist-GAN (module docstring); the three networks are updated in place.

    Args:
        encoder: maps samples (B, ...) to latents (B, latent_dim).
        generator: maps latents (B, latent_dim) to samples shaped like ``data``'s rows.
        critic: a critic returning logits (wrapped in ``DistGANCritic`` to get f(x)), or a
            ``DistGANCritic``.
        data: a tensor (N, ...) of real samples, or ``sample_real(batch_size) -> tensor``
            that uses torch's global RNG (for exact resume).
        config: the run's settings; see ``DistGANConfig``.
        callbacks: as in ``gan_utils.core.train.train``: functions of the state (a
            ``DistGANState``), called every ``callback.every`` steps (``every``; default
            ``log_every``); returning True stops training.
        checkpoint_path: where to write checkpoints (every ``checkpoint_every`` steps and
            at the end); required if ``checkpoint_every`` > 0. A checkpoint holds
            encoder, generator, critic, the three optimisers, RNG states, config, lambda_w
            and history.
        resume_from: a checkpoint to continue from, with the same config except
            ``RESUMABLE_CHANGES`` (``num_steps`` sets the weight schedule and may not change).

    Returns:
        The history: every ``log_every`` steps the interval means of ae_loss, recon, reg,
        d_loss, gp, g_loss, w_real, d_real, d_recon, d_fake (sigmoid means), plus whatever
        callbacks logged. ``history.extras`` holds seconds, steps and lambda_w.

    Raises:
        ValueError: a bad config field or mismatched networks, naming them.
        DivergenceError: a loss became NaN/inf; the networks are reset to the last good
            checkpoint when there is one.
    """
    if not isinstance(config, DistGANConfig):
        raise TypeError(f"config must be a DistGANConfig, got {type(config).__name__}")
    config.validate()
    if config.checkpoint_every and checkpoint_path is None:
        raise ValueError("checkpoint_path is required when checkpoint_every > 0")
    device = get_device(config.device)
    for net in (encoder, generator, critic):
        net.to(device).train()
    data = check_data(data, device)
    state = make_state(encoder, generator, critic, config, device, lambda_w=1.0)
    feature_dim = _check_models(state, data)  # before seeding: its RNG use does not count
    state.lambda_w = (
        float(config.lambda_w)
        if config.lambda_w is not None
        else math.sqrt(config.latent_dim / feature_dim)  # distgan_mnist.py: sqrt(d / D_f)
    )
    if resume_from is None:
        set_seed(config.seed)
    else:
        _restore(state, load_checkpoint(resume_from, map_location=device))

    start_step = state.step
    seconds = run_steps(
        state,
        lambda: dist_gan_step(state, data),
        config,
        callbacks,
        checkpoint_path,
        _payload,
        {"encoder": state.encoder, "generator": state.generator, "critic": state.critic},
        resume_from=resume_from,
        desc="dist_gan",
        postfix={"ae": "ae_loss", "d": "d_loss"},
    )
    state.history.extras = {
        "seconds": seconds,
        "steps": state.step - start_step,
        "lambda_w": state.lambda_w,
        "feature_dim": feature_dim,
    }
    return state.history


# ---- input checks ----------------------------------------------------------------------------
def check_betas(betas, name: str = "betas") -> tuple[float, float]:
    """Adam's betas: a pair (tuple or list) of numbers in [0, 1); returns them as a tuple."""
    if isinstance(betas, (str, bytes)) or not isinstance(betas, (tuple, list)):
        raise TypeError(
            f"{name} must be two numbers in [0, 1), got {betas!r} ({type(betas).__name__})"
        )
    if len(betas) != 2:
        raise ValueError(f"{name} must be two numbers in [0, 1), got {betas!r}")
    return tuple(
        check_number(f"{name}[{i}]", b, 0.0, 1.0, max_open=True) for i, b in enumerate(betas)
    )


__all__ = [
    "GP_SLOPES",
    "RECONSTRUCTIONS",
    "RECON_WEIGHT_SCHEDULES",
    "RESUMABLE_CHANGES",
    "ConvEncoder",
    "DistGANConfig",
    "DistGANCritic",
    "DistGANState",
    "MLPEncoder",
    "autoencoder_step",
    "check_betas",
    "conv_encoder",
    "critic_loss",
    "critic_step",
    "dist_gan_step",
    "generator_loss",
    "generator_step",
    "gradient_penalty",
    "latent_data_distance",
    "make_state",
    "mlp_encoder",
    "mu_schedule",
    "recon_weights",
    "reconstruction_loss",
    "train_dist_gan",
]
