"""pi0-FAST: prompt layout and masks, loss mask, cached decoding, tokens <-> actions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pi0lite.config import GemmaConfig, VisionConfig
from pi0lite.fast import FastTokenizer
from pi0lite.fast.prompt import CharTokenizer, FastPrompt, discretize_state, fast_to_vocab
from pi0lite.masks import make_attn_mask
from pi0lite.pi0_fast import FastObservation, Pi0Fast, Pi0FastConfig

H, D, B = 4, 2, 2


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, H)[None, :, None]
    train = 0.7 * np.sin(2 * np.pi * (t * rng.uniform(0.2, 1.0, (300, 1, D)) + rng.uniform(0, 1, (300, 1, D))))
    fast = FastTokenizer.fit(train, vocab_size=300)
    text = CharTokenizer()
    vocab = text.vocab_size + fast.vocab_size + 4
    prompt = FastPrompt(text=text, fast=fast, vocab_size=vocab, max_token_len=64, skip=4)
    cfg = Pi0FastConfig(
        action_dim=D, action_horizon=H, max_token_len=64, vocab_size=vocab, image_keys=("cam",),
        paligemma=GemmaConfig(width=32, depth=2, mlp_dim=64, num_heads=2, num_kv_heads=1, head_dim=8),
        vision=VisionConfig(image_size=16, patch_size=8, width=16, depth=1, mlp_dim=32, num_heads=2),
    )
    model = Pi0Fast(cfg, rngs=nnx.Rngs(0))
    images = {"cam": rng.uniform(-1, 1, (B, 16, 16, 3)).astype(np.float32)}
    state = rng.uniform(-1, 1, (B, D)).astype(np.float32)
    actions = train[:B]
    return prompt, model, images, state, actions


def test_prompt_layout(setup):
    prompt, _, _, state, actions = setup
    tok = prompt.tokenize(["Pick_the RED cube ", "go"], state, actions)
    text = prompt.text.decode(tok["tokenized_prompt"][0])
    bins = " ".join(map(str, discretize_state(state[0])))
    assert text.startswith(f"Task: pick the red cube, State: {bins};\nAction: ")
    assert text.endswith("|")
    ids, mask, ar, loss = (tok[k][0] for k in ("tokenized_prompt", "tokenized_prompt_mask", "token_ar_mask", "token_loss_mask"))
    n = int(mask.sum())
    assert ids[0] == prompt.text.bos_id and ids[n - 1] == prompt.text.eos_id
    assert np.array_equal(ar.astype(bool), loss) and not loss[~mask].any()
    start = int(np.argmax(ar))
    assert prompt.text.decode(ids[:start]).endswith(";\n")
    assert discretize_state(np.array([-1.0, -0.999, 0.0, 0.999, 1.0, 3.0])).tolist() == [0, 0, 128, 255, 255, 255]
    np.testing.assert_array_equal(fast_to_vocab(fast_to_vocab([0, 5, 7], 100, 4), 100, 4), [0, 5, 7])


def test_prefix_lm_mask(setup):
    prompt, model, images, state, actions = setup
    tok = prompt.tokenize(["a", "b"], state, actions)
    obs = FastObservation.from_tokens(images, state, tok)
    _, input_mask, ar = model.embed_inputs(obs)
    mask = np.asarray(make_attn_mask(input_mask, ar))[0]
    n_img = model.config.num_image_tokens
    valid = np.asarray(input_mask[0])
    postfix = np.zeros_like(valid)
    postfix[n_img:] = tok["token_loss_mask"][0]
    prefix = valid & ~postfix
    assert mask[np.ix_(prefix, prefix)].all()  # bidirectional prefix (images + task text)
    assert not mask[np.ix_(prefix, postfix)].any()  # prefix never sees the actions
    assert mask[np.ix_(postfix, prefix)].all()
    p = np.flatnonzero(postfix)
    np.testing.assert_array_equal(mask[np.ix_(p, p)], np.tril(np.ones((len(p), len(p)), bool)))  # causal
    assert not mask[:, ~valid].any()


def test_loss_only_on_postfix(setup):
    prompt, model, images, state, actions = setup
    tok = prompt.tokenize(["a", "b"], state, actions)
    obs = FastObservation.from_tokens(images, state, tok)
    loss = np.asarray(model.compute_loss(None, obs))
    target, _ = model.token_logp(obs)
    m = tok["token_loss_mask"][:, 1:]
    np.testing.assert_allclose(loss, -(np.asarray(target) * m).sum(1) / m.sum(1), rtol=1e-6)
    # one loss slot per example, against log-softmax of the tied-embedding logits in numpy:
    # slot j predicts token j + 1 (a missing shift, a wrong mask or a wrong normaliser fails)
    pre = np.asarray(model.pre_logits(obs), np.float64)  # [b, L-1, w]
    table = np.asarray(model.llm.embedder.input_embedding[...], np.float64)  # [v, w]
    logits = pre @ table.T
    logp = logits - logits.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    ids = np.asarray(tok["tokenized_prompt"])
    one = np.zeros_like(tok["token_loss_mask"])
    picks = [int(np.flatnonzero(tok["token_loss_mask"][i])[1]) for i in range(len(ids))]
    for i, j in enumerate(picks):
        one[i, j] = True
    single = np.asarray(model.compute_loss(None, FastObservation.from_tokens(images, state, dict(tok, token_loss_mask=one))))
    expected = [-logp[i, j - 1, ids[i, j]] for i, j in enumerate(picks)]
    np.testing.assert_allclose(single, expected, rtol=1e-4, atol=1e-5)


def test_cached_equals_uncached_and_training_positions(setup):
    prompt, model, images, state, _ = setup
    tok = prompt.tokenize(["pick", "go left now"], state)
    obs = FastObservation.from_tokens(images, state, tok)
    for openpi in (False, True):
        cached = np.asarray(model.generate(None, obs, max_steps=5, openpi_positions=openpi))
        uncached = np.asarray(model.generate(None, obs, max_steps=5, use_cache=False, openpi_positions=openpi))
        np.testing.assert_array_equal(cached, uncached)
    # teacher forcing the generated tokens reproduces them: decode positions == training positions
    gen = np.asarray(model.generate(None, obs, max_steps=5))
    n = tok["tokenized_prompt_mask"].sum(1)
    ids = tok["tokenized_prompt"].copy()
    mask, ar = tok["tokenized_prompt_mask"].copy(), tok["token_ar_mask"].copy()
    for i in range(B):
        ids[i, n[i] : n[i] + 5], mask[i, n[i] : n[i] + 5], ar[i, n[i] : n[i] + 5] = gen[i], True, 1
    forced = FastObservation.from_tokens(images, state, dict(tokenized_prompt=ids, tokenized_prompt_mask=mask, token_ar_mask=ar))
    _, logp = model.token_logp(forced)
    pred = np.asarray(jnp.argmax(logp, -1))
    for i in range(B):
        np.testing.assert_array_equal(pred[i, n[i] - 1 : n[i] + 4], gen[i])


def test_tokens_to_actions_round_trip(setup):
    prompt, _, _, state, actions = setup
    tok = prompt.tokenize(["a", "b"], state, actions)
    gens = [ids[ar.astype(bool)] for ids, ar in zip(tok["tokenized_prompt"], tok["token_ar_mask"])]
    gen = np.zeros((B, max(map(len, gens)) + 3), np.int32)
    for i, g in enumerate(gens):
        gen[i, : len(g)] = g
    decoded, valid = prompt.extract_actions(gen)
    assert valid.all()
    expected, _ = prompt.fast.decode(prompt.fast.encode(actions))
    np.testing.assert_allclose(decoded, expected, atol=1e-12)
    assert np.abs(decoded - actions).max() < 0.1


def test_malformed_generations_invalid(setup):
    prompt, _, _, state, actions = setup
    tok = prompt.tokenize(["a"], state[:1], actions[:1])
    good = tok["tokenized_prompt"][0][tok["token_ar_mask"][0].astype(bool)].tolist()  # Action: … | EOS
    start = prompt._piece("Action: ")
    body = good[len(start) : -2]
    text_id = prompt.text.encode("x")[1]
    cases = [
        good,  # valid
        good[len(start):],  # no "Action: "
        start + body + [prompt.text.eos_id],  # no "|"
        start + body[:-1] + good[-2:],  # one FAST token missing
        start + body[:2] + [text_id] + body[2:] + good[-2:],  # text inside the action tokens
        start + good[-2:],  # no action tokens
        [prompt.text.eos_id],
    ]
    gen = np.zeros((len(cases), 64), np.int32)
    for i, c in enumerate(cases):
        gen[i, : len(c)] = c
    actions_out, valid = prompt.extract_actions(gen, zero_invalid=True)
    assert valid.tolist() == [True] + [False] * (len(cases) - 1)
    assert np.all(actions_out[1:] == 0)


def test_temperature_sampling_is_keyed(setup):
    prompt, model, images, state, _ = setup
    obs = FastObservation.from_tokens(images, state, prompt.tokenize(["a", "b"], state))
    a = np.asarray(model.generate(jax.random.key(1), obs, max_steps=4, temperature=1.0))
    b = np.asarray(model.generate(jax.random.key(1), obs, max_steps=4, temperature=1.0))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (B, 4) and (a >= 0).all() and (a < model.config.vocab_size).all()
    with pytest.raises(ValueError, match="greedy"):
        model.generate(None, obs, max_steps=2, temperature=1.0, use_cache=False)


def test_prompt_rejects_too_long_and_small_vocab(setup):
    prompt, _, _, state, actions = setup
    with pytest.raises(ValueError, match="max_token_len"):
        FastPrompt(text=prompt.text, fast=prompt.fast, vocab_size=prompt.vocab_size, max_token_len=20, skip=4).tokenize(
            ["a long task description"], state[:1], actions[:1]
        )
    with pytest.raises(ValueError, match="too small"):
        FastPrompt(text=prompt.text, fast=prompt.fast, vocab_size=200, max_token_len=64)
