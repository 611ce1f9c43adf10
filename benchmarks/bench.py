"""``make bench``: the course's speed side by side with plain-PyTorch references (issue 11).

Every figure is a ratio against a reference measured in the same process in the same
run (the two interleaved, medians of the repeats), plus the absolute numbers:

* toy trainer at the Mode_Collapse repository's settings (4x256 MLPs, batch 500,
  RMSprop): steps/s of ``gan_utils.core.train.train`` vs the minimal loop of
  ``benchmarks.reference`` (minimax, 1 critic step; WGAN-GP, 5), and the achieved matmul
  GFLOP/s vs the machine's ``torch.mm`` GFLOP/s at the same thread count;
* toy time-to-quality: wall time until minimax at the lesson's full setting covers
  >= 24 of 25 grid modes with >= 80 % high-quality samples, and the same, capped, for
  wasserstein_clip, which never gets there;
* MNIST: step and epoch time of lesson 04's pairs at its defaults and of the
  NUGAN-DISTGAN repository's DCGAN; Dist-GAN's step; NU-GAN's overhead; the lesson-03
  classifier's training epoch;
* metrics: IS and FID of 10,000 images on the lesson-03 classifier, gan_utils vs
  torchmetrics with the same extractor;
* Hessian: top-5 eigenpairs of a generator's loss Hessian by our Lanczos vs
  ``scipy.sparse.linalg.eigsh`` on the same Hessian-vector product.

Run ``python -m benchmarks.bench`` (``--quick`` for a smoke run of a few seconds,
``--sections toy,metrics`` for some sections). Writes ``runs/bench/results.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse.linalg
import torch
from torch import nn

from benchmarks.reference import (
    ReferenceGAN,
    counted_flops,
    matmul_gflops,
    mlp_gan_step_flops,
)
from benchmarks.timing import (
    Row,
    fmt,
    interleaved,
    median,
    paired_quartiles,
    paired_ratio,
    table,
)

SECTIONS = ("toy", "toy_quality", "mnist", "metrics", "hessian")
QUALITY_MODES = 24  # time-to-quality: >= 24 of the 25 grid modes covered ...
QUALITY_HQ_PERCENT = 80.0  # ... with >= 80 % high-quality samples
QUALITY_TARGET_S = 60.0  # the target for the best variant, on 2 cores
LIBRARY_WITHIN = 0.10  # the library loop may be at most 10 % slower than the minimal one
NOISE_MARGIN = 0.05  # "not slower" allows 5 %: the spread of paired ratios on a shared CPU
NOT_SLOWER = "<= 1 (+5 % noise)"


@dataclass(frozen=True)
class BenchSettings:
    """Sizes and repeats of every section (``QUICK`` shrinks them for the tests)."""

    repeats: int = 15  # interleaved rounds of library vs reference (toy throughput)
    toy_steps: int = 20  # generator steps per round, minimax (1 critic step)
    toy_gp_steps: int = 4  # generator steps per round, WGAN-GP (5 critic steps)
    quality_every: int = 100  # evaluate the mode coverage every K generator steps
    quality_cap_s: float = 110.0  # wall-time cap of the best variant's time-to-quality
    worst_cap_s: float = 25.0  # wall-time cap of the worst variant
    quality_ref_steps: int = 100  # steps per round of the full-setting throughput check
    quality_ref_repeats: int = 15  # its rounds (short and many: the machine is shared)
    mnist_repeats: int = 5  # rounds for the MNIST pairs (one epoch each), Dist-GAN, classifier
    repository_repeats: int = 3  # rounds for the repository's (large) DCGAN
    repository_steps: int = 2  # steps per round of the repository's (large) DCGAN (0: skip)
    nu_repeats: int = 3  # rounds with and without the NU-GAN hook
    dist_steps: int = 10  # steps per round for Dist-GAN and its DCGAN reference
    nu_steps: int = 50  # steps per round with and without the NU-GAN hook (1 refresh)
    classifier_epochs: float = 1.0  # classifier training per round, in epochs
    metric_samples: int = 10_000  # images for IS and FID
    metric_repeats: int = 7
    hessian_repeats: int = 3
    hessian_batch: int = 64  # latents in the generator loss whose Hessian is taken
    hessian_tol: float = 1e-4  # tolerance of both solvers (lesson 06's mnist_check_tol)
    trained_classifier: bool = True  # load (or train) lesson 03's classifier for metrics
    matmul_seconds: float = 0.2  # per round of the matmul measurement


QUICK = BenchSettings(
    repeats=2,
    toy_steps=2,
    toy_gp_steps=1,
    quality_every=20,
    quality_cap_s=1.5,
    worst_cap_s=0.5,
    quality_ref_steps=10,
    quality_ref_repeats=2,
    mnist_repeats=1,
    repository_repeats=1,
    nu_repeats=1,
    repository_steps=0,
    dist_steps=2,
    nu_steps=3,
    classifier_epochs=0.1,
    metric_samples=1000,
    metric_repeats=1,
    hessian_repeats=1,
    hessian_batch=16,
    hessian_tol=1e-1,
    trained_classifier=False,
    matmul_seconds=0.05,
)


def _spread(numerator, denominator) -> str:
    """The quartiles of the per-round ratios, for a row's note."""
    q1, q3 = paired_quartiles(numerator, denominator)
    return f"per-round ratios: quartiles {q1:.3f}-{q3:.3f}"


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- toy trainer throughput ---------------------------------------------------------------
def _toy_models(variant, mixture, settings, seed: int = 0):
    from gan_utils.core.runtime import set_seed
    from gan_utils.toy.runs import build_models

    set_seed(seed)
    return build_models(variant, mixture, settings)


