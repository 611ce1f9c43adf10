r"""Diagnostics for small GANs (lesson 01): distances, saturation, dead units, 1-D densities.

Everything here measures a model or a set of samples; nothing trains.

Distances between 1-D distributions
    * ``wasserstein_1d``: the earth mover's distance between two sample sets,
      :math:`W_1(P, Q) = \int |F_P(t) - F_Q(t)|\,dt` (``scipy.stats.wasserstein_distance``).
    * ``js_divergence``: :math:`\mathrm{JSD}(p, q) = \tfrac12 \mathrm{KL}(p \| m) +
      \tfrac12 \mathrm{KL}(q \| m)`, :math:`m = (p + q)/2`, natural log (so
      :math:`0 \le \mathrm{JSD} \le \log 2`), by quadrature.
    * ``optimal_discriminator`` and ``minimax_value``: for a fixed generator the best
      discriminator is :math:`D^*(x) = p_r(x) / (p_r(x) + p_g(x))`, and the minimax value
      :math:`V(G, D) = E_{p_r} \log D(x) + E_{p_g} \log(1 - D(x))` at :math:`D^*` equals
      :math:`-\log 4 + 2\,\mathrm{JSD}(p_r, p_g)` (Goodfellow et al. 2014, Theorem 1).

Saturation: how much gradient reaches the generator
    With logits :math:`l = D(G(z))`, the minimax generator loss
    :math:`\log(1 - \sigma(l))` has :math:`\partial/\partial l = -\sigma(l)`, which vanishes
    when the critic rejects the fakes (:math:`\sigma(l) \to 0`); the non-saturating loss
    :math:`-\log \sigma(l)` has :math:`\partial/\partial l = -(1 - \sigma(l)) \to -1`.
    Per sample the two gradients differ by the factor :math:`(1 - \sigma(l)) / \sigma(l)`.
    ``generator_gradient_norm`` and ``sample_gradient_norm`` measure it.

Sparse gradients: dead rectifier units
    A hidden unit whose pre-activation :math:`a_j(x) \le 0` for every input of a batch is
    *dead* on that batch: a ReLU passes no gradient through it, so neither its weights
    nor anything below it learn from that unit; a LeakyReLU still passes slope
    :math:`\alpha`. ``dead_unit_share`` and ``zero_activation_share`` count them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from scipy import integrate, stats
from torch import Tensor, nn

from ..core.checks import check_int, check_number
from ..core.losses import get_loss

RECTIFIERS: tuple[type[nn.Module], ...] = (nn.ReLU, nn.LeakyReLU)
Density = Callable[[np.ndarray], np.ndarray]
_D_LOW, _D_HIGH = 1e-300, float(np.nextafter(1.0, 0.0))


# ---- samples and densities ---------------------------------------------------------------
def as_numpy_1d(
    samples: Tensor | np.ndarray | Sequence[float], name: str = "samples"
) -> np.ndarray:
    """Samples of a 1-D distribution as a flat float64 array; shapes (n,) and (n, 1) accepted."""
    if isinstance(samples, Tensor):
        samples = samples.detach().cpu().numpy()
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1 or array.size == 0:
        raise ValueError(
            f"{name} must be a non-empty array of shape (n,) or (n, 1), got shape {array.shape}"
        )
    return array


def wasserstein_1d(samples_a, samples_b) -> float:
    r"""W1 between the empirical distributions of two 1-D sample sets.

    .. math:: W_1(P, Q) = \int_{-\infty}^{\infty} |F_P(t) - F_Q(t)|\, dt

    For equal sample sizes this is the mean absolute difference of the sorted samples.
    Non-finite samples (a diverged generator) give ``inf``.
    """
    a = as_numpy_1d(samples_a, "samples_a")
    b = as_numpy_1d(samples_b, "samples_b")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf
    return float(stats.wasserstein_distance(a, b))


def histogram_density(
    samples, bins: int = 60, value_range: tuple[float, float] = (-5.0, 5.0)
) -> tuple[np.ndarray, np.ndarray]:
    """A normalised histogram: (bin centres, density) with sum(density * bin width) = share
    of the samples inside ``value_range``."""
    bins = check_int("bins", bins, minimum=1)
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise TypeError(f"value_range must be a pair (low, high), got {value_range!r}")
    low, high = _check_interval(*value_range, names=("value_range[0]", "value_range[1]"))
    x = as_numpy_1d(samples)
    counts, edges = np.histogram(x, bins=bins, range=(low, high))
    width = edges[1] - edges[0]
    density = counts / (x.size * width)
    return 0.5 * (edges[:-1] + edges[1:]), density


def mode_shares(samples, centres) -> np.ndarray:
    """Share of 1-D samples whose nearest centre is each of ``centres`` (sums to 1)."""
    x = as_numpy_1d(samples)
    c = as_numpy_1d(centres, "centres")
    nearest = np.abs(x[:, None] - c[None, :]).argmin(axis=1)  # (n,)
    return np.bincount(nearest, minlength=c.size) / x.size


@torch.no_grad()
def critic_probability(critic: nn.Module, points) -> np.ndarray:
    """sigma(D(x)): the critic's probability that x is real, at 1-D ``points`` (shape (n,))."""
    x = torch.as_tensor(as_numpy_1d(points, "points"), dtype=torch.float32)
    device = next(critic.parameters()).device
    logits = critic(x[:, None].to(device)).reshape(-1)  # (n, 1) -> (n,)
    return torch.sigmoid(logits).cpu().numpy()


