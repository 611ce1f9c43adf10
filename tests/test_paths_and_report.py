"""Output root, lesson results and the summary table."""

import json
import os
import subprocess
import sys

import pytest

from gan_utils.core import paths
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
    assert saved == payload["results"]
    table = results_table(load_results())
    assert "99_demo" in table and "accuracy" in table and "0.975" in table


def test_show_results_displays_table_and_json(monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: shown.append(a[0]))
    show_results("98_demo", {"modes": 25})
    assert any(isinstance(x, dict) and "application/json" in x for x in shown)
    assert any("| modes | 25 |" in getattr(x, "data", "") for x in shown)


def test_bad_results_and_names_are_rejected():
    with pytest.raises(ValueError, match="results"):
        show_results("x", {}, display=False)
    with pytest.raises(ValueError, match="name"):
        start_lesson("a/b")


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
