"""Lesson 07 through papermill at tiny settings, on small generators saved for seed 7.

Seed 7 keeps these generators apart from the lessons' own (seed 0) in the shared output
root. Every lesson listed has a generator, so nothing is trained: the test checks that.
"""

import math

import pytest
import torch

from gan_utils.core.checkpoints import save_generator
from gan_utils.core.paths import figures_dir
from gan_utils.core.train import TrainConfig
from gan_utils.images.models import dense_generator

SEED = 7
PARAMETERS = {
    "seed": SEED,
    "eval_samples": 100,
    "eval_draws": 2,
    "sample_sizes": [50, 100, 200],
    "resamples": 2,
    "latent_sizes": [1, 10],
    "lessons": ["04_vanilla_gan", "05_dist_gan"],
    "device": "cpu",
}


def _save(lesson, model, loss, latent_dim):
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
def test_lesson07_scores_every_saved_generator(run_notebook):
    _save("04_vanilla_gan", "dcgan", "non_saturating", 10)
    _save("04_vanilla_gan", "dense", "non_saturating", 1)
    _save("04_vanilla_gan", "dense", "non_saturating", 3)  # latent 3: not in latent_sizes
    _save("05_dist_gan", "dense", "dist_gan", 1)
    results = run_notebook("07_evaluation", PARAMETERS)

    assert results["eval_samples"] == 100 and results["eval_draws"] == 2
    assert results["training_seed"] == SEED
    assert results["agreement_max_relative_difference"] < 1e-3
    assert results["generators_scored"] == 3
    table = results["course_table"]
    assert [row["model"] for row in table] == [
        "04 dcgan non_saturating z10",
        "04 dense non_saturating z1",
        "05 dense dist_gan z1",
    ]
    for row in table:
        assert 1 <= row["IS"] <= 10 and row["FID"] > 0
        assert 1 <= row["classes"] <= 10 and 0 <= row["KL"] <= math.log(10) + 1e-3
    # the floor and the pitfalls, which hold for any trained classifier
    pitfalls = results["pitfalls"]
    real, copier = pitfalls["real test digits"], pitfalls["copier (training digits)"]
    assert copier["nn_distance"] < 0.1 < real["nn_distance"]
    assert pitfalls["one perfect digit per class"]["is_mean"] > real["is_mean"]
    assert pitfalls["one perfect digit per class"]["fid"] > 5 * real["fid"]
    assert pitfalls["collapsed onto the 1s"]["classes_covered"] == 1
    assert results["real_test_fid"] == pytest.approx(real["fid"], abs=0.01)
    fid_by_n = results["fid_bias_generator"]
    assert set(fid_by_n) == {"50", "100", "200"}
    assert (figures_dir() / "07_course_table.md").is_file()
    assert (figures_dir() / "07_metrics_against_n.png").is_file()
