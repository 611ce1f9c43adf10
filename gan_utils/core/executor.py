"""One executor for every sweep: runs side by side on this machine, or on a Dask cluster.

``run_jobs(function, jobs, workers=N)`` calls ``function(*job)`` for every job and returns
the results in the order of ``jobs``. Used by the ``gan-toy`` sweeps
(``gan_utils.toy.runs.train_many``), the reference-model command
(``gan_utils.images.pretrain``) and the papermill lesson sweeps
(``gan_utils.core.lesson_sweep``).

Where the calls run:

* ``workers == 1`` (or one job) and no cluster: here, one after the other; nothing is
  started, so a single run pays no start-up cost.
* ``workers > 1``: in ``workers`` worker processes of this machine (standard library,
  started with ``spawn``, since fork is unsafe once torch has started threads), each with
  ``threads`` torch threads, so that N workers share the cores instead of
  oversubscribing them.
* ``cluster="tcp://host:8786"`` (or the environment variable ``GAN_UTILS_CLUSTER``): on
  the workers of a Dask scheduler (``distributed.Client``); ``workers`` is then the
  cluster's business. Needs the optional extra: ``pip install -e ".[cluster]"``.

``function``, the jobs and the results must be picklable (module-level functions, plain
data): the results travel back to this process, which writes every file, so workers need
no shared file system.

Failures. A job whose worker process **dies** (killed, out of memory, a crash in native
code) is started again once on another worker (``retries``); a second death is a failure.
An exception raised **by the job** is not retried (the same inputs would raise again): by
default it is raised here, after the earlier results went to ``on_result``, and the other
jobs are stopped; with ``keep_going=True`` it becomes a ``JobFailure`` in the results
and the other jobs finish. A Dask scheduler may itself retry a task after a worker death
(its ``distributed.scheduler.allowed-failures``); this module's retry comes on top.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

import torch

from .checks import check_int
from .runtime import resolve_threads

CLUSTER_ENV = "GAN_UTILS_CLUSTER"  # a Dask scheduler address used when no cluster is given
CONNECT_TIMEOUT_S = 5  # seconds to reach a scheduler before giving up


@dataclass
class JobFailure:
    """A job that did not return a result (``keep_going=True`` puts it in the results)."""

    index: int  # position in ``jobs``
    job: Sequence[Any]
    error: str  # "ExceptionType: message", or how the worker died
    details: str  # the traceback (or the worker's exit code)
    attempts: int  # times the job was started
    worker_died: bool  # True: the process running it died; False: the job raised

    def __str__(self) -> str:
        return f"job {self.index} {tuple(self.job)!r} failed after {self.attempts} attempt(s): {self.error}"


class WorkerDied(RuntimeError):
    """A job's worker process died on every attempt."""


class ClusterUnavailable(RuntimeError):
    """The Dask scheduler could not be reached."""


def runs_here(workers: int, num_jobs: int, cluster: str | None = None) -> bool:
    """Whether ``run_jobs`` makes the calls in this process (no cluster, and one worker or
    at most one job): then results need not be picklable."""
    return cluster_address(cluster) is None and (workers == 1 or num_jobs <= 1)


def cluster_address(cluster: str | None = None) -> str | None:
    """``cluster``, else ``$GAN_UTILS_CLUSTER``, else None (run on this machine)."""
    if cluster is None:
        cluster = os.environ.get(CLUSTER_ENV) or None
    if cluster is not None and (not isinstance(cluster, str) or not cluster.strip()):
        raise ValueError(
            f"cluster must be a Dask scheduler address such as 'tcp://host:8786', got {cluster!r}"
        )
    return cluster


def call_with_threads(function: Callable[..., Any], threads: int | str, job: Sequence[Any]) -> Any:
    """``function(*job)`` with ``resolve_threads(threads)`` torch threads (what a Dask
    worker runs; Dask's worker processes set ``OMP_NUM_THREADS=1`` unless configured)."""
    torch.set_num_threads(resolve_threads(threads))
    return function(*job)


class _Results:
    """Results by index, handed to ``on_result`` in the order of the jobs."""

    def __init__(self, count: int, on_result: Callable[[Any], None] | None):
        self.values: dict[int, Any] = {}
        self.count, self.on_result, self.next = count, on_result, 0

    def put(self, index: int, value: Any) -> None:
        self.values[index] = value
        while self.next in self.values:
            if self.on_result is not None:
                self.on_result(self.values[self.next])
            self.next += 1

    def in_order(self) -> list[Any]:
        return [self.values[i] for i in range(self.count)]


