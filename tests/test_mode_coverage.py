"""The toy metrics on hand-made sample sets whose answers are known in advance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy

from gan_utils.core.latent import fixed_latents
from gan_utils.toy.coverage import (
    NUM_EVAL_SAMPLES,
    collapse_verdict,
    coverage_callback,
    evaluate_coverage,
    mode_coverage,
    mode_spacing,
)
from gan_utils.toy.mixtures import grid, ring

GRID = grid()  # 25 modes, std 0.05
RING = ring()  # 8 modes, std 0.02


def on_centres(counts: list[int], mixture=GRID, jitter: float = 0.0, seed: int = 0) -> torch.Tensor:
    """counts[k] points at centre k, each moved by at most ``jitter`` (in units of std)."""
    rng = np.random.default_rng(seed)
    centres = mixture.centres.numpy()
    points = []
    for k, n in enumerate(counts):
        angle = rng.uniform(0, 2 * np.pi, n)
        radius = rng.uniform(0, jitter, n) * mixture.std
        points.append(centres[k] + np.stack([np.cos(angle), np.sin(angle)], 1) * radius[:, None])
    return torch.tensor(np.concatenate(points), dtype=torch.float32)


def test_all_samples_on_one_centre_is_full_collapse():
    samples = on_centres([2500] + [0] * 24, jitter=2.9)
    m = mode_coverage(samples, GRID.centres, GRID.std)
    assert (m.modes_covered, m.modes_hit, m.num_modes, m.num_samples) == (1, 1, 25, 2500)
    assert m.high_quality_percent == pytest.approx(100.0)
    assert m.kl_to_uniform == pytest.approx(math.log(25))  # KL(delta || U_25) = log 25
    assert m.hq_counts[0] == 2500 and sum(m.hq_counts) == 2500


def test_equal_split_over_all_centres_is_full_coverage():
    samples = on_centres([100] * 25, jitter=2.9)
    m = mode_coverage(samples, GRID.centres, GRID.std)
    assert (m.modes_covered, m.modes_hit) == (25, 25)
    assert m.high_quality_percent == pytest.approx(100.0)
    assert m.kl_to_uniform == pytest.approx(0.0, abs=1e-12)


def test_samples_far_from_every_centre_are_not_high_quality_and_kl_is_nan():
    # (1, 1) + ... lies sqrt(2) = 28 std from the nearest grid centre.
    samples = torch.tensor([[1.0, 1.0], [-3.0, 1.0], [10.0, 10.0]]).repeat(100, 1)
    m = mode_coverage(samples, GRID.centres, GRID.std)
    assert (m.modes_covered, m.modes_hit) == (0, 0)
    assert m.high_quality_percent == 0.0
    assert math.isnan(m.kl_to_uniform)


def test_hq_radius_is_three_std():
    # Points at 2.99 std are HQ, points at 3.01 std are not.
    centre = GRID.centres[12]  # (0, 0)
    inside = centre + torch.tensor([2.99 * GRID.std, 0.0])
    outside = centre + torch.tensor([0.0, 3.01 * GRID.std])
    samples = torch.stack([inside] * 30 + [outside] * 70)
    m = mode_coverage(samples, GRID.centres, GRID.std)
    assert m.high_quality_percent == pytest.approx(30.0)
    assert m.modes_covered == 1 and m.hq_counts[12] == 30


def test_a_mode_needs_twenty_high_quality_samples():
    counts = [0] * 25
    counts[3], counts[7] = 19, 20
    m = mode_coverage(on_centres(counts, jitter=2.5), GRID.centres, GRID.std)
    assert m.modes_covered == 1  # only the mode with 20
    assert m.modes_hit == 2  # both have >= 1
    assert m.hq_counts[3] == 19 and m.hq_counts[7] == 20


def test_kl_matches_scipy_entropy_on_an_uneven_histogram():
    counts = [0, 5, 40, 100, 3, 0, 17, 250]
    far = torch.full((90, 2), 7.0)  # not HQ: lowers % HQ, does not enter the histogram
    samples = torch.cat([on_centres(counts, RING, jitter=2.0), far])
    m = mode_coverage(samples, RING.centres, RING.std)
    expected = entropy(np.asarray(counts, float), np.full(8, 1 / 8))  # KL(p || u), nats
    assert m.kl_to_uniform == pytest.approx(expected, rel=1e-9)
    assert m.high_quality_percent == pytest.approx(100 * sum(counts) / (sum(counts) + 90))
    assert m.modes_covered == 3 and m.modes_hit == 6  # 40, 100, 250 >= 20


def test_nan_samples_are_never_high_quality():
    samples = torch.cat([on_centres([30] + [0] * 24), torch.full((10, 2), float("nan"))])
    m = mode_coverage(samples, GRID.centres, GRID.std)
    assert m.hq_counts[0] == 30 and m.high_quality_percent == pytest.approx(75.0)


def test_real_samples_score_like_the_mixture():
    # 98.9 % of a 2-D Gaussian lies within 3 std (1 - exp(-9/2)); all modes covered.
    real = GRID.sample(NUM_EVAL_SAMPLES, generator=torch.Generator().manual_seed(0))
    m = mode_coverage(real, GRID.centres, GRID.std)
    assert m.modes_covered == 25
    assert m.high_quality_percent == pytest.approx(100 * (1 - math.exp(-4.5)), abs=0.6)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"samples": torch.zeros(5, 3)}, "samples"),
        ({"centres": torch.zeros(5)}, "centres"),
        ({"std": 0.0}, "std"),
        ({"min_hq_per_mode": 0}, "min_hq_per_mode"),
        ({"hq_radius_in_std": -1.0}, "hq_radius_in_std"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, name):
    args = {"samples": torch.zeros(5, 2), "centres": GRID.centres, "std": GRID.std, **kwargs}
    with pytest.raises(ValueError, match=name):
        mode_coverage(**args)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"std": "0.05"}, "std"),
        ({"std": True}, "std"),
        ({"min_hq_per_mode": 20.0}, "min_hq_per_mode"),
        ({"hq_radius_in_std": None}, "hq_radius_in_std"),
    ],
)
def test_input_of_the_wrong_type_is_a_type_error(kwargs, name):
    args = {"samples": torch.zeros(5, 2), "centres": GRID.centres, "std": GRID.std, **kwargs}
    with pytest.raises(TypeError, match=name):
        mode_coverage(**args)


@pytest.mark.parametrize(
    ("args", "error", "name"),
    [
        ((2, 0), ValueError, "every_steps"),
        ((2, 2.5), TypeError, "every_steps"),
        ((0, 5), ValueError, "latent_dim"),
        (("2", 5), TypeError, "latent_dim"),
    ],
)
def test_coverage_callback_checks_its_settings(args, error, name):
    with pytest.raises(error, match=name):
        coverage_callback(RING, *args)


def test_evaluate_coverage_uses_its_own_latents_and_leaves_the_global_rng_alone():
    class ToCentre(torch.nn.Module):  # G(z) = the ring's first centre, whatever z
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(2, 2))

        def forward(self, z):
            return z @ self.weight + RING.centres[0]

    torch.manual_seed(3)
    before = torch.get_rng_state()
    m = evaluate_coverage(ToCentre(), RING, latent_dim=2)
    assert torch.equal(torch.get_rng_state(), before)
    assert m.num_samples == 2500 and m.modes_covered == 1
    assert torch.equal(fixed_latents(4, 2, seed=1), fixed_latents(4, 2, seed=1))
    with pytest.raises(ValueError, match="prior"):
        fixed_latents(4, 2, prior="cauchy")


# ---- the collapse rule: "near" counts, spacing and verdicts -------------------------------
def test_mode_spacing_is_the_closed_form_chord_of_the_ring_and_the_grid_step():
    assert mode_spacing(RING.centres) == pytest.approx(
        2 * 2 * math.sin(math.pi / 8), rel=1e-6
    )  # float32 centres
    assert mode_spacing(GRID.centres) == pytest.approx(2.0, rel=1e-12)
    assert mode_spacing(np.zeros((1, 2))) == math.inf


def test_near_counts_use_a_quarter_of_the_spacing_not_the_hq_radius():
    spacing = mode_spacing(RING.centres)
    centre = RING.centres[0].double()
    direction = centre / centre.norm()
    inside = centre + 0.24 * spacing * direction  # near, far outside 3 std (0.06)
    outside = centre + 0.26 * spacing * direction
    m = mode_coverage(torch.stack([inside, outside]), RING.centres, RING.std)
    assert m.near_counts[0] == 1 and sum(m.near_counts) == 1
    assert m.hq_counts[0] == 0  # neither is high quality


def collapsed_on(modes: int, share_near: float, hq_jitter: float, mixture=RING, n: int = 2500):
    """``share_near`` of n samples spread over the first ``modes`` centres (within
    ``hq_jitter`` std), the rest far from every centre."""
    near = int(round(share_near * n))
    counts = [near // modes + (1 if k < near % modes else 0) for k in range(modes)]
    counts += [0] * (mixture.num_modes - modes)
    points = on_centres(counts, mixture, jitter=hq_jitter)
    far = torch.full((n - near, 2), 50.0)
    return torch.cat([points, far])


@pytest.mark.parametrize(
    ("modes", "share", "jitter", "expected"),
    [
        (4, 0.95, 2.0, "collapsed"),  # sharp samples on half the ring's modes
        (1, 0.99, 2.0, "collapsed"),  # the textbook picture: one mode
        (5, 0.85, 2.0, "partial"),  # 5 modes: 68 % of samples near the top 4
        (4, 0.65, 2.0, "partial"),  # under 70 % near the 4 modes (65 % HQ: sharp)
        (8, 0.99, 2.0, "covering"),  # every mode, 99 % HQ
        (8, 0.80, 2.0, "partial"),  # every mode covered but only 80 % HQ
        (2, 0.95, 10.0, "blurry"),  # near two modes but beyond 3 std: not sharp
    ],
)
def test_collapse_verdict_rules(modes, share, jitter, expected):
    m = mode_coverage(collapsed_on(modes, share, jitter), RING.centres, RING.std)
    assert m.verdict() == collapse_verdict(m) == expected
    top = sorted(m.near_counts, reverse=True)[:4]
    assert m.near_few_percent == pytest.approx(100 * sum(top) / 2500)


def test_covering_on_the_grid_allows_two_missing_modes_of_25():
    counts = [100] * 23 + [0, 0]
    m = mode_coverage(on_centres(counts, GRID, jitter=2.0), GRID.centres, GRID.std)
    assert m.modes_covered == 23 and m.verdict() == "covering"
    counts = [100] * 22 + [0, 0, 0]
    m = mode_coverage(on_centres(counts, GRID, jitter=2.0), GRID.centres, GRID.std)
    assert m.verdict() == "partial"  # 22 modes: neither few (<= 12) nor almost all
