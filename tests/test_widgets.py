"""The lesson-02 explorer without a browser: set widget values, click, wait, look."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from gan_utils.toy import explorer as explorer_module
from gan_utils.toy.explorer import THREAD_NAME, ToyExplorer, toy_explorer
from gan_utils.toy.runs import ToySettings, train_toy

TINY = ToySettings(width=8, depth=1, batch_size=16, eval_samples=200, device="cpu")
JOIN_TIMEOUT = 60  # seconds; only a bound on a hang, never a measured duration


def training_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()]


@pytest.fixture(autouse=True)
def _no_training_left(monkeypatch):
    """Every explorer a test builds is stopped and joined afterwards, even when the test
    failed half-way: no training thread outlives its test."""
    created: list[ToyExplorer] = []
    init = ToyExplorer.__init__

    def tracking_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        created.append(self)

    monkeypatch.setattr(ToyExplorer, "__init__", tracking_init)
    yield created
    for explorer in created:
        explorer.stop_button.click()
        assert explorer.wait(timeout=JOIN_TIMEOUT), "a training thread did not end"
    for thread in training_threads():
        thread.join(JOIN_TIMEOUT)
    assert not training_threads()


class CountingTrain:
    """Wraps ``train_toy``: counts calls and the most calls in progress at once. With
    ``gate``, every call first waits for the gate (the test decides when a run goes on)."""

    def __init__(self, gate: threading.Event | None = None):
        self.gate = gate
        self.entered = threading.Event()
        self.lock = threading.Lock()
        self.active = self.max_active = self.calls = 0

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            self.entered.set()
            if self.gate is not None:
                assert self.gate.wait(JOIN_TIMEOUT), "the test never opened the gate"
            return train_toy(*args, **kwargs)
        finally:
            with self.lock:
                self.active -= 1


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


def test_hammering_train_and_stop_never_runs_two_trainings(monkeypatch):
    counting = CountingTrain()
    monkeypatch.setattr(explorer_module, "train_toy", counting)
    explorer = ToyExplorer(TINY, refresh_every=5)
    explorer.steps.value = 10
    most_threads = 0
    train_clicks = 0
    for i in range(20):
        for button in ("train", "train", "stop", "train", "train"):
            getattr(explorer, f"{button}_button").click()
            train_clicks += button == "train"
            most_threads = max(most_threads, len(training_threads()))
        if i % 4 == 3:  # now and then let the run end: the next Train starts a fresh one
            assert explorer.wait(timeout=JOIN_TIMEOUT)
            assert not explorer.train_button.disabled and explorer.stop_button.disabled
    assert explorer.wait(timeout=JOIN_TIMEOUT)
    assert most_threads == 1
    assert counting.max_active == 1
    assert counting.calls >= 5  # the first click and the first click after each wait
    assert counting.calls + explorer.ignored_clicks == train_clicks  # each click: run or ignored
    assert explorer.error is None
    assert not explorer.train_button.disabled and explorer.stop_button.disabled


def test_train_and_stop_from_several_threads_never_run_two_trainings(monkeypatch):
    counting = CountingTrain()
    monkeypatch.setattr(explorer_module, "train_toy", counting)
    explorer = ToyExplorer(TINY, refresh_every=5)
    explorer.steps.value = 10
    most_threads = []
    start = threading.Barrier(4)

    def hammer():
        start.wait(JOIN_TIMEOUT)
        most = 0
        for _ in range(20):
            explorer.train_button.click()
            most = max(most, len(training_threads()))
            explorer.stop_button.click()
        most_threads.append(most)

    clickers = [threading.Thread(target=hammer, name="clicker") for _ in range(4)]
    for clicker in clickers:
        clicker.start()
    for clicker in clickers:
        clicker.join(JOIN_TIMEOUT)
    assert not any(clicker.is_alive() for clicker in clickers)
    assert explorer.wait(timeout=JOIN_TIMEOUT)
    assert max(most_threads) == 1 and counting.max_active == 1
    assert counting.calls + explorer.ignored_clicks == 80
    assert not explorer.train_button.disabled and explorer.stop_button.disabled


def test_train_while_training_is_ignored_and_said_so(monkeypatch):
    gate = threading.Event()
    counting = CountingTrain(gate)
    monkeypatch.setattr(explorer_module, "train_toy", counting)
    explorer = ToyExplorer(TINY, refresh_every=5)
    explorer.steps.value = 20
    explorer.train_button.click()
    assert counting.entered.wait(JOIN_TIMEOUT)  # the run is held at the gate
    assert "training" in explorer.status.value
    explorer.train_button.click()
    assert explorer.ignored_clicks == 1 and "ignored" in explorer.status.value
    explorer.stop_button.click()
    assert "stopping" in explorer.status.value and explorer.stop_button.disabled
    explorer.train_button.click()  # still the stopping run: ignored, not queued
    assert explorer.ignored_clicks == 2 and "stopping" in explorer.status.value
    assert explorer.train_button.disabled and explorer.is_training()
    gate.set()
    assert explorer.wait(timeout=JOIN_TIMEOUT)
    assert counting.calls == 1  # nothing was queued
    steps = explorer.run.history.extras["steps"]
    assert steps < 20 and f"stopped at step {steps}" in explorer.status.value
    explorer.train_button.click()  # the previous thread has ended: a fresh run
    assert explorer.wait(timeout=JOIN_TIMEOUT)
    assert counting.calls == 2 and counting.max_active == 1
    assert explorer.run.history.extras["steps"] == 20
    assert "finished at step 20" in explorer.status.value


def _boom(*args, **kwargs):
    raise RuntimeError("boom")


def test_an_error_in_training_is_shown_and_train_is_usable_again(monkeypatch):
    monkeypatch.setattr(explorer_module, "train_toy", _boom)
    explorer = ToyExplorer(TINY, refresh_every=5)
    explorer.steps.value = 20
    explorer.train_button.click()
    assert explorer.wait(timeout=JOIN_TIMEOUT)
    assert isinstance(explorer.error, RuntimeError)
    assert "RuntimeError: boom" in explorer.status.value
    assert "RuntimeError: boom" in explorer.metrics.value
    assert not explorer.train_button.disabled and explorer.stop_button.disabled
    assert not explorer.is_training() and not training_threads()


def test_a_new_train_works_after_an_error(monkeypatch):
    monkeypatch.setattr(explorer_module, "train_toy", _boom)
    explorer = ToyExplorer(TINY, refresh_every=5)
    explorer.steps.value = 20
    explorer.train_button.click()
    assert explorer.wait(timeout=JOIN_TIMEOUT)
    assert "RuntimeError: boom" in explorer.status.value
    monkeypatch.setattr(explorer_module, "train_toy", train_toy)
    explorer.train_button.click()
    assert explorer.wait(timeout=JOIN_TIMEOUT)
    assert explorer.error is None
    assert "finished at step 20" in explorer.status.value
    assert "minimax on ring, finished at step 20" in explorer.metrics.value
    assert explorer.run.history.extras["steps"] == 20
    assert not explorer.train_button.disabled and explorer.stop_button.disabled


def test_a_bad_setting_raising_in_the_thread_is_shown():
    bad = dataclasses.replace(TINY, device="tpu")  # valid type, fails when the run starts
    explorer = ToyExplorer(bad, refresh_every=5)
    explorer.steps.value = 20
    explorer.train_button.click()
    assert explorer.wait(timeout=JOIN_TIMEOUT)
    assert isinstance(explorer.error, ValueError)
    assert "ValueError: device" in explorer.status.value
    assert not explorer.train_button.disabled and explorer.stop_button.disabled


def test_an_error_before_the_thread_starts_is_shown(monkeypatch):
    explorer = ToyExplorer(TINY, refresh_every=5)

    def bad_settings():
        raise ValueError("lr must be positive")

    monkeypatch.setattr(explorer, "_run_settings", bad_settings)
    explorer.train_button.click()
    assert not explorer.is_training() and not training_threads()
    assert "ValueError: lr must be positive" in explorer.status.value
    assert not explorer.train_button.disabled and explorer.stop_button.disabled
