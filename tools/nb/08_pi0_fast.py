"""Builder of notebooks/08_pi0_fast.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "08_pi0_fast",
        "08 · pi0-FAST: writing actions as tokens",
        """
        pi0-FAST has no action expert and no flow matching. It is a plain vision-language
        model: images and a prompt go in, and it *writes* the action chunk as FAST tokens
        (notebook 07), one token at a time, exactly like a language model writes text.

        You will lay out the token sequence and its three masks, draw the prefix-LM attention
        mask, compute the next-token loss on the action tokens only, decode greedily step by
        step with a KV cache, and compare the cost with flow-matching pi0 on the same tiny model.
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

        from pi0lite import compiled
        from pi0lite.course import checks, viz
        from pi0lite.config import TINY
        from pi0lite.fast import FastTokenizer
        from pi0lite.fast.decode import decode_step, prefill
        from pi0lite.fast.decode import generate as generate_tokens
        from pi0lite.fast.prompt import CharTokenizer, FastPrompt
        from pi0lite.masks import make_attn_mask
        from pi0lite.pi0_fast import FastObservation, Pi0Fast, Pi0FastConfig

        np.set_printoptions(precision=3, suppress=True)
        """
    )
    nb.md(
        """
        ## 1. The token sequence

        openpi's layout, with the tokens of the prompt as text:

        | part | content | `ar` | loss |
        | --- | --- | --- | --- |
        | prefix | BOS `Task: {prompt}, State: {256-bin state};\\n` | 0 | no |
        | postfix | `Action: ` + FAST tokens + `\\|` + EOS | 1 | yes |
        | padding | pad id | 0 | no |

        FAST id `k` is stored as vocabulary id `vocab_size − 1 − skip − k`: the action tokens
        occupy the top of the vocabulary (openpi skips PaliGemma's last 128 ids). Here the text
        tokenizer is a tiny character-level one; with the real PaliGemma sentencepiece model
        (`pi0lite.toy.text.SentencePieceTokenizer`) the same code applies.
        """
    )
    nb.code(
        """
        rng = np.random.default_rng(0)
        H, D = 10, 2                                                       # a short 2-d chunk
        t = np.linspace(0, 1, H)[None, :, None]
        chunks = 0.8 * np.sin(2 * np.pi * (t * rng.uniform(0.2, 1.0, (500, 1, D)) + rng.uniform(0, 1, (500, 1, D))))
        fast = FastTokenizer.fit(chunks, vocab_size=300)
        text = CharTokenizer()
        prompt = FastPrompt(text=text, fast=fast, vocab_size=text.vocab_size + fast.vocab_size + 128,
                            max_token_len=72, skip=128)
        states = rng.uniform(-1, 1, (2, D)).astype(np.float32)
        tok = prompt.tokenize(["Pick up the red block", "push_left"], states, chunks[:2])
        ids, mask = tok["tokenized_prompt"][0], tok["tokenized_prompt_mask"][0]
        ar, loss = tok["token_ar_mask"][0], tok["token_loss_mask"][0]
        print("vocabulary:", prompt.vocab_size, "| text ids < ", text.vocab_size,
              "| FAST ids from", prompt.vocab_size - 1 - 128 - (fast.vocab_size - 1))
        print(repr(text.decode(ids[~ar.astype(bool)])))
        print("postfix ids:", ids[ar.astype(bool)])
        labels = ["<bos>" if i == text.bos_id else "<eos>" if i == text.eos_id else "" if i == text.pad_id
                  else text.decode([i]) or "#" for i in ids]
        viz.plot_token_masks(mask, ar, loss, labels=labels, title="example 0: input / ar / loss masks")
        plt.show()
        """
    )
    nb.md(
        """
        (`#` marks an action token: it is not a character.)

        ### Exercise 8.1 — build the masks

        Given the prefix and postfix length of every example and the padded length `max_len`,
        return `(input_mask, ar_mask, loss_mask)`, each `[b, max_len]`: input True on prefix and
        postfix; ar 1 and loss True exactly on the postfix.
        """
    )
    nb.exercise(
        "8.1",
        "build input, ar and loss masks",
        '''
        def fast_masks(prefix_lens, postfix_lens, max_len):
            """int[b], int[b], int -> (bool[b, l], int[b, l], bool[b, l])."""
            ### BEGIN SOLUTION
            slot = np.arange(max_len)[None, :]
            end = (prefix_lens + postfix_lens)[:, None]
            input_mask = slot < end
            postfix = (slot >= prefix_lens[:, None]) & input_mask
            return input_mask, postfix.astype(np.int32), postfix
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_fast_masks(fast_masks)")
    nb.hint(
        """
        Compare a row of slot indices `np.arange(max_len)[None, :]` with the per-example
        boundaries `prefix_lens[:, None]` and `(prefix_lens + postfix_lens)[:, None]`.
        """
    )
    nb.md(
        """
        ## 2. The attention mask: a prefix-LM

        Images and the task text form one bidirectional block (`ar = 0`); every action token
        opens its own block (`ar = 1`), so it sees the whole prefix and the earlier action tokens
        only: causal, like a language model. The model never peeks at later actions.
        """
    )
    nb.code(
        """
        cfg = Pi0FastConfig(action_dim=D, action_horizon=H, max_token_len=72, vocab_size=prompt.vocab_size,
                            image_keys=TINY.image_keys, paligemma=TINY.paligemma, vision=TINY.vision)
        model = Pi0Fast(cfg, rngs=nnx.Rngs(0))
        images = {k: rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32) for k in cfg.image_keys}
        obs = FastObservation.from_tokens(images, states, tok)
        _, input_mask, ar_mask = nnx.jit(lambda m, o: m.embed_inputs(o))(model, obs)
        attn = np.asarray(make_attn_mask(input_mask, ar_mask))[0]
        n_img, n_pre, n_post = cfg.num_image_tokens, int((mask & ~loss).sum()), int(loss.sum())
        segments = [("image", n_img), ("text", n_pre), ("action tokens", n_post),
                    ("padding", cfg.seq_len - n_img - n_pre - n_post)]
        viz.plot_attn_mask(attn, segments=segments, title="pi0-FAST: prefix-LM mask (example 0)")
        plt.show()
        post = slice(n_img + n_pre, n_img + n_pre + n_post)
        assert not attn[: n_img + n_pre, post].any()                        # the prefix never sees actions
        assert np.array_equal(attn[post, post], np.tril(np.ones((n_post, n_post), bool)))  # causal
        """
    )
    nb.md(
        """
        ## 3. The loss: next token, action tokens only

        The model runs on the sequence without its last token; the output at text slot `j`
        predicts token `j + 1` through the tied embedding (`logits = h · Eᵀ`). The loss averages
        `−log p` over the targets whose loss mask is on, so the first target is "A" of
        `Action: `, predicted from the last prompt token. With random weights every token is
        about equally likely, so the loss starts near `log(vocab_size)`.
        """
    )
    nb.code(
        """
        loss_and_logp = nnx.jit(lambda m, o: (m.compute_loss(None, o), m.token_logp(o)[0]))
        loss_per_example, target_logp = loss_and_logp(model, obs)
        m = tok["token_loss_mask"][:, 1:]
        by_hand = -(np.asarray(target_logp) * m).sum(1) / m.sum(1)
        print("loss:", np.asarray(loss_per_example), "| by hand:", by_hand, "| log V =", np.log(cfg.vocab_size).round(3))
        assert np.allclose(loss_per_example, by_hand, rtol=1e-5)
        """
    )
    nb.md(
        """
        ## 4. Greedy decoding with a KV cache

        At inference there is no postfix: the prompt ends with `;\\n`. Generation

        1. right-aligns each row (padding moved to the front) so the next token of every row
           goes into the same cache slot;
        2. **prefills**: one pass over the prompt writes its keys/values into a cache with room
           for `max_steps` more tokens, and the last position's logits give the first token;
        3. then repeats: embed the new token, run it *alone* against the cache at position
           `prefill_len + step` (the position it had in training), take the argmax.

        openpi uses `prefill_len + step + 1` here (a known off-by-one); pi0lite reproduces it
        only with `openpi_positions=True`, which the parity test uses.
        """
    )
    nb.code(
        """
        infer = FastObservation.from_tokens(images, states, prompt.tokenize(["Pick up the red block", "push_left"], states))
        max_steps = 6
        logits, kv, prompt_mask = nnx.jit(prefill, static_argnums=2)(model, infer, max_steps)
        print("cache keys [depth, b, slots, kv heads, head dim]:", kv[0].shape,
              "| prompt tokens per row:", np.asarray(prompt_mask.sum(1)))
        token = jnp.argmax(logits, -1).astype(jnp.int32)
        print("first token of each row:", np.asarray(token))
        """
    )
    nb.md(
        """
        **The calls a decoding step is made of.** `model.llm` is the Gemma backbone (a list with
        one input per expert; pi0-FAST has one expert). Called with a cache it returns
        `(outputs, cache)`: `outputs` is a list with one `[b, t, width]` array per expert (after
        the final norm), and the cache is a pair `(keys, values)`, each
        `[depth, b, slots, kv heads, head dim]`, with this call's keys and values written at
        slots `cache_index … cache_index + t − 1`. `positions` is `[b, t]` (RoPE positions of
        the new tokens) and `mask` is `[b, t, slots]` (which cache slots each new token may see).
        `model.llm.embedder.encode` maps ids `[b, t]` to `[b, t, width]`; `.decode` maps
        `[b, t, width]` back to logits `[b, t, vocab]`. The cell below makes one such call with
        *made-up* positions and mask (every token sees only slot 0), just to show the shapes:
        """
    )
    nb.code(
        """
        b, n = prompt_mask.shape
        slots = kv[0].shape[2]
        x = model.llm.embedder.encode(token[:, None])                          # ids [b, 1] -> [b, 1, w]
        demo_mask = jnp.zeros((b, 1, slots), bool).at[:, :, 0].set(True)      # illustrative only
        (out,), demo_kv = model.llm([x], positions=jnp.zeros((b, 1), jnp.int32), mask=demo_mask,
                                    kv_cache=kv, cache_index=n)
        print("embedded:", x.shape, "| output of expert 0:", out.shape, "| logits:", model.llm.embedder.decode(out).shape)
        print("cache keys before and after:", kv[0].shape, demo_kv[0].shape)
        assert not np.allclose(demo_kv[0][:, :, n], kv[0][:, :, n])            # slot n was written
        """
    )
    nb.md(
        """
        ### Exercise 8.2 — one decoding step

        Feed `token` (`[b]`, chosen at step `step`) and return the logits for the next token and
        the updated cache. `n = mask.shape[1]` is the prompt length; this token's key/value goes
        into cache slot `n + step`, and it may attend to the valid prompt slots and to cache
        slots `n … n + step`. Use `model.llm.embedder.encode`, `model.llm(...)` with
        `kv_cache=kv, cache_index=...` and `model.llm.embedder.decode`.
        """
    )
    nb.exercise(
        "8.2",
        "one cached decoding step",
        '''
        def decode_one(model, token, kv, mask, step):
            """token int[b], cache, prompt mask bool[b, n], step -> (logits f32[b, v], cache)."""
            ### BEGIN SOLUTION
            b, n = mask.shape
            slots = kv[0].shape[2]
            x = model.llm.embedder.encode(token[:, None])                   # [b, 1, w]
            positions = (mask.sum(1) + step)[:, None]                       # as in training
            cols = jnp.arange(slots)
            generated = (cols >= n) & (cols <= n + step)
            attn = jnp.pad(mask, ((0, 0), (0, slots - n))) | generated[None, :]
            (out,), kv = model.llm([x], positions=positions, mask=attn[:, None, :], kv_cache=kv, cache_index=n + step)
            return model.llm.embedder.decode(out)[:, 0], kv
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_decode_step(decode_one, model, token, kv, prompt_mask, 0)")
    nb.hint(
        """
        `positions` is `[b, 1]`: the number of valid prompt tokens plus `step`. The mask is
        `[b, 1, slots]`: the prompt mask padded with False to `slots`, or-ed with the generated
        slots `n … n + step`.
        """
    )
    nb.md("The package's `decode_step` in a loop gives the same tokens as `model.generate`:")
    nb.code(
        """
        step_fn = nnx.jit(decode_step, static_argnames="position_offset")
        tokens = [token]
        for step in range(max_steps - 1):
            logits, kv = step_fn(model, tokens[-1], kv, prompt_mask, step, position_offset=0)
            tokens.append(jnp.argmax(logits, -1).astype(jnp.int32))
        by_hand = np.stack([np.asarray(t) for t in tokens], 1)
        cached = np.asarray(model.generate(None, infer, max_steps=max_steps))
        print(by_hand)
        assert np.array_equal(by_hand, cached)  # tests/test_pi0_fast.py also checks cached == uncached
        actions, valid, _ = model.sample_actions(None, infer, prompt, max_steps=max_steps)
        print("untrained model -> valid action chunks:", valid)               # it has not learnt the format
        """
    )
    nb.md(
        """
        An untrained model does not write `Action: … |`, so `extract_actions` marks its output
        invalid instead of returning made-up actions.

        ## 5. pi0-FAST vs flow-matching pi0: forward passes per chunk

        Flow pi0 runs the prefix once and then **10** small passes of the action expert (one per
        Euler step), whatever the chunk. pi0-FAST runs the prefix once and then **one pass per
        token**: `Action: `, the FAST tokens, `|` and EOS. We time both on the same tiny
        backbone (pi0's `TINY` config); pi0-FAST decodes as many steps as its training postfix
        is long.
        """
    )
    nb.code(
        """
        from pi0lite.observation import Observation
        from pi0lite.pi0 import Pi0

        pi0 = Pi0(TINY, rngs=nnx.Rngs(0))
        obs0 = Observation.from_numpy(images, np.zeros((2, TINY.action_dim), np.float32),
                                      np.array([[1, 5, 6, 7], [1, 8, 9, 0]]))
        postfix_len = int(tok["token_loss_mask"].sum(1).max())
        # compiled once on split state (pi0lite.compiled): no walk over the module graph per call
        sample = compiled.bind(pi0, lambda m, o, k: m.sample_actions(k, o, num_steps=10))
        generate = compiled.bind(model, lambda m, o: generate_tokens(m, o, jax.random.key(0), max_steps=postfix_len))
        print(f"forward passes per chunk: flow pi0 1 + 10, pi0-FAST 1 + {postfix_len}")

        def best_time(fn, repeats=3):
            jax.block_until_ready(fn())                                     # compile and warm up
            best = float("inf")
            for _ in range(repeats):
                t0 = time.perf_counter()
                jax.block_until_ready(fn())
                best = min(best, time.perf_counter() - t0)
            return best

        t_flow = best_time(lambda: sample(obs0, jax.random.key(0)))
        t_fast = best_time(lambda: generate(infer))
        print(f"time per chunk, pi0-FAST / flow pi0: {t_fast / t_flow:.1f}x")
        """,
        tags=("nbval-ignore-output",),
    )
    nb.md(
        """
        Each FAST step is a single token, so each pass is cheap, but the passes are sequential
        and there are several times more of them. At real sizes the paper reports about 750 ms
        (pi0-FAST, 2B backbone) against 100 ms (pi0) per one-second chunk; in exchange pi0-FAST
        trained up to 5× faster.
        """
    )
    nb.summary(
        """
        * pi0-FAST is one transformer over `[images, BOS Task…State…;\\n, Action: FAST… | EOS]`
          with a prefix-LM mask: bidirectional prefix (`ar = 0`), causal actions (`ar = 1`).
        * The loss is next-token cross-entropy on the postfix only; logits use the tied
          embedding. FAST ids live at the top of the vocabulary (`V − 1 − skip − k`).
        * Inference right-aligns the prompt, prefills a fixed-size KV cache, then decodes one
          token per pass at the position it had in training (openpi's `+1` is an option), until
          EOS. Tokens → actions goes back through FAST and reports `valid` per example.
        * Cost: one pass per token (tens) against flow pi0's ten expert passes.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
