"""Dist-GAN (lesson 05): loss terms by hand, the gradient penalty, step order, the loop."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

from gan_utils.core.checkpoints import load_checkpoint
from gan_utils.core.loop import DivergenceError, every
from gan_utils.core.mlp import mlp_critic, mlp_generator
from gan_utils.core.runtime import set_seed
from gan_utils.images.dist_gan import (
    DistGANConfig,
    DistGANCritic,
    autoencoder_step,
    conv_encoder,
    critic_loss,
    critic_step,
    dist_gan_step,
    generator_loss,
    generator_step,
    gradient_penalty,
    latent_data_distance,
    make_state,
    mlp_encoder,
    mu_schedule,
    recon_weights,
    reconstruction_loss,
    train_dist_gan,
)
from gan_utils.images.models import dcgan_critic, dcgan_generator
from gan_utils.toy.mixtures import ring

TOY = DistGANConfig(
    latent_dim=2, batch_size=16, num_steps=6, log_every=1, progress=False, device="cpu"
)


def toy_models(seed: int = 0):
    set_seed(seed)
    return (
        mlp_encoder(2, 2, width=8, depth=1),
        mlp_generator(2, 2, width=8, depth=1),
        mlp_critic(2, width=8, depth=1),
    )


def parameters(*nets):
    return [p.detach().clone() for net in nets for p in net.state_dict().values()]


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def bce(logit: float, target: float) -> float:
    """Binary cross-entropy of one logit, from its definition."""
    p = 1.0 / (1.0 + math.exp(-logit))
    return -(target * math.log(p) + (1.0 - target) * math.log(1.0 - p))


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


# ---- the loss terms against hand computations -------------------------------------------------
def test_reconstruction_loss_by_hand():
    f_real = torch.tensor([[1.0, 2.0], [0.0, -1.0]], dtype=torch.float64)
    f_recon = torch.tensor([[0.5, 2.0], [1.0, 1.0]], dtype=torch.float64)
    # squared differences 0.25, 0, 1, 4 -> mean 5.25 / 4
    assert reconstruction_loss(f_real, f_recon).item() == pytest.approx(5.25 / 4)


def test_latent_data_distance_by_hand():
    f_recon = torch.tensor([[1.0, 3.0], [2.0, 0.0]], dtype=torch.float64)
    f_fake = torch.tensor([[0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    encoded = torch.tensor([[0.5], [0.1]], dtype=torch.float64)
    z = torch.tensor([[-0.5], [0.3]], dtype=torch.float64)
    # md_x = mean(1, 2, 1, -1) = 0.75; md_z = 0.5 * mean(1.0, -0.2) = 0.2; R = 0.55^2
    reg = latent_data_distance(f_recon, f_fake, encoded, z, lambda_w=0.5)
    assert reg.item() == pytest.approx(0.55**2)


def test_critic_loss_by_hand():
    real = [0.3, -1.2]
    recon = [2.0, 0.1]
    fake = [-0.7, 1.5]
    expected = (
        0.97 * np.mean([bce(a, 1) for a in real])
        + 0.03 * np.mean([bce(a, 1) for a in recon])
        + np.mean([bce(a, 0) for a in fake])
    )
    t = [torch.tensor(v, dtype=torch.float64) for v in (real, recon, fake)]
    assert critic_loss(*t, w_real=0.97, w_recon=0.03).item() == pytest.approx(expected)


def test_generator_loss_by_hand():
    real, fake = [0.0, 2.0, -1.0], [-3.0, 0.5, 1.0]
    expected = abs(np.mean(sigmoid(np.array(real))) - np.mean(sigmoid(np.array(fake))))
    loss = generator_loss(torch.tensor(real), torch.tensor(fake))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # symmetric: the gap counts whichever side the fakes are on
    swapped = generator_loss(torch.tensor(fake), torch.tensor(real))
    assert swapped.item() == pytest.approx(expected, rel=1e-6)


def test_mu_schedule_zero_then_ramp_then_cap():
    n = 1000
    assert [mu_schedule(s, n) for s in (0, 250, 500)] == [0.0, 0.0, 0.0]
    assert mu_schedule(600, n) == pytest.approx(0.02)
    assert mu_schedule(700, n) == pytest.approx(0.04)
    assert [mu_schedule(s, n) for s in (750, 900, 1000)] == pytest.approx([0.05] * 3)
    values = [mu_schedule(s, n) for s in range(n + 1)]
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert recon_weights(600, n) == pytest.approx((0.97, 0.03))
    assert recon_weights(900, n, "constant") == (0.95, 0.05)
    with pytest.raises(ValueError, match="recon_weight_schedule"):
        recon_weights(0, n, "cosine")


# ---- the gradient penalty ------------------------------------------------------------------------
class LinearCritic(nn.Module):
    """D(x) = w . flatten(x) + b; its input gradient is w for every sample."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.linear = nn.Linear(weight.numel(), 1).double()
        with torch.no_grad():
            self.linear.weight.copy_(weight.reshape(1, -1))
            self.linear.bias.fill_(0.3)

    def forward(self, x):
        return self.linear(x.flatten(start_dim=1))


