"""The one executor of every sweep (gan_utils.core.executor): order, errors, dead workers,
and the Dask path on a real LocalCluster of two worker processes."""

from __future__ import annotations

import math
import os
import signal
import sys
from pathlib import Path

import pytest

from gan_utils.core.executor import (
    CLUSTER_ENV,
    ClusterUnavailable,
    JobFailure,
    WorkerDied,
    cluster_address,
    run_jobs,
)


def _fail_on_negative(x: float) -> float:
    if x < 0:
        raise ValueError(f"x must be >= 0, got {x}")
    return x


def _die_the_first_time(marker: str, value: float) -> float:
    """Kill this process (SIGKILL, no clean-up) unless ``marker`` exists; then return."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def _always_die(value: float) -> float:
    os.kill(os.getpid(), signal.SIGKILL)
    return value  # never reached


def _kill_on_negative(x: float) -> float:
    if x < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def test_results_and_callbacks_keep_the_order_of_the_jobs():
    seen = []
    jobs = [(3, 4), (0, 1), (2, 2)]
    assert run_jobs(math.hypot, jobs, 1, on_result=seen.append) == [5.0, 1.0, math.hypot(2, 2)]
    assert seen == [5.0, 1.0, math.hypot(2, 2)]


def test_counts_and_the_cluster_address_are_checked(monkeypatch):
    with pytest.raises(ValueError, match="workers"):
        run_jobs(math.hypot, [(1, 1)], 0)
    with pytest.raises(TypeError, match="threads must be 'auto' or an integer"):
        run_jobs(math.hypot, [(1, 1)], 1, threads=1.5)
    with pytest.raises(ValueError, match="retries"):
        run_jobs(math.hypot, [(1, 1)], 1, retries=-1)
    with pytest.raises(ValueError, match=r"cluster must be a Dask scheduler address .* got '  '"):
        cluster_address("  ")
    monkeypatch.setenv(CLUSTER_ENV, "tcp://example:8786")
    assert cluster_address() == "tcp://example:8786" and cluster_address("tcp://a:1") == "tcp://a:1"
    monkeypatch.setenv(CLUSTER_ENV, "")
    assert cluster_address() is None


def test_an_error_in_a_job_reaches_the_caller_after_the_earlier_results():
    seen = []
    with pytest.raises(ValueError, match="math domain"):
        run_jobs(math.sqrt, [(4.0,), (-1.0,), (9.0,)], 1, on_result=seen.append)
    assert seen == [2.0]


def test_keep_going_reports_the_failed_job_and_finishes_the_rest():
    results = run_jobs(_fail_on_negative, [(1.0,), (-1.0,), (2.0,)], 1, keep_going=True)
    assert results[0] == 1.0 and results[2] == 2.0
    failure = results[1]
    assert isinstance(failure, JobFailure) and not failure.worker_died
    assert failure.index == 1 and failure.attempts == 1
    assert failure.error == "ValueError: x must be >= 0, got -1.0"
    assert "_fail_on_negative" in failure.details


@pytest.mark.slow
def test_two_workers_give_the_results_of_one():
    jobs = [(float(i), 2.0) for i in range(4)]
    seen = []
    assert run_jobs(math.pow, jobs, 2, on_result=seen.append) == [math.pow(*j) for j in jobs]
    assert seen == [math.pow(*j) for j in jobs]


@pytest.mark.slow
def test_a_failing_job_in_a_worker_is_raised_after_the_earlier_results():
    seen = []
    jobs = [(1.0,), (-1.0,)] + [(float(i),) for i in range(2, 40)]
    with pytest.raises(ValueError, match="x must be >= 0"):
        run_jobs(_fail_on_negative, jobs, 2, on_result=seen.append)
    assert seen == [1.0]


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_its_job_retried_once(tmp_path):
    marker = str(tmp_path / "died")
    jobs = [(3.0,), (4.0,), (5.0,)]
    seen = []
    results = run_jobs(
        _die_the_first_time, [(marker, v) for (v,) in jobs], 2, on_result=seen.append
    )
    assert results == [3.0, 4.0, 5.0] and seen == results
    assert Path(marker).read_text() == "died once"  # one job's worker really died


@pytest.mark.slow
def test_a_job_that_kills_every_worker_fails_after_one_retry_and_the_rest_finish():
    # (with two workers and at least two jobs: a single job runs in this process)
    results = run_jobs(_kill_on_negative, [(-1.0,), (2.0,), (3.0,)], 2, keep_going=True)
    assert results[1:] == [4.0, 9.0]
    failure = results[0]
    assert isinstance(failure, JobFailure) and failure.worker_died
    assert failure.attempts == 2 and "died 2 times" in failure.error
    assert failure.details == f"last exit code {-signal.SIGKILL}"
    with pytest.raises(WorkerDied, match="died 2 times"):
        run_jobs(_always_die, [(1.0,), (2.0,)], 2)


# ---- Dask ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.cluster
def test_a_dask_cluster_gives_the_results_of_one_worker(local_cluster):
    jobs = [(float(i), 2.0) for i in range(4)]
    seen = []
    results = run_jobs(
        math.pow, jobs, cluster=local_cluster.scheduler_address, on_result=seen.append
    )
    assert results == run_jobs(math.pow, jobs, 1) and seen == results


@pytest.mark.slow
@pytest.mark.cluster
def test_a_dask_worker_killed_during_a_job_leads_to_one_retry(local_cluster, tmp_path):
    marker = str(tmp_path / "died")
    jobs = [(marker, 3.0), (marker, 4.0)]
    results = run_jobs(_die_the_first_time, jobs, cluster=local_cluster.scheduler_address)
    assert results == [3.0, 4.0] and Path(marker).exists()
    seen = run_jobs(
        _fail_on_negative,
        [(1.0,), (-1.0,)],
        cluster=local_cluster.scheduler_address,
        keep_going=True,
    )
    assert seen[0] == 1.0 and isinstance(seen[1], JobFailure) and "x must be >= 0" in seen[1].error


@pytest.mark.timeout(60)  # a hang fails here instead of blocking the suite
def test_an_unreachable_scheduler_is_a_clear_error_not_a_hang():
    pytest.importorskip("distributed", reason='the cluster extra: pip install -e ".[cluster]"')
    with pytest.raises(
        ClusterUnavailable, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'"
    ):
        run_jobs(math.hypot, [(1, 1)], cluster="tcp://127.0.0.1:1")


def test_a_cluster_without_dask_installed_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r'needs Dask.*pip install -e "\.\[cluster\]"'):
        run_jobs(math.hypot, [(1, 1)], cluster="tcp://127.0.0.1:8786")


def _thread_count(_: int) -> int:
    import torch

    return torch.get_num_threads()


@pytest.mark.slow
def test_auto_threads_give_each_local_worker_its_share_of_the_cores(monkeypatch):
    from gan_utils.core import runtime

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    share = max(1, runtime.usable_cores() // 2)
    assert run_jobs(_thread_count, [(0,), (1,)], 2) == [share, share]
    assert run_jobs(_thread_count, [(0,), (1,)], 2, threads=3) == [3, 3]  # pinned
