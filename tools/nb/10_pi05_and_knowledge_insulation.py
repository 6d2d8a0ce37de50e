"""Builder of notebooks/10_pi05_and_knowledge_insulation.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "10_pi05_and_knowledge_insulation",
        "10 · pi0.5 and knowledge insulation",
        """
        pi0.5 is the model openpi users run today. Its network is pi0's (a VLM expert and an action
        expert sharing attention), with three changes, and Physical Intelligence trains it with
        **knowledge insulation** (KI, Driess et al. 2025). This notebook covers both:

        * **adaRMS**: the time no longer enters the action tokens, it *modulates* every norm of the
          action expert (scale, shift and a gate); the gate starts at zero;
        * the **time MLP** that turns the flow time into that condition;
        * the **discrete-state prompt**: the robot state is written into the text as 256 bins;
        * **KI**: the VLM learns the action chunk as FAST tokens, the action expert learns it by
          flow matching, and a stop-gradient keeps the flow loss out of the VLM. We draw the mask,
          measure where the gradients go, train a few steps live, and read the toy-task comparison.

        Time convention, as everywhere in this course (openpi's): **t = 1 is noise, t = 0 is data**,
        `x_t = t·noise + (1 − t)·actions`, and sampling integrates from t = 1 down to 0.
        """,
    )
    nb.code(
        """
        import jax
        import jax.numpy as jnp
        import matplotlib.pyplot as plt
        import numpy as np
        from flax import nnx

        from pi0lite import flow, ki
        from pi0lite.config import TINY
        from pi0lite.course import checks, viz
        from pi0lite.masks import make_attn_mask, prefix_ar_mask, suffix_ar_mask
        from pi0lite.pi0 import Observation, Pi0
        from pi0lite.prompt import discretize_state, pi05_prompt

        np.set_printoptions(precision=3, suppress=True)
        key = jax.random.key(0)
        cfg = TINY.replace(pi05=True)
        """
    )
    nb.md(
        """
        ## 1. adaRMS: the time modulates the action expert

        pi0 tells the action expert the flow time by mixing `sincos(t)` into every action token.
        pi0.5 leaves the tokens alone (`action_in_proj(x_t)` only) and instead makes every RMSNorm
        of the action expert **adaptive**. A Dense layer reads a condition vector $c$ (made from
        the time) and returns three vectors of the expert's width:

        $$(\\text{scale}, \\text{shift}, \\text{gate}) = \\text{Dense}(c), \\qquad
        \\hat x = \\frac{x}{\\sqrt{\\overline{x^2} + \\epsilon}}\\,(1 + \\text{scale}) + \\text{shift}, \\qquad
        x \\leftarrow x + \\text{gate} \\odot f(\\hat x)$$

        where $f$ is the attention or the feed-forward sub-layer. The VLM expert keeps its plain
        RMSNorm. openpi initialises that Dense layer (`Dense_0` in each norm) **at zero**: scale,
        shift and gate all start at 0. A zero gate multiplies every sub-layer's output by 0, so a
        fresh pi0.5 action expert passes its input straight to its final norm: it reads nothing
        from the images or the prompt, and nothing from the time. Let us check that numerically.
        """
    )
    nb.code(
        """
        model = Pi0(cfg, rngs=nnx.Rngs(0))
        dense = model.PaliGemma["llm"].experts[1].pre_attention_norm.Dense_0
        print("adaRMS Dense kernel", dense.kernel.shape, "(layers, condition, 3 × width); all zero:",
              not np.any(np.asarray(dense.kernel[...])))


        def make_obs(seed, batch=2):
            rng = np.random.default_rng(seed)
            prompt = rng.integers(1, cfg.vocab_size, (batch, cfg.max_token_len))
            return Observation.from_numpy(images={"base_0_rgb": rng.uniform(-1, 1, (batch, 32, 32, 3)).astype(np.float32)},
                                          state=np.zeros((batch, 4), np.float32), tokenized_prompt=prompt,
                                          tokenized_prompt_mask=np.ones_like(prompt, bool))


        x_t = jax.random.normal(key, (2, cfg.action_horizon, cfg.action_dim))
        forward = nnx.jit(lambda m, obs, x, t: m.forward(obs, x, t)[0])
        v_a = forward(model, make_obs(1), x_t, jnp.array([0.9, 0.9]))
        v_b = forward(model, make_obs(2), x_t, jnp.array([0.1, 0.5]))   # other images, prompt and times
        h = model.action_in_proj(x_t)                                   # the action expert's input
        by_hand = model.action_out_proj(h / jnp.sqrt(jnp.mean(h**2, -1, keepdims=True) + 1e-6))
        print("velocity changes with images, prompt and time:", not np.allclose(v_a, v_b, atol=1e-6))
        print("velocity = action_out_proj(rms_normalise(action_in_proj(x_t))):", np.allclose(v_a, by_hand, atol=1e-5))
        assert np.allclose(v_a, v_b, atol=1e-6) and np.allclose(v_a, by_hand, atol=1e-5)
        """
    )
    nb.md(
        """
        The fresh action expert is a fixed per-token map of $x_t$: no layer contributes. Training
        opens the gates: the first gradient step gives the Dense layers non-zero weights (the
        gate's gradient is the sub-layer output, which is not zero), and from then on the expert
        reads the prefix and the time. This is the same "start as the identity" trick as the
        zero-initialised gates of DiT's adaLN-Zero.

        **The time MLP.** The condition $c$ comes from the flow time by a two-layer MLP, computed
        once per example and shared by every adaRMS norm of every layer:
        $c = \\text{swish}(W_\\text{out}\\,\\text{swish}(W_\\text{in}\\,\\text{sincos}(t)))$
        (`Pi0.adarms_cond`, openpi's `time_mlp_in` / `time_mlp_out`). pi0's per-token mixer
        (`action_time_mlp_in/out`) and its state projection (`state_proj`) are gone:
        """
    )
    nb.code(
        """
        cond = model.adarms_cond(jnp.array([1.0, 0.5, 0.0]))
        print("condition per example:", cond.shape, "(batch, action-expert width)")
        heads = lambda m: sorted(k for k in nnx.state(m, nnx.Param) if k != "PaliGemma")
        print("pi0   heads:", heads(Pi0(TINY, rngs=nnx.Rngs(0))))
        print("pi0.5 heads:", heads(model))
        assert cond.shape == (3, cfg.action_expert.width)
        """
    )
    nb.md(
        """
        ## 2. The discrete-state prompt

        pi0 feeds the state through a linear layer as one suffix token. pi0.5 (with openpi's
        default `discrete_state_input=True`) writes it **into the prompt**, so the VLM reads it as
        text:

        `BOS + "Task: {cleaned prompt}, State: {s_1 s_2 … s_n};\\nAction: "`

        Each state dimension (quantile-normalised, so the data's 1 % and 99 % quantiles map to −1
        and 1, and only the robot's real dimensions, before padding) becomes one of 256 equal bins
        on [−1, 1]: bin $k$ covers $[-1 + k/128,\\ -1 + (k+1)/128)$. openpi computes it as
        `np.digitize(s, np.linspace(-1, 1, 257)[:-1]) - 1`, which has two edge behaviours worth
        knowing: a value **below −1 gives −1** (digitize returns 0 before the first edge) and any
        value **≥ 1 gives 255** (the last bin is open to the right). The toy's word tokenizer
        splits the text into words, punctuation and the bin numbers:
        """
    )
    nb.code(
        """
        from pi0lite.toy.pi05 import pi05_tokenizer

        state = np.array([-1.7, -0.25, 0.5, 1.0])        # already quantile-normalised: 4 real dims
        text = pi05_prompt("  go to the red_square\\n", state)
        print(repr(text))
        tokenizer = pi05_tokenizer()
        ids = tokenizer.encode(text)
        print("ids:   ", ids)
        print("tokens:", [tokenizer.tok.id_to_token(i) for i in ids])
        assert text == "Task: go to the red square, State: -1 96 192 255;\\nAction: "
        """
    )
    nb.md(
        """
        openpi's cleaning stripped the outer whitespace and turned the underscore into a space; it
        does not lower-case (pi0-FAST's cleaning does; the toy's word tokenizer lower-cases on its
        own). The state value −1.7 shows up as the bin **−1**, the value 1.0 as **255**.

        ### Exercise 10.1 — discretize a state vector like openpi

        Write `discretize(state)` for a state array of any shape: an integer array of the same
        shape with openpi's bins, edge behaviour included. The check tries values inside the
        range, exactly −1 and exactly 1, values beyond both ends, bin starts and values just
        below them.
        """
    )
    nb.exercise(
        "10.1",
        "discretize a state vector like openpi",
        '''
        def discretize(state):
            """state: float array [..., j], quantile-normalised -> int array [..., j] (bins -1 … 255)."""
            ### BEGIN SOLUTION
            starts = np.linspace(-1.0, 1.0, 257)[:-1]  # the 256 bin starts -1, -1 + 1/128, ...
            return np.digitize(np.asarray(state), starts) - 1
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_discretize(discretize)")
    nb.hint(
        """
        `np.digitize(x, edges)` returns how many edges are ≤ x (with the default `right=False`):
        0 below the first edge, 256 at or above the last one. With the 256 bin starts as edges,
        subtract 1. Do not clip: openpi does not.
        """
    )
    nb.md(
        """
        ## 3. Where pi0.5's tokens sit in the mask

        Compared with pi0 (notebook 02), the suffix loses its state token: it is only the H action
        tokens, with `ar = [1, 0, …, 0]`: one block after the prefix, bidirectional inside. The
        prefix (images + the prompt that now carries the state) is unchanged and bidirectional.
        Below, one image of 4 tokens, a prompt of 5 slots (one of them padding) and 4 actions:
        """
    )
    nb.code(
        """
        n_img, n_txt, n_act = 4, 5, 4
        prefix_valid = np.array([True] * (n_img + n_txt - 1) + [False])
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
        for ax, pi05 in zip(axes, (False, True)):
            suffix_ar = np.asarray(suffix_ar_mask(n_act, pi05=pi05))
            valid = np.concatenate([prefix_valid, np.ones(len(suffix_ar), bool)])
            mask = make_attn_mask(valid[None], np.concatenate([prefix_ar_mask(n_img + n_txt), suffix_ar]))[0]
            suffix = [("actions", n_act)] if pi05 else [("state", 1), ("actions", n_act)]
            viz.plot_attn_mask(mask, segments=[("image", n_img), ("prompt", n_txt), *suffix], ax=ax,
                               title="pi0.5 (state in the prompt)" if pi05 else "pi0 (state token)")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ## 4. Knowledge insulation

        pi0 trains a randomly initialised action expert together with a pretrained VLM, end to
        end. The flow-matching gradients that reach the VLM are noisy (their size depends on the
        sampled noise level) and they wear away what the VLM knew: training is slower and the
        policy follows language worse. The KI paper's recipe, as pi0lite implements it
        (`pi0lite.ki.ki_loss`):

        1. **Two answers for one chunk.** The VLM reads `[images, prompt, FAST tokens of the chunk]`
           and learns the FAST tokens by next-token cross-entropy, as pi0-FAST does (notebooks
           07–08). The action expert learns the same chunk by flow matching.
        2. **Stop-gradient.** The action expert attends to the VLM's keys and values of images and
           prompt through `jax.lax.stop_gradient`: the flow loss trains only the action expert and
           its heads; the VLM learns only from the discrete loss.
        3. **The action expert never sees the FAST tokens**: they spell out the answer.
        4. **Inference is pi0.5's**: images + prompt fill the KV cache, the flow sampler runs; no
           FAST token is ever generated.

        The loss is `fast_weight · L_FAST + L_flow` (pi0lite's default weight is 1).

        **The mask** has three blocks: the prefix (bidirectional), the FAST tokens (causal, each
        sees the prefix and the earlier FAST tokens), the action tokens (see the prefix and the
        actions, never FAST). Nobody before the actions sees them.
        """
    )
    nb.code(
        """
        prefix_mask = prefix_valid[None]
        fast_mask = np.array([[True, True, True, True, False]])        # 4 FAST tokens + 1 padding slot
        suffix_mask = np.ones((1, n_act), bool)
        ki_mask_ref = ki.ki_attn_mask(prefix_mask, fast_mask, suffix_mask, suffix_ar_mask(n_act, pi05=True))
        viz.plot_ki_mask(ki_mask_ref[0], prefix=[("image", n_img), ("prompt", n_txt)], n_fast=5, n_actions=n_act)
        plt.show()
        """
    )
    nb.md(
        """
        ### Exercise 10.2 — the KI attention mask

        Write `ki_mask(prefix_mask, fast_mask, suffix_mask, suffix_ar)` → bool `[b, t, t]` over
        `[prefix; FAST; actions]` (True = may attend, rows are queries). You may use
        `make_attn_mask(input_mask, ar_mask)` from notebook 02. Decide for each block: what may the
        action tokens see? May a FAST token see a later one? May the prompt see the FAST tokens?
        """
    )
    nb.exercise(
        "10.2",
        "the KI attention mask",
        '''
        def ki_mask(prefix_mask, fast_mask, suffix_mask, suffix_ar):
            """prefix_mask [b, p], fast_mask [b, o], suffix_mask [b, q] (True = real token), suffix_ar [q] -> [b, t, t]."""
            ### BEGIN SOLUTION
            p, o = prefix_mask.shape[1], fast_mask.shape[1]
            ar = np.concatenate([np.zeros(p, bool), np.ones(o, bool), np.asarray(suffix_ar, bool)])
            mask = np.array(make_attn_mask(np.concatenate([prefix_mask, fast_mask, suffix_mask], axis=1), ar))
            mask[:, p + o :, p : p + o] = False  # actions never see the FAST tokens
            return mask
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_ki_mask(ki_mask)")
    nb.hint(
        """
        `ar` = 0 for the prefix, **1 for every FAST token** (each starts its own causal step, so
        the prefix cannot see them and each sees only the earlier ones), then `suffix_ar`. That
        is openpi's rule; it would still let the actions see the FAST tokens, so set the block
        rows = actions, columns = FAST to `False` afterwards.
        """
    )
    nb.md(
        """
        ## 5. A short live KI training run

        The toy pipeline for pi0.5 (`pi0lite.toy.pi05.ki_setup`) does everything above for the
        toy task: quantile statistics, the discrete-state prompt through the word tokenizer, and
        FAST targets from pi0lite's own FAST tokenizer fitted on the normalised chunks (their ids
        sit at the top of the model's vocabulary, above the words). `toy.train.train` with
        `mode="ki"` then minimises `ki_loss`. Twenty steps on a small dataset: far too short for
        a policy, enough to watch both losses fall.
        """
    )
    nb.code(
        """
        from pi0lite.toy import normalize
        from pi0lite.toy.data import build_dataset
        from pi0lite.toy.pi05 import ki_setup
        from pi0lite.toy.train import TrainConfig, train

        ds = build_dataset(20, seed=0)
        stats = {"state": normalize.compute_stats(ds.state), "actions": normalize.compute_stats(ds.actions)}
        toy_cfg, toy_tok, toy_norm, fast_prompt, arrays = ki_setup(TINY, ds, stats)
        n_fast = int(arrays["fast_mask"][0].sum())
        print(f"{len(ds)} chunks; prompt of chunk 0: {toy_tok.decode(arrays['tokens'][0])!r}")
        print(f"its FAST target: {n_fast} ids (the last is EOS):", arrays["fast_tokens"][0, :n_fast])
        run = train(toy_cfg, TrainConfig(mode="ki", steps=20, batch_size=8, warmup_steps=4, aux_weight=0.0),
                    arrays, progress=False)
        first, last = run.history[:5].mean(0), run.history[-5:].mean(0)
        print(f"flow loss {first[0]:.2f} -> {last[0]:.2f} | FAST cross-entropy {first[1]:.2f} -> {last[1]:.2f}")
        assert last[0] < first[0] and last[1] < first[1]
        """
    )
    nb.code(
        """
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        viz.plot_loss_curves({"KI, 20 steps": run.history}, ax=axes[0], smooth=3, column=0, title="flow loss (action expert)")
        viz.plot_loss_curves({"KI, 20 steps": run.history}, ax=axes[1], smooth=3, column=1, title="FAST loss (VLM)")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ## 6. Where the gradients go

        `ki.part_grad_norms` differentiates one term of the KI loss (`"flow"` or `"fast"`) and
        returns the gradient's L2 norm per module group: the vision tower, the embedder, the VLM
        layers (these three are "the VLM"), the action-expert layers and the action heads
        (`action_in_proj`, `action_out_proj`, the time MLP). We use the model after the 20 steps
        above. (On a *fresh* pi0.5 the flow term would give the VLM nothing even without the
        stop-gradient: section 1's zero gates mean the action expert does not read the prefix yet.)
        """
    )
    nb.code(
        """
        trained = run.trainable.pi0
        batch = {k: v[:4] for k, v in arrays.items()}
        obs = Observation.from_numpy(images={"base_0_rgb": batch["images"]}, state=batch["state"],
                                     tokenized_prompt=batch["tokens"], tokenized_prompt_mask=batch["token_mask"])
        grad_args = (key, obs, batch["actions"], batch["fast_tokens"], batch["fast_mask"])
        norms = {
            "flow loss, insulate=False": ki.part_grad_norms(trained, *grad_args, part="flow", insulate=False),
            "flow loss, insulate=True (KI)": ki.part_grad_norms(trained, *grad_args, part="flow", insulate=True),
            "FAST loss": ki.part_grad_norms(trained, *grad_args, part="fast", insulate=True),
        }
        viz.plot_grad_norms(norms, title="gradient norm per module, after 20 KI steps")
        plt.show()
        fresh = ki.part_grad_norms(Pi0(toy_cfg, rngs=nnx.Rngs(1)), *grad_args, part="flow", insulate=False)
        for name, n in [*norms.items(), ("fresh model, flow, insulate=False", fresh)]:
            print(f"{name:34s} VLM {sum(n[g] for g in ki.VLM_GROUPS):.2e} | action expert {n['action-expert layers']:.2e}")
        assert all(norms["flow loss, insulate=True (KI)"][g] == 0 for g in ki.VLM_GROUPS)
        assert all(norms["flow loss, insulate=False"][g] > 0 for g in ki.VLM_GROUPS)
        assert norms["FAST loss"]["action-expert layers"] == 0 and sum(fresh[g] for g in ki.VLM_GROUPS) == 0
        """
    )
    nb.md(
        """
        Read the chart by groups. Under KI the flow loss leaves the vision tower, the embedder and
        the VLM layers at **exactly** zero (no bar; a "0" marks the slot), while the action expert
        gets the same gradient as without insulation. The FAST loss is the mirror image: it trains
        the VLM and never reaches the action-expert layers, because no FAST token attends to an
        action token (nor are the action heads used by any VLM token, so their slot is zero too).

        ### Exercise 10.3 — where the stop-gradient goes

        Write KI's flow term by hand: fill the prefix cache with the VLM
        (`model.fill_prefix_cache(obs)` → `(kv_cache, prefix_mask)`), let the action expert
        predict the velocity against it (`model.velocity_cached(obs, kv_cache, prefix_mask, x_t,
        time)`), and return the mean squared error to the target `noise − actions`. Put **one**
        `jax.lax.stop_gradient` where it keeps the flow gradient out of the VLM and nowhere else.
        The check differentiates your function on a small pi0.5 and looks at the gradient of
        every module: the source text is not read.
        """
    )
    nb.exercise(
        "10.3",
        "put the stop-gradient in the right place",
        '''
        def insulated_flow_loss(model, obs, actions, noise, time):
            """actions, noise [b, a, j]; time [b] (t = 1 noise, t = 0 data) -> scalar flow loss."""
            x_t = flow.interpolate(noise, actions, time)         # t·noise + (1 − t)·actions
            ### BEGIN SOLUTION
            kv_cache, prefix_mask = model.fill_prefix_cache(obs)
            kv_cache = jax.lax.stop_gradient(kv_cache)          # the VLM's keys/values: read, not trained
            v_t = model.velocity_cached(obs, kv_cache, prefix_mask, x_t, time)
            return jnp.mean(jnp.square(v_t - (noise - actions)))
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_insulated_flow_loss(insulated_flow_loss)")
    nb.hint(
        """
        The cache is a pair `(keys, values)`, each computed by the VLM's layers from the
        embeddings of images and prompt. `jax.lax.stop_gradient` works on the whole pair (any
        pytree). Stopping the embeddings is too early (the VLM layers still learn), stopping
        `v_t` or the loss is too late (nothing learns).
        """
    )
    nb.md(
        """
        ## 7. Does KI help on the toy task?

        The paper reports that KI trains several times faster than end-to-end pi0 and follows
        language better. The toy task tests the language part sharply: the instruction names one
        of three coloured squares, and notebook 09 showed that pi0 trained from scratch without a
        VLM-side objective mostly goes to a wrong square. In KI the FAST loss is such an
        objective: to predict the chunk's tokens the VLM must read the colour word.

        `python -m pi0lite.demo --policies pi0,pi0_noaux,pi05_ki,pi05_noki --curve-every 500 --steps 5000`
        trains four policies on the same data for the same number of steps, evaluating
        closed-loop success every 500 steps: pi0 with the grounding head (the shipped policy),
        pi0 without it, pi0.5 + KI (no grounding head), and pi0.5 with both losses but no
        stop-gradient. The targets for `pi05_ki`, set from the paper's claims before the runs: at
        least 85 % success with at most 5 % wrong-square episodes in the same training budget,
        and 80 % success reached in fewer steps than `pi0`. Two fixes were tried afterwards on the
        same data and budget: `pi05_ki_aux` (KI plus the toy's grounding head on the VLM, a
        VLM-side co-training objective like the VLM data pi0.5 is co-trained on) and
        `pi05_ki_fine` (finer FAST tokens: scale 20 instead of 10). The results ship with the
        package (`pi0lite.toy.curve.shipped_comparison()`); every number below is read from that file.
        """
    )
    nb.code(
        """
        from pi0lite.toy.curve import shipped_comparison

        try:
            comparison = shipped_comparison()
        except FileNotFoundError:
            comparison = None
            print("No shipped KI comparison in this installation (assets/toy_results_ki.json): "
                  "run the demo command above to make one.")
        if comparison is not None:
            runs = comparison["policies"]
            print(f"{'policy':12s} {'success':>8s} {'wrong square':>13s} {'crash':>6s} {'80 % at step':>13s}")
            for name, r in runs.items():
                at = r.get("steps_to_80")
                print(f"{name:12s} {r['success']:8.1%} {r['wrong']:13.1%} {r['crash']:6.1%} {str(at) if at else 'never':>13s}")
            curves = {name: r["curve"]["points"] for name, r in runs.items() if r.get("curve", {}).get("points")}
            if curves:
                viz.plot_success_curves(curves, title=f"closed-loop success during training ({comparison.get('steps', '?')} steps)")
                plt.show()
        """
    )
    nb.code(
        """
        def verdict(runs):
            # The targets set for pi05_ki before the runs, checked against whatever the shipped file holds.
            if "pi05_ki" not in runs:
                return ["pi05_ki is not in the shipped results."]
            r, lines = runs["pi05_ki"], []
            lines.append(f"pi05_ki success {r['success']:.1%} (target ≥ 85 %): {'met' if r['success'] >= 0.85 else 'not met'}")
            lines.append(f"pi05_ki wrong square {r['wrong']:.1%} (target ≤ 5 %): {'met' if r['wrong'] <= 0.05 else 'not met'}")
            if "pi0" in runs:
                a, b = r.get("steps_to_80"), runs["pi0"].get("steps_to_80")
                faster = a is not None and (b is None or a < b)
                lines.append(f"first step with ≥ 80 % success: pi05_ki {a or 'never'}, pi0 {b or 'never'} "
                             f"({'KI is faster' if faster else 'KI is not faster'})")
            if "pi05_noki" in runs:
                lines.append(f"without the stop-gradient (pi05_noki): success {runs['pi05_noki']['success']:.1%}, "
                             f"wrong square {runs['pi05_noki']['wrong']:.1%}")
            for fix in ("pi05_ki_aux", "pi05_ki_fine"):
                if fix in runs:
                    f, b = runs[fix], runs.get("pi0", {}).get("steps_to_80")
                    lines.append(f"fix {fix}: success {f['success']:.1%}, wrong square {f['wrong']:.1%}, "
                                 f"80 % at step {f.get('steps_to_80') or 'never'} (pi0: {b or 'never'})")
            return lines


        if comparison is not None:
            print("\\n".join(verdict(comparison["policies"])))
        """
    )
    nb.md(
        """
        How to read it: compare `pi05_ki` with `pi0_noaux` first. Neither has the grounding head,
        so any drop in wrong-square episodes comes from the FAST loss teaching the VLM to read the
        instruction. Then compare `pi05_ki` with `pi05_noki`: the same two losses, only the
        stop-gradient differs, so that gap is what insulation itself buys. Finally `pi0` (with its
        hand-made grounding objective) is the bar a general recipe has to reach. The toy is small
        and trained from scratch, while the paper's VLM is pretrained: the toy can agree with the
        paper or not, and the numbers above, not the expectation, are the result. The fixes say
        which missing piece matters: finer FAST tokens leave the VLM as blind to the colour word
        as before, while a VLM-side objective that names the goal (the grounding head, standing in
        for the web data pi0.5 is co-trained on) lets KI succeed. The shipped pi0.5 + KI policy
        (`toy_policy_pi05_ki`) is that `pi05_ki_aux` run.
        """
    )
    nb.summary(
        """
        * pi0.5's action expert uses **adaRMS**: a Dense of the time condition gives scale, shift
          and a residual gate per norm (`pi0lite.norms`); all start at zero, so a fresh expert is
          switched off (its output is a fixed map of $x_t$) until training opens the gates.
        * The **time MLP** (`Pi0.adarms_cond`) makes that condition once per example; pi0.5 has no
          state token and no per-token time mixer.
        * The **discrete-state prompt** (`pi0lite.prompt`): `"Task: …, State: …;\\nAction: "`, 256 bins
          on [−1, 1], below −1 → −1, ≥ 1 → 255.
        * **KI** (`pi0lite.ki`): the VLM learns FAST tokens (causal after the prefix), the action
          expert learns flow matching against `stop_gradient` of the prefix keys/values and never
          sees the FAST tokens (`ki_attn_mask`); inference is unchanged.
        * Gradients prove it: under KI the flow loss gives every VLM parameter exactly 0
          (`ki.part_grad_norms`, `viz.plot_grad_norms`), the FAST loss never reaches the action
          expert. The toy comparison is read from `toy.curve.shipped_comparison()`.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
