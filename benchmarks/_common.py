"""Shared by the benchmark scripts: the machine line, peak-memory probes, the Pi0 calls under test.

Every call comes two ways: through ``jax.jit`` on split state (:mod:`pi0lite.compiled`, what the
hot paths use) and through ``nnx.jit`` with the module as an argument (graph traversal per call).
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from pi0lite import compiled, sharding
from pi0lite.pi0 import Observation, Pi0

NUM_STEPS = 10


# --- the machine -----------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict:
    """CPU model, cores, load average (1/5/15 min) now, JAX version and backend."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "jax": jax.__version__,
        "backend": jax.devices()[0].platform,
        "devices": jax.device_count(),
    }


def machine_line(info: dict | None = None) -> str:
    m = info or machine()
    load = " ".join(f"{x:.2f}" for x in m["load_average"])
    return f"{m['cpu']}, {m['cores']} cores, load average {load} (1/5/15 min), jax {m['jax']} on {m['backend']} ({m.get('devices', 1)} device(s))"


# --- memory ----------------------------------------------------------------------------------

def release_free_heap() -> None:
    """Hand memory that Python and XLA have freed back to the OS (glibc ``malloc_trim``), so the
    RSS counts what is in use, not what compiling left in the allocator's free lists."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> None:
    """Reset the kernel's high-water mark of this process's RSS to the current RSS, after
    :func:`release_free_heap` (Linux; a no-op elsewhere)."""
    release_free_heap()
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_gb() -> float:
    """This process's peak RSS since the last :func:`reset_peak_rss` (GB)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def xla_stats(jitted, *args) -> dict:
    """FLOPs, bytes accessed and memory (argument/output/temp bytes) of the compiled function."""
    exe = jitted.lower(*args).compile()
    cost = exe.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    mem = exe.memory_analysis()
    return {
        "flops": float(cost.get("flops", 0.0)),
        "bytes": float(cost.get("bytes accessed", 0.0)),
        "argument_bytes": int(mem.argument_size_in_bytes),
        "output_bytes": int(mem.output_size_in_bytes),
        "temp_bytes": int(mem.temp_size_in_bytes),
        "hlo": exe.as_text(),
    }


# --- timing ----------------------------------------------------------------------------------

def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(first call in s, median of ``repeats`` further calls in s); each call is waited for."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times) if times else first


# --- the calls under test --------------------------------------------------------------------

def make_batch(cfg, batch: int, seed: int = 0):
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


def loss(model, key, obs, actions):
    return jnp.mean(model.compute_loss(key, obs, actions))


def sample_cached(model, key, obs):
    return model.sample_actions(key, obs, num_steps=NUM_STEPS, use_cache=True)


def sample_uncached(model, key, obs):
    return model.sample_actions(key, obs, num_steps=NUM_STEPS, use_cache=False)


def train_step(pair, key, obs, actions):
    model, optimizer = pair
    value, grads = nnx.value_and_grad(lambda m: loss(m, key, obs, actions))(model)
    optimizer.update(model, grads)
    return value


@dataclass
class Call:
    """One benchmarked call: ``run()`` executes it once (stateful calls carry their state along)."""

    name: str
    jitted: Callable  # jax.jit function of (state, *args)
    args: tuple
    state: Any
    stateful: bool = False
    graphdef: Any = None

    def run(self):
        if self.stateful:
            self.state, out = self.jitted(self.state, *self.args)
            return out
        return self.jitted(self.state, *self.args)

    def stats(self) -> dict:
        return xla_stats(self.jitted, self.state, *self.args)


def train_call(name: str, cfg, batch: int, key, obs, actions) -> Call:
    """The train step (value_and_grad + AdamW) on its own model and optimiser, state donated."""
    t_model = Pi0(cfg, rngs=nnx.Rngs(0))
    t_opt = nnx.Optimizer(t_model, optax.adamw(1e-4), wrt=nnx.Param)
    t_graphdef, t_state = nnx.split((t_model, t_opt))
    mesh = sharding.data_parallel_mesh(batch) if jax.device_count() > 1 and batch % jax.device_count() == 0 else None
    if mesh is None:
        t_fn = compiled.stateful(t_graphdef, train_step)
    else:  # several devices: the sharded step of pi0lite.sharding (batch over the mesh, FSDP rule)
        shardings = sharding.state_shardings(t_state, mesh)
        t_state = sharding.shard(t_state, shardings)

        def run(state, key, obs, actions):
            module = nnx.merge(t_graphdef, state)
            out = train_step(module, key, obs, actions)
            return nnx.state(module), out

        t_fn = sharding.sharded_jit(run, mesh, shardings, batch_argnums=(2, 3), num_args=4)
    return Call(name, t_fn, (key, obs, actions), t_state, stateful=True, graphdef=t_graphdef)


def pi0_calls(cfg, batch: int, *, uncached: bool = True, remat: bool = False
              ) -> tuple[dict[str, Call], dict[str, Callable]]:
    """The split-state calls ``{name: Call}`` and the same calls through ``nnx.jit`` (``{name: thunk}``).

    ``remat=True`` adds ``train_step_remat``: the train step with the layers under ``lax.scan`` and
    ``jax.checkpoint`` (openpi's ``nn.scan`` + ``nn.remat``), less memory for ~⅓ more compute."""
    model = Pi0(cfg, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adamw(1e-4), wrt=nnx.Param)
    obs, actions = make_batch(cfg, batch)
    key = jax.random.key(0)
    graphdef, state = nnx.split(model)
    calls = {
        "compute_loss": Call("compute_loss", compiled.pure(graphdef, loss), (key, obs, actions), state, graphdef=graphdef),
        "sample_cached": Call("sample_cached", compiled.pure(graphdef, sample_cached), (key, obs), state, graphdef=graphdef),
    }
    if uncached:
        calls["sample_uncached"] = Call(
            "sample_uncached", compiled.pure(graphdef, sample_uncached), (key, obs), state, graphdef=graphdef
        )
    # the train step gets its own model + optimiser: the step donates (and so invalidates) its state
    calls["train_step"] = train_call("train_step", cfg, batch, key, obs, actions)
    if remat:  # openpi's way: layers under scan + remat (the backward pass recomputes each layer)
        calls["train_step_remat"] = train_call(
            "train_step_remat", cfg.replace(scan_layers=True, remat=True), batch, key, obs, actions)
    nnx_loss, nnx_sample, nnx_train = nnx.jit(loss), nnx.jit(sample_cached), nnx.jit(train_step)
    via_nnx = {
        "compute_loss": lambda: nnx_loss(model, key, obs, actions),
        "sample_cached": lambda: nnx_sample(model, key, obs),
        "train_step": lambda: nnx_train((model, optimizer), key, obs, actions),
    }
    return calls, via_nnx
