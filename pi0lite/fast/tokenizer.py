"""FAST: action chunks -> a few discrete tokens (Pertsch et al. 2025), exact and never silently wrong.

Axis letters (legend in :mod:`pi0lite`): b batch (chunks) · a action steps (time) · j action dims ·
u DCT frequencies (as many as a) · z flattened coefficients (u·j).

Encode, one batch at a time::

    actions [b, a, j] --DCT-II (orthonormal, along a)--> coeffs [b, u, j]
      --·scale, round half to even--> q [b, u, j] int
      --row-major flatten (all j of frequency 0 first)--> [b, z]
      --one character per integer--> b strings --byte-level BPE--> b lists of token ids

Decode runs the same steps backwards and returns ``(actions, valid)``. A chunk is *invalid*
(``valid[i] = False``) when its ids contain a negative or out-of-vocabulary id, when the decoded
string does not have exactly ``h·d`` characters, or when a decoded coefficient falls outside
the accepted range (the fitted range plus a headroom of one span on each side, the same range
``encode`` accepts). Invalid chunks are decoded best-effort (coefficients truncated or
zero-padded to ``h·d``) unless ``zero_invalid=True``.

Alphabets (see :mod:`pi0lite.fast.bpe`): ``"bytes"`` (default, safe, fewest tokens),
``"reference"`` (reproduces the reference processor's ids exactly, including its coverage hole,
which decode then flags as invalid instead of returning garbage) and ``"bytes_v1"`` (the safe
default of saved format version 1; files of that version load with it).

:class:`FastConfig` and the DCT + quantisation stage live in :mod:`pi0lite.fast.quantise`, saving and
loading in :mod:`pi0lite.fast.files`; both are re-exported here.
"""

from __future__ import annotations

import itertools
import pathlib
import warnings

import numpy as np
from jaxtyping import Bool, Float, Int
from tokenizers import Tokenizer

from pi0lite.fast import bpe as fast_bpe
from pi0lite.fast import files as fast_files
from pi0lite.fast.files import CONFIG_FILE, TOKENIZER_FILE
from pi0lite.fast.quantise import FORMAT_VERSION, FastConfig, as_batch, dct_quantise, dequantise_idct

__all__ = ["CONFIG_FILE", "FORMAT_VERSION", "TOKENIZER_FILE", "FastConfig", "FastTokenizer", "dct_quantise",
           "dequantise_idct"]  # FastConfig, the DCT stage and the file names live in quantise.py / files.py

#: Normalised (quantile) actions sit in roughly [-1, 1]; beyond this we warn once.
UNNORMALISED_WARN_ABS = 2.5


