"""The toy pipeline for pi0.5 + knowledge insulation: quantile stats per model, the discrete-state
prompt through the toy tokenizer, FAST targets, and KI training that is deterministic and resumable."""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest

from pi0lite.config import TINY, GemmaConfig
from pi0lite.prompt import pi05_prompt, tokenize_pi05
from pi0lite.toy import env as toy, normalize
from pi0lite.toy.curve import Curve, steps_to
from pi0lite.toy.data import build_dataset
from pi0lite.toy.pi05 import KIConfig, ki_setup, pi05_tokenizer
from pi0lite.toy.policy import Policy
from pi0lite.toy.text import WordTokenizer
from pi0lite.toy.train import TrainConfig, train

SMALL = TINY.replace(
    action_horizon=4,
    paligemma=GemmaConfig(width=16, depth=1, mlp_dim=32, num_heads=2, num_kv_heads=1, head_dim=8),
    action_expert=GemmaConfig(width=8, depth=1, mlp_dim=16, num_heads=2, num_kv_heads=1, head_dim=8),
)
KI = KIConfig(fast_vocab=128, max_fast_len=12)


@functools.lru_cache(maxsize=1)
def setup():
    ds = build_dataset(3, seed=0, horizon=SMALL.action_horizon)
    stats = normalize.dataset_stats(ds)
    return ds, stats, ki_setup(SMALL, ds, stats, KI)


def test_norm_kind_per_model():
    assert normalize.norm_kind(TINY) == "zscore" and normalize.norm_kind(TINY.replace(pi05=True)) == "quantile"
    ds, stats, (config, _, norm, _, arrays) = setup()
    assert config.pi05 and {s.kind for s in norm.values()} == {"quantile"}
    q01, q99 = np.quantile(ds.state.astype(np.float64), [0.01, 0.99], axis=0)  # by hand, not via NormStats
    expected = (ds.state - q01) / (q99 - q01 + 1e-6) * 2 - 1
    np.testing.assert_allclose(arrays["state"][:, :4], expected, atol=1e-4)


def test_toy_tokenizer_reads_the_state_prompt():
    tok = pi05_tokenizer()
    text = pi05_prompt("go to the red square", np.array([-3.0, 0.0, 0.5, 1.0]))
    ids = tok.encode(text)
    words = [tok.tok.id_to_token(i) for i in ids]
    assert words == ["[BOS]", "task", ":", "go", "to", "the", "red", "square", ",", "state", ":", "-1", "128", "192",
                     "255", ";", "\n", "action", ":"]
    assert tok.tok.token_to_id("[UNK]") not in ids
    # the plain tokenizer (pi0) is unchanged: whitespace words only, same vocabulary as before
    plain = WordTokenizer.from_texts([toy.instruction(c) for c in range(3)])
    assert plain.vocab_size == 11 and plain.encode("go to the red square") == [1, 5, 10, 9, 7, 9][:1] + plain.encode("go to the red square")[1:]


def test_training_tokens_equal_tokenize_pi05_and_fast_targets_decode():
    ds, _, (config, tok, norm, prompt, arrays) = setup()
    state = norm["state"].normalize(ds.state)
    ids, mask = tokenize_pi05(tok, ds.instructions, state, config.max_token_len)
    np.testing.assert_array_equal(arrays["tokens"], ids)
    np.testing.assert_array_equal(arrays["token_mask"], mask)
    # FAST targets: vocabulary ids above the text ids, then EOS; they decode back to the chunk
    fast, fmask = arrays["fast_tokens"], arrays["fast_mask"]
    n_real = fmask.sum(1)
    assert (fast[np.arange(len(fast)), n_real - 1] == tok.eos_id).all()
    body = [fast[i, : n_real[i] - 1] for i in range(len(fast))]
    assert all((b >= tok.vocab_size).all() and (b < config.vocab_size).all() for b in body)
    decoded, valid = prompt.fast.decode([(config.vocab_size - 1 - b).tolist() for b in body])
    assert valid.all()
    actions = norm["actions"].normalize(ds.actions)
    assert np.abs(decoded - actions).max() < 0.1  # FAST's rounding at scale 10


