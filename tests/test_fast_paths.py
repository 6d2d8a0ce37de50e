"""The FAST tokenizer's fast paths give exactly what the ``tokenizers`` calls give.

Independent source: the Rust pre-tokenizer, ``Tokenizer.encode`` per chunk and
``Tokenizer.decode_batch`` (the reference processor's per-chunk calls).
"""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import pre_tokenizers

from pi0lite.fast import FastTokenizer
from pi0lite.fast import bpe as fast_bpe


def _pieces(s: str) -> list[str]:
    split = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True).pre_tokenize_str(s)
    return [s[a:b] for _, (a, b) in split]


def test_gpt2_split_matches_the_byte_level_pre_tokenizer():
    rng = np.random.default_rng(0)
    special = [ord(c) for c in " \t\n\x0b\x0c\r\x85\xa0'srtvemld0189aZ_!\x1c\x1f"] + [0xB2, 0xBA, 0x2C6, 0x660, 0x7FF]
    strings = ["".join(map(chr, range(i, min(i + 40, fast_bpe.SPLIT_LIMIT)))) for i in range(0, fast_bpe.SPLIT_LIMIT, 40)]
    for _ in range(400):
        n = int(rng.integers(1, 60))
        pool = rng.choice(special, n) if rng.random() < 0.6 else rng.integers(0, fast_bpe.SPLIT_LIMIT, n)
        strings.append("".join(map(chr, pool)))
    split = fast_bpe.gpt2_split()
    bad = [s for s in strings if split.findall(s) != _pieces(s)]
    assert not bad, f"{len(bad)} strings split differently, e.g. {bad[0]!r}"


def test_byte_level_chars_are_the_pre_tokenizers_alphabet():
    chars = fast_bpe.byte_level_chars()
    assert len(set(chars)) == 256 and set(chars) == set(pre_tokenizers.ByteLevel.alphabet())
    assert chars[ord("A")] == "A" and chars[ord(" ")] == "\u0120"  # 'Ġ', the byte-level space


@pytest.fixture(scope="module")
def tokenizers():
    rng = np.random.default_rng(1)
    t = np.linspace(0, 1, 20)[None, :, None]
    x = np.sin(2 * np.pi * (t * rng.uniform(0.2, 2.5, (400, 1, 4)) + rng.uniform(0, 1, (400, 1, 4))))
    x += 0.05 * rng.normal(size=x.shape)
    return {a: FastTokenizer.fit(0.9 * x[:300], vocab_size=400, alphabet=a) for a in ("reference", "bytes")}, 0.9 * x[300:]


def test_reference_encode_equals_one_bpe_call_per_chunk(tokenizers):
    toks, x = tokenizers
    tok = toks["reference"]
    c = tok.config
    q = tok.quantise(x).reshape(len(x), -1)
    expected = [tok.bpe.encode("".join(map(chr, np.maximum(row - c.min_token, 0)))).ids for row in q]
    assert tok.encode(x) == expected
    assert tok.encode(x[::-1]) == expected[::-1]  # second call: from the piece cache


def test_decode_strings_equal_decode_batch(tokenizers):
    toks, x = tokenizers
    rng = np.random.default_rng(2)
    for tok in toks.values():
        ids = tok.encode(x)
        junk = [rng.integers(0, tok.vocab_size, int(rng.integers(0, 30))).tolist() for _ in range(50)]
        seqs = ids + junk + [[]]  # random ids: split UTF-8 sequences take the lossy fallback
        assert tok._fast_state()[1] is not None  # the table path, not the fallback
        assert tok._decode_strings(seqs) == tok.bpe.decode_batch(seqs, skip_special_tokens=False)
        np.testing.assert_array_equal(tok.decode(seqs)[1][: len(ids)], True)