def _segment_all(flags: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``all(flags[segment])`` for consecutive segments of the given lengths (empty -> True)."""
    bad = np.concatenate([[0], np.cumsum(~flags)])
    ends = np.cumsum(lengths)
    return (bad[ends] - bad[ends - lengths]) == 0


class FastTokenizer:
    """A fitted FAST tokenizer. Build with :meth:`fit` or :meth:`load`."""

    def __init__(self, config: FastConfig, bpe: Tokenizer):
        fast_bpe.check_alphabet(config.alphabet)
        self.config = config
        self.bpe = bpe
        self._warned_unnormalised = False
        self._fast = (None, {}, None)  # (the bpe they belong to, piece -> ids, id bytes table)

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def fit(cls, chunks, *, scale: float = 10.0, vocab_size: int = 1024, alphabet: str = "bytes") -> "FastTokenizer":
        """Fit min/max coefficients and the BPE on training chunks ``[b, a, j]`` (normalised)."""
        fast_bpe.check_alphabet(alphabet)
        x = as_batch(chunks, "chunks")
        if x.shape[0] == 0:
            raise ValueError("chunks: need at least one training chunk, got 0")
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if not isinstance(vocab_size, (int, np.integer)) or isinstance(vocab_size, bool) or vocab_size <= 0:
            raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
        q = dct_quantise(x, scale)
        lo, hi = int(q.min()), int(q.max())
        config = FastConfig(
            scale=float(scale), vocab_size=int(vocab_size), alphabet=alphabet, min_token=lo, max_token=hi,
            action_horizon=x.shape[1], action_dim=x.shape[2],
        )
        if alphabet == "reference" and hi - lo > vocab_size:
            raise ValueError(
                f"vocab_size ({vocab_size}) is too small for the coefficient span {hi - lo} "
                f"(min {lo}, max {hi}); raise vocab_size, lower scale or normalise the actions"
            )
        if config.to_code_points(np.array(config.bounds)).max() > fast_bpe.MAX_CODE_POINT:
            raise ValueError(
                f"quantised coefficients span [{lo}, {hi}]: too wide for a character alphabet; "
                f"lower scale (={scale}) or normalise the actions (max |x| = {np.abs(x).max():.3g})"
            )
        tok = cls(config, fast_bpe.new_tokenizer(alphabet))
        tok._maybe_warn(x, stacklevel=3)
        codes = config.to_code_points(q.reshape(len(q), -1))
        if alphabet == "reference":
            initial = fast_bpe.initial_alphabet(alphabet, lo, hi, min_token=lo)
        else:  # every integer that encode accepts
            initial = fast_bpe.initial_alphabet(alphabet, *config.bounds, min_token=lo, radix=config.radix)
        if len(set(initial)) > vocab_size:
            raise ValueError(
                f"vocab_size={vocab_size} is smaller than the {len(set(initial))} symbols the BPE starts from "
                f"(alphabet {alphabet!r}, coefficients [{lo}, {hi}]); use vocab_size >= {len(set(initial))}"
            )
        tok.bpe = fast_bpe.train_bpe(fast_bpe.rows_to_strings(codes), alphabet=alphabet, vocab_size=vocab_size, initial=initial)
        return tok

    # --- encode ----------------------------------------------------------------------------
    def quantise(self, chunks) -> Int[np.ndarray, "b u j"]:
        """Checked DCT + quantisation: the integers that :meth:`encode` turns into tokens."""
        return self._quantise(chunks)

    def _quantise(self, chunks) -> np.ndarray:
        c = self.config
        x = as_batch(chunks, "chunks")
        if x.shape[1:] != (c.action_horizon, c.action_dim):
            raise ValueError(
                f"chunks have (horizon, action_dim) = {x.shape[1:]}, but this tokenizer was fitted "
                f"on {(c.action_horizon, c.action_dim)}"
            )
        self._maybe_warn(x, stacklevel=4)  # _maybe_warn <- _quantise <- quantise/encode <- caller
        q = dct_quantise(x, c.scale)
        lo, hi = c.bounds
        if q.size and (q.max() > hi or q.min() < (c.min_token - c.headroom)):
            bad = np.where((q > hi) | (q < c.min_token - c.headroom))[0]
            raise ValueError(
                f"chunks {sorted(set(bad.tolist()))[:5]}: quantised coefficients in [{q.min()}, {q.max()}] "
                f"are far outside the fitted range [{c.min_token}, {c.max_token}] (accepted: "
                f"[{c.min_token - c.headroom}, {hi}]); are the actions normalised?"
            )
        if c.alphabet == "reference" and q.size and q.min() < c.min_token:
            n = int(np.sum(q < c.min_token))
            warnings.warn(
                f"{n} coefficients below min_token {c.min_token} clamped (reference alphabet behaviour; "
                "use alphabet='bytes' to encode them exactly)",
                RuntimeWarning,
                stacklevel=3,  # _quantise <- quantise/encode <- caller
            )
            q = np.maximum(q, c.min_token)
        return q

    def encode(self, chunks) -> list[list[int]]:
        """``[b, a, j]`` chunks -> ``b`` lists of token ids (variable length)."""
        if isinstance(chunks, (list, tuple)) and not chunks:
            return []
        q = self._quantise(chunks)
        if len(q) == 0:
            return []
        codes = self.config.to_code_points(q.reshape(len(q), -1))
        strings = fast_bpe.rows_to_strings(codes)
        if self.config.alphabet == "reference" and (codes.size == 0 or codes.max() < fast_bpe.SPLIT_LIMIT):
            return self._encode_pieces(strings)
        return [e.ids for e in self._encode_batch(strings)]

    def _encode_batch(self, strings: list[str]):
        # encode_batch_fast (tokenizers >= 0.21) skips the offsets we do not need
        return getattr(self.bpe, "encode_batch_fast", self.bpe.encode_batch)(strings)

    def _fast_state(self) -> tuple[dict, tuple | None]:
        """The piece cache and id-bytes table of the current ``self.bpe`` (rebuilt if it changed)."""
        bpe, pieces, table = self._fast
        if bpe is not self.bpe:
            self._fast = bpe, pieces, table = self.bpe, {}, fast_bpe.id_bytes_table(self.bpe)
        return pieces, table

    def _encode_pieces(self, strings: list[str]) -> list[list[int]]:
        """Reference alphabet: split every string as the BPE's pre-tokenizer does, run each distinct
        piece through the BPE once (kept across calls) and concatenate (merges never cross pieces)."""
        cache, _ = self._fast_state()
        if len(cache) > 500_000:
            cache.clear()
        split = fast_bpe.gpt2_split().findall
        pieces = [split(s) for s in strings]
        new = list(set(itertools.chain.from_iterable(pieces)).difference(cache))
        if new:
            cache.update(zip(new, (e.ids for e in self._encode_batch(new))))
        get = cache.__getitem__
        return [list(itertools.chain.from_iterable(map(get, p))) for p in pieces]

    def _decode_strings(self, seqs: list) -> list[str]:
        """What ``bpe.decode_batch`` returns (used by the tests; decode goes straight to code points)."""
        n_ids = np.fromiter(map(len, seqs), np.int64, len(seqs))
        flat = np.fromiter(itertools.chain.from_iterable(seqs), np.int64, int(n_ids.sum()))
        codes, lengths = self._decode_code_points(flat, n_ids)
        return [s.tobytes().decode("utf-32-le") for s in np.split(codes.astype("<u4"), np.cumsum(lengths)[:-1])]

    def _decode_code_points(self, flat: np.ndarray, n_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Valid ids (flat) and their count per chunk -> the decoded characters' code points (flat)
        and each chunk's length, as ``bpe.decode_batch`` would decode them; one gather over the
        table of every id's bytes, one UTF-8 decode for the whole batch."""
        _, table = self._fast_state()
        ends = np.cumsum(n_ids)
        starts = ends - n_ids
        if table is None:
            seqs = [flat[a:e].tolist() for a, e in zip(starts.tolist(), ends.tolist())]
            return fast_bpe.strings_to_code_points(self.bpe.decode_batch(seqs, skip_special_tokens=False) if seqs else [])
        data, before = fast_bpe.gather_bytes(table, flat)
        lo, hi = before[starts], before[ends]
        lead = (np.frombuffer(data, np.uint8) & 0xC0) != 0x80  # first byte of a character
        if lead[lo[hi > lo]].all():  # no chunk starts inside a character
            try:
                codes = np.frombuffer(data.decode("utf-8").encode("utf-32-le"), "<u4").astype(np.int64)
                chars = np.concatenate([[0], np.cumsum(lead)])
                return codes, chars[hi] - chars[lo]  # each chunk is valid UTF-8 on its own
            except UnicodeDecodeError:
                pass
        strings = []
        for i, (a, e) in enumerate(zip(lo.tolist(), hi.tolist())):
            try:
                strings.append(data[a:e].decode("utf-8"))
            except UnicodeDecodeError:  # a split or invalid sequence: the tokenizer's lossy decoder
                strings.append(self.bpe.decode(flat[starts[i] : ends[i]].tolist(), skip_special_tokens=False))
        return fast_bpe.strings_to_code_points(strings)

    # --- decode ----------------------------------------------------------------------------
    def decode(
        self,
        tokens,
        *,
        action_horizon: int | None = None,
        action_dim: int | None = None,
        zero_invalid: bool = False,
    ) -> tuple[Float[np.ndarray, "b a j"], Bool[np.ndarray, "b"]]:
        """Token id lists -> ``(actions [b, a, j], valid [b])``.

        ``action_horizon``/``action_dim`` default to the fitted ones and must equal them if given.
        """
        c = self.config
        for name, given, stored in (("action_horizon", action_horizon, c.action_horizon), ("action_dim", action_dim, c.action_dim)):
            if given is not None and given != stored:
                raise ValueError(f"{name}={given} but this tokenizer was fitted with {name}={stored}")
        h, d = c.action_horizon, c.action_dim
        n = h * d
        size = self.bpe.get_vocab_size()
        b = len(tokens)
        n_ids = np.fromiter(map(len, tokens), np.int64, b)
        flat_ids = np.fromiter(itertools.chain.from_iterable(tokens), np.int64, int(n_ids.sum()))
        ok = (flat_ids >= 0) & (flat_ids < size)
        valid = _segment_all(ok, n_ids) & (n_ids > 0)
        # the BPE must not see bad ids (a negative one would raise for the whole batch): drop them
        kept = np.concatenate([[0], np.cumsum(ok)])
        ends = np.cumsum(n_ids)
        codes, lengths = self._decode_code_points(flat_ids[ok], kept[ends] - kept[ends - n_ids])
        q = c.from_code_points(codes)
        lo, hi = c.bounds
        valid &= (lengths == n) & _segment_all((q >= lo) & (q <= hi), lengths)
        q = np.where(q == fast_bpe.NOT_A_CODE, 0, q)  # a character no integer maps to: best effort 0
        exact = lengths == n
        if exact.all():
            out = q.reshape(b, n)
        else:
            out = np.zeros((b, n), np.int64)
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            out[exact] = q[starts[exact, None] + np.arange(n)]
            for i in np.flatnonzero(~exact):  # best effort: truncate or zero-pad
                m = min(int(lengths[i]), n)
                out[i, :m] = q[starts[i] : starts[i] + m]
        actions = dequantise_idct(out.reshape(-1, h, d), c.scale)
        if zero_invalid:
            actions[~valid] = 0.0
        return actions, valid

    # --- persistence -----------------------------------------------------------------------
    def save(self, path) -> pathlib.Path:
        """Write the tokenizer into the directory ``path`` (see :mod:`pi0lite.fast.files`)."""
        return fast_files.save(self.config, self.bpe, path)

    @classmethod
    def load(cls, path) -> "FastTokenizer":
        """A tokenizer saved by :meth:`save`; files that do not belong together raise ``ValueError``."""
        return cls(*fast_files.load(path))

    # --- helpers ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """The number of ids the BPE really has (≤ ``config.vocab_size``)."""
        return self.bpe.get_vocab_size()

    def _maybe_warn(self, x: np.ndarray, stacklevel: int) -> None:
        if not self._warned_unnormalised and x.size and np.abs(x).max() > UNNORMALISED_WARN_ABS:
            self._warned_unnormalised = True
            warnings.warn(
                f"actions reach |x| = {np.abs(x).max():.3g}; FAST expects quantile-normalised actions "
                "in about [-1, 1] (warning shown once)",
                UserWarning,
                stacklevel=stacklevel,
            )

    def __repr__(self) -> str:
        c = self.config
        return (
            f"FastTokenizer(alphabet={c.alphabet!r}, scale={c.scale}, vocab={self.vocab_size}, "
            f"coeff range=[{c.min_token}, {c.max_token}], chunk=({c.action_horizon}, {c.action_dim}))"
        )
