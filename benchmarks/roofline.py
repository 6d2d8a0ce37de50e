"""How close the hot calls come to this machine's limit: FLOPs, bytes, time, fraction of peak, top ops.

    python benchmarks/roofline.py [--repeats 5] [--json] [--skip-toy]

1. Peak: a large float32 matmul through XLA, once pinned to one core (a subprocess with CPU
   affinity {0}: XLA sizes its thread pool at start-up) and once on all cores; plus a streaming
   ``y = 2x + 1`` over 256 MB for the memory bandwidth.
2. For ``compute_loss``, cached ``sample_actions`` (10 steps) and the train step on OPENPI_DUMMY
   (batch 2, all cores), and the toy training step at TINY batch 64 exactly as ``make demo``
   runs it (``pi0lite.toy.train.make_train_step``, a subprocess pinned to one core): FLOPs and
   bytes from XLA's cost analysis of the compiled function, the measured time (median), achieved
   GFLOP/s, the fraction of the matching peak, and the top operations of a profiler trace.

XLA's cost analysis counts a ``while`` body once, so the cached sampler's FLOPs are the prefix
pass plus ``num_steps`` times one suffix step, each analysed on its own; and every call's FLOPs
and bytes come from the same call compiled with ``pi0lite.attention``'s query blocks off (the
blocks are a ``lax.map`` loop): model FLOPs, not counting a backward pass's recomputation.
``--json`` prints ``{"peak_gflops": {"1core", "2core"}, "calls": {name: {"gflop", "ms", "fraction_of_peak", ...}}}``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")

if "--_child" in sys.argv:  # pin before XLA starts its thread pool
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import jax
import jax.numpy as jnp
from flax import nnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import NUM_STEPS, machine, machine_line, pi0_calls, timed, xla_stats

from pi0lite import attention as pi0_attention
from pi0lite import compiled
from pi0lite.config import OPENPI_DUMMY, TINY

PEAK_N = 2048


# --- peak --------------------------------------------------------------------------------------

def measure_peak(repeats: int) -> dict:
    """Best GFLOP/s of a ``PEAK_N``³ float32 matmul and GB/s of a 256 MB stream, in this process."""
    a = jax.random.normal(jax.random.key(0), (PEAK_N, PEAK_N), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (PEAK_N, PEAK_N), jnp.float32)
    mm = jax.jit(lambda x, y: x @ y)
    best = min(timed(lambda: mm(a, b), 1)[1] for _ in range(repeats))
    x = jnp.ones((64 * 2**20,), jnp.float32)
    stream = jax.jit(lambda v: 2.0 * v + 1.0)
    best_s = min(timed(lambda: stream(x), 1)[1] for _ in range(repeats))
    return {"gflops": 2 * PEAK_N**3 / best / 1e9, "gbs": 2 * x.nbytes / best_s / 1e9}


# --- profiler ----------------------------------------------------------------------------------

_SKIP = re.compile(r"^\$|Execut|Pjit|Await|ParseArguments|Handle inputs|^end: ")


def top_ops(run, hlo: str, calls: int = 3, top: int = 6) -> tuple[list[dict], float]:
    """Per-op time per call from a jax.profiler trace; each op named by its JAX source op and shape."""
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            for _ in range(calls):
                jax.block_until_ready(run())
        files = glob.glob(os.path.join(d, "**", "*.trace.json.gz"), recursive=True)
        events = json.load(gzip.open(files[0]))
    events = events["traceEvents"] if isinstance(events, dict) else events
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X" and not _SKIP.search(e["name"]):
            total[e["name"]] += e.get("dur", 0) / 1e3 / calls
            count[e["name"]] += 1 / calls
    op_ms = sum(total.values())
    rows = []
    for name, ms in total.most_common(top):
        line = re.search(rf"%{re.escape(name)} = (\S+) [^\n]*", hlo)
        src = re.search(r'op_name="([^"]+)"', line.group(0)) if line else None
        src = "/".join(src.group(1).split("/")[-2:]) if src else ""
        rows.append({"op": name, "kind": classify(name, fused_ops(hlo, line.group(0) if line else "")), "source": src, "shape": line.group(1) if line else "",
                     "ms": round(ms, 3), "share": round(ms / op_ms, 3), "runs_per_call": round(count[name])})
    return rows, op_ms


def fused_ops(hlo: str, line: str) -> set[str]:
    """The HLO opcodes inside the fusion (or the single op) defined on ``line``."""
    called = re.search(r"calls=(%[\w.\-]+)", line)
    if not called:
        return set(re.findall(r"= \S+ ([a-z][\w-]*)\(", line))
    body = re.search(rf"^{re.escape(called.group(1))} .*?^}}", hlo, re.S | re.M)
    return set(re.findall(r"= \S+ ([a-z][\w-]*)\(", body.group(0))) if body else set()


def classify(name: str, ops: set[str]) -> str:
    """A short description of what an op does, from the opcodes it fuses."""
    parts = []
    if ops & {"dot", "convolution"} or name.startswith("ynn"):
        parts.append("matmul")
    if "exponential" in ops:
        parts.append("softmax/exp")
    elif "reduce" in ops:
        parts.append("reduce")
    if "select" in ops:
        parts.append("mask select")
    if ops & {"gather", "dynamic-slice", "dynamic-update-slice", "scatter"}:
        parts.append("gather/scatter")
    if not parts and ops & {"copy", "transpose", "concatenate", "slice", "pad"}:
        parts.append("copy/transpose")
    if "while" in ops or name.startswith("while"):
        parts.append("loop")
    return "+".join(parts) or "elementwise"


# --- the calls ---------------------------------------------------------------------------------

def _prefix(model, obs):
    return model.fill_prefix_cache(obs)


def _suffix_step(model, obs, kv, mask, x, t):
    return model.velocity_cached(obs, kv, mask, x, t)


def cached_sample_cost(call) -> tuple[float, float]:
    """(FLOPs, bytes) of cached sampling: one prefix pass + NUM_STEPS suffix steps, analysed apart."""
    _, obs = call.args
    prefix = compiled.pure(call.graphdef, _prefix)
    p = xla_stats(prefix, call.state, obs)
    kv, mask = prefix(call.state, obs)
    cfg = nnx.merge(call.graphdef, call.state).config
    x = jnp.zeros((obs.batch_size, cfg.action_horizon, cfg.action_dim), jnp.float32)
    t = jnp.ones((obs.batch_size,), jnp.float32)
    s = xla_stats(compiled.pure(call.graphdef, _suffix_step), call.state, obs, kv, mask, x, t)
    return p["flops"] + NUM_STEPS * s["flops"], p["bytes"] + NUM_STEPS * s["bytes"]


@contextlib.contextmanager
def attention_unblocked():
    """Trace and compile with ``pi0lite.attention``'s query blocks off (for XLA's cost analysis).

    XLA's cost analysis counts the body of a loop once, whatever its trip count, so the FLOPs of
    attention run in row blocks (``lax.map``) would be undercounted by the number of blocks; the
    same call without blocks does the same arithmetic in one piece (model FLOPs: the recomputation
    of checkpointed blocks in a backward pass is not counted). Trace caches are cleared on the way
    in and out, so neither the cost analysis nor the timed calls see the other's trace."""
    old = pi0_attention.BLOCK_LOGITS
    pi0_attention.BLOCK_LOGITS = 1 << 62
    jax.clear_caches()
    try:
        yield
    finally:
        pi0_attention.BLOCK_LOGITS = old
        jax.clear_caches()


