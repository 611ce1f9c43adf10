r"""Generators and critics for small images: 28x28 digits and 32x32 colour crops (lesson 04).

Two pairs, both mapping :math:`z \in \mathbb{R}^{d}` to an image in [-1, 1] and an image to
one logit (no sigmoid: the losses of ``gan_utils.core.losses`` work on logits):

**Dense** (the "vanilla" GAN of Goodfellow et al. 2014 and of the Classic-Image-GAN and
GANs comparative-study repositories): an MLP on the flattened image,

    G: z -> [Linear, ReLU] x depth -> Linear(C*H*W) -> output -> reshape (C, H, W)
    D: flatten -> [Linear, LeakyReLU(0.2)] x depth -> Linear(1)

with ``output`` either ``"tanh"``, :math:`x = \tanh(a)`, or ``"sigmoid"``,
:math:`x = 2\sigma(a) - 1 = \tanh(a/2)`. Both cover (-1, 1), the range of the data; they
differ only in the slope at a = 0 (1 vs 1/2), i.e. in how fast a pixel is pushed into
saturation. The Classic-Image-GAN repository blames tanh for its saturated pixels; the
lesson measures it.

**DCGAN** (Radford et al. 2016), in the layout of the NUGAN-DISTGAN repository's
``GAN_MNIST.ipynb`` (itself the InfoGAN-style MNIST model): with b = ``base_width``,
s = H/4 and an optional dense layer of ``hidden_width`` units,

    G: z -> [Linear(hidden), BN, ReLU] -> Linear(2b*s*s), BN, ReLU -> (2b, s, s)
         -> ConvT(2b -> b, 4, stride 2, pad 1), BN, ReLU      # (b, 2s, 2s)
         -> ConvT(b -> C, 4, stride 2, pad 1), tanh            # (C, 4s, 4s) = (C, H, W)
    D: Conv(C -> b, 4, 2, 1), LeakyReLU(0.2)                  # (b, 2s, 2s)
         -> Conv(b -> 2b, 4, 2, 1), norm, LeakyReLU(0.2)      # (2b, s, s)
         -> [Linear(hidden), norm, LeakyReLU(0.2)] -> Linear(1)

Weights start from N(0, 0.02) and biases from 0, as in the DCGAN paper and the
repository. ``DCGAN_SIZES["repository"]`` is the repository's network (b = 128, a
1,024-unit dense layer: about 13 M parameters in G and 13 M in D);
``DCGAN_SIZES["small"]`` (b = 16, no dense layer: 15-30 k parameters in G for z of
1-10, 10 k in D) is the lesson's CPU default for a live run of a few minutes;
``DCGAN_SIZES["reference"]`` (b = 32 and a 128-unit dense layer: about 440 k parameters in
G and 430 k in D, the repository's layout at a quarter of its widths) is the size of the
reference models trained to convergence (``gan_utils.images.references``). The dense layer
matters: on the 4,000 bundled digits, b = 32 without it plateaued at IS 6.5 (FID 90)
after 6,000 steps, and b = 64 without it at IS 6.7 (FID 94) after 8,000; with a 256-unit
layer b = 32 reached IS 7.9 (FID 28) after 3,000 steps and with a 64-unit one IS 7.1
after 2,500 (seed 0, latent 10, batch 64, Adam 2e-4).

What we reproduce from the repository and what we change on purpose: its layers, widths,
kernel sizes, batch norm placement and initialisation are kept (and its training setting,
30 epochs of 60,000 digits at batch 128, Adam with lr 2e-4, is documented in lesson 04's
parameters). Its D ends in a sigmoid and is trained with a mean squared error against
targets 0.9 / 0 on U[0, 1) latents with Adam beta1 = 0.05; ours ends in a logit (the loss
applies the sigmoid stably, ``gan_utils.core.losses``), z ~ N(0, I), beta1 = 0.5, and the
critic's normalisation can be switched from batch norm to layer norm
(``normalization="layer"``) for WGAN-GP, whose per-sample gradient penalty is not
defined through batch statistics (Gulrajani et al. 2017, sec. 4).

``build_pair(architecture, latent_dim, ...)`` builds a generator and a critic by name and
returns the builder names and arguments that ``gan_utils.core.checkpoints.save_generator``
stores so that later lessons can rebuild the generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..core.checks import check_choice, check_int
from ..core.mlp import ACTIVATIONS, mlp

MNIST_SHAPE = (1, 28, 28)  # (channels, height, width) of MNIST digits
COLOUR_SHAPE = (3, 32, 32)  # (channels, height, width) of the colour crops
GENERATOR_OUTPUTS = ("tanh", "sigmoid")
CRITIC_NORMALIZATIONS = ("batch", "layer", "none")
ARCHITECTURES = ("dense", "dcgan")
DENSE_SIZES: dict[str, dict[str, int]] = {
    "small": {"width": 256, "depth": 2},  # the lesson's CPU default
    "large": {"width": 1024, "depth": 3},  # a wide MLP as in the GANs comparative study
}
DCGAN_SIZES: dict[str, dict[str, int]] = {
    "small": {"base_width": 16, "hidden_width": 0},  # the lesson's CPU default
    "reference": {"base_width": 32, "hidden_width": 128},  # the reference models' DCGAN
    "repository": {"base_width": 128, "hidden_width": 1024},  # NUGAN-DISTGAN GAN_MNIST.ipynb
}
SIZES = {"dense": DENSE_SIZES, "dcgan": DCGAN_SIZES}


# ---- input checks ----------------------------------------------------------------------
def check_image_shape(image_shape: Sequence[int], multiple_of: int = 1) -> tuple[int, int, int]:
    """``image_shape`` as a tuple (C, H, W) of positive ints, H and W multiples of ``multiple_of``.

    Raises:
        TypeError: naming ``image_shape`` when it is not a tuple, list or ``torch.Size`` of
            integers.
        ValueError: naming ``image_shape`` when it does not hold three positive integers,
            or when H or W is not a multiple of ``multiple_of`` (the DCGAN pair needs 4).
    """
    allowed = (
        "image_shape must be three positive integers (channels, height, width), "
        f"e.g. {MNIST_SHAPE} or {COLOUR_SHAPE}, got {image_shape!r}"
    )
    if not isinstance(image_shape, (tuple, list, torch.Size)):
        raise TypeError(f"{allowed} ({type(image_shape).__name__})")
    if len(image_shape) != 3:
        raise ValueError(allowed)
    shape = tuple(check_int(f"image_shape[{i}]", v, minimum=1) for i, v in enumerate(image_shape))
    multiple_of = check_int("multiple_of", multiple_of, minimum=1)
    if shape[1] % multiple_of or shape[2] % multiple_of:
        raise ValueError(
            f"image_shape must have height and width divisible by {multiple_of} for this "
            f"model, got {shape}"
        )
    return shape  # type: ignore[return-value]


def dcgan_init_(module: nn.Module) -> nn.Module:
    """DCGAN initialisation in place: conv and linear weights ~ N(0, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


# ---- output activations ----------------------------------------------------------------
class ScaledSigmoid(nn.Module):
    r"""x = 2 sigma(a) - 1 = tanh(a / 2): a sigmoid output stretched to the data range (-1, 1)."""

    def forward(self, a: Tensor) -> Tensor:
        return 2.0 * torch.sigmoid(a) - 1.0


def _output_layer(output: str) -> nn.Module:
    return (
        nn.Tanh()
        if check_choice("output", output, GENERATOR_OUTPUTS) == "tanh"
        else ScaledSigmoid()
    )


# ---- dense pair --------------------------------------------------------------------------
class DenseGenerator(nn.Module):
    """G: z (B, latent_dim) -> images (B, C, H, W) in (-1, 1) through an MLP."""

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int] = MNIST_SHAPE,
        width: int = 256,
        depth: int = 2,
        output: str = "tanh",
    ):
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.image_shape = check_image_shape(image_shape)
        check_int("width", width, minimum=1)
        check_int("depth", depth, minimum=0)
        self.output = check_choice("output", output, GENERATOR_OUTPUTS)
        self.net = mlp(latent_dim, math.prod(self.image_shape), width, depth, "relu", "none")
        self.out = _output_layer(output)

    def forward(self, z: Tensor) -> Tensor:
        x = self.out(self.net(z))  # (B, C*H*W)
        return x.view(z.shape[0], *self.image_shape)  # (B, C, H, W)


