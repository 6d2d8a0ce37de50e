"""Issue 9 §2: the FAST tokenizer's edge cases are clear errors (or an empty result), never silent."""

import json

import numpy as np
import pytest

from pi0lite.fast import FastTokenizer


@pytest.fixture(scope="module")
def chunks():
    return np.random.default_rng(0).uniform(-1, 1, (60, 8, 2))


@pytest.fixture(scope="module")
def tok(chunks):
    return FastTokenizer.fit(chunks, vocab_size=200)


def test_encoding_zero_chunks_gives_an_empty_result(tok):
    assert tok.encode(np.zeros((0, 8, 2))) == []
    assert tok.encode([]) == []
    actions, valid = tok.decode([])
    assert actions.shape == (0, 8, 2) and valid.shape == (0,)


@pytest.mark.parametrize("vocab_size", [0, -5, 2.5, True])
def test_vocab_size_must_be_a_positive_int(chunks, vocab_size):
    # ValueError from fit; under the jaxtyping/beartype test hook a float is refused first (TypeError)
    with pytest.raises((ValueError, TypeError), match="vocab_size"):
        FastTokenizer.fit(chunks, vocab_size=vocab_size)


def test_vocab_size_below_the_alphabet_is_refused_not_enlarged(chunks):
    """Asking for 20 ids used to return a tokenizer with ~100: more ids than the model has room for."""
    with pytest.raises(ValueError, match=r"vocab_size=20 is smaller than the \d+ symbols the BPE starts from"):
        FastTokenizer.fit(chunks, vocab_size=20)


def test_truncated_files_name_the_path(tok, tmp_path):
    path = tok.save(tmp_path / "fast")
    bpe_file = path / "tokenizer.json"
    bpe_file.write_bytes(bpe_file.read_bytes()[:100])
    cfg = json.loads((path / "fast_config.json").read_text())
    (path / "fast_config.json").write_text(json.dumps({**cfg, "tokenizer_sha256": None}))  # get past the pairing check
    with pytest.raises(ValueError, match=rf"{bpe_file}: cannot read the BPE tokenizer"):
        FastTokenizer.load(path)
    config_file = path / "fast_config.json"
    config_file.write_text('{"scale": 10.0, "vocab')
    with pytest.raises(ValueError, match=rf"{config_file}: not a valid FAST tokenizer config"):
        FastTokenizer.load(path)


def test_config_paired_with_another_tokenizers_bpe_is_refused(tok, chunks, tmp_path):
    other = FastTokenizer.fit(chunks[::-1] * 0.5, vocab_size=150)
    a, b = tok.save(tmp_path / "a"), other.save(tmp_path / "b")
    (a / "tokenizer.json").write_bytes((b / "tokenizer.json").read_bytes())
    with pytest.raises(ValueError, match=r"tokenizer.json is not the tokenizer saved with .*fast_config.json"):
        FastTokenizer.load(a)
    again = FastTokenizer.load(b)  # an untouched pair still loads and round-trips
    assert again.encode(chunks[:3]) == other.encode(chunks[:3])
