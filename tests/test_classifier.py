"""The lesson-03 digit classifier: shapes, input checks, training, checkpoint reuse."""

from __future__ import annotations

import math

import pytest
import torch

from gan_utils.images.classifier import (
    ClassifierConfig,
    DigitClassifier,
    check_images,
    load_or_train_classifier,
    random_affine,
    train_classifier,
)
from gan_utils.images.mnist import load_mnist

TINY = ClassifierConfig(num_steps=4, batch_size=16, width=4, feature_dim=8, eval_every=2)


@pytest.fixture(scope="module")
def data():
    """200 training and 100 test digits of whatever source this machine has."""
    train, test = load_mnist("train", verbose=False), load_mnist("test", verbose=False)
    return train.subset(range(200)), test.subset(range(100))


@pytest.fixture
def model():
    torch.manual_seed(0)
    return DigitClassifier(width=4, feature_dim=8)


def test_output_shapes_and_probabilities(model, data):
    images = data[1].images[:7]
    assert model.logits(images).shape == (7, 10)
    probs = model.predict_proba(images)
    assert probs.shape == (7, 10) and bool((probs >= 0).all())
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(7))
    features = model.features(images)
    assert features.shape == (7, model.num_features) and model.num_features == 8
    assert bool((features >= 0).all())  # after the ReLU
    # batching changes nothing; flat (N, 784) input is the same images
    torch.testing.assert_close(model.logits(images, batch_size=3), model.logits(images))
    torch.testing.assert_close(model.features(images.reshape(7, 784)), features)
    # the head on the features gives the logits
    torch.testing.assert_close(model.head(features), model.logits(images))


def test_evaluation_helpers_restore_training_mode(model, data):
    model.train()
    model.predict_proba(data[1].images[:2])
    assert model.training


@pytest.mark.parametrize(
    "images, match",
    [
        (torch.zeros(4, 28, 28), r"shape \(N, 1, 28, 28\)"),
        (torch.zeros(4, 3, 28, 28), r"shape \(N, 1, 28, 28\)"),
        (torch.zeros(0, 1, 28, 28), "N >= 1"),
        (torch.zeros(4, 1, 28, 28, dtype=torch.uint8), "float tensor"),
        (torch.full((4, 1, 28, 28), 255.0), r"values in \[-1, 1\]"),
        (torch.full((4, 1, 28, 28), -1.5), r"values in \[-1, 1\]"),
        (torch.full((4, 1, 28, 28), float("nan")), "finite"),
    ],
)
def test_bad_images_raise_value_errors_naming_the_parameter(model, images, match):
    with pytest.raises(ValueError, match=match) as info:
        model.predict_proba(images)
    assert str(info.value).startswith("images")
    with pytest.raises(ValueError, match=match):
        model.features(images)


def test_images_that_are_not_a_tensor_are_a_type_error(model):
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        model.predict_proba([[0.0]])
    with pytest.raises(TypeError, match="batch_size"):
        model.logits(torch.zeros(2, 1, 28, 28), batch_size=2.0)


def test_range_tolerance_and_batch_size_check(model):
    check_images(torch.full((2, 1, 28, 28), 1.0005))  # rounding above 1 is accepted
    with pytest.raises(ValueError, match="batch_size"):
        model.logits(torch.zeros(2, 1, 28, 28), batch_size=0)


