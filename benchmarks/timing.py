"""Timing helpers for ``make bench``: interleaved repeats, medians, ratios, result rows.

On a shared machine the speed of one process drifts by tens of percent within a minute,
so every figure is a ratio of two medians measured in the same process, with the
candidates interleaved (A B, then B A, ...) so that a slow spell hits both.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


def interleaved(candidates: dict[str, Callable[[], float | None]], repeats: int) -> dict:
    """Run each candidate ``repeats`` times, alternating the order every round.

    Args:
        candidates: name -> a function doing one unit of work; it may return its own
            elapsed seconds (e.g. to leave set-up out), else the call is timed.
        repeats: rounds; round r runs the candidates in order if r is even, else reversed.

    Returns:
        name -> the list of seconds, one per round.
    """
    names = list(candidates)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            seconds = candidates[name]()
            times[name].append(time.perf_counter() - t0 if seconds is None else float(seconds))
    return times


def median(values) -> float:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(values) if values else math.nan


def ratio(numerator, denominator) -> float:
    """median(numerator) / median(denominator) (NaN when either is empty or the
    denominator's median is 0)."""
    top, bottom = median(numerator), median(denominator)
    return top / bottom if bottom and math.isfinite(bottom) else math.nan


def paired_ratio(numerator, denominator) -> float:
    """The median over rounds of numerator[i] / denominator[i]: each round's two timings
    are adjacent in time, so a slow spell of the shared machine cancels out of their
    ratio (NaN when no round has two finite values and a nonzero denominator)."""
    pairs = [
        a / b
        for a, b in zip(numerator, denominator, strict=True)
        if a is not None and b and math.isfinite(a) and math.isfinite(b)
    ]
    return median(pairs)


def paired_quartiles(numerator, denominator) -> tuple[float, float]:
    """The lower and upper quartiles of the per-round ratios (their spread: the noise)."""
    pairs = sorted(
        a / b
        for a, b in zip(numerator, denominator, strict=True)
        if a is not None and b and math.isfinite(a) and math.isfinite(b)
    )
    if len(pairs) < 2:
        return (pairs[0], pairs[0]) if pairs else (math.nan, math.nan)
    q1, _, q3 = statistics.quantiles(pairs, n=4, method="inclusive")
    return q1, q3


@dataclass
class Row:
    """One line of the bench table (and of results.json's ``rows``)."""

    section: str  # "toy", "toy_quality", "mnist", "metrics", "hessian", "machine"
    name: str  # what is measured
    ours: float  # gan_utils' figure
    unit: str  # its unit
    reference: float | None = None  # the same figure of the reference, same run
    reference_name: str = ""  # what the reference is
    ratio: float | None = None  # ours / reference, or as ``ratio_meaning`` says
    ratio_meaning: str = ""  # how to read the ratio, e.g. "ours / reference time"
    target: str = ""  # the target, if any
    met: bool | None = None  # whether the target is met (None: no target)
    note: str = ""  # context: repeats, extrapolation, causes

    def as_dict(self) -> dict:
        return asdict(self)


def fmt(value: float | None, digits: int = 3) -> str:
    """A number in a table cell: 3 significant digits, '-' for None, 'nan' for NaN."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if not math.isfinite(value):
        return "nan"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| benchmark | gan_utils | reference | ratio | target | met |",
        "| --- | ---: | ---: | ---: | --- | :---: |",
    ]
    for r in rows:
        ref = "-" if r.reference is None else f"{fmt(r.reference)} {r.unit} ({r.reference_name})"
        ratio_cell = "-" if r.ratio is None else f"{fmt(r.ratio)} ({r.ratio_meaning})"
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {r.section}: {r.name} | {fmt(r.ours)} {r.unit} | {ref} | {ratio_cell} "
            f"| {r.target} | {met} |"
        )
    return "\n".join(lines)
