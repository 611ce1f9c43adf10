"""NU-GAN gradient hook: the eigenpairs it uses, "project" with SGD leaves no update along
the sharp directions, "layer" zeroes exactly the right tensor, refresh schedule, critic
option, validation."""

import dataclasses

import numpy as np
import pytest
import torch
from tiny_gans import tiny_gan
from torch import nn

from gan_utils.core.history import History
from gan_utils.core.loop import every
from gan_utils.core.losses import get_loss
from gan_utils.core.mlp import mlp_critic
from gan_utils.core.train import TrainConfig, TrainState, train
from gan_utils.hessian.nu_gan import NuGANConfig, NuGANHook
from gan_utils.toy.mixtures import ring

CONFIG = TrainConfig(
    latent_dim=2, batch_size=32, num_steps=7, log_every=7, progress=False, device="cpu"
)


def make_state(generator, critic, config=CONFIG, step=0):
    return TrainState(
        generator=generator,
        critic=critic,
        g_optimizer=torch.optim.SGD(generator.parameters(), lr=0.1),
        d_optimizer=torch.optim.SGD(critic.parameters(), lr=0.1),
        config=config,
        history=History(),
        device=torch.device("cpu"),
        step=step,
    )


def generator_backward(generator, critic, seed=5):
    """G's gradient on a batch of its own (as in train's generator_step)."""
    torch.manual_seed(seed)
    z = torch.randn(32, 2)
    generator.zero_grad(set_to_none=True)
    get_loss(CONFIG.loss).generator(critic(generator(z)).reshape(-1)).backward()
    critic.zero_grad(set_to_none=True)
    return [p.grad.clone() for p in generator.parameters()]


def reference_generator_hessian(generator, critic, seed, batch_size=32):
    """The full Hessian of the generator loss on the batch the hook documents (z drawn
    after torch.manual_seed(seed + step)), column by column from torch.autograd.functional."""
    torch.manual_seed(seed)
    z = torch.randn(batch_size, 2)
    params = list(generator.parameters())
    sizes = [p.numel() for p in params]
    layers = [m for m in generator if isinstance(m, nn.Linear)]
    assert len(layers) == 2

    def f(theta):
        w1, b1, w2, b2 = (
            t.reshape(p.shape) for t, p in zip(theta.split(sizes), params, strict=True)
        )
        fake = torch.tanh(z @ w1.T + b1) @ w2.T + b2
        return get_loss(CONFIG.loss).generator(critic(fake).reshape(-1))

    theta = torch.cat([p.detach().reshape(-1) for p in params])
    return torch.autograd.functional.hessian(f, theta).numpy(), sizes


def test_hook_uses_the_generator_loss_hessian_and_monitor_changes_nothing(float64):
    generator, critic = tiny_gan()
    grads = generator_backward(generator, critic)
    settings = NuGANConfig(every_steps=10, k=3, mode="monitor", tol=1e-10, max_iterations=32)
    hook = NuGANHook(settings)
    state = make_state(generator, critic, step=20)
    hook(state)
    hessian, _ = reference_generator_hessian(generator, critic, seed=settings.seed + 20)
    expected = np.linalg.eigvalsh(hessian)[::-1][:3]
    np.testing.assert_allclose(hook.eigenvalues, expected, rtol=1e-6)
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, generator.parameters(), strict=True))
    assert state.history.series("nu_eig_1")[0].tolist() == [20]
    assert hook.records[0]["directions"] == int(np.sum(expected > 0))


