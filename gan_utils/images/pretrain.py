"""``make pretrain``: train the course's reference runs and ship them in ``pretrained/``.

    python -m gan_utils.images.pretrain [NAME ...] [--device auto|cpu|cuda] [--workers N]
                                        [--threads T] [--force] [--check NAME] [--list]

Without names it brings every entry of the registry (``gan_utils.images.references``) up
to date: runs whose shipped file matches the manifest and whose config matches the
registry are skipped; the others train. The classifier comes first (it scores the rest).

* **Deterministic**: each run seeds every RNG from its config and uses ``--threads`` torch
  threads (default 1, recorded in the manifest); the shipped files hold nothing that
  depends on the clock, so the same command on the same machine and thread count writes
  the same bytes.
* **Resumable**: a run writes a checkpoint under ``artifacts/pretrain/<name>/`` at every
  evaluation (``steps_per_epoch``, a multiple of the history and NU-GAN intervals); killed and started again with the same command, it
  continues from there and ends with the same files (a resumed run is bit-identical).
  A finished run is written at once (atomically) with its manifest entry, so a sweep
  stopped half-way keeps every run that finished; the entry goes in under the manifest's
  lock (``references.update_manifest``), so two commands at once keep both entries. Every file is written through
  ``gan_utils.core.atomic``: a ``kill -9`` at any moment leaves each file whole (old or
  new), and the same command resumes (tested with ``GAN_UTILS_KILL_AT=step:K``). Ctrl-C
  keeps the checkpoint and prints the command that resumes.
* ``--check NAME`` retrains one run from scratch in a temporary folder and compares it
  with the shipped file: byte for byte when the manifest's machine, thread count and torch
  version are this process's; otherwise the final metrics (relative 1e-5 is not promised
  across machines: the differences are printed).
* ``--device cuda`` trains on a GPU (a clear error without one); GPU runs are not
  bit-identical to CPU runs, and the manifest records the device.

Workers (``--workers N``) train runs side by side in N processes of ``--threads`` threads
each (``gan_utils.core.executor``); the manifest is written by this process only. With
``--cluster ADDRESS`` (or ``$GAN_UTILS_CLUSTER``) the GAN runs train on a Dask cluster's
workers, which need no shared file system: each job carries the manifest and the
classifier, trains in a temporary folder on its worker, and returns its files, which this
process checks against their sha256 and writes. (A worker's checkpoints stay on that
worker: a run resumes only where its worker has them.)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..core.atomic import atomic_write_bytes, atomic_write_text
from ..core.checkpoints import load_checkpoint, save_checkpoint
from ..core.checks import check_bool
from ..core.executor import cluster_address, run_jobs
from ..core.loop import every
from ..core.paths import artifacts_dir
from ..core.report import git_state
from ..core.runtime import get_device
from ..hessian.spectra import spectrum_callback
from .classifier import classifier_payload, load_or_train_classifier
from .mnist import load_mnist
from .recipe import train_image_gan
from .references import (
    CLASSIFIER,
    FORMAT,
    MANIFEST,
    REFERENCES,
    LoadedReference,
    RealDigits,
    ReferenceError,
    config_record,
    final_metrics,
    get_reference,
    load_reference,
    load_reference_classifier,
    metrics_match,
    networks_from_payload,
    pretrained_dir,
    read_manifest,
    real_digit_floors,
    run_payload,
    sha256_of,
    stale_references,
    update_manifest,
    verified_path,
    write_manifest,
)

STOP_AT = "GAN_UTILS_PRETRAIN_STOP_AT"  # tests: interrupt a run after this step (Ctrl-C)


def machine() -> dict[str, Any]:
    """What the manifest records of the machine that trained a run."""
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def _data():
    train, test = load_mnist("train", verbose=False), load_mnist("test", verbose=False)
    return train, test


def _data_record(train, test) -> dict[str, Any]:
    return {
        "source": train.source,
        "origin": train.origin,
        "n_train": len(train),
        "n_test": len(test),
        "train": train.fingerprint,
        "test": test.fingerprint,
    }


def _entry(name: str, threads: int, device: str, seconds: float, files: dict, **more) -> dict:
    reference = get_reference(name)
    return {
        "lesson": reference.lesson,
        "summary": reference.summary,
        "config": config_record(reference),
        "threads": threads,
        "device": device,
        "wall_seconds": round(seconds, 1),
        "machine": machine(),
        "torch": torch.__version__,
        "commit": git_state(),
        "files": files,
        **more,
    }


def _file_record(path: Path) -> dict[str, Any]:
    return {path.name: {"sha256": sha256_of(path), "bytes": path.stat().st_size}}


# ---- one run (in this process or a worker) ------------------------------------------------
def train_classifier_reference(folder: Path, device: str, threads: int) -> dict[str, Any]:
    """Train the classifier entry from scratch and write ``classifier.pt``; its entry."""
    torch.set_num_threads(threads)
    reference = get_reference(CLASSIFIER)
    train, test = _data()
    scratch = Path(tempfile.mkdtemp(prefix="classifier-", dir=artifacts_dir("pretrain")))
    try:
        model = load_or_train_classifier(
            reference.classifier,
            train,
            test,
            path=scratch / "c.pt",
            device=device,
            retrain=True,
            verbose=False,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    path = save_checkpoint(folder / reference.file_name, classifier_payload(model, shipped=True))
    return {
        "name": CLASSIFIER,
        **_entry(
            CLASSIFIER,
            threads,
            device,
            model.record.train_seconds,
            _file_record(path),
            data=_data_record(train, test),
            steps=reference.classifier.num_steps,
            seed=reference.classifier.seed,
            metrics={"test_accuracy": model.record.test_accuracy},
        ),
    }


def _wall_clock(folder: Path, start: float, before: float, interval: int):
    """A callback keeping the run's cumulative wall time beside its checkpoint."""

    def write(state) -> None:
        seconds = before + time.perf_counter() - start
        atomic_write_text(
            folder / "wall.json", json.dumps({"step": state.step, "seconds": seconds})
        )

    return every(interval, write)


