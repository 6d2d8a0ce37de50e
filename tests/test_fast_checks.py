"""The notebook-07/08 checks accept correct answers and reject realistic wrong ones."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft
from flax import nnx

from pi0lite.course.checks import (
    check_bpe_merge_step,
    check_dct_matrix,
    check_decode_step,
    check_fast_masks,
    check_quantise_flatten,
)
from pi0lite.course.checks.bpe import _merge_step


def _rejects(check, fn, *fragments, **kw):
    with pytest.raises(AssertionError) as info:
        check(fn, **kw) if not isinstance(kw.get("args"), tuple) else check(fn, *kw["args"])
    for f in fragments:
        assert f in str(info.value), str(info.value)


def _dct(n, *, norm="ortho", transpose=False):
    m = scipy.fft.dct(np.eye(n), axis=0, norm=norm)
    return m.T if transpose else m


def test_dct_matrix(capsys):
    check_dct_matrix(_dct)
    assert "✓ dct_matrix" in capsys.readouterr().out
    _rejects(check_dct_matrix, lambda n: _dct(n, norm=None), "orthonormal")
    _rejects(check_dct_matrix, lambda n: _dct(n, transpose=True), "transpose")
    _rejects(check_dct_matrix, lambda n: np.sqrt(2 / n) * np.cos(np.pi * (2 * np.arange(n)[None] + 1) * np.arange(n)[:, None] / (2 * n)), "1/sqrt(2)")


def _qf(x, scale, *, axis=1, dim_first=False, trunc=False, raw=False):
    c = x if raw else scipy.fft.dct(x, axis=axis, norm="ortho")
    q = (np.trunc if trunc else np.around)(c * scale).astype(np.int64)
    if dim_first:
        q = np.swapaxes(q, 1, 2)
    return q.reshape(len(x), -1)


def test_quantise_flatten(capsys):
    from pi0lite.fast import dct_quantise

    check_quantise_flatten(lambda x, s: dct_quantise(x, s).reshape(len(x), -1))
    assert "✓ quantise_flatten" in capsys.readouterr().out
    _rejects(check_quantise_flatten, lambda x, s: _qf(x, s, dim_first=True), "frequency first")
    _rejects(check_quantise_flatten, lambda x, s: _qf(x, s, axis=2), "along time")
    _rejects(check_quantise_flatten, lambda x, s: _qf(x, s, trunc=True), "truncates")
    _rejects(check_quantise_flatten, lambda x, s: _qf(x, s, raw=True), "not the raw actions")


@pytest.mark.parametrize(
    "rounding, hint",
    [(lambda c: np.floor(c + 0.5), "rounds halves up"), (lambda c: np.sign(c) * np.floor(np.abs(c) + 0.5), "away from zero")],
)
def test_quantise_flatten_rejects_other_rounding_of_halves(rounding, hint):
    from pi0lite.course.checks.fast import _exact_halves

    assert len(_exact_halves()) == 2  # the exact-half cases are really in the check
    wrong = lambda x, s: rounding(scipy.fft.dct(x, axis=1, norm="ortho") * s).astype(np.int64).reshape(len(x), -1)
    _rejects(check_quantise_flatten, wrong, "Round half to even", hint)


def test_bpe_merge_step(capsys):
    check_bpe_merge_step(_merge_step)
    assert "✓ bpe_merge_step" in capsys.readouterr().out

    def only_first(seqs):
        pair, _ = _merge_step(seqs)
        out = []
        for s in seqs:
            s = list(s)
            for i in range(len(s) - 1):
                if (s[i], s[i + 1]) == pair:
                    s[i : i + 2] = [s[i] + s[i + 1]]
                    break
            out.append(s)
        return pair, out

    def set_counts(seqs):  # counts each pair once per sequence
        from collections import Counter

        c = Counter(p for s in seqs for p in set(zip(s[:-1], s[1:])))
        best = max(c.values())
        pair = min(p for p, v in c.items() if v == best)
        return pair, _merge_step(seqs)[1]

    def max_tie(seqs):
        from collections import Counter

        c = Counter(p for s in seqs for p in zip(s[:-1], s[1:]))
        best = max(c.values())
        pair = max(p for p, v in c.items() if v == best)
        return pair, _scan_merge(seqs, pair)  # merge with the chosen pair, left to right

    _rejects(check_bpe_merge_step, only_first, "every occurrence")
    _rejects(check_bpe_merge_step, set_counts, "Count every adjacent position")
    _rejects(check_bpe_merge_step, max_tie, "smallest")


def _scan_merge(seqs, pair):
    out = []
    for s in seqs:
        merged, i = [], 0
        while i < len(s):
            if i + 1 < len(s) and (s[i], s[i + 1]) == pair:
                merged, i = merged + [s[i] + s[i + 1]], i + 2
            else:
                merged, i = merged + [s[i]], i + 1
        out.append(merged)
    return out


def _most_common(seqs):  # ties broken by first occurrence
    from collections import Counter

    pair = Counter(p for s in seqs for p in zip(s[:-1], s[1:])).most_common(1)[0][0]
    return pair, _scan_merge(seqs, pair)


def _first_sequence_only(seqs):
    from collections import Counter

    c = Counter(zip(seqs[0][:-1], seqs[0][1:]))
    best = max(c.values())
    pair = min(p for p, v in c.items() if v == best)
    return pair, _scan_merge(seqs, pair)


def _across_boundaries(seqs):
    from collections import Counter

    flat = [sym for s in seqs for sym in s]
    c = Counter(zip(flat[:-1], flat[1:]))
    best = max(c.values())
    pair = min(p for p, v in c.items() if v == best)
    return pair, _scan_merge(seqs, pair)


def _string_replace(seqs):
    from collections import Counter

    c = Counter(p for s in seqs for p in zip(s[:-1], s[1:]))
    best = max(c.values())
    a, b = min(p for p, v in c.items() if v == best)
    return (a, b), [" ".join(s).replace(f"{a} {b}", a + b).split() for s in seqs]


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (_most_common, "not the first one seen"),
        (_first_sequence_only, "not only of the first one"),
        (_across_boundaries, "do not join the sequences"),
        (_string_replace, "not by replacing text in a joined string"),
    ],
)
def test_bpe_merge_step_rejects_the_four_wrong_merges(wrong, hint):
    _rejects(check_bpe_merge_step, wrong, hint)


def test_bpe_merge_step_agrees_with_tokenizers():
    """The hand-written step picks the same first merge as the ``tokenizers`` trainer on a tie-free corpus."""
    from tokenizers import Tokenizer, models, trainers

    corpus = ["aaabdaaabac", "aabd", "aab"]
    tok = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(vocab_size=100, min_frequency=1, show_progress=False, special_tokens=[])
    tok.train_from_iterator(corpus, trainer=trainer)
    import json

    merges = json.loads(tok.to_str())["model"]["merges"]
    first = tuple(merges[0].split(" ")) if isinstance(merges[0], str) else tuple(merges[0])
    assert first == _merge_step([list(s) for s in corpus])[0]


def test_fast_masks(capsys):
    def ref(pre, post, L):
        pos = np.arange(L)[None]
        valid = pos < (pre + post)[:, None]
        p = (pos >= pre[:, None]) & valid
        return valid, p.astype(int), p

    check_fast_masks(ref)
    assert "✓ fast_masks" in capsys.readouterr().out

    def loss_everywhere(pre, post, L):
        v, a, _ = ref(pre, post, L)
        return v, a, v

    def off_by_one(pre, post, L):
        return ref(pre - 1, post + 1, L)

    def ar_on_padding(pre, post, L):
        v, a, p = ref(pre, post, L)
        return v, (np.arange(L)[None] >= pre[:, None]).astype(int), p

    _rejects(check_fast_masks, loss_everywhere, "loss_mask")
    _rejects(check_fast_masks, off_by_one, "mask is wrong")
    _rejects(check_fast_masks, ar_on_padding, "ar_mask")


@pytest.fixture(scope="module")
def decode_setup():
    from pi0lite.config import GemmaConfig, VisionConfig
    from pi0lite.fast.decode import prefill
    from pi0lite.pi0_fast import FastObservation, Pi0Fast, Pi0FastConfig

    cfg = Pi0FastConfig(
        action_dim=2, action_horizon=4, max_token_len=8, vocab_size=64, image_keys=("cam",),
        paligemma=GemmaConfig(width=32, depth=2, mlp_dim=64, num_heads=2, num_kv_heads=1, head_dim=8),
        vision=VisionConfig(image_size=16, patch_size=8, width=16, depth=1, mlp_dim=32, num_heads=2),
    )
    model = Pi0Fast(cfg, rngs=nnx.Rngs(1))
    rng = np.random.default_rng(0)
    ids = np.array([[2, 5, 9, 11, 0, 0, 0, 0], [2, 7, 8, 9, 10, 12, 0, 0]])
    obs = FastObservation.from_tokens(
        {"cam": rng.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)}, np.zeros((2, 2), np.float32),
        dict(tokenized_prompt=ids, tokenized_prompt_mask=ids > 0),
    )
    logits, kv, mask = prefill(model, obs, 4)
    return model, jnp.argmax(logits, -1).astype(jnp.int32), kv, mask


def _student_step(model, token, kv, mask, step, *, offset=0, slot_shift=0, include_new=True, only_current=False):
    b, n = mask.shape
    s = kv[0].shape[2]
    x = model.llm.embedder.encode(token[:, None])
    pos = (jnp.sum(mask, 1) + step + offset)[:, None]
    cols = jnp.arange(s)
    new = (cols >= n) & ((cols <= n + step) if include_new else (cols < n + step))
    if only_current:
        new = cols == n + step
    attn = (jnp.pad(mask, ((0, 0), (0, s - n))) | new[None])[:, None, :]
    (out,), kv = model.llm([x], positions=pos, mask=attn, kv_cache=kv, cache_index=n + step + slot_shift)
    return model.llm.embedder.decode(out)[:, 0], kv


def test_decode_step(decode_setup, capsys):
    model, token, kv, mask = decode_setup
    args = (model, token, kv, mask, 1)
    check_decode_step(_student_step, *args)
    assert "✓ decode_step" in capsys.readouterr().out
    _rejects(check_decode_step, lambda *a: _student_step(*a, offset=1), "off-by-one", args=args)
    _rejects(check_decode_step, lambda *a: _student_step(*a, slot_shift=-1), "nowhere else", args=args)
    _rejects(check_decode_step, lambda *a: _student_step(*a, include_new=False), "including the new one", args=args)


def test_decode_step_called_at_step_0_still_checks_later_steps(decode_setup, capsys):
    """Attending to the current slot alone is right at step 0 only; the check goes on to steps 1, 2."""
    model, token, kv, mask = decode_setup
    args = (model, token, kv, mask, 0)
    check_decode_step(_student_step, *args)
    assert "✓ decode_step: 3/3" in capsys.readouterr().out
    _rejects(check_decode_step, lambda *a: _student_step(*a, only_current=True), "step 1", "not only slot n + step", args=args)