class DenseCritic(nn.Module):
    """D: images (B, C, H, W) -> logits (B, 1) through an MLP on the flattened pixels."""

    def __init__(
        self,
        image_shape: Sequence[int] = MNIST_SHAPE,
        width: int = 256,
        depth: int = 2,
        activation: str = "leaky_relu",
    ):
        super().__init__()
        self.image_shape = check_image_shape(image_shape)
        check_int("width", width, minimum=1)
        check_int("depth", depth, minimum=0)
        check_choice("activation", activation, ACTIVATIONS)
        self.net = mlp(math.prod(self.image_shape), 1, width, depth, activation, "none")

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.flatten(start_dim=1))  # (B, C*H*W) -> (B, 1)


def dense_generator(
    latent_dim: int,
    image_shape: Sequence[int] = MNIST_SHAPE,
    width: int = 256,
    depth: int = 2,
    output: str = "tanh",
) -> DenseGenerator:
    """Dense generator: ``depth`` hidden ReLU layers of ``width`` units, then ``output``.

    Args:
        latent_dim: size of z (>= 1).
        image_shape: (C, H, W) of the images.
        width, depth: units per hidden layer and number of hidden layers.
        output: "tanh" (x = tanh(a)) or "sigmoid" (x = 2 sigma(a) - 1); both in (-1, 1).
    """
    return DenseGenerator(latent_dim, image_shape, width, depth, output)


