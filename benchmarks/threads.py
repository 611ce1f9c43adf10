"""Threads and workers on this machine: what ``threads="auto"`` and ``--workers`` buy.

Run ``python -m benchmarks.threads`` (``--quick`` for a smoke run) on an otherwise idle
machine. It measures, with ``C`` = the usable cores (``gan_utils.core.runtime``):

1. lesson 04's DCGAN pair (small, latent 10, batch 64): seconds per training step at 1
   torch thread and at ``C`` threads (what "auto" gives a lesson alone on the machine),
   in interleaved rounds (medians);
2. a lesson-02-size toy run (3 x 128 MLPs, batch 256, minimax, 5 critic steps): steps/s
   at 1 thread and at ``C``;
3. a 4-run toy sweep of the same runs: wall time with ``C`` workers x 1 thread against
   1 worker x ``C`` threads (both through ``gan_utils.core.executor``).

Prints a table and writes ``<root>/runs/bench/threads.json``. The Makefile's
``OMP_NUM_THREADS`` and the lessons' ``threads`` defaults are chosen from these numbers
(README, "Threads and workers").
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

from benchmarks.timing import interleaved, median
from gan_utils.core.paths import runs_dir
from gan_utils.core.runtime import set_seed, usable_cores


def dcgan_step_seconds(threads: int, steps: int, rounds: int) -> dict:
    """Median seconds per step of lesson 04's DCGAN pair at 1 and ``threads`` threads."""
    from gan_utils.core.train import train
    from gan_utils.core.variants import get_variant
    from gan_utils.images.mnist import load_mnist
    from gan_utils.images.models import build_pair

    images = load_mnist("train", verbose=False).images
    config = get_variant("non_saturating").train_config(
        latent_dim=10, batch_size=64, num_steps=steps, lr_g=2e-4, lr_d=2e-4,
        betas=(0.5, 0.999), seed=0, device="cpu", log_every=steps, progress=False,
    )  # fmt: skip
    set_seed(0)
    pair = build_pair("dcgan", 10, size="small")

    def timed(count: int):
        def run() -> float:
            torch.set_num_threads(count)
            start = time.perf_counter()
            train(pair.generator, pair.critic, images, config)
            return time.perf_counter() - start

        return run

    timed(1)()  # warm up
    times = interleaved({"1": timed(1), str(threads): timed(threads)}, rounds)
    return {k: median(v) / steps for k, v in times.items()}


def _toy_job(steps: int):
    from gan_utils.toy.runs import ToySettings

    return ToySettings(num_steps=steps, n_critic=5, lr_decay_from=None, device="cpu")


def toy_steps_per_second(threads: int, steps: int, rounds: int) -> dict:
    """Median steps/s of one lesson-02-size run at 1 and ``threads`` threads."""
    from gan_utils.toy.runs import train_toy

    settings = _toy_job(steps)

    def timed(count: int):
        def run() -> float:
            torch.set_num_threads(count)
            start = time.perf_counter()
            train_toy("minimax", "ring", 0, settings)
            return time.perf_counter() - start

        return run

    times = interleaved({"1": timed(1), str(threads): timed(threads)}, rounds)
    return {k: steps / median(v) for k, v in times.items()}


def sweep_wall_seconds(cores: int, steps: int) -> dict:
    """Wall time of 4 toy runs: ``cores`` workers x 1 thread, and 1 worker x ``cores``."""
    from gan_utils.toy.runs import train_many

    settings = _toy_job(steps)
    jobs = [("minimax", "ring", seed, settings) for seed in range(4)]
    out = {}
    start = time.perf_counter()
    train_many(jobs, workers=cores, threads=1)
    out[f"{cores} workers x 1 thread"] = time.perf_counter() - start
    torch.set_num_threads(cores)
    start = time.perf_counter()
    train_many(jobs, workers=1)
    out[f"1 worker x {cores} threads"] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.threads", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    args = parser.parse_args(argv)
    cores = usable_cores()
    if cores < 2:
        print("one usable core: nothing to compare")
    quick = args.quick
    results = {
        "cores": cores,
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "dcgan_seconds_per_step": dcgan_step_seconds(cores, 2 if quick else 40, 1 if quick else 3),
        "toy_steps_per_second": toy_steps_per_second(
            cores, 20 if quick else 600, 1 if quick else 3
        ),
        "toy_sweep_wall_seconds": sweep_wall_seconds(cores, 20 if quick else 600),
        "quick": quick,
    }
    dcgan, toy = results["dcgan_seconds_per_step"], results["toy_steps_per_second"]
    sweep = results["toy_sweep_wall_seconds"]
    print(f"usable cores: {cores}")
    print(f"lesson 04 DCGAN step: 1 thread {dcgan['1'] * 1e3:.1f} ms, {cores} threads "
          f"{dcgan[str(cores)] * 1e3:.1f} ms ({dcgan['1'] / dcgan[str(cores)]:.2f}x)")  # fmt: skip
    print(f"lesson 02 toy run: 1 thread {toy['1']:.0f} steps/s, {cores} threads "
          f"{toy[str(cores)]:.0f} steps/s ({toy[str(cores)] / toy['1']:.2f}x)")  # fmt: skip
    for label, seconds in sweep.items():
        print(f"4 toy runs, {label}: {seconds:.1f} s")
    folder = runs_dir("bench")
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(folder) / "threads.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1))
    os.replace(tmp, path)
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    main()
