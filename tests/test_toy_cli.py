"""``gan-toy`` in-process at tiny settings: tables, files, aliases and argparse errors."""

from __future__ import annotations

import csv
import json

import pytest

from gan_utils.core.plotting import read_run_id
from gan_utils.core.variants import VARIANTS
from gan_utils.toy.cli import build_parser, main, settings_from_args, variants_from_args

TINY = ["--steps", "4", "--batch_size", "16", "--width", "8", "--depth", "1"]
TINY += ["--eval_samples", "100", "--device", "cpu", "--quiet"]


def test_runs_and_writes_table_csv_plot_and_gifs(tmp_path, capsys):
    argv = ["--loss", "hinge", "least-squares", "--dataset", "ring", "grid"]
    argv += ["--seeds", "0", "1", "--gif", "--plot_frequency", "1", "--out", str(tmp_path), *TINY]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "| hinge | ring | 2 |" in out and "| least_squares | grid | 2 |" in out
    markdown = (tmp_path / "toy_results.md").read_text()
    assert "* `gan-toy --loss hinge least-squares" in markdown
    assert "Wall time:" in markdown and "| least_squares | ring | 2 |" in markdown
    rows = list(csv.DictReader((tmp_path / "toy_results.csv").open()))
    assert [(r["variant"], r["dataset"]) for r in rows] == [
        ("hinge", "ring"),
        ("hinge", "grid"),
        ("least_squares", "ring"),
        ("least_squares", "grid"),
    ]
    assert all(r["num_seeds"] == "2" for r in rows)
    assert (tmp_path / "toy_results_samples.png").stat().st_size > 1000
    gifs = sorted(p.name for p in tmp_path.glob("*.gif"))
    assert gifs == [
        f"toy_results_{v}_{d}.gif" for v in ("hinge", "least_squares") for d in ("grid", "ring")
    ]
    # outside a lesson the figures carry a run id without a lesson: <commit>[+dirty]@<time>
    ids = {read_run_id(tmp_path / name) for name in [*gifs, "toy_results_samples.png"]}
    assert len(ids) == 1 and None not in ids and "@" in ids.pop()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--loss", "standard"], "minimax"),
        (["--loss", "non-saturating", "--topk"], "non_saturating_topk"),
        (["--loss", "least-squares"], "least_squares"),
        (["--loss", "wasserstein-gp"], "wgan_gp"),
        (["--loss", "wasserstein-gp", "--topk"], "wgan_gp_topk"),
        (["--loss", "wasserstein", "--spectral_norm"], "wasserstein_sn"),
        (["--loss", "wasserstein", "--clip_weights", "0.01"], "wasserstein_clip"),
        (["--loss", "hinge", "--spectral_norm"], "hinge+sn"),
    ],
)
def test_repository_names_and_switches_select_variants(argv, expected):
    parser = build_parser()
    args = parser.parse_args(argv)
    assert [v.name for v in variants_from_args(args, parser)] == [expected]


