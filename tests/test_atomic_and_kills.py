"""Interruptions lose nothing: atomic writes, real kills (SIGKILL), Ctrl-C and damaged files.

The kill tests start real Python processes with the testing hook ``GAN_UTILS_KILL_AT``
(``gan_utils.core.atomic``): ``step:K`` kills the training loop right after generator step
K (after that step's checkpoint), ``write:NAME[:N]`` kills a writer between its temporary
file and the rename. Each test sees the process die with SIGKILL, runs the same command
again without the hook, and compares the result with an uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gan_utils.core import atomic
from gan_utils.core.atomic import (
    KILL_ENV,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    kill_point,
)
from gan_utils.core.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from gan_utils.core.paths import data_dir
from gan_utils.core.report import (
    ResultsError,
    load_results,
    notebook_results,
    read_results_file,
    show_results,
)

KILLED = -signal.SIGKILL
RUN_ID = "99_kill@unknown@2026-01-01T00:00:00Z"


# ---- helpers ---------------------------------------------------------------------------------
@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """An output root shared by this test process and the processes it starts."""
    path = (tmp_path / "root").resolve()
    monkeypatch.setenv("GAN_UTILS_ROOT", str(path))
    monkeypatch.delenv(KILL_ENV, raising=False)
    return path


def environment(root: Path, kill_at: str | None = None, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    env.update(
        OMP_NUM_THREADS="1",
        GAN_UTILS_ROOT=str(root),
        GAN_UTILS_DATA=str(data_dir()),  # the data this test process sees
        GAN_UTILS_OFFLINE="1",
        MPLBACKEND="Agg",
        PYTHONUNBUFFERED="1",
        **more,
    )
    if kill_at is not None:
        env[KILL_ENV] = kill_at
    return env


def run(args: list[str], env: dict[str, str], killed: bool = False, timeout: float = 600):
    """Run ``python <args>``; assert it was killed by the hook (or exited with 0)."""
    done = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    expected = KILLED if killed else 0
    assert done.returncode == expected, (
        f"exit {done.returncode}, expected {expected}\n{done.stdout}\n{done.stderr}"
    )
    if killed:
        assert f"{KILL_ENV}: killing process" in done.stderr
    return done


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp" in p.name)


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- the atomic writer -----------------------------------------------------------------------
def test_atomic_writes_publish_whole_files_with_a_plain_files_mode(tmp_path):
    path = atomic_write_text(tmp_path / "sub" / "a.json", '{"a": 1}\n')
    assert path.read_text() == '{"a": 1}\n'
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert path.stat().st_mode == plain.stat().st_mode  # the umask applies, not 0600
    assert temporaries(path.parent) == []


def test_a_failing_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = atomic_write_text(tmp_path / "fig.png", "old")
    with pytest.raises(RuntimeError, match="writer broke"), atomic_path(path) as temporary:
        assert temporary.parent.parent == path.parent and temporary.name == "fig.png"
        temporary.write_text("half a fig")
        raise RuntimeError("writer broke")
    assert path.read_text() == "old" and temporaries(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="nothing was written"):
        with atomic_path(path) as temporary:
            temporary.unlink()
    assert path.read_text() == "old"


def test_temporaries_of_dead_processes_are_removed_by_the_next_write(tmp_path):
    path = tmp_path / "results.json"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    stale = tmp_path / f".results.json.{int(dead.stdout)}-0badcafe.tmp"
    alive = tmp_path / f".results.json.{os.getppid()}-0badcafe.tmp"  # a running process
    other = tmp_path / f".results.json.old.{int(dead.stdout)}-0badcafe.tmp"  # another file's
    for folder in (stale, alive, other):
        folder.mkdir()
        (folder / "results.json").write_text("{")
    atomic_write_text(path, "{}")
    assert not stale.exists() and alive.exists() and other.exists()


def test_the_kill_hook_is_checked_and_named(monkeypatch):
    monkeypatch.setenv(KILL_ENV, "write:results.json:2")
    assert kill_point("write") == "results.json:2" and kill_point("step") is None
    monkeypatch.setenv(KILL_ENV, "step:K")
    with pytest.raises(ValueError, match=f"{KILL_ENV}=step:K needs an integer"):
        atomic.kill_step()
    monkeypatch.setenv(KILL_ENV, "steps:3")
    with pytest.raises(ValueError, match=f"{KILL_ENV} must be 'step:K' or 'write:NAME"):
        kill_point("step")


# ---- e. a kill between the temporary file and the rename keeps the previous file ------------
WRITERS = {
    "results.json": (
        "from gan_utils.core.report import show_results\n"
        "show_results('99_kill', {'value': VALUE}, display=False, run_id='" + RUN_ID + "')"
    ),
    "run.pt": (
        "from gan_utils.core.checkpoints import save_checkpoint\n"
        "save_checkpoint(FOLDER / 'run.pt', {'value': VALUE})"
    ),
    "manifest.json": (
        "from gan_utils.images.references import write_manifest\n"
        "write_manifest({'runs': {'tiny-dense': {'value': VALUE}}}, FOLDER)"
    ),
    "sweep_runs.csv": (
        "from gan_utils.toy.coverage import ModeCoverage\n"
        "from gan_utils.toy.runs import ToyRun, write_runs_csv\n"
        "m = ModeCoverage(8, 8, 8, 90.0, 0.01, 100, (10,) * 8, (10,) * 8)\n"
        "runs = [ToyRun('vanilla', 'ring', s, m, [], 1.0, 1.0, False) for s in range(VALUE)]\n"
        "write_runs_csv(runs, FOLDER / 'sweep_runs.csv', 'settings')"
    ),
    "plot.png": (
        "import matplotlib.pyplot as plt\n"
        "from gan_utils.core.plotting import save_figure\n"
        "fig = plt.figure(figsize=(1, 1))\n"
        "save_figure(fig, 'plot.png', run_id=f'99_kill@unknown@2026-01-0{VALUE}T00:00:00Z', "
        "folder=FOLDER)"
    ),
}


def _value_of(name: str, folder: Path) -> int:
    """The VALUE the writer put in the file (reading it fully: a partial file fails)."""
    if name == "results.json":
        return read_results_file(folder / name)["results"]["value"]
    if name == "run.pt":
        return load_checkpoint(folder / name)["value"]
    if name == "manifest.json":
        from gan_utils.images.references import read_manifest

        return read_manifest(folder)["runs"]["tiny-dense"]["value"]
    if name == "sweep_runs.csv":
        from gan_utils.toy.runs import read_runs_csv

        return len(read_runs_csv(folder / name))
    from gan_utils.core.plotting import read_run_id

    return int(read_run_id(folder / name).split("T")[0][-1])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(WRITERS))
def test_a_kill_before_the_rename_keeps_the_previous_file_whole(root, tmp_path, name):
    folder = root / "runs" / "99_kill" if name == "results.json" else tmp_path / "out"
    folder.mkdir(parents=True, exist_ok=True)

    def script(value: int) -> list[str]:
        body = WRITERS[name].replace("VALUE", str(value))
        return ["-c", f"from pathlib import Path\nFOLDER = Path({str(folder)!r})\n{body}"]

    run(script(1), environment(root))
    assert _value_of(name, folder) == 1
    run(script(2), environment(root, kill_at=f"write:{name}"), killed=True)
    assert _value_of(name, folder) == 1  # the old file, whole and readable
    assert len(temporaries(folder)) == 1  # the new one never replaced it
    run(script(3), environment(root))  # the next write publishes and sweeps the leftover
    assert _value_of(name, folder) == 3 and temporaries(folder) == []


FULL_DISK = """
import resource, signal, sys
from pathlib import Path
import torch
from gan_utils.core.atomic import atomic_write_text
from gan_utils.core.checkpoints import save_checkpoint