def toy_throughput(s: BenchSettings, results: dict) -> list[Row]:
    """Steps/s of gan_utils.core.train vs ReferenceGAN at the repository's settings."""
    from gan_utils.core.train import train
    from gan_utils.core.variants import get_variant
    from gan_utils.toy.mixtures import get_toy_dataset
    from gan_utils.toy.runs import REPOSITORY_SETTINGS, toy_train_config

    rows: list[Row] = []
    mixture = get_toy_dataset("grid")
    data = mixture.sample(10_000, generator=torch.Generator().manual_seed(0))  # (10000, 2)
    # the layers' shapes: (batch, 256) @ (256, 256), batch 500 (G, D on fakes) and 1000
    shapes = [(500, 256, 256), (1000, 256, 256)]
    peaks: list[float] = []  # torch.mm GFLOP/s, one per round (best shape), all sections
    st = REPOSITORY_SETTINGS
    for name, steps in (("minimax", s.toy_steps), ("wgan_gp", s.toy_gp_steps)):
        _log(f"toy throughput: {name}, {s.repeats} x {steps} steps each")
        variant = get_variant(name)
        settings = replace(st, num_steps=steps)
        G, D = _toy_models(variant, mixture, settings)
        G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
        config = toy_train_config(variant, 0, settings)
        config = replace(config, device="cpu")
        reference = ReferenceGAN(
            G_ref,
            D_ref,
            data,
            variant.loss,
            st.batch_size,
            st.latent_dim,
            variant.n_critic,
            variant.gp_weight,
            st.optimizer,
            st.lr,
            st.betas,
        )
        train(G, D, data, replace(config, num_steps=1, log_every=1))  # warm up both
        reference.run(1)
        rates: list[float] = []  # the machine's matmul GFLOP/s, measured in every round

        def matmul_round(rates=rates) -> None:
            rates.append(max(matmul_gflops(shapes, s.matmul_seconds).values()))

        times = interleaved(
            {
                "gan_utils": lambda G=G, D=D, config=config: train(G, D, data, config) and None,
                "reference": lambda reference=reference, steps=steps: reference.run(steps),
                "matmul": matmul_round,
            },
            s.repeats,
        )
        peaks += rates
        ours, ref = steps / median(times["gan_utils"]), steps / median(times["reference"])
        speed = paired_ratio(times["reference"], times["gan_utils"])  # ours / ref in steps/s
        flops = counted_flops(reference.step)
        # achieved / peak per round (the two measured back to back), then the median
        achieved = [flops * steps / t / 1e9 for t in times["gan_utils"]]
        efficiency = paired_ratio(achieved, rates)
        entry = {
            "steps_per_round": steps,
            "seconds": times,
            "steps_per_s": {"gan_utils": ours, "reference": ref},
            "matmul_gflops_per_round": rates,
            "flops_per_step_counted": flops,
        }
        if variant.gp_weight == 0:
            entry["flops_per_step_by_hand"] = mlp_gan_step_flops(
                st.latent_dim, 2, st.width, st.depth, st.batch_size, variant.n_critic
            )
        results[f"toy_{name}"] = entry
        label = f"{name} (n_critic {variant.n_critic}), 4x256 MLPs, batch 500"
        rows.append(
            Row(
                "toy",
                f"{label}: steps/s",
                ours,
                "steps/s",
                ref,
                "minimal loop",
                speed,
                "ours / minimal",
                f">= {1 - LIBRARY_WITHIN:.2f}",
                speed >= 1 - LIBRARY_WITHIN,
                f"{s.repeats} interleaved rounds of {steps} steps; "
                + _spread(times["reference"], times["gan_utils"]),
            )
        )
        rows.append(
            Row(
                "toy",
                f"{label}: achieved GFLOP/s",
                flops * ours / 1e9,
                "GFLOP/s",
                flops * ref / 1e9,
                "minimal loop",
                efficiency,
                "ours / torch.mm GFLOP/s",
                note=f"{flops / 1e9:.2f} GFLOP of matmuls per generator step (forward, "
                "backward and the penalty's double backward, counted from the shapes)",
            )
        )
    rows.insert(
        0,
        Row(
            "machine",
            "torch.mm GFLOP/s, float32, (500 or 1000, 256) @ (256, 256)",
            median(peaks),
            "GFLOP/s",
            note=f"{torch.get_num_threads()} thread(s); median of {len(peaks)} rounds "
            "interleaved with the toy runs",
        ),
    )
    results["matmul_gflops"] = peaks
    return rows


