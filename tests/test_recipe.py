"""The image-GAN recipe: one config, one training function, reuse of saved runs."""

import ast
import dataclasses
import json

import numpy as np
import pytest
import torch

from gan_utils.core.checkpoints import load_generator, model_checkpoint_path
from gan_utils.core.paths import PROJECT_ROOT
from gan_utils.core.runtime import set_seed
from gan_utils.core.train import train
from gan_utils.hessian.nu_gan import NuGANConfig
from gan_utils.hessian.spectra import spectrum_callback
from gan_utils.images.classifier import DigitClassifier
from gan_utils.images.dist_gan import ConvEncoder, MLPEncoder
from gan_utils.images.evaluation import EpochEvaluator
from gan_utils.images.models import build_pair
from gan_utils.images.recipe import (
    LESSON04_LEARNING_RATES,
    LESSON04_OPTIMISERS,
    ImageGANConfig,
    build_dist_gan,
    config_differences,
    dist_gan_image_config,
    lesson04_config,
    load_or_train,
    reconstruct,
    save_run,
    train_image_gan,
)

N = 50  # samples scored per evaluation (5 splits of 10)


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


def small(architecture="dense", epochs=2, **changes):
    """A run of 2 epochs of 3 steps at batch 8, latent 2, N = 50 (lesson 04's way)."""
    settings = {"batch_size": 8, "seed": 3, "eval_samples": N, "num_images": 32}
    return lesson04_config(architecture, 2, 3, epochs, **{**settings, **changes})


def weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---- the config ----------------------------------------------------------------------------
def test_lesson04_config_is_its_default_variant_and_learning_rates():
    c = small()
    assert (c.method, c.variant, c.optimizer, c.latent_prior) == (
        "gan",
        "non_saturating",
        "adam",
        "normal",
    )
    assert c.betas == (0.5, 0.999) and c.lr_g == c.lr_d == LESSON04_LEARNING_RATES["dense"]
    assert c.num_steps == 6 and c.epochs == 2 and c.log_every == 1
    assert c.critic_normalization == "batch" and c.checkpoint_loss == "non_saturating"
    gp = small(variant="wgan_gp", lr=5e-3)
    assert gp.critic_normalization == "layer" and gp.lr_g == 1e-4 and gp.betas == (0.0, 0.9)
    assert gp.train_config().gp_weight == 10 and gp.train_config().n_critic == 5
    assert small(variant="wasserstein_clip").optimizer == "rmsprop"
    assert small(lr=3e-4).lr_d == 3e-4


def lesson_parameters(name):
    """The default values of a lesson's cell tagged ``parameters``."""
    notebook = json.loads((PROJECT_ROOT / "notebooks" / f"{name}.ipynb").read_text())
    cell = next(c for c in notebook["cells"] if "parameters" in c["metadata"].get("tags", []))
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse("".join(cell["source"])).body
        if isinstance(node, ast.Assign)
    }


def test_lesson04s_parameters_default_to_the_recipes_learning_rates_and_variants():
    """Lesson 05 takes lesson 04's defaults from the recipe: they must be the notebook's."""
    values = lesson_parameters("04_vanilla_gan")
    assert values["dcgan_lr"] == LESSON04_LEARNING_RATES["dcgan"]
    assert values["dense_lr"] == LESSON04_LEARNING_RATES["dense"]
    assert values["variant"] in LESSON04_OPTIMISERS


@pytest.mark.parametrize("latent_dim", [1, 10])
def test_at_their_defaults_lesson_05s_baseline_is_lesson_04s_dcgan_run(latent_dim):
    """The configs both lessons build from their default parameters are equal, so lesson 05
    reuses lesson 04's saved DCGAN runs (the data size is lesson 04's full split here)."""
    l04, l05 = lesson_parameters("04_vanilla_gan"), lesson_parameters("05_dist_gan")
    assert l05["architecture"] == "dcgan" and latent_dim in {1, l04["latent_dim"]}
    steps = 60_000 // l04["batch_size"]
    lesson04 = lesson04_config(
        "dcgan",
        latent_dim,
        steps,
        l04["epochs"],
        variant=l04["variant"],
        size=l04["dcgan_size"],
        batch_size=l04["batch_size"],
        lr=l04["dcgan_lr"],
        seed=l04["seed"],
        eval_samples=l04["eval_samples"],
        num_images=60_000,
    )
    lesson05 = lesson04_config(
        l05["architecture"],
        latent_dim,
        60_000 // l05["batch_size"],
        l05["epochs"],
        size=l05["model_size"],
        batch_size=l05["batch_size"],
        lr=l05["vanilla_lr"] or None,
        seed=l05["seed"],
        eval_samples=l05["eval_samples"],
        num_images=60_000,
    )
    assert config_differences(lesson04, lesson05) == {}