folder = Path(sys.argv[1])
atomic_write_text(folder / "results.json", "old")
save_checkpoint(folder / "run.pt", {"value": 1})
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
for write in (lambda: atomic_write_text(folder / "results.json", "x" * 200_000),
              lambda: save_checkpoint(folder / "run.pt", {"value": torch.zeros(100_000)})):
    try:
        write()
    except OSError as error:
        print("ERROR", error, flush=True)
"""


def test_a_write_that_runs_out_of_space_names_the_file_and_keeps_the_old_one(root, tmp_path):
    done = run(["-c", FULL_DISK, str(tmp_path)], environment(root))
    errors = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 2, done.stdout
    for error, name in zip(errors, ("results.json", "run.pt"), strict=True):
        assert f"could not write {tmp_path / name}" in error
        assert "keeps its previous content" in error and "free some disk space" in error
    assert (tmp_path / "results.json").read_text() == "old"
    assert load_checkpoint(tmp_path / "run.pt")["value"] == 1
    assert temporaries(tmp_path) == []


# ---- a. train(): killed after step 12, resumed from its step-10 checkpoint --------------------
TRAIN = """
import sys
from pathlib import Path
import torch
from gan_utils.core.mlp import mlp_critic, mlp_generator
from gan_utils.core.runtime import set_seed
from gan_utils.core.train import TrainConfig, train
from gan_utils.toy.mixtures import ring