def _stop_after(step: int):
    """A callback raising KeyboardInterrupt after ``step`` (as Ctrl-C would)."""

    def stop(state) -> None:
        if state.step >= step:
            raise KeyboardInterrupt(f"{STOP_AT}={step}")

    return every(1, stop)


def _train_as_shipped(
    name: str, config, folder: Path | None, callbacks=(), **saving
) -> tuple[Any, dict[str, torch.nn.Module], dict[str, Any], dict[str, Any]]:
    """Train reference ``name`` with ``config`` through the recipe, round its weights as a
    shipped file stores them, and score the rounded generator at the fixed draws.

    The registry's extra callbacks (the spectra of the dense runs) are added here, so a
    run trained for a lesson has the history a shipped one has. Returns (the recipe's run,
    the payload of ``pretrained/<name>.pt``, its networks, the final metrics).
    """
    reference = get_reference(name)
    train, test = _data()
    classifier = load_reference_classifier(folder=folder)
    real = RealDigits.build(classifier, train, test)
    extra = []
    if reference.spectra_every:
        extra.append(
            spectrum_callback(reference.spectra_every, k=3, data=train.images, max_iterations=20)
        )
    run = train_image_gan(
        config,
        train.images,
        classifier,
        real.train_stats,
        [*extra, *callbacks],
        **saving,
    )
    trained = {"generator": run.generator, "critic": run.critic, "encoder": run.encoder}
    payload = run_payload(name, config, trained, run.history)
    networks = networks_from_payload(payload)  # the rounded weights, as shipped
    run.extras["data"] = _data_record(train, test)
    return run, payload, networks, final_metrics(networks["generator"], config, classifier, real)