@torch.no_grad()
def snapshot_1d(
    generator: nn.Module, critic: nn.Module, fixed_z: Tensor, grid, target_samples
) -> dict[str, object]:
    """What a 1-D run looks like now: generated samples from ``fixed_z``, sigma(D) on
    ``grid`` and W1 to ``target_samples``. Uses no random numbers (safe inside training)."""
    samples = generator(fixed_z).reshape(-1).cpu().numpy()
    return {
        "samples": samples,
        "d_prob": critic_probability(critic, grid),
        "w1": wasserstein_1d(samples, target_samples),
    }


# ---- divergences by quadrature -----------------------------------------------------------
def _check_interval(
    lower: float, upper: float, names: tuple[str, str] = ("lower", "upper")
) -> tuple[float, float]:
    """(lower, upper) as floats: two numbers (not NaN; +-inf allowed) with upper > lower."""
    lower = check_number(names[0], lower, finite=False)
    upper = check_number(names[1], upper, minimum=lower, min_open=True, finite=False)
    return lower, upper


def _xlogy_ratio(p: float, q: float) -> float:
    return 0.0 if p <= 0.0 else p * math.log(p / q)


def js_divergence(
    pdf_p: Density, pdf_q: Density, lower: float, upper: float, points: Sequence[float] = ()
) -> float:
    r"""Jensen-Shannon divergence of two 1-D densities on [lower, upper] (natural log).

    .. math:: \mathrm{JSD}(p, q) = \tfrac12 \int p \log\frac{2p}{p+q}
              + \tfrac12 \int q \log\frac{2q}{p+q}

    ``points`` are places where the integrand changes fast (e.g. the modes), passed to
    ``scipy.integrate.quad``.
    """
    lower, upper = _check_interval(lower, upper)

    def integrand(x: float) -> float:
        p, q = float(pdf_p(np.array([x]))[0]), float(pdf_q(np.array([x]))[0])
        m = 0.5 * (p + q)
        return 0.5 * _xlogy_ratio(p, m) + 0.5 * _xlogy_ratio(q, m) if m > 0 else 0.0

    value, _ = integrate.quad(integrand, lower, upper, points=list(points) or None, limit=400)
    return float(value)


