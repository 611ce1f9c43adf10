"""Two lessons at once under one output root: no torn files, and one training per artifact.

Real processes, started together (they wait for a "go" file after their imports):

* two writers rewrite the same ``results.json`` and the same checkpoint again and again
  while this process reads them: every read sees a complete, valid file (atomic writes,
  ``gan_utils.core.atomic``);
* two processes ask ``load_or_train`` for the same cached run: the first trains it under
  its ``artifact_lock``, the second says it waits, then reuses the saved run;
* two processes add reference entries to one manifest at once: every entry is kept;
* two processes ask for the lesson-03 classifier: one trains it, the other loads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from gan_utils.core.atomic import KILL_ENV
from gan_utils.core.checkpoints import load_checkpoint
from gan_utils.core.report import read_results_file

RUN_ID = "98_concurrent@unknown@2026-01-01T00:00:00Z"
VALUES = 50_000  # numbers per results.json (~400 kB: a torn write would be seen)


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    path = (tmp_path / "root").resolve()
    monkeypatch.setenv("GAN_UTILS_ROOT", str(path))
    return path


def start(code: str, root: Path, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != KILL_ENV}
    env.update(
        OMP_NUM_THREADS="1", GAN_UTILS_ROOT=str(root), GAN_UTILS_OFFLINE="1", PYTHONUNBUFFERED="1"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process: subprocess.Popen, text: str) -> str:
    """Read the process's output until a line containing ``text`` (fails if it ends first)."""
    while True:
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=60)
            raise AssertionError(f"ended without {text!r}: {process.stderr.read()}")
        if text in line:
            return line


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, f"{out}\n{err}"
    return out


def kill_leftovers(processes) -> None:
    """Kill the processes of a failed test that still run (None: never started)."""
    for process in processes:
        if process is not None and process.poll() is None:
            process.kill()


def train_while_the_second_waits(
    code: str, root: Path, go: Path, first_args, second_args, training_line: str
) -> tuple[str, str, str]:
    """Start ``code`` as a first process; once it prints ``training_line`` (it then holds
    the artifact's lock and waits for ``go``) start it again as a second, which must say
    it waits; then let both finish. Returns the waiting line and both outputs."""
    first = start(code, root, str(go), *first_args)
    second = None
    try:
        wait_for_line(first, training_line)
        second = start(code, root, str(go), *second_args)
        waiting = wait_for_line(second, "waiting for it")
        go.touch()
        return waiting, finish(first), finish(second)
    finally:
        kill_leftovers((first, second))


WRITER = f"""
import sys, time
from pathlib import Path
import torch
from gan_utils.core.checkpoints import save_checkpoint
from gan_utils.core.report import show_results

writer, rounds, checkpoint, go = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
values = [writer] * {VALUES}
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
for i in range(rounds):
    show_results("98_concurrent", {{"writer": writer, "round": i, "values": values}},
                 display=False, run_id="{RUN_ID}")
    save_checkpoint(checkpoint, {{"writer": writer, "round": i,
                                  "values": torch.full((100_000,), float(writer))}})
print("done", flush=True)
"""


@pytest.mark.slow
def test_two_writers_of_one_results_file_and_checkpoint_never_tear_them(root, tmp_path):
    results = root / "runs" / "98_concurrent" / "results.json"
    checkpoint = root / "artifacts" / "shared.pt"
    go = tmp_path / "go"
    writers = [start(WRITER, root, str(w), "60", str(checkpoint), str(go)) for w in (1, 2)]
    try:
        for writer in writers:
            wait_for_line(writer, "ready")
        go.touch()
        reads, seen = 0, set()
        while any(w.poll() is None for w in writers):
            if results.is_file():  # once published, a file is always whole
                payload = read_results_file(results)["results"]
                assert payload["values"] == [payload["writer"]] * VALUES
                seen.add(("results", payload["writer"]))
                reads += 1
            if checkpoint.is_file():
                saved = load_checkpoint(checkpoint)
                assert torch.equal(saved["values"], torch.full((100_000,), float(saved["writer"])))
                seen.add(("checkpoint", saved["writer"]))
                reads += 1
        for writer in writers:
            assert "done" in finish(writer)
    finally:
        kill_leftovers(writers)
    assert reads >= 20, f"only {reads} reads while the writers ran"
    assert {w for kind, w in seen if kind == "results"} == {1, 2}  # both writers were read
    assert [p.name for p in results.parent.iterdir()] == ["results.json"]  # no leftovers


TRAINER = """
import sys, time
from pathlib import Path
import torch
from gan_utils.core.loop import every
from gan_utils.images.classifier import DigitClassifier
from gan_utils.images.recipe import lesson04_config, load_or_train

go, out = Path(sys.argv[1]), Path(sys.argv[2])
torch.set_num_threads(1)

def hold_until_go(state):  # observes only: training is the same without it
    while not go.exists():
        time.sleep(0.02)

config = lesson04_config("dense", 2, 3, 2, batch_size=8, seed=3, eval_samples=50,
                         num_images=32, device="cpu")
torch.manual_seed(1)
digits = torch.rand(32, 1, 28, 28) * 2 - 1
torch.manual_seed(123)
classifier = DigitClassifier(width=4, feature_dim=8).eval()
run = load_or_train(config, digits, classifier, callbacks=[every(1, hold_until_go)])
torch.save(run.generator.state_dict(), out)
print("RESULT", "reused" if run.reused else "trained", flush=True)
"""


