"""pi0: a vision-language prefix expert and an action expert trained by flow matching.

Axis letters (legend in :mod:`pi0lite`): b batch · p prefix tokens · q suffix tokens · t all tokens
(p + q) · a action steps (horizon) · j action dims · d VLM width · e action-expert width · n heads.

Token layout (openpi):
  prefix = [image tokens of each camera, in ``config.image_keys`` order] + [prompt tokens]   (ar 0)
  pi0    suffix = [state token] (ar 1) + [H action tokens, each mixed with the time embedding]  (ar 1, 0…)
  pi0.5  suffix = [H action tokens] (ar 1, 0…); the time drives the action expert's adaRMS norms
Time convention (see ``pi0lite.flow``): t = 1 is noise, t = 0 is data.
The time is one scalar per example ``[b]`` (openpi) or one per action token ``[b, a]``
(training-time real-time chunking, :mod:`pi0lite.rtc`: committed actions sit at t = 0); with every
token at the same time both give the same numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, ArrayLike, Bool, Float

from pi0lite import flow
from pi0lite.config import Pi0Config
from pi0lite.gemma import Gemma, KVCache
from pi0lite.init import linear
from pi0lite.masks import make_attn_mask, make_positions, prefix_ar_mask, suffix_ar_mask
from pi0lite.observation import (
    Observation,
    concrete_or_none,
    pad_prompt,
    pad_to_dim,
    validate_actions,
    validate_observation,
)
from pi0lite.vision import SigLIP

__all__ = ["Observation", "Pi0"]


class Pi0(nnx.Module):
    def __init__(self, config: Pi0Config, *, rngs: nnx.Rngs):
        self.config = config
        pg, ax = config.paligemma, config.action_expert
        layers = {"scan_layers": config.scan_layers, "remat": config.remat}
        llm = Gemma(
            [pg, ax], vocab_size=config.vocab_size, rngs=rngs, dtype=config.dtype, adarms=(False, config.pi05),
            **layers,
        )
        img = SigLIP(config.vision, pg.width, rngs=rngs, **layers)
        self.PaliGemma = nnx.Dict(llm=llm, img=img)
        self.action_in_proj = linear(config.action_dim, ax.width, rngs=rngs)
        if config.pi05:
            self.time_mlp_in = linear(ax.width, ax.width, rngs=rngs)
            self.time_mlp_out = linear(ax.width, ax.width, rngs=rngs)
        else:
            self.state_proj = linear(config.action_dim, ax.width, rngs=rngs)
            self.action_time_mlp_in = linear(2 * ax.width, ax.width, rngs=rngs)
            self.action_time_mlp_out = linear(ax.width, ax.width, rngs=rngs)
        self.action_out_proj = linear(ax.width, config.action_dim, rngs=rngs)

    # --- embeddings ----------------------------------------------------------------------

    def embed_prefix(self, obs: Observation) -> tuple[Float[Array, "b p d"], Bool[Array, "b p"], Bool[Array, "p"]]:
        """Image tokens of every camera, then the prompt's text embeddings; one bidirectional block."""
        validate_observation(self.config, obs)
        tokens, masks = [], []
        for name in self.config.image_keys:
            img = self.PaliGemma["img"](obs.images[name])  # [b, i, d]
            tokens.append(img)
            masks.append(jnp.broadcast_to(obs.image_masks[name][:, None], img.shape[:2]))
        ids, ids_mask = pad_prompt(obs.tokenized_prompt, obs.tokenized_prompt_mask, self.config.max_token_len)
        tokens.append(self.PaliGemma["llm"].embedder.encode(ids))
        masks.append(ids_mask)
        tokens = jnp.concatenate(tokens, axis=1)
        return tokens, jnp.concatenate(masks, axis=1), jnp.asarray(prefix_ar_mask(tokens.shape[1]))

    def embed_suffix(
        self, obs: Observation, x_t: Float[Array, "b a j"], time: Float[Array, "b"] | Float[Array, "b a"]
    ) -> tuple[Float[Array, "b q e"], Bool[Array, "b q"], Bool[Array, "q"]]:
        """pi0: state token, then H action tokens ``MLP([action_in_proj(x_t), sincos(t)])``.

        pi0.5: H action tokens ``action_in_proj(x_t)`` only (see ``adarms_cond`` for the time).
        """
        cfg = self.config
        action_tokens = self.action_in_proj(x_t)  # [b, a, e]
        if cfg.pi05:
            tokens = action_tokens
        else:
            state = pad_to_dim(obs.state.astype(jnp.float32), cfg.action_dim)
            state_token = self.state_proj(state)[:, None, :]  # [b, 1, e]
            time_tokens = self._time_embedding(time, action_tokens.shape[1])  # [b, a, e]
            mixed = jnp.concatenate([action_tokens, time_tokens], axis=-1)  # [b, a, 2e]
            mixed = self.action_time_mlp_out(nnx.swish(self.action_time_mlp_in(mixed)))
            tokens = jnp.concatenate([state_token, mixed], axis=1)
        input_mask = jnp.ones(tokens.shape[:2], bool)
        return tokens, input_mask, jnp.asarray(suffix_ar_mask(cfg.action_horizon, pi05=cfg.pi05))

    def _time_embedding(self, time: Float[Array, "b"] | Float[Array, "b a"], a: int) -> Float[Array, "b a e"]:
        """Sine–cosine embedding of the time of each of the ``a`` action tokens (shared or per token)."""
        width = self.config.action_expert.width
        if time.ndim == 1:
            return jnp.broadcast_to(flow.posemb_sincos(time, width)[:, None, :], (time.shape[0], a, width))
        b, a_t = time.shape
        return flow.posemb_sincos(time.reshape(b * a_t), width).reshape(b, a_t, width)

    def adarms_cond(
        self, time: Float[Array, "b"] | Float[Array, "b a"]
    ) -> Float[Array, "b e"] | Float[Array, "b a e"] | None:
        """pi0.5: ``swish(time_mlp_out(swish(time_mlp_in(sincos(t)))))``, the adaRMS condition; pi0: None.

        A per-token time ``[b, a]`` gives a per-token condition ``[b, a, e]`` (pi0.5's suffix is
        exactly the ``a`` action tokens, so token i of the suffix is normed with its own time).
        """
        if not self.config.pi05:
            return None
        if time.ndim == 1:
            emb = flow.posemb_sincos(time, self.config.action_expert.width)
        else:
            emb = self._time_embedding(time, time.shape[1])
        return nnx.swish(self.time_mlp_out(nnx.swish(self.time_mlp_in(emb))))

    # --- one joint pass ------------------------------------------------------------------

    def forward(
        self, obs: Observation, x_t: Float[Array, "b a j"], time: Float[Array, "b"] | Float[Array, "b a"], *,
        record_attention: bool = False,
    ) -> tuple[Float[Array, "b a j"], Float[Array, "b p d"]]:
        """Velocity ``v_t`` from one pass over [prefix; suffix], and the final-normed prefix output."""
        prefix, prefix_mask, prefix_ar = self.embed_prefix(obs)
        suffix, suffix_mask, suffix_ar = self.embed_suffix(obs, x_t, time)
        input_mask = jnp.concatenate([prefix_mask, suffix_mask], axis=1)
        ar_mask = jnp.concatenate([prefix_ar, suffix_ar], axis=0)
        (prefix_out, suffix_out), _ = self.PaliGemma["llm"](
            [prefix, suffix],
            positions=make_positions(input_mask),
            mask=make_attn_mask(input_mask, ar_mask),
            record_attention=record_attention,
            adarms_cond=[None, self.adarms_cond(time)],
        )
        v_t = self.action_out_proj(suffix_out[:, -self.config.action_horizon :].astype(jnp.float32))
        return v_t, prefix_out

    def attention_maps(
        self, obs: Observation, x_t: Float[Array, "b a j"], time: Float[Array, "b"]
    ) -> list[Float[Array, "b n t t"]]:
        """Attention probabilities of every layer ``[b, heads, queries, keys]`` from one joint pass.

        Uses ``nnx.capture`` to collect what the attention ``sow``-ed; for plotting and teaching.
        """
        _, inter = nnx.capture(self.forward, nnx.Intermediate)(obs, x_t, time, record_attention=True)
        return list(inter["PaliGemma"]["llm"]["attn_probs"].get_value())

    def compute_loss(
        self,
        key: jax.Array,
        obs: Observation,
        actions: Float[ArrayLike, "b a _j"],
        *,
        noise: Float[ArrayLike, "b a j"] | None = None,
        time: Float[ArrayLike, "b"] | None = None,
    ) -> Float[Array, "b a"]:
        """Flow-matching loss per example and step: ``mean_d (v_t − (noise − actions))²``.

        ``actions`` narrower than ``action_dim`` are zero-padded; padded dims count in the loss
        (their target is just the noise), exactly as openpi.
        """
        cfg = self.config
        validate_observation(cfg, obs)
        b = obs.batch_size
        validate_actions(cfg, actions, b)
        actions = pad_to_dim(jnp.asarray(actions, jnp.float32), cfg.action_dim)
        _, noise_key, time_key = jax.random.split(key, 3)  # openpi's split: (preprocess, noise, time)
        if noise is None:
            noise = jax.random.normal(noise_key, actions.shape)
        if time is None:
            time = flow.sample_time(time_key, b)
        noise, time = jnp.asarray(noise, jnp.float32), jnp.asarray(time, jnp.float32)  # numpy in: jax from here
        validate_actions(cfg, noise, b, "noise")
        if noise.shape != actions.shape:
            raise ValueError(f"noise must have shape {actions.shape}, got {noise.shape}")
        if time.shape != (b,):
            raise ValueError(f"time must have shape {(b,)}, got {time.shape}")
        given_time = concrete_or_none(time)
        if given_time is not None and not np.all((given_time >= 0.0) & (given_time <= 1.0)):
            raise ValueError(f"time must be in [0, 1] (1 = noise, 0 = data), got values {given_time.tolist()}")
        x_t = flow.interpolate(noise, actions, time)
        v_t, _ = self.forward(obs, x_t, time)
        return jnp.mean(jnp.square(v_t - flow.target_velocity(noise, actions)), axis=-1)

    # --- sampling ------------------------------------------------------------------------

    def fill_prefix_cache(self, obs: Observation) -> tuple[KVCache, Bool[Array, "b p"]]:
        """Run the prefix once (VLM expert only) and return its keys/values and validity mask."""
        prefix, prefix_mask, prefix_ar = self.embed_prefix(obs)
        _, kv_cache = self.PaliGemma["llm"](
            [prefix, None],
            positions=make_positions(prefix_mask),
            mask=make_attn_mask(prefix_mask, prefix_ar),
        )
        return kv_cache, prefix_mask

    def velocity_cached(
        self, obs: Observation, kv_cache: KVCache, prefix_mask: Bool[Array, "b p"], x_t: Float[Array, "b a j"],
        time: Float[Array, "b"] | Float[Array, "b a"],
    ) -> Float[Array, "b a j"]:
        """Suffix-only pass against the cached prefix: the cost of one Euler step."""
        suffix, suffix_mask, suffix_ar = self.embed_suffix(obs, x_t, time)
        b, q = suffix_mask.shape
        prefix_cols = jnp.broadcast_to(prefix_mask[:, None, :], (b, q, prefix_mask.shape[1]))
        mask = jnp.concatenate([prefix_cols, make_attn_mask(suffix_mask, suffix_ar)], axis=-1)
        positions = jnp.sum(prefix_mask, axis=-1, keepdims=True) + make_positions(suffix_mask)
        (_, suffix_out), _ = self.PaliGemma["llm"](
            [None, suffix], positions=positions, mask=mask, kv_cache=kv_cache, adarms_cond=[None, self.adarms_cond(time)]
        )
        return self.action_out_proj(suffix_out[:, -self.config.action_horizon :].astype(jnp.float32))

    def sample_actions(
        self,
        key: jax.Array,
        obs: Observation,
        *,
        num_steps: int = 10,
        noise: Float[ArrayLike, "b a j"] | None = None,
        use_cache: bool = True,
        return_trajectory: bool = False,
    ):
        """Integrate from pure noise (t = 1) to actions (t = 0) with ``num_steps`` Euler steps.

        ``use_cache=True`` runs the prefix once into a KV cache and only the suffix per step;
        ``use_cache=False`` recomputes the whole sequence every step (same result, slower).
        Returns ``[b, a, j]`` (and the trajectory ``[num_steps + 1, b, a, j]`` if asked).
        """
        cfg = self.config
        if not isinstance(num_steps, (int, np.integer)) or isinstance(num_steps, bool) or num_steps < 1:
            raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
        validate_observation(cfg, obs)
        b = obs.batch_size
        shape = (b, cfg.action_horizon, cfg.action_dim)
        if noise is None:
            noise = jax.random.normal(key, shape)
        if tuple(noise.shape) != shape:
            raise ValueError(f"noise must have shape {shape}, got {tuple(noise.shape)}")
        dt = jnp.float32(-1.0 / num_steps)
        if use_cache:
            kv_cache, prefix_mask = self.fill_prefix_cache(obs)
            velocity = lambda x, t: self.velocity_cached(obs, kv_cache, prefix_mask, x, t)
        else:
            velocity = lambda x, t: self.forward(obs, x, t)[0]

        def step(carry, _):
            x, t = carry
            x = flow.euler_step(x, velocity(x, jnp.broadcast_to(t, (b,))), dt)
            return (x, t + dt), x

        # lax.scan compiles one step and loops it: compile time does not grow with num_steps.
        (x, _), steps = jax.lax.scan(step, (noise.astype(jnp.float32), jnp.float32(1.0)), length=num_steps)
        if return_trajectory:
            return x, jnp.concatenate([noise[None].astype(jnp.float32), steps])
        return x
