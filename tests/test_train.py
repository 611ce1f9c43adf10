"""The training loop: reproducibility, resume, divergence, validation, top-k, clipping."""

import dataclasses

import pytest
import torch

from gan_utils.core.checkpoints import load_checkpoint
from gan_utils.core.loop import DivergenceError, every
from gan_utils.core.mlp import mlp_critic, mlp_generator
from gan_utils.core.runtime import set_seed
from gan_utils.core.train import TrainConfig, topk_size, train
from gan_utils.toy.mixtures import ring

BASE = TrainConfig(
    latent_dim=2, batch_size=32, num_steps=20, log_every=5, progress=False, device="cpu"
)


def models(seed=0, spectral_norm=False):
    set_seed(seed)
    return mlp_generator(2, 2, width=16, depth=2), mlp_critic(
        2, width=16, depth=2, spectral_norm=spectral_norm
    )


def parameters(*nets):
    return [p.detach().clone() for net in nets for p in net.state_dict().values()]


def test_same_seed_same_history_and_weights():
    g1, d1 = models()
    h1 = train(g1, d1, ring(), BASE)
    g2, d2 = models()
    h2 = train(g2, d2, ring(), BASE)
    assert h1 == h2
    assert all(
        torch.equal(a, b) for a, b in zip(parameters(g1, d1), parameters(g2, d2), strict=True)
    )
    g3, d3 = models()
    h3 = train(g3, d3, ring(), dataclasses.replace(BASE, seed=1))
    assert h3 != h1


def test_history_logs_losses_every_log_step():
    g, d = models()
    history = train(g, d, ring(), BASE)
    steps, d_loss = history.series("d_loss")
    assert steps.tolist() == [5, 10, 15, 20]
    assert set(history.keys()) >= {
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
        "real_logit",
        "fake_logit",
    }
    assert all(0 < v < 1 for v in history.series("d_real")[1])


@pytest.mark.parametrize(
    "variant",
    [
        {"loss": "non_saturating"},
        {"loss": "wasserstein", "gp_weight": 10.0, "n_critic": 3},
        {"loss": "hinge", "topk": True, "steps_per_epoch": 2},
        {
            "loss": "wasserstein",
            "clip_value": 0.01,
            "optimizer": "rmsprop",
            "lr_d": 1e-4,
            "lr_g": 1e-4,
        },
    ],
)
def test_resume_is_bit_identical(tmp_path, variant):
    """2N steps straight == N steps, checkpoint, resume, N more steps (torch.equal)."""
    cfg = dataclasses.replace(BASE, **variant)
    g1, d1 = models()
    straight = train(g1, d1, ring(), dataclasses.replace(cfg, num_steps=20))

    g2, d2 = models()
    ckpt = tmp_path / "run.pt"
    train(g2, d2, ring(), dataclasses.replace(cfg, num_steps=10), checkpoint_path=ckpt)
    g3, d3 = models(seed=99)  # fresh objects with other weights: all must come from the checkpoint
    torch.manual_seed(12345)  # and the RNG state too
    resumed = train(g3, d3, ring(), dataclasses.replace(cfg, num_steps=20), resume_from=ckpt)

    assert resumed == straight
    assert all(
        torch.equal(a, b) for a, b in zip(parameters(g1, d1), parameters(g3, d3), strict=True)
    )


def test_resume_with_other_settings_is_refused(tmp_path):
    g, d = models()
    ckpt = tmp_path / "run.pt"
    train(g, d, ring(), BASE, checkpoint_path=ckpt)
    with pytest.raises(ValueError, match="lr_g"):
        train(g, d, ring(), dataclasses.replace(BASE, lr_g=1.0, num_steps=30), resume_from=ckpt)


def test_missing_checkpoint_names_the_path(tmp_path):
    g, d = models()
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        train(g, d, ring(), BASE, resume_from=tmp_path / "nope.pt")


def test_divergence_stops_with_named_error_and_keeps_last_good_checkpoint(tmp_path):
    """A data sampler that turns to NaN after step 12 forces the losses to NaN."""
    mixture = ring()
    calls = {"n": 0}

    def poisoned(batch_size):
        calls["n"] += 1
        x = mixture(batch_size)
        return x * float("nan") if calls["n"] > 12 else x

    g, d = models()
    ckpt = tmp_path / "run.pt"
    cfg = dataclasses.replace(BASE, checkpoint_every=10, num_steps=40)
    with pytest.raises(DivergenceError, match=r"diverged by step 15.*last good checkpoint"):
        train(g, d, poisoned, cfg, checkpoint_path=ckpt)
    saved = load_checkpoint(ckpt)
    assert saved["step"] == 10
    assert all(torch.isfinite(v).all() for v in saved["generator"].values())
    # the in-memory models were reset to that checkpoint
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in saved["generator"].items())
    # and training can continue from it
    history = train(
        g,
        d,
        mixture,
        dataclasses.replace(cfg, num_steps=20),
        checkpoint_path=ckpt,
        resume_from=ckpt,
    )
    assert history.series("d_loss")[0][-1] == 20


def test_divergence_without_checkpoint_says_so():
    def nan_data(batch_size):
        return torch.full((batch_size, 2), float("nan"))

    g, d = models()
    with pytest.raises(DivergenceError, match="no checkpoint had been written"):
        train(g, d, nan_data, BASE)