def test_gradient_penalty_rms_and_norm_on_a_linear_critic():
    w = torch.tensor([3.0, -1.0, 0.5, 2.0, 0.0, 1.0], dtype=torch.float64)
    critic = DistGANCritic(LinearCritic(w))
    real = torch.randn(5, 1, 2, 3, dtype=torch.float64)  # n = 6 numbers per sample
    fake = torch.randn(5, 1, 2, 3, dtype=torch.float64)
    norm = math.sqrt(sum(v * v for v in w.tolist()))
    slope_rms = norm / math.sqrt(6)
    assert gradient_penalty(critic, real, fake, "rms").item() == pytest.approx((slope_rms - 1) ** 2)
    assert gradient_penalty(critic, real, fake, "norm").item() == pytest.approx((norm - 1) ** 2)
    with pytest.raises(ValueError, match="slope"):
        gradient_penalty(critic, real, fake, "l1")


def test_gradient_penalty_gradient_reaches_the_critic_in_closed_form():
    # GP = (||w|| / sqrt(n) - 1)^2  =>  dGP/dw = 2 (s - 1) w / (||w|| sqrt(n)), dGP/db = 0
    w = torch.tensor([0.2, -0.4, 0.1, 0.3], dtype=torch.float64)
    critic = DistGANCritic(LinearCritic(w))
    real = torch.randn(3, 4, dtype=torch.float64)
    gradient_penalty(critic, real, torch.randn(3, 4, dtype=torch.float64)).backward()
    norm, n = w.norm().item(), 4
    s = norm / math.sqrt(n)
    expected = 2 * (s - 1) * w / (norm * math.sqrt(n))
    torch.testing.assert_close(critic.critic.linear.weight.grad.reshape(-1), expected)
    bias_grad = critic.critic.linear.bias.grad  # the input gradient w does not involve b
    assert bias_grad is None or bias_grad.abs().item() == 0.0


def test_gradient_penalty_reaches_every_weight_of_a_nonlinear_critic():
    set_seed(0)
    critic = DistGANCritic(mlp_critic(2, width=8, depth=2).double())
    real, fake = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    gradient_penalty(critic, real, fake).backward()
    for name, p in critic.named_parameters():
        if name.endswith("weight"):
            assert p.grad is not None and p.grad.abs().sum() > 0, name


class SpyCritic(nn.Module):
    """A critic that records what it was called on."""

    def __init__(self, n: int):
        super().__init__()
        self.linear = nn.Linear(n, 1).double()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x):
        self.inputs.append(x.detach().clone())
        return self.linear(torch.tanh(x.flatten(start_dim=1)))


def test_gradient_penalty_uses_one_coefficient_per_sample():
    torch.manual_seed(1)
    spy = SpyCritic(16)
    real = torch.randn(6, 1, 4, 4, dtype=torch.float64)
    fake = torch.randn(6, 1, 4, 4, dtype=torch.float64)
    gradient_penalty(DistGANCritic(spy), real, fake)
    (x_hat,) = spy.inputs
    eps = ((x_hat - fake) / (real - fake)).flatten(start_dim=1)  # (B, 16): one eps per pixel?
    per_sample = eps[:, :1]
    torch.testing.assert_close(eps, per_sample.expand_as(eps))  # the same over the pixels
    assert ((per_sample >= 0) & (per_sample <= 1)).all()
    assert per_sample.std() > 0.05  # and different between samples


