"""Builder of notebooks/09_train_a_policy.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "09_train_a_policy",
        "09 · Train a policy (capstone)",
        """
        Everything so far was one piece of pi0 at a time. Here the whole model learns a task:
        **"go to the {red|green|blue} square"**, a top-down arena with an obstacle in the middle.
        The image alone does not say which square is the goal, only the instruction does; and when
        the goal sits right behind the obstacle, going left and going right are *both* correct.

        You will build the data, train pi0 for a minute, load a policy trained for longer
        (`make demo`), run it in closed loop, and see the two reasons pi0 is built the way it is:
        flow matching keeps the two detours apart where regression averages them into the obstacle,
        and a language model's grounding is what makes the policy listen to the instruction.
        """,
    )
    nb.code(
        """
        import jax
        import matplotlib.pyplot as plt
        import numpy as np

        from pi0lite.toy import normalize
        from pi0lite.course import checks, viz
        from pi0lite.config import TINY
        from pi0lite.toy.data import build_dataset, training_arrays
        from pi0lite.toy import env as toy, render as toy_render
        from pi0lite.toy.evaluate import evaluate, expert_fn, policy_fn, rollout, summarize
        from pi0lite.toy.policy import load_shipped, shipped_results
        from pi0lite.toy.text import WordTokenizer, tokenize_batch
        from pi0lite.toy.train import TrainConfig, train

        np.set_printoptions(precision=3, suppress=True)
        key = jax.random.key(0)
        """
    )
    nb.md(
        """
        ## 1. The task

        Arena $[0,1]^2$ at 10 Hz; the agent (white dot) has state $(x, y, v_x, v_y)$ and its action
        is a velocity. An episode ends in **success** (inside the named square), **crash** (touches
        the grey disc), **wrong** (inside another square) or **timeout** (100 steps). The policy sees
        a 32×32 image (here also drawn at 64×64), the state and the instruction.
        """
    )
    nb.code(
        """
        scenes = toy.sample_scenes(np.random.default_rng(0), 4)
        big, small = toy_render.render(scenes, scenes.start, 64), toy_render.render(scenes, scenes.start, 32)
        fig, axes = plt.subplots(2, 4, figsize=(10, 5))
        for i in range(4):
            viz.plot_observation(big[i], ax=axes[0, i], title=scenes.instructions[i])
            viz.plot_observation(small[i], ax=axes[1, i], title="what the policy sees (32 px)")
        plt.show()
        """
    )
    nb.md(
        """
        The scripted expert goes around the disc on the shorter side. When both sides are within
        5 % of each other it **flips a coin**. On the *aligned* scenes (start, disc and goal on one
        vertical line) the two detours are exactly equal: the same observation has two correct
        action chunks. Twenty expert runs from one aligned scene:
        """
    )
    nb.code(
        """
        tie = toy.sample_scenes(np.random.default_rng(1), 1, layout="aligned")
        many = tie[[0] * 20]
        expert = rollout(expert_fn(many), many, key)
        assert (expert.outcome == toy.SUCCESS).all()
        went_left = expert.paths[:, 30, 0] < tie.start[0, 0]
        print(f"left {went_left.sum()}, right {(~went_left).sum()} of 20")
        viz.plot_rollouts(many, expert.paths, expert.outcome, title="the expert on an exact tie")
        plt.show()
        """
    )
    nb.md(
        """
        ## 2. The data

        `build_dataset` plans the expert in many scenes, replays it in the env, renders every frame
        and cuts **one action chunk of H = 16 steps per time step** (zero-padded after arrival: "hold
        still"). Like openpi, state and actions are **z-scored** per dimension with statistics
        computed from the data (pi0-FAST and pi0.5 use quantile normalisation instead), then
        zero-padded to `action_dim = 4`. The instruction is tokenised by a word-level tokenizer
        built with HF `tokenizers` (BOS first, padded to `max_token_len = 8`).
        """
    )
    nb.code(
        """
        ds = build_dataset(300, seed=0)
        print(f"{len(ds)} chunks from 300 episodes, {ds.coin_flip.mean():.0%} coin-flip episodes")
        print("images", ds.images.shape, ds.images.dtype, "| state", ds.state.shape, "| actions", ds.actions.shape)
        norm = {"state": normalize.compute_stats(ds.state), "actions": normalize.compute_stats(ds.actions)}
        print("action std (units/s):", norm["actions"].std, "-> after z-scoring ~1")
        tokenizer = WordTokenizer.from_texts([toy.instruction(c) for c in range(3)])
        ids, mask = tokenize_batch(tokenizer, ["go to the blue square"], TINY.max_token_len)
        print("tokens", ids[0], "mask", mask[0].astype(int), "->", repr(tokenizer.decode(ids[0])))
        """
    )
    nb.code(
        """
        fig, axes = plt.subplots(1, 5, figsize=(12, 2.6))
        episode = np.nonzero(ds.episode == 0)[0]
        for ax, i in zip(axes[:4], episode[::15]):
            viz.plot_observation(ds.images[i], ax=ax, title=f"step {ds.step[i]}")
        axes[4].plot(ds.actions[episode[0]], marker=".")
        axes[4].set(title="first chunk: vx, vy", xlabel="h")
        plt.show()
        """
    )
    nb.md(
        """
        ## 3. Grounding: a stand-in for VLM pretraining

        pi0's prefix expert is PaliGemma, a vision-language model **pretrained** to connect words
        with pixels: it already knows where "the red square" is. Our prefix expert starts from
        random weights. Trained from scratch with the flow loss alone, it learns to avoid the disc
        but not to read: it can lower the flow loss by modelling "one of the three squares" as a
        mixture, and goes to a random square (section 7 shows it).

        We stand in for the pretraining with a small **auxiliary loss** (`pi0lite.toy.grounding.AuxHead`): a
        linear head on the prefix expert's output at the colour-word token regresses the goal
        square's centre, i.e. it asks the prefix a VLM question, "where is the square named here?".
        It costs nothing (the prefix output exists anyway) and is used only in training.
        pi0.5 does the real version of this: it co-trains on vision-language data.

        ## 4. Train pi0 for a minute

        `pi0lite.toy.train.train` runs one jitted step (the dataset is an *argument*, not a captured
        constant) whose loss is pi0's own `Pi0.compute_loss`, AdamW with warm-up and cosine decay to
        the run's last step, gradient clipping. The seed's key is split into an init stream (the
        parameters) and a data stream: batch $i$ comes from `fold_in(data_key, i)`, so a resumed run
        is identical to an uninterrupted one. With `ckpt_dir=` it checkpoints atomically and refuses
        to resume a checkpoint made with other settings. 200 steps is far too short for a good
        policy; it shows the loss falling.
        """
    )
    nb.code(
        """
        arrays = training_arrays(ds, tokenizer, norm, max_token_len=TINY.max_token_len, action_dim=TINY.action_dim)
        short = train(TINY, TrainConfig(mode="flow", steps=200, warmup_steps=20), arrays)
        """,
        tags=("nbval-ignore-output",),
    )
    nb.code(
        """
        assert short.history[-20:, 0].mean() < short.history[:20, 0].mean()
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        viz.plot_loss_curves({"flow, 200 steps": short.history}, ax=axes[0], smooth=10, title="flow loss")
        viz.plot_loss_curves({"flow, 200 steps": short.history}, ax=axes[1], smooth=10, column=1, title="aux loss")
        plt.show()
        """
    )
    nb.md(
        """
        ## 5. The trained policy, in closed loop

        The demo trained the same model for 5,000 steps (2,500 expert episodes; `make demo` now
        stops at 3,000, about 5 minutes on two cores); the result ships with the package. `Policy.infer` takes raw observations: it tokenises, normalises and pads,
        samples a chunk with 10 Euler steps (prefix KV cache), and un-normalises.

        Closed loop uses a **receding horizon**: predict 16 actions, execute the first 8, observe,
        predict again. All episodes run as one batch, so 100 steps cost at most 13 policy calls.
        """
    )
    nb.code(
        """
        policy = load_shipped("flow")
        metrics, canonical, aligned = evaluate(policy_fn(policy), num_episodes=60, num_aligned=20)
        print({k: round(v, 2) for k, v in metrics.items() if isinstance(v, float)})
        fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
        for i, ax in enumerate(axes):
            viz.plot_rollouts(canonical.scenes, canonical.paths[i : i + 1], canonical.outcome[i : i + 1], index=i, ax=ax)
        plt.show()
        """
    )
    nb.md(
        """
        ### Exercise 9.1: the receding-horizon loop

        Write the rollout loop. `policy_fn(obs, key)` returns a chunk `[n, H, 2]` for every
        episode; execute its first `execute` actions with `env.step(chunk[:, j])`, observe again
        (`env.observe()`), replan, and stop when every episode has ended (`env.done.all()`) or after
        `toy.MAX_STEPS` steps (`env.t.max()`). Return the outcome codes and the final positions.
        """
    )
    nb.exercise(
        "9.1",
        "the receding-horizon rollout loop",
        """
        def run_episodes(policy_fn, scenes, key, execute):
            \"\"\"-> (outcome int[n], final positions float[n, 2]).\"\"\"
            env = toy.BatchedToyEnv()
            obs = env.reset(scenes)
            ### BEGIN SOLUTION
            replan = 0
            while not env.done.all() and env.t.max() < toy.MAX_STEPS:
                chunk = policy_fn(obs, jax.random.fold_in(key, replan))
                for j in range(execute):
                    env.step(chunk[:, j])
                obs = env.observe()
                replan += 1
            ### END SOLUTION
            return env.outcome, env.pos
        """,
    )
    nb.check("checks.check_run_episodes(run_episodes)")
    nb.hint(
        """
        Finished episodes freeze inside `BatchedToyEnv.step`, so you can keep stepping all of them.
        Executing the whole chunk (16) or replanning every step (1) gives other paths: the check
        tells you which one you did.
        """
    )
    nb.md(
        """
        ### Exercise 9.2: success statistics

        From the outcome codes (`toy.SUCCESS`, `toy.CRASH`, `toy.WRONG`, `toy.TIMEOUT`) and the
        boolean `coin_flip` flags, return the **fractions** of each outcome and the success rate
        *among the coin-flip episodes*.
        """
    )
    nb.exercise(
        "9.2",
        "success statistics",
        """
        def success_stats(outcome, coin_flip):
            \"\"\"-> {"success", "crash", "wrong", "timeout", "coin_flip_success"} as fractions.\"\"\"
            ### BEGIN SOLUTION
            stats = {name: float(np.mean(outcome == code)) for name, code in
                     [("success", toy.SUCCESS), ("crash", toy.CRASH), ("wrong", toy.WRONG), ("timeout", toy.TIMEOUT)]}
            stats["coin_flip_success"] = float(np.mean(outcome[coin_flip] == toy.SUCCESS))
            return stats
            ### END SOLUTION
        """,
    )
    nb.check("checks.check_success_stats(success_stats)")
    nb.hint("`outcome[coin_flip]` keeps only the coin-flip episodes; `np.mean` of a bool array is a fraction.")
    nb.md(
        """
        The package versions are `pi0lite.toy.evaluate.rollout` and `pi0lite.toy.evaluate.summarize`.

        ## 6. Flow matching against regression

        The **MSE baseline** is the same network trained to output the chunk directly (noise input
        fixed to 0, time fixed to 1). On an aligned scene, the two demonstrated detours average to
        "straight ahead", into the disc. The flow policy samples *one* detour per replan.
        Twenty rollouts (different noise) from the same aligned scene:
        """
    )
    nb.code(
        """
        mse = load_shipped("mse")
        tied = aligned.scenes[[0] * 20]
        fig, axes = plt.subplots(1, 2, figsize=(8, 4))
        for ax, (name, p) in zip(axes, [("flow (pi0)", policy), ("MSE", mse)]):
            r = rollout(policy_fn(p), tied, jax.random.key(3))
            viz.plot_rollouts(tied, r.paths, r.outcome, ax=ax, title=f"{name}: {np.mean(r.outcome == toy.SUCCESS):.0%} success")
        plt.show()
        """
    )
    nb.md(
        """
        The full `make demo` numbers (fractions over the episode counts printed below; with 95 %
        Wilson intervals where the run recorded them):
        """
    )
    nb.code(
        """
        results = shipped_results()
        cols = ["success", "coin_flip_success", "aligned_success", "crash", "wrong", "timeout"]
        print(f"{'':>10}" + "".join(f"{c:>19}" for c in cols))
        for name, m in results["policies"].items():
            print(f"{name:>10}" + "".join(f"{m[c]:>19.2f}" for c in cols))
            if "success_ci95" in m:
                print(f"{'95 % CI':>10}" + "".join(f"{'[%.2f, %.2f]' % tuple(m[c + '_ci95']):>19}" for c in cols))
        m = results["policies"]["pi0"]
        print(f"{m['episodes']} episodes ({m['coin_flip_episodes']} coin flips), {m['aligned_episodes']} aligned scenes")
        """
    )
    nb.md(
        """
        ## 7. Ablation: no grounding loss

        The same flow policy trained for the same 5,000 steps **without** the auxiliary loss. It
        learned to go around the disc (few crashes), but it does not listen: it often drives into a
        square of the wrong colour (orange paths) or hesitates between squares until the timeout
        (grey). The flow loss is happy with "one of the three squares"; nothing forces the two-hop
        circuit colour word → matching patch → action tokens to form in a few minutes.
        """
    )
    nb.code(
        """
        noaux = load_shipped("noaux")
        m_noaux, r_noaux, _ = evaluate(policy_fn(noaux), num_episodes=60, num_aligned=0)
        print(f"60 episodes without aux: success {m_noaux['success']:.2f}, wrong square {m_noaux['wrong']:.2f} "
              f"(with aux: {metrics['success']:.2f}, {metrics['wrong']:.2f})")
        full = results["ablation_no_aux"]["pi0"]
        print(f"make demo, {full['episodes']} episodes without aux: success {full['success']:.2f}, wrong {full['wrong']:.2f}, "
              f"timeout {full['timeout']:.2f}")
        fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
        for i, ax in enumerate(axes):
            viz.plot_rollouts(r_noaux.scenes, r_noaux.paths[i : i + 1], r_noaux.outcome[i : i + 1], index=i, ax=ax)
        plt.show()
        """
    )
    nb.summary(
        """
        * The toy task needs language (only the instruction names the goal) and is multimodal
          (coin-flip detours): `pi0lite.toy.env`, `toy_expert`, `pi0lite.toy.data.build_dataset`.
        * openpi-style data pipeline: z-score stats from the data (`pi0lite.toy.normalize`), padding to
          `action_dim`, a real tokenizer (`pi0lite.toy.text`), all saved with the checkpoint
          (`pi0lite.toy.policy.Policy.save`).
        * Training (`pi0lite.toy.train`): one jitted step with the dataset as an argument, AdamW with
          warm-up + cosine, resumable checkpoints.
        * Closed loop with a receding horizon (`pi0lite.toy.evaluate.rollout`): predict 16, execute 8.
        * Flow matching picks one detour; MSE regression averages them into the obstacle.
        * From scratch, pi0 does not learn to read in minutes; the auxiliary goal-location head
          stands in for the grounding that PaliGemma's pretraining gives the real pi0.
        * `python -m pi0lite.demo --steps 5000 --ablation` reproduces the shipped checkpoints and
          their `results.json`; `make demo` (3,000 steps) meets the same targets in less time.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
