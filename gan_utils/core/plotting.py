"""Figure helpers shared by the lessons: saving (with the run id), sample scatters, GIFs.

Every PNG, GIF and text file saved here carries the id of the run that made it
(``gan_utils.core.report.current_run_id``: the lesson's id inside a lesson, an id without a
lesson elsewhere): a PNG in a ``tEXt`` chunk named ``gan_utils.run_id``, a GIF in its
comment (``gan_utils.run_id=<id>``), a Markdown file in a first-line HTML comment.
``read_run_id`` reads it back from any of them.

Every file is written atomically (``gan_utils.core.atomic``): a kill while saving leaves
the previous figure or the new one, never a half-written PNG or GIF.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image

from .atomic import atomic_path, atomic_write_text
from .paths import figures_dir
from .report import current_run_id

RUN_ID_KEY = "gan_utils.run_id"
_TEXT_STAMP = re.compile(r"<!--\s*" + re.escape(RUN_ID_KEY) + r"=(\S+)\s*-->")


def _folder(folder: str | Path | None) -> Path:
    if folder is None:
        return figures_dir()
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_figure(
    fig: matplotlib.figure.Figure,
    name: str,
    dpi: int = 100,
    run_id: str | None = None,
    folder: str | Path | None = None,
) -> Path:
    """Save ``fig`` as ``<folder>/<name>`` (PNG unless ``name`` has another suffix).

    ``folder`` defaults to the figures folder (``gan_utils.core.paths.figures_dir``). A PNG
    records ``run_id`` (default: the current run id) in its metadata.
    """
    path = _folder(folder) / (name if Path(name).suffix else f"{name}.png")
    metadata = None
    if path.suffix.lower() == ".png":
        metadata = {RUN_ID_KEY: run_id or current_run_id()}
    with atomic_path(path) as temporary:  # keeps the suffix: savefig picks the format from it
        fig.savefig(temporary, dpi=dpi, bbox_inches="tight", metadata=metadata)
    return path


def figure_to_image(fig: matplotlib.figure.Figure, dpi: int = 60) -> Image.Image:
    """Render a figure to a PIL image (a GIF frame)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def save_gif(
    frames: Sequence[Image.Image],
    name: str,
    duration_ms: int = 250,
    colors: int = 64,
    run_id: str | None = None,
    folder: str | Path | None = None,
) -> Path:
    """Write frames as an animated GIF (palette of ``colors`` to keep it small); returns the path.

    The GIF's comment records ``run_id`` (default: the current run id).
    """
    if not frames:
        raise ValueError("frames must hold at least one image")
    path = _folder(folder) / (name if name.endswith(".gif") else f"{name}.gif")
    palette = [f.quantize(colors=colors, method=Image.Quantize.MEDIANCUT) for f in frames]
    comment = f"{RUN_ID_KEY}={run_id or current_run_id()}".encode()
    with atomic_path(path) as temporary:
        palette[0].save(
            temporary,
            format="GIF",
            save_all=True,
            append_images=palette[1:],
            duration=duration_ms,
            loop=0,
            optimize=True,
            comment=comment,
        )
    return path


def save_text(
    text: str, name: str, run_id: str | None = None, folder: str | Path | None = None
) -> Path:
    """Write a Markdown (or other text) figure to the figures dir, stamped with ``run_id``.

    The first line is ``<!-- gan_utils.run_id=<id> -->`` (invisible in rendered Markdown).
    """
    path = _folder(folder) / name
    atomic_write_text(path, f"<!-- {RUN_ID_KEY}={run_id or current_run_id()} -->\n{text}")
    return path


def read_run_id(path: str | Path) -> str | None:
    """The run id stored in a PNG, GIF or text file by this module, or None."""
    path = Path(path)
    if path.suffix.lower() in (".png", ".gif"):
        with Image.open(path) as image:
            if path.suffix.lower() == ".png":
                value = getattr(image, "text", {}).get(RUN_ID_KEY)
                return str(value) if value else None
            comment = image.info.get("comment", b"")
        if isinstance(comment, bytes):
            comment = comment.decode("utf-8", "replace")
        prefix = f"{RUN_ID_KEY}="
        return comment[len(prefix) :].strip() if comment.startswith(prefix) else None
    match = _TEXT_STAMP.search(path.read_text(errors="replace")[:1000])
    return match.group(1) if match else None


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
