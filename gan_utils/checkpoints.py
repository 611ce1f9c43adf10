"""Checkpoints: everything needed to continue a run exactly where it stopped.

A training checkpoint holds the models, the optimisers, every RNG state, the config
(as a dict) and the history, written atomically (temporary file + rename) so an
interrupted write never destroys the previous checkpoint.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .paths import artifacts_dir


def rng_state() -> dict[str, Any]:
    """The state of every RNG a run uses: Python, NumPy, torch CPU and all CUDA devices."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with torch.save to ``path`` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``.

    Raises:
        FileNotFoundError: naming the path, when there is no checkpoint there.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {path} (train first, or pass the path of an existing "
            "checkpoint)"
        )
    # weights_only=False: our own checkpoints also hold NumPy/Python RNG states and dicts.
    return torch.load(path, map_location=map_location, weights_only=False)


def model_checkpoint_path(lesson: str, model: str, loss: str, latent_dim: int, seed: int) -> Path:
    """One path per (lesson, model, loss, latent_dim, seed) under ``<root>/artifacts/models``.

    Lessons 04-06 save their trained generators here and lesson 07 finds them here.
    """
    for name, value in (("lesson", lesson), ("model", model), ("loss", loss)):
        if not value or any(c in str(value) for c in "/\\ "):
            raise ValueError(
                f"{name} must be a non-empty name without slashes or spaces, got {value!r}"
            )
    return (
        artifacts_dir("models", str(lesson))
        / f"{model}-{loss}-z{int(latent_dim)}-seed{int(seed)}.pt"
    )
