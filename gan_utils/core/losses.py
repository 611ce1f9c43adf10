r"""GAN losses as small pure functions of the critic's logits (lessons 01 and 02).

Every loss works on raw critic outputs (logits), never on sigmoid probabilities, so
``log D`` and ``log(1 - D)`` are computed stably with softplus:
:math:`\log \sigma(t) = -\mathrm{softplus}(-t)` and
:math:`\log(1 - \sigma(t)) = -\mathrm{softplus}(t)`.

Notation: ``real_logits`` = :math:`D(x)`, ``fake_logits`` = :math:`D(G(z))` before any
sigmoid; :math:`\sigma` is the logistic sigmoid. All losses are *minimised*.

=================  ==========================================================  ====================================
name               critic loss                                                 generator loss
=================  ==========================================================  ====================================
minimax            :math:`-E\log\sigma(D(x)) - E\log(1-\sigma(D(G(z))))`        :math:`E\log(1-\sigma(D(G(z))))`
non_saturating     same as minimax                                             :math:`-E\log\sigma(D(G(z)))`
least_squares      :math:`\tfrac12 E(D(x)-1)^2 + \tfrac12 E D(G(z))^2`          :math:`\tfrac12 E(D(G(z))-1)^2`
hinge              :math:`E\max(0, 1-D(x)) + E\max(0, 1+D(G(z)))`               :math:`-E D(G(z))`
wasserstein        :math:`E D(G(z)) - E D(x)`                                   :math:`-E D(G(z))`
=================  ==========================================================  ====================================

Sources: Goodfellow et al. 2014 (minimax, non-saturating); Mao et al. 2017 (LSGAN with
a=0, b=1, c=1); Lim & Ye 2017 / Miyato et al. 2018 (hinge); Arjovsky et al. 2017
(Wasserstein); Gulrajani et al. 2017 (gradient penalty).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .checks import check_choice, check_number


@dataclass(frozen=True)
class GANLoss:
    """A named pair of loss functions: ``critic(real_logits, fake_logits)`` and
    ``generator(fake_logits)``, both returning a scalar to minimise."""

    name: str
    critic: Callable[[Tensor, Tensor], Tensor]
    generator: Callable[[Tensor], Tensor]
    description: str


def _check_logits(name: str, value) -> Tensor:
    """Critic outputs: a floating-point tensor holding at least one logit (TypeError for
    another type or dtype, ValueError when empty), so a loss never returns a NaN mean of
    nothing."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got dtype {value.dtype}")
    if value.numel() == 0:
        raise ValueError(f"{name} must hold at least one logit, got shape {tuple(value.shape)}")
    return value


def _check_batch(name: str, value) -> Tensor:
    """A batch of samples: a floating-point tensor of shape (B, ...) with B >= 1."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got dtype {value.dtype}")
    if value.dim() == 0 or value.shape[0] < 1:
        raise ValueError(
            f"{name} must be a batch of shape (B, ...) with B >= 1, got {tuple(value.shape)}"
        )
    return value


# ---- the standard (Jensen-Shannon) game --------------------------------------------------
def bce_critic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E log sigma(D(x)) - E log(1 - sigma(D(G(z)))) = E softplus(-D(x)) + E softplus(D(G(z)))."""
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_generator_loss(fake_logits: Tensor) -> Tensor:
    """E log(1 - sigma(D(G(z)))) = -E softplus(D(G(z))): saturates when D rejects fakes."""
    _check_logits("fake_logits", fake_logits)
    return -F.softplus(fake_logits).mean()


def non_saturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E log sigma(D(G(z))) = E softplus(-D(G(z))): strong gradients when D rejects fakes."""
    _check_logits("fake_logits", fake_logits)
    return F.softplus(-fake_logits).mean()


# ---- least squares (LSGAN, a=0 for fakes, b=1 for reals, c=1 the generator's target) ----
def least_squares_critic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """1/2 E (D(x) - b)^2 + 1/2 E (D(G(z)) - a)^2 with a = 0, b = 1."""
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return 0.5 * ((real_logits - 1.0) ** 2).mean() + 0.5 * (fake_logits**2).mean()


def least_squares_generator_loss(fake_logits: Tensor) -> Tensor:
    """1/2 E (D(G(z)) - c)^2 with c = 1."""
    _check_logits("fake_logits", fake_logits)
    return 0.5 * ((fake_logits - 1.0) ** 2).mean()


# ---- hinge ---------------------------------------------------------------------------------
def hinge_critic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))."""
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


