"""Lesson 01 (GAN basics) run by papermill at small, non-default settings."""

from __future__ import annotations

import math

import pytest

SMALL = {
    "num_steps": 100,
    "hack_steps": 40,
    "num_seeds": 1,
    "num_eval": 1000,
    "batch_size": 64,
    "width": 32,
    "seed": 3,
}

NUMBERS = (
    "w1_start",
    "w1_end",
    "w1_ratio",
    "train_steps_per_s",
    "grad_ratio_ns_over_minimax",
    "sample_grad_ratio_ns_over_minimax",
    "w1_budget_sgd_minimax",
    "w1_budget_sgd_non_saturating",
    "w1_budget_adam_minimax",
    "w1_budget_adam_non_saturating",
    "w1_baseline",
    "w1_unnormalised_x100",
    "w1_normalised_x100",
    "w1_critic_ahead_hard_labels",
    "w1_label_smoothing",
    "w1_noisy_labels",
    "w1_ns_n_critic_5",
    "w1_wgan_gp_n_critic_1",
    "w1_wgan_gp_n_critic_5",
    "critic_slope_gp",
    "w1_relu_critic",
    "w1_leaky_critic",
    "gap_mass_generated",
    "wall_time_s",
)
SHARES = (
    "dead_unit_share_relu",
    "dead_unit_share_relu_init",
    "dead_unit_share_leaky",
    "zero_activation_share_relu",
    "gap_mass_generated",
)


DIAGNOSES = {"converged", "still training", "collapsed to one mode", "failed"}


@pytest.mark.notebook
@pytest.mark.slow
def test_lesson01_runs_at_small_settings_and_records_sensible_numbers(run_notebook):
    results = run_notebook("01_gan_basics", SMALL)
    assert results["num_steps"] == SMALL["num_steps"]
    assert results["hack_steps"] == SMALL["hack_steps"]
    assert results["num_seeds"] == SMALL["num_seeds"]
    for key in NUMBERS:
        assert isinstance(results[key], (int, float)), (key, results[key])
        assert math.isfinite(results[key]), (key, results[key])
    for key in SHARES:
        assert 0.0 <= results[key] <= 1.0, (key, results[key])
    assert 0 < results["wall_time_s"] < 600
    # the open loop and train() are the same computation on the CPU
    assert results["open_loop_vs_train_max_param_diff"] == 0
    # untrained G sits near 0 and the modes at +-2, so W1 starts near 2
    assert 1.0 < results["w1_start"] < 3.0
    assert results["w1_ratio"] == pytest.approx(results["w1_start"] / results["w1_end"], rel=1e-3)
    # a critic trained alone for 100 steps is confident whatever the small settings, and the
    # non-saturating gradient is then an order of magnitude larger
    assert results["d_fake_confident_critic"] < 0.1
    assert results["grad_ratio_ns_over_minimax"] >= 10
    assert results["sample_grad_ratio_ns_over_minimax"] >= 10
    # the JSD identity is quadrature, independent of training
    assert results["minimax_value_jsd_identity_error"] < 1e-9
    assert results["gap_mass_target"] == pytest.approx(0.02275, abs=1e-4)
    assert 0 < results["critic_slope_gp"] < 20
    assert len(results["diagnoses"]) == 3 and set(results["diagnoses"]) <= DIAGNOSES
    assert all(0 <= n <= SMALL["num_seeds"] for n in results["collapsed_seeds_hard_smooth_noisy"])
