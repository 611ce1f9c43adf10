"""A training history: rows of logged values, each tagged with the step it was logged at."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and hasattr(value, "dtype") else value


class History:
    """Rows such as ``{"step": 100, "d_loss": 1.2, "g_loss": 0.7}``.

    Different keys may be logged at different steps (losses every ``log_every`` steps,
    metrics from a callback less often); ``series(key)`` collects one of them.
    """

    def __init__(self, rows: list[dict[str, Any]] | None = None):
        self.rows: list[dict[str, Any]] = [dict(r) for r in (rows or [])]
        self.extras: dict[str, Any] = {}  # e.g. wall time of the train() call that made it

    def log(self, step: int, **values: Any) -> None:
        """Append one row; tensors should already be Python numbers."""
        self.rows.append({"step": int(step), **values})

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) of every row that holds ``key``."""
        pairs = [(r["step"], r[key]) for r in self.rows if key in r]
        if not pairs:
            known = sorted({k for r in self.rows for k in r} - {"step"})
            raise KeyError(f"no values logged for {key!r}; logged keys: {known}")
        steps, values = zip(*pairs, strict=True)
        return np.asarray(steps), np.asarray(values, dtype=float)

    def last(self, key: str) -> float:
        """The most recent value of ``key``."""
        return float(self.series(key)[1][-1])

    def keys(self) -> list[str]:
        return sorted({k for r in self.rows for k in r} - {"step"})

    def to_list(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.rows]

    def to_json(self, exclude: tuple[str, ...] = ()) -> str:
        """The rows as JSON text without the keys in ``exclude`` (NumPy and tensor scalars
        as plain numbers). Shipped files store this: the bytes of pickled rows would depend
        on which Python objects the rows share (a resumed run's come from a checkpoint)."""
        return json.dumps(
            [{k: _plain(v) for k, v in row.items() if k not in exclude} for row in self.rows]
        )

    def __len__(self) -> int:
        return len(self.rows)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        if len(self.rows) != len(other.rows):
            return False
        for a, b in zip(self.rows, other.rows, strict=True):
            if a.keys() != b.keys():
                return False
            for k in a:
                x, y = a[k], b[k]
                if (
                    isinstance(x, float)
                    and isinstance(y, float)
                    and math.isnan(x)
                    and math.isnan(y)
                ):
                    continue
                if x != y:
                    return False
        return True

    def __repr__(self) -> str:
        return f"History({len(self.rows)} rows, keys={self.keys()})"
