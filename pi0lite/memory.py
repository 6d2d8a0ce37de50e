"""``python -m pi0lite.memory``: per-device memory of the real pi0 / pi0.5, from XLA and by hand.

For every model (``PI0``, ``PI05``), mode and FSDP size (1, 2, 4, 8) the real jitted function is
lowered and compiled ahead of time on abstract inputs (``jax.ShapeDtypeStruct``; nothing is
allocated) on forced host CPU devices, and XLA's buffer assignment is read back
(``compiled.memory_analysis()``): per device, ``arguments + outputs − aliased (donated) + temporaries``.

* ``inference``: ``sample_actions`` (10 Euler steps with the prefix KV cache), batch 1, parameters
  in bfloat16 (openpi restores parameters as bf16 for serving).
* ``lora``: one AdamW step, batch 32, the ``gemma_2b_lora`` + ``gemma_300m_lora`` variants; frozen
  parameters stored in bf16 and without optimiser state, as openpi's ``init_train_state`` does;
  no EMA (openpi's LoRA example config sets ``ema_decay=None``).
* ``full``: one AdamW step, batch 32, f32 parameters and optimiser state plus openpi's EMA copy of
  the parameters (``ema_decay=0.99``, the default of openpi's ``TrainConfig``).

Training uses per-layer rematerialisation (``remat``, as openpi's ``nn.remat``) unless ``--no-remat``;
the layers run under ``jax.lax.scan`` (as openpi's ``nn.scan``), so a compile costs about one
layer whatever the depth and the numbers are for the full depth, not extrapolated.

The closed-form estimate beside it (:mod:`pi0lite.memory_estimate`, re-exported here) counts
parameters + gradients + optimiser state (+ EMA) and the activations of :func:`activation_bytes`. XLA:CPU vs a GPU: the same HLO and the same buffer
assignment ideas, but a GPU backend fuses differently (for example attention kernels that never
write the probabilities), and XLA:CPU upcasts bfloat16 matmuls to float32, so the CPU temporaries
are an upper bound for activations; a GPU process also needs the CUDA context and allocator
slack (JAX preallocates 75 % of the memory unless told otherwise). GB = 1e9 bytes, per device.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and "jax" not in sys.modules:  # 8 host devices before JAX starts
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse
import functools
import json
import math
import pathlib
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from pi0lite import sharding
from pi0lite.config import Pi0Config
from pi0lite.memory_estimate import (  # noqa: F401  (re-exported: python -m pi0lite.memory's closed form)
    INFER_BATCH, MODELS, MODES, TRAIN_BATCH, activation_bytes, estimate, layer_activation_bytes, model_config,
    param_counts,
)
from pi0lite.pi0 import Pi0

GB = 1e9
FSDP_SIZES = (1, 2, 4, 8)
#: openpi's README: "more than" this much memory on one GPU.
OPENPI_GB = {"inference": 8.0, "lora": 22.5, "full": 70.0}
NUM_STEPS, EMA_DECAY = 10, 0.99
S = jax.ShapeDtypeStruct
#: XLA options of the planner's compiles. ``xla_backend_optimization_level=0`` turns off LLVM's
#: optimisation of the generated CPU machine code, which the planner never runs: buffer assignment
#: (what ``memory_analysis`` reports) is done on the optimised HLO before code generation, so the
#: numbers are the same (checked on every cell of the shipped table) and a compile costs about half
#: the CPU time (PI0 full fine-tuning, FSDP 8: 29 s -> 15 s of CPU).
COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


def abstract_batch(config: Pi0Config, b: int, *, train: bool) -> dict:
    s, l, h, d = config.vision.image_size, config.max_token_len, config.action_horizon, config.action_dim
    batch = {
        "images": S((b, len(config.image_keys), s, s, 3), jnp.float32), "state": S((b, d), jnp.float32),
        "tokenized_prompt": S((b, l), jnp.int32), "tokenized_prompt_mask": S((b, l), jnp.bool_),
    }
    if train:
        batch |= {"actions": S((b, h, d), jnp.float32), "noise": S((b, h, d), jnp.float32), "time": S((b,), jnp.float32)}
    return batch


def _as(tree, dtype):
    return jax.tree.map(lambda x: S(x.shape, dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


def _nbytes(tree) -> int:
    return sum(math.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def inference_fn(config: Pi0Config):
    """``(abstract params, fn(params, batch, key) -> actions)`` with bfloat16 parameters (openpi
    restores parameters as bf16 for serving) except SigLIP's patch convolution (0.7 M parameters),
    whose float32 images need a float32 kernel in ``lax.conv``."""
    from pi0lite.train import batch_observation

    model = nnx.eval_shape(lambda: Pi0(config, rngs=nnx.Rngs(0)))
    graphdef, conv, rest = nnx.split(model, nnx.PathContains("embedding", exact=True), ...)
    params = (conv, _as(rest, jnp.bfloat16))

    def fn(params, batch, key):
        model = nnx.merge(graphdef, *params)
        return model.sample_actions(key, batch_observation(config, batch), num_steps=NUM_STEPS)

    return params, fn


def train_fn(config: Pi0Config, *, ema: bool):
    """``(abstract state, step(state, batch) -> (state, loss))`` of one openpi-style AdamW step.

    ``state = (trainable f32, frozen bf16, optimiser state, EMA of the parameters or None)``.
    """
    from pi0lite.lora import trainable_filter
    from pi0lite.train import loss_fn

    model = nnx.eval_shape(lambda: Pi0(config, rngs=nnx.Rngs(0)))
    graphdef, trainable, frozen = nnx.split(model, trainable_filter(config), ...)
    frozen = _as(frozen, jnp.bfloat16)  # openpi stores frozen parameters in bf16
    tx = optax.adamw(1e-4, weight_decay=1e-10)
    opt = jax.eval_shape(tx.init, trainable)
    state = (trainable, frozen, opt, trainable if ema else None)

    def step(state, batch):
        trainable, frozen, opt, ema_params = state
        loss, grads = jax.value_and_grad(lambda t: loss_fn(nnx.merge(graphdef, t, frozen), batch))(trainable)
        updates, opt = tx.update(grads, opt, trainable)
        trainable = optax.apply_updates(trainable, updates)
        if ema_params is not None:
            ema_params = jax.tree.map(lambda e, p: EMA_DECAY * e + (1 - EMA_DECAY) * p, ema_params, trainable)
        return (trainable, frozen, opt, ema_params), loss

    return state, step


def lower(name: str | Pi0Config, mode: str, fsdp: int, *, remat: bool = True, batch: int | None = None):
    """The jitted function of ``mode`` lowered for a ``(1, fsdp)`` mesh on abstract inputs.

    The abstract model and the function are cached per config, so the FSDP sizes of one cell share
    one trace (jaxpr); only the sharded lowering differs."""
    config = model_config(name, mode, remat=remat)
    mesh = sharding.make_mesh(fsdp, devices=jax.devices()[:fsdp])
    rep = sharding.replicated(mesh)
    if mode == "inference":
        params, fn = _inference_fn(config)
        sh = sharding.state_shardings(params, mesh)
        key = jax.eval_shape(lambda: jax.random.key(0))
        abstract = abstract_batch(config, batch or INFER_BATCH, train=False)
        return jax.jit(fn, in_shardings=(sh, rep, rep), out_shardings=rep).lower(params, abstract, key)
    state, step = _train_fn(config, ema=mode == "full")
    sh = sharding.state_shardings(state, mesh)
    abstract = abstract_batch(config, batch or TRAIN_BATCH, train=True)
    jitted = jax.jit(step, in_shardings=(sh, sharding.batch_sharding(mesh)), out_shardings=(sh, rep), donate_argnums=0)
    return jitted.lower(state, abstract)


_inference_fn = functools.cache(inference_fn)
_train_fn = functools.cache(train_fn)


def analyse(lowered, compiler_options: dict | None = None) -> dict:
    """Compile ``lowered`` (XLA releases the GIL: several can run in threads) and read back XLA's
    buffer assignment: per-device ``arguments + outputs − aliased (donated) + temporaries``."""
    t0 = time.perf_counter()
    options = COMPILER_OPTIONS if compiler_options is None else compiler_options
    m = lowered.compile(compiler_options=options or None).memory_analysis()
    args, out, alias, temp = (m.argument_size_in_bytes, m.output_size_in_bytes, m.alias_size_in_bytes,
                              m.temp_size_in_bytes)
    return {"arguments": args, "outputs": out, "aliased": alias, "temporaries": temp,
            "peak": args + out - alias + temp, "compile_seconds": time.perf_counter() - t0}


def xla_memory(name: str | Pi0Config, mode: str, fsdp: int, *, remat: bool = True, batch: int | None = None,
               compiler_options: dict | None = None) -> dict:
    """Per-device bytes from XLA's buffer assignment of the compiled function (nothing allocated)."""
    t0 = time.perf_counter()
    lowered = lower(name, mode, fsdp, remat=remat, batch=batch)
    return analyse(lowered, compiler_options) | {"lower_seconds": time.perf_counter() - t0}