def run_jobs(
    function: Callable[..., Any],
    jobs: Sequence[Sequence[Any]],
    workers: int = 1,
    *,
    cluster: str | None = None,
    threads: int | str = "auto",
    on_result: Callable[[Any], None] | None = None,
    keep_going: bool = False,
    retries: int = 1,
) -> list[Any]:
    """``[function(*job) for job in jobs]``, here, in local worker processes or on Dask.

    Args:
        function: a picklable (module-level) function.
        jobs: argument tuples, one per call.
        workers: local worker processes (>= 1); 1 runs the calls here. Ignored with a cluster.
        cluster: a Dask scheduler address; None: ``$GAN_UTILS_CLUSTER``, else this machine.
        threads: torch threads per worker process: a count, or "auto" (``$OMP_NUM_THREADS``
            if set, else the usable cores // workers; ``runtime.resolve_threads``). Calls
            run here keep the caller's threads.
        on_result: called with each result (or ``JobFailure``) in the order of ``jobs``, as
            soon as it and every earlier one are in (e.g. to write a finished run at once).
        keep_going: an exception in a job becomes a ``JobFailure`` and the rest still run;
            False raises it after the earlier results and stops the other jobs.
        retries: new starts of a job whose worker died (then a ``JobFailure``, or
            ``WorkerDied`` without ``keep_going``).

    Returns:
        The results in the order of ``jobs`` (``JobFailure`` for the failed ones).
    """
    check_int("workers", workers, minimum=1)
    resolve_threads(threads, workers)  # a bad value fails here, wherever the calls run
    check_int("retries", retries, minimum=0)
    jobs = [tuple(job) for job in jobs]
    results = _Results(len(jobs), on_result)
    address = cluster_address(cluster)
    if address is not None:
        _run_on_dask(function, jobs, address, threads, results, keep_going, retries)
    elif runs_here(workers, len(jobs), cluster):
        _run_here(function, jobs, results, keep_going)
    else:
        count = min(workers, len(jobs))
        per_worker = resolve_threads(threads, count)
        _run_in_processes(function, jobs, count, per_worker, results, keep_going, retries)
    return results.in_order()


def _failure_or_raise(
    failure: JobFailure, exc: BaseException | None, keep_going: bool
) -> JobFailure:
    if keep_going:
        return failure
    if exc is not None:
        raise exc
    raise WorkerDied(str(failure))


def _run_here(function, jobs, results: _Results, keep_going: bool) -> None:
    for index, job in enumerate(jobs):
        try:
            value = function(*job)
        except Exception as exc:  # noqa: BLE001 - reported per job, or raised below
            failure = JobFailure(index, job, _error_line(exc), traceback.format_exc(), 1, False)
            value = _failure_or_raise(failure, exc, keep_going)
        results.put(index, value)


def _error_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


# ---- local worker processes ------------------------------------------------------------------
def _worker_main(connection, threads: int) -> None:
    """A worker process: run jobs from the pipe until it closes or sends None."""
    torch.set_num_threads(threads)
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, function, job = message
        try:
            reply = ("ok", index, function(*job))
        except Exception as exc:  # noqa: BLE001 - sent back to the caller
            reply = ("error", index, exc, traceback.format_exc())
        try:
            connection.send(reply)
        except Exception as exc:  # noqa: BLE001 - a result or exception that cannot be pickled
            problem = RuntimeError(f"could not send the job's outcome back: {_error_line(exc)}")
            connection.send(("error", index, problem, traceback.format_exc()))


class _Worker:
    def __init__(self, context, threads: int):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, threads), daemon=True)
        self.process.start()
        child.close()
        self.index: int | None = None  # the job it runs

    def stop(self, force: bool = False) -> None:
        if self.process.is_alive():
            if force:
                self.process.kill()
            else:
                try:
                    self.connection.send(None)
                except OSError:
                    self.process.kill()
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.connection.close()


