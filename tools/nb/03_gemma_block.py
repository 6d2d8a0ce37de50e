"""Builder of notebooks/03_gemma_block.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "03_gemma_block",
        "03 · One Gemma block: RMSNorm, RoPE, multi-query attention, GeGLU",
        """
        Both of pi0's transformers (the 2B vision-language model and the 300M action expert) are
        **Gemma** stacks: the same block repeated 18 times. In this notebook we take one block
        apart and rebuild its four pieces ourselves:

        1. **RMSNorm** with Gemma's `(1 + scale)`;
        2. **RoPE**, the rotary position embedding (half-split layout);
        3. **multi-query attention** with a *finite* mask value, and what `-inf` would do instead;
        4. the **GeGLU** feed-forward.

        Then we run a real (tiny) Gemma forward pass and look at its attention probabilities.
        """,
    )
    nb.code(
        """
        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from pi0lite.course import checks, viz
        from pi0lite.config import TINY
        from pi0lite.masks import MASK_VALUE, make_attn_mask, make_positions

        np.set_printoptions(precision=3, suppress=True)  # print arrays rounded
        key = jax.random.key(0)
        cfg = TINY.paligemma  # a tiny Gemma: same structure as gemma_2b, toy sizes
        print(f"width d={cfg.width}, depth={cfg.depth}, heads n={cfg.num_heads}, "
              f"kv heads k={cfg.num_kv_heads}, head dim h={cfg.head_dim}, GeGLU hidden f={cfg.mlp_dim}")
        """
    )
    nb.md(
        r"""
        ## The block and its shape legend

        A Gemma block is *pre-norm*: normalise, transform, add back to the residual stream.

        $$x \leftarrow x + \mathrm{Attention}(\mathrm{RMSNorm}_1(x)), \qquad
          x \leftarrow x + \mathrm{GeGLU}(\mathrm{RMSNorm}_2(x))$$

        After the last block one more RMSNorm (`final_norm`) is applied. The letters below are
        used in every einsum and annotation of `pi0lite/gemma.py` (they are part of the package's
        one axis legend, in the docstring of `pi0lite/__init__.py`):

        | letter | meaning | gemma_2b | TINY |
        | --- | --- | --- | --- |
        | b | batch | | |
        | t / s | query tokens / key tokens | | |
        | d | model width | 2048 | 64 |
        | n | query heads | 8 | 4 |
        | k | key/value heads | 1 | 1 |
        | g | query heads per kv head (n = k·g) | 8 | 4 |
        | h | head dim | 256 | 16 |
        | f | GeGLU hidden size | 16384 | 128 |
        | l | layers (depth) | 18 | 4 |
        """
    )
    # --- RMSNorm ---------------------------------------------------------------------------
    nb.md(
        r"""
        ## 1. RMSNorm with `(1 + scale)`

        RMSNorm rescales each token vector to unit root-mean-square; unlike LayerNorm it does not
        subtract the mean:

        $$\mathrm{RMSNorm}(x) = \frac{x}{\sqrt{\mathrm{mean}(x^2) + \epsilon}} \cdot (1 + \text{scale}),
          \qquad \epsilon = 10^{-6}$$

        Gemma stores the learned scale as an **offset from 1**: a freshly initialised `scale` is
        all zeros, so a new norm is the identity scaling. The mean runs over the last axis
        (the features `d`), separately for every token.

        ### Exercise 3.1 — RMSNorm

        Implement `rms_norm(x, scale)` for `x` of shape `[..., d]` and `scale` of shape `[d]`.
        """
    )
    nb.exercise(
        "3.1",
        "implement Gemma's RMSNorm",
        '''
        def rms_norm(x, scale):
            """x: [..., d]; scale: [d]. Returns x / sqrt(mean(x², last axis) + 1e-6) · (1 + scale)."""
            ### BEGIN SOLUTION
            mean_square = jnp.mean(jnp.square(x), axis=-1, keepdims=True)  # [..., 1]
            return x * jax.lax.rsqrt(mean_square + 1e-6) * (1.0 + scale)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_rms_norm(rms_norm)")
    nb.hint(
        """
        `jnp.mean(x**2, axis=-1, keepdims=True)` keeps a trailing axis of size 1, so the division
        broadcasts over `d`. `jax.lax.rsqrt(v)` is `1 / sqrt(v)`. Don't forget the `1 +`.
        """
    )
    nb.md("From here on we use the package version. With `scale = 0` every token comes out with RMS 1:")
    nb.code(
        """
        from pi0lite.gemma import rms_norm

        x = 5.0 * jax.random.normal(key, (2, 3, cfg.width))
        y = rms_norm(x, jnp.zeros(cfg.width))
        rms = jnp.sqrt(jnp.mean(y**2, axis=-1))
        np.testing.assert_allclose(rms, 1.0, atol=1e-4)
        print("RMS per token after the norm:", np.round(np.asarray(rms), 3))
        """
    )
    # --- RoPE --------------------------------------------------------------------------------
    nb.md(
        r"""
        ## 2. RoPE: positions as rotations

        Attention by itself does not know the order of tokens. Gemma adds order by **rotating**
        queries and keys by an angle proportional to the token's position. Split the head dim
        `h` into two halves, $x = [x_1, x_2]$, and pair dimension $j$ with $j + h/2$
        (the **half-split** layout; some other models pair neighbours $2j, 2j{+}1$ instead). Pair
        $j$ turns by $\theta_j = \text{pos} \cdot 10000^{-2j/h}$:

        $$\mathrm{RoPE}(x) = [\,x_1 \cos\theta - x_2 \sin\theta,\;\; x_2 \cos\theta + x_1 \sin\theta\,]$$

        Because both query and key are rotated, their dot product depends only on the
        **difference** of their positions. Positions come from `make_positions(input_mask)`
        (`cumsum − 1`, notebook 02), so padding does not advance them.

        ### Exercise 3.2 — RoPE

        Implement `apply_rope(x, positions)` for `x` of shape `[b, t, n, h]` and integer
        `positions` of shape `[b, t]`. Compute in float32.
        """
    )
    nb.exercise(
        "3.2",
        "implement half-split RoPE",
        '''
        def apply_rope(x, positions):
            """x: [b, t, n, h]; positions: int [b, t]. Rotate pairs (j, j + h/2) by pos · 10000^(-2j/h)."""
            ### BEGIN SOLUTION
            half = x.shape[-1] // 2
            inv_freq = 10_000.0 ** (-2.0 * jnp.arange(half) / x.shape[-1])  # [h/2]
            theta = positions[:, :, None, None] * inv_freq  # [b, t, 1, h/2]: same for every head
            x1, x2 = x[..., :half], x[..., half:]
            return jnp.concatenate(
                [x1 * jnp.cos(theta) - x2 * jnp.sin(theta), x2 * jnp.cos(theta) + x1 * jnp.sin(theta)], axis=-1
            )
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_rope(apply_rope)")
    nb.hint(
        """
        `inv_freq = 10000.0 ** (-2 * jnp.arange(h // 2) / h)` has shape `[h/2]`.
        `positions[:, :, None, None] * inv_freq` broadcasts to `[b, t, 1, h/2]` (one angle per
        token and pair, shared by all heads). Split with `x[..., :h//2]` and `x[..., h//2:]`.
        """
    )
    nb.md("The package version, and the property that makes RoPE useful: scores depend on *relative* position only.")
    nb.code(
        """
        from pi0lite.gemma import apply_rope

        q = jax.random.normal(jax.random.key(1), (1, 1, 1, cfg.head_dim))
        k = jax.random.normal(jax.random.key(2), (1, 1, 1, cfg.head_dim))


        def score(pos_q, pos_k):
            q_rot = apply_rope(q, jnp.array([[pos_q]]))
            k_rot = apply_rope(k, jnp.array([[pos_k]]))
            return float(jnp.sum(q_rot * k_rot))


        pairs = [(5, 3), (12, 10), (102, 100)]  # all two tokens apart
        scores = [score(a, b) for a, b in pairs]
        np.testing.assert_allclose(scores, scores[0], rtol=1e-4, atol=1e-4)
        print("q·k two tokens apart, at three places in the sequence:", [round(s, 3) for s in scores])
        print("q·k at distance 0 vs 2 vs 9:", [round(score(9, 9), 3), round(score(9, 7), 3), round(score(9, 0), 3)])
        """
    )
    # --- attention ---------------------------------------------------------------------------
    nb.md(
        r"""
        ## 3. Multi-query attention with a finite mask value

        pi0's Gemmas have `n = 8` query heads but only **one** key/value head (`k = 1`,
        *multi-query attention*): all query heads share the same keys and values, which makes
        the KV cache 8× smaller. In general (*grouped-query*), `g = n / k` consecutive query heads
        share one kv head: query head `i` uses kv head `i // g`. In einsum letters:

        $$\text{logits}_{b,k,g,t,s} = \frac{1}{\sqrt{h}} \sum_{h} q_{b,t,(k g),h}\, k_{b,s,k,h}, \qquad
          p = \mathrm{softmax}_s(\text{masked logits}), \qquad
          \text{out}_{b,t,(kg),h} = \sum_s p_{b,k,g,t,s}\, v_{b,s,k,h}$$

        `mask[b, t, s]` is True where query `t` may attend to key `s` (rows = queries). Masked
        logits are replaced by `pi0lite.masks.MASK_VALUE` — a very negative but **finite**
        number — and the softmax runs over the keys.

        ### Exercise 3.3 — masked multi-query attention

        Implement `attention(q, k, v, mask)` with `q: [b, t, n, h]`, `k, v: [b, s, k, h]`,
        `mask: bool[b, t, s]`; return `[b, t, n, h]`. `einops.rearrange(q, "b t (k g) h -> b t k g h", k=...)`
        splits the heads into groups.
        """
    )
    nb.exercise(
        "3.3",
        "implement masked grouped-query attention",
        '''
        import einops


        def attention(q, k, v, mask):
            """q: [b, t, n, h]; k, v: [b, s, k, h]; mask: bool [b, t, s] (True = may attend). Returns [b, t, n, h]."""
            ### BEGIN SOLUTION
            num_kv = k.shape[2]
            q = einops.rearrange(q, "b t (k g) h -> b t k g h", k=num_kv)
            logits = jnp.einsum("btkgh,bskh->bkgts", q, k) / jnp.sqrt(q.shape[-1])  # [b, k, g, t, s]
            logits = jnp.where(mask[:, None, None, :, :], logits, MASK_VALUE)
            probs = jax.nn.softmax(logits, axis=-1)  # over the keys s
            out = jnp.einsum("bkgts,bskh->btkgh", probs, v)
            return einops.rearrange(out, "b t k g h -> b t (k g) h")
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_attention(attention)")
    nb.hint(
        """
        Broadcast the mask over the head axes: `mask[:, None, None, :, :]` has shape
        `[b, 1, 1, t, s]`. `jnp.where(mask, logits, MASK_VALUE)` keeps allowed logits. The softmax
        axis is the key axis `s`, the last one.
        """
    )
    nb.md(
        r"""
        ### Why a finite mask value and not `-inf`?

        A padding token's query row is masked **everywhere** (it may see nothing). With a finite
        fill value every logit in that row is the same number, so the softmax is simply uniform:
        harmless garbage that nobody reads. With `-inf` the softmax computes
        $e^{-\infty}/\sum e^{-\infty} = 0/0$ = **NaN** — and a NaN survives even multiplication
        by zero, so it leaks into any sum, loss or comparison that touches the row.
        """
    )
    nb.code(
        """
        logits = jnp.array([[0.3, -1.2, 2.0, 0.5]])
        fully_masked = jnp.zeros((1, 4), bool)  # a padding query: may attend to nothing

        finite = jax.nn.softmax(jnp.where(fully_masked, logits, MASK_VALUE), axis=-1)
        infinite = jax.nn.softmax(jnp.where(fully_masked, logits, -jnp.inf), axis=-1)
        print("MASK_VALUE row:", finite[0], "  -inf row:", infinite[0])
        print("a zero-weighted loss over the -inf row:", float(jnp.sum(0.0 * infinite)))
        assert np.allclose(finite, 0.25) and np.isnan(infinite).all()
        """
    )
    nb.md("The package builds the same probabilities in `pi0lite.gemma.attention_weights` (it expects `q` already scaled by `h^-1/2`):")
    nb.code(
        """
        from pi0lite.gemma import attention_weights

        b, t, n, h = 1, 5, cfg.num_heads, cfg.head_dim
        q = jax.random.normal(jax.random.key(3), (b, t, n, h))
        k = jax.random.normal(jax.random.key(4), (b, t, 1, h))
        input_mask = jnp.array([[True, True, True, True, False]])  # the last token is padding
        mask = make_attn_mask(input_mask, jnp.zeros(t, bool))
        probs = attention_weights(q * h**-0.5, k, mask)  # [b, n, t, s]
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)  # each query's row sums to 1
        assert np.all(np.asarray(probs)[0, :, :4, 4] == 0)  # nobody attends to the padding key
        print("padding query row (uniform, not NaN):", probs[0, 0, 4])
        """
    )
    # --- GeGLU -------------------------------------------------------------------------------
    nb.md(
        r"""
        ## 4. The GeGLU feed-forward

        Gemma's MLP is *gated*: two input projections, one of them passed through a GELU (tanh
        approximation), multiplied elementwise, then projected back. The two input matrices are
        stored stacked as `gating_einsum` `[2, d, f]`; the output matrix is `linear` `[f, d]`:

        $$\mathrm{GeGLU}(x) = \big(\mathrm{gelu}_{\tanh}(x W_0) \odot x W_1\big)\, W_{\text{out}}$$

        ### Exercise 3.4 — GeGLU

        Implement `geglu(x, w_gating, w_linear)` for `x: [b, t, d]`, `w_gating: [2, d, f]`,
        `w_linear: [f, d]`.
        """
    )
    nb.exercise(
        "3.4",
        "implement the GeGLU feed-forward",
        '''
        def geglu(x, w_gating, w_linear):
            """x: [b, t, d]; w_gating: [2, d, f] (gate, up); w_linear: [f, d]. Returns [b, t, d]."""
            ### BEGIN SOLUTION
            gate = jax.nn.gelu(jnp.einsum("btd,df->btf", x, w_gating[0]), approximate=True)
            up = jnp.einsum("btd,df->btf", x, w_gating[1])
            return jnp.einsum("btf,fd->btd", gate * up, w_linear)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_geglu(geglu)")
    nb.hint(
        """
        `jax.nn.gelu(z, approximate=True)` is the tanh GELU. Only the first matrix, `w_gating[0]`,
        goes through the GELU.
        """
    )
    # --- real forward pass -------------------------------------------------------------------
    nb.md(
        """
        ## 5. A real forward pass, and what the heads look at

        `pi0lite.gemma.Gemma` stacks these pieces. Its weights are stacked over depth (openpi's
        layout, a leading `l` axis), and with `record_attention=True` every layer *sows* its attention probabilities,
        which `nnx.capture` collects. We feed a prefix-LM layout: 6 bidirectional tokens, 2 padding
        slots, then 4 causal tokens (ar = 1 each).
        """
    )
    nb.code(
        """
        from pi0lite.gemma import Gemma

        model = Gemma([cfg], vocab_size=TINY.vocab_size, rngs=nnx.Rngs(0))
        ids = jnp.array([[3, 9, 4, 17, 5, 8, 0, 0, 21, 6, 12, 30]])
        input_mask = jnp.array([[1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]], bool)
        ar_mask = jnp.array([0] * 8 + [1] * 4, bool)
        mask = make_attn_mask(input_mask, ar_mask)

        forward = nnx.capture(model, nnx.Intermediate)
        ((out,), kv_cache), recorded = forward(
            [model.embedder.encode(ids)], positions=make_positions(input_mask), mask=mask, record_attention=True
        )
        probs = nnx.to_pure_dict(recorded)["attn_probs"]  # one [b, n, t, s] per layer
        print("output", out.shape, "| layers recorded:", len(probs), "| probs per layer", probs[0].shape)
        print("kv cache (keys) [depth, b, s, k, h]:", kv_cache[0].shape)

        p = np.asarray(probs[0])
        np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
        blocked = ~np.asarray(mask[0]) & np.asarray(input_mask[0])[:, None]  # valid query, forbidden key
        assert np.all(p[0][:, blocked] < 1e-30)  # masked keys get (numerically) zero weight
        """
    )
    nb.code(
        """
        segments = [("bidir", 6), ("pad", 2), ("causal", 4)]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
        viz.plot_attention(p[0, 0], segments=segments, ax=axes[0], title="layer 0, head 0")
        viz.plot_attention(np.asarray(probs[-1])[0, 1], segments=segments, ax=axes[1], title="last layer, head 1")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        Read the pictures row by row: each row is one query and sums to 1. The bidirectional
        tokens only look inside their block; the causal tokens look at the whole valid prefix and
        at their predecessors; the **padding rows are uniform** (the finite mask value at work)
        and no valid query ever puts weight on a padding column.
        """
    )
    nb.summary(
        """
        * **RMSNorm**: `x / sqrt(mean(x²) + 1e-6) · (1 + scale)`, no mean subtraction, scale stored
          as an offset from 1 — `pi0lite.gemma.rms_norm`, `RMSNorm`.
        * **RoPE**: rotate pairs `(j, j + h/2)` by `pos · 10000^(−2j/h)`; scores then depend on
          relative position only — `pi0lite.gemma.apply_rope`.
        * **Multi-query attention**: 8 query heads share 1 kv head; masked logits use the finite
          `MASK_VALUE`, so padding rows are uniform instead of NaN — `attention_weights`,
          `Attention`.
        * **GeGLU**: `(gelu_tanh(x·W₀) ⊙ x·W₁)·W_out` — `FeedForward`.
        * `Gemma(...)(..., record_attention=True)` under `nnx.capture` returns attention
          probabilities per layer; `pi0lite.course.viz.plot_attention` draws them.

        Next, notebook 04 puts **two** of these stacks side by side — the mixture of transformers.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