# --- the table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    model: str
    mode: str
    fsdp: int
    xla_gb: float
    estimate_gb: float
    lower_seconds: float
    compile_seconds: float


def plan(models=tuple(MODELS), modes=MODES, fsdp_sizes=FSDP_SIZES, *, remat: bool = True, progress=None,
         jobs: int = 2) -> list[Row]:
    """Every cell: lowered in this thread (tracing is Python), compiled by ``jobs`` threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    cells = [(name, mode, f) for name in models for mode in modes for f in fsdp_sizes]
    rows: dict = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        pending = []
        for cell in cells:
            t0 = time.perf_counter()
            lowered = lower(*cell, remat=remat)
            pending.append((cell, time.perf_counter() - t0, pool.submit(analyse, lowered)))
            # keep at most `jobs` compiles queued beyond the running ones (each holds a large HLO)
            while sum(not p[2].done() for p in pending) > 2 * max(1, jobs):
                time.sleep(0.2)
            _collect(pending, rows, remat, progress, wait=False)
        _collect(pending, rows, remat, progress, wait=True)
    return [rows[c] for c in cells]


def _collect(pending, rows, remat, progress, *, wait: bool) -> None:
    for cell, lower_s, fut in list(pending):
        if wait or fut.done():
            x = fut.result()
            e = estimate(*cell, remat=remat)
            rows[cell] = Row(*cell, x["peak"] / GB, e["total"] / GB, lower_s, x["compile_seconds"])
            pending.remove((cell, lower_s, fut))
            if progress is not None:
                progress(rows[cell])


def to_json(rows: list[Row]) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r.model, {}).setdefault(r.mode, {})[str(r.fsdp)] = {
            "xla_gb": round(r.xla_gb, 2), "estimate_gb": round(r.estimate_gb, 2)}
    return out


def to_markdown(rows: list[Row]) -> str:
    lines = ["| model | mode | " + " | ".join(f"FSDP {f} XLA / est." for f in FSDP_SIZES) + " | openpi (1 GPU) |",
             "| --- | --- | " + " | ".join("---" for _ in FSDP_SIZES) + " | --- |"]
    table = to_json(rows)
    for name, modes in table.items():
        for mode, by_f in modes.items():
            cells = [f"{by_f[str(f)]['xla_gb']:.1f} / {by_f[str(f)]['estimate_gb']:.1f}" if str(f) in by_f else "–"
                     for f in FSDP_SIZES]
            lines.append(f"| {name} | {mode} | " + " | ".join(cells) + f" | > {OPENPI_GB[mode]:g} |")
    return "\n".join(lines)


#: The table of one ``python -m pi0lite.memory`` run (remat on; see the README for its time on the
#: shared 2-core box), as printed in the README (0.1 GB rounding) in the ``--json`` layout; shipped so that
#: notebook 12 can show XLA's numbers without recompiling.
PLAN_FILE = pathlib.Path(__file__).resolve().parent / "assets" / "memory_plan.json"


def shipped_plan() -> dict:
    """The shipped table, ``{model: {mode: {fsdp (int): {"xla_gb", "estimate_gb"}}}}``."""
    raw = json.loads(PLAN_FILE.read_text())
    return {m: {mode: {int(f): cell for f, cell in by_f.items()} for mode, by_f in modes.items()}
            for m, modes in raw.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m pi0lite.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print only the JSON table")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    p.add_argument("--fsdp", nargs="+", type=int, default=list(FSDP_SIZES))
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="compiles at once (default: cores)")
    p.add_argument("--save", type=pathlib.Path, help="also write the JSON table to this file")
    p.add_argument("--no-remat", action="store_true", help="keep every layer's activations (no recomputation)")
    args = p.parse_args(argv)
    if jax.device_count() < max(args.fsdp):
        raise SystemExit(f"need {max(args.fsdp)} devices, have {jax.device_count()} (run as python -m pi0lite.memory)")
    log = None if args.json else (lambda r: print(
        f"{r.model:5s} {r.mode:9s} fsdp {r.fsdp}: XLA {r.xla_gb:7.2f} GB, estimate {r.estimate_gb:7.2f} GB "
        f"(lowered in {r.lower_seconds:.0f} s, compiled in {r.compile_seconds:.0f} s)", flush=True))
    if not args.json:
        print(f"{jax.device_count()} host devices; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    t0 = time.perf_counter()
    rows = plan(args.models, args.modes, args.fsdp, remat=not args.no_remat, progress=log, jobs=args.jobs)
    if args.save is not None:
        args.save.write_text(json.dumps(to_json(rows), indent=1) + "\n")
    if args.json:
        print(json.dumps(to_json(rows)))
    else:
        print(("remat off" if args.no_remat else "remat on") + f"; {len(rows)} cells in {time.perf_counter() - t0:.0f} s "
              f"(load average now {os.getloadavg()[0]:.1f}); GB = 1e9 bytes per device\n" + to_markdown(rows))


if __name__ == "__main__":
    main()