def kl_divergence(
    pdf_p: Density, pdf_q: Density, lower: float, upper: float, points: Sequence[float] = ()
) -> float:
    r"""KL(p || q) = \int p \log(p / q) of two 1-D densities on [lower, upper] (natural log),
    by quadrature; ``inf`` if q vanishes where p does not."""
    lower, upper = _check_interval(lower, upper)

    def integrand(x: float) -> float:
        p, q = float(pdf_p(np.array([x]))[0]), float(pdf_q(np.array([x]))[0])
        if p <= 0.0:
            return 0.0
        return math.inf if q <= 0.0 else p * math.log(p / q)

    value, _ = integrate.quad(integrand, lower, upper, points=list(points) or None, limit=400)
    return float(value)


def expectation_1d(
    pdf: Density,
    function: Callable[[np.ndarray], np.ndarray],
    lower: float,
    upper: float,
    points: Sequence[float] = (),
) -> float:
    r"""E_p[f(x)] = \int p(x) f(x) dx on [lower, upper], by quadrature (terms with p = 0
    count as 0)."""
    lower, upper = _check_interval(lower, upper)

    def integrand(x: float) -> float:
        xs = np.array([x])
        p = float(pdf(xs)[0])
        return p * float(function(xs)[0]) if p > 0 else 0.0

    value, _ = integrate.quad(integrand, lower, upper, points=list(points) or None, limit=400)
    return float(value)


def optimal_discriminator(pdf_real: Density, pdf_fake: Density) -> Density:
    r"""D*(x) = p_r(x) / (p_r(x) + p_g(x)), the best discriminator for a fixed generator
    (1/2 where both densities vanish)."""

    def d_star(x: np.ndarray) -> np.ndarray:
        p, q = pdf_real(x), pdf_fake(x)
        total = p + q
        return np.where(total > 0, p / np.where(total > 0, total, 1.0), 0.5)

    return d_star


def minimax_value(
    pdf_real: Density,
    pdf_fake: Density,
    discriminator: Density,
    lower: float,
    upper: float,
    points: Sequence[float] = (),
) -> float:
    r"""V(G, D) = E_{p_r} log D(x) + E_{p_g} log(1 - D(x)), by quadrature on [lower, upper].

    D is clipped to [1e-300, 1 - 2^-53] so that a D* which rounds to 0 or 1 far in the
    tails (where one density is below 1e-16 times the other) does not give log 0; the
    clipped terms carry a negligible weight there.
    """
    lower, upper = _check_interval(lower, upper)

    def integrand(x: float) -> float:
        xs = np.array([x])
        p, q, d = float(pdf_real(xs)[0]), float(pdf_fake(xs)[0]), float(discriminator(xs)[0])
        d = min(max(d, _D_LOW), _D_HIGH)  # D* = p/(p+q) rounds to 1 where q << p
        real_term = p * math.log(d) if p > 0 else 0.0
        fake_term = q * math.log1p(-d) if q > 0 else 0.0
        return real_term + fake_term

    value, _ = integrate.quad(integrand, lower, upper, points=list(points) or None, limit=400)
    return float(value)


# ---- gradients reaching the generator ----------------------------------------------------
def _generator_loss(loss: str) -> Callable[[Tensor], Tensor]:
    return get_loss(loss).generator


def generator_gradient_norm(
    generator: nn.Module, critic: nn.Module, z: Tensor, loss: str = "non_saturating"
) -> float:
    r"""||dL_G/d theta_G||_2: the norm of the generator loss's gradient over all of G's
    parameters (concatenated), for the batch of latents ``z``.

    ``loss`` names an entry of ``gan_utils.core.losses.LOSSES`` (its generator part), e.g.
    "minimax" (:math:`E \log(1 - \sigma(D(G(z))))`) or "non_saturating"
    (:math:`-E \log \sigma(D(G(z)))`). Neither model's ``.grad`` is touched.
    """
    generator_loss = _generator_loss(loss)
    params = [p for p in generator.parameters() if p.requires_grad]
    if not params:
        raise ValueError("generator must have trainable parameters")
    logits = critic(generator(z)).reshape(z.shape[0])  # (B, 1) -> (B,)
    grads = torch.autograd.grad(generator_loss(logits), params)
    return float(torch.sqrt(sum((g.double() ** 2).sum() for g in grads)))


