"""Build the static course site: every solution notebook executed, rendered by nbconvert's ``lab``
HTML template with its outputs, figures and embedded widget state, plus an index page (the course
map and the README's results). Readable offline: the JavaScript the pages load (require.js, the
ipywidgets HTML manager, MathJax) is copied into ``<out>/_static/``, nothing comes from a CDN.

Usage: ``python tools/build_site.py [--out site] [--notebooks 00 02 03] [--jobs 2]``
(``make site`` builds everything into ``site/``; open ``site/index.html``, or serve it with
``python -m http.server -d site``).

Where the JavaScript comes from: the npm registry, ``npm pack`` of pinned versions whose sha512 is
checked, cached under ``--cache``: require.js, ``@jupyter-widgets/html-manager`` (the renderer
nbconvert expects for ipywidgets 8 state) and MathJax 2.7.9 (the part nbconvert's default
configuration loads).

Execution: ``nbclient`` runs each notebook in a kernel of this Python with ``PYTHONPATH`` set to this
checkout (so this ``pi0lite`` is used), in the notebook's directory, ``--jobs`` at a time. An executed
notebook is cached under ``--cache`` by the hash of its file, of every file of the ``pi0lite`` package
and of the package versions, so a rebuild after a README-only change executes nothing.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import time

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[1]
NPM_PACKAGES = {  # name@version -> sha512 of the tarball (npm's "integrity")
    "requirejs@2.3.7": "DouTG8T1WanGok6Qjg2SXuCMzszOo0eHeH9hDZ5Y4x8Je+9JB38HdTLT4/VA8OaUhBa0JPVHJ0pyBkM1z+pDsw==",
    "@jupyter-widgets/html-manager@1.0.15":
        "5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
    "mathjax@2.7.9": "NOGEDTIM9+MrsqnjPEjVGNx4q0GQxqm61yQwSK+/5S59i26wId5IC5gNu9/bu8+CCVl5p9G2IHcAl/wJa+5+BQ==",
}
#: The part of MathJax 2.7.9 that nbconvert's default configuration (TeX-AMS_CHTML-full,Safe) loads.
MATHJAX_FILES = ("MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "extensions/", "jax/input/",
                 "jax/element/", "jax/output/CommonHTML/", "fonts/HTML-CSS/TeX/woff/", "localization/en/")
#: What each notebook builds of pi0 (the course map); the package modules are read from its imports.
PARTS = {
    "00": "the tools: JAX keys and `nnx.Module`, the shape legend, how exercises are checked",
    "01": "the inputs: image patches, prompt tokens, state, noisy actions and the time embedding (prefix vs suffix)",
    "02": "the attention mask of pi0, pi0.5 and pi0-FAST (`input_mask`, `ar_mask` → `make_attn_mask`), positions",
    "03": "one Gemma block: RMSNorm, RoPE, multi-query attention with the mask, GeGLU",
    "04": "the mixture of transformers: the VLM and the action expert sharing attention",
    "05": "flow matching on a 2-D toy: interpolation, velocity target, Euler sampling",
    "06": "the whole pi0: `compute_loss`, `sample_actions`, the prefix KV cache",
    "07": "the FAST action tokenizer: DCT, quantisation, BPE",
    "08": "pi0-FAST: prompt layout, loss mask, greedy decoding with the cache",
    "09": "a trained policy on the toy task: data, training, closed-loop evaluation",
    "10": "pi0.5 and knowledge insulation: adaRMS, the time MLP, the discrete-state prompt, the KI mask, where the gradients go",
    "11": "real-time chunking: action chunks under inference delay, prefix weights, guided (inpainting) sampling, training-time RTC",
    "12": "scaling to the real sizes: a device mesh and FSDP, sharded = one device, bfloat16, LoRA, the memory table",
    "13": "pi0 in a real simulator: Meta-World tasks from 64×64 pixels, language-conditioned, in closed loop",
    "14": "the vision tower: SigLIP patches, positions, pre-LN blocks, the projection into the LLM width",
    "15": "loading openpi's parameters and checking every output against a parity reference file",
    "16": "pi0-FAST trained on the toy task next to flow pi0: FAST on the toy chunks, tokens to actions, closed loop, cost per chunk",
}
README_SECTIONS = ("Results on the toy task", "Speed", "Parity with openpi")
IMPORT = re.compile(r"^\s*(?:from\s+(pi0lite(?:\.\w+)*)\s+import\s+([\w, ()]+)|import\s+(pi0lite(?:\.\w+)*))", re.M)


def notebooks(selection: list[str] | None) -> list[pathlib.Path]:
    paths = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if selection:
        paths = [p for p in paths if p.name[:2] in selection or p.stem in selection]
        missing = set(selection) - {p.name[:2] for p in paths} - {p.stem for p in paths}
        if missing:
            raise ValueError(f"--notebooks: no notebook {sorted(missing)} in notebooks/")
    return paths


# ---------------------------------------------------------------- static assets (no CDN)
def npm_package(spec: str, cache: pathlib.Path) -> tarfile.TarFile:
    """The npm tarball of ``spec`` (downloaded once with ``npm pack``), after checking its sha512."""
    cache.mkdir(parents=True, exist_ok=True)
    name = spec.rsplit("@", 1)[0].lstrip("@").replace("/", "-") + "-" + spec.rsplit("@", 1)[1] + ".tgz"
    path = cache / name
    if not path.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("build_site: `npm` is needed once to fetch the pages' JavaScript (require.js, the "
                             "ipywidgets HTML manager); install Node.js + npm (Debian: apt-get install -y npm)")
        subprocess.run([npm, "pack", "--silent", "--pack-destination", str(cache), spec], check=True, capture_output=True)
    digest = base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()
    if digest != NPM_PACKAGES[spec]:
        path.unlink()
        raise SystemExit(f"build_site: {spec} has sha512 {digest}, expected {NPM_PACKAGES[spec]} (removed; try again)")
    return tarfile.open(path)


def copy_assets(static: pathlib.Path, cache: pathlib.Path) -> None:
    static.mkdir(parents=True, exist_ok=True)
    with npm_package("requirejs@2.3.7", cache / "npm") as tar:
        (static / "require.js").write_bytes(tar.extractfile("package/require.js").read())
    manager = static / "html-manager"
    manager.mkdir(exist_ok=True)
    with npm_package("@jupyter-widgets/html-manager@1.0.15", cache / "npm") as tar:
        for member in tar.getmembers():
            rel = member.name.removeprefix("package/dist/")
            if member.isfile() and rel != member.name and "/" not in rel and not rel.endswith((".map", ".ts")):
                (manager / rel).write_bytes(tar.extractfile(member).read())
    with npm_package("mathjax@2.7.9", cache / "npm") as tar:
        for member in tar.getmembers():
            rel = member.name.removeprefix("package/")
            if member.isfile() and rel.startswith(MATHJAX_FILES):
                (static / "mathjax" / rel).parent.mkdir(parents=True, exist_ok=True)
                (static / "mathjax" / rel).write_bytes(tar.extractfile(member).read())
    import jupyter_server

    shutil.copy2(pathlib.Path(jupyter_server.__file__).parent / "static" / "favicon.ico", static.parent / "favicon.ico")


# ---------------------------------------------------------------- execution (cached)
def source_hash() -> str:
    h = hashlib.sha256()
    for path in sorted((REPO / "pi0lite").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    for dist in ("jax", "flax", "numpy", "matplotlib", "ipywidgets", "nbclient"):
        h.update(f"{dist}=={importlib.metadata.version(dist)}".encode())
    return h.hexdigest()[:16]


def execute(path: pathlib.Path, cache: pathlib.Path, package_hash: str) -> tuple[pathlib.Path, float, bool]:
    """Execute one notebook (or reuse the cached execution); returns (executed file, seconds, cached?)."""
    key = hashlib.sha256(path.read_bytes() + package_hash.encode()).hexdigest()[:16]
    out = cache / "executed" / f"{path.stem}-{key}.ipynb"
    if out.exists():
        return out, 0.0, True
    from nbclient import NotebookClient

    start = time.perf_counter()
    nb = nbformat.read(str(path), as_version=4)
    os.environ.pop("MPLBACKEND", None)  # the kernel inherits it: inline plots, not Agg
    os.environ["PYTHONPATH"] = str(REPO)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    nbformat.write(nb, str(tmp))
    tmp.replace(out)  # atomic: a killed build never leaves half a cache entry
    return out, time.perf_counter() - start, False


# ---------------------------------------------------------------- pages
def exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(template_name="lab", require_js_url="_static/require.js",
                        widget_renderer_url="_static/html-manager/embed-amd.js",
                        mathjax_url="_static/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe")


def modules_used(nb) -> list[str]:
    """``pi0lite`` modules a notebook imports (``from pi0lite.x import y`` counts ``pi0lite.x.y`` when it is a module)."""
    found = set()
    for cell in nb.cells[1:]:
        if cell.cell_type != "code":
            continue
        for frm, names, imp in IMPORT.findall(cell.source):
            base = frm or imp
            subs = [n.strip() for n in names.replace("(", "").replace(")", "").split(",") if n.strip()] if frm else []
            mods = [f"{base}.{n}" for n in subs if (REPO / (base.replace(".", "/") + f"/{n}.py")).exists()
                    or (REPO / base.replace(".", "/") / n / "__init__.py").exists()]
            found.update(mods or [base])
    return sorted(found - {"pi0lite"}) or ["pi0lite"]


def nav_cell(paths: list[pathlib.Path], i: int) -> nbformat.NotebookNode:
    links = ["[course map](index.html)"]
    if i > 0:
        links.append(f"[← {paths[i - 1].stem}]({paths[i - 1].stem}.html)")
    if i + 1 < len(paths):
        links.append(f"[{paths[i + 1].stem} →]({paths[i + 1].stem}.html)")
    return nbformat.v4.new_markdown_cell(" · ".join(links))


def localize(markdown: str, out: pathlib.Path, headings: dict[str, str]) -> str:
    """Copy the figures a README part shows into ``out``; keep links that work inside the site:
    web links, and anchors of headings on the index (renamed to nbconvert's ids); other links
    (to files of the repository) become plain text."""
    for figure in re.findall(r"!\[[^\]]*\]\((docs/[^)\s]+)\)", markdown):
        (out / figure).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / figure, out / figure)

    def link(m):
        text, target = m[1], m[2]
        if m[0].startswith("!") or target.startswith(("http://", "https://")):
            return m[0]
        if target.startswith("#") and target[1:] in headings:
            return f"[{text}](#{headings[target[1:]]})"
        return text

    return re.sub(r"!?\[([^\]]*)\]\(([^)\s]+)\)", link, markdown)


def readme_parts(out: pathlib.Path) -> list[str]:
    """The README's opening (title, summary, top figure) and its result sections."""
    text = (REPO / "README.md").read_text()
    intro, *chunks = re.split(r"^## ", text, flags=re.M)
    picked = [f"## {c.strip()}" for c in chunks if c.split("\n", 1)[0].strip().startswith(README_SECTIONS)]
    if len(picked) != len(README_SECTIONS):
        raise SystemExit(f"build_site: README.md lacks one of the sections {README_SECTIONS}")
    headings = {}  # GitHub's anchor of a heading -> nbconvert's id of the same heading
    for part in picked:
        title = part.split("\n", 1)[0][3:].strip()
        headings[re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")] = title.replace(" ", "-")
    return [localize(part, out, headings) for part in [intro, *picked]]


def index_notebook(paths: list[pathlib.Path], out: pathlib.Path) -> nbformat.NotebookNode:
    intro, *results = readme_parts(out)
    rows = ["| notebook | what it builds of pi0 | package modules it uses |", "| --- | --- | --- |"]
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        title = nb.cells[0].source.split("\n", 1)[0].lstrip("# ").strip()
        mods = ", ".join(f"`{m}`" for m in modules_used(nb))
        rows.append(f"| [{title}]({path.stem}.html) | {PARTS[path.name[:2]]} | {mods} |")
    cells = [intro, "## Course map\n\nEach page is a notebook of `notebooks/` (the worked solutions), executed, with its "
             "figures and live widgets. Run them yourself with `make lab`, or take the exercise copies in `student/`.\n\n"
             + "\n".join(rows), *results]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(c) for c in cells])
    nb.metadata["title"] = "pi0lite course"
    return nb


