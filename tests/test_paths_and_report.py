"""Output root, lesson results and the summary table."""

import datetime as dt
import json
import os
import re
import subprocess
import sys

import pytest

from gan_utils.core import paths, report
from gan_utils.core.report import (
    is_row_table,
    load_results,
    results_table,
    show_results,
    start_lesson,
)


def test_root_follows_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path / "out"))
    monkeypatch.delenv("GAN_UTILS_DATA", raising=False)
    assert paths.output_root() == (tmp_path / "out").resolve()
    assert paths.runs_dir("01_x") == (tmp_path / "out" / "runs" / "01_x").resolve()
    assert paths.artifacts_dir("models").is_dir()
    assert paths.data_dir() == (tmp_path / "out" / "data").resolve()
    monkeypatch.setenv("GAN_UTILS_DATA", str(tmp_path / "elsewhere"))
    assert paths.data_dir() == (tmp_path / "elsewhere").resolve()


def test_default_root_is_the_project_not_the_current_directory(tmp_path, monkeypatch):
    """Kernels start in notebooks/ (nbval, JupyterLab) or anywhere (papermill)."""
    env = {k: v for k, v in os.environ.items() if k != "GAN_UTILS_ROOT"}
    code = "from gan_utils.core.paths import output_root; print(output_root())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == str(paths.PROJECT_ROOT)
    assert (paths.PROJECT_ROOT / "pyproject.toml").is_file()


def test_figures_go_to_the_tracked_folder_only_when_refreshing(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    monkeypatch.delenv("GAN_UTILS_REFRESH_FIGURES", raising=False)
    assert paths.figures_dir() == tmp_path.resolve() / "runs" / "figures"
    monkeypatch.setenv("GAN_UTILS_REFRESH_FIGURES", "1")
    assert paths.figures_dir() == tmp_path.resolve() / "figures"


@pytest.fixture(autouse=True)
def _no_lesson_left_over(monkeypatch):
    """start_lesson sets the process's current run id: restore it after each test."""
    monkeypatch.setattr(report, "_active_run_id", None)
    monkeypatch.setattr(report, "_process_run_id", None)


def test_show_results_writes_json_with_wall_time(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    lesson = start_lesson("99_demo")
    saved = lesson.show_results(
        {"accuracy": 0.975, "nan_metric": float("nan"), "per_class": [1, 2]}, display=False
    )
    payload = json.loads((tmp_path / "runs" / "99_demo" / "results.json").read_text())
    assert payload["notebook"] == "99_demo"
    assert payload["results"]["accuracy"] == 0.975
    assert payload["results"]["nan_metric"] is None  # JSON has no NaN
    assert payload["results"]["wall_time_s"] >= 0
    assert payload["run_id"] == lesson.run_id == report.current_run_id()
    assert saved == payload["results"]
    table = results_table(load_results())
    assert "99_demo" in table and "accuracy" in table and "0.975" in table


def test_show_results_displays_table_and_json(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append(a[0]))
    show_results("98_demo", {"modes": 25})
    payload = next(x["application/json"] for x in shown if isinstance(x, dict))
    assert report.parse_run_id(payload["run_id"])["lesson"] == "98_demo"
    markdown = next(x.data for x in shown if "| modes | 25 |" in getattr(x, "data", ""))
    assert f"(run `{payload['run_id']}`)" in markdown


def test_bad_results_and_names_are_rejected():
    with pytest.raises(ValueError, match="results"):
        show_results("x", {}, display=False)
    with pytest.raises(ValueError, match="name"):
        start_lesson("a/b")
    with pytest.raises(ValueError, match="name"):
        start_lesson("a@b")


def test_summary_without_results_says_how_to_get_them(tmp_path):
    assert "make run" in results_table({})


def test_a_list_of_rows_is_shown_as_a_table_at_the_end_of_the_summary(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append(a[0]))
    rows = [
        {"model": "dense z1", "IS": 1.5, "FID": 1300.0},
        {"model": "dcgan z10", "IS": 3.4, "FID": 450.0},
    ]
    show_results("97_demo", {"course_table": rows, "eval_samples": 1000})
    markdown = next(x.data for x in shown if "Results of 97_demo" in getattr(x, "data", ""))
    assert "| model | IS | FID |" in markdown and "| dcgan z10 | 3.4 | 450 |" in markdown
    table = results_table(load_results()).splitlines()
    assert table[-3].split() == ["model", "IS", "FID"]  # header, then one line per row, last
    assert table[-1].split() == ["dcgan", "z10", "3.4", "450"]
    assert table.index("  course_table:") > next(
        i for i, line in enumerate(table) if "eval_samples" in line
    )
    # lists of unequal dicts are not tables: long ones stay in results.json only
    assert not is_row_table([{"a": 1}, {"b": 2}]) and not is_row_table([])


def test_run_ids_name_lesson_commit_and_utc_time(monkeypatch):
    when = dt.datetime(2026, 12, 2, 11, 30, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(report, "git_state", lambda: "3f2c1ab+dirty")
    run_id = report.make_run_id("04_vanilla_gan", when)
    assert run_id == "04_vanilla_gan@3f2c1ab+dirty@2026-12-02T11:30:00Z"
    assert report.parse_run_id(run_id) == {
        "lesson": "04_vanilla_gan",
        "commit": "3f2c1ab",
        "dirty": True,
        "time": "2026-12-02T11:30:00Z",
    }
    outside = report.make_run_id(None, when)
    assert outside == "3f2c1ab+dirty@2026-12-02T11:30:00Z"
    assert report.parse_run_id(outside)["lesson"] is None
    assert report.current_run_id() == report.current_run_id()  # one id per process
    assert report.parse_run_id(report.current_run_id())["lesson"] is None
    lesson = start_lesson("04_vanilla_gan")
    assert report.current_run_id() == lesson.run_id
    with pytest.raises(ValueError, match="run id"):
        report.parse_run_id("not an id")


def test_git_state_of_this_checkout():
    state = report.git_state()
    assert re.fullmatch(r"([0-9a-f]{4,40}(\+dirty)?|unknown)", state)


def test_dirty_ignores_outputs_and_notebooks_with_new_outputs_only(tmp_path, monkeypatch):
    notebook = {"cells": [{"cell_type": "code", "source": ["x = 1\n", "x"], "outputs": []}]}
    executed = json.loads(json.dumps(notebook))
    executed["cells"][0]["outputs"] = [{"output_type": "stream", "text": "1"}]
    edited = json.loads(json.dumps(notebook))
    edited["cells"][0]["source"] = "x = 2"
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_a.ipynb").write_text(json.dumps(executed))
    (tmp_path / "notebooks" / "02_b.ipynb").write_text(json.dumps(edited))
    status = "\n".join(
        [
            " M figures/01_a.png",
            " M README.md",
            " M notebooks/01_a.ipynb",
            " M notebooks/02_b.ipynb",
            "?? notes.txt",
            "?? gan_utils/core/new.py",
            "M  gan_utils/core/train.py",
        ]
    )

    def fake_git(*args):
        if args[0] == "status":
            return status
        if args[0] == "show":
            return json.dumps(notebook)
        return "3f2c1ab\n"

    monkeypatch.setattr(report, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(report, "_git", fake_git)
    assert report.dirty_paths() == [
        "notebooks/02_b.ipynb",
        "gan_utils/core/new.py",
        "gan_utils/core/train.py",
    ]
    assert report.git_state() == "3f2c1ab+dirty"
    status = " M figures/01_a.png\n M notebooks/01_a.ipynb"
    assert report.git_state() == "3f2c1ab"
