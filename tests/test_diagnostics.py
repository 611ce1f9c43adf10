"""gan_utils.toy.diagnostics against closed forms, hand-built networks and scipy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.spatial.distance import jensenshannon
from torch import nn

from gan_utils.toy import diagnostics as dg


def normal_pdf(mean: float, std: float):
    return lambda x: stats.norm.pdf(x, mean, std)


def linear(in_features: int, out_features: int, weight, bias) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=torch.float32).reshape(out_features, -1))
        layer.bias.copy_(torch.as_tensor(bias, dtype=torch.float32).reshape(out_features))
    return layer


# ---- W1 of samples -----------------------------------------------------------------------
@pytest.mark.parametrize("shift", [-3.0, 0.25, 7.5])
def test_wasserstein_of_a_shifted_sample_is_the_shift(shift):
    x = np.random.default_rng(0).normal(size=500)
    assert dg.wasserstein_1d(x, x + shift) == pytest.approx(abs(shift), abs=1e-9)


def test_wasserstein_matches_closed_form_for_uniforms():
    # W1(U[0,1], U[0,2]) = int |F1 - F2| = 1/4 + 1/4; the quantile grids make it exact.
    n = 1000
    q = (np.arange(n) + 0.5) / n
    assert dg.wasserstein_1d(q, 2 * q) == pytest.approx(0.5, abs=1e-12)


def test_wasserstein_accepts_tensors_of_shape_n_by_1_and_flags_divergence():
    a = torch.zeros(10, 1)
    assert dg.wasserstein_1d(a, a + 2) == pytest.approx(2.0)
    assert dg.wasserstein_1d(a, torch.full((10, 1), float("nan"))) == math.inf
    with pytest.raises(ValueError, match="samples_a"):
        dg.wasserstein_1d(torch.zeros(4, 2), a)


# ---- densities ---------------------------------------------------------------------------
def test_histogram_density_of_uniform_quantiles_is_flat():
    q = (np.arange(1000) + 0.5) / 1000
    centres, density = dg.histogram_density(q, bins=10, value_range=(0.0, 1.0))
    np.testing.assert_allclose(centres, np.arange(10) / 10 + 0.05)
    np.testing.assert_allclose(density, np.ones(10))
    with pytest.raises(ValueError, match="bins"):
        dg.histogram_density(q, bins=0)
    with pytest.raises(ValueError, match="value_range"):
        dg.histogram_density(q, value_range=(1.0, 0.0))
    with pytest.raises(TypeError, match="bins"):
        dg.histogram_density(q, bins=2.5)
    with pytest.raises(TypeError, match="value_range"):
        dg.histogram_density(q, value_range=5.0)


def test_mode_shares_on_hand_made_samples():
    shares = dg.mode_shares([-2.1, -1.9, -0.1, 2.0], [-2.0, 2.0])
    np.testing.assert_allclose(shares, [0.75, 0.25])


# ---- divergences -----------------------------------------------------------------------
def test_kl_divergence_of_gaussians_matches_closed_form():
    m1, s1, m2, s2 = 0.3, 0.8, -0.5, 1.3
    closed = math.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5
    got = dg.kl_divergence(normal_pdf(m1, s1), normal_pdf(m2, s2), -12, 12)
    assert got == pytest.approx(closed, rel=1e-7)


def test_js_divergence_limits_and_scipy_reference():
    p = normal_pdf(0.0, 1.0)
    assert dg.js_divergence(p, p, -10, 10) == pytest.approx(0.0, abs=1e-12)
    u1 = lambda x: ((x >= 0) & (x <= 1)).astype(float)  # noqa: E731
    u2 = lambda x: ((x >= 2) & (x <= 3)).astype(float)  # noqa: E731
    assert dg.js_divergence(u1, u2, -1, 4, points=[0, 1, 2, 3]) == pytest.approx(math.log(2))
    # scipy's jensenshannon returns sqrt(JSD) for discrete distributions; a fine grid
    # approximates the integral.
    q = normal_pdf(1.5, 0.7)
    grid = np.linspace(-10, 10, 200_001)
    reference = jensenshannon(p(grid), q(grid)) ** 2
    assert dg.js_divergence(p, q, -10, 10) == pytest.approx(reference, rel=1e-6)
    with pytest.raises(ValueError, match="upper"):
        dg.js_divergence(p, q, 1, 0)
    with pytest.raises(TypeError, match="lower"):
        dg.js_divergence(p, q, "-10", 10)
    with pytest.raises(ValueError, match="upper"):
        dg.kl_divergence(p, q, 0, float("nan"))


def test_minimax_value_at_optimal_discriminator_is_minus_log4_plus_2jsd():
    p_real, p_fake = normal_pdf(0.0, 1.0), normal_pdf(1.0, 0.5)
    d_star = dg.optimal_discriminator(p_real, p_fake)
    value = dg.minimax_value(p_real, p_fake, d_star, -10, 10)
    grid = np.linspace(-10, 10, 200_001)
    jsd_reference = jensenshannon(p_real(grid), p_fake(grid)) ** 2
    assert value == pytest.approx(-math.log(4) + 2 * jsd_reference, rel=1e-6)
    # any other discriminator does worse; equal densities give D* = 1/2 and V = -log 4
    half = lambda x: np.full_like(x, 0.5)  # noqa: E731
    assert dg.minimax_value(p_real, p_fake, half, -10, 10) < value
    assert dg.minimax_value(p_real, p_real, half, -10, 10) == pytest.approx(-math.log(4))
    np.testing.assert_allclose(dg.optimal_discriminator(p_real, p_real)(grid[::1000]), 0.5)


def test_expectation_1d_of_the_second_moment():
    assert dg.expectation_1d(normal_pdf(0, 2), lambda x: x**2, -30, 30) == pytest.approx(4.0)


# ---- gradients reaching G ------------------------------------------------------------------
@pytest.fixture
def linear_pair():
    """G(z) = a z + b and D(x) = w x + c with known numbers."""
    a, b, w, c = 0.5, -1.0, 2.0, -3.0
    generator = linear(1, 1, [a], [b])
    critic = linear(1, 1, [w], [c])
    z = torch.linspace(-1, 1, 7)[:, None]  # (7, 1)
    return generator, critic, z, (a, b, w, c)


@pytest.mark.parametrize("loss", ["minimax", "non_saturating"])
def test_generator_gradient_norm_matches_closed_form(linear_pair, loss):
    generator, critic, z, (a, b, w, c) = linear_pair
    zz = z.numpy().ravel().astype(np.float64)
    logits = w * (a * zz + b) + c
    sig = 1 / (1 + np.exp(-logits))
    # d/dl of log(1 - sigma(l)) is -sigma(l); of -log sigma(l) is -(1 - sigma(l))
    weight = sig if loss == "minimax" else 1 - sig
    grad_a = -np.mean(weight * w * zz)
    grad_b = -np.mean(weight * w)
    expected = math.hypot(grad_a, grad_b)
    assert dg.generator_gradient_norm(generator, critic, z, loss) == pytest.approx(
        expected, rel=1e-5
    )
    per_sample = np.mean(weight * abs(w))
    assert dg.sample_gradient_norm(generator, critic, z, loss) == pytest.approx(
        per_sample, rel=1e-5
    )
    assert generator.weight.grad is None and critic.weight.grad is None


def test_saturation_ratio_is_one_over_d_when_the_critic_rejects_fakes(linear_pair):
    generator, critic, _, _ = linear_pair
    z = torch.zeros(5, 1)  # every fake at x = b = -1: logit w*b + c = -5
    ratio = dg.sample_gradient_norm(generator, critic, z, "non_saturating") / (
        dg.sample_gradient_norm(generator, critic, z, "minimax")
    )
    d = 1 / (1 + math.exp(5.0))
    assert ratio == pytest.approx((1 - d) / d, rel=1e-4)


def test_critic_gradient_norm_of_a_linear_critic_is_the_weight_norm():
    critic = linear(3, 1, [[1.0, -2.0, 2.0]], [0.5])
    assert dg.critic_gradient_norm(critic, torch.randn(11, 3)) == pytest.approx(3.0)


def test_critic_probability_is_the_sigmoid_of_the_logit():
    critic = linear(1, 1, [2.0], [0.0])
    x = np.array([-1.0, 0.0, 0.5])
    np.testing.assert_allclose(
        dg.critic_probability(critic, x), 1 / (1 + np.exp(-2 * x)), rtol=1e-6
    )


# ---- dead units -------------------------------------------------------------------------
def hand_built(activation: nn.Module) -> nn.Sequential:
    """Pre-activations of the 4 hidden units: x, -x, -1, 1."""
    return nn.Sequential(
        linear(1, 4, [1.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 1.0]),
        activation,
        linear(4, 1, [1.0, 1.0, 1.0, 1.0], [0.0]),
    )


@pytest.mark.parametrize("activation", [nn.ReLU(), nn.LeakyReLU(0.2)])
def test_dead_unit_share_on_a_hand_built_network(activation):
    model = hand_built(activation)
    positive = torch.tensor([[0.5], [1.0]])  # units 1 (-x) and 2 (-1) never fire
    assert dg.dead_unit_share(model, positive) == 0.5
    assert dg.zero_activation_share(model, positive) == 0.5
    both_signs = torch.tensor([[-1.0], [1.0]])  # only unit 2 is dead; 4 of 8 pairs are <= 0
    assert dg.dead_unit_share(model, both_signs) == 0.25
    assert dg.zero_activation_share(model, both_signs) == 0.5


def test_dead_units_are_counted_over_every_rectifier_layer():
    model = nn.Sequential(
        linear(1, 2, [1.0, 1.0], [1.0, 1.0]),  # both alive for x >= 0
        nn.ReLU(),
        linear(2, 2, [[1.0, 0.0], [-1.0, 0.0]], [0.0, 0.0]),  # second unit: -(x + 1) < 0
        nn.ReLU(),
        linear(2, 1, [1.0, 1.0], [0.0]),
    )
    assert dg.dead_unit_share(model, torch.tensor([[0.0], [2.0]])) == 0.25
    with pytest.raises(ValueError, match="ReLU"):
        dg.dead_unit_share(nn.Sequential(nn.Linear(1, 1), nn.Tanh()), torch.zeros(2, 1))


# ---- snapshots -------------------------------------------------------------------------
def test_snapshot_uses_no_global_random_numbers():
    generator = linear(2, 1, [[1.0, 0.5]], [0.0])
    critic = linear(1, 1, [1.0], [0.0])
    fixed_z = torch.randn(50, 2)
    target = np.random.default_rng(0).normal(size=50)
    before = torch.get_rng_state()
    snap = dg.snapshot_1d(generator, critic, fixed_z, np.linspace(-1, 1, 5), target)
    assert torch.equal(before, torch.get_rng_state())
    assert snap["samples"].shape == (50,) and snap["d_prob"].shape == (5,)
    expected = stats.wasserstein_distance(generator(fixed_z).detach().numpy().ravel(), target)
    assert snap["w1"] == pytest.approx(expected)
