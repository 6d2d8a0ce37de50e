"""FAST tokenizer: reference-exact on the golden data, safe default, never silently wrong."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest

from pi0lite.fast import bpe as fast_bpe
from pi0lite.fast import FastTokenizer, dct_quantise, dequantise_idct


def _load_make_chunks(fast_dir):
    spec = importlib.util.spec_from_file_location("make_chunks", fast_dir / "make_chunks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def golden_data(fast_dir):
    mc = _load_make_chunks(fast_dir)
    tr_raw, ho_raw = mc.make_chunks(2000, 0), mc.make_chunks(1000, 1)
    golden = json.loads((fast_dir / "golden_seed0.json").read_text())
    return mc.quantile_normalize(tr_raw, tr_raw), mc.quantile_normalize(tr_raw, ho_raw), golden


@pytest.fixture(scope="module")
def ref_tok(golden_data):
    return FastTokenizer.fit(golden_data[0], alphabet="reference")


@pytest.fixture(scope="module")
def bytes_tok(golden_data):
    return FastTokenizer.fit(golden_data[0])


@pytest.fixture(scope="module")
def small_tok():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 10)[None, :, None]
    x = np.sin(2 * np.pi * (t * rng.uniform(0.2, 1.5, (200, 1, 3)) + rng.uniform(0, 1, (200, 1, 3))))
    return FastTokenizer.fit(0.8 * x, vocab_size=300), 0.8 * x


def test_reference_mode_matches_golden(ref_tok, golden_data, fast_dir):
    _, heldout, golden = golden_data
    assert (ref_tok.config.min_token, ref_tok.config.max_token) == (golden["min_token"], golden["max_token"])
    ref = json.loads((fast_dir / golden["tokenizer_file"]).read_text())["model"]
    mine = json.loads(ref_tok.bpe.to_str())["model"]
    assert mine["vocab"] == ref["vocab"] and mine["merges"] == ref["merges"]
    for v in golden["vectors"]:
        x = np.asarray(v["x"])[None]
        np.testing.assert_array_equal(dct_quantise(x, 10.0)[0], np.asarray(v["q"]))
        assert ref_tok.encode(x)[0] == v["ids"]
    ids = ref_tok.encode(heldout)
    agg = golden["aggregate"]
    assert np.mean([len(i) for i in ids]) == pytest.approx(agg["tokens_mean"], abs=1e-9)
    actions, valid = ref_tok.decode(ids)
    # the reference's silently corrupted chunks are reproduced, and flagged
    assert np.flatnonzero(~valid).tolist() == agg["silently_corrupted_indices"]
    err = np.abs(actions - heldout)[valid]
    assert err.max() == pytest.approx(agg["max_abs_err_clean"], rel=1e-9)
    assert np.sqrt(np.mean(err**2)) == pytest.approx(agg["rmse_clean"], rel=1e-6)


def test_bytes_mode_no_corruption_and_no_worse(bytes_tok, golden_data):
    _, heldout, golden = golden_data
    ids = bytes_tok.encode(heldout)
    assert np.mean([len(i) for i in ids]) <= golden["aggregate"]["tokens_mean"]
    actions, valid = bytes_tok.decode(ids)
    assert valid.all()
    assert np.abs(actions - heldout).max() == pytest.approx(golden["aggregate"]["quantisation_only_max_abs_err"], rel=1e-9)


def test_roundtrip_equals_quantisation_only(small_tok):
    tok, x = small_tok
    actions, valid = tok.decode(tok.encode(x))
    assert valid.all()
    np.testing.assert_allclose(actions, dequantise_idct(dct_quantise(x, 10.0), 10.0), atol=1e-12)


def test_slightly_outside_fitted_range_still_exact(small_tok):
    tok, x = small_tok
    y = x[:5] * 1.3  # coefficients beyond the fitted max/min
    q = dct_quantise(y, tok.config.scale)
    assert q.max() > tok.config.max_token or q.min() < tok.config.min_token
    actions, valid = tok.decode(tok.encode(y))
    assert valid.all()
    np.testing.assert_allclose(actions, dequantise_idct(q, tok.config.scale), atol=1e-12)


def test_save_load(small_tok, tmp_path):
    tok, x = small_tok
    tok.save(tmp_path / "fast")
    again = FastTokenizer.load(tmp_path / "fast")
    assert again.config == tok.config
    assert again.encode(x[:7]) == tok.encode(x[:7])
    with pytest.raises(ValueError, match="not a saved"):
        FastTokenizer.load(tmp_path)


def test_bad_inputs_raise(small_tok):
    tok, x = small_tok
    with pytest.raises(ValueError, match="3 dims"):
        tok.encode(x[0])
    with pytest.raises(ValueError, match="NaN"):
        tok.encode(np.where(np.arange(x[:2].size).reshape(x[:2].shape) == 3, np.nan, x[:2]))
    with pytest.raises(ValueError, match="fitted on"):
        tok.encode(x[:, :5])
    with warnings.catch_warnings(), pytest.raises(ValueError, match="normalised"):
        warnings.simplefilter("ignore")
        tok.encode(x[:2] * 100.0)
    with pytest.raises(ValueError, match="action_dim"):
        tok.decode(tok.encode(x[:1]), action_dim=4)


def test_unnormalised_warning_once(small_tok):
    tok, x = small_tok
    fresh = FastTokenizer(tok.config, tok.bpe)
    with pytest.warns(UserWarning, match="normalised"):
        fresh.encode(x[:1] + 1.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh.encode(x[:1] + 1.9)


def test_malformed_tokens_flagged(small_tok):
    tok, x = small_tok
    ids = tok.encode(x[:3])
    bad = [ids[0][:-1], ids[1] + [tok.vocab_size + 5], [-1] + ids[2], [], ids[0]]
    actions, valid = tok.decode(bad)
    assert valid.tolist() == [False, False, False, False, True]
    assert actions.shape == (5, 10, 3)
    zeroed, _ = tok.decode(bad, zero_invalid=True)
    assert np.all(zeroed[:4] == 0) and np.allclose(zeroed[4], actions[4])


def test_out_of_range_coefficient_flagged(small_tok):
    tok, _ = small_tok
    vocab = tok.bpe.get_vocab()
    lo, hi = tok.config.bounds
    # one character per coefficient: a huge zigzag code (far outside the range) then zeros
    big = chr(2 * (hi + 5))
    s = big + chr(0) * (10 * 3 - 1)
    ids = tok.bpe.encode(s).ids
    assert all(0 <= i < len(vocab) for i in ids)
    _, valid = tok.decode([ids])
    assert not valid[0]


@pytest.mark.parametrize("side", ["above", "below"])
def test_in_alphabet_but_out_of_range_coefficient_flagged(small_tok, side):
    """A coefficient one past the accepted range whose character's bytes are all BPE symbols:
    the ids are valid, the string has h·d characters, only the range check can flag it."""
    from tokenizers import pre_tokenizers

    tok, _ = small_tok
    c = tok.config
    lo, hi = c.bounds
    q_bad = hi + 1 if side == "above" else lo - 1
    q = np.zeros((1, c.action_horizon * c.action_dim), np.int64)
    q[0, 4] = q_bad
    string = fast_bpe.rows_to_strings(c.to_code_points(q))[0]
    symbols = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(string[4])[0][0]
    assert all(sym in tok.bpe.get_vocab() for sym in symbols), "test set-up: the character must be in the alphabet"
    ids = tok.bpe.encode(string).ids
    assert tok.bpe.decode(ids) == string  # in the alphabet: the BPE round-trips it exactly
    _, valid = tok.decode([ids])
    assert not valid[0]
    q[0, 4] = hi if side == "above" else lo  # the last accepted value is fine
    ok_ids = tok.bpe.encode(fast_bpe.rows_to_strings(c.to_code_points(q))[0]).ids
    assert tok.decode([ok_ids])[1][0]


def test_one_coefficient_too_many_is_invalid(small_tok):
    """A decoded string one character longer than h·d (every character in range) is not a chunk."""
    tok, x = small_tok
    c = tok.config
    q = tok.quantise(x[:1]).reshape(1, -1)
    string = fast_bpe.rows_to_strings(c.to_code_points(q))[0]
    ids = tok.bpe.encode(string + string[-1]).ids
    assert len(tok.bpe.decode(ids)) == c.action_horizon * c.action_dim + 1
    assert tok.decode([tok.bpe.encode(string).ids])[1][0]
    assert not tok.decode([ids])[1][0]


def test_bytes_every_accepted_integer_roundtrips(small_tok):
    tok, _ = small_tok
    c = tok.config
    lo, hi = c.bounds
    n = c.action_horizon * c.action_dim
    values = np.arange(lo, hi + 1)
    q = np.resize(values, (-(-len(values) // n), n))  # every accepted integer, in chunk-sized rows
    strings = fast_bpe.rows_to_strings(c.to_code_points(q))
    back = tok.bpe.decode_batch([e.ids for e in tok.bpe.encode_batch(strings)])
    assert back == strings
    np.testing.assert_array_equal(c.from_code_points(fast_bpe.strings_to_code_points(back)[0]), q.ravel())
    # the BPE starts from the needed byte symbols only, not all 256
    base = [t for t in tok.bpe.get_vocab() if len(t) == 1]
    assert len(base) < 256


def test_bytes_foreign_code_points_flagged(small_tok):
    tok, _ = small_tok
    c = tok.config
    n = c.action_horizon * c.action_dim
    assert c.radix < 64
    for foreign in (200, fast_bpe.RARE_BASE + 63, 0xFFFD):  # no integer maps to these
        assert c.from_code_points(np.array([foreign]))[0] == fast_bpe.NOT_A_CODE
        # a decoded string carrying such a character (placed directly, as if generated)
        actions, valid = tok.decode([tok.bpe.encode(chr(foreign) + chr(0) * (n - 1)).ids])
        assert not valid[0] and np.abs(actions).max() < 1e3  # flagged; best effort stays finite


def test_version1_bytes_file_loads_as_bytes_v1(small_tok, tmp_path):
    _, x = small_tok
    old = FastTokenizer.fit(x, vocab_size=300, alphabet="bytes_v1")
    assert len([t for t in old.bpe.get_vocab() if len(t) == 1]) == 256
    path = old.save(tmp_path / "v1")
    raw = json.loads((path / "fast_config.json").read_text())
    (path / "fast_config.json").write_text(json.dumps({**raw, "version": 1, "alphabet": "bytes"}))
    again = FastTokenizer.load(path)
    assert again.config == old.config and again.config.alphabet == "bytes_v1"
    ids = again.encode(x[:20])
    assert ids == old.encode(x[:20])
    assert again.decode(ids)[1].all()