folder, steps = Path(sys.argv[1]), int(sys.argv[2])
checkpoint = folder / "run.pt"
torch.set_num_threads(1)
set_seed(0)
generator = mlp_generator(2, 2, width=16, depth=2)
critic = mlp_critic(2, width=16, depth=2)
config = TrainConfig(latent_dim=2, batch_size=32, num_steps=steps, log_every=5,
                     checkpoint_every=5, progress=False, device="cpu")
history = train(generator, critic, ring(), config, checkpoint_path=checkpoint,
                resume_from=checkpoint if checkpoint.is_file() else None)
torch.save({"generator": generator.state_dict(), "critic": critic.state_dict(),
            "history": history.to_list()}, folder / "final.pt")
print("finished", flush=True)
"""


@pytest.mark.slow
def test_train_killed_after_a_step_resumes_to_the_uninterrupted_parameters(root, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for folder in (straight, killed):
        folder.mkdir()
    run(["-c", TRAIN, str(straight), "20"], environment(root))
    run(["-c", TRAIN, str(killed), "20"], environment(root, kill_at="step:12"), killed=True)
    assert load_checkpoint(killed / "run.pt")["step"] == 10 and not (killed / "final.pt").exists()
    run(["-c", TRAIN, str(killed), "20"], environment(root))  # the same command
    a, b = torch.load(straight / "final.pt"), torch.load(killed / "final.pt")
    assert same_tensors(a["generator"], b["generator"]) and same_tensors(a["critic"], b["critic"])
    assert a["history"] == b["history"]


# ---- 4. Ctrl-C keeps the last checkpoint and says how to resume -------------------------------
def _default_sigint() -> None:
    """In the child: SIGINT back to its default, so that Python installs its Ctrl-C handler
    even when the test suite runs as a background job (whose shell ignores SIGINT, an
    ignoring that children inherit)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_after_first_checkpoint(args: list[str], env, checkpoint: Path) -> str:
    process = subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not checkpoint.is_file():  # polled: the signal comes once a checkpoint exists
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 300 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    # an uncaught KeyboardInterrupt ends Python with SIGINT itself (as a shell expects)
    assert process.returncode == -signal.SIGINT and "KeyboardInterrupt" in err, (out, err)
    return out


def test_ctrl_c_during_train_keeps_the_checkpoint_and_prints_how_to_resume(root, tmp_path):
    checkpoint = tmp_path / "run.pt"
    out = _interrupt_after_first_checkpoint(
        ["-c", TRAIN, str(tmp_path), "10000000"], environment(root), checkpoint
    )
    (line,) = [x for x in out.splitlines() if x.startswith("Training interrupted")]
    assert str(checkpoint) in line and f"resume_from={str(checkpoint)!r}" in line
    saved = load_checkpoint(checkpoint)
    assert saved["step"] >= 5 and saved["step"] % 5 == 0


