"""Mean ± standard deviation over seeds of the demo's results (the README's three-seed row).

    python tools/seed_table.py outputs/seed0/results.json outputs/seed1/results.json outputs/seed2/results.json \
        [--policy pi0] [--json pi0lite/assets/toy_results_seeds.json]

Each file is a ``results.json`` written by ``python -m pi0lite.demo --seed S --steps 5000``. Prints one
Markdown row per rate (mean ± sample standard deviation over the seeds, and the per-seed values)
and writes the per-seed metrics with the summary as JSON.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np

RATES = ("success", "coin_flip_success", "aligned_success", "crash", "wrong", "timeout")


def summarize(results: list[dict], policy: str) -> dict:
    """``{rate: {"mean", "std", "per_seed"}}`` (std with ddof=1; 0 for a single seed)."""
    rows = [r["policies"][policy] for r in results]
    out = {}
    for rate in RATES + ("train_seconds",):
        values = np.array([row[rate] for row in rows], float)
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[rate] = {"mean": round(float(values.mean()), 4), "std": round(std, 4),
                     "per_seed": [round(float(v), 4) for v in values]}
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+")
    p.add_argument("--policy", default="pi0")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    results = [json.loads(pathlib.Path(f).read_text()) for f in args.results]
    seeds = [r["seed"] for r in results]
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"the files repeat a seed: {seeds}")
    summary = summarize(results, args.policy)
    print(f"{args.policy}, seeds {seeds}, {results[0]['steps']} steps each")
    print("| rate | mean ± std | per seed |\n| --- | --- | --- |")
    for rate in RATES:
        s = summary[rate]
        print(f"| {rate} | {100 * s['mean']:.1f} ± {100 * s['std']:.1f} % | "
              + ", ".join(f"{100 * v:.1f}" for v in s["per_seed"]) + " |")
    out = {"policy": args.policy, "seeds": seeds, "steps": results[0]["steps"],
           "evaluation": {k: results[0]["policies"][args.policy].get(k) for k in ("episodes", "aligned_episodes")},
           "load_average": [r.get("load_average") for r in results], "summary": summary}
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return out


if __name__ == "__main__":
    main()
