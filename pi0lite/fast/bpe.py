"""The character alphabets and the byte-level BPE of the FAST tokenizer (the ``tokenizers`` side).

FAST turns a chunk into a string of characters, one per quantised DCT coefficient, and lets a
byte-level BPE (Hugging Face ``tokenizers``) compress that string. Byte-level BPE sees the UTF-8
*bytes* of those characters (as 256 "byte symbols"), so how integers become characters decides
which byte symbols exist and how many vocabulary ids are left for merges. Three alphabets:

``"reference"``  as the reference processor: ``chr(q - min_token)``, BPE trained with the
                 GPT-2 regex pre-split and ``initial_alphabet = chr(0 .. span)``. Reproduces its
                 token ids exactly, including its coverage hole (a byte symbol never seen while
                 fitting is silently dropped at encode time).
``"bytes"``      the safe default. A zigzag code ``0, -1, 1, -2, 2, … -> z = 0, 1, 2, 3, 4, …``;
                 the 128 smallest codes (``|q| <= 64``) are single ASCII characters, rarer ones
                 3-byte characters ``U+1000 + (r // radix)·64 + r % radix`` (``r = z - 128``),
                 which use only ``radix`` continuation bytes (``radix ≈ sqrt(#rare codes)``).
                 BPE starts from exactly the byte symbols that the accepted coefficient range
                 can produce (so every chunk that ``encode`` accepts encodes losslessly, and
                 no id is spent on a byte that can never occur) and runs without the regex
                 pre-split. About 150 base symbols instead of 256: ~100 more merges.
``"bytes_v1"``   the default of saved format version 1: the same zigzag code, one character
                 ``chr(z)`` per integer, BPE starting from all 256 byte symbols, no regex split.

All mappings are vectorised over numpy arrays of code points.

Fast paths (same ids and strings as the ``tokenizers`` calls, proven in tests): the reference
alphabet's GPT-2 pre-split as a Python regex with explicit character classes (so each distinct
piece goes through the BPE once and is then looked up), and decoding through a table of each
id's bytes (one gather for the whole batch instead of the byte-level decoder per chunk).
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Iterable

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

ALPHABETS = ("bytes", "reference", "bytes_v1")

#: Code points from U+D800 are surrogates and cannot be encoded as UTF-8; stay below them.
MAX_CODE_POINT = 0xD7FF
#: ``"bytes"``: zigzag codes below this are one ASCII character (one byte) each.
SINGLE_BYTE_CODES = 128
#: ``"bytes"``: first code point of the 3-byte block (lead byte 0xE1, U+1000..U+1FFF) for rarer codes.
RARE_BASE = 0x1000
#: Decoded value for a code point that no integer maps to: far outside any accepted range.
NOT_A_CODE = 1 << 62


def check_alphabet(alphabet: str) -> None:
    if alphabet not in ALPHABETS:
        raise ValueError(f"alphabet must be one of {ALPHABETS}, got {alphabet!r}")


def zigzag(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, np.int64)
    return np.where(q >= 0, 2 * q, -2 * q - 1)


def unzigzag(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.int64)
    return np.where(z % 2 == 0, z // 2, -(z + 1) // 2)


def rare_radix(lo: int, hi: int) -> int:
    """``"bytes"``: continuation bytes used per position for the codes of integers in [lo, hi]."""
    n_rare = int(zigzag(np.array([lo, hi])).max()) - SINGLE_BYTE_CODES + 1
    return min(64, max(1, math.ceil(math.sqrt(max(n_rare, 1)))))


def to_code_points(q: np.ndarray, alphabet: str, min_token: int, radix: int = 64) -> np.ndarray:
    """Integers -> non-negative code points (same shape, int64). ``radix``: see :func:`rare_radix`."""
    q = np.asarray(q, np.int64)
    if alphabet == "reference":
        return q - min_token
    z = zigzag(q)
    if alphabet == "bytes_v1":
        return z
    r = z - SINGLE_BYTE_CODES
    return np.where(r < 0, z, RARE_BASE + (r // radix) * 64 + r % radix)


def from_code_points(c: np.ndarray, alphabet: str, min_token: int, radix: int = 64) -> np.ndarray:
    """Inverse of :func:`to_code_points`; a code point outside its image gives :data:`NOT_A_CODE`."""
    c = np.asarray(c, np.int64)
    if alphabet == "reference":
        return c + min_token
    if alphabet == "bytes_v1":
        return unzigzag(c)
    hi6, lo6 = np.divmod(c - RARE_BASE, 64)
    rare = (c >= RARE_BASE) & (c <= MAX_CODE_POINT) & (lo6 < radix)
    z = np.where(rare, SINGLE_BYTE_CODES + hi6 * radix + lo6, c)
    return np.where(rare | (c < SINGLE_BYTE_CODES), unzigzag(z), NOT_A_CODE)


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
    or with the regex pre-split off (bytes, bytes_v1)."""
    check_alphabet(alphabet)
    tok = Tokenizer(models.BPE())
    use_regex = alphabet == "reference"
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=use_regex)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def initial_alphabet(alphabet: str, lo: int, hi: int, *, min_token: int, radix: int = 64) -> list[str]:
    """The BPE's starting symbols. ``[lo, hi]``: the integers that must encode (``"bytes"``)."""
    if alphabet == "reference":
        return [chr(i) for i in range(hi - min_token + 1)]  # chr(0 .. span): characters, not bytes
    if alphabet == "bytes_v1":
        return pre_tokenizers.ByteLevel.alphabet()
    # exactly the byte symbols of the UTF-8 bytes of every accepted integer's character
    codes = to_code_points(np.arange(lo, hi + 1), alphabet, min_token, radix)
    text = rows_to_strings(codes[None])[0]
    pieces = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)
    return sorted(set("".join(p for p, _ in pieces)))


