"""``make bench``: the reference loop matches the library, ratios, and a quick run."""

from __future__ import annotations

import copy
import json
import math
from dataclasses import replace

import pytest
import torch

from benchmarks.bench import QUICK, SECTIONS, main
from benchmarks.reference import ReferenceGAN, counted_flops, mlp_gan_step_flops
from benchmarks.timing import (
    Row,
    fmt,
    interleaved,
    median,
    paired_quartiles,
    paired_ratio,
    ratio,
    table,
)
from gan_utils.core.runtime import set_seed
from gan_utils.core.train import train
from gan_utils.core.variants import get_variant
from gan_utils.toy.mixtures import get_toy_dataset
from gan_utils.toy.runs import REPOSITORY_SETTINGS, build_models, toy_train_config


def _small_settings():
    return replace(REPOSITORY_SETTINGS, width=32, depth=2, batch_size=50)


@pytest.mark.parametrize("name", ["minimax", "wgan_gp", "non_saturating"])
def test_reference_loop_computes_the_library_losses_on_the_first_step(name):
    variant = get_variant(name)
    settings = _small_settings()
    mixture = get_toy_dataset("grid")
    data = mixture.sample(1000, generator=torch.Generator().manual_seed(0))
    set_seed(0)
    G, D = build_models(variant, mixture, settings)
    G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
    config = replace(toy_train_config(variant, 3, settings), num_steps=1, log_every=1)
    history = train(G, D, data, replace(config, device="cpu"))
    reference = ReferenceGAN(
        G_ref,
        D_ref,
        data,
        variant.loss,
        settings.batch_size,
        settings.latent_dim,
        variant.n_critic,
        variant.gp_weight,
        settings.optimizer,
        settings.lr,
        settings.betas,
    )
    set_seed(3)  # train() seeds every RNG with config.seed
    d_loss, g_loss = reference.step()
    assert history.series("d_loss")[1][0] == pytest.approx(float(d_loss), rel=1e-5, abs=1e-7)
    assert history.series("g_loss")[1][0] == pytest.approx(float(g_loss), rel=1e-5, abs=1e-7)
    # and both updated the networks to the same weights
    for p, q in zip(G.parameters(), G_ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


def test_hand_count_of_mlp_flops_matches_the_shape_formulas():
    settings = _small_settings()
    mixture = get_toy_dataset("grid")
    set_seed(0)
    G, D = build_models(get_variant("minimax"), mixture, settings)
    reference = ReferenceGAN(G, D, mixture, "minimax", 50, settings.latent_dim)
    expected = mlp_gan_step_flops(settings.latent_dim, 2, 32, 2, 50, n_critic=1)
    assert counted_flops(reference.step) == expected


def test_ratio_is_the_ratio_of_medians():
    assert ratio([1.0, 9.0, 2.0], [4.0, 4.0, 100.0]) == pytest.approx(2.0 / 4.0)
    assert ratio([3.0], [1.5]) == pytest.approx(2.0)
    assert math.isnan(ratio([], [1.0])) and math.isnan(ratio([1.0], [0.0]))
    assert math.isnan(ratio([1.0], [float("nan")]))


def test_paired_ratio_is_the_median_of_the_per_round_ratios():
    # a slow spell in round 2 hits both candidates: the paired ratio ignores it
    ours, reference = [1.1, 3.3, 1.1, 1.2], [1.0, 3.0, 1.0, 1.0]
    assert paired_ratio(ours, reference) == pytest.approx(1.1)
    assert paired_ratio([2.0, float("nan")], [1.0, 1.0]) == pytest.approx(2.0)
    assert math.isnan(paired_ratio([1.0], [0.0]))
    with pytest.raises(ValueError):
        paired_ratio([1.0, 2.0], [1.0])


def test_paired_quartiles_bracket_the_paired_ratio():
    ours, reference = [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 1.0, 1.0, 1.0]
    assert paired_quartiles(ours, reference) == pytest.approx((2.0, 4.0))
    assert paired_quartiles([3.0], [1.5]) == pytest.approx((2.0, 2.0))


def test_interleaved_alternates_the_order_and_uses_returned_seconds():
    calls = []
    times = interleaved(
        {"a": lambda: calls.append("a") or 0.25, "b": lambda: calls.append("b")}, repeats=3
    )
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert times["a"] == [0.25, 0.25, 0.25] and len(times["b"]) == 3
    assert all(0 <= t < 1 for t in times["b"])


def test_table_and_number_format():
    assert fmt(1234.5) == "1,234" or fmt(1234.5) == "1,235"
    assert fmt(0.01234) == "0.0123" and fmt(None) == "-" and fmt(float("nan")) == "nan"
    row = Row(
        "toy", "x", 2.0, "steps/s", 4.0, "minimal loop", 0.5, "ours / minimal", ">= 0.9", False
    )
    text = table([row])
    assert "| toy: x | 2.00 steps/s | 4.00 steps/s (minimal loop) | 0.500 (ours / minimal)" in text
    assert "**no**" in text


def test_quick_bench_writes_the_results_file(tmp_path):
    out = tmp_path / "results.json"
    main(["--quick", "--out", str(out)])
    payload = json.loads(out.read_text())
    assert set(payload) >= {"rows", "machine", "seconds_total", "section_seconds", "details"}
    assert set(payload["section_seconds"]) == set(SECTIONS)
    assert payload["settings"]["toy_steps"] == QUICK.toy_steps
    machine = payload["machine"]
    assert len(machine["load_average_start"]) == 3 and len(machine["load_average_end"]) == 3
    rows = {(r["section"], r["name"]): r for r in payload["rows"]}
    keys = {"section", "name", "ours", "unit", "reference", "ratio", "target", "met", "note"}
    assert all(keys <= set(r) for r in payload["rows"])
    sections = {section for section, _ in rows}
    assert sections == {"machine", "toy", "toy_quality", "mnist", "metrics", "hessian"}
    speed = next(
        r for (s, n), r in rows.items() if s == "toy" and n.startswith("minimax (n_critic")
    )
    details = payload["details"]["toy_minimax"]
    seconds, steps = details["seconds"], details["steps_per_round"]
    assert speed["ours"] == pytest.approx(steps / median(seconds["gan_utils"]), rel=1e-9)
    # steps/s ratio: per round, reference time / library time, then the median
    assert speed["ratio"] == pytest.approx(
        paired_ratio(seconds["reference"], seconds["gan_utils"]), rel=1e-9
    )
    assert speed["met"] == (speed["ratio"] >= 0.9)
    hvps = next(r for (s, n), r in rows.items() if s == "hessian" and "Hessian-vector" in n)
    assert hvps["ours"] >= 5 and hvps["reference"] >= 5


@pytest.mark.slow
def test_quick_threads_benchmark_measures_both_ways_and_writes_its_file(monkeypatch, tmp_path):
    from benchmarks import threads

    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    before = torch.get_num_threads()
    try:
        results = threads.main(["--quick"])
    finally:
        torch.set_num_threads(before)
    assert set(results["dcgan_seconds_per_step"]) == {"1", "2"}
    assert set(results["toy_steps_per_second"]) == {"1", "2"}
    assert set(results["toy_sweep_wall_seconds"]) == {
        "2 workers x 1 thread",
        "1 worker x 2 threads",
    }
    values = [
        *results["dcgan_seconds_per_step"].values(),
        *results["toy_steps_per_second"].values(),
    ]
    assert all(math.isfinite(v) and v > 0 for v in values)
    written = json.loads((tmp_path / "runs" / "bench" / "threads.json").read_text())
    assert written["cores"] == 2 and written["quick"] is True
