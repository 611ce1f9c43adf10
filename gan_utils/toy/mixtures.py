"""Toy data: Gaussian mixtures in 1-D (lesson 01) and 2-D (lesson 02), sampled on the fly.

A mixture has K centres c_k and one isotropic std s; a sample is c_k + s * eps with k
uniform over the centres (or drawn from ``weights``) and eps ~ N(0, I). Sampling uses
torch's global RNG (seeded by ``gan_utils.core.runtime.set_seed``), so training checkpoints that save
the RNG state resume exactly; pass a ``torch.Generator`` for a fixed evaluation set.

Datasets of lesson 02:
    ring       8 Gaussians on a circle of radius 2, std 0.02 (Unrolled GAN paper)
    grid       25 Gaussians at {-4, -2, 0, 2, 4}^2, std 0.05
    wide_ring  8 Gaussians on a circle of radius 1, std 0.05 (Mode_Collapse repository)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..core.checks import as_real_tensor, check_choice, check_int, check_number, check_tensor


def _as_float_tensor(name: str, value) -> Tensor:
    """``value`` as a float32 tensor (``core.checks.as_real_tensor`` checks it)."""
    return as_real_tensor(name, value).to(torch.float32)


def _check_finite(name: str, value: Tensor) -> None:
    bad = int((~torch.isfinite(value)).sum())
    if bad:
        raise ValueError(f"{name} must be finite, got {bad} NaN or inf values")


def _as_device(device) -> torch.device:
    """``device`` as a ``torch.device`` (a string like "cpu" or a ``torch.device``)."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(
            f"device must be a device name such as 'cpu' or a torch.device, got {device!r} "
            f"({type(device).__name__})"
        )
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(
            f"device must be a device name such as 'cpu' or 'cuda', got {device!r}"
        ) from error


class GaussianMixture:
    """An isotropic Gaussian mixture; ``mixture(n)`` draws n samples, shape (n, dim)."""

    def __init__(
        self,
        centres: Tensor,
        std: float,
        weights: Tensor | None = None,
        name: str = "mixture",
        device: str | torch.device = "cpu",
    ):
        centres = _as_float_tensor("centres", centres)
        if centres.dim() == 1:
            centres = centres[:, None]  # (K,) -> (K, 1)
        check_tensor("centres", centres, ndim=2, min_rows=1)
        if centres.shape[1] < 1:
            raise ValueError(
                f"centres must have shape (K, dim) with dim >= 1, got {tuple(centres.shape)}"
            )
        _check_finite("centres", centres)
        check_number("std", std, minimum=0, min_open=True)
        if weights is not None:
            weights = _as_float_tensor("weights", weights)
            check_tensor("weights", weights, (centres.shape[0],), minimum=0)
            _check_finite("weights", weights)
            if not weights.sum() > 0:
                raise ValueError(
                    f"weights must be K non-negative numbers with a positive sum, got {weights}"
                )
            weights = weights / weights.sum()
        if not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r} ({type(name).__name__})")
        self.device = _as_device(device)
        self.centres = centres.to(self.device)  # (K, dim)
        self.std = float(std)
        self.weights = None if weights is None else weights.to(self.device)
        self.name = name

    @property
    def num_modes(self) -> int:
        return self.centres.shape[0]

    @property
    def dim(self) -> int:
        return self.centres.shape[1]

    def to(self, device: str | torch.device) -> GaussianMixture:
        """The same mixture, sampling on ``device``."""
        return GaussianMixture(self.centres, self.std, self.weights, self.name, device)

    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> Tensor:
        """Draw ``num_samples`` points, shape (num_samples, dim), on the mixture's device."""
        num_samples = check_int("num_samples", num_samples, minimum=1)
        if self.weights is None:
            k = torch.randint(
                0, self.num_modes, (num_samples,), device=self.device, generator=generator
            )
        else:
            k = torch.multinomial(self.weights, num_samples, replacement=True, generator=generator)
        noise = torch.randn(num_samples, self.dim, device=self.device, generator=generator)
        return self.centres[k] + self.std * noise

    __call__ = sample

    def density(self, x: Tensor) -> Tensor:
        """p(x) of the mixture at points x, shape (n, dim) -> (n,) (used for 1-D plots)."""
        x = _as_float_tensor("x", x).to(self.device)
        if x.dim() == 1 and self.dim == 1:
            x = x[:, None]  # (n,) points of a 1-D mixture
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (n, {self.dim}), got {tuple(x.shape)}")
        sq = ((x[:, None, :] - self.centres[None]) ** 2).sum(-1)  # (n, K)
        norm = (2 * math.pi * self.std**2) ** (self.dim / 2)
        w = (
            self.weights
            if self.weights is not None
            else torch.full((self.num_modes,), 1.0 / self.num_modes, device=self.device)
        )
        return (torch.exp(-sq / (2 * self.std**2)) / norm * w).sum(-1)

    def __repr__(self) -> str:
        return f"GaussianMixture({self.name!r}, modes={self.num_modes}, dim={self.dim}, std={self.std})"


def ring(num_modes: int = 8, radius: float = 2.0, std: float = 0.02) -> GaussianMixture:
    """``num_modes`` Gaussians evenly spaced on a circle of ``radius``."""
    num_modes = check_int("num_modes", num_modes, minimum=1)
    check_number("radius", radius, minimum=0, min_open=True)
    angles = torch.arange(num_modes, dtype=torch.float32) * (2 * math.pi / num_modes)
    centres = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)  # (K, 2)
    return GaussianMixture(centres, std, name="ring")


def grid(
    values: tuple[float, ...] = (-4.0, -2.0, 0.0, 2.0, 4.0), std: float = 0.05
) -> GaussianMixture:
    """Gaussians on the grid ``values`` x ``values`` (25 at the defaults)."""
    v = _as_float_tensor("values", values)
    if v.dim() != 1 or v.numel() < 1:
        raise ValueError(f"values must be a non-empty sequence of numbers, got {values!r}")
    _check_finite("values", v)
    xx, yy = torch.meshgrid(v, v, indexing="ij")
    centres = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)  # (K, 2)
    return GaussianMixture(centres, std, name="grid")


def wide_ring() -> GaussianMixture:
    """The Mode_Collapse repository's ring: 8 Gaussians, radius 1, std 0.05."""
    mixture = ring(8, radius=1.0, std=0.05)
    mixture.name = "wide_ring"
    return mixture


def two_gaussians_1d(
    means: tuple[float, float] = (-2.0, 2.0), std: float = 0.5, weights=(0.5, 0.5)
) -> GaussianMixture:
    """Lesson 01's 1-D target: a mixture of two Gaussians."""
    m = _as_float_tensor("means", means)
    if m.shape != (2,):
        raise ValueError(f"means must be two numbers, got {means!r}")
    return GaussianMixture(m[:, None], std, weights, name="two_gaussians_1d")


TOY_DATASETS: dict[str, Callable[[], GaussianMixture]] = {
    "ring": ring,
    "grid": grid,
    "wide_ring": wide_ring,
}


def get_toy_dataset(name: str, device: str | torch.device = "cpu") -> GaussianMixture:
    """A lesson-02 dataset by name; an unknown name raises a ValueError listing the choices
    (a value that is not a string: a TypeError)."""
    return TOY_DATASETS[check_choice("dataset", name, TOY_DATASETS)]().to(device)
