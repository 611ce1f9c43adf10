"""Collapse over training and the committed sweeps (gan_utils.toy.collapse), checked on
hand-made samples whose answers are known by construction."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gan_utils.toy.collapse import (
    PACGAN_TABLE,
    beats,
    committed_sweep,
    mode_hops,
    modes_over_training,
    occupancy,
    occupied_modes,
    pacgan_comparison_markdown,
    relative_speed,
    verdict_counts,
)
from gan_utils.toy.coverage import ModeCoverage, mode_coverage
from gan_utils.toy.mixtures import ring
from gan_utils.toy.runs import SweepResult, ToyRun, write_runs_csv

RING = ring()  # 8 modes, radius 2, std 0.02: spacing 4 sin(pi / 8) = 1.531
CENTRES = RING.centres.numpy().astype(np.float64)


def at_modes(counts: dict[int, int], jitter: float = 0.0, seed: int = 0) -> np.ndarray:
    """``counts[k]`` samples at centre k (plus Gaussian jitter of std ``jitter``)."""
    rng = np.random.default_rng(seed)
    parts = [CENTRES[k] + jitter * rng.standard_normal((n, 2)) for k, n in counts.items()]
    return np.concatenate(parts)


def run_with(variant: str, seed: int, samples: np.ndarray, speed: float = 100.0) -> ToyRun:
    metrics = mode_coverage(samples, RING.centres, RING.std)
    return ToyRun(variant, "ring", seed, metrics, [], speed, 1.0, False)


# ---- occupancy and hops ---------------------------------------------------------------------
def test_occupancy_counts_the_share_near_each_mode():
    far = np.full((10, 2), 10.0)  # near no mode
    # a quarter spacing is 0.383: 0.3 from a centre is near, 0.5 is not
    off = CENTRES[3] + np.array([[0.3, 0.0], [0.0, 0.5]])
    samples = np.concatenate([at_modes({0: 60, 5: 28}), far, off])
    steps, shares = occupancy([(7, samples)], RING)
    assert steps.tolist() == [7]
    expected = np.zeros(8)
    expected[0], expected[5], expected[3] = 60 / 100, 28 / 100, 1 / 100
    np.testing.assert_allclose(shares[0], expected)


def test_occupancy_ignores_nan_samples_and_rejects_no_snapshots():
    samples = np.concatenate([at_modes({2: 5}), np.full((5, 2), np.nan)])
    _, shares = occupancy([(0, samples)], RING)
    assert shares[0, 2] == pytest.approx(0.5) and shares.sum() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="snapshots"):
        occupancy([], RING)


def test_mode_hops_counts_changes_of_the_occupied_set():
    shares = np.zeros((5, 8))
    shares[0, 0] = shares[1, 0] = 0.9  # stays on mode 0
    shares[2, 3] = 0.9  # hops to 3
    shares[3] = 0.0  # an empty snapshot breaks the chain: not a hop either way
    shares[4, 5] = 0.9
    assert occupied_modes(shares) == [
        frozenset({0}),
        frozenset({0}),
        frozenset({3}),
        frozenset(),
        frozenset({5}),
    ]
    assert mode_hops(shares) == 1
    shares[4, 3] = 0.2  # below the 0.25 threshold asked for next: still {5}
    assert mode_hops(shares, min_share=0.25) == 1
    with pytest.raises(ValueError, match="min_share"):
        mode_hops(shares, min_share=0.0)


def test_modes_over_training_scales_the_20_of_2500_rule():
    # 250 samples: a mode needs ceil(20 * 250 / 2500) = 2 HQ samples
    samples = np.concatenate([at_modes({0: 246, 1: 2, 2: 1}), np.full((1, 2), 9.0)])
    steps, covered, hq = modes_over_training([(0, samples), (100, at_modes({4: 2500}))], RING)
    assert steps.tolist() == [0, 100]
    assert covered.tolist() == [2, 1]
    assert hq[0] == pytest.approx(100 * 249 / 250) and hq[1] == pytest.approx(100.0)
    # the unscaled rule would cover only mode 0 in the first snapshot
    assert mode_coverage(samples, RING.centres, RING.std).modes_covered == 1


# ---- comparisons ----------------------------------------------------------------------------
def sweep_of_two() -> SweepResult:
    collapsed = [run_with("minimax", s, at_modes({0: 2000, 1: 500}, 0.01, s), 200) for s in (0, 1)]
    spread = [
        run_with("pacgan2", s, at_modes(dict.fromkeys(range(8), 300), 0.01, s), 100) for s in (0, 1)
    ]
    return SweepResult(collapsed + spread)


def test_beats_needs_more_modes_and_no_lower_hq():
    result = sweep_of_two()
    assert beats(result, "pacgan2", "minimax", "ring")
    assert not beats(result, "minimax", "pacgan2", "ring")
    blurred = [run_with("blur", s, at_modes(dict.fromkeys(range(8), 300), 0.04, s)) for s in (0, 1)]
    result = SweepResult(result.runs + blurred)
    assert result.row("blur", "ring")["modes_covered_mean"] > 2  # more modes ...
    assert not beats(result, "blur", "minimax", "ring")  # ... but lower % HQ
    assert relative_speed(result, "pacgan2", "minimax", "ring") == pytest.approx(0.5)


def test_verdict_counts():
    result = sweep_of_two()
    assert verdict_counts(result.runs, "collapsed") == 2
    assert verdict_counts(result.runs, "covering") == 2
    with pytest.raises(ValueError, match="verdict"):
        verdict_counts(result.runs, "sharp")


def test_pacgan_comparison_shows_both_rules_and_the_published_rows():
    text = pacgan_comparison_markdown(
        {"ring": sweep_of_two()}, {"minimax": "GAN (ours)"}, ["GAN", "PacGAN4"]
    )
    lines = text.splitlines()
    assert "| ring | GAN (published) | 6.3 / 8 | - | 98.2 | 0.45 | 10 trials |" in lines
    assert any(line.startswith("| ring | PacGAN4 (published) | 7.8 / 8") for line in lines)
    ours = next(line for line in lines if "GAN (ours)" in line)
    assert "| 2.0 ± 0.0 / 8 | 2.0 ± 0.0 / 8 |" in ours and "2 seeds" in ours
    assert not any("grid" in line for line in lines)  # only the datasets given
    assert {row.dataset for row in PACGAN_TABLE} == {"ring", "grid"}


# ---- committed sweeps -----------------------------------------------------------------------
def write_sweep(folder, name: str, settings: list[str]) -> None:
    runs = [run_with("minimax", s, at_modes({0: 100})) for s in range(len(settings))]
    path = folder / f"{name}_runs.csv"
    write_runs_csv(runs[:1], path, settings[0])
    if len(settings) > 1:  # a second settings text in the same file
        other = folder / "other.csv"
        write_runs_csv(runs[1:], other, settings[1])
        path.write_text(path.read_text() + other.read_text().split("\n", 1)[1])
    commands = [{"command": "gan-toy --seeds 0", "wall_time_s": 12, "runs": 1}]
    (folder / f"{name}_commands.json").write_text(json.dumps(commands))


def test_committed_sweep_reads_runs_and_commands(tmp_path):
    write_sweep(tmp_path, "toy_a", ["3000 steps"])
    sweep = committed_sweep("toy_a", tmp_path)
    assert sweep.settings == "3000 steps" and sweep.seeds() == [0]
    assert sweep.wall_time_s == 12
    assert sweep.commands_markdown() == "* `gan-toy --seeds 0` (12 s, 1 runs)"
    assert sweep.markdown() == sweep.commands_markdown() + "\n\n" + sweep.result.to_markdown()
    assert sweep.result.runs[0].metrics.modes_covered == 1
    assert sweep.finished  # no "finished" field: an older, complete command
    commands = [
        {"command": "a", "wall_time_s": 5, "runs": 1, "finished": False},
        {"command": "a", "wall_time_s": 7, "runs": 0, "finished": True},
    ]
    (tmp_path / "toy_a_commands.json").write_text(json.dumps(commands))
    assert committed_sweep("toy_a", tmp_path).finished  # interrupted, then resumed
    (tmp_path / "toy_a_commands.json").write_text(json.dumps(commands[:1]))
    assert not committed_sweep("toy_a", tmp_path).finished


def test_committed_sweep_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="toy_b_runs.csv"):
        committed_sweep("toy_b", tmp_path)
    write_sweep(tmp_path, "toy_c", ["3000 steps", "9000 steps"])
    with pytest.raises(ValueError, match="different settings"):
        committed_sweep("toy_c", tmp_path)
    (tmp_path / "toy_d_runs.csv").write_text(
        (tmp_path / "toy_c_runs.csv").read_text().split("\n")[0]
    )
    (tmp_path / "toy_d_commands.json").write_text("[]")
    with pytest.raises(ValueError, match="no runs"):
        committed_sweep("toy_d", tmp_path)


def test_mode_coverage_near_counts_feed_the_collapse_share():
    m = mode_coverage(at_modes({0: 1800, 1: 200, 2: 100, 3: 100, 4: 300}), RING.centres, RING.std)
    assert isinstance(m, ModeCoverage)
    # the 4 most visited modes hold 1800 + 300 + 200 + 100 of 2500 samples
    assert m.near_few_percent == pytest.approx(100 * 2400 / 2500)
    assert m.verdict() == "collapsed"
    assert math.isfinite(m.kl_to_uniform)


# ---- figures --------------------------------------------------------------------------------
def test_occupancy_map_draws_modes_as_rows_and_snapshots_as_columns():
    import matplotlib.pyplot as plt

    from gan_utils.toy.plots import plot_occupancy

    snapshots = [(0, at_modes({1: 10})), (50, at_modes({1: 5, 6: 5})), (100, at_modes({6: 10}))]
    steps, shares = occupancy(snapshots, RING)
    ax = plot_occupancy(steps, shares, title="hop")
    image = ax.images[0].get_array()
    assert image.shape == (8, 3)  # modes x snapshots
    assert image[1, 0] == 1.0 and image[6, 1] == 0.5 and image[6, 2] == 1.0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "50", "100"]
    with pytest.raises(ValueError, match="shares"):
        plot_occupancy(steps, shares[:2])
    plt.close("all")


def test_modes_over_training_plot_has_one_line_per_run_and_a_legend_per_label():
    import matplotlib.pyplot as plt

    from gan_utils.toy.plots import plot_modes_over_training

    curves = {
        "collapse": [(np.array([0, 10]), np.array([0, 2])), (np.array([0, 10]), np.array([1, 3]))],
        "cure": [(np.array([0, 10]), np.array([0, 8]))],
    }
    ax = plot_modes_over_training(curves, num_modes=8)
    data_lines = [line for line in ax.lines if len(line.get_xdata()) == 2 and line.get_label()]
    assert len([line for line in ax.lines if list(line.get_xdata()) == [0, 10]]) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["collapse", "cure"]
    assert data_lines
    with pytest.raises(ValueError, match="curves"):
        plot_modes_over_training({}, 8)
    plt.close("all")


def test_run_labels_give_every_run_its_own_marker_and_legend_entry():
    import matplotlib.pyplot as plt

    from gan_utils.toy.plots import plot_over_training

    steps = np.array([0, 10, 20])
    curves = {"collapse": [(steps, np.array([1, 2, 3])), (steps, np.array([3, 2, 1]))],
              "cure": [(steps, np.array([50, 90, 95]))]}  # fmt: skip
    ax = plot_over_training(curves, "% HQ", 100, run_labels=["seed 0", "seed 1"])
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["collapse, seed 0", "collapse, seed 1", "cure, seed 0"]
    runs = [line for line in ax.lines if len(line.get_xdata()) == 3]
    assert [line.get_marker() for line in runs] == ["o", "s", "o"]
    assert ax.get_ylabel() == "% HQ" and ax.get_ylim()[1] > 100
    with pytest.raises(
        ValueError, match="run_labels must name every run of a label \\(2\\), got 1"
    ):
        plot_over_training(curves, "% HQ", 100, run_labels=["seed 0"])
    plt.close("all")


def test_clear_difference_needs_a_gap_beyond_twice_the_pooled_spread():
    from gan_utils.toy.collapse import clear_difference

    def row(mean, std, n=3):
        return {"modes_covered_mean": mean, "modes_covered_std": std, "num_seeds": n}

    assert clear_difference(row(8.0, 0.0), row(2.4, 0.5), "modes_covered") == 1
    assert clear_difference(row(2.4, 0.5), row(8.0, 0.0), "modes_covered") == -1
    # pooled std 1: a gap of 2 is not clear, a gap of 2.1 is
    assert clear_difference(row(5.0, 1.0), row(3.0, 1.0), "modes_covered") == 0
    assert clear_difference(row(5.1, 1.0), row(3.0, 1.0), "modes_covered") == 1
    assert clear_difference(row(5.0, math.nan, 1), row(3.0, math.nan, 1), "modes_covered") == 0
    assert clear_difference(row(math.nan, 1.0), row(3.0, 1.0), "modes_covered") == 0


def test_runs_markdown_has_one_row_per_run_with_its_verdict_and_label():
    result = sweep_of_two()
    lines = result.runs_markdown().splitlines()
    assert len(lines) == 2 + 4
    assert lines[2].startswith("| minimax | ring | 0 | 2 / 8 | 2 / 8 | 100.0 | 100.0 |")
    assert lines[2].rstrip().endswith("| collapsed | 200 |")
    assert "| covering |" in lines[4]
    labelled = result.runs_markdown(label=lambda run: f"{run.variant}, seed {run.seed}")
    assert labelled.splitlines()[3].startswith("| minimax, seed 1 | ring | 1 |")
