"""``python -m pi0lite.train``: a sharded pi0 train step on one device, a mesh, or several processes.

The same command runs everywhere; only the flags around it change::

    python -m pi0lite.train --preset tiny --steps 3                    # every local device
    python -m pi0lite.train --fsdp 2                                   # (devices/2, 2) mesh
    python -m pi0lite.train --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 0   # host 0
    python -m pi0lite.train --coordinator 10.0.0.1:1234 --num-processes 2 --process-id 1   # host 1

With ``--coordinator`` every process calls ``jax.distributed.initialize`` (on CPU the cross-process
collectives are gloo); ``jax.devices()`` then lists the devices of all processes, the mesh spans
them, and each process builds only the rows of the global batch that its own devices hold
(``jax.make_array_from_process_local_data``). Parameters and optimiser state are created
identically on every process from ``--seed`` and placed with the FSDP rule of
:mod:`pi0lite.sharding`. A dead peer is detected by JAX's heartbeat and by a watchdog on step
progress, which ends this process with a clear error instead of a hang.

The data are synthetic (random images, prompts, states and actions drawn per example from
``(seed, step, row)``), so the runs of any mesh / process layout see exactly the same global
batches; the toy task's training is :mod:`pi0lite.toy.train`.

Axis letters: b batch · y, x pixels · l prompt tokens · h action horizon · d action dim.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import threading
import time as _time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from pi0lite import sharding
from pi0lite.config import PRESETS, TINY, GemmaConfig, Pi0Config
from pi0lite.pi0 import Observation, Pi0

#: A pi0 small enough to compile in seconds, with every width divisible by 8 (tests, CI).
MICRO = TINY.replace(
    action_horizon=8,
    paligemma=GemmaConfig(width=32, depth=2, mlp_dim=64, num_heads=2, num_kv_heads=1, head_dim=16),
    action_expert=GemmaConfig(width=16, depth=2, mlp_dim=32, num_heads=2, num_kv_heads=1, head_dim=16),
)
TRAIN_PRESETS = {"micro": MICRO, **PRESETS}
BATCH_KEYS = ("images", "state", "tokenized_prompt", "tokenized_prompt_mask", "actions", "noise", "time")


def synthetic_rows(config: Pi0Config, rows: np.ndarray, step: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Examples ``rows`` of the global batch of ``step``: each row drawn from its own ``(seed, step, row)``."""
    s, l, h, d = config.vision.image_size, config.max_token_len, config.action_horizon, config.action_dim
    out = {k: [] for k in BATCH_KEYS}
    for r in np.asarray(rows):
        g = np.random.default_rng([seed, step, int(r)])
        n_tok = int(g.integers(1, l + 1))
        out["images"].append(g.uniform(-1, 1, (len(config.image_keys), s, s, 3)).astype(np.float32))
        out["state"].append(g.standard_normal(d).astype(np.float32))
        out["tokenized_prompt"].append(np.where(np.arange(l) < n_tok, g.integers(1, config.vocab_size, l), 0))
        out["tokenized_prompt_mask"].append(np.arange(l) < n_tok)
        out["actions"].append(g.standard_normal((h, d)).astype(np.float32))
        out["noise"].append(g.standard_normal((h, d)).astype(np.float32))
        out["time"].append(np.float32(g.beta(1.5, 1.0) * 0.999 + 0.001))
    arrays = {k: np.stack(v) for k, v in out.items()}
    arrays["tokenized_prompt"] = arrays["tokenized_prompt"].astype(np.int32)
    return arrays


def batch_observation(config: Pi0Config, batch: dict) -> Observation:
    b = batch["state"].shape[0]
    return Observation(
        images={k: batch["images"][:, i] for i, k in enumerate(config.image_keys)},
        image_masks={k: jnp.ones((b,), bool) for k in config.image_keys},
        state=batch["state"], tokenized_prompt=batch["tokenized_prompt"],
        tokenized_prompt_mask=batch["tokenized_prompt_mask"],
    )