def test_project_with_sgd_leaves_no_update_along_the_sharp_directions(float64):
    along = {}
    for mode in ("project", "monitor"):
        generator, critic = tiny_gan()
        hook = NuGANHook(NuGANConfig(every_steps=3, threshold=-np.inf, k=3, mode=mode))
        snapshot = {}

        def grad_hook(state, hook=hook, snapshot=snapshot):
            hook(state)
            snapshot["params"] = torch.cat(
                [p.detach().reshape(-1) for p in state.generator.parameters()]
            )
            snapshot["basis"] = hook.basis.clone()

        shares = along.setdefault(mode, [])

        def measure(state, snapshot=snapshot, shares=shares):
            now = torch.cat([p.detach().reshape(-1) for p in state.generator.parameters()])
            delta = now - snapshot["params"]  # this step's SGD update, -lr * g
            shares.append(float((snapshot["basis"].T @ delta).norm() / delta.norm()))

        data = ring().sample(256).double()
        config = dataclasses.replace(CONFIG, optimizer="sgd", lr_g=0.05)
        train(generator, critic, data, config, callbacks=[every(1, measure)], grad_hook=grad_hook)
        assert len(along[mode]) == config.num_steps
    assert max(along["project"]) < 1e-10
    assert min(along["monitor"]) > 1e-3  # without the nudge the update does point there


def test_layer_zeroes_the_tensor_holding_the_largest_entry(float64):
    generator, critic = tiny_gan(seed=3)
    grads = generator_backward(generator, critic)
    settings = NuGANConfig(k=3, mode="layer", tol=1e-10, max_iterations=32)
    hessian, sizes = reference_generator_hessian(generator, critic, seed=settings.seed)
    values, vectors = np.linalg.eigh(hessian)
    values, vectors = values[::-1], vectors[:, ::-1]
    threshold = 0.5 * (values[0] + values[1])  # only the top eigenvector is sharp
    hook = NuGANHook(dataclasses.replace(settings, threshold=float(threshold)))
    hook(make_state(generator, critic))
    offsets = np.cumsum([0] + sizes)
    expected = int(np.searchsorted(offsets, np.argmax(np.abs(vectors[:, 0])), side="right") - 1)
    names = [name for name, _ in generator.named_parameters()]
    assert hook.selected_tensors == [names[expected]]
    # the share of the raw gradient along the sharp direction is measured, not applied
    g = torch.cat([t.reshape(-1) for t in grads])
    top = torch.as_tensor(vectors[:, 0].copy())
    assert hook._removed == [pytest.approx(float(abs(top @ g) / g.norm()), rel=1e-6)]
    for i, (before, p) in enumerate(zip(grads, generator.parameters(), strict=True)):
        if i == expected:
            assert torch.count_nonzero(p.grad) == 0 and torch.count_nonzero(before) > 0
        else:
            assert torch.equal(before, p.grad)


def test_threshold_above_every_eigenvalue_changes_nothing(float64):
    generator, critic = tiny_gan()
    grads = generator_backward(generator, critic)
    for mode in ("project", "layer"):
        hook = NuGANHook(NuGANConfig(k=2, mode=mode, threshold=1e9))
        hook(make_state(generator, critic))
        assert hook.basis is None and hook.selected_tensors == []
        assert all(
            torch.equal(a, p.grad) for a, p in zip(grads, generator.parameters(), strict=True)
        )


def test_refreshes_every_n_steps_and_monitor_trains_like_no_hook():
    data = ring()
    generator, critic = tiny_gan()
    plain = train(generator, critic, data, CONFIG)
    generator, critic = tiny_gan()
    hook = NuGANHook(NuGANConfig(every_steps=3, k=2, mode="monitor"))
    history = train(generator, critic, data, CONFIG, grad_hook=hook)
    assert [r["step"] for r in hook.records] == [0, 3, 6]
    assert history.series("nu_eig_1")[0].tolist() == [0, 3, 6]
    for key in ("d_loss", "g_loss"):
        assert np.array_equal(plain.series(key)[1], history.series(key)[1])
    # project changes the run (the test above would be vacuous otherwise)
    generator, critic = tiny_gan()
    nudged = train(
        generator,
        critic,
        data,
        CONFIG,
        grad_hook=NuGANHook(NuGANConfig(every_steps=3, k=2, threshold=-np.inf)),
    )
    assert not np.array_equal(plain.series("g_loss")[1], nudged.series("g_loss")[1])


