r"""The course's reference models: defined once, shipped in ``pretrained/``, checked on load.

A lesson shows converged behaviour from a reference model and trains a short run live
beside it. Every reference is one entry of ``REFERENCES`` (name -> ``Reference``: the
``ImageGANConfig`` of the one image-GAN recipe, the lesson that shows it, the networks it
ships); the digit classifier that scores them is the entry ``"classifier"``. The command
``make pretrain`` (``python -m gan_utils.images.pretrain``) trains them and writes, per
run, ``pretrained/<name>.pt`` and its entry in ``pretrained/manifest.json``.

A shipped file holds the networks the lessons need (the generator always; Dist-GAN's
encoder; a critic where a lesson shows it), the config and the evaluation history, and
nothing that depends on the clock, so the same command on the same machine and thread
count writes the same bytes. The manifest records, per run: the config, the data (source,
number of training digits, fingerprint), steps, seed, threads, wall time, machine, torch
version, code commit, the sha256 and size of each file, and the final metrics at fixed
evaluation draws (``final_metrics``).

Loading (``load_reference``) is strict: a missing or altered file, or a manifest entry
made from another config than the registry's, is an error naming the file and the command
that rebuilds it, never a silent retrain.

Final metrics, for N = 1,000 generated digits from latents drawn with the fixed seed
``EVAL_SEED`` (the same draws for every run of a latent size), scored with the shipped
classifier: IS (10 splits), classes covered (>= 2 % of samples), KL of the class
histogram to uniform, the mean confidence :math:`\mathbb{E}_x \max_y p(y \mid x)`, FID
against all training digits and against the held-out digits, precision, recall, density
and coverage (k = 5) against a fixed set of N training digits, and the memorisation
distances (median distance from each digit to its nearest training digit, in the
classifier's feature space and in pixels). ``real_digit_floors`` gives the same numbers
for held-out real digits: the best a generator can be expected to score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..core.atomic import artifact_lock, atomic_write_text
from ..core.checks import check_int
from ..core.compare import clear_gap, plural, span
from ..core.compare import pooled_std_of as pooled_std  # of per-seed values
from ..core.history import History
from ..core.latent import generate, sample_latent
from ..core.paths import PROJECT_ROOT
from ..hessian.nu_gan import NuGANConfig
from .classifier import (
    ClassifierConfig,
    DigitClassifier,
    classifier_from_payload,
)
from .fidelity import nearest_neighbour_distances, precision_recall_density_coverage
from .metrics import IS_SPLITS, FeatureStatistics, feature_statistics, fid_from_stats, score_digits
from .mnist import MNISTData
from .recipe import ImageGANConfig, build_networks, evaluated_series

FORMAT = 2  # of a shipped reference file; bump when its payload changes
STORED_DTYPE = torch.float16  # shipped weights: half the bytes; the networks run in float32
MANIFEST = "manifest.json"
EVAL_SEED = 2026  # seeds the final evaluation's latents: the same draws for every run
EVAL_SAMPLES = 1000  # N of the final evaluation
PRDC_K = 5  # neighbours of precision, recall, density and coverage (both papers' k)
REAL_SUBSET_SEED = 0  # picks the N training digits precision/recall compare against
CLASSIFIER = "classifier"
TINY = "tiny-dense"  # the cheap entry the test suite retrains
TIME_KEYS = ("seconds", "spectrum_seconds")  # history values that depend on the clock
NETWORKS = ("generator", "critic", "encoder")


def pretrained_dir() -> Path:
    """The tracked folder of shipped references (``GAN_UTILS_PRETRAINED`` moves it: tests)."""
    override = os.environ.get("GAN_UTILS_PRETRAINED")
    return Path(override).expanduser().resolve() if override else PROJECT_ROOT / "pretrained"


def rebuild_command(name: str) -> str:
    """The command that trains and writes reference ``name`` again."""
    return f"make pretrain NAMES={name}  (or: python -m gan_utils.images.pretrain {name})"


class ReferenceError(RuntimeError):
    """A shipped reference is missing, altered or stale; the message names the fix."""


# ---- the registry ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """One reference run: what it trains, the lesson that shows it, what it ships."""

    name: str
    lesson: str  # the notebook that shows it, e.g. "04_vanilla_gan"
    summary: str  # one line for tables and --list
    config: ImageGANConfig | None  # None: the classifier entry
    networks: tuple[str, ...] = ("generator",)  # shipped networks, of NETWORKS
    classifier: ClassifierConfig | None = None  # the classifier entry only
    spectra_every: int | None = None  # steps between logged G and D Hessian spectra

    @property
    def file_name(self) -> str:
        return f"{self.name}.pt"


# The budgets, in generator steps at batch 64 (so that they do not change with the data).
DCGAN = {  # lesson 04's DCGAN at the reference size, with InfoGAN's two Adam rates
    "architecture": "dcgan",
    "size": "reference",
    "batch_size": 64,
    "num_steps": 4_000,
    "steps_per_epoch": 250,
    "log_every": 50,  # history rows; checkpoints (every evaluation) must fall on them
    "lr_g": 1e-3,
    "lr_d": 2e-4,
    "betas": (0.5, 0.999),
    "lr_decay_from": 0.5,
}
DENSE = {  # lessons 04 and 06's dense pair (2 x 256), Adam at the lessons' dense rate
    "architecture": "dense",
    "size": "small",
    "batch_size": 64,
    "num_steps": 10_000,
    "steps_per_epoch": 500,
    "lr_g": 1e-3,
    "lr_d": 1e-3,
    "betas": (0.5, 0.999),
    "lr_decay_from": 0.5,
}
DIST_GAN = {  # Dist-GAN on the DCGAN pair at the same budget, with its paper's Adam and prior
    **DCGAN,
    "method": "dist_gan",
    "critic_normalization": "layer",
    "latent_prior": "uniform",
    "lr_g": 2e-4,
    "lr_d": 2e-4,
    "lr_ae": 2e-4,
    "betas": (0.5, 0.9),
}
NU_GAN = {**DENSE, "method": "nu_gan", "nu": NuGANConfig()}  # lesson 06's NU-GAN, dense pair
SPECTRA_EVERY = 1000  # the dense runs log G's and D's top Hessian eigenvalues (lesson 06)
LONG = {**DCGAN, "num_steps": 12_000, "steps_per_epoch": 100, "lr_decay_from": None}


def _runs() -> list[Reference]:
    runs = [
        Reference(
            CLASSIFIER,
            "03_mnist_classifier",
            "the lesson-03 digit classifier that scores every reference",
            None,
            networks=(),
            classifier=ClassifierConfig(),
        )
    ]

    def add(name, lesson, summary, fields, seeds, networks=("generator",), spectra=None):
        for latent in (1, 10):
            for seed in seeds:
                config = ImageGANConfig(**fields, latent_dim=latent, seed=seed)
                runs.append(
                    Reference(
                        f"{name}-z{latent}-s{seed}",
                        lesson,
                        f"{summary}, latent {latent}, seed {seed}",
                        config,
                        networks,
                        spectra_every=spectra,
                    )
                )

    add("vanilla-dcgan", "04_vanilla_gan", "vanilla DCGAN", DCGAN, (0, 1, 2))
    add(
        "vanilla-dense", "04_vanilla_gan", "vanilla dense GAN", DENSE, (0, 1), spectra=SPECTRA_EVERY
    )
    add("distgan-dcgan", "05_dist_gan", "Dist-GAN (DCGAN)", DIST_GAN, (0, 1), NETWORKS[::2])
    add("nugan-dense", "06_nu_gan_lanczos", "NU-GAN (dense)", NU_GAN, (0, 1), spectra=SPECTRA_EVERY)
    runs.append(
        Reference(
            TINY,
            "",
            "a 300-step dense GAN that the test suite retrains and compares byte for byte",
            ImageGANConfig(**{**DENSE, "num_steps": 300, "steps_per_epoch": 100}, latent_dim=10),
        )
    )
    runs.append(
        Reference(
            "vanilla-dcgan-z1-long",
            "04_vanilla_gan",
            "vanilla DCGAN, latent 1, 3 times the budget at a constant rate, evaluated every 100 steps",
            ImageGANConfig(**LONG, latent_dim=1, seed=0),
        )
    )
    return runs


REFERENCES: dict[str, Reference] = {r.name: r for r in _runs()}


def get_reference(name: str) -> Reference:
    """The registry entry ``name``; an unknown name lists the known ones."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a reference name (str), got {type(name).__name__}")
    if name not in REFERENCES:
        raise ValueError(f"name must be one of {list(REFERENCES)}, got {name!r}")
    return REFERENCES[name]


