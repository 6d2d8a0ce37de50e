"""A trained toy policy: the model, its normalisation stats and its tokenizer, saved together.

``Policy.infer(images, state, instructions, key)`` maps raw observations (uint8 images, the
4-D state, instruction strings) to raw action chunks ``[b, H, 2]``: tokenise, normalise and pad
the state, run the model (flow: ``sample_actions`` with ``num_steps`` Euler steps and the prefix KV
cache; mse: one pass), un-normalise and drop the padded action dims.

A checkpoint directory holds ``config.json`` (model config + policy meta), ``params.npz``
(parameters under their '/'-joined openpi paths, e.g. ``PaliGemma/llm/...``, ``action_out_proj/kernel``),
``norm_stats.json`` and ``tokenizer.json``. :func:`load_shipped` loads the small checkpoint shipped in
``pi0lite/assets/toy_policy`` (trained by ``make demo``).

Axis letters: b batch, s image side, h action horizon, d action dim, k real action dims.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Sequence

import jax
import numpy as np
from flax import nnx
from jaxtyping import Array, Float, UInt8

from pi0lite.config import GemmaConfig, Pi0Config, VisionConfig
from pi0lite.openpi import load_npz, load_params, save_npz
from pi0lite.toy.normalize import NormStats, load_stats, pad_to_dim, save_stats
from pi0lite.pi0 import Observation, Pi0
from pi0lite.toy.text import WordTokenizer, tokenize_batch

ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"  # pi0lite/assets
SHIPPED = ASSETS / "toy_policy"
#: Shipped checkpoints: the flow policy, the MSE baseline and the no-aux ablation (all from ``make demo``).
VARIANTS = {"flow": "toy_policy", "mse": "toy_policy_mse", "noaux": "toy_policy_noaux"}
ACTION_DIMS = 2  # the toy task's real action dims (velocity x, y)


def config_from_dict(d: dict) -> Pi0Config:
    d = dict(d)
    d["paligemma"], d["action_expert"] = GemmaConfig(**d["paligemma"]), GemmaConfig(**d["action_expert"])
    d["vision"], d["image_keys"] = VisionConfig(**d["vision"]), tuple(d["image_keys"])
    return Pi0Config(**d)


class Policy:
    """Model + stats + tokenizer; ``mode`` is ``"flow"`` (pi0) or ``"mse"`` (baseline)."""

    def __init__(self, model: Pi0, norm: dict[str, NormStats], tokenizer, *, mode: str = "flow",
                 num_steps: int = 10, meta: dict | None = None):
        if mode not in ("flow", "mse"):
            raise ValueError(f"mode must be 'flow' or 'mse', got {mode!r}")
        self.model, self.norm, self.tokenizer, self.mode = model, norm, tokenizer, mode
        self.num_steps, self.meta = num_steps, dict(meta or {})
        self.config: Pi0Config = model.config
        graphdef, state = nnx.split(model)
        self._run = jax.jit(lambda st, obs, key: self._actions(nnx.merge(graphdef, st), obs, key))
        self._state = state

    def _actions(self, model: Pi0, obs: Observation, key) -> Float[Array, "b h d"]:
        if self.mode == "flow":
            return model.sample_actions(key, obs, num_steps=self.num_steps)
        from pi0lite.toy.train import mse_actions

        return mse_actions(model, obs)

    def observation(self, images: UInt8[np.ndarray, "b s s 3"], state: Float[np.ndarray, "b 4"],
                    instructions: Sequence[str]) -> Observation:
        """Raw arrays → a normalised, padded, tokenised :class:`Observation`."""
        images, state = np.asarray(images), np.asarray(state, np.float32)
        if len(instructions) != len(state) or len(images) != len(state):
            raise ValueError(f"images {images.shape}, state {state.shape} and {len(instructions)} instructions "
                             "must have the same batch size")
        ids, mask = tokenize_batch(self.tokenizer, list(instructions), self.config.max_token_len)
        state = pad_to_dim(self.norm["state"].normalize(state), self.config.action_dim)
        return Observation.from_numpy({self.config.image_keys[0]: images}, state, ids, mask)

    def infer(self, images, state, instructions, key: jax.Array) -> Float[np.ndarray, "b h k"]:
        """Raw action chunks ``[b, H, 2]`` (un-normalised velocities)."""
        out = np.asarray(self._run(self._state, self.observation(images, state, instructions), key))
        return self.norm["actions"].unnormalize(out)[..., :ACTION_DIMS]

    # --- checkpoint directory --------------------------------------------------------------

    def save(self, directory) -> None:
        d = pathlib.Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = {**self.meta, "mode": self.mode, "num_steps": self.num_steps}
        (d / "config.json").write_text(json.dumps({"model": dataclasses.asdict(self.config), "policy": meta}, indent=1))
        save_npz(self.model, d / "params.npz")
        save_stats(self.norm, d / "norm_stats.json")
        self.tokenizer.save(d / "tokenizer.json")

    @classmethod
    def load(cls, directory) -> "Policy":
        d = pathlib.Path(directory)
        if not (d / "params.npz").exists():
            raise ValueError(f"no policy checkpoint in {d} (params.npz missing)")
        cfg = json.loads((d / "config.json").read_text())
        model = Pi0(config_from_dict(cfg["model"]), rngs=nnx.Rngs(0))
        load_params(model, load_npz(d / "params.npz"))
        meta = dict(cfg["policy"])
        mode, num_steps = meta.pop("mode"), meta.pop("num_steps")
        return cls(model, load_stats(d / "norm_stats.json"), WordTokenizer.load(d / "tokenizer.json"),
                   mode=mode, num_steps=num_steps, meta=meta)


def load_shipped(variant: str = "flow") -> Policy:
    """A policy trained by ``make demo`` and shipped with the package: ``"flow"`` (pi0 + aux),
    ``"mse"`` (the regression baseline) or ``"noaux"`` (flow without the grounding loss)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    return Policy.load(ASSETS / VARIANTS[variant])


def shipped_results() -> dict:
    """The ``make demo`` results (and the no-aux ablation) that produced the shipped checkpoints."""
    return json.loads((ASSETS / "toy_results.json").read_text())
