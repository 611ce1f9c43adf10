"""The README's generated sections, built from the lessons' recorded results.

The README holds parts between ``<!-- refresh:NAME -->`` and ``<!-- /refresh:NAME -->``
(``lesson-times``, ``key-numbers``, ``course-table``, and inline ``lesson-time-NN`` and
``live-budget-05`` in the lessons table). ``readme_sections`` builds their text from the
results payloads of the committed notebooks (each lesson's ``show_results`` output: its
results dict with ``wall_time_s`` and the run id); ``replace_sections`` swaps them in and
leaves everything outside the markers as it is, so a second call changes nothing. A
sentence whose numbers are missing from the results is left out, never invented.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .paths import PROJECT_ROOT, committed_figures_dir

README = PROJECT_ROOT / "README.md"
COURSE_TABLE_FILE = "07_course_table.md"
REQUIRED_SECTIONS = ("lesson-times", "key-numbers", "course-table")
_SECTION = re.compile(
    r"(?P<open><!-- refresh:(?P<name>[\w-]+) -->)(?P<body>.*?)(?P<close><!-- /refresh:(?P=name) -->)",
    re.DOTALL,
)


def _duration(seconds: float, short: bool = False) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if short else f"{seconds:.0f} s ({seconds / 60:.1f} min)"


def _num(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.{digits}f}"


def _lesson_notes(results: dict[str, Any]) -> str:
    notes = []
    if "cpu_time_s" in results:
        notes.append(f"CPU time {results['cpu_time_s']:.0f} s")
    if "classifier_trained_now" in results:
        if results["classifier_trained_now"]:
            trained = results.get("classifier_train_s")
            notes.append(
                "classifier trained in this run"
                + (f" ({trained:.0f} s of it)" if isinstance(trained, (int, float)) else "")
            )
        else:
            notes.append("classifier loaded from its checkpoint")
    if isinstance(results.get("vanilla_source"), dict):
        sources = ", ".join(f"z{z}: {s}" for z, s in results["vanilla_source"].items())
        notes.append(f"vanilla GANs from {sources}")
    if "generators_scored" in results:
        notes.append(f"{results['generators_scored']} generators scored")
    return "; ".join(notes)


def lesson_times_table(payloads: dict[str, dict[str, Any]]) -> str:
    """Markdown table: each lesson's own wall time, machine, notes and run id."""
    lines = [
        "| lesson | wall time | machine | notes | run id |",
        "| --- | ---: | --- | --- | --- |",
    ]
    for stem, payload in payloads.items():
        results = payload.get("results", {})
        wall = results.get("wall_time_s")
        wall_text = _duration(wall) if isinstance(wall, (int, float)) else "not recorded"
        run_id = payload.get("run_id")
        run_text = f"`{run_id}`" if run_id else f"none (finished {payload.get('finished', '?')})"
        lines.append(
            f"| {stem} | {wall_text} | {payload.get('machine', '')} | "
            f"{_lesson_notes(results)} | {run_text} |"
        )
    return "\n".join(lines)


def _clauses_01(r: dict[str, Any]) -> list[Callable[[], str]]:
    return [
        lambda: f"1-D W1 falls {r['w1_ratio']:.1f}x ({r['w1_start']:.2f} -> {r['w1_end']:.2f})",
        lambda: (
            f"the non-saturating loss sends {r['grad_ratio_ns_over_minimax']:.0f}x more "
            "gradient into G than minimax against a confident critic"
        ),
    ]


def _clauses_02(r: dict[str, Any]) -> list[Callable[[], str]]:
    def beaten() -> str:
        names = [name for name, wins in r["remedy_beats_plain"].items() if wins]
        return ", ".join(names) if names else "none of them"

    return [
        lambda: (
            f"on the 8-mode {r['dataset']} ({r['num_steps']:,} steps) {r['loss']} with "
            f"{r['collapse_n_critic']} critic steps collapses in {r['collapsed_seeds']} of "
            f"{r['num_seeds']} seeds, with {r['cure_n_critic']} covers every mode in "
            f"{r['covering_seeds']} of {r['num_seeds']}"
        ),
        lambda: (
            "remedies that beat the collapsing GAN (more modes at no lower % HQ, 5 seeds): "
            + beaten()
        ),
    ]


def _clauses_03(r: dict[str, Any]) -> list[Callable[[], str]]:
    return [
        lambda: (
            f"{100 * r['test_accuracy']:.1f} % test accuracy on {r['n_test']:,} held-out "
            f"digits (source: {r['data_source']})"
        ),
        lambda: (
            f"IS of real test digits {r['is_real_test_mean']:.2f} at N = {r['is_real_test_n']:,}"
        ),
        lambda: f"FID of all training vs all test digits {r['fid_real_all_train_vs_all_test']:.2f}",
    ]


