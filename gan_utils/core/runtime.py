"""Seed, device and threads in one place (introduced in lesson 01).

``set_seed`` fixes every random number generator a run uses; ``get_device`` resolves the
``device`` parameter of every lesson once, so notebooks never hard-code ``"cuda"``;
``resolve_threads`` turns a ``threads`` setting ("auto" or a count) into torch's CPU
thread count. "Same seed, same numbers" holds on the same machine at the same count.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from .checks import check_int

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
THREADS_ENV = "OMP_NUM_THREADS"  # an explicit count in the environment wins over "auto"


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


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | str = "auto", workers: int = 1) -> int:
    """Torch CPU threads for one run of ``workers`` running side by side.

    Args:
        threads: a count >= 1 (pinned: used as given), or "auto": ``$OMP_NUM_THREADS``
            when it is set (``make`` sets 1), else ``usable_cores() // workers`` (at least 1),
            so that N workers share the cores instead of oversubscribing them.
        workers: runs sharing this machine at the same time (>= 1).

    Raises:
        ValueError / TypeError: naming ``threads`` or ``workers`` and what is allowed.
    """
    check_int("workers", workers, minimum=1)
    if isinstance(threads, str):
        if threads.strip().lower() != "auto":
            raise ValueError(f"threads must be 'auto' or an integer >= 1, got {threads!r}")
        pinned = os.environ.get(THREADS_ENV, "").strip()
        if pinned:
            try:
                return check_int(THREADS_ENV, int(pinned), minimum=1)
            except ValueError:
                raise ValueError(
                    f"{THREADS_ENV} must be an integer >= 1 when set, got {pinned!r}"
                ) from None
        return max(1, usable_cores() // workers)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        kind = type(threads).__name__
        error = (
            ValueError if isinstance(threads, int) and not isinstance(threads, bool) else TypeError
        )
        raise error(f"threads must be 'auto' or an integer >= 1, got {threads!r} ({kind})")
    return threads


def use_threads(threads: int | str = "auto", workers: int = 1) -> int:
    """``torch.set_num_threads(resolve_threads(threads, workers))``; returns the count."""
    count = resolve_threads(threads, workers)
    torch.set_num_threads(count)
    return count
