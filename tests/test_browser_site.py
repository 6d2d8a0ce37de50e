"""The static course site in a real browser, served by ``python -m http.server`` on 127.0.0.1.

Inside ``make test`` the site is a small build (index + notebooks 00, 02, 03: 02 for its embedded
widgets) made with ``tools/build_site.py``, the same code as ``make site``, into a temporary
directory (executions are cached in ``outputs/site-cache``). ``make site`` builds every notebook into
``site/`` and runs this test on it with ``PI0LITE_SITE=site`` (then every page is checked).

For the index and each notebook page: every request is served by the local server (nothing from a
CDN) and succeeds, no console error, every image has a natural size > 0, every internal link leads
to a page (and anchor) that exists, the maths is typeset by the local MathJax, and on the widget
page the explorers render from the embedded widget state.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
import urllib.parse
import urllib.request

import pytest

from browser_support import PageLog, chromium, free_port, server

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import build_site

SMALL_BUILD = ["00", "02", "03"]
SHOTS = REPO / "outputs" / "browser"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    prebuilt = os.environ.get("PI0LITE_SITE")
    if prebuilt:
        root = pathlib.Path(prebuilt).resolve()
        if not (root / "index.html").exists():
            pytest.fail(f"PI0LITE_SITE={prebuilt} has no index.html: run `make site`", pytrace=False)
    else:
        root = tmp_path_factory.mktemp("site")
        build_site.build(root, SMALL_BUILD)
    pages = sorted(p.name for p in root.glob("[0-9][0-9]_*.html"))
    assert pages, f"no notebook page in {root}"
    port = free_port()
    SHOTS.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)]
    base = f"http://127.0.0.1:{port}/"
    with server(cmd, base, env=dict(os.environ), cwd=root, log_path=SHOTS / "site_server.log"):
        yield base, pages


def _check_page(browser, base: str, name: str) -> list[str]:
    """Load one page, run every check; returns the internal links it has."""
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    log = PageLog(page, ignore_request=lambda url: url == "about:blank")  # MathJax 2 probes fonts with it: no network
    page.goto(base + name, wait_until="networkidle", timeout=120_000)
    # Every widget view (explorers, progress bars) is rendered from the embedded state next to its script tag.
    page.wait_for_function("""() => [...document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]')]
        .every(s => s.previousElementSibling && s.previousElementSibling.matches('.widget-subarea')
                    && s.previousElementSibling.childElementCount > 0)""", timeout=60_000)
    if name.startswith("02_"):  # the two mask explorers: toggles and their mask images
        assert page.locator(".widget-toggle-button").count() > 0, f"{name}: the explorers' buttons are missing"
        assert page.locator(".widget-subarea img").count() >= 2, f"{name}: the explorers' mask images are missing"
    served = re.sub(r"<script.*?</script>", "", page.request.get(base + name).text(), flags=re.S)
    if "$" in served:  # TeX in the markdown: typeset by the local MathJax
        page.locator(".MathJax_CHTML, .mjx-chtml, .MathJax").first.wait_for(timeout=60_000)
    page.wait_for_load_state("networkidle")
    images = page.eval_on_selector_all("img", "els => els.map(e => [e.currentSrc.slice(0, 60), e.complete, e.naturalWidth])")
    assert images or name != "index.html", "the index shows the README's figures"
    broken = [src for src, complete, width in images if not complete or width == 0]
    assert not broken, f"{name}: figures that did not load: {broken}"
    foreign = [u for u in log.requests if not u.startswith((base, "data:", "blob:", "about:"))]
    assert not foreign, f"{name}: requests that leave the site (the site must work offline): {foreign}"
    assert not log.failed, f"{name}: failed requests: {log.failed}"
    assert not log.errors, f"{name}: console errors: {log.errors}"
    page.screenshot(path=str(SHOTS / f"site_{name.removesuffix('.html')}.png"))
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    page.close()
    return [h for h in hrefs if not h.startswith(("http://", "https://", "mailto:"))]


def test_site_pages_load_offline(site):
    base, pages = site
    checked = ["index.html", *(pages if os.environ.get("PI0LITE_SITE") else pages[:3])]
    with chromium() as browser:
        links = {name: _check_page(browser, base, name) for name in checked}
    targets: dict[str, list[tuple[str, str, str]]] = {}
    for name, hrefs in links.items():
        for href in hrefs:
            target, _, anchor = urllib.parse.urljoin(base + name, href).partition("#")
            targets.setdefault(target, []).append((name, href, anchor))
    for target, uses in targets.items():
        try:
            with urllib.request.urlopen(target, timeout=30) as response:
                ids = set(re.findall(r'\sid="([^"]*)"', response.read().decode()))
        except OSError as e:
            pytest.fail(f"{uses[0][0]}: link {uses[0][1]!r} is broken: {e}")
        for name, href, anchor in uses:  # browsers try the fragment as written, then decoded
            assert not anchor or {anchor, urllib.parse.unquote(anchor)} & ids, f"{name}: no element with the id of {href!r}"
    index_links = [h for h in links["index.html"] if h.endswith(".html")]
    assert sorted(set(index_links)) == pages, "the course map must link every notebook page"


def test_course_map_lists_every_notebook():
    """The map's table has one row per notebook of notebooks/, each with its part of pi0 and modules."""
    paths = build_site.notebooks(None)
    assert sorted(build_site.PARTS) == sorted(p.name[:2] for p in paths), "PARTS in tools/build_site.py is out of date"
    for path in paths:
        import nbformat

        modules = build_site.modules_used(nbformat.read(str(path), as_version=4))
        assert modules and all(m.startswith("pi0lite") for m in modules)
        assert all((REPO / (m.replace(".", "/") + ".py")).exists() or (REPO / m.replace(".", "/")).is_dir()
                   for m in modules), modules
