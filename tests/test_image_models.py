"""Image generators and critics: shapes, value ranges, parameter counts by hand, bad inputs."""

import pytest
import torch
from torch import nn

from gan_utils.core.mlp import count_parameters
from gan_utils.images.models import (
    COLOUR_SHAPE,
    DCGAN_SIZES,
    MNIST_SHAPE,
    build_pair,
    dcgan_critic,
    dcgan_generator,
    dense_critic,
    dense_generator,
)


def linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def conv_params(c_in: int, c_out: int, kernel: int = 4) -> int:
    return c_in * c_out * kernel * kernel + c_out


@pytest.mark.parametrize("shape", [MNIST_SHAPE, COLOUR_SHAPE])
@pytest.mark.parametrize("output", ["tanh", "sigmoid"])
def test_dense_generator_shape_and_range(shape, output):
    torch.manual_seed(0)
    g = dense_generator(3, shape, width=16, depth=1, output=output)
    x = g(torch.randn(5, 3) * 50)  # large z drives the output into saturation
    assert x.shape == (5, *shape)
    assert x.min() >= -1 and x.max() <= 1
    assert (x.abs() > 0.99).float().mean() > 0.1  # both outputs reach the ends of [-1, 1]


def test_sigmoid_output_is_tanh_of_half_the_preactivation():
    torch.manual_seed(0)
    g_sig = dense_generator(2, width=8, depth=1, output="sigmoid")
    g_tanh = dense_generator(2, width=8, depth=1, output="tanh")
    g_tanh.load_state_dict(g_sig.state_dict())
    with torch.no_grad():  # halve the last layer: tanh(a/2) must equal 2 sigmoid(a) - 1
        g_tanh.net[-1].weight.mul_(0.5)
        g_tanh.net[-1].bias.mul_(0.5)
    z = torch.randn(6, 2)
    torch.testing.assert_close(g_sig(z), g_tanh(z), atol=1e-6, rtol=1e-5)


def test_dense_parameter_counts_by_hand():
    g = dense_generator(10, MNIST_SHAPE, width=256, depth=2)
    d = dense_critic(MNIST_SHAPE, width=256, depth=2)
    assert count_parameters(g) == (
        linear_params(10, 256) + linear_params(256, 256) + linear_params(256, 784)
    )
    assert count_parameters(d) == (
        linear_params(784, 256) + linear_params(256, 256) + linear_params(256, 1)
    )
    assert d(torch.zeros(4, *MNIST_SHAPE)).shape == (4, 1)


@pytest.mark.parametrize("shape", [MNIST_SHAPE, COLOUR_SHAPE])
def test_dcgan_shapes_range_and_logits(shape):
    torch.manual_seed(0)
    g = dcgan_generator(4, shape, base_width=8)
    d = dcgan_critic(shape, base_width=8)
    x = g(torch.randn(3, 4))
    assert x.shape == (3, *shape)
    assert x.min() >= -1 and x.max() <= 1
    logits = d(x)
    assert logits.shape == (3, 1)
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())  # losses take logits
    assert any(isinstance(m, nn.BatchNorm2d) for m in g.modules())


def test_dcgan_weights_start_from_n_0_002():
    torch.manual_seed(0)
    g = dcgan_generator(10, base_width=32)
    weight = g.deconv[0].weight.detach()
    assert weight.mean().abs() < 0.002
    assert weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert g.deconv[0].bias.abs().max() == 0


def test_repository_dcgan_parameter_count_by_hand():
    """The NUGAN-DISTGAN GAN_MNIST.ipynb network (b = 128, 1,024 dense units), z = 100."""
    b, h, z = 128, 1024, 100
    sizes = DCGAN_SIZES["repository"]
    assert sizes == {"base_width": b, "hidden_width": h}
    g = dcgan_generator(z, MNIST_SHAPE, **sizes)
    d = dcgan_critic(MNIST_SHAPE, **sizes)
    n_start = 2 * b * 7 * 7
    expected_g = (
        linear_params(z, h)
        + 2 * h  # batch norm
        + linear_params(h, n_start)
        + 2 * n_start
        + conv_params(2 * b, b)
        + 2 * b
        + conv_params(b, 1)
    )
    expected_d = (
        conv_params(1, b)
        + conv_params(b, 2 * b)
        + 2 * 2 * b
        + linear_params(n_start, h)
        + 2 * h
        + linear_params(h, 1)
    )
    assert count_parameters(g) == expected_g
    assert count_parameters(d) == expected_d
    assert 13_000_000 < expected_g < 14_000_000


