"""Shared by unit tests and nbval: every test writes under a temporary output root.

Set before any kernel starts, so nbval's and papermill's kernels inherit it too; the
tracked figures/ are never rewritten by tests. Data are read offline.
"""

import os
import tempfile

if not os.environ.get("GAN_UTILS_ROOT"):
    os.environ["GAN_UTILS_ROOT"] = tempfile.mkdtemp(prefix="gan_utils_test_root_")
os.environ.setdefault("GAN_UTILS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("GAN_UTILS_REFRESH_FIGURES", None)
