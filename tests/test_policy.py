"""The policy wrapper: save/load round trip, raw-observation inference, the shipped checkpoint,
atomic saves (killed with SIGKILL mid-save) and the checks on load that name the file at fault."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from flax import nnx

from pi0lite.openpi import flatten_params

from pi0lite.toy import normalize
from pi0lite.config import TINY, GemmaConfig
from pi0lite.toy import env as toy
from pi0lite.toy.evaluate import evaluate, policy_fn
from pi0lite.pi0 import Pi0
from pi0lite.toy.policy import SHIPPED, Policy, load_shipped, upgrade
from pi0lite.toy.text import WordTokenizer

SMALL = TINY.replace(
    action_horizon=8,
    paligemma=GemmaConfig(width=16, depth=1, mlp_dim=32, num_heads=2, num_kv_heads=1, head_dim=8),
    action_expert=GemmaConfig(width=8, depth=1, mlp_dim=16, num_heads=2, num_kv_heads=1, head_dim=8),
)


def _policy(mode, seed=1):
    rng = np.random.default_rng(0)
    norm = {"state": normalize.compute_stats(rng.normal(size=(50, 4))),
            "actions": normalize.compute_stats(rng.normal(0.1, 0.05, size=(50, 8, 2)))}
    tok = WordTokenizer.from_texts([toy.instruction(c) for c in range(3)])
    return Policy(Pi0(SMALL, rngs=nnx.Rngs(seed)), norm, tok, mode=mode, num_steps=3, meta={"note": "test"})


@pytest.mark.parametrize("mode", ["flow", "mse"])
def test_save_load_roundtrip(tmp_path, mode):
    policy = _policy(mode)
    env = toy.BatchedToyEnv()
    obs = env.reset(toy.sample_scenes(np.random.default_rng(2), 3))
    key = jax.random.key(0)
    a = policy.infer(obs["image"], obs["state"], obs["instruction"], key)
    assert a.shape == (3, 8, 2) and np.all(np.isfinite(a))
    policy.save(tmp_path / "p")
    back = Policy.load(tmp_path / "p")
    assert back.mode == mode and back.num_steps == 3 and back.meta["note"] == "test"
    assert np.allclose(back.infer(obs["image"], obs["state"], obs["instruction"], key), a, atol=1e-6)


def test_bad_inputs(tmp_path):
    policy = _policy("mse")
    with pytest.raises(ValueError, match="same batch size"):
        policy.infer(np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 4)), ["go to the red square"], jax.random.key(0))
    with pytest.raises(ValueError, match="no policy checkpoint"):
        Policy.load(tmp_path)


def test_infer_rejects_nan_state_and_float_images():
    policy = _policy("mse")
    img, state = np.zeros((2, 32, 32, 3), np.uint8), np.zeros((2, 4), np.float32)
    texts = ["go to the red square"] * 2
    bad = state.copy()
    bad[1, 2] = np.nan  # before: NaN actions for that row, no error
    with pytest.raises(ValueError, match=r"state contains NaN or inf in rows \[1\]"):
        policy.infer(img, bad, texts, jax.random.key(0))
    with pytest.raises(ValueError, match="images must be uint8"):
        policy.infer(img.astype(np.float32), state, texts, jax.random.key(0))


# --- checks on load: each names the file -------------------------------------------------


def _saved(tmp_path, mode="mse"):
    d = tmp_path / "p"
    _policy(mode).save(d)
    return d


def _edit_json(path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def test_load_rejects_nan_params(tmp_path):
    d = _saved(tmp_path)
    with np.load(d / "params.npz") as z:
        flat = {k: z[k] for k in z.files}
    flat["action_out_proj/kernel"] = flat["action_out_proj/kernel"].copy()
    flat["action_out_proj/kernel"][0, 0] = np.nan
    np.savez(d / "params.npz", **flat)
    with pytest.raises(ValueError, match=r"params\.npz: NaN or inf in 1 parameters: action_out_proj/kernel"):
        Policy.load(d)


@pytest.mark.parametrize("field, value, pattern", [
    ("std", [np.nan, 1.0], "std contains NaN"),
    ("std", [0.0, 1.0], "std must be > 0"),
    # NormStats checks the lengths itself; under the test session's type-check hook its annotation
    # (mean and std share the axis d) catches the mismatch first, naming the axis
    ("mean", [0.0, 0.0, 0.0], "(one length|d=3)"),
])
def test_load_rejects_bad_norm_stats(tmp_path, field, value, pattern):
    d = _saved(tmp_path)
    _edit_json(d / "norm_stats.json", lambda s: s["actions"].__setitem__(field, value))
    with pytest.raises(ValueError, match=rf"(?s)norm_stats\.json.*{pattern}"):
        Policy.load(d)


def test_load_rejects_stats_of_the_wrong_width(tmp_path):
    d = _saved(tmp_path)
    three = {"mean": [0.0] * 3, "std": [1.0] * 3, "q01": [-1.0] * 3, "q99": [1.0] * 3, "kind": "zscore"}
    _edit_json(d / "norm_stats.json", lambda s: s.__setitem__("state", three))
    with pytest.raises(ValueError, match=r"norm_stats\.json: 'state' stats have width 3, the parameters were trained with 4"):
        Policy.load(d)


@pytest.mark.parametrize("edit, field", [
    (lambda c: c["model"].__setitem__("action_horizon", 16), "action_horizon: 8 vs 16"),
    (lambda c: c["model"].__setitem__("max_token_len", 12), "max_token_len: 8 vs 12"),
    (lambda c: c["policy"].__setitem__("mode", "flow"), "mode: 'mse' vs 'flow'"),
])
def test_load_rejects_config_that_disagrees_with_params(tmp_path, edit, field):
    d = _saved(tmp_path)
    _edit_json(d / "config.json", edit)
    with pytest.raises(ValueError, match=r"config\.json disagrees with the parameters") as e:
        Policy.load(d)
    assert field in str(e.value)


def test_load_rejects_another_tokenizer(tmp_path):
    d = _saved(tmp_path)
    WordTokenizer.from_texts(["go to the red circle", "go to the blue square"]).save(d / "tokenizer.json")
    with pytest.raises(ValueError, match=r"tokenizer\.json: not the tokenizer the policy was trained with"):
        Policy.load(d)
    (d / "tokenizer.json").write_text('{"truncated": ')
    with pytest.raises(ValueError, match=r"tokenizer\.json: unreadable"):
        Policy.load(d)


def test_load_rejects_truncated_files(tmp_path):
    d = _saved(tmp_path)
    (d / "config.json").write_text("")
    with pytest.raises(ValueError, match=r"config\.json: unreadable"):
        Policy.load(d)
    d = _saved(tmp_path / "b")
    (d / "params.npz").write_bytes((d / "params.npz").read_bytes()[:100])
    with pytest.raises(ValueError, match=r"params\.npz: unreadable"):
        Policy.load(d)


def test_old_checkpoint_is_refused_then_upgraded(tmp_path):
    d = _saved(tmp_path)
    with np.load(d / "params.npz") as z:
        flat = {k: z[k] for k in z.files if k != "policy/record"}
    np.savez(d / "params.npz", **flat)  # as written before the record existed
    with pytest.raises(ValueError, match=r"params\.npz: no 'policy/record'.*upgrade"):
        Policy.load(d)
    upgrade(d)
    back = flatten_params(Policy.load(d).model)
    assert all(np.array_equal(back[k], flat[k]) for k in back)


# --- atomic save: SIGKILL at every stage of a save over an existing policy -----------------

KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {tests!r})
    from pi0lite.toy import files
    from test_policy import _policy

    def stage(name):
        print(name, flush=True)
        if name == {stage!r}:
            time.sleep(600)  # the test kills us here

    files.stage = stage
    print("start", flush=True)
    _policy("flow", seed=2).save({target!r})
    print("done", flush=True)
""")


