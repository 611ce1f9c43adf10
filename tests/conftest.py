"""Fixtures for the unit and notebook tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gan_utils.core.paths import PROJECT_ROOT, runs_dir

NOTEBOOKS = PROJECT_ROOT / "notebooks"


@pytest.fixture(autouse=True)
def _few_threads():
    """One torch thread: the tests' networks are tiny, and on a 2-core machine shared with
    notebook kernels two OpenMP threads per process were measured 10-20x slower."""
    torch.set_num_threads(1)
    yield


@pytest.fixture
def run_notebook(tmp_path):
    """Execute a lesson with papermill at the given parameters; returns its results dict.

    Usage: ``results = run_notebook("01_gan_basics", {"num_steps": 50})``.
    """

    def _run(name: str, parameters: dict) -> dict:
        import papermill as pm

        source = NOTEBOOKS / f"{name}.ipynb"
        assert source.is_file(), f"no lesson {source}"
        results_path = runs_dir(name) / "results.json"
        results_path.unlink(missing_ok=True)
        pm.execute_notebook(
            str(source),
            str(tmp_path / f"{name}.ipynb"),
            parameters=parameters,
            cwd=str(NOTEBOOKS),
            kernel_name="python3",
            progress_bar=False,
        )
        assert results_path.is_file(), f"{name} did not write {results_path}"
        return json.loads(results_path.read_text())["results"]

    return _run


def notebook_path(name: str) -> Path:
    return NOTEBOOKS / f"{name}.ipynb"


@pytest.fixture
def float64():
    """float64 as torch's default dtype inside the test (Hessian references to 1e-6)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def local_cluster():
    """A real Dask LocalCluster of 2 worker processes, 1 thread each, shared by the cluster
    tests; its scheduler does not retry a task itself (allowed-failures 0), so the
    executor's one retry after a worker death is the only one."""
    distributed = pytest.importorskip(
        "distributed", reason='the cluster extra: pip install -e ".[cluster]"'
    )
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        try:
            yield cluster
        finally:
            cluster.close()


# ---- Hypothesis profiles ---------------------------------------------------------------------
def _load_hypothesis_profile() -> None:
    """Register the property tests' profiles and load $HYPOTHESIS_PROFILE (default "ci").

    "ci": derandomized (the same examples on every run, no example database written), no
    deadline (2 shared cores), few examples; "dev": random, 5x the examples, for hunting."""
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # hypothesis is a dev extra; its tests import it themselves
        return
    import os

    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
    settings.register_profile("ci", derandomize=True, database=None, max_examples=100, **common)
    settings.register_profile("dev", max_examples=500, **common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_load_hypothesis_profile()