@pytest.mark.parametrize(
    "changes, name",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"max_scale": 1.0}, "max_scale"),
        ({"max_shift_px": -1}, "max_shift_px"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_config_names_the_field(changes, name):
    with pytest.raises(ValueError, match=name):
        ClassifierConfig(**changes).validate()


@pytest.mark.parametrize(
    "changes, name",
    [
        ({"batch_size": 1.5}, "batch_size"),
        ({"num_steps": "100"}, "num_steps"),
        ({"learning_rate": "2e-3"}, "learning_rate"),
        ({"max_scale": None}, "max_scale"),
        ({"seed": True}, "seed"),
    ],
)
def test_config_values_of_the_wrong_type_are_type_errors(changes, name):
    with pytest.raises(TypeError, match=name):
        ClassifierConfig(**changes).validate()


def test_augmentation_without_change_is_the_identity_and_keeps_the_range(data):
    images = data[0].images[:16]
    still = ClassifierConfig(max_rotation_deg=0, max_scale=0, max_shift_px=0)
    torch.testing.assert_close(random_affine(images, still), images, rtol=0, atol=1e-5)
    moved = random_affine(images, ClassifierConfig())
    assert not torch.allclose(moved, images)
    assert float(moved.min()) >= -1 - 1e-5 and float(moved.max()) <= 1 + 1e-5
    # corners stay background (-1): shifts of 2 px and 10 % zoom cannot bring ink there
    assert bool((moved[:, :, 0, 0] == -1).all())


def test_training_is_seeded_and_leaves_the_global_rng_alone(data):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = train_classifier(*data, TINY, device="cpu", verbose=False)
    assert torch.equal(torch.rand(3), expected_next)  # the lesson's random numbers unchanged
    second = train_classifier(*data, TINY, device="cpu", verbose=False)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    record = first.record
    assert record.n_train == 200 and record.n_test == 100 and 0 <= record.test_accuracy <= 1
    steps, accuracies = record.history.series("test_accuracy")
    assert steps.tolist() == [2, 4]
    assert record.test_accuracy == accuracies[-1]
    assert all(math.isfinite(v) for v in record.history.series("loss")[1])


def test_checkpoint_is_reused_and_retrained_when_data_or_settings_change(data, tmp_path, capsys):
    train, test = data
    path = tmp_path / "classifier.pt"
    first = load_or_train_classifier(TINY, train, test, path=path, device="cpu")
    assert first.record.trained_now and path.is_file()
    assert "no checkpoint" in capsys.readouterr().out

    again = load_or_train_classifier(TINY, train, test, path=path, device="cpu")
    assert not again.record.trained_now
    assert "Loaded" in capsys.readouterr().out
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert again.record.test_accuracy == first.record.test_accuracy
    assert again.record.history == first.record.history

    other_data = load_mnist("train", verbose=False).subset(range(200, 400))
    retrained = load_or_train_classifier(TINY, other_data, test, path=path, device="cpu")
    assert retrained.record.trained_now
    assert "other data" in capsys.readouterr().out

    other_settings = ClassifierConfig(**{**TINY.__dict__, "learning_rate": 1e-3})
    retrained = load_or_train_classifier(other_settings, other_data, test, path=path, device="cpu")
    assert retrained.record.trained_now
    assert "other settings (learning_rate)" in capsys.readouterr().out

    path.write_bytes(b"truncated")
    retrained = load_or_train_classifier(other_settings, other_data, test, path=path, device="cpu")
    assert retrained.record.trained_now
    assert "unreadable" in capsys.readouterr().out

    forced = load_or_train_classifier(
        other_settings, other_data, test, path=path, device="cpu", retrain=True
    )
    assert forced.record.trained_now


def test_default_path_separates_data_and_settings(data):
    train, test = data
    a = load_or_train_classifier(TINY, train, test, device="cpu", verbose=False)
    b = load_or_train_classifier(TINY, train, test, device="cpu", verbose=False)
    assert a.record.path == b.record.path and not b.record.trained_now
    assert a.record.path.parent.name == "classifier"
    assert a.record.path.parent.parent.name == "artifacts"
    c = load_or_train_classifier(
        ClassifierConfig(**{**TINY.__dict__, "seed": 1}), train, test, device="cpu", verbose=False
    )
    assert c.record.path != a.record.path and c.record.trained_now


def test_bad_data_argument_is_named(data):
    with pytest.raises(TypeError, match="train_data must be an MNISTData"):
        train_classifier(data[0].images, data[1], TINY)


@pytest.mark.slow
def test_default_settings_reach_97_percent_on_the_held_out_digits():
    """The course's target: >= 97 % test accuracy on the bundled (or full) MNIST."""
    model = load_or_train_classifier(device="cpu", verbose=False)
    assert model.record.test_accuracy >= 0.97
