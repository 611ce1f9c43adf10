"""Lesson 07 through papermill at small settings, each run on an output root of its own.

On an empty root (a fresh clone) the lesson trains nothing: it scores the shipped reference
models, checks that they reproduce the metrics recorded in the manifest, and shows them
alone. With a live generator saved for the lesson's seed, that generator joins in a second
table, and still nothing is trained.
"""

import math
import re

import numpy as np
import pytest
import torch

from gan_utils.core.checkpoints import save_generator
from gan_utils.core.paths import figures_dir
from gan_utils.core.train import TrainConfig
from gan_utils.images.mnist import load_mnist
from gan_utils.images.models import dense_generator
from gan_utils.images.references import REFERENCES, TINY, read_manifest, verdict

SEED = 7
PARAMETERS = {
    "seed": SEED,
    "eval_samples": 100,
    "eval_draws": 2,
    "sample_sizes": [50, 100, 200],
    "resamples": 2,
    "latent_sizes": [1, 10],
    "device": "cpu",
}
MANIFEST = read_manifest()


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    """A fresh output root for the test process and the notebook's kernel (it inherits it)."""
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("GAN_UTILS_ROOT", str(root))
    return root


def _expected_groups() -> dict[str, list[str]]:
    """Result key -> run names, from the registry's names: seeds of ``<prefix>-z<z>`` together,
    any other GAN run alone (the classifier and the test entry left out)."""
    groups: dict[str, list[str]] = {}
    for name, reference in REFERENCES.items():
        if reference.config is None or name == TINY:
            continue
        stem = re.sub(r"-s\d+$", "", name)
        groups.setdefault("ref_" + stem.replace("-", "_"), []).append(name)
    return groups


def _check_floor_and_pitfalls(results):
    """The floor and the pitfalls, which hold for any trained classifier."""
    pitfalls = results["pitfalls"]
    real, copier = pitfalls["real test digits"], pitfalls["copier (training digits)"]
    assert copier["nn_distance"] == 0 < real["nn_distance"]  # section 4: "a copier sits at zero"
    assert pitfalls["one perfect digit per class"]["is_mean"] > real["is_mean"]
    assert pitfalls["one perfect digit per class"]["fid"] > 5 * real["fid"]
    assert pitfalls["collapsed onto the 1s"]["classes_covered"] == 1
    assert results["real_test_fid"] == pytest.approx(real["fid"], abs=0.01)
    assert results["agreement_max_relative_difference"] < 1e-3
    assert set(results["fid_bias_generator"]) == {"50", "100", "200"}
    # section 2's prose: FID falls with N towards a floor
    assert results["fid_bias_generator"]["50"] > results["fid_bias_generator"]["200"]
    assert set(results["non_digits"]) == {"grey photo crops", "uniform noise"}
    assert results["probe_reference"] == "vanilla-dcgan-z10-s0"


