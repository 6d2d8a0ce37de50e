"""Course conventions every notebook must follow (no execution: fast).

Each solution notebook: the first code cell is the Colab/setup cell (Colab-only install, JAX
compile-cache env vars, before any jax import); at least two exercises (00 may have one), each
followed by a check cell; balanced solution markers; a final "## Summary"; outputs stripped.
Builders in tools/nb/ must reproduce the committed notebooks exactly.
"""

from __future__ import annotations

import importlib.util
import pathlib

import nbformat
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
STUDENT = sorted((REPO / "student").glob("[0-9][0-9]_*.ipynb"))
BUILDERS = sorted((REPO / "tools" / "nb").glob("[0-9][0-9]_*.py"))
ids = lambda p: p.stem


def _read(path):
    return nbformat.read(str(path), as_version=4)


def _tags(cell):
    return cell.metadata.get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_setup_cell_first(path):
    nb = _read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    setup = code[0]
    assert "setup" in _tags(setup), "the first code cell must be the setup cell (tag 'setup')"
    assert '"google.colab" in sys.modules' in setup.source, "setup cell must install only on Colab"
    assert "pip" in setup.source
    for var in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"):
        assert var in setup.source, f"setup cell must set {var}"
    assert "import jax" not in setup.source, "JAX must be imported after the env vars are set"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "title first"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_exercises_checks_and_summary(path):
    nb = _read(path)
    exercises = [i for i, c in enumerate(nb.cells) if "exercise" in _tags(c)]
    minimum = 1 if path.name.startswith("00_") else 2
    assert len(exercises) >= minimum, f"{path.name}: {len(exercises)} exercises, need ≥ {minimum}"
    for i in exercises:
        cell = nb.cells[i]
        assert cell.cell_type == "code" and cell.source.startswith("# Exercise ")
        assert cell.source.count("### BEGIN SOLUTION") == cell.source.count("### END SOLUTION") >= 1
        assert "check" in _tags(nb.cells[i + 1]), f"exercise cell {i} must be followed by a check cell"
        assert "checks.check_" in nb.cells[i + 1].source or "check_" in nb.cells[i + 1].source
    numbers = [nb.cells[i].source.split(":")[0] for i in exercises]
    assert len(set(numbers)) == len(numbers), f"duplicate exercise numbers {numbers}"
    hints = [c for c in nb.cells if c.cell_type == "markdown" and "<details>" in c.source]
    assert len(hints) >= len(exercises), "every exercise needs a <details> hint cell"
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## Summary")


@pytest.mark.parametrize("path", NOTEBOOKS + STUDENT, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_outputs_stripped(path):
    nb = _read(path)
    assert "widgets" not in nb.metadata
    for i, cell in enumerate(nb.cells):
        assert cell.id == str(i), f"cell ids must be 0, 1, ... (nbstripout style), cell {i} is {cell.id!r}"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {i} has outputs"
            assert not {"execution", "ExecuteTime", "collapsed", "scrolled"} & set(cell.metadata)


@pytest.mark.parametrize("builder", BUILDERS, ids=ids)
def test_builder_matches_committed_notebook(builder, tmp_path):
    spec = importlib.util.spec_from_file_location(builder.stem.replace(".", "_"), builder)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    nb = module.build()
    written = nb.write(tmp_path / f"{nb.name}.ipynb")
    committed = REPO / "notebooks" / f"{nb.name}.ipynb"
    assert committed.exists(), f"run `python {builder.relative_to(REPO)}`"
    assert committed.read_text() == written.read_text(), f"{committed.name} is out of sync with its builder"


def test_nbstripout_agrees():
    """The committed notebooks are exactly what nbstripout would write (so its git filter is a no-op).

    nbstripout is a test dependency: run as ``python -m nbstripout`` with this interpreter, never skipped.
    """
    import subprocess
    import sys

    paths = [str(p) for p in NOTEBOOKS + STUDENT]
    result = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *paths], capture_output=True, text=True)
    assert result.returncode == 0, f"nbstripout would change: {result.stdout}{result.stderr}"
