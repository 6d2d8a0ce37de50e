"""tools/mutation_check.py stays runnable: every mutant's snippet is in its file exactly once (when code
moves, e.g. fast/tokenizer.py -> fast/quantise.py, the tool would stop with exit code 2 before any run)
and names test files that exist. The mutants themselves run only by hand (slow, not in make test)."""

import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import mutation_check


@pytest.mark.parametrize("mutant", mutation_check.MUTANTS, ids=lambda m: f"{m.file}: {m.what}")
def test_mutant_snippet_is_found_once(mutant):
    assert (REPO / "pi0lite" / mutant.file).read_text().count(mutant.old) == 1
    assert mutant.old != mutant.new
    assert all((REPO / t).is_file() for t in mutant.tests)
