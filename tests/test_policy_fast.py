"""pi0-FAST on the toy task: training arrays, loss, training/resume, the Policy's save/load and decoding."""

import json
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from pi0lite.config import TINY
from pi0lite.pi0_fast import Pi0Fast
from pi0lite.toy import fast_prompt, normalize
from pi0lite.toy.data import build_dataset
from pi0lite.toy.policy import Policy
from pi0lite.toy.scene import COLOURS
from pi0lite.toy.train import TrainConfig, train
from pi0lite.toy.train_fast import batch_observation, token_loss, train_fast, training_arrays


@pytest.fixture(scope="module")
def setup():
    ds = build_dataset(6, seed=3)
    norm = {k: normalize.compute_stats(getattr(ds, k), kind="quantile") for k in ("state", "actions")}
    fast = fast_prompt.fit_fast(norm["actions"].normalize(ds.actions), vocab_size=300)
    prompt = fast_prompt.make_prompt(fast_prompt.text_tokenizer(), fast)
    cfg = fast_prompt.model_config(prompt, TINY)
    return ds, norm, prompt, cfg, training_arrays(ds, prompt, norm)


def test_prompt_words_and_postfix_round_trip(setup):
    ds, norm, prompt, cfg, arrays = setup
    text = prompt.text
    assert text.decode(arrays["tokens"][0][: fast_prompt.prompt_length(prompt)]).startswith("task: go to the ")
    # the colour word sits where the grounding head reads
    words = [text.decode([t]) for t in arrays["tokens"][np.arange(len(ds)), arrays["aux_pos"]]]
    assert words == [COLOURS[g] for g in ds.scenes.goal[ds.episode]]
    # the loss-masked postfix is "action:" FAST… "|" EOS and decodes back to the normalised chunk
    i = len(ds) // 2
    post = arrays["tokens"][i][arrays["token_loss"][i]]
    assert text.decode(post[:1]) == "action:" and text.decode(post[-2:-1]) == "|" and post[-1] == text.eos_id
    actions, valid = prompt.fast.decode([(prompt.vocab_size - 1 - prompt.skip - post[1:-2]).tolist()])
    assert valid.all()
    assert np.abs(actions[0] - norm["actions"].normalize(ds.actions[i])).max() < 0.15  # scale 10 quantisation
    assert cfg.max_token_len >= arrays["token_mask"].sum(1).max()


def test_token_loss_is_pi0_fast_compute_loss(setup):
    *_, cfg, arrays = setup
    model = Pi0Fast(cfg, rngs=nnx.Rngs(1))
    batch = {k: v[:4] for k, v in arrays.items()}
    obs = batch_observation(batch, cfg.image_keys[0])
    loss, pre = nnx.jit(token_loss)(model, obs)
    np.testing.assert_allclose(loss, np.mean(nnx.jit(lambda m, o: m.compute_loss(None, o))(model, obs)), rtol=1e-5)
    assert pre.shape == (4, cfg.max_token_len - 1, cfg.paligemma.width)


def test_train_modes_are_kept_apart(setup):
    *_, cfg, arrays = setup
    with pytest.raises(ValueError, match="train_fast"):
        train(TINY, TrainConfig(mode="fast", steps=1), {})
    with pytest.raises(ValueError, match="mode='fast'"):
        train_fast(cfg, TrainConfig(mode="flow", steps=1), arrays)


def test_train_resume_and_policy_round_trip(setup, tmp_path):
    ds, norm, prompt, cfg, arrays = setup
    tcfg = TrainConfig(mode="fast", steps=3, batch_size=8, warmup_steps=1)
    whole = train_fast(cfg, tcfg, arrays, progress=False)
    train_fast(cfg, tcfg, arrays, ckpt_dir=tmp_path / "ckpt", stop_after=1, progress=False)
    resumed = train_fast(cfg, tcfg, arrays, ckpt_dir=tmp_path / "ckpt", progress=False)
    np.testing.assert_allclose(resumed.history, whole.history, rtol=1e-5)
    assert whole.history.shape == (3, 2) and np.all(np.isfinite(whole.history))

    policy = Policy.fast(whole.trainable.pi0_fast, norm, prompt, meta={"train_steps": 3})
    policy.save(tmp_path / "policy")
    loaded = Policy.load(tmp_path / "policy")
    assert loaded.mode == "fast" and loaded.meta["train_steps"] == 3
    args = ds.images[:3], ds.state[:3], ds.instructions[:3]
    a, b = policy.infer(*args, jax.random.key(0)), loaded.infer(*args, jax.random.key(0))
    assert a.shape == (3, 16, 2)
    np.testing.assert_array_equal(a, b)
    assert loaded.fast_part.chunks == 3 and 0 <= loaded.fast_part.invalid <= 3

    # a FAST tokenizer from another fit is refused, naming fast/
    other = fast_prompt.fit_fast(norm["actions"].normalize(ds.actions[::2]), vocab_size=290)
    shutil.rmtree(tmp_path / "policy" / "fast")
    other.save(tmp_path / "policy" / "fast")
    with pytest.raises(ValueError, match="fast"):
        Policy.load(tmp_path / "policy")


