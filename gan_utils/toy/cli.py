"""``gan-toy``: train lesson 02's GAN variants on the 2-D toy mixtures from the command line.

Flags keep the names of the Mode_Collapse repository's ``main.py`` where it has one
(--device --epochs --d_updates --plot_frequency --lr --latent_size --samples --batch_size
--loss --spectral_norm --clip_weights --topk; its loss names standard, non-saturating,
least-squares and wasserstein-gp are aliases), plus --dataset --seeds --steps --out.
--loss takes several variants (or ``all``, ``losses``, ``remedies``); --spectral_norm,
--clip_weights, --topk, --pack, --minibatch_std and --unroll turn a loss into a variant
(wasserstein + --spectral_norm is wasserstein_sn, standard + --pack 2 is pacgan2).

Examples::

    gan-toy --loss all --dataset grid ring --seeds 0 1
    gan-toy --loss wasserstein-gp --topk --dataset grid --steps 5000 --gif
    gan-toy --preset repository --loss standard --dataset wide_ring
    gan-toy --loss minimax remedies --d_updates 5 --dataset ring --seeds 0 1 2 3 4
    gan-toy --loss minimax unrolled5 --lr 1e-3 --lr_d 1e-4 --betas 0.5 0.999 --dataset ring

Prints the metrics table (mean +/- std over seeds) and writes ``<out>/<name>.md`` (with
the commands and their wall times), ``<out>/<name>.csv`` (the table),
``<out>/<name>_runs.csv`` (one row per run, rewritten after every run),
``<out>/<name>_samples.png`` (final samples of the first seed; not with --append onto
earlier runs) and, with --gif, one GIF per variant and dataset (first seed). With
--append a sweep resumes or grows: runs already in ``_runs.csv`` (made with the same
settings) are kept and only the missing ones are trained; lesson 02's committed sweeps
(docs/lesson02_sweeps.md) were made that way. Every file is written atomically
(``gan_utils.core.atomic``), so a sweep killed at any moment keeps each finished run in
``_runs.csv`` and ``--append`` continues from there.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

import matplotlib

from ..core.atomic import atomic_write_text
from ..core.checks import check_int, check_number
from ..core.executor import JobFailure
from ..core.paths import runs_dir
from ..core.plotting import save_figure, save_gif
from ..core.runtime import DEVICE_CHOICES, resolve_threads, use_threads
from ..core.train import OPTIMIZERS
from ..core.variants import ALIASES, REMEDIES, VARIANTS, customise, get_variant
from .mixtures import TOY_DATASETS
from .runs import (
    REPOSITORY_SETTINGS,
    SweepResult,
    ToyRun,
    ToySettings,
    read_runs_csv,
    train_many,
    write_runs_csv,
)

GROUPS = {
    "all": list(VARIANTS),
    "losses": [name for name, v in VARIANTS.items() if name not in REMEDIES],
    "remedies": list(REMEDIES),
}  # --loss keywords for several variants at once
LOSS_CHOICES = [*VARIANTS, *ALIASES, *GROUPS]
PRESETS = {"lesson": ToySettings(), "repository": REPOSITORY_SETTINGS}


def _argument(text: str, convert, check, **bounds):
    """``text`` converted by ``convert`` (int or float) and checked by ``check``
    (``gan_utils.core.checks.check_int`` or ``check_number``) with ``bounds``, so the flags
    share the library's ranges and wording; argparse puts ``argument --flag:`` before it."""
    try:
        value = convert(text)
    except ValueError:
        value = text  # not a number: ``check`` words the message (a TypeError)
    try:
        return check("the value", value, **bounds)
    except (TypeError, ValueError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _positive_int(text: str) -> int:
    return _argument(text, int, check_int, minimum=1)


def _threads(text: str) -> int | str:
    value = text if text.strip().lower() == "auto" else _argument(text, int, check_int, minimum=1)
    resolve_threads(value)  # "threads must be 'auto' or an integer >= 1" otherwise
    return value


def _non_negative_int(text: str) -> int:
    return _argument(text, int, check_int, minimum=0)


def _positive_float(text: str) -> float:
    return _argument(text, float, check_number, minimum=0, min_open=True)


def _zero_to_one(text: str) -> float:
    """A number in [0, 1) (a share of the steps, an Adam beta)."""
    return _argument(text, float, check_number, minimum=0, maximum=1, max_open=True)


def _fraction(text: str) -> float | None:
    """A number in [0, 1), or ``none``."""
    if text.strip().lower() == "none":
        return None
    return _zero_to_one(text)


def _unit_interval(text: str) -> float:
    return _argument(text, float, check_number, minimum=0, maximum=1, min_open=True)


def _non_negative_float(text: str) -> float:
    return _argument(text, float, check_number, minimum=0)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show a default only where there is one worth showing."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``gan-toy``."""
    parser = argparse.ArgumentParser(
        prog="gan-toy",
        description="Train GAN variants on 2-D Gaussian mixtures and measure mode collapse "
        "(modes covered, % high quality, KL to uniform on 2,500 samples).",
        formatter_class=_Formatter,
    )
    lesson = ToySettings()
    add = parser.add_argument
    add("--loss", nargs="+", default=["all"], choices=LOSS_CHOICES, metavar="VARIANT",
        help=f"variants ('all': every one; 'losses': the ten loss variants; 'remedies': "
        f"PacGAN, minibatch std, unrolled); choices: {', '.join(LOSS_CHOICES)}")  # fmt: skip
    add("--dataset", nargs="+", default=["grid"], choices=list(TOY_DATASETS),
        help="toy datasets")  # fmt: skip
    add("--seeds", nargs="+", type=_non_negative_int, default=[0, 1], help="one run per seed")
    add("--preset", choices=list(PRESETS), default="lesson",
        help="defaults of the lesson, or of the Mode_Collapse repository (4x256 MLPs, batch "
        "500, RMSprop lr 1e-4, latent 32, 10,000 samples, 500 epochs)")  # fmt: skip
    add("--steps", type=_positive_int, help=f"generator steps (lesson: {lesson.num_steps})")
    add("--epochs", type=_positive_int,
        help="generator steps in epochs of ceil(samples / batch_size) steps (20 without "
        "--samples); ignored if --steps is given")  # fmt: skip
    add("--d_updates", type=_positive_int,
        help="critic steps per generator step (default: 5 for the Wasserstein family, else 1)")  # fmt: skip
    add("--lr", type=_positive_float, help=f"learning rate of G and D (lesson: {lesson.lr})")
    add("--lr_d", type=_positive_float,
        help="the critic's own learning rate (default: --lr; Metz et al.'s unrolled GAN "
        "setting: --lr 1e-3 --lr_d 1e-4)")  # fmt: skip
    add("--betas", type=_zero_to_one, nargs=2, metavar=("BETA1", "BETA2"),
        help=f"Adam's betas, each in [0, 1) (lesson: {' '.join(map(str, lesson.betas))})")  # fmt: skip
    add("--optimizer", choices=list(OPTIMIZERS), help="optimiser (lesson: adam)")
    add("--lr_decay_from", type=_fraction, default=argparse.SUPPRESS,
        help="decay the lr linearly to 0 from this share of the steps on; 'none': constant "
        "lr (lesson: 0.5; repository preset: none)")  # fmt: skip
    add("--paper_optimizers", action="store_true",
        help="the Wasserstein family with its papers' optimisers (WGAN: RMSprop 5e-5; "
        "WGAN-GP: Adam 1e-4, betas (0, 0.9); SN: Adam 1e-4, betas (0.5, 0.9)) instead of "
        "--optimizer/--lr")  # fmt: skip
    add("--latent_size", type=_positive_int, help=f"size of z (lesson: {lesson.latent_dim})")
    add("--batch_size", type=_positive_int, help=f"batch size (lesson: {lesson.batch_size})")
    add("--samples", type=_positive_int,
        help="size of a fixed set of real samples (any number); default: fresh samples "
        "every batch")  # fmt: skip
    add("--width", type=_positive_int, help=f"units per hidden layer (lesson: {lesson.width})")
    add("--depth", type=_non_negative_int, help=f"hidden layers (lesson: {lesson.depth})")
    add("--spectral_norm", action="store_true", help="spectral norm on the critic's layers")
    add("--clip_weights", type=_non_negative_float, default=0.0,
        help="if > 0, clip the critic's weights to [-c, c]")  # fmt: skip
    add("--topk", action="store_true", help="top-k generator update (Sinha et al. 2020)")
    add("--pack", type=_positive_int,
        help="PacGAN: the critic judges packs of M samples (1: plain)")  # fmt: skip
    add("--minibatch_std", action="store_true",
        help="minibatch standard deviation feature in the critic (Karras et al. 2018)")  # fmt: skip
    add("--unroll", type=_non_negative_int,
        help="unrolled GAN: G trained against the critic K look-ahead steps on (0: plain)")  # fmt: skip
    add("--topk_gamma", type=_unit_interval, default=0.99, help="top-k decay per epoch")
    add("--topk_nu", type=_unit_interval, default=0.5, help="top-k floor, share of the batch")
    add("--plot_frequency", type=_positive_int, default=10,
        help="epochs between sample snapshots (GIF frames)")  # fmt: skip
    add("--eval_samples", type=_positive_int, default=2500, help="samples for the metrics")
    add("--device", choices=list(DEVICE_CHOICES), default="auto", help="device")
    add("--threads", type=_threads, default="auto",
        help="torch CPU threads per run: a count, or auto (default: $OMP_NUM_THREADS if set, "
        "else the usable cores // workers)")  # fmt: skip
    add("--workers", type=_positive_int, default=1,
        help="runs trained side by side in worker processes, one thread each (2 on 2 cores)")  # fmt: skip
    add("--cluster", metavar="ADDRESS",
        help="a Dask scheduler (e.g. tcp://host:8786; default $GAN_UTILS_CLUSTER): the runs "
        "train on its workers and come back here; needs pip install -e '.[cluster]'")  # fmt: skip
    add("--out", type=Path, help="output folder (default: <root>/runs/gan-toy)")
    add("--name", default="toy_results", help="stem of the output files")
    add("--gif", action="store_true", help="write a GIF per variant and dataset (first seed)")
    add("--quiet", action="store_true", help="no line per finished run")
    add("--append", action="store_true",
        help="keep the runs already in <out>/<name>_runs.csv (same settings) and train only "
        "the missing ones: resumes or extends a sweep")  # fmt: skip
    add("--retrain", nargs="+", default=[], metavar="VARIANT",
        help="with --append: drop the table's runs of these variants (of the command's "
        "variants) and train them again, e.g. after a fix in their code; noted beside the "
        "command, and run again the same command resumes instead of dropping again")  # fmt: skip
    return parser


def settings_from_args(args: argparse.Namespace) -> ToySettings:
    """The ``ToySettings`` the flags describe (on top of --preset)."""
    base = PRESETS[args.preset]
    changes = {
        "latent_dim": args.latent_size,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "lr_d": args.lr_d,
        "betas": tuple(args.betas) if args.betas is not None else None,
        "optimizer": args.optimizer,
        "width": args.width,
        "depth": args.depth,
        "num_real_samples": args.samples,
        "n_critic": args.d_updates,
    }
    changes = {k: v for k, v in changes.items() if v is not None}
    if args.paper_optimizers:
        changes["paper_optimizers"] = True
    if hasattr(args, "lr_decay_from"):  # given on the command line (None: constant lr)
        changes["lr_decay_from"] = args.lr_decay_from
    settings = dataclasses.replace(
        base,
        **changes,
        topk_gamma=args.topk_gamma,
        topk_nu=args.topk_nu,
        eval_samples=args.eval_samples,
        device=args.device,
    )
    epoch = settings.epoch_length()
    if args.steps is not None:
        steps = args.steps
    elif args.epochs is not None:
        steps = args.epochs * epoch
    else:
        steps = settings.num_steps
    interval = args.plot_frequency * epoch
    return dataclasses.replace(
        settings, num_steps=steps, num_snapshots=max(1, min(steps // interval, 200))
    )


def variants_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list:
    """The variants: --loss names (or groups), with --spectral_norm, --clip_weights, --topk,
    --pack, --minibatch_std and --unroll switched on; an unsupported combination is a
    usage error naming the options."""
    names = [n for name in args.loss for n in GROUPS.get(name, [name])]
    options = {
        "spectral_norm": args.spectral_norm,
        "clip_value": args.clip_weights or None,
        "topk": args.topk,
        "pack": args.pack,
        "minibatch_std": args.minibatch_std,
        "unroll_steps": args.unroll,
    }
    try:
        return [customise(n, **options) for n in dict.fromkeys(names)]
    except (TypeError, ValueError) as error:
        parser.error(str(error))


def _describe(settings: ToySettings) -> str:
    n_critic = settings.n_critic or "5 for the Wasserstein family, else 1"
    return (
        f"{settings.num_steps} generator steps, batch {settings.batch_size}, "
        f"{settings.depth}x{settings.width} MLPs, latent {settings.latent_dim}, "
        f"{settings.optimizer} lr {settings.lr:g}"
        + (f" (critic {settings.lr_d:g})" if settings.lr_d not in (None, settings.lr) else "")
        + (f" betas {tuple(settings.betas)}" if settings.optimizer == "adam" else "")
        + (
            f", lr decayed linearly to 0 from step {int(settings.lr_decay_from * settings.num_steps)}"
            if settings.lr_decay_from is not None
            else ", constant lr"
        )
        + (
            "; the Wasserstein family with its papers' optimisers"
            if settings.paper_optimizers
            else ""
        )
        + f", n_critic {n_critic}, "
        f"real samples: {settings.num_real_samples or 'fresh every batch'}, "
        f"metrics on {settings.eval_samples} samples"
    )


def main(argv: list[str] | None = None) -> int:
    """Run ``gan-toy``; returns 0 (argparse exits with 2 on bad flags)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    variants = variants_from_args(args, parser)
    try:
        settings = settings_from_args(args)
        settings.validate()
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    threads = use_threads(args.threads, args.workers)  # here, and per worker process
    matplotlib.use("Agg")
    from . import plots as toy_plots  # after choosing the backend

    out = args.out or runs_dir() / "gan-toy"
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["gan-toy", *(sys.argv[1:] if argv is None else argv)])
    print(f"{command}\n{_describe(settings)}", flush=True)

    def report(run: ToyRun) -> None:
        if not args.quiet:
            m = run.metrics
            print(
                f"  {run.variant:<22} {run.dataset:<9} seed {run.seed}: "
                f"{m.modes_covered}/{m.num_modes} modes, {m.high_quality_percent:.1f}% HQ, "
                f"KL {m.kl_to_uniform:.3f}, {run.steps_per_second:.0f} steps/s"
                + (" (diverged)" if run.diverged else ""),
                flush=True,
            )

    described = _describe(settings)
    runs_path, commands_path = out / f"{args.name}_runs.csv", out / f"{args.name}_commands.json"
    previous: list[ToyRun] = []
    commands: list[dict] = []
    if args.append and runs_path.is_file():
        for run, text in read_runs_csv(runs_path):
            if text != described:
                parser.error(
                    f"argument --append: {runs_path} holds runs made with other settings "
                    f"({text}); use the same flags or another --name"
                )
            previous.append(run)
        if commands_path.is_file():
            commands = json.loads(commands_path.read_text())
    retrain = _retrain_names(args, variants, parser)
    if retrain and not any(c["command"] == command for c in commands):
        dropped = [r for r in previous if r.variant in retrain]
        previous = [r for r in previous if r.variant not in retrain]
        print(f"--retrain: dropped {len(dropped)} runs of {', '.join(sorted(retrain))}")
    done = {(r.variant, r.dataset, r.seed) for r in previous}
    jobs = [
        (v, d, s, settings)
        for v in variants
        for d in args.dataset
        for s in args.seeds
        if (v.name, d, s) not in done
    ]
    if previous:
        print(f"--append: {len(previous)} runs already in {runs_path}, {len(jobs)} to train")
    new_runs: list[ToyRun] = []
    entry = {"command": command, "wall_time_s": 0, "runs": 0, "finished": False}
    entry["threads_per_run"] = threads  # recorded: same seed, same numbers at the same count
    if retrain:
        entry["note"] = f"retrained {', '.join(sorted(retrain))}: their earlier runs dropped"
    if jobs:  # a command that trains nothing is not worth a line
        commands.append(entry)
    started = time.perf_counter()

    def save_progress(finished: bool = False) -> None:
        # after every run, so an interrupted sweep keeps its runs and its time so far
        write_runs_csv(_ordered(previous + new_runs), runs_path, described)
        if jobs:
            entry.update(
                wall_time_s=round(time.perf_counter() - started),
                runs=len(new_runs),
                finished=finished,
            )
            atomic_write_text(commands_path, json.dumps(commands, indent=1))

    failures: list[JobFailure] = []

    def on_run(run: ToyRun | JobFailure) -> None:
        if isinstance(run, JobFailure):  # reported; the other runs go on
            variant, dataset, seed, _ = run.job
            print(f"  {variant.name} {dataset} seed {seed} FAILED: {run.error}", flush=True)
            failures.append(run)
            return
        report(run)
        new_runs.append(run)
        save_progress()

    save_progress()
    train_many(jobs, args.workers, on_run, cluster=args.cluster, keep_going=True, threads=threads)
    wall_time = time.perf_counter() - started
    save_progress(finished=not failures)
    all_runs = _ordered(previous + new_runs)
    if not all_runs:
        print(f"every run failed; nothing written but {runs_path.name}:", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}\n{failure.details}", file=sys.stderr)
        return 1
    write_runs_csv(all_runs, runs_path, described)
    result = SweepResult(all_runs)
    table = result.to_markdown()
    total = sum(c["wall_time_s"] for c in commands)
    print(f"\n{table}\n\nwall time {wall_time:.0f} s")

    seeds = sorted({r.seed for r in all_runs})
    header = [
        f"# gan-toy results: {', '.join(sorted({r.dataset for r in all_runs}))}, seeds {seeds}",
        "",
        "Command" + ("s" if len(commands) > 1 else "") + " (with wall time):",
        "",
        *[
            f"* `{c['command']}` ({c['wall_time_s']} s, {c['runs']} runs"
            + ("" if c.get("finished", True) else "; interrupted, time up to its last run")
            + (f"; {c['note']}" if c.get("note") else "")
            + ")"
            for c in commands
        ],
        "",
        f"Settings: {described}.",
        "",
        f"Wall time: {total} s ({total / 60:.1f} min) for {len(all_runs)} runs.",
        "",
        f"Modes covered: modes with >= 20 high-quality samples of the {settings.eval_samples} "
        "evaluated; high quality: within 3 std of the nearest centre; KL of the HQ histogram "
        "over modes to uniform, in nats (NaN when no sample is HQ). Mean ± std (ddof=1) over "
        "seeds.",
        "",
    ]
    atomic_write_text(out / f"{args.name}.md", "\n".join(header) + "\n" + table + "\n")
    result.write_csv(out / f"{args.name}.csv")
    first = [r for r in new_runs if r.seed == min(r.seed for r in new_runs)] if new_runs else []
    written = [f"{args.name}.md", f"{args.name}.csv", f"{args.name}_runs.csv"]
    if first and not previous:  # with --append the new runs alone would be a partial picture
        fig = toy_plots.plot_final_samples(first)
        fig.suptitle(f"Final samples, seed {first[0].seed}", y=1.02)
        save_figure(fig, f"{args.name}_samples.png", dpi=75, folder=out)
        matplotlib.pyplot.close(fig)
        written.append(f"{args.name}_samples.png")
    if args.gif:
        for run in first:
            path = out / f"{args.name}_{run.variant}_{run.dataset}.gif"
            save_gif(toy_plots.snapshot_frames(run), path.name, folder=out)
            written.append(path.name)
    print(f"wrote {', '.join(written)} in {out}")
    if failures:
        print(
            f"{len(failures)} of {len(jobs)} runs failed (the table holds the others); "
            "run the same command with --append to train only the missing runs:",
            file=sys.stderr,
        )
        for failure in failures:
            print(f"  {failure}\n{failure.details}", file=sys.stderr)
        return 1
    return 0


def _retrain_names(args: argparse.Namespace, variants: list, parser) -> set[str]:
    """The variant names of --retrain; each must be one of the command's variants."""
    if args.retrain and not args.append:
        parser.error("argument --retrain: only with --append (it replaces runs of a table)")
    names = {v.name for v in variants}
    chosen = set()
    for name in args.retrain:
        try:
            chosen.add(get_variant(name).name)
        except (TypeError, ValueError) as error:
            parser.error(f"argument --retrain: {error}")
    unknown = chosen - names
    if unknown:
        parser.error(
            f"argument --retrain: {sorted(unknown)} are not among this command's variants "
            f"{sorted(names)}; name them in --loss too"
        )
    return chosen


def _ordered(runs: list[ToyRun]) -> list[ToyRun]:
    """Runs in the lesson's order: variant (as in VARIANTS, custom ones last), dataset, seed."""
    order = {name: i for i, name in enumerate(VARIANTS)}
    datasets = {name: i for i, name in enumerate(TOY_DATASETS)}
    return sorted(
        runs,
        key=lambda r: (order.get(r.variant, len(order)), r.variant, datasets[r.dataset], r.seed),
    )


if __name__ == "__main__":
    sys.exit(main())
