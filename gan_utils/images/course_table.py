r"""Every generator of the course, scored the same way (lesson 07).

Two kinds of generator meet in lesson 07's tables.

**The reference models** (``gan_utils.images.references``), trained to convergence by
``make pretrain`` and shipped in ``pretrained/``. ``reference_groups`` gathers the
registry's GAN runs by method, architecture and latent size over their training seeds (a
run outside that pattern, such as the long latent-1 run, is a group of its own);
``score_reference_runs`` loads each one (verified) and measures its final metrics again,
``score_images(G(z), classifier, real)`` at the fixed latents ``z = evaluation_latents``
(N = 1,000, seed ``EVAL_SEED``, the run's own prior), so the table is measured, not read
back; ``relative_difference`` compares a measurement with the manifest's record.
``group_rows`` gives, per group and metric :math:`m` over its :math:`n` seeds, the mean
:math:`\bar m = \frac1n\sum_s m_s` and the standard deviation with ddof = 1,
:math:`\sqrt{\frac1{n-1}\sum_s (m_s - \bar m)^2}` (NaN for a single run), and
``compare_to_baseline`` applies ``references.verdict`` to a method and its vanilla
baseline (same architecture, same latent size), metric by metric.

**The live runs**: the generators lessons 04-06 trained in minutes and saved with
``gan_utils.core.checkpoints.save_generator`` under ``<root>/artifacts/models/<lesson>/``.
``saved_generator_keys`` finds them (and creates no folder), ``ensure_lessons_trained``
runs the lessons whose generators are missing (only when asked: each takes minutes), and
``course_table`` scores each with ``score_generator``: generators are loaded with the
recipe's ``load_saved``, latents drawn with ``gan_utils.core.latent.sample_latent`` from a
seeded ``torch.Generator`` (never torch's global RNG), images made with ``generate`` and
scored with ``gan_utils.images.metrics.score_digits``:

* IS: Inception Score over 10 splits of the N samples,
* FID: Fréchet distance of the N samples' classifier features to all training digits,
* classes covered (>= 2 % of the argmax labels) and KL(class histogram || uniform),

each as the mean ± standard deviation (ddof = 1) over ``draws`` independent draws of N
latents. Comparing models is only fair at equal N (FID falls and IS rises with N), with
the same reference statistics and the same number of training seeds; the tables record
all three.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.checkpoints import load_checkpoint
from ..core.checks import check_choice, check_int
from ..core.latent import LATENT_PRIORS, generate, sample_latent
from ..core.paths import output_root
from .classifier import DigitClassifier
from .metrics import FeatureStatistics, score_digits
from .recipe import ImageGANConfig, latent_prior_of, load_saved
from .references import (
    REFERENCES,
    TINY,
    RealDigits,
    Reference,
    final_metrics,
    format_cell,
    load_reference,
    reference_rows,
    verdict,
)

COURSE_LESSONS = ("04_vanilla_gan", "05_dist_gan", "06_nu_gan_lanczos")
METRIC_KEYS = ("is_mean", "fid", "classes_covered", "kl_to_uniform")
DIGIT_SHAPE = (1, 28, 28)


@dataclass(frozen=True)
class GeneratorKey:
    """What identifies a saved generator: lesson, model, loss (variant), latent size, seed."""

    lesson: str
    model: str
    loss: str
    latent_dim: int
    seed: int

    @property
    def label(self) -> str:
        """A short name for tables and plots, e.g. ``04 dcgan non_saturating z10``."""
        return f"{self.lesson[:2]} {self.model} {self.loss} z{self.latent_dim}"


def models_dir(lesson: str) -> Path:
    """``<root>/artifacts/models/<lesson>``, where ``save_generator`` writes (not created)."""
    return output_root() / "artifacts" / "models" / lesson


def saved_generator_keys(
    lessons: Sequence[str] = COURSE_LESSONS, seed: int | None = None
) -> list[GeneratorKey]:
    """The generators saved by ``lessons`` (optionally only those trained with ``seed``).

    Reads each checkpoint's own record of lesson, model, loss, latent size and seed rather
    than parsing file names. Sorted by lesson, model, loss, latent size, seed. Only looks:
    a lesson without a folder under ``<root>/artifacts/models`` has no generators, and no
    folder is created for it.
    """
    keys = []
    for lesson in lessons:
        folder = models_dir(lesson)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.pt")):
            payload = load_checkpoint(path)
            config = payload.get("config", {})
            key = GeneratorKey(
                lesson=payload.get("lesson", lesson),
                model=payload["model"],
                loss=payload["loss"],
                latent_dim=int(config["latent_dim"]),
                seed=int(config["seed"]),
            )
            if seed is None or key.seed == seed:
                keys.append(key)
    return sorted(keys, key=lambda k: (k.lesson, k.model, k.loss, k.latent_dim, k.seed))


def default_lesson_runner(lesson: str, parameters: dict[str, Any]) -> Path:
    """Execute ``notebooks/<lesson>.ipynb`` with papermill (``gan_utils.core.lessons``)."""
    from ..core.lessons import NOTEBOOKS_DIR, run_notebook

    return run_notebook(NOTEBOOKS_DIR / f"{lesson}.ipynb", parameters)


def ensure_lessons_trained(
    lessons: Sequence[str] = COURSE_LESSONS,
    seed: int = 0,
    runner: Callable[[str, dict[str, Any]], Any] = default_lesson_runner,
    parameters: dict[str, dict[str, Any]] | None = None,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Run every lesson that has saved no generator with ``seed`` yet; returns those run.

    A lesson counts as trained when at least one of its generators with this seed exists.
    The others are run by ``runner(lesson, parameters)`` (default: the lesson's notebook
    through papermill at its default settings plus ``seed``, and plus
    ``parameters[lesson]`` when given), each announced through ``log`` first because it
    takes minutes.

    Raises:
        RuntimeError: naming the lesson when it ran but saved no generator with ``seed``.
    """
    missing = [lesson for lesson in lessons if not saved_generator_keys([lesson], seed)]
    for lesson in missing:
        overrides = {"seed": seed, **(parameters or {}).get(lesson, {})}
        log(
            f"No generators of {lesson} with seed {seed} yet: running notebooks/{lesson}.ipynb "
            f"with {overrides} (its default settings otherwise; this takes a few minutes)."
        )
        runner(lesson, overrides)
        if not saved_generator_keys([lesson], seed):
            raise RuntimeError(f"{lesson} ran but saved no generator with seed {seed}")
    return missing