def loss_fn(model: Pi0, batch: dict) -> jax.Array:
    """Mean flow-matching loss with the batch's own noise and time (no randomness inside)."""
    obs = batch_observation(model.config, batch)
    per = model.compute_loss(jax.random.key(0), obs, batch["actions"], noise=batch["noise"], time=batch["time"])
    return jnp.mean(per)


def make_optimizer(lr: float = 1e-3, weight_decay: float = 1e-4, eps: float = 1e-8) -> optax.GradientTransformation:
    return optax.adamw(lr, eps=eps, weight_decay=weight_decay)


def init_state(config: Pi0Config, *, seed: int = 0, lr: float = 1e-3, eps: float = 1e-8, wrt=nnx.Param):
    """``(graphdef, state)`` of ``(model, nnx.Optimizer)``; ``wrt`` picks the trained parameters."""
    model = Pi0(config, rngs=nnx.Rngs(seed))
    opt = nnx.Optimizer(model, make_optimizer(lr, eps=eps), wrt=wrt)
    return nnx.split((model, opt))


def make_train_step(graphdef, *, return_grads: bool = False, wrt=nnx.Param):
    """``step(state, batch) -> (state, metrics)``: one AdamW step; metrics ``loss`` (and ``grads``)."""

    def step(state, batch):
        model, opt = nnx.merge(graphdef, state)
        diff = nnx.DiffState(0, wrt)
        loss, grads = nnx.value_and_grad(loss_fn, argnums=diff)(model, batch)
        opt.update(model, grads)
        metrics = {"loss": loss}
        if return_grads:
            metrics["grads"] = grads
        return nnx.state((model, opt)), metrics

    return step


def place_state(state: Any, shardings: Any) -> Any:
    """Put a host-identical ``state`` on a (possibly multi-process) mesh: every process supplies the
    shards of its own devices (``jax.make_array_from_callback``), nothing crosses the network."""

    def one(x, sh):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sh, lambda idx: x[idx])

    return jax.tree.map(one, state, shardings)


def local_rows(mesh, global_batch: int) -> np.ndarray:
    """The rows of the global batch held by this process's devices (one contiguous block)."""
    idx = sharding.batch_sharding(mesh).addressable_devices_indices_map((global_batch,))
    rows = sorted({r for sl in idx.values() for r in range(*sl[0].indices(global_batch))})
    if rows != list(range(rows[0], rows[-1] + 1)):
        raise ValueError(f"this process's batch rows are not contiguous: {rows}")
    return np.asarray(rows)


def global_batch(config: Pi0Config, mesh, batch_size: int, step: int, seed: int) -> dict[str, jax.Array]:
    """The global batch of ``step`` as arrays sharded over the mesh; this process builds only its rows."""
    sh = sharding.batch_sharding(mesh)
    local = synthetic_rows(config, local_rows(mesh, batch_size), step, seed)
    return {k: jax.make_array_from_process_local_data(sh, v, (batch_size,) + v.shape[1:]) for k, v in local.items()}


def gather(tree: Any) -> Any:
    """Full host copies of (possibly cross-process) sharded arrays."""
    from jax.experimental import multihost_utils

    return jax.tree.map(np.asarray, multihost_utils.process_allgather(tree, tiled=True))


class Watchdog:
    """Ends the process with a clear message when no step finishes for ``timeout`` seconds.

    Armed by the first :meth:`beat` (the end of the first step), so the first compile, whose length
    depends on the machine, is not timed; until then JAX's own heartbeat watches the peers.
    """

    def __init__(self, timeout: float, what: str):
        self.timeout, self.what, self.last = timeout, what, None
        self._stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def beat(self) -> None:
        self.last = _time.monotonic()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            if self.last is not None and _time.monotonic() - self.last > self.timeout:
                sys.stderr.write(
                    f"pi0lite.train: ERROR: no progress for {self.timeout:.0f} s on {self.what}; a peer process "
                    "has probably died or the coordinator is unreachable. Exiting.\n"
                )
                sys.stderr.flush()
                os._exit(3)


