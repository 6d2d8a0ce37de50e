"""tools/ship_ki.py merges the KI comparison and the fixes into one shipped file, refusing runs
that cannot be compared; the shipped file itself holds every run the notebook and README cite."""

from __future__ import annotations

import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import ship_ki


def _run(names, steps=5000, seed=0):
    return {"policies": {n: {"success": 0.5} for n in names}, "steps": steps, "seed": seed, "total_seconds": 1.0}


def test_merge_keeps_every_policy_and_both_runs():
    merged = ship_ki.merge(_run(["pi0", "pi05_ki"]), _run(["pi05_ki_aux"]))
    assert list(merged["policies"]) == ["pi0", "pi05_ki", "pi05_ki_aux"]
    assert merged["runs"]["comparison"]["total_seconds"] == 1.0 and merged["shipped_policy"] == "pi05_ki_aux"


@pytest.mark.parametrize("fixes", [_run(["pi0"]), _run(["pi05_ki_aux"], steps=4000), _run(["pi05_ki_aux"], seed=1)])
def test_merge_refuses_overlapping_or_incomparable_runs(fixes):
    with pytest.raises(SystemExit):
        ship_ki.merge(_run(["pi0", "pi05_ki"]), fixes)
