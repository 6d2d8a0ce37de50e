"""The character alphabets and the byte-level BPE of the FAST tokenizer (the ``tokenizers`` side).

FAST turns a chunk into a string of characters, one per quantised DCT coefficient, and lets a
byte-level BPE (Hugging Face ``tokenizers``) compress that string. This module holds the two
ways of mapping integers to characters and the two BPE set-ups:

``"reference"``  as the reference processor: ``chr(q - min_token)``, BPE trained with the
                 GPT-2 regex pre-split and ``initial_alphabet = chr(0 .. span)``. Reproduces its
                 token ids exactly, including its coverage hole (a byte symbol never seen while
                 fitting is silently dropped at encode time).
``"bytes"``      the safe default: a zigzag code ``0, -1, 1, -2, 2, … -> 0, 1, 2, 3, 4, …`` (any
                 integer has a character, nothing is offset or clamped), BPE starting from all
                 256 byte symbols (so every string encodes losslessly) and without the regex
                 pre-split (merges may cross what the regex would have cut).

All mappings are vectorised over numpy arrays of code points.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ALPHABETS = ("bytes", "reference")

#: Code points from U+D800 are surrogates and cannot be encoded as UTF-8; stay below them.
MAX_CODE_POINT = 0xD7FF


def check_alphabet(alphabet: str) -> None:
    if alphabet not in ALPHABETS:
        raise ValueError(f"alphabet must be one of {ALPHABETS}, got {alphabet!r}")


def to_code_points(q: np.ndarray, alphabet: str, min_token: int) -> np.ndarray:
    """Integers -> non-negative code points (same shape, int64)."""
    q = np.asarray(q, np.int64)
    if alphabet == "reference":
        return q - min_token
    return np.where(q >= 0, 2 * q, -2 * q - 1)  # zigzag


def from_code_points(c: np.ndarray, alphabet: str, min_token: int) -> np.ndarray:
    """Inverse of :func:`to_code_points`."""
    c = np.asarray(c, np.int64)
    if alphabet == "reference":
        return c + min_token
    return np.where(c % 2 == 0, c // 2, -(c + 1) // 2)


def rows_to_strings(codes: np.ndarray) -> list[str]:
    """``[b, n]`` code points -> ``b`` strings of ``n`` characters, one UTF-32 conversion per batch."""
    b, n = codes.shape
    if b == 0:
        return []
    flat = np.ascontiguousarray(codes, dtype="<u4").tobytes().decode("utf-32-le")
    return [flat[i * n : (i + 1) * n] for i in range(b)]


def strings_to_code_points(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``b`` strings -> (all code points concatenated, int64; length of each string)."""
    lengths = np.fromiter((len(s) for s in strings), np.int64, len(strings))
    joined = "".join(strings)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype="<u4").astype(np.int64)
    return codes, lengths


def new_tokenizer(alphabet: str) -> Tokenizer:
    """An empty byte-level BPE tokenizer, configured as ``ByteLevelBPETokenizer()`` (reference)
    or with the regex pre-split off (bytes)."""
    check_alphabet(alphabet)
    tok = Tokenizer(models.BPE())
    use_regex = alphabet == "reference"
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train_bpe(strings: Iterable[str], *, alphabet: str, vocab_size: int, span: int) -> Tokenizer:
    """Fit the BPE on one string per training chunk."""
    tok = new_tokenizer(alphabet)
    if alphabet == "reference":
        initial = [chr(i) for i in range(span + 1)]
    else:
        initial = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=initial,
        max_token_length=10000,
    )
    tok.train_from_iterator(strings, trainer=trainer)
    return tok
