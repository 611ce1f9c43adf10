"""The general learning-rate decay (linear_lr_decay) for every optimiser of a run."""

from __future__ import annotations

import pytest
import torch
from tiny_gans import tiny_gan

from gan_utils.core.loop import every
from gan_utils.core.train import TrainConfig, linear_lr_decay, train
from gan_utils.images.dist_gan import DistGANConfig, mlp_encoder, train_dist_gan


def _lrs(state):
    """Every optimiser's learning rates, optimiser by optimiser, group by group."""
    optimisers = [o for o in vars(state).values() if isinstance(o, torch.optim.Optimizer)]
    return [g["lr"] for o in optimisers for g in o.param_groups]


def test_linear_lr_decay_reaches_zero_for_every_optimiser_and_keeps_their_ratio():
    generator, critic = tiny_gan()
    data = torch.randn(64, 2)
    seen = []
    config = TrainConfig(
        num_steps=6, lr_g=1e-3, lr_d=4e-3, log_every=1, progress=False, device="cpu"
    )
    train(
        generator,
        critic,
        data,
        config,
        [linear_lr_decay(3, 6), every(1, lambda s: seen.append(_lrs(s)))],
    )
    # the rate of the step after step t: constant to step 3, then 2/3, 1/3, 0 of it
    factors = [1, 1, 1, 2 / 3, 1 / 3, 0]
    assert seen == [pytest.approx([1e-3 * f, 4e-3 * f]) for f in factors]


def test_linear_lr_decay_covers_dist_gans_three_optimisers():
    generator, critic = tiny_gan()
    data = torch.randn(64, 2)
    encoder = mlp_encoder(2, 2, 8, 1)
    seen = []
    config = DistGANConfig(
        latent_dim=2, batch_size=8, num_steps=4, log_every=1, progress=False, device="cpu"
    )
    train_dist_gan(
        encoder,
        generator,
        critic,
        data,
        config,
        [linear_lr_decay(2, 4), every(1, lambda s: seen.append(_lrs(s)))],
    )
    assert len(seen[0]) == 3 and min(seen[0]) > 0  # autoencoder, generator, critic
    assert seen[-1] == [0.0, 0.0, 0.0]
    assert seen[2] == pytest.approx([x / 2 for x in seen[0]])  # step 3 of 4, decay from 2


def test_linear_lr_decay_checks_its_steps():
    with pytest.raises(ValueError, match="start"):
        linear_lr_decay(6, 6)
    with pytest.raises(TypeError, match="num_steps"):
        linear_lr_decay(1, 6.0)
