"""Precision, recall, density, coverage and the memorisation check against prdc, scipy,
hand-computed cases and the expectations that hold when fakes and reals share a distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from prdc import compute_prdc
from scipy.spatial.distance import cdist

from gan_utils.images import fidelity
from gan_utils.images.fidelity import (
    memorisation_summary,
    nearest_neighbour_distances,
    precision_recall_density_coverage,
)

KEYS = ("precision", "recall", "density", "coverage")


def _gaussian(rng: np.random.Generator, n: int, d: int, shift: float = 0.0, scale: float = 1.0):
    return rng.normal(shift, scale, size=(n, d))


# --- against prdc (Naeem et al.'s reference code) ------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 5, 10])
@pytest.mark.parametrize(
    "shift, scale, n_real, n_fake",
    [(0.0, 1.0, 300, 300), (0.4, 1.0, 300, 200), (0.6, 0.8, 200, 350), (0.6, 1.3, 250, 250)],
)
def test_agrees_with_prdc(k, shift, scale, n_real, n_fake, capsys):
    rng = np.random.default_rng(1000 * k + n_fake)
    real = _gaussian(rng, n_real, 16)
    fake = _gaussian(rng, n_fake, 16, shift, scale)
    expected = compute_prdc(real, fake, nearest_k=k)
    got = precision_recall_density_coverage(real, fake, k=k)
    assert set(got) == set(KEYS) and all(type(got[key]) is float for key in KEYS)
    for key in KEYS:
        assert got[key] == pytest.approx(float(expected[key]), abs=1e-9), key
    # no case is trivially 0 or 1, so the comparison tells something
    assert all(0 < got[key] for key in KEYS)
    assert min(got["precision"], got["recall"], got["coverage"]) < 1


def test_chunking_and_input_types_do_not_change_the_result(monkeypatch):
    rng = np.random.default_rng(0)
    real, fake = _gaussian(rng, 120, 6), _gaussian(rng, 90, 6, 0.8)
    whole = precision_recall_density_coverage(real, fake, k=4)
    assert whole == precision_recall_density_coverage(
        torch.from_numpy(real).float().double(), torch.from_numpy(fake), k=np.int64(4)
    )
    monkeypatch.setattr(fidelity, "_CHUNK_ELEMENTS", 7 * 120)  # 7 rows per chunk, uneven end
    assert precision_recall_density_coverage(real, fake, k=4) == whole


# --- hand-made cases with known answers ----------------------------------------------------


def test_a_one_dimensional_case_computed_by_hand():
    # k = 1: every real ball has radius 1. Fakes 0.5 and 0.6 lie in the balls of 0 and 1,
    # fake 3 in the ball of 3 only (at distance exactly 1 from real 2: open balls exclude
    # it), fake 3.2 in the ball of 3, fake 7 in none: precision 4/5, density (2+2+1+1)/5,
    # coverage 3/4 (real 2's ball holds no fake). Fake radii 0.1, 0.1, 0.2, 0.2, 3.8: only
    # real 3 lies in a fake ball, recall 1/4.
    real = np.array([[0.0], [1.0], [2.0], [3.0]])
    fake = np.array([[0.5], [0.6], [3.0], [3.2], [7.0]])
    got = precision_recall_density_coverage(real, fake, k=1)
    assert got == pytest.approx(
        {"precision": 0.8, "recall": 0.25, "density": 1.2, "coverage": 0.75}, abs=1e-15
    )


def test_identical_sets_score_one_on_everything():
    real = _gaussian(np.random.default_rng(1), 200, 8)
    for k in (1, 5):
        got = precision_recall_density_coverage(real, real.copy(), k=k)
        # each real ball holds its own copy and its k - 1 nearer neighbours: density 1 too
        assert got == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


def test_far_apart_sets_score_zero_on_everything():
    rng = np.random.default_rng(2)
    got = precision_recall_density_coverage(_gaussian(rng, 150, 8), _gaussian(rng, 150, 8, 50.0))
    assert got == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_fakes_on_half_the_real_clusters_keep_precision_and_halve_recall_and_coverage():
    # 10 tight, far-apart clusters of 60 reals; the fakes (fresh samples) visit 5 of them
    rng = np.random.default_rng(3)
    centres = 100.0 * np.stack([np.arange(10), np.arange(10) % 3], axis=1)
    real = np.concatenate([c + rng.normal(size=(60, 2)) for c in centres])
    fake = np.concatenate([c + rng.normal(size=(120, 2)) for c in centres[:5]])
    got = precision_recall_density_coverage(real, fake)
    assert got["precision"] > 0.9
    assert 0.4 < got["recall"] <= 0.5 and 0.4 < got["coverage"] <= 0.5
    # density does not see the missing clusters: every fake still sits where reals are as
    # dense as usual, so it stays near 1 (twice as many fakes per cluster change nothing)
    assert 0.8 < got["density"] < 1.2


def test_matching_distributions_meet_the_expected_density_and_coverage():
    # E[density] = 1 and E[coverage] = 1 - prod_{i<=k} (n - i) / (n + m - i) for any one
    # distribution; an off-by-one in k (the point counted as its own neighbour) would give
    # density (k - 1) / k = 0.8 and coverage about 1 - 2^-(k - 1) = 0.94 instead.
    n = m = 500
    k = 5
    expected_coverage = 1 - math.prod((n - i) / (n + m - i) for i in range(1, k + 1))
    rng = np.random.default_rng(4)
    runs = [
        precision_recall_density_coverage(_gaussian(rng, n, 8), _gaussian(rng, m, 8), k=k)
        for _ in range(4)
    ]
    assert np.mean([r["density"] for r in runs]) == pytest.approx(1.0, abs=0.06)
    assert np.mean([r["coverage"] for r in runs]) == pytest.approx(expected_coverage, abs=0.015)


# --- nearest-neighbour distances and memorisation ------------------------------------------


@pytest.mark.parametrize("n_queries, n_references, d", [(1, 1, 1), (37, 250, 5), (300, 120, 64)])
def test_nearest_neighbour_distances_match_scipy(n_queries, n_references, d, monkeypatch):
    rng = np.random.default_rng(n_queries + d)
    queries, references = rng.normal(size=(n_queries, d)), rng.normal(size=(n_references, d))
    expected = cdist(queries, references).min(axis=1)
    got = nearest_neighbour_distances(queries, references)
    assert got.dtype == np.float64 and got.shape == (n_queries,)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(fidelity, "_CHUNK_ELEMENTS", 3 * n_references)  # 3 queries per chunk
    np.testing.assert_allclose(
        nearest_neighbour_distances(queries, references), expected, rtol=1e-12, atol=1e-12
    )


def test_images_are_flattened_to_rows():
    rng = np.random.default_rng(5)
    images = torch.from_numpy(rng.uniform(-1, 1, size=(20, 1, 6, 6)))
    reference = torch.from_numpy(rng.uniform(-1, 1, size=(30, 1, 6, 6)))
    expected = cdist(images.reshape(20, -1).numpy(), reference.reshape(30, -1).numpy()).min(1)
    np.testing.assert_allclose(nearest_neighbour_distances(images, reference), expected, rtol=1e-12)


def test_copies_of_training_rows_are_at_distance_zero_and_ratio_zero():
    rng = np.random.default_rng(6)
    train = rng.uniform(-1, 1, size=(400, 784)) * 3.0 + 10.0  # large norms: no round-off 0
    held_out = rng.uniform(-1, 1, size=(100, 784)) * 3.0 + 10.0
    generated = train[rng.integers(0, 400, size=150)]
    assert np.all(nearest_neighbour_distances(generated, train) == 0.0)
    summary = memorisation_summary(generated, train, held_out)
    assert summary["generated_to_train_median"] == 0.0
    assert summary["generated_to_train_mean"] == 0.0
    assert summary["ratio"] == 0.0
    expected = cdist(held_out, train).min(axis=1)
    assert summary["held_out_to_train_median"] == pytest.approx(np.median(expected), rel=1e-12)
    assert summary["held_out_to_train_mean"] == pytest.approx(expected.mean(), rel=1e-12)


def test_a_generator_that_generalises_has_a_ratio_near_one_and_a_noisy_copier_below():
    rng = np.random.default_rng(7)
    train, held_out = _gaussian(rng, 1000, 4), _gaussian(rng, 400, 4)
    fresh = memorisation_summary(_gaussian(rng, 400, 4), train, held_out)
    assert 0.85 < fresh["ratio"] < 1.15
    copier = train[rng.integers(0, 1000, size=400)] + 0.05 * rng.normal(size=(400, 4))
    assert memorisation_summary(copier, train, held_out)["ratio"] < 0.5


# --- bad input ----------------------------------------------------------------------------

GOOD = np.zeros((10, 3)) + np.arange(10)[:, None]


@pytest.mark.parametrize(
    "real, fake, k, error, match",
    [
        (GOOD.tolist(), GOOD, 3, TypeError, r"real_features must be a numpy array .* got list"),
        (GOOD, torch.ones(10, 3, dtype=torch.bool), 3, TypeError, "fake_features .* torch.bool"),
        (GOOD.astype(complex), GOOD, 3, TypeError, "real_features .* complex"),
        (GOOD[:, 0], GOOD, 3, ValueError, r"real_features must be \(N, d\).* shape \(10,\)"),
        (GOOD, GOOD[None], 3, ValueError, r"fake_features must be \(N, d\)"),
        (GOOD, np.zeros((10, 0)), 3, ValueError, r"fake_features .* d >= 1, got shape \(10, 0\)"),
        (GOOD, GOOD[:, :2], 3, ValueError, r"fake_features must have as many columns .* \(3\)"),
        (np.where(GOOD == 4, np.nan, GOOD), GOOD, 3, ValueError, "real_features must be finite"),
        (GOOD, np.where(GOOD == 4, np.inf, GOOD), 3, ValueError, "fake_features must be finite"),
        (GOOD, GOOD, 0, ValueError, "k must be an integer >= 1, got 0"),
        (GOOD, GOOD, 2.0, TypeError, r"k must be an integer >= 1, got 2.0 \(float\)"),
        (GOOD, GOOD, True, TypeError, "k must be an integer"),
        (GOOD, GOOD[:4], 4, ValueError, r"k must be an integer in \[1, 3\] .* got 4"),
        (GOOD[:2], GOOD, 2, ValueError, r"k must be .* real_features has 2.*, got 2"),
    ],
)
def test_prdc_rejects_bad_input(real, fake, k, error, match):
    with pytest.raises(error, match=match):
        precision_recall_density_coverage(real, fake, k=k)


@pytest.mark.parametrize(
    "queries, references, error, match",
    [
        ((1.0, 2.0), GOOD, TypeError, "queries must be a numpy array .* got tuple"),
        (GOOD, np.array(["a", "b"]), TypeError, "references .* dtype <U1"),
        (GOOD, np.zeros((0, 3)), ValueError, "references must hold at least 1 row, got 0"),
        (np.ones(3), GOOD, ValueError, r"queries must be rows .* got shape \(3,\)"),
        (GOOD[:, :2], GOOD, ValueError, r"queries must have as many columns as references"),
        (torch.full((2, 3), math.nan), GOOD, ValueError, "queries must be finite, got 6 NaN"),
    ],
)
def test_nearest_neighbour_distances_rejects_bad_input(queries, references, error, match):
    with pytest.raises(error, match=match):
        nearest_neighbour_distances(queries, references)


def test_memorisation_summary_rejects_bad_input():
    with pytest.raises(ValueError, match="held_out must have as many columns as train"):
        memorisation_summary(GOOD, GOOD, GOOD[:, :2])
    with pytest.raises(TypeError, match="generated must be a numpy array"):
        memorisation_summary([[0.0, 0.0, 0.0]], GOOD, GOOD)
    with pytest.raises(ValueError, match="held_out must be real samples outside the training"):
        memorisation_summary(GOOD + 0.5, GOOD, GOOD[:6])