@pytest.mark.parametrize(
    ("changes", "error", "name"),
    [
        ({"latent_dim": 2.5}, TypeError, "latent_dim"),
        ({"latent_dim": 0}, ValueError, "latent_dim"),
        ({"batch_size": "64"}, TypeError, "batch_size"),
        ({"method": "wgan"}, ValueError, "method"),
        ({"method": 1}, TypeError, "method"),
        ({"variant": "cauchy"}, ValueError, "variant"),
        ({"variant": "wasserstein_sn"}, ValueError, "variant"),
        ({"architecture": "resnet"}, ValueError, "architecture"),
        ({"size": "large"}, ValueError, "size"),
        ({"output": "sigmoid"}, ValueError, "output"),
        ({"critic_normalization": "group"}, ValueError, "critic_normalization"),
        ({"image_shape": (1, 28)}, ValueError, "image_shape"),
        ({"image_shape": "1x28x28"}, TypeError, "image_shape"),
        ({"latent_prior": "cauchy"}, ValueError, "latent_prior"),
        ({"num_steps": 150}, ValueError, "num_steps"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
        ({"lr_g": 0.0}, ValueError, "lr_g"),
        ({"lr_d": "fast"}, TypeError, "lr_d"),
        ({"betas": (0.5, 1.0)}, ValueError, "betas"),
        ({"betas": 0.5}, TypeError, "betas"),
        ({"seed": -1}, ValueError, "seed"),
        ({"seed": True}, TypeError, "seed"),
        ({"eval_samples": 55}, ValueError, "eval_samples"),
        ({"lambda_p": -1.0}, ValueError, "lambda_p"),
        ({"reconstruction": "perceptual"}, ValueError, "reconstruction"),
        ({"autoencoder_trains_generator": "yes"}, TypeError, "autoencoder_trains_generator"),
        ({"nu": NuGANConfig()}, ValueError, "nu"),
        ({"method": "nu_gan", "nu": NuGANConfig(k=0)}, ValueError, "k"),
        ({"method": "dist_gan", "optimizer": "sgd"}, ValueError, "optimizer"),
        ({"device": "tpu"}, ValueError, "device"),
    ],
)
def test_a_bad_config_names_the_field(changes, error, name):
    with pytest.raises(error, match=name):
        ImageGANConfig(**{"architecture": "dcgan", "steps_per_epoch": 100, **changes})


def test_the_config_is_frozen_and_round_trips_through_asdict():
    c = ImageGANConfig(method="nu_gan", nu=NuGANConfig(k=2, mode="monitor"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.seed = 1
    again = ImageGANConfig(**dataclasses.asdict(c))  # as load_generator rebuilds it
    assert again == c and isinstance(again.nu, NuGANConfig)
    assert c.checkpoint_loss == "non_saturating"  # monitor mode changes nothing
    assert dataclasses.replace(c, nu=NuGANConfig(k=2)).checkpoint_loss == "nu_gan"
    assert ImageGANConfig(method="nu_gan").nu == NuGANConfig()


def test_differences_name_fields_and_ignore_the_device():
    c = small()
    assert config_differences(c, dataclasses.replace(c, device="cpu")) == {}
    assert config_differences(c, dataclasses.replace(c, lr_g=5e-4)) == {"lr_g": (1e-3, 5e-4)}
    nu = ImageGANConfig(method="nu_gan", nu=NuGANConfig(k=2))
    assert config_differences(nu, dataclasses.replace(nu, nu=NuGANConfig(k=3))) == {"nu.k": (2, 3)}
    assert "config class" in config_differences(c.train_config(), c)


# ---- training ------------------------------------------------------------------------------
def test_the_same_config_gives_bit_identical_weights(classifier, digits):
    a = train_image_gan(small(), digits, classifier)
    b = train_image_gan(small(), digits, classifier)
    assert_same_weights(weights(a.generator), weights(b.generator))
    assert_same_weights(weights(a.critic), weights(b.critic))
    assert a.final == b.final and a.history == b.history
    c = train_image_gan(small(seed=4), digits, classifier)
    assert not torch.equal(
        a.generator.state_dict()["net.0.weight"], c.generator.state_dict()["net.0.weight"]
    )


@pytest.mark.parametrize("architecture", ["dense", "dcgan"])
def test_the_vanilla_run_equals_a_hand_built_core_train_run(classifier, digits, architecture):
    config = small(architecture=architecture)
    run = train_image_gan(config, digits, classifier)
    set_seed(config.seed)  # lesson 04's order: seed, build the pair, train
    pair = build_pair(architecture, 2)
    history = train(pair.generator, pair.critic, digits, config.train_config())
    assert_same_weights(weights(run.generator), weights(pair.generator))
    assert_same_weights(weights(run.critic), weights(pair.critic))
    assert run.history.series("g_loss")[1].tolist() == history.series("g_loss")[1].tolist()
    assert run.series("is_mean")[0].tolist() == [1, 2] and len(run.evaluator.records) == 2
    assert run.final["eval_samples"] == N and run.last.class_counts.sum() == N
    assert run.steps_per_s > 0 and run.seconds > 0 and not run.reused


def test_a_colour_run_without_a_classifier_logs_the_image_metrics():
    torch.manual_seed(0)
    colour = torch.rand(16, 3, 32, 32) * 2 - 1
    config = small(image_shape=(3, 32, 32), num_images=16, eval_samples=20)
    run = train_image_gan(config, colour, None)
    assert run.last.class_counts is None and run.last.grid.shape[1:] == (3, 32, 32)
    assert "is_mean" not in run.final and 0 <= run.final["saturated_share"] <= 1


def test_data_that_does_not_fit_the_config_is_an_error(classifier, digits):
    with pytest.raises(ValueError, match="num_images"):
        train_image_gan(small(num_images=64), digits, classifier)
    with pytest.raises(ValueError, match="image_shape"):
        train_image_gan(small(num_images=None), digits.reshape(32, 784), classifier)
    with pytest.raises(TypeError, match="ImageGANConfig"):
        train_image_gan(small().train_config(), digits, classifier)


def test_dist_gan_trains_through_the_recipe_on_uniform_latents(classifier, digits):
    config = dist_gan_image_config(
        architecture="dense",
        latent_dim=2,
        batch_size=8,
        num_steps=6,
        steps_per_epoch=3,
        eval_samples=N,
        seed=2,
    )
    assert config.betas == (0.5, 0.9) and config.latent_prior == "uniform"
    run = train_image_gan(config, digits, classifier)
    assert run.kind == "dist_gan" and isinstance(run.encoder, MLPEncoder)
    assert run.evaluator.latent_prior == "uniform"
    epochs, values = run.series("kl_to_uniform")
    assert epochs.tolist() == [1, 2] and np.isfinite(values).all()
    assert run.history.series("recon")[0].size > 0 and run.extras["lambda_w"] > 0
    again = train_image_gan(config, digits, classifier)
    assert_same_weights(weights(run.generator), weights(again.generator))
    assert_same_weights(weights(run.encoder), weights(again.encoder))
    recon = reconstruct(run.encoder, run.generator, digits[:4])
    assert recon.shape == (4, 1, 28, 28)


def test_nu_gan_trains_through_the_recipe_with_extra_callbacks(classifier, digits):
    nu = NuGANConfig(every_steps=2, k=2, mode="project", max_iterations=8)
    config = dataclasses.replace(small(), method="nu_gan", nu=nu)
    spectra = spectrum_callback(3, k=2, data=digits, max_iterations=6)
    run = train_image_gan(config, digits, classifier, callbacks=[spectra])
    assert run.kind == "nu_gan" and run.hook is not None and run.hook.config == nu
    assert run.history.series("nu_eig_1")[0].tolist() == [0, 2, 4]
    assert run.history.series("g_eig_1")[0].tolist() == [3, 6]
    assert run.series("is_mean")[0].tolist() == [1, 2]
    # monitor mode trains exactly like the vanilla GAN
    monitor = dataclasses.replace(config, nu=dataclasses.replace(nu, mode="monitor"))
    watched = train_image_gan(monitor, digits, classifier)
    plain = train_image_gan(small(), digits, classifier)
    assert_same_weights(weights(watched.generator), weights(plain.generator))


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


# ---- saved runs ------------------------------------------------------------------------------
def test_a_saved_run_holds_its_image_gan_config(classifier, digits):
    run = train_image_gan(small(), digits, classifier)
    path = save_run(run, "04_vanilla_gan")
    assert path == model_checkpoint_path("04_vanilla_gan", "dense", "non_saturating", 2, 3)
    saved = load_generator("04_vanilla_gan", "dense", "non_saturating", 2, 3)
    assert saved.config == run.config and isinstance(saved.config, ImageGANConfig)
    assert saved.metrics == run.final


def test_an_equal_config_reuses_the_saved_run_and_replays_its_last_epoch(
    classifier, digits, capsys
):
    trained = load_or_train(small(), digits, classifier, lesson="04_vanilla_gan")
    assert trained.source == "trained here" and trained.path.is_file()
    assert "not reused (no saved run)" in capsys.readouterr().out

    reused = load_or_train(small(device="cpu"), digits, classifier, lesson="04_vanilla_gan")
    assert capsys.readouterr().out == ""
    assert reused.reused and reused.source == "04_vanilla_gan's checkpoint"
    assert reused.extras["replay_matches"] and reused.final == trained.final
    np.testing.assert_array_equal(reused.last.class_counts, trained.last.class_counts)
    torch.testing.assert_close(reused.last.grid, trained.last.grid, rtol=0, atol=1e-6)
    for key in ("is_mean", "classes_covered", "kl_to_uniform"):
        np.testing.assert_array_equal(reused.series(key)[1], trained.series(key)[1])
    assert_same_weights(weights(reused.generator), weights(trained.generator))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lr": 5e-4}, "lr_g"),
        ({"epochs": 3}, "num_steps"),
        ({"eval_samples": 2 * N}, "eval_samples"),
        ({"batch_size": 4}, "batch_size"),
    ],
    ids=["lr", "epochs", "eval_samples", "batch_size"],
)
def test_a_config_differing_in_one_field_is_trained_and_the_field_named(
    classifier, digits, capsys, change, field
):
    load_or_train(small(), digits, classifier, lesson="04_vanilla_gan")
    capsys.readouterr()
    run = load_or_train(small(**change), digits, classifier, lesson="04_vanilla_gan", save=False)
    message = capsys.readouterr().out
    assert run.source == "trained here" and not run.reused
    assert message.count("\n") == 1 and "not reused" in message and f"{field}:" in message
    assert "fields differ" in message


def test_reuse_false_always_trains_and_a_lesson_05_baseline_equals_lesson_04s(classifier, digits):
    lesson04 = load_or_train(small(), digits, classifier, lesson="04_vanilla_gan", reuse=False)
    # lesson 05 builds its baseline from the same parameters through the same helper
    baseline = lesson04_config(
        "dense", 2, 3, 2, batch_size=8, seed=3, eval_samples=N, num_images=32
    )
    assert config_differences(lesson04.config, baseline) == {}
    reused = load_or_train(baseline, digits, classifier, lesson="04_vanilla_gan", save=False)
    assert reused.reused
    again = load_or_train(small(), digits, classifier, lesson="04_vanilla_gan", reuse=False)
    assert not again.reused


def test_a_checkpoint_of_an_older_config_class_is_a_cache_miss(classifier, digits, capsys):
    run = train_image_gan(small(), digits, classifier)
    run.config = run.config.train_config()  # as lesson 04 saved before the recipe
    from gan_utils.core.checkpoints import save_generator

    save_generator(
        run.generator,
        "04_vanilla_gan",
        "dense",
        "non_saturating",
        run.config,
        run.generator_builder,
        run.generator_kwargs,
        metrics=run.final,
        history=run.history,
    )
    again = load_or_train(small(), digits, classifier, lesson="04_vanilla_gan", save=False)
    assert not again.reused and "config class" in capsys.readouterr().out


def test_the_evaluator_of_a_run_uses_the_configs_prior_seed_and_n(classifier, digits):
    run = train_image_gan(small(eval_samples=20), digits, classifier)
    fresh = EpochEvaluator(classifier, 2, 3, num_samples=20, seed=3)
    torch.testing.assert_close(run.evaluator.fixed_z, fresh.fixed_z, rtol=0, atol=0)
