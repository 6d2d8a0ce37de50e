"""Write the student copies of the course notebooks: ``notebooks/NN_*.ipynb`` → ``student/``.

The solution notebooks are the single source. For each one this script
* replaces every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region by
  ``raise NotImplementedError("Exercise N.M: <task>")`` at the marker's indentation
  (N.M and the task come from the cell's first line ``# Exercise N.M: <task>``);
* drops cells tagged ``solution-only``;
* strips outputs and execution counts, renumbers cell ids;
* tags every ``exercise`` and ``check`` cell ``raises-exception`` (nbval and nbclient then
  carry on past them, so a student copy still runs top to bottom).

Usage: ``python tools/make_student.py [--src notebooks] [--out student] [NOTEBOOK ...]``
(no NOTEBOOK: every ``NN_*.ipynb`` in ``--src``).
"""

from __future__ import annotations

import argparse
import pathlib
import re

import nbformat

REPO = pathlib.Path(__file__).resolve().parents[1]
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
EXERCISE_LINE = re.compile(r"^# Exercise (\d+\.\d+): (.+)$")


def strip_solutions(source: str, where: str) -> str:
    """Replace each BEGIN/END SOLUTION region of a cell by a ``raise NotImplementedError``."""
    lines = source.split("\n")
    match = EXERCISE_LINE.match(lines[0])
    if not match:
        raise ValueError(f"{where}: an exercise cell must start with '# Exercise N.M: <task>'")
    message = f"Exercise {match[1]}: {match[2]}".replace('"', "'")
    out, inside = [], False
    for line in lines:
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"{where}: nested {BEGIN}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f'{indent}raise NotImplementedError("{message}")')
        elif stripped == END:
            if not inside:
                raise ValueError(f"{where}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN} without {END}")
    return "\n".join(out)


def make_student(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """Return the student copy of one solution notebook (the input is not modified)."""
    student = nbformat.from_dict(nbformat.from_dict(nb))  # deep copy
    cells = []
    for i, cell in enumerate(student.cells):
        tags = list(cell.metadata.get("tags", []))
        if "solution-only" in tags:
            continue
        where = f"{name} cell {i}"
        if cell.cell_type == "code":
            if "exercise" in tags:
                cell.source = strip_solutions(cell.source, where)
            elif BEGIN in cell.source or END in cell.source:
                raise ValueError(f"{where}: solution markers outside a cell tagged 'exercise'")
            if ("exercise" in tags or "check" in tags) and "raises-exception" not in tags:
                tags.append("raises-exception")
            cell.outputs, cell.execution_count = [], None
        if tags:
            cell.metadata["tags"] = tags
        for key in ("execution", "collapsed", "scrolled", "ExecuteTime"):
            cell.metadata.pop(key, None)
        cells.append(cell)
    for i, cell in enumerate(cells):
        cell.id = str(i)
    student.cells = cells
    student.metadata.pop("widgets", None)
    return student


def main(argv: list[str] | None = None) -> list[pathlib.Path]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=pathlib.Path, default=REPO / "notebooks")
    parser.add_argument("--out", type=pathlib.Path, default=REPO / "student")
    parser.add_argument("notebooks", nargs="*", type=pathlib.Path, help="only these solution notebooks")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in args.notebooks or sorted(args.src.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        target = args.out / path.name
        nbformat.write(make_student(nb, path.name), str(target))
        written.append(target)
    return written


if __name__ == "__main__":
    for target in main():
        print(f"wrote {target}")
