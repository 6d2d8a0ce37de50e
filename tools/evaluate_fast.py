"""Evaluate the toy pi0-FAST policy next to flow pi0 and record it in the assets.

    python tools/evaluate_fast.py [--policy DIR] [--ship]   # default DIR: the shipped pi0lite/assets/toy_policy_fast

1. Closed loop with the demo's evaluation (``pi0lite.toy.evaluate.evaluate``: 1,000 canonical
   episodes + 300 aligned scenes, fixed seed, 95 % Wilson intervals): success, coin-flip and
   aligned success, crash / wrong / timeout, and the **invalid-decode rate** (chunks whose
   generated tokens do not decode to a 16 × 2 chunk, over every chunk decoded in the evaluation:
   every replan of every episode in the batch, finished ones included).
2. Inference time per chunk, batch 1 (latency) and batch 64, best of 20 after a warm-up: pi0-FAST
   (greedy decoding with the KV cache) against the shipped flow pi0 (prefix + 10 Euler steps with
   the KV cache), the same observation, one after the other; with the machine's load.
3. ``--ship``: copies ``DIR`` into ``pi0lite/assets/toy_policy_fast`` (atomically, checked first)
   and writes everything to ``pi0lite/assets/toy_fast_results.json`` (always written to
   ``DIR/../fast_results.json``).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import time

import numpy as np


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", default=None, help="pi0-FAST policy directory (default: the shipped one)")
    p.add_argument("--episodes", type=int, default=1000)
    p.add_argument("--aligned", type=int, default=300)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--ship", action="store_true")
    args = p.parse_args(argv)

    from pi0lite.toy import env as toy, files
    from pi0lite.toy.evaluate import eval_scenes, evaluate, policy_fn
    from pi0lite.toy.policy import ASSETS, VARIANTS, Policy, load_shipped, shipped_results
    from pi0lite.toy.timing import machine, time_per_chunk

    src = pathlib.Path(args.policy) if args.policy else ASSETS / VARIANTS["fast"]
    fast = Policy.load(src)
    if fast.mode != "fast":
        raise SystemExit(f"{src} holds a {fast.mode!r} policy, not pi0-FAST")
    start = machine()
    t0 = time.perf_counter()
    metrics, _, _ = evaluate(policy_fn(fast), num_episodes=args.episodes, num_aligned=args.aligned)
    metrics["eval_seconds"] = round(time.perf_counter() - t0, 1)
    part = fast.fast_part
    metrics["decoded_chunks"], metrics["invalid_chunks"] = part.chunks, part.invalid
    metrics["invalid_decode_rate"] = part.invalid / max(part.chunks, 1)
    for k in ("train_seconds", "train_steps", "batch_size", "fast_tokens_mean", "fast_tokens_max"):
        if k in fast.meta:
            metrics[k] = fast.meta[k]
    print(f"pi0-FAST success {metrics['success']:.3f} {metrics['success_ci95']}  coin flip "
          f"{metrics['coin_flip_success']:.3f} {metrics['coin_flip_success_ci95']}  aligned "
          f"{metrics['aligned_success']:.3f} {metrics['aligned_success_ci95']}  crash {metrics['crash']:.3f}  "
          f"wrong {metrics['wrong']:.3f}  timeout {metrics['timeout']:.3f}  invalid decodes "
          f"{part.invalid}/{part.chunks}  ({metrics['eval_seconds']:.0f} s)", flush=True)

    flow = load_shipped("flow")
    scenes, _ = eval_scenes(64, 0)
    obs = toy.BatchedToyEnv().reset(scenes)
    timing = {"machine_at_start": start, "repeats": args.repeats}
    for batch in (1, 64):
        args_b = obs["image"][:batch], obs["state"][:batch], list(obs["instruction"][:batch])
        for name, policy in (("pi0_fast", fast), ("pi0", flow)):
            t = time_per_chunk(policy, *args_b, repeats=args.repeats)
            timing[f"{name}_batch{batch}_ms"] = round(1000 * t["best_s"], 2)
            timing[f"{name}_batch{batch}_median_ms"] = round(1000 * t["median_s"], 2)
    timing["machine_at_end"] = machine()
    print("time per chunk (best of {repeats}): ".format(**timing)
          + ", ".join(f"{k} {v}" for k, v in timing.items() if k.endswith("_ms")), flush=True)
    history = src.parent / "history.npy"  # the job's loss history, mean of every 25 steps
    if history.exists():
        h = np.load(history)
        h = h[: len(h) // 25 * 25].reshape(-1, 25, h.shape[1]).mean(1)
        metrics["history_every_25"] = np.round(h, 4).tolist()
    results = {"pi0_fast": metrics, "timing": timing, "pi0": shipped_results()["policies"]["pi0"],
               "note": "pi0 row: the shipped flow policy's numbers from toy_results.json (same evaluation)"}
    text = json.dumps(results, indent=2) + "\n"
    files.atomic_write_text(src.parent / "fast_results.json", text)
    if args.ship:
        Policy.load(src)  # only a complete, valid policy is shipped
        if src.resolve() != (ASSETS / VARIANTS["fast"]).resolve():
            with files.atomic_directory(ASSETS / VARIANTS["fast"]) as tmp:
                for f in sorted(src.iterdir()):
                    (shutil.copytree if f.is_dir() else shutil.copy2)(f, tmp / f.name)
        files.atomic_write_text(ASSETS / "toy_fast_results.json", text)
        print(f"shipped to {ASSETS / VARIANTS['fast']} and {ASSETS / 'toy_fast_results.json'}")
    return results


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
