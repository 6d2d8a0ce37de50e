"""Builder of notebooks/01_what_pi0_sees.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "01_what_pi0_sees",
        "01 · What pi0 sees: the token sequence",
        """
        A transformer only sees a sequence of vectors, the **tokens**. This notebook follows one
        observation of the course's toy task (an agent that must "go to the blue square") into
        pi0's token sequence:

        * every **camera image** is cut into patches, one token per patch;
        * the **prompt** becomes word tokens, padded to a fixed length;
        * together they form the **prefix**, which the vision-language expert reads;
        * the robot **state** becomes one token, and the **noisy action chunk** $x_t$ becomes one
          token per step, each mixed with an embedding of the flow-matching **time** $t$;
          these form the **suffix**, which the action expert reads.

        We use the `TINY` configuration, small enough to run in a second on a laptop.
        """,
    )
    nb.code(
        """
        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from pi0lite import flow
        from pi0lite.course import checks, viz
        from pi0lite.config import OPENPI_DUMMY, PI0, TINY
        from pi0lite.toy.env import ToyEnv, instruction
        from pi0lite.observation import Observation
        from pi0lite.pi0 import Pi0
        from pi0lite.toy.text import WordTokenizer

        np.set_printoptions(precision=3, suppress=True)
        cfg = TINY
        print("cameras:", cfg.image_keys, "| image", cfg.vision.image_size, "px, patch", cfg.vision.patch_size,
              "px | max_token_len", cfg.max_token_len, "| action_horizon", cfg.action_horizon,
              "| action_dim", cfg.action_dim)
        """
    )
    nb.md(
        """
        ## 1. One observation

        The toy environment returns a 32×32 camera image, an instruction and the agent's state
        (x, y, vx, vy). A word-level tokenizer turns the instruction into ids (BOS first, as
        PaliGemma's tokenizer does).
        """
    )
    nb.code(
        """
        env = ToyEnv(image_size=cfg.vision.image_size)
        raw, info = env.reset(seed=0)
        tokenizer = WordTokenizer.from_texts([instruction(g) for g in range(3)])
        ids = tokenizer.encode(raw["instruction"])
        print("instruction:", repr(raw["instruction"]), "→ ids", ids)
        print("state (x, y, vx, vy):", raw["state"])

        prompt = np.zeros((1, cfg.max_token_len), np.int32)
        prompt[0, : len(ids)] = ids
        obs = Observation.from_numpy(
            images={"base_0_rgb": raw["image"][None]},  # uint8 → [-1, 1] inside
            state=raw["state"][None],
            tokenized_prompt=prompt,
            tokenized_prompt_mask=prompt != 0,
        )
        """
    )
    nb.md(
        """
        ## 2. Images become patches

        The vision tower (SigLIP, a ViT) cuts each image into a grid of
        `patch_size × patch_size` squares and turns each into one token. A camera therefore
        contributes $(\\text{image\\_size} / \\text{patch\\_size})^2$ tokens, read row by row.
        """
    )
    nb.code(
        """
        viz.plot_image_patches(raw["image"], cfg.vision.patch_size)
        plt.show()
        print("patches per camera:", cfg.vision.num_patches)
        """
    )
    nb.md(
        """
        ### Exercise 1.1 — count the tokens

        Write `count_tokens(config)` returning `(prefix_len, suffix_len)` for pi0: the prefix
        holds the patches of **every** camera in `config.image_keys` and `config.max_token_len`
        text slots; the suffix holds one state token and `config.action_horizon` action tokens.
        Use `config.vision.image_size`, `config.vision.patch_size`, `config.image_keys`,
        `config.max_token_len` and `config.action_horizon`.
        """
    )
    nb.exercise(
        "1.1",
        "count pi0's prefix and suffix tokens",
        '''
        def count_tokens(config):
            """(prefix_len, suffix_len) of pi0's token sequence for `config`."""
            ### BEGIN SOLUTION
            side = config.vision.image_size // config.vision.patch_size
            prefix_len = len(config.image_keys) * side**2 + config.max_token_len
            suffix_len = 1 + config.action_horizon
            return prefix_len, suffix_len
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_token_counts(count_tokens)")
    nb.hint(
        """
        Patches per camera: `(image_size // patch_size) ** 2`. Multiply by the number of
        cameras, add the text slots. The suffix is `1 + action_horizon`.
        """
    )
    nb.md(
        """
        The config knows these numbers too (`Pi0Config.prefix_len`, `suffix_len`). For the real
        pi0 the prefix is 3 cameras × 256 patches + 48 text slots:
        """
    )
    nb.code(
        """
        for name, c in [("TINY", TINY), ("OPENPI_DUMMY", OPENPI_DUMMY), ("PI0", PI0)]:
            print(f"{name:>12}: prefix {c.prefix_len:4d} = {len(c.image_keys)} × {c.vision.num_patches} patches "
                  f"+ {c.max_token_len} text | suffix {c.suffix_len:3d} = 1 state + {c.action_horizon} actions")
        """
    )
    nb.md(
        """
        ## 3. The prefix, from the model

        `Pi0.embed_prefix` runs the vision tower on each camera and looks up the prompt's word
        embeddings; it returns the tokens, their `input_mask` (padding is False) and their
        `ar_mask` (all False: one bidirectional block, see notebook 02). The weights are random
        here; only the shapes and masks matter.
        """
    )
    nb.code(
        """
        model = Pi0(cfg, rngs=nnx.Rngs(0))
        prefix_tokens, prefix_mask, prefix_ar = model.embed_prefix(obs)
        print("prefix tokens:", prefix_tokens.shape, "(batch, tokens, width of the VLM expert)")
        print("input_mask:   ", prefix_mask[0].astype(int))
        print("ar_mask:      ", prefix_ar.astype(int))
        assert prefix_tokens.shape == (1, cfg.prefix_len, cfg.paligemma.width)
        assert int(prefix_mask.sum()) == cfg.vision.num_patches + len(ids)  # padding slots are False
        """
    )
    nb.md(
        """
        ## 4. The suffix: state, noisy actions and time

        During training and sampling the model also gets a **noisy action chunk** $x_t$
        (`[b, action_horizon, action_dim]`) and the flow-matching **time** $t$ (notebook 05).
        `Pi0.embed_suffix` makes one token from the state and one per action step; each action
        token is an MLP of `[action_in_proj(x_t), time embedding]`.
        """
    )
    nb.code(
        """
        x_t = jax.random.normal(jax.random.key(1), (1, cfg.action_horizon, cfg.action_dim))
        time = jnp.array([0.7])
        suffix_tokens, suffix_mask, suffix_ar = model.embed_suffix(obs, x_t, time)
        print("suffix tokens:", suffix_tokens.shape, "(batch, 1 state + horizon actions, width of the action expert)")
        print("ar_mask:      ", suffix_ar.astype(int))
        assert suffix_tokens.shape == (1, cfg.suffix_len, cfg.action_expert.width)
        """
    )
    nb.md("The whole sequence, with its segments (▼ = opens a new attention block, hatched = padding):")
    nb.code(
        """
        segments = [("image", cfg.vision.num_patches), ("text", cfg.max_token_len), ("state", 1), ("actions", cfg.action_horizon)]
        input_mask = np.concatenate([prefix_mask[0], suffix_mask[0]])
        ar_mask = np.concatenate([prefix_ar, suffix_ar])
        viz.plot_token_layout(segments, input_mask=input_mask, ar_mask=ar_mask, prefix_len=cfg.prefix_len,
                              title="pi0 (TINY): prefix → VLM expert, suffix → action expert")
        plt.show()
        """
    )
    nb.md(
        """
        Prefix and suffix tokens have **different widths** (64 and 32 in `TINY`; 2048 and 1024 in
        the real pi0): they are processed by two different experts that only meet inside
        attention (notebook 04).

        ## 5. Telling the model the time

        A single number $t \\in [0, 1]$ is a poor input for a network. pi0 expands it into a
        **sine–cosine embedding**: sines and cosines of $2\\pi t / p$ for periods $p$ spaced
        geometrically from 0.004 to 4. Short periods resolve tiny changes of $t$; long periods
        give a smooth, coarse code.

        A picture needs care here: a column with period 0.004 changes sign every 0.002 in $t$,
        faster than any plot of the whole range $[0, 1]$ can show (sampled every 0.01 it would
        alias into noise, or read as exactly zero). So we draw two views, each sampled at least
        ten times per period of every column it shows: the whole range with the slow half of the
        frequencies (periods 0.04 … 4), and a zoom into $t \\in [0.5, 0.51]$ with all of them.
        """
    )
    nb.code(
        """
        width = cfg.action_expert.width
        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
        times = jnp.linspace(0.0, 1.0, 1001)                 # every 0.001: 40 samples per period 0.04
        emb = np.asarray(flow.posemb_sincos(times, width))
        slow = np.r_[5 : width // 2, width // 2 + 5 : width]  # frequencies 5..15 of 16: periods 0.04 … 4
        viz.plot_time_embedding(times, emb[:, slow], ax=left, title="t in [0, 1]: periods 0.04 … 4 only")
        zoom = jnp.linspace(0.5, 0.51, 401)                  # every 0.000025: 160 samples per period 0.004
        viz.plot_time_embedding(zoom, flow.posemb_sincos(zoom, width), ax=right, title="zoom t in [0.5, 0.51]: all 32 dims")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        In the zoom, only the left columns of each half (the short periods) change: they tell
        $t = 0.500$ from $t = 0.505$. The long-period columns are constant over such a small
        step and only vary over the whole range (left panel), where they give a smooth code.
        """
    )
    nb.md(
        """
        ### Exercise 1.2 — the sine–cosine time embedding

        Write `posemb_sincos(time, width)`: `time` is `[b]`, the result `[b, width]`. With
        `fraction = linspace(0, 1, width // 2)` and
        `period = min_period · (max_period / min_period) ** fraction` (min 0.004, max 4.0), the
        angle is `time / period · 2π`; return **all the sines, then all the cosines**.
        """
    )
    nb.exercise(
        "1.2",
        "the sine-cosine time embedding",
        '''
        def posemb_sincos(time, width, min_period=4e-3, max_period=4.0):
            """[b] -> [b, width]: sin(2π t / period) for width/2 periods, then cos of the same."""
            ### BEGIN SOLUTION
            fraction = jnp.linspace(0.0, 1.0, width // 2)
            period = min_period * (max_period / min_period) ** fraction  # [width/2]
            angle = time[:, None] / period[None, :] * 2 * jnp.pi  # [b, width/2]
            return jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_posemb_sincos(posemb_sincos)")
    nb.hint(
        """
        `time[:, None] / period[None, :]` has shape `[b, width // 2]`. Multiply by `2 * jnp.pi`,
        then `jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)`.
        """
    )
    nb.code("from pi0lite.flow import posemb_sincos  # the package version from here on")
    nb.md(
        """
        The time reaches only the action tokens: change $t$ and the state token stays the same
        while every action token changes. The prefix does not see $t$ at all, which is why it
        can be computed once and cached while the actions are denoised (notebook 06).
        """
    )
    nb.code(
        """
        later, _, _ = model.embed_suffix(obs, x_t, jnp.array([0.2]))
        state_change = float(jnp.abs(later[:, 0] - suffix_tokens[:, 0]).max())
        action_change = float(jnp.abs(later[:, 1:] - suffix_tokens[:, 1:]).max())
        print(f"t = 0.7 → 0.2: state token changes by {state_change:.3f}, action tokens by up to {action_change:.3f}")
        assert state_change == 0.0 and action_change > 1e-3
        emb_gap = float(jnp.abs(posemb_sincos(jnp.array([0.7]), 32) - posemb_sincos(jnp.array([0.2]), 32)).max())
        assert emb_gap > 0.1
        """
    )
    nb.summary(
        """
        * pi0's sequence is **prefix** = image patches of every camera + padded prompt tokens,
          and **suffix** = one state token + `action_horizon` action tokens.
        * A camera gives $(\\text{image\\_size}/\\text{patch\\_size})^2$ tokens; `Pi0Config.prefix_len`
          and `suffix_len` count them (816 and 51 for the real pi0).
        * `Pi0.embed_prefix(obs)` and `Pi0.embed_suffix(obs, x_t, t)` return tokens, `input_mask`
          and `ar_mask`; the two halves have different widths (two experts).
        * The flow time enters through `flow.posemb_sincos`, mixed into every action token; state
          and prefix do not depend on it.

        Next: **02 · The attention mask**, who may look at whom in this sequence.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
