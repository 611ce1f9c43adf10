"""Seed and device in one place (introduced in lesson 01).

``set_seed`` fixes every random number generator a run uses; ``get_device`` resolves the
``device`` parameter of every lesson once, so notebooks never hard-code ``"cuda"``.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from .checks import check_int

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def set_seed(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and every CUDA device).

    Args:
        seed: a non-negative integer.
    """
    seed = check_int("seed", seed, minimum=0)
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))  # also seeds every CUDA device


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve a device name.

    Args:
        device: "auto" (CUDA if present, else Apple MPS, else CPU), "cpu", "cuda",
            "cuda:<index>" or "mps".

    Returns:
        The ``torch.device`` to create tensors on.

    Raises:
        TypeError: ``device`` is neither a string nor a ``torch.device``.
        ValueError: an unknown name, or an accelerator that this machine does not have.
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(
            f"device must be one of {DEVICE_CHOICES} (or 'cuda:<index>', or a torch.device), "
            f"got {device!r} ({type(device).__name__})"
        )
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for, but torch finds no CUDA GPU on this "
                f"machine; use device='auto' or 'cpu' (choices: {DEVICE_CHOICES})"
            )
        return torch.device(name)
    if name == "mps":
        if not _mps_available():
            raise ValueError(
                "device='mps' was asked for, but Apple's MPS backend is not available; "
                f"use device='auto' or 'cpu' (choices: {DEVICE_CHOICES})"
            )
        return torch.device("mps")
    raise ValueError(f"device must be one of {DEVICE_CHOICES} (or 'cuda:<index>'), got {device!r}")
