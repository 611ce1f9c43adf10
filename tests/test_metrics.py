"""IS, FID and class coverage against closed forms, scipy and torchmetrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gan_utils.core.latent import generate, sample_latent
from gan_utils.images.classifier import DigitClassifier
from gan_utils.images.metrics import (
    ClassifierFeatures,
    ClassifierLogits,
    class_histogram,
    class_kl_to_uniform,
    classes_covered,
    classifier_statistics,
    feature_statistics,
    fid,
    fid_from_stats,
    inception_score,
    score_digits,
)
from gan_utils.images.mnist import load_mnist

# --- Inception Score: closed forms -------------------------------------------------------


def test_is_of_one_hot_predictions_spread_evenly_is_the_number_of_classes():
    probs = np.eye(10)[np.arange(1000) % 10]  # 100 confident predictions per class
    mean, std = inception_score(probs, splits=1)
    assert mean == pytest.approx(10.0, rel=1e-12) and math.isnan(std)
    mean, std = inception_score(probs, splits=10)  # each split is balanced too
    assert mean == pytest.approx(10.0, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)


def test_is_of_identical_predictions_is_one():
    row = np.array([0.5, 0.2, 0.1, 0.1, 0.05, 0.05, 0, 0, 0, 0])
    mean, _ = inception_score(np.tile(row, (40, 1)), splits=4)
    assert mean == pytest.approx(1.0, abs=1e-12)


def test_is_of_a_two_class_mixture_matches_its_closed_form():
    # half the samples predict (a, 1 - a), half (1 - a, a): p(y) = (1/2, 1/2) and
    # KL(p(y|x) || p(y)) = log 2 - H(a) for every sample.
    a = 0.9
    probs = np.array([[a, 1 - a], [1 - a, a]] * 50)
    entropy = -(a * math.log(a) + (1 - a) * math.log(1 - a))
    mean, _ = inception_score(probs, splits=1)
    assert mean == pytest.approx(math.exp(math.log(2) - entropy), rel=1e-12)


def test_is_splits_are_in_order_with_ddof_one():
    # split 1: all class 0 (IS 1); split 2: classes 0 and 1 evenly (IS 2)
    probs = np.eye(2)[[0, 0, 0, 0, 0, 1, 0, 1]]
    mean, std = inception_score(probs, splits=2)
    assert mean == pytest.approx(1.5) and std == pytest.approx(np.std([1.0, 2.0], ddof=1))


@pytest.mark.parametrize(
    "probs, splits, match",
    [
        (np.full((25, 10), 0.1), 10, "multiple of splits"),
        (np.full((20, 10), 0.1), 0, "splits must be an integer"),
        (np.full((20, 10), 0.2), 10, "probabilities"),
        (np.full((20, 10), -0.1), 10, "probabilities"),
        (np.full(10, 0.1), 1, r"probs must have shape \(N, C\)"),
        (np.full((20, 10), np.nan), 10, "finite"),
    ],
)
def test_is_rejects_bad_input(probs, splits, match):
    with pytest.raises(ValueError, match=match):
        inception_score(probs, splits)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 5), st.integers(2, 12), st.integers(0, 2**31 - 1))
def test_is_lies_between_one_and_the_number_of_classes(splits, num_classes, seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(num_classes, 0.3), size=10 * splits)
    mean, _ = inception_score(probs, splits)
    assert 1 - 1e-9 <= mean <= num_classes + 1e-9


# --- FID: closed forms and scipy ---------------------------------------------------------


def test_fid_of_diagonal_gaussians_matches_its_formula():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    # diagonal covariances commute: Tr (S1 S2)^(1/2) = sum sqrt(var1 * var2), so
    # FID = |mu1 - mu2|^2 + sum (sqrt(var1) - sqrt(var2))^2
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert fid_from_stats(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(
        expected, rel=1e-12
    )


def test_fid_of_a_set_with_itself_is_zero():
    features = np.random.default_rng(1).normal(size=(500, 16)) @ np.diag(np.arange(1, 17))
    assert abs(fid(features, features)) < 1e-8 * np.trace(np.cov(features, rowvar=False))


@pytest.mark.parametrize("d", [2, 20, 64])
def test_fid_matches_scipy_sqrtm_on_random_spd_matrices(d):
    rng = np.random.default_rng(d)
    a, b = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    cov1, cov2 = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    sqrt_product = scipy.linalg.sqrtm(cov1 @ cov2)
    expected = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(cov1)
        + np.trace(cov2)
        - 2 * np.trace(np.real(sqrt_product))
    )
    assert fid_from_stats(mu1, cov1, mu2, cov2) == pytest.approx(expected, rel=1e-9)


def test_fid_handles_singular_covariances():
    # rank-deficient covariances (more features than samples, dead units): still finite
    rng = np.random.default_rng(3)
    a = np.hstack([rng.normal(size=(10, 5)), np.zeros((10, 27))])
    b = np.hstack([rng.normal(size=(10, 5)) + 1, np.zeros((10, 27))])
    value = fid(a, b)
    assert math.isfinite(value) and value > 0


def test_feature_statistics_match_numpy_and_torch():
    features = np.random.default_rng(4).normal(size=(50, 3))
    stats = feature_statistics(torch.from_numpy(features).float())
    assert stats.n == 50 and stats.mean.dtype == np.float64
    np.testing.assert_allclose(stats.mean, features.mean(axis=0), rtol=1e-6)
    reference = torch.cov(torch.from_numpy(features).T).numpy()  # ddof = 1
    np.testing.assert_allclose(stats.cov, reference, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fid(np.zeros((1, 3)), np.zeros((5, 3))), "N >= 2"),
        (lambda: fid(np.zeros((5, 3)), np.zeros((5, 4))), "same feature size"),
        (lambda: fid_from_stats(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)), "mu1 and mu2"),
        (lambda: fid_from_stats(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3)), "cov1"),
    ],
)
def test_fid_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- class coverage ----------------------------------------------------------------------


def _probs_with_counts(counts: list[int]) -> np.ndarray:
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.eye(len(counts))[labels] * 0.9 + 0.01  # argmax = label, rows sum to 1


def test_classes_covered_counts_classes_above_the_share():
    probs = _probs_with_counts([50, 30, 15, 3, 2, 0, 0, 0, 0, 0])  # shares in %
    assert class_histogram(probs).tolist() == [50, 30, 15, 3, 2, 0, 0, 0, 0, 0]
    assert classes_covered(probs) == 5  # 2 % counts (at least min_share)
    assert classes_covered(probs, min_share=0.03) == 4
    assert classes_covered(probs, min_share=0.5) == 1
    with pytest.raises(ValueError, match="min_share"):
        classes_covered(probs, min_share=0)


def test_class_kl_to_uniform_closed_forms():
    assert class_kl_to_uniform(_probs_with_counts([10] * 10)) == pytest.approx(0, abs=1e-12)
    assert class_kl_to_uniform(_probs_with_counts([100] + [0] * 9)) == pytest.approx(math.log(10))
    # half and half over two of ten classes: sum 0.5 log(0.5 * 10) = log 5
    assert class_kl_to_uniform(_probs_with_counts([5, 5] + [0] * 8)) == pytest.approx(math.log(5))


# --- against torchmetrics, with the classifier as feature extractor ----------------------


@pytest.fixture(scope="module")
def classifier():
    """An untrained CNN whose head scores each class by the direction of its mean feature
    vector (a nearest-class-mean rule): varied, fairly confident predictions, no training."""
    torch.manual_seed(0)
    model = DigitClassifier(width=8, feature_dim=16).eval()
    train = load_mnist("train", verbose=False)
    features = model.features(train.images[1000:2000])  # (1000, 16)
    labels = train.labels[1000:2000]
    centred = features - features.mean(dim=0)
    class_means = torch.stack([centred[labels == c].mean(dim=0) for c in range(10)])  # (10, 16)
    directions = class_means / class_means.norm(dim=1, keepdim=True)
    scale = 3 / (centred @ directions.T).std()  # logits with a spread of about 3
    with torch.no_grad():
        model.head.weight.copy_(directions * scale)
        model.head.bias.copy_(-model.head.weight @ features.mean(dim=0))
    return model


@pytest.fixture(scope="module")
def digits():
    train, test = load_mnist("train", verbose=False), load_mnist("test", verbose=False)
    return train.images[:400], test.images[:300]


TORCHMETRICS_WARNINGS = (
    pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save"),
    pytest.mark.filterwarnings("ignore:std.*degrees of freedom"),  # splits=1
)


@TORCHMETRICS_WARNINGS[0]
@TORCHMETRICS_WARNINGS[1]
@pytest.mark.parametrize("splits", [1, 10])
def test_inception_score_matches_torchmetrics(classifier, digits, splits):
    from torchmetrics.image.inception import InceptionScore

    images = digits[1]
    metric = InceptionScore(feature=ClassifierLogits(classifier), splits=splits)
    metric.update(images)
    # torchmetrics shuffles before splitting with torch.randperm: draw the same permutation
    torch.manual_seed(7)
    permutation = torch.randperm(images.shape[0])
    torch.manual_seed(7)
    reference_mean, reference_std = (float(v) for v in metric.compute())
    ours_mean, ours_std = inception_score(classifier.predict_proba(images[permutation]), splits)
    assert ours_mean > 1.5  # a non-trivial value
    assert ours_mean == pytest.approx(reference_mean, rel=1e-3)
    if splits > 1:
        assert ours_std == pytest.approx(reference_std, rel=1e-3)


def test_fid_matches_torchmetrics(classifier, digits):
    from torchmetrics.image.fid import FrechetInceptionDistance

    real, other = digits
    metric = FrechetInceptionDistance(feature=ClassifierFeatures(classifier))
    metric.update(real, real=True)
    metric.update(other, real=False)
    reference = float(metric.compute())
    ours = fid(classifier.features(real), classifier.features(other))
    assert ours > 0
    assert ours == pytest.approx(reference, rel=1e-3)
    # and with noise added to the second set, a clearly larger distance
    noisy = (other + 0.5 * torch.randn_like(other)).clamp(-1, 1)
    metric.reset()
    metric.update(real, real=True)
    metric.update(noisy, real=False)
    ours_noisy = fid(classifier.features(real), classifier.features(noisy))
    assert ours_noisy == pytest.approx(float(metric.compute()), rel=1e-3)
    assert ours_noisy > ours


@TORCHMETRICS_WARNINGS[0]
@TORCHMETRICS_WARNINGS[1]
def test_score_digits_matches_torchmetrics_and_the_coverage_functions(classifier, digits):
    from torchmetrics.image.inception import InceptionScore

    real, images = digits
    reference = classifier_statistics(real, classifier)
    result, counts = score_digits(images, classifier, reference=reference, splits=1)
    metric = InceptionScore(feature=ClassifierLogits(classifier), splits=1)
    metric.update(images)
    assert result["eval_samples"] == 300
    assert result["is_mean"] == pytest.approx(float(metric.compute()[0]), rel=1e-3)
    probs = classifier.predict_proba(images)
    assert result["classes_covered"] == classes_covered(probs)
    assert result["kl_to_uniform"] == pytest.approx(class_kl_to_uniform(probs), abs=1e-9)
    assert counts.tolist() == class_histogram(probs).tolist()
    assert result["fid"] == pytest.approx(
        fid(classifier.features(images), classifier.features(real)), rel=1e-9
    )
    assert "fid" not in score_digits(images, classifier, splits=10)[0]
    flat, _ = score_digits(images.reshape(300, 784), classifier, reference, splits=1)
    assert flat == result  # flat (N, 784) generator outputs are scored the same


# --- generated images ----------------------------------------------------------------------


def test_images_outside_the_range_are_reported(classifier):
    generator = nn.Sequential(nn.Linear(2, 784))
    with torch.no_grad():
        generator[0].bias.fill_(5.0)
    images = generate(generator, sample_latent(10, 2))
    with pytest.raises(ValueError, match=r"images must have values in \[-1, 1\]"):
        score_digits(images, classifier, splits=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"splits": 0}, ValueError, "splits"),
        ({"splits": 2.0}, TypeError, "splits"),
        ({"min_share": 0.0}, ValueError, "min_share"),
        ({"min_share": "2 %"}, TypeError, "min_share"),
    ],
)
def test_bad_scoring_settings_name_the_parameter(classifier, kwargs, error, name):
    images = torch.rand(20, 1, 28, 28) * 2 - 1
    with pytest.raises(error, match=name):
        score_digits(images, classifier, **kwargs)
