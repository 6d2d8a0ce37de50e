"""Builder of notebooks/06_pi0_loss_and_sampling.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "06_pi0_loss_and_sampling",
        "06 · pi0: the flow-matching loss, sampling, and the KV cache",
        """
        Everything comes together: the token layout (01), the mask (02), the Gemma blocks (03),
        the two experts (04) and flow matching (05) make up `pi0lite.pi0.Pi0`. In this notebook
        we run the full model on the `TINY` configuration:

        * `compute_loss` — one joint pass over [prefix; suffix] and the flow-matching loss;
        * `sample_actions` — 10 Euler steps from noise (t = 1) to an action chunk (t = 0);
        * the **KV cache** — why the prefix only needs to run once, the positions and mask a
          cached step needs (your two exercises), and the speed-up it buys;
        * a picture of a chunk being denoised.

        We study the machinery on an untrained model, then run the same sampler with the trained
        toy-task weights that ship with pi0lite.
        """,
    )
    nb.code(
        """
        import time

        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from pi0lite import compiled, flow
        from pi0lite.course import checks, viz
        from pi0lite.config import TINY
        from pi0lite.masks import make_attn_mask, make_positions
        from pi0lite.pi0 import Observation, Pi0

        np.set_printoptions(precision=3, suppress=True)  # print arrays rounded
        jax.config.update("jax_default_matmul_precision", "highest")  # float32 matmuls on GPUs too (not TF32)
        cfg = TINY
        model = Pi0(cfg, rngs=nnx.Rngs(0))
        print(f"action_horizon H={cfg.action_horizon}, action_dim D={cfg.action_dim}, "
              f"prefix {cfg.prefix_len} tokens, suffix {cfg.suffix_len} tokens")
        """
    )
    nb.md(
        """
        ## 1. An observation and the token sequence

        An `Observation` holds camera images in [−1, 1], the robot state (zero-padded to
        `action_dim` inside the model) and the tokenized prompt with its mask. We make a batch of
        two; the second prompt is shorter, so its last text slots are padding.
        """
    )
    nb.code(
        """
        rng = np.random.default_rng(0)
        size = cfg.vision.image_size
        obs = Observation.from_numpy(
            images={"base_0_rgb": rng.uniform(-1, 1, (2, size, size, 3)).astype(np.float32)},
            state=np.array([[0.1, -0.4, 0.7], [0.0, 0.2, -0.3]], np.float32),  # 3 dims < action_dim 4
            tokenized_prompt=np.array([[2, 11, 7, 19, 5], [2, 13, 5, 0, 0]]),
            tokenized_prompt_mask=np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool),
        )
        prefix, prefix_mask, prefix_ar = model.embed_prefix(obs)
        x_t = jnp.zeros((2, cfg.action_horizon, cfg.action_dim))
        suffix, suffix_mask, suffix_ar = model.embed_suffix(obs, x_t, jnp.ones(2))
        print("prefix tokens", prefix.shape, "valid per example:", np.asarray(prefix_mask.sum(-1)))
        print("suffix tokens", suffix.shape, "ar:", np.asarray(suffix_ar, int)[:4], "...")
        assert prefix.shape[1] == cfg.prefix_len and suffix.shape[1] == cfg.suffix_len
        """
    )
    nb.md(
        """
        The prefix (16 image patches + 8 text slots) lives in the VLM expert's width 64; the
        suffix (1 state token + 16 action tokens) in the action expert's width 32. Here is what
        one joint pass attends to, for the second example (with prompt padding):
        """
    )
    nb.code(
        """
        attention_maps = nnx.jit(lambda m, o, x, t: m.attention_maps(o, x, t))  # compile once, run fast
        maps = attention_maps(model, obs, x_t, jnp.ones(2))  # one [b, n, T, T] per layer
        segments = [("image", cfg.num_image_tokens), ("text", cfg.max_token_len), ("state", 1), ("actions", cfg.action_horizon)]
        viz.plot_attention(np.asarray(maps[0])[1, 0], segments=segments, title="layer 0, head 0, example 1")
        plt.show()
        """
    )
    # --- loss ---------------------------------------------------------------------------------
    nb.md(
        r"""
        ## 2. `compute_loss`: one pass, one regression

        With openpi's convention (notebook 05): draw noise $\epsilon$ and a time
        $t \sim \mathrm{Beta}(1.5, 1)$, form $x_t = t\,\epsilon + (1-t)\,a$, run **one** joint
        pass to get the predicted velocity $v_t$, and regress it onto $u_t = \epsilon - a$.
        The loss is averaged over the action dims only, so it has shape `[b, H]`. Actions with
        fewer dims than `action_dim` are zero-padded, and the padded dims count (there the
        target is just the noise) — exactly as in openpi.

        Every random input can be passed in (`noise=`, `time=`), so we can rebuild the loss by hand:
        """
    )
    nb.code(
        """
        actions = jnp.asarray(rng.normal(size=(2, cfg.action_horizon, 3)), jnp.float32)  # 3 real dims
        noise = jax.random.normal(jax.random.key(1), (2, cfg.action_horizon, cfg.action_dim))
        time_ = jnp.array([0.9, 0.3])

        compute_loss = nnx.jit(lambda m, o, a, n, t: m.compute_loss(jax.random.key(0), o, a, noise=n, time=t))
        velocity = nnx.jit(lambda m, o, x, t: m.forward(o, x, t)[0])  # v_t from one joint pass
        loss = compute_loss(model, obs, actions, noise, time_)

        padded = jnp.pad(actions, ((0, 0), (0, 0), (0, cfg.action_dim - 3)))
        v_t = velocity(model, obs, flow.interpolate(noise, padded, time_), time_)
        by_hand = jnp.mean((v_t - flow.target_velocity(noise, padded)) ** 2, axis=-1)
        np.testing.assert_allclose(loss, by_hand, rtol=1e-5, atol=1e-6)
        print("loss shape", loss.shape, "| mean loss per example:", np.round(np.asarray(loss.mean(-1)), 2))
        """
    )
    # --- sampling -----------------------------------------------------------------------------
    nb.md(
        r"""
        ## 3. `sample_actions`: Euler from noise to actions

        Sampling starts from pure noise at $t = 1$ and takes `num_steps` Euler steps with
        $dt = -1/\text{num\_steps}$: $x \leftarrow x + dt \cdot v(x, t)$. With
        `return_trajectory=True` we also get every intermediate chunk, `[num_steps + 1, b, H, D]`.
        We compile the sampler once; the steps run inside a `lax.scan`. `pi0lite.compiled.bind`
        splits the model into its graph and its state **once** and `jax.jit`s a function of the
        state, so each later call skips the walk over the module graph that `nnx.jit` does on
        every call (on `TINY` that walk costs more than the sampling itself).
        """
    )
    nb.code(
        """
        def sample_fn(m, o, noise):
            return m.sample_actions(None, o, noise=noise, return_trajectory=True)


        sample = compiled.bind(model, sample_fn)  # call it as sample(obs, noise)
        noise = jax.random.normal(jax.random.key(2), (2, cfg.action_horizon, cfg.action_dim))
        sampled, trajectory = sample(obs, noise)
        print("actions", sampled.shape, "| trajectory", trajectory.shape)

        # the trajectory starts at the noise and ends at the returned actions ...
        np.testing.assert_allclose(trajectory[0], noise)
        np.testing.assert_allclose(trajectory[-1], sampled)
        # ... and its first step is one Euler step with the velocity at t = 1
        v_1 = velocity(model, obs, noise, jnp.ones(2))
        np.testing.assert_allclose(trajectory[1], flow.euler_step(noise, v_1, -0.1), atol=1e-5)
        """
    )
    # --- KV cache -----------------------------------------------------------------------------
    nb.md(
        """
        ## 4. The KV cache

        Notebook 04 showed that the prefix never attends to the suffix, so its keys and values
        are the same at every denoising step. `sample_actions` therefore runs the prefix **once**
        (VLM expert only) and keeps every layer's keys and values, `[depth, b, P, k, h]`. Each of
        the 10 steps then runs only the suffix (action expert only), whose queries attend to
        `[cached prefix keys; suffix keys]`.

        A suffix-only step must give each suffix token exactly the **position** and the **mask
        row** it would have in the full sequence. That is your job now.

        ### Exercise 6.1 — positions after a cached prefix

        Write `suffix_positions(prefix_mask, suffix_mask)` → int `[b, q]`: the RoPE positions of
        the suffix tokens, continuing the prefix's numbering. Recall positions are
        `cumsum(input_mask) − 1` over the whole sequence, so padding does not advance them.
        """
    )
    nb.exercise(
        "6.1",
        "positions of the suffix tokens after a cached prefix",
        '''
        def suffix_positions(prefix_mask, suffix_mask):
            """prefix_mask: bool [b, p]; suffix_mask: bool [b, q]. Returns int [b, q] RoPE positions."""
            ### BEGIN SOLUTION
            num_valid_prefix = jnp.sum(prefix_mask, axis=-1, keepdims=True)  # [b, 1]
            return num_valid_prefix + jnp.cumsum(suffix_mask, axis=-1) - 1
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_suffix_positions(suffix_positions)")
    nb.hint(
        """
        In the full sequence the first suffix token sits right after the last *valid* prefix
        token. How many valid prefix tokens are there? `jnp.sum(prefix_mask, axis=-1, keepdims=True)`.
        """
    )
    nb.md(
        """
        ### Exercise 6.2 — the mask of a cached step

        Write `cached_suffix_mask(prefix_mask, suffix_mask, suffix_ar)` → bool `[b, q, p + q]`:
        the rows of the full pi0 mask that belong to the suffix queries. The columns are the
        cached prefix keys first, then this step's suffix keys. Suffix queries may see every
        *valid* prefix token; within the suffix the usual block rule (`make_attn_mask`) applies.
        """
    )
    nb.exercise(
        "6.2",
        "the suffix rows of the attention mask",
        '''
        def cached_suffix_mask(prefix_mask, suffix_mask, suffix_ar):
            """prefix_mask [b, p], suffix_mask [b, q], suffix_ar [q] → bool [b, q, p + q]."""
            ### BEGIN SOLUTION
            b, q = suffix_mask.shape
            to_prefix = jnp.broadcast_to(prefix_mask[:, None, :], (b, q, prefix_mask.shape[1]))
            within_suffix = make_attn_mask(suffix_mask, suffix_ar)  # [b, q, q]
            return jnp.concatenate([to_prefix, within_suffix], axis=-1)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_cached_suffix_mask(cached_suffix_mask)")
    nb.hint(
        """
        Two blocks side by side: `prefix_mask[:, None, :]` broadcast to `[b, q, p]` (every suffix
        row sees the same valid prefix tokens), and `make_attn_mask(suffix_mask, suffix_ar)`
        `[b, q, q]`. Join them with `jnp.concatenate(..., axis=-1)`.
        """
    )
    nb.md(
        """
        The package does the same inside `Pi0.velocity_cached`; `Pi0.fill_prefix_cache` runs the
        prefix once and returns every layer's keys and values (we only look at their shapes here,
        with `nnx.eval_shape`, which traces without computing). Cached sampling must give the same
        actions as sampling that recomputes the whole sequence at every step:
        """
    )
    nb.code(
        """
        kv_shapes, _ = nnx.eval_shape(lambda m, o: m.fill_prefix_cache(o), model, obs)
        print("cached keys and values [depth, b, P, k, h]:", kv_shapes[0].shape, kv_shapes[1].shape)

        sample_uncached = compiled.bind(model, lambda m, o, noise: m.sample_actions(None, o, noise=noise, use_cache=False))
        uncached = sample_uncached(obs, noise)
        np.testing.assert_allclose(sampled, uncached, atol=1e-4)
        print("cached and uncached sampling agree: max |Δ| <", 1e-4)
        """
    )
    nb.md(
        """
        How much does the cache save? The cell below times both samplers (after compiling them
        above) and prints the ratio. Its output is not compared by the tests — timings vary by
        machine. On `TINY` the prefix is only 24 tokens, so the gain is modest; for the real pi0
        the prefix is 816 tokens through a 2B-parameter expert, against 51 suffix tokens through
        the 300M expert, and the cache saves most of the work of every step.
        """
    )
    nb.code(
        """
        def best_time(fn, repeats=5):
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                jax.block_until_ready(fn())
                best = min(best, time.perf_counter() - start)
            return best


        cached_time = best_time(lambda: sample(obs, noise))
        uncached_time = best_time(lambda: sample_uncached(obs, noise))
        print(f"cached sampling is {uncached_time / cached_time:.1f}x as fast as recomputing the prefix every step")
        """,
        tags=("nbval-ignore-output",),
    )
    # --- pictures -----------------------------------------------------------------------------
    nb.md(
        """
        ## 5. Watching a chunk being denoised

        Each line is one Euler state of the first example's action dim 0 over the 16 steps of the
        chunk: from pure noise (t = 1, dark) to the sampled actions (t = 0, bold). Next to it,
        the final chunk, all four action dims.
        """
    )
    nb.code(
        """
        fig, axes = plt.subplots(1, 2, figsize=(13, 4))
        viz.plot_denoising_trajectory(np.asarray(trajectory[:, 0]), dim=0, ax=axes[0])
        viz.plot_action_chunk(np.asarray(sampled[0]), ax=axes[1], title="sampled chunk (untrained model)")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ## 6. The same sampler with trained weights

        pi0lite ships a `TINY` pi0 trained on the course's toy task ("go to the red square":
        actions are 2-D velocities, normalised, zero-padded to 4 dims; `make demo` trains it and
        notebook 09 studies it). Same configuration, same compiled sampler — only the weights
        differ. How far the denoising moves away from the noise depends on how well the
        checkpoint was trained; `policy.meta` records the run.
        """
    )
    nb.code(
        """
        from pi0lite.toy.env import ToyEnv
        from pi0lite.toy.policy import load_shipped

        policy = load_shipped()  # Pi0 + normalisation stats + tokenizer
        print("shipped checkpoint trained for", policy.meta.get("train_steps"), "steps")
        env = ToyEnv()
        scenes = [env.reset(seed=seed)[0] for seed in (1, 2)]
        toy_obs = policy.observation(
            np.stack([s["image"] for s in scenes]), np.stack([s["state"] for s in scenes]), [s["instruction"] for s in scenes]
        )
        toy_actions, toy_trajectory = sample.rebind(policy.model)(toy_obs, noise)  # same structure: no recompile
        assert toy_trajectory.shape == trajectory.shape and np.isfinite(np.asarray(toy_actions)).all()

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        viz.plot_observation(scenes[0]["image"], ax=axes[0], title=scenes[0]["instruction"])
        viz.plot_denoising_trajectory(np.asarray(toy_trajectory[:, 0]), dim=1, ax=axes[1])
        viz.plot_action_chunk(np.asarray(toy_actions[0, :, :2]), labels=["vx (normalised)", "vy (normalised)"],
                              ax=axes[2], title="sampled velocity chunk (trained model)")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.summary(
        """
        * `Pi0.compute_loss(key, obs, actions, noise=, time=)`: one joint pass over
          [prefix; suffix], loss `mean_D (v_t − (ε − a))²` of shape `[b, H]`; padded action dims
          count.
        * `Pi0.sample_actions(key, obs, num_steps=10, noise=, use_cache=True, return_trajectory=)`:
          Euler from t = 1 (noise) to t = 0 (actions) with `dt = −1/num_steps`.
        * The **KV cache**: `fill_prefix_cache` runs the prefix once; each step
          (`velocity_cached`) runs only the suffix, with positions
          `sum(prefix_mask) + cumsum(suffix_mask) − 1` and mask rows
          `[prefix_mask | make_attn_mask(suffix_mask, suffix_ar)]`. Same actions, less work.
        * `pi0lite.course.viz.plot_denoising_trajectory` and `plot_action_chunk` draw what the sampler did;
          `pi0lite.toy.policy.load_shipped()` gives the same model with trained toy-task weights.

        This closes part 1 of the course. Part 2 turns to pi0-FAST: actions as tokens.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
