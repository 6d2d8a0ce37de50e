"""Tiny notebook builder: each ``tools/nb/NN_name.py`` script describes one solution notebook.

Why a builder: reviewable Python diffs, one shared setup cell, and the course conventions
(tags, exercise markers, hint cells, summary) applied the same way in every notebook.
Run ``python tools/nb/NN_name.py`` to (re)write ``notebooks/NN_name.ipynb``; then
``python tools/make_student.py`` to refresh ``student/``. ``tests/test_notebooks_meta.py``
fails when a builder and its committed notebook disagree.

Cell conventions (also in notebooks/README.md):
* first code cell, tag ``setup``: Colab install (only on Colab) + JAX compile cache env vars;
* exercise cells, tag ``exercise``: first line ``# Exercise N.M: <task>``, signature and
  docstring outside, body between ``### BEGIN SOLUTION`` / ``### END SOLUTION``;
* check cells, tag ``check``: call ``pi0lite.course.checks.check_*`` on the student's answer;
* hint cells: markdown ``<details>``; instructor-only cells: tag ``solution-only``;
* widget and timing cells: tag ``nbval-ignore-output``;
* the last cell: markdown starting with ``## Summary``.
"""

from __future__ import annotations

import pathlib
import textwrap

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[2]
#: The public pip requirement Colab installs pi0lite from, in one place. Empty while the project
#: has no public repository: then the ``PI0LITE_SOURCE`` environment variable must name one (any
#: pip requirement: a fork's ``git+https://`` URL, or the path of an uploaded wheel or checkout);
#: when set, ``PI0LITE_SOURCE`` always wins.
PI0LITE_PUBLIC_SOURCE = ""

SETUP_SOURCE = '''\
# Setup. On Colab: install pi0lite (with the CUDA 12 build of JAX if a GPU is attached).
# Locally: nothing is installed. Then point JAX at a persistent compilation cache.
import os, shutil, subprocess, sys

if "google.colab" in sys.modules:
    source = os.environ.get("PI0LITE_SOURCE") or "PUBLIC_SOURCE"
    if not source:
        raise RuntimeError("pi0lite has no public repository yet: run `%env PI0LITE_SOURCE=<pip requirement>` (e.g. git+https://github.com/<you>/pi0lite, or an uploaded wheel's path), then this cell again")
    extra = "[cuda12]" if shutil.which("nvidia-smi") else ""
    requirement = source + extra if os.path.exists(source) else f"pi0lite{extra} @ {source}"
    if subprocess.run([sys.executable, "-m", "pip", "install", "-q", requirement]).returncode:
        raise RuntimeError(f"pip could not install {requirement!r}: check PI0LITE_SOURCE (see pip's message above)")
for name, value in {"JAX_COMPILATION_CACHE_DIR": os.path.expanduser("~/.cache/pi0lite_jax"),
                    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}.items():
    os.environ.setdefault(name, value)  # an already set value wins'''.replace("PUBLIC_SOURCE", PI0LITE_PUBLIC_SOURCE)

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _clean(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


class Notebook:
    """Collects cells in order; ``write()`` saves a stripped, deterministic .ipynb."""

    def __init__(self, name: str, title: str, intro: str):
        self.name = name
        self.cells: list = []
        self.md(f"# {title}\n\n" + _clean(intro))
        self.code(SETUP_SOURCE, tags=("setup",))

    def md(self, text: str, tags: tuple[str, ...] = ()) -> None:
        self.cells.append(nbformat.v4.new_markdown_cell(_clean(text), metadata=_meta(tags)))

    def code(self, text: str, tags: tuple[str, ...] = ()) -> None:
        self.cells.append(nbformat.v4.new_code_cell(_clean(text), metadata=_meta(tags)))

    def exercise(self, number: str, task: str, text: str) -> None:
        """An exercise cell; ``text`` must contain one BEGIN/END SOLUTION region."""
        body = _clean(text)
        if "### BEGIN SOLUTION" not in body or "### END SOLUTION" not in body:
            raise ValueError(f"exercise {number} has no BEGIN/END SOLUTION markers")
        self.code(f"# Exercise {number}: {task}\n" + body, tags=("exercise",))

    def check(self, text: str) -> None:
        self.code(text, tags=("check",))

    def hint(self, text: str, summary: str = "Hint") -> None:
        self.md(f"<details><summary>{summary}</summary>\n\n{_clean(text)}\n\n</details>")

    def summary(self, text: str) -> None:
        self.md("## Summary\n\n" + _clean(text))

    def notebook(self) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook(cells=self.cells)
        nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
        for i, cell in enumerate(nb.cells):
            cell.id = str(i)  # nbstripout's numbering: stable diffs
        return nb

    def write(self, path: pathlib.Path | None = None) -> pathlib.Path:
        path = path or REPO / "notebooks" / f"{self.name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(self.notebook(), str(path))
        return path


def _meta(tags: tuple[str, ...]) -> dict:
    return {"tags": list(tags)} if tags else {}
