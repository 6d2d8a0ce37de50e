"""Checks for notebook 09 (train a policy): the receding-horizon loop and success statistics.

Exercises: 9.1 ``run_episodes(policy_fn, scenes, key, execute)`` (predict a chunk, execute the first
``execute`` actions, replan, until every episode has ended); 9.2 ``success_stats(outcome, coin_flip)``
(fractions of each outcome and the success rate on coin-flip episodes).
"""

from __future__ import annotations

import jax
import numpy as np

from pi0lite.toy import env as toy
from pi0lite.toy.evaluate import rollout

__all__ = ["check_run_episodes", "check_success_stats", "waypoint_policy"]


def waypoint_policy(scenes: toy.Scenes):
    """A deterministic state-feedback 'policy' (no network): beside the disc, then to the goal.

    Its chunk slows down along the horizon, so *how many* actions are executed between replans
    changes the paths: a loop that executes the wrong number of actions gets other end points.
    """

    def fn(obs, key):
        pos = obs["state"][:, :2].astype(np.float64)
        side = np.where(pos[:, 0] < scenes.disc[:, 0], -1.0, 1.0)
        beside = scenes.disc + np.stack([side * (scenes.disc_radius + 0.1), np.zeros(len(pos))], -1)
        target = np.where((pos[:, 1] < scenes.disc[:, 1])[:, None], beside, scenes.goal_xy)
        step = target - pos
        v = 0.2 * step / np.maximum(np.linalg.norm(step, axis=-1, keepdims=True), 1e-9)
        decay = 1.0 - np.arange(16) / 32.0  # [h]
        return v[:, None, :] * decay[None, :, None]

    return fn


def _scenes(seed: int, n: int = 12) -> toy.Scenes:
    return toy.sample_scenes(np.random.default_rng(seed), n)


def _key_bits(key) -> tuple:
    """A hashable fingerprint of a JAX key (typed ``jax.random.key`` or raw ``PRNGKey`` array)."""
    key = jax.numpy.asarray(key)
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return tuple(np.asarray(key).ravel().tolist())


def _noise(key, shape) -> np.ndarray:
    return 0.04 * np.asarray(jax.random.normal(key, shape), np.float64)


def stochastic_policy(scenes: toy.Scenes, keys: list):
    """The waypoint policy plus noise drawn from the key it is given; records every key (as a
    policy network sampling its flow noise would use it)."""
    base = waypoint_policy(scenes)

    def fn(obs, key):
        keys.append(key)
        chunk = base(obs, key)
        return chunk + _noise(key, chunk.shape)

    return fn


def _replay(scenes, keys, execute):
    """The reference loop (``toy.evaluate.rollout``) fed the keys the student's loop used, in order."""
    base, calls = waypoint_policy(scenes), iter(keys)

    def fn(obs, _):
        chunk = base(obs, None)
        key = next(calls, None)
        return chunk if key is None else chunk + _noise(key, chunk.shape)  # None: more replans than the student made

    r = rollout(fn, scenes, jax.random.key(0), execute=execute)
    return r.outcome, r.paths[:, -1]