# ---- the critic wrapper --------------------------------------------------------------------------
def test_wrapper_features_of_an_mlp_critic_are_its_last_hidden_layer():
    set_seed(0)
    critic = mlp_critic(2, width=8, depth=2)
    x = torch.randn(5, 2)
    logits, features = DistGANCritic(critic)(x)
    torch.testing.assert_close(logits, critic(x).reshape(5))
    torch.testing.assert_close(features, critic[:-1](x))  # input of the last Linear
    assert features.shape == (5, 8)


def test_wrapper_features_of_a_dcgan_critic_are_its_last_feature_map():
    set_seed(0)
    critic = dcgan_critic(base_width=4).eval()
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    wrapper = DistGANCritic(critic)
    logits, features = wrapper(x)
    torch.testing.assert_close(logits, critic(x).reshape(3))
    torch.testing.assert_close(features, critic.conv(x).flatten(start_dim=1))
    assert features.shape == (3, 2 * 4 * 7 * 7)
    assert not critic.fc[-1]._forward_pre_hooks  # no hook left behind


def test_wrapper_rejects_a_critic_without_a_linear_layer():
    with pytest.raises(ValueError, match="critic"):
        DistGANCritic(nn.Sequential(nn.Flatten(), nn.Tanh()))


# ---- the three updates ---------------------------------------------------------------------------
def tiny_double_models():
    """Linear E and G and a one-hidden-layer critic in float64, with numpy copies."""
    set_seed(0)
    encoder = nn.Linear(2, 1).double()
    generator = nn.Linear(1, 2).double()
    critic = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    return encoder, generator, critic


def numpy_forward(encoder, generator, critic, real, z):
    def lin(layer, x):
        return x @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()

    def d(x):  # (logits, features)
        h = np.tanh(lin(critic[0], x))
        return lin(critic[2], h)[:, 0], h

    x, z = real.numpy(), z.numpy()
    e = lin(encoder, x)
    x_r, x_f = lin(generator, e), lin(generator, z)
    return x, z, e, x_r, x_f, d


@pytest.mark.parametrize("reconstruction", ["feature", "pixel"])
def test_autoencoder_step_matches_numpy_and_moves_e_and_g_only(reconstruction):
    encoder, generator, critic = tiny_double_models()
    real = torch.randn(4, 2, dtype=torch.float64)
    z = torch.rand(4, 1, dtype=torch.float64) * 2 - 1
    x, zn, e, x_r, x_f, d = numpy_forward(encoder, generator, critic, real, z)
    (_, f_x), (_, f_r), (_, f_f) = d(x), d(x_r), d(x_f)
    recon = np.mean((f_x - f_r) ** 2) if reconstruction == "feature" else np.mean((x - x_r) ** 2)
    lambda_w = math.sqrt(1 / 3)
    reg = (np.mean(f_r - f_f) - lambda_w * np.mean(e - zn)) ** 2
    config = dataclasses.replace(TOY, latent_dim=1, lambda_r=0.5, reconstruction=reconstruction)
    state = make_state(encoder, generator, critic, config, torch.device("cpu"))
    assert state.lambda_w == pytest.approx(lambda_w)  # sqrt(latent_dim / feature_dim)
    before_d = parameters(critic)
    before_eg = parameters(encoder, generator)
    out = autoencoder_step(
        encoder, generator, state.feature_critic, real, z, state.ae_optimizer, config, lambda_w
    )
    assert out["recon"].item() == pytest.approx(recon)
    assert out["reg"].item() == pytest.approx(reg)
    assert out["ae_loss"].item() == pytest.approx(recon + 0.5 * reg)
    assert same(parameters(critic), before_d)
    after = parameters(encoder, generator)
    assert all(not torch.equal(a, b) for a, b in zip(before_eg, after, strict=True))
    assert all(p.requires_grad for p in critic.parameters())


