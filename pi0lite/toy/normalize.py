"""Normalisation statistics like openpi's: z-score (pi0) and quantile (pi0.5 / pi0-FAST).

* z-score: ``(x − mean) / (std + 1e-6)``; inverse ``x·(std + 1e-6) + mean``.
* quantile: ``(x − q01) / (q99 − q01 + 1e-6)·2 − 1``, **not clipped**; inverse accordingly.

Stats are per feature (the last axis) and computed over every other axis. Normalising happens
*before* padding; when un-normalising data wider than the stats (padded dims), the extra dims are
left untouched (z-score: as if mean 0, std 1). ``pad_to_dim`` zero-pads the last axis.

Axis letters: d feature dim, p padded dim.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
from jaxtyping import Float

EPS = 1e-6
KINDS = ("zscore", "quantile")


@dataclass(frozen=True, kw_only=True)
class NormStats:
    """Per-feature statistics of one quantity (state or actions)."""

    mean: Float[np.ndarray, " d"]
    std: Float[np.ndarray, " d"]
    q01: Float[np.ndarray, " d"]
    q99: Float[np.ndarray, " d"]
    kind: str = "zscore"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"NormStats.kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def dim(self) -> int:
        return len(self.mean)

    def _check(self, x, name: str) -> None:
        if x.shape[-1] < self.dim:
            raise ValueError(f"{name}: last axis of x ({x.shape}) is smaller than the stats' dim {self.dim}")

    def normalize(self, x: Float[np.ndarray, "... d"]) -> Float[np.ndarray, "... d"]:
        """Normalise the first ``dim`` features; any extra (padded) features pass through."""
        x = np.asarray(x, np.float32)
        self._check(x, "normalize")
        head, tail = x[..., : self.dim], x[..., self.dim :]
        if self.kind == "zscore":
            head = (head - self.mean) / (self.std + EPS)
        else:
            head = (head - self.q01) / (self.q99 - self.q01 + EPS) * 2.0 - 1.0
        return np.concatenate([head, tail], -1).astype(np.float32)

    def unnormalize(self, x: Float[np.ndarray, "... d"]) -> Float[np.ndarray, "... d"]:
        """Inverse of :meth:`normalize` on the first ``dim`` features; extra features untouched."""
        x = np.asarray(x, np.float32)
        self._check(x, "unnormalize")
        head, tail = x[..., : self.dim], x[..., self.dim :]
        if self.kind == "zscore":
            head = head * (self.std + EPS) + self.mean
        else:
            head = (head + 1.0) / 2.0 * (self.q99 - self.q01 + EPS) + self.q01
        return np.concatenate([head, tail], -1).astype(np.float32)

    def with_kind(self, kind: str) -> "NormStats":
        return NormStats(mean=self.mean, std=self.std, q01=self.q01, q99=self.q99, kind=kind)

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "NormStats":
        arrays = {k: np.asarray(d[k], np.float32) for k in ("mean", "std", "q01", "q99")}
        return cls(**arrays, kind=d.get("kind", "zscore"))


def compute_stats(x: Float[np.ndarray, "... d"], *, kind: str = "zscore") -> NormStats:
    """Mean, std and the 1st/99th percentiles of every feature (last axis) over all other axes."""
    flat = np.asarray(x, np.float64).reshape(-1, np.shape(x)[-1])
    q01, q99 = np.quantile(flat, [0.01, 0.99], axis=0)
    f32 = lambda a: np.asarray(a, np.float32)
    return NormStats(mean=f32(flat.mean(0)), std=f32(flat.std(0)), q01=f32(q01), q99=f32(q99), kind=kind)


def pad_to_dim(x: Float[np.ndarray, "... d"], dim: int) -> Float[np.ndarray, "... p"]:
    """Zero-pad the last axis up to ``dim`` (openpi ``pad_to_dim``); wider input is an error."""
    x = np.asarray(x)
    if x.shape[-1] > dim:
        raise ValueError(f"pad_to_dim: last axis of x ({x.shape}) is larger than dim={dim}")
    pad = [(0, 0)] * (x.ndim - 1) + [(0, dim - x.shape[-1])]
    return np.pad(x, pad)


def save_stats(stats: dict[str, NormStats], path) -> None:
    """Write ``{"state": NormStats, "actions": NormStats}`` as JSON (openpi keeps it beside the params)."""
    with open(path, "w") as f:
        json.dump({k: v.to_dict() for k, v in stats.items()}, f, indent=1)


def load_stats(path) -> dict[str, NormStats]:
    with open(path) as f:
        return {k: NormStats.from_dict(v) for k, v in json.load(f).items()}