# ---- Wasserstein ---------------------------------------------------------------------------
def wasserstein_critic_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E D(G(z)) - E D(x): minimising it maximises the critic's estimate of W1."""
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return fake_logits.mean() - real_logits.mean()


def critic_score_generator_loss(fake_logits: Tensor) -> Tensor:
    """-E D(G(z)): the generator raises the critic's score of its samples (hinge, WGAN)."""
    _check_logits("fake_logits", fake_logits)
    return -fake_logits.mean()


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss(
        "minimax",
        bce_critic_loss,
        minimax_generator_loss,
        "Goodfellow's original game; G minimises log(1 - D(G(z))).",
    ),
    "non_saturating": GANLoss(
        "non_saturating",
        bce_critic_loss,
        non_saturating_generator_loss,
        "Same critic; G maximises log D(G(z)) instead, which does not saturate.",
    ),
    "least_squares": GANLoss(
        "least_squares",
        least_squares_critic_loss,
        least_squares_generator_loss,
        "LSGAN (a=0, b=1, c=1): squared distance of the critic's output to the targets.",
    ),
    "hinge": GANLoss(
        "hinge",
        hinge_critic_loss,
        critic_score_generator_loss,
        "Hinge critic (margin 1); G raises the critic's score.",
    ),
    "wasserstein": GANLoss(
        "wasserstein",
        wasserstein_critic_loss,
        critic_score_generator_loss,
        "WGAN: critic estimates W1; needs a Lipschitz constraint (clip, SN or GP).",
    ),
}


def get_loss(name: str) -> GANLoss:
    """Look a loss up by name; an unknown name raises a ValueError listing the known ones
    (a value that is not a string: a TypeError)."""
    return LOSSES[check_choice("loss", name, LOSSES)]


def interpolate(real: Tensor, fake: Tensor) -> Tensor:
    """x_hat = eps * x + (1 - eps) * G(z), one eps ~ U[0, 1] per sample (not per pixel)."""
    _check_batch("real", real)
    _check_batch("fake", fake)
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {tuple(real.shape)} and "
            f"{tuple(fake.shape)}"
        )
    eps_shape = (real.shape[0],) + (1,) * (real.dim() - 1)  # (B, 1, ..., 1)
    eps = torch.rand(eps_shape, device=real.device, dtype=real.dtype)
    return eps * real + (1.0 - eps) * fake


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor, weight: float = 10.0) -> Tensor:
    r"""Two-sided gradient penalty of WGAN-GP (Gulrajani et al. 2017).

    .. math:: \lambda \, E_{\hat x} \left( \lVert \nabla_{\hat x} D(\hat x) \rVert_2 - 1 \right)^2,
              \quad \hat x = \epsilon x + (1 - \epsilon) G(z),\ \epsilon \sim U[0,1]

    with one :math:`\epsilon` per sample. The graph is kept (``create_graph=True``) so the
    penalty's gradient reaches the critic's parameters. ``fake`` is detached here: the
    penalty trains the critic only.

    Args:
        critic: maps a batch shaped like ``real`` to logits of shape (B,) or (B, 1).
        real: a batch of real samples, shape (B, ...).
        fake: a batch of generated samples, same shape.
        weight: lambda (10 in the paper), a finite number >= 0.
    """
    if not callable(critic):
        raise TypeError(f"critic must be a callable module, got {type(critic).__name__}")
    _check_batch("real", real)
    _check_batch("fake", fake)
    weight = check_number("weight", weight, minimum=0)
    x_hat = interpolate(real.detach(), fake.detach()).requires_grad_(True)
    scores = critic(x_hat)
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    grad_norm = grad.flatten(start_dim=1).norm(2, dim=1)  # (B,)
    return weight * ((grad_norm - 1.0) ** 2).mean()
