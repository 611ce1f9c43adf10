"""A real JupyterLab server and a real Chromium for the browser tests (marker ``browser``).

The browser is Chromium/Chrome from the system (no download, which fails offline), found
through GAN_UTILS_BROWSER, CHROME_PATH, or the usual install paths. Without one the tests
are skipped with the reason, except under CI (CI=true), where that is a failure.
The server serves a temporary copy of notebooks/ (so nothing tracked is rewritten),
with autosave off, on 127.0.0.1, a free port and a random token; server and browser are
always shut down, also when a test fails. Screenshots go to <root>/runs/browser/.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gan_utils.core.paths import PROJECT_ROOT, runs_dir

BROWSER_CANDIDATES = (
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
    "/usr/bin/google-chrome-stable",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def find_browser() -> str | None:
    for var in ("GAN_UTILS_BROWSER", "CHROME_PATH"):
        path = os.environ.get(var)
        if path:
            return path if Path(path).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in BROWSER_CANDIDATES if Path(p).is_file()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def browser_path() -> str:
    path = find_browser()
    if path is None:
        reason = (
            "no Chromium/Chrome found (install it with `make browser-deps`, or set "
            "GAN_UTILS_BROWSER to your browser's executable)"
        )
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    path = runs_dir("browser")
    return path


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory, browser_path):
    """Start JupyterLab on a copy of notebooks/; yields (base_url, token)."""
    served = tmp_path_factory.mktemp("lab_root")
    shutil.copytree(PROJECT_ROOT / "notebooks", served / "notebooks")
    settings = tmp_path_factory.mktemp("lab_settings")
    docmanager = settings / "@jupyterlab" / "docmanager-extension"
    docmanager.mkdir(parents=True)
    (docmanager / "plugin.jupyterlab-settings").write_text(json.dumps({"autosave": False}))
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # render every cell (JupyterLab 4 otherwise only renders the cells in view)
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.setdefault("GAN_UTILS_ROOT", str(tmp_path_factory.mktemp("out_root")))
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={tmp_path_factory.mktemp('lab_workspaces')}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.allow_root=True",  # CI runs as root
    ]  # fmt: skip
    log = (served / "server.log").open("w")
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(
                        "JupyterLab did not start:\n" + (served / "server.log").read_text()[-3000:]
                    ) from None
                time.sleep(0.5)
        yield base, token
    finally:
        _stop(server)
        log.close()


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (kernels included), SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def page(browser_path, jupyter_server):
    """A fresh Chromium page; the browser is closed whatever happens."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=browser_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            yield context.new_page()
        finally:
            browser.close()
