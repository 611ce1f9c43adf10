"""The one worker pool (gan_utils.core.workers) and the general learning-rate decay."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_gans import tiny_gan

from gan_utils.core.loop import every
from gan_utils.core.train import TrainConfig, linear_lr_decay, train
from gan_utils.core.workers import run_in_workers
from gan_utils.images.dist_gan import DistGANConfig, mlp_encoder, train_dist_gan


def test_run_in_workers_keeps_the_order_of_the_jobs_in_results_and_callbacks():
    seen = []
    jobs = [(3, 4), (0, 1), (2, 2)]
    assert run_in_workers(math.hypot, jobs, 1, seen.append) == [5.0, 1.0, math.hypot(2, 2)]
    assert seen == [5.0, 1.0, math.hypot(2, 2)]


@pytest.mark.slow
def test_two_workers_give_the_results_of_one():
    jobs = [(float(i), 2.0) for i in range(4)]
    seen = []
    assert run_in_workers(math.pow, jobs, 2, seen.append) == [math.pow(*j) for j in jobs]
    assert seen == [math.pow(*j) for j in jobs]


def test_run_in_workers_checks_its_counts():
    with pytest.raises(ValueError, match="workers"):
        run_in_workers(math.hypot, [(1, 1)], 0)
    with pytest.raises(TypeError, match="threads"):
        run_in_workers(math.hypot, [(1, 1)], 1, threads=1.5)


def test_an_error_in_a_job_reaches_the_caller_after_the_earlier_results():
    seen = []
    with pytest.raises(ValueError, match="math domain"):
        run_in_workers(math.sqrt, [(4.0,), (-1.0,), (9.0,)], 1, seen.append)
    assert seen == [2.0]


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


def _fail_on_negative(x: float) -> float:
    if x < 0:
        raise ValueError(f"x must be >= 0, got {x}")
    return x


@pytest.mark.slow
def test_a_failing_job_in_a_worker_stops_the_jobs_not_started(tmp_path):
    seen = []
    jobs = [(1.0,), (-1.0,)] + [(float(i),) for i in range(2, 40)]
    with pytest.raises(ValueError, match="x must be >= 0"):
        run_in_workers(_fail_on_negative, jobs, 2, seen.append)
    assert seen == [1.0]
