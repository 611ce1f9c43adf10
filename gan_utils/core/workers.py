"""Runs side by side in worker processes: the one pool behind every sweep.

``run_in_workers(function, jobs, workers)`` calls ``function(*job)`` for every job and
returns the results in the order of ``jobs``. With ``workers == 1`` (or a single job) the
calls run one after the other in this process; otherwise in ``workers`` spawned processes
(fork is unsafe once torch has started threads), each limited to ``threads`` torch
threads so that N workers share the machine's cores instead of oversubscribing them.
``function`` and the jobs must be picklable (module-level functions, plain data).

Used by the ``gan-toy`` sweeps (``gan_utils.toy.runs.train_many``) and the reference-model
command (``gan_utils.images.pretrain``).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from .checks import check_int


def _call_with_threads(function: Callable[..., Any], threads: int, job: Sequence[Any]) -> Any:
    torch.set_num_threads(threads)
    return function(*job)


def run_in_workers(
    function: Callable[..., Any],
    jobs: Sequence[Sequence[Any]],
    workers: int = 1,
    on_result: Callable[[Any], None] | None = None,
    threads: int = 1,
) -> list[Any]:
    """``[function(*job) for job in jobs]``, side by side in ``workers`` processes.

    Args:
        function: a picklable (module-level) function.
        jobs: argument tuples, one per call.
        workers: processes (>= 1); 1 runs the calls here, one after the other.
        on_result: called with each result in the order of ``jobs``, as soon as it and
            every earlier one are done (e.g. to write a finished run to disk at once).
        threads: torch threads per worker process (the calling process keeps its own).

    Returns:
        The results, in the order of ``jobs``. The first exception raised by a call is
        raised here after the earlier results went to ``on_result``; calls not started yet
        are cancelled (those running finish first).
    """
    check_int("workers", workers, minimum=1)
    check_int("threads", threads, minimum=1)
    results: list[Any] = []
    if workers == 1 or len(jobs) <= 1:
        for job in jobs:
            results.append(function(*job))
            if on_result is not None:
                on_result(results[-1])
        return results
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
        futures = [pool.submit(_call_with_threads, function, threads, job) for job in jobs]
        try:
            for future in futures:
                results.append(future.result())
                if on_result is not None:
                    on_result(results[-1])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # no new calls after a failure
            raise
    return results


__all__ = ["run_in_workers"]