def _is_digit_generator(generator: nn.Module, latent_dim: int, device: torch.device) -> bool:
    with torch.no_grad():
        was_training = generator.training
        generator.eval()
        out = generator(torch.zeros(2, latent_dim, device=device))
        generator.train(was_training)
    return tuple(out.shape[1:]) in (DIGIT_SHAPE, (math.prod(DIGIT_SHAPE),))


def _mean_std(values: Iterable[float]) -> tuple[float, float]:
    array = np.asarray(list(values), dtype=np.float64)
    std = float(array.std(ddof=1)) if array.size > 1 else float("nan")
    return float(array.mean()), std


def score_generator(
    generator: nn.Module,
    latent_dim: int,
    classifier: DigitClassifier,
    reference: FeatureStatistics,
    num_samples: int = 1000,
    draws: int = 3,
    latent_prior: str = "normal",
    seed: int = 0,
) -> dict[str, float]:
    """IS, FID, classes covered and KL of ``draws`` sets of ``num_samples`` generated digits.

    Draw d uses latents from a ``torch.Generator`` seeded with ``seed + d`` (torch's global
    RNG is not touched), so every model sees the same draws.

    Returns:
        ``{metric}_mean`` and ``{metric}_std`` (ddof = 1, NaN for one draw) for each of
        ``METRIC_KEYS``, plus ``n`` and ``draws``.
    """
    num_samples = check_int("num_samples", num_samples, minimum=10)
    draws = check_int("draws", draws, minimum=1)
    latent_dim = check_int("latent_dim", latent_dim, minimum=1)
    check_choice("latent_prior", latent_prior, LATENT_PRIORS)
    seed = check_int("seed", seed, minimum=0)
    if num_samples % 10:
        raise ValueError(f"num_samples must be a multiple of 10 (IS splits), got {num_samples}")
    results = []
    for draw in range(draws):
        rng = torch.Generator().manual_seed(seed + draw)
        z = sample_latent(num_samples, latent_dim, latent_prior, rng=rng)
        metrics, _ = score_digits(generate(generator, z), classifier, reference)
        results.append(metrics)
    row: dict[str, float] = {"n": num_samples, "draws": draws}
    for key in METRIC_KEYS:
        row[f"{key}_mean"], row[f"{key}_std"] = _mean_std(r[key] for r in results)
    return row