def dense_critic(
    image_shape: Sequence[int] = MNIST_SHAPE, width: int = 256, depth: int = 2
) -> DenseCritic:
    """Dense critic: ``depth`` hidden LeakyReLU(0.2) layers of ``width`` units, one logit out."""
    return DenseCritic(image_shape, width, depth)


# ---- DCGAN pair --------------------------------------------------------------------------
def _critic_norm(normalization: str, channels: int, two_d: bool) -> nn.Module:
    if normalization == "batch":
        return nn.BatchNorm2d(channels) if two_d else nn.BatchNorm1d(channels)
    if normalization == "layer":  # per sample: safe with the gradient penalty
        return nn.GroupNorm(1, channels) if two_d else nn.LayerNorm(channels)
    return nn.Identity()


class DCGANGenerator(nn.Module):
    """G: z (B, latent_dim) -> images (B, C, H, W) in [-1, 1] by two stride-2 transposed convs."""

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int] = MNIST_SHAPE,
        base_width: int = 16,
        hidden_width: int = 0,
    ):
        super().__init__()
        self.latent_dim = check_int("latent_dim", latent_dim, minimum=1)
        self.image_shape = check_image_shape(image_shape, multiple_of=4)
        check_int("base_width", base_width, minimum=1)
        check_int("hidden_width", hidden_width, minimum=0)
        channels, height, width = self.image_shape
        b = base_width
        self.start = (2 * b, height // 4, width // 4)  # (2b, s, s): 7x7 for MNIST
        layers: list[nn.Module] = []
        n_in = latent_dim
        if hidden_width:
            layers += [nn.Linear(n_in, hidden_width), nn.BatchNorm1d(hidden_width), nn.ReLU()]
            n_in = hidden_width
        n_start = math.prod(self.start)
        layers += [nn.Linear(n_in, n_start), nn.BatchNorm1d(n_start), nn.ReLU()]
        self.fc = nn.Sequential(*layers)
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(2 * b, b, 4, 2, 1),  # (2b, s, s) -> (b, 2s, 2s)
            nn.BatchNorm2d(b),
            nn.ReLU(),
            nn.ConvTranspose2d(b, channels, 4, 2, 1),  # (b, 2s, 2s) -> (C, 4s, 4s)
            nn.Tanh(),
        )
        dcgan_init_(self)

    def forward(self, z: Tensor) -> Tensor:
        h = self.fc(z).view(z.shape[0], *self.start)  # (B, 2b, s, s)
        return self.deconv(h)  # (B, C, H, W)


class DCGANCritic(nn.Module):
    """D: images (B, C, H, W) -> logits (B, 1) by two stride-2 convs (no sigmoid)."""

    def __init__(
        self,
        image_shape: Sequence[int] = MNIST_SHAPE,
        base_width: int = 16,
        hidden_width: int = 0,
        normalization: str = "batch",
    ):
        super().__init__()
        self.image_shape = check_image_shape(image_shape, multiple_of=4)
        check_int("base_width", base_width, minimum=1)
        check_int("hidden_width", hidden_width, minimum=0)
        check_choice("normalization", normalization, CRITIC_NORMALIZATIONS)
        channels, height, width = self.image_shape
        b = base_width
        self.conv = nn.Sequential(
            nn.Conv2d(channels, b, 4, 2, 1),  # (C, H, W) -> (b, H/2, W/2)
            nn.LeakyReLU(0.2),
            nn.Conv2d(b, 2 * b, 4, 2, 1),  # -> (2b, H/4, W/4)
            _critic_norm(normalization, 2 * b, two_d=True),
            nn.LeakyReLU(0.2),
        )
        n_in = 2 * b * (height // 4) * (width // 4)
        layers: list[nn.Module] = []
        if hidden_width:
            layers += [
                nn.Linear(n_in, hidden_width),
                _critic_norm(normalization, hidden_width, two_d=False),
                nn.LeakyReLU(0.2),
            ]
            n_in = hidden_width
        layers.append(nn.Linear(n_in, 1))
        self.fc = nn.Sequential(*layers)
        dcgan_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x).flatten(start_dim=1)  # (B, 2b * H/4 * W/4)
        return self.fc(h)  # (B, 1)


