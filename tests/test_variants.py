"""The ten toy variants: each builds and trains, and each does what its name says."""

from __future__ import annotations

import dataclasses
import math
import statistics

import numpy as np
import pytest
import torch

from gan_utils.core.loop import every
from gan_utils.core.train import train
from gan_utils.core.variants import (
    ALIASES,
    REMEDIES,
    VARIANTS,
    Variant,
    customise,
    get_variant,
)
from gan_utils.toy.coverage import ModeCoverage
from gan_utils.toy.mixtures import grid
from gan_utils.toy.runs import (
    REPOSITORY_SETTINGS,
    SweepResult,
    ToyRun,
    ToySettings,
    build_models,
    sweep,
    toy_train_config,
    train_toy,
)

TINY = ToySettings(
    num_steps=3, batch_size=32, width=16, depth=1, eval_samples=200, device="cpu", log_every=1
)
WASSERSTEIN_FAMILY = {
    "wasserstein",
    "wasserstein_clip",
    "wasserstein_sn",
    "wgan_gp",
    "wgan_gp_topk",
}


def test_there_are_exactly_the_ten_loss_variants_and_six_remedies_of_the_lesson():
    assert list(REMEDIES) == [
        "pacgan2",
        "pacgan3",
        "pacgan4",
        "minibatch_std",
        "unrolled5",
        "unrolled10",
    ]
    assert [name for name in VARIANTS if name not in REMEDIES] == [
        "minimax",
        "non_saturating",
        "non_saturating_topk",
        "hinge",
        "least_squares",
        "wasserstein",
        "wasserstein_clip",
        "wasserstein_sn",
        "wgan_gp",
        "wgan_gp_topk",
    ]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_builds_and_trains_a_few_steps(name):
    run = train_toy(name, "grid", seed=0, settings=TINY)
    assert run.variant == name and not run.diverged
    assert run.history.extras["steps"] == 3
    assert isinstance(run.metrics, ModeCoverage) and run.metrics.num_samples == 200
    assert run.steps_per_second > 0
    config = toy_train_config(VARIANTS[name], 0, TINY)
    assert config.n_critic == (5 if name in WASSERSTEIN_FAMILY else 1)
    assert config.loss == ("wasserstein" if name in WASSERSTEIN_FAMILY else VARIANTS[name].loss)
    assert config.gp_weight == (10.0 if name.startswith("wgan_gp") else 0.0)
    assert config.topk == name.endswith("topk")


def test_an_unknown_variant_lists_the_choices():
    with pytest.raises(ValueError, match="variant must be one of") as error:
        get_variant("wgan-gp-typo")
    for name in [*VARIANTS, *ALIASES]:
        assert name in str(error.value)
    with pytest.raises(TypeError, match="variant must be one of"):
        get_variant(3)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"loss": "vanilla"}, ValueError, "loss"),
        ({"loss": None}, TypeError, "loss"),
        ({"n_critic": 0}, ValueError, "n_critic"),
        ({"n_critic": 2.5}, TypeError, "n_critic"),
        ({"clip_value": -0.01}, ValueError, "clip_value"),
        ({"gp_weight": "10"}, TypeError, "gp_weight"),
        ({"topk": "yes"}, TypeError, "topk"),
    ],
)
def test_a_variant_checks_its_fields(kwargs, error, name):
    fields = {"name": "x", "loss": "hinge", "description": "x", **kwargs}
    with pytest.raises(error, match=name):
        Variant(**fields)


def test_customise_checks_its_options():
    with pytest.raises(TypeError, match="n_critic"):
        customise("hinge", n_critic=2.5)
    with pytest.raises(ValueError, match="n_critic"):
        customise("hinge", n_critic=0)
    with pytest.raises(ValueError, match="clip_value"):
        customise("wasserstein", clip_value=-0.01)
    with pytest.raises(TypeError, match="spectral_norm"):
        customise("hinge", spectral_norm="yes")
    assert customise("hinge", clip_value=0) is VARIANTS["hinge"]