# ---- toy time-to-quality -------------------------------------------------------------------
def time_to_quality(
    variant: str, settings, cap_seconds: float, every_steps: int, seed: int = 0
) -> dict:
    """Train ``variant`` on the grid (``gan_utils.toy.runs.train_toy``) and evaluate the
    mode coverage every ``every_steps`` steps; stop at the quality bar or at the cap."""
    from gan_utils.core.loop import every
    from gan_utils.toy.coverage import evaluate_coverage
    from gan_utils.toy.mixtures import get_toy_dataset
    from gan_utils.toy.runs import train_toy

    mixture = get_toy_dataset("grid")
    out = {"variant": variant, "trace": [], "reached": False, "eval_seconds": 0.0}
    t0 = time.perf_counter()

    def check(state) -> bool:
        e0 = time.perf_counter()
        m = evaluate_coverage(
            state.generator, mixture, settings.latent_dim, 2500, seed=12345 + seed
        )
        out["eval_seconds"] += time.perf_counter() - e0
        elapsed = time.perf_counter() - t0
        out["trace"].append(
            [state.step, round(elapsed, 3), m.modes_covered, m.high_quality_percent]
        )
        if m.modes_covered >= QUALITY_MODES and m.high_quality_percent >= QUALITY_HQ_PERCENT:
            out.update(reached=True, step=state.step, seconds=elapsed)
            return True
        return elapsed > cap_seconds

    run = train_toy(variant, "grid", seed, settings, callbacks=[every(every_steps, check)])
    last = out["trace"][-1] if out["trace"] else [0, time.perf_counter() - t0, 0, 0.0]
    out.update(
        steps_run=int(run.history.extras.get("steps", last[0])),
        train_seconds=run.seconds,
        last_step=last[0],
        last_seconds=last[1],
        last_modes=last[2],
        last_hq_percent=last[3],
    )
    return out


def toy_quality(s: BenchSettings, results: dict) -> list[Row]:
    from gan_utils.core.train import train
    from gan_utils.core.variants import get_variant
    from gan_utils.toy.mixtures import get_toy_dataset
    from gan_utils.toy.runs import ToySettings, toy_train_config

    rows: list[Row] = []
    # a long toy setting (gan-toy --dataset grid --steps 10000 --lr_decay_from 0.5
    # --loss minimax, as figures/toy_pacgan_grid.md); the rest are ToySettings' defaults
    full = ToySettings(num_steps=10_000, lr_decay_from=0.5, device="cpu")
    mixture = get_toy_dataset("grid")

    rounds = s.quality_ref_repeats
    _log(f"toy full setting throughput: {rounds} x {s.quality_ref_steps} steps each")
    variant = get_variant("minimax")
    settings = replace(full, num_steps=s.quality_ref_steps)
    G, D = _toy_models(variant, mixture, settings)
    config = toy_train_config(variant, 0, settings)
    reference = ReferenceGAN(
        copy.deepcopy(G),
        copy.deepcopy(D),
        mixture,
        "minimax",
        full.batch_size,
        full.latent_dim,
        lr=full.lr,
        betas=full.betas,
    )
    train(G, D, mixture, replace(config, num_steps=1, log_every=1))  # warm up both
    reference.run(1)
    times = interleaved(
        {
            "gan_utils": lambda: train(G, D, mixture, config) and None,
            "reference": lambda: reference.run(s.quality_ref_steps),
        },
        rounds,
    )
    ours_sps = s.quality_ref_steps / median(times["gan_utils"])
    ref_sps = s.quality_ref_steps / median(times["reference"])
    speed = paired_ratio(times["reference"], times["gan_utils"])
    results["toy_full_setting_throughput"] = {
        "seconds": times,
        "steps_per_s": {"gan_utils": ours_sps, "reference": ref_sps},
    }
    rows.append(
        Row(
            "toy",
            "minimax, lesson full setting (3x128 MLPs, batch 256, Adam): steps/s",
            ours_sps,
            "steps/s",
            ref_sps,
            "minimal loop",
            speed,
            "ours / minimal",
            f">= {1 - LIBRARY_WITHIN:.2f}",
            speed >= 1 - LIBRARY_WITHIN,
            f"{rounds} interleaved rounds of {s.quality_ref_steps} steps; "
            + _spread(times["reference"], times["gan_utils"]),
        )
    )

    for name, cap, target in (
        ("minimax", s.quality_cap_s, True),
        ("wasserstein_clip", s.worst_cap_s, False),
    ):
        _log(f"time to quality: {name} (cap {cap:.0f} s)")
        out = time_to_quality(name, full, cap, s.quality_every)
        results[f"time_to_quality_{name}"] = out
        steps = out.get("step", out["last_step"])
        # the minimal loop's time for the same steps, from its steps/s above (minimax only:
        # the same loop and setting; the Wasserstein variants make 5 critic steps)
        ref_estimate = steps / ref_sps if name == "minimax" else None
        if out["reached"]:
            seconds = out["seconds"]
            met = seconds < QUALITY_TARGET_S if target else None
            desc = f"reached at step {steps}"
        else:
            seconds = math.inf
            met = False if target else True
            desc = (
                f"not reached in {out['last_seconds']:.0f} s (cap; step {out['last_step']}: "
                f"{out['last_modes']} modes, {out['last_hq_percent']:.1f} % HQ)"
            )
        rows.append(
            Row(
                "toy_quality",
                f"{name}, full setting: s to >= {QUALITY_MODES}/25 modes and "
                f">= {QUALITY_HQ_PERCENT:.0f} % HQ",
                seconds if out["reached"] else out["last_seconds"],
                "s",
                ref_estimate,
                "minimal loop, same steps, estimated" if ref_estimate else "",
                (seconds / ref_estimate) if out["reached"] and ref_estimate else None,
                "ours / minimal" if out["reached"] and ref_estimate else "",
                f"< {QUALITY_TARGET_S:.0f} s" if target else "never reached",
                met,
                f"{desc}; evaluated every {s.quality_every} steps "
                f"({out['eval_seconds']:.2f} s of evaluation)",
            )
        )
    return rows