def _clauses_04(r: dict[str, Any]) -> list[Callable[[], str]]:
    return [
        lambda: (
            "digit classes covered at latent 1 / 10: dense GAN "
            f"{_num(r['dense_z1_classes_covered'])} / {_num(r['dense_z10_classes_covered'])}, "
            f"DCGAN {_num(r['dcgan_z1_classes_covered'])} / "
            f"{_num(r['dcgan_z10_classes_covered'])}"
        ),
        lambda: (
            f"IS at latent 10: dense {r['dense_z10_is']:.2f}, DCGAN {r['dcgan_z10_is']:.2f} "
            f"(real digits {r['real_is']:.2f})"
        ),
        lambda: (
            f"converged reference DCGAN ({r['ref_dcgan_z10_seeds']} seeds), latent 10: IS "
            f"{r['ref_dcgan_z10_is_mean']:.2f} ± {r['ref_dcgan_z10_is_mean_std']:.2f}, "
            f"{_num(r['ref_dcgan_z10_classes_covered'])} classes, FID vs train "
            f"{r['ref_dcgan_z10_fid_train']:.1f}, recall {r['ref_dcgan_z10_recall']:.2f}; latent 1: "
            f"IS {r['ref_dcgan_z1_is_mean']:.2f}, {_num(r['ref_dcgan_z1_classes_covered'])} "
            f"classes, recall {r['ref_dcgan_z1_recall']:.2f}"
        ),
        lambda: (
            f"latent-1 references collapsed (sharp digits of few classes): "
            f"{len(r['ref_latent1_collapsed'])} of {len(r['ref_latent1_runs'])}"
        ),
    ]


def _clauses_05(r: dict[str, Any]) -> list[Callable[[], str]]:
    return [
        lambda: (
            f"converged references at latent 10 ({r['ref_dist_gan_z10_seeds']} Dist-GAN and "
            f"{r['ref_vanilla_z10_seeds']} vanilla DCGAN seeds): IS "
            f"{r['ref_dist_gan_z10_is_mean']:.2f} ± {r['ref_dist_gan_z10_is_mean_std']:.2f} vs "
            f"{r['ref_vanilla_z10_is_mean']:.2f} ± {r['ref_vanilla_z10_is_mean_std']:.2f}, "
            f"Dist-GAN {r['ref_verdict_z10_is_mean']}; at latent 1 IS "
            f"{r['ref_dist_gan_z1_is_mean']:.2f} ± {r['ref_dist_gan_z1_is_mean_std']:.2f} vs "
            f"{r['ref_vanilla_z1_is_mean']:.2f} ± {r['ref_vanilla_z1_is_mean_std']:.2f}, "
            f"{r['ref_verdict_z1_is_mean']}"
        ),
        lambda: (
            "live run, classes covered at latent 1 / 10: Dist-GAN "
            f"{_num(r['dist_gan_z1_classes_covered'])} / "
            f"{_num(r['dist_gan_z10_classes_covered'])}, vanilla "
            f"{_num(r['vanilla_z1_classes_covered'])} / {_num(r['vanilla_z10_classes_covered'])}"
        ),
    ]


def live_budget_05(r: dict[str, Any]) -> str:
    """Lesson 05's live budget as its lessons-table row states it, from its results."""
    return (
        f"{r['epochs'] * r['steps_per_epoch']:,} steps at batch {r['batch_size']}, "
        f"N = {r['eval_samples_n']:,}"
    )


# (metric, name, decimals) of lesson 06's converged verdicts quoted in the key numbers
_MEASURES_06 = (
    ("is_mean", "IS", 2),
    ("fid_train", "FID vs train", 1),
    ("classes_covered", "classes", 1),
)


def _verdicts_06(r: dict[str, Any], z: int) -> str:
    """Lesson 06's converged NU-GAN against vanilla at latent z, measure by measure; a
    called difference with its gap and twice the pooled std over seeds."""
    parts = []
    for key, name, digits in _MEASURES_06:
        outcome = r[f"ref_verdict_z{z}_{key}"]
        if outcome in ("better", "worse"):
            outcome += (
                f", gap {r[f'ref_gap_z{z}_{key}']:.{digits + 1}f} > "
                f"{r[f'ref_twice_pooled_std_z{z}_{key}']:.{digits + 1}f}"
            )
        parts.append(
            f"{name} {r[f'ref_nugan_z{z}_{key}']:.{digits}f} vs "
            f"{r[f'ref_vanilla_z{z}_{key}']:.{digits}f} ({outcome})"
        )
    return ", ".join(parts)


def _clauses_06(r: dict[str, Any]) -> list[Callable[[], str]]:
    return [
        lambda: (
            f"converged NU-GAN vs vanilla dense references ({r['ref_nugan_z10_seeds']} seeds "
            "each; better or worse only when the gap exceeds 2 x the pooled std over seeds), "
            f"latent 10: {_verdicts_06(r, 10)}; latent 1: {_verdicts_06(r, 1)}"
        ),
        lambda: (
            '"collapse goes with a larger top eigenvalue of G" on converged runs: '
            f"{r['ref_relation']} by the second-half mean ({r['ref_relation_pairs_holding']} of "
            f"{r['ref_relation_pairs_tested']} tested pairs), {r['ref_relation_median']} by the "
            f"median"
        ),
        lambda: (
            f"Lanczos agrees with eigsh to {r['lanczos_vs_eigsh_rel']:.1e} (relative) and with "
            f"the full Hessian to {r['lanczos_vs_full_hessian_rel']:.1e}"
        ),
    ]