def test_the_repository_names_are_aliases():
    assert ALIASES == {
        "standard": "minimax",
        "non-saturating": "non_saturating",
        "least-squares": "least_squares",
        "wasserstein-gp": "wgan_gp",
    }
    assert get_variant("wasserstein-gp") is VARIANTS["wgan_gp"]


def test_n_critic_and_optimiser_are_settable():
    settings = dataclasses.replace(TINY, n_critic=2, optimizer="rmsprop", lr=1e-4)
    config = toy_train_config(VARIANTS["wgan_gp"], 0, settings)
    assert (config.n_critic, config.optimizer, config.lr_g, config.lr_d) == (
        2,
        "rmsprop",
        1e-4,
        1e-4,
    )
    run = train_toy("wgan_gp", "ring", 0, settings)
    assert isinstance(run.generator, torch.nn.Module) and run.history.extras["steps"] == 3


def count_generator_samples_with_gradient(name: str, settings: ToySettings) -> list[int]:
    """How many of G's B outputs receive a gradient in each generator step."""
    variant = VARIANTS[name]
    torch.manual_seed(0)
    generator, critic = build_models(variant, grid(), settings)
    counts: list[int] = []

    def on_output(module, inputs, output):
        if output.requires_grad:  # the generator step (the critic step runs G without grad)
            output.register_hook(lambda g: counts.append(int((g.abs().sum(1) > 0).sum())))

    generator.register_forward_hook(on_output)
    train(generator, critic, grid(), toy_train_config(variant, 0, settings))
    return counts


@pytest.mark.parametrize("name", ["non_saturating_topk", "wgan_gp_topk"])
def test_topk_uses_k_samples_decaying_geometrically_to_the_floor(name):
    settings = dataclasses.replace(
        TINY,
        num_steps=6,
        batch_size=64,
        topk_gamma=0.5,
        topk_nu=0.25,
        steps_per_epoch=1,
        n_critic=1,
    )
    # k = max(gamma^epoch * B, nu * B) = 64, 32, 16, 16, 16, 16 with one step per epoch.
    assert count_generator_samples_with_gradient(name, settings) == [64, 32, 16, 16, 16, 16]