def analyse(call, repeats: int, peak: float, cores: int, cost=None) -> dict:
    st = call.stats()
    if cost is None:
        with attention_unblocked():
            unblocked = call.stats()
        cost = unblocked["flops"], unblocked["bytes"]
    flops, nbytes = cost
    _, sec = timed(call.run, repeats)
    ops, op_ms = top_ops(call.run, st["hlo"])
    return {
        "gflop": round(flops / 1e9, 4), "gbytes": round(nbytes / 1e9, 4), "ms": round(sec * 1e3, 2),
        "gflops": round(flops / sec / 1e9, 2), "fraction_of_peak": round(flops / sec / 1e9 / peak, 4),
        "flop_per_byte": round(flops / max(nbytes, 1), 2), "cores": cores,
        "op_ms": round(op_ms, 2), "xla_temp_mb": round(st["temp_bytes"] / 1e6, 1), "top_ops": ops,
    }


def openpi_dummy_rows(repeats: int, peak: float, cores: int) -> dict:
    calls, _ = pi0_calls(OPENPI_DUMMY, 2, uncached=False)
    out = {}
    for name in ("compute_loss", "sample_cached", "train_step"):
        call = calls[name]
        jax.block_until_ready(call.run())  # compile
        if name == "sample_cached":
            with attention_unblocked():
                cost = cached_sample_cost(call)
        else:
            cost = None
        out[f"openpi_dummy/{name}"] = analyse(call, repeats, peak, cores, cost)
    return out


