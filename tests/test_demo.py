"""``python -m pi0lite.demo``: run directories that are never silently replaced or shared, results
written before the figures, figures for any evaluation counts, atomic shipping, portable launching,
and the Wilson intervals beside every rate."""

import inspect
import json
import os
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from pi0lite.toy import demo, evaluate as toy_eval, files
from pi0lite.toy.jobs import JOBS
from pi0lite.toy.evaluate import evaluate, wilson_interval

FAST = ["--steps", "3", "--episodes", "4", "--eval-episodes", "5", "--aligned", "0"]


def test_wilson_interval_hand_computed():
    # k=5, n=10: p=.5, z²=3.8415; centre .5, half = 1.96·sqrt(.025 + .0096)/1.38415 = 0.26340
    assert np.allclose(wilson_interval(5, 10), (0.23659, 0.76341), atol=1e-5)
    # k=0, n=10: [0, z²/(n+z²)] = [0, 3.8415/13.8415]
    assert np.allclose(wilson_interval(0, 10), (0.0, 0.27753), atol=1e-5)
    # k=193, n=200 (p=.965): centre (.965+.0096)/1.0192 = .95637, half 1.96·sqrt(.00016887+.0000240)/1.0192
    assert np.allclose(wilson_interval(193, 200), (0.92946, 0.98297), atol=1e-4)
    assert np.isnan(wilson_interval(0, 0)).all()
    with pytest.raises(ValueError, match="k=3, n=2"):
        wilson_interval(3, 2)


def test_every_rate_has_an_interval():
    up = lambda obs, key: np.tile([0.0, 0.3], (len(obs["state"]), 16, 1))
    m, _, _ = evaluate(up, num_episodes=12, num_aligned=4, seed=5)
    rates = [k for k in m if k in ("success", "crash", "wrong", "timeout", "coin_flip_success", "aligned_success",
                                   "aligned_crash")]
    assert len(rates) == 7
    for k in rates:
        lo, hi = m[f"{k}_ci95"]
        assert lo <= m[k] <= hi or np.isnan(m[k]), (k, m[k], lo, hi)
    assert m["aligned_crash_ci95"] == [round(x, 4) for x in wilson_interval(4, 4)]


def test_evaluation_defaults_are_large_enough(tmp_path, monkeypatch):
    """Before: 200 episodes (37 coin flips: one episode moved that rate by 2.7 points), 100 aligned."""
    seen = {}
    monkeypatch.setattr(demo, "run", lambda args, out: seen.setdefault("args", args) and {})
    demo.main(["--out", str(tmp_path)])
    assert seen["args"].eval_episodes >= 1000 and seen["args"].aligned >= 300
    defaults = inspect.signature(toy_eval.evaluate).parameters
    assert defaults["num_episodes"].default >= 1000 and defaults["num_aligned"].default >= 300


# --- run directory: same settings resume, others are refused ------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Stub out data, training and evaluation: only the run-directory logic runs."""
    calls = []
    monkeypatch.setattr(demo, "launch", lambda args, out, jobs: calls.append("train"))
    fake = {"success": 1.0, "success_ci95": [0.5, 1.0], "train_seconds": 1.0}
    monkeypatch.setattr(demo, "evaluate_all", lambda args, out, names: ({n: dict(fake) for n in names}, {}, {}))
    monkeypatch.setattr(demo, "draw", lambda *a: calls.append("draw"))
    return calls


def test_other_settings_are_refused_same_settings_resume(tmp_path, no_work):
    """Before: the worker rmtree'd the first run's checkpoint and overwrote its policy silently."""
    out = tmp_path / "run"
    demo.main(["--out", str(out)] + FAST)
    (out / "pi0" / "ckpt").mkdir(parents=True)
    (out / "pi0" / "ckpt" / "train_state.npz").write_text("first run")
    with pytest.raises(SystemExit, match=r"(?s)different settings .*steps: 3 vs 4.*--overwrite"):
        demo.main(["--out", str(out)] + FAST[:1] + ["4"] + FAST[2:])
    assert (out / "pi0" / "ckpt" / "train_state.npz").read_text() == "first run"
    demo.main(["--out", str(out)] + FAST)  # same settings: resumes, deletes nothing
    assert (out / "pi0" / "ckpt" / "train_state.npz").exists()
    demo.main(["--out", str(out), "--overwrite"] + FAST[:1] + ["4"] + FAST[2:])
    assert not (out / "pi0").exists() and json.loads((out / "run.json").read_text())["steps"] == 4


