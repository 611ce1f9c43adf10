"""Checkpoints: everything needed to continue a run exactly where it stopped.

A training checkpoint holds the models, the optimisers, every RNG state, the config
(as a dict) and the history. It is written through ``gan_utils.core.atomic`` (temporary
file, fsync, rename): a kill at any moment leaves the previous checkpoint or the new one,
never a partial one.

**Errors and cache misses** (the rule for every file the course reads back):

* an **error** (an exception naming the file and what to do) is a file that was asked for
  and cannot serve: a shipped reference whose sha256 differs from its manifest
  (``gan_utils.images.references``), a damaged checkpoint (``CheckpointError``: truncated
  or not a checkpoint; delete it and run again), a ``results.json`` that is not JSON
  (``gan_utils.core.report.ResultsError``), a partial MNIST folder
  (``gan_utils.images.mnist.MNISTDataError``), a checkpoint resumed with other settings;
* a **cache miss** is a lesson's own cached run that does not fit the request (no file,
  a run made with other settings, an older format, or a damaged file): the lesson says
  why in one line and trains it again (``gan_utils.images.recipe.load_or_train``);
* good work is never overwritten: a finished artifact is only replaced by a complete new
  one (atomically), two processes training the same cached artifact take turns
  (``gan_utils.core.atomic.artifact_lock``: the second loads what the first saved), and
  Ctrl-C keeps the last checkpoint and says how to resume from it.
"""

from __future__ import annotations

import dataclasses
import errno
import importlib
import pickle
import random
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .atomic import atomic_path, write_failed_message
from .checks import check_int
from .history import History
from .paths import artifacts_dir

TORCH_WRITE_ERRORS = ("PytorchStreamWriter", "inline_container", "unexpected pos", "write failed")
CHECKPOINT_FORMAT = 2  # of save_generator's payload: builder, config and its class, weights


