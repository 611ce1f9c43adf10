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
    assert 0 <= results["plain_at_paper_lr_live"]["hq_percent"] <= 100
    assert all(len(v) == 2 for v in results["mode_hops"].values())
    assert all(0 < kb < 300 for kb in results["gif_kilobytes"].values())
    assert results["wall_time_s"] > 0 and results["cpu_time_s"] > 0


@pytest.mark.notebook
@pytest.mark.slow
def test_lesson02_runs_with_the_try_it_settings_other_loss_and_dataset(run_notebook):
    """The committed sweeps are ring tables of fixed variants: another loss or dataset for
    the live runs must not break the cells that read them."""
    results = run_notebook(
        "02_toy_mode_collapse", {**TINY, "loss": "non_saturating", "dataset": "grid"}
    )
    assert (results["loss"], results["dataset"]) == ("non_saturating", "grid")
    assert all(0 <= r["modes_covered"] <= 25 for r in results["collapse_runs"])
    assert results["remedy_beats_plain"]  # read from the ring sweep all the same


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
        "unrolled5",
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


def test_committed_lesson_states_where_the_unrolled_gan_works():
    r = committed()
    remedies = tc.committed_sweep("toy_remedies").result
    unrolled = [row for row in remedies.summary() if "unroll" in row["variant"]]
    assert {"minimax+unroll1", "unrolled5", "unrolled10"} <= {row["variant"] for row in unrolled}
    assert r["unrolled_collapsing_setting"] == {
        row["variant"]: verdicts_text(row) for row in unrolled
    }
    paper = tc.committed_sweep("toy_unrolled_paper_lr")
    assert "adam lr 0.001 (critic 0.0001)" in paper.settings and "n_critic 1" in paper.settings
    plain, unrolled5 = paper.result.row("minimax", "ring"), paper.result.row("unrolled5", "ring")
    assert plain["num_seeds"] >= 5 and unrolled5["num_seeds"] >= 5
    assert r["unrolled_paper_lr"] == {
        "plain": verdicts_text(plain),
        "unrolled5": verdicts_text(unrolled5),
        "unrolled5_beats_plain": tc.beats(paper.result, "unrolled5", "minimax", "ring"),
    }
    # the printed summary follows from the two sweeps, not from the author's hopes
    plain_collapse = remedies.row("minimax", "ring")
    collapses = 2 * plain_collapse["collapsed"] > plain_collapse["num_seeds"]
    collapses_at_paper = 2 * plain["collapsed"] > plain["num_seeds"]
    cures = (collapses and any(2 * row["covering"] > row["num_seeds"] for row in unrolled)) or (
        collapses_at_paper and r["unrolled_paper_lr"]["unrolled5_beats_plain"]
    )
    assert r["unrolled_summary"].startswith("cures a collapse" if cures else "cures no collapse")
    if r["unrolled_summary"].startswith("cures no collapse:"):
        blurry = sum(row["blurry"] for row in unrolled)
        runs = sum(row["num_seeds"] for row in unrolled)
        assert f"{blurry} of {runs} unrolled runs are blurry" in r["unrolled_summary"]
        assert collapses and not collapses_at_paper
        assert 2 * unrolled5["covering"] > unrolled5["num_seeds"]


def test_committed_lesson_describes_the_plain_gan_at_the_paper_rates_from_its_numbers():
    live = committed()["plain_at_paper_lr_live"]
    assert 0 <= live["hq_percent"] <= 100 and 0 <= live["max_snapshot_hq_percent"] <= 100
    assert live["spread"] > 0 and live["median_move"] >= 0
    spacing = live["mode_spacing"]
    assert live["wanders"] == (
        live["spread"] < spacing / 2
        and live["median_move"] > spacing / 2
        and live["max_snapshot_hq_percent"] < 50
    )


def test_committed_lesson_states_the_remedies_on_the_collapsing_least_squares_gan():
    r = committed()
    repository = tc.committed_sweep("toy_repository").result
    assert r["collapsing_losses_repository_setting"] == [
        row["variant"] for row in repository.summary() if 2 * row["collapsed"] > row["num_seeds"]
    ]
    sweep = tc.committed_sweep("toy_remedies_repository_lsq")
    assert "3x128 MLPs" in sweep.settings and "rmsprop lr 0.0001" in sweep.settings
    plain = sweep.result.row("least_squares", "wide_ring")
    assert plain["num_seeds"] >= 5
    assert r["plain_lsq_verdicts_repository_setting"] == verdicts_text(plain)
    assert set(r["lsq_remedies_repository_setting"]) == {
        "least_squares+pack2",
        "least_squares+pack4",
        "least_squares+mbstd",
    }
    for name, stated in r["lsq_remedies_repository_setting"].items():
        row = sweep.result.row(name, "wide_ring")
        assert row["num_seeds"] >= 5, name
        assert stated == {
            "beats": tc.beats(sweep.result, name, "least_squares", "wide_ring"),
            "modes": gap_word(tc.clear_difference(row, plain, "modes_covered")),
            "hq": gap_word(tc.clear_difference(row, plain, "high_quality_percent")),
            "verdicts": verdicts_text(row),
        }, name


def test_committed_lesson_separates_the_critic_rate_from_its_step_count():
    stated = committed()["unrolled_fast_critic"]
    sweep = tc.committed_sweep("toy_unrolled_fast_critic")
    assert "adam lr 0.001 betas" in sweep.settings and "n_critic 1" in sweep.settings
    assert "critic 0.0001" not in sweep.settings  # the critic at the generator's rate
    plain, unrolled5 = sweep.result.row("minimax", "ring"), sweep.result.row("unrolled5", "ring")
    assert unrolled5["num_seeds"] >= 5
    assert stated["plain"] == verdicts_text(plain)
    assert stated["unrolled5"] == verdicts_text(unrolled5)
    n = unrolled5["num_seeds"]
    if 2 * unrolled5["blurry"] > n:
        assert stated["reading"].startswith(f"blurry in {unrolled5['blurry']} of {n}")
    elif 2 * unrolled5["collapsed"] > n:
        assert stated["reading"].startswith(f"collapsed in {unrolled5['collapsed']} of {n}")
        assert f"the plain GAN is {verdicts_text(plain)}" in stated["reading"]
    elif 2 * unrolled5["covering"] > n:
        assert stated["reading"].startswith(f"covering in {unrolled5['covering']} of {n}")
    else:
        assert stated["reading"].startswith(f"{verdicts_text(unrolled5)} with one fast critic step")
        collapsing = tc.committed_sweep("toy_remedies").result.row("unrolled5", "ring")
        never_blurry = (
            unrolled5["blurry"] == 0 and 2 * collapsing["blurry"] > collapsing["num_seeds"]
        )
        assert ("never blurry" in stated["reading"]) == never_blurry
