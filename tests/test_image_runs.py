"""Vanilla and Dist-GAN runs side by side (lesson 05): reuse of lesson 04's checkpoints."""

import dataclasses

import numpy as np
import pytest
import torch

from gan_utils.core.checkpoints import save_generator
from gan_utils.images.classifier import DigitClassifier
from gan_utils.images.dist_gan import ConvEncoder, DistGANConfig, MLPEncoder
from gan_utils.images.recipe import (
    build_dist_gan,
    load_or_train_vanilla,
    reconstruct,
    train_dist_gan_run,
    vanilla_config,
)

N = 50  # samples scored per evaluation


@pytest.fixture(autouse=True)
def _own_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))


@pytest.fixture
def classifier():
    torch.manual_seed(123)
    return DigitClassifier(width=4, feature_dim=8).eval()


@pytest.fixture
def digits():
    torch.manual_seed(1)
    return torch.rand(32, 1, 28, 28) * 2 - 1


def config(**changes):
    settings = {"latent_dim": 2, "batch_size": 8, "epochs": 2, "steps_per_epoch": 3}
    settings |= {"lr": 2e-4, "seed": 3, **changes}
    return vanilla_config(**settings)


def test_vanilla_config_is_lesson_04s_default_variant():
    c = config()
    assert c.loss == "non_saturating" and c.n_critic == 1 and c.latent_prior == "normal"
    assert tuple(c.betas) == (0.5, 0.999) and c.optimizer == "adam"
    assert c.num_steps == 6 and c.steps_per_epoch == 3 and c.log_every == 1


def save_as_lesson_04(run):
    save_generator(
        run.generator,
        "04_vanilla_gan",
        run.architecture,
        "non_saturating",
        run.config,
        run.generator_builder,
        run.generator_kwargs,
        metrics=run.final,
        history=run.history,
    )


def test_a_matching_lesson_04_checkpoint_is_reused_and_its_last_epoch_replayed(classifier, digits):
    trained = load_or_train_vanilla("dense", digits, config(), classifier, N)
    assert trained.source == "trained here" and trained.series("is_mean")[0].tolist() == [1, 2]
    save_as_lesson_04(trained)

    reused = load_or_train_vanilla("dense", digits, config(device="auto"), classifier, N)
    assert reused.source == "lesson 04's checkpoint" and reused.extras["replay_matches"]
    assert reused.final == trained.final
    np.testing.assert_array_equal(reused.last.class_counts, trained.last.class_counts)
    torch.testing.assert_close(reused.last.grid, trained.last.grid, rtol=0, atol=1e-6)
    for key in ("is_mean", "classes_covered", "kl_to_uniform"):
        np.testing.assert_array_equal(reused.series(key)[1], trained.series(key)[1])


@pytest.mark.parametrize(
    "change", [{"lr": 1e-3}, {"epochs": 3}, {"seed": 4}], ids=["lr", "epochs", "seed"]
)
def test_a_checkpoint_with_other_settings_is_not_reused(classifier, digits, change):
    save_as_lesson_04(load_or_train_vanilla("dense", digits, config(), classifier, N))
    run = load_or_train_vanilla("dense", digits, config(**change), classifier, N)
    assert run.source == "trained here"


def test_a_checkpoint_scored_at_another_n_is_not_reused(classifier, digits):
    save_as_lesson_04(load_or_train_vanilla("dense", digits, config(), classifier, N))
    run = load_or_train_vanilla("dense", digits, config(), classifier, 2 * N)
    assert run.source == "trained here" and run.final["eval_samples"] == 2 * N


@pytest.mark.parametrize("architecture", ["dense", "dcgan"])
def test_dist_gan_networks_mirror_the_critic(architecture):
    nets = build_dist_gan(architecture, 3)
    expected = MLPEncoder if architecture == "dense" else ConvEncoder
    assert isinstance(nets.encoder, expected)
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    nets.pair.generator.train()
    nets.encoder.train()
    recon = reconstruct(nets.encoder, nets.pair.generator, x)
    assert recon.shape == x.shape
    assert nets.encoder.training and nets.pair.generator.training  # modes restored
    if architecture == "dcgan":
        assert nets.pair.critic_kwargs["normalization"] == "layer"
        assert nets.encoder.conv[0].out_channels == nets.pair.critic_kwargs["base_width"]


def test_dist_gan_run_is_scored_every_epoch_on_uniform_latents(classifier, digits):
    c = DistGANConfig(latent_dim=2, batch_size=8, num_steps=6, log_every=3, progress=False)
    run = train_dist_gan_run("dense", digits, c, classifier, N, steps_per_epoch=3)
    assert run.kind == "dist_gan" and run.evaluator.latent_prior == "uniform"
    epochs, values = run.series("kl_to_uniform")
    assert epochs.tolist() == [1, 2] and np.isfinite(values).all()
    assert run.final["eval_samples"] == N and run.last.class_counts.sum() == N
    assert run.steps_per_s > 0 and run.extras["lambda_w"] > 0
    assert dataclasses.asdict(run.config) == dataclasses.asdict(c)
