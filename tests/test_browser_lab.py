"""The course's widgets in a real browser: JupyterLab from this venv, Debian's headless Chromium.

Notebook 02 is copied to a temporary JupyterLab root (JupyterLab, ipywidgets 8 and its
jupyterlab_widgets front end as installed). The cells up to the explorers run; then the test
clicks like a learner (model menu pi0 → pi0.5 → pi0-FAST, a missing wrist-camera patch, an
``ar_mask`` flag) and checks after every click that the mask image in the page really changed (the
decoded pixels differ), and that the page logged no JavaScript error and no failed request.
Screenshots go to ``outputs/browser/``.

ipywidgets 7 (Colab's 7.7.1) is not run here: JupyterLab 4's widget manager (jupyterlab_widgets 3)
refuses a 7.x kernel's widgets ("Module @jupyter-widgets/controls, version ^1.5.0 is not
registered, however, 2.0.0 is"), so a 7.x browser run needs the classic Notebook 6.5 front end in
a second environment, beyond this test's time budget. ``tests/test_widgets.py`` runs the explorers
headless under ipywidgets 7.7.1 instead.
The notebooks' widgets: ``mask_explorer`` and ``model_mask_explorer`` in 02 (no other notebook
displays a widget; ``test_every_widget_cell_is_covered`` keeps it that way).
"""

from __future__ import annotations

import base64
import io
import json
import os
import pathlib
import re
import secrets
import sys
import time

import nbformat
import numpy as np
import pytest

from browser_support import PageLog, chromium, free_port, server

REPO = pathlib.Path(__file__).resolve().parents[1]
SHOTS = REPO / "outputs" / "browser"
NOTEBOOK = REPO / "notebooks" / "02_attention_mask.ipynb"
WIDGET_CALLS = re.compile(r"\b(mask_explorer|model_mask_explorer|interact|interactive)\(|ipywidgets|widgets\.")
EXPLORER_CELLS = ("mask_explorer(", "model_mask_explorer(layouts)")  # how the two cells start
MAJORS = (8,)  # one page per ipywidgets major version served (see the module docstring for 7)
TIMEOUT_MS = int(os.environ.get("PI0LITE_BROWSER_TIMEOUT_MS", 150_000))


def test_every_widget_cell_is_covered():
    """Only notebook 02 shows widgets, in exactly the two cells driven below."""
    found = {}
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = [c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]
        hits = [s for s in cells[1:] if WIDGET_CALLS.search(s) and not s.lstrip().startswith(("import", "from"))]
        if hits:
            found[path.name] = hits
    assert list(found) == [NOTEBOOK.name], f"widget cells outside 02, add them to the browser test: {found}"
    assert [s.split("\n")[0][:28] for s in found[NOTEBOOK.name]] == [m[:28] for m in EXPLORER_CELLS]


def _kernelspec(share: pathlib.Path, name: str, pythonpath: list[pathlib.Path]) -> None:
    spec = share / "kernels" / name
    spec.mkdir(parents=True)
    env = {"PYTHONPATH": os.pathsep.join(map(str, pythonpath))}
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": name, "language": "python", "env": env}))


def _settings(settings: pathlib.Path) -> None:
    """No news / update checks (no network here), and every cell rendered (no windowing)."""
    for plugin, values in {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                           "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"}}.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1:<free port> with a token and a copy of notebook 02; stopped (with its
    kernels: one process group) when the module's tests end, whether they passed or not."""
    tmp = tmp_path_factory.mktemp("lab")
    root, share = tmp / "root", tmp / "share"
    root.mkdir()
    _kernelspec(share, "pi0lite-ipywidgets8", [REPO])
    _settings(tmp / "settings")
    for major in MAJORS:
        nb = nbformat.read(str(NOTEBOOK), as_version=4)
        nb.metadata.kernelspec = {"name": f"pi0lite-ipywidgets{major}", "display_name": f"ipywidgets {major}", "language": "python"}
        nbformat.write(nb, str(root / f"explorer_ipywidgets{major}.ipynb"))
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "PYTHONPATH")}  # the kernel plots inline
    env.update(JUPYTER_DATA_DIR=str(share), JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp / "settings"), JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               IPYTHONDIR=str(tmp / "ipython"), JAX_PLATFORMS="cpu")
    port, token = free_port(), secrets.token_hex(16)
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.extension_manager=readonly"]
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{port}"
    with server(cmd, f"{url}/api/status?token={token}", env=env, cwd=root, log_path=SHOTS / "jupyterlab.log"):
        yield url, token


def _png(src: str) -> np.ndarray:
    from PIL import Image

    assert src.startswith("data:image/png;base64,"), src[:40]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))


