"""Builder of notebooks/11_real_time_chunking.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "11_real_time_chunking",
        "11 · Real-time chunking: action chunks when inference takes time",
        """
        Until now the robot stood still while pi0 computed its next chunk. A real robot does not:
        it keeps executing the old chunk, and the new one arrives **d control steps late** (the
        inference delay). This notebook shows what goes wrong when a late chunk is switched in
        naively, and the two fixes from Physical Intelligence:

        * **inference-time RTC** (Black, Galliker, Levine 2025, *Real-Time Execution of Action
          Chunking Flow Policies*): sample the new chunk as an *inpainting* of the old one, by
          adding a guidance term to every Euler step (`pi0lite.rtc.guided_sample_actions`);
        * **training-time RTC** (Black et al. 2025, *Training-Time Action Conditioning for
          Efficient Real-Time Chunking*): train with simulated delays, so that at inference the
          committed actions are simply given to the model (`pi0lite.rtc.sample_actions_with_prefix`).

        You will write the delayed execution loop, the prefix weights and one guided Euler step,
        then run the shipped toy policy under delay.
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

        from pi0lite import rtc
        from pi0lite.course import checks, viz
        from pi0lite.course.viz.rtc import METHOD_STYLE
        from pi0lite.toy import delayed, env as toy, rtc_demo
        from pi0lite.toy.evaluate import eval_scenes
        from pi0lite.toy.policy import ASSETS, Policy, load_shipped

        np.set_printoptions(precision=3, suppress=True)
        key = jax.random.key(0)
        policy = load_shipped("flow")
        H = policy.config.action_horizon
        print("action horizon H =", H, "| Euler steps:", policy.num_steps, "| control rate:", round(1 / toy.DT), "Hz")
        """
    )
    nb.md(
        """
        ## 1. The timeline of delayed execution

        Three numbers describe a chunked controller: the **horizon** `H` (actions per chunk, 16
        here), the **execution horizon** `s` (steps executed before the next chunk takes over,
        8 here) and the **delay** `d` (control steps between sending an observation and getting
        its chunk back).

        pi0lite's convention (`rtc.execution_schedule`): chunk `m` is computed from the
        observation of step `m·s`, so its index 0 is the action for step `m·s`. Chunk 0 is ready
        before the episode starts. Chunk `m ≥ 1` arrives at step `m·s + d`. Its first `d` actions
        belong to steps that have already passed, so it is executed from **index `d`**. While the
        robot waits, the previous chunk keeps running: it must cover `s + d` steps, so `d + s ≤ H`.

        Below, each control step is coloured by the chunk that drives it, and the number is the
        index into that chunk.
        """
    )
    nb.code(
        """
        fig, axes = plt.subplots(3, 1, figsize=(10, 3.4), sharex=True)
        for ax, d in zip(axes, (0, 2, 4)):
            chunk_of, index_of = rtc.execution_schedule(32, delay=d, exec_horizon=8, horizon=H)
            ax.imshow(chunk_of[None], cmap="Pastel1", vmin=0, vmax=8, aspect="auto")
            for t, i in enumerate(index_of):
                ax.text(t, 0, str(i), ha="center", va="center", fontsize=8)
            ax.set(yticks=[], ylabel=f"d = {d}")
        axes[-1].set_xlabel("control step (colour: which chunk, number: its index)")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ### Exercise 11.3 — the delayed execution loop

        Given the chunks a policy returned, `chunks[m]` computed from the observation of step
        `m·s`, return the action the robot executes at each step `t = 0 … M·s − 1`. Write it as
        the loop a controller runs: keep a *current* chunk and the step at which its index 0 was
        meant to run; at step `m·s` a request goes out, and its answer replaces the current chunk
        `d` steps later. (The check labels chunk `m`'s index `i` with the value `100·m + i`, so a
        wrong answer tells you which chunk and index you executed.)
        """
    )
    nb.exercise(
        "11.3",
        "the delayed execution loop",
        '''
        def delayed_actions(chunks, delay, exec_horizon):
            """chunks: [M, H, j] -> the executed actions [M * exec_horizon, j]."""
            ### BEGIN SOLUTION
            num_chunks, s = len(chunks), exec_horizon
            current, origin, arrivals, out = 0, 0, {}, []
            for t in range(num_chunks * s):
                if t > 0 and t % s == 0:
                    arrivals[t + delay] = t // s      # requested now, usable from step t + delay
                if t in arrivals:
                    current, origin = arrivals.pop(t), t - delay   # its index 0 was meant for step t - delay
                out.append(chunks[current, t - origin])
            return np.stack(out)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_delayed_actions(delayed_actions)")
    nb.hint(
        """
        When chunk `m` arrives at step `m·s + d`, the action for that step is its index `d`, not
        its index 0 (index 0 was meant for step `m·s`). In general: index = `t − m·s`.
        """
    )
    nb.md(
        """
        ## 2. Why delay breaks naive switching

        The toy task of notebook 09 has two correct ways around the obstacle when start, disc and
        goal are aligned. A flow policy samples one of them per chunk. Consecutive chunks usually
        agree, because the robot's position already says which side it is on, but not right
        after a tie: then the new chunk may choose the **other side**, and switching to it
        naively makes the robot turn back (or hit the disc).

        To see it clearly, we ask for the second chunk one step into an aligned episode (`s = 1`)
        with a delay of `d = 4`, for 64 copies of the same scene (one noise sample each). The
        first chunks go left or right. We count how often the second chunk picks the other side
        when it is sampled as usual (**naive**) and when it is sampled with **RTC** (section 4),
        which is told to stay close to the previous chunk.
        """
    )
    nb.code(
        """
        S_EARLY, D = 1, 4
        scene = toy.sample_scenes(np.random.default_rng(1), 1, layout="aligned")
        scenes = scene[[0] * 64]
        env = toy.BatchedToyEnv(32)
        obs = env.reset(scenes)
        chunk0 = policy.infer(obs["image"], obs["state"], obs["instruction"], jax.random.key(0))  # [64, H, 2]
        for t in range(S_EARLY):
            env.step(chunk0[:, t])
        obs1, pos1 = env.observe(), env.pos.copy()
        naive1 = policy.infer(obs1["image"], obs1["state"], obs1["instruction"], jax.random.key(1))
        guided_fn = delayed.chunk_fn(policy, "rtc", exec_horizon=S_EARLY)
        rtc1 = guided_fn(obs1, jax.random.key(1), np.asarray(rtc.shift_chunk(chunk0, S_EARLY)), D)


        def plan(start, chunk):
            \"\"\"Positions visited by executing a chunk from ``start`` ([n, 2] -> [n, H + 1, 2]).\"\"\"
            steps = np.clip(chunk, -toy.V_MAX, toy.V_MAX) * toy.DT
            return start[:, None] + np.concatenate([np.zeros_like(steps[:, :1]), np.cumsum(steps, 1)], 1)


        disc_x = scene.disc[0, 0]
        side0 = plan(scenes.start, chunk0)[:, -1, 0] > disc_x  # True: right of the disc
        switch_naive = (plan(pos1, naive1)[:, -1, 0] > disc_x) != side0
        switch_rtc = (plan(pos1, rtc1)[:, -1, 0] > disc_x) != side0
        print(f"first chunks going right: {side0.mean():.0%}")
        print(f"second chunk on the other side: naive {switch_naive.mean():.0%}, RTC {switch_rtc.mean():.0%}")
        assert switch_naive.mean() > switch_rtc.mean() + 0.15
        """
    )
    nb.md(
        """
        One episode where the naive second chunk switched sides. Dashed: the first chunk's plan;
        dotted: the second chunk's plan from where it was requested; solid green: what the robot
        executes (the first chunk up to step `s + d`, then the second chunk from its index `d`).
        """
    )
    nb.code(
        """
        row = int(np.nonzero(switch_naive & ~switch_rtc)[0][0])
        fig, axes = plt.subplots(1, 2, figsize=(8, 4))
        for ax, (name, new) in zip(axes, {"naive": naive1, "RTC": rtc1}.items()):
            viz.plot_arena(scene, 0, ax=ax, title=f"{name}: s = {S_EARLY}, d = {D}")
            old_path = plan(scenes.start[row:row + 1], chunk0[row:row + 1])[0]
            new_path = plan(pos1[row:row + 1], new[row:row + 1])[0]
            executed = np.concatenate([old_path[: S_EARLY + D + 1],
                                       plan(old_path[S_EARLY + D][None], new[row:row + 1, D:])[0, 1:]])
            ax.plot(*old_path.T, "--", color="tab:cyan", lw=1.2, label="first chunk")
            ax.plot(*new_path.T, ":", color="tab:orange", lw=1.5, label="second chunk")
            ax.plot(*executed.T, "-", color="lime", lw=2, label="executed")
            ax.plot(*old_path[S_EARLY + D], "x", color="yellow", ms=9, mew=2)
            ax.set(xlim=(0.25, 0.75), ylim=(0.05, 0.55))
        axes[0].legend(loc="lower left", fontsize=8, bbox_to_anchor=(0.0, -0.32), ncol=3)
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        The yellow cross is the switch. With `s = 8`, as in the evaluation below, the robot has
        usually left the tie behind when the next chunk is requested, so side switches are rarer;
        what remains is a **jump in the action** at the switch: the new chunk's index `d` and the
        old chunk's index `s + d` are two samples of the same moment. Temporal ensembling (ACT)
        averages the overlapping chunks instead; that smooths the jump but, at a tie, averages a
        left and a right plan into one that heads for the obstacle.

        ## 3. The prefix weights

        RTC treats the new chunk as an inpainting problem. Re-index the previous chunk to the new
        chunk's window (`rtc.shift_chunk`: `Y[i] = previous[s + i]`) and give every index a weight:

        * `W_i = 1` for `i < d`: these actions are **committed**, the robot executes them from the
          previous chunk while the new one is computed;
        * `d ≤ i < H − s`: the previous chunk still has a plan there but the new chunk may depart
          from it, more and more freely: a ramp from 1 (at index `d − 1`) to 0 (at index `H − s`),
          `w_i = (H − s − i) / (H − s − d + 1)`; the paper's default `exp` schedule maps each ramp
          value to `w·(e^w − 1)/(e − 1)`, which lets go sooner;
        * `W_i = 0` for `i ≥ H − s`: the previous chunk has no action for these steps.
        """
    )
    nb.code(
        """
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
        for ax, d in zip(axes, (4, 1)):
            viz.plot_prefix_weights({sched: rtc.prefix_weights(d, 8, H, sched) for sched in rtc.SCHEDULES},
                                    delay=d, exec_horizon=8, ax=ax)
        fig.tight_layout()
        plt.show()
        print("linear, d = 4:", np.asarray(rtc.prefix_weights(4, 8, H, "linear")))
        """
    )
    nb.md(
        """
        ### Exercise 11.1 — the prefix weight schedule

        Write `prefix_weights(delay, exec_horizon, horizon, schedule)` with NumPy, for
        `schedule` `"linear"` or `"exp"`, following the three bullet points above. The two ends of
        the ramp are where the off-by-one mistakes hide: index `delay` is already below 1, and
        index `H − s` is already 0.
        """
    )
    nb.exercise(
        "11.1",
        "the prefix weight schedule",
        '''
        def prefix_weights(delay, exec_horizon, horizon, schedule):
            """-> W [horizon]: 1 for the committed steps, a ramp to 0 at horizon - exec_horizon, 0 after."""
            ### BEGIN SOLUTION
            end = horizon - exec_horizon
            i = np.arange(horizon)
            w = np.clip((end - i) / (end - delay + 1), 0.0, 1.0)
            if schedule == "exp":
                w = w * np.expm1(w) / (np.e - 1)
            return np.where(i < delay, 1.0, np.where(i >= end, 0.0, w)).astype(np.float32)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_prefix_weights(prefix_weights)")
    nb.hint(
        """
        With `d = 4, s = 8, H = 16` the linear weights are `1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0, …`:
        four ones, then the ramp's denominator is `H − s − d + 1 = 5`.
        """
    )
    nb.md(
        """
        ## 4. Inpainting as guidance: one Euler step

        **Time convention.** The papers write τ = 0 for noise and τ = 1 for data and integrate from
        0 to 1. pi0lite follows openpi: **t = 1 is noise, t = 0 is data**, Euler from 1 to 0 with
        `dt = −1/num_steps`. So τ = 1 − t and the paper's velocity is minus ours. Translated:

        | | paper (τ: 0 noise → 1 data) | pi0lite (t: 1 noise → 0 data) |
        | --- | --- | --- |
        | one-step estimate of the final chunk | `Â = A_τ + (1 − τ)·v` | `Â = x_t − t·v(x_t, t)` |
        | weighted error | `e = W ⊙ (Y − Â)` | the same |
        | pulled back | `g = (∂Â/∂A_τ)ᵀ e` | `g = (∂Â/∂x_t)ᵀ e` (one `jax.vjp`) |
        | guidance weight | `min(β, (1 − τ)/τ · 1/r²_τ)`, `r²_τ = (1 − τ)²/(τ² + (1 − τ)²)` | `min(β, (t² + (1 − t)²)/(t(1 − t)))` (symmetric in t ↔ τ) |
        | guided velocity | `v + c·g` | `v − c·g` |
        | Euler step | `A + Δτ·(v + c·g)` | `x + dt·(v − c·g)`, `dt < 0` |

        `Â` is where one straight Euler step would land. If `Â` disagrees with `Y` on the weighted
        steps, `g` says how to move `x_t` to reduce that disagreement; because `dt < 0`, subtracting
        `c·g` from the velocity moves `x_t` along `+g`. The VJP goes through the action expert only:
        the image and prompt tokens are cached once per chunk (`guided_sample_actions` uses the
        prefix KV cache), so a guided step costs one extra backward pass through the suffix.
        """
    )
    nb.md(
        """
        ### Exercise 11.2 — one guided Euler step

        `velocity_fn(x, t)` returns the velocity for a batch `x [b, a, j]` at time `t`. Implement
        one step of inference-time RTC in pi0lite's convention. Use `jax.vjp` for the pull-back
        (`jax.vjp(f, x, has_aux=True)` lets `f` return the velocity too) and
        `rtc.guidance_weight(t, max_guidance)` for `c`. The check runs it on small nonlinear
        velocity fields and compares with `rtc.guided_euler_step`.
        """
    )
    nb.exercise(
        "11.2",
        "one guided Euler step",
        '''
        def guided_euler_step(velocity_fn, x_t, t, dt, prev_chunk, weights, max_guidance):
            """x_t, prev_chunk: [b, a, j]; weights: [a]; t, dt: scalars (dt < 0) -> x after one step."""
            ### BEGIN SOLUTION
            def estimate(x):
                v = velocity_fn(x, t)
                return x - t * v, v

            x_hat, pullback, v = jax.vjp(estimate, x_t, has_aux=True)
            error = weights[None, :, None] * (prev_chunk - x_hat)
            (g,) = pullback(error)
            return x_t + dt * (v - rtc.guidance_weight(t, max_guidance) * g)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_guided_euler_step(guided_euler_step)")
    nb.hint(
        """
        `jax.vjp(estimate, x_t, has_aux=True)` returns `(Â, pullback, v)`; `pullback(e)` returns a
        tuple with one array, `g`. Check the sign with the table: openpi's velocity points towards
        the noise, so the guidance is subtracted.
        """
    )
    nb.md(
        """
        One guided step drawn, on the shipped policy (the first observation of the scene above,
        `s = 8, d = 4`, `Y` one of the first chunks shifted by `s`): the first Euler step, from
        pure noise at `t = 1`, where the guidance weight is largest (`c = max_guidance = 5`). The
        curves are the `v_x` component (normalised) of `Y`, of the one-step estimate before the
        step, and of the estimate after a plain and after a guided step. The guided estimate moves
        towards `Y` where the weights are large; one step is a nudge, ten of them add up.
        """
    )
    nb.code(
        """
        o8 = policy.observation(obs["image"][:1], obs["state"][:1], obs["instruction"][:1])
        model = policy.model
        graphdef, state = nnx.split(model)  # jit on split state: the parameters are arguments, not constants
        forward = jax.jit(lambda st, x, t: nnx.merge(graphdef, st).forward(o8, x, jnp.full((1,), t))[0])
        velocity = lambda x, t: forward(state, x, t)
        stats = policy.norm["actions"]
        prev_n = jnp.asarray(stats.normalize(np.asarray(rtc.shift_chunk(chunk0[-1:], 8))), jnp.float32)
        prev_n = jnp.pad(prev_n, ((0, 0), (0, 0), (0, policy.config.action_dim - prev_n.shape[-1])))
        w = rtc.prefix_weights(4, 8, H, "exp")
        noise = jax.random.normal(jax.random.key(5), (1, H, policy.config.action_dim))
        x, t, dt = noise, jnp.float32(1.0), jnp.float32(-0.1)  # the first of ten steps: c = max_guidance
        guided_step = jax.jit(lambda st, x, t: rtc.guided_euler_step(lambda y, s: forward(st, y, s), x, t, dt, prev_n, w))
        x_plain = x + dt * velocity(x, t)
        x_guided = guided_step(state, x, t)
        after = {name: rtc.one_step_estimate(y, velocity(y, t + dt), t + dt) for name, y in
                 {"plain": x_plain, "guided": x_guided}.items()}
        err = {name: float(jnp.sum(w * (prev_n - a)[0, :, 0] ** 2)) for name, a in after.items()}
        print("weighted error to Y after the step:", {k: round(v, 3) for k, v in err.items()})
        assert err["guided"] < err["plain"]

        fig, ax = plt.subplots(figsize=(8, 3.4))
        i = np.arange(H)
        ax.plot(i, prev_n[0, :, 0], "k-", lw=2, label="Y (previous chunk)")
        ax.plot(i, rtc.one_step_estimate(x, velocity(x, t), t)[0, :, 0], ":", color="gray", label="Â before")
        ax.plot(i, after["plain"][0, :, 0], "--", color="tab:red", label="Â after a plain step")
        ax.plot(i, after["guided"][0, :, 0], "-", color="tab:blue", marker="o", ms=3, label="Â after a guided step")
        ax.axvspan(-0.5, 3.5, color="gold", alpha=0.15)
        ax.set(xlabel="index in the new chunk (shaded: committed, W = 1)", ylabel="v_x (normalised)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        `rtc.guided_sample_actions(model, key, obs, prev_chunk, delay=, exec_horizon=)` runs ten
        such steps from `t = 1` to `0` (with the KV cache, in one `jax.lax.scan`, jittable with a
        traced delay). It gave the RTC chunks of section 2. With all weights zero (`delay = 0,
        exec_horizon = H`) it is exactly `sample_actions`:
        """
    )
    nb.code(
        """
        samplers = {  # jitted once here, timed in section 8
            "plain": lambda m, p, n: m.sample_actions(key, o8, num_steps=10, noise=n),
            "rtc (guided)": lambda m, p, n: rtc.guided_sample_actions(m, key, o8, p, delay=4, exec_horizon=8, noise=n),
            "rtc, all weights 0": lambda m, p, n: rtc.guided_sample_actions(m, key, o8, p, delay=0, exec_horizon=H, noise=n),
            "rtc_train (prefix)": lambda m, p, n: rtc.sample_actions_with_prefix(m, key, o8, p, delay=4, noise=n),
        }
        samplers = {name: jax.jit(lambda st, p, n, f=f: f(nnx.merge(graphdef, st), p, n)) for name, f in samplers.items()}
        plain = samplers["plain"](state, prev_n, noise)
        free = samplers["rtc, all weights 0"](state, prev_n, noise)
        strong = samplers["rtc (guided)"](state, prev_n, noise)
        print("all weights zero = sample_actions:", bool(jnp.allclose(plain, free, atol=1e-5)))
        print("committed steps, |new − Y| plain vs guided:",
              round(float(jnp.abs(plain - prev_n)[0, :4, :2].mean()), 3), "vs",
              round(float(jnp.abs(strong - prev_n)[0, :4, :2].mean()), 3))
        assert jnp.allclose(plain, free, atol=1e-5)

        fig, ax = plt.subplots(figsize=(8, 3.2))
        ax.plot(i, prev_n[0, :, 0], "k-", lw=2, label="Y (previous chunk)")
        ax.plot(i, plain[0, :, 0], "--", color="tab:red", label="sample_actions")
        ax.plot(i, strong[0, :, 0], "-", color="tab:blue", marker="o", ms=3, label="guided_sample_actions")
        ax.axvspan(-0.5, 3.5, color="gold", alpha=0.15)
        ax.set(xlabel="index in the new chunk (shaded: committed)", ylabel="v_x (normalised)",
               title="the final chunks, same noise")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ## 5. Training-time RTC: give the model the committed actions

        Guidance needs a backward pass per step and only *approximately* keeps the committed
        actions. The second paper moves the work into training. Each training example draws a
        delay `d` (pi0lite: `p(d) ∝ exp(−d/d_max)` over `0 … d_max`, `rtc.sample_delay`); its
        first `d` action tokens are given **clean**, with their own time set to the data end
        (`t = 0` in our convention), and are left out of the loss (`rtc.compute_loss_delayed`).
        This needs one time per action token: pi0 mixes the time embedding into every action token
        anyway, and pi0.5's adaRMS condition becomes per token. With one shared time the model is
        exactly openpi's.

        At inference (`rtc.sample_actions_with_prefix`) the first `d` tokens are set to the previous
        chunk and kept there; only the rest is denoised, with plain Euler steps: the cost of
        `sample_actions`. The per-token times of a batch of four examples:
        """
    )
    nb.code(
        """
        delays = jnp.array([0, 1, 3, 4])
        token_time = rtc.delayed_time(jnp.array([0.9, 0.5, 0.7, 0.2]), delays, H)  # [4, H]
        fig, ax = plt.subplots(figsize=(8, 2.4))
        im = ax.imshow(token_time, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set(xlabel="action token", ylabel="example", yticks=range(4), yticklabels=[f"d = {d}" for d in delays])
        fig.colorbar(im, ax=ax, label="time t (0 = clean)")
        fig.tight_layout()
        plt.show()
        print("training delay distribution p(d), d_max = 4:", np.round(rtc.delay_probs(4), 3))
        """
    )
    nb.md(
        """
        A policy trained this way (`python -m pi0lite.demo --policies pi0_rtc`) is shipped in
        `pi0lite/assets/toy_policy_rtc` once it has been trained. The committed actions come out
        exactly as given, whatever the model (the cell uses the trained policy if it is there and
        the ordinary flow policy otherwise, which was not trained for it):
        """
    )
    nb.code(
        """
        rtc_dir = ASSETS / "toy_policy_rtc"
        trained = (rtc_dir / "params.npz").exists()
        rtc_policy = Policy.load(rtc_dir) if trained else policy
        if trained:
            o_rtc = rtc_policy.observation(obs["image"][:1], obs["state"][:1], obs["instruction"][:1])
            fixed = rtc.sample_actions_with_prefix(rtc_policy.model, key, o_rtc, prev_n, delay=4, noise=noise)
        else:
            fixed = samplers["rtc_train (prefix)"](state, prev_n, noise)
        print("training-time RTC policy shipped:", trained)
        print("first 4 actions equal Y:", bool(jnp.array_equal(fixed[:, :4], prev_n[:, :4])))
        assert jnp.array_equal(fixed[:, :4], prev_n[:, :4])
        """
    )
    nb.md(
        """
        ## 6. In closed loop: a small live run

        `pi0lite.toy.delayed.rollout_delayed` runs whole episodes with the timeline of section 1
        (all episodes batched) and `summarize_delayed` measures them: success, crash, the **jerk**
        at chunk boundaries (the third difference of the position divided by `DT³`, in arena
        units / s³, where the new chunk's first action is executed) and the **side-switch rate**
        (episodes that were left *and* right of the disc while level with it). A few episodes, on
        the evaluation scenes, with `s = 8` and `d ∈ {0, 4}`:
        """
    )
    nb.code(
        """
        canonical, aligned = eval_scenes(12, 12)
        few = toy.concat_scenes([canonical, aligned])
        methods = {"naive": policy, "ensemble": policy, "rtc": policy}
        if trained:
            methods["rtc_train"] = rtc_policy
        live = {}
        for method, pol in methods.items():
            fn = delayed.chunk_fn(pol, method, exec_horizon=8)
            for d in (0, 4):
                live[method, d] = delayed.rollout_delayed(fn, few, jax.random.key(0), method=method, delay=d)
        print(f"{'method':>9} {'d':>2} {'success':>8} {'crash':>6} {'jerk mean':>10} {'switches':>9}")
        for (method, d), r in live.items():
            m = delayed.summarize_delayed(r)
            print(f"{method:>9} {d:>2} {m['success']:8.0%} {m['crash']:6.0%} {m['jerk_mean']:10.2f} "
                  f"{m['side_switch_rate']:9.0%}")
        """
    )
    nb.md(
        """
        Twenty-four episodes are too few to rank the methods; they show what is measured. One
        aligned scene per method at `d = 4`, with the executed path and a cross where each new
        chunk took over:
        """
    )
    nb.code(
        """
        fig, axes = plt.subplots(1, len(methods), figsize=(3 * len(methods), 3.3))
        i = len(few) - 1  # an aligned scene
        for ax, method in zip(axes, methods):
            r = live[method, 4]
            viz.plot_arena(few, i, ax=ax, title=f"{method}, d = 4")
            viz.plot_chunk_boundaries(r.paths[i, : r.steps[i] + 1], r.boundaries, ax=ax,
                                      colour=METHOD_STYLE[method][0], title=f"{method}, d = 4")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ## 7. The full sweep (shipped)

        `python -m pi0lite.demo --rtc --ship` runs every method for `d = 0 … 4` at `s = 8` on 200
        canonical and 100 aligned scenes, and ships the numbers in
        `pi0lite/assets/rtc_results.json` (`pi0lite.toy.rtc_demo.shipped()`: the `rtc` section and
        the extra numbers in `rtc_details`). The cell reads them; nothing here is re-run.
        """
    )
    nb.code(
        """
        if not rtc_demo.SHIPPED.exists():
            results = None
            print("no sweep shipped yet: run python -m pi0lite.demo --rtc --ship")
        else:
            shipped = rtc_demo.shipped()
            results, details = shipped["rtc"], shipped.get("rtc_details", {})
            print(f"{'method':>9} {'d':>2} {'success':>8} {'crash':>6} {'jerk mean':>10} {'jerk max':>9} "
                  f"{'switches':>9} {'episodes':>9}")
            for method, rows in results.items():
                for d, m in rows.items():
                    jerk_max = details.get(method, {}).get(d, {}).get("jerk_max", float("nan"))
                    print(f"{method:>9} {d:>2} {m['success']:8.1%} {m['crash']:6.1%} {m['jerk_mean']:10.2f} "
                          f"{jerk_max:9.2f} {m['side_switch_rate']:9.1%} {m['episodes']:9d}")
            sweep_delays = sorted({int(d) for rows in results.values() for d in rows})
            fig, ax = plt.subplots(figsize=(6.5, 3.6))
            viz.plot_success_vs_delay(sweep_delays, {m: [rows[str(d)]["success"] for d in sweep_delays]
                                                      for m, rows in results.items()}, ax=ax)
            fig.tight_layout()
            plt.show()
        """
    )
    nb.md(
        """
        What to read in it: how much each method's success drops from `d = 0` to `d = 4`, and
        whether RTC's side switches and boundary jerk stay below naive switching's. On this task the
        robot usually settles on a side within the first chunk (section 2), so compare the jerk
        and the side switches as well as the success rate.

        ### A variant where the delay costs success: the `fork` task

        Delay only hurts when a replan meets a policy that has not decided yet. Here the expert
        decides at rest, before chunk 0 (which has no delay). In the `fork` variant
        (`pi0lite.toy.expert.TASKS["fork"]`, same environment) the expert drives 1.75× faster,
        straight at the disc, and picks its side only at a fork point 0.12 before the disc's edge,
        usually reached around the first replan (step 8). Policies trained on it (`pi0_fork`,
        `pi0_rtc_fork`) are shipped with their sweep,
        `python -m pi0lite.demo --rtc --task fork --ship`; the cell reads it.
        """
    )
    nb.code(
        """
        fork_file = rtc_demo.shipped_path("fork")
        if not fork_file.exists():
            print("no fork sweep shipped yet: run python -m pi0lite.demo --rtc --task fork --ship")
        else:
            fork = rtc_demo.shipped("fork")["rtc"]
            print(f"{'method':>9} " + " ".join(f"{'d = ' + d:>7}" for d in fork["naive"]) + "   (success)")
            for method, rows in fork.items():
                print(f"{method:>9} " + " ".join(f"{m['success']:7.1%}" for m in rows.values()))
            print("side switches at d = 4:", ", ".join(f"{m} {rows['4']['side_switch_rate']:.1%}"
                                                        for m, rows in fork.items()))
        """
    )
    nb.md(
        """
        ## 8. The cost

        Per chunk, inference-time RTC adds one backward pass through the action expert per Euler
        step; training-time RTC adds nothing. A rough timing of the three samplers on the toy
        model (batch 1, jitted, the median of a few calls; on a shared CPU the ratios are the
        numbers to read). `benchmarks/bench_rtc.py` measures the same on `TINY` and
        `OPENPI_DUMMY`.
        """
    )
    nb.code(
        """
        ms = {}
        for name in ("plain", "rtc (guided)", "rtc_train (prefix)"):
            run = samplers[name]
            run(state, prev_n, noise).block_until_ready()  # compiled already, or now
            times = []
            for _ in range(5):
                start = time.perf_counter()
                run(state, prev_n, noise).block_until_ready()
                times.append(time.perf_counter() - start)
            ms[name] = 1000 * float(np.median(times))
        for name, v in ms.items():
            print(f"{name:>19}: {v:6.2f} ms per chunk, {v / ms['plain']:.2f}× plain")
        """,
        tags=("nbval-ignore-output",),
    )
    nb.summary(
        """
        * With an inference delay `d`, a chunk computed from the observation of step `m·s` runs from
          step `m·s + d` at its index `d` (`rtc.execution_schedule`, Exercise 11.3); naive switching
          can change mode (the other side of the obstacle) or jump.
        * Inference-time RTC inpaints: prefix weights (`rtc.prefix_weights`, Exercise 11.1) say how
          much of the previous chunk to keep, and each Euler step is guided by the weighted error
          of the one-step estimate, pulled back with one `jax.vjp` (`rtc.guided_euler_step`,
          Exercise 11.2; `rtc.guided_sample_actions` for the whole sampler).
        * The papers' τ is `1 − t`: `Â = x_t − t·v`, guided velocity `v − c·g`.
        * Training-time RTC trains with clean committed tokens at their own time 0
          (`rtc.compute_loss_delayed`) and samples with them fixed (`rtc.sample_actions_with_prefix`),
          at the cost of plain sampling.
        * The closed loop under delay: `pi0lite.toy.delayed`; the sweep: `python -m pi0lite.demo --rtc`
          (`--task fork`: the variant where a late decision makes the delay cost success).
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