def test_topk_epochs_follow_steps_per_epoch_and_the_default_schedule():
    settings = dataclasses.replace(
        TINY, num_steps=5, batch_size=100, topk_gamma=0.9, steps_per_epoch=2
    )
    expected = [max(int(100 * 0.9 ** (step // 2)), 50) for step in range(5)]  # 100 100 90 90 81
    assert count_generator_samples_with_gradient("non_saturating_topk", settings) == expected
    assert count_generator_samples_with_gradient("non_saturating", settings) == [100] * 5
    # The repository's 10,000 samples at batch 500 make 20 steps per epoch.
    assert dataclasses.replace(TINY, num_real_samples=10_000, batch_size=500).epoch_length() == 20
    assert dataclasses.replace(TINY, num_real_samples=10_001, batch_size=500).epoch_length() == 21


def test_wasserstein_sn_critic_layers_have_spectral_norm_one():
    run = train_toy("wasserstein_sn", "grid", 0, dataclasses.replace(TINY, num_steps=20, width=32))
    linears = [m for m in run.critic.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 2
    run.critic.eval()  # use the stored power-iteration vectors, no further update
    with torch.no_grad():
        for layer in linears:
            sigma = torch.linalg.matrix_norm(layer.weight, ord=2)
            assert float(sigma) == pytest.approx(1.0, abs=0.02)
            raw = layer.parametrizations.weight.original
            assert float(torch.linalg.matrix_norm(raw, ord=2)) != pytest.approx(1.0, abs=0.02)


def test_other_variants_have_no_spectral_norm():
    run = train_toy("wasserstein", "grid", 0, TINY)
    assert not any(hasattr(m, "parametrizations") for m in run.critic.modules())


def test_weight_clipping_keeps_critic_weights_in_the_box():
    run = train_toy("wasserstein_clip", "grid", 0, dataclasses.replace(TINY, lr=1e-2))
    weights = torch.cat([p.detach().flatten() for p in run.critic.parameters()])
    assert weights.abs().max() <= 0.01 + 1e-9
    assert weights.abs().max() == pytest.approx(0.01)  # the bound is active at this lr
    settings = dataclasses.replace(TINY, clip_value=0.05, lr=1e-2)
    run = train_toy("wasserstein_clip", "grid", 0, settings)
    weights = torch.cat([p.detach().flatten() for p in run.critic.parameters()])
    assert weights.abs().max() == pytest.approx(0.05)


@pytest.mark.parametrize("num_real_samples", [1, 7, 100, 1001])
def test_wgan_gp_works_with_any_sample_count(num_real_samples):
    settings = dataclasses.replace(TINY, batch_size=64, num_real_samples=num_real_samples)
    run = train_toy("wgan_gp", "ring", 0, settings)
    assert not run.diverged and run.history.extras["steps"] == 3
    assert math.isfinite(run.history.last("gp"))


def test_a_seed_fixes_the_run_and_another_seed_changes_it():
    settings = dataclasses.replace(TINY, num_snapshots=1, snapshot_samples=50)
    a, b, c = (train_toy("hinge", "ring", s, settings) for s in (3, 3, 4))
    assert np.array_equal(a.snapshots[-1][1], b.snapshots[-1][1])
    assert a.metrics == b.metrics
    assert not np.array_equal(a.snapshots[-1][1], c.snapshots[-1][1])
    assert [step for step, _ in a.snapshots] == [0, 3]
    assert a.snapshots[0][1].shape == (50, 2)


def test_customise_names_known_combinations_and_custom_ones():
    assert customise("wasserstein", spectral_norm=True) is VARIANTS["wasserstein_sn"]
    assert customise("wasserstein", clip_value=0.01) is VARIANTS["wasserstein_clip"]
    assert customise("wasserstein-gp", topk=True) is VARIANTS["wgan_gp_topk"]
    assert customise("standard") is VARIANTS["minimax"]
    hinge_sn = customise("hinge", spectral_norm=True)
    assert hinge_sn.name == "hinge+sn" and hinge_sn.spectral_norm and hinge_sn.loss == "hinge"
    with pytest.raises(ValueError, match="unroll_steps=5 cannot be combined with spectral_norm"):
        customise("unrolled5", spectral_norm=True)


def test_settings_validation_names_the_field():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        ToySettings(optimizer="lbfgs").validate()
    with pytest.raises(ValueError, match="num_steps"):
        ToySettings(num_steps=0).validate()
    with pytest.raises(ValueError, match="num_real_samples"):
        ToySettings(num_real_samples=0).validate()
    with pytest.raises(ValueError, match="dataset must be one of"):
        train_toy("hinge", "spiral", 0, TINY)
    with pytest.raises(TypeError, match="seed"):
        train_toy("hinge", "ring", 0.5, TINY)
    with pytest.raises(ValueError, match="seed"):
        train_toy("hinge", "ring", -1, TINY)
    REPOSITORY_SETTINGS.validate()
    assert (REPOSITORY_SETTINGS.width, REPOSITORY_SETTINGS.depth) == (256, 4)
    assert REPOSITORY_SETTINGS.batch_size == 500 and REPOSITORY_SETTINGS.optimizer == "rmsprop"


def fake_run(variant: str, seed: int, covered: int, hq: float, counts: tuple[int, ...]) -> ToyRun:
    kl = math.nan if sum(counts) == 0 else 0.5 * seed  # any number: only averaged here
    metrics = ModeCoverage(covered, covered, 25, hq, kl, 2500, counts)
    return ToyRun(variant, "grid", seed, metrics, [], 100.0, 1.0, False, None, None, None, TINY)


def test_sweep_summary_is_mean_and_sample_std_over_seeds():
    runs = [
        fake_run("hinge", 0, 10, 50.0, (1,)),
        fake_run("hinge", 1, 13, 70.0, (1,)),
        fake_run("hinge", 2, 19, 60.0, (1,)),
        fake_run("minimax", 0, 0, 0.0, (0,)),
        fake_run("minimax", 1, 2, 3.0, (1,)),
    ]
    result = SweepResult(runs)
    hinge = result.row("hinge", "grid")
    assert hinge["num_seeds"] == 3
    assert hinge["modes_covered_mean"] == pytest.approx(statistics.mean([10, 13, 19]))
    assert hinge["modes_covered_std"] == pytest.approx(statistics.stdev([10, 13, 19]))
    minimax = result.row("minimax", "grid")
    assert minimax["kl_defined"] == 1 and minimax["kl_to_uniform_mean"] == pytest.approx(0.5)
    assert [r["variant"] for r in result.ranking("grid")] == ["hinge", "minimax"]
    table = result.to_markdown()
    assert "14.0 ± 4.6 / 25" in table and "1 NaN: no HQ sample" in table


def test_sweep_runs_every_combination(tmp_path):
    result = sweep(["hinge", "least-squares"], ["ring", "grid"], [0, 1], TINY)
    assert [(r.variant, r.dataset, r.seed) for r in result.runs][:3] == [
        ("hinge", "ring", 0),
        ("hinge", "ring", 1),
        ("hinge", "grid", 0),
    ]
    assert len(result.summary()) == 4
    path = result.write_csv(tmp_path / "table.csv")
    assert path.read_text().splitlines()[0].startswith("variant,dataset,num_seeds")
    with pytest.raises(ValueError, match="variant must be one of"):
        sweep(["nope"], ["grid"], [0], TINY)


@pytest.mark.parametrize(
    ("changes", "error", "name"),
    [
        ({"num_steps": 2.5}, TypeError, "num_steps"),
        ({"num_steps": 0}, ValueError, "num_steps"),
        ({"batch_size": "8"}, TypeError, "batch_size"),
        ({"depth": -1}, ValueError, "depth"),
        ({"n_critic": 1.0}, TypeError, "n_critic"),
        ({"optimizer": None}, TypeError, "optimizer"),
        ({"lr": "1e-3"}, TypeError, "lr"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr_decay_from": "0.5"}, TypeError, "lr_decay_from"),
        ({"topk_nu": 0.0}, ValueError, "topk_nu"),
        ({"log_every": 0}, ValueError, "log_every"),
        ({"device": 0}, TypeError, "device"),
    ],
)
def test_settings_are_checked_when_made(changes, error, name):
    with pytest.raises(error, match=name):
        ToySettings(**changes)
    with pytest.raises(error, match=name):
        dataclasses.replace(TINY, **changes)


@pytest.mark.slow
def test_sweep_in_worker_processes_matches_the_sequential_sweep():
    settings = dataclasses.replace(TINY, num_snapshots=1, snapshot_samples=64)
    names = ["hinge", "wasserstein_sn"]
    sequential = sweep(names, ["ring"], [0, 1], settings)
    parallel = sweep(names, ["ring"], [0, 1], settings, workers=2)
    assert [(r.variant, r.seed) for r in parallel.runs] == [
        (r.variant, r.seed) for r in sequential.runs
    ]
    for a, b in zip(sequential.runs, parallel.runs, strict=True):
        np.testing.assert_allclose(a.snapshots[-1][1], b.snapshots[-1][1], rtol=1e-5, atol=1e-6)
        assert a.metrics.hq_counts == b.metrics.hq_counts
    # spectral norm is folded into plain weights that keep sigma = 1
    layer = next(m for m in parallel.runs[-1].critic.modules() if isinstance(m, torch.nn.Linear))
    assert not hasattr(layer, "parametrizations")
    assert float(torch.linalg.matrix_norm(layer.weight.detach(), ord=2)) == pytest.approx(
        1.0, abs=0.02
    )
    with pytest.raises(ValueError, match="workers"):
        sweep(names, ["ring"], [0], settings, workers=0)


def test_linear_lr_decay_after_a_fraction_of_training_reaches_zero():
    seen = []

    def record(state):
        groups = state.g_optimizer.param_groups + state.d_optimizer.param_groups
        seen.append({group["lr"] for group in groups})

    settings = dataclasses.replace(TINY, num_steps=6, lr=1e-3, lr_decay_from=0.5)
    train_toy("hinge", "ring", 0, settings, callbacks=[every(1, record)])
    # the lr of the step after step t: constant up to step 3, then 2/3, 1/3, 0 of it
    expected = [1e-3, 1e-3, 1e-3, 1e-3 * 2 / 3, 1e-3 / 3, 0.0]
    assert all(len(s) == 1 for s in seen)  # G and D share it
    assert [s.pop() for s in seen] == pytest.approx(expected)
    with pytest.raises(ValueError, match="lr_decay_from"):
        dataclasses.replace(TINY, lr_decay_from=1.0).validate()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wasserstein", ("rmsprop", 5e-5, 5e-5)),
        ("wasserstein_clip", ("rmsprop", 5e-5, 5e-5)),
        ("wgan_gp", ("adam", 1e-4, 1e-4)),
        ("wgan_gp_topk", ("adam", 1e-4, 1e-4)),
        ("wasserstein_sn", ("adam", 1e-4, 1e-4)),
        ("minimax", ("adam", 1e-3, 1e-3)),  # no paper setting: the lesson's shared Adam
        ("pacgan2", ("adam", 1e-3, 1e-3)),
    ],
)
def test_paper_optimizers_replace_the_shared_optimiser_for_the_wasserstein_family(name, expected):
    shared = toy_train_config(get_variant(name), 0, ToySettings())
    paper = toy_train_config(get_variant(name), 0, ToySettings(paper_optimizers=True))
    assert (paper.optimizer, paper.lr_g, paper.lr_d) == expected
    assert (shared.optimizer, shared.lr_g) == ("adam", 1e-3)
    betas = {"wgan_gp": (0.0, 0.9), "wgan_gp_topk": (0.0, 0.9), "wasserstein_sn": (0.5, 0.9)}
    assert tuple(paper.betas) == betas.get(name, (0.5, 0.9))
    assert paper.n_critic == shared.n_critic  # only the optimiser changes


def test_a_separate_critic_learning_rate_reaches_only_the_critic():
    from gan_utils.toy.cli import build_parser, settings_from_args

    args = build_parser().parse_args(["--lr", "1e-3", "--lr_d", "1e-4", "--betas", "0.5", "0.999"])
    settings = settings_from_args(args)
    config = toy_train_config(get_variant("unrolled5"), 0, settings)
    assert (config.lr_g, config.lr_d, tuple(config.betas)) == (1e-3, 1e-4, (0.5, 0.999))
    shared = toy_train_config(get_variant("unrolled5"), 0, ToySettings(lr=2e-3))
    assert (shared.lr_g, shared.lr_d) == (2e-3, 2e-3)  # lr_d=None: the critic shares lr


def test_paper_optimizers_flag_of_gan_toy_reaches_the_settings():
    from gan_utils.toy.cli import build_parser, settings_from_args

    args = build_parser().parse_args(["--paper_optimizers", "--loss", "wgan_gp"])
    assert settings_from_args(args).paper_optimizers is True
    with pytest.raises(TypeError, match="paper_optimizers"):
        ToySettings(paper_optimizers="yes")