def sample_gradient_norm(
    generator: nn.Module, critic: nn.Module, z: Tensor, loss: str = "non_saturating"
) -> float:
    r"""Mean over the batch of |d l_i / d x_i|, x_i = G(z_i): the gradient each generated
    sample receives from its own loss term l_i = loss(D(x_i)) (batch mean removed).

    For the minimax loss it is :math:`\sigma(D(x_i)) |\nabla_x D(x_i)|`, for the
    non-saturating loss :math:`(1 - \sigma(D(x_i))) |\nabla_x D(x_i)|`.
    """
    generator_loss = _generator_loss(loss)
    with torch.no_grad():
        fake = generator(z)
    fake = fake.detach().requires_grad_(True)
    logits = critic(fake).reshape(z.shape[0])  # (B,)
    # loss(...) is a batch mean; times B it is the sum of per-sample terms, each of which
    # depends only on its own sample, so the gradient row i is d l_i / d x_i.
    (grad,) = torch.autograd.grad(generator_loss(logits) * z.shape[0], fake)
    return float(grad.flatten(start_dim=1).norm(dim=1).mean())


def critic_gradient_norm(critic: nn.Module, points: Tensor) -> float:
    r"""Mean over ``points`` of ||grad_x D(x)||_2, the critic's slope (1 for a critic that
    satisfies the gradient penalty's target; a W1 critic is 1-Lipschitz)."""
    x = points.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x)
    return float(grad.flatten(start_dim=1).norm(dim=1).mean())


# ---- dead units ----------------------------------------------------------------------------
@torch.no_grad()
def rectifier_preactivations(model: nn.Module, inputs: Tensor) -> list[Tensor]:
    """The inputs of every ReLU/LeakyReLU module of ``model`` for a batch, each (B, units)."""
    records: list[Tensor] = []
    hooks = [
        module.register_forward_pre_hook(lambda _m, args: records.append(args[0].detach().clone()))
        for module in model.modules()
        if isinstance(module, RECTIFIERS)
    ]
    if not hooks:
        raise ValueError("model has no ReLU or LeakyReLU modules to inspect")
    try:
        model(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return [r.flatten(start_dim=1) for r in records]  # (B, units) per layer


def dead_unit_share(model: nn.Module, inputs: Tensor) -> float:
    r"""Share of rectifier units whose pre-activation is <= 0 for every input of the batch.

    .. math:: \frac{1}{J} \sum_j \mathbf{1}\left[\max_{x \in \text{batch}} a_j(x) \le 0\right]

    over all J hidden units of all ReLU/LeakyReLU layers. A dead ReLU unit passes no
    gradient for any of these inputs; a LeakyReLU unit in the same state still passes
    slope alpha.
    """
    layers = rectifier_preactivations(model, inputs)
    dead = sum(int((a.max(dim=0).values <= 0).sum()) for a in layers)
    total = sum(a.shape[1] for a in layers)
    return dead / total


def zero_activation_share(model: nn.Module, inputs: Tensor) -> float:
    r"""Share of (input, unit) pairs with pre-activation <= 0: for ReLU, the share of
    local gradients that are exactly zero (gradient sparsity)."""
    layers = rectifier_preactivations(model, inputs)
    zeros = sum(int((a <= 0).sum()) for a in layers)
    total = sum(a.numel() for a in layers)
    return zeros / total


__all__ = [
    "critic_gradient_norm",
    "critic_probability",
    "dead_unit_share",
    "generator_gradient_norm",
    "expectation_1d",
    "histogram_density",
    "js_divergence",
    "kl_divergence",
    "minimax_value",
    "mode_shares",
    "optimal_discriminator",
    "rectifier_preactivations",
    "sample_gradient_norm",
    "snapshot_1d",
    "wasserstein_1d",
    "zero_activation_share",
]
