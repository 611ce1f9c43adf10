"""Lesson 02: end to end with papermill at tiny settings, and the committed notebook's
claims at its defaults (collapse and cure, the remedies, the committed sweeps)."""

from __future__ import annotations

import pytest

from gan_utils.core.compare import gap_word
from gan_utils.core.paths import PROJECT_ROOT
from gan_utils.core.report import notebook_results
from gan_utils.toy import collapse as tc
from gan_utils.toy.runs import verdicts_text

NOTEBOOK = PROJECT_ROOT / "notebooks" / "02_toy_mode_collapse.ipynb"

TINY = {
    "num_seeds": 2,
    "num_steps": 12,
    "batch_size": 32,
    "width": 16,
    "depth": 1,
    "num_snapshots": 3,
    "live_remedies": ["pacgan2"],
    "explorer_steps": 20,
    "workers": 1,
    "threads": 1,
    "device": "cpu",
}
VERDICTS = {"collapsed", "covering", "partial", "blurry"}


@pytest.mark.notebook
@pytest.mark.slow
def test_lesson02_runs_at_tiny_settings_and_records_its_results(run_notebook):
    results = run_notebook("02_toy_mode_collapse", TINY)
    assert (results["num_seeds"], results["num_steps"], results["dataset"]) == (2, 12, "ring")
    for key in ("collapse_runs", "cure_runs"):
        assert [r["seed"] for r in results[key]] == [0, 1]
        assert all(r["verdict"] in VERDICTS and 0 <= r["modes_covered"] <= 8 for r in results[key])
    assert results["collapsed_seeds"] == sum(
        r["verdict"] == "collapsed" for r in results["collapse_runs"]
    )
    assert list(results["live_remedies"]) == ["pacgan2"]
    assert set(results["mode_hops"]) == {"collapse", "cure"}
    assert all(len(v) == 2 for v in results["mode_hops"].values())
    assert all(0 < kb < 300 for kb in results["gif_kilobytes"].values())
    assert results["wall_time_s"] > 0 and results["cpu_time_s"] > 0


def committed() -> dict:
    payload = notebook_results(NOTEBOOK)
    assert payload is not None, "the committed lesson 02 holds no results: run `make refresh`"
    return payload["results"]


def test_committed_lesson_shows_collapse_and_its_cure_at_its_defaults():
    r = committed()
    assert (r["dataset"], r["num_steps"], r["num_seeds"]) == ("ring", 3000, 3)
    assert (r["collapse_n_critic"], r["cure_n_critic"]) == (5, 1)  # one factor differs
    collapse = [run["verdict"] for run in r["collapse_runs"]]
    cure = [run["verdict"] for run in r["cure_runs"]]
    assert collapse.count("collapsed") >= 2, collapse  # sharp samples on few modes ...
    assert cure.count("covering") >= 2, cure  # ... and all modes with the other setting
    for run in r["collapse_runs"]:
        if run["verdict"] == "collapsed":  # the rule behind the label, per seed
            assert run["near_few_percent"] >= 70 and run["high_quality_percent"] >= 50
    for run in r["cure_runs"]:
        if run["verdict"] == "covering":
            assert run["modes_covered"] == 8 and run["high_quality_percent"] >= 85


def test_committed_lesson_states_what_the_committed_sweeps_hold():
    r = committed()
    remedies = tc.committed_sweep("toy_remedies")
    assert min(remedies.result.row(n, "ring")["num_seeds"] for n in r["remedy_beats_plain"]) >= 5
    for name, wins in r["remedy_beats_plain"].items():
        assert wins == tc.beats(remedies.result, name, "minimax", "ring"), name
        speed = tc.relative_speed(remedies.result, name, "minimax", "ring")
        assert r["remedy_relative_speed"][name] == pytest.approx(speed, abs=0.01)
    plain = tc.committed_sweep("toy_losses_ring").result
    papers = tc.committed_sweep("toy_wasserstein_papers").result
    for name, change in r["wasserstein_papers_vs_shared_adam"].items():
        expected = tc.clear_difference(
            papers.row(name, "ring"), plain.row(name, "ring"), "modes_covered"
        )
        assert change["modes_covered"] == gap_word(expected), name
    latent = {d: tc.committed_sweep(f"toy_latent{d}_ring").result for d in (1, 32)}
    assert set(r["latent_direction"]) == {"minimax", "least_squares"}
    for name, word in r["latent_direction"].items():
        large, small = latent[32].row(name, "ring"), latent[1].row(name, "ring")
        assert word == gap_word(tc.clear_difference(large, small, "modes_covered")), name
    repository = tc.committed_sweep("toy_repository").result
    for name, row in r["repository"].items():
        ours = repository.row(name, "wide_ring")["modes_covered_mean"]
        assert row["ours"] == pytest.approx(ours, abs=0.051), name
        assert row["figure"] == tc.REPOSITORY_FIGURES.get(name, "no figure") or (
            row["figure"] == "off the ring" and tc.REPOSITORY_FIGURES[name] is None
        )


def test_committed_lesson_explains_dips_with_the_snapshots_own_hq():
    r = committed()
    for label, dips in r["fewest_modes_late"].items():
        assert len(dips) == r["num_seeds"], label
        for dip in dips:  # the printed dip is a real snapshot of the run's second part
            assert 0 <= dip["modes"] <= 8 and 0 <= dip["hq_percent"] <= 100
            assert dip["step"] >= r["num_steps"] // 4


def test_committed_lesson_states_the_remedies_at_the_repository_setting():
    r = committed()
    sweep = tc.committed_sweep("toy_remedies_repository").result
    assert set(r["remedy_beats_plain_repository_setting"]) == {
        "pacgan2",
        "pacgan4",
        "minibatch_std",
    }
    for name, wins in r["remedy_beats_plain_repository_setting"].items():
        assert sweep.row(name, "wide_ring")["num_seeds"] >= 5, name
        assert wins == tc.beats(sweep, name, "minimax", "wide_ring"), name
    plain = sweep.row("minimax", "wide_ring")
    assert plain["num_seeds"] >= 5
    assert r["plain_verdicts_repository_setting"] == verdicts_text(plain)


def test_committed_lesson_says_whether_the_repository_setting_gaps_are_clear():
    r = committed()
    sweep = tc.committed_sweep("toy_remedies_repository").result
    plain = sweep.row("minimax", "wide_ring")
    for name, word in r["remedy_clear_modes_repository_setting"].items():
        row = sweep.row(name, "wide_ring")
        assert word == gap_word(tc.clear_difference(row, plain, "modes_covered")), name