def references_for(lesson: str) -> list[Reference]:
    """The references a lesson shows, in registry order."""
    return [r for r in REFERENCES.values() if r.lesson == lesson]


# ---- files and the manifest -----------------------------------------------------------------
def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path | None = None) -> dict[str, Any]:
    """``manifest.json`` of the shipped references: ``{"runs": {name: entry}}`` ({} if absent).

    Raises:
        ReferenceError: the file is not JSON or not a manifest, naming it.
    """
    path = (folder or pretrained_dir()) / MANIFEST
    if not path.is_file():
        return {"format": FORMAT, "runs": {}}
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReferenceError(
            f"{path} is not valid JSON ({error}); restore it with `git checkout {MANIFEST}` "
            "in pretrained/ or rebuild every reference with `make pretrain`"
        ) from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("runs"), dict):
        raise ReferenceError(f"{path} has no 'runs' mapping: it is not a reference manifest")
    return manifest


def write_manifest(manifest: dict[str, Any], folder: Path | None = None) -> Path:
    """Write the manifest atomically (``gan_utils.core.atomic``: the old manifest or the new
    one, never a partial one), runs in registry order (stable diffs)."""
    folder = folder or pretrained_dir()
    folder.mkdir(parents=True, exist_ok=True)
    order = list(REFERENCES)
    runs = manifest.get("runs", {})
    for name, entry in runs.items():  # registry facts, not the run's: always today's
        if name in REFERENCES:
            entry.update(lesson=REFERENCES[name].lesson, summary=REFERENCES[name].summary)
    ordered = {
        k: runs[k]
        for k in sorted(
            runs, key=lambda k: (k not in order, order.index(k) if k in order else 0, k)
        )
    }
    text = json.dumps({**manifest, "format": FORMAT, "runs": ordered}, indent=1, sort_keys=False)
    return atomic_write_text(folder / MANIFEST, text + "\n")