def test_ctrl_c_just_after_a_checkpoint_was_published_still_names_it(tmp_path, monkeypatch, capsys):
    from gan_utils.core import loop
    from gan_utils.core.mlp import mlp_critic, mlp_generator
    from gan_utils.core.train import TrainConfig, train
    from gan_utils.toy.mixtures import ring

    def published_then_interrupted(path, payload):  # Ctrl-C inside save, after the rename
        save_checkpoint(path, payload)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", published_then_interrupted)
    path = tmp_path / "run.pt"
    config = TrainConfig(batch_size=8, num_steps=10, log_every=2, checkpoint_every=2,
                         progress=False, device="cpu")  # fmt: skip
    networks = mlp_generator(2, 2, width=8, depth=1), mlp_critic(2, width=8, depth=1)
    with pytest.raises(KeyboardInterrupt):
        train(*networks, ring(), config, checkpoint_path=path)
    assert f"resume_from={str(path)!r}" in capsys.readouterr().out
    assert load_checkpoint(path)["step"] == 2


# ---- b. the image-GAN recipe ------------------------------------------------------------------
RECIPE = """
import sys
from pathlib import Path
import torch
from gan_utils.images.classifier import DigitClassifier
from gan_utils.images.recipe import lesson04_config, train_image_gan

folder, epochs = Path(sys.argv[1]), int(sys.argv[2])
checkpoint = folder / "recipe.pt"
torch.set_num_threads(1)
config = lesson04_config("dense", 2, 3, epochs, batch_size=8, seed=3, eval_samples=50,
                         num_images=32, device="cpu")
torch.manual_seed(1)
digits = torch.rand(32, 1, 28, 28) * 2 - 1
torch.manual_seed(123)
classifier = DigitClassifier(width=4, feature_dim=8).eval()
run = train_image_gan(config, digits, classifier, checkpoint_path=checkpoint, checkpoint_every=3,
                      resume_from=checkpoint if checkpoint.is_file() else None)
torch.save({"generator": run.generator.state_dict(), "critic": run.critic.state_dict(),
            "final": run.final, "history": run.history.to_list()}, folder / "final.pt")
print("finished", flush=True)
"""


def _without_times(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in rows]


@pytest.mark.slow
def test_the_image_recipe_killed_mid_run_resumes_to_the_same_weights_and_scores(root, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for folder in (straight, killed):
        folder.mkdir()
    run(["-c", RECIPE, str(straight), "4"], environment(root))
    run(["-c", RECIPE, str(killed), "4"], environment(root, kill_at="step:7"), killed=True)
    assert load_checkpoint(killed / "recipe.pt")["step"] == 6
    run(["-c", RECIPE, str(killed), "4"], environment(root))
    a, b = torch.load(straight / "final.pt"), torch.load(killed / "final.pt")
    assert same_tensors(a["generator"], b["generator"]) and same_tensors(a["critic"], b["critic"])
    assert _without_times([a["final"]]) == _without_times([b["final"]])
    assert _without_times(a["history"]) == _without_times(b["history"])


@pytest.mark.slow
def test_ctrl_c_during_the_image_recipe_keeps_the_checkpoint(root, tmp_path):
    checkpoint = tmp_path / "recipe.pt"
    out = _interrupt_after_first_checkpoint(
        ["-c", RECIPE, str(tmp_path), "100000"], environment(root), checkpoint
    )
    (line,) = [x for x in out.splitlines() if x.startswith("Training interrupted")]
    assert f"resume_from={str(checkpoint)!r}" in line
    assert load_checkpoint(checkpoint)["step"] % 3 == 0


# ---- c. gan-toy killed after its first run, resumed with --append ----------------------------
def _toy_command(out: Path) -> list[str]:
    return [
        "-m", "gan_utils.toy.cli", "--loss", "standard", "--dataset", "ring",
        "--seeds", "0", "1", "--steps", "40", "--batch_size", "32", "--width", "16",
        "--depth", "1", "--eval_samples", "200", "--threads", "1", "--quiet",
        "--out", str(out), "--append",
    ]  # fmt: skip


def _runs_table(path: Path) -> list[dict]:
    import csv

    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in r.items() if k not in ("seconds", "steps_per_second")} for r in rows]