def test_results_are_written_before_the_figures(tmp_path, no_work, monkeypatch):
    def broken_draw(*args):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(demo, "draw", broken_draw)
    with pytest.raises(RuntimeError, match="plotting failed"):
        demo.main(["--out", str(tmp_path)] + FAST)
    assert json.loads((tmp_path / "results.json").read_text())["policies"]["pi0"]["success"] == 1.0


HOLDER = textwrap.dedent("""
    import sys, time
    from pi0lite.toy import demo

    def slow_launch(args, out, jobs):
        print("training", flush=True)
        time.sleep(600)  # the test kills us here

    demo.launch = slow_launch
    demo.main(["--out", {out!r}, "--steps", "3"])
""")


def test_second_demo_into_one_directory_stops_at_once(tmp_path, no_work):
    """Before: both ran and one died late (FileNotFoundError on data.npz)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(out=str(tmp_path))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip().startswith("training")
        with pytest.raises(SystemExit, match=f"directory in use by pid {holder.pid}"):
            demo.main(["--out", str(tmp_path), "--steps", "3"])
        assert no_work == []  # stopped before any work
    finally:
        holder.kill()
        holder.wait(timeout=60)
    demo.main(["--out", str(tmp_path), "--steps", "3"])  # the lock died with the process
    assert no_work == ["train", "draw"]


# --- figures for any counts ---------------------------------------------------------------------


class StillPolicy:
    """Stands still (times out): enough to draw every figure without a trained model."""

    def infer(self, images, state, instructions, key):
        return np.zeros((len(state), 16, 2), np.float32)


@pytest.mark.parametrize("aligned", [0, 1, 2])
def test_figures_cope_with_any_counts(tmp_path, aligned):
    """Before: --aligned 0/1/2 crashed in plotting after all training and evaluation."""
    fn = toy_eval.policy_fn(StillPolicy())
    _, main, tied = evaluate(fn, num_episodes=2, num_aligned=aligned, seed=11)
    assert not main.coin_flip.any()  # no natural coin flip either
    args = types.SimpleNamespace(image_size=32, gif=False)
    history = np.ones((5, 2), np.float32)
    demo.draw(args, tmp_path, {"pi0": history, "mse": history},
              {"pi0": (StillPolicy(), main, tied), "mse": (StillPolicy(), main, tied)})
    drawn = sorted(p.name for p in tmp_path.iterdir())
    want = {"loss_curves.png", "rollouts_overview.png", "attn_mask.png"} | ({"rollouts_coin_flip.png"} if aligned else set())
    assert set(drawn) == want


# --- shipping -----------------------------------------------------------------------------------


def test_ship_never_deletes_assets_before_the_copy_is_complete(tmp_path, monkeypatch):
    from test_policy import _policy

    from pi0lite.toy import policy as policy_mod

    assets = tmp_path / "assets"
    monkeypatch.setattr(policy_mod, "ASSETS", assets)
    _policy("flow", seed=1).save(assets / "toy_policy")
    (assets / "toy_results.json").write_text('{"old": true}')
    out = tmp_path / "run"
    _policy("flow", seed=2).save(out / "pi0" / "policy")
    (out / "results.json").write_text('{"new": true}')

    def fail_midway(name):
        if name == "copied params.npz":
            raise OSError("disk full")

    monkeypatch.setattr(files, "stage", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        demo.ship(out, [JOBS["pi0"]])
    old = policy_mod.Policy.load(assets / "toy_policy")  # still the complete old policy
    assert sorted(p.name for p in assets.iterdir()) == ["toy_policy", "toy_results.json"]
    assert json.loads((assets / "toy_results.json").read_text()) == {"old": True}
    monkeypatch.setattr(files, "stage", lambda name: None)
    demo.ship(out, [JOBS["pi0"]], results_name=None)  # the policy only: the results stay the old ones
    assert json.loads((assets / "toy_results.json").read_text()) == {"old": True}
    demo.ship(out, [JOBS["pi0"]])
    new = policy_mod.Policy.load(assets / "toy_policy")
    assert not np.array_equal(np.asarray(old.model.action_in_proj.kernel[...]), np.asarray(new.model.action_in_proj.kernel[...]))
    assert json.loads((assets / "toy_results.json").read_text()) == {"new": True}


# --- launching ----------------------------------------------------------------------------------


def test_launch_without_affinity_and_without_bogus_xla_flag(tmp_path, monkeypatch):
    """macOS has no os.sched_getaffinity (before: AttributeError); `intra_op_parallelism_threads=1`
    is not an XLA flag (before: passed to every pinned worker)."""
    started = []

    class FakePopen:
        def __init__(self, cmd, env, preexec_fn):
            started.append((cmd, env, preexec_fn))
            self.returncode = 0

        def wait(self):
            return 0

    monkeypatch.setattr(demo.subprocess, "Popen", FakePopen)
    args = types.SimpleNamespace(sequential=False, steps=3, seed=0, batch_size=4, image_size=32, no_aux=False,
                                 episodes=4, eval_episodes=0, aligned=0)
    jobs = [JOBS["pi0"], JOBS["mse"]]
    demo.launch(args, tmp_path, jobs)
    for _, env, _ in started:
        assert "intra_op_parallelism_threads" not in env.get("XLA_FLAGS", "")
    started.clear()
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.delattr(os, "sched_setaffinity")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    demo.launch(args, tmp_path, jobs)
    assert len(started) == 2 and all(pre is None for _, _, pre in started)
    assert demo.usable_cores() == [0, 1]


def test_atomic_writes_have_ordinary_permissions(tmp_path):
    """mkstemp/mkdtemp make private files (0600/0700): shipped assets must stay readable."""
    mask = os.umask(0o022)
    try:
        files.atomic_write_text(tmp_path / "a.json", "{}")
        with files.atomic_directory(tmp_path / "d") as d:
            (d / "x").write_text("x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


# --- --policies ----------------------------------------------------------------------------------


def test_policies_option_selects_jobs_in_order_and_refuses_unknown_names(tmp_path, no_work, monkeypatch, capsys):
    trained = []
    monkeypatch.setattr(demo, "launch", lambda args, out, jobs: trained.append([j.name for j in jobs]))
    demo.main(["--out", str(tmp_path / "a")] + FAST)
    demo.main(["--out", str(tmp_path / "b"), "--policies", "mse,pi0_noaux"] + FAST)
    demo.main(["--out", str(tmp_path / "c"), "--ablation"] + FAST)
    assert trained == [["pi0", "mse"], ["mse", "pi0_noaux"], ["pi0", "mse", "pi0_noaux"]]
    results = json.loads((tmp_path / "c" / "results.json").read_text())
    assert sorted(results["policies"]) == ["mse", "pi0", "pi0_noaux"]
    assert results["ablation_no_aux"]["pi0"] == results["policies"]["pi0_noaux"]  # the old key still works
    for bad, msg in [("pi0,nope", "unknown policy 'nope'"), ("pi0,pi0", "twice"), (",", "at least one")]:
        with pytest.raises(SystemExit):
            demo.main(["--out", str(tmp_path / "d"), "--policies", bad] + FAST)
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "d").exists() or not (tmp_path / "d" / "run.json").exists()


def test_job_command_and_no_aux_scaling():
    """The worker receives the job's mode, name and aux weight; --no-aux zeroes every aux weight."""
    cmd = JOBS["pi0"].command(out="o", steps=7, seed=3, batch_size=8, image_size=32, position=1)
    args = dict(zip(cmd[2::2], cmd[3::2]))
    assert cmd[:2] == ["-m", "pi0lite.toy.demo_worker"]
    assert args == {"--out": "o", "--mode": "flow", "--name": "pi0", "--steps": "7", "--seed": "3",
                    "--batch-size": "8", "--aux-weight": "1.0", "--image-size": "32", "--position": "1",
                    "--episodes": "2500", "--task": "default", "--eval-episodes": "0", "--aligned": "300"}
    evaluating = JOBS["pi0_fork"].command(out="o", steps=7, seed=3, batch_size=8, image_size=32, position=1,
                                          episodes=40, eval_episodes=1000, aligned=300)
    args = dict(zip(evaluating[2::2], evaluating[3::2]))
    assert (args["--episodes"], args["--task"], args["--eval-episodes"]) == ("40", "fork", "1000")
    noaux = JOBS["pi0"].command(out="o", steps=7, seed=3, batch_size=8, image_size=32, position=1, aux_scale=0.0)
    assert noaux[noaux.index("--aux-weight") + 1] == "0.0"
    ablation = JOBS["pi0_noaux"].command(out="o", steps=1, seed=0, batch_size=1, image_size=32, position=0)
    assert ablation[ablation.index("--aux-weight") + 1] == "0.0"  # no grounding loss even without --no-aux
