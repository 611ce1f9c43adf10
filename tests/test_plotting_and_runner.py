"""Figure helpers and the `make run` driver."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from gan_utils.core import plotting  # noqa: E402
from gan_utils.core.history import History  # noqa: E402
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


def test_plot_losses_draws_each_key():
    h = History()
    for step in (10, 20, 30):
        h.log(step, d_loss=1.0 / step, g_loss=2.0)
    ax = plotting.plot_losses(h)
    assert [line.get_label() for line in ax.get_lines()] == ["d_loss", "g_loss"]
    plt.close("all")


def test_lesson_notebooks_are_found_in_order_and_filtered():
    all_lessons = lesson_notebooks()
    names = [nb.name for nb in all_lessons]
    assert names == sorted(names) and all(n[:2].isdigit() for n in names)
    if all_lessons:
        first = all_lessons[0].name[:2]
        assert [nb.name[:2] for nb in lesson_notebooks([first])] == [first]
    with pytest.raises(SystemExit, match="no lesson matches"):
        lesson_notebooks(["99"])