class Explorer:
    """One explorer's output cell on the page."""

    def __init__(self, page, marker: str):
        self.page = page
        editor = page.locator(".jp-InputArea-editor", has_text=re.compile("^" + re.escape(marker)))
        self.cell = page.locator(".jp-CodeCell").filter(has=editor)
        self.image = self.cell.locator(".jp-OutputArea-output img")

    def src(self) -> str:
        self.image.wait_for(timeout=TIMEOUT_MS)
        return self.image.get_attribute("src")

    def act(self, what: str, action, shot: str) -> None:
        """Do one user action; the image must change (different pixels) within 20 s."""
        before = self.src()
        action()
        deadline = time.monotonic() + 20
        while (after := self.image.get_attribute("src") if self.image.count() == 1 else before) == before:
            assert time.monotonic() < deadline, f"{what}: the mask image did not change"
            self.page.wait_for_timeout(100)
        self.cell.screenshot(path=str(SHOTS / f"{shot}.png"))
        a, b = _png(before), _png(after)
        assert a.shape != b.shape or (a != b).any(), f"{what}: new image, same pixels"

    def button(self, row: int, label: str):
        return self.cell.locator(".widget-hbox").nth(row).locator("button", has_text=re.compile(f"^{label}$"))


@pytest.fixture(scope="module")
def pages(lab):
    """The notebook open in headless Chromium (a JupyterLab workspace of its own), its cells up to
    the explorers started."""
    url, token = lab
    with chromium() as browser:
        opened = {}
        for major in MAJORS:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            log = PageLog(page)
            page.goto(f"{url}/lab/workspaces/ipywidgets{major}/tree/explorer_ipywidgets{major}.ipynb?reset&token={token}")
            opened[major] = page, log
        for page, _ in opened.values():
            _run_up_to_the_explorers(page)
        yield opened


def _run_up_to_the_explorers(page) -> None:
    """Select the model explorer's cell, then Run > Run All Above Selected Cell and Shift+Enter. Waits for
    the kernel to be idle first, and tries a second time if the explorer cell was not queued (under heavy
    load a run sent while the kernel still connected was seen to be lost)."""
    prompt = Explorer(page, EXPLORER_CELLS[1]).cell.locator(".jp-InputArea-prompt")
    for attempt in range(2):
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=TIMEOUT_MS)
        prompt.click()
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator("li[data-command='notebook:run-all-above']").click()  # "Run All Above Selected Cell"
        page.keyboard.press("Shift+Enter")  # then the selected cell itself (queued behind the others)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if re.search(r"\[(\*|\d+)\]", prompt.inner_text()):
                return
            page.wait_for_timeout(250)
    raise AssertionError(f"the explorer cell was never queued: its prompt reads {prompt.inner_text()!r}")


@pytest.mark.parametrize("major", MAJORS, ids=lambda m: f"ipywidgets{m}")
def test_explorers_react_in_jupyterlab(pages, major):
    page, log = pages[major]
    tag = f"ipywidgets{major}"
    try:
        _drive(page, tag)
    except Exception as e:
        raise AssertionError(f"{tag}: {e}\nJavaScript errors: {log.errors}\nfailed requests: {log.failed}") from e
    finally:
        page.screenshot(path=str(SHOTS / f"{tag}_page.png"), full_page=True)
    stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert stderr.count() == 0, f"{tag}: a cell wrote to stderr: {stderr.first.inner_text()}"
    assert not log.errors, f"{tag}: JavaScript errors:\n" + "\n".join(log.errors)
    assert not log.failed, f"{tag}: failed requests:\n" + "\n".join(log.failed)


def _drive(page, tag: str) -> None:
    simple, model = Explorer(page, EXPLORER_CELLS[0]), Explorer(page, EXPLORER_CELLS[1])
    simple.src(), model.src()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=TIMEOUT_MS)
    simple.cell.screenshot(path=str(SHOTS / f"{tag}_explorer_before.png"))
    model.cell.screenshot(path=str(SHOTS / f"{tag}_model_explorer_pi0.png"))
    simple.act("make the last action token open a block", lambda: simple.button(0, "act").nth(1).click(), f"{tag}_explorer_ar")
    simple.act("mark the text token as padding", lambda: simple.button(1, "txt").click(), f"{tag}_explorer_pad")
    select = model.cell.locator("select")
    model.act("switch to pi0.5", lambda: select.select_option("pi0.5"), f"{tag}_model_explorer_pi05")
    model.act("switch to pi0-FAST", lambda: select.select_option("pi0-FAST"), f"{tag}_model_explorer_fast")
    model.act("mark a wrist-camera patch missing", lambda: model.button(1, "w0").click(), f"{tag}_model_explorer_wrist")
    model.act("flip the first action token's ar flag", lambda: model.button(0, "a0").click(), f"{tag}_model_explorer_ar")
    model.act("back to pi0", lambda: select.select_option("pi0"), f"{tag}_model_explorer_back")


def test_missing_chromium_fails_and_names_the_package(monkeypatch):
    """Without Debian's chromium the browser tests fail (never skip) and say what to install."""
    import browser_support

    monkeypatch.setattr(browser_support.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser_support.os.path, "exists", lambda path: False)
    with pytest.raises(pytest.fail.Exception, match=r"Debian's package `chromium`.*apt-get install -y chromium"):
        browser_support.chromium_path()
