"""Lesson 07's course table: finding saved generators, training missing lessons, scoring."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gan_utils.core.checkpoints import save_generator
from gan_utils.core.latent import generate, sample_latent
from gan_utils.core.train import TrainConfig
from gan_utils.images.classifier import DigitClassifier
from gan_utils.images.course_table import (
    GeneratorKey,
    course_table,
    ensure_lessons_trained,
    saved_generator_keys,
    score_generator,
    summary_rows,
    table_markdown,
)
from gan_utils.images.metrics import classifier_statistics, score_digits
from gan_utils.images.models import dense_generator
from gan_utils.images.recipe import dist_gan_image_config, save_run, train_image_gan
from gan_utils.images.references import format_cell

BUILDER = "gan_utils.images.models:dense_generator"


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(3)
    return DigitClassifier(width=4, feature_dim=8).eval()  # untrained: the metrics still apply


@pytest.fixture(scope="module")
def reference(classifier):
    torch.manual_seed(4)
    return classifier_statistics(torch.rand(200, 1, 28, 28) * 2 - 1, classifier)


def _save(lesson, loss, latent_dim, seed=0, model="dense", **kwargs):
    torch.manual_seed(latent_dim + seed)
    builder_kwargs = {"latent_dim": latent_dim, "width": 16, "depth": 1, **kwargs}
    generator = dense_generator(**builder_kwargs)
    config = TrainConfig(latent_dim=latent_dim, seed=seed, batch_size=8, num_steps=1)
    return save_generator(generator, lesson, model, loss, config, BUILDER, builder_kwargs)


class ConstantImage(nn.Module):
    """A 'generator' that ignores z and returns one fixed image: total collapse."""

    def __init__(self, image):
        super().__init__()
        self.image = nn.Parameter(image.clone(), requires_grad=False)

    def forward(self, z):
        return self.image.expand(z.shape[0], *self.image.shape)


def test_saved_generators_are_found_from_their_own_records(root):
    _save("04_vanilla_gan", "non_saturating", 1)
    _save("04_vanilla_gan", "non_saturating", 10)
    _save("05_dist_gan", "dist_gan", 10, seed=1)
    keys = saved_generator_keys(["04_vanilla_gan", "05_dist_gan", "06_nu_gan_lanczos"])
    assert keys == [
        GeneratorKey("04_vanilla_gan", "dense", "non_saturating", 1, 0),
        GeneratorKey("04_vanilla_gan", "dense", "non_saturating", 10, 0),
        GeneratorKey("05_dist_gan", "dense", "dist_gan", 10, 1),
    ]
    assert saved_generator_keys(["05_dist_gan"], seed=0) == []
    assert keys[1].label == "04 dense non_saturating z10"


def test_only_lessons_without_generators_are_run_and_announced(root):
    _save("04_vanilla_gan", "non_saturating", 10)
    calls, messages = [], []

    def runner(lesson, parameters):
        calls.append((lesson, parameters))
        _save(lesson, "dist_gan", 10)

    ran = ensure_lessons_trained(
        ["04_vanilla_gan", "05_dist_gan"],
        seed=0,
        runner=runner,
        parameters={"05_dist_gan": {"epochs": 1}},
        log=messages.append,
    )
    assert ran == ["05_dist_gan"]
    assert calls == [("05_dist_gan", {"seed": 0, "epochs": 1})]
    assert len(messages) == 1 and "05_dist_gan" in messages[0] and "seed 0" in messages[0]
    # a second call finds everything and runs nothing
    assert ensure_lessons_trained(["04_vanilla_gan", "05_dist_gan"], 0, runner, log=print) == []


def test_a_lesson_that_saves_nothing_is_an_error(root):
    with pytest.raises(RuntimeError, match="06_nu_gan_lanczos ran but saved no generator"):
        ensure_lessons_trained(["06_nu_gan_lanczos"], 0, runner=lambda *a: None, log=lambda m: None)


def test_a_collapsed_generator_scores_the_closed_form_values(classifier, reference):
    torch.manual_seed(0)
    image = torch.rand(1, 28, 28) * 2 - 1
    row = score_generator(ConstantImage(image), 2, classifier, reference, num_samples=100, draws=3)
    assert row["n"] == 100 and row["draws"] == 3
    assert row["is_mean_mean"] == pytest.approx(1.0, abs=1e-9)  # p(y|x) = p(y): KL 0
    assert row["classes_covered_mean"] == 1 and row["classes_covered_std"] == 0
    assert row["kl_to_uniform_mean"] == pytest.approx(math.log(10))
    # FID with a zero covariance: ||mu_g - mu_ref||^2 + Tr(Sigma_ref)
    feature = classifier.features(image[None]).double().numpy()[0]
    expected = float(((feature - reference.mean) ** 2).sum() + np.trace(reference.cov))
    assert row["fid_mean"] == pytest.approx(expected, rel=1e-6)
    assert row["fid_std"] == pytest.approx(0.0, abs=1e-6 * expected)


def test_draws_differ_and_are_reproducible(classifier, reference):
    torch.manual_seed(0)
    generator = dense_generator(latent_dim=4, width=16, depth=1)
    a = score_generator(generator, 4, classifier, reference, num_samples=50, draws=2, seed=5)
    b = score_generator(generator, 4, classifier, reference, num_samples=50, draws=2, seed=5)
    assert a == b
    assert a["fid_std"] > 0  # two different latent draws give two different FIDs
    single = score_generator(generator, 4, classifier, reference, num_samples=50, draws=1)
    assert math.isnan(single["fid_std"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_samples": 55}, "num_samples must be a multiple of 10"),
        ({"num_samples": 5}, "num_samples must be an integer >= 10"),
        ({"draws": 0}, "draws must be an integer >= 1"),
    ],
)
def test_bad_settings_name_the_parameter(classifier, reference, kwargs, message):
    generator = dense_generator(latent_dim=2, width=8, depth=1)
    with pytest.raises(ValueError, match=message):
        score_generator(generator, 2, classifier, reference, **kwargs)


def test_course_table_scores_digit_generators_and_skips_colour_ones(root, classifier, reference):
    _save("04_vanilla_gan", "non_saturating", 1)
    _save("04_vanilla_gan", "non_saturating", 10)
    _save("04_vanilla_gan", "non_saturating", 10, model="dense_colour", image_shape=(3, 32, 32))
    keys = saved_generator_keys(["04_vanilla_gan"])
    assert len(keys) == 3
    rows = course_table(keys, classifier, reference, num_samples=50, draws=2)
    assert [(r["model"], r["latent_dim"]) for r in rows] == [("dense", 1), ("dense", 10)]
    assert all(r["n"] == 50 and r["draws"] == 2 and r["parameters"] > 0 for r in rows)
    markdown = table_markdown(rows)
    assert (
        markdown.count("\n") == 3 and "| 04_vanilla_gan | dense | non_saturating | 10 |" in markdown
    )
    summary = summary_rows(rows)
    assert summary[0]["model"] == "04 dense non_saturating z1"
    assert summary[1]["FID"] == round(rows[1]["fid_mean"], 1)


def test_scoring_draws_its_own_latents_and_leaves_the_global_rng_alone(classifier, reference):
    torch.manual_seed(0)
    generator = dense_generator(latent_dim=3, width=16, depth=1)
    state = torch.get_rng_state()
    row = score_generator(generator, 3, classifier, reference, num_samples=50, draws=2, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    # draw 1 is score_digits on G(z), z from a generator seeded with seed + 1
    z = sample_latent(50, 3, rng=torch.Generator().manual_seed(6))
    second, _ = score_digits(generate(generator, z), classifier, reference)
    first, _ = score_digits(
        generate(generator, sample_latent(50, 3, rng=torch.Generator().manual_seed(5))),
        classifier,
        reference,
    )
    assert row["fid_mean"] == pytest.approx((first["fid"] + second["fid"]) / 2, rel=1e-12)


def test_a_recipe_run_is_scored_with_its_own_latent_prior(root, classifier, reference, monkeypatch):
    digits = torch.rand(16, 1, 28, 28) * 2 - 1
    config = dist_gan_image_config(
        architecture="dense",
        latent_dim=2,
        batch_size=8,
        num_steps=2,
        steps_per_epoch=1,
        eval_samples=20,
    )
    save_run(train_image_gan(config, digits, classifier), "05_dist_gan")
    priors = []
    real = score_generator

    def spy(*args, **kwargs):
        priors.append(args[6] if len(args) > 6 else kwargs.get("latent_prior"))
        return real(*args, **kwargs)

    monkeypatch.setattr("gan_utils.images.course_table.score_generator", spy)
    rows = course_table(saved_generator_keys(["05_dist_gan"]), classifier, reference, 20, 1)
    assert priors == ["uniform"] and rows[0]["loss"] == "dist_gan"


def test_format_cell():
    assert format_cell(3.14159, 0.2, 2) == "3.14 ± 0.20"
    assert format_cell(3.14159, float("nan"), 1) == "3.1"
