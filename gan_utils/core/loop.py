"""The one step loop of the course, and the callback protocol it calls.

``run_steps`` runs any training step until ``config.num_steps``: the GAN step of
``gan_utils.core.train.train`` (lessons 01, 02, 04, 06) and Dist-GAN's step
(``gan_utils.images.dist_gan``, lesson 05) differ only in what a step does and what a
checkpoint holds. Everything else lives here, once:

* interval means of the step's logged values, one host sync per ``log_every`` steps, with
  a NaN/inf check that raises ``DivergenceError`` (and resets the networks to the last
  good checkpoint when there is one). The partial interval of a run that a callback
  stops between two log steps is checked the same way, before the final checkpoint is
  written, so a diverged state never overwrites the last good checkpoint;
* callbacks every ``callback.every`` steps (default ``log_every``); one returning True
  stops training;
* checkpoints every ``checkpoint_every`` steps and at the end;
* Ctrl-C (KeyboardInterrupt) keeps the last checkpoint and prints one line naming it and
  how to resume (``resume_from=<checkpoint>``); a tqdm bar; the wall time;
* the testing hook ``GAN_UTILS_KILL_AT=step:K`` (``gan_utils.core.atomic``): the process
  kills itself with SIGKILL right after generator step K, after any checkpoint of that
  step was written;
* ``check_resumable``: a checkpoint's config against the current one.

**The callback protocol.** A callback is any callable ``callback(state) -> bool | None``
of the training state (``TrainState`` of ``gan_utils.core.train``, Dist-GAN's state: both
have ``.generator``, ``.critic``, ``.step``, ``.history``, ``.config``, ``.device``). The
loop calls it after the step whose number is a multiple of ``callback.every`` (set it
with ``every(num_steps, callback)``; without it, every ``log_every`` steps). It may log
into ``state.history`` at ``state.step``; returning True (or setting ``state.stop``)
ends training after this step. Callbacks that only observe (evaluation hooks, spectra)
draw from their own RNG so that a run trains exactly as it would without them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from tqdm.auto import tqdm

from .atomic import kill_now, kill_step
from .checkpoints import load_checkpoint, save_checkpoint

Callback = Callable[[Any], "bool | None"]
KILL_HOOK = "GAN_UTILS_KILL_AT=step:K, a testing hook"


def every(num_steps: int, callback: Callback) -> Callback:
    """Run ``callback`` every ``num_steps`` generator steps (default: every log step)."""
    callback.every = int(num_steps)  # type: ignore[attr-defined]
    return callback


class DivergenceError(RuntimeError):
    """A loss became NaN or infinite; the message names the step and the last good checkpoint."""


def config_value(value):
    """A config value as it compares after a checkpoint round trip (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


def check_resumable(
    saved: Mapping[str, Any], current: Mapping[str, Any], resumable: Iterable[str]
) -> None:
    """Raise ValueError naming the fields (outside ``resumable``) that differ on resume.

    Args:
        saved: the config dict stored in the checkpoint.
        current: ``asdict`` of the config of the run that resumes.
        resumable: fields that may change on resume (e.g. ``device``).
    """
    resumable = tuple(resumable)
    changed = [
        k
        for k in current
        if k not in resumable and config_value(saved.get(k)) != config_value(current[k])
    ]
    if changed:
        raise ValueError(
            f"cannot resume: the checkpoint was made with other settings for {changed} "
            f"(only {resumable} may change on resume)"
        )


def divergence_message(step: int, bad: dict[str, float], last_good: Path | None) -> str:
    """The ``DivergenceError`` text: the step, the non-finite values, the last good state."""
    values = ", ".join(f"{k}={v}" for k, v in bad.items())
    where = (
        f"the models were reset to the last good checkpoint {last_good}"
        if last_good is not None
        else "no checkpoint had been written (set checkpoint_every and checkpoint_path to keep one)"
    )
    return (
        f"training diverged by step {step}: {values}. Lower the learning rates or add a "
        f"Lipschitz constraint; {where}."
    )


def _log_interval(
    state: Any, sums: Mapping[str, Tensor], count: int, last_good: Path | None
) -> dict[str, float]:
    """Log the means of an interval of ``count`` steps; DivergenceError if one is NaN/inf."""
    row = {k: (v / count).item() for k, v in sums.items()}
    bad = {k: v for k, v in row.items() if not math.isfinite(v)}
    if bad:
        raise DivergenceError(divergence_message(state.step, bad, last_good))
    state.history.log(state.step, **row)
    return row


def interrupted_message(step: int, last_good: Path | None) -> str:
    """The line printed on Ctrl-C: the step, the last checkpoint and how to resume."""
    if last_good is None:
        return (
            f"Training interrupted at step {step}; no checkpoint was written (set "
            "checkpoint_every and checkpoint_path to keep one), so a new run starts from scratch."
        )
    return (
        f"Training interrupted at step {step}; the last checkpoint is kept: {last_good}. "
        f"To continue, run the same call with resume_from={str(last_good)!r}."
    )


def _holds_step(path: str | Path, step: int) -> bool:
    """Whether the checkpoint at ``path`` exists, loads and is the one of ``step``."""
    try:
        return load_checkpoint(path, map_location="cpu").get("step") == step
    except (OSError, ValueError):  # missing or damaged: not the last good checkpoint
        return False


def run_steps(
    state: Any,
    step_fn: Callable[[], dict[str, Tensor]],
    config: Any,
    callbacks: Sequence[Callable[[Any], Any]],
    checkpoint_path: str | Path | None,
    payload: Callable[[Any], dict],
    networks: Mapping[str, nn.Module],
    resume_from: str | Path | None = None,
    desc: str = "train",
    postfix: Mapping[str, str] | None = None,
) -> float:
    """Run ``step_fn`` until ``state.step`` reaches ``config.num_steps`` or a callback stops.

    Args:
        state: has ``step``, ``stop`` and ``history`` (``TrainState``, ``DistGANState``).
        step_fn: one training step at ``state.step``; returns detached tensors to log. It
            does not advance ``state.step`` (this loop does).
        config: has ``num_steps``, ``log_every``, ``checkpoint_every`` and ``progress``.
        callbacks: functions of the state, called after the step (``every`` attribute).
        checkpoint_path: where checkpoints go (every ``checkpoint_every`` steps, and at
            the end); None: no checkpoints.
        payload: the checkpoint's contents for the current state.
        networks: checkpoint keys and the modules reset from them after a divergence.
        resume_from: the checkpoint the run resumed from (the last good one at the start).
        desc: the progress bar's label.
        postfix: progress-bar labels and the logged keys they show.

    Returns:
        The wall time of the loop in seconds.

    Raises:
        DivergenceError: a logged value became NaN/inf (networks reset when possible).
        KeyboardInterrupt: after printing where the last checkpoint is and how to resume.
    """
    postfix = dict(postfix or {})
    kill_at = kill_step()  # the testing hook GAN_UTILS_KILL_AT=step:K, read once
    last_good: Path | None = Path(resume_from) if resume_from is not None else None
    sums: dict[str, Tensor] = {}
    count = 0
    saving: int | None = None  # the step of a checkpoint being written
    bar = tqdm(
        total=config.num_steps,
        initial=state.step,
        desc=desc,
        disable=not config.progress,
        leave=False,
    )
    t0 = time.perf_counter()
    try:
        while state.step < config.num_steps and not state.stop:
            out = step_fn()
            state.step += 1
            count += 1
            for key, value in out.items():
                sums[key] = sums[key] + value if key in sums else value.clone()
            bar.update(1)
            if state.step % config.log_every == 0 or state.step == config.num_steps:
                row = _log_interval(state, sums, count, last_good)  # one host sync per log
                sums, count = {}, 0
                bar.set_postfix(
                    {label: f"{row[key]:.3f}" for label, key in postfix.items() if key in row},
                    refresh=False,
                )
            for cb in callbacks:
                if state.step % getattr(cb, "every", config.log_every) == 0 and cb(state):
                    state.stop = True
            if (
                checkpoint_path is not None
                and config.checkpoint_every
                and state.step % config.checkpoint_every == 0
            ):
                saving = state.step
                last_good = save_checkpoint(checkpoint_path, payload(state))
                saving = None
            if kill_at == state.step and state.step < config.num_steps and not state.stop:
                kill_now(f"after step {state.step} ({KILL_HOOK})")
        if count:  # stopped by a callback between log steps: the partial interval is
            # checked like any other before the final checkpoint may overwrite the last good one
            _log_interval(state, sums, count, last_good)
        if checkpoint_path is not None:
            saving = state.step
            last_good = save_checkpoint(checkpoint_path, payload(state))
            saving = None
        if kill_at == state.step:
            kill_now(f"after the last step {state.step} ({KILL_HOOK})")
    except DivergenceError:
        if last_good is not None and last_good.is_file():
            saved = load_checkpoint(last_good, map_location="cpu")
            for name, network in networks.items():
                network.load_state_dict(saved[name])
        raise
    except KeyboardInterrupt:
        if saving is not None and _holds_step(checkpoint_path, saving):
            last_good = Path(checkpoint_path)  # Ctrl-C came just after the rename published it
        print(interrupted_message(state.step, last_good), flush=True)
        raise
    finally:
        bar.close()
    return time.perf_counter() - t0


__all__ = [
    "DivergenceError",
    "check_resumable",
    "config_value",
    "divergence_message",
    "interrupted_message",
    "run_steps",
]
