"""The loop scaffolding shared by gan_utils.core.train and gan_utils.images.dist_gan."""

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from gan_utils.core.history import History
from gan_utils.core.loop import DivergenceError, check_resumable, run_steps


@dataclass
class Config:
    num_steps: int = 6
    log_every: int = 2
    checkpoint_every: int = 0
    progress: bool = False


@dataclass
class State:
    net: nn.Module = field(default_factory=lambda: nn.Linear(1, 1))
    history: History = field(default_factory=History)
    step: int = 0
    stop: bool = False


def test_interval_means_are_logged_every_log_every_steps():
    state = State()
    values = iter([1.0, 3.0, 5.0, 7.0, 9.0, 11.0])
    run_steps(state, lambda: {"x": torch.tensor(next(values))}, Config(), [], None, dict, {})
    assert state.history.series("x")[0].tolist() == [2, 4, 6]
    assert state.history.series("x")[1].tolist() == [2.0, 6.0, 10.0]


def test_a_callback_stops_and_the_partial_interval_is_logged():
    state = State()

    def stop_at_three(s):
        return s.step == 3

    stop_at_three.every = 1
    run_steps(state, lambda: {"x": torch.tensor(4.0)}, Config(), [stop_at_three], None, dict, {})
    assert state.step == 3
    assert state.history.series("x")[0].tolist() == [2, 3]


def test_nan_raises_and_resets_the_networks_to_the_last_checkpoint(tmp_path):
    state = State()
    path = tmp_path / "ckpt.pt"
    saved = {k: v.clone() for k, v in state.net.state_dict().items()}

    def step():
        with torch.no_grad():
            state.net.weight.add_(1.0)  # the network moves every step
        return {"x": torch.tensor(float("nan") if state.step >= 2 else 0.0)}

    def payload(s):
        return {"net": s.net.state_dict()}

    with pytest.raises(DivergenceError, match="step 4.*last good checkpoint"):
        run_steps(state, step, Config(checkpoint_every=2), [], path, payload, {"net": state.net})
    torch.testing.assert_close(state.net.weight, saved["weight"] + 2.0)  # as at step 2


def test_a_stop_between_log_steps_after_a_nan_keeps_the_last_good_checkpoint(tmp_path):
    # log every 4 steps, checkpoint at step 4; the loss turns NaN at step 5 and a callback
    # stops at step 6, between two log steps: the partial interval holds the NaN.
    state = State()
    path = tmp_path / "ckpt.pt"
    start = state.net.weight.detach().clone()

    def step():
        with torch.no_grad():
            state.net.weight.add_(1.0)
        return {"x": torch.tensor(float("nan") if state.step >= 4 else 0.0)}

    def payload(s):
        return {"step": s.step, "net": {k: v.clone() for k, v in s.net.state_dict().items()}}

    def stop_at_six(s):
        return s.step == 6

    stop_at_six.every = 1
    config = Config(num_steps=8, log_every=4, checkpoint_every=4)
    with pytest.raises(DivergenceError, match="step 6.*last good checkpoint"):
        run_steps(state, step, config, [stop_at_six], path, payload, {"net": state.net})
    kept = torch.load(path, weights_only=False)
    assert kept["step"] == 4  # not overwritten with the diverged weights of step 6
    torch.testing.assert_close(kept["net"]["weight"], start + 4.0)
    torch.testing.assert_close(state.net.weight, start + 4.0)  # networks reset to it
    assert state.history.series("x")[0].tolist() == [4]  # the NaN interval is not logged


def test_check_resumable_names_the_changed_fields():
    check_resumable({"a": [1, 2], "b": 3}, {"a": (1, 2), "b": 3}, ())  # tuples round-trip
    with pytest.raises(ValueError, match=r"\['b'\]"):
        check_resumable({"a": 1, "b": 3, "c": 0}, {"a": 1, "b": 4, "c": 1}, ("c",))
