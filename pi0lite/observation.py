"""What the policy sees, and the checks that turn bad input into clear errors.

Axis letters: b batch · y, x pixels · c colour · l prompt tokens · s state dims · h action
horizon · d action dims.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from pi0lite.config import Pi0Config


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Observation:
    """One batch of observations.

    images: camera name → float ``[b, S, S, 3]`` in [−1, 1] (RGB, channels last).
    image_masks: camera name → bool ``[b]``; False means the camera is missing for that example.
    state: float ``[b, s]`` with s ≤ ``action_dim`` (zero-padded inside the model).
    tokenized_prompt / tokenized_prompt_mask: ``[b, l]`` ids and validity, l ≤ ``max_token_len``.
    """

    images: dict[str, Float[Array, "b y x c"]]
    image_masks: dict[str, Bool[Array, "b"]]
    state: Float[Array, "b s"]
    tokenized_prompt: Int[Array, "b l"]
    tokenized_prompt_mask: Bool[Array, "b l"]

    @classmethod
    def from_numpy(
        cls,
        images: Mapping[str, np.ndarray],
        state: np.ndarray,
        tokenized_prompt: np.ndarray,
        tokenized_prompt_mask: np.ndarray | None = None,
        image_masks: Mapping[str, np.ndarray] | None = None,
    ) -> "Observation":
        """Build from arrays; uint8 images are mapped to [−1, 1] (``x/255·2 − 1``, as openpi)."""
        imgs = {}
        for name, img in images.items():
            img = np.asarray(img)
            imgs[name] = jnp.asarray(img.astype(np.float32) / 255.0 * 2.0 - 1.0 if img.dtype == np.uint8 else img, jnp.float32)
        b = np.asarray(state).shape[0]
        masks = {name: jnp.ones((b,), bool) for name in imgs}
        for name, m in (image_masks or {}).items():
            masks[name] = jnp.asarray(m, bool)
        prompt = jnp.asarray(tokenized_prompt, jnp.int32)
        pmask = prompt != 0 if tokenized_prompt_mask is None else jnp.asarray(tokenized_prompt_mask, bool)
        return cls(imgs, masks, jnp.asarray(state, jnp.float32), prompt, pmask)

    @property
    def batch_size(self) -> int:
        return self.state.shape[0]


def _shape(x) -> tuple[int, ...]:
    return tuple(np.shape(x))


def validate_observation(cfg: Pi0Config, obs: Observation) -> None:
    """Raise ``ValueError`` naming the field and both shapes for anything the model cannot use."""
    names, expected = set(obs.images), set(cfg.image_keys)
    if names != expected:
        missing, extra = sorted(expected - names), sorted(names - expected)
        raise ValueError(f"images: cameras must be {list(cfg.image_keys)}; missing {missing}, extra {extra}")
    if set(obs.image_masks) != expected:
        raise ValueError(f"image_masks: keys must be {list(cfg.image_keys)}, got {sorted(obs.image_masks)}")
    if len(_shape(obs.state)) != 2:
        raise ValueError(f"state must be [batch, state_dim], got shape {_shape(obs.state)}")
    b, s_dim = _shape(obs.state)
    if s_dim > cfg.action_dim:
        raise ValueError(f"state has {s_dim} dims, more than action_dim={cfg.action_dim}: shape {_shape(obs.state)}")
    size = cfg.vision.image_size
    for name in cfg.image_keys:
        want = (b, size, size, 3)
        if _shape(obs.images[name]) != want:
            raise ValueError(f"images[{name!r}] must have shape {want}, got {_shape(obs.images[name])}")
        if _shape(obs.image_masks[name]) != (b,):
            raise ValueError(f"image_masks[{name!r}] must have shape {(b,)}, got {_shape(obs.image_masks[name])}")
    p, pm = _shape(obs.tokenized_prompt), _shape(obs.tokenized_prompt_mask)
    if len(p) != 2 or p[0] != b:
        raise ValueError(f"tokenized_prompt must be [batch={b}, tokens], got shape {p}")
    if p[1] > cfg.max_token_len:
        raise ValueError(f"tokenized_prompt has {p[1]} tokens, more than max_token_len={cfg.max_token_len}: shape {p}")
    if pm != p:
        raise ValueError(f"tokenized_prompt_mask shape {pm} must equal tokenized_prompt shape {p}")


def validate_actions(cfg: Pi0Config, actions, batch_size: int, name: str = "actions") -> None:
    shape = _shape(actions)
    want = (batch_size, cfg.action_horizon)
    if len(shape) != 3 or shape[:2] != want:
        raise ValueError(f"{name} must be [batch={batch_size}, action_horizon={cfg.action_horizon}, dims], got {shape}")
    if shape[2] > cfg.action_dim:
        raise ValueError(f"{name} have {shape[2]} dims, more than action_dim={cfg.action_dim}: shape {shape}")
    if not isinstance(actions, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(actions))):
        bad = np.argwhere(~np.isfinite(np.asarray(actions)))[0].tolist()
        raise ValueError(f"{name} contain NaN or inf (first at index {bad}), shape {shape}")


def pad_to_dim(x: Float[Array, "... s"], dim: int) -> Float[Array, "... d"]:
    """Zero-pad the last axis up to ``dim`` (openpi's ``pad_to_dim``); never truncates."""
    if x.shape[-1] > dim:
        raise ValueError(f"cannot pad last axis of shape {x.shape} down to {dim}")
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, dim - x.shape[-1])])


def pad_prompt(ids, mask, length: int):
    """Right-pad prompt ids (with 0) and mask (with False) to ``length`` tokens."""
    extra = length - ids.shape[1]
    return jnp.pad(ids, ((0, 0), (0, extra))), jnp.pad(mask.astype(bool), ((0, 0), (0, extra)))
