"""Run notebooks and judge every figure they show: ``python tools/check_figures.py notebooks/*.ipynb``.

The hook behind the figure-readability rule (``pi0lite.course.viz._readability``): a cell run
before the notebook's own cells wraps ``plt.show`` so that each figure is checked just before it
is displayed (tick labels ≥ 8 pt as displayed, no overlapping tick labels, no legend on data).
Problems are printed per notebook and cell; the exit code is 1 if there were any.
``tests/test_figures_readable.py`` covers the plot helpers quickly; this tool covers the
figures as the notebooks actually assemble them (slow: it executes the notebooks).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import nbformat
from nbclient import NotebookClient

MARK = "FIGCHECK "
HOOK = f'''
import json as _json
import matplotlib.pyplot as _plt
_show = _plt.show
def _checked_show(*args, **kwargs):
    # imported here, not above: pi0lite.course.viz imports JAX, and notebook 12 must set its
    # device flags before JAX starts
    from pi0lite.course.viz._readability import figure_problems as _problems
    for _num in _plt.get_fignums():
        for _p in _problems(_plt.figure(_num)):
            print("{MARK}" + _json.dumps(_p))
    return _show(*args, **kwargs)
_plt.show = _checked_show
'''


def check_notebook(path: pathlib.Path, timeout: int = 600) -> list[tuple[int, str]]:
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(HOOK))
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    found = []
    for index, cell in enumerate(nb.cells[1:]):
        for output in cell.get("outputs", []):
            for line in output.get("text", "").splitlines() if output.get("name") == "stdout" else []:
                if line.startswith(MARK):
                    found.append((index, json.loads(line[len(MARK):])))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("notebooks", nargs="+", type=pathlib.Path)
    args = parser.parse_args(argv)
    bad = 0
    for path in args.notebooks:
        problems = check_notebook(path)
        bad += len(problems)
        print(f"{path}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
        for cell, text in problems:
            print(f"  cell {cell}: {text}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