def test_critic_hessian_layer_mode_freezes_a_critic_tensor():
    generator, critic = tiny_gan()
    data = ring()
    hook = NuGANHook(
        NuGANConfig(k=1, mode="layer", hessian_of="critic", threshold=-np.inf), data=data
    )
    state = make_state(generator, critic)
    hook(state)
    assert len(hook.selected_tensors) == 1
    frozen = dict(critic.named_parameters())[hook.selected_tensors[0]]
    before = {name: p.detach().clone() for name, p in critic.named_parameters()}
    # one critic SGD step: the selected tensor's gradient is zeroed by the optimiser hook
    state.d_optimizer.zero_grad()
    critic(data.sample(32)).mean().backward()
    state.d_optimizer.step()
    for name, p in critic.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        assert changed == (p is not frozen), name
    hook.remove()
    critic(data.sample(32)).mean().backward()
    state.d_optimizer.step()
    assert not torch.equal(before[hook.selected_tensors[0]], frozen.detach())


@pytest.mark.parametrize(
    "changes, name",
    [
        ({"every_steps": 0}, "every_steps"),
        ({"k": 0}, "k"),
        ({"mode": "nudge"}, "mode"),
        ({"hessian_of": "both"}, "hessian_of"),
        ({"which": "SA"}, "which"),
        ({"threshold": float("nan")}, "threshold"),
        ({"batch_size": 0}, "batch_size"),
        ({"tol": -1}, "tol"),
        ({"hessian_of": "critic", "mode": "project"}, "project"),
    ],
)
def test_invalid_settings_name_the_field(changes, name):
    with pytest.raises(ValueError, match=name):
        NuGANHook(dataclasses.replace(NuGANConfig(), **changes))


@pytest.mark.parametrize(
    "changes, name",
    [
        ({"every_steps": 2.0}, "every_steps"),
        ({"threshold": "high"}, "threshold"),
        ({"mode": 1}, "mode"),
        ({"max_iterations": "20"}, "max_iterations"),
        ({"seed": True}, "seed"),
    ],
)
def test_settings_of_the_wrong_type_raise_type_errors(changes, name):
    with pytest.raises(TypeError, match=name):
        NuGANHook(dataclasses.replace(NuGANConfig(), **changes))


def test_critic_hessian_needs_data():
    with pytest.raises(ValueError, match="data"):
        NuGANHook(NuGANConfig(mode="layer", hessian_of="critic"))


def test_batch_norm_generator_keeps_its_running_statistics():
    torch.manual_seed(0)
    generator = nn.Sequential(nn.Linear(2, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    critic = mlp_critic(2, width=6, depth=1)
    hook = NuGANHook(NuGANConfig(every_steps=2, k=2, mode="project", threshold=-np.inf))
    state = make_state(generator, critic)
    generator_backward(generator, critic)
    running = generator[1].running_mean.clone()
    hook(state)  # would fail if the buffers were restored before the last product
    assert torch.equal(running, generator[1].running_mean)
    assert hook.basis is not None and hook.basis.shape[1] == 2


def test_resume_at_a_refresh_step_trains_like_the_uninterrupted_run(tmp_path):
    data = ring()
    settings = NuGANConfig(every_steps=3, k=2, threshold=-np.inf)
    config = dataclasses.replace(CONFIG, num_steps=6, log_every=3, optimizer="adam")
    generator, critic = tiny_gan()
    whole = train(generator, critic, data, config, grad_hook=NuGANHook(settings))
    whole_weights = list(generator.state_dict().values())

    generator, critic = tiny_gan()
    path = tmp_path / "nu_gan.pt"
    first = dataclasses.replace(config, num_steps=3)
    train(generator, critic, data, first, checkpoint_path=path, grad_hook=NuGANHook(settings))
    generator, critic = tiny_gan(seed=1)  # other weights: all of it must come from the file
    resumed = train(
        generator, critic, data, config, resume_from=path, grad_hook=NuGANHook(settings)
    )
    assert np.array_equal(whole.series("g_loss")[1], resumed.series("g_loss")[1])
    assert np.array_equal(whole.series("nu_eig_1")[1], resumed.series("nu_eig_1")[1])
    weights = list(generator.state_dict().values())
    assert all(torch.equal(a, b) for a, b in zip(whole_weights, weights, strict=True))