def dcgan_generator(
    latent_dim: int,
    image_shape: Sequence[int] = MNIST_SHAPE,
    base_width: int = 16,
    hidden_width: int = 0,
) -> DCGANGenerator:
    """DCGAN generator (module docstring); the repository's is base_width=128, hidden_width=1024.

    Args:
        latent_dim: size of z (>= 1).
        image_shape: (C, H, W); H and W must be multiples of 4.
        base_width: b, the channels of the last hidden feature map (2b before it).
        hidden_width: units of an extra dense layer after z (0: none).
    """
    return DCGANGenerator(latent_dim, image_shape, base_width, hidden_width)


def dcgan_critic(
    image_shape: Sequence[int] = MNIST_SHAPE,
    base_width: int = 16,
    hidden_width: int = 0,
    normalization: str = "batch",
) -> DCGANCritic:
    """DCGAN critic (module docstring) ending in one logit.

    Args:
        normalization: "batch" (DCGAN, the repository), "layer" (for WGAN-GP) or "none".
    """
    return DCGANCritic(image_shape, base_width, hidden_width, normalization)


# ---- by name -----------------------------------------------------------------------------
@dataclass
class ModelPair:
    """A generator and a critic plus how to rebuild them (stored with the checkpoint)."""

    generator: nn.Module
    critic: nn.Module
    generator_builder: str  # "module:function", e.g. "gan_utils.images.models:dcgan_generator"
    generator_kwargs: dict = field(default_factory=dict)
    critic_builder: str = ""
    critic_kwargs: dict = field(default_factory=dict)


def builder_name(function) -> str:
    """``"module:function"`` of a builder, the form ``gan_utils.images.evaluation`` stores."""
    return f"{function.__module__}:{function.__qualname__}"


def build_pair(
    architecture: str,
    latent_dim: int,
    image_shape: Sequence[int] = MNIST_SHAPE,
    size: str = "small",
    output: str = "tanh",
    critic_normalization: str = "batch",
    **overrides,
) -> ModelPair:
    """Build a generator and a critic by name.

    Args:
        architecture: "dense" or "dcgan".
        latent_dim: size of z.
        image_shape: (C, H, W).
        size: a key of ``DENSE_SIZES`` ("small", "large") or ``DCGAN_SIZES`` ("small",
            "repository").
        output: the dense generator's output, "tanh" or "sigmoid" (DCGAN: tanh only).
        critic_normalization: the DCGAN critic's "batch", "layer" or "none".
        overrides: width/depth (dense) or base_width/hidden_width (dcgan) replacing the
            size's values.

    Returns:
        A ``ModelPair`` whose builder names and kwargs rebuild both networks.
    """
    check_choice("architecture", architecture, ARCHITECTURES)
    sizes = SIZES[architecture]
    check_choice("size", size, sizes)
    dims = {**sizes[size], **overrides}
    unknown = sorted(set(dims) - set(sizes[size]))
    if unknown:
        raise ValueError(
            f"overrides for architecture={architecture!r} must be among {sorted(sizes[size])}, "
            f"got {unknown}"
        )
    shape = list(check_image_shape(image_shape))
    if architecture == "dense":
        g_kwargs = {"latent_dim": latent_dim, "image_shape": shape, **dims, "output": output}
        d_kwargs = {"image_shape": shape, **dims}
        g_builder, d_builder = dense_generator, dense_critic
    else:
        if output != "tanh":
            raise ValueError(f"output must be 'tanh' for architecture='dcgan', got {output!r}")
        g_kwargs = {"latent_dim": latent_dim, "image_shape": shape, **dims}
        d_kwargs = {"image_shape": shape, **dims, "normalization": critic_normalization}
        g_builder, d_builder = dcgan_generator, dcgan_critic
    return ModelPair(
        generator=g_builder(**g_kwargs),
        critic=d_builder(**d_kwargs),
        generator_builder=builder_name(g_builder),
        generator_kwargs=g_kwargs,
        critic_builder=builder_name(d_builder),
        critic_kwargs=d_kwargs,
    )


__all__ = [
    "ARCHITECTURES",
    "COLOUR_SHAPE",
    "CRITIC_NORMALIZATIONS",
    "DCGAN_SIZES",
    "DENSE_SIZES",
    "GENERATOR_OUTPUTS",
    "MNIST_SHAPE",
    "DCGANCritic",
    "DCGANGenerator",
    "DenseCritic",
    "DenseGenerator",
    "ModelPair",
    "ScaledSigmoid",
    "build_pair",
    "builder_name",
    "check_image_shape",
    "dcgan_critic",
    "dcgan_generator",
    "dcgan_init_",
    "dense_critic",
    "dense_generator",
]