@pytest.mark.slow
def test_two_lessons_asking_for_the_same_run_train_it_once(root, tmp_path):
    # the first holds the artifact's lock from its cache miss until it has saved the run
    waiting, first, out = train_while_the_second_waits(
        TRAINER, root, tmp_path / "go", [str(tmp_path / "first.pt")],
        [str(tmp_path / "second.pt")], "not reused (no saved run); training it here",
    )  # fmt: skip
    assert "04_vanilla_gan" in waiting and ".lock" in waiting
    assert "RESULT trained" in first
    assert "RESULT reused" in out and "training it here" not in out
    a, b = torch.load(tmp_path / "first.pt"), torch.load(tmp_path / "second.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    saved = root / "artifacts" / "models" / "04_vanilla_gan"
    assert sorted(p.name for p in saved.iterdir()) == [
        "dense-non_saturating-z2-seed3.pt",
        "dense-non_saturating-z2-seed3.pt.lock",
    ]


def test_the_second_process_waits_only_while_the_lock_is_held(tmp_path):
    from gan_utils.core.atomic import artifact_lock

    messages = []
    path = tmp_path / "artifact.pt"
    with artifact_lock(path, messages.append):
        pass
    with artifact_lock(path, messages.append):  # released: taken again at once
        pass
    go = tmp_path / "go"
    holder = start(
        "import sys, time\nfrom gan_utils.core.atomic import artifact_lock\n"
        "with artifact_lock(sys.argv[1]):\n    print('held', flush=True)\n"
        "    while not __import__('os').path.exists(sys.argv[2]):\n        time.sleep(0.02)",
        tmp_path,
        str(path),
        str(go),
    )
    try:
        wait_for_line(holder, "held")
        threading.Timer(0.5, go.touch).start()  # the holder lets go while this one waits
        with artifact_lock(path, messages.append):
            assert go.exists()  # taken only after the holder released it
        finish(holder)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert len(messages) == 1 and str(path) in messages[0] and "waiting" in messages[0]


RECORDER = """
import sys, time
from pathlib import Path
from gan_utils.images.references import update_manifest

writer, entries, folder, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.01)
for i in range(entries):
    update_manifest(lambda m: m["runs"].__setitem__(f"{writer}-{i}", {"round": i}), folder)
print("done", flush=True)
"""


@pytest.mark.slow
def test_two_processes_recording_references_at_once_keep_every_entry(tmp_path):
    from gan_utils.images.references import read_manifest

    folder, go = tmp_path / "pretrained", tmp_path / "go"
    recorders = [start(RECORDER, tmp_path, w, "40", str(folder), str(go)) for w in "ab"]
    try:
        for recorder in recorders:
            wait_for_line(recorder, "ready")
        go.touch()
        for recorder in recorders:
            assert "done" in finish(recorder)
    finally:
        kill_leftovers(recorders)
    runs = read_manifest(folder)["runs"]
    assert sorted(runs) == sorted(f"{w}-{i}" for w in "ab" for i in range(40))


CLASSIFIER = """
import sys, time
from pathlib import Path
import torch
import gan_utils.images.classifier as classifier_module
from gan_utils.images.classifier import ClassifierConfig, load_or_train_classifier
from gan_utils.images.mnist import load_mnist

go, path, role = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
torch.set_num_threads(1)
train_now = classifier_module.train_classifier

def train_after_go(*args, **kwargs):  # observes only: the training is the same
    if role == "second":  # it must wait and load: training here is the failure
        sys.exit("the second process trained the classifier too")
    while not go.exists():
        time.sleep(0.02)
    return train_now(*args, **kwargs)

classifier_module.train_classifier = train_after_go
train = load_mnist("train", verbose=False).subset(range(200))
test = load_mnist("test", verbose=False).subset(range(100))
config = ClassifierConfig(num_steps=4, batch_size=16, width=4, feature_dim=8, eval_every=2)
model = load_or_train_classifier(config, train, test, path=path, device="cpu")
print("RESULT", "trained" if model.record.trained_now else "loaded", flush=True)
"""


@pytest.mark.slow
def test_two_processes_asking_for_the_classifier_train_it_once(root, tmp_path):
    path = str(tmp_path / "classifier.pt")
    waiting, first, out = train_while_the_second_waits(
        CLASSIFIER, root, tmp_path / "go", [path, "first"], [path, "second"],
        "Training the digit classifier",  # holds the lock until saved
    )  # fmt: skip
    assert "classifier.pt" in waiting
    assert "RESULT trained" in first
    assert "RESULT loaded" in out and "Training the digit classifier" not in out
