"""Colour images for the dense-GAN experiment: offline crops, determinism, folder handling."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_sample_images

from gan_utils.images.colour import ColourDataError, load_colour_images, sklearn_crops


@pytest.fixture(autouse=True)
def _own_data(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_DATA", str(tmp_path / "data"))


def test_sklearn_crops_shape_range_and_determinism():
    data = load_colour_images(num_images=40, seed=3)
    assert data.source == "sklearn"
    assert data.images.shape == (40, 3, 32, 32)
    assert data.images.dtype == torch.float32
    assert data.images.min() >= -1 and data.images.max() <= 1
    assert "scikit-learn" in data.description and "40" in data.description
    again = load_colour_images(num_images=40, seed=3)
    assert torch.equal(data.images, again.images)
    other = load_colour_images(num_images=40, seed=4)
    assert not torch.equal(data.images, other.images)


def test_crops_are_pieces_of_the_photographs_at_scale_one():
    crops = sklearn_crops(4, seed=0, scale=1.0)  # (4, 32, 32, 3): no resizing
    photos = load_sample_images().images
    for i in (0, 1):  # crop i comes from photo i (unmirrored): find it in the photo
        photo, crop = photos[i], crops[i]
        candidates = np.argwhere((photo[: 1 - 32, : 1 - 32] == crop[0, 0]).all(axis=-1))
        assert any(
            np.array_equal(photo[top : top + 32, left : left + 32], crop)
            for top, left in candidates
        )
    np.testing.assert_array_equal(crops[2], sklearn_crops(4, seed=0, scale=1.0)[2])


def test_pixels_map_to_minus_one_to_one_exactly():
    data = load_colour_images(num_images=6, seed=0, scale=1.0)
    pixels = sklearn_crops(6, seed=0, scale=1.0)  # uint8 (N, 32, 32, 3)
    expected = torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1).permute(0, 3, 1, 2)
    torch.testing.assert_close(data.images, expected)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"source": "imagenet"}, "source"),
        ({"num_images": 0}, "num_images"),
        ({"scale": 0}, "scale"),
        ({"source": "cifar10"}, "cifar10"),  # asked for by name but not present
    ],
)
def test_bad_requests_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        load_colour_images(**kwargs)


def test_a_broken_cifar_folder_is_an_error_not_a_silent_fallback(tmp_path):
    folder = tmp_path / "data" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    (folder / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(ColourDataError, match="cifar-10-batches-py"):
        load_colour_images(num_images=4)
