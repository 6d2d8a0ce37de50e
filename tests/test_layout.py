"""The folder tree shows the architecture: import directions are checked on the source (ast).

* the model modules at the top of ``pi0lite/`` never import ``toy/``, ``course/`` or ``openpi/``;
* ``fast/`` never imports ``toy/`` or ``course/``; ``openpi/`` never imports ``toy/`` or ``course/``;
* nothing in the package imports ``tools`` or notebooks;
* no import cycles between modules, counting imports inside functions (a lazy import hides a
  cycle, it does not remove it).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "pi0lite"
#: Top-level files that are entry points, not model code.
ENTRY_POINTS = {"pi0lite.demo", "pi0lite"}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def all_modules() -> dict[str, pathlib.Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: pathlib.Path, known: set[str]) -> set[str]:
    """Every module (of ``known``, or any top-level name) that ``path`` imports, anywhere in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            for alias in node.names:  # `from pi0lite.toy import env` imports pi0lite.toy.env
                if f"{base}.{alias.name}" in known:
                    found.add(f"{base}.{alias.name}")
    return found


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    known = set(modules)
    return {name: imports_of(path, known) for name, path in modules.items()}


def is_model(name: str) -> bool:
    """A module file at the top of the package (not a subpackage, not an entry point)."""
    path = all_modules()[name] if name in all_modules() else None
    return path is not None and path.parent == PACKAGE and path.name != "__init__.py" and name not in ENTRY_POINTS


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


RULES = [
    ("model modules", is_model, ("pi0lite.toy", "pi0lite.course", "pi0lite.openpi")),
    ("fast/", lambda n: under(n, "pi0lite.fast"), ("pi0lite.toy", "pi0lite.course")),
    ("openpi/", lambda n: under(n, "pi0lite.openpi"), ("pi0lite.toy", "pi0lite.course")),
    ("the package", lambda n: True, ("tools", "notebooks", "student", "tests", "benchmarks")),
]


def violations(g: dict[str, set[str]], rule) -> list[str]:
    _, selects, forbidden = rule
    return [
        f"{src} imports {dst}"
        for src, targets in g.items() if selects(src)
        for dst in sorted(targets) if any(under(dst, f) for f in forbidden)
    ]


@pytest.mark.parametrize("rule", RULES, ids=[r[0] for r in RULES])
def test_import_directions(rule):
    bad = violations(graph(), rule)
    assert not bad, f"{rule[0]} must not import {rule[2]}:\n" + "\n".join(bad)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A cycle of the graph as a list of nodes (first == last), or None (iterative DFS)."""
    colour = {n: 0 for n in edges}  # 0 new, 1 on the stack, 2 done
    for start in edges:
        if colour[start]:
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        colour[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child) == 1:
                return path[path.index(child):] + [child]
            elif colour.get(child) == 0:
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(edges[child]))))
    return None


def test_no_import_cycles():
    g = graph()
    # A package's __init__ importing its own submodules is not a cycle of the design.
    edges = {src: {d for d in targets if d in g and not under(d, src)} for src, targets in g.items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_oracle():
    """The cycle finder itself: finds a planted 3-cycle, and none in a DAG."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_rules_catch_planted_violations():
    """Each direction rule fires on a planted wrong import, and stays quiet on an allowed one."""
    g = {
        "pi0lite.pi0": {"pi0lite.toy.env", "pi0lite.masks"},
        "pi0lite.fast.prompt": {"pi0lite.toy.text"},
        "pi0lite.openpi.io": {"pi0lite.course.viz"},
        "pi0lite.toy.train": {"tools.nb.nbbuild", "pi0lite.pi0"},
    }
    assert violations(g, RULES[0]) == ["pi0lite.pi0 imports pi0lite.toy.env"]
    assert violations(g, RULES[1]) == ["pi0lite.fast.prompt imports pi0lite.toy.text"]
    assert violations(g, RULES[2]) == ["pi0lite.openpi.io imports pi0lite.course.viz"]
    assert violations(g, RULES[3]) == ["pi0lite.toy.train imports tools.nb.nbbuild"]


def _documented_names(text: str) -> set[str]:
    """Every backticked word of a markdown table row, split at '/' (``toy/``, ``checkpoint.py``, ``pi0lite/fast/``)."""
    import re

    names = set()
    for cell in re.findall(r"`([^`]+)`", text):
        names.update(part.removesuffix(".py") for part in cell.split("/") if part)
    return names


@pytest.mark.parametrize("doc, heading", [("CONTRIBUTING.md", "## Package map"), ("README.md", "## Layout")])
def test_every_module_is_in_the_package_map(doc, heading):
    """Each module of ``pi0lite/`` (except ``__init__``/``__main__``, private ``_x`` ones and the per-topic
    submodules of ``course/checks`` and ``course/viz``) is named in the map, in its subpackage's row."""
    text = (PACKAGE.parent / doc).read_text()
    section = text[text.index(heading):].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            sub = next((s for s in ("fast", "openpi", "toy", "sim", "course") if f"{s}/" in first), "")
            rows[sub] = rows.get(sub, set()) | _documented_names(line)
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1].startswith("_") or parts[:2] in (("course", "checks"), ("course", "viz")):
            continue
        sub = parts[0] if len(parts) > 1 else ""
        if parts[-1] not in rows.get(sub, set()):
            missing.append("/".join(parts) + ".py")
    assert not missing, f"{doc} ({heading}) does not name: {missing}"
