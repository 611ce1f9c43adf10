"""gan_utils: the helpers behind the GAN mode-collapse lessons.

Modules (one concept each; README.md has the table): ``paths`` (output root), ``runtime``
(seed, device), ``losses`` (loss registry, gradient penalty), ``models`` (MLP builders),
``data`` (toy mixtures), ``train`` (the training loop), ``checkpoints``, ``history``,
``report`` (lesson results), ``plotting``, ``diagnostics`` (lesson 01), ``mode_coverage``,
``variants``, ``toy_plots``, ``toy_cli``, ``widgets`` (lesson 02), ``mnist``, ``classifier``,
``metrics`` (lesson 03), ``image_models``, ``evaluation``, ``colour_images`` (lesson 04),
``dist_gan`` (lesson 05), ``hessian``, ``nu_gan`` (lesson 06).
"""

from .losses import LOSSES, get_loss, gradient_penalty
from .runtime import get_device, set_seed
from .train import DivergenceError, TrainConfig, train

__all__ = [
    "LOSSES",
    "DivergenceError",
    "TrainConfig",
    "get_device",
    "get_loss",
    "gradient_penalty",
    "set_seed",
    "train",
]
__version__ = "0.1.0"
