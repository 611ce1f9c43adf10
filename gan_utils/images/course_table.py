"""Every generator the course trained, scored the same way (lesson 07).

Lessons 04-06 save their trained generators with ``gan_utils.core.checkpoints.save_generator``
under ``<root>/artifacts/models/<lesson>/``. This module finds them
(``saved_generator_keys``), trains the lessons whose generators are missing by running
their notebooks at default settings (``ensure_lessons_trained``), and scores every digit
generator at one sample size N with the lesson-03 classifier (``score_generator``,
``course_table``). Generators are loaded with the recipe's ``load_saved``
(``gan_utils.images.recipe``), latents drawn with ``gan_utils.core.latent.sample_latent``
from a seeded ``torch.Generator`` (never torch's global RNG), images made with
``generate`` and scored with ``gan_utils.images.metrics.score_digits``:

* IS: Inception Score over 10 splits of the N samples,
* FID: Fréchet distance of the N samples' classifier features to all training digits,
* classes covered (>= 2 % of the argmax labels) and KL(class histogram || uniform),

each as the mean ± standard deviation (ddof = 1) over ``draws`` independent draws of N
latents. Comparing models is only fair at equal N (FID falls and IS rises with N), with
the same reference statistics and the same number of training seeds; the table records
all three.
"""

from __future__ import annotations

import math
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
from ..core.paths import artifacts_dir
from .classifier import DigitClassifier
from .metrics import FeatureStatistics, score_digits
from .recipe import latent_prior_of, load_saved
from .references import format_cell

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


def saved_generator_keys(
    lessons: Sequence[str] = COURSE_LESSONS, seed: int | None = None
) -> list[GeneratorKey]:
    """The generators saved by ``lessons`` (optionally only those trained with ``seed``).

    Reads each checkpoint's own record of lesson, model, loss, latent size and seed rather
    than parsing file names. Sorted by lesson, model, loss, latent size, seed.
    """
    keys = []
    for lesson in lessons:
        for path in sorted(artifacts_dir("models", lesson).glob("*.pt")):
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


__all__ = [
    "COURSE_LESSONS",
    "METRIC_KEYS",
    "GeneratorKey",
    "course_table",
    "default_lesson_runner",
    "ensure_lessons_trained",
    "saved_generator_keys",
    "score_generator",
    "summary_rows",
    "table_markdown",
]
