"""gan_utils: the helpers behind the GAN mode-collapse lessons.

Modules (one concept each): ``paths`` (output root), ``runtime`` (seed, device),
``losses`` (loss registry, gradient penalty), ``models`` (MLP builders), ``train``
(the training loop), ``checkpoints``, ``history``, ``report`` (lesson results),
``plotting``.
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
