"""Builder of notebooks/04_mixture_of_transformers.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "04_mixture_of_transformers",
        "04 · The mixture of transformers: two experts, one attention",
        """
        pi0 is not one transformer but **two**, interleaved layer by layer: the vision-language
        model (PaliGemma's Gemma-2B, width 2048) reads the images and the prompt, and a smaller
        **action expert** (Gemma-300M, width 1024) reads the robot state and the noisy actions.
        Each expert keeps **its own weights** for everything — norms, projections, feed-forward —
        but in every layer their queries, keys and values are concatenated into **one shared
        attention**. openpi calls this a mixture of experts by token type; the literature also
        says *mixture of transformers*.

        In this notebook you will: build a two-expert Gemma, see where the experts meet (head
        space), write the joint attention with `einops.pack`/`unpack`, prove that the prefix does
        not depend on the suffix, and count the parameters of the real pi0 without allocating them.
        """,
    )
    nb.code(
        """
        import einops
        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from pi0lite.course import checks, viz
        from pi0lite.config import PI0, TINY
        from pi0lite.gemma import Gemma, attention_weights
        from pi0lite.masks import make_attn_mask, make_positions, prefix_ar_mask, suffix_ar_mask

        np.set_printoptions(precision=3, suppress=True)  # print arrays rounded
        jax.config.update("jax_default_matmul_precision", "highest")  # float32 matmuls on GPUs too (not TF32)
        vlm_cfg, action_cfg = TINY.paligemma, TINY.action_expert
        print("VLM expert:   ", vlm_cfg)
        print("action expert:", action_cfg)
        """
    )
    nb.md(
        """
        ## 1. Two experts, separate weights

        `Gemma([vlm_cfg, action_cfg], ...)` builds both stacks. The experts may differ in width
        `d` and feed-forward size `f`, but they **must agree** on depth, number of heads `n`, kv
        heads `k` and head dim `h` — their queries and keys meet in one attention (`Gemma`
        refuses anything else). Expert `i`'s weights all live in `model.experts[i]`, each stacked
        over the `l` layers. openpi's checkpoints keep one `layers` tree instead and mark expert 1's
        weights with the suffix `_1`; `pi0lite.openpi` translates, so a PaliGemma checkpoint loads
        into expert 0 unchanged.
        """
    )
    nb.code(
        """
        from pi0lite.openpi.io import to_openpi_path

        model = Gemma([vlm_cfg, action_cfg], vocab_size=TINY.vocab_size, rngs=nnx.Rngs(0))
        print(f"{'pi0lite path':40s} {'openpi path':36s} shape")
        for path, value in nnx.to_flat_state(nnx.state(model.experts, nnx.Param)):
            name = "experts/" + "/".join(map(str, path))
            print(f"{name:40s} {to_openpi_path(name):36s} {tuple(value.shape)}")
        """
    )
    nb.md(
        """
        Read the shapes with the legend `[l, n, d, h]`: expert 0's `q_einsum` maps width 64 to 4
        heads of 16, expert 1's maps width **32** to the **same** 4 heads of 16. Head space is where
        the experts meet. Let us project one layer's tokens by hand, each with its own weights:
        """
    )
    nb.code(
        """
        key_prefix, key_suffix = jax.random.split(jax.random.key(0))
        prefix_x = jax.random.normal(key_prefix, (1, 6, vlm_cfg.width))  # 6 prefix tokens, width 64
        suffix_x = jax.random.normal(key_suffix, (1, 4, action_cfg.width))  # 4 suffix tokens, width 32


        def project(x, expert, layer=0):
            attn = model.experts[expert].attn  # this expert's own projections
            q = jnp.einsum("btd,ndh->btnh", x, attn.q_einsum.w[layer])
            k, v = jnp.einsum("btd,ckdh->cbtkh", x, attn.kv_einsum.w[layer])  # c = 2: keys and values
            return q, k, v


        (q0, k0, v0), (q1, k1, v1) = project(prefix_x, 0), project(suffix_x, 1)
        print("prefix q", q0.shape, "k", k0.shape, "| suffix q", q1.shape, "k", k1.shape)
        assert q0.shape[2:] == q1.shape[2:] and k0.shape[2:] == k1.shape[2:]
        """
    )
    nb.md(
        """
        ## 2. `einops.pack` and `unpack`

        To attend jointly we concatenate the experts along the token axis, and afterwards split
        the result back. `einops.pack` does both halves of the bookkeeping: it concatenates along
        the `*` axis and remembers the pieces' shapes, which `einops.unpack` uses to split.
        """
    )
    nb.code(
        """
        packed, packed_shapes = einops.pack([q0, q1], "b * n h")
        print("packed:", packed.shape, "| remembered pieces:", packed_shapes)
        back = einops.unpack(packed, packed_shapes, "b * n h")
        assert all(np.array_equal(a, b) for a, b in zip(back, [q0, q1]))
        """
    )
    nb.md(
        r"""
        ### Exercise 4.1 — joint attention

        Write `joint_attention(qs, ks, vs, mask)`: lists with one entry per expert
        (`qs[i]: [b, t_i, n, h]`, `ks[i], vs[i]: [b, t_i, k, h]`) and one mask over **all**
        tokens, `bool[b, T, T]` with `T = Σ t_i`. Pack each list along the token axis, attend once
        with `attend` (below: the package's masked softmax, then the weighted sum of values), and
        unpack the output into a list of `[b, t_i, n, h]`, one per expert.
        """
    )
    nb.code(
        """
        def attend(q, k, v, mask):
            \"\"\"Masked grouped-query attention (notebook 03): q [b,t,n,h], k/v [b,s,k,h] → [b,t,n,h].\"\"\"
            probs = attention_weights(q * q.shape[-1] ** -0.5, k, mask)  # [b, n, t, s]
            g = q.shape[2] // k.shape[2]
            return jnp.einsum("bnts,bsnh->btnh", probs, jnp.repeat(v, g, axis=2))
        """
    )
    nb.exercise(
        "4.1",
        "attend jointly over all experts with pack/unpack",
        '''
        def joint_attention(qs, ks, vs, mask):
            """Lists of per-expert q [b,t_i,n,h], k/v [b,t_i,k,h]; mask [b,T,T]. Returns a list of [b,t_i,n,h]."""
            ### BEGIN SOLUTION
            q, packed_shapes = einops.pack(qs, "b * n h")
            k, _ = einops.pack(ks, "b * k h")
            v, _ = einops.pack(vs, "b * k h")
            return einops.unpack(attend(q, k, v, mask), packed_shapes, "b * n h")
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_joint_attention(joint_attention)")
    nb.hint(
        """
        Three `einops.pack` calls (`"b * n h"` for the queries, `"b * k h"` for keys and values),
        one `attend(q, k, v, mask)`, one `einops.unpack(out, packed_shapes, "b * n h")`. Keep the
        expert order: prefix first.
        """
    )
    nb.md(
        """
        The package does exactly this inside `Gemma.attention`, then applies each expert's
        **own** output projection (`model.experts[i].attn.attn_vec_einsum`) to its slice, so each
        expert gets back vectors of its own width:
        """
    )
    nb.code(
        """
        input_mask = jnp.ones((1, 10), bool)
        ar_mask = np.concatenate([prefix_ar_mask(6), suffix_ar_mask(3)])  # pi0: prefix, state, 3 actions
        mask = make_attn_mask(input_mask, ar_mask)
        (y_prefix, y_suffix), _ = model.attention(
            [prefix_x, suffix_x], layer=0, positions=make_positions(input_mask), mask=mask
        )
        print("attention output per expert:", y_prefix.shape, y_suffix.shape)
        """
    )
    # --- prefix independence -------------------------------------------------------------------
    nb.md(
        """
        ## 3. The prefix never sees the suffix

        With pi0's mask (notebook 02) the prefix block has `ar = 0` and the suffix opens new
        blocks, so **no prefix query may attend to a suffix key**. Through all layers, then, the
        prefix's outputs cannot depend on the suffix. Let us check it on the full two-expert
        stack: change the suffix tokens completely and compare.
        """
    )
    nb.code(
        """
        positions = make_positions(input_mask)
        other_suffix = 3.0 * jax.random.normal(jax.random.key(7), suffix_x.shape)

        (prefix_a, suffix_a), _ = model([prefix_x, suffix_x], positions=positions, mask=mask)
        (prefix_b, suffix_b), _ = model([prefix_x, other_suffix], positions=positions, mask=mask)
        (prefix_alone, _), _ = model([prefix_x, None], positions=positions[:, :6], mask=mask[:, :6, :6])

        np.testing.assert_allclose(prefix_a, prefix_b, atol=1e-5)  # suffix changed → prefix unchanged
        np.testing.assert_allclose(prefix_a, prefix_alone, atol=1e-4)  # prefix alone → same prefix
        print("max |Δ prefix| when the suffix changes:", round(float(jnp.abs(prefix_a - prefix_b).max()), 6))
        print("max |Δ suffix| when the suffix changes:", round(float(jnp.abs(suffix_a - suffix_b).max()), 3))
        """
    )
    nb.md(
        """
        The last line of that cell is the seed of the **KV cache** (notebook 06): the prefix can
        run once, alone (only expert 0), and its keys and values can be reused for every
        denoising step of the suffix. The attention probabilities show why — the top-right block
        (prefix queries × suffix keys) is exactly zero:
        """
    )
    nb.code(
        """
        _, recorded = nnx.capture(model, nnx.Intermediate)(
            [prefix_x, suffix_x], positions=positions, mask=mask, record_attention=True
        )
        probs = np.asarray(nnx.to_pure_dict(recorded)["attn_probs"][0])  # layer 0
        assert np.all(probs[0, :, :6, 6:] == 0.0)
        viz.plot_attention(probs[0, 0], segments=[("prefix", 6), ("state", 1), ("actions", 3)],
                           title="two experts, one attention (layer 0, head 0)")
        plt.show()
        """
    )
    # --- parameter counts ---------------------------------------------------------------------
    nb.md(
        """
        ## 4. How big is the real pi0? Counting without allocating

        `nnx.eval_shape` runs a constructor **abstractly**: every parameter becomes a
        `ShapeDtypeStruct` (shape and dtype, no memory). So we can build the full-size pi0 —
        3.2 billion parameters — in a second on a laptop and count its parameters by group.
        """
    )
    nb.code(
        """
        from pi0lite.pi0 import Pi0

        abstract = nnx.eval_shape(lambda: Pi0(PI0, rngs=nnx.Rngs(0)))


        def group_of(names):
            if names[:2] == ["PaliGemma", "img"]:
                return "SigLIP vision tower"
            if "embedder" in names:
                return "token embedder (tied logits)"
            if names[:3] == ["PaliGemma", "llm", "experts"]:
                return "action expert (Gemma-300M)" if names[3] == "1" else "VLM expert (Gemma-2B)"
            return "state/action/time projections"


        counts = {}
        for path, value in nnx.to_flat_state(nnx.state(abstract, nnx.Param)):
            group = group_of([str(p) for p in path])
            counts[group] = counts.get(group, 0) + int(np.prod(value.shape))
        total = sum(counts.values())
        for group, count in counts.items():
            print(f"{group:32s} {count:>15,}  {100 * count / total:5.1f} %")
        print(f"{'total':32s} {total:>15,}")
        assert total == 3_238_048_528
        assert counts["action expert (Gemma-300M)"] == 311_464_960
        """
    )
    nb.md(
        r"""
        The action expert is less than a tenth of the model, yet it runs at every one of the 10
        denoising steps, while the big VLM runs once per observation (with the KV cache).

        ### Exercise 4.2 — count one expert by hand

        Write `expert_param_count(cfg)` for a `GemmaConfig`: the parameters of one expert's
        blocks plus its final norm (no token embedder). Per layer there are: the query
        projection `[n, d, h]`, the key/value projection `[2, k, d, h]`, the output projection
        `[n, h, d]`, the GeGLU matrices `[2, d, f]` and `[f, d]`, and two RMSNorm scales `[d]`.
        After the last layer comes one more RMSNorm `[d]`. Return a Python `int`.
        """
    )
    nb.exercise(
        "4.2",
        "count the parameters of one expert",
        '''
        def expert_param_count(cfg):
            """Parameters of one Gemma expert (all layers + final norm, no embedder) for a GemmaConfig."""
            ### BEGIN SOLUTION
            d, n, k, h, f = cfg.width, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.mlp_dim
            attention = n * d * h + 2 * k * d * h + n * h * d
            feed_forward = 2 * d * f + f * d
            norms = 2 * d
            return cfg.depth * (attention + feed_forward + norms) + d
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_expert_param_count(expert_param_count)")
    nb.hint(
        """
        Write each term with the config's letters: `d = cfg.width`, `n = cfg.num_heads`,
        `k = cfg.num_kv_heads`, `h = cfg.head_dim`, `f = cfg.mlp_dim`. In pi0, `k = 1`
        (multi-query), so keys and values are cheap; the GeGLU dominates.
        """
    )
    nb.md(
        """
        The same count from the package, for the two real experts (`pi0lite.course.checks.mot.expert_param_count`
        builds an abstract `Gemma` and sums its parameters):
        """
    )
    nb.code(
        """
        from pi0lite.course.checks.mot import expert_param_count as package_count

        for name, cfg in [("Gemma-2B (VLM)", PI0.paligemma), ("Gemma-300M (action)", PI0.action_expert)]:
            print(f"{name:22s} {package_count(cfg):>15,}")
        assert package_count(PI0.action_expert) == counts["action expert (Gemma-300M)"]
        """
    )
    nb.summary(
        """
        * pi0's LLM is **two experts** — `Gemma([vlm_cfg, action_cfg])` — with separate weights
          (`model.experts[i]`; in openpi's checkpoints expert 1's names end in `_1`) and **one
          shared attention** per layer.
        * They meet in head space: each expert projects its own tokens to queries/keys/values of
          the same `[n, h]` / `[k, h]` shape; `einops.pack` concatenates them, one attention runs,
          `einops.unpack` splits the result, and each expert applies its own output projection
          (`Gemma.attention`).
        * With pi0's mask the prefix never attends to the suffix, so prefix outputs are
          independent of the suffix and the prefix can run alone — the basis of the KV cache.
        * `nnx.eval_shape` builds the full 3,238,048,528-parameter pi0 abstractly; the action
          expert is 311,464,960 of them.

        Next, notebook 05 leaves transformers for a moment and builds flow matching on a 2-D toy.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
