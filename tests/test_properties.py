"""Property-based tests of the public entry points (hypothesis; profiles in conftest.py).

Each property states a documented contract that a test can check independently of the
code under test (a closed form, a reference computation by torch/numpy, an invariance),
and every entry point has at least one property feeding it random bad input: a value of
the wrong type is a TypeError, a value out of range a ValueError (``gan_utils.core.checks``),
and the message names the parameter. Examples are tiny so the file runs in well under a
minute under the "ci" profile; ``HYPOTHESIS_PROFILE=dev`` runs 5x more, at random.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
import math
import string
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gan_utils.core.lesson_sweep import expand_grid, parse_value, read_grid
from gan_utils.core.losses import (
    LOSSES,
    bce_critic_loss,
    critic_score_generator_loss,
    get_loss,
    gradient_penalty,
    hinge_critic_loss,
    interpolate,
    least_squares_critic_loss,
    least_squares_generator_loss,
    minimax_generator_loss,
    non_saturating_generator_loss,
    wasserstein_critic_loss,
)
from gan_utils.core.train import BCE_LOSSES, MAX_SEED, OPTIMIZERS, TrainConfig
from gan_utils.core.variants import REMEDIES, VARIANTS, get_variant
from gan_utils.hessian.lanczos import default_max_iterations, lanczos
from gan_utils.images.dist_gan import GP_SLOPES, RECON_WEIGHT_SCHEDULES, RECONSTRUCTIONS
from gan_utils.images.fidelity import precision_recall_density_coverage
from gan_utils.images.metrics import (
    class_histogram,
    class_kl_to_uniform,
    classes_covered,
    feature_statistics,
    fid,
    fid_from_stats,
    inception_score,
)
from gan_utils.images.models import ARCHITECTURES, CRITIC_NORMALIZATIONS, GENERATOR_OUTPUTS
from gan_utils.images.recipe import METHODS, SIZES, ImageGANConfig
from gan_utils.images.references import (
    FORMAT,
    REFERENCES,
    ReferenceError,
    read_manifest,
    write_manifest,
)
from gan_utils.toy.cli import build_parser, settings_from_args
from gan_utils.toy.coverage import (
    ModeCoverage,
    collapse_verdict,
    mode_coverage,
    mode_spacing,
)
from gan_utils.toy.mixtures import TOY_DATASETS, GaussianMixture, get_toy_dataset, grid, ring

# ---- shared strategies and helpers ------------------------------------------------------------
# values of the wrong type for an integer / a real number / a string choice / a bool
NOT_INT = st.one_of(
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
NOT_NUMBER = st.one_of(
    st.text(max_size=3), st.none(), st.booleans(), st.lists(st.floats(), max_size=2)
)
NOT_STR = st.one_of(st.integers(), st.floats(), st.none(), st.booleans(), st.binary(max_size=3))
NOT_BOOL = st.one_of(st.integers(), st.floats(), st.none(), st.text(max_size=3))
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NON_POSITIVE = st.one_of(st.floats(max_value=0.0, allow_nan=False), NON_FINITE)
NOT_NUMERIC_ARRAY = st.one_of(
    st.text(min_size=1, max_size=4),
    st.none(),
    st.just([["a", "b"]]),
    st.just(np.array([[1 + 1j, 0.0]])),
    st.just(np.array([[True, False]])),
)


def raises_naming(error: type[Exception], name: str, call, *args, **kwargs) -> str:
    """``call(*args, **kwargs)`` raises ``error`` (TypeError for a wrong type, ValueError for
    a value out of range; not another exception, not silence) with a message naming
    ``name``; returns the message."""
    with pytest.raises((TypeError, ValueError)) as info:
        call(*args, **kwargs)
    assert isinstance(info.value, error), repr(info.value)
    message = str(info.value)
    assert name in message, message
    return message


def small_floats(low: float = -50.0, high: float = 50.0):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def logits(min_size: int = 1, max_size: int = 12, bound: float = 50.0):
    """A 1-D float64 tensor of logits with |logit| <= bound."""
    return st.lists(small_floats(-bound, bound), min_size=min_size, max_size=max_size).map(
        lambda values: torch.tensor(values, dtype=torch.float64)
    )


def feature_arrays(min_rows: int = 2, max_rows: int = 8, dims=(1, 4), bound: float = 10.0):
    """(n, d) float64 arrays with bounded entries (repeats and ties allowed)."""
    return st.tuples(st.integers(min_rows, max_rows), st.integers(*dims)).flatmap(
        lambda shape: arrays(np.float64, shape, elements=small_floats(-bound, bound))
    )


# ==== 1. toy data builders (gan_utils.toy.mixtures) ==============================================
@given(
    num_modes=st.integers(1, 12),
    radius=small_floats(0.5, 5.0),
    std=small_floats(1e-3, 0.05),
    n=st.integers(1, 64),
    seed=st.integers(0, 2**31),
)
def test_ring_samples_have_their_shape_and_lie_near_the_ring_centres(
    num_modes, radius, std, n, seed
):
    mixture = ring(num_modes, radius=radius, std=std)
    assert mixture.num_modes == num_modes and mixture.dim == 2 and mixture.std == std
    # the centres: evenly spaced on the circle of the radius
    centres = mixture.centres.double()
    np.testing.assert_allclose(centres.norm(dim=1), radius, rtol=1e-5)
    if num_modes > 1:
        expected_spacing = 2 * radius * math.sin(math.pi / num_modes)
        assert mode_spacing(centres) == pytest.approx(expected_spacing, rel=1e-4)
    samples = mixture.sample(n, generator=torch.Generator().manual_seed(seed))
    assert samples.shape == (n, 2) and bool(torch.isfinite(samples).all())
    # N(0, std^2 I) in 2-D: P(|eps| > 7 std) = exp(-24.5) ~ 2e-11 per sample
    nearest = torch.cdist(samples.double(), centres).min(dim=1).values
    assert float(nearest.max()) <= 7 * std


@given(
    weights=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5).filter(lambda w: sum(w) > 0.05),
    seed=st.integers(0, 2**31),
)
def test_weighted_mixture_samples_each_centre_in_proportion(weights, seed):
    k, n = len(weights), 2000
    mixture = GaussianMixture(torch.arange(k) * 10.0, std=1.0, weights=torch.tensor(weights))
    samples = mixture.sample(n, generator=torch.Generator().manual_seed(seed))
    assert samples.shape == (n, 1) and bool(torch.isfinite(samples).all())
    # centres 10 std apart: the nearest centre is the one drawn (P(|eps| > 5) ~ 6e-7)
    counts = np.bincount(torch.round(samples[:, 0] / 10).clamp(0, k - 1).long(), minlength=k)
    share = np.asarray(weights) / sum(weights)
    for count, p in zip(counts, share, strict=True):
        if p == 0:
            assert count == 0
        else:  # within 5 binomial standard deviations (+ one sample)
            assert abs(count / n - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1 / n


@given(name=st.sampled_from(sorted(TOY_DATASETS)), n=st.integers(1, 50))
def test_named_datasets_sample_finite_points_of_their_geometry(name, n):
    mixture = get_toy_dataset(name)
    expected = {"ring": (8, 0.02, 2.0), "grid": (25, 0.05, None), "wide_ring": (8, 0.05, 1.0)}
    modes, std, radius = expected[name]
    assert (mixture.num_modes, mixture.std, mixture.name) == (modes, std, name)
    if radius is not None:
        np.testing.assert_allclose(mixture.centres.norm(dim=1), radius, rtol=1e-5)
    samples = mixture.sample(n, generator=torch.Generator().manual_seed(n))
    assert samples.shape == (n, 2) and bool(torch.isfinite(samples).all())


@given(values=st.lists(small_floats(-10, 10), min_size=1, max_size=5), std=small_floats(0.01, 1))
def test_grid_centres_are_every_pair_of_the_values(values, std):
    mixture = grid(tuple(values), std=std)
    expected = [
        (float(np.float32(a)), float(np.float32(b))) for a, b in itertools.product(values, values)
    ]
    assert [tuple(c) for c in mixture.centres.tolist()] == expected


@given(name=st.text(max_size=10).filter(lambda n: n not in TOY_DATASETS))
def test_unknown_dataset_names_are_value_errors_naming_dataset(name):
    message = raises_naming(ValueError, "dataset", get_toy_dataset, name)
    assert repr(name) in message


@given(name=NOT_STR)
def test_dataset_names_that_are_not_strings_are_type_errors(name):
    raises_naming(TypeError, "dataset", get_toy_dataset, name)


@given(
    case=st.one_of(
        st.tuples(st.just("num_samples"), st.integers(max_value=0), st.just(ValueError)),
        st.tuples(st.just("num_samples"), NOT_INT, st.just(TypeError)),
        st.tuples(st.just("num_modes"), st.integers(max_value=0), st.just(ValueError)),
        st.tuples(st.just("num_modes"), NOT_INT, st.just(TypeError)),
        st.tuples(st.just("radius"), NON_POSITIVE, st.just(ValueError)),
        st.tuples(st.just("radius"), NOT_NUMBER, st.just(TypeError)),
        st.tuples(st.just("std"), NON_POSITIVE, st.just(ValueError)),
        st.tuples(st.just("std"), NOT_NUMBER, st.just(TypeError)),
    )
)
def test_bad_sizes_and_scales_name_the_parameter(case):
    name, value, error = case
    if name == "num_samples":
        raises_naming(error, name, ring().sample, value)
    else:
        raises_naming(error, name, ring, **{name: value})


@given(
    case=st.one_of(
        st.tuples(st.just("centres"), NOT_NUMERIC_ARRAY, st.just(TypeError)),
        st.tuples(
            st.just("centres"),
            NON_FINITE.map(lambda v: [[0.0, 1.0], [v, 0.0]]),
            st.just(ValueError),
        ),
        st.tuples(
            st.just("weights"),
            NOT_NUMERIC_ARRAY.filter(lambda v: v is not None),
            st.just(TypeError),
        ),
        st.tuples(
            st.just("weights"),
            st.sampled_from([[1.0], [1.0, 1.0, 1.0], [-1.0, 2.0], [math.inf, 1.0], [0.0, 0.0]]),
            st.just(ValueError),
        ),
        st.tuples(st.just("values"), NOT_NUMERIC_ARRAY, st.just(TypeError)),
        st.tuples(
            st.just("values"), st.sampled_from([(), 3.0, (math.nan, 1.0)]), st.just(ValueError)
        ),
    )
)
def test_bad_centres_weights_and_grid_values_name_the_parameter(case):
    name, value, error = case
    if name == "values":
        raises_naming(error, name, grid, value)
    elif name == "centres":
        raises_naming(error, name, GaussianMixture, value, 0.1)
    else:
        raises_naming(error, name, GaussianMixture, [[0.0, 0.0], [1.0, 1.0]], 0.1, value)


# ==== 2. losses and the gradient penalty (gan_utils.core.losses) =================================
@given(name=st.sampled_from(sorted(LOSSES)), real=logits(), fake=logits())
def test_every_loss_is_a_finite_scalar_on_bounded_logits(name, real, fake):
    loss = get_loss(name)
    assert loss.name == name
    for value in (loss.critic(real.float(), fake.float()), loss.generator(fake.float())):
        assert value.shape == () and bool(torch.isfinite(value))


@given(real=logits(), fake=logits())
def test_bce_losses_equal_torch_binary_cross_entropy_with_logits(real, fake):
    bce = F.binary_cross_entropy_with_logits
    ones, zeros = torch.ones_like, torch.zeros_like
    expected_critic = bce(real, ones(real)) + bce(fake, zeros(fake))
    for name in BCE_LOSSES:
        torch.testing.assert_close(get_loss(name).critic(real, fake), expected_critic)
    assert bce_critic_loss(real, fake) >= 0
    # minimax G: E log(1 - D(G(z))) = -BCE(fake, 0); non-saturating G: BCE(fake, 1)
    torch.testing.assert_close(minimax_generator_loss(fake), -bce(fake, zeros(fake)))
    torch.testing.assert_close(non_saturating_generator_loss(fake), bce(fake, ones(fake)))


@given(real=logits(), fake=logits())
def test_least_squares_and_wasserstein_losses_equal_their_formulas(real, fake):
    mse = F.mse_loss
    ls_critic = least_squares_critic_loss(real, fake)
    ls_generator = least_squares_generator_loss(fake)
    torch.testing.assert_close(
        ls_critic, 0.5 * mse(real, torch.ones_like(real)) + 0.5 * mse(fake, torch.zeros_like(fake))
    )
    torch.testing.assert_close(ls_generator, 0.5 * mse(fake, torch.ones_like(fake)))
    assert ls_critic >= 0 and ls_generator >= 0
    torch.testing.assert_close(wasserstein_critic_loss(real, fake), fake.mean() - real.mean())
    torch.testing.assert_close(critic_score_generator_loss(fake), -fake.mean())


@given(real=logits(), fake=logits())
def test_hinge_critic_loss_is_non_negative_and_zero_beyond_both_margins(real, fake):
    loss = hinge_critic_loss(real, fake)
    expected = torch.clamp(1 - real, min=0).mean() + torch.clamp(1 + fake, min=0).mean()
    torch.testing.assert_close(loss, expected)
    assert loss >= 0
    # reals scored >= 1 and fakes <= -1 cost nothing
    assert hinge_critic_loss(real.abs() + 1, -fake.abs() - 1) == 0


@given(
    batch=st.integers(1, 6),
    dim=st.integers(1, 4),
    hidden=st.integers(1, 6),
    weight=small_floats(0, 100),
    seed=st.integers(0, 2**31),
)
def test_gradient_penalty_of_an_mlp_critic_is_non_negative(batch, dim, hidden, weight, seed):
    torch.manual_seed(seed)
    critic = torch.nn.Sequential(
        torch.nn.Linear(dim, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
    )
    gp = gradient_penalty(critic, torch.randn(batch, dim), torch.randn(batch, dim), weight)
    gp = gp.detach()
    assert gp.shape == () and bool(torch.isfinite(gp)) and float(gp) >= 0


@given(
    w=arrays(np.float64, st.integers(1, 5), elements=small_floats(-5, 5)).filter(
        lambda w: np.linalg.norm(w) > 1e-3
    ),
    norm=st.one_of(st.just(1.0), small_floats(0.0, 3.0)),
    weight=small_floats(0, 20),
    batch=st.integers(1, 6),
    seed=st.integers(0, 2**31),
)
def test_gradient_penalty_of_a_linear_critic_is_weight_times_norm_minus_one_squared(
    w, norm, weight, batch, seed
):
    """f(x) = w.x + b has gradient w everywhere on the interpolation line: GP = lambda
    (||w|| - 1)^2, which is 0 for a unit-norm w (an exactly 1-Lipschitz critic)."""
    dim = w.shape[0]
    critic = torch.nn.Linear(dim, 1).double()
    with torch.no_grad():
        critic.weight.copy_(torch.from_numpy(w / np.linalg.norm(w) * norm)[None])
    generator = torch.Generator().manual_seed(seed)
    real = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    fake = torch.randn(batch, dim, generator=generator, dtype=torch.float64)
    gp = float(gradient_penalty(critic, real, fake, weight).detach())
    assert gp == pytest.approx(weight * (norm - 1.0) ** 2, rel=1e-9, abs=1e-12)
    if norm == 1.0:
        assert abs(gp) <= 1e-12


@given(
    real=logits(),
    fake=logits(),
    which=st.sampled_from(["real_logits", "fake_logits"]),
    data=st.data(),
)
def test_losses_given_bad_logits_name_the_argument(real, fake, which, data):
    bad, error = data.draw(
        st.one_of(
            st.tuples(
                st.one_of(st.lists(st.floats(), max_size=3), st.floats(), st.none(), st.text()),
                st.just(TypeError),
            ),
            st.tuples(st.just(torch.tensor([1, 2])), st.just(TypeError)),  # integer logits
            st.tuples(st.just(torch.zeros(0)), st.just(ValueError)),  # no logits at all
        )
    )
    name = data.draw(st.sampled_from(sorted(LOSSES)))
    args = {"real_logits": real, "fake_logits": fake, which: bad}
    raises_naming(error, which, get_loss(name).critic, args["real_logits"], args["fake_logits"])
    if which == "fake_logits":
        raises_naming(error, which, get_loss(name).generator, bad)


@given(name=st.text(max_size=12).filter(lambda n: n not in LOSSES))
def test_unknown_loss_names_are_value_errors_naming_loss(name):
    raises_naming(ValueError, "loss", get_loss, name)


@given(
    case=st.one_of(
        st.tuples(st.just("weight"), st.floats(max_value=-1e-300), st.just(ValueError)),
        st.tuples(st.just("weight"), NON_FINITE, st.just(ValueError)),
        st.tuples(st.just("weight"), NOT_NUMBER, st.just(TypeError)),
        st.tuples(st.just("real"), st.lists(st.floats(), max_size=3), st.just(TypeError)),
        st.tuples(st.just("real"), st.just(torch.zeros(0, 2)), st.just(ValueError)),
        st.tuples(st.just("real"), st.just(torch.zeros(3, 2)), st.just(ValueError)),  # shape
        st.tuples(
            st.just("fake"), st.just(torch.zeros(2, 2, dtype=torch.long)), st.just(TypeError)
        ),
        st.tuples(st.just("critic"), st.one_of(st.none(), st.integers()), st.just(TypeError)),
    )
)
def test_gradient_penalty_given_bad_input_names_the_argument(case):
    name, value, error = case
    args = {"critic": torch.nn.Linear(2, 1), "real": torch.zeros(2, 2), "fake": torch.ones(2, 2)}
    args["weight"] = 10.0
    args[name] = value
    raises_naming(error, name, gradient_penalty, **args)
    if name in ("real", "fake"):
        raises_naming(error, name, interpolate, args["real"], args["fake"])


# ==== 3. coverage metrics (gan_utils.toy.coverage) ===============================================
@st.composite
def coverage_cases(draw, max_samples: int = 40):
    """(samples (N, 2), centres (K, 2) of a ring, std): samples scattered around centres."""
    k = draw(st.integers(1, 8))
    centres = ring(k, radius=draw(small_floats(0.5, 4.0))).centres.double()
    std = draw(small_floats(0.01, 0.3))
    n = draw(st.integers(1, max_samples))
    which = torch.tensor(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    spread = draw(small_floats(0.0, 6.0))
    offsets = draw(arrays(np.float64, (n, 2), elements=small_floats(-1, 1)))
    return centres[which] + spread * std * torch.from_numpy(offsets), centres, std


@given(case=coverage_cases(), min_hq=st.integers(1, 25))
def test_mode_coverage_counts_and_percentages_stay_in_range(case, min_hq):
    samples, centres, std = case
    k, n = centres.shape[0], samples.shape[0]
    metrics = mode_coverage(samples, centres, std, min_hq_per_mode=min_hq)
    assert (metrics.num_modes, metrics.num_samples) == (k, n)
    assert 0 <= metrics.modes_covered <= metrics.modes_hit <= k
    assert 0.0 <= metrics.high_quality_percent <= 100.0
    assert len(metrics.hq_counts) == k and all(c >= 0 for c in metrics.hq_counts)
    assert sum(metrics.hq_counts) == round(metrics.high_quality_percent * n / 100)
    assert metrics.modes_hit == sum(c >= 1 for c in metrics.hq_counts)
    assert metrics.modes_covered == sum(c >= min_hq for c in metrics.hq_counts)
    if sum(metrics.hq_counts) == 0:
        assert math.isnan(metrics.kl_to_uniform)
    else:
        assert -1e-12 <= metrics.kl_to_uniform <= math.log(k) + 1e-12
    assert collapse_verdict(metrics) in ("collapsed", "covering", "blurry", "partial")


@given(case=coverage_cases(), seed=st.integers(0, 2**31), extra=st.integers(0, 3))
def test_mode_coverage_ignores_sample_order_and_never_counts_non_finite_samples(case, seed, extra):
    samples, centres, std = case
    metrics = mode_coverage(samples, centres, std)
    order = torch.randperm(samples.shape[0], generator=torch.Generator().manual_seed(seed))
    assert mode_coverage(samples[order], centres, std) == metrics
    # diverged samples (NaN, inf) are never high quality: the HQ counts do not change
    bad = torch.tensor([[math.nan, 0.0], [math.inf, 1.0], [-math.inf, math.nan]])[:extra]
    with_bad = mode_coverage(torch.cat([samples, bad]), centres, std)
    assert with_bad.hq_counts == metrics.hq_counts
    assert with_bad.num_samples == samples.shape[0] + extra


@given(
    k=st.integers(1, 10),
    radius=small_floats(0.5, 4.0),
    data=st.data(),
    n=st.integers(20, 60),
    std=small_floats(0.01, 0.3),
)
def test_every_sample_on_one_centre_is_one_mode(k, radius, data, n, std):
    centres = ring(k, radius=radius).centres
    j = data.draw(st.integers(0, k - 1))
    metrics = mode_coverage(centres[j].repeat(n, 1), centres, std)
    assert metrics.modes_hit == metrics.modes_covered == 1
    assert metrics.hq_counts[j] == n and metrics.high_quality_percent == 100.0
    assert metrics.kl_to_uniform == pytest.approx(math.log(k), abs=1e-12)


@given(centres=feature_arrays(1, 6, dims=(1, 3)))
def test_mode_spacing_is_the_smallest_distance_between_two_centres(centres):
    pairs = itertools.combinations(centres.tolist(), 2)
    expected = min((math.dist(a, b) for a, b in pairs), default=math.inf)
    assert mode_spacing(centres) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@given(
    case=st.one_of(
        st.tuples(st.just("samples"), NOT_NUMERIC_ARRAY, st.just(TypeError)),
        st.tuples(
            st.just("samples"),
            st.sampled_from([np.zeros((3, 3)), np.zeros(4), np.zeros((0, 2))]),
            st.just(ValueError),
        ),
        st.tuples(st.just("centres"), NOT_NUMERIC_ARRAY, st.just(TypeError)),
        st.tuples(
            st.just("centres"),
            st.sampled_from([np.zeros(2), np.zeros((0, 2)), np.array([[0.0, math.nan]])]),
            st.just(ValueError),
        ),
        st.tuples(st.just("std"), NON_POSITIVE, st.just(ValueError)),
        st.tuples(st.just("std"), NOT_NUMBER, st.just(TypeError)),
        st.tuples(st.just("min_hq_per_mode"), st.integers(max_value=0), st.just(ValueError)),
        st.tuples(st.just("min_hq_per_mode"), NOT_INT, st.just(TypeError)),
        st.tuples(st.just("hq_radius_in_std"), NON_POSITIVE, st.just(ValueError)),
        st.tuples(st.just("hq_radius_in_std"), NOT_NUMBER, st.just(TypeError)),
    )
)
def test_mode_coverage_given_bad_input_names_the_parameter(case):
    name, value, error = case
    args = {"samples": np.zeros((5, 2)), "centres": np.eye(2), "std": 0.1, name: value}
    raises_naming(error, name, mode_coverage, **args)
    if name == "centres" and error is TypeError:
        raises_naming(error, name, mode_spacing, value)


@given(value=st.one_of(st.integers(), st.none(), st.text(max_size=3), st.just({"modes": 1})))
def test_collapse_verdict_of_something_else_than_mode_coverage_is_a_type_error(value):
    raises_naming(TypeError, "metrics", collapse_verdict, value)
    assert not isinstance(value, ModeCoverage)


# ==== 4. IS / FID / class metrics (gan_utils.images.metrics) and PRDC (fidelity) =================
@st.composite
def probability_rows(draw):
    """(probs (N, C) with rows summing to 1, exact zeros allowed; splits dividing N)."""
    splits, per_split, classes = (
        draw(st.integers(1, 4)),
        draw(st.integers(1, 5)),
        draw(st.integers(2, 6)),
    )
    raw = draw(arrays(np.float64, (splits * per_split, classes), elements=small_floats(0, 1)))
    raw[raw.sum(axis=1) == 0, 0] = 1.0
    return raw / raw.sum(axis=1, keepdims=True), splits


@given(case=probability_rows())
def test_inception_score_lies_between_one_and_the_number_of_classes(case):
    probs, splits = case
    mean, std = inception_score(probs, splits)
    assert 1 - 1e-9 <= mean <= probs.shape[1] + 1e-9
    assert math.isnan(std) if splits == 1 else std >= 0


@given(case=probability_rows(), seed=st.integers(0, 2**31))
def test_inception_score_and_class_metrics_ignore_the_order_of_the_classes(case, seed):
    probs, splits = case
    permutation = np.random.default_rng(seed).permutation(probs.shape[1])
    mean, std = inception_score(probs, splits)
    permuted = inception_score(probs[:, permutation], splits)
    assert permuted[0] == pytest.approx(mean, rel=1e-12)
    # argmax-based metrics: ties may resolve to another class, so compare on tie-free rows
    rows = np.sort(probs, axis=1)
    untied = probs[rows[:, -1] > rows[:, -2]]
    if len(untied):
        counts = class_histogram(untied)
        assert counts.sum() == len(untied) and len(counts) == probs.shape[1]
        np.testing.assert_array_equal(class_histogram(untied[:, permutation]), counts[permutation])
        kl = class_kl_to_uniform(untied)
        assert -1e-12 <= kl <= math.log(probs.shape[1]) + 1e-12
        assert class_kl_to_uniform(untied[:, permutation]) == pytest.approx(kl, abs=1e-12)
        assert 0 <= classes_covered(untied) <= probs.shape[1]


@given(classes=st.integers(2, 8), repeats=st.integers(1, 4))
def test_inception_score_of_confident_balanced_predictions_is_the_number_of_classes(
    classes, repeats
):
    probs = np.eye(classes)[np.arange(classes * repeats) % classes]
    assert inception_score(probs, splits=1)[0] == pytest.approx(classes, rel=1e-12)
    assert class_kl_to_uniform(probs) == pytest.approx(0.0, abs=1e-12)
    assert classes_covered(probs) == classes


@given(features=feature_arrays())
def test_fid_of_identical_statistics_is_zero(features):
    stats = feature_statistics(features)
    value = fid_from_stats(stats.mean, stats.cov, stats.mean, stats.cov)
    assert -1e-9 <= value < 1e-8
    assert -1e-9 <= fid(features, features) < 1e-8


def _fid_tolerance(*feature_sets) -> float:
    """Round-off of FID: the eigenvalues' square roots lose about half the digits of the
    covariances when they are (near-)singular; 1e-6 of the traces is ample."""
    return 1e-6 * (1.0 + sum(float(np.trace(np.atleast_2d(np.cov(f.T)))) for f in feature_sets))


@given(data=st.data(), d=st.integers(1, 4))
def test_fid_is_symmetric_and_non_negative(data, d):
    a = data.draw(feature_arrays(dims=(d, d)))
    b = data.draw(feature_arrays(dims=(d, d)))
    tolerance = _fid_tolerance(a, b)
    ab, ba = fid(a, b), fid(b, a)
    assert ab == pytest.approx(ba, abs=tolerance)
    assert ab >= -tolerance


@given(features=feature_arrays(), shift=st.data())
def test_fid_of_a_shifted_copy_is_the_squared_shift(features, shift):
    t = shift.draw(arrays(np.float64, features.shape[1], elements=small_floats(-10, 10)))
    expected = float(t @ t)
    assert fid(features, features + t) == pytest.approx(
        expected, abs=_fid_tolerance(features) + 1e-12 * expected
    )


@given(
    case=st.one_of(
        st.tuples(st.just("probs"), NOT_NUMERIC_ARRAY, st.sampled_from([TypeError, ValueError])),
        st.tuples(
            st.just("probs"),
            st.sampled_from(
                [np.full((4, 3), 0.5), np.full((4, 2), [1.5, -0.5]), np.ones((4, 1)), np.ones(4)]
            ),
            st.just(ValueError),
        ),
        st.tuples(st.just("splits"), st.integers(max_value=0), st.just(ValueError)),
        st.tuples(
            st.just("splits"), st.integers(3, 100).filter(lambda s: 4 % s), st.just(ValueError)
        ),
        st.tuples(st.just("splits"), NOT_INT, st.just(TypeError)),
    )
)
def test_inception_score_given_bad_input_names_the_parameter(case):
    name, value, error = case
    args = {"probs": np.full((4, 2), 0.5), "splits": 2, name: value}
    with pytest.raises((TypeError, ValueError)) as info:
        inception_score(**args)
    assert isinstance(info.value, error) or name == "probs", info.value
    assert name in str(info.value)


@given(
    case=st.one_of(
        st.tuples(st.just("num_classes"), st.integers(max_value=2), st.just(ValueError)),
        st.tuples(
            st.just("num_classes"), NOT_INT.filter(lambda v: v is not None), st.just(TypeError)
        ),
        st.tuples(st.just("min_share"), st.floats(max_value=0.0), st.just(ValueError)),
        st.tuples(
            st.just("min_share"), st.floats(min_value=1.0, exclude_min=True), st.just(ValueError)
        ),
        st.tuples(st.just("min_share"), NOT_NUMBER, st.just(TypeError)),
    )
)
def test_class_metrics_given_bad_settings_name_the_parameter(case):
    name, value, error = case
    probs = np.eye(3)[[0, 1, 2, 2]]
    if name == "num_classes":
        raises_naming(error, name, class_histogram, probs, value)
    else:
        raises_naming(error, name, classes_covered, probs, value)


@given(
    case=st.one_of(
        st.tuples(
            st.just("cov1"),
            arrays(np.float64, (2, 2), elements=small_floats(-5, 5)).map(
                lambda m: m - m.T + np.array([[0.0, 1.0], [0.0, 0.0]])
            ),
        ),  # not symmetric
        st.tuples(
            st.just("cov2"),
            arrays(np.float64, (2, 2), elements=small_floats(-5, 5)).map(
                lambda m: -(m @ m.T) - np.eye(2)
            ),
        ),  # symmetric, negative definite
        st.tuples(st.just("cov1"), st.just(np.eye(3))),
        st.tuples(st.just("mu1"), st.sampled_from([np.zeros(3), np.zeros(0), np.float64(0.0)])),
        st.tuples(
            st.just("mu2"), NOT_NUMERIC_ARRAY.filter(lambda v: not isinstance(v, np.ndarray))
        ),
        st.tuples(st.just("features"), st.sampled_from([np.zeros((1, 2)), np.zeros((3, 0))])),
        st.tuples(st.just("features"), NON_FINITE.map(lambda v: np.array([[0.0, v], [1.0, 1.0]]))),
    )
)
def test_fid_given_bad_statistics_names_the_argument(case):
    name, value = case
    if name == "features":
        raises_naming(ValueError, name, feature_statistics, value)
        return
    args = {
        "mu1": np.zeros(2),
        "cov1": np.eye(2),
        "mu2": np.ones(2),
        "cov2": np.eye(2),
        name: value,
    }
    raises_naming(ValueError, name, fid_from_stats, **args)


@given(data=st.data(), d=st.integers(1, 3))
def test_precision_recall_density_coverage_lie_in_their_ranges(data, d):
    real = data.draw(feature_arrays(2, 8, dims=(d, d)))
    fake = data.draw(feature_arrays(2, 8, dims=(d, d)))
    n, m = real.shape[0], fake.shape[0]
    k = data.draw(st.integers(1, min(n, m) - 1))
    result = precision_recall_density_coverage(real, fake, k=k)
    assert set(result) == {"precision", "recall", "density", "coverage"}
    for key in ("precision", "recall", "coverage"):
        assert 0.0 <= result[key] <= 1.0
    assert 0.0 <= result["density"] <= n / k
    # recall of fakes against reals is precision with the roles swapped (same balls)
    swapped = precision_recall_density_coverage(fake, real, k=k)
    assert swapped["recall"] == result["precision"]
    assert swapped["precision"] == result["recall"]


@given(n=st.integers(3, 12), d=st.integers(1, 4), seed=st.integers(0, 2**31), data=st.data())
def test_identical_sets_in_general_position_score_one_on_all_four(n, d, seed, data):
    points = np.random.default_rng(seed).standard_normal((n, d))
    k = data.draw(st.integers(1, n - 1))
    result = precision_recall_density_coverage(points, points.copy(), k=k)
    assert result == {"precision": 1.0, "recall": 1.0, "density": 1.0, "coverage": 1.0}


@given(
    case=st.one_of(
        st.tuples(st.just("k"), st.integers(max_value=0), st.just(ValueError)),
        st.tuples(st.just("k"), st.integers(4, 10**6), st.just(ValueError)),  # >= rows (4)
        st.tuples(st.just("k"), NOT_INT, st.just(TypeError)),
        st.tuples(st.just("real_features"), NOT_NUMERIC_ARRAY, st.just(TypeError)),
        st.tuples(
            st.just("fake_features"),
            st.sampled_from([np.zeros((4, 3)), np.zeros(4), np.full((4, 2), np.nan)]),
            st.just(ValueError),
        ),
    )
)
def test_prdc_given_bad_input_names_the_argument(case):
    name, value, error = case
    rng = np.random.default_rng(0)
    args = {"real_features": rng.normal(size=(4, 2)), "fake_features": rng.normal(size=(5, 2))}
    args["k"] = 2
    args[name] = value
    raises_naming(error, name, precision_recall_density_coverage, **args)


# ==== 5. Lanczos (gan_utils.hessian.lanczos) =====================================================
def symmetric_matrices(max_n: int = 8):
    """Symmetric float64 matrices up to 8 x 8, entries in [-10, 10]; entries below 1e-100
    are zeroed: Lanczos squares vector entries, and below ~1e-155 those squares are
    subnormal (an all-tiny matrix loses digits there, a limit of float64, not of the code)."""
    entries = small_floats(-10, 10).map(lambda x: x if abs(x) > 1e-100 else 0.0)
    return (
        st.integers(1, max_n)
        .flatmap(lambda n: arrays(np.float64, (n, n), elements=entries))
        .map(lambda b: (b + b.T) / 2)
    )


@given(
    a=symmetric_matrices(),
    data=st.data(),
    which=st.sampled_from(["LA", "SA", "LM"]),
    seed=st.integers(0, 2**31),
)
def test_ritz_values_lie_within_the_spectrum(a, data, which, seed):
    n = a.shape[0]
    k = data.draw(st.integers(1, n))
    iterations = data.draw(st.integers(k, n))
    eigenvalues = np.linalg.eigvalsh(a)
    slack = 1e-9 * max(np.abs(eigenvalues).max(), 1e-300) + 1e-300
    result = lanczos(a, k=k, which=which, max_iterations=iterations, tol=0.0, seed=seed)
    assert result.eigenvalues.shape == (k,) and result.num_iterations == iterations
    for ritz in [result.eigenvalues, *result.ritz_values]:
        assert np.all(ritz >= eigenvalues[0] - slack) and np.all(ritz <= eigenvalues[-1] + slack)
    # each returned pair is within its residual bound of some eigenvalue
    for theta, residual in zip(result.eigenvalues, result.residuals, strict=True):
        assert np.abs(eigenvalues - theta).min() <= residual + slack


@given(a=symmetric_matrices(), data=st.data(), seed=st.integers(0, 2**31))
def test_lanczos_run_to_the_dimension_finds_the_top_eigenvalues(a, data, seed):
    n = a.shape[0]
    k = data.draw(st.integers(1, n))
    eigenvalues = np.linalg.eigvalsh(a)  # increasing
    scale = max(np.abs(eigenvalues).max(), 1e-300)
    top = lanczos(a, k=k, which="LA", max_iterations=n, tol=0.0, seed=seed)
    assert top.converged and top.num_iterations == n
    np.testing.assert_allclose(top.eigenvalues, eigenvalues[::-1][:k], rtol=0, atol=1e-8 * scale)
    bottom = lanczos(a, k=k, which="SA", max_iterations=n, tol=0.0, seed=seed)
    np.testing.assert_allclose(bottom.eigenvalues, eigenvalues[:k], rtol=0, atol=1e-8 * scale)
    # the default stopping rule (tol 1e-6) also reaches the top eigenvalue on a small matrix
    default = lanczos(a, k=1, seed=seed)
    assert default.eigenvalues[0] == pytest.approx(eigenvalues[-1], abs=1e-5 * scale)


@given(
    case=st.one_of(
        st.tuples(st.just("k"), st.integers(max_value=0), st.just(ValueError)),
        st.tuples(st.just("k"), NOT_INT, st.just(TypeError)),
        st.tuples(
            st.just("which"),
            st.text(max_size=3).filter(lambda w: w not in ("LA", "SA", "LM")),
            st.just(ValueError),
        ),
        st.tuples(st.just("which"), NOT_STR, st.just(TypeError)),
        st.tuples(st.just("max_iterations"), st.integers(max_value=0), st.just(ValueError)),
        st.tuples(
            st.just("tol"), st.one_of(st.floats(max_value=-1e-300), NON_FINITE), st.just(ValueError)
        ),
        st.tuples(st.just("tol"), NOT_NUMBER, st.just(TypeError)),
        st.tuples(st.just("seed"), st.integers(max_value=-1), st.just(ValueError)),
        st.tuples(st.just("reorthogonalize"), NOT_BOOL, st.just(TypeError)),
        st.tuples(
            st.just("start_vector"),
            NOT_NUMERIC_ARRAY.filter(lambda v: v is not None),
            st.just(TypeError),
        ),
        st.tuples(
            st.just("start_vector"),
            st.sampled_from([np.zeros(3), np.ones(2), np.array([1.0, math.nan, 0.0])]),
            st.just(ValueError),
        ),
    )
)
def test_lanczos_given_bad_options_names_the_parameter(case):
    name, value, error = case
    raises_naming(error, name, lanczos, np.diag([3.0, 2.0, 1.0]), **{"k": 1, name: value})


@given(
    b=arrays(np.float64, (3, 3), elements=small_floats(-10, 10)),
    bad=st.sampled_from(["asymmetric", "non_finite", "not_square", "not_numbers"]),
    value=NON_FINITE,
)
def test_lanczos_given_a_bad_matrix_names_the_operator(b, bad, value):
    if bad == "asymmetric":
        a = b - b.T + np.triu(np.ones((3, 3)), 1)  # antisymmetric part >= 1 above the diagonal
        raises_naming(ValueError, "operator", lanczos, a, k=1)
    elif bad == "non_finite":
        a = b + b.T
        a[0, 0] = value
        raises_naming(ValueError, "operator", lanczos, a, k=1)
    elif bad == "not_square":
        raises_naming(ValueError, "operator", lanczos, b[:2], k=1)
    else:
        raises_naming(TypeError, "operator", lanczos, (b + b.T) > 0, k=1)


@given(k=st.integers(1, 100), dimension=st.integers(1, 1000))
def test_default_max_iterations_is_max_40_8k_capped_by_the_dimension(k, dimension):
    assert default_max_iterations(k, dimension) == min(dimension, max(40, 8 * k))
    raises_naming(ValueError, "k", default_max_iterations, 1 - k, dimension)
    raises_naming(TypeError, "dimension", default_max_iterations, k, float(dimension))


# ==== 6. training configs (TrainConfig, ImageGANConfig) ==========================================
POSITIVE_FLOATS = st.floats(1e-8, 10.0)
BETAS = st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.floats(0.0, 1.0, exclude_max=True))
UNIT_OPEN_LOW = st.floats(0.0, 1.0, exclude_min=True)


@st.composite
def train_configs(draw):
    loss = draw(st.sampled_from(sorted(LOSSES)))
    bce = loss in BCE_LOSSES
    log_every = draw(st.integers(1, 50))
    fields = {
        "loss": loss,
        "latent_dim": draw(st.integers(1, 256)),
        "latent_prior": draw(st.sampled_from(["normal", "uniform"])),
        "batch_size": draw(st.integers(1, 1024)),
        "num_steps": draw(st.integers(1, 10**6)),
        "n_critic": draw(st.integers(1, 10)),
        "lr_g": draw(POSITIVE_FLOATS),
        "lr_d": draw(POSITIVE_FLOATS),
        "betas": draw(BETAS),
        "optimizer": draw(st.sampled_from(OPTIMIZERS)),
        "topk_gamma": draw(UNIT_OPEN_LOW),
        "topk_nu": draw(UNIT_OPEN_LOW),
        "steps_per_epoch": draw(st.integers(1, 100)),
        "seed": draw(st.integers(0, MAX_SEED)),
        "device": draw(st.sampled_from(["auto", "cpu"])),
        "log_every": log_every,
        "checkpoint_every": log_every * draw(st.integers(0, 5)),
        "progress": draw(st.booleans()),
    }
    remedy = draw(st.sampled_from(["none", "pack", "unroll"]))
    if remedy == "unroll":  # plain targets, no clipping, penalty or top-k
        fields["unroll_steps"] = draw(st.integers(1, 10))
    else:
        fields["clip_value"] = draw(st.none() | POSITIVE_FLOATS)
        if bce:
            fields["real_label"] = draw(st.floats(0.5, 1.0))
            fields["label_flip_prob"] = draw(st.floats(0.0, 0.5, exclude_max=True))
    if remedy == "pack":  # no per-sample penalty, no top-k
        fields["pack"] = draw(st.integers(2, 4))
    elif remedy == "none":
        fields["gp_weight"] = draw(st.floats(0.0, 100.0))
        fields["topk"] = draw(st.booleans())
    return fields


@given(fields=train_configs())
def test_valid_train_configs_validate_and_round_trip_through_asdict(fields):
    config = TrainConfig(**fields)
    config.validate()
    assert TrainConfig(**dataclasses.asdict(config)) == config
    assert all(getattr(config, name) == value for name, value in fields.items())


POSITIVE_INT_FIELDS = ("latent_dim", "batch_size", "num_steps", "n_critic", "steps_per_epoch")


def _bad_train_field():
    positive_int = st.sampled_from(POSITIVE_INT_FIELDS + ("log_every", "pack"))
    return st.one_of(
        st.tuples(positive_int, st.integers(max_value=0), st.just(ValueError)),
        st.tuples(positive_int, NOT_INT, st.just(TypeError)),
        st.tuples(
            st.sampled_from(["checkpoint_every", "unroll_steps", "seed"]),
            st.integers(max_value=-1),
            st.just(ValueError),
        ),
        st.tuples(st.just("seed"), st.integers(min_value=MAX_SEED + 1), st.just(ValueError)),
        st.tuples(st.sampled_from(["seed", "checkpoint_every"]), NOT_INT, st.just(TypeError)),
        st.tuples(
            st.sampled_from(["lr_g", "lr_d", "clip_value"]), NON_POSITIVE, st.just(ValueError)
        ),
        st.tuples(
            st.sampled_from(["lr_g", "lr_d", "gp_weight", "real_label"]),
            NOT_NUMBER.filter(lambda v: v is not None),
            st.just(TypeError),
        ),
        st.tuples(
            st.just("gp_weight"),
            st.one_of(st.floats(max_value=-1e-300), NON_FINITE),
            st.just(ValueError),
        ),
        st.tuples(st.just("real_label"), NON_FINITE, st.just(ValueError)),
        st.tuples(
            st.sampled_from(["topk_gamma", "topk_nu"]),
            st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True)),
            st.just(ValueError),
        ),
        st.tuples(
            st.just("label_flip_prob"),
            st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=0.5)),
            st.just(ValueError),
        ),
        st.tuples(
            st.sampled_from(["loss", "optimizer", "latent_prior"]),
            st.text(max_size=8).filter(
                lambda t: t not in {*LOSSES, *OPTIMIZERS, "normal", "uniform"}
            ),
            st.just(ValueError),
        ),
        st.tuples(
            st.sampled_from(["loss", "optimizer", "latent_prior"]), NOT_STR, st.just(TypeError)
        ),
        st.tuples(st.sampled_from(["topk", "progress"]), NOT_BOOL, st.just(TypeError)),
        st.tuples(
            st.just("betas"),
            st.tuples(st.floats(min_value=1.0) | st.floats(max_value=-1e-300), st.floats(0, 0.5)),
            st.just(ValueError),
        ),
        st.tuples(
            st.just("betas"),
            st.one_of(st.floats(), st.text(max_size=2), st.none()),
            st.just(TypeError),
        ),
    )


@given(case=_bad_train_field())
def test_invalid_train_config_fields_raise_naming_the_field(case):
    name, value, error = case
    config = dataclasses.replace(TrainConfig(device="cpu"), **{name: value})
    raises_naming(error, name, config.validate)


IMAGE_VARIANTS = [
    name for name in VARIANTS if name not in REMEDIES and not get_variant(name).spectral_norm
]


@st.composite
def image_configs(draw):
    method = draw(st.sampled_from(METHODS))
    architecture = draw(st.sampled_from(ARCHITECTURES))
    side = st.integers(1, 8).map(lambda v: 4 * v) if architecture == "dcgan" else st.integers(1, 32)
    steps_per_epoch = draw(st.integers(1, 50))
    splits = draw(st.integers(1, 10))
    return {
        "method": method,
        "variant": draw(st.sampled_from(IMAGE_VARIANTS)),
        "architecture": architecture,
        "size": draw(st.sampled_from(SIZES[architecture])),
        "output": "tanh" if architecture == "dcgan" else draw(st.sampled_from(GENERATOR_OUTPUTS)),
        "critic_normalization": draw(st.sampled_from(CRITIC_NORMALIZATIONS)),
        "image_shape": (draw(st.integers(1, 3)), draw(side), draw(side)),
        "num_images": draw(st.none() | st.integers(1, 10**5)),
        "latent_dim": draw(st.integers(1, 128)),
        "batch_size": draw(st.integers(1, 512)),
        "num_steps": steps_per_epoch * draw(st.integers(1, 20)),
        "steps_per_epoch": steps_per_epoch,
        "log_every": draw(st.none() | st.integers(1, 100)),
        "optimizer": "adam" if method == "dist_gan" else draw(st.sampled_from(OPTIMIZERS)),
        "lr_g": draw(POSITIVE_FLOATS),
        "lr_d": draw(POSITIVE_FLOATS),
        "lr_ae": draw(POSITIVE_FLOATS),
        "betas": draw(BETAS),
        "lr_decay_from": draw(st.none() | st.floats(0.0, 1.0, exclude_max=True)),
        "seed": draw(st.integers(0, MAX_SEED)),
        "eval_samples": splits * draw(st.integers(1, 100)),
        "splits": splits,
        "lambda_p": draw(st.floats(0.0, 10.0)),
        "lambda_r": draw(st.floats(0.0, 10.0)),
        "lambda_w": draw(st.none() | POSITIVE_FLOATS),
        "reconstruction": draw(st.sampled_from(RECONSTRUCTIONS)),
        "gp_slope": draw(st.sampled_from(GP_SLOPES)),
        "recon_weight_schedule": draw(st.sampled_from(RECON_WEIGHT_SCHEDULES)),
        "autoencoder_trains_generator": draw(st.booleans()),
        "device": "cpu",
    }


@given(fields=image_configs())
def test_valid_image_configs_construct_and_keep_their_values(fields):
    config = ImageGANConfig(**fields)
    assert all(getattr(config, name) == value for name, value in fields.items())
    assert config.epochs == fields["num_steps"] // fields["steps_per_epoch"]
    assert dataclasses.replace(config) == config
    if config.method != "dist_gan":
        config.train_config().validate()  # the loop's config of a valid recipe is valid


def _bad_image_field():
    positive_int = st.sampled_from(
        ["latent_dim", "batch_size", "num_steps", "steps_per_epoch", "eval_samples", "splits"]
    )
    choices = st.sampled_from(
        ["method", "architecture", "output", "critic_normalization", "optimizer", "latent_prior"]
        + ["reconstruction", "gp_slope", "recon_weight_schedule", "variant"]
    )
    return st.one_of(
        st.tuples(positive_int, st.integers(max_value=0), st.just(ValueError)),
        st.tuples(positive_int, NOT_INT, st.just(TypeError)),
        st.tuples(
            st.sampled_from(["num_images", "log_every"]),
            st.integers(max_value=0),
            st.just(ValueError),
        ),
        st.tuples(
            st.just("seed"),
            st.integers(max_value=-1) | st.integers(min_value=MAX_SEED + 1),
            st.just(ValueError),
        ),
        st.tuples(
            st.sampled_from(["lr_g", "lr_d", "lr_ae", "lambda_w"]),
            NON_POSITIVE,
            st.just(ValueError),
        ),
        st.tuples(
            st.sampled_from(["lr_g", "lr_d", "lambda_p", "lambda_r"]),
            NOT_NUMBER.filter(lambda v: v is not None),
            st.just(TypeError),
        ),
        st.tuples(
            st.sampled_from(["lambda_p", "lambda_r"]),
            st.one_of(st.floats(max_value=-1e-300), NON_FINITE),
            st.just(ValueError),
        ),
        st.tuples(
            st.just("lr_decay_from"),
            st.one_of(st.floats(max_value=-1e-300), st.floats(min_value=1.0), NON_FINITE),
            st.just(ValueError),
        ),
        st.tuples(
            choices, st.text(min_size=1, max_size=8).map(lambda t: t + "?"), st.just(ValueError)
        ),
        st.tuples(choices, NOT_STR, st.just(TypeError)),
        st.tuples(st.just("autoencoder_trains_generator"), NOT_BOOL, st.just(TypeError)),
        st.tuples(
            st.just("image_shape"),
            st.tuples(st.integers(max_value=0), st.just(28), st.just(28)),
            st.just(ValueError),
        ),
        st.tuples(
            st.just("image_shape"),
            st.one_of(st.integers(), st.text(max_size=3), st.none()),
            st.just(TypeError),
        ),
        st.tuples(
            st.just("betas"),
            st.tuples(st.floats(0, 0.5), st.floats(min_value=1.0) | NON_FINITE),
            st.just(ValueError),
        ),
        st.tuples(st.just("nu"), st.one_of(st.integers(), st.text(max_size=3)), st.just(TypeError)),
        st.tuples(st.just("device"), st.one_of(st.integers(), st.none()), st.just(TypeError)),
    )


@given(case=_bad_image_field())
def test_invalid_image_config_fields_raise_naming_the_field(case):
    name, value, error = case
    base = {"device": "cpu", "method": "nu_gan" if name == "nu" else "gan"}
    raises_naming(error, name, ImageGANConfig, **{**base, name: value})


# ==== 7. gan-toy argument parsing (gan_utils.toy.cli) ============================================
PARSER = build_parser()
CLI_SUPPRESS_FIXTURE_CHECK = settings(
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)


@given(
    steps=st.none() | st.integers(1, 10**7),
    epochs=st.none() | st.integers(1, 1000),
    lr=st.none() | POSITIVE_FLOATS,
    batch_size=st.none() | st.integers(1, 4096),
    latent_size=st.none() | st.integers(1, 512),
    width=st.none() | st.integers(1, 1024),
    depth=st.none() | st.integers(0, 8),
    d_updates=st.none() | st.integers(1, 20),
    samples=st.none() | st.integers(1, 10**6),
    optimizer=st.none() | st.sampled_from(OPTIMIZERS),
    lr_decay_from=st.none() | st.floats(0.0, 1.0, exclude_max=True) | st.just("none"),
    topk_gamma=UNIT_OPEN_LOW,
    topk_nu=UNIT_OPEN_LOW,
    eval_samples=st.integers(1, 10**5),
)
def test_valid_gan_toy_flags_parse_to_settings_with_those_values(
    steps, epochs, lr, batch_size, latent_size, width, depth, d_updates, samples, optimizer,
    lr_decay_from, topk_gamma, topk_nu, eval_samples,
):  # fmt: skip
    flags = {
        "--steps": steps, "--epochs": epochs, "--lr": lr, "--batch_size": batch_size,
        "--latent_size": latent_size, "--width": width, "--depth": depth,
        "--d_updates": d_updates, "--samples": samples, "--optimizer": optimizer,
        "--lr_decay_from": lr_decay_from, "--topk_gamma": topk_gamma, "--topk_nu": topk_nu,
        "--eval_samples": eval_samples,
    }  # fmt: skip
    argv = [
        f"{flag}={value!r}".replace("'", "") for flag, value in flags.items() if value is not None
    ]
    settings_ = settings_from_args(PARSER.parse_args(argv))
    expected = {
        "lr": lr, "batch_size": batch_size, "latent_dim": latent_size, "width": width,
        "depth": depth, "n_critic": d_updates, "num_real_samples": samples,
        "optimizer": optimizer, "topk_gamma": topk_gamma, "topk_nu": topk_nu,
        "eval_samples": eval_samples,
    }  # fmt: skip
    for field, value in expected.items():
        if value is not None:
            assert getattr(settings_, field) == value, field
    if lr_decay_from is not None:
        assert settings_.lr_decay_from == (None if lr_decay_from == "none" else lr_decay_from)
    epoch = math.ceil(samples / (batch_size or 256)) if samples else 20
    if steps is not None:
        assert settings_.num_steps == steps
    elif epochs is not None:
        assert settings_.num_steps == epochs * epoch
    else:
        assert settings_.num_steps == 2000  # the lesson's default


INT_FLAGS = ["--steps", "--epochs", "--d_updates", "--latent_size", "--batch_size", "--samples"]
INT_FLAGS += ["--width", "--pack", "--plot_frequency", "--eval_samples", "--workers"]
NON_NEGATIVE_INT_FLAGS = ["--depth", "--unroll", "--seeds"]
LETTERS = st.text(string.ascii_letters, min_size=1, max_size=8).filter(
    lambda t: t.lower() != "none"
)
NOT_INTEGRAL_TEXT = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda v: not v.is_integer()
)


@CLI_SUPPRESS_FIXTURE_CHECK
@given(
    case=st.one_of(
        st.tuples(st.sampled_from(INT_FLAGS), st.integers(max_value=0)),
        st.tuples(st.sampled_from(NON_NEGATIVE_INT_FLAGS), st.integers(max_value=-1)),
        st.tuples(st.sampled_from(INT_FLAGS + NON_NEGATIVE_INT_FLAGS), NOT_INTEGRAL_TEXT),
        st.tuples(st.sampled_from(INT_FLAGS + NON_NEGATIVE_INT_FLAGS), LETTERS),
        st.tuples(st.just("--lr"), NON_POSITIVE),
        st.tuples(st.just("--clip_weights"), st.floats(max_value=-1e-300) | NON_FINITE),
        st.tuples(
            st.sampled_from(["--topk_gamma", "--topk_nu"]),
            st.floats(max_value=0.0) | st.floats(min_value=1.0, exclude_min=True) | NON_FINITE,
        ),
        st.tuples(
            st.just("--lr_decay_from"),
            st.floats(max_value=-1e-300) | st.floats(min_value=1.0) | NON_FINITE,
        ),
        st.tuples(
            st.sampled_from(["--lr", "--clip_weights", "--topk_nu", "--lr_decay_from"]), LETTERS
        ),
    )
)
def test_invalid_gan_toy_numbers_exit_with_code_2_naming_the_flag(capsys, case):
    flag, value = case
    capsys.readouterr()  # drop what an earlier example printed
    with pytest.raises(SystemExit) as info:
        PARSER.parse_args([f"{flag}={value}"])
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {flag}" in error, error


# ==== 8. reference manifest (gan_utils.images.references) =======================================
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def _is_manifest(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("runs"), dict)


@contextlib.contextmanager
def _folder():
    with tempfile.TemporaryDirectory(prefix="manifest_") as name:
        yield Path(name)


@given(
    content=st.one_of(
        JSON_VALUES.filter(lambda v: not _is_manifest(v)).map(json.dumps),
        st.tuples(st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=2), JSON_VALUES)
        .filter(lambda pair: not isinstance(pair[1], dict))
        .map(lambda pair: json.dumps({**pair[0], "runs": pair[1]})),  # "runs" not a mapping
        st.text(max_size=20),  # mostly not JSON at all
        st.binary(max_size=20),  # mostly not UTF-8 either
    )
)
def test_a_manifest_file_that_is_not_a_manifest_is_a_reference_error_naming_it(content):
    with _folder() as folder:
        path = folder / "manifest.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        try:
            assume(not _is_manifest(json.loads(path.read_bytes())))
        except ValueError:  # not JSON (or not UTF-8): must be refused
            pass
        with pytest.raises(ReferenceError) as info:
            read_manifest(folder)
        assert str(path) in str(info.value)


@given(
    runs=st.dictionaries(
        st.text(min_size=1, max_size=10) | st.sampled_from(sorted(REFERENCES)),
        st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=3),
        max_size=4,
    ),
    extra=st.dictionaries(
        st.text(max_size=6).filter(lambda k: k not in ("runs", "format")), JSON_VALUES, max_size=2
    ),
)
def test_a_valid_manifest_round_trips_through_write_manifest(runs, extra):
    manifest = {**extra, "runs": runs}
    expected_runs = {
        name: {**entry, "lesson": REFERENCES[name].lesson, "summary": REFERENCES[name].summary}
        if name in REFERENCES
        else entry
        for name, entry in copy.deepcopy(runs).items()
    }
    with _folder() as folder:
        path = write_manifest(copy.deepcopy(manifest), folder)
        assert path == folder / "manifest.json"
        assert read_manifest(folder) == {**extra, "format": FORMAT, "runs": expected_runs}
    with _folder() as empty:  # no file yet: an empty manifest
        assert read_manifest(empty) == {"format": FORMAT, "runs": {}}


# ==== 9. lesson-sweep grids (gan_utils.core.lesson_sweep) ========================================
@given(value=st.integers(-(10**30), 10**30))
def test_parse_value_reads_back_an_int(value):
    parsed = parse_value(str(value))
    assert parsed == value and type(parsed) is int


@given(value=st.floats())
def test_parse_value_reads_back_a_float_from_its_repr(value):
    parsed = parse_value(repr(value))
    assert type(parsed) is float
    assert (math.isnan(parsed) and math.isnan(value)) or parsed == value


@given(value=st.booleans(), spelling=st.sampled_from([str, str.lower, str.upper]))
def test_parse_value_reads_back_a_bool(value, spelling):
    assert parse_value(spelling(str(value))) is value


@given(value=st.one_of(st.integers(), st.floats(), st.none(), st.booleans(), st.binary(max_size=3)))
def test_parse_value_of_something_else_than_text_is_a_type_error(value):
    raises_naming(TypeError, "value", parse_value, value)


# Text of the Basic Multilingual Plane: JSON escapes it as one \\uXXXX, which YAML reads
# back (PyYAML does not join the surrogate-pair escapes JSON writes for other planes).
GRID_TEXT = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=3)
NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True)
AXES = st.dictionaries(
    NAMES.map(lambda name: "a_" + name),
    st.lists(st.integers(-5, 5) | st.text(max_size=3) | st.booleans(), min_size=1, max_size=3),
    min_size=1,
    max_size=3,
)


@given(axes=AXES)
def test_grid_size_is_the_product_of_the_axes_and_the_last_axis_is_fastest(axes):
    runs = expand_grid(axes)
    lengths = [len(values) for values in axes.values()]
    assert len(runs) == math.prod(lengths)
    for index, run in enumerate(runs):
        assert list(run) == list(axes)
        rest = index
        for name, length in reversed(list(zip(axes, lengths, strict=True))):
            rest, position = divmod(rest, length)
            assert run[name] == axes[name][position]


@given(
    axes=AXES | st.just({}),
    bases=st.lists(
        st.dictionaries(NAMES.map(lambda name: "r_" + name), st.integers(), max_size=2),
        min_size=1,
        max_size=3,
    ),
)
def test_grid_with_runs_combines_each_run_with_every_axis_point(axes, bases):
    runs = expand_grid(axes, bases)
    points = math.prod(len(values) for values in axes.values())
    assert len(runs) == len(bases) * points
    for index, run in enumerate(runs):
        base = bases[index // points]
        assert {k: run[k] for k in base} == base and set(run) == {*base, *axes}


@given(
    axes=st.dictionaries(
        NAMES,
        st.one_of(
            st.none() | st.booleans() | st.integers() | small_floats(-1e300, 1e300) | GRID_TEXT,
            st.lists(st.integers() | st.booleans() | GRID_TEXT, min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=3,
    )
)
def test_read_grid_reads_back_a_mapping_of_axes(axes):
    with _folder() as folder:
        path = folder / "grid.yaml"
        path.write_text(json.dumps(axes))  # JSON is YAML
        read_axes, runs = read_grid(path)
    assert runs is None
    assert read_axes == {k: v if isinstance(v, list) else [v] for k, v in axes.items()}


@given(runs=st.lists(st.dictionaries(NAMES, st.integers() | GRID_TEXT, max_size=3), max_size=3))
def test_read_grid_reads_back_a_list_of_runs(runs):
    with _folder() as folder:
        path = folder / "grid.yaml"
        path.write_text(json.dumps(runs))
        assert read_grid(path) == ({}, runs)


@given(
    content=st.one_of(
        JSON_SCALARS,
        st.lists(JSON_SCALARS, min_size=1, max_size=3),  # a list of things that are not runs
        st.dictionaries(
            st.text(max_size=4).filter(lambda name: not name.isidentifier()),
            st.integers(),
            min_size=1,
            max_size=2,
        ),
    )
)
def test_read_grid_of_a_file_that_is_not_a_grid_is_a_value_error_naming_it(content):
    with _folder() as folder:
        path = folder / "grid.yaml"
        path.write_text(json.dumps(content))
        raises_naming(ValueError, str(path), read_grid, path)


@given(
    case=st.one_of(
        st.tuples(
            st.text(max_size=4).filter(lambda name: not name.isidentifier()),
            st.just([1]),
            st.just(ValueError),
        ),
        st.tuples(NAMES, st.just([]), st.just(ValueError)),
        st.tuples(
            NAMES,
            st.one_of(
                st.integers(), st.text(max_size=3), st.none(), st.sets(st.integers(), max_size=2)
            ),
            st.just(TypeError),
        ),
    )
)
def test_expand_grid_given_a_bad_axis_names_it(case):
    name, values, error = case
    raises_naming(error, repr(name), expand_grid, {name: values})