# ---- MNIST -------------------------------------------------------------------------------
def _image_config(latent_dim, num_steps, epoch_steps, lr):
    from gan_utils.core.variants import get_variant

    return get_variant("non_saturating").train_config(
        latent_dim=latent_dim,
        batch_size=64,
        num_steps=num_steps,
        steps_per_epoch=epoch_steps,
        lr_g=lr,
        lr_d=lr,
        betas=(0.5, 0.999),
        optimizer="adam",
        seed=0,
        device="cpu",
        log_every=max(1, min(num_steps, epoch_steps // 4)),
        progress=False,
    )


class _ReferenceClassifier:
    """The minimal classifier loop: the lesson-03 CNN, AdamW, cross-entropy, random rows;
    no augmentation, schedule or evaluation."""

    def __init__(self, images, labels, batch_size=64, lr=2e-3, weight_decay=0.01):
        from gan_utils.images.classifier import DigitClassifier

        torch.manual_seed(0)
        self.model = DigitClassifier().train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=weight_decay)
        self.images, self.labels, self.batch_size = images, labels, batch_size

    def run(self, num_steps: int) -> float:
        t0 = time.perf_counter()
        for _ in range(num_steps):
            idx = torch.randint(0, self.images.shape[0], (self.batch_size,))
            loss = nn.functional.cross_entropy(self.model(self.images[idx]), self.labels[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        return time.perf_counter() - t0


def mnist(s: BenchSettings, results: dict) -> list[Row]:
    from gan_utils.core.runtime import set_seed
    from gan_utils.core.train import train
    from gan_utils.hessian.nu_gan import NuGANConfig, NuGANHook
    from gan_utils.images.classifier import ClassifierConfig, train_classifier
    from gan_utils.images.dist_gan import (
        DistGANConfig,
        conv_encoder,
        dist_gan_step,
        make_state,
    )
    from gan_utils.images.mnist import load_mnist
    from gan_utils.images.models import build_pair

    rows: list[Row] = []
    train_data, test_data = load_mnist("train", verbose=False), load_mnist("test", verbose=False)
    images = train_data.images  # (N, 1, 28, 28) in [-1, 1]
    epoch_steps = len(train_data) // 64
    results["mnist_data"] = {"n_train": len(train_data), "epoch_steps": epoch_steps}
    step_seconds: dict[str, float] = {}
    pairs = (
        ("dense", "small", 1e-3, epoch_steps if s.mnist_repeats > 1 else 2),
        ("dcgan", "small", 2e-4, epoch_steps if s.mnist_repeats > 1 else 2),
        ("dcgan", "repository", 2e-4, s.repository_steps),
    )
    for architecture, size, lr, steps in pairs:
        if steps == 0:
            continue
        rounds = s.repository_repeats if size == "repository" else s.mnist_repeats
        _log(f"MNIST {architecture}/{size}: {rounds} x {steps} steps each")
        set_seed(0)
        pair = build_pair(architecture, 10, size=size)
        G, D = pair.generator, pair.critic
        reference = ReferenceGAN(
            copy.deepcopy(G), copy.deepcopy(D), images, "non_saturating", 64, 10, lr=lr
        )
        config = _image_config(10, steps, epoch_steps, lr)
        train(G, D, images, replace(config, num_steps=1, log_every=1))  # warm up
        reference.run(1)
        times = interleaved(
            {
                "gan_utils": lambda G=G, D=D, config=config: train(G, D, images, config) and None,
                "reference": lambda reference=reference, steps=steps: reference.run(steps),
            },
            rounds,
        )
        ours, ref = median(times["gan_utils"]) / steps, median(times["reference"]) / steps
        slowdown = paired_ratio(times["gan_utils"], times["reference"])
        key = f"{architecture}_{size}"
        step_seconds[key] = ours
        results[f"mnist_{key}"] = {"steps_per_round": steps, "seconds": times}
        label = f"{architecture}/{size}, latent 10, batch 64"
        rows.append(
            Row(
                "mnist",
                f"{label}: step time",
                ours * 1e3,
                "ms",
                ref * 1e3,
                "minimal loop",
                slowdown,
                "ours / minimal time",
                f"<= {1 + LIBRARY_WITHIN:.2f}",
                slowdown <= 1 + LIBRARY_WITHIN,
                f"{rounds} interleaved rounds of {steps} steps; "
                + _spread(times["gan_utils"], times["reference"]),
            )
        )
        how = "measured" if steps == epoch_steps else f"{epoch_steps} x step time"
        rows.append(
            Row(
                "mnist",
                f"{label}: epoch time ({epoch_steps} steps, no evaluation)",
                ours * epoch_steps,
                "s",
                ref * epoch_steps,
                "minimal loop",
                slowdown,
                "ours / minimal time",
                note=how,
            )
        )

    _log(f"Dist-GAN: {s.mnist_repeats} x {s.dist_steps} steps")
    set_seed(0)  # lesson 05's networks: its critic with layer norm, an encoder mirroring it
    pair = build_pair("dcgan", 10, size="small", critic_normalization="layer")
    encoder = conv_encoder(10, base_width=pair.critic_kwargs["base_width"])
    dist_config = DistGANConfig(latent_dim=10, batch_size=64, device="cpu", progress=False)
    state = make_state(encoder, pair.generator, pair.critic, dist_config)
    set_seed(0)
    vanilla = build_pair("dcgan", 10, size="small")
    vanilla_config = _image_config(10, s.dist_steps, epoch_steps, 2e-4)

    def dist_run() -> float:
        t0 = time.perf_counter()
        for _ in range(s.dist_steps):
            dist_gan_step(state, images)
            state.step += 1
        return time.perf_counter() - t0

    dist_run()  # warm up
    times = interleaved(
        {
            "dist_gan": dist_run,
            "dcgan": lambda: (
                train(vanilla.generator, vanilla.critic, images, vanilla_config) and None
            ),
        },
        s.mnist_repeats,
    )
    dist, dcgan = median(times["dist_gan"]) / s.dist_steps, median(times["dcgan"]) / s.dist_steps
    results["mnist_dist_gan"] = {"steps_per_round": s.dist_steps, "seconds": times}
    rows.append(
        Row(
            "mnist",
            "Dist-GAN step (AE + D + G updates), lesson 05: DCGAN small, layer-norm D, conv E",
            dist * 1e3,
            "ms",
            dcgan * 1e3,
            "lesson-04 DCGAN step",
            paired_ratio(times["dist_gan"], times["dcgan"]),
            "Dist-GAN / DCGAN time",
            note=f"{s.mnist_repeats} interleaved rounds of {s.dist_steps} steps",
        )
    )

    _log(f"NU-GAN: {s.nu_repeats} x {s.nu_steps} steps with and without the hook")
    set_seed(0)
    nu_pair = build_pair("dense", 10, size="small")
    plain_pair = copy.deepcopy(nu_pair)
    nu_steps = s.nu_steps
    nu_config = _image_config(10, nu_steps, epoch_steps, 1e-3)
    # lesson 06's NU-GAN: top 3 by 20 Lanczos steps every 50 generator steps, "project"
    hook_settings = NuGANConfig(every_steps=max(1, nu_steps), k=3, max_iterations=20)
    hooks = []

    def with_hook() -> None:
        hooks.append(NuGANHook(hook_settings))
        with warnings.catch_warnings():  # 20 steps do not reach tol: as in the lesson
            warnings.filterwarnings("ignore", message="Lanczos did not reach")
            train(nu_pair.generator, nu_pair.critic, images, nu_config, grad_hook=hooks[-1])

    times = interleaved(
        {
            "nu_gan": with_hook,
            "plain": lambda: (
                train(plain_pair.generator, plain_pair.critic, images, nu_config) and None
            ),
        },
        s.nu_repeats,
    )
    refreshes = [len(h.records) for h in hooks]
    results["mnist_nu_gan"] = {
        "steps_per_round": nu_steps,
        "seconds": times,
        "refreshes_per_round": refreshes,
        "hook": asdict(hook_settings),
    }
    nu, plain = median(times["nu_gan"]) / nu_steps, median(times["plain"]) / nu_steps
    rows.append(
        Row(
            "mnist",
            f"NU-GAN step, dense/small, Lanczos k=3 (20 HVPs) every "
            f"{hook_settings.every_steps} steps",
            nu * 1e3,
            "ms",
            plain * 1e3,
            "same loop without the hook",
            paired_ratio(times["nu_gan"], times["plain"]),
            "NU-GAN / plain time",
            note=f"{s.nu_repeats} rounds of {nu_steps} steps, {refreshes[0]} refresh(es) each; "
            f"a refresh: Lanczos on the generator's loss Hessian, tol {hook_settings.tol:g}",
        )
    )

    steps = max(1, round(s.classifier_epochs * len(train_data) / 64))
    _log(f"classifier: {s.mnist_repeats} x {steps} steps")
    classifier_config = ClassifierConfig(num_steps=steps, eval_every=steps)
    reference = _ReferenceClassifier(images, train_data.labels)
    times = interleaved(
        {
            "gan_utils": lambda: (
                train_classifier(
                    train_data, test_data, classifier_config, device="cpu", verbose=False
                )
                and None
            ),
            "reference": lambda: reference.run(steps),
        },
        s.mnist_repeats,
    )
    results["mnist_classifier"] = {"steps_per_round": steps, "seconds": times}
    per_epoch = len(train_data) / 64 / steps
    ours, ref = median(times["gan_utils"]) * per_epoch, median(times["reference"]) * per_epoch
    rows.append(
        Row(
            "mnist",
            f"lesson-03 classifier: training epoch ({len(train_data)} digits, batch 64)",
            ours,
            "s",
            ref,
            "minimal loop, no augmentation",
            paired_ratio(times["gan_utils"], times["reference"]),
            "ours / minimal time",
            note="ours includes random affine augmentation, the one-cycle schedule and "
            "one test-accuracy evaluation",
        )
    )
    return rows


# ---- metrics -----------------------------------------------------------------------------


def metrics(s: BenchSettings, results: dict) -> list[Row]:
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.inception import InceptionScore

    from gan_utils.images.classifier import DigitClassifier, load_or_train_classifier
    from gan_utils.images.metrics import (
        ClassifierFeatures,
        ClassifierLogits,
        fid,
        inception_score,
    )
    from gan_utils.images.mnist import load_mnist
    from gan_utils.images.models import build_pair

    n = s.metric_samples
    if s.trained_classifier:
        _log("metrics: loading (or training) the lesson-03 classifier")
        classifier = load_or_train_classifier(device="cpu", verbose=False).eval()
    else:
        torch.manual_seed(0)
        classifier = DigitClassifier().eval()  # untrained: the same cost per image
    train_images = load_mnist("train", verbose=False).images
    test_images = load_mnist("test", verbose=False).images
    pool = torch.cat([train_images, test_images])
    real = pool[torch.arange(n) % pool.shape[0]]  # (n, 1, 28, 28), repeated if n > pool
    torch.manual_seed(0)
    generator = build_pair("dense", 10, size="small").generator.eval()
    with torch.no_grad():
        fake = torch.cat([generator(z) for z in torch.randn(n, 10).split(1000)])
    chunks = 1000  # torchmetrics' update() is fed in chunks, as a lesson would

    def ours_is():
        return inception_score(classifier.predict_proba(fake), splits=10)[0]

    def tm_is():
        metric = InceptionScore(feature=ClassifierLogits(classifier), splits=10)
        for part in fake.split(chunks):
            metric.update(part)
        return float(metric.compute()[0])

    def ours_fid():
        return fid(classifier.features(real), classifier.features(fake))

    def tm_fid():
        metric = FrechetInceptionDistance(feature=ClassifierFeatures(classifier))
        for part in real.split(chunks):
            metric.update(part, real=True)
        for part in fake.split(chunks):
            metric.update(part, real=False)
        return float(metric.compute())

    values: dict[str, float] = {}

    def keep(name: str, fn: Callable[[], float]) -> Callable[[], None]:
        def run() -> None:
            values[name] = fn()

        return run

    rows: list[Row] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Metric `InceptionScore` will save")
        for metric_name, ours, theirs in (("IS", ours_is, tm_is), ("FID", ours_fid, tm_fid)):
            _log(f"metrics: {metric_name} on {n} images, {s.metric_repeats} rounds")
            torch.manual_seed(0)
            times = interleaved(
                {
                    "gan_utils": keep(f"{metric_name}_gan_utils", ours),
                    "torchmetrics": keep(f"{metric_name}_torchmetrics", theirs),
                },
                s.metric_repeats,
            )
            speed = paired_ratio(times["gan_utils"], times["torchmetrics"])
            results[f"metrics_{metric_name}"] = {
                "seconds": times,
                "values": {k: v for k, v in values.items() if k.startswith(metric_name)},
            }
            ours_value = values[f"{metric_name}_gan_utils"]
            theirs_value = values[f"{metric_name}_torchmetrics"]
            rows.append(
                Row(
                    "metrics",
                    f"{metric_name} of {n:,} images, lesson-03 features: time",
                    median(times["gan_utils"]),
                    "s",
                    median(times["torchmetrics"]),
                    "torchmetrics",
                    speed,
                    "ours / torchmetrics time",
                    NOT_SLOWER,
                    speed <= 1.0 + NOISE_MARGIN,
                    f"values {ours_value:.4f} (ours) vs {theirs_value:.4f} (torchmetrics); "
                    f"{'IS splits are shuffled by torchmetrics; ' if metric_name == 'IS' else ''}"
                    f"classifier {'lesson 03' if s.trained_classifier else 'untrained (quick)'}",
                )
            )
    return rows


# ---- Hessian -----------------------------------------------------------------------------
def hessian(s: BenchSettings, results: dict) -> list[Row]:
    from gan_utils.core.runtime import set_seed
    from gan_utils.hessian.lanczos import HessianOperator, lanczos
    from gan_utils.hessian.spectra import generator_loss
    from gan_utils.images.models import build_pair

    set_seed(0)
    pair = build_pair("dense", 10, size="small")  # lesson 04's defaults, latent 10
    G, D = pair.generator, pair.critic
    z = torch.randn(s.hessian_batch, 10, generator=torch.Generator().manual_seed(1))
    n = sum(p.numel() for p in G.parameters())
    start = torch.randn(n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    k, tol = 5, s.hessian_tol
    found: dict[str, dict] = {}

    def ours(name: str = "lanczos", basis_dtype: torch.dtype | None = None) -> float:
        op = HessianOperator(lambda: generator_loss(G, D, z, "non_saturating"), G)
        t0 = time.perf_counter()
        result = lanczos(  # as lesson 06 calls it
            op,
            k=k,
            which="LA",
            tol=tol,
            max_iterations=min(n, 200),
            start_vector=start,
            measure_orthogonality=False,
            basis_dtype=basis_dtype,
        )
        seconds = time.perf_counter() - t0
        found[name] = {
            "eigenvalues": sorted(result.eigenvalues.tolist(), reverse=True),
            "hvps": op.num_products,
            "converged": bool(result.converged),
        }
        op.release()
        return seconds

    def scipy_eigsh(name: str = "eigsh", ncv: int | None = None) -> float:
        op = HessianOperator(lambda: generator_loss(G, D, z, "non_saturating"), G)
        t0 = time.perf_counter()
        values, _ = scipy.sparse.linalg.eigsh(
            op.as_linear_operator(), k=k, which="LA", tol=tol, v0=start.numpy(), ncv=ncv
        )
        seconds = time.perf_counter() - t0
        found[name] = {
            "eigenvalues": sorted(values.tolist(), reverse=True),
            "hvps": op.num_products,
        }
        op.release()
        return seconds

    warm_up = HessianOperator(lambda: generator_loss(G, D, z, "non_saturating"), G)
    warm_up.matvec(start.float())
    warm_up.release()
    _log(f"Hessian: top-{k} of {n:,} generator parameters, {s.hessian_repeats} rounds")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Lanczos did not reach")
        times = interleaved(
            {
                "lanczos": ours,
                "eigsh": scipy_eigsh,
                "lanczos_float64_basis": lambda: ours("lanczos_float64_basis", torch.float64),
                "eigsh_ncv40": lambda: scipy_eigsh("eigsh_ncv40", 40),  # lesson 06's call
            },
            s.hessian_repeats,
        )
    ev_ours = np.array(found["lanczos"]["eigenvalues"])
    ev_ref = np.array(found["eigsh"]["eigenvalues"])
    agreement = float(np.max(np.abs(ev_ours - ev_ref) / np.maximum(np.abs(ev_ref), 1e-12)))
    ev_f64 = np.array(found["lanczos_float64_basis"]["eigenvalues"])
    agreement_f64 = float(np.max(np.abs(ev_f64 - ev_ref) / np.maximum(np.abs(ev_ref), 1e-12)))
    speed = paired_ratio(times["lanczos"], times["eigsh"])
    results["hessian"] = {
        "num_params": n,
        "batch": s.hessian_batch,
        "tol": tol,
        "seconds": times,
        **found,
        "max_relative_eigenvalue_difference": agreement,
        "max_relative_eigenvalue_difference_float64_basis": agreement_f64,
    }
    note = (
        f"dense/small generator as in lesson 06 (2x256, latent 10; untrained weights), "
        f"non-saturating loss on "
        f"{s.hessian_batch} latents; tol {tol:g}; top eigenvalue {ev_ours[0]:.4g}; "
        f"eigenvalues agree to {agreement:.1e} (relative)"
    )
    rows = [
        Row(
            "hessian",
            f"top-{k} eigenpairs (which='LA'): time",
            median(times["lanczos"]),
            "s",
            median(times["eigsh"]),
            "scipy eigsh, default ncv",
            speed,
            "ours / eigsh time",
            NOT_SLOWER,
            speed <= 1.0 + NOISE_MARGIN,
            note,
        ),
        Row(
            "hessian",
            f"top-{k} eigenpairs (which='LA'): Hessian-vector products",
            found["lanczos"]["hvps"],
            "HVPs",
            found["eigsh"]["hvps"],
            "scipy eigsh",
            found["lanczos"]["hvps"] / found["eigsh"]["hvps"],
            "ours / eigsh",
            "<= 1",
            found["lanczos"]["hvps"] <= found["eigsh"]["hvps"],
        ),
        Row(
            "hessian",
            f"top-{k} eigenpairs: time vs eigsh with ncv=40 (lesson 06's call)",
            median(times["lanczos"]),
            "s",
            median(times["eigsh_ncv40"]),
            "scipy eigsh, ncv=40",
            paired_ratio(times["lanczos"], times["eigsh_ncv40"]),
            "ours / eigsh time",
            note=f"eigsh ncv=40: {found['eigsh_ncv40']['hvps']} HVPs",
        ),
        Row(
            "hessian",
            f"top-{k} by Lanczos with a float64 basis (basis_dtype=torch.float64): time",
            median(times["lanczos_float64_basis"]),
            "s",
            median(times["eigsh"]),
            "scipy eigsh",
            paired_ratio(times["lanczos_float64_basis"], times["eigsh"]),
            "ours / eigsh time",
            note="the basis in float64 (before: the library's default; now the operator's "
            f"dtype, float32 here); eigenvalues agree with eigsh to {agreement_f64:.1e}",
        ),
    ]
    return rows


# ---- main --------------------------------------------------------------------------------
RUNNERS = {
    "toy": toy_throughput,
    "toy_quality": toy_quality,
    "mnist": mnist,
    "metrics": metrics,
    "hessian": hessian,
}


def machine() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def run(settings: BenchSettings, sections=SECTIONS, out: Path | None = None) -> dict:
    """Run the sections, print the table, write ``results.json``; returns its content."""
    from gan_utils.core.paths import runs_dir

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)  # as `make bench` does (Makefile: OMP_NUM_THREADS=1)
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"sections must be among {SECTIONS}, got {unknown}")
    started = time.perf_counter()
    load_start = os.getloadavg()
    results: dict = {}
    rows: list[Row] = []
    section_seconds = {}
    for name in sections:
        t0 = time.perf_counter()
        rows += RUNNERS[name](settings, results)
        section_seconds[name] = time.perf_counter() - t0
    load_end = os.getloadavg()
    total = time.perf_counter() - started
    payload = {
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds_total": total,
        "section_seconds": section_seconds,
        "settings": asdict(settings),
        "machine": {**machine(), "load_average_start": load_start, "load_average_end": load_end},
        "rows": [r.as_dict() for r in rows],
        "details": results,
    }
    out = Path(out) if out is not None else runs_dir("bench") / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")
    m = payload["machine"]
    print()
    print(table(rows))
    print()
    print("Notes:")
    for r in rows:
        if r.note:
            print(f"- {r.section}: {r.name}: {r.note}")
    print()
    print(
        f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['torch']} on "
        f"{m['torch_threads']} thread(s); load average {load_start[0]:.2f} at start, "
        f"{load_end[0]:.2f} at end. Total {total:.0f} s "
        f"({', '.join(f'{k} {v:.0f} s' for k, v in section_seconds.items())}). "
        f"Results: {out}"
    )
    return payload


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated, among {SECTIONS}"
    )
    parser.add_argument(
        "--out", default=None, help="results file (default runs/bench/results.json)"
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else BenchSettings()
    sections = tuple(x.strip() for x in args.sections.split(",") if x.strip())
    return run(settings, sections, args.out)


__all__ = ["QUICK", "SECTIONS", "BenchSettings", "fmt", "main", "run"]

if __name__ == "__main__":
    main()
