r"""One toy run of lesson 02, and sweeps over variants x datasets x seeds.

``train_toy`` trains one (variant, dataset, seed) with ``ToySettings`` (sizes, budget,
optimiser; by default Adam at lr 1e-3 decaying linearly to 0 over the second half of the
steps, which lets the last steps settle instead of jittering around the modes) and
returns the metrics of ``gan_utils.toy.coverage`` on 2,500 samples, sample snapshots
and steps/s. ``train_many`` runs a list of them, optionally in worker processes (one per
core); ``sweep`` does variants x datasets x seeds and ``SweepResult`` summarises mean +/-
std over seeds. Used by lesson 02, ``gan-toy`` and ``gan_utils.toy.explorer``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ..core.atomic import atomic_write_text
from ..core.checks import (
    check_betas,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_probability,
)
from ..core.executor import run_jobs, runs_here
from ..core.history import History
from ..core.latent import fixed_latents, generate
from ..core.loop import Callback, DivergenceError, every
from ..core.mlp import mlp_critic, mlp_generator
from ..core.remedies import PackedCritic
from ..core.runtime import DEVICE_CHOICES, get_device, set_seed
from ..core.train import OPTIMIZERS, TrainConfig, linear_lr_decay, train
from ..core.variants import Variant, get_variant
from .coverage import ModeCoverage, evaluate_coverage
from .mixtures import GaussianMixture, get_toy_dataset


@dataclass(frozen=True)
class ToySettings:
    """Everything of a toy run except the variant, the dataset and the seed."""

    num_steps: int = 2000  # generator steps
    batch_size: int = 256  # samples per critic and per generator step
    latent_dim: int = 2  # size of z
    width: int = 128  # units per hidden layer of G and D
    depth: int = 3  # hidden layers of G and D (the repository: 4 x 256)
    optimizer: str = "adam"  # "adam", "rmsprop" (the repository: lr 1e-4) or "sgd"
    lr: float = 1e-3  # learning rate of G (and of D unless ``lr_d`` is set)
    lr_d: float | None = None  # the critic's learning rate (None: ``lr``; Metz et al.: lr / 10)
    betas: tuple[float, float] = (0.5, 0.9)  # Adam's betas
    lr_decay_from: float | None = 0.5  # lr decays linearly to 0 after this share (None: off)
    paper_optimizers: bool = False  # variants with a paper's optimiser use it (not ``lr``...)
    n_critic: int | None = None  # None: the variant's own (5 for the Wasserstein family)
    clip_value: float | None = None  # None: the variant's own (0.01 for wasserstein_clip)
    topk_gamma: float = 0.99  # top-k: k = max(gamma^epoch * B, nu * B)
    topk_nu: float = 0.5
    steps_per_epoch: int | None = None  # None: ceil(num_real_samples / B), or 20
    num_real_samples: int | None = None  # None: fresh samples every batch; N: a fixed set
    num_snapshots: int = 0  # sample snapshots over training (plus one before training)
    snapshot_samples: int = 500  # points per snapshot (a fixed z batch)
    eval_samples: int = 2500  # samples for the metrics (2,500 in every table of the course)
    device: str = "auto"  # "auto", "cpu", "cuda", "mps"
    log_every: int = 50  # steps between history rows

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Raise naming the first bad field and its allowed values (``gan_utils.core.checks``:
        TypeError for a value of the wrong type, ValueError for one out of range); called
        by the constructor and by ``dataclasses.replace``."""
        for name in ("num_steps", "batch_size", "latent_dim", "width", "eval_samples"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("depth", "num_snapshots"):
            check_int(name, getattr(self, name), minimum=0)
        check_int("snapshot_samples", self.snapshot_samples, minimum=1)
        for name in ("n_critic", "steps_per_epoch", "num_real_samples"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_number("lr", self.lr, minimum=0, min_open=True)
        if self.lr_d is not None:
            check_number("lr_d", self.lr_d, minimum=0, min_open=True)
        check_betas("betas", self.betas)
        if self.clip_value is not None:
            check_number("clip_value", self.clip_value, minimum=0, min_open=True)
        if self.lr_decay_from is not None:
            check_number("lr_decay_from", self.lr_decay_from, 0, 1, max_open=True)
        check_probability("topk_gamma", self.topk_gamma, min_open=True)
        check_probability("topk_nu", self.topk_nu, min_open=True)
        check_int("log_every", self.log_every, minimum=1)
        check_bool("paper_optimizers", self.paper_optimizers)
        if not isinstance(self.device, (str, torch.device)):
            raise TypeError(
                f"device must be one of {DEVICE_CHOICES} (or 'cuda:<index>', or a torch.device), "
                f"got {self.device!r} ({type(self.device).__name__})"
            )

    def epoch_length(self) -> int:
        """Generator steps per top-k epoch: ceil(num_real_samples / batch_size), else 20."""
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        if self.num_real_samples is not None:
            return max(1, math.ceil(self.num_real_samples / self.batch_size))
        return 20


REPOSITORY_SETTINGS = ToySettings(
    num_steps=10_000,  # 500 epochs of 20 steps
    batch_size=500,
    latent_dim=32,
    width=256,
    depth=4,
    optimizer="rmsprop",
    lr=1e-4,
    lr_decay_from=None,
    num_real_samples=10_000,
)  # the Mode_Collapse repository's settings (its README's defaults)


@dataclass
class ToyRun:
    """One trained (variant, dataset, seed): its metrics, snapshots and speed."""

    variant: str
    dataset: str
    seed: int
    metrics: ModeCoverage
    snapshots: list[tuple[int, np.ndarray]]  # (generator step, samples (n, 2)) over training
    steps_per_second: float  # generator steps per second of training
    seconds: float  # wall time of training
    diverged: bool  # a loss became NaN/inf (metrics then describe the last weights)
    history: History | None = field(default=None, repr=False)
    generator: nn.Module | None = field(default=None, repr=False)
    critic: nn.Module | None = field(default=None, repr=False)
    settings: ToySettings | None = field(default=None, repr=False)

    def row(self) -> dict:
        """A flat dict for tables (per run)."""
        return {
            "variant": self.variant,
            "dataset": self.dataset,
            "seed": self.seed,
            **self.metrics.as_dict(),
            "steps_per_second": self.steps_per_second,
            "diverged": self.diverged,
        }


def build_models(
    variant: Variant, mixture: GaussianMixture, settings: ToySettings
) -> tuple[nn.Module, nn.Module]:
    """The generator and critic MLPs of a toy run (uses the global RNG for their weights);
    a PacGAN critic takes ``pack * dim`` inputs and is wrapped in a ``PackedCritic``."""
    generator = mlp_generator(settings.latent_dim, mixture.dim, settings.width, settings.depth)
    critic = mlp_critic(
        mixture.dim * variant.pack, settings.width, settings.depth, **variant.critic_options()
    )
    if variant.pack > 1:
        critic = PackedCritic(critic, variant.pack)
    return generator, critic


def toy_train_config(variant: Variant, seed: int, settings: ToySettings) -> TrainConfig:
    """The ``TrainConfig`` of a toy run: the variant's fields plus the settings'; with
    ``settings.paper_optimizers`` a variant's ``paper_optimizer`` replaces the settings'
    optimiser, learning rate and betas (the schedule and everything else stay)."""
    changes = {
        "latent_dim": settings.latent_dim,
        "batch_size": settings.batch_size,
        "num_steps": settings.num_steps,
        "lr_g": settings.lr,
        "lr_d": settings.lr if settings.lr_d is None else settings.lr_d,
        "betas": tuple(settings.betas),
        "optimizer": settings.optimizer,
        "topk_gamma": settings.topk_gamma,
        "topk_nu": settings.topk_nu,
        "steps_per_epoch": settings.epoch_length(),
        "seed": int(seed),
        "device": settings.device,
        "log_every": min(settings.log_every, settings.num_steps),
        "progress": False,
    }
    paper = variant.paper_optimizer
    if settings.paper_optimizers and paper is not None:
        changes.update(optimizer=paper.optimizer, lr_g=paper.lr, lr_d=paper.lr)
        if paper.optimizer == "adam":
            changes["betas"] = tuple(paper.betas)
    if settings.n_critic is not None:
        changes["n_critic"] = settings.n_critic
    if settings.clip_value is not None and variant.clip_value is not None:
        changes["clip_value"] = settings.clip_value
    return variant.train_config(**changes)


def train_toy(
    variant: str | Variant,
    dataset: str = "grid",
    seed: int = 0,
    settings: ToySettings | None = None,
    callbacks: Sequence[Callback] = (),
) -> ToyRun:
    """Train one variant on one toy dataset from one seed; evaluate it on 2,500 samples.

    The seed fixes the weights, the real data, the latents of training, the snapshot
    latents and the evaluation latents. A run whose loss becomes NaN/inf is not an
    error here: it is reported with ``diverged=True`` (that is a result of the lesson).

    Args:
        variant: a name of ``VARIANTS`` (or alias), or a ``Variant``.
        dataset: "ring", "grid" or "wide_ring".
        seed: a non-negative integer.
        settings: sizes, budget and optimiser (``ToySettings()`` if None).
        callbacks: extra training callbacks (``gan_utils.core.loop.Callback``; the widget's
            live plot and Stop).

    Returns:
        A ``ToyRun``.
    """
    variant = get_variant(variant)
    seed = check_int("seed", seed, minimum=0)
    settings = settings or ToySettings()
    settings.validate()
    device = get_device(settings.device)
    mixture = get_toy_dataset(dataset, device)
    config = toy_train_config(variant, seed, settings)
    config.validate()

    set_seed(seed)  # model weights
    generator, critic = build_models(variant, mixture, settings)
    generator.to(device)
    critic.to(device)
    if settings.num_real_samples is None:
        data = mixture  # fresh samples from torch's global RNG (seeded by train)
    else:
        rng = torch.Generator(device=device).manual_seed(int(seed))
        data = mixture.sample(settings.num_real_samples, generator=rng)  # (N, 2), a fixed set

    snapshots: list[tuple[int, np.ndarray]] = []
    all_callbacks = list(callbacks)
    if settings.num_snapshots:
        z_fixed = fixed_latents(settings.snapshot_samples, settings.latent_dim, seed=seed + 1)
        z_fixed = z_fixed.to(device)
        snapshots.append((0, generate(generator, z_fixed, batch_size=None).numpy()))
        interval = max(1, settings.num_steps // settings.num_snapshots)

        def snapshot(state) -> None:
            snapshots.append(
                (state.step, generate(state.generator, z_fixed, batch_size=None).numpy())
            )

        all_callbacks.insert(0, every(interval, snapshot))

    if settings.lr_decay_from is not None:
        start = int(settings.lr_decay_from * settings.num_steps)
        all_callbacks.insert(0, linear_lr_decay(start, settings.num_steps))

    diverged = False
    history = History()
    try:
        history = train(generator, critic, data, config, callbacks=all_callbacks)
    except DivergenceError:
        diverged = True
    seconds = history.extras.get("seconds", float("nan"))
    steps = history.extras.get("steps", 0)
    metrics = evaluate_coverage(
        generator, mixture, settings.latent_dim, settings.eval_samples, seed=12345 + seed
    )
    return ToyRun(
        variant=variant.name,
        dataset=dataset,
        seed=int(seed),
        metrics=metrics,
        snapshots=snapshots,
        steps_per_second=steps / seconds if seconds and seconds > 0 else float("nan"),
        seconds=seconds,
        diverged=diverged,
        history=history,
        generator=generator,
        critic=critic,
        settings=settings,
    )


# ---- sweeps ---------------------------------------------------------------------------------
SUMMARY_METRICS = (
    "modes_covered",
    "modes_hit",
    "high_quality_percent",
    "kl_to_uniform",
    "near_few_percent",
)
VERDICTS = ("collapsed", "covering", "partial", "blurry")


def verdict_counts(runs: Sequence[ToyRun], verdict: str) -> int:
    """How many of ``runs`` got ``verdict`` (``ModeCoverage.verdict``)."""
    check_choice("verdict", verdict, VERDICTS)
    return sum(r.metrics.verdict() == verdict for r in runs)


def verdicts_text(row: dict) -> str:
    """The verdict counts of a ``SweepResult.summary`` row: "collapsed 3, blurry 2"."""
    return ", ".join(f"{v} {row[v]}" for v in VERDICTS if row[v])


def _mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample std (ddof=1; NaN for one value) and count of the finite values."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return math.nan, math.nan, 0
    std = float(finite.std(ddof=1)) if finite.size > 1 else math.nan
    return float(finite.mean()), std, int(finite.size)


@dataclass
class SweepResult:
    """The runs of a sweep and their summary: mean +/- std over seeds per (variant, dataset)."""

    runs: list[ToyRun]

    def summary(self) -> list[dict]:
        """One row per (variant, dataset) in run order: ``<metric>_mean``, ``<metric>_std``
        (ddof=1), ``num_seeds``; the KL mean is over the seeds where KL is defined
        (``kl_defined`` of ``num_seeds``)."""
        groups: dict[tuple[str, str], list[ToyRun]] = {}
        for run in self.runs:
            groups.setdefault((run.variant, run.dataset), []).append(run)
        rows = []
        for (variant, dataset), runs in groups.items():
            row = {
                "variant": variant,
                "dataset": dataset,
                "num_seeds": len(runs),
                "num_modes": runs[0].metrics.num_modes,
            }
            for key in SUMMARY_METRICS:
                mean, std, count = _mean_std([getattr(r.metrics, key) for r in runs])
                row[f"{key}_mean"], row[f"{key}_std"] = mean, std
                if key == "kl_to_uniform":
                    row["kl_defined"] = count
            row["steps_per_second"] = _mean_std([r.steps_per_second for r in runs])[0]
            row["diverged"] = sum(r.diverged for r in runs)
            for verdict in VERDICTS:
                row[verdict] = verdict_counts(runs, verdict)
            rows.append(row)
        return rows

    def row(self, variant: str, dataset: str) -> dict:
        """The summary row of one (variant, dataset)."""
        for row in self.summary():
            if row["variant"] == variant and row["dataset"] == dataset:
                return row
        raise KeyError(f"no runs of variant={variant!r} on dataset={dataset!r}")

    def ranking(self, dataset: str) -> list[dict]:
        """Summary rows of ``dataset``, best first: most modes covered, then most % HQ."""
        rows = [r for r in self.summary() if r["dataset"] == dataset]
        if not rows:
            raise KeyError(f"no runs on dataset={dataset!r}")
        return sorted(
            rows,
            key=lambda r: (
                -_nan_to(r["modes_covered_mean"]),
                -_nan_to(r["high_quality_percent_mean"]),
            ),
        )

    def to_markdown(self) -> str:
        """The summary as a Markdown table (mean +/- std over seeds, verdicts counted)."""
        lines = [
            "| variant | dataset | seeds | modes covered (>= 20 HQ) | modes hit (>= 1 HQ) "
            "| % HQ | % near <= K/2 modes | KL(HQ hist. ‖ uniform), nats | verdicts "
            "| steps/s | diverged |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
        ]
        for r in self.summary():
            k = r["num_modes"]
            kl = mean_std_text(r["kl_to_uniform_mean"], r["kl_to_uniform_std"], 2)
            if r["kl_defined"] < r["num_seeds"]:
                kl += f" ({r['num_seeds'] - r['kl_defined']} NaN: no HQ sample)"
            verdicts = verdicts_text(r)
            lines.append(
                f"| {r['variant']} | {r['dataset']} | {r['num_seeds']} "
                f"| {mean_std_text(r['modes_covered_mean'], r['modes_covered_std'], 1)} / {k} "
                f"| {mean_std_text(r['modes_hit_mean'], r['modes_hit_std'], 1)} / {k} "
                f"| {mean_std_text(r['high_quality_percent_mean'], r['high_quality_percent_std'], 1)} "
                f"| {mean_std_text(r['near_few_percent_mean'], r['near_few_percent_std'], 1)} "
                f"| {kl} | {verdicts} | {r['steps_per_second']:.0f} | {r['diverged']} |"
            )
        return "\n".join(lines)

    def runs_markdown(self, label: Callable[[ToyRun], str] | None = None) -> str:
        """One row per run (the per-seed numbers behind ``to_markdown``); ``label(run)``
        replaces the variant's name in the first column (e.g. to add a setting)."""
        lines = [
            "| variant | dataset | seed | modes covered | modes hit | % HQ "
            "| % near <= K/2 modes | KL, nats | verdict | steps/s |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
        ]
        for run in self.runs:
            m = run.metrics
            lines.append(
                f"| {run.variant if label is None else label(run)} | {run.dataset} | {run.seed} "
                f"| {m.modes_covered} / {m.num_modes} | {m.modes_hit} / {m.num_modes} "
                f"| {m.high_quality_percent:.1f} | {m.near_few_percent:.1f} "
                f"| {m.kl_to_uniform:.2f} | {m.verdict()}"
                + (" (diverged)" if run.diverged else "")
                + f" | {run.steps_per_second:.0f} |"
            )
        return "\n".join(lines)

    def write_csv(self, path: str | Path) -> Path:
        """Write the summary as CSV, atomically (old table or new one); returns the path."""
        rows = self.summary()
        return _write_csv(path, list(rows[0]), rows)


RUN_COLUMNS = (
    "variant",
    "dataset",
    "seed",
    "modes_covered",
    "modes_hit",
    "num_modes",
    "high_quality_percent",
    "kl_to_uniform",
    "num_samples",
    "hq_counts",
    "near_few_percent",
    "near_counts",
    "verdict",
    "steps_per_second",
    "seconds",
    "diverged",
    "settings",
)


def _write_csv(path: str | Path, columns: Sequence[str], rows: Sequence[dict]) -> Path:
    """Rows as CSV at ``path``, written atomically (``gan_utils.core.atomic``)."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def write_runs_csv(runs: Sequence[ToyRun], path: str | Path, settings_text: str = "") -> Path:
    """One row per run (metrics, per-mode HQ counts, speed, a text of the settings), so a
    sweep can be resumed or extended (``read_runs_csv``); returns the path. Written
    atomically: a sweep killed while saving keeps the previous table whole."""
    rows = []
    for run in runs:
        m = run.metrics
        rows.append(
            {
                "variant": run.variant,
                "dataset": run.dataset,
                "seed": run.seed,
                **m.as_dict(),
                "hq_counts": " ".join(str(n) for n in m.hq_counts),
                "near_counts": " ".join(str(n) for n in m.near_counts),
                "steps_per_second": run.steps_per_second,
                "seconds": run.seconds,
                "diverged": int(run.diverged),
                "settings": settings_text,
            }
        )
    return _write_csv(path, RUN_COLUMNS, rows)


def read_runs_csv(path: str | Path) -> list[tuple[ToyRun, str]]:
    """The runs of ``write_runs_csv`` (metrics only: no models, history or snapshots),
    each with the settings text it was written with."""
    out = []
    with Path(path).open(newline="") as handle:
        for row in csv.DictReader(handle):
            metrics = ModeCoverage(
                modes_covered=int(row["modes_covered"]),
                modes_hit=int(row["modes_hit"]),
                num_modes=int(row["num_modes"]),
                high_quality_percent=float(row["high_quality_percent"]),
                kl_to_uniform=float(row["kl_to_uniform"]),
                num_samples=int(row["num_samples"]),
                hq_counts=tuple(int(n) for n in row["hq_counts"].split()),
                near_counts=tuple(int(n) for n in (row.get("near_counts") or "").split()),
            )
            run = ToyRun(
                variant=row["variant"],
                dataset=row["dataset"],
                seed=int(row["seed"]),
                metrics=metrics,
                snapshots=[],
                steps_per_second=float(row["steps_per_second"]),
                seconds=float(row["seconds"]),
                diverged=bool(int(row["diverged"])),
            )
            out.append((run, row["settings"]))
    return out


def _nan_to(value: float, fill: float = -1.0) -> float:
    return fill if value is None or not math.isfinite(value) else value


def mean_std_text(mean: float, std: float, digits: int) -> str:
    """ "mean ± std" with ``digits`` decimals; the mean alone without a finite std (one
    seed), "NaN" without a finite mean."""
    if not math.isfinite(mean):
        return "NaN"
    if not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _train_toy_in_worker(
    variant: Variant, dataset: str, seed: int, settings: ToySettings | None
) -> ToyRun:
    """``train_toy`` in a worker process; the result must be picklable, so spectral-norm
    parametrisations are folded into plain weights (W / sigma(W) as trained)."""
    run = train_toy(variant, dataset, seed, settings)
    for module in run.critic.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return run


def train_many(
    jobs: Sequence[tuple[str | Variant, str, int, ToySettings | None]],
    workers: int = 1,
    on_run: Callable[[ToyRun], None] | None = None,
    *,
    cluster: str | None = None,
    keep_going: bool = False,
    threads: int | str = "auto",
) -> list[ToyRun]:
    """``train_toy`` for each (variant, dataset, seed, settings) job, in order.

    Args:
        jobs: the runs to train; each may have its own settings.
        workers: runs trained side by side in separate processes (``threads`` each)
            (``gan_utils.core.executor``; 2 on a 2-core machine); 1 trains them one after
            the other in this process. A run's numbers do not depend on ``workers``
            beyond float rounding.
        on_run: called after each run, in the order of ``jobs`` (e.g. to print progress).
        cluster: a Dask scheduler address (or ``$GAN_UTILS_CLUSTER``): the runs train on its
            workers and come back here.
        keep_going: a run that fails becomes a ``gan_utils.core.executor.JobFailure`` in
            the list (and in ``on_run``) and the others still train; False raises.
        threads: torch threads of each worker process, a count or "auto" (the usable cores
            // workers, or ``$OMP_NUM_THREADS``; ``core.runtime.resolve_threads``); runs
            trained here keep this process's threads.
    """
    check_int("workers", workers, minimum=1)
    jobs = [(get_variant(v), d, check_int("seed", s, minimum=0), st) for v, d, s, st in jobs]
    for _, dataset, _, settings in jobs:
        get_toy_dataset(dataset)  # fail before training on a bad name
        (settings or ToySettings()).validate()
    function = train_toy if runs_here(workers, len(jobs), cluster) else _train_toy_in_worker
    return run_jobs(
        function, jobs, workers, cluster=cluster, threads=threads, on_result=on_run,
        keep_going=keep_going,
    )  # fmt: skip


def sweep(
    variants: Sequence[str | Variant],
    datasets: Sequence[str] = ("grid",),
    seeds: Sequence[int] = (0, 1),
    settings: ToySettings | None = None,
    on_run: Callable[[ToyRun], None] | None = None,
    workers: int = 1,
) -> SweepResult:
    """Train every (variant, dataset, seed) with the same settings (see ``train_many``).

    Args:
        variants: names (or ``Variant`` objects); all are checked before training starts.
        datasets: toy dataset names.
        seeds: one run per seed.
        settings: shared by every run.
        on_run: called after each run, in order (e.g. to print progress).
        workers: runs trained side by side in worker processes (see ``train_many``).

    Returns:
        A ``SweepResult`` with the runs in the order variant, dataset, seed.
    """
    chosen = [get_variant(v) for v in variants]
    if not chosen or not datasets or not seeds:
        raise ValueError("variants, datasets and seeds must each hold at least one value")
    jobs = [(v, d, s, settings) for v in chosen for d in datasets for s in seeds]
    return SweepResult(train_many(jobs, workers, on_run))