def course_table(
    keys: Sequence[GeneratorKey],
    classifier: DigitClassifier,
    reference: FeatureStatistics,
    num_samples: int = 1000,
    draws: int = 3,
    device: str | torch.device = "cpu",
) -> list[dict[str, Any]]:
    """One row per saved digit generator (non-digit ones, e.g. colour images, are skipped).

    Each row: lesson, model, loss, latent_dim, seed, label, parameters (of G) and the
    ``score_generator`` figures. Rows keep the order of ``keys``.
    """
    device = torch.device(device)
    rows = []
    for key in keys:
        saved = load_saved(key.lesson, key.model, key.loss, key.latent_dim, key.seed, device)
        if not _is_digit_generator(saved.generator, key.latent_dim, device):
            continue
        prior = latent_prior_of(saved)
        scores = score_generator(
            saved.generator, key.latent_dim, classifier, reference, num_samples, draws, prior
        )
        rows.append(
            {
                "lesson": key.lesson,
                "model": key.model,
                "loss": key.loss,
                "latent_dim": key.latent_dim,
                "seed": key.seed,
                "label": key.label,
                "parameters": sum(p.numel() for p in saved.generator.parameters()),
                **scores,
            }
        )
    return rows


def table_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The course table as Markdown: one line per generator, metrics as mean ± std."""
    header = (
        "| lesson | model | loss | z | IS ↑ | FID ↓ | classes covered ↑ | KL to uniform ↓ |\n"
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [header]
    for r in rows:
        lines.append(
            f"| {r['lesson']} | {r['model']} | {r['loss']} | {r['latent_dim']} | "
            f"{format_cell(r['is_mean_mean'], r['is_mean_std'], 2)} | "
            f"{format_cell(r['fid_mean'], r['fid_std'], 1)} | "
            f"{format_cell(r['classes_covered_mean'], r['classes_covered_std'], 1)} | "
            f"{format_cell(r['kl_to_uniform_mean'], r['kl_to_uniform_std'], 3)} |"
        )
    return "\n".join(lines)


def summary_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The table in the compact form ``lesson.show_results`` stores and ``make run`` prints."""
    return [
        {
            "model": r["label"],
            "IS": round(r["is_mean_mean"], 2),
            "FID": round(r["fid_mean"], 1),
            "classes": round(r["classes_covered_mean"], 1),
            "KL": round(r["kl_to_uniform_mean"], 3),
        }
        for r in rows
    ]


# ---- the reference models ------------------------------------------------------------------
METHOD_NAMES = {"gan": "vanilla", "dist_gan": "Dist-GAN", "nu_gan": "NU-GAN"}
ARCHITECTURE_NAMES = {"dcgan": "DCGAN", "dense": "dense"}
# (metric, header, decimals, higher is better: True, False, or None for no direction)
COURSE_COLUMNS: tuple[tuple[str, str, int, bool | None], ...] = (
    ("is_mean", "IS ↑", 2, True),
    ("fid_train", "FID vs train ↓", 1, False),
    ("fid_test", "FID vs held-out ↓", 1, False),
    ("classes_covered", "classes ↑", 1, True),
    ("kl_to_uniform", "KL to uniform ↓", 3, False),
    ("precision", "precision ↑", 2, True),
    ("recall", "recall ↑", 2, True),
    ("density", "density", 2, None),
    ("coverage", "coverage ↑", 2, True),
    ("nn_pixel_median", "nearest train digit (pixels)", 2, None),
    ("nn_feature_median", "nearest train digit (features)", 2, None),
)
# Training settings compared between a method and its baseline (``setting_differences``).
TRAINING_FIELDS = (
    "num_steps",
    "batch_size",
    "optimizer",
    "lr_g",
    "lr_d",
    "betas",
    "lr_decay_from",
    "latent_prior",
    "critic_normalization",
)
_SEEDED = re.compile(r"^(?P<group>.+-z\d+)-s\d+$")


