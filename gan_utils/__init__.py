"""gan_utils: the helpers behind the GAN mode-collapse lessons.

Four areas; dependencies point one way (core imports no area; an area imports core, and
another area only where a lesson combines them, each case listed in tests/test_layout.py):

* ``gan_utils.core``: what every lesson uses (seeding, paths, checks, losses, the loop).
* ``gan_utils.toy``: 1-D and 2-D toy problems (lessons 01, 02, 06).
* ``gan_utils.images``: MNIST and colour images (lessons 03-07).
* ``gan_utils.hessian``: Hessian spectra by Lanczos and NU-GAN (lesson 06).

Each subpackage's docstring maps its modules; the README has the same table.
"""

__version__ = "0.1.0"
