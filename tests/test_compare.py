"""The course's rule for a clear difference over seeds (gan_utils.core.compare), checked
against the pooled variance computed from the raw deviations and against scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gan_utils.core.compare import clear_gap, gap_word, plural, pooled_std, pooled_std_of, span


def test_pooled_std_matches_the_deviations_from_each_group_mean():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([3.0, 7.0])
    deviations = np.concatenate([a - a.mean(), b - b.mean()])
    expected = math.sqrt((deviations**2).sum() / (len(a) + len(b) - 2))
    assert pooled_std(a.std(ddof=1), 3, b.std(ddof=1), 2) == pytest.approx(expected)
    assert pooled_std_of(a, b) == pytest.approx(expected)
    # scipy's equal-variance t statistic is gap / (s_p sqrt(1/n_a + 1/n_b))
    t = stats.ttest_ind(a, b, equal_var=True).statistic
    assert abs(a.mean() - b.mean()) / (expected * math.sqrt(1 / 3 + 1 / 2)) == pytest.approx(abs(t))


def test_pooled_std_edge_cases():
    assert pooled_std(0.0, 1, 2.0, 3) == pytest.approx(2.0)  # one seed adds no spread
    assert math.isnan(pooled_std(0.0, 1, 0.0, 1))
    assert math.isnan(pooled_std_of([1.0], [2.0, 3.0]))
    with pytest.raises(ValueError, match="n_a"):
        pooled_std(1.0, 0, 1.0, 2)
    with pytest.raises(ValueError, match="1-D"):
        pooled_std_of([[1.0, 2.0]], [1.0, 2.0])


def test_clear_gap_needs_more_than_twice_the_pooled_std():
    assert clear_gap(5.0, 1.0, 3, 3.0, 1.0, 3) == 0  # gap 2 = 2 s_p: not clear
    assert clear_gap(5.1, 1.0, 3, 3.0, 1.0, 3) == 1
    assert clear_gap(3.0, 1.0, 3, 5.1, 1.0, 3) == -1
    assert clear_gap(8.0, 0.0, 5, 2.4, 0.5, 5) == 1
    assert clear_gap(5.0, math.nan, 1, 3.0, math.nan, 1) == 0  # no spread known
    assert clear_gap(math.nan, 1.0, 3, 3.0, 1.0, 3) == 0


def test_plural_and_span():
    assert plural(1, "seed") == "1 seed" and plural(2, "seed") == "2 seeds"
    assert plural(0, "class") == "0 classes" and plural(1.5, "class") == "1.5 classes"
    assert plural(2, "spectrum", "spectra") == "2 spectra" and plural(1000, "run") == "1,000 runs"
    assert span([5.2, 4.9], unit="s") == "5 s"
    assert span([5.0, 7.0], unit="s") == "5-7 s" and span([0.25, 0.5], ".2f") == "0.25-0.50"
    with pytest.raises(ValueError, match="at least one"):
        span([])


def test_gap_words_name_the_direction_and_reject_other_codes():
    assert gap_word(clear_gap(5.1, 1.0, 3, 3.0, 1.0, 3)) == "higher"
    assert gap_word(clear_gap(3.0, 1.0, 3, 5.1, 1.0, 3)) == "lower"
    assert gap_word(clear_gap(5.0, 1.0, 3, 3.0, 1.0, 3)) == "no clear difference"
    with pytest.raises(ValueError, match=r"code must be one of \[-1, 0, 1\].*got 2"):
        gap_word(2)