@dataclass(frozen=True)
class ReferenceGroup:
    """Reference runs that differ only in their training seed (or one run on its own)."""

    key: str  # "vanilla-dcgan-z10" for a group of seeds; a lone run's own name
    label: str  # e.g. "vanilla DCGAN z10 (lesson 04)"
    method: str  # ImageGANConfig.method: "gan", "dist_gan" or "nu_gan"
    architecture: str  # "dcgan" or "dense"
    latent_dim: int
    lesson: str  # the notebook that shows the runs
    names: tuple[str, ...]  # registry names, in registry order

    @property
    def seeds(self) -> int:
        return len(self.names)

    @property
    def lone(self) -> bool:
        """A run with no seed siblings (e.g. the long latent-1 run)."""
        return _SEEDED.match(self.names[0]) is None

    @property
    def result_key(self) -> str:
        """The key of the group in a lesson's results, e.g. ``ref_vanilla_dcgan_z10``."""
        return "ref_" + self.key.replace("-", "_")


def _group_label(
    method: str, architecture: str, latent_dim: int, lesson: str, tail: str | None
) -> str:
    name = (
        f"{METHOD_NAMES.get(method, method)} {ARCHITECTURE_NAMES.get(architecture, architecture)}"
    )
    extra = f", {tail} run" if tail else ""
    return f"{name} z{latent_dim}{extra} (lesson {lesson[:2]})"


def _group_facts(reference: Reference) -> tuple[str, str, int, str]:
    config = reference.config
    return config.method, config.architecture, config.latent_dim, reference.lesson


def reference_groups(latent_sizes: Sequence[int] | None = None) -> list[ReferenceGroup]:
    """The registry's GAN references (not the classifier, not the test entry ``TINY``)
    grouped over training seeds: ``<prefix>-z<latent>-s<seed>`` runs form one group per
    ``<prefix>-z<latent>``, any other run is a group of its own.

    Ordered by architecture (as the registry first meets them), then the vanilla method
    before the others, then latent size, a lone run after its seed group; so each method
    follows its baseline. ``latent_sizes`` keeps only those latent sizes.

    Raises:
        ValueError: ``latent_sizes`` is empty or not positive integers, or the runs of one
            group differ in method, architecture, latent size or lesson (a registry error).
    """
    if latent_sizes is not None:
        sizes = [check_int(f"latent_sizes[{i}]", z, minimum=1) for i, z in enumerate(latent_sizes)]
        if not sizes:
            raise ValueError("latent_sizes must hold at least one latent size, got []")
    members: dict[str, list[str]] = {}
    for name, reference in REFERENCES.items():
        if reference.config is None or name == TINY:
            continue
        if latent_sizes is not None and reference.config.latent_dim not in sizes:
            continue
        match = _SEEDED.match(name)
        members.setdefault(match["group"] if match else name, []).append(name)
    groups = []
    for key, names in members.items():
        first = REFERENCES[names[0]]
        facts = {_group_facts(REFERENCES[n]) for n in names}
        if len(facts) > 1:
            raise ValueError(
                f"the reference runs {names} share the group {key!r} but differ in method, "
                f"architecture, latent size or lesson: {sorted(facts)}"
            )
        config = first.config
        tail = None
        if _SEEDED.match(names[0]) is None:
            marker = f"-z{config.latent_dim}-"
            tail = key.split(marker, 1)[1] if marker in key else key
        groups.append(
            ReferenceGroup(
                key=key,
                label=_group_label(
                    config.method, config.architecture, config.latent_dim, first.lesson, tail
                ),
                method=config.method,
                architecture=config.architecture,
                latent_dim=config.latent_dim,
                lesson=first.lesson,
                names=tuple(names),
            )
        )
    architectures = list(dict.fromkeys(g.architecture for g in groups))
    return sorted(
        groups,
        key=lambda g: (
            architectures.index(g.architecture),
            g.method != "gan",
            g.method,
            g.latent_dim,
            g.lone,
        ),
    )


