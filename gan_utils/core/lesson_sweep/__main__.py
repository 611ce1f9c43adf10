"""``python -m gan_utils.core.lesson_sweep``: runs the command (``cli.main``)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
