"""The reference models: registry, shipped files, manifest, and the ``make pretrain`` command.

The shipped files are checked as they are (sha256, loading into today's networks, recorded
metrics reproduced at the fixed draws); the command is exercised on the registry's cheap
entry (``TINY``, 300 steps) in temporary folders, never on the tracked ``pretrained/``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from gan_utils.images import pretrain as pretrain_module
from gan_utils.images.mnist import load_mnist
from gan_utils.images.pretrain import STOP_AT, check, machine, main, pretrain, reference_run
from gan_utils.images.references import (
    CLASSIFIER,
    EVAL_SAMPLES,
    MANIFEST,
    REFERENCES,
    TABLE_COLUMNS,
    TINY,
    RealDigits,
    ReferenceError,
    final_metrics,
    get_reference,
    load_reference,
    load_reference_classifier,
    metrics_match,
    plural,
    pooled_std,
    pretrained_dir,
    read_manifest,
    reference_rows,
    reference_table_markdown,
    references_for,
    seed_group,
    sha256_of,
    span,
    stale_references,
    verdict,
    verified_path,
    write_manifest,
)

SHIPPED = pretrained_dir()
SHIPPED_RUNS = read_manifest(SHIPPED)["runs"]
GAN_RUNS = [name for name in SHIPPED_RUNS if name != CLASSIFIER]


def _local_data_matches(entry: dict) -> bool:
    train = load_mnist("train", verbose=False)
    return entry["data"]["train"] == train.fingerprint


# ---- the registry ---------------------------------------------------------------------------
def test_the_registry_holds_the_reference_set_with_its_seeds():
    def seeds(prefix: str, latent: int) -> list[int]:
        return [
            r.config.seed for r in REFERENCES.values() if r.name.startswith(f"{prefix}-z{latent}-s")
        ]

    for latent in (1, 10):
        assert seeds("vanilla-dcgan", latent) == [0, 1, 2]
        for prefix in ("vanilla-dense", "distgan-dcgan", "nugan-dense"):
            assert len(seeds(prefix, latent)) >= 2
    long = REFERENCES["vanilla-dcgan-z1-long"].config
    assert (
        long.latent_dim == 1 and long.num_steps > REFERENCES["vanilla-dcgan-z1-s0"].config.num_steps
    )
    assert long.steps_per_epoch < REFERENCES["vanilla-dcgan-z1-s0"].config.steps_per_epoch
    assert CLASSIFIER in REFERENCES and REFERENCES[CLASSIFIER].config is None
    assert {r.lesson for r in REFERENCES.values()} >= {
        "04_vanilla_gan",
        "05_dist_gan",
        "06_nu_gan_lanczos",
    }
    assert references_for("05_dist_gan") and all(
        r.config.method == "dist_gan" for r in references_for("05_dist_gan")
    )


@pytest.mark.parametrize(
    "method_prefix, baseline_prefix",
    [("distgan-dcgan", "vanilla-dcgan"), ("nugan-dense", "vanilla-dense")],
)
def test_each_method_has_the_budget_and_networks_of_its_vanilla_baseline(
    method_prefix, baseline_prefix
):
    for latent in (1, 10):
        method = REFERENCES[f"{method_prefix}-z{latent}-s0"].config
        base = REFERENCES[f"{baseline_prefix}-z{latent}-s0"].config
        same = ("architecture", "size", "batch_size", "num_steps", "steps_per_epoch", "latent_dim")
        assert {f: getattr(method, f) for f in same} == {f: getattr(base, f) for f in same}


def test_an_unknown_reference_name_lists_the_known_ones(capsys):
    with pytest.raises(ValueError, match="tiny-dense") as error:
        get_reference("vanilla-dcgan-z3-s0")
    assert "vanilla-dcgan-z3-s0" in str(error.value)
    with pytest.raises(TypeError, match="name"):
        get_reference(3)
    assert main(["vanilla-dcgan-z3-s0"]) == 2
    err = capsys.readouterr().err
    assert "vanilla-dcgan-z3-s0" in err and "vanilla-dcgan-z10-s0" in err


def test_device_cuda_without_a_gpu_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([TINY, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "cuda" in err.lower() and "--device" in err
    assert main([TINY, "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err


# ---- the shipped files ----------------------------------------------------------------------
def test_the_shipped_manifest_matches_the_registry():
    assert (SHIPPED / MANIFEST).is_file(), f"no {SHIPPED / MANIFEST}: run `make pretrain`"
    assert CLASSIFIER in SHIPPED_RUNS and TINY in SHIPPED_RUNS
    stale = stale_references(SHIPPED)
    assert not stale, f"rebuild with `make pretrain NAMES='{' '.join(stale)}'`: {stale}"


@pytest.mark.parametrize("name", list(SHIPPED_RUNS))
def test_every_shipped_file_matches_its_manifest_sha256(name):
    path, entry = verified_path(name, SHIPPED)
    ((file_name, record),) = entry["files"].items()
    assert path.name == file_name
    assert sha256_of(path) == record["sha256"] and path.stat().st_size == record["bytes"]
    for field in ("config", "data", "threads", "wall_seconds", "machine", "torch", "commit"):
        assert field in entry, f"{name}: the manifest entry lacks {field!r}"


def test_the_shipped_files_stay_within_25_mb():
    total = sum(p.stat().st_size for p in SHIPPED.iterdir() if p.is_file())
    assert total <= 25e6, f"pretrained/ holds {total / 1e6:.1f} MB"


@pytest.fixture(scope="module")
def shipped_scoring():
    classifier = load_reference_classifier(folder=SHIPPED)
    train, test = load_mnist("train", verbose=False), load_mnist("test", verbose=False)
    return classifier, RealDigits.build(classifier, train, test)


@pytest.mark.parametrize("name", GAN_RUNS)
def test_each_shipped_run_loads_and_reproduces_its_recorded_metrics(name, shipped_scoring):
    entry = SHIPPED_RUNS[name]
    if not _local_data_matches(entry):
        pytest.skip(f"{name} was scored on {entry['data']['train']}; these tests see other data")
    reference = load_reference(name, folder=SHIPPED)
    assert reference.config == dataclasses.replace(get_reference(name).config, device="cpu")
    for network in get_reference(name).networks:
        assert getattr(reference, network) is not None
    classifier, real = shipped_scoring
    measured = final_metrics(reference.generator, reference.config, classifier, real)
    assert measured["eval_samples"] == EVAL_SAMPLES
    assert not metrics_match(entry["metrics"], measured, rtol=1e-5), (entry["metrics"], measured)
    evaluated = [r for r in reference.history.rows if "epoch" in r and "is_mean" in r]
    assert len(evaluated) == reference.config.epochs
    stored = torch.load(SHIPPED / f"{name}.pt", weights_only=False)["networks"]["generator"]
    assert {v.dtype for v in stored.values() if v.is_floating_point()} == {torch.float16}
    assert all(p.dtype == torch.float32 for p in reference.generator.parameters())


def test_the_real_digit_floors_are_recorded_and_plausible():
    floors = read_manifest(SHIPPED)["real_digits"]["metrics"]
    assert floors["is_mean"] > 8.5 and floors["classes_covered"] == 10
    assert floors["fid_train"] < 10 and floors["kl_to_uniform"] < 0.01
    assert floors["precision"] > 0.6 and floors["recall"] > 0.6


# ---- bad files ----------------------------------------------------------------------------
@pytest.fixture
def shipped_copy(tmp_path) -> Path:
    """The classifier and the tiny run with their manifest entries, in a temporary folder."""
    runs = {k: SHIPPED_RUNS[k] for k in (CLASSIFIER, TINY)}
    for name in runs:
        shutil.copy(SHIPPED / get_reference(name).file_name, tmp_path)
    write_manifest({**read_manifest(SHIPPED), "runs": runs}, tmp_path)
    return tmp_path


def _fails_naming(folder: Path, name: str, *words: str) -> str:
    with pytest.raises(ReferenceError) as error:
        load_reference(name, folder=folder)
    message = str(error.value)
    assert str(folder / f"{name}.pt") in message
    assert f"make pretrain NAMES={name}" in message
    for word in words:
        assert word in message
    return message


def test_a_missing_file_is_an_error_naming_it_and_the_rebuild_command(shipped_copy):
    assert load_reference(TINY, folder=shipped_copy).generator is not None
    (shipped_copy / f"{TINY}.pt").unlink()
    _fails_naming(shipped_copy, TINY, "missing")


def test_a_truncated_or_altered_file_is_an_error_never_a_retrain(shipped_copy):
    path = shipped_copy / f"{TINY}.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _fails_naming(shipped_copy, TINY, "sha256", "truncated")
    altered = bytearray(data)
    altered[len(altered) // 2] ^= 0xFF
    path.write_bytes(bytes(altered))
    _fails_naming(shipped_copy, TINY, "sha256")
    assert not (pretrained_dir() / "artifacts").exists()


def test_a_manifest_that_no_longer_matches_the_registry_names_the_runs(shipped_copy):
    manifest = read_manifest(shipped_copy)
    manifest["runs"][TINY]["config"]["num_steps"] = 123
    write_manifest(manifest, shipped_copy)
    stale = stale_references(shipped_copy)
    assert list(stale) == [TINY] and "num_steps" in stale[TINY]
    _fails_naming(shipped_copy, TINY, "another config", "num_steps")


def test_a_manifest_that_is_not_json_is_an_error_naming_it(shipped_copy):
    (shipped_copy / MANIFEST).write_text("{not json")
    with pytest.raises(ReferenceError, match="not valid JSON") as error:
        load_reference(TINY, folder=shipped_copy)
    assert str(shipped_copy / MANIFEST) in str(error.value)


def test_a_run_not_in_the_manifest_is_an_error(shipped_copy):
    with pytest.raises(ReferenceError, match="not in"):
        load_reference("vanilla-dcgan-z10-s0", folder=shipped_copy)


# ---- the command on the cheap entry ----------------------------------------------------------
@pytest.fixture
def classifier_only(shipped_copy) -> Path:
    (shipped_copy / f"{TINY}.pt").unlink()
    manifest = read_manifest(shipped_copy)
    del manifest["runs"][TINY]
    write_manifest(manifest, shipped_copy)
    return shipped_copy


def _same_as_shipped(folder: Path) -> None:
    entry = SHIPPED_RUNS[TINY]
    if entry["machine"] == machine() and entry["torch"] == torch.__version__:
        assert (folder / f"{TINY}.pt").read_bytes() == (SHIPPED / f"{TINY}.pt").read_bytes()
    else:  # another machine: the metrics, not the bytes
        fresh = read_manifest(folder)["runs"][TINY]["metrics"]
        assert not metrics_match(entry["metrics"], fresh, rtol=1e-3)


@pytest.mark.slow
def test_killed_half_way_the_command_resumes_and_writes_the_shipped_file(
    classifier_only, monkeypatch, capsys
):
    if not _local_data_matches(SHIPPED_RUNS[TINY]):
        pytest.skip("the shipped tiny run was trained on other data than these tests see")
    monkeypatch.setenv(STOP_AT, "200")  # Ctrl-C after step 200: the checkpoint of step 100 stays
    with pytest.raises(KeyboardInterrupt):
        pretrain([TINY], folder=classifier_only, log=print)
    assert not (classifier_only / f"{TINY}.pt").exists()
    assert TINY not in read_manifest(classifier_only)["runs"]
    monkeypatch.delenv(STOP_AT)
    pretrain([TINY], folder=classifier_only, log=print)
    assert "resuming from step 100" in capsys.readouterr().out
    _same_as_shipped(classifier_only)
    pretrain([TINY], folder=classifier_only, log=print)  # nothing left to do
    assert f"{TINY}: up to date" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.cluster
def test_on_a_dask_cluster_the_tiny_run_comes_back_and_is_written_here(
    classifier_only, local_cluster, capsys
):
    if not _local_data_matches(SHIPPED_RUNS[TINY]):
        pytest.skip("the shipped tiny run was trained on other data than these tests see")
    pretrain([TINY], folder=classifier_only, log=print, cluster=local_cluster.scheduler_address)
    assert f"{TINY}: written" in capsys.readouterr().out
    entry = read_manifest(classifier_only)["runs"][TINY]
    assert "contents" not in entry  # the bytes went to the file, not into the manifest
    digest = hashlib.sha256((classifier_only / f"{TINY}.pt").read_bytes()).hexdigest()
    assert digest == entry["files"][f"{TINY}.pt"]["sha256"]
    _same_as_shipped(classifier_only)


def test_a_file_that_comes_back_altered_is_refused_and_nothing_is_written(tmp_path):
    from gan_utils.images.pretrain import _record

    content = b"model bytes"
    entry = {"name": TINY, "files": {f"{TINY}.pt": {"sha256": "0" * 64, "bytes": len(content)}}}
    with pytest.raises(ReferenceError, match=f"{TINY}: the {TINY}.pt that came back .* sha256"):
        _record(tmp_path, {**entry, "contents": {f"{TINY}.pt": content}}, print)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_check_retrains_the_tiny_run_and_compares_it_with_the_shipped_file(shipped_copy, capsys):
    if not _local_data_matches(SHIPPED_RUNS[TINY]):
        pytest.skip("the shipped tiny run was trained on other data than these tests see")
    assert check(TINY, folder=shipped_copy) is True
    out = capsys.readouterr().out
    assert "byte for byte" in out or "final metrics" in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_the_tiny_reference_trains_on_a_gpu(classifier_only):
    pretrain([TINY], device="cuda", folder=classifier_only, log=print)
    entry = read_manifest(classifier_only)["runs"][TINY]
    assert entry["device"].startswith("cuda")
    assert entry["metrics"]["eval_samples"] == EVAL_SAMPLES


def test_the_manifest_is_written_atomically_in_registry_order(tmp_path):
    runs = {TINY: {"x": 1}, CLASSIFIER: {"y": 2}}
    write_manifest({"runs": runs}, tmp_path)
    text = (tmp_path / MANIFEST).read_text()
    assert list(json.loads(text)["runs"]) == [CLASSIFIER, TINY]
    assert not list(tmp_path.glob("*.tmp"))


def test_the_pretrain_module_documents_its_command():
    assert "python -m gan_utils.images.pretrain" in pretrain_module.__doc__


# ---- groups and verdicts --------------------------------------------------------------------
def test_seed_groups_follow_the_registry():
    assert seed_group("vanilla-dcgan", 10) == [f"vanilla-dcgan-z10-s{s}" for s in (0, 1, 2)]
    with pytest.raises(ValueError, match="vanilla-dcgan"):
        seed_group("vanilla-dcgann", 10)
    with pytest.raises(TypeError, match="latent_dim"):
        seed_group("vanilla-dcgan", 1.0)


def test_the_verdict_needs_a_gap_of_twice_the_pooled_spread():
    # two seeds a side, each with sample std sqrt(2): pooled sqrt(2), threshold 2.83
    assert verdict([2.8, 4.8], [0.0, 2.0]) == "no difference at this budget"
    assert verdict([2.9, 4.9], [0.0, 2.0]) == "better"
    assert verdict([2.9, 4.9], [0.0, 2.0], higher_is_better=False) == "worse"
    # unequal sizes: s_p^2 = (2 * 1 + 1 * 4) / 3 = 2
    a, b = [0.0, 1.0, 2.0], [10.0, 10.0 + 2 * 2**0.5]
    gap = abs(np_mean(a) - np_mean(b))
    assert gap > 2 * 2**0.5 and verdict(a, b) == "worse"
    assert verdict([1.0], [0.0, 0.1]) == "too few seeds"
    assert pooled_std([2.8, 4.8], [0.0, 2.0]) == pytest.approx(2**0.5)
    assert pooled_std(a, b) == pytest.approx(2**0.5)
    assert pooled_std([1.0], [0.0, 0.1]) != pooled_std([1.0], [0.0, 0.1])  # NaN


def test_sentences_agree_with_their_counts_and_ranges():
    assert plural(1, "seed") == "1 seed" and plural(2, "seed") == "2 seeds"
    assert plural(1, "class") == "1 class" and plural(0, "class") == "0 classes"
    assert plural(1.5, "class") == "1.5 classes" and plural(1.0, "pair") == "1 pair"
    assert plural(10_000, "step") == "10,000 steps"
    assert plural(3, "copy", "copies") == "3 copies"
    assert span([5.2, 4.9], unit="s") == "5 s"  # both ends print as 5: one value
    assert span([4.6, 7.0], unit="s") == "5-7 s"
    assert span([0.25, 0.5], ".2f") == "0.25-0.50"
    with pytest.raises(ValueError, match="at least one value"):
        span([])


def np_mean(values):
    return sum(values) / len(values)


def test_the_reference_table_shows_mean_and_spread_over_seeds_and_the_real_floor():
    metrics = {key: 1.0 for key, _, _ in TABLE_COLUMNS}
    runs = {
        f"vanilla-dcgan-z10-s{s}": {"metrics": {**metrics, "is_mean": v}}
        for s, v in enumerate([7.0, 8.0, 9.0])
    }
    metrics_of = {name: entry["metrics"] for name, entry in runs.items()}
    rows = reference_rows({"DCGAN z10": seed_group("vanilla-dcgan", 10)}, metrics_of)
    assert rows[0]["seeds"] == 3 and rows[0]["is_mean_mean"] == pytest.approx(8.0)
    text = reference_table_markdown(rows, floors={**metrics, "is_mean": 9.25})
    lines = text.splitlines()
    assert len(lines) == 4 and "8.00 ± 1.00" in lines[2] and "9.25" in lines[3]
    assert lines[3].startswith("| real held-out digits")


@pytest.mark.slow
def test_use_pretrained_false_trains_the_same_run_through_the_same_recipe():
    entry = SHIPPED_RUNS[TINY]
    if not _local_data_matches(entry):
        pytest.skip("the shipped tiny run was trained on other data than these tests see")
    here = reference_run(TINY, use_pretrained=False, device="cpu", log=print)
    shipped = load_reference(TINY)
    assert here.config == shipped.config and here.history.rows == shipped.history.rows
    if entry["machine"] == machine() and entry["torch"] == torch.__version__:
        for key, value in shipped.generator.state_dict().items():
            assert torch.equal(here.generator.state_dict()[key], value), key
        assert not metrics_match(entry["metrics"], here.metrics, rtol=1e-5)


def test_reference_run_checks_its_switch():
    with pytest.raises(TypeError, match="use_pretrained"):
        reference_run(TINY, use_pretrained="yes")


@pytest.mark.parametrize("name", [n for n, r in REFERENCES.items() if r.config is not None])
def test_every_registry_run_checkpoints_at_each_evaluation(name):
    # make pretrain checkpoints every steps_per_epoch steps: the loop accepts that only on a
    # history row (and NU-GAN refreshes on its own interval, which must divide it too)
    config = REFERENCES[name].config
    if config.method == "dist_gan":
        loop = dataclasses.replace(
            config.dist_gan_config(), checkpoint_every=config.steps_per_epoch
        )
    else:
        loop = dataclasses.replace(config.train_config(), checkpoint_every=config.steps_per_epoch)
    loop.validate()
    if config.method == "nu_gan":
        assert config.steps_per_epoch % config.nu.every_steps == 0