@pytest.mark.parametrize("normalization", ["batch", "layer", "none"])
def test_critic_normalisation_options(normalization):
    d = dcgan_critic(base_width=4, hidden_width=8, normalization=normalization)
    kinds = {type(m) for m in d.modules()}
    if normalization == "batch":
        assert nn.BatchNorm2d in kinds and nn.BatchNorm1d in kinds
    elif normalization == "layer":
        assert nn.GroupNorm in kinds and nn.LayerNorm in kinds
        assert nn.BatchNorm2d not in kinds
    else:
        assert not kinds & {nn.BatchNorm2d, nn.BatchNorm1d, nn.GroupNorm, nn.LayerNorm}
    # per-sample normalisation: a sample's logit does not depend on the rest of the batch
    if normalization != "batch":
        x = torch.randn(5, *MNIST_SHAPE)
        torch.testing.assert_close(d(x)[:1], d(x[:1]))


def test_build_pair_records_how_to_rebuild():
    pair = build_pair("dcgan", 7, size="small", base_width=8)
    assert pair.generator_builder == "gan_utils.images.models:dcgan_generator"
    assert pair.generator_kwargs["latent_dim"] == 7
    assert pair.generator_kwargs["base_width"] == 8
    again = dcgan_generator(**pair.generator_kwargs)
    assert count_parameters(again) == count_parameters(pair.generator)
    dense = build_pair("dense", 1, image_shape=COLOUR_SHAPE, output="sigmoid", width=16)
    assert dense.generator(torch.randn(2, 1)).shape == (2, *COLOUR_SHAPE)
    assert dense.critic_kwargs == {"image_shape": list(COLOUR_SHAPE), "width": 16, "depth": 2}


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: dense_generator(0), "latent_dim"),
        (lambda: dcgan_generator(-1), "latent_dim"),
        (lambda: dense_generator(2, (28, 28)), "image_shape"),
        (lambda: dense_generator(2, (1, 0, 28)), "image_shape"),
        (lambda: dcgan_generator(2, (1, 30, 30)), "image_shape"),
        (lambda: dcgan_critic((3, 32, 30)), "image_shape"),
        (lambda: dense_generator(2, output="relu"), "output"),
        (lambda: dense_generator(2, width=0), "width"),
        (lambda: dcgan_generator(2, base_width=0), "base_width"),
        (lambda: dcgan_critic(normalization="instance"), "normalization"),
        (lambda: build_pair("resnet", 2), "architecture"),
        (lambda: build_pair("dcgan", 2, size="huge"), "size"),
        (lambda: build_pair("dcgan", 2, output="sigmoid"), "output"),
        (lambda: build_pair("dense", 2, base_width=3), "overrides"),
    ],
)
def test_bad_inputs_name_the_parameter(build, name):
    with pytest.raises(ValueError, match=name):
        build()


@pytest.mark.parametrize(
    "build, name",
    [
        (lambda: dense_generator(1.5), "latent_dim"),
        (lambda: dense_generator(2, width="8"), "width"),
        (lambda: dcgan_generator(2, base_width=True), "base_width"),
        (lambda: dense_generator(2, (1, 28.0, 28)), "image_shape"),
        (lambda: dense_generator(2, "1x28x28"), "image_shape"),
        (lambda: dcgan_critic(normalization=None), "normalization"),
        (lambda: build_pair(None, 2), "architecture"),
    ],
)
def test_inputs_of_the_wrong_type_are_type_errors(build, name):
    with pytest.raises(TypeError, match=name):
        build()
