"""Cost of real-time chunking: time per chunk of plain cached sampling, inference-time RTC, training-time RTC.

    python benchmarks/bench_rtc.py [--configs tiny openpi_dummy] [--batch 2] [--repeats 5] [--rounds 3] [--json]

Three calls, each ``jax.jit`` on split state (:mod:`pi0lite.compiled`), 10 Euler steps, prefix KV
cache, delay 4 and execution horizon 8 of H:

* ``plain``: ``Pi0.sample_actions``;
* ``rtc``: :func:`pi0lite.rtc.guided_sample_actions` (one extra VJP through the suffix per step);
* ``rtc_train``: :func:`pi0lite.rtc.sample_actions_with_prefix` (per-token time, no backward pass).

``--rounds`` interleaves the three calls so the ratios see the same machine load; each time is the
median of ``--repeats`` steady calls. Goals: rtc ≤ 3× plain, rtc_train ≤ 1.1× plain. The machine
line (CPU model, cores, load average at the start and the end) is printed: on a shared machine the
times are inflated and the per-round ratios are the numbers to read.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jax
from _common import NUM_STEPS, machine, machine_line, make_batch, timed
from flax import nnx

from pi0lite import compiled, rtc
from pi0lite.config import PRESETS
from pi0lite.pi0 import Pi0

DELAY, EXEC = 4, 8
GOALS = {"rtc": 3.0, "rtc_train": 1.1}


def plain(model, key, obs, prev):
    return model.sample_actions(key, obs, num_steps=NUM_STEPS)


def guided(model, key, obs, prev):
    return rtc.guided_sample_actions(model, key, obs, prev, delay=DELAY, exec_horizon=EXEC, num_steps=NUM_STEPS)


def prefixed(model, key, obs, prev):
    return rtc.sample_actions_with_prefix(model, key, obs, prev, delay=DELAY, num_steps=NUM_STEPS)


def bench(name: str, batch: int, repeats: int, rounds: int) -> dict:
    cfg = PRESETS[name]
    model = Pi0(cfg, rngs=nnx.Rngs(0))
    obs, prev = make_batch(cfg, batch)
    key = jax.random.key(0)
    graphdef, state = nnx.split(model)
    calls = {n: compiled.pure(graphdef, f) for n, f in (("plain", plain), ("rtc", guided), ("rtc_train", prefixed))}
    out = {"compile_s": {}, "ms_rounds": {n: [] for n in calls}}
    for n, f in calls.items():
        out["compile_s"][n] = round(timed(lambda f=f: f(state, key, obs, prev), 0)[0], 2)
    for _ in range(rounds):
        for n, f in calls.items():
            out["ms_rounds"][n].append(round(timed(lambda f=f: f(state, key, obs, prev), repeats)[1] * 1e3, 2))
    r = out["ms_rounds"]
    for n in calls:
        out[f"{n}_ms"] = round(statistics.median(r[n]), 2)
    for n in ("rtc", "rtc_train"):
        out[f"ratio_{n}"] = [round(a / b, 3) for a, b in zip(r[n], r["plain"])]
    return out


def print_table(name: str, res: dict) -> None:
    print(f"\n{name}: time per chunk ({NUM_STEPS} Euler steps, prefix KV cache, delay {DELAY}, s = {EXEC})")
    print(f"{'call':<11}{'compile s':>10}{'median ms':>11}  rounds ms")
    for n, ms in res["ms_rounds"].items():
        print(f"{n:<11}{res['compile_s'][n]:>10.1f}{res[n + '_ms']:>11.1f}  {' / '.join(f'{m:.1f}' for m in ms)}")
    for n, goal in GOALS.items():
        ratios = res[f"ratio_{n}"]
        print(f"{n} / plain per round: {', '.join(f'{x:.2f}' for x in ratios)} (median "
              f"{statistics.median(ratios):.2f}; goal <= {goal})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["tiny", "openpi_dummy"], choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print only a JSON object")
    args = parser.parse_args()
    start = machine()
    results = {name: bench(name, args.batch, args.repeats, args.rounds) for name in args.configs}
    end = machine()
    if args.json:
        print(json.dumps({"machine": start, "load_average_end": end["load_average"], **results}, indent=1))
        return
    print(machine_line(start))
    for name, res in results.items():
        print_table(name, res)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in end['load_average'])} (1/5/15 min)")


if __name__ == "__main__":
    main()
