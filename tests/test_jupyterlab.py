"""The workbook as a local learner meets it: JupyterLab from the workbook's venv, in a real browser.

A JupyterLab server on a loopback port with a token, driven by Playwright in the system's Chromium (no browser
download): open a notebook, choose the kernel "Python (finetuning-workbook)" in JupyterLab's own dialog, Run All
from the menu, then check that every code cell ran, none shows an error, and a figure rendered. Notebooks run
from copies (JupyterLab autosaves), in the smoke profile; screenshots land in outputs/browser/. The server is
stopped whatever happens. `.ci/run` installs Chromium (Debian's `chromium`); elsewhere set WORKBOOK_CHROMIUM.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "finetuning-workbook"
BROWSER = os.environ.get("WORKBOOK_CHROMIUM") or shutil.which("chromium") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium: `apt-get install chromium` (.ci/run does) "
                                                         "or set WORKBOOK_CHROMIUM to a Chrome/Chromium binary")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """(base URL, token, folder of notebook copies) of a JupyterLab server that knows the workbook's kernel."""
    folder = tmp_path_factory.mktemp("lab")
    kernels = tmp_path_factory.mktemp("kernels")
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(kernels), "--name", KERNEL,
                    "--display-name", "Python (finetuning-workbook)"], check=True, capture_output=True)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_PATH": str(kernels / "share" / "jupyter"), "WORKBOOK_PROFILE": "smoke",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    log = open(folder / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {(folder / 'server.log').read_text()[-2000:]}") from None
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}", token, folder
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _run_in_the_browser(lab, notebook: str, timeout: float = 600) -> dict:
    from playwright.sync_api import sync_playwright

    url, token, folder = lab
    shutil.copy(ROOT / "notebooks" / notebook, folder / notebook)
    shots = ROOT / "outputs" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=BROWSER, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            # a workspace of its own, reset: only this notebook open
            page.goto(f"{url}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?reset&token={token}")
            panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
            panel.locator(".jp-Notebook").wait_for(timeout=60_000)
            news = page.get_by_role("button", name="No", exact=True)  # JupyterLab asks about its news feed once
            if news.count():
                news.first.click()
            panel.locator(".jp-Toolbar-kernelName").click()  # the kernel dialog a learner uses
            dialog = page.locator(".jp-Dialog")
            dialog.wait_for(timeout=30_000)
            dialog.locator("select").select_option(label="Python (finetuning-workbook)")
            dialog.locator("button.jp-mod-accept").click()
            panel.locator(".jp-Toolbar-kernelName", has_text="finetuning-workbook").wait_for(timeout=30_000)
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            started = time.time()
            while True:
                prompts = panel.locator(".jp-CodeCell .jp-InputPrompt").all_inner_texts()
                if prompts and all(p.strip() not in ("[*]:", "[ ]:") for p in prompts):
                    break
                if time.time() - started > timeout:
                    page.screenshot(path=str(shots / f"{Path(notebook).stem}-timeout.png"))
                    raise TimeoutError(f"{notebook} did not finish in {timeout:.0f} s in JupyterLab")
                time.sleep(1)
            seconds = time.time() - started
            errors = panel.locator("[data-mime-type='application/vnd.jupyter.error']").all_inner_texts()
            images = panel.locator(".jp-RenderedImage img").count()
            kernel = panel.locator(".jp-Toolbar-kernelName").inner_text()
            shot = shots / f"{Path(notebook).stem}.png"
            page.screenshot(path=str(shot))
            return {"cells": len(prompts), "seconds": seconds, "errors": errors, "images": images, "screenshot": shot,
                    "kernel": kernel}
        finally:
            browser.close()


@pytest.mark.parametrize("notebook", ["00_setup.ipynb", "03_data.ipynb"])
def test_a_notebook_runs_top_to_bottom_in_jupyterlab_with_the_workbooks_kernel(lab, notebook):
    ran = _run_in_the_browser(lab, notebook)
    assert ran["kernel"] == "Python (finetuning-workbook)"
    assert ran["cells"] > 5 and ran["errors"] == [], ran["errors"]
    assert ran["images"] >= 1, "a figure should render in the browser"
    assert ran["screenshot"].stat().st_size > 10_000
    print(f"{notebook}: {ran['cells']} code cells in {ran['seconds']:.0f} s, {ran['images']} figure(s), "
          f"screenshot {ran['screenshot'].relative_to(ROOT)}")
