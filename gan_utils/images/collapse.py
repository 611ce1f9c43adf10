r"""When a digit generator counts as collapsed, not merely undertrained (lessons 04-07).

Undertraining and collapse both leave classes out, but they look different: an
undertrained generator makes blurred, ambiguous digits (the classifier is unsure of them),
a collapsed one makes sharp digits of a few classes. The course calls a generator
**collapsed** only when both hold, on N samples scored by the lesson-03 classifier:

* its samples are confident digits: the mean confidence
  :math:`\bar c = \frac{1}{N} \sum_x \max_y p(y \mid x) \ge` ``MIN_CONFIDENCE`` (0.9; real
  held-out digits score about 0.99), and
* they cover few classes: at most ``MAX_CLASSES_AT_END`` (6) classes with at least 2 % of
  the samples each.

Over a training run, collapse can also come and go: a **collapse stretch** is a run of at
least ``MIN_STRETCH`` (3) consecutive evaluations, all in the second half of training,
each with at most ``MAX_CLASSES_IN_STRETCH`` (3) classes covered and confident samples.
``collapse_verdict`` states which of the two rules holds for a reference run, so a lesson
prints a finding, not a guess.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.checks import check_int, check_probability

MIN_CONFIDENCE = 0.9  # mean max p(y|x) of confident (sharp) digits
MAX_CLASSES_AT_END = 6  # collapsed at the end: at most this many classes covered
MAX_CLASSES_IN_STRETCH = 3  # a collapse stretch: at most this many classes per evaluation
MIN_STRETCH = 3  # ... over at least this many consecutive evaluations


def is_collapsed(
    classes_covered: int,
    confidence: float,
    max_classes: int = MAX_CLASSES_AT_END,
    min_confidence: float = MIN_CONFIDENCE,
) -> bool:
    """Sharp digits of few classes: ``confidence >= min_confidence`` and
    ``classes_covered <= max_classes`` (module docstring)."""
    check_int("classes_covered", classes_covered, minimum=0)
    check_probability("confidence", confidence)
    check_int("max_classes", max_classes, minimum=1)
    check_probability("min_confidence", min_confidence)
    return confidence >= min_confidence and classes_covered <= max_classes


def not_collapsed_because(classes_covered: int, confidence: float) -> str | None:
    """Why ``is_collapsed`` is False for these final numbers ("confidence 0.83 < 0.9",
    "7 classes > 6", or both), or None when it is True: the sentence a lesson prints
    beside a run that covers few classes and still does not count as collapsed."""
    if is_collapsed(classes_covered, confidence):
        return None
    reasons = []
    if confidence < MIN_CONFIDENCE:
        reasons.append(f"confidence {confidence:.2f} < {MIN_CONFIDENCE}")
    if classes_covered > MAX_CLASSES_AT_END:
        reasons.append(f"{classes_covered} classes > {MAX_CLASSES_AT_END}")
    return " and ".join(reasons)


def collapse_stretches(
    classes: Sequence[int],
    confidence: Sequence[float] | None = None,
    max_classes: int = MAX_CLASSES_IN_STRETCH,
    min_length: int = MIN_STRETCH,
    min_confidence: float = MIN_CONFIDENCE,
    second_half_only: bool = True,
) -> list[tuple[int, int]]:
    """(first, last) indices of every run of at least ``min_length`` consecutive
    evaluations with at most ``max_classes`` classes (and, when ``confidence`` is given,
    mean confidence at least ``min_confidence``); with ``second_half_only`` only indices
    i >= len(classes) // 2 count."""
    counts = np.asarray(classes)
    if counts.ndim != 1:
        raise ValueError(
            f"classes must be a 1-D sequence of class counts, got shape {counts.shape}"
        )
    check_int("max_classes", max_classes, minimum=1)
    check_int("min_length", min_length, minimum=1)
    ok = counts <= max_classes
    if confidence is not None:
        conf = np.asarray(confidence, dtype=float)
        if conf.shape != counts.shape:
            raise ValueError(
                f"confidence must have one value per evaluation ({counts.shape[0]}), "
                f"got shape {conf.shape}"
            )
        ok &= conf >= min_confidence
    if second_half_only:
        ok[: len(counts) // 2] = False
    stretches, start = [], None
    for i, flag in enumerate([*ok, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start >= min_length:
                stretches.append((start, i - 1))
            start = None
    return stretches


@dataclass(frozen=True)
class CollapseVerdict:
    """Which collapse rule a run meets (module docstring)."""

    at_end: bool  # sharp digits of at most MAX_CLASSES_AT_END classes at the end
    stretches: tuple[tuple[int, int], ...]  # collapse stretches in the second half

    @property
    def collapsed(self) -> bool:
        return self.at_end or bool(self.stretches)

    def describe(self, steps: Sequence[int] | None = None) -> str:
        """One sentence: which rule holds, or that neither does; ``steps`` (the generator
        step of each evaluation) names the stretches by step instead of by index."""
        parts = []
        if self.at_end:
            parts.append(
                f"collapsed at the end (confidence >= {MIN_CONFIDENCE}, "
                f"<= {MAX_CLASSES_AT_END} classes)"
            )
        for first, last in self.stretches:
            where = (
                f"from step {steps[first]} to {steps[last]}"
                if steps is not None
                else f"from evaluation {first} to {last}"
            )
            parts.append(f"collapsed onto <= {MAX_CLASSES_IN_STRETCH} classes {where}")
        return "; ".join(parts) if parts else "not collapsed by either rule"


def collapse_verdict(
    final_classes: int,
    final_confidence: float,
    classes: Sequence[int] = (),
    confidence: Sequence[float] | None = None,
) -> CollapseVerdict:
    """Both rules for one run: its final metrics and its per-evaluation series."""
    stretches = collapse_stretches(classes, confidence) if len(classes) else []
    return CollapseVerdict(is_collapsed(final_classes, final_confidence), tuple(stretches))


__all__ = [
    "MAX_CLASSES_AT_END",
    "MAX_CLASSES_IN_STRETCH",
    "MIN_CONFIDENCE",
    "MIN_STRETCH",
    "CollapseVerdict",
    "collapse_stretches",
    "collapse_verdict",
    "is_collapsed",
    "not_collapsed_because",
]
