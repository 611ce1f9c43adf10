"""Lesson 02 end to end with papermill at tiny settings; checks the recorded results."""

from __future__ import annotations

import pytest

from gan_utils.core.paths import committed_figures_dir
from gan_utils.core.variants import VARIANTS

TINY = {
    "num_seeds": 2,
    "grid_steps": 12,
    "ring_steps": 6,
    "batch_size": 32,
    "width": 16,
    "depth": 1,
    "num_snapshots": 2,
    "latent_sizes": [1, 4],
    "latent_steps": 6,
    "repository_steps": 2,
    "workers": 1,
    "threads": 1,
    "device": "cpu",
}


@pytest.mark.notebook
@pytest.mark.slow
def test_lesson02_runs_at_tiny_settings_and_records_its_results(run_notebook):
    results = run_notebook("02_toy_mode_collapse", TINY)
    assert results["num_seeds"] == 2 and results["grid_steps"] == 12
    for key, modes in (("modes_covered_grid", 25), ("modes_covered_ring", 8)):
        assert list(results[key]) == list(VARIANTS)  # all 10 rows, in the lesson's order
        assert all(0 <= value <= modes for value in results[key].values())
    assert set(results["modes_covered_grid_std"]) == set(VARIANTS)  # a spread for every row
    assert all(0 <= v <= 100 for v in results["high_quality_percent_grid"].values())
    best, worst = results["best_variant_grid"], results["worst_variant_grid"]
    assert best in VARIANTS and worst in VARIANTS and best != worst
    covered = results["modes_covered_grid"]
    assert covered[best] == max(covered.values()) and covered[worst] == min(covered.values())
    assert set(results["latent_effect_modes_covered"]) == {
        results["best_variant_ring"],
        results["worst_variant_ring"],
    }
    assert all(list(d) == ["1", "4"] for d in results["latent_effect_modes_covered"].values())
    assert set(results["gif_kilobytes"]) == set(VARIANTS)
    assert all(0 < kb < 300 for kb in results["gif_kilobytes"].values())
    assert set(results["steps_per_second_grid"]) == set(VARIANTS)
    assert set(results["steps_per_second_repository_settings"]) == {"minimax", "wgan_gp"}
    assert results["wall_time_s"] > 0 and results["cpu_time_s"] > 0
    if (committed_figures_dir() / "toy_full_setting.csv").is_file():  # the committed table is read
        assert results["full_setting_best"].split(":")[0] in VARIANTS
