r"""When two settings differ beyond the spread over seeds, and sentences that say so.

One rule for the whole course: two means over seeds differ *clearly* when their gap
exceeds twice the pooled sample standard deviation,

.. math:: |\bar a - \bar b| > 2 s_p, \qquad
          s_p = \sqrt{\frac{(n_a - 1) s_a^2 + (n_b - 1) s_b^2}{n_a + n_b - 2}},

where :math:`s_a, s_b` are the sample standard deviations (ddof = 1) over :math:`n_a, n_b`
seeds. Without a known spread (one seed on each side) no difference is called clear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .checks import check_int


def pooled_std(std_a: float, n_a: int, std_b: float, n_b: int) -> float:
    """:math:`s_p` of two groups from their sample stds and sizes; a group of one seed adds
    no spread; NaN when both groups hold one value (no spread is known)."""
    check_int("n_a", n_a, minimum=1)
    check_int("n_b", n_b, minimum=1)
    if n_a + n_b <= 2:
        return math.nan
    a = 0.0 if n_a == 1 else (n_a - 1) * float(std_a) ** 2
    b = 0.0 if n_b == 1 else (n_b - 1) * float(std_b) ** 2
    return math.sqrt((a + b) / (n_a + n_b - 2))


def pooled_std_of(values_a: Sequence[float], values_b: Sequence[float]) -> float:
    """:math:`s_p` of two samples of per-seed values; NaN with fewer than two values on
    either side."""
    a, b = np.asarray(values_a, dtype=float), np.asarray(values_b, dtype=float)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError("values_a and values_b must be 1-D sequences of per-seed values")
    if len(a) < 2 or len(b) < 2:
        return math.nan
    return pooled_std(a.std(ddof=1), len(a), b.std(ddof=1), len(b))


def clear_gap(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int) -> int:
    """+1 when ``mean_a`` exceeds ``mean_b`` by more than :math:`2 s_p`, -1 when it falls
    short by as much, 0 otherwise (also when a mean or the spread is not finite)."""
    spread = pooled_std(
        std_a if math.isfinite(std_a) else 0.0, n_a, std_b if math.isfinite(std_b) else 0.0, n_b
    )
    if not (math.isfinite(mean_a) and math.isfinite(mean_b) and math.isfinite(spread)):
        return 0
    gap = mean_a - mean_b
    return 0 if abs(gap) <= 2 * spread else (1 if gap > 0 else -1)


# ---- sentences ------------------------------------------------------------------------------
GAP_WORDS = {1: "higher", 0: "no clear difference", -1: "lower"}  # clear_gap's codes in words


def gap_word(code: int) -> str:
    """``clear_gap``'s +1 / 0 / -1 as "higher" / "no clear difference" / "lower" (the word
    results files and printouts carry, so a reader need not decode a sign)."""
    if code not in GAP_WORDS:
        raise ValueError(
            f"code must be one of {sorted(GAP_WORDS)} (a clear_gap result), got {code!r}"
        )
    return GAP_WORDS[code]


def plural(count: float, noun: str, plural_form: str | None = None) -> str:
    """``count`` and ``noun`` in agreement: "1 seed", "2 seeds", "1 class", "0 classes",
    "1.5 classes" (a mean); ``plural_form`` for an irregular noun. Integers get thousands
    separators."""
    if plural_form is None:
        plural_form = noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")
    number = float(count)
    text = f"{int(number):,}" if number.is_integer() else f"{number:g}"
    return f"{text} {noun if number == 1 else plural_form}"


def span(values: Sequence[float], spec: str = ".0f", unit: str = "") -> str:
    """The range of ``values`` as text, formatted with ``spec``: "5-7 s", or one value
    ("5 s") when the smallest and the largest print the same."""
    if not len(values):
        raise ValueError("span needs at least one value")
    low, high = f"{min(values):{spec}}", f"{max(values):{spec}}"
    text = low if low == high else f"{low}-{high}"
    return f"{text} {unit}" if unit else text


__all__ = ["GAP_WORDS", "clear_gap", "gap_word", "plural", "pooled_std", "pooled_std_of", "span"]