def rng_state() -> dict[str, Any]:
    """The state of every RNG a run uses: Python, NumPy, torch CPU and all CUDA devices."""
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointError(ValueError):
    """A checkpoint file exists but is damaged (truncated, altered, or not a checkpoint)."""


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` with torch.save to ``path`` atomically; returns the path.

    A kill at any moment leaves the previous checkpoint or the new one, never a partial one
    (``gan_utils.core.atomic.atomic_path``).

    Raises:
        OSError: the file could not be written (a full disk), naming ``path``, which keeps
            the previous checkpoint.
    """
    path = Path(path)
    # torch.save names the archive's inner folder after the file ("run.pt.tmp" -> "run.pt"),
    # so the temporary keeps the name of every checkpoint written so far: same bytes
    with atomic_path(path, name=f"{path.name}.tmp") as temporary:
        try:
            torch.save(payload, temporary)
        except RuntimeError as error:  # torch's C++ writer hides the OS error (a full disk)
            if not any(word in str(error) for word in TORCH_WRITE_ERRORS):
                raise
            why = f"torch.save: {str(error).strip().splitlines()[-1]}"
            raise OSError(errno.EIO, write_failed_message(path, why)) from error
    return path


def _damaged(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"the checkpoint {path} is damaged ({why}): delete it and run again (a lesson "
        "retrains it; a resumed run starts from its previous checkpoint or from scratch)"
    )


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``.

    Raises:
        FileNotFoundError: naming the path, when there is no checkpoint there.
        CheckpointError: naming the path, when the file is truncated, altered or not a
            checkpoint (a ValueError: delete it and run again).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint not found: {path} (train first, or pass the path of an existing "
            "checkpoint)"
        )
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive: its end is its index
        raise _damaged(path, f"{path.stat().st_size} bytes, not a torch.save archive: truncated?")
    try:
        # weights_only=False: our own checkpoints also hold NumPy/Python RNG states and dicts.
        return torch.load(path, map_location=map_location, weights_only=False)
    except (EOFError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        raise _damaged(path, f"{type(error).__name__}: {error}") from error
    except RuntimeError as error:  # torch's archive reader: "PytorchStreamReader failed ..."
        if "PytorchStreamReader" not in str(error):
            raise
        raise _damaged(path, str(error).splitlines()[0]) from error


def model_checkpoint_path(lesson: str, model: str, loss: str, latent_dim: int, seed: int) -> Path:
    """One path per (lesson, model, loss, latent_dim, seed) under ``<root>/artifacts/models``.

    Lessons 04-06 save their trained generators here and lesson 07 finds them here.
    """
    for name, value in (("lesson", lesson), ("model", model), ("loss", loss)):
        allowed = f"{name} must be a non-empty name without slashes or spaces, got {value!r}"
        if not isinstance(value, str):
            raise TypeError(f"{allowed} ({type(value).__name__})")
        if not value or any(c in value for c in "/\\ "):
            raise ValueError(allowed)
    latent_dim = check_int("latent_dim", latent_dim, minimum=1)
    seed = check_int("seed", seed, minimum=0)
    return artifacts_dir("models", lesson) / f"{model}-{loss}-z{latent_dim}-seed{seed}.pt"


# ---- trained generators, rebuilt in later lessons --------------------------------------------
def _builder_string(builder: str | Callable) -> str:
    allowed = (
        "builder must be a function of the gan_utils package or its 'module:function' "
        f"name (e.g. 'gan_utils.images.models:dcgan_generator'), got {builder!r}"
    )
    if not isinstance(builder, str) and not callable(builder):
        raise TypeError(f"{allowed} ({type(builder).__name__})")
    name = builder if isinstance(builder, str) else f"{builder.__module__}:{builder.__qualname__}"
    if ":" not in name or not name.startswith("gan_utils."):
        raise ValueError(allowed)
    return name


def _config_class_name(config: Any) -> str:
    """``"module:ClassName"`` of a training config.

    Raises:
        TypeError: ``config`` is not a dataclass instance (a dict, a number, a class).
        ValueError: a dataclass from outside gan_utils, or one without latent_dim and seed.
    """
    cls = type(config)
    name = f"{cls.__module__}:{cls.__qualname__}"
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(
            "config must be a training config dataclass instance (ImageGANConfig, "
            f"TrainConfig, DistGANConfig), got {config!r} ({cls.__name__})"
        )
    missing = [f for f in ("latent_dim", "seed") if not hasattr(config, f)]
    if missing or not name.startswith("gan_utils."):
        raise ValueError(
            "config must be a dataclass of the gan_utils package with latent_dim and seed "
            f"fields (TrainConfig, DistGANConfig), got {cls.__name__}"
            + (f" without {missing}" if missing else "")
        )
    return name


def resolve_config_class(name: str) -> type:
    """The config dataclass named ``"gan_utils.<module>:<ClassName>"`` (as stored)."""
    module_name, _, class_name = name.partition(":")
    if not module_name.startswith("gan_utils.") or not class_name:
        raise ValueError(f"config class must be 'gan_utils.<module>:<ClassName>', got {name!r}")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"config class {name!r} does not exist in this gan_utils") from error
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"config class {name!r} is not a dataclass")
    return cls


def resolve_builder(name: str) -> Callable[..., nn.Module]:
    """The function named ``"gan_utils.<module>:<function>"``."""
    module_name, _, function_name = _builder_string(name).partition(":")
    try:
        return getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"builder {name!r} does not exist in this gan_utils") from error


def save_generator(
    generator: nn.Module,
    lesson: str,
    model: str,
    loss: str,
    config: Any,
    builder: str | Callable,
    builder_kwargs: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    history: History | None = None,
) -> Path:
    """Save a trained generator with what rebuilds it, at one path per run.

    The path is ``model_checkpoint_path(lesson, model, loss, config.latent_dim,
    config.seed)``. ``loss`` names the variant (e.g. "wasserstein_clip" and "wgan_gp" both
    train with ``config.loss = "wasserstein"``; lesson 05 saves "dist_gan"), so it may
    differ from ``config.loss``.

    Args:
        generator: the trained network.
        lesson: the notebook stem, e.g. "04_vanilla_gan".
        model: a short model name without spaces, e.g. "dcgan".
        loss: the variant's name.
        config: the config it was trained with: a ``TrainConfig``, a ``DistGANConfig``, or
            any dataclass of the gan_utils package with ``latent_dim`` and ``seed`` fields
            (stored with ``asdict``, with its class as ``"module:ClassName"``).
        builder: the function that built it (or its "module:function" name).
        builder_kwargs: the keyword arguments it was built with.
        metrics: final scores to keep with it (e.g. IS at N samples).
        history: its training history.

    Returns:
        The checkpoint's path.
    """
    config_class = _config_class_name(config)
    name = _builder_string(builder)
    if builder_kwargs.get("latent_dim", config.latent_dim) != config.latent_dim:
        raise ValueError(
            f"builder_kwargs latent_dim={builder_kwargs['latent_dim']} differs from "
            f"config.latent_dim={config.latent_dim}"
        )
    path = model_checkpoint_path(lesson, model, loss, config.latent_dim, config.seed)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "lesson": lesson,
        "model": model,
        "loss": loss,
        "builder": name,
        "builder_kwargs": dict(builder_kwargs),
        "config": asdict(config),
        "config_class": config_class,
        "generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
        "metrics": dict(metrics or {}),
        "history": history.to_list() if history is not None else [],
    }
    return save_checkpoint(path, payload)


@dataclass
class SavedGenerator:
    """A generator rebuilt by ``load_generator`` and what it was trained with."""

    generator: nn.Module  # in evaluation mode
    config: Any  # TrainConfig (lessons 04, 06) or DistGANConfig (lesson 05), as saved
    builder: str
    builder_kwargs: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    history: History = field(default_factory=History)
    path: Path | None = None


def load_generator(
    lesson: str,
    model: str,
    loss: str,
    latent_dim: int,
    seed: int,
    device: str | torch.device = "cpu",
) -> SavedGenerator:
    """Rebuild the generator ``save_generator`` stored for (lesson, model, loss, latent_dim, seed).

    The config comes back as the class it was saved from (``SavedGenerator.config``: a
    ``TrainConfig`` or a ``DistGANConfig``); checkpoints without a stored class (lesson
    04's first ones) hold a ``TrainConfig``. Fields unknown to the class are dropped.

    Raises:
        FileNotFoundError: naming the path and the notebook that creates it.
    """
    path = model_checkpoint_path(lesson, model, loss, latent_dim, seed)
    if not path.is_file():
        raise FileNotFoundError(
            f"no trained generator at {path}. Create it by running notebooks/{lesson}.ipynb "
            f"with latent_dim={latent_dim}, seed={seed} and the {model!r} model / {loss!r} "
            f"loss (it saves its generators with gan_utils.core.checkpoints.save_generator), e.g. "
            f"`make run LESSONS={lesson}`."
        )
    payload = load_checkpoint(path, map_location="cpu")
    if payload.get("format") != CHECKPOINT_FORMAT or "builder" not in payload:
        raise ValueError(
            f"{path} is not a generator checkpoint of this gan_utils (format "
            f"{payload.get('format')!r}, expected {CHECKPOINT_FORMAT}): delete it and re-run "
            f"notebooks/{lesson}.ipynb, which writes it again"
        )
    generator = resolve_builder(payload["builder"])(**payload["builder_kwargs"])
    generator.load_state_dict(payload["generator"])
    generator.to(device).eval()
    config_class = resolve_config_class(payload["config_class"])
    known = {f.name for f in dataclasses.fields(config_class)}
    saved_config = payload["config"]
    config = config_class(**{k: v for k, v in saved_config.items() if k in known})
    return SavedGenerator(
        generator=generator,
        config=config,
        builder=payload["builder"],
        builder_kwargs=dict(payload["builder_kwargs"]),
        metrics=dict(payload["metrics"]),
        history=History(payload["history"]),
        path=path,
    )