@pytest.mark.notebook
@pytest.mark.slow
def test_lesson07_on_a_fresh_clone_scores_the_references_and_trains_nothing(
    run_notebook, empty_root
):
    results = run_notebook("07_evaluation", PARAMETERS)

    # nothing trained, nothing looked for created
    assert results["live_rows"] == 0 and "live_table" not in results
    assert not (empty_root / "artifacts").exists()
    assert not (figures_dir() / "07_live_runs.md").exists()

    # every GAN reference scored, grouped over its seeds
    groups = _expected_groups()
    assert results["generators_scored"] == sum(len(names) for names in groups.values()) == 19
    assert results["reference_samples"] == 1000 and results["eval_samples"] == 100
    for key, names in groups.items():
        assert results[key]["seeds"] == len(names), key
    assert results["ref_vanilla_dcgan_z10"]["seeds"] == 3
    assert results["ref_vanilla_dcgan_z1_long"]["seeds"] == 1
    assert results["ref_vanilla_dcgan_z1_long"]["fid_train_std"] is None
    table = results["course_table"]
    assert len(table) == len(groups)
    assert "vanilla DCGAN z10 (lesson 04)" in [row["model"] for row in table]

    # the measured metrics are the recorded ones
    train = load_mnist("train", verbose=False)
    if MANIFEST["real_digits"]["data"]["train"] != train.fingerprint:
        pytest.skip("the references were scored on other digits than this test sees")
    assert results["references_reproduce"] is True
    assert results["references_max_relative_difference"] <= 1e-5
    for key, names in groups.items():
        for metric in ("is_mean", "fid_train", "recall", "nn_pixel_median"):
            values = [MANIFEST["runs"][n]["metrics"][metric] for n in names]
            assert results[key][f"{metric}_mean"] == pytest.approx(np.mean(values), abs=1e-4)
            if len(values) > 1:
                expected = np.std(values, ddof=1)
                assert results[key][f"{metric}_std"] == pytest.approx(expected, abs=1e-4)
    floors = MANIFEST["real_digits"]["metrics"]
    assert results["ref_real_held_out"]["fid_test"] == pytest.approx(floors["fid_test"], abs=1e-4)

    # values in range
    for key in groups:
        row = results[key]
        assert 1 <= row["is_mean_mean"] <= 10 and row["fid_train_mean"] > 0
        assert row["fid_test_mean"] > 0 and 1 <= row["classes_covered_mean"] <= 10
        assert 0 <= row["kl_to_uniform_mean"] <= math.log(10) + 1e-4  # rounded to 4 decimals
        for metric in ("precision", "recall", "coverage"):
            assert 0 <= row[f"{metric}_mean"] <= 1
    assert set(results["ref_verdicts"]) == {
        "distgan-dcgan-z1 vs vanilla-dcgan-z1",
        "distgan-dcgan-z10 vs vanilla-dcgan-z10",
        "nugan-dense-z1 vs vanilla-dense-z1",
        "nugan-dense-z10 vs vanilla-dense-z10",
    }
    # latent 1 against latent 10: only gaps beyond 2 x the pooled std over seeds are counted
    clear = {"classes_covered": [], "recall": []}
    for prefix in ("vanilla-dcgan", "distgan-dcgan", "vanilla-dense", "nugan-dense"):
        for key, methods in clear.items():
            values = {
                z: [
                    MANIFEST["runs"][n]["metrics"][key]
                    for n in groups["ref_" + f"{prefix}-z{z}".replace("-", "_")]
                ]
                for z in (1, 10)
            }
            if verdict(values[1], values[10]) == "worse":
                methods.append(prefix)
    assert len(results["latent1_clearly_fewer_classes"]) == len(clear["classes_covered"])
    assert len(results["latent1_clearly_lower_recall"]) == len(clear["recall"])
    allowed = {"better", "worse", "no difference at this budget"}
    assert all(set(v.values()) <= allowed for v in results["ref_verdicts"].values())

    course = (figures_dir() / "07_course_table.md").read_text()
    assert course.count("\n| ") == 1 + 1 + len(groups) + 1  # header, rule, groups, real digits
    assert "| real held-out digits |" in course
    assert (figures_dir() / "07_course_table.png").is_file()
    assert (figures_dir() / "07_metrics_against_n.png").is_file()
    _check_floor_and_pitfalls(results)


def _save_live(lesson, model, loss, latent_dim):
    torch.manual_seed(latent_dim)
    kwargs = {"latent_dim": latent_dim, "width": 32, "depth": 1}
    config = TrainConfig(latent_dim=latent_dim, seed=SEED, batch_size=8, num_steps=1)
    save_generator(
        dense_generator(**kwargs),
        lesson,
        model,
        loss,
        config,
        "gan_utils.images.models:dense_generator",
        kwargs,
    )


@pytest.mark.notebook
@pytest.mark.slow
def test_lesson07_shows_saved_live_generators_in_a_second_table(run_notebook, empty_root):
    _save_live("04_vanilla_gan", "dense", "non_saturating", 10)
    _save_live("04_vanilla_gan", "dense", "non_saturating", 3)  # latent 3: not in latent_sizes
    results = run_notebook("07_evaluation", PARAMETERS)

    assert results["live_rows"] == 1
    assert results["live_table"][0]["model"] == "04 dense non_saturating z10"
    live = results["live_table"][0]
    assert 1 <= live["IS"] <= 10 and live["FID"] > 0 and 1 <= live["classes"] <= 10
    # the lessons without generators were not run
    models = empty_root / "artifacts" / "models"
    assert sorted(p.name for p in models.iterdir()) == ["04_vanilla_gan"]
    assert len(list((models / "04_vanilla_gan").glob("*.pt"))) == 2
    text = (figures_dir() / "07_live_runs.md").read_text()
    assert "| 04_vanilla_gan | dense | non_saturating | 10 |" in text
    assert f"1 training seed ({SEED})" in text
    assert len(results["course_table"]) == len(_expected_groups())  # the references as before
