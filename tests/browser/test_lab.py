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


def _image_source(page) -> str:
    image = page.locator("img.widget-image").first
    return image.get_attribute("src") or ""


def test_lesson02_explorer_trains_when_clicked(page, jupyter_server, screenshot_dir):
    open_notebook(page, jupyter_server, "02_toy_mode_collapse")
    # the parameters and the set-up cell, then the explorer (its cell builds it from scratch)
    code_cells = page.locator(".jp-CodeCell")
    run_cell(page, code_cells.nth(0))
    run_cell(page, code_cells.nth(1))
    explorer_cell = code_cell(page, "toy_explorer(")
    run_cell(page, explorer_cell)
    explorer = explorer_cell.locator(".jp-OutputArea-output")
    explorer.locator(".widget-button").filter(has_text="Train").wait_for(timeout=60_000)
    page.screenshot(path=str(screenshot_dir / "lesson02_explorer_before.png"))
    metrics = explorer.locator(".widget-html").last
    metrics_before = metrics.inner_text()
    image_before = _image_source(page)

    explorer.locator(".widget-dropdown").filter(has_text="variant").locator("select").select_option(
        "non_saturating"
    )
    # the variant's own n_critic (1) replaces the lesson's collapse setting (5): the page
    # reflects the kernel
    n_critic = (
        explorer.locator(".widget-slider").filter(has_text="n_critic").locator(".widget-readout")
    )
    page.wait_for_function(
        "el => el.innerText.trim() === '1'", arg=n_critic.element_handle(), timeout=30_000
    )
    steps = explorer.locator(".widget-slider").filter(has_text="steps").locator(".widget-readout")
    steps.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("300")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "el => el.innerText.trim() === '300'", arg=steps.element_handle(), timeout=30_000
    )

    explorer.locator(".widget-button").filter(has_text="Train").click()
    page.wait_for_function(
        "el => /finished at step 300/.test(el.innerText)",
        arg=metrics.element_handle(),
        timeout=240_000,
    )
    page.screenshot(path=str(screenshot_dir / "lesson02_explorer_after.png"))
    metrics_after = metrics.inner_text()
    image_after = _image_source(page)
    assert metrics_after != metrics_before
    assert "non_saturating on ring" in metrics_after and "modes covered" in metrics_after
    assert image_after and image_after != image_before
    box = page.locator("img.widget-image").first.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 100
