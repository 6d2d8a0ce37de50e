"""Toy-policy speed: train-step time (flow and MSE, batch 64) and per-replan latency at batch 1.

    python benchmarks/bench_toy_train.py [--steps 50]

Prints the machine (CPU model, cores, load average at the start and the end) and a table of what
it measured in this run; on a busy machine every time is inflated.
"""

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pi0lite.toy import normalize
from pi0lite.config import TINY
from pi0lite.toy.data import build_dataset, training_arrays
from pi0lite.toy import env as toy
from pi0lite.toy.policy import Policy
from pi0lite.toy.text import instruction_tokenizer
from pi0lite.toy.train import TrainConfig, Trainable, make_optimizer, step_for_devices

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_line


def bench_train(arrays, mode, steps):
    cfg = TrainConfig(mode=mode, steps=10_000)
    trainable = Trainable(TINY, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(trainable, make_optimizer(cfg), wrt=nnx.Param)
    graphdef, state = nnx.split((trainable, opt))
    # one device: jax.jit; several: sharding.sharded_jit over all of them (as toy training does)
    step, state, data = step_for_devices(graphdef, cfg, state, {k: jnp.asarray(v) for k, v in arrays.items()})
    key = jax.random.key(0)
    t0 = time.perf_counter()
    state, m = step(state, data, key, jnp.int32(0))
    jax.block_until_ready(m)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(1, steps + 1):
        state, m = step(state, data, key, jnp.int32(i))
    jax.block_until_ready(m)
    nnx.update((trainable, opt), state)  # the step donates its input state
    return first, (time.perf_counter() - t0) / steps, trainable


def bench_infer(policy, obs, reps=20):
    policy.infer(obs["image"], obs["state"], obs["instruction"], jax.random.key(0))
    t0 = time.perf_counter()
    for i in range(reps):
        policy.infer(obs["image"], obs["state"], obs["instruction"], jax.random.key(i))
    return (time.perf_counter() - t0) / reps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args()
    ds = build_dataset(100, seed=0)
    tok = instruction_tokenizer()
    norm = normalize.dataset_stats(ds)
    arrays = training_arrays(ds, tok, norm, max_token_len=TINY.max_token_len, action_dim=TINY.action_dim)
    env = toy.BatchedToyEnv()
    obs = env.reset(toy.sample_scenes(np.random.default_rng(0), 1))
    print(machine_line())
    print(f"devices: {jax.device_count()} (several: the step is sharded over a data-parallel mesh)")
    print(f"{'mode':>6} {'first step (s)':>15} {'ms/step (b=64)':>15} {'ms/replan (b=1)':>16}")
    for mode in ("flow", "mse"):
        first, per_step, trainable = bench_train(arrays, mode, args.steps)
        latency = bench_infer(Policy(trainable.pi0, norm, tok, mode=mode), obs)
        print(f"{mode:>6} {first:15.1f} {1000 * per_step:15.1f} {1000 * latency:16.1f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min)")


if __name__ == "__main__":
    main()