def train_gan_reference(name: str, folder: Path, device: str, threads: int) -> dict[str, Any]:
    """Train (or resume) one GAN reference, write ``<name>.pt``; its manifest entry."""
    torch.set_num_threads(threads)
    reference = get_reference(name)
    config = dataclasses.replace(reference.config, device=device)
    work = artifacts_dir("pretrain", name)
    checkpoint = work / "checkpoint.pt"
    identity = {
        "code": git_state().split("+")[0],  # a checkpoint of other code is not resumed
        "config": config_record(reference),
        "device": str(get_device(device)),
        "threads": threads,
        "classifier": _classifier_sha(folder),
    }
    resume, before = _resumable(work, identity, name)
    start = time.perf_counter()
    callbacks = [_wall_clock(work, start, before, config.steps_per_epoch)]
    if os.environ.get(STOP_AT):
        callbacks.append(_stop_after(int(os.environ[STOP_AT])))
    try:
        run, payload, _, metrics = _train_as_shipped(
            name,
            config,
            folder,
            callbacks,
            checkpoint_path=checkpoint,
            checkpoint_every=config.steps_per_epoch,
            resume_from=resume,
        )
    except KeyboardInterrupt:
        print(
            f"{name}: interrupted; its checkpoint in {work} is kept: run the same command "
            f"again (python -m gan_utils.images.pretrain {name}) to resume from it.",
            flush=True,
        )
        raise
    seconds = before + time.perf_counter() - start
    path = save_checkpoint(folder / reference.file_name, payload)
    shutil.rmtree(work, ignore_errors=True)  # the shipped file is the result now
    return {
        "name": name,
        **_entry(
            name,
            threads,
            str(get_device(device)),
            seconds,
            _file_record(path),
            data=run.extras["data"],
            steps=config.num_steps,
            batch_size=config.batch_size,
            seed=config.seed,
            metrics=metrics,
            classifier=identity["classifier"],
            format=FORMAT,
        ),
    }


def _classifier_sha(folder: Path) -> str:
    return read_manifest(folder)["runs"][CLASSIFIER]["files"][f"{CLASSIFIER}.pt"]["sha256"]


def _resumable(work: Path, identity: dict[str, Any], name: str) -> tuple[Path | None, float]:
    """(checkpoint to resume from or None, wall seconds already spent) for a run's folder.

    The folder's ``run.json`` names the code commit, config, device, threads and
    classifier its checkpoint was made with; a checkpoint of anything else is discarded
    with a message (a resumed run is bit-identical only with the same code).
    """
    checkpoint, record = work / "checkpoint.pt", work / "run.json"
    stored = json.loads(record.read_text()) if record.is_file() else None
    if stored == identity and checkpoint.is_file():
        wall = work / "wall.json"
        before = json.loads(wall.read_text())["seconds"] if wall.is_file() else 0.0
        step = load_checkpoint(checkpoint)["step"]
        print(f"{name}: resuming from step {step} ({checkpoint})", flush=True)
        return checkpoint, before
    if checkpoint.is_file():
        print(f"{name}: the checkpoint in {work} was made with other settings; starting afresh")
    for old in (checkpoint, work / "wall.json"):
        old.unlink(missing_ok=True)
    atomic_write_text(record, json.dumps(identity))
    return None, 0.0


def train_reference(name: str, folder: str, device: str, threads: int) -> dict[str, Any]:
    """One entry of the registry, trained and written; returns its manifest entry."""
    folder = Path(folder)
    if name == CLASSIFIER:
        return train_classifier_reference(folder, device, threads)
    return train_gan_reference(name, folder, device, threads)


def train_reference_elsewhere(
    name: str, manifest_text: str, classifier: bytes, device: str, threads: int
) -> dict[str, Any]:
    """``train_reference`` for a worker without this machine's files: the manifest and
    the classifier's file come with the job, the run trains in a temporary folder, and the
    entry comes back with its files' bytes under ``"contents"`` (``_record`` writes them)."""
    with tempfile.TemporaryDirectory(prefix="pretrain-") as tmp:
        folder = Path(tmp)
        atomic_write_text(folder / MANIFEST, manifest_text)
        atomic_write_bytes(folder / get_reference(CLASSIFIER).file_name, classifier)
        entry = train_reference(name, tmp, device, threads)
        entry["contents"] = {file: (folder / file).read_bytes() for file in entry["files"]}
    return entry


