"""pi0-FAST: one Gemma expert that reads images + prompt and *writes* the action chunk as tokens.

Axis letters (legend in :mod:`pi0lite`): b batch · t sequence (image tokens + text slots) ·
r text slots · d width · v vocabulary · s cache slots · o decoded tokens · a action steps · j action dims.

Sequence = [image tokens of each camera, in ``config.image_keys`` order] + [text slots]; the text
is ``BOS "Task: …, State: …;\\n"`` (ar 0) + ``"Action: " FAST… "|" EOS`` (ar 1, loss on) — see
:mod:`pi0lite.fast.prompt`. The mask is a prefix-LM: images and the task text attend to each
other bidirectionally, the action tokens causally. Output logits use the tied input embedding.

Training (``compute_loss``) is next-token cross-entropy on the loss-masked tokens, on
positions ``0 … n−2`` (openpi passes no positions there, so padding and missing cameras take up
positions). Generation prefills the prompt into a fixed-size KV cache and decodes one token at a
time. Rows are first right-aligned (padding moved to the front) so the next token always goes
into the same cache slot for every row, as openpi does.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from pi0lite.config import FAST_IMAGE_KEYS, GEMMA_DUMMY, SIGLIP_MU_14, GemmaConfig, VisionConfig, require_positive
from pi0lite.fast import decode as fast_decode
from pi0lite.gemma import Gemma
from pi0lite.masks import make_attn_mask
from pi0lite.observation import Observation, pad_prompt, validate_observation
from pi0lite.vision import SigLIP

__all__ = ["FastObservation", "Pi0Fast", "Pi0FastConfig"]


@dataclass(frozen=True, kw_only=True)
class Pi0FastConfig:
    """pi0-FAST sizes. ``action_dim`` is only used to validate the state (s ≤ action_dim)."""

    action_dim: int
    action_horizon: int
    max_token_len: int
    vocab_size: int
    image_keys: tuple[str, ...]
    paligemma: GemmaConfig
    vision: VisionConfig
    dtype: str = "float32"
    eos_id: int = 1
    pad_id: int = 0

    def __post_init__(self):
        require_positive(self, "action_dim", "action_horizon", "max_token_len", "vocab_size")
        if not isinstance(self.image_keys, tuple) or not self.image_keys or len(set(self.image_keys)) != len(self.image_keys):
            raise ValueError(f"Pi0FastConfig.image_keys must be a non-empty tuple of unique names, got {self.image_keys!r}")

    @property
    def num_image_tokens(self) -> int:
        return len(self.image_keys) * self.vision.num_patches

    @property
    def seq_len(self) -> int:
        return self.num_image_tokens + self.max_token_len

    def replace(self, **changes) -> "Pi0FastConfig":
        return dataclasses.replace(self, **changes)


#: The sizes of ../shared/parity/pi0fast_seed0.npz (openpi's dummy Gemma, SigLIP mu/14, vocab 1024).
OPENPI_FAST_DUMMY = Pi0FastConfig(
    action_dim=7, action_horizon=10, max_token_len=64, vocab_size=1024, image_keys=FAST_IMAGE_KEYS,
    paligemma=GEMMA_DUMMY,
    vision=SIGLIP_MU_14,
)


@typing.no_type_check  # a pytree rebuilt by JAX with placeholder leaves (see Observation)
@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class FastObservation(Observation):
    """An :class:`Observation` plus the per-token ``token_ar_mask`` / ``token_loss_mask`` ``[b, r]``.

    At inference both may be None (the prompt is then one bidirectional block, no loss).
    """

    token_ar_mask: Int[Array, "b _r"] | None = None
    token_loss_mask: Bool[Array, "b _r"] | None = None

    @classmethod
    def from_tokens(cls, images, state, tokens: dict, image_masks=None) -> "FastObservation":
        """Build from images/state and the dict of :meth:`pi0lite.fast.prompt.FastPrompt.tokenize`."""
        base = Observation.from_numpy(images, state, tokens["tokenized_prompt"], tokens["tokenized_prompt_mask"], image_masks)
        ar, loss = tokens.get("token_ar_mask"), tokens.get("token_loss_mask")
        return cls(
            base.images, base.image_masks, base.state, base.tokenized_prompt, base.tokenized_prompt_mask,
            None if ar is None else jnp.asarray(ar, jnp.int32), None if loss is None else jnp.asarray(loss, bool),
        )


class Pi0Fast(nnx.Module):
    def __init__(self, config: Pi0FastConfig, *, rngs: nnx.Rngs):
        self.config = config
        llm = Gemma([config.paligemma], vocab_size=config.vocab_size, rngs=rngs, dtype=config.dtype)
        img = SigLIP(config.vision, config.paligemma.width, rngs=rngs)
        self.PaliGemma = nnx.Dict(llm=llm, img=img)

    @property
    def llm(self) -> Gemma:
        return self.PaliGemma["llm"]

    # --- embeddings ----------------------------------------------------------------------

    def embed_inputs(self, obs: Observation) -> tuple[Float[Array, "b t d"], Bool[Array, "b t"], Int[Array, "b t"]]:
        """Image tokens, then text embeddings; per-token input mask and (per-example) ar mask."""
        validate_observation(self.config, obs)
        tokens, masks, ars = [], [], []
        for name in self.config.image_keys:
            img = self.PaliGemma["img"](obs.images[name])
            tokens.append(img.astype(self.llm.dtype))
            masks.append(jnp.broadcast_to(obs.image_masks[name][:, None], img.shape[:2]))
            ars.append(jnp.zeros(img.shape[:2], jnp.int32))
        L = self.config.max_token_len
        ids, ids_mask = pad_prompt(obs.tokenized_prompt, obs.tokenized_prompt_mask, L)
        ar = getattr(obs, "token_ar_mask", None)
        for name in ("token_ar_mask", "token_loss_mask"):
            value = getattr(obs, name, None)
            if value is not None and tuple(value.shape) != tuple(obs.tokenized_prompt.shape):
                raise ValueError(f"{name} shape {tuple(value.shape)} must equal tokenized_prompt shape {tuple(obs.tokenized_prompt.shape)}")
        ar = jnp.zeros(ids.shape, jnp.int32) if ar is None else jnp.pad(jnp.asarray(ar, jnp.int32), ((0, 0), (0, L - ar.shape[1])))
        tokens.append(self.llm.embedder.encode(ids).astype(self.llm.dtype))
        masks.append(ids_mask)
        ars.append(ar)
        return jnp.concatenate(tokens, 1), jnp.concatenate(masks, 1), jnp.concatenate(ars, 1)

    # --- training ------------------------------------------------------------------------

    def pre_logits(self, obs: Observation) -> Float[Array, "b _ d"]:
        """Final-norm outputs at text slots ``0 … r−2`` (each predicts the next text token)."""
        tokens, input_mask, ar = self.embed_inputs(obs)
        attn = make_attn_mask(input_mask, ar)[:, :-1, :-1]
        b, n = input_mask.shape
        positions = jnp.broadcast_to(jnp.arange(n - 1), (b, n - 1))  # openpi: no positions in training
        (out,), _ = self.llm([tokens[:, :-1]], positions=positions, mask=attn)
        return out[:, -(self.config.max_token_len - 1) :]

    def token_logp(self, obs: Observation) -> tuple[Float[Array, "b _"], Float[Array, "b _ v"]]:
        """log p(text token j+1 | everything before) for the text slots, and the full log-probs."""
        L = self.config.max_token_len
        logits = self.llm.embedder.decode(self.pre_logits(obs)).astype(jnp.float32)
        logp = jax.nn.log_softmax(logits, axis=-1)
        ids, _ = pad_prompt(obs.tokenized_prompt, obs.tokenized_prompt_mask, L)
        target = jnp.take_along_axis(logp, ids[:, 1:, None], axis=-1)[..., 0]
        return target, logp

    def compute_loss(self, key: jax.Array | None, obs: FastObservation, actions=None) -> Float[Array, "b"]:
        """Mean next-token cross-entropy over the loss-masked tokens, per example.

        ``key`` and ``actions`` are accepted for API symmetry with pi0 and unused: the actions are
        already in ``obs`` as FAST tokens.
        """
        if obs.token_loss_mask is None:
            raise ValueError("compute_loss needs obs.token_loss_mask (tokenize with actions=...)")
        target, _ = self.token_logp(obs)
        L = self.config.max_token_len
        loss_mask = jnp.pad(obs.token_loss_mask, ((0, 0), (0, L - obs.token_loss_mask.shape[1])))[:, 1:]
        loss_mask = loss_mask.astype(jnp.float32)
        return -jnp.sum(target * loss_mask, -1) / jnp.maximum(jnp.sum(loss_mask, -1), 1.0)

    # --- generation ----------------------------------------------------------------------

    def generate(
        self,
        key: jax.Array | None,
        obs: Observation,
        *,
        max_steps: int = 256,
        temperature: float = 0.0,
        use_cache: bool = True,
        openpi_positions: bool = False,
    ) -> Int[Array, "b o"]:
        """Decode up to ``max_steps`` tokens after the prompt (greedy at ``temperature=0``).

        Rows are right-aligned, prefilled into a KV cache, then decoded one token per step until
        every row has emitted EOS. ``openpi_positions=True`` uses openpi's decode positions (one
        higher than training). ``use_cache=False`` recomputes everything per step (greedy only).
        Tokens after the stop are 0.
        """
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        if not temperature >= 0.0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
        if not use_cache:
            if temperature != 0.0:
                raise ValueError("use_cache=False supports greedy decoding only (temperature=0)")
            return fast_decode.generate_uncached(self, obs, max_steps=max_steps, openpi_positions=openpi_positions)
        if key is None:
            if temperature != 0.0:
                raise ValueError(f"temperature={temperature} samples tokens: pass a key (jax.random.key(...)), got None")
            key = jax.random.key(0)  # greedy decoding draws nothing; the key is a placeholder
        tokens, _ = fast_decode.generate_jit(
            self, obs, key, max_steps=max_steps, temperature=float(temperature), openpi_positions=openpi_positions
        )
        return tokens

    def sample_actions(
        self, key: jax.Array | None, obs: Observation, prompt, *, max_steps: int = 256, temperature: float = 0.0,
        zero_invalid: bool = False, **kwargs,
    ) -> tuple[Float[np.ndarray, "b a j"], Bool[np.ndarray, "b"], Int[Array, "b o"]]:
        """Generate, then turn tokens back into actions: ``(actions [b, a, j], valid [b], tokens [b, o])``.

        ``prompt`` is the :class:`pi0lite.fast.prompt.FastPrompt` the model was trained with.
        """
        if prompt.text.eos_id != self.config.eos_id:
            raise ValueError(f"the text tokenizer's eos_id ({prompt.text.eos_id}) differs from config.eos_id ({self.config.eos_id})")
        tokens = self.generate(key, obs, max_steps=max_steps, temperature=temperature, **kwargs)
        actions, valid = prompt.extract_actions(np.asarray(tokens), zero_invalid=zero_invalid)
        return actions, valid, tokens
