"""Figure helpers shared by the lessons: saving, sample scatters, loss curves, GIFs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from .history import History
from .paths import figures_dir


def save_figure(fig: matplotlib.figure.Figure, name: str, dpi: int = 100) -> Path:
    """Save ``fig`` as ``<figures dir>/<name>`` (PNG unless ``name`` has another suffix)."""
    path = figures_dir() / (name if Path(name).suffix else f"{name}.png")
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def figure_to_image(fig: matplotlib.figure.Figure, dpi: int = 60) -> Image.Image:
    """Render a figure to a PIL image (a GIF frame)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def save_gif(
    frames: Sequence[Image.Image], name: str, duration_ms: int = 250, colors: int = 64
) -> Path:
    """Write frames as an animated GIF (palette of ``colors`` to keep it small); returns the path."""
    if not frames:
        raise ValueError("frames must hold at least one image")
    path = figures_dir() / (name if name.endswith(".gif") else f"{name}.gif")
    palette = [f.quantize(colors=colors, method=Image.Quantize.MEDIANCUT) for f in frames]
    palette[0].save(
        path, save_all=True, append_images=palette[1:], duration=duration_ms, loop=0, optimize=True
    )
    return path


def scatter_samples(ax, samples, real=None, title: str = "", limit: float | None = None) -> None:
    """2-D samples (generated, blue) over real ones (grey)."""
    samples = np.asarray(samples)
    if real is not None:
        real = np.asarray(real)
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.7", label="real")
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", alpha=0.6, label="generated")
    if limit is not None:
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")


def plot_losses(history: History, ax=None, keys: Sequence[str] = ("d_loss", "g_loss")):
    """Loss curves from a training history against the generator step."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    for key in keys:
        steps, values = history.series(key)
        ax.plot(steps, values, label=key)
    ax.set_xlabel("generator step")
    ax.set_ylabel("loss")
    ax.legend()
    return ax