def check_run_episodes(run_episodes) -> None:
    """``run_episodes(policy_fn, scenes, key, execute) -> (outcome [n], final_pos [n, 2])``.

    The policy is stochastic (noise from the key it is handed), so the loop must give it a new key
    at every replan. Any way of deriving them (``fold_in``, ``split``) is accepted: the paths are
    compared with the reference loop replayed with the keys your loop used.
    """
    for seed, execute in [(0, 8), (1, 4), (2, 16)]:
        scenes = _scenes(seed)
        name = f"12 scenes (seed {seed}), execute={execute}"
        keys: list = []
        got = run_episodes(stochastic_policy(scenes, keys), scenes, jax.random.key(seed), execute)
        if not isinstance(got, tuple) or len(got) != 2:
            raise AssertionError(f"run_episodes, case '{name}': expected a tuple (outcome, final_pos)")
        bits = [_key_bits(k) for k in keys]
        if len(set(bits)) < len(bits):
            raise AssertionError(
                f"run_episodes, case '{name}': the policy got the same key at {len(bits) - len(set(bits)) + 1} of "
                f"{len(bits)} replans, so every replan draws the same noise.\nHint: give each replan its own key, "
                "e.g. jax.random.fold_in(key, replan) with a replan counter."
            )
        outcome, final = np.asarray(got[0]), np.asarray(got[1], np.float64)
        want_outcome, want_final = _replay(scenes, keys, execute)
        if outcome.shape != want_outcome.shape or final.shape != want_final.shape:
            raise AssertionError(f"run_episodes, case '{name}': shapes {outcome.shape}, {final.shape}; expected "
                                 f"{want_outcome.shape}, {want_final.shape}")
        hint = ""
        for wrong in sorted({1, 16, 8} - {execute}):
            o, f = _replay(scenes, keys, wrong)
            if np.array_equal(o, outcome) and np.allclose(f, final, atol=1e-6):
                hint = f"\nHint: your loop executes {wrong} action(s) per replan; execute exactly `execute`."
        if not np.array_equal(outcome, want_outcome):
            i = int(np.nonzero(outcome != want_outcome)[0][0])
            raise AssertionError(f"run_episodes, case '{name}': outcome[{i}] = {toy.OUTCOMES[int(outcome[i])]}, "
                                 f"expected {toy.OUTCOMES[int(want_outcome[i])]}{hint or _LOOP_HINT}")
        if not np.allclose(final, want_final, atol=1e-6):
            i = int(np.nonzero(~np.all(np.isclose(final, want_final, atol=1e-6), -1))[0][0])
            raise AssertionError(f"run_episodes, case '{name}': final_pos[{i}] = {final[i]}, expected "
                                 f"{want_final[i]}{hint or _LOOP_HINT}")
    print("✓ run_episodes: 3/3 cases")


_LOOP_HINT = ("\nHint: observe → predict a chunk → step the env with chunk[:, j] for j < execute → "
              "observe again; stop when env.done.all() (or after MAX_STEPS).")


def _reference_stats(outcome, coin_flip) -> dict:
    out = {name: float(np.mean(outcome == code)) for code, name in
           [(toy.SUCCESS, "success"), (toy.CRASH, "crash"), (toy.WRONG, "wrong"), (toy.TIMEOUT, "timeout")]}
    out["coin_flip_success"] = float(np.mean(outcome[coin_flip] == toy.SUCCESS))
    return out


def check_success_stats(success_stats) -> None:
    """``success_stats(outcome, coin_flip) -> dict`` of fractions (not percents)."""
    rng = np.random.default_rng(0)
    cases = {
        "hand-made": (np.array([1, 1, 2, 3, 4, 1]), np.array([True, False, True, False, False, False])),
        "random 200": (rng.integers(1, 5, 200), rng.random(200) < 0.2),
    }
    for name, (outcome, coin) in cases.items():
        got = success_stats(outcome, coin)
        want = _reference_stats(outcome, coin)
        if not isinstance(got, dict) or set(want) - set(got):
            raise AssertionError(f"success_stats, case '{name}': expected a dict with keys {sorted(want)}")
        for key, value in want.items():
            g = float(got[key])
            if np.isclose(g, value):
                continue
            hint = ""
            if np.isclose(g, 100 * value):
                hint = " Fractions, not percents."
            elif key == "coin_flip_success" and np.isclose(g, np.sum((outcome == 1) & coin) / len(outcome)):
                hint = " Divide by the number of coin-flip episodes, not by all episodes."
            raise AssertionError(f"success_stats, case '{name}': {key} = {g:.4g}, expected {value:.4g}.{hint}")
    print("✓ success_stats: 2/2 cases")
