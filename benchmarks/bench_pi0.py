"""Speed and memory of pi0lite's Pi0 on this machine: loss, sampling (cached / uncached), train step.

    python benchmarks/bench_pi0.py [--configs openpi_dummy tiny] [--repeats 5] [--rounds 3] [--no-remat] [--json]

The train step runs twice: as pi0lite's default (layers unrolled, no remat) and as
``train_step_remat`` (layers under ``lax.scan`` + ``jax.checkpoint``, openpi's ``nn.scan`` +
``nn.remat``: the backward pass recomputes each layer), so its time and memory compare like for like.

Each call runs through ``jax.jit`` on split state (``pi0lite.compiled``, what the hot paths use)
and, for comparison, through ``nnx.jit`` with the module as an argument. ``--rounds`` interleaves
the calls (loss, cached, uncached, train, loss, ...) so the ratios see the same machine load;
every timing is the median of ``--repeats`` steady calls. Memory: the process's peak RSS over each
call's steady runs (the high-water mark reset after freed heap is handed back to the OS, so what
compiling left in the allocator does not count), the peak while building and compiling, and XLA's
argument + temp bytes of the compiled function. Targets: cached
10-step sampling ≤ 0.9× one compute_loss pass on OPENPI_DUMMY (≤ 1.0× on TINY), ≥ 4× faster
than uncached. Only numbers measured in this run are printed (openpi's are in the README).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine, machine_line, peak_rss_gb, pi0_calls, reset_peak_rss, timed

from pi0lite.config import PRESETS

GOALS = {"openpi_dummy": 0.9, "tiny": 1.0}


def bench(name: str, batch: int, repeats: int, rounds: int, remat: bool = True) -> dict:
    cfg = PRESETS[name]
    gc.collect()
    reset_peak_rss()
    calls, via_nnx = pi0_calls(cfg, batch, remat=remat)
    out = {"compile_s": {}, "ms_rounds": {}, "call_peak_rss_gb": {}, "xla_mb": {}, "nnx_jit_ms": {}}
    for call in calls.values():
        st = call.stats()
        out["xla_mb"][call.name] = {k: round(st[k + "_bytes"] / 1e6, 2) for k in ("argument", "output", "temp")}
        first, _ = timed(call.run, 0)
        out["compile_s"][call.name] = round(first, 2)
        out["ms_rounds"][call.name] = []
    out["peak_rss_with_compile_gb"] = round(peak_rss_gb(), 3)  # building, compiling and first calls
    for _ in range(rounds):
        for call in calls.values():
            reps = 1 if call.name == "sample_uncached" else repeats
            reset_peak_rss()
            _, steady = timed(call.run, reps)
            out["call_peak_rss_gb"][call.name] = max(out["call_peak_rss_gb"].get(call.name, 0.0), round(peak_rss_gb(), 3))
            out["ms_rounds"][call.name].append(round(steady * 1e3, 2))
    for call_name, thunk in via_nnx.items():
        out["nnx_jit_ms"][call_name] = round(timed(thunk, repeats)[1] * 1e3, 2)
    for call_name, ms in out["ms_rounds"].items():
        out[f"{call_name}_ms"] = round(statistics.median(ms), 2)
    out["peak_rss_gb"] = max(out["call_peak_rss_gb"].values())
    r = out["ms_rounds"]
    out["ratio_cached_over_loss"] = [round(c / l, 3) for c, l in zip(r["sample_cached"], r["compute_loss"])]
    out["ratio_uncached_over_cached"] = [round(u / c, 2) for u, c in zip(r["sample_uncached"], r["sample_cached"])]
    return out


def print_table(name: str, res: dict) -> None:
    print(f"\n{name}")
    print(f"{'call':<17}{'compile s':>10}{'split ms':>10}  {'rounds ms':<26}{'nnx.jit ms':>11}"
          f"{'peak RSS GB':>12}{'XLA arg MB':>11}{'temp MB':>9}")
    for call, ms in res["ms_rounds"].items():
        nnx_ms = res["nnx_jit_ms"].get(call)
        print(f"{call:<17}{res['compile_s'][call]:>10.1f}{res[call + '_ms']:>10.1f}"
              f"  {' / '.join(f'{m:.1f}' for m in ms):<26}{'' if nnx_ms is None else f'{nnx_ms:.1f}':>11}"
              f"{res['call_peak_rss_gb'][call]:>12.2f}{res['xla_mb'][call]['argument']:>11.1f}"
              f"{res['xla_mb'][call]['temp']:>9.1f}")
    ratios = res["ratio_cached_over_loss"]
    goal = GOALS.get(name)
    print(f"cached sample / compute_loss per round: {', '.join(f'{x:.2f}' for x in ratios)} "
          f"(spread {min(ratios):.2f}-{max(ratios):.2f}{'' if goal is None else f'; goal <= {goal}'})")
    print(f"uncached / cached sample per round    : {', '.join(f'{x:.1f}' for x in res['ratio_uncached_over_cached'])}"
          " (goal >= 4)")
    print(f"peak RSS of the process over these calls' steady runs (after compiling): {res['peak_rss_gb']:.2f} GB; "
          f"while building and compiling them: {res['peak_rss_with_compile_gb']:.2f} GB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["openpi_dummy", "tiny"], choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-remat", action="store_true", help="skip train_step_remat (layers under scan + remat)")
    parser.add_argument("--json", action="store_true", help="print only a JSON object {config: {...}}")
    args = parser.parse_args()
    info = machine()
    header = f"{machine_line(info)}; batch {args.batch}, float32, {args.rounds} rounds x {args.repeats} repeats"
    print(header, file=sys.stderr if args.json else sys.stdout, flush=True)
    results = {}
    for name in args.configs:
        results[name] = bench(name, args.batch, args.repeats, args.rounds, remat=not args.no_remat)
        if not args.json:
            print_table(name, results[name])
    end_load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    if args.json:
        for res in results.values():
            res["machine"] = info
        print(json.dumps(results, indent=1))
    else:
        print(f"\nload average at the end: {end_load}")


if __name__ == "__main__":
    main()