def run(args: argparse.Namespace) -> dict:
    config = TRAIN_PRESETS[args.preset]
    mesh = sharding.make_mesh(args.fsdp)
    if args.batch_size % mesh.size:
        raise ValueError(f"--batch-size ({args.batch_size}) must be divisible by the device count ({mesh.size})")
    graphdef, state = init_state(config, seed=args.seed, lr=args.lr, eps=args.adam_eps)
    shardings = sharding.state_shardings(state, mesh, args.min_shard_bytes)
    state = place_state(state, shardings)
    step_fn = sharding.sharded_jit(make_train_step(graphdef), mesh, shardings, num_args=2)
    who = f"process {jax.process_index()} of {jax.process_count()}"
    # Compile ahead of time, then wait for every process: the first collective (gloo's context
    # set-up) gives a peer only 30 s, less than a slow compile on a busy machine.
    step_fn = step_fn.lower(state, global_batch(config, mesh, args.batch_size, 0, args.seed)).compile()
    if jax.process_count() > 1:
        from jax._src import distributed

        distributed.global_state.client.wait_at_barrier("pi0lite_train_compiled", 600_000)
    dog = Watchdog(args.step_timeout, who)
    losses = []
    for i in range(args.steps):
        if args.crash_at_step == i:  # testing only: a peer that dies mid-run
            os._exit(17)
        batch = global_batch(config, mesh, args.batch_size, i, args.seed)
        try:
            state, metrics = step_fn(state, batch)
            losses.append(float(metrics["loss"]))  # blocks until the step is done
        except Exception as err:  # a collective failed: say so plainly and leave (no shutdown barrier)
            sys.stderr.write(f"pi0lite.train: ERROR on {who} at step {i}: {type(err).__name__}: {err}\n")
            sys.stderr.flush()
            os._exit(1)
        dog.beat()
        if jax.process_index() == 0:
            print(f"step {i}: loss {losses[-1]:.6f}", flush=True)
    params = gather(nnx.state(nnx.merge(graphdef, state)[0], nnx.Param))
    dog.stop()
    return {"losses": losses, "params": params, "mesh": dict(mesh.shape), "processes": jax.process_count()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pi0lite.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="micro", choices=sorted(TRAIN_PRESETS))
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8, help="global batch (all processes)")
    p.add_argument("--fsdp", type=int, default=1, help="size of the fsdp mesh axis")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--adam-eps", type=float, default=1e-8, help="AdamW's eps (optax's default 1e-8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-shard-bytes", type=int, default=sharding.MIN_SHARD_BYTES)
    p.add_argument("--out", type=pathlib.Path, help="write final parameters (.npz) and losses (.json) here")
    p.add_argument("--coordinator", help="HOST:PORT of process 0 (multi-process)")
    p.add_argument("--num-processes", type=int, default=1)
    p.add_argument("--process-id", type=int, default=0)
    p.add_argument("--heartbeat-timeout", type=int, default=10, help="seconds before JAX declares a peer dead")
    p.add_argument("--step-timeout", type=float, default=300.0, help="seconds without a finished step → exit")
    p.add_argument("--crash-at-step", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.coordinator:
        if not 0 <= args.process_id < args.num_processes:
            raise SystemExit(f"--process-id must be in [0, {args.num_processes}), got {args.process_id}")
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            args.coordinator, args.num_processes, args.process_id,
            initialization_timeout=300, heartbeat_timeout_seconds=args.heartbeat_timeout,
        )
    result = run(args)
    if args.out is not None and jax.process_index() == 0:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        flat = {"/".join(str(k.key) for k in path): v for path, v in jax.tree_util.tree_leaves_with_path(
            nnx.to_pure_dict(result["params"]))}
        tmp = args.out.with_suffix(".tmp.npz")
        np.savez(tmp, **flat)
        os.replace(tmp, args.out.with_suffix(".npz"))
        meta = {k: result[k] for k in ("losses", "mesh", "processes")}
        args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    if args.coordinator:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
