"""Normalisation statistics like openpi's: z-score (pi0) and quantile (pi0.5 / pi0-FAST).

* z-score: ``(x − mean) / (std + 1e-6)``; inverse ``x·(std + 1e-6) + mean``.
* quantile: ``(x − q01) / (q99 − q01 + 1e-6)·2 − 1``, **not clipped**; inverse accordingly.

Stats are per feature (the last axis) and computed over every other axis. Normalising happens
*before* padding; when un-normalising data wider than the stats (padded dims), the extra dims are
left untouched (z-score: as if mean 0, std 1). Padding is :func:`pi0lite.observation.pad_to_dim`.

Which kind a model uses is openpi's rule, :func:`norm_kind`: pi0.5 quantile, pi0 z-score
(``make demo`` computes the statistics once and applies them per model with :func:`with_kind`).

Stats are checked when made or loaded: 1-D, one length, finite, and a positive spread (std for
z-score, q99 − q01 for quantile); a zero spread would blow every value up by 1e6.

Axis letters: d feature dim, p padded dim.
"""

from __future__ import annotations

import dataclasses
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
        shapes = {k: np.shape(getattr(self, k)) for k in ("mean", "std", "q01", "q99")}
        if len(set(shapes.values())) != 1 or len(shapes["mean"]) != 1:
            raise ValueError(f"NormStats: mean, std, q01, q99 must be 1-D of one length, got shapes {shapes}")
        for k in shapes:
            if not np.all(np.isfinite(getattr(self, k))):
                raise ValueError(f"NormStats.{k} contains NaN or inf: {getattr(self, k)}")
        spread, name = (self.std, "std") if self.kind == "zscore" else (self.q99 - self.q01, "q99 - q01")
        if not np.all(spread > 0):
            raise ValueError(f"NormStats ({self.kind}): {name} must be > 0 in every dim, got {spread}")

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

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "NormStats":
        arrays = {k: np.asarray(d[k], np.float32) for k in ("mean", "std", "q01", "q99")}
        return cls(**arrays, kind=d.get("kind", "zscore"))


def compute_stats(x: Float[np.ndarray, "... d"], *, kind: str = "zscore") -> NormStats:
    """Mean, std and the 1st/99th percentiles of every feature (last axis) over all other axes.

    A feature that is constant in the data (std < 1e-6, e.g. a gripper that never moves) gets
    std 1 and q01/q99 = value ∓ 1: it is only centred; one whose 1st and 99th percentiles coincide
    gets them widened by its std. With std 0 the ``+ 1e-6`` guard would turn any later
    deviation into a value a million times too large.
    """
    flat = np.asarray(x, np.float64).reshape(-1, np.shape(x)[-1])
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"compute_stats: data of shape {np.shape(x)} contains NaN or inf")
    f32 = lambda a: np.asarray(a, np.float32)
    q01, q99 = f32(np.quantile(flat, [0.01, 0.99], axis=0))
    mean, std = f32(flat.mean(0)), f32(flat.std(0))
    constant = std < EPS  # below the guard the feature carries no usable scale
    std = np.where(constant, 1.0, std).astype(np.float32)
    q01, q99 = np.where(constant, mean - 1.0, q01), np.where(constant, mean + 1.0, q99)
    flat_q = q99 <= q01  # mostly one value: the 1st and 99th percentiles coincide
    q01, q99 = f32(np.where(flat_q, q01 - std, q01)), f32(np.where(flat_q, q99 + std, q99))
    return NormStats(mean=mean, std=std, q01=q01, q99=q99, kind=kind)


def dataset_stats(dataset, *, kind: str = "zscore") -> dict[str, NormStats]:
    """``{"state": …, "actions": …}`` statistics of a toy dataset (anything with ``.state`` and ``.actions``)."""
    return {"state": compute_stats(dataset.state, kind=kind), "actions": compute_stats(dataset.actions, kind=kind)}


def save_stats(stats: dict[str, NormStats], path) -> None:
    """Write ``{"state": NormStats, "actions": NormStats}`` as JSON (openpi keeps it beside the params)."""
    with open(path, "w") as f:
        json.dump({k: v.to_dict() for k, v in stats.items()}, f, indent=1)


def load_stats(path) -> dict[str, NormStats]:
    """Read :func:`save_stats`'s file; any problem is a ``ValueError`` naming the file."""
    try:
        with open(path) as f:
            raw = json.load(f)
        return {k: NormStats.from_dict(v) for k, v in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: bad normalisation stats: {e}") from e


def norm_kind(config) -> str:
    """openpi's choice per model: quantile for pi0.5 (``config.pi05``), z-score for pi0."""
    return "quantile" if config.pi05 else "zscore"


def with_kind(stats: dict[str, NormStats], kind: str) -> dict[str, NormStats]:
    """The same statistics applied the ``kind`` way (``"zscore"`` or ``"quantile"``)."""
    return {name: dataclasses.replace(s, kind=kind) for name, s in stats.items()}
