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
# One OpenMP thread per process (papermill/nbval kernels and lesson 02's worker processes
# inherit it): on 2 shared cores, two spinning threads per process were measured 5-20x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.pop("GAN_UTILS_REFRESH_FIGURES", None)
