"""Lesson 07's course table: the reference models grouped over seeds and scored, and the
live runs (finding saved generators, training missing lessons, scoring)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from gan_utils.core.checkpoints import model_checkpoint_path, save_generator
from gan_utils.core.latent import generate, sample_latent
from gan_utils.core.train import TrainConfig
from gan_utils.images.classifier import DigitClassifier
from gan_utils.images.course_table import (
    COURSE_COLUMNS,
    GeneratorKey,
    ReferenceGroup,
    baseline_of,
    compare_to_baseline,
    course_table,
    ensure_lessons_trained,
    group_rows,
    models_dir,
    reference_groups,
    reference_results,
    reference_summary_rows,
    relative_difference,
    saved_generator_keys,
    score_generator,
    score_reference_runs,
    setting_differences,
    summary_rows,
    table_markdown,
)
from gan_utils.images.metrics import classifier_statistics, score_digits
from gan_utils.images.mnist import load_mnist
from gan_utils.images.models import dense_generator
from gan_utils.images.recipe import dist_gan_image_config, save_run, train_image_gan
from gan_utils.images.references import (
    REFERENCES,
    TINY,
    RealDigits,
    evaluation_latents,
    format_cell,
    load_reference,
    load_reference_classifier,
    read_manifest,
    reference_table_markdown,
    score_images,
    verdict,
)

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


def test_looking_for_saved_generators_creates_no_folder(root):
    assert saved_generator_keys(["04_vanilla_gan", "05_dist_gan"], seed=0) == []
    assert not (root / "artifacts").exists()
    # the folder looked in is the one save_generator writes to
    path = model_checkpoint_path("05_dist_gan", "dense", "dist_gan", 2, 0)
    assert models_dir("05_dist_gan") == path.parent


# ---- the reference models ------------------------------------------------------------------
GAN_REFERENCES = [n for n, r in REFERENCES.items() if r.config is not None and n != TINY]


def _metrics(names, seed=0):
    """Made-up final metrics for ``names``: every column of the course table."""
    rng = np.random.default_rng(seed)
    return {n: {key: float(rng.uniform(1, 10)) for key, *_ in COURSE_COLUMNS} for n in names}


def test_reference_groups_hold_every_gan_reference_once_grouped_over_seeds():
    groups = reference_groups()
    names = [n for g in groups for n in g.names]
    assert sorted(names) == sorted(GAN_REFERENCES)  # the classifier and tiny-dense are left out
    for group in groups:
        stems = {re.sub(r"-s\d+$", "", n) for n in group.names}
        assert stems == {group.key}  # one method, architecture and latent size per group
        configs = [REFERENCES[n].config for n in group.names]
        assert {(c.method, c.architecture, c.latent_dim) for c in configs} == {
            (group.method, group.architecture, group.latent_dim)
        }
        assert sorted(c.seed for c in configs) == list(range(group.seeds)) or group.lone
    by_key = {g.key: g for g in groups}
    assert by_key["vanilla-dcgan-z10"].seeds == 3
    assert by_key["vanilla-dcgan-z10"].label == "vanilla DCGAN z10 (lesson 04)"
    assert by_key["distgan-dcgan-z1"].label == "Dist-GAN DCGAN z1 (lesson 05)"
    assert by_key["nugan-dense-z10"].label == "NU-GAN dense z10 (lesson 06)"
    long = by_key["vanilla-dcgan-z1-long"]
    assert long.lone and long.seeds == 1 and long.label == "vanilla DCGAN z1, long run (lesson 04)"
    assert long.result_key == "ref_vanilla_dcgan_z1_long"
    # every method comes after its baseline, and the baseline is the vanilla run of the same
    # architecture and latent size with several seeds
    order = [g.key for g in groups]
    for group in groups:
        baseline = baseline_of(group, groups)
        if group.method == "gan":
            assert baseline is None
            continue
        assert baseline.method == "gan" and not baseline.lone
        assert (baseline.architecture, baseline.latent_dim) == (
            group.architecture,
            group.latent_dim,
        )
        assert order.index(baseline.key) < order.index(group.key)
    assert baseline_of(by_key["distgan-dcgan-z10"], groups).key == "vanilla-dcgan-z10"
    assert baseline_of(by_key["nugan-dense-z1"], groups).key == "vanilla-dense-z1"
    assert baseline_of(by_key["nugan-dense-z1"], [by_key["nugan-dense-z1"]]) is None


def test_reference_groups_keep_only_the_latent_sizes_asked_for():
    groups = reference_groups([10])
    assert groups and {g.latent_dim for g in groups} == {10}
    with pytest.raises(ValueError, match=r"latent_sizes must hold at least one latent size"):
        reference_groups([])
    with pytest.raises(ValueError, match=r"latent_sizes\[1\] must be an integer >= 1, got 0"):
        reference_groups([1, 0])


def test_group_rows_are_the_mean_and_std_over_seeds():
    groups = [
        ReferenceGroup("a-z1", "a z1", "gan", "dense", 1, "04_vanilla_gan", ("r1", "r2", "r3")),
        ReferenceGroup("b-z1-x", "b z1", "gan", "dense", 1, "04_vanilla_gan", ("r4",)),
    ]
    metrics = _metrics(["r1", "r2", "r3", "r4"])
    rows = group_rows(groups, metrics)
    assert [(r["label"], r["seeds"]) for r in rows] == [("a z1", 3), ("b z1", 1)]
    for key, *_ in COURSE_COLUMNS:
        values = [metrics[n][key] for n in ("r1", "r2", "r3")]
        mean = sum(values) / 3
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
        assert rows[0][f"{key}_mean"] == pytest.approx(mean, rel=1e-12)
        assert rows[0][f"{key}_std"] == pytest.approx(std, rel=1e-12)
        assert rows[1][f"{key}_mean"] == metrics["r4"][key] and math.isnan(rows[1][f"{key}_std"])
    with pytest.raises(KeyError, match="r9"):
        group_rows([ReferenceGroup("c", "c", "gan", "dense", 1, "04", ("r9",))], metrics)

    markdown = reference_table_markdown(
        rows, floors={k: 1.0 for k, *_ in COURSE_COLUMNS}, columns=COURSE_COLUMNS
    )
    lines = markdown.splitlines()
    assert len(lines) == 2 + 2 + 1 and lines[-1].startswith("| real held-out digits | |")
    assert lines[0].count("|") == len(COURSE_COLUMNS) + 3
    is_cell = format_cell(rows[0]["is_mean_mean"], rows[0]["is_mean_std"], 2)
    assert lines[2].startswith(f"| a z1 | 3 | {is_cell} |")
    assert " ± " not in lines[3]  # one seed: the value alone

    summary = reference_summary_rows(rows)
    assert summary[0]["model"] == "a z1" and summary[0]["seeds"] == 3
    assert summary[0]["FID train"] == round(rows[0]["fid_train_mean"], 1)
    results = reference_results(rows, groups)
    assert set(results) == {"ref_a_z1", "ref_b_z1_x"}
    assert results["ref_a_z1"]["recall_mean"] == round(rows[0]["recall_mean"], 4)
    assert results["ref_b_z1_x"]["seeds"] == 1 and results["ref_b_z1_x"]["recall_std"] is None


def test_compare_to_baseline_applies_the_verdict_to_every_metric_with_a_direction():
    method = ReferenceGroup("m-z1", "m", "dist_gan", "dcgan", 1, "05_dist_gan", ("m1", "m2"))
    base = ReferenceGroup("v-z1", "v", "gan", "dcgan", 1, "04_vanilla_gan", ("v1", "v2", "v3"))
    metrics = _metrics(["m1", "m2", "v1", "v2", "v3"], seed=3)
    for name, fid in (("m1", 10.0), ("m2", 11.0), ("v1", 100.0), ("v2", 101.0), ("v3", 99.0)):
        metrics[name]["fid_train"] = fid
    comparison = compare_to_baseline(method, base, metrics)
    directed = [k for k, _, _, higher in COURSE_COLUMNS if higher is not None]
    assert list(comparison) == directed and "density" not in comparison
    assert comparison["fid_train"] == {"method": 10.5, "baseline": 100.0, "verdict": "better"}
    for key, _, _, higher in COURSE_COLUMNS:
        if higher is None:
            continue
        a = [metrics[n][key] for n in method.names]
        b = [metrics[n][key] for n in base.names]
        assert comparison[key]["verdict"] == verdict(a, b, higher)


def test_setting_differences_name_what_a_method_changes_besides_its_loss():
    dist = REFERENCES["distgan-dcgan-z10-s0"].config
    vanilla = REFERENCES["vanilla-dcgan-z10-s0"].config
    same, different = setting_differences(dist, vanilla)
    assert same["num_steps"] == vanilla.num_steps and same["batch_size"] == vanilla.batch_size
    assert different["lr_g"] == (dist.lr_g, vanilla.lr_g) and dist.lr_g != vanilla.lr_g
    assert different["betas"] == (dist.betas, vanilla.betas)
    assert not set(same) & set(different)
    nu = REFERENCES["nugan-dense-z10-s0"].config
    dense = REFERENCES["vanilla-dense-z10-s0"].config
    assert setting_differences(nu, dense)[1] == {}  # NU-GAN keeps its baseline's optimiser
    with pytest.raises(ValueError, match="fields must be fields of ImageGANConfig, got 'speed'"):
        setting_differences(nu, dense, ["lr_g", "speed"])


def test_relative_difference_is_the_largest_over_keys_and_list_elements():
    recorded = {"a": 2.0, "b": 0.0, "c": [10, 20], "n": 1000}
    measured = {"a": 2.2, "b": 0.01, "c": [10, 21], "n": 1000, "extra": 5.0}
    assert relative_difference(recorded, measured) == pytest.approx(0.1)
    assert relative_difference(recorded, dict(recorded)) == 0.0
    with pytest.raises(KeyError, match="'b'"):
        relative_difference(recorded, {"a": 2.0, "c": [10, 20], "n": 1000})
    with pytest.raises(ValueError, match="c: recorded has shape"):
        relative_difference({"c": [1, 2]}, {"c": [1, 2, 3]})


def _local_data_matches_the_references() -> bool:
    data = read_manifest()["real_digits"]["data"]
    return load_mnist("train", verbose=False).fingerprint == data["train"]


@pytest.mark.slow
def test_a_shipped_reference_scored_again_reproduces_its_recorded_metrics():
    if not _local_data_matches_the_references():
        pytest.skip("the references were scored on other digits than these tests see")
    classifier = load_reference_classifier()
    real = RealDigits.build(
        classifier, load_mnist("train", verbose=False), load_mnist("test", verbose=False)
    )
    name = "vanilla-dense-z10-s1"
    scored = score_reference_runs([name], classifier, real)[name]
    assert (
        scored.config.latent_dim == 10
        and scored.recorded == read_manifest()["runs"][name]["metrics"]
    )
    assert relative_difference(scored.recorded, scored.measured) <= 1e-5
    # independently: the shipped generator at the fixed latents, scored by score_images
    run = load_reference(name)
    direct = score_images(generate(run.generator, evaluation_latents(run.config)), classifier, real)
    assert relative_difference(direct, scored.measured) == 0.0