def test_autoencoder_step_can_leave_the_generator_alone():
    encoder, generator, critic = tiny_double_models()
    config = dataclasses.replace(TOY, latent_dim=1, autoencoder_trains_generator=False)
    state = make_state(encoder, generator, critic, config, torch.device("cpu"))
    before_g, before_e = parameters(generator), parameters(encoder)
    real = torch.randn(4, 2, dtype=torch.float64)
    z = torch.rand(4, 1, dtype=torch.float64)
    autoencoder_step(
        encoder, generator, state.feature_critic, real, z, state.ae_optimizer, config, 1.0
    )
    assert same(parameters(generator), before_g)
    assert not same(parameters(encoder), before_e)
    assert all(p.requires_grad for p in generator.parameters())


def test_critic_step_matches_numpy_and_moves_d_only():
    encoder, generator, critic = tiny_double_models()
    real = torch.randn(4, 2, dtype=torch.float64)
    z = torch.rand(4, 1, dtype=torch.float64) * 2 - 1
    x, _, _, x_r, x_f, d = numpy_forward(encoder, generator, critic, real, z)
    # step 6 of 10: t = 0.6, mu = 0.02, w_real = 0.97, w_recon = 0.03
    expected = (
        0.97 * np.mean([bce(a, 1) for a in d(x)[0]])
        + 0.03 * np.mean([bce(a, 1) for a in d(x_r)[0]])
        + np.mean([bce(a, 0) for a in d(x_f)[0]])
    )
    expected_d_real = np.mean(sigmoid(d(x)[0]))  # before the update changes D
    config = dataclasses.replace(TOY, latent_dim=1, num_steps=10, lambda_p=1.0)
    state = make_state(encoder, generator, critic, config, torch.device("cpu"))
    before_eg, before_d = parameters(encoder, generator), parameters(critic)
    out = critic_step(
        encoder, generator, state.feature_critic, real, z, state.d_optimizer, config, step=6
    )
    assert out["d_loss"].item() == pytest.approx(expected)
    assert out["w_real"].item() == pytest.approx(0.97)
    assert out["gp"].item() > 0
    assert out["d_real"].item() == pytest.approx(expected_d_real)
    assert same(parameters(encoder, generator), before_eg)
    assert not same(parameters(critic), before_d)


def test_generator_loss_has_a_gradient_into_g_and_the_step_moves_g_only():
    encoder, generator, critic = tiny_double_models()
    wrapper = DistGANCritic(critic)
    real = torch.randn(8, 2, dtype=torch.float64)
    z = torch.rand(8, 1, dtype=torch.float64) * 2 - 1
    real_logits, _ = wrapper(real)
    fake_logits, _ = wrapper(generator(z))
    generator_loss(real_logits, fake_logits).backward()
    for p in generator.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0

    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    before_d, before_g = parameters(critic), parameters(generator)
    out = generator_step(generator, wrapper, real, z, optimizer)
    assert out["g_loss"].item() >= 0
    assert same(parameters(critic), before_d)
    assert all(not torch.equal(a, b) for a, b in zip(before_g, parameters(generator), strict=True))
    assert all(p.requires_grad for p in critic.parameters())


def test_one_step_updates_autoencoder_then_critic_then_generator():
    encoder, generator, critic = toy_models()
    state = make_state(encoder, generator, critic, TOY, torch.device("cpu"))
    order: list[str] = []

    def spy(name, optimizer):
        step = optimizer.step

        def recorded(*args, **kwargs):
            order.append(name)
            return step(*args, **kwargs)

        optimizer.step = recorded

    spy("autoencoder", state.ae_optimizer)
    spy("critic", state.d_optimizer)
    spy("generator", state.g_optimizer)
    out = dist_gan_step(state, ring())
    assert order == ["autoencoder", "critic", "generator"]
    assert set(out) == {
        "ae_loss",
        "recon",
        "reg",
        "d_loss",
        "gp",
        "w_real",
        "d_real",
        "d_recon",
        "d_fake",
        "g_loss",
    }
    # the autoencoder optimiser holds E and G (as the reference code on MNIST)
    held = {id(p) for group in state.ae_optimizer.param_groups for p in group["params"]}
    assert held == {id(p) for p in [*encoder.parameters(), *generator.parameters()]}


