"""Losses against values computed separately from their formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from gan_utils.core.losses import LOSSES, get_loss, gradient_penalty, interpolate

LOGITS_REAL = torch.tensor([2.0, -1.0, 0.5, 3.0])
LOGITS_FAKE = torch.tensor([-2.0, 0.3, 1.5, -0.7])


def bce_on_probabilities(logits, target):
    """Reference: torch's BCE on sigmoid probabilities (fine at these moderate logits)."""
    return F.binary_cross_entropy(torch.sigmoid(logits), torch.full_like(logits, target))


def test_registry_holds_the_five_losses():
    assert set(LOSSES) == {"minimax", "non_saturating", "least_squares", "hinge", "wasserstein"}


def test_unknown_loss_lists_the_registered_names():
    with pytest.raises(ValueError, match="least_squares") as info:
        get_loss("lsgan")
    assert "'lsgan'" in str(info.value)


@pytest.mark.parametrize("name", ["minimax", "non_saturating"])
def test_bce_critic_loss_matches_bce_on_probabilities(name):
    expected = bce_on_probabilities(LOGITS_REAL, 1.0) + bce_on_probabilities(LOGITS_FAKE, 0.0)
    got = get_loss(name).critic(LOGITS_REAL, LOGITS_FAKE)
    assert torch.allclose(got, expected, atol=1e-6)


def test_minimax_generator_loss_is_mean_log_one_minus_d():
    expected = torch.log(1 - torch.sigmoid(LOGITS_FAKE)).mean()
    assert torch.allclose(get_loss("minimax").generator(LOGITS_FAKE), expected, atol=1e-6)


def test_non_saturating_generator_loss_is_minus_mean_log_d():
    expected = bce_on_probabilities(LOGITS_FAKE, 1.0)
    assert torch.allclose(get_loss("non_saturating").generator(LOGITS_FAKE), expected, atol=1e-6)


def test_closed_forms_at_d_one_half():
    """D = 1/2 everywhere (logit 0): critic loss 2 log 2, minimax G -log 2, NS G log 2."""
    zero = torch.zeros(5)
    assert get_loss("minimax").critic(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert get_loss("minimax").generator(zero).item() == pytest.approx(-math.log(2))
    assert get_loss("non_saturating").generator(zero).item() == pytest.approx(math.log(2))


def test_bce_losses_stay_finite_at_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    for name in ("minimax", "non_saturating"):
        loss = get_loss(name)
        assert torch.isfinite(loss.critic(big, -big))
        assert torch.isfinite(loss.generator(big))
    # the non-saturating loss at a confidently rejected fake is ~ -logit, not inf
    assert get_loss("non_saturating").generator(torch.tensor([-1e4])).item() == pytest.approx(1e4)


def test_least_squares_a0_b1_c1():
    r, f = LOGITS_REAL, LOGITS_FAKE
    expected_d = (
        0.5 * sum((x - 1) ** 2 for x in r.tolist()) / 4 + 0.5 * sum(x**2 for x in f.tolist()) / 4
    )
    expected_g = 0.5 * sum((x - 1) ** 2 for x in f.tolist()) / 4
    loss = get_loss("least_squares")
    assert loss.critic(r, f).item() == pytest.approx(expected_d, rel=1e-6)
    assert loss.generator(f).item() == pytest.approx(expected_g, rel=1e-6)
    # perfect critic (D(x)=1, D(G(z))=0) has zero loss; the generator wants D(G(z)) = 1
    assert loss.critic(torch.ones(3), torch.zeros(3)).item() == 0.0
    assert loss.generator(torch.ones(3)).item() == 0.0


def test_hinge():
    r, f = LOGITS_REAL, LOGITS_FAKE
    expected = (
        sum(max(0.0, 1 - x) for x in r.tolist()) / 4 + sum(max(0.0, 1 + x) for x in f.tolist()) / 4
    )
    loss = get_loss("hinge")
    assert loss.critic(r, f).item() == pytest.approx(expected, rel=1e-6)
    assert loss.generator(f).item() == pytest.approx(-sum(f.tolist()) / 4, rel=1e-6)


def test_wasserstein():
    loss = get_loss("wasserstein")
    expected = sum(LOGITS_FAKE.tolist()) / 4 - sum(LOGITS_REAL.tolist()) / 4
    assert loss.critic(LOGITS_REAL, LOGITS_FAKE).item() == pytest.approx(expected, rel=1e-6)
    assert loss.generator(LOGITS_FAKE).item() == pytest.approx(
        -sum(LOGITS_FAKE.tolist()) / 4, rel=1e-6
    )


@pytest.mark.parametrize("weight", [1.0, 10.0])
@pytest.mark.parametrize("norm", [0.25, 1.0, 3.0])
def test_gradient_penalty_of_linear_critic_is_closed_form(weight, norm):
    """For f(x) = w.x the input gradient is w everywhere: GP = lambda (||w|| - 1)^2."""
    torch.manual_seed(0)
    dim = 6
    critic = torch.nn.Linear(dim, 1)
    with torch.no_grad():
        w = torch.randn(1, dim)
        critic.weight.copy_(w / w.norm() * norm)
    real, fake = torch.randn(16, dim), torch.randn(16, dim)
    gp = gradient_penalty(critic, real, fake, weight)
    assert gp.item() == pytest.approx(weight * (norm - 1.0) ** 2, rel=1e-5, abs=1e-7)


def test_gradient_penalty_reaches_the_critic_parameters():
    torch.manual_seed(0)
    critic = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    gp = gradient_penalty(critic, torch.randn(10, 3), torch.randn(10, 3), 10.0)
    gp.backward()
    # every weight shapes the input gradient (the output bias does not, so it gets none)
    weights = [critic[0].weight, critic[0].bias, critic[2].weight]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_interpolation_uses_one_coefficient_per_sample():
    torch.manual_seed(0)
    real = torch.zeros(64, 1, 4, 4)
    fake = torch.ones(64, 1, 4, 4)
    x_hat = interpolate(real, fake)  # = 1 - eps, constant within each sample
    per_sample = x_hat.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample))
    assert per_sample[:, 0].std() > 0.1  # but different across samples


def test_interpolation_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        interpolate(torch.zeros(4, 2), torch.zeros(5, 2))