def update_manifest(
    change: Callable[[dict[str, Any]], None], folder: Path | None = None
) -> dict[str, Any]:
    """Read the manifest, ``change`` it in place and write it back, all under the
    manifest's lock (``core.atomic.artifact_lock`` on ``manifest.json.lock``): two
    processes recording references at once both keep their entries, where a plain read
    and write would let the later writer drop the earlier one's. Returns the new manifest."""
    folder = folder or pretrained_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with artifact_lock(folder / MANIFEST, log=lambda _message: None):
        manifest = read_manifest(folder)
        change(manifest)
        write_manifest(manifest, folder)
    return manifest


def config_record(reference: Reference) -> dict[str, Any]:
    """The registry's config of a reference as the manifest stores it (JSON types)."""
    if reference.config is None:
        return json.loads(json.dumps(dataclasses.asdict(reference.classifier)))
    fields = dataclasses.asdict(reference.config)
    fields.pop("device")
    fields["spectra_every"] = reference.spectra_every  # a callback of the run, not the recipe's
    return json.loads(json.dumps(fields))


def stale_references(folder: Path | None = None) -> dict[str, str]:
    """Shipped runs whose manifest entry no longer matches the registry: name -> why.

    A run counts as stale when its stored config differs from the registry's (the fields
    are named), when it ships other networks, or when the registry no longer has it.
    Runs of the registry that are not shipped yet are not listed (``missing_references``).
    """
    runs = read_manifest(folder)["runs"]
    classifier_files = runs.get(CLASSIFIER, {}).get("files", {})
    classifier_sha = classifier_files.get(f"{CLASSIFIER}.pt", {}).get("sha256")
    stale = {}
    for name, entry in runs.items():
        if name not in REFERENCES:
            stale[name] = "no longer in the registry"
            continue
        wanted = config_record(REFERENCES[name])
        stored = entry.get("config", {})
        changed = sorted(k for k in {*wanted, *stored} if wanted.get(k) != stored.get(k))
        if changed:
            stale[name] = "config fields differ: " + ", ".join(changed)
        elif name != CLASSIFIER and entry.get("format") != FORMAT:
            stale[name] = f"its file has format {entry.get('format')!r}, this code reads {FORMAT}"
        elif set(entry.get("files", {})) != {REFERENCES[name].file_name}:
            stale[name] = "it ships other files than the registry's"
        elif name != CLASSIFIER and entry.get("classifier") != classifier_sha:
            stale[name] = "it was scored with another classifier than the shipped one"
    return stale