# ---- configuration -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [
        ("latent_dim", 0),
        ("num_steps", 0),
        ("log_every", 0),
        ("checkpoint_every", 3),
        ("latent_prior", "cauchy"),
        ("reconstruction", "perceptual"),
        ("gp_slope", "l1"),
        ("recon_weight_schedule", "cosine"),
        ("lr_ae", 0.0),
        ("lr_g", -1.0),
        ("lr_d", float("nan")),
        ("betas", (0.5, 1.0)),
        ("lambda_p", -1.0),
        ("lambda_r", float("inf")),
        ("lambda_w", 0.0),
        ("seed", -1),
        ("device", "tpu"),
    ],
)
def test_bad_config_values_raise_value_errors_naming_the_field(field, value):
    config = dataclasses.replace(TOY, **{"log_every": 2, field: value})
    with pytest.raises(ValueError, match=field):
        config.validate()
    with pytest.raises(ValueError, match=field):
        train_dist_gan(*toy_models(), ring(), config)


@pytest.mark.parametrize(
    "field, value",
    [
        ("batch_size", 1.5),
        ("num_steps", "10"),
        ("checkpoint_every", 2.0),
        ("latent_prior", 1),
        ("lr_g", "2e-4"),
        ("betas", 0.5),
        ("lambda_p", True),
        ("autoencoder_trains_generator", "yes"),
        ("seed", 1.0),
    ],
)
def test_config_values_of_the_wrong_type_raise_type_errors_naming_the_field(field, value):
    config = dataclasses.replace(TOY, **{"log_every": 2, field: value})
    with pytest.raises(TypeError, match=field):
        config.validate()


def test_defaults_are_the_papers():
    config = DistGANConfig()
    config.validate()
    assert (config.lambda_p, config.lambda_r) == (1.0, 1.0)
    assert (config.lr_ae, config.lr_g, config.lr_d, tuple(config.betas)) == (
        2e-4,
        2e-4,
        2e-4,
        (0.5, 0.9),
    )
    assert (config.latent_prior, config.gp_slope, config.reconstruction) == (
        "uniform",
        "rms",
        "feature",
    )


def test_mismatched_encoder_is_named():
    _, generator, critic = toy_models()
    with pytest.raises(ValueError, match="encoder"):
        train_dist_gan(mlp_encoder(2, 3, width=8, depth=1), generator, critic, ring(), TOY)


# ---- the loop ------------------------------------------------------------------------------------
def test_same_seed_same_history_and_weights():
    nets1 = toy_models()
    h1 = train_dist_gan(*nets1, ring(), TOY)
    nets2 = toy_models()
    h2 = train_dist_gan(*nets2, ring(), TOY)
    assert h1 == h2
    assert same(parameters(*nets1), parameters(*nets2))
    h3 = train_dist_gan(*toy_models(), ring(), dataclasses.replace(TOY, seed=1))
    assert h3 != h1


def test_resume_is_bit_identical(tmp_path):
    full_nets = toy_models()
    full = train_dist_gan(*full_nets, ring(), TOY)

    def stop_at_3(state):
        return state.step == 3

    first = toy_models()
    path = tmp_path / "dist.pt"
    train_dist_gan(*first, ring(), TOY, callbacks=[stop_at_3], checkpoint_path=path)
    assert load_checkpoint(path)["step"] == 3
    resumed_nets = toy_models(seed=5)  # weights come from the checkpoint
    resumed = train_dist_gan(*resumed_nets, ring(), TOY, resume_from=path)
    assert resumed == full
    assert same(parameters(*resumed_nets), parameters(*full_nets))


