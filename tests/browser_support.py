"""Shared pieces of the browser tests: Debian's Chromium driven by Playwright, servers in their own
process group, and a log of everything that went wrong on a page.

Nothing here installs anything. ``make test`` (and ``make browser-deps``) install the Debian
package ``chromium`` when it is missing and they run as root; without it the tests fail (they
never skip) and say which package to install.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

#: Chromium's flags on this closed network: no background connections, no sandbox (root), no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        pytest.fail("the browser tests need Debian's package `chromium` (/usr/bin/chromium), which is missing: "
                    "run `make test` as root (it installs it) or `apt-get install -y chromium`", pytrace=False)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server(cmd: list[str], ready_url: str, *, env: dict, cwd, log_path, timeout: float = 60.0):
    """Start ``cmd`` in a new process group, wait until ``ready_url`` answers 200, and on exit
    (normal or not) stop the whole group: SIGTERM, then SIGKILL after 10 s."""
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited with {proc.returncode} before it served; see {log_path}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[:3]} did not answer {ready_url} within {timeout:.0f} s; see {log_path}")
            time.sleep(0.25)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        with contextlib.suppress(ProcessLookupError):  # the kernels live in the same group
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@contextlib.contextmanager
def chromium():
    """A headless Debian Chromium under Playwright (a fresh temporary profile per launch)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class PageLog:
    """Console errors, uncaught exceptions, failed requests and HTTP errors of one page."""

    def __init__(self, page, ignore_request=lambda url: False):
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text} @ {m.location}"))
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("requestfailed", lambda r: ignore_request(r.url) or self.failed.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and not ignore_request(r.url) and self.failed.append(f"{r.url}: HTTP {r.status}"))