def missing_references(folder: Path | None = None) -> list[str]:
    """Registry entries with no manifest entry yet."""
    runs = read_manifest(folder)["runs"]
    return [name for name in REFERENCES if name not in runs]


def verified_path(name: str, folder: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The shipped file of ``name`` and its manifest entry, checked against the manifest.

    Raises:
        ReferenceError: naming the file and ``rebuild_command(name)`` when the run is not
            in the manifest, the file is missing, its sha256 differs from the manifest's
            (altered or truncated), or the entry was made from another config.
    """
    reference = get_reference(name)
    folder = folder or pretrained_dir()
    path = folder / reference.file_name
    entry = read_manifest(folder)["runs"].get(name)
    fix = f"Rebuild it with `{rebuild_command(name)}`."
    if entry is None:
        raise ReferenceError(f"{path}: reference {name!r} is not in {folder / MANIFEST}. {fix}")
    why = stale_references(folder).get(name)
    if why is not None:
        raise ReferenceError(
            f"{path}: the shipped reference {name!r} was made from another config than the "
            f"registry's ({why}). {fix}"
        )
    if not path.is_file():
        raise ReferenceError(f"{path}: the shipped reference file is missing. {fix}")
    expected = entry["files"][reference.file_name]["sha256"]
    actual = sha256_of(path)
    if actual != expected:
        raise ReferenceError(
            f"{path}: sha256 {actual[:12]}... differs from the manifest's {expected[:12]}... "
            f"(the file is altered or truncated). Restore it with `git checkout {path.name}` "
            f"in pretrained/, or {fix[0].lower()}{fix[1:]}"
        )
    return path, entry


# ---- payloads -----------------------------------------------------------------------------
def run_payload(
    name: str, config: ImageGANConfig, networks: dict[str, nn.Module], history: History
) -> dict:
    """What ``pretrained/<name>.pt`` holds for a GAN run (nothing that depends on the clock).

    Floating-point weights and buffers are stored in ``STORED_DTYPE`` (float16: half the
    bytes, a relative rounding of at most 2^-11); loading copies them into float32 networks.
    The shipped model *is* the rounded one: its final metrics are measured after rounding.
    """
    reference = get_reference(name)
    return {
        "format": FORMAT,
        "name": name,
        "config": config_record(reference),
        "networks": {key: _stored(networks[key]) for key in reference.networks},
        "history": history.to_json(exclude=TIME_KEYS),
    }


def _stored(network: nn.Module) -> dict[str, Tensor]:
    return {
        k: v.detach().cpu().to(STORED_DTYPE) if v.is_floating_point() else v.detach().cpu().clone()
        for k, v in network.state_dict().items()
    }


def config_from_record(record: dict[str, Any]) -> ImageGANConfig:
    """The ``ImageGANConfig`` of a stored config record (on the CPU)."""
    fields = {k: v for k, v in record.items() if k != "spectra_every"}
    return ImageGANConfig(**{**fields, "device": "cpu"})


@dataclass
class LoadedReference:
    """A shipped reference run rebuilt in today's architecture."""

    name: str
    config: ImageGANConfig
    generator: nn.Module  # evaluation mode
    history: History
    metrics: dict[str, Any]  # the manifest's final metrics
    entry: dict[str, Any]  # the whole manifest entry (data, wall time, machine, ...)
    encoder: nn.Module | None = None
    critic: nn.Module | None = None
    path: Path | None = None

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def series(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(epochs, values) of a metric evaluated during training, e.g. ``"is_mean"``."""
        return evaluated_series(self.history, key, f"the history of {self.name}")


def networks_from_payload(
    payload: dict, device: str | torch.device = "cpu"
) -> dict[str, nn.Module]:
    """Today's networks for a payload's config, with its weights (evaluation mode)."""
    config = config_from_record(payload["config"])
    with torch.random.fork_rng(devices=[]):  # building draws initial weights: keep the RNG
        pair, encoder = build_networks(config)
    built = {"generator": pair.generator, "critic": pair.critic, "encoder": encoder}
    networks = {}
    for key, state in payload["networks"].items():
        network = built[key]
        network.load_state_dict(state)
        networks[key] = network.to(device).eval()
    return networks


def load_reference(
    name: str, device: str | torch.device = "cpu", folder: Path | None = None
) -> LoadedReference:
    """The shipped reference ``name``, verified (``verified_path``) and rebuilt.

    Raises:
        ReferenceError: as ``verified_path``, or when the file does not load into today's
            networks (naming the file and the rebuild command).
    """
    reference = get_reference(name)
    if reference.config is None:
        raise ValueError(
            f"name must be a GAN reference, got {name!r}: use load_reference_classifier()"
        )
    path, entry = verified_path(name, folder)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        if payload.get("format") != FORMAT:
            raise ValueError(f"format {payload.get('format')!r}, expected {FORMAT}")
        networks = networks_from_payload(payload, device)
    except Exception as error:
        raise ReferenceError(
            f"{path} does not load into today's networks ({error}). "
            f"Rebuild it with `{rebuild_command(name)}`."
        ) from error
    config = config_from_record(payload["config"])
    return LoadedReference(
        name=name,
        config=config,
        generator=networks["generator"],
        history=History(json.loads(payload["history"])),
        metrics=dict(entry.get("metrics", {})),
        entry=entry,
        encoder=networks.get("encoder"),
        critic=networks.get("critic"),
        path=path,
    )


def load_reference_classifier(
    device: str | torch.device = "cpu", folder: Path | None = None
) -> DigitClassifier:
    """The shipped lesson-03 classifier that scores every reference (verified)."""
    path, _ = verified_path(CLASSIFIER, folder)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        return classifier_from_payload(payload, path, device)
    except Exception as error:
        raise ReferenceError(
            f"{path} does not load into today's classifier ({error}). "
            f"Rebuild it with `{rebuild_command(CLASSIFIER)}`."
        ) from error


# ---- final metrics -------------------------------------------------------------------------
@dataclass
class RealDigits:
    """The real digits every reference is compared with, and their classifier features."""

    train: Tensor  # (n_train, 1, 28, 28)
    test: Tensor  # (n_test, 1, 28, 28)
    train_features: np.ndarray  # (n_train, F) float64
    test_features: np.ndarray
    subset: np.ndarray  # indices of the N training digits of precision / recall

    @cached_property
    def train_stats(self) -> FeatureStatistics:
        """Mean and covariance of the training digits' features (FID against them)."""
        return feature_statistics(self.train_features)

    @cached_property
    def test_stats(self) -> FeatureStatistics:
        """Mean and covariance of the held-out digits' features."""
        return feature_statistics(self.test_features)

    @classmethod
    def build(cls, classifier: DigitClassifier, train: MNISTData, test: MNISTData) -> RealDigits:
        features = lambda x: classifier.features(x).double().numpy()  # noqa: E731
        rng = np.random.default_rng(REAL_SUBSET_SEED)
        n = min(EVAL_SAMPLES, len(train))
        return cls(
            train=train.images,
            test=test.images,
            train_features=features(train.images),
            test_features=features(test.images),
            subset=np.sort(rng.choice(len(train), size=n, replace=False)),
        )


def score_images(images: Tensor, classifier: DigitClassifier, real: RealDigits) -> dict[str, Any]:
    """Every final metric of a set of digit images (module docstring), as plain numbers."""
    metrics, counts = score_digits(images, classifier, splits=IS_SPLITS)
    features = classifier.features(images).double().numpy()
    stats = feature_statistics(features)
    train_stats, test_stats = real.train_stats, real.test_stats
    prdc = precision_recall_density_coverage(real.train_features[real.subset], features, k=PRDC_K)
    flat = images.reshape(images.shape[0], -1).double().numpy()
    train_flat = real.train.reshape(real.train.shape[0], -1).double().numpy()
    return {
        **{k: float(v) if isinstance(v, float) else v for k, v in metrics.items()},
        "fid_train": fid_from_stats(stats.mean, stats.cov, train_stats.mean, train_stats.cov),
        "fid_test": fid_from_stats(stats.mean, stats.cov, test_stats.mean, test_stats.cov),
        **{k: float(v) for k, v in prdc.items()},
        "nn_feature_median": float(
            np.median(nearest_neighbour_distances(features, real.train_features))
        ),
        "nn_pixel_median": float(np.median(nearest_neighbour_distances(flat, train_flat))),
        "class_counts": [int(c) for c in counts],
    }


def evaluation_latents(config: ImageGANConfig) -> Tensor:
    """The fixed latents of the final evaluation (``EVAL_SEED``, the config's prior)."""
    rng = torch.Generator().manual_seed(EVAL_SEED)
    return sample_latent(EVAL_SAMPLES, config.latent_dim, config.latent_prior, rng=rng)


def final_metrics(
    generator: nn.Module, config: ImageGANConfig, classifier: DigitClassifier, real: RealDigits
) -> dict[str, Any]:
    """The final metrics of a generator at the fixed evaluation draws."""
    return score_images(generate(generator, evaluation_latents(config)), classifier, real)


def real_digit_floors(classifier: DigitClassifier, real: RealDigits) -> dict[str, Any]:
    """The final metrics of N held-out real digits: what a perfect generator would score.

    FID against the held-out digits is taken from N training digits instead (the
    held-out set against itself would be 0).
    """
    n = min(EVAL_SAMPLES, real.test.shape[0])
    floors = score_images(real.test[:n], classifier, real)
    train_part = real.train_features[real.subset]
    part = feature_statistics(train_part)
    test_stats = real.test_stats
    floors["fid_test"] = fid_from_stats(part.mean, part.cov, test_stats.mean, test_stats.cov)
    return floors


# ---- groups of seeds -------------------------------------------------------------------------
def seed_group(prefix: str, latent_dim: int) -> list[str]:
    """The registry names of one (method, latent size) pair over its seeds, e.g.
    ``seed_group("vanilla-dcgan", 10)`` -> ["vanilla-dcgan-z10-s0", ...]."""
    check_int("latent_dim", latent_dim, minimum=1)
    names = [n for n in REFERENCES if n.startswith(f"{prefix}-z{latent_dim}-s")]
    if not names:
        known = sorted({n.rsplit("-z", 1)[0] for n in REFERENCES if "-z" in n})
        raise ValueError(
            f"prefix must be one of {known} with a latent size they have, got {prefix!r} "
            f"and latent_dim={latent_dim}"
        )
    return names


def verdict(
    method: Sequence[float], baseline: Sequence[float], higher_is_better: bool = True
) -> str:
    """ "better", "worse" or "no difference at this budget" for a method against its baseline.

    "better" / "worse" only when the gap of the means exceeds twice the pooled standard
    deviation over seeds, s_p = sqrt(((n1 - 1) s1^2 + (n2 - 1) s2^2) / (n1 + n2 - 2)); with
    fewer than two runs on either side there is no spread to compare with, and no verdict
    ("no difference at this budget" is not claimed either: "too few seeds").
    """
    a, b = np.asarray(method, dtype=float), np.asarray(baseline, dtype=float)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError("method and baseline must be 1-D sequences of per-seed values")
    if len(a) < 2 or len(b) < 2:
        return "too few seeds"
    sign = clear_gap(a.mean(), a.std(ddof=1), len(a), b.mean(), b.std(ddof=1), len(b))
    sign *= 1 if higher_is_better else -1
    return {1: "better", -1: "worse", 0: "no difference at this budget"}[sign]


# ---- tables ----------------------------------------------------------------------------------
TABLE_COLUMNS: tuple[tuple[str, str, int], ...] = (  # (metric, header, decimals)
    ("is_mean", "IS ↑", 2),
    ("classes_covered", "classes ↑", 1),
    ("kl_to_uniform", "KL to uniform ↓", 3),
    ("confidence", "confidence", 3),
    ("fid_train", "FID vs train ↓", 1),
    ("fid_test", "FID vs held-out ↓", 1),
    ("precision", "precision ↑", 2),
    ("recall", "recall ↑", 2),
    ("nn_feature_median", "nearest train digit (features)", 2),
)


def format_cell(mean: float, std: float, digits: int) -> str:
    """``mean ± std`` with ``digits`` decimals (just the mean when std is NaN)."""
    if not math.isfinite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def reference_rows(
    groups: dict[str, Sequence[str]],
    metrics: dict[str, dict[str, Any]],
    columns: Sequence[tuple] = TABLE_COLUMNS,
) -> list[dict[str, Any]]:
    """One row per group of seeds (label -> run names): for every metric of ``columns``
    (tuples starting ``(metric, header, decimals)``, as ``TABLE_COLUMNS``) its mean and
    standard deviation (ddof 1; NaN for one run) over the group's runs, as
    ``<metric>_mean`` / ``<metric>_std``, plus ``label`` and ``seeds``.

    ``metrics`` maps a run name to its final metrics (``LoadedReference.metrics``, or the
    manifest's ``runs[name]["metrics"]``).

    Raises:
        KeyError: a run of a group has no metrics, naming it.
    """
    rows = []
    for label, names in groups.items():
        missing = [n for n in names if n not in metrics]
        if missing:
            raise KeyError(f"metrics has no entry for the reference run(s) {missing}")
        row: dict[str, Any] = {"label": label, "seeds": len(names)}
        for key, *_ in columns:
            values = np.array([float(metrics[n][key]) for n in names], dtype=float)
            row[f"{key}_mean"] = float(values.mean())
            row[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
        rows.append(row)
    return rows


def reference_table_markdown(
    rows: Sequence[dict[str, Any]],
    floors: dict[str, Any] | None = None,
    columns: Sequence[tuple] = TABLE_COLUMNS,
) -> str:
    """The rows as a Markdown table (mean ± std over seeds; the mean alone for one seed);
    ``floors`` (the manifest's ``real_digits`` metrics) adds a last line for held-out real
    digits. ``columns`` as for ``reference_rows``."""
    header = "| run | seeds | " + " | ".join(h for _, h, *_ in columns) + " |"
    lines = [header, "| --- | ---: | " + " | ".join("---:" for _ in columns) + " |"]
    for row in rows:
        cells = [format_cell(row[f"{k}_mean"], row[f"{k}_std"], d) for k, _, d, *_ in columns]
        lines.append(f"| {row['label']} | {row['seeds']} | " + " | ".join(cells) + " |")
    if floors is not None:
        cells = [format_cell(float(floors[k]), float("nan"), d) for k, _, d, *_ in columns]
        lines.append("| real held-out digits | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def metrics_match(
    recorded: dict[str, Any], measured: dict[str, Any], rtol: float = 1e-5
) -> list[str]:
    """Keys whose values differ by more than ``rtol`` (relative) between two metric sets."""
    bad = []
    for key, value in recorded.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            other = measured.get(key)
            if other is None or not math.isclose(value, other, rel_tol=rtol, abs_tol=1e-9):
                bad.append(key)
        elif value != measured.get(key):
            bad.append(key)
    return bad


__all__ = [
    "CLASSIFIER",
    "TINY",
    "EVAL_SAMPLES",
    "EVAL_SEED",
    "REFERENCES",
    "LoadedReference",
    "RealDigits",
    "Reference",
    "ReferenceError",
    "config_record",
    "final_metrics",
    "format_cell",
    "get_reference",
    "seed_group",
    "span",
    "verdict",
    "load_reference",
    "load_reference_classifier",
    "metrics_match",
    "missing_references",
    "plural",
    "pooled_std",
    "pretrained_dir",
    "read_manifest",
    "real_digit_floors",
    "rebuild_command",
    "reference_rows",
    "reference_table_markdown",
    "references_for",
    "run_payload",
    "score_images",
    "stale_references",
    "update_manifest",
    "verified_path",
    "write_manifest",
]
