"""Student copies: regenerating them gives exactly the committed files, and no solution leaks."""

from __future__ import annotations

import importlib.util
import pathlib

import nbformat
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_student", REPO / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_student = _load_tool()


def _solution_lines(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.split("\n"):
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("student")
    make_student.main(["--src", str(REPO / "notebooks"), "--out", str(out)])
    return out


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/NN_*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_student_copy_is_up_to_date(path, regenerated):
    committed = REPO / "student" / path.name
    assert committed.exists(), f"student/{path.name} missing: run `python tools/make_student.py`"
    assert committed.read_text() == (regenerated / path.name).read_text(), (
        f"student/{path.name} is stale: run `python tools/make_student.py` and commit"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_solution_leaks(path):
    solution = nbformat.read(str(path), as_version=4)
    student = nbformat.read(str(REPO / "student" / path.name), as_version=4)
    student_text = "\n".join(cell.source for cell in student.cells)
    assert BEGIN not in student_text and END not in student_text
    assert "solution-only" not in str([c.metadata.get("tags", []) for c in student.cells])
    student_cells = iter(c for c in student.cells)
    for cell in solution.cells:
        tags = cell.metadata.get("tags", [])
        if "solution-only" in tags:
            assert cell.source.strip() not in student_text, "a solution-only cell leaked"
            continue
        mine = next(student_cells)
        if "exercise" not in tags:
            continue
        body = _solution_lines(cell.source)
        assert body, f"exercise cell without a solution body: {cell.source[:60]!r}"
        student_lines = {line.strip() for line in mine.source.split("\n")}
        leaked = [line for line in body if line in student_lines]
        assert not leaked, f"solution lines leaked into student/{path.name}: {leaked}"
        assert "raise NotImplementedError(\"Exercise" in mine.source
        assert "raises-exception" in mine.metadata["tags"]


def test_strip_solutions_keeps_indentation_and_signature():
    source = (
        "# Exercise 9.1: add one\n"
        "def f(x):\n"
        '    """Add one."""\n'
        "    ### BEGIN SOLUTION\n"
        "    y = x + 1\n"
        "    return y\n"
        "    ### END SOLUTION\n"
        "\n"
        "answer = f(1)"
    )
    got = make_student.strip_solutions(source, "test")
    assert got == (
        "# Exercise 9.1: add one\n"
        "def f(x):\n"
        '    """Add one."""\n'
        '    raise NotImplementedError("Exercise 9.1: add one")\n'
        "\n"
        "answer = f(1)"
    )


@pytest.mark.parametrize(
    "source, message",
    [
        ("def f():\n    ### BEGIN SOLUTION\n    ### END SOLUTION", "must start with"),
        ("# Exercise 1.1: x\n### BEGIN SOLUTION\nx = 1", "without"),
        ("# Exercise 1.1: x\nx = 1\n### END SOLUTION", "without"),
    ],
)
def test_strip_solutions_rejects_bad_markers(source, message):
    with pytest.raises(ValueError, match=message):
        make_student.strip_solutions(source, "test")


def test_make_student_drops_solution_only_and_tags_checks():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("# Exercise 1.1: x\nx = 0\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION",
                                      metadata={"tags": ["exercise"]}),
            nbformat.v4.new_code_cell("check(x)", metadata={"tags": ["check"]}),
            nbformat.v4.new_markdown_cell("the answer is 1", metadata={"tags": ["solution-only"]}),
            nbformat.v4.new_code_cell("print(1)", execution_count=3,
                                      outputs=[nbformat.v4.new_output("stream", text="1\n")]),
        ]
    )
    student = make_student.make_student(nb)
    assert [c.id for c in student.cells] == ["0", "1", "2"]
    assert student.cells[1].metadata["tags"] == ["check", "raises-exception"]
    assert student.cells[2].outputs == [] and student.cells[2].execution_count is None
    assert "x = 1" not in student.cells[0].source