def _clauses_07(r: dict[str, Any]) -> list[Callable[[], str]]:
    def fid_against_n() -> str:
        curve = {int(n): float(v) for n, v in r["fid_bias_generator"].items()}
        small, large = min(curve), max(curve)
        return (
            f"one generator's FID falls from {curve[small]:.1f} at N = {small:,} to "
            f"{curve[large]:.1f} at N = {large:,} (fitted limit {r['fid_infinity_generator']:.1f})"
        )

    return [
        lambda: (
            f"{r['generators_scored']} reference runs scored at N = {r['reference_samples']:,} "
            "([the course table](#every-generator-of-the-course))"
        ),
        fid_against_n,
        lambda: f"real test digits: IS {r['real_test_is']:.2f}, FID {r['real_test_fid']:.2f}",
    ]


KEY_NUMBERS = {
    "01": _clauses_01,
    "02": _clauses_02,
    "03": _clauses_03,
    "04": _clauses_04,
    "05": _clauses_05,
    "06": _clauses_06,
    "07": _clauses_07,
}


def key_numbers(payloads: dict[str, dict[str, Any]]) -> str:
    """The key numbers, one line per lesson, each clause stated from the lesson's results.

    A clause whose keys are missing (or of another type) is left out, as is a lesson
    without any clause.
    """
    parts = []
    for stem, payload in payloads.items():
        make = KEY_NUMBERS.get(stem[:2])
        if make is None:
            continue
        clauses = []
        for clause in make(payload.get("results", {})):
            try:
                clauses.append(clause())
            except (KeyError, TypeError, ValueError, IndexError, AttributeError):
                continue
        if clauses:
            parts.append(f"- lesson {stem[:2]}: " + "; ".join(clauses) + ".")
    if not parts:
        return "No lesson results in the committed notebooks yet (`make refresh`)."
    return "Key numbers of the committed notebooks (each at its defaults):\n\n" + "\n".join(parts)


def course_table_section(course_table_md: Path, payload: dict[str, Any] | None) -> str | None:
    """Lesson 07's table as the README embeds it, or None when the file is missing."""
    if not course_table_md.is_file():
        return None
    table, notes = [], []
    for line in course_table_md.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            table.append(stripped)
        elif stripped and not stripped.startswith(("#", "<!--")) and table:
            notes.append(stripped)
    if not table:
        return None
    if payload and payload.get("run_id"):
        source = f"lesson 07's run `{payload['run_id']}`"
    elif payload:
        source = f"lesson 07's committed run (finished {payload.get('finished', '?')})"
    else:
        source = "lesson 07"
    head = f"From {source}, copied from `figures/{course_table_md.name}`"
    note = " ".join(notes)
    head += f": {note}{'' if note.endswith('.') else '.'}" if note else "."
    return head + "\n\n" + "\n".join(table)


def readme_sections(
    payloads: dict[str, dict[str, Any]], course_table_md: Path | None = None
) -> dict[str, str]:
    """The text of every generated README section, by marker name."""
    sections = {"lesson-times": lesson_times_table(payloads), "key-numbers": key_numbers(payloads)}
    for stem, payload in payloads.items():
        wall = payload.get("results", {}).get("wall_time_s")
        if isinstance(wall, (int, float)):
            sections[f"lesson-time-{stem[:2]}"] = _duration(wall, short=True)
        if stem.startswith("05_"):
            try:
                sections["live-budget-05"] = live_budget_05(payload.get("results", {}))
            except (KeyError, TypeError, ValueError):
                pass  # not in the results: the README keeps its text
    course = course_table_md or committed_figures_dir() / COURSE_TABLE_FILE
    lesson_07 = next((p for stem, p in payloads.items() if stem.startswith("07_")), None)
    table = course_table_section(course, lesson_07)
    if table is not None:
        sections["course-table"] = table
    return sections


def replace_sections(text: str, sections: dict[str, str], required=REQUIRED_SECTIONS) -> str:
    """``text`` with the body of every marked section in ``sections`` replaced.

    A section on its own lines stays on its own lines; an inline one (inside a table cell)
    stays inline. Sections without markers in ``text`` are ignored, except ``required``
    ones (ValueError); marked sections without new text keep their old text.
    """
    present = {m["name"] for m in _SECTION.finditer(text)}
    missing = [name for name in required if name not in present]
    if missing:
        raise ValueError(
            "README has no generated section(s) "
            + ", ".join(f"<!-- refresh:{n} --> ... <!-- /refresh:{n} -->" for n in missing)
        )

    def body(match: re.Match) -> str:
        new = sections.get(match["name"])
        if new is None:
            return match.group(0)
        if match["body"].startswith("\n"):
            new = f"\n{new.strip()}\n"
        return f"{match['open']}{new}{match['close']}"

    return _SECTION.sub(body, text)
