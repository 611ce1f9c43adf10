"""The lesson-02 explorer without a browser: set widget values, click, wait, look."""

from __future__ import annotations

import time

import pytest

from gan_utils.toy.explorer import ToyExplorer, toy_explorer
from gan_utils.toy.runs import ToySettings

TINY = ToySettings(width=8, depth=1, batch_size=16, eval_samples=200, device="cpu")


def test_train_updates_plot_progress_and_metrics():
    explorer = toy_explorer(TINY, refresh_every=5)
    explorer.variant.value = "hinge"
    assert explorer.n_critic.value == 1  # follows the variant's default
    explorer.variant.value = "wasserstein_sn"
    assert explorer.n_critic.value == 5
    explorer.n_critic.value = 2
    explorer.dataset.value = "ring"
    explorer.latent_size.value = 4
    explorer.steps.value = 20
    explorer.lr.value = 1e-3
    image_before, metrics_before = explorer.image.value, explorer.metrics.value
    explorer.train_button.click()
    assert explorer.wait(timeout=60)
    assert explorer.error is None
    assert explorer.image.value != image_before and explorer.image.value[:4] == b"\x89PNG"
    assert explorer.metrics.value != metrics_before
    assert "wasserstein_sn on ring, finished at step 20" in explorer.metrics.value
    assert "modes covered:" in explorer.metrics.value and "/8" in explorer.metrics.value
    assert explorer.progress.value == explorer.progress.max == 20
    run = explorer.run
    assert (run.variant, run.dataset, run.history.extras["steps"]) == ("wasserstein_sn", "ring", 20)
    assert run.settings.n_critic == 2 and run.settings.latent_dim == 4 and run.settings.lr == 1e-3
    assert not explorer.train_button.disabled and explorer.stop_button.disabled


def test_stop_ends_a_long_run_early():
    explorer = ToyExplorer(TINY, refresh_every=10)
    explorer.variant.value = "non_saturating"
    explorer.steps.value = 20_000
    explorer.train_button.click()
    assert explorer.train_button.disabled and not explorer.stop_button.disabled
    deadline = time.monotonic() + 30
    while explorer.progress.value < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert explorer.is_training()
    explorer.stop_button.click()
    assert explorer.wait(timeout=10)
    steps = explorer.run.history.extras["steps"]
    assert 10 <= steps < 20_000
    assert f"stopped at step {steps}" in explorer.metrics.value


def test_bad_refresh_interval_is_refused():
    with pytest.raises(ValueError, match="refresh_every"):
        ToyExplorer(TINY, refresh_every=0)
    with pytest.raises(TypeError, match="refresh_every"):
        ToyExplorer(TINY, refresh_every=10.0)


def test_first_choices_come_from_the_arguments_and_are_checked():
    explorer = toy_explorer(TINY, variant="minimax", dataset="ring", n_critic=5)
    assert (explorer.variant.value, explorer.dataset.value) == ("minimax", "ring")
    assert explorer.n_critic.value == 5  # the collapse setting, not minimax's own 1
    explorer.variant.value = "pacgan2"
    assert explorer.n_critic.value == 1  # picking a variant restores its own
    assert ToyExplorer(TINY, variant="wgan_gp").n_critic.value == 5
    with pytest.raises(ValueError, match="variant must be one of"):
        ToyExplorer(TINY, variant="vanilla")
    with pytest.raises(ValueError, match="dataset must be one of"):
        ToyExplorer(TINY, dataset="spiral")
    with pytest.raises(ValueError, match="n_critic"):
        ToyExplorer(TINY, n_critic=0)