def toy_step_call():
    """The toy training step of ``make demo``: TINY, batch 64, flow loss + grounding head, AdamW."""
    from _common import Call

    from pi0lite.toy import normalize
    from pi0lite.toy.data import build_dataset, training_arrays
    from pi0lite.toy.text import instruction_tokenizer
    from pi0lite.toy.train import TrainConfig, Trainable, make_optimizer, make_train_step

    ds = build_dataset(100, seed=0)
    tok = instruction_tokenizer()
    norm = normalize.dataset_stats(ds)
    arrays = training_arrays(ds, tok, norm, max_token_len=TINY.max_token_len, action_dim=TINY.action_dim)
    cfg = TrainConfig(mode="flow")
    trainable = Trainable(TINY, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(trainable, make_optimizer(cfg), wrt=nnx.Param)
    graphdef, state = nnx.split((trainable, opt))
    data = {k: jnp.asarray(v) for k, v in arrays.items()}
    args = (data, jax.random.key(0), jnp.int32(1))
    return Call("toy_train_step", make_train_step(graphdef, cfg), args, state, stateful=True, graphdef=graphdef)


def child(repeats: int, skip_toy: bool) -> dict:
    """Runs pinned to one core: the one-core peak and the toy training step."""
    out = {"peak": measure_peak(repeats)}
    if not skip_toy:
        call = toy_step_call()
        jax.block_until_ready(call.run())
        out["toy/train_step_b64"] = analyse(call, max(repeats, 10), out["peak"]["gflops"], 1)
    return out


# --- report ------------------------------------------------------------------------------------

def print_report(info: dict, peaks: dict, bandwidth: dict, calls: dict) -> None:
    print(machine_line(info))
    print(f"peak float32 matmul ({PEAK_N}^3): {peaks['1core']:.1f} GFLOP/s on 1 core, {peaks['2core']:.1f} on all "
          f"cores; stream {bandwidth['1core']:.1f} / {bandwidth['2core']:.1f} GB/s\n")
    print(f"{'call':<28}{'cores':>6}{'GFLOP':>9}{'GB':>8}{'FLOP/B':>8}{'ms':>9}{'GFLOP/s':>9}{'of peak':>9}"
          f"{'op ms':>8}{'temp MB':>9}")
    for name, r in calls.items():
        print(f"{name:<28}{r['cores']:>6}{r['gflop']:>9.3f}{r['gbytes']:>8.3f}{r['flop_per_byte']:>8.1f}{r['ms']:>9.1f}"
              f"{r['gflops']:>9.1f}{r['fraction_of_peak']:>9.1%}{r['op_ms']:>8.1f}{r['xla_temp_mb']:>9.1f}")
    for name, r in calls.items():
        print(f"\n{name}: top ops of a profiler trace (sum of op time {r['op_ms']:.1f} ms per call, "
              f"{r['ms']:.1f} ms wall; ops on both cores overlap, waits and dispatch are not ops)")
        for o in r["top_ops"]:
            print(f"  {o['share']:>6.1%} {o['ms']:>8.2f} ms x{o['runs_per_call']:<4} {o['kind']:<26} {o['source'][-34:]:<34} "
                  f"{o['shape'][:40]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--skip-toy", action="store_true", help="no toy training step (faster)")
    ap.add_argument("--_child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        print(json.dumps(child(args.repeats, args.skip_toy)))
        return
    info = machine()
    if not args.json:
        print(f"measuring ({machine_line(info)}) ...", flush=True)
    cmd = [sys.executable, os.path.abspath(__file__), "--_child", "--repeats", str(args.repeats)]
    pinned = subprocess.run(cmd + (["--skip-toy"] if args.skip_toy else []), capture_output=True, text=True, env=os.environ)
    if pinned.returncode:
        sys.exit(f"pinned child failed:\n{pinned.stderr[-3000:]}")
    one = json.loads(pinned.stdout.strip().splitlines()[-1])
    both = measure_peak(args.repeats)
    peaks = {"1core": round(one["peak"]["gflops"], 2), "2core": round(both["gflops"], 2)}
    bandwidth = {"1core": round(one["peak"]["gbs"], 2), "2core": round(both["gbs"], 2)}
    calls = openpi_dummy_rows(args.repeats, peaks["2core"], os.cpu_count())
    calls.update({k: v for k, v in one.items() if k != "peak"})
    info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.json:
        print(json.dumps({"machine": info, "peak_gflops": peaks, "stream_gbs": bandwidth, "calls": calls}, indent=1))
    else:
        print_report(info, peaks, bandwidth, calls)
        print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in info['load_average_end'])}")


if __name__ == "__main__":
    main()
