"""Small model builders for generators and critics (lesson 01 onwards).

An MLP maps ``in_features -> width -> ... -> width -> out_features`` with ``depth`` hidden
layers. Spectral normalisation (Miyato et al. 2018) divides each weight matrix W by its
largest singular value sigma(W), estimated by power iteration, so every linear layer is
1-Lipschitz; it is applied through ``torch.nn.utils.parametrizations.spectral_norm``.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from .checks import check_bool, check_choice, check_int
from .remedies import MinibatchStd

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(),
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "tanh": lambda: nn.Tanh(),
    "elu": lambda: nn.ELU(),
    "gelu": lambda: nn.GELU(),
}
OUTPUTS = {
    "none": None,
    "tanh": lambda: nn.Tanh(),
    "sigmoid": lambda: nn.Sigmoid(),
}


def mlp(
    in_features: int,
    out_features: int,
    width: int = 128,
    depth: int = 3,
    activation: str = "relu",
    output: str = "none",
    spectral_norm: bool = False,
) -> nn.Sequential:
    """A fully connected network.

    Args:
        in_features, out_features: input and output sizes.
        width: units per hidden layer.
        depth: number of hidden layers (0 gives one linear layer).
        activation: hidden activation, one of ``ACTIVATIONS``.
        output: output activation, one of ``OUTPUTS`` ("none" keeps logits).
        spectral_norm: wrap every linear layer in spectral normalisation.
    """
    in_features = check_int("in_features", in_features, minimum=1)
    out_features = check_int("out_features", out_features, minimum=1)
    width = check_int("width", width, minimum=1)
    depth = check_int("depth", depth, minimum=0)
    make_activation = ACTIVATIONS[check_choice("activation", activation, ACTIVATIONS)]
    make_output = OUTPUTS[check_choice("output", output, OUTPUTS)]
    spectral_norm = check_bool("spectral_norm", spectral_norm)

    sizes = [in_features] + [width] * depth + [out_features]
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        linear = nn.Linear(n_in, n_out)
        layers.append(_spectral_norm(linear) if spectral_norm else linear)
        if i < len(sizes) - 2:
            layers.append(make_activation())
    if make_output is not None:
        layers.append(make_output())
    return nn.Sequential(*layers)


def mlp_generator(
    latent_dim: int,
    data_dim: int,
    width: int = 128,
    depth: int = 3,
    activation: str = "relu",
    output: str = "none",
) -> nn.Sequential:
    """Generator G: R^latent_dim -> R^data_dim (an MLP)."""
    check_int("latent_dim", latent_dim, minimum=1)
    return mlp(latent_dim, data_dim, width, depth, activation, output)


def mlp_critic(
    data_dim: int,
    width: int = 128,
    depth: int = 3,
    activation: str = "leaky_relu",
    spectral_norm: bool = False,
    minibatch_std: bool = False,
) -> nn.Sequential:
    """Critic D: R^data_dim -> R (one logit per sample; no sigmoid).

    ``minibatch_std``: a ``gan_utils.core.remedies.MinibatchStd`` layer right before the
    last linear layer (which then takes width + 1 features; with depth 0 the feature is
    appended to the input), as in Karras et al. 2018.
    """
    if not check_bool("minibatch_std", minibatch_std):
        return mlp(data_dim, 1, width, depth, activation, "none", spectral_norm)
    depth = check_int("depth", depth, minimum=0)
    layers: list[nn.Module] = []
    if depth:  # the hidden layers of mlp(data_dim, 1, ...), activation included
        layers += [*mlp(data_dim, width, width, depth - 1, activation, "none", spectral_norm)]
        layers.append(ACTIVATIONS[activation]())
    last = nn.Linear((width if depth else data_dim) + 1, 1)
    layers += [MinibatchStd(), _spectral_norm(last) if spectral_norm else last]
    return nn.Sequential(*layers)


def requires_grad(model: nn.Module, flag: bool) -> None:
    """Switch gradient tracking of all of ``model``'s parameters on or off."""
    for p in model.parameters():
        p.requires_grad_(flag)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
