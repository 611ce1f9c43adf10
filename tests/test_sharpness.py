"""Lesson-06 helpers: the toy coverage callback leaves training unchanged and logs the
module's metrics; series are paired by step; the rank correlation and late mean."""

import math

import numpy as np
import pytest
import torch
from tiny_gans import tiny_gan

from gan_utils.core.history import History
from gan_utils.core.train import TrainConfig, train
from gan_utils.hessian.sharpness import late_mean, late_values, merged_series, rank_correlation
from gan_utils.toy.coverage import coverage_callback, evaluate_coverage
from gan_utils.toy.mixtures import grid

CONFIG = TrainConfig(
    latent_dim=2, batch_size=32, num_steps=6, log_every=3, progress=False, device="cpu"
)


def test_coverage_callback_logs_coverage_and_changes_nothing():
    mixture = grid()
    generator, critic = tiny_gan()
    plain = train(generator, critic, mixture, CONFIG)
    generator, critic = tiny_gan()
    history = train(
        generator, critic, mixture, CONFIG, callbacks=[coverage_callback(mixture, 2, 3, 500)]
    )
    assert np.array_equal(plain.series("g_loss")[1], history.series("g_loss")[1])
    steps, covered = history.series("modes_covered")
    assert steps.tolist() == [3, 6]
    expected = evaluate_coverage(generator, mixture, 2, 500).as_dict()
    assert covered[-1] == expected["modes_covered"]
    assert history.last("modes_hit") == expected["modes_hit"]
    with pytest.raises(ValueError, match="every_steps"):
        coverage_callback(mixture, 2, 0)


def test_merged_series_pairs_values_logged_at_the_same_step():
    history = History()
    history.log(10, a=1.0)
    history.log(10, b=5.0)
    history.log(20, a=2.0)
    history.log(30, a=3.0, b=7.0)
    steps, a, b = merged_series(history, ["a", "b"])
    assert steps.tolist() == [10, 30] and a.tolist() == [1.0, 3.0] and b.tolist() == [5.0, 7.0]
    with pytest.raises(KeyError, match="logged keys"):
        merged_series(history, ["a", "c"])
    with pytest.raises(TypeError, match="keys"):
        merged_series(history, "a")
    with pytest.raises(ValueError, match="keys"):
        merged_series(history, [])


def test_rank_correlation_and_late_mean():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(rank_correlation([1, 2], [1, 2]))
    assert math.isnan(rank_correlation([1, 2, 3], [5, 5, 5]))
    assert rank_correlation([1, 2, np.nan, 3], [1, 2, 0, 3]) == pytest.approx(1.0)
    history = History()
    for step, value in enumerate([9.0, 1.0, 2.0, 3.0, np.nan]):
        history.log(step, v=value)
    assert late_mean(history, "v") == pytest.approx(2.5)  # last half of 4 finite values
    assert late_mean(history, "v", share=1.0) == pytest.approx(3.75)
    with pytest.raises(ValueError, match="share"):
        late_mean(history, "v", share=0)
    assert torch.get_default_dtype() == torch.float32


def test_late_values_are_what_late_mean_averages():
    history = History()
    for step, value in enumerate([9.0, 1.0, np.nan, 2.0, 3.0, 4.0]):
        history.log(step, v=value)
    assert late_values(history, "v").tolist() == [2.0, 3.0, 4.0]  # last half of 5 finite values
    assert late_values(history, "v", share=0.1).tolist() == [4.0]  # at least one value
    assert late_values(history, "v", share=1.0).tolist() == [9.0, 1.0, 2.0, 3.0, 4.0]
    for share in (0.1, 0.5, 1.0):
        assert late_mean(history, "v", share) == pytest.approx(
            float(np.mean(late_values(history, "v", share)))
        )
    empty = History()
    empty.log(0, v=np.nan)
    assert len(late_values(empty, "v")) == 0 and math.isnan(late_mean(empty, "v"))
    with pytest.raises(ValueError, match="share"):
        late_values(history, "v", share=1.5)
