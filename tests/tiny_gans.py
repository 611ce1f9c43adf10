"""Tiny generator/critic pairs shared by the Hessian and NU-GAN tests (lesson 06)."""

from __future__ import annotations

import torch
from torch import nn

from gan_utils.core.mlp import mlp_critic, mlp_generator


def tiny_gan(seed: int = 0, batch_norm: bool = False, spectral_norm: bool = False):
    """A 2-6-2 tanh generator (32 parameters; with ``batch_norm`` a BatchNorm1d after its
    hidden layer) and a 2-6-1 tanh critic (optionally spectrally normalised), seeded."""
    torch.manual_seed(seed)
    generator = mlp_generator(2, 2, width=6, depth=1, activation="tanh")
    if batch_norm:
        generator = nn.Sequential(nn.Linear(2, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 2))
    critic = mlp_critic(2, width=6, depth=1, activation="tanh", spectral_norm=spectral_norm)
    return generator, critic
