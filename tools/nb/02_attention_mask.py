"""Builder of notebooks/02_attention_mask.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "02_attention_mask",
        "02 · The attention mask",
        """
        pi0 runs **one** transformer over one long token sequence: images, prompt, state and
        noisy actions. Who may look at whom is decided by a single boolean matrix, the
        **attention mask**, built from two flags per token. In this notebook you will build that
        mask, draw it for pi0, pi0.5 and pi0-FAST, predict one by hand, and play with an
        interactive explorer.

        **Convention (everywhere in pi0lite):** `mask[b, i, j] = True` means *query i may attend
        to key j*. Rows are queries, columns are keys.
        """,
    )
    nb.code(
        """
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np

        from pi0lite.course import checks, viz
        from pi0lite.masks import make_positions, prefix_ar_mask, suffix_ar_mask
        from pi0lite.course.widgets import mask_explorer, model_mask_explorer

        np.set_printoptions(precision=3, suppress=True)
        """
    )
    nb.md(
        r"""
        ## 1. Two flags per token

        * `input_mask[i]` — token *i* is real (not padding, not a missing camera).
        * `ar_mask[i]` — token *i* **opens a new block**.

        Number the blocks with a cumulative sum, $c = \mathrm{cumsum}(\texttt{ar\_mask})$. Then

        $$\texttt{mask}[i, j] = \big(c_j \le c_i\big) \;\wedge\; \texttt{input\_mask}[i] \;\wedge\; \texttt{input\_mask}[j].$$

        A token sees every token of its own block and of all earlier blocks, never a later
        block. Three patterns follow from this one rule:

        | `ar_mask` | blocks | attention |
        | --- | --- | --- |
        | all 0 | one block | bidirectional (like BERT, or pi0's image+text prefix) |
        | all 1 | one block per token | causal (like GPT) |
        | `0 0 0 1 1 1` | one big block, then one per token | prefix-LM (like PaliGemma, pi0-FAST) |
        """
    )
    nb.code(
        """
        from pi0lite.masks import make_attn_mask

        n = 6
        valid = np.ones((1, n), bool)
        patterns = {
            "bidirectional: ar = 000000": [0, 0, 0, 0, 0, 0],
            "causal: ar = 111111": [1, 1, 1, 1, 1, 1],
            "prefix-LM: ar = 000111": [0, 0, 0, 1, 1, 1],
        }
        fig, axes = plt.subplots(1, 3, figsize=(12, 4))
        for ax, (name, ar) in zip(axes, patterns.items()):
            viz.plot_attn_mask(make_attn_mask(valid, np.array(ar, bool))[0], ax=ax, title=name)
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        Read a row: row 4 of the prefix-LM mask is token 4 looking at keys 0–4: the prefix
        (keys 0–2), token 3 before it, and itself; not at key 5, which comes later.

        **Padding.** A padded token is neither a query nor a key: its whole row and column are
        False. A padded row has *no* True entry at all; notebook 03 shows why attention then
        needs a finite "minus infinity" instead of `-inf`.
        """
    )
    nb.code(
        """
        padded = np.array([[1, 1, 1, 1, 0, 0]], bool)  # the last two slots are padding
        mask = np.asarray(make_attn_mask(padded, np.array([0, 0, 0, 1, 1, 1], bool)))[0]
        assert not mask[4:].any() and not mask[:, 4:].any()  # padding rows and columns are empty
        viz.plot_attn_mask(mask, title="prefix-LM with 2 padding slots", show_values=True)
        plt.show()
        """
    )
    nb.md(
        """
        ### Exercise 2.1 — implement `make_attn_mask`

        Write the rule above with array operations (no Python loops). `input_mask` is
        `bool[b, n]`; `ar_mask` is `bool[n]` (or `[b, n]`); return `bool[b, n, n]` with rows =
        queries. Broadcasting does the work: a `[b, 1, n]` array compared with a `[b, n, 1]` array
        gives `[b, n, n]`.
        """
    )
    nb.exercise(
        "2.1",
        "implement make_attn_mask(input_mask, ar_mask)",
        '''
        def make_attn_mask(input_mask, ar_mask):
            """bool[b, n], bool[n] or [b, n] -> bool[b, n, n]: query i may attend to key j."""
            ### BEGIN SOLUTION
            input_mask = jnp.asarray(input_mask, bool)
            block = jnp.cumsum(jnp.asarray(ar_mask, jnp.int32), axis=-1)  # block id per token
            block = jnp.broadcast_to(block, input_mask.shape)  # [b, n]
            earlier_or_same = block[:, None, :] <= block[:, :, None]  # [b, query, key]
            both_valid = input_mask[:, None, :] & input_mask[:, :, None]
            return earlier_or_same & both_valid
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_make_attn_mask(make_attn_mask)")
    nb.hint(
        """
        1. `c = jnp.cumsum(ar_mask, axis=-1)`, broadcast to `[b, n]`.
        2. `c[:, None, :]` is the key's block (varies along the last axis = columns),
           `c[:, :, None]` the query's block (varies along rows). Compare with `<=`.
        3. And it with `input_mask[:, None, :] & input_mask[:, :, None]`.
        """
    )
    nb.md("From here on the notebook uses the package's version again, whatever you wrote:")
    nb.code("from pi0lite.masks import make_attn_mask  # the reference (exercises are leaves)")
    nb.md(
        """
        ## 2. Three models, three layouts

        * **pi0**: prefix = image patches of every camera + prompt tokens, one bidirectional
          block. Suffix = the **state** token (opens a block), then the **action** tokens (the
          first opens a block; they see each other bidirectionally).
        * **pi0.5**: the state is written into the prompt as text, so the suffix is only the
          action tokens, one block.
        * **pi0-FAST**: no suffix experts at all: the actions are *tokens* generated one at a
          time, so after the bidirectional prefix everything is causal (a prefix-LM).

        Below: two cameras of 4 patches each, a prompt of 4 slots (the last one padding) and 4
        action steps; the orange lines are segment boundaries.
        """
    )
    nb.code(
        """
        H = 4
        image, text = 8, 4
        text_valid = np.array([1, 1, 1, 0], bool)  # the prompt is shorter than its 4 slots

        pi0_segments = [("base image", 4), ("wrist image", 4), ("text", text), ("state", 1), ("actions", H)]
        pi0_ar = np.concatenate([prefix_ar_mask(image + text), suffix_ar_mask(H)])
        pi0_valid = np.concatenate([np.ones(image, bool), text_valid, np.ones(1 + H, bool)])

        pi05_segments = [("base image", 4), ("wrist image", 4), ("text + state", text), ("actions", H)]
        pi05_ar = np.concatenate([prefix_ar_mask(image + text), suffix_ar_mask(H, pi05=True)])
        pi05_valid = np.concatenate([np.ones(image, bool), text_valid, np.ones(H, bool)])

        fast_tokens = 6  # "Action: " + FAST tokens + "|", generated left to right
        fast_segments = [("base image", 4), ("wrist image", 4), ("text + state", text), ("action tokens", fast_tokens)]
        fast_ar = np.concatenate([np.zeros(image + text, bool), np.ones(fast_tokens, bool)])
        fast_valid = np.concatenate([np.ones(image, bool), text_valid, np.ones(fast_tokens, bool)])

        layouts = {
            "pi0": (pi0_segments, pi0_ar, pi0_valid),
            "pi0.5": (pi05_segments, pi05_ar, pi05_valid),
            "pi0-FAST": (fast_segments, fast_ar, fast_valid),
        }
        masks = {name: np.asarray(make_attn_mask(v[None], ar))[0] for name, (_, ar, v) in layouts.items()}
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.8))
        for ax, (name, (segments, ar, v)) in zip(axes, layouts.items()):
            viz.plot_attn_mask(masks[name], segments=segments, ax=ax, title=name)
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        The same picture as a token strip: ▼ marks the tokens that open a new block, hatched boxes
        are padding.
        """
    )
    nb.code(
        """
        ax = viz.plot_token_layout(pi0_segments, input_mask=pi0_valid, ar_mask=pi0_ar,
                                   prefix_len=image + text, title="pi0's token sequence")
        plt.show()
        """
    )
    nb.md("What the pi0 mask guarantees, as assertions:")
    nb.code(
        """
        m = masks["pi0"]
        P = image + text  # prefix length
        state, actions = P, slice(P + 1, P + 1 + H)
        assert not m[:P, P:].any(), "the prefix never looks at the suffix"
        assert not m[state, actions].any(), "the state token does not see the noisy actions"
        assert m[actions][:, pi0_valid].all(), "actions see every valid token"
        assert not m[image + 3].any() and not m[:, image + 3].any(), "the padded text slot is invalid"
        print("prefix → suffix:", m[:P, P:].sum(), "| state → actions:", m[state, actions].sum(),
              "| actions see", m[P + 1].sum(), "of", pi0_valid.sum(), "valid tokens")
        """
    )
    nb.md(
        """
        Because the prefix never depends on the suffix, its keys and values can be computed
        **once** and cached while the actions are denoised over 10 steps: that is pi0's KV cache
        (notebook 06).

        ### Exercise 2.2 — predict a mask by hand

        Seven tokens: `img img txt pad state act act`, with

        ```
        ar_mask    = [0, 0, 0, 0, 1, 1, 0]
        input_mask = [1, 1, 1, 0, 1, 1, 1]
        ```

        Without running `make_attn_mask`, write the 7×7 mask as 0/1 (rows = queries). Start from
        this template:

        ```python
        answer = np.array([
            # img img txt pad st act act   <- keys
            [0, 0, 0, 0, 0, 0, 0],  # img
            [0, 0, 0, 0, 0, 0, 0],  # img
            [0, 0, 0, 0, 0, 0, 0],  # txt
            [0, 0, 0, 0, 0, 0, 0],  # pad
            [0, 0, 0, 0, 0, 0, 0],  # state
            [0, 0, 0, 0, 0, 0, 0],  # act
            [0, 0, 0, 0, 0, 0, 0],  # act
        ])
        ```
        """
    )
    nb.exercise(
        "2.2",
        "write the 7x7 mask as 0/1 rows (answer = np.array([...]))",
        """
        ### BEGIN SOLUTION
        answer = np.array([
            # img img txt pad st act act   <- keys
            [1, 1, 1, 0, 0, 0, 0],  # img: its own block only
            [1, 1, 1, 0, 0, 0, 0],  # img
            [1, 1, 1, 0, 0, 0, 0],  # txt
            [0, 0, 0, 0, 0, 0, 0],  # pad: attends to nothing
            [1, 1, 1, 0, 1, 0, 0],  # state: prefix + itself
            [1, 1, 1, 0, 1, 1, 1],  # act: everything valid
            [1, 1, 1, 0, 1, 1, 1],  # act
        ])
        ### END SOLUTION
        """,
    )
    nb.check(
        """
        checks.check_predicted_mask(answer, ar_mask=[0, 0, 0, 0, 1, 1, 0], input_mask=[1, 1, 1, 0, 1, 1, 1])
        viz.plot_attn_mask(np.asarray(answer, bool), show_values=True, title="your prediction")
        plt.show()
        """
    )
    nb.hint(
        """
        Block ids are `cumsum(ar_mask) = [0, 0, 0, 0, 1, 2, 2]`. Row *i* has a 1 in column *j*
        when block(j) ≤ block(i) and both tokens are valid. The `pad` row and column are all 0.
        """
    )
    nb.md(
        """
        ### Exercise 2.3 — pi0's `ar_mask`

        Write `pi0_ar_mask(num_image_tokens, num_text_tokens, action_horizon)`: the `ar_mask` of
        pi0's whole sequence `[images, text | state, actions]` as a bool array of length
        `num_image_tokens + num_text_tokens + 1 + action_horizon`.
        """
    )
    nb.exercise(
        "2.3",
        "build pi0's ar_mask for prefix + suffix",
        '''
        def pi0_ar_mask(num_image_tokens, num_text_tokens, action_horizon):
            """bool[n]: True where a token opens a new attention block."""
            ### BEGIN SOLUTION
            prefix = np.zeros(num_image_tokens + num_text_tokens, bool)  # one bidirectional block
            state = np.array([True])  # the state token opens its own block
            actions = np.array([True] + [False] * (action_horizon - 1))  # one block for all actions
            return np.concatenate([prefix, state, actions])
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_pi0_ar_mask(pi0_ar_mask)")
    nb.hint(
        """
        Three pieces: the prefix is all `False`; the state token is `True`; the actions are
        `True` for the first one and `False` for the rest. `np.concatenate` them.
        """
    )
    nb.md(
        """
        The package builds the two halves separately, because pi0 embeds the prefix and the
        suffix separately (`Pi0.embed_prefix`, `Pi0.embed_suffix`):
        """
    )
    nb.code(
        """
        print("prefix_ar_mask(5)  =", prefix_ar_mask(5).astype(int))
        print("suffix_ar_mask(4)  =", suffix_ar_mask(4).astype(int), " (state, then 4 actions)")
        print("pi0.5 suffix (4)   =", suffix_ar_mask(4, pi05=True).astype(int))
        """
    )
    nb.md(
        """
        ## 3. Explore

        Click the buttons: the top row toggles `ar_mask` (does this token open a new block?), the
        bottom row toggles `input_mask` (is this token real?). Try: make the two action tokens
        causal; turn the state token into padding; make the whole sequence one block.
        """
    )
    nb.code(
        """
        mask_explorer(
            ar_mask=[0, 0, 0, 0, 1, 1, 0],
            input_mask=[1, 1, 1, 0, 1, 1, 1],
            labels=["img", "img", "txt", "pad", "st", "act", "act"],
        )
        """,
        tags=("nbval-ignore-output",),
    )
    nb.md(
        """
        The same explorer on the three models' layouts from section 2: pick a model, then mark
        the wrist camera missing (its `w` buttons in the bottom row), or make the actions causal.
        Buttons are named by segment: `b` base image, `w` wrist image, `t` text, `s` state, `a`
        actions.
        """
    )
    nb.code("model_mask_explorer(layouts)", tags=("nbval-ignore-output",))
    nb.md(
        """
        ## 4. Positions

        RoPE (notebook 03) needs a position per token. Padding must not advance the count, so
        positions are `cumsum(input_mask) − 1`: `pi0lite.masks.make_positions`. pi0 computes them
        over prefix and suffix together, so the state token's position is the number of *valid*
        prefix tokens, whatever the padding.
        """
    )
    nb.code(
        """
        pos = np.asarray(make_positions(pi0_valid[None]))[0]
        print("input_mask:", pi0_valid.astype(int))
        print("positions: ", pos)
        assert pos[image + text] == pi0_valid[: image + text].sum()  # the state token
        """
    )
    nb.summary(
        """
        * Two flags per token: `input_mask` (real or padding) and `ar_mask` (opens a new block).
        * `make_attn_mask`: query *i* sees key *j* iff `cumsum(ar)[j] ≤ cumsum(ar)[i]` and both are
          valid; rows are queries, columns keys.
        * All 0 = bidirectional, all 1 = causal, `0…0 1…1` = prefix-LM.
        * pi0: `[images, text]` one block; state opens a block; actions open one more and see each
          other. pi0.5 drops the state token; pi0-FAST is a prefix-LM over action tokens.
        * The prefix never sees the suffix, which is what makes the prefix KV cache possible.
        * Positions are `cumsum(input_mask) − 1` (`make_positions`).

        Package functions: `pi0lite.masks.make_attn_mask`, `prefix_ar_mask`, `suffix_ar_mask`,
        `make_positions`; plots `pi0lite.course.viz.plot_attn_mask`, `plot_token_layout`; explorer
        `pi0lite.course.widgets.mask_explorer`.

        Next: **03 · The Gemma block**, where the mask meets the attention logits.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