def _kill_during_save(target, stage):
    script = KILL_SCRIPT.format(tests=os.path.dirname(__file__), stage=stage, target=str(target))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if seen[-1] == stage:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert seen[-1] == stage, seen


@pytest.mark.parametrize("stage", ["params.npz", "synced", "old moved aside", "renamed"])
def test_save_killed_midway_leaves_a_loadable_policy(tmp_path, stage):
    """Before: files were written in place, a kill left 0-byte JSON / no npz (unloadable)."""
    old, new = _policy("flow", seed=1), _policy("flow", seed=2)
    target = tmp_path / "policy"
    old.save(target)
    _kill_during_save(target, stage)
    back = flatten_params(Policy.load(target).model)
    want = old if stage in ("params.npz", "synced", "old moved aside") else new
    ref = flatten_params(want.model)
    assert all(np.array_equal(back[k], ref[k]) for k in ref)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy"]  # leftovers cleaned up by load
    new.save(target)  # and saving again works
    assert np.array_equal(flatten_params(Policy.load(target).model)["action_in_proj/kernel"],
                          flatten_params(new.model)["action_in_proj/kernel"])


def test_save_that_fails_keeps_the_old_policy(tmp_path, monkeypatch):
    old = _policy("mse")
    old.save(tmp_path / "p")

    def boom(name):
        if name == "norm_stats.json":
            raise OSError("disk full")

    monkeypatch.setattr("pi0lite.toy.files.stage", boom)
    with pytest.raises(OSError, match="disk full"):
        _policy("mse", seed=5).save(tmp_path / "p")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]
    assert Policy.load(tmp_path / "p").meta["note"] == "test"


def test_shipped_checkpoint_still_succeeds():
    """The shipped policy (96.5 % success in make demo) on 60 fresh episodes.

    Bound: a policy with true success p = 0.75 reaches ≥ 51/60 (0.85) with probability
    P[Binom(60, 0.75) ≥ 51] = 0.045; a 96.5 % policy fails it with P[Binom(60, 0.965) ≤ 50] < 1e-4
    (evaluation is seeded, so the test is deterministic; these numbers say the bound can fail).
    """
    assert (SHIPPED / "params.npz").exists(), f"no shipped checkpoint in {SHIPPED}"
    policy = load_shipped()
    assert policy.mode == "flow" and policy.config == TINY
    metrics, _, _ = evaluate(policy_fn(policy), num_episodes=60, num_aligned=0, seed=7)
    assert metrics["success"] >= 51 / 60 and metrics["wrong"] == 0.0, metrics
