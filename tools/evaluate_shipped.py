"""Re-evaluate the shipped toy policies with the demo's evaluation and record it in the assets.

    python tools/evaluate_shipped.py            # prints the table, updates pi0lite/assets/toy_results.json

Uses ``pi0lite.toy.evaluate.evaluate`` with its defaults (1,000 canonical episodes + 300 aligned
scenes, fixed seed, 95 % Wilson intervals), the same call ``make demo`` makes. The training
fields of ``toy_results.json`` (seconds, steps, seed) are kept; the rates are replaced and the
evaluation sizes are written beside them, so the README table can be read off the file.
"""

from __future__ import annotations

import json
import time

from pi0lite.toy.evaluate import evaluate, policy_fn
from pi0lite.toy.policy import ASSETS, load_shipped

# (variant, where its numbers live in toy_results.json)
ENTRIES = [("flow", ("policies", "pi0")), ("mse", ("policies", "mse")), ("noaux", ("ablation_no_aux", "pi0"))]


def main() -> None:
    path = ASSETS / "toy_results.json"
    results = json.loads(path.read_text())
    for variant, (group, name) in ENTRIES:
        policy = load_shipped(variant)
        t0 = time.perf_counter()
        metrics, _, _ = evaluate(policy_fn(policy))
        old = results[group][name]
        keep = {k: old[k] for k in ("train_seconds", "train_steps") if k in old}
        results[group][name] = {**metrics, "eval_seconds": round(time.perf_counter() - t0, 1), **keep}
        m = results[group][name]
        print(f"{variant:6s} success {m['success']:.3f} {m['success_ci95']}  coin flip {m['coin_flip_success']:.3f} "
              f"({m['coin_flip_episodes']} ep) {m['coin_flip_success_ci95']}  aligned {m['aligned_success']:.3f} "
              f"{m.get('aligned_success_ci95')}  wrong {m['wrong']:.3f}  crash {m['crash']:.3f}", flush=True)
    results["evaluation"] = {"episodes": 1000, "aligned": 300, "interval": "95 % Wilson",
                             "note": "re-evaluated with tools/evaluate_shipped.py"}
    path.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
