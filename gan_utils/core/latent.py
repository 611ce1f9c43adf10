r"""Latent codes and generated samples: the one sampler and the one ``generate`` of the course.

* ``sample_latent(n, d, prior)``: :math:`z \sim \mathcal N(0, I_d)` (``"normal"``) or
  :math:`z \sim U[-1, 1]^d` (``"uniform"``), shape (n, d). Without ``rng`` it draws from
  torch's global RNG (training: checkpoints restore that state, so a resumed run draws
  the same z); with ``rng`` (a seeded ``torch.Generator``) it never touches the global
  RNG (evaluation hooks and fixed latent batches, which must leave training unchanged).
* ``fixed_latents(n, d, prior, seed)``: the same batch for the same seed, from its own RNG.
* ``generate(G, z)``: :math:`G(z)` in evaluation mode without a graph, in batches, on the
  CPU; the generator's mode is restored afterwards (batch norm's running statistics are
  read, not updated).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .checks import check_choice, check_int

LATENT_PRIORS = ("normal", "uniform")


def sample_latent(
    batch_size: int,
    latent_dim: int,
    prior: str = "normal",
    device: str | torch.device = "cpu",
    rng: torch.Generator | None = None,
) -> Tensor:
    """z of shape (batch_size, latent_dim) from the prior, created on ``device``.

    Args:
        batch_size: rows of z.
        latent_dim: size of z.
        prior: "normal" (N(0, I)) or "uniform" (U[-1, 1]^d).
        device: where z lives.
        rng: a ``torch.Generator`` to draw from (z is drawn on its device, then moved);
            None: torch's global RNG, drawn directly on ``device``.
    """
    check_int("batch_size", batch_size, minimum=1)
    check_int("latent_dim", latent_dim, minimum=1)
    check_choice("latent_prior", prior, LATENT_PRIORS)
    where = rng.device if rng is not None else device
    if prior == "normal":
        z = torch.randn(batch_size, latent_dim, device=where, generator=rng)
    else:
        z = torch.rand(batch_size, latent_dim, device=where, generator=rng) * 2.0 - 1.0
    return z.to(device)


def fixed_latents(
    num_samples: int,
    latent_dim: int,
    prior: str = "normal",
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Tensor:
    """A batch of z drawn from its own RNG seeded with ``seed``: the same batch every call."""
    rng = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    return sample_latent(num_samples, latent_dim, prior, device, rng=rng)


def _device_of(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def generate(generator: nn.Module, z: Tensor, batch_size: int | None = 500) -> Tensor:
    """G(z) in evaluation mode, in batches, as a float tensor on the CPU.

    Args:
        generator: maps (B, latent_dim) to samples.
        z: latents (N, latent_dim) on any device (moved to the generator's).
        batch_size: latents per forward pass; None: all N in one pass.

    Returns:
        (N, ...) on the CPU; the generator's train/eval mode is as before the call.
    """
    if batch_size is not None:
        check_int("batch_size", batch_size, minimum=1)
    step = batch_size or max(1, z.shape[0])
    device = _device_of(generator)
    was_training = generator.training
    generator.eval()
    try:
        chunks = [
            generator(z[i : i + step].to(device)).float().cpu() for i in range(0, z.shape[0], step)
        ]
    finally:
        generator.train(was_training)
    return torch.cat(chunks)


__all__ = ["LATENT_PRIORS", "fixed_latents", "generate", "sample_latent"]
