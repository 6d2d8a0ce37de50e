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


def test_shipped_ki_comparison_and_policy():
    """The shipped file holds the four runs and the two fixes, each with its curve; ``steps_to_80`` is
    the first curve point at ≥ 80 % (recomputed here by hand); the shipped KI policy is the fix that
    met the target, and it loads as a pi0.5 policy trained with KI and the grounding head."""
    import json

    from pi0lite.toy.curve import SHIPPED_COMPARISON, shipped_comparison
    from pi0lite.toy.policy import ASSETS, Policy

    shipped = shipped_comparison()
    assert json.loads((ASSETS / SHIPPED_COMPARISON).read_text()) == shipped
    runs = shipped["policies"]
    assert set(runs) == {"pi0", "pi0_noaux", "pi05_ki", "pi05_noki", "pi05_ki_aux", "pi05_ki_fine"}
    assert shipped["steps"] == 5000 and shipped["seed"] == 0
    for name, r in runs.items():
        points = r["curve"]["points"]
        assert [p["step"] for p in points] == list(range(500, 5001, 500)), name
        first = None
        for p in points:
            if p["success"] >= 0.8:
                first = p["step"]
                break
        assert r["steps_to_80"] == first, name
        assert r["episodes"] == 1000 and r["aligned_episodes"] == 300, name
    best = runs[shipped["shipped_policy"]]
    assert best["success"] >= 0.85 and best["wrong"] <= 0.05
    policy = Policy.load(ASSETS / "toy_policy_pi05_ki")
    assert policy.model.config.pi05
    assert policy.meta["knowledge_insulation"] and policy.meta["insulate"] and policy.meta["aux_weight"] == 1.0
    assert policy.meta["train_steps"] == 5000
