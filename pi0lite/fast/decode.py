"""Autoregressive decoding for pi0-FAST: prefill a fixed-size KV cache, then one token per step.

Axis letters (legend in :mod:`pi0lite`): b batch · t prompt sequence (images + text slots) ·
s cache slots (t + steps) · o decoded tokens · v vocabulary · d width.

1. Embed the prompt and right-align every row (padding to the front), so that decoded token
   ``j`` of every row goes into cache slot ``n + j``.
2. **Prefill**: one pass over the prompt writes its keys/values into slots ``0 … n−1`` of a
   zero cache of ``n + max_steps`` slots; the logits of the last prompt token give token 0.
3. **Decode** step ``j``: embed token ``j``, run it alone at RoPE position ``prefill_len + j``
   (exactly the position it had in training) against the cache, write its k/v into slot
   ``n + j``, and pick token ``j + 1`` from its logits (argmax, or a sample at ``temperature``).
   Stop when every row has emitted EOS, or after ``max_steps`` tokens.

``openpi_positions=True`` reproduces openpi's decode positions ``prefill_len + j + 1`` (one
higher than training; openpi issue #705), which the parity file was made with.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float, Int, Shaped

from pi0lite.gemma import KVCache
from pi0lite.masks import make_attn_mask, make_positions


def left_to_right_align(x: Shaped[Array, "b t *rest"], mask: Bool[Array, "b t"]) -> Shaped[Array, "b t *rest"]:
    """Roll each row left by ``last valid index + 1`` so its valid tokens end at the right edge."""
    last = mask.shape[1] - jnp.argmax(mask[:, ::-1], axis=1)  # index after the last valid token
    return jax.vmap(lambda row, shift: jnp.roll(row, -shift, axis=0))(x, last)


def align_prompt(model, obs) -> tuple[Float[Array, "b t d"], Bool[Array, "b t"], Shaped[Array, "b t"]]:
    """Embedded prompt, right-aligned: ``(tokens [b,t,d], input_mask [b,t], ar [b,t])``."""
    tokens, mask, ar = model.embed_inputs(obs)
    return left_to_right_align(tokens, mask), left_to_right_align(mask, mask), left_to_right_align(ar, mask)


def prefill(model, obs, max_steps: int) -> tuple[Float[Array, "b v"], KVCache, Bool[Array, "b t"]]:
    """Run the prompt once into a cache of ``n + max_steps`` slots; return logits of its last token."""
    tokens, mask, ar = align_prompt(model, obs)
    b, n = mask.shape
    cfg = model.config.paligemma
    attn = jnp.pad(make_attn_mask(mask, ar), ((0, 0), (0, 0), (0, max_steps)))
    empty = jnp.zeros((cfg.depth, b, n + max_steps, cfg.num_kv_heads, cfg.head_dim), model.llm.dtype)
    (out,), kv = model.llm([tokens], positions=make_positions(mask), mask=attn, kv_cache=(empty, empty), cache_index=0)
    logits = model.llm.embedder.decode(out[:, -1:])[:, 0].astype(jnp.float32)
    return logits, kv, mask


def decode_step(
    model, token: Int[Array, "b"], kv: KVCache, mask: Bool[Array, "b t"], step: int | Int[Array, ""], *,
    position_offset: int | Int[Array, ""],
) -> tuple[Float[Array, "b v"], KVCache]:
    """Feed token ``step`` (already chosen) and return the logits for the next one and the cache."""
    b, n = mask.shape
    slots = kv[0].shape[2]
    prefill_len = jnp.sum(mask, axis=1)
    x = model.llm.embedder.encode(token[:, None]).astype(model.llm.dtype)
    positions = (prefill_len + step + position_offset)[:, None]
    cols = jnp.arange(slots)
    new = (cols >= n) & (cols <= n + step)
    attn = (jnp.pad(mask, ((0, 0), (0, slots - n))) | new[None, :])[:, None, :]
    (out,), kv = model.llm([x], positions=positions, mask=attn, kv_cache=kv, cache_index=n + step)
    return model.llm.embedder.decode(out)[:, 0].astype(jnp.float32), kv


def _pick(logits: Float[Array, "b v"], key: jax.Array, temperature: float) -> Int[Array, "b"]:
    if temperature == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    return jax.random.categorical(key, logits / temperature, axis=-1).astype(jnp.int32)


def generate(
    model, obs, key: jax.Array, *, max_steps: int, temperature: float = 0.0, openpi_positions: bool = False
) -> tuple[Int[Array, "b o"], Int[Array, ""]]:
    """Cached decoding. Returns the tokens ``[b, max_steps]`` (0 after the stop) and the step count.

    Plain traceable code: call it inside a compiled function (a policy's ``jax.jit`` on split
    state, :mod:`pi0lite.compiled`), or through :data:`generate_jit` (``Pi0Fast.generate``).
    """
    logits, kv, mask = prefill(model, obs, max_steps)
    b = mask.shape[0]
    eos = model.config.eos_id

    def cond(carry):
        step, _, _, _, done, _ = carry
        return (step < max_steps) & ~jnp.all(done)

    def body(carry):
        step, out, logits, kv, done, key = carry
        key, sub = jax.random.split(key)
        token = _pick(logits, sub, temperature)
        out = out.at[:, step].set(token)
        done = done | (token == eos)
        logits, kv = decode_step(model, token, kv, mask, step, position_offset=int(openpi_positions))
        return step + 1, out, logits, kv, done, key

    init = (jnp.int32(0), jnp.zeros((b, max_steps), jnp.int32), logits, kv, jnp.zeros((b,), bool), key)
    steps, out, *_ = jax.lax.while_loop(cond, body, init)
    return out, steps


#: :func:`generate` under ``nnx.jit`` (the module is an argument; what ``Pi0Fast.generate`` calls).
generate_jit = nnx.jit(generate, static_argnames=("max_steps", "temperature", "openpi_positions"))


def generate_uncached(model, obs, *, max_steps: int, openpi_positions: bool = False) -> Int[Array, "b o"]:
    """Greedy decoding that recomputes the whole sequence every step (slow; the cache's reference)."""
    tokens, mask, ar = align_prompt(model, obs)
    b, n = mask.shape
    prefill_len = jnp.sum(mask, axis=1, keepdims=True)
    out = []
    for j in range(max_steps):
        seq = tokens
        if out:
            seq = jnp.concatenate([tokens, model.llm.embedder.encode(jnp.stack(out, 1)).astype(tokens.dtype)], 1)
        full_mask = jnp.concatenate([mask, jnp.ones((b, j), bool)], 1)
        full_ar = jnp.concatenate([ar, jnp.ones((b, j), jnp.int32)], 1)
        positions = jnp.concatenate([make_positions(mask), prefill_len + jnp.arange(j) + int(openpi_positions)], 1)
        (h,), _ = model.llm([seq], positions=positions, mask=make_attn_mask(full_mask, full_ar))
        out.append(jnp.argmax(model.llm.embedder.decode(h[:, -1:])[:, 0], -1).astype(jnp.int32))
        if bool(jnp.all(jnp.any(jnp.stack(out, 1) == model.config.eos_id, axis=1))):
            break
    result = jnp.zeros((b, max_steps), jnp.int32)
    return result.at[:, : len(out)].set(jnp.stack(out, 1))