def test_ki_prefix_out_equals_the_prefix_of_pi0s_own_pass_and_feeds_the_grounding_head():
    """``return_prefix_out``: the VLM's prefix output in the KI pass (prefix + FAST tokens) equals the
    prefix output of ``Pi0.compute_loss``'s pass (prefix + suffix): the prefix sees neither. With
    ``aux_weight > 0`` the toy's KI objective adds the grounding loss on it."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from pi0lite.ki import ki_loss
    from pi0lite.toy.grounding import aux_loss
    from pi0lite.toy.train import Trainable, batch_observation, flow_loss, loss_fn

    _, _, (config, _, _, _, arrays) = setup()
    batch = {k: jnp.asarray(v[:3]) for k, v in arrays.items()}
    trainable = Trainable(config, rngs=nnx.Rngs(1))
    obs = batch_observation(batch, config.image_keys[0])
    key = jax.random.key(2)
    _, parts = ki_loss(trainable.pi0, key, obs, batch["actions"], batch["fast_tokens"], batch["fast_mask"],
                       return_prefix_out=True)
    _, reference = flow_loss(trainable.pi0, key, obs, batch["actions"])
    valid = np.concatenate([np.ones((3, config.num_image_tokens), bool), np.asarray(batch["token_mask"])], 1)
    np.testing.assert_allclose(np.asarray(parts["prefix_out"])[valid], np.asarray(reference)[valid], atol=1e-5)
    assert "prefix_out" not in ki_loss(trainable.pi0, key, obs, batch["actions"], batch["fast_tokens"],
                                       batch["fast_mask"])[1]
    with_aux, _ = loss_fn(trainable, batch, key, mode="ki", aux_weight=0.5)
    without, _ = loss_fn(trainable, batch, key, mode="ki", aux_weight=0.0)
    token = config.num_image_tokens + batch["aux_pos"]
    grounding = aux_loss(trainable.aux(reference, token), batch["aux_target"])
    assert float(grounding) > 0
    np.testing.assert_allclose(float(with_aux - without), 0.5 * float(grounding), rtol=1e-4)


CFG = TrainConfig(mode="ki", steps=4, batch_size=4, warmup_steps=1, aux_weight=0.0)


@functools.lru_cache(maxsize=None)
def full_run(insulate: bool) -> np.ndarray:
    _, _, (config, _, _, _, arrays) = setup()
    return train(config, dataclasses.replace(CFG, insulate=insulate), arrays, progress=False).history


def test_ki_training_is_deterministic_and_resumable(tmp_path):
    _, _, (config, _, _, _, arrays) = setup()
    full = full_run(True)
    np.testing.assert_array_equal(train(config, CFG, arrays, progress=False).history, full)
    train(config, CFG, arrays, ckpt_dir=tmp_path, ckpt_every=2, stop_after=2, progress=False)
    resumed = train(config, CFG, arrays, ckpt_dir=tmp_path, ckpt_every=2, progress=False)
    np.testing.assert_allclose(resumed.history, full, rtol=1e-6)
    assert np.all(np.isfinite(full)) and full[:, 1].min() > 0  # the FAST column is recorded


def test_insulate_changes_training():
    insulated, mixed = full_run(True), full_run(False)
    np.testing.assert_array_equal(insulated[0], mixed[0])  # step 0: same parameters, same loss
    assert not np.array_equal(insulated[1:], mixed[1:])  # the flow gradient into the VLM changes later steps


def test_curve_and_steps_to_80(tmp_path):
    assert steps_to([{"step": 500, "success": 0.5}, {"step": 1000, "success": 0.8}, {"step": 1500, "success": 0.9}]) == 1000
    assert steps_to([{"step": 500, "success": 0.79}]) is None
    _, _, (config, tok, norm, _, arrays) = setup()
    curve = Curve(tmp_path / "curve.json", lambda m: Policy(m, norm, tok), every=2, episodes=3,
                  execute=SMALL.action_horizon)
    train(config, CFG, arrays, ckpt_dir=tmp_path / "ckpt", ckpt_every=2, progress=False, on_checkpoint=curve)
    saved = json.loads((tmp_path / "curve.json").read_text())
    assert [p["step"] for p in saved["points"]] == [2, 4] and "steps_to_80" in saved
    assert all(abs(sum(p[k] for k in ("success", "crash", "wrong", "timeout")) - 1) < 1e-9 for p in saved["points"])


def test_pi05_policy_puts_the_state_in_the_prompt(tmp_path):
    ds, _, (config, tok, norm, _, arrays) = setup()
    result = train(config, CFG, arrays, progress=False)
    policy = Policy(result.trainable.pi0, norm, tok)
    policy.save(tmp_path / "p")
    loaded = Policy.load(tmp_path / "p")
    obs = loaded.observation(ds.images[:3], ds.state[:3], ds.instructions[:3])
    np.testing.assert_array_equal(np.asarray(obs.tokenized_prompt), arrays["tokens"][:3])
    out = loaded.infer(ds.images[:3], ds.state[:3], ds.instructions[:3], __import__("jax").random.key(0))
    assert out.shape == (3, SMALL.action_horizon, 2)


def test_too_few_fast_slots_are_refused_not_cut():
    """Fewer FAST slots than a chunk's tokens + EOS is an error naming the setting (never a silent cut)."""

    ds, stats, (_, _, _, _, arrays) = setup()
    need = int(arrays["fast_mask"].sum(1).max())
    with pytest.raises(ValueError, match=f"needs {need} FAST slots.*max_fast_len={need - 1}"):
        ki_setup(SMALL, ds, stats, dataclasses.replace(KI, max_fast_len=need - 1))


@pytest.mark.parametrize("job, scale, slots", [("pi05_ki", 10.0, 16), ("pi05_ki_fine", 20.0, 24)])
def test_demo_worker_ki_settings_come_from_the_job(job, scale, slots):
    """The worker's exact command line of each KI job gives the README's FAST settings: no flag means
    KIConfig's defaults (scale 10, 16 slots), pi05_ki_fine's flags give scale 20 and 24 slots."""
    from pi0lite.toy import demo_worker, jobs

    cmd = jobs.JOBS[job].command(out="x", steps=1, seed=0, batch_size=2, image_size=32, position=0)
    args = demo_worker.make_parser().parse_args(cmd[2:])  # drop "-m pi0lite.toy.demo_worker"
    ki = demo_worker.ki_config(args)
    assert (ki.fast_scale, ki.max_fast_len) == (scale, slots)
    assert dataclasses.replace(ki, fast_scale=10.0, max_fast_len=16) == KIConfig()  # the rest: defaults