# ---- for the lessons -----------------------------------------------------------------------
def reference_run(
    name: str, use_pretrained: bool = True, device: str = "auto", log=print
) -> LoadedReference:
    """A reference run for a lesson: the shipped one (verified, ``load_reference``), or with
    ``use_pretrained=False`` trained here through the same recipe from the registry's config
    (hours on a CPU, minutes on a GPU; nothing under ``pretrained/`` is written), its
    weights rounded as a shipped file's, and scored with the shipped classifier at the same
    fixed draws: on the machine that made the shipped files it reproduces them exactly."""
    check_bool("use_pretrained", use_pretrained)
    reference = get_reference(name)
    if use_pretrained:
        return load_reference(name)
    config = dataclasses.replace(reference.config, device=str(get_device(device)))
    log(f"{name}: training here ({config.num_steps:,} steps; use_pretrained=True loads it)")
    run, _, networks, metrics = _train_as_shipped(name, config, None)
    return LoadedReference(
        name=name,
        config=dataclasses.replace(config, device="cpu"),
        generator=networks["generator"],
        history=run.history,
        metrics=metrics,
        entry={"data": run.extras["data"], "wall_seconds": run.seconds},
        encoder=networks.get("encoder"),
    )


# ---- the command --------------------------------------------------------------------------
def up_to_date(name: str, folder: Path) -> bool:
    """Whether ``name`` is shipped, matches the manifest's sha256 and the registry's config."""
    try:
        verified_path(name, folder)
    except ReferenceError:
        return False
    return True


def pretrain(
    names: Sequence[str] = (),
    device: str = "cpu",
    workers: int = 1,
    threads: int = 1,
    force: bool = False,
    folder: Path | None = None,
    log=print,
    cluster: str | None = None,
) -> dict[str, Any]:
    """Bring ``names`` (default: the whole registry) up to date; returns the manifest.
    The classifier trains here; the GAN runs in ``workers`` local processes, or on the
    Dask scheduler ``cluster`` (module doc)."""
    folder = Path(folder) if folder is not None else pretrained_dir()
    names = list(dict.fromkeys(names or REFERENCES))
    for name in names:
        get_reference(name)
    get_device(device)  # "cuda" without a GPU: a clear error before anything trains
    read_manifest(folder)  # a broken manifest fails here, before anything trains
    retrain_classifier = (CLASSIFIER in names and force) or not up_to_date(CLASSIFIER, folder)
    if retrain_classifier:  # it scores every other run: first, and they follow if it changed
        log(f"{CLASSIFIER}: training")
        _record(folder, train_reference(CLASSIFIER, str(folder), device, threads), log)
    elif CLASSIFIER in names:
        log(f"{CLASSIFIER}: up to date")
    gans = [n for n in names if n != CLASSIFIER]
    todo = [n for n in gans if force or not up_to_date(n, folder)]
    for name in gans:
        log(
            f"{name}: {'training (' + get_reference(name).summary + ')' if name in todo else 'up to date'}"
        )
    if retrain_classifier or todo:
        _record_floors(folder)
    record = lambda entry: _record(folder, entry, log)  # noqa: E731
    if cluster_address(cluster) is None:
        jobs = [(name, str(folder), device, threads) for name in todo]
        run_jobs(train_reference, jobs, workers, threads=threads, on_result=record)
    elif todo:
        manifest_text = (folder / MANIFEST).read_text()
        classifier = (folder / get_reference(CLASSIFIER).file_name).read_bytes()
        jobs = [(name, manifest_text, classifier, device, threads) for name in todo]
        run_jobs(
            train_reference_elsewhere, jobs, cluster=cluster, threads=threads, on_result=record
        )
    return read_manifest(folder)


def _record(folder: Path, entry: dict[str, Any], log) -> dict[str, Any]:
    name = entry.pop("name")
    for file, content in entry.pop("contents", {}).items():  # trained on another machine
        expected = entry["files"][file]["sha256"]
        if hashlib.sha256(content).hexdigest() != expected:
            raise ReferenceError(
                f"{name}: the {file} that came back from its worker does not match its "
                f"sha256 {expected}; nothing was written: run the command again"
            )
        atomic_write_bytes(folder / file, content)
    manifest = update_manifest(lambda m: m["runs"].__setitem__(name, entry), folder)
    size = sum(f["bytes"] for f in entry["files"].values())
    log(f"{name}: written ({size / 1e6:.2f} MB, {entry['wall_seconds']:.0f} s)")
    return manifest