def test_checkpoint_holds_models_optimisers_rng_config_history(tmp_path):
    path = tmp_path / "dist.pt"
    config = dataclasses.replace(TOY, checkpoint_every=2)
    train_dist_gan(*toy_models(), ring(), config, checkpoint_path=path)
    saved = load_checkpoint(path)
    assert {
        "encoder",
        "generator",
        "critic",
        "ae_optimizer",
        "g_optimizer",
        "d_optimizer",
        "rng",
        "config",
        "history",
        "lambda_w",
        "step",
    } <= set(saved)
    assert saved["config"]["gp_slope"] == "rms" and saved["step"] == 6
    assert len(saved["history"]) == 6
    with pytest.raises(ValueError, match="num_steps"):  # the weight schedule depends on it
        train_dist_gan(
            *toy_models(), ring(), dataclasses.replace(TOY, num_steps=8), resume_from=path
        )


def test_callbacks_see_the_state_and_can_stop_training():
    seen = []

    def record(state):
        seen.append((state.step, state.config.latent_dim, state.device.type))
        assert isinstance(state.generator, nn.Module) and state.history is not None
        logits = state.critic(torch.zeros(2, 2))  # the plain critic: logits only
        assert logits.shape == (2, 1)
        state.history.log(state.step, probe=1.0)
        return state.step == 4

    history = train_dist_gan(*toy_models(), ring(), TOY, callbacks=[every(2, record)])
    assert seen == [(2, 2, "cpu"), (4, 2, "cpu")]
    assert history.series("d_loss")[0].tolist() == [1, 2, 3, 4]
    assert history.series("probe")[0].tolist() == [2, 4]


def test_nan_data_stops_with_a_divergence_error():
    data = ring().sample(64)
    data[:] = float("nan")
    with pytest.raises(DivergenceError, match="step 1"):
        train_dist_gan(*toy_models(), data, TOY)


def test_short_toy_run_logs_finite_values():
    config = dataclasses.replace(TOY, num_steps=20, log_every=5)
    history = train_dist_gan(*toy_models(), ring(), config)
    keys = ["ae_loss", "recon", "reg", "d_loss", "gp", "g_loss", "w_real", "d_real", "d_fake"]
    for key in keys:
        steps, values = history.series(key)
        assert steps.tolist() == [5, 10, 15, 20]
        assert np.isfinite(values).all(), key
    # w_real: 0.95 up to half-way, then 0.95 + mu (step 15 -> t = 0.7..0.75)
    assert history.series("w_real")[1][:2] == pytest.approx([0.95, 0.95])
    assert history.series("w_real")[1][-1] == pytest.approx(1.0)
    assert history.extras["lambda_w"] == pytest.approx(math.sqrt(2 / 8))


@pytest.mark.slow  # several seconds on 2 shared cores
def test_mnist_shaped_run_with_conv_encoder_and_dcgan_networks():
    set_seed(0)
    encoder = conv_encoder(3, base_width=4)
    generator = dcgan_generator(3, base_width=4)
    critic = dcgan_critic(base_width=4)
    images = torch.rand(32, 1, 28, 28) * 2 - 1
    config = DistGANConfig(
        latent_dim=3, batch_size=8, num_steps=2, log_every=1, progress=False, device="cpu"
    )
    history = train_dist_gan(encoder, generator, critic, images, config)
    assert history.extras["feature_dim"] == 2 * 4 * 7 * 7
    assert all(np.isfinite(history.series(k)[1]).all() for k in history.keys())
    assert encoder(images[:2]).shape == (2, 3)