def test_all_selects_the_ten_variants_and_flags_set_the_settings():
    parser = build_parser()
    args = parser.parse_args(
        ["--latent_size", "8", "--d_updates", "3", "--lr", "0.001", "--samples", "10000"]
        + ["--batch_size", "500", "--epochs", "7", "--optimizer", "rmsprop"]
        + ["--lr_decay_from", "0.5"]
    )
    assert [v.name for v in variants_from_args(args, parser)] == list(VARIANTS)
    settings = settings_from_args(args)
    assert (settings.latent_dim, settings.n_critic, settings.lr) == (8, 3, 0.001)
    assert settings.num_steps == 7 * 20  # an epoch: 10,000 samples / batch 500 = 20 steps
    assert settings.optimizer == "rmsprop" and settings.num_real_samples == 10_000
    assert settings.lr_decay_from == 0.5
    args = parser.parse_args(["--epochs", "7", "--steps", "33"])
    assert settings_from_args(args).num_steps == 33  # --steps wins
    assert settings_from_args(args).lr_decay_from == 0.5  # the lesson's default
    assert settings_from_args(parser.parse_args(["--lr_decay_from", "none"])).lr_decay_from is None
    args = parser.parse_args(["--preset", "repository"])
    repository = settings_from_args(args)
    assert (repository.width, repository.depth, repository.batch_size) == (256, 4, 500)
    assert repository.lr_decay_from is None and repository.lr == 1e-4


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["--loss", "wgan"], ["--loss", "invalid choice", "minimax", "wgan_gp_topk", "standard"]),
        (["--dataset", "spiral"], ["--dataset", "invalid choice", "ring", "grid", "wide_ring"]),
        (["--optimizer", "lbfgs"], ["--optimizer", "adam", "rmsprop", "sgd"]),
        (["--device", "tpu"], ["--device", "auto", "cpu", "cuda"]),
        (["--steps", "0"], ["--steps", "must be an integer >= 1, got 0"]),
        (["--steps", "2.5"], ["--steps", "must be an integer >= 1, got '2.5'"]),
        (["--lr", "-1"], ["--lr", "number > 0"]),
        (["--lr", "nan"], ["--lr", "finite number > 0"]),
        (["--seeds", "x"], ["--seeds", "integer >= 0", "'x'"]),
        (["--topk_nu", "1.5"], ["--topk_nu", "(0, 1]"]),
        (["--lr_decay_from", "1"], ["--lr_decay_from", "[0, 1)"]),
        (["--clip_weights", "-0.1"], ["--clip_weights", ">= 0"]),
        (["--depth", "-1"], ["--depth", "integer >= 0"]),
        (["--preset", "huge"], ["--preset", "lesson", "repository"]),
        (["--lr_d", "0"], ["--lr_d", "number > 0"]),
        (["--betas", "0.5", "1"], ["--betas", "[0, 1)"]),
        (["--threads", "0"], ["--threads", "must be an integer >= 1, got 0"]),
        (["--threads", "many"], ["--threads", "'many'"]),
    ],
)
def test_bad_flags_exit_with_the_choices(argv, needles, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    for needle in needles:
        assert needle in err


@pytest.mark.parametrize("samples", ["1", "3", "17", "1001"])
def test_any_samples_value_works(samples, tmp_path, capsys):
    argv = ["--loss", "wasserstein-gp", "--dataset", "wide_ring", "--seeds", "0"]
    assert main([*argv, "--samples", samples, "--out", str(tmp_path), *TINY]) == 0
    assert "| wgan_gp | wide_ring | 1 |" in capsys.readouterr().out


def test_append_resumes_a_sweep_and_refuses_other_settings(tmp_path, capsys):
    base = ["--loss", "hinge", "--dataset", "ring", "--out", str(tmp_path), *TINY]
    assert main([*base, "--seeds", "0"]) == 0
    assert main([*base, "--seeds", "0", "1", "--append"]) == 0
    out = capsys.readouterr().out
    assert "1 runs already in" in out and "1 to train" in out
    runs = list(csv.DictReader((tmp_path / "toy_results_runs.csv").open()))
    assert [(r["variant"], r["seed"]) for r in runs] == [("hinge", "0"), ("hinge", "1")]
    assert "| hinge | ring | 2 |" in (tmp_path / "toy_results.md").read_text()
    assert (tmp_path / "toy_results.md").read_text().count("* `gan-toy") == 2
    commands = json.loads((tmp_path / "toy_results_commands.json").read_text())
    assert [(c["runs"], c["finished"]) for c in commands] == [(1, True), (1, True)]
    assert all(c["threads_per_run"] >= 1 for c in commands)
    assert main([*base, "--seeds", "0", "1", "--append"]) == 0  # nothing left to train
    assert len(json.loads((tmp_path / "toy_results_commands.json").read_text())) == 2
    with pytest.raises(SystemExit):
        main([*base, "--seeds", "2", "--append", "--lr", "0.5"])
    assert "other settings" in capsys.readouterr().err


def test_retrain_replaces_the_runs_of_named_variants_once(tmp_path, capsys):
    base = ["--dataset", "ring", "--seeds", "0", "1", "--out", str(tmp_path), *TINY]
    assert main(["--loss", "hinge", "minimax", *base]) == 0
    runs_path = tmp_path / "toy_results_runs.csv"
    before = {(r["variant"], r["seed"]): r for r in csv.DictReader(runs_path.open())}
    retrain = ["--loss", "minimax", "--retrain", "standard", "--append", *base]  # an alias
    assert main(retrain) == 0
    out = capsys.readouterr().out
    assert "--retrain: dropped 2 runs of minimax" in out and "2 to train" in out
    after = {(r["variant"], r["seed"]): r for r in csv.DictReader(runs_path.open())}
    assert set(after) == set(before)  # every run is still there ...
    assert after[("hinge", "0")] == before[("hinge", "0")]  # ... hinge untouched
    assert after[("minimax", "0")]["seconds"] != before[("minimax", "0")]["seconds"]  # retrained
    commands = json.loads((tmp_path / "toy_results_commands.json").read_text())
    assert commands[-1]["note"] == "retrained minimax: their earlier runs dropped"
    assert "retrained minimax" in (tmp_path / "toy_results.md").read_text()
    assert main(retrain) == 0  # the same command again resumes: nothing dropped or trained
    assert "dropped" not in capsys.readouterr().out
    assert len(json.loads((tmp_path / "toy_results_commands.json").read_text())) == 2
    with pytest.raises(SystemExit):
        main(["--loss", "minimax", "--retrain", "minimax", *base])  # without --append
    assert "only with --append" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--loss", "minimax", "--retrain", "hinge", "--append", *base])
    assert "not among this command's variants" in capsys.readouterr().err


def test_a_failed_run_is_reported_the_rest_written_and_append_trains_only_it(
    tmp_path, capsys, monkeypatch
):
    from gan_utils.toy import runs as toy_runs

    real_train_toy = toy_runs.train_toy

    def fails_for_seed_1(variant, dataset, seed, settings=None):
        if seed == 1:
            raise RuntimeError("simulated failure of one run")
        return real_train_toy(variant, dataset, seed, settings)

    base = ["--loss", "hinge", "--dataset", "ring", "--seeds", "0", "1", "2"]
    base += ["--out", str(tmp_path), *TINY]
    monkeypatch.setattr(toy_runs, "train_toy", fails_for_seed_1)
    assert main(base) == 1
    captured = capsys.readouterr()
    assert "hinge ring seed 1 FAILED: RuntimeError: simulated failure of one run" in captured.out
    assert "1 of 3 runs failed" in captured.err and "--append" in captured.err
    runs = list(csv.DictReader((tmp_path / "toy_results_runs.csv").open()))
    assert [r["seed"] for r in runs] == ["0", "2"]
    commands = json.loads((tmp_path / "toy_results_commands.json").read_text())
    assert (commands[-1]["runs"], commands[-1]["finished"]) == (2, False)
    monkeypatch.setattr(toy_runs, "train_toy", real_train_toy)
    assert main([*base, "--append"]) == 0
    assert "2 runs already in" in capsys.readouterr().out
    runs = list(csv.DictReader((tmp_path / "toy_results_runs.csv").open()))
    assert [r["seed"] for r in runs] == ["0", "1", "2"]


TIMING = {"seconds", "steps_per_second"}


def _runs_without_timing(path):
    return [
        {k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(path.open())
    ]


@pytest.mark.slow
@pytest.mark.cluster
def test_a_sweep_on_a_dask_cluster_gives_the_table_of_one_worker(
    tmp_path, capsys, local_cluster, monkeypatch
):
    base = ["--loss", "hinge", "minimax", "--dataset", "ring", "--seeds", "0", "1", *TINY]
    base += ["--threads", "1"]  # the cluster's workers run 1 thread each: the same arithmetic
    assert main([*base, "--out", str(tmp_path / "here"), "--workers", "1"]) == 0
    assert (
        main([*base, "--out", str(tmp_path / "dask"), "--cluster", local_cluster.scheduler_address])
        == 0
    )
    here = _runs_without_timing(tmp_path / "here" / "toy_results_runs.csv")
    there = _runs_without_timing(tmp_path / "dask" / "toy_results_runs.csv")
    assert len(here) == 4 and here == there