def baseline_of(group: ReferenceGroup, groups: Sequence[ReferenceGroup]) -> ReferenceGroup | None:
    """The vanilla group a method is compared with: same architecture and latent size, more
    than one seed. None for a vanilla group, or when no such group is in ``groups``."""
    if group.method == "gan":
        return None
    return next(
        (
            g
            for g in groups
            if g.method == "gan"
            and g.architecture == group.architecture
            and g.latent_dim == group.latent_dim
            and not g.lone
        ),
        None,
    )


@dataclass(frozen=True)
class ScoredReference:
    """One shipped reference run, scored now, beside the metrics its manifest records."""

    name: str
    config: ImageGANConfig
    measured: dict[str, Any]  # score_images at the fixed evaluation latents, just now
    recorded: dict[str, Any]  # the manifest's final metrics


def score_reference_runs(
    names: Sequence[str], classifier: DigitClassifier, real: RealDigits
) -> dict[str, ScoredReference]:
    """Load each shipped run (verified by ``load_reference``) and measure its final metrics:
    ``score_images(G(z), classifier, real)`` at ``z = evaluation_latents(config)``, on the
    CPU, where the recorded metrics were measured. Returns name -> ``ScoredReference``."""
    scored = {}
    for name in names:
        run = load_reference(name, "cpu")
        scored[name] = ScoredReference(
            name=name,
            config=run.config,
            measured=final_metrics(run.generator, run.config, classifier, real),
            recorded=run.metrics,
        )
    return scored


def relative_difference(recorded: dict[str, Any], measured: dict[str, Any]) -> float:
    """The largest |measured - recorded| / |recorded| over the recorded numbers (element by
    element for lists such as the class counts; the plain difference where recorded is 0).

    Raises:
        KeyError: a recorded key is missing from ``measured``, naming it.
        ValueError: a recorded list and its measured one differ in length.
    """
    largest = 0.0
    for key, value in recorded.items():
        if key not in measured:
            raise KeyError(f"measured has no {key!r}, which recorded holds")
        a = np.atleast_1d(np.asarray(value, dtype=np.float64))
        b = np.atleast_1d(np.asarray(measured[key], dtype=np.float64))
        if a.shape != b.shape:
            raise ValueError(f"{key}: recorded has shape {a.shape}, measured {b.shape}")
        scale = np.where(a == 0, 1.0, np.abs(a))
        largest = max(largest, float((np.abs(b - a) / scale).max(initial=0.0)))
    return largest


def group_rows(
    groups: Sequence[ReferenceGroup],
    metrics: dict[str, dict[str, Any]],
    columns: Sequence[tuple[str, str, int, bool | None]] = COURSE_COLUMNS,
) -> list[dict[str, Any]]:
    """``references.reference_rows`` of the groups (``<metric>_mean`` / ``<metric>_std``
    over seeds, ddof = 1, NaN for one run), each row with the group's ``key``, ``method``,
    ``architecture`` and ``latent_dim`` added. ``metrics``: run name -> metrics.

    Raises:
        KeyError: a run of a group has no metrics, naming it.
    """
    rows = reference_rows({g.label: g.names for g in groups}, metrics, columns)
    for group, row in zip(groups, rows, strict=True):
        row.update(
            key=group.key,
            method=group.method,
            architecture=group.architecture,
            latent_dim=group.latent_dim,
        )
    return rows