def test_generated_tokens_become_raw_actions_and_invalid_ones_hold_still(setup):
    ds, norm, prompt, cfg, arrays = setup
    policy = Policy.fast(Pi0Fast(cfg, rngs=nnx.Rngs(0)), norm, prompt)
    part = policy.fast_part
    n = fast_prompt.prompt_length(prompt)
    good = arrays["tokens"][:2, n:]  # what a perfect model would write: "action:" FAST… "|" EOS
    bad = good.copy()
    bad[1, 0] = prompt.text.eos_id  # no "action:" marker
    raw = part.actions(bad, norm["actions"])
    assert (part.chunks, part.invalid) == (2, 1)
    assert np.all(raw[1] == 0.0)  # hold still (zero velocity), not the mid-range action
    assert np.abs(raw[0] - ds.actions[0]).max() < 0.15 * np.max(norm["actions"].q99 - norm["actions"].q01)
    part.reset_counts()
    assert (part.chunks, part.invalid) == (0, 0)
    with pytest.raises(ValueError, match="FastPrompt"):
        Policy(policy.model, norm, prompt.text, mode="fast")


def test_policy_config_names_the_mode(setup, tmp_path):
    *_, norm, prompt, cfg, _ = setup[0], setup[1], setup[2], setup[3], setup[4]
    Policy.fast(Pi0Fast(cfg, rngs=nnx.Rngs(0)), norm, prompt).save(tmp_path / "p")
    saved = json.loads((tmp_path / "p" / "config.json").read_text())
    assert saved["policy"]["mode"] == "fast" and saved["model"]["vocab_size"] == prompt.vocab_size


def test_demo_job_trains_ships_and_reports_invalid_decodes(tmp_path, monkeypatch):
    """``--policies pi0_fast``: the registered worker trains from the demo's data.npz, the policy
    (with its fast/ directory) is shipped atomically and the demo reports the invalid-decode rate."""
    import types

    from pi0lite.toy import demo, fast_job, policy as policy_mod
    from pi0lite.toy.data import save_dataset
    from pi0lite.toy.jobs import JOBS

    out = tmp_path / "run"
    out.mkdir()
    save_dataset(build_dataset(3, seed=1), out / "data.npz")
    job = JOBS["pi0_fast"]
    cmd = job.command(out=str(out), steps=2, seed=0, batch_size=4, image_size=32, position=0)
    assert cmd[:2] == ["-m", "pi0lite.toy.fast_job"]
    fast_job.main(cmd[2:])
    how = types.SimpleNamespace(eval_episodes=3, aligned=0, image_size=32)
    results, _, _ = demo.evaluate_all(how, out, [job.name])  # evaluated here: the job did not
    m = results[job.name]
    assert m["train_steps"] == 2 and m["decoded_chunks"] > 0 and 0.0 <= m["invalid_decode_rate"] <= 1.0
    assert not (out / job.name / "eval.json").exists()
    fast_job.main(cmd[2:] + ["--eval-episodes", "3", "--aligned", "0"])  # resumes (nothing to train), evaluates
    by_job, _, _ = demo.evaluate_all(how, out, [job.name])
    assert (out / job.name / "eval.json").exists()
    assert {k: v for k, v in by_job[job.name].items() if k != "eval_seconds"} == \
        {k: v for k, v in m.items() if k != "eval_seconds"}
    (out / "results.json").write_text(json.dumps({"policies": results}))
    assets = tmp_path / "assets"
    monkeypatch.setattr(policy_mod, "ASSETS", assets)
    demo.ship(out, [job])
    shipped = Policy.load(assets / job.asset)
    assert shipped.mode == "fast" and (assets / job.asset / "fast" / "fast_config.json").is_file()


def test_shipped_fast_policy_and_its_results():
    """The shipped checkpoint loads as pi0-FAST and writes valid chunks; its results file is consistent."""
    from pi0lite.toy import env as toy
    from pi0lite.toy.evaluate import eval_scenes
    from pi0lite.toy.policy import ASSETS, load_shipped

    policy = load_shipped("fast")
    assert policy.mode == "fast" and policy.meta["train_steps"] == 5000
    results = json.loads((ASSETS / "toy_fast_results.json").read_text())
    m = results["pi0_fast"]
    assert m["invalid_decode_rate"] == pytest.approx(m["invalid_chunks"] / m["decoded_chunks"])
    assert m["episodes"] == 1000 and m["aligned_episodes"] == 300
    assert m["success"] + m["crash"] + m["wrong"] + m["timeout"] == pytest.approx(1.0)
    scenes, _ = eval_scenes(6, 0)
    obs = toy.BatchedToyEnv().reset(scenes)
    chunk = policy.infer(obs["image"], obs["state"], obs["instruction"], jax.random.key(0))
    assert chunk.shape == (6, 16, 2) and policy.fast_part.invalid <= 1  # 2.4 % invalid over the evaluation
