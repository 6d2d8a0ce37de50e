"""tools/seed_table.py: mean ± sample std over seeds, checked against hand-computed values."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tools"))
import seed_table


def _results(seed, success):
    rates = dict.fromkeys(seed_table.RATES, 0.0)
    rates.update(success=success, train_seconds=100.0 + seed)
    return {"seed": seed, "steps": 5000, "policies": {"pi0": rates}}


def test_mean_and_sample_std_by_hand(tmp_path):
    files = []
    for seed, success in [(0, 0.90), (1, 0.94), (2, 0.98)]:
        files.append(tmp_path / f"r{seed}.json")
        files[-1].write_text(json.dumps(_results(seed, success)))
    out = seed_table.main([str(f) for f in files] + ["--json", str(tmp_path / "s.json")])
    s = out["summary"]["success"]
    assert s["mean"] == pytest.approx(0.94) and s["std"] == pytest.approx(0.04)  # ddof=1: sqrt((.04²+0+.04²)/2)
    assert s["per_seed"] == [0.9, 0.94, 0.98]
    assert json.loads((tmp_path / "s.json").read_text())["seeds"] == [0, 1, 2]
    with pytest.raises(SystemExit, match="repeat a seed"):
        seed_table.main([str(files[0]), str(files[0])])
