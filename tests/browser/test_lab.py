"""The lessons as a student uses them: JupyterLab in Chromium, widgets driven by clicks."""

from __future__ import annotations

import re
import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


def open_notebook(page, server, name: str) -> None:
    base, token = server
    page.goto(f"{base}/lab/tree/notebooks/{name}.ipynb?token={token}&reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    # the kernel is ready when the toolbar's kernel status says idle
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)


def code_cell(page, contains: str):
    cell = page.locator(".jp-CodeCell").filter(has_text=contains).first
    assert cell.count() == 1, f"no code cell containing {contains!r}"
    return cell


def run_cell(page, cell, timeout_s: float = 300) -> None:
    """Click into the cell's editor and press Shift+Enter; wait until its prompt shows [n]."""
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputArea-prompt")
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        text = prompt.inner_text().strip()
        if re.fullmatch(r"\[\d+\]:", text):
            return
        time.sleep(0.25)
    raise AssertionError(
        f"cell did not finish within {timeout_s} s (prompt {prompt.inner_text()!r})"
    )


def test_lesson01_figures_render(page, jupyter_server, screenshot_dir):
    open_notebook(page, jupyter_server, "01_gan_basics")
    images = page.locator(".jp-OutputArea-output img")
    images.first.wait_for(timeout=60_000)
    count = images.count()
    sizes = []
    for i in range(count):
        images.nth(i).scroll_into_view_if_needed()
        box = images.nth(i).bounding_box()
        natural = images.nth(i).evaluate("img => [img.naturalWidth, img.naturalHeight]")
        sizes.append((box["width"] if box else 0, natural))
    page.screenshot(path=str(screenshot_dir / "lesson01_figures.png"))
    assert count >= 5, f"lesson 01 shows only {count} figures"
    assert all(width > 50 and nat[0] > 50 and nat[1] > 50 for width, nat in sizes), sizes
