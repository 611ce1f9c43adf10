"""Figure helpers and the `make run` driver."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from gan_utils.core import plotting, report  # noqa: E402
from gan_utils.core.lessons import lesson_notebooks  # noqa: E402


def test_save_figure_and_gif_go_to_the_figures_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    monkeypatch.delenv("GAN_UTILS_REFRESH_FIGURES", raising=False)
    fig, ax = plt.subplots()
    plotting.scatter_samples(
        ax, np.random.randn(50, 2), real=np.random.randn(50, 2), title="t", limit=3
    )
    png = plotting.save_figure(fig, "demo")
    frames = []
    for i in range(5):
        ax.set_title(f"frame {i}")
        frames.append(plotting.figure_to_image(fig))
    gif = plotting.save_gif(frames, "demo")
    plt.close(fig)
    assert png == tmp_path.resolve() / "runs" / "figures" / "demo.png" and png.stat().st_size > 1000
    with Image.open(gif) as im:
        assert im.n_frames == 5
    assert gif.stat().st_size < 300_000
    with pytest.raises(ValueError, match="frames"):
        plotting.save_gif([], "empty")


@pytest.fixture
def no_lesson(monkeypatch):
    """Outside any lesson, with a fresh process id (other tests may have started lessons)."""
    monkeypatch.setattr(report, "_active_run_id", None)
    monkeypatch.setattr(report, "_process_run_id", None)


def _figure_and_frames():
    fig, ax = plt.subplots(figsize=(2, 2))
    frames = []
    for slope in (1, -1):
        ax.plot([0, 1], [0, slope])
        frames.append(plotting.figure_to_image(fig, dpi=30))
    return fig, frames


def test_png_and_gif_carry_the_run_id_outside_a_lesson(tmp_path, monkeypatch, no_lesson):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    fig, frames = _figure_and_frames()
    png = plotting.save_figure(fig, "outside")
    gif = plotting.save_gif(frames, "outside")
    plt.close(fig)
    run_id = plotting.read_run_id(png)
    assert run_id == plotting.read_run_id(gif) == report.current_run_id()
    assert report.parse_run_id(run_id)["lesson"] is None  # no lesson part
    with Image.open(png) as im:
        assert im.text[plotting.RUN_ID_KEY] == run_id  # a PNG text chunk
    with Image.open(gif) as im:
        assert im.info["comment"] == f"{plotting.RUN_ID_KEY}={run_id}".encode()
        assert im.n_frames == 2


def test_figures_of_a_lesson_carry_the_lesson_run_id(tmp_path, monkeypatch, no_lesson):
    monkeypatch.setenv("GAN_UTILS_ROOT", str(tmp_path))
    lesson = report.start_lesson("96_demo")
    fig, frames = _figure_and_frames()
    png = plotting.save_figure(fig, "96_demo")
    gif = plotting.save_gif(frames, "96_demo")
    text = plotting.save_text("# table\n\n| a |\n| --- |\n", "96_demo.md")
    explicit = plotting.save_figure(fig, "96_other", run_id="96_demo@abc1234@2026-12-01T00:00:00Z")
    plt.close(fig)
    saved = lesson.show_results({"value": 1}, display=False)
    payload = json.loads((tmp_path / "runs" / "96_demo" / "results.json").read_text())
    assert saved["value"] == 1 and payload["run_id"] == lesson.run_id
    assert report.parse_run_id(lesson.run_id)["lesson"] == "96_demo"
    for path in (png, gif, text):
        assert plotting.read_run_id(path) == lesson.run_id
    assert text.read_text().endswith("# table\n\n| a |\n| --- |\n")
    assert plotting.read_run_id(explicit) == "96_demo@abc1234@2026-12-01T00:00:00Z"


def test_unstamped_files_have_no_run_id(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "plain.gif")
    (tmp_path / "plain.md").write_text("| a |\n")
    for name in ("plain.png", "plain.gif", "plain.md"):
        assert plotting.read_run_id(tmp_path / name) is None


def test_lesson_notebooks_are_found_in_order_and_filtered():
    all_lessons = lesson_notebooks()
    names = [nb.name for nb in all_lessons]
    assert names == sorted(names) and all(n[:2].isdigit() for n in names)
    if all_lessons:
        first = all_lessons[0].name[:2]
        assert [nb.name[:2] for nb in lesson_notebooks([first])] == [first]
    with pytest.raises(SystemExit, match="no lesson matches"):
        lesson_notebooks(["99"])


def test_lesson_notebooks_of_another_folder(tmp_path):
    for name in ("02_b.ipynb", "01_a.ipynb", "notes.ipynb", ".01_a.refresh.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [nb.name for nb in lesson_notebooks(folder=tmp_path)] == ["01_a.ipynb", "02_b.ipynb"]
