"""Papermill lesson sweeps (gan_utils.core.lesson_sweep): grids, checks, tables, real runs."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import nbformat
import pytest
from test_lesson01_notebook import SMALL as TINY  # the lesson-01 test's tiny settings

from gan_utils.core import lesson_sweep as ls
from gan_utils.core.executor import JobFailure
from gan_utils.core.paths import PROJECT_ROOT, runs_dir
from gan_utils.core.report import notebook_results

LESSON01 = PROJECT_ROOT / "notebooks" / "01_gan_basics.ipynb"
# lesson-01 results that measure the machine's speed, not the computation
TIMING = {"result_wall_time_s", "train_steps_per_s"}


def _fail_if_called(*args, **kwargs):
    pytest.fail("a run started although the sweep should have been refused")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _no_runs(monkeypatch) -> None:
    monkeypatch.setattr(ls.sweep, "run_lesson", _fail_if_called)
    monkeypatch.setattr(ls.sweep, "run_jobs", _fail_if_called)


# ---- values and grids ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, value",
    [
        ("1", 1),
        ("-3", -3),
        ("0.5", 0.5),
        ("1e-3", 0.001),
        ("3e-4", 0.0003),
        ("true", True),
        ("False", False),
        ("null", None),
        ("cpu", "cpu"),
        ("cuda:0", "cuda:0"),
        ('"1"', "1"),
        ("[a, b]", ["a", "b"]),
        ("[1, 2.5, 1e-3]", [1, 2.5, 0.001]),
        ("[unclosed", "[unclosed"),
    ],
)
def test_values_are_read_as_yaml_scalars(text, value):
    parsed = ls.parse_value(text)
    assert parsed == value
    assert type(parsed) is type(value)


def test_parse_values_keeps_the_order():
    assert ls.parse_values(["2", "1e-3", "x"]) == [2, 0.001, "x"]


def test_the_grid_is_the_product_of_the_axes_last_axis_fastest():
    grid = ls.expand_grid({"seed": [0, 1], "num_steps": [50, 100, 200]})
    assert len(grid) == 6
    assert [(run["seed"], run["num_steps"]) for run in grid] == [
        (0, 50), (0, 100), (0, 200), (1, 50), (1, 100), (1, 200),
    ]  # fmt: skip
    assert all(list(run) == ["seed", "num_steps"] for run in grid)


def test_explicit_runs_are_combined_with_every_axis():
    grid = ls.expand_grid({"seed": [0, 1]}, [{"lr": 0.1}, {"lr": 0.2, "width": 8}])
    assert grid == [
        {"lr": 0.1, "seed": 0},
        {"lr": 0.1, "seed": 1},
        {"lr": 0.2, "width": 8, "seed": 0},
        {"lr": 0.2, "width": 8, "seed": 1},
    ]
    assert ls.expand_grid({}, [{"a": 1}, {}]) == [{"a": 1}, {}]


@pytest.mark.parametrize(
    "axes, runs, message",
    [
        ({}, None, "the grid is empty"),
        ({}, [], "the grid is empty"),
        ({"seed": []}, None, "'seed' has no values"),
        ({"seed": [1]}, [{"seed": 2}], "both by run 0 and as an axis"),
        ({"not a name": [1]}, None, "'not a name'"),
    ],
)
def test_bad_grids_are_errors_that_say_why(axes, runs, message):
    with pytest.raises(ValueError, match=message):
        ls.expand_grid(axes, runs)


def test_a_yaml_mapping_grid_gives_axes_and_list_values_stay_one_setting(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("lr: [1e-3, 0.5]\nsizes: [[1, 2], [3]]\ndevice: cpu\n")
    axes, runs = ls.read_grid(path)
    assert runs is None
    assert axes == {"lr": [0.001, 0.5], "sizes": [[1, 2], [3]], "device": ["cpu"]}
    assert type(axes["lr"][0]) is float
    grid = ls.expand_grid(axes, runs)
    assert len(grid) == 4
    assert grid[1] == {"lr": 0.001, "sizes": [3], "device": "cpu"}


def test_a_yaml_list_grid_gives_one_run_per_item(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("- {seed: 0, lr: 1e-3}\n- {seed: 1, device: cpu}\n")
    axes, runs = ls.read_grid(path)
    assert axes == {}
    assert runs == [{"seed": 0, "lr": 0.001}, {"seed": 1, "device": "cpu"}]
    assert ls.expand_grid({"width": [8, 16]}, runs)[3] == {"seed": 1, "device": "cpu", "width": 16}


@pytest.mark.parametrize(
    "text, message",
    [
        ("42\n", "a grid must be a mapping"),
        ("- {seed: 0}\n- 3\n", "item 1: 3"),
        ("seed: [0\n", "not valid YAML"),
        ("- {1: 2}\n", "identifier, got 1"),
    ],
)
def test_a_bad_yaml_grid_is_an_error(tmp_path, text, message):
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        ls.read_grid(path)


def test_a_missing_grid_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ls.read_grid(tmp_path / "nothing.yaml")


def test_file_names_come_from_the_parameters_and_are_safe_and_distinct():
    assert ls.run_file_stem({"seed": 0, "num_steps": 50}) == "seed=0,num_steps=50"
    assert ls.run_file_stem({"device": "cuda:0", "sizes": [1, 2]}) == "device=cuda_0,sizes=[1,2]"
    assert ls.run_file_stem({"label": "a/b c"}) == "label=a_b_c"
    assert ls.run_file_stem({}) == "defaults"
    long = ls.run_file_stem({"label": "x" * 500})
    assert len(long) <= ls.MAX_STEM and long != ls.run_file_stem({"label": "x" * 499})
    names = ls.files._file_names([{"a": "x/y"}, {"a": "x_y"}, {"a": 1}])
    assert names == ["a=x_y-0.ipynb", "a=x_y-1.ipynb", "a=1.ipynb"]


# ---- checks before anything runs -------------------------------------------------------------
def test_an_unknown_parameter_is_reported_before_anything_runs(monkeypatch, tmp_path):
    _no_runs(monkeypatch)
    grid = [{"seed": 0, "sedd": 1, "num_stpes": 5}]
    with pytest.raises(ValueError) as caught:
        ls.sweep_lesson(LESSON01, grid, out=tmp_path)
    message = str(caught.value)
    assert "sedd, num_stpes" in message
    assert "seed, device, num_threads, num_steps" in message  # the lesson's parameters
    assert not any(tmp_path.iterdir())


def test_the_command_turns_an_unknown_parameter_into_a_usage_error(monkeypatch, tmp_path, capsys):
    _no_runs(monkeypatch)
    with pytest.raises(SystemExit) as caught:
        ls.main([str(LESSON01), "-p", "seed", "0", "-p", "lrr", "0.1", "--out", str(tmp_path)])
    assert caught.value.code == 2
    assert "unknown parameter(s) lrr" in capsys.readouterr().err


def test_a_missing_notebook_is_an_error(monkeypatch, tmp_path, capsys):
    _no_runs(monkeypatch)
    with pytest.raises(ValueError, match="does not exist"):
        ls.sweep_lesson(tmp_path / "99_nothing.ipynb", [{"seed": 0}], out=tmp_path)
    with pytest.raises(ValueError, match="must be a .ipynb file"):
        ls.check_parameters(tmp_path / "notes.txt", ["seed"])
    with pytest.raises(SystemExit) as caught:
        ls.main([str(tmp_path / "99_nothing.ipynb"), "-p", "seed", "0"])
    assert caught.value.code == 2
    assert "99_nothing.ipynb' does not exist" in capsys.readouterr().err


def test_an_empty_grid_is_an_error(monkeypatch, tmp_path, capsys):
    _no_runs(monkeypatch)
    with pytest.raises(ValueError, match="non-empty list"):
        ls.sweep_lesson(LESSON01, [], out=tmp_path)
    with pytest.raises(SystemExit) as caught:
        ls.main([str(LESSON01), "--out", str(tmp_path)])
    assert caught.value.code == 2
    assert "the grid is empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ls.main([str(LESSON01), "-p", "seed"])
    assert "-p seed needs at least one value" in capsys.readouterr().err


def test_values_papermill_cannot_write_and_bad_counts_are_refused(monkeypatch, tmp_path):
    _no_runs(monkeypatch)
    with pytest.raises(TypeError, match="parameter 'seed' must be None, a bool"):
        ls.sweep_lesson(LESSON01, [{"seed": object()}], out=tmp_path)
    with pytest.raises(TypeError, match="workers must be an integer >= 1"):
        ls.sweep_lesson(LESSON01, [{"seed": 0}], workers=1.5, out=tmp_path)
    with pytest.raises(ValueError, match="name must be a plain file name"):
        ls.sweep_lesson(LESSON01, [{"seed": 0}], out=tmp_path, name="../elsewhere")


# ---- tables and files (runs replaced by a stand-in) ------------------------------------------
def _fake_run(notebook_text, notebook_name, notebook_dir, parameters, threads=1):
    """What ``run_lesson`` returns, without a kernel: seed 1 fails in cell 4."""
    return _fake_result(parameters, failed=parameters["seed"] == 1)


def _fake_result(parameters, failed):
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["papermill"] = {"input_path": "/tmp/x.ipynb", "parameters": parameters}
    return {
        "parameters": dict(parameters),
        "status": "failed" if failed else "ok",
        "cell": 4 if failed else None,
        "error": "ValueError: bad seed" if failed else None,
        "wall_time_s": 1.5,
        "notebook_json": nbformat.writes(notebook),
        "results": None
        if failed
        else {"w1": 0.25 * (parameters["seed"] + 1), "seed": parameters["seed"], "curve": [1, 2]},
        "run_id": "r",
    }


def test_a_sweep_writes_rows_in_grid_order_notebooks_and_tables(monkeypatch, tmp_path):
    monkeypatch.setattr(ls.sweep, "run_lesson", _fake_run)
    seen = []
    grid = ls.expand_grid({"seed": [0, 1, 2], "device": ["cpu"]})
    rows = ls.sweep_lesson(LESSON01, grid, out=tmp_path, name="fake", on_row=seen.append)
    assert [row["seed"] for row in rows] == [0, 1, 2]
    assert list(rows[0]) == [
        "seed", "device", "status", "wall_time_s", "notebook", "cell", "error", "w1",
        "result_seed",
    ]  # fmt: skip
    assert [row["status"] for row in rows] == ["ok", "failed", "ok"]
    assert rows[1]["cell"] == 4 and rows[1]["error"] == "ValueError: bad seed"
    assert rows[1]["w1"] is None and rows[2]["w1"] == 0.75 and rows[2]["result_seed"] == 2
    assert seen == rows
    assert rows[0]["notebook"] == "fake/seed=0,device=cpu.ipynb"
    assert sorted(p.name for p in (tmp_path / "fake").iterdir()) == [
        "seed=0,device=cpu.ipynb", "seed=1,device=cpu.ipynb", "seed=2,device=cpu.ipynb",
    ]  # fmt: skip
    meta = json.loads((tmp_path / rows[0]["notebook"]).read_text())["metadata"]["papermill"]
    assert meta["input_path"] == str(LESSON01)
    assert meta["output_path"] == str(tmp_path / rows[0]["notebook"])
    table = _read_csv(tmp_path / "fake.csv")
    assert [list(r.values()) for r in table] == [
        ["0", "cpu", "ok", "1.5", "fake/seed=0,device=cpu.ipynb", "", "", "0.25", "0"],
        ["1", "cpu", "failed", "1.5", "fake/seed=1,device=cpu.ipynb", "4",
         "ValueError: bad seed", "", ""],
        ["2", "cpu", "ok", "1.5", "fake/seed=2,device=cpu.ipynb", "", "", "0.75", "2"],
    ]  # fmt: skip
    md = (tmp_path / "fake.md").read_text()
    assert md.startswith("# Sweep of 01_gan_basics.ipynb\n\nCommand: `sweep_lesson(")
    assert "Total wall time:" in md and "(3 runs, 1 failed)" in md
    assert "left out of this table" in md and "`curve`" in md
    assert md.count("\n| ") == 5  # header, separator and three rows
    assert not [p for p in tmp_path.rglob("*.tmp")]  # atomic writes left nothing behind


def test_a_run_whose_worker_died_is_a_failed_row_without_a_notebook():
    failure = JobFailure(0, (), "its worker process died 2 times", "exit -9", 2, True)
    outcome = ls.job._outcome(failure, {"seed": 5})
    rows, left_out = ls.table_rows([outcome], [None])
    assert rows == [
        {"seed": 5, "status": "failed", "wall_time_s": None, "notebook": None, "cell": None,
         "error": "its worker process died 2 times"},
    ]  # fmt: skip
    assert left_out == []


def test_the_command_prints_each_failure_and_exits_1(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(ls.sweep, "run_lesson", _fake_run)
    code = ls.main([str(LESSON01), "-p", "seed", "0", "1", "--out", str(tmp_path), "--name", "f"])
    assert code == 1
    printed = capsys.readouterr().out
    assert "cell 4: ValueError: bad seed" in printed
    assert "FAILED f/seed=1.ipynb: cell 4: ValueError: bad seed" in printed
    md = (tmp_path / "f.md").read_text()
    assert "Command: `python -m gan_utils.core.lesson_sweep " in md and "-p seed 0 1" in md


# ---- resuming a sweep (--append; runs replaced by a stand-in) --------------------------------
def _stand_in(monkeypatch, failing=()):
    """Replace ``run_lesson`` by the stand-in, the seeds ``failing`` failing; returns the
    list of the parameters of every call, filled in as the calls come."""
    calls = []

    def run(notebook_text, notebook_name, notebook_dir, parameters, threads=1):
        calls.append(dict(parameters))
        return _fake_result(parameters, failed=parameters.get("seed") in failing)

    monkeypatch.setattr(ls.sweep, "run_lesson", run)
    return calls


def _commands(out: Path, name: str) -> list[dict]:
    return json.loads((out / f"{name}_commands.json").read_text())["commands"]


def test_append_runs_only_the_failed_run_again(monkeypatch, tmp_path):
    grid = ls.expand_grid({"seed": [0, 1, 2], "device": ["cpu"]})
    calls = _stand_in(monkeypatch, failing=(1,))
    first = ls.sweep_lesson(LESSON01, grid, out=tmp_path, name="s", command="first")
    assert [row["status"] for row in first] == ["ok", "failed", "ok"] and len(calls) == 3
    before = _read_csv(tmp_path / "s.csv")
    assert [c["command"] for c in _commands(tmp_path, "s")] == ["first"]

    calls = _stand_in(monkeypatch)  # now every seed succeeds
    plans, seen = [], []
    rows = ls.sweep_lesson(
        LESSON01,
        grid,
        out=tmp_path,
        name="s",
        append=True,
        on_start=lambda *plan: plans.append(plan),
        on_row=seen.append,
        command="second",
    )
    assert calls == [{"seed": 1, "device": "cpu"}]  # only the failed run ran again
    assert plans == [(2, 1, 0)]  # 2 already in the table, 1 to run, no other rows
    assert [(row["seed"], row["status"]) for row in rows] == [(0, "ok"), (1, "ok"), (2, "ok")]
    assert rows[0] == first[0] and rows[2] == first[2]  # read back from the CSV unchanged
    assert seen == [rows[1]] and rows[1]["w1"] == 0.5 and rows[1]["error"] is None
    table = _read_csv(tmp_path / "s.csv")
    assert list(table[0]) == list(before[0])  # no column lost
    assert table[0] == before[0] and table[2] == before[2]  # old ok rows kept as they were
    assert table[1]["status"] == "ok" and table[1]["error"] == "" and table[1]["w1"] == "0.5"
    commands = _commands(tmp_path, "s")
    assert [(c["command"], c["runs"]) for c in commands] == [("first", 3), ("second", 1)]
    md = (tmp_path / "s.md").read_text()
    assert "Commands, in order" in md and "* `first` (" in md and "* `second` (" in md
    total = sum(c["wall_time_s"] for c in commands)
    assert f"Total wall time: {total:.1f} s (3 runs, 0 failed)." in md
    assert md.count("\n| ") == 5 and md.index("| 0 |") < md.index("| 1 |") < md.index("| 2 |")
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_append_with_a_bigger_grid_runs_only_the_new_runs(monkeypatch, tmp_path, capsys):
    _stand_in(monkeypatch)
    first = ls.sweep_lesson(LESSON01, [{"seed": 0}, {"seed": 2}], out=tmp_path, name="s")
    before = _read_csv(tmp_path / "s.csv")
    capsys.readouterr()
    calls = _stand_in(monkeypatch)
    argv = [str(LESSON01), "-p", "seed", "0", "1", "2", "3", "--out", str(tmp_path)]
    assert ls.main([*argv, "--name", "s", "--append"]) == 0
    assert calls == [{"seed": 1}, {"seed": 3}]
    printed = capsys.readouterr().out
    assert f"4 runs of {LESSON01}: {tmp_path / 's.csv'} already holds 2 of them" in printed
    assert "; 2 will run\n" in printed and "[2/2] ok" in printed and "[3/" not in printed
    table = _read_csv(tmp_path / "s.csv")
    assert [r["seed"] for r in table] == ["0", "1", "2", "3"]
    assert table[0] == before[0] and table[2] == before[1]
    assert [r["notebook"] for r in table] == [f"s/seed={seed}.ipynb" for seed in range(4)]
    assert [c["runs"] for c in _commands(tmp_path, "s")] == [2, 2]
    assert "--append" in _commands(tmp_path, "s")[1]["command"]
    # the whole grid is in the table now: appending again runs nothing and keeps it all
    calls = _stand_in(monkeypatch)
    rows = ls.sweep_lesson(LESSON01, [{"seed": s} for s in range(4)], out=tmp_path, name="s",
                           append=True)  # fmt: skip
    assert calls == [] and rows[0] == first[0] and rows[2] == first[1]
    assert _read_csv(tmp_path / "s.csv") == table and len(_commands(tmp_path, "s")) == 2


def test_append_runs_an_ok_run_again_when_its_notebook_is_gone(monkeypatch, tmp_path):
    _stand_in(monkeypatch)
    grid = [{"seed": 0}, {"seed": 2}]
    ls.sweep_lesson(LESSON01, grid, out=tmp_path, name="s")
    (tmp_path / "s" / "seed=2.ipynb").unlink()
    calls, plans = _stand_in(monkeypatch), []
    rows = ls.sweep_lesson(LESSON01, grid, out=tmp_path, name="s", append=True,
                           on_start=lambda *plan: plans.append(plan))  # fmt: skip
    assert calls == [{"seed": 2}] and plans == [(1, 1, 0)]
    assert [row["status"] for row in rows] == ["ok", "ok"]
    assert (tmp_path / "s" / "seed=2.ipynb").is_file()


def test_an_existing_table_is_an_error_before_any_run_without_append(monkeypatch, tmp_path, capsys):
    _stand_in(monkeypatch, failing=(1,))
    ls.sweep_lesson(LESSON01, [{"seed": 0}, {"seed": 1}], out=tmp_path, name="s")
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    _no_runs(monkeypatch)
    with pytest.raises(ValueError) as caught:
        ls.sweep_lesson(LESSON01, [{"seed": 1}], out=tmp_path, name="s")
    message = str(caught.value)
    assert str(tmp_path / "s.csv") in message and "already exists" in message
    assert "--append" in message and "another --name" in message
    with pytest.raises(SystemExit) as caught:
        ls.main([str(LESSON01), "-p", "seed", "1", "--out", str(tmp_path), "--name", "s"])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert f"the sweep table {tmp_path / 's.csv'} already exists: pass --append" in error
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files


def test_append_keeps_the_rows_of_runs_outside_the_new_grid(monkeypatch, tmp_path):
    _stand_in(monkeypatch, failing=(1,))
    grid = ls.expand_grid({"seed": [0, 1, 2], "device": ["cpu"]})
    first = ls.sweep_lesson(LESSON01, grid, out=tmp_path, name="s")
    before = _read_csv(tmp_path / "s.csv")
    calls, plans = _stand_in(monkeypatch), []
    new_grid = ls.expand_grid({"seed": [2, 5], "device": ["cpu"]})
    rows = ls.sweep_lesson(LESSON01, new_grid, out=tmp_path, name="s", append=True,
                           on_start=lambda *plan: plans.append(plan))  # fmt: skip
    assert calls == [{"seed": 5, "device": "cpu"}] and plans == [(1, 1, 2)]
    # the grid's rows in its order, then the old rows it does not hold, as they were
    assert [(row["seed"], row["status"]) for row in rows] == [
        (2, "ok"), (5, "ok"), (0, "ok"), (1, "failed"),
    ]  # fmt: skip
    assert rows[2] == first[0] and rows[3] == first[1] and rows[0] == first[2]
    table = _read_csv(tmp_path / "s.csv")
    assert table[2:] == before[:2] and table[0] == before[2]
    assert (tmp_path / "s" / "seed=1,device=cpu.ipynb").is_file()
    md = (tmp_path / "s.md").read_text()
    assert "then 2 rows of earlier runs outside this grid" in md and "(4 runs, 1 failed)" in md


def test_append_matches_parameters_as_written_in_the_table(monkeypatch, tmp_path):
    _stand_in(monkeypatch)
    ls.sweep_lesson(LESSON01, [{"seed": 0, "lr": 0.001, "device": "a/b"}], out=tmp_path,
                    name="s")  # fmt: skip
    calls = _stand_in(monkeypatch)
    grid = [
        {"seed": 0, "lr": ls.parse_value("1e-3"), "device": "a/b"},  # the same text: 0.001
        {"seed": 0, "device": "a/b"},  # the lesson's default lr: another run
        {"seed": 0, "lr": 0.001, "device": "a_b"},  # another run, the same file name
    ]
    rows = ls.sweep_lesson(LESSON01, grid, out=tmp_path, name="s", append=True)
    assert calls == grid[1:]
    assert [row["lr"] for row in rows] == [0.001, None, 0.001]
    # the kept row's notebook is not overwritten by the run whose file name it has
    assert [row["notebook"] for row in rows] == [
        "s/seed=0,lr=0.001,device=a_b.ipynb", "s/seed=0,device=a_b.ipynb",
        "s/seed=0,lr=0.001,device=a_b-2.ipynb",
    ]  # fmt: skip
    kept = json.loads((tmp_path / rows[0]["notebook"]).read_text())
    assert kept["metadata"]["papermill"]["parameters"]["device"] == "a/b"


# ---- real runs: a small synthetic notebook ---------------------------------------------------
SYNTHETIC_SOURCE = """\
import os
from pathlib import Path