def _record_floors(folder: Path) -> dict[str, Any]:
    """The real-digit floors in the manifest, scored with the shipped classifier."""
    classifier = load_reference_classifier(folder=folder)
    train, test = _data()
    real = RealDigits.build(classifier, train, test)
    floors = {"data": _data_record(train, test), "metrics": real_digit_floors(classifier, real)}
    return update_manifest(lambda m: m.__setitem__("real_digits", floors), folder)


def check(
    name: str, device: str = "cpu", threads: int = 1, folder: Path | None = None, log=print
) -> bool:
    """Retrain ``name`` from scratch and compare it with the shipped file; True when equal."""
    folder = Path(folder) if folder is not None else pretrained_dir()
    path, entry = verified_path(name, folder)
    with tempfile.TemporaryDirectory(dir=artifacts_dir()) as scratch:
        scratch = Path(scratch)
        if name != CLASSIFIER:
            shutil.copy(folder / get_reference(CLASSIFIER).file_name, scratch)
            write_manifest(
                {"runs": {CLASSIFIER: read_manifest(folder)["runs"][CLASSIFIER]}}, scratch
            )
        work = artifacts_dir("pretrain", name)
        shutil.rmtree(work, ignore_errors=True)  # from scratch, not from a checkpoint
        fresh = train_reference(name, str(scratch), device, threads)
        same_machine = (
            entry["machine"] == machine()
            and entry["threads"] == threads
            and entry["torch"] == torch.__version__
            and entry.get("device", "cpu") == fresh["device"]
        )
        if same_machine:
            new = scratch / path.name
            equal = new.read_bytes() == path.read_bytes()
            log(
                f"{name}: retrained file {'equals' if equal else 'DIFFERS FROM'} the shipped one byte for byte (same machine, {threads} thread(s), torch {torch.__version__})"
            )
            return equal
        bad = metrics_match(entry["metrics"], fresh["metrics"])
        log(
            f"{name}: another machine or thread count than the manifest's: compared the final metrics"
        )
        for key in entry["metrics"]:
            if key != "class_counts":
                log(
                    f"  {key}: shipped {entry['metrics'][key]!r}, retrained {fresh['metrics'][key]!r}"
                )
        return not bad


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gan_utils.images.pretrain",
        description="Train the course's reference models and write them to pretrained/.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="references to train (default: all that are not up to date)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        choices=["auto", "cpu", "cuda"],
        help="where to train (default cpu: the shipped files are CPU runs)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="runs trained side by side (default 1)"
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads per run (default 1; recorded)"
    )
    parser.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="train the GAN runs on a Dask scheduler (e.g. tcp://host:8786; default "
        "$GAN_UTILS_CLUSTER); needs pip install -e '.[cluster]'",
    )
    parser.add_argument(
        "--force", action="store_true", help="retrain the named runs even if up to date"
    )
    parser.add_argument(
        "--check", metavar="NAME", help="retrain NAME and compare it with the shipped file"
    )
    parser.add_argument(
        "--list", action="store_true", help="list the registry and the state of each run"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    for name in args.names + ([args.check] if args.check else []):
        if name not in REFERENCES:
            print(f"unknown reference {name!r}; known: {', '.join(REFERENCES)}", file=sys.stderr)
            return 2
    for flag in ("workers", "threads"):
        if getattr(args, flag) < 1:
            print(f"--{flag} must be an integer >= 1, got {getattr(args, flag)}", file=sys.stderr)
            return 2
    try:
        get_device(args.device)
    except (RuntimeError, ValueError) as error:
        print(f"--device {args.device}: {error}", file=sys.stderr)
        return 2
    folder = pretrained_dir()
    if args.list:
        stale = stale_references(folder)
        for name, reference in REFERENCES.items():
            state = "up to date" if up_to_date(name, folder) else stale.get(name, "not built")
            print(f"{name:28s} {reference.lesson:20s} {state}")
        return 0
    if args.check:
        return 0 if check(args.check, args.device, args.threads, folder) else 1
    started = time.perf_counter()
    pretrain(
        args.names, args.device, args.workers, args.threads, args.force, folder,
        cluster=args.cluster,
    )  # fmt: skip
    print(f"done in {time.perf_counter() - started:.0f} s; manifest: {folder / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
