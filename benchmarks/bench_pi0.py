"""Speed of pi0lite's Pi0 on this machine: compile, loss, sampling (cached / uncached), train step.

    python benchmarks/bench_pi0.py [--configs openpi_dummy tiny] [--repeats 5]

Prints a table (milliseconds, median of ``--repeats`` steady calls) and the ratios the project
targets: cached 10-step sampling ≤ 1× one compute_loss pass, and ≥ 4× faster than uncached.
For scale, openpi's own code on OPENPI_DUMMY (batch 2, float32, this kind of 2-core machine)
measured compute_loss 522 ms, sample_actions 490 ms and a training step 1361 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from pi0lite.config import PRESETS
from pi0lite.pi0 import Observation, Pi0

OPENPI_MS = {"compute_loss": 522, "sample (cached)": 490, "train step": 1361}


def make_batch(cfg, batch, seed=0):
    rng = np.random.default_rng(seed)
    s = cfg.vision.image_size
    prompt = rng.integers(3, cfg.vocab_size, (batch, cfg.max_token_len))
    prompt[:, cfg.max_token_len // 2 :] = 0
    obs = Observation.from_numpy(
        images={k: rng.integers(0, 256, (batch, s, s, 3), dtype=np.uint8) for k in cfg.image_keys},
        state=rng.normal(size=(batch, cfg.action_dim)).astype(np.float32),
        tokenized_prompt=prompt,
    )
    actions = jnp.asarray(rng.normal(size=(batch, cfg.action_horizon, cfg.action_dim)), jnp.float32)
    return obs, actions


@nnx.jit
def loss_step(model, key, obs, actions):
    return jnp.mean(model.compute_loss(key, obs, actions))


@nnx.jit(static_argnames=("use_cache",))
def sample_step(model, key, obs, use_cache):
    return model.sample_actions(key, obs, num_steps=10, use_cache=use_cache)


@nnx.jit
def train_step(model, optimizer, key, obs, actions):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m.compute_loss(key, obs, actions)))(model)
    optimizer.update(model, grads)
    return loss


def timed(fn, repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def bench(name, batch, repeats):
    cfg = PRESETS[name]
    model = Pi0(cfg, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adamw(1e-4), wrt=nnx.Param)
    obs, actions = make_batch(cfg, batch)
    key = jax.random.key(0)
    rows = {
        "compute_loss": timed(lambda: loss_step(model, key, obs, actions), repeats),
        "sample (cached)": timed(lambda: sample_step(model, key, obs, True), repeats),
        "sample (uncached)": timed(lambda: sample_step(model, key, obs, False), repeats),
        "train step": timed(lambda: train_step(model, optimizer, key, obs, actions), repeats),
    }
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["openpi_dummy", "tiny"])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cpus, batch {args.batch}, float32")
    for name in args.configs:
        rows = bench(name, args.batch, args.repeats)
        print(f"\n{name}")
        print(f"{'call':<20}{'first (compile) s':>18}{'steady ms':>12}{'openpi ms':>11}")
        for call, (first, steady) in rows.items():
            ref = OPENPI_MS.get(call) if name == "openpi_dummy" else None
            print(f"{call:<20}{first:>18.2f}{steady * 1e3:>12.1f}{ref if ref else '':>11}")
        loss, cached, uncached = rows["compute_loss"][1], rows["sample (cached)"][1], rows["sample (uncached)"][1]
        print(f"ratio cached sample / compute_loss : {cached / loss:.2f}  (goal <= 1.0)")
        print(f"ratio uncached / cached sample     : {uncached / cached:.2f}  (goal >= 4.0)")
        if name == "openpi_dummy":
            for call, ref in OPENPI_MS.items():
                print(f"speed-up vs openpi, {call:<15}: {ref / (rows[call][1] * 1e3):.2f}x")


if __name__ == "__main__":
    main()