@pytest.mark.slow
def test_a_toy_sweep_killed_after_its_first_run_resumes_with_append(root, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run(_toy_command(straight), environment(root))
    # writes of the runs table: 1 = empty, 2 = after seed 0, 3 = after seed 1 (killed there)
    kill = "write:toy_results_runs.csv:3"
    run(_toy_command(killed), environment(root, kill_at=kill), killed=True)
    table = killed / "toy_results_runs.csv"
    assert [r["seed"] for r in _runs_table(table)] == ["0"]  # the first run, kept whole
    again = run(_toy_command(killed), environment(root))  # the same command
    assert "--append: 1 runs already in" in again.stdout and "1 to train" in again.stdout
    assert _runs_table(table) == _runs_table(straight / "toy_results_runs.csv")
    assert len(_runs_table(table)) == 2 and temporaries(killed) == []


# ---- d. the reference-model command, killed with SIGKILL mid-run ------------------------------
@pytest.fixture
def classifier_only(tmp_path) -> Path:
    """A pretrained folder holding the shipped classifier and its manifest entry only."""
    import shutil

    from gan_utils.images.references import CLASSIFIER, pretrained_dir, read_manifest
    from gan_utils.images.references import write_manifest as write

    folder = tmp_path / "pretrained"
    folder.mkdir()
    shipped = read_manifest(pretrained_dir())
    shutil.copy(pretrained_dir() / f"{CLASSIFIER}.pt", folder)
    write({**shipped, "runs": {CLASSIFIER: shipped["runs"][CLASSIFIER]}}, folder)
    return folder


@pytest.mark.slow
def test_the_reference_command_killed_mid_run_resumes_to_the_same_bytes(
    root, tmp_path, classifier_only
):
    from gan_utils.images.mnist import load_mnist
    from gan_utils.images.pretrain import machine
    from gan_utils.images.references import TINY, pretrained_dir, read_manifest

    command = ["-m", "gan_utils.images.pretrain", TINY]
    env = environment(root, GAN_UTILS_PRETRAINED=str(classifier_only))
    run(command, {**env, KILL_ENV: "step:150"}, killed=True)
    work = root / "artifacts" / "pretrain" / TINY
    assert load_checkpoint(work / "checkpoint.pt")["step"] == 100
    assert not (classifier_only / f"{TINY}.pt").exists()
    assert TINY not in read_manifest(classifier_only)["runs"]
    resumed = run(command, env)
    assert "resuming from step 100" in resumed.stdout
    written = (classifier_only / f"{TINY}.pt").read_bytes()

    shipped = read_manifest(pretrained_dir())["runs"][TINY]
    same_place = (
        shipped["machine"] == machine()
        and shipped["torch"] == torch.__version__
        and shipped["data"]["train"] == load_mnist("train", verbose=False).fingerprint
    )
    if same_place:  # the shipped file is the uninterrupted run
        assert written == (pretrained_dir() / f"{TINY}.pt").read_bytes()
    else:  # another machine: an uninterrupted run here
        fresh_root, fresh = tmp_path / "fresh_root", tmp_path / "fresh"
        fresh.mkdir()
        for file in ("classifier.pt", "manifest.json"):
            (fresh / file).write_bytes((classifier_only / file).read_bytes())
        run(command, environment(fresh_root, GAN_UTILS_PRETRAINED=str(fresh)))
        assert written == (fresh / f"{TINY}.pt").read_bytes()


# ---- 5. damaged files: clear errors naming the file and what to do ----------------------------
def test_a_truncated_checkpoint_is_an_error_naming_it(tmp_path):
    path = save_checkpoint(tmp_path / "run.pt", {"w": torch.arange(1000)})
    data = path.read_bytes()
    for damaged in (data[: len(data) // 2], b"", b"not a checkpoint at all"):
        path.write_bytes(damaged)
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(path)
        message = str(error.value)
        assert str(path) in message and "damaged" in message and "delete it" in message
    assert isinstance(error.value, ValueError)


def test_resuming_from_a_truncated_checkpoint_is_an_error(tmp_path):
    from gan_utils.core.mlp import mlp_critic, mlp_generator
    from gan_utils.core.train import TrainConfig, train
    from gan_utils.toy.mixtures import ring

    path = tmp_path / "run.pt"
    config = TrainConfig(batch_size=8, num_steps=4, log_every=2, progress=False, device="cpu")
    networks = mlp_generator(2, 2, width=8, depth=1), mlp_critic(2, width=8, depth=1)
    train(*networks, ring(), config, checkpoint_path=path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=f"{path}.*damaged"):
        train(*networks, ring(), config, resume_from=path)


def test_a_damaged_saved_run_is_a_cache_miss_that_retrains(root, capsys):
    from gan_utils.images.classifier import DigitClassifier
    from gan_utils.images.recipe import lesson04_config, load_or_train

    config = lesson04_config(
        "dense", 2, 3, 1, batch_size=8, seed=3, eval_samples=50, num_images=32, device="cpu"
    )
    torch.manual_seed(1)
    digits = torch.rand(32, 1, 28, 28) * 2 - 1
    classifier = DigitClassifier(width=4, feature_dim=8).eval()
    first = load_or_train(config, digits, classifier)
    first.path.write_bytes(first.path.read_bytes()[:200])
    capsys.readouterr()
    again = load_or_train(config, digits, classifier)
    assert "its file is damaged" in capsys.readouterr().out and not again.reused
    assert load_or_train(config, digits, classifier).reused  # replaced by a whole one


def test_a_results_file_that_is_not_json_is_an_error_naming_it(root):
    show_results("99_kill", {"value": 1}, display=False, run_id=RUN_ID)
    path = root / "runs" / "99_kill" / "results.json"
    assert load_results()["99_kill"] == {"value": 1}
    path.write_text('{"notebook": "99_kill", "res')
    with pytest.raises(ResultsError) as error:
        load_results()
    message = str(error.value)
    assert str(path) in message and "not valid JSON" in message
    assert "notebooks/99_kill.ipynb" in message and "Delete it" in message
    path.write_text("[1, 2]")
    with pytest.raises(ResultsError, match="not a results file"):
        read_results_file(path)
    notebook = root / "broken.ipynb"
    notebook.write_text("{")
    with pytest.raises(ResultsError, match=f"{notebook} is damaged"):
        notebook_results(notebook)


def test_a_partial_mnist_folder_is_an_error_not_a_silent_fallback(tmp_path, monkeypatch):
    import gzip

    from gan_utils.images import mnist

    monkeypatch.setenv("GAN_UTILS_DATA", str(tmp_path / "data"))
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03")
    mnist._CACHE.clear()
    try:
        with pytest.raises(mnist.MNISTDataError, match="incomplete: missing") as error:
            mnist.load_mnist("train", verbose=False)
        assert str(raw.parent) in str(error.value) and "delete" in str(error.value)
        # a truncated download: unpacking fails and leaves no half-unpacked file behind
        (raw / "train-images-idx3-ubyte").unlink()
        (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(os.urandom(5000))[:2500])
        with pytest.raises(mnist.MNISTDataError, match="cannot unpack"):
            mnist.load_mnist("train", verbose=False)
        assert sorted(p.name for p in raw.iterdir()) == ["train-images-idx3-ubyte.gz"]
    finally:
        mnist._CACHE.clear()


def test_the_checkpoint_module_states_errors_and_cache_misses():
    from gan_utils.core import checkpoints

    doc = checkpoints.__doc__
    assert "error" in doc and "cache miss" in doc and "never overwritten" in doc


def test_every_writer_of_the_package_goes_through_the_atomic_module():
    """No plain write_text/write_bytes/savefig-to-a-path/torch.save in the package."""
    import re

    import gan_utils

    package = Path(gan_utils.__file__).parent
    plain = re.compile(r"\.write_text\(|\.write_bytes\(|torch\.save\(|open\([^)]*[\"']w")
    allowed = {"core/atomic.py"}  # the helper itself
    found = []
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if plain.search(line) and name not in allowed and "temporary" not in line:
                found.append(f"{name}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