def test_callbacks_run_on_schedule_and_can_stop():
    seen = []

    def record(state):
        seen.append(state.step)
        return state.step >= 12  # stop

    g, d = models()
    history = train(g, d, ring(), BASE, callbacks=[every(4, record)])
    assert seen == [4, 8, 12]
    assert history.series("d_loss")[0][-1] == 12


def test_tensor_data_is_indexed():
    data = ring().sample(100)
    g, d = models()
    history = train(g, d, data, BASE)
    assert len(history.series("g_loss")[0]) == 4


def test_topk_schedule_decays_geometrically_to_the_floor():
    cfg = TrainConfig(batch_size=100, topk=True, topk_gamma=0.9, topk_nu=0.5, steps_per_epoch=10)
    ks = [topk_size(step, cfg) for step in range(0, 200, 10)]
    assert ks[0] == 100 and ks[1] == 90 and ks[2] == 81
    assert ks[-1] == 50 and min(ks) == 50
    assert all(a >= b for a, b in zip(ks, ks[1:], strict=False))


def test_weight_clipping_keeps_critic_weights_in_range():
    g, d = models()
    train(g, d, ring(), dataclasses.replace(BASE, loss="wasserstein", clip_value=0.01))
    assert max(p.abs().max().item() for p in d.parameters()) <= 0.01 + 1e-9


def test_label_smoothing_only_for_bce_losses():
    with pytest.raises(ValueError, match="real_label"):
        dataclasses.replace(BASE, loss="hinge", real_label=0.9).validate()
    g, d = models()
    history = train(g, d, ring(), dataclasses.replace(BASE, real_label=0.9, label_flip_prob=0.1))
    assert len(history) == 4


@pytest.mark.parametrize(
    "change, name",
    [
        ({"loss": "vanilla"}, "loss must be one of"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"batch_size": 0}, "batch_size"),
        ({"n_critic": 0}, "n_critic"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"latent_prior": "cauchy"}, "latent_prior"),
        ({"checkpoint_every": 7}, "checkpoint_every"),
        ({"lr_g": 0.0}, "lr_g"),
        ({"clip_value": -1.0}, "clip_value"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_bad_config_names_the_field(change, name):
    g, d = models()
    with pytest.raises(ValueError, match=name):
        train(g, d, ring(), dataclasses.replace(BASE, **change))


@pytest.mark.parametrize(
    "change, name",
    [
        ({"batch_size": "8"}, "batch_size"),
        ({"num_steps": 2.5}, "num_steps"),
        ({"latent_dim": True}, "latent_dim"),
        ({"loss": None}, "loss"),
        ({"optimizer": 1}, "optimizer"),
        ({"lr_g": "1e-3"}, "lr_g"),
        ({"clip_value": "0.01"}, "clip_value"),
        ({"gp_weight": None}, "gp_weight"),
        ({"betas": 0.5}, "betas"),
        ({"betas": (0.5, "0.9")}, "betas"),
        ({"topk": 1}, "topk"),
        ({"topk_nu": "0.5"}, "topk_nu"),
        ({"seed": 1.0}, "seed"),
        ({"progress": "no"}, "progress"),
        ({"device": 0}, "device"),
    ],
)
def test_config_values_of_the_wrong_type_are_type_errors(change, name):
    with pytest.raises(TypeError, match=name):
        dataclasses.replace(BASE, **change).validate()


@pytest.mark.parametrize(
    "change, name",
    [
        ({"betas": (0.5, 1.0)}, "betas"),
        ({"betas": (0.5, 0.9, 0.1)}, "betas"),
        ({"topk_gamma": 0.0}, "topk_gamma"),
        ({"topk_nu": 1.5}, "topk_nu"),
        ({"label_flip_prob": 0.5}, "label_flip_prob"),
        ({"gp_weight": -1.0}, "gp_weight"),
        ({"seed": -1}, "seed"),
        ({"checkpoint_every": -10}, "checkpoint_every"),
        ({"lr_d": float("nan")}, "lr_d"),
    ],
)
def test_config_values_out_of_range_are_value_errors(change, name):
    with pytest.raises(ValueError, match=name):
        dataclasses.replace(BASE, **change).validate()


def test_data_that_is_neither_samples_nor_a_sampler_is_a_type_error():
    g, d = models()
    with pytest.raises(TypeError, match="data must be a tensor"):
        train(g, d, [[0.0, 0.0]], BASE)
    with pytest.raises(ValueError, match="data must hold at least 1 row"):
        train(g, d, torch.zeros(0, 2), BASE)


def test_checkpoint_every_needs_a_path():
    g, d = models()
    with pytest.raises(ValueError, match="checkpoint_path"):
        train(g, d, ring(), dataclasses.replace(BASE, checkpoint_every=10))


def test_checkpoint_holds_everything_to_rebuild_the_run(tmp_path):
    g, d = models()
    ckpt = tmp_path / "run.pt"
    train(g, d, ring(), BASE, checkpoint_path=ckpt)
    saved = load_checkpoint(ckpt)
    assert set(saved) >= {
        "step",
        "generator",
        "critic",
        "g_optimizer",
        "d_optimizer",
        "rng",
        "config",
        "history",
    }
    assert TrainConfig(**{**saved["config"], "betas": tuple(saved["config"]["betas"])}) == BASE