def compare_to_baseline(
    group: ReferenceGroup,
    baseline: ReferenceGroup,
    metrics: dict[str, dict[str, Any]],
    columns: Sequence[tuple[str, str, int, bool | None]] = COURSE_COLUMNS,
) -> dict[str, dict[str, Any]]:
    """Per metric with a direction: the two means over seeds and ``verdict(method values,
    baseline values, higher_is_better)``: "better" / "worse" when the gap of the means
    exceeds twice the pooled standard deviation over seeds, else "no difference at this
    budget" ("too few seeds" with fewer than two runs on a side)."""
    comparison = {}
    for metric, _, _, higher in columns:
        if higher is None:
            continue
        a = [float(metrics[n][metric]) for n in group.names]
        b = [float(metrics[n][metric]) for n in baseline.names]
        comparison[metric] = {
            "method": float(np.mean(a)),
            "baseline": float(np.mean(b)),
            "verdict": verdict(a, b, higher),
        }
    return comparison


def setting_differences(
    config: ImageGANConfig, baseline: ImageGANConfig, fields: Sequence[str] = TRAINING_FIELDS
) -> tuple[dict[str, Any], dict[str, tuple[Any, Any]]]:
    """The training settings two runs share (field -> value) and those they do not
    (field -> (config's, baseline's)), over ``fields`` of ``ImageGANConfig``.

    Raises:
        ValueError: a field that ``ImageGANConfig`` does not have, naming it.
    """
    same, different = {}, {}
    for field in fields:
        if not hasattr(config, field) or not hasattr(baseline, field):
            raise ValueError(f"fields must be fields of ImageGANConfig, got {field!r}")
        a, b = getattr(config, field), getattr(baseline, field)
        if a == b:
            same[field] = a
        else:
            different[field] = (a, b)
    return same, different


def reference_summary_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reference table in the compact form ``lesson.show_results`` stores and
    ``make run`` prints: means over seeds."""
    return [
        {
            "model": r["label"],
            "seeds": r["seeds"],
            "IS": round(r["is_mean_mean"], 2),
            "FID train": round(r["fid_train_mean"], 1),
            "FID held-out": round(r["fid_test_mean"], 1),
            "classes": round(r["classes_covered_mean"], 1),
            "KL": round(r["kl_to_uniform_mean"], 3),
            "recall": round(r["recall_mean"], 2),
            "nearest px": round(r["nn_pixel_median_mean"], 2),
        }
        for r in rows
    ]


def reference_results(
    rows: Sequence[dict[str, Any]],
    groups: Sequence[ReferenceGroup],
    columns: Sequence[tuple[str, str, int, bool | None]] = COURSE_COLUMNS,
) -> dict[str, dict[str, Any]]:
    """``{group.result_key: {"seeds": n, "<metric>_mean": ..., "<metric>_std": ...}}`` for
    a lesson's results (4 significant decimals; a single run's std is None)."""
    by_key = {row["key"]: row for row in rows}
    results = {}
    for group in groups:
        row = by_key[group.key]
        entry: dict[str, Any] = {"seeds": row["seeds"]}
        for metric, *_ in columns:
            for part in ("mean", "std"):
                value = row[f"{metric}_{part}"]
                entry[f"{metric}_{part}"] = round(value, 4) if math.isfinite(value) else None
        results[group.result_key] = entry
    return results


__all__ = [
    "ARCHITECTURE_NAMES",
    "COURSE_COLUMNS",
    "COURSE_LESSONS",
    "METHOD_NAMES",
    "METRIC_KEYS",
    "TRAINING_FIELDS",
    "GeneratorKey",
    "ReferenceGroup",
    "ScoredReference",
    "baseline_of",
    "compare_to_baseline",
    "course_table",
    "default_lesson_runner",
    "ensure_lessons_trained",
    "group_rows",
    "models_dir",
    "reference_groups",
    "reference_results",
    "reference_summary_rows",
    "relative_difference",
    "saved_generator_keys",
    "score_generator",
    "score_reference_runs",
    "setting_differences",
    "summary_rows",
    "table_markdown",
]
