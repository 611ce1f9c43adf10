"""The per-epoch evaluation hook, generator checkpoints and image diagnostics."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from gan_utils.core.checkpoints import load_generator, model_checkpoint_path, save_generator
from gan_utils.core.latent import generate, sample_latent
from gan_utils.core.train import TrainConfig, train
from gan_utils.images.classifier import DigitClassifier
from gan_utils.images.evaluation import (
    DIGIT_KEYS,
    EVAL_KEYS,
    IMAGE_KEYS,
    EpochEvaluator,
    latent_walk,
    mean_pairwise_distance,
    saturated_share,
)
from gan_utils.images.metrics import classifier_statistics, fid, score_digits
from gan_utils.images.models import build_pair, dense_generator

N = 50  # images scored per evaluation in these tests (5 splits of 10)


@pytest.fixture
def classifier():
    torch.manual_seed(123)
    return DigitClassifier(width=4, feature_dim=8).eval()  # untrained: the metrics still apply


@pytest.fixture
def digits():
    torch.manual_seed(1)
    return torch.rand(64, 1, 28, 28) * 2 - 1


@pytest.fixture(autouse=True)
def _own_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))


def small_pair(architecture="dcgan", latent_dim=2):
    sizes = {"base_width": 2} if architecture == "dcgan" else {"width": 8, "depth": 1}
    return build_pair(architecture, latent_dim, **sizes)


def small_config(**changes):
    return TrainConfig(
        **{
            "latent_dim": 2,
            "batch_size": 8,
            "num_steps": 12,
            "log_every": 2,
            "progress": False,
            **changes,
        }
    )


def test_hook_logs_its_keys_every_epoch_with_the_stated_n(classifier, digits):
    pair = small_pair("dense")
    evaluator = EpochEvaluator(classifier, 2, steps_per_epoch=4, num_samples=N, splits=5)
    history = train(pair.generator, pair.critic, digits, small_config(), callbacks=[evaluator])
    for key in EVAL_KEYS:
        steps, _ = history.series(key)
        assert steps.tolist() == [4, 8, 12]
    assert history.series("eval_samples")[1].tolist() == [N, N, N]
    assert history.series("epoch")[1].tolist() == [1, 2, 3]
    assert history.series("d_loss")[0].tolist() == [2, 4, 6, 8, 10, 12]  # loss rows untouched
    assert [r.grid.shape for r in evaluator.records] == [(64, 1, 28, 28)] * 3
    assert all(r.class_counts.sum() == N for r in evaluator.records)
    assert evaluator.final()["epoch"] == 3


def test_without_a_classifier_only_the_image_metrics_are_logged():
    torch.manual_seed(0)
    colour = torch.rand(32, 3, 32, 32) * 2 - 1
    pair = build_pair("dense", 2, image_shape=(3, 32, 32), width=8, depth=1)
    evaluator = EpochEvaluator(None, 2, steps_per_epoch=6, num_samples=N, splits=5, grid_size=9)
    history = train(pair.generator, pair.critic, colour, small_config(), callbacks=[evaluator])
    for key in IMAGE_KEYS:
        assert history.series(key)[0].tolist() == [6, 12]
    logged = set(history.keys())
    assert not logged & set(DIGIT_KEYS)
    last = evaluator.records[-1]
    assert last.class_counts is None and last.grid.shape == (9, 3, 32, 32)
    assert last.metrics["grid_distance"] == pytest.approx(mean_pairwise_distance(last.grid))
    assert 0 <= last.metrics["saturated_share"] <= 1


def test_the_hook_scores_with_the_one_image_scorer(classifier, digits):
    reference = classifier_statistics(digits, classifier)
    generator = dense_generator(2, width=8, depth=1)
    evaluator = EpochEvaluator(
        classifier, 2, steps_per_epoch=1, num_samples=N, splits=5, seed=4, reference=reference
    )
    record = evaluator.evaluate(generator, 1)
    rng = torch.Generator().manual_seed(4)  # the hook's stream: fixed_z first, then N latents
    sample_latent(64, 2, rng=rng)
    images = generate(generator, sample_latent(N, 2, rng=rng))
    metrics, counts = score_digits(images, classifier, reference, splits=5)
    for key, value in metrics.items():
        assert record.metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    np.testing.assert_array_equal(record.class_counts, counts)
    assert record.metrics["fid"] == pytest.approx(
        fid(classifier.features(images), classifier.features(digits)), rel=1e-9
    )
    predicted = classifier.logits(images).argmax(dim=1).numpy()
    assert counts.tolist() == np.bincount(predicted, minlength=10).tolist()


@pytest.mark.parametrize("architecture", ["dense", "dcgan"])
def test_training_is_identical_with_and_without_the_hook(classifier, digits, architecture):
    """The hook draws from its own generator and evaluates in eval mode (batch norm)."""
    config = small_config(seed=3)
    torch.manual_seed(0)  # the same initial weights for both runs
    plain = small_pair(architecture)
    history_plain = train(plain.generator, plain.critic, digits, config)
    rng_plain = torch.get_rng_state()
    torch.manual_seed(0)
    hooked = small_pair(architecture)
    evaluator = EpochEvaluator(classifier, 2, steps_per_epoch=3, num_samples=N, splits=5)
    history_hooked = train(hooked.generator, hooked.critic, digits, config, callbacks=[evaluator])
    assert torch.equal(torch.get_rng_state(), rng_plain)
    for a, b in ((plain.generator, hooked.generator), (plain.critic, hooked.critic)):
        state_a, state_b = a.state_dict(), b.state_dict()
        assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert history_plain.series("g_loss")[1].tolist() == history_hooked.series("g_loss")[1].tolist()
    assert len(evaluator.records) == 4
    assert plain.generator.training and hooked.generator.training  # mode restored


def test_fixed_noise_comes_from_the_seed_not_the_global_rng(classifier):
    torch.manual_seed(0)
    first = EpochEvaluator(classifier, 3, steps_per_epoch=1, num_samples=N, splits=5, seed=7)
    torch.manual_seed(99)
    state = torch.get_rng_state()
    second = EpochEvaluator(classifier, 3, steps_per_epoch=1, num_samples=N, splits=5, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(first.fixed_z, second.fixed_z, rtol=0, atol=0)
    expected = torch.randn(64, 3, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(first.fixed_z, expected, rtol=0, atol=0)
    other = EpochEvaluator(classifier, 3, steps_per_epoch=1, num_samples=N, splits=5, seed=8)
    assert not torch.equal(first.fixed_z, other.fixed_z)


def test_uniform_prior_stays_in_its_box():
    z = sample_latent(1000, 2, "uniform", rng=torch.Generator().manual_seed(0))
    assert z.min() >= -1 and z.max() <= 1 and z.min() < -0.99
    with pytest.raises(ValueError, match="latent_prior"):
        sample_latent(2, 2, "cauchy", rng=torch.Generator())


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_samples": 52}, "num_samples"),
        ({"num_samples": 0}, "num_samples"),
        ({"steps_per_epoch": 0}, "steps_per_epoch"),
        ({"latent_prior": "cauchy"}, "latent_prior"),
        ({"seed": -1}, "seed"),
        ({"min_share": 0.0}, "min_share"),
    ],
)
def test_evaluator_rejects_bad_settings(classifier, kwargs, name):
    settings = {"steps_per_epoch": 2, "num_samples": N, "splits": 5, **kwargs}
    with pytest.raises(ValueError, match=name):
        EpochEvaluator(classifier, 2, **settings)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"num_samples": 50.0}, "num_samples"),
        ({"steps_per_epoch": "2"}, "steps_per_epoch"),
        ({"seed": True}, "seed"),
        ({"latent_prior": 1}, "latent_prior"),
    ],
)
def test_evaluator_rejects_wrong_types_with_type_errors(classifier, kwargs, name):
    settings = {"steps_per_epoch": 2, "num_samples": N, "splits": 5, **kwargs}
    with pytest.raises(TypeError, match=name):
        EpochEvaluator(classifier, 2, **settings)


def test_save_and_load_rebuild_an_identical_generator(digits):
    pair = small_pair("dcgan", latent_dim=2)
    config = small_config(seed=5)
    history = train(pair.generator, pair.critic, digits, config)
    path = save_generator(
        pair.generator,
        lesson="04_vanilla_gan",
        model="dcgan",
        loss="wgan_gp",
        config=config,
        builder=pair.generator_builder,
        builder_kwargs=pair.generator_kwargs,
        metrics={"is_mean": 1.5},
        history=history,
    )
    assert path == model_checkpoint_path("04_vanilla_gan", "dcgan", "wgan_gp", 2, 5)
    saved = load_generator("04_vanilla_gan", "dcgan", "wgan_gp", latent_dim=2, seed=5)
    assert saved.config == config
    assert saved.builder_kwargs == pair.generator_kwargs
    assert saved.metrics == {"is_mean": 1.5}
    assert saved.history == history
    assert not saved.generator.training
    pair.generator.eval()
    z = torch.randn(6, 2)
    with torch.no_grad():
        torch.testing.assert_close(saved.generator(z), pair.generator(z), rtol=0, atol=0)


def test_missing_checkpoint_names_the_path_and_the_notebook():
    expected = model_checkpoint_path("04_vanilla_gan", "dense", "non_saturating", 10, 0)
    with pytest.raises(FileNotFoundError) as error:
        load_generator("04_vanilla_gan", "dense", "non_saturating", latent_dim=10, seed=0)
    assert str(expected) in str(error.value)
    assert "notebooks/04_vanilla_gan.ipynb" in str(error.value)


def test_save_rejects_a_foreign_builder_and_a_latent_mismatch():
    generator = dense_generator(2, width=4, depth=1)
    config = small_config()
    common = {"lesson": "04_vanilla_gan", "model": "dense", "loss": "non_saturating"}
    with pytest.raises(ValueError, match="builder"):
        save_generator(generator, **common, config=config, builder=print, builder_kwargs={})
    with pytest.raises(ValueError, match="latent_dim"):
        save_generator(
            generator,
            **common,
            config=config,
            builder="gan_utils.images.models:dense_generator",
            builder_kwargs={"latent_dim": 3},
        )


def test_latent_walk_follows_one_axis():
    torch.manual_seed(0)
    generator = dense_generator(1, width=8, depth=1)
    values = np.linspace(-2, 2, 5)
    images = latent_walk(generator, 1, values)
    with torch.no_grad():
        expected = generator(torch.tensor(values, dtype=torch.float32).reshape(-1, 1))
    torch.testing.assert_close(images, expected)
    with pytest.raises(ValueError, match="axis"):
        latent_walk(generator, 1, values, axis=1)


def test_saturated_share_by_hand():
    images = torch.tensor([[-1.0, -0.99, 0.0, 0.5], [0.97, 0.98, 1.0, -0.2]]).reshape(2, 1, 2, 2)
    assert saturated_share(images, threshold=0.98) == pytest.approx(4 / 8)
    assert saturated_share(images, threshold=1.0) == pytest.approx(2 / 8)
    with pytest.raises(ValueError, match="threshold"):
        saturated_share(images, threshold=0)


def test_mean_pairwise_distance_against_scipy():
    torch.manual_seed(0)
    images = torch.rand(7, 3, 4, 4)
    expected = pdist(images.reshape(7, -1).double().numpy()).mean()
    assert mean_pairwise_distance(images) == pytest.approx(expected, rel=1e-12)
    assert mean_pairwise_distance(images[:1].repeat(5, 1, 1, 1)) == 0.0  # one output repeated
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_distance(images[:1])


def test_a_dist_gan_generator_round_trips_with_its_config_class():
    from gan_utils.images.dist_gan import DistGANConfig

    pair = small_pair("dcgan", latent_dim=3)
    config = DistGANConfig(latent_dim=3, num_steps=7, seed=4, lambda_r=0.5, progress=False)
    path = save_generator(
        pair.generator,
        "05_dist_gan",
        "dcgan",
        "dist_gan",
        config,
        pair.generator_builder,
        pair.generator_kwargs,
        metrics={"is_mean": 2.0},
    )
    assert path == model_checkpoint_path("05_dist_gan", "dcgan", "dist_gan", 3, 4)
    assert torch.load(path, weights_only=False)["config_class"] == (
        "gan_utils.images.dist_gan:DistGANConfig"
    )
    saved = load_generator("05_dist_gan", "dcgan", "dist_gan", latent_dim=3, seed=4)
    assert isinstance(saved.config, DistGANConfig)
    assert saved.config == config and saved.config.lambda_r == 0.5
    pair.generator.eval()
    z = torch.rand(4, 3) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(saved.generator(z), pair.generator(z), rtol=0, atol=0)


def test_a_checkpoint_of_an_older_format_is_an_error_naming_the_file_and_the_lesson():
    pair = small_pair("dense")
    config = small_config(seed=2)
    path = save_generator(
        pair.generator,
        "04_vanilla_gan",
        "dense",
        "non_saturating",
        config,
        pair.generator_builder,
        pair.generator_kwargs,
    )
    payload = torch.load(path, weights_only=False)
    payload["format"] = 1  # written before builders and config classes were stored together
    del payload["config_class"]
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"format 1.*expected 2.*04_vanilla_gan\.ipynb"):
        load_generator("04_vanilla_gan", "dense", "non_saturating", latent_dim=2, seed=2)


def test_fields_a_config_class_no_longer_has_are_dropped_on_load():
    pair = small_pair("dense")
    config = small_config(seed=2)
    path = save_generator(
        pair.generator,
        "04_vanilla_gan",
        "dense",
        "non_saturating",
        config,
        pair.generator_builder,
        pair.generator_kwargs,
    )
    payload = torch.load(path, weights_only=False)
    payload["config"]["retired_field"] = 1  # a field this TrainConfig no longer has
    torch.save(payload, path)
    saved = load_generator("04_vanilla_gan", "dense", "non_saturating", latent_dim=2, seed=2)
    assert isinstance(saved.config, TrainConfig) and saved.config == config


@pytest.mark.parametrize(
    "config",
    [{"latent_dim": 2, "seed": 0}, 3, TrainConfig],
    ids=["dict", "number", "class"],
)
def test_save_rejects_a_config_that_is_not_a_config_instance(config):
    pair = small_pair("dense")
    with pytest.raises(TypeError, match="config must be a training config dataclass instance"):
        save_generator(
            pair.generator,
            "05_dist_gan",
            "dense",
            "dist_gan",
            config,
            pair.generator_builder,
            pair.generator_kwargs,
        )


def test_save_rejects_a_dataclass_without_latent_dim_or_seed():
    from gan_utils.images.metrics import FeatureStatistics

    pair = small_pair("dense")
    stats = FeatureStatistics(np.zeros(2), np.eye(2), 2)
    with pytest.raises(ValueError, match="latent_dim and seed"):
        save_generator(
            pair.generator,
            "05_dist_gan",
            "dense",
            "dist_gan",
            stats,
            pair.generator_builder,
            pair.generator_kwargs,
        )


def test_advance_replays_the_latents_of_a_later_evaluation(classifier):
    generator = dense_generator(2, width=4, depth=1)
    first = EpochEvaluator(classifier, 2, steps_per_epoch=1, num_samples=N, splits=5, seed=7)
    records = [first.evaluate(generator, step) for step in (1, 2, 3)]
    replay = EpochEvaluator(classifier, 2, steps_per_epoch=1, num_samples=N, splits=5, seed=7)
    replay.advance(2)
    again = replay.evaluate(generator, 3)
    assert again.metrics == records[-1].metrics
    np.testing.assert_array_equal(again.class_counts, records[-1].class_counts)
    with pytest.raises(ValueError, match="evaluations"):
        replay.advance(-1)