class TinyClassifier(nn.Module):
    """Stands in for the lesson-03 classifier: ``logits`` of 10 digits from the pixels."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(28 * 28, 10)

    def logits(self, images):
        return self.linear(images.flatten(start_dim=1))


@pytest.mark.slow  # several seconds on 2 shared cores
def test_the_lesson_04_evaluation_hook_runs_and_leaves_training_unchanged():
    from gan_utils.images.evaluation import EpochEvaluator

    def nets():
        set_seed(0)
        return (
            conv_encoder(2, base_width=4),
            dcgan_generator(2, base_width=4),
            dcgan_critic(base_width=4),
        )

    torch.manual_seed(3)
    images = torch.rand(32, 1, 28, 28) * 2 - 1
    classifier = TinyClassifier()
    config = DistGANConfig(
        latent_dim=2, batch_size=8, num_steps=2, log_every=1, progress=False, device="cpu"
    )
    evaluator = EpochEvaluator(
        classifier, latent_dim=2, steps_per_epoch=1, num_samples=20, latent_prior="uniform"
    )
    with_hook = nets()
    history = train_dist_gan(*with_hook, images, config, callbacks=[evaluator])
    assert history.series("is_mean")[0].tolist() == [1, 2]
    assert history.series("eval_samples")[1].tolist() == [20, 20]
    without_hook = nets()
    train_dist_gan(*without_hook, images, config)
    assert same(parameters(*with_hook), parameters(*without_hook))


def test_critic_step_weights_follow_the_schedule_option():
    encoder, generator, critic = tiny_double_models()
    real = torch.randn(4, 2, dtype=torch.float64)
    z = torch.rand(4, 1, dtype=torch.float64)
    for schedule, expected in (("ramp", 1.0), ("constant", 0.95)):
        config = dataclasses.replace(
            TOY, latent_dim=1, num_steps=10, recon_weight_schedule=schedule
        )
        state = make_state(encoder, generator, critic, config, torch.device("cpu"))
        out = critic_step(
            encoder, generator, state.feature_critic, real, z, state.d_optimizer, config, 9
        )
        assert out["w_real"].item() == pytest.approx(expected)


def test_each_update_draws_its_own_batch_and_uniform_latents():
    encoder, generator, critic = toy_models()
    seen_x, seen_z = [], []
    encoder.register_forward_pre_hook(lambda m, inputs: seen_x.append(inputs[0].clone()))
    generator.register_forward_pre_hook(lambda m, inputs: seen_z.append(inputs[0].clone()))
    config = dataclasses.replace(TOY, batch_size=256)
    state = make_state(encoder, generator, critic, config, torch.device("cpu"))
    dist_gan_step(state, ring())
    assert len(seen_x) == 2  # E(x) in the autoencoder and in the critic update
    assert not torch.equal(seen_x[0], seen_x[1])
    assert len(seen_z) == 5  # G(E(x)), G(z) | G(E(x)), G(z) | G(z)
    latents = torch.cat([seen_z[1], seen_z[3], seen_z[4]])  # the three z ~ p(z)
    assert latents.min() >= -1 and latents.max() <= 1
    assert latents.min() < -0.9 and latents.max() > 0.9  # uniform on [-1, 1], not N(0, 1)
    assert not torch.equal(seen_z[1], seen_z[3]) and not torch.equal(seen_z[3], seen_z[4])


def test_divergence_resets_the_networks_to_the_last_good_checkpoint(tmp_path):
    mixture = ring()
    calls = []

    def sample_real(n):  # call 1 is the shape check; step k draws calls 3k-1, 3k, 3k+1
        calls.append(n)
        x = mixture.sample(n)
        return x * float("nan") if len(calls) >= 11 else x  # NaN from step 4 on

    nets = toy_models()
    path = tmp_path / "dist.pt"
    config = dataclasses.replace(TOY, checkpoint_every=2)
    with pytest.raises(DivergenceError, match="step 4") as error:
        train_dist_gan(*nets, sample_real, config, checkpoint_path=path)
    assert str(path) in str(error.value)
    saved = load_checkpoint(path)
    assert saved["step"] == 2
    for name, net in zip(("encoder", "generator", "critic"), nets, strict=True):
        assert same(parameters(net), list(saved[name].values())), name


def test_keyboard_interrupt_keeps_the_last_checkpoint(tmp_path, capsys):
    def interrupt(state):
        if state.step == 3:
            raise KeyboardInterrupt

    path = tmp_path / "dist.pt"
    config = dataclasses.replace(TOY, checkpoint_every=2)
    with pytest.raises(KeyboardInterrupt):
        train_dist_gan(*toy_models(), ring(), config, callbacks=[interrupt], checkpoint_path=path)
    assert load_checkpoint(path)["step"] == 2
    assert "interrupted at step 3" in capsys.readouterr().out