from IPython.display import display

root = Path(os.environ["GAN_UTILS_ROOT"])
fresh_root = not (root / "marker.txt").exists()
(root / "marker.txt").write_text("used")
if x < 0:
    raise ValueError(f"x must be >= 0, got {x}")
display(
    {"application/json": {"notebook": "synthetic", "run_id": "r", "results": {
        "double": 2 * x, "label": label, "sizes": sizes, "fresh_root": fresh_root,
        "root": str(root), "omp": os.environ.get("OMP_NUM_THREADS"), "x": x,
    }}},
    raw=True,
)
"""


def _synthetic_notebook(folder: Path) -> Path:
    notebook = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('x = 1\nlabel = "a"\nsizes = [1]')
    parameters.metadata["tags"] = ["parameters"]
    notebook.cells = [parameters, nbformat.v4.new_code_cell(SYNTHETIC_SOURCE)]
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    path = folder / "synthetic.ipynb"
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("workers", [1, 2])
def test_each_run_has_its_own_root_and_threads_and_a_failure_is_one_row(tmp_path, workers):
    notebook = _synthetic_notebook(tmp_path)
    before = os.environ.get("GAN_UTILS_ROOT"), os.environ.get("OMP_NUM_THREADS")
    grid = ls.expand_grid({"x": [2, -1, 3], "sizes": [[4, 5]]})
    rows = ls.sweep_lesson(notebook, grid, workers=workers, threads=2, out=tmp_path / "out")
    assert (os.environ.get("GAN_UTILS_ROOT"), os.environ.get("OMP_NUM_THREADS")) == before
    assert [row["status"] for row in rows] == ["ok", "failed", "ok"]
    assert [row["double"] for row in rows] == [4, None, 6]
    assert [row["result_x"] for row in rows] == [2, None, 3]
    assert rows[0]["label"] == "a" and "result_sizes" not in rows[0] and "sizes" in rows[0]
    assert all(row["fresh_root"] for row in (rows[0], rows[2]))  # nobody used the root before
    assert rows[0]["root"] != rows[2]["root"]
    assert not Path(rows[0]["root"]).exists()  # temporary, gone with the run
    assert rows[0]["omp"] == "2"
    # the index in the notebook as written: papermill's error banner at the top, the
    # parameters cell, the injected parameters, a banner, then the failed cell
    assert rows[1]["cell"] == 4
    assert rows[1]["error"] == "ValueError: x must be >= 0, got -1"
    failed = json.loads((tmp_path / "out" / rows[1]["notebook"]).read_text())
    outputs = failed["cells"][rows[1]["cell"]]["outputs"]
    assert any(out.get("ename") == "ValueError" for out in outputs)
    assert rows[1]["notebook"] == "synthetic_sweep/x=-1,sizes=[4,5].ipynb"


# ---- real runs of lesson 01 ------------------------------------------------------------------
TINY_FIXED = {name: [value] for name, value in TINY.items() if name not in ("seed", "num_steps")}


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    """A 2 x 2 sweep of lesson 01 at tiny settings, one run after the other (~1 minute)."""
    out = tmp_path_factory.mktemp("sweeps")
    results_json = runs_dir("01_gan_basics") / "results.json"
    results_json.unlink(missing_ok=True)
    grid = ls.expand_grid({"seed": [0, 1], "num_steps": [60, 100], **TINY_FIXED})
    rows = ls.sweep_lesson(LESSON01, grid, out=out, name="tiny")
    return out, rows, results_json.exists()


@pytest.mark.slow
@pytest.mark.notebook
def test_a_2x2_sweep_of_lesson01_gives_four_rows_and_four_notebooks(serial_sweep):
    out, rows, wrote_shared_results = serial_sweep
    assert [(row["seed"], row["num_steps"]) for row in rows] == [
        (0, 60),
        (0, 100),
        (1, 60),
        (1, 100),
    ]
    assert [row["status"] for row in rows] == ["ok"] * 4, [row["error"] for row in rows]
    assert list(rows[0])[:2] == ["seed", "num_steps"]
    # the lesson ran at the parameters of its row
    assert [row["result_num_steps"] for row in rows] == [60, 100, 60, 100]
    assert all(row["hack_steps"] == row["result_hack_steps"] == 40 for row in rows)
    # and its results depend on them: another seed, another generator at the end
    assert rows[0]["w1_end"] != rows[2]["w1_end"] and rows[1]["w1_end"] != rows[3]["w1_end"]
    assert rows[0]["w1_end"] != rows[1]["w1_end"]
    assert "diagnoses" not in rows[0]  # a list: in the notebooks, not in the table
    # the runs wrote under their own roots, not the caller's
    assert not wrote_shared_results
    notebooks = sorted((out / "tiny").glob("*.ipynb"))
    assert len(notebooks) == 4
    for row in rows:
        path = out / row["notebook"]
        assert path in notebooks
        executed = json.loads(path.read_text())
        assert executed["metadata"]["papermill"]["parameters"]["seed"] == row["seed"]
        assert notebook_results(path)["results"]["w1_end"] == row["w1_end"]
    table = _read_csv(out / "tiny.csv")
    assert [(r["seed"], r["num_steps"], r["status"]) for r in table] == [
        ("0", "60", "ok"), ("0", "100", "ok"), ("1", "60", "ok"), ("1", "100", "ok"),
    ]  # fmt: skip
    assert float(table[3]["w1_end"]) == rows[3]["w1_end"]
    md = (out / "tiny.md").read_text()
    assert "(4 runs, 0 failed)" in md and "`diagnoses`" in md


@pytest.mark.slow
@pytest.mark.notebook
def test_a_lesson01_run_that_raises_is_a_failed_row_and_the_command_exits_1(tmp_path, capsys):
    argv = [str(LESSON01), "-p", "device", "cpu", "bogus", "--out", str(tmp_path), "--name", "dev"]
    for name, value in TINY.items():
        argv += ["-p", name, str(value)]
    assert ls.main(argv) == 1
    table = _read_csv(tmp_path / "dev.csv")
    assert [(r["device"], r["status"]) for r in table] == [("cpu", "ok"), ("bogus", "failed")]
    failed = table[1]
    assert failed["error"].startswith("ValueError: device must be one of")
    assert "'bogus'" in failed["error"]
    executed = json.loads((tmp_path / failed["notebook"]).read_text())
    cell = executed["cells"][int(failed["cell"])]
    assert "get_device(device)" in "".join(cell["source"])
    assert any(out.get("ename") == "ValueError" for out in cell["outputs"])
    assert table[0]["w1_end"] and not failed["w1_end"]
    printed = capsys.readouterr().out
    assert f"cell {failed['cell']}: ValueError: device must be one of" in printed


@pytest.mark.slow
@pytest.mark.cluster
def test_a_sweep_on_a_dask_cluster_gives_the_results_of_one_worker(local_cluster, serial_sweep):
    out, serial_rows, _ = serial_sweep
    grid = ls.expand_grid({"seed": [0, 1], "num_steps": [60], **TINY_FIXED})
    rows = ls.sweep_lesson(
        LESSON01, grid, cluster=local_cluster.scheduler_address, out=out, name="on_dask"
    )
    assert [row["status"] for row in rows] == ["ok", "ok"], [row["error"] for row in rows]
    skip = TIMING | {"wall_time_s", "notebook"}
    for row, serial in zip(rows, (serial_rows[0], serial_rows[2]), strict=True):
        assert row.keys() == serial.keys()
        assert {k: v for k, v in row.items() if k not in skip} == {
            k: v for k, v in serial.items() if k not in skip
        }
    assert len(list((out / "on_dask").glob("*.ipynb"))) == 2


@pytest.mark.slow
@pytest.mark.notebook
def test_a_sweep_killed_between_two_runs_resumes_with_append_to_the_uninterrupted_table(
    tmp_path,
):
    """kill -9 (the GAN_UTILS_KILL_AT hook of core.atomic) while the table of the second
    run is being published; the same command with --append then runs only what is missing."""
    import csv
    import signal
    import subprocess
    import sys

    notebook = _synthetic_notebook(tmp_path)
    env = {**os.environ, "GAN_UTILS_ROOT": str(tmp_path / "root"), "OMP_NUM_THREADS": "1"}
    env.pop("GAN_UTILS_KILL_AT", None)

    def sweep(out: Path, *extra: str, kill: str | None = None) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "gan_utils.core.lesson_sweep", str(notebook)]
        command += ["-p", "x", "1", "2", "3", "--out", str(out), *extra]
        run_env = {**env, **({"GAN_UTILS_KILL_AT": kill} if kill else {})}
        return subprocess.run(command, env=run_env, capture_output=True, text=True, timeout=600)

    def table(out: Path) -> list[dict]:
        with (out / "synthetic_sweep.csv").open() as file:
            return [
                {k: row[k] for k in ("x", "status", "double", "label")}
                for row in csv.DictReader(file)
            ]

    killed = sweep(tmp_path / "killed", kill="write:synthetic_sweep.csv:2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [row["x"] for row in table(tmp_path / "killed")] == ["1"]  # the first run kept
    resumed = sweep(tmp_path / "killed", "--append")
    assert resumed.returncode == 0, resumed.stderr
    assert "already holds 1 of them" in resumed.stdout and "2 will run" in resumed.stdout
    whole = sweep(tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    assert table(tmp_path / "killed") == table(tmp_path / "whole")
    assert [row["double"] for row in table(tmp_path / "whole")] == ["2", "4", "6"]