def train_bpe(strings: Iterable[str], *, alphabet: str, vocab_size: int, initial: list[str]) -> Tokenizer:
    """Fit the BPE on one string per training chunk, starting from the symbols ``initial``."""
    tok = new_tokenizer(alphabet)
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


# --- fast paths --------------------------------------------------------------------------------

#: The regex pre-split below is exact for strings whose code points all lie below this.
SPLIT_LIMIT = 0x800
#: Unicode White_Space below SPLIT_LIMIT (what the byte-level pre-tokenizer's ``\s`` matches).
_WHITE_SPACE = (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0)


def _char_class(codes: list[int]) -> str:
    """A regex character-class body for the given sorted code points, as ranges."""
    parts, start = [], None
    for i, c in enumerate(codes):
        if start is None:
            start = c
        if i + 1 == len(codes) or codes[i + 1] != c + 1:
            parts.append(re.escape(chr(start)) + ("" if c == start else "-" + re.escape(chr(c))))
            start = None
    return "".join(parts)


@functools.cache
def gpt2_split() -> re.Pattern:
    """The byte-level pre-tokenizer's GPT-2 split (letters / numbers / other / whitespace runs,
    English contractions) for code points below :data:`SPLIT_LIMIT`, as one Python regex."""
    cat = [unicodedata.category(chr(i)) for i in range(SPLIT_LIMIT)]
    letters = _char_class([i for i, c in enumerate(cat) if c.startswith("L")])
    numbers = _char_class([i for i, c in enumerate(cat) if c.startswith("N")])
    space = _char_class(list(_WHITE_SPACE))
    return re.compile(
        f"'s|'t|'re|'ve|'m|'ll|'d| ?[{letters}]+| ?[{numbers}]+| ?[^{space}{letters}{numbers}]+"
        f"|[{space}]+(?![^{space}])|[{space}]+"
    )


def byte_level_chars() -> list[str]:
    """The byte-level BPE's character for each byte 0..255 (printable bytes stand for themselves,
    the others are moved to U+0100 and up, in order)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars, moved = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + moved)
            moved += 1
    return [chars[b] for b in range(256)]


def id_bytes_table(tok: Tokenizer) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(all bytes uint8, start [V], length [V])`` of every id of a byte-level BPE, as its decoder sees
    them: each character mapped back to its byte, or, for a token with a character outside the
    byte-level alphabet (the reference alphabet's initial characters), the token's own UTF-8.
    None if the ids are not ``0 .. V-1`` (then use the tokenizer's decoder)."""
    to_byte = {c: b for b, c in enumerate(byte_level_chars())}
    vocab = tok.get_vocab()
    size = tok.get_vocab_size()
    if sorted(vocab.values()) != list(range(size)):
        return None
    rows = {}
    for token, i in vocab.items():
        try:
            rows[i] = bytes(to_byte[ch] for ch in token)
        except KeyError:
            rows[i] = token.encode("utf-8")
    ordered = [rows[i] for i in range(size)]
    lengths = np.fromiter(map(len, ordered), np.int64, size)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return np.frombuffer(b"".join(ordered), np.uint8), starts, lengths


def gather_bytes(table: tuple[np.ndarray, np.ndarray, np.ndarray], ids: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The bytes of ``ids`` (flat int array) back to back, and the cumulative byte count before each id."""
    blob, starts, lengths = table
    n = lengths[ids]
    before = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
    offsets = np.repeat(starts[ids] - before[:-1], n) + np.arange(before[-1])
    return blob[offsets].tobytes(), before
