"""Small colour images for the dense-GAN experiment of lesson 04 (Classic-Image-GAN).

The Classic-Image-GAN repository trains a dense GAN on flower photographs (Linnaeus 5),
which cannot be fetched offline. ``load_colour_images`` returns 32x32 RGB images from the
first source that is available:

1. **CIFAR-10** (torchvision's ``cifar-10-batches-py`` folder under
   ``gan_utils.core.paths.data_dir()``): the first ``num_images`` training images.
2. **Flowers102** (torchvision's ``flowers-102`` folder there): the first ``num_images``
   training photographs, centre-cropped to a square and resized to 32x32.
3. **The two photographs scikit-learn ships** (``sklearn.datasets.load_sample_images``:
   a Chinese temple and a flower, 427x640 each), always present: each photograph is
   shrunk by ``scale`` (default 1/4, to 107x160) and ``num_images`` crops of 32x32 are
   cut at positions drawn from ``numpy.random.default_rng(seed)``, half from each photo,
   every second crop mirrored left-right. Deterministic for a given seed.

Nothing is downloaded. A CIFAR-10 or Flowers102 folder that exists but cannot be read
raises an error naming it (no silent fallback). Images are float32 tensors in [-1, 1]
(x = pixel / 127.5 - 1) of shape (N, 3, 32, 32).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ..core.checks import check_choice, check_int, check_number
from ..core.paths import data_dir

SOURCES = ("auto", "cifar10", "flowers102", "sklearn")
IMAGE_SIZE = 32
CIFAR_FOLDER = "cifar-10-batches-py"
FLOWERS_FOLDER = "flowers-102"


class ColourDataError(RuntimeError):
    """A colour data folder exists but cannot be read (the message names it)."""


@dataclass(frozen=True)
class ColourImages:
    """Colour images in memory: ``images`` (N, 3, 32, 32) in [-1, 1] and where they came from."""

    images: Tensor
    source: str  # "cifar10", "flowers102" or "sklearn"
    description: str  # one plain sentence

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _to_tensor(pixels: np.ndarray) -> Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1]."""
    array = np.ascontiguousarray(pixels, dtype=np.uint8)
    return torch.from_numpy(array).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def sklearn_crops(num_images: int, seed: int = 0, scale: float = 0.25) -> np.ndarray:
    """``num_images`` 32x32 crops (uint8, (N, 32, 32, 3)) of scikit-learn's two photographs."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = []
    for photo in load_sample_images().images:  # (427, 640, 3) uint8 each
        height, width = photo.shape[:2]
        size = (max(IMAGE_SIZE, round(width * scale)), max(IMAGE_SIZE, round(height * scale)))
        photos.append(np.asarray(Image.fromarray(photo).resize(size, Image.BICUBIC)))
    crops = np.empty((num_images, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    for i in range(num_images):
        photo = photos[i % len(photos)]
        top = rng.integers(0, photo.shape[0] - IMAGE_SIZE + 1)
        left = rng.integers(0, photo.shape[1] - IMAGE_SIZE + 1)
        crop = photo[top : top + IMAGE_SIZE, left : left + IMAGE_SIZE]
        crops[i] = crop[:, ::-1] if (i // len(photos)) % 2 else crop
    return crops


def _cifar10(num_images: int) -> np.ndarray:
    from torchvision.datasets import CIFAR10

    try:
        data = CIFAR10(str(data_dir()), train=True, download=False).data  # (50000, 32, 32, 3)
    except Exception as error:
        raise ColourDataError(
            f"the CIFAR-10 folder {data_dir() / CIFAR_FOLDER} cannot be read "
            f"({type(error).__name__}: {error}); complete it or delete it"
        ) from error
    return np.asarray(data[:num_images])


def _flowers102(num_images: int) -> np.ndarray:
    from torchvision.datasets import Flowers102

    try:
        dataset = Flowers102(str(data_dir()), split="train", download=False)
        out = []
        for index in range(min(num_images, len(dataset))):
            photo, _ = dataset[index]  # PIL image
            side = min(photo.size)
            left, top = (photo.size[0] - side) // 2, (photo.size[1] - side) // 2
            square = photo.crop((left, top, left + side, top + side))
            out.append(np.asarray(square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BICUBIC)))
    except Exception as error:
        raise ColourDataError(
            f"the Flowers102 folder {data_dir() / FLOWERS_FOLDER} cannot be read "
            f"({type(error).__name__}: {error}); complete it or delete it"
        ) from error
    return np.stack(out)


def load_colour_images(
    num_images: int = 2000, source: str = "auto", seed: int = 0, scale: float = 0.25
) -> ColourImages:
    """32x32 colour images in [-1, 1] from CIFAR-10, Flowers102 or scikit-learn's photos.

    Args:
        num_images: how many images (at most the data set's size for CIFAR-10/Flowers102).
        source: "auto" (the first available, module docstring), "cifar10", "flowers102"
            or "sklearn".
        seed: crop positions of the scikit-learn source.
        scale: the scikit-learn photos are shrunk by this factor before cropping.

    Returns:
        A ``ColourImages`` with ``images`` (N, 3, 32, 32).

    Raises:
        TypeError: ``source``, ``num_images``, ``scale`` or ``seed`` of the wrong type.
        ValueError: a bad ``source``, ``num_images``, ``scale`` or ``seed``; or a source
            asked for by name whose folder is missing.
        ColourDataError: a CIFAR-10 or Flowers102 folder that cannot be read.
    """
    check_choice("source", source, SOURCES)
    num_images = check_int("num_images", num_images, minimum=1)
    check_number("scale", scale, 0, 1, min_open=True)
    check_int("seed", seed, minimum=0)
    root = data_dir()
    if source == "auto":
        if (root / CIFAR_FOLDER).is_dir():
            source = "cifar10"
        elif (root / FLOWERS_FOLDER).is_dir():
            source = "flowers102"
        else:
            source = "sklearn"
    if source in ("cifar10", "flowers102"):
        folder = root / (CIFAR_FOLDER if source == "cifar10" else FLOWERS_FOLDER)
        if not folder.is_dir():
            raise ValueError(
                f"source={source!r} needs torchvision's files in {folder}; use source='auto' "
                "or 'sklearn' to work offline"
            )
        pixels = _cifar10(num_images) if source == "cifar10" else _flowers102(num_images)
        description = f"{len(pixels):,} {source} images (32x32) from {folder}"
    else:
        pixels = sklearn_crops(num_images, seed, scale)
        description = (
            f"{len(pixels):,} crops of 32x32 pixels from scikit-learn's two sample photographs "
            f"(shrunk to {scale:g} of their size; seed {seed})"
        )
    return ColourImages(_to_tensor(pixels), source, description)


__all__ = [
    "SOURCES",
    "ColourDataError",
    "ColourImages",
    "load_colour_images",
    "sklearn_crops",
]
