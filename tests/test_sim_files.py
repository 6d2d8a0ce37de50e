"""Meta-World runs lose no data: another run's checkpoint is refused (not deleted), shipping is atomic,
two sim demos cannot share one directory."""

from __future__ import annotations

import json
import shutil

import pytest

import pi0lite.sim  # noqa: F401  (MUJOCO_GL=egl before mujoco is imported)
from pi0lite.sim import demo as sim_demo
from pi0lite.sim.train import check_signature
from pi0lite.toy import files


def test_checkpoint_of_other_settings_is_refused_not_deleted(tmp_path):
    """Before: ``shutil.rmtree(ckpt)`` whenever the signature differed, silently."""
    ckpt = tmp_path / "job" / "ckpt"
    first = {"train": {"steps": 2000, "lr": 0.002}, "data": "a.npz"}
    check_signature(ckpt, first)
    (ckpt / "train_state.npz").write_text("first run")
    check_signature(ckpt, first)  # same settings: resume, keep everything
    assert (ckpt / "train_state.npz").read_text() == "first run"
    with pytest.raises(ValueError, match=r"(?s)other settings .*steps: 2000 vs 3000.*--overwrite"):
        check_signature(ckpt, {"train": {"steps": 3000, "lr": 0.002}, "data": "a.npz"})
    assert (ckpt / "train_state.npz").read_text() == "first run"
    assert json.loads((ckpt / "signature.json").read_text()) == first
    check_signature(ckpt, {"train": {"steps": 3000, "lr": 0.002}, "data": "a.npz"}, overwrite=True)
    assert not (ckpt / "train_state.npz").exists()
    assert json.loads((ckpt / "signature.json").read_text())["train"]["steps"] == 3000


def test_ship_keeps_the_old_assets_until_the_copy_is_complete(tmp_path, monkeypatch):
    """Before: ``rmtree`` of the shipped policy, then ``copytree``: a failure in between lost both."""
    from pi0lite.sim import policy as sim_policy

    shipped = sim_policy.ASSETS / "sim_policy"
    assets = tmp_path / "assets"
    shutil.copytree(shipped, assets / "sim_policy")
    (assets / "sim_results.json").write_text('{"old": true}')
    out = tmp_path / "run"
    shutil.copytree(shipped, out / "pi0" / "policy")
    (out / "results.json").write_text('{"new": true}')
    (out / "pi0" / "policy" / "a_marker.txt").write_text("new")  # copied first (sorted), params.npz later
    monkeypatch.setattr(sim_policy, "ASSETS", assets)

    def fail_midway(name):
        if name == "copied params.npz":
            raise OSError("disk full")

    monkeypatch.setattr(files, "stage", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        sim_demo.ship(out)
    assert sorted(p.name for p in assets.iterdir()) == ["sim_policy", "sim_results.json"]
    assert not (assets / "sim_policy" / "a_marker.txt").exists()
    assert json.loads((assets / "sim_results.json").read_text()) == {"old": True}
    sim_policy.SimPolicy.load(assets / "sim_policy")  # still complete
    monkeypatch.setattr(files, "stage", lambda name: None)
    sim_demo.ship(out)
    assert (assets / "sim_policy" / "a_marker.txt").read_text() == "new"
    assert json.loads((assets / "sim_results.json").read_text()) == {"new": True}


def test_second_sim_demo_into_one_directory_stops_at_once(tmp_path, monkeypatch):
    ran = []
    monkeypatch.setattr(sim_demo, "run", lambda args, out: ran.append(out) or {})
    with files.RunLock(tmp_path):
        with pytest.raises(SystemExit, match="directory in use by pid"):
            sim_demo.main(["--out", str(tmp_path)])
    assert ran == []
    sim_demo.main(["--out", str(tmp_path)])
    assert ran == [tmp_path]


def test_summary_reports_wilson_intervals_per_task_and_pooled(capsys):
    """Per-task 95 % Wilson intervals against published values (19/20: 0.764-0.991; 20/20: 0.839-1),
    the mean's interval from all episodes pooled (39/40: 0.871-0.996), and the printed table."""
    import numpy as np

    from pi0lite.sim.evaluate import EvalResult

    success = np.ones((2, 20), bool)
    success[1, 7] = False
    s = EvalResult(("a-v3", "b-v3"), success, np.zeros((2, 20), np.int32)).summary()
    assert s["tasks"]["a-v3"] == {"success": 1.0, "episodes": 20, "interval": pytest.approx([0.8389, 1.0], abs=1e-4)}
    assert s["tasks"]["b-v3"]["interval"] == pytest.approx([0.7639, 0.9911], abs=1e-4)
    assert s["mean_success"] == pytest.approx(0.975) and s["mean_interval"] == pytest.approx([0.8712, 0.9956], abs=1e-4)
    sim_demo.print_table({"pi0": s})
    out = capsys.readouterr().out
    assert "19/20 [0.76, 0.99]" in out and "20/20 [0.84, 1.00]" in out and "97.5% [0.87, 1.00]" in out
