"""What the policy sees, and the checks that turn bad input into clear errors.

Axis letters (legend in :mod:`pi0lite`): b batch · y, x pixel rows/columns (colour: the literal 3) ·
r prompt token slots · a action steps · j action dims (the state's dims are at most j).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, Shaped

from pi0lite.config import Pi0Config



#: Float images may exceed [−1, 1] by this much (rounding of a uint8 → float conversion).
IMAGE_RANGE_TOL = 1e-5


def concrete_or_none(x) -> np.ndarray | None:
    """``x`` as a NumPy array if its values are known now (not a tracer, not a shape stand-in)."""
    if isinstance(x, jax.core.Tracer) or not isinstance(x, (np.ndarray, jax.Array)):
        return None
    return np.asarray(x)


def _check_finite(name: str, x) -> None:
    values = concrete_or_none(x)
    if values is not None and values.dtype.kind == "f" and not np.all(np.isfinite(values)):
        bad = np.argwhere(~np.isfinite(values))
        raise ValueError(
            f"{name} contains NaN or inf ({len(bad)} values, first at index {bad[0].tolist()}), shape {values.shape}"
        )


def image_to_model(
    name: str, image: Shaped[ArrayLike, "b y x 3"]
) -> Float[ArrayLike, "b y x 3"]:
    """A camera image as the model wants it: float in [−1, 1].

    uint8 is mapped with ``x/255·2 − 1`` (openpi's conversion, float32); float images must already
    be in [−1, 1] and are returned unchanged. Anything else — float in [0, 255], int, bool — raises
    a ``ValueError`` naming the camera, the dtype and the observed range. Value checks (range,
    NaN/inf) run only on concrete arrays, so this also works inside ``jit`` (where only the dtype
    can be checked).
    """
    dtype = np.dtype(image.dtype)
    if dtype == np.uint8:
        return jnp.asarray(image, jnp.float32) / 255.0 * 2.0 - 1.0
    values = concrete_or_none(image)
    observed = "" if values is None or values.size == 0 else f" (observed range [{values.min()}, {values.max()}])"
    if dtype.kind != "f":
        raise ValueError(
            f"images[{name!r}] has dtype {dtype}{observed}; expected uint8 (0..255, mapped to [-1, 1]) "
            "or float in [-1, 1]"
        )
    _check_finite(f"images[{name!r}]", image)
    if values is not None and values.size and (values.min() < -1 - IMAGE_RANGE_TOL or values.max() > 1 + IMAGE_RANGE_TOL):
        raise ValueError(
            f"images[{name!r}]: float values must be in [-1, 1]{observed}; pass uint8 images "
            "(mapped to [-1, 1]) or rescale them, e.g. x / 127.5 - 1 for [0, 255]"
        )
    return image


def _check_prompt_ids(ids, vocab_size: int | None = None) -> None:
    dtype = getattr(ids, "dtype", None)
    if dtype is None:
        return
    if np.dtype(dtype).kind not in "iu":
        raise ValueError(f"tokenized_prompt must hold integer ids, got dtype {np.dtype(dtype)}")
    values = concrete_or_none(ids)
    if values is None or values.size == 0:
        return
    if values.min() < 0:
        raise ValueError(f"tokenized_prompt contains negative ids (min {values.min()}); ids must be in [0, vocab_size)")
    if vocab_size is not None and values.max() >= vocab_size:
        raise ValueError(
            f"tokenized_prompt contains id {values.max()} >= vocab_size={vocab_size}; ids must be in [0, {vocab_size})"
        )


def batch_sizes(obs: "Observation") -> dict[str, int]:
    """The leading (batch) size of every array field, by field name."""
    sizes = {}
    for field, value in (
        *((f"images[{k!r}]", v) for k, v in obs.images.items()),
        *((f"image_masks[{k!r}]", v) for k, v in obs.image_masks.items()),
        ("state", obs.state),
        ("tokenized_prompt", obs.tokenized_prompt),
        ("tokenized_prompt_mask", obs.tokenized_prompt_mask),
        *((f.name, getattr(obs, f.name)) for f in dataclasses.fields(obs)[5:]),
    ):
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape):
            sizes[field] = shape[0]
    return sizes


def check_batch_sizes(obs: "Observation") -> None:
    """``ValueError`` naming the fields whose batch sizes disagree (grouped by size)."""
    sizes = batch_sizes(obs)
    if len(set(sizes.values())) > 1:
        groups: dict[int, list[str]] = {}
        for field, size in sizes.items():
            groups.setdefault(size, []).append(field)
        detail = "; ".join(f"{size}: {', '.join(fields)}" for size, fields in groups.items())
        raise ValueError(f"observation fields disagree on the batch size — {detail}")


# no_type_check: JAX rebuilds registered pytrees with placeholder leaves (None, tracers' specs), so
# the field annotations document the shapes; a jaxtyping hook must not check the generated __init__.
@typing.no_type_check
@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Observation:
    """One batch of observations.

    images: camera name → ``[b, y, x, 3]`` float in [−1, 1], or uint8 (mapped to [−1, 1] here).
    image_masks: camera name → bool ``[b]``; False means the camera is missing for that example.
    state: float ``[b, j]`` with j ≤ ``action_dim`` (zero-padded inside the model).
    tokenized_prompt / tokenized_prompt_mask: ``[b, r]`` integer ids and validity, r ≤ ``max_token_len``.

    Construction checks what enters the model: image dtype and range, NaN/inf in images and
    state, negative or non-integer prompt ids, and (when no field is traced) that all fields
    share one batch size. Value checks are skipped for traced arrays, so building an
    ``Observation`` inside ``jit`` still works; check data where it enters, outside ``jit``.
    """

    images: dict[str, Float[Array, "b y x 3"]]
    image_masks: dict[str, Bool[Array, "b"]]
    state: Float[Array, "b _j"]
    tokenized_prompt: Int[Array, "b _r"]
    tokenized_prompt_mask: Bool[Array, "b _r"]

    def __post_init__(self):
        # leaves without a dtype are pytree placeholders (jax.tree.map / eval_shape bookkeeping)
        images = {name: img if not hasattr(img, "dtype") else image_to_model(name, img) for name, img in self.images.items()}
        object.__setattr__(self, "images", images)
        _check_finite("state", self.state)
        _check_prompt_ids(self.tokenized_prompt)
        leaves = jax.tree.leaves(self)
        if leaves and all(concrete_or_none(x) is not None for x in leaves):
            check_batch_sizes(self)

    @classmethod
    def from_numpy(
        cls,
        images: Mapping[str, np.ndarray],
        state: np.ndarray,
        tokenized_prompt: np.ndarray,
        tokenized_prompt_mask: np.ndarray | None = None,
        image_masks: Mapping[str, np.ndarray] | None = None,
    ) -> "Observation":
        """Build from arrays; uint8 images are mapped to [−1, 1] (``x/255·2 − 1``, as openpi).

        Missing ``image_masks`` mean every camera is present; a missing prompt mask is
        ``tokenized_prompt != 0``.
        """
        imgs = {name: jnp.asarray(image_to_model(name, np.asarray(img)), jnp.float32) for name, img in images.items()}
        state = np.asarray(state)
        b = state.shape[0] if state.ndim else 0
        masks = {name: jnp.ones((b,), bool) for name in imgs}
        for name, m in (image_masks or {}).items():
            masks[name] = jnp.asarray(m, bool)
        prompt = np.asarray(tokenized_prompt)
        _check_prompt_ids(prompt)
        prompt = jnp.asarray(prompt, jnp.int32)
        pmask = prompt != 0 if tokenized_prompt_mask is None else jnp.asarray(tokenized_prompt_mask, bool)
        _check_finite("state", state)
        return cls(imgs, masks, jnp.asarray(state, jnp.float32), prompt, pmask)

    @property
    def batch_size(self) -> int:
        return self.state.shape[0]


def _shape(x) -> tuple[int, ...]:
    return tuple(np.shape(x))


def validate_observation(cfg, obs: Observation) -> None:
    """Raise ``ValueError`` naming the field and both shapes for anything the model cannot use.

    ``cfg`` is a :class:`pi0lite.config.Pi0Config` or a ``Pi0FastConfig``. Concrete prompt ids
    are also checked against ``cfg.vocab_size`` (an embedding lookup would silently clamp them).
    """
    check_batch_sizes(obs)
    names, expected = set(obs.images), set(cfg.image_keys)
    if names != expected:
        missing, extra = sorted(expected - names), sorted(names - expected)
        raise ValueError(f"images: cameras must be {list(cfg.image_keys)}; missing {missing}, extra {extra}")
    if set(obs.image_masks) != expected:
        raise ValueError(f"image_masks: keys must be {list(cfg.image_keys)}, got {sorted(obs.image_masks)}")
    if len(_shape(obs.state)) != 2:
        raise ValueError(f"state must be [batch, state_dim], got shape {_shape(obs.state)}")
    b, s_dim = _shape(obs.state)
    if b == 0:
        raise ValueError(f"the observation is an empty batch (0 examples): state shape {_shape(obs.state)}")
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
    _check_prompt_ids(obs.tokenized_prompt, cfg.vocab_size)


def validate_actions(cfg: Pi0Config, actions, batch_size: int, name: str = "actions") -> None:
    shape = _shape(actions)
    want = (batch_size, cfg.action_horizon)
    if len(shape) >= 1 and shape[0] != batch_size:
        raise ValueError(
            f"{name} have batch size {shape[0]} but the observation has {batch_size} (its state, images and "
            f"prompt): shape {shape}"
        )
    if len(shape) != 3 or shape[:2] != want:
        raise ValueError(f"{name} must be [batch={batch_size}, action_horizon={cfg.action_horizon}, dims], got {shape}")
    if shape[2] > cfg.action_dim:
        raise ValueError(f"{name} have {shape[2]} dims, more than action_dim={cfg.action_dim}: shape {shape}")
    if not isinstance(actions, jax.core.Tracer) and not np.all(np.isfinite(np.asarray(actions))):
        bad = np.argwhere(~np.isfinite(np.asarray(actions)))[0].tolist()
        raise ValueError(f"{name} contain NaN or inf (first at index {bad}), shape {shape}")


def pad_to_dim(x: Float[ArrayLike, "*lead _j"], dim: int) -> Float[Array, "*lead j"]:
    """Zero-pad the last axis up to ``dim`` (openpi's ``pad_to_dim``); never truncates."""
    if x.shape[-1] > dim:
        raise ValueError(f"cannot pad last axis of shape {x.shape} down to {dim}")
    return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, dim - x.shape[-1])])


def pad_prompt(ids, mask, length: int):
    """Right-pad prompt ids (with 0) and mask (with False) to ``length`` tokens."""
    extra = length - ids.shape[1]
    return jnp.pad(ids, ((0, 0), (0, extra))), jnp.pad(mask.astype(bool), ((0, 0), (0, extra)))