def build(out: pathlib.Path, selection: list[str] | None = None, jobs: int = 2,
          cache: pathlib.Path = REPO / "outputs" / "site-cache") -> dict:
    """Build the site into ``out``; returns timings."""
    start = time.perf_counter()
    paths = notebooks(selection)
    out.mkdir(parents=True, exist_ok=True)
    copy_assets(out / "_static", cache)
    package_hash = source_hash()
    timings = {}
    seen_path = cache / "timings.json"  # seconds of the last execution of each notebook: longest first
    seen = json.loads(seen_path.read_text()) if seen_path.exists() else {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute, p, cache, package_hash): p for p in sorted(paths, key=lambda p: -seen.get(p.stem, 60))}
        executed = {}
        for future in concurrent.futures.as_completed(futures):
            path = futures[future]
            executed[path], seconds, cached = future.result()
            timings[path.stem] = "cached" if cached else round(seconds, 1)
            print(f"  executed {path.stem}: {timings[path.stem]}{'' if cached else ' s'}", flush=True)
    seen.update({k: v for k, v in timings.items() if v != "cached"})
    seen_path.write_text(json.dumps(seen, indent=1))
    html = exporter()
    for i, path in enumerate(paths):
        nb = nbformat.read(str(executed[path]), as_version=4)
        nb.cells.insert(0, nav_cell(paths, i))
        nb.cells.append(nav_cell(paths, i))
        body, _ = html.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        (out / f"{path.stem}.html").write_text(body)
    body, _ = html.from_notebook_node(index_notebook(paths, out), resources={"metadata": {"name": "pi0lite course"}})
    (out / "index.html").write_text(body)
    timings["total_s"] = round(time.perf_counter() - start, 1)
    (out / "build.json").write_text(json.dumps(timings, indent=1))
    return timings


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "site")
    parser.add_argument("--notebooks", nargs="*", help="numbers or names (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks executed at once")
    parser.add_argument("--cache", type=pathlib.Path, default=REPO / "outputs" / "site-cache")
    args = parser.parse_args(argv)
    timings = build(args.out, args.notebooks, args.jobs, args.cache)
    print(f"site: {args.out / 'index.html'} ({timings['total_s']} s)")


if __name__ == "__main__":
    sys.exit(main())
