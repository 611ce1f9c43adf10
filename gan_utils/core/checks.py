"""Input checks used everywhere in gan_utils, with one wording and one rule.

The wording: ``"<name> must be <what is allowed>, got <value>"``, naming the parameter,
the value received (its ``repr``; for a wrong type also the type's name) and what is
allowed, e.g. ``"num_steps must be an integer >= 1, got 0"`` or, with both bounds, an
interval: ``"topk_nu must be a finite number in (0, 1], got 1.5"``.

The rule:

* a value of the wrong **type** raises ``TypeError`` (a float or a string where an integer
  is required, ``num_modes=2.5`` or ``"8"``; a bool where a number is required, since
  ``True`` is an int to Python but never meant as one here);
* a value of the right type **outside its range** raises ``ValueError`` (``num_modes=0``,
  a probability of 1.5, an unknown choice, NaN where a finite number is required).

Every function returns the checked value (an ``int`` or ``float`` for numbers), so a
caller can write ``steps = check_int("num_steps", steps, minimum=1)``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor


def _bounds_text(minimum, maximum, min_open: bool = False, max_open: bool = False) -> str:
    """``">= 1"``, ``"< 0.5"`` or, with both bounds, an interval: ``"in (0, 1]"``."""
    if minimum is not None and maximum is not None:
        return f"in {'(' if min_open else '['}{minimum}, {maximum}{')' if max_open else ']'}"
    if minimum is not None:
        return f"{'>' if min_open else '>='} {minimum}"
    if maximum is not None:
        return f"{'<' if max_open else '<='} {maximum}"
    return ""


def _allowed(kind: str, bounds: str) -> str:
    return f"{kind} {bounds}" if bounds else kind


def check_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (Python or NumPy; not a bool) in [minimum, maximum]; returns ``int(value)``."""
    allowed = _allowed("an integer", _bounds_text(minimum, maximum))
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_number(
    name: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    min_open: bool = False,
    max_open: bool = False,
    finite: bool = True,
) -> float:
    """A real number (not a bool) in the given range; returns ``float(value)``.

    Args:
        minimum, maximum: bounds (None: unbounded on that side).
        min_open, max_open: exclude the bound itself (``> 0`` rather than ``>= 0``).
        finite: NaN and +-inf are out of range (ValueError).
    """
    bounds = _bounds_text(minimum, maximum, min_open, max_open)
    allowed = _allowed("a finite number" if finite else "a number", bounds)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    value = float(value)
    if math.isnan(value) or (finite and math.isinf(value)):
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    too_low = minimum is not None and (value <= minimum if min_open else value < minimum)
    too_high = maximum is not None and (value >= maximum if max_open else value > maximum)
    if too_low or too_high:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def check_probability(
    name: str, value: Any, *, min_open: bool = False, max_open: bool = False
) -> float:
    """A number in [0, 1] (ends excluded on request); returns ``float(value)``."""
    return check_number(name, value, 0.0, 1.0, min_open=min_open, max_open=max_open)


def check_bool(name: str, value: Any) -> bool:
    """True or False (a NumPy bool too); 0/1 and strings are TypeErrors."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_betas(name: str, value: Any) -> tuple[float, float]:
    """Adam's ``(beta1, beta2)``: a pair of numbers in [0, 1); returns it as a tuple."""
    allowed = "a pair (beta1, beta2) of numbers in [0, 1)"
    if not isinstance(value, (tuple, list)):
        raise TypeError(f"{name} must be {allowed}, got {value!r}")
    if len(value) != 2:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return tuple(
        check_number(f"{name}[{i}]", beta, 0, 1, max_open=True) for i, beta in enumerate(value)
    )


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of ``choices``; a value of another type than the choices' is a TypeError."""
    choices = tuple(choices)
    allowed = f"one of {list(choices)}"
    types = {type(c) for c in choices}
    if choices and not any(isinstance(value, t) for t in types):
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    if value not in choices:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return value


def as_real_tensor(name: str, value: Any) -> Tensor:
    """``value`` (a tensor, array or nested sequence of real numbers) as a tensor, dtype
    and device as given; a TypeError naming ``name`` for anything else (strings, None,
    booleans, complex). Callers convert it to the dtype they compute in."""
    allowed = f"{name} must be a tensor, array or sequence of real numbers"
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{allowed}, got {value!r} ({type(value).__name__})")
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{allowed}, got {type(value).__name__}") from error
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise TypeError(f"{allowed}, got values of dtype {tensor.dtype}")
    return tensor


def check_tensor(
    name: str,
    value: Any,
    shape: Sequence[int | None] | None = None,
    *,
    ndim: int | Sequence[int] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    min_rows: int = 0,
) -> Tensor:
    """A torch tensor of the given shape (None: any size on that axis) and value range.

    Args:
        shape: the expected shape, e.g. ``(None, 1, 28, 28)``.
        ndim: the expected number of dimensions (or a sequence of allowed ones).
        minimum, maximum: every value must lie in [minimum, maximum] (NaN never does).
        min_rows: the first axis must hold at least this many entries.
    """
    if not isinstance(value, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                f"got shape {tuple(value.shape)}"
            )
    if shape is not None:
        expected = tuple(shape)
        matches = value.dim() == len(expected) and all(
            e is None or e == s for e, s in zip(expected, value.shape, strict=True)
        )
        if not matches:
            text = "(" + ", ".join("N" if e is None else str(e) for e in expected) + ")"
            raise ValueError(f"{name} must have shape {text}, got {tuple(value.shape)}")
    if value.dim() and value.shape[0] < min_rows:
        rows = "row" if min_rows == 1 else "rows"
        raise ValueError(f"{name} must hold at least {min_rows} {rows}, got {value.shape[0]}")
    if (minimum is not None or maximum is not None) and value.numel():
        detached = value.detach()
        if torch.is_floating_point(detached) and bool(torch.isnan(detached).any()):
            raise ValueError(f"{name} must have values in [{minimum}, {maximum}], got NaN values")
        low, high = float(detached.min()), float(detached.max())
        if (minimum is not None and low < minimum) or (maximum is not None and high > maximum):
            raise ValueError(
                f"{name} must have values in [{minimum}, {maximum}], got [{low:.4g}, {high:.4g}]"
            )
    return value


__all__ = [
    "as_real_tensor",
    "check_betas",
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_probability",
    "check_tensor",
]
