"""When a digit generator counts as collapsed (gan_utils.images.collapse) and the
confidence that rule reads (gan_utils.images.metrics.score_digits)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gan_utils.images.collapse import (
    MAX_CLASSES_AT_END,
    MIN_CONFIDENCE,
    collapse_stretches,
    collapse_verdict,
    is_collapsed,
    not_collapsed_because,
)
from gan_utils.images.metrics import score_digits


class FixedProbabilities(nn.Module):
    """A 'classifier' whose logits are log(p) of given rows, one row per image."""

    def __init__(self, probs: torch.Tensor):
        super().__init__()
        self.log_probs = probs.log()

    def logits(self, images):
        return self.log_probs[: images.shape[0]]


def test_confidence_is_the_mean_of_the_largest_class_probability():
    rows = [[0.9, 0.1] + [0.0] * 8, [0.3, 0.7] + [0.0] * 8] * 5  # max p: 0.9 and 0.7
    probs = torch.tensor(rows, dtype=torch.float64) + 1e-15
    probs = probs / probs.sum(dim=1, keepdim=True)
    metrics, _ = score_digits(torch.zeros(10, 1, 28, 28), FixedProbabilities(probs), splits=1)
    assert metrics["confidence"] == pytest.approx(0.8, abs=1e-9)


def test_collapse_needs_sharp_digits_and_few_classes():
    assert is_collapsed(1, 0.99)
    assert is_collapsed(MAX_CLASSES_AT_END, MIN_CONFIDENCE)
    assert not is_collapsed(MAX_CLASSES_AT_END + 1, 0.99)  # many classes: not collapsed
    assert not is_collapsed(2, 0.6)  # few classes but blurred: undertrained, not collapsed
    with pytest.raises(ValueError, match="confidence"):
        is_collapsed(2, 1.5)
    with pytest.raises(TypeError, match="classes_covered"):
        is_collapsed(2.0, 0.9)


def test_stretches_are_runs_of_few_classes_in_the_second_half():
    classes = [9, 2, 2, 2, 8, 9, 3, 1, 2, 7, 2, 2]
    #          0  1  2  3  4  5  6  7  8  9 10 11   (second half: 6..11)
    assert collapse_stretches(classes) == [(6, 8)]
    assert collapse_stretches(classes, second_half_only=False) == [(1, 3), (6, 8)]
    assert collapse_stretches(classes, min_length=2) == [(6, 8), (10, 11)]
    blurred = [0.99] * 7 + [0.5] + [0.99] * 4
    assert collapse_stretches(classes, blurred) == []  # evaluation 7 is not confident
    with pytest.raises(ValueError, match="one value per evaluation"):
        collapse_stretches(classes, [0.9] * 3)


def test_the_verdict_names_the_rule_that_holds():
    verdict = collapse_verdict(2, 0.95, [9, 9, 1, 1, 1, 1], [0.99] * 6)
    assert verdict.collapsed and verdict.at_end and verdict.stretches == ((3, 5),)
    text = verdict.describe(steps=[100, 200, 300, 400, 500, 600])
    assert "at the end" in text and "from step 400 to 600" in text
    assert "from evaluation 3 to 5" in verdict.describe()
    healthy = collapse_verdict(10, 0.95, [10] * 6, [0.95] * 6)
    assert not healthy.collapsed and healthy.describe() == "not collapsed by either rule"


def test_the_reason_a_run_of_few_classes_is_not_collapsed_is_stated():
    assert not_collapsed_because(1, 0.83) == "confidence 0.83 < 0.9"
    assert not_collapsed_because(7, 0.95) == "7 classes > 6"
    assert not_collapsed_because(8, 0.5) == "confidence 0.50 < 0.9 and 8 classes > 6"
    assert not_collapsed_because(1, 0.97) is None  # collapsed: no reason to give
    # the same rule as is_collapsed, never a second one
    for classes, confidence in ((1, 0.83), (6, 0.9), (7, 0.95), (3, 0.2)):
        assert (not_collapsed_because(classes, confidence) is None) == is_collapsed(
            classes, confidence
        )
