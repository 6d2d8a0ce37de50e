"""What a FAST code is: :class:`FastConfig` (the fitted coefficient range and the alphabet that
maps integers to characters) and the DCT + quantisation stage of :mod:`pi0lite.fast.tokenizer`.

Axis letters (legend in :mod:`pi0lite`): b batch (chunks) · a action steps (time) · j action dims ·
u DCT frequencies (as many as a).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.fft
from jaxtyping import Float, Int

from pi0lite.fast import bpe as fast_bpe

#: 2: ``"bytes"`` is the compact code of :mod:`pi0lite.fast.bpe`; version-1 ``"bytes"`` files
#: (plain zigzag characters, all 256 byte symbols) load as ``"bytes_v1"``.
FORMAT_VERSION = 2


@dataclass(frozen=True, kw_only=True)
class FastConfig:
    """Everything besides the BPE that decode needs; saved next to ``tokenizer.json``."""

    scale: float
    vocab_size: int
    alphabet: str
    min_token: int  # smallest quantised coefficient seen when fitting
    max_token: int  # largest
    action_horizon: int
    action_dim: int
    version: int = FORMAT_VERSION
    #: sha256 of the ``tokenizer.json`` saved with this config (None: not saved yet, or an older
    #: file); it pairs the two files and is not part of the tokenizer's behaviour (not compared)
    tokenizer_sha256: str | None = dataclasses.field(default=None, compare=False)

    @property
    def headroom(self) -> int:
        return max(self.max_token - self.min_token, 1)

    @property
    def bounds(self) -> tuple[int, int]:
        """Accepted coefficient range: the fitted one widened by one span on each side."""
        lo = self.min_token if self.alphabet == "reference" else self.min_token - self.headroom
        return lo, self.max_token + self.headroom

    @property
    def radix(self) -> int:
        """``"bytes"``: continuation bytes per position of the rare-code characters."""
        return fast_bpe.rare_radix(*self.bounds)

    def to_code_points(self, q: np.ndarray) -> np.ndarray:
        return fast_bpe.to_code_points(q, self.alphabet, self.min_token, self.radix)

    def from_code_points(self, c: np.ndarray) -> np.ndarray:
        return fast_bpe.from_code_points(c, self.alphabet, self.min_token, self.radix)


def dct_quantise(actions: Float[np.ndarray, "b a j"], scale: float) -> Int[np.ndarray, "b u j"]:
    """Orthonormal DCT-II along time, times ``scale``, rounded half to even."""
    coeffs = scipy.fft.dct(np.asarray(actions, np.float64), type=2, axis=1, norm="ortho")
    return np.around(coeffs * scale).astype(np.int64)


def dequantise_idct(q: Int[np.ndarray, "b u j"], scale: float) -> Float[np.ndarray, "b a j"]:
    """Inverse of :func:`dct_quantise` up to the rounding: ``idct(q / scale)``."""
    return scipy.fft.idct(np.asarray(q, np.float64) / scale, type=2, axis=1, norm="ortho")


def as_batch(chunks, name: str) -> np.ndarray:
    """``chunks`` (an array or a list of equal-shaped chunks) as a finite float64 ``[b, a, j]`` array."""
    if isinstance(chunks, (list, tuple)):
        shapes = {np.shape(c) for c in chunks}
        if len(shapes) > 1:
            raise ValueError(f"{name}: all chunks must share one (horizon, action_dim) shape, got {sorted(shapes)}")
        chunks = np.stack([np.asarray(c, np.float64) for c in chunks]) if chunks else np.zeros((0, 0, 0))
    x = np.asarray(chunks, np.float64)
    if x.ndim != 3:
        raise ValueError(f"{name} must be [batch, horizon, action_dim] (3 dims), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or inf ({int(np.sum(~np.isfinite(x)))} values)")
    return x
