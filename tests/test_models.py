"""Model builders: shapes, options, spectral norm against the largest singular value."""

import pytest
import torch
from torch import nn

from gan_utils.core.mlp import count_parameters, mlp, mlp_critic, mlp_generator, requires_grad


def test_mlp_shapes_and_depth():
    net = mlp(3, 2, width=16, depth=2)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(3, 16), (16, 16), (16, 2)]
    assert net(torch.randn(5, 3)).shape == (5, 2)
    assert len([m for m in mlp(3, 2, depth=0)]) == 1


def test_generator_output_activation():
    g = mlp_generator(4, 2, width=8, output="tanh")
    out = g(torch.randn(100, 4) * 100)
    assert out.abs().max() <= 1.0
    assert isinstance(g[-1], nn.Tanh)


def test_critic_gives_one_logit_and_leaky_relu_by_default():
    d = mlp_critic(2, width=8)
    assert d(torch.randn(7, 2)).shape == (7, 1)
    assert any(isinstance(m, nn.LeakyReLU) for m in d)


def test_spectral_norm_makes_each_layer_unit_norm():
    torch.manual_seed(0)
    d = mlp_critic(5, width=32, depth=2, spectral_norm=True)
    for _ in range(30):  # power iterations run in training-mode forward passes
        d(torch.randn(8, 5))
    for layer in (m for m in d if isinstance(m, nn.Linear)):
        sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"width": 0}, "width"),
        ({"depth": -1}, "depth"),
        ({"activation": "swishy"}, "activation"),
        ({"output": "softmax"}, "output"),
    ],
)
def test_bad_options_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        mlp(2, 2, **kwargs)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"width": 2.5}, "width"),
        ({"depth": "3"}, "depth"),
        ({"activation": None}, "activation"),
        ({"spectral_norm": 1}, "spectral_norm"),
    ],
)
def test_options_of_the_wrong_type_are_type_errors(kwargs, name):
    with pytest.raises(TypeError, match=name):
        mlp(2, 2, **kwargs)


def test_latent_size_below_one_is_rejected():
    with pytest.raises(ValueError, match="latent_dim must be an integer >= 1"):
        mlp_generator(0, 2)


def test_requires_grad_and_count_parameters():
    net = mlp(2, 1, width=4, depth=1)
    assert count_parameters(net) == (2 * 4 + 4) + (4 + 1)
    requires_grad(net, False)
    assert count_parameters(net) == 0