def _run_in_processes(function, jobs, workers: int, threads: int, results: _Results,
                      keep_going: bool, retries: int) -> None:  # fmt: skip
    context = multiprocessing.get_context("spawn")
    pending = list(range(len(jobs)))  # indices not started yet, in order
    attempts = [0] * len(jobs)
    pool = [_Worker(context, threads) for _ in range(workers)]
    error: BaseException | None = None  # raised at the end (keep_going=False)
    error_index = len(jobs)

    def give_up(index: int, exc: BaseException) -> None:
        # without keep_going: no new starts; jobs after this one stop, earlier ones finish
        nonlocal error, error_index
        if index < error_index:
            error, error_index = exc, index
        pending.clear()
        for worker in pool:
            if worker.index is not None and worker.index > error_index:
                worker.stop(force=True)
                worker.index = None

    try:
        while True:
            for worker in pool:
                if worker.index is None and pending:
                    worker.index = pending.pop(0)
                    attempts[worker.index] += 1
                    worker.connection.send((worker.index, function, jobs[worker.index]))
            busy = [w for w in pool if w.index is not None]
            if not busy:
                break
            ready = wait([w.connection for w in busy] + [w.process.sentinel for w in busy])
            for worker in busy:
                if worker.index is None or (
                    worker.connection not in ready and worker.process.sentinel not in ready
                ):
                    continue
                index, reply = worker.index, None
                try:
                    if worker.connection.poll():
                        reply = worker.connection.recv()
                except (EOFError, OSError):
                    reply = None
                worker.index = None
                if reply is None:  # the process died with the job: a fresh worker replaces it
                    worker.stop(force=True)
                    code = worker.process.exitcode
                    pool[pool.index(worker)] = _Worker(context, threads)
                    if attempts[index] <= retries and error is None:
                        pending.insert(0, index)  # first in line, on another worker
                        continue
                    failure = JobFailure(index, jobs[index],
                                         f"its worker process died {attempts[index]} times",
                                         f"last exit code {code}", attempts[index], True)  # fmt: skip
                    if keep_going:
                        results.put(index, failure)
                    else:
                        give_up(index, WorkerDied(str(failure)))
                elif reply[0] == "ok":
                    results.put(index, reply[2])
                elif keep_going:
                    exc = reply[2]
                    results.put(index, JobFailure(index, jobs[index], _error_line(exc), reply[3],
                                                  attempts[index], False))  # fmt: skip
                else:
                    give_up(index, reply[2])
    finally:
        for worker in pool:
            worker.stop(force=error is not None or worker.index is not None)
    if error is not None:
        raise error


# ---- Dask -------------------------------------------------------------------------------------
def dask_client(address: str, timeout_s: float = CONNECT_TIMEOUT_S):
    """A ``distributed.Client`` connected to ``address``, or a clear error within about
    ``timeout_s`` seconds (Dask not installed, or the scheduler unreachable)."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError(
            f"cluster={address!r} needs Dask's distributed scheduler, which is not installed: "
            'run `pip install -e ".[cluster]"` (dask and distributed), or leave out '
            f"--cluster / ${CLUSTER_ENV} to run on this machine"
        ) from exc
    try:
        return Client(address, timeout=f"{timeout_s}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterUnavailable(
            f"cannot reach the Dask scheduler at {address!r} within {timeout_s:g} s "
            f"({_error_line(exc)}); check the address (e.g. tcp://host:8786) and that the "
            "scheduler runs"
        ) from exc


def _run_on_dask(function, jobs, address: str, threads: int, results: _Results,
                 keep_going: bool, retries: int) -> None:  # fmt: skip
    client = dask_client(address)  # first: a clear error when Dask is missing
    from distributed import as_completed
    from distributed.scheduler import KilledWorker

    try:
        with client.as_current():  # as_completed and the futures look the client up
            attempts = [1] * len(jobs)

            index_of: dict[str, int] = {}

            def submit(index: int):
                future = client.submit(
                    call_with_threads, function, threads, jobs[index], pure=False
                )
                index_of[future.key] = index
                return future

            futures = as_completed([submit(i) for i in range(len(jobs))])
            for future in futures:
                index = index_of[future.key]
                if future.status == "finished":
                    results.put(index, future.result())
                    continue
                exc = future.exception()
                if isinstance(exc, KilledWorker):
                    if attempts[index] <= retries:
                        attempts[index] += 1
                        futures.add(submit(index))
                        continue
                    failure = JobFailure(index, jobs[index],
                                         f"its worker died {attempts[index]} times",
                                         _error_line(exc), attempts[index], True)  # fmt: skip
                    results.put(index, _failure_or_raise(failure, None, keep_going))
                    continue
                details = (
                    "".join(traceback.format_tb(future.traceback())) if future.traceback() else ""
                )
                failure = JobFailure(
                    index, jobs[index], _error_line(exc), details, attempts[index], False
                )
                results.put(index, _failure_or_raise(failure, exc, keep_going))
    finally:
        client.close()


__all__ = [
    "CLUSTER_ENV",
    "ClusterUnavailable",
    "JobFailure",
    "WorkerDied",
    "call_with_threads",
    "cluster_address",
    "dask_client",
    "run_jobs",
    "runs_here",
]
