"""gan_utils: the helpers behind the GAN mode-collapse lessons (map in each subpackage)."""

__version__ = "0.1.0"
