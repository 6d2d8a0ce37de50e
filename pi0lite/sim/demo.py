"""``make sim-demo``: Meta-World demonstrations, pi0 and the MSE baseline, per-task evaluation.

    python -m pi0lite.sim.demo --out outputs/sim [--steps 4000] [--episodes 50] [--eval-episodes 50]

1. Collects ``--episodes`` scripted-expert episodes per task through the adapter (cached in
   ``--cache``; a second run reuses them), one worker process per core.
2. Trains pi0 (flow matching) and the MSE baseline on the same network **at the same time, one
   process per core** (checkpoints every 250 steps: re-running resumes an interrupted demo).
3. Evaluates pi0 and MSE (again one process per core) and the experts on the same fixed
   variations (``--eval-episodes`` per task, 150-step cap) and writes ``results.json``, ``success_by_task.png`` and one GIF per task
   (``gifs/<task>.gif``, pi0's first evaluation episode) to ``--out``.

``--ship`` copies the trained pi0 policy (and the results) into ``pi0lite/assets/``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

NAMES = {"pi0": "flow", "mse": "mse"}


def _pin(core: int):
    return lambda: os.sched_setaffinity(0, {core})


def run_jobs(args, out: pathlib.Path, cmds: list[list[str]], what: str) -> None:
    """Run the commands at once, pinned one per core (one after the other with a single core)."""
    cores = sorted(os.sched_getaffinity(0))
    parallel = len(cores) >= len(cmds)
    procs = []
    for i, cmd in enumerate(cmds):
        env = dict(os.environ)
        if parallel:  # one core each: keep XLA from starting a second compute thread on it
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
            env["LP_NUM_THREADS"] = "1"  # llvmpipe: render on this core only
            procs.append(subprocess.Popen(cmd, env=env, preexec_fn=_pin(cores[i])))
        elif subprocess.call(cmd, env=env):
            raise SystemExit(f"{what} failed: {' '.join(cmd)}")
    for proc in procs:
        if proc.wait():
            raise SystemExit(f"{what} failed (exit {proc.returncode}): {' '.join(proc.args)}")


def train_both(args, data_path: pathlib.Path, out: pathlib.Path) -> None:
    """The flow and MSE jobs at once, one process per core."""
    run_jobs(args, out, [[sys.executable, "-m", "pi0lite.sim.train", "--data", str(data_path), "--out", str(out / name),
                          "--mode", mode, "--steps", str(args.steps), "--batch-size", str(args.batch_size),
                          "--seed", str(args.seed), "--position", str(i)] + (["--overwrite"] if args.overwrite else [])
                         for i, (name, mode) in enumerate(NAMES.items())], what="training")


def evaluate_one(args, out: pathlib.Path, name: str) -> None:
    """One policy's evaluation (its own process): ``OUT/NAME/eval.json``, and the GIFs for pi0."""
    from pi0lite.sim.evaluate import evaluate, policy_fn
    from pi0lite.sim.metaworld import TASKS
    from pi0lite.sim.policy import SimPolicy

    policy = SimPolicy.load(out / name / "policy")
    r = evaluate(policy_fn(policy), TASKS, episodes=args.eval_episodes, record=1 if name == "pi0" else 0,
                 execute=args.execute or policy.meta.get("execute", 4), progress=False)
    result = {**r.summary(), "train_seconds": policy.meta["train_seconds"], "eval_seconds": round(r.seconds, 1),
              "outcomes": {t: r.success[k].tolist() for k, t in enumerate(TASKS)}}
    if name == "pi0":
        write_gifs(r.frames, out / "gifs")
    from pi0lite.toy.files import atomic_write_text

    atomic_write_text(out / name / "eval.json", json.dumps(result, indent=1))
    print(f"{name}: mean success {result['mean_success']:.0%} ({r.seconds:.0f} s)", flush=True)


def write_gifs(frames: dict, out: pathlib.Path, scale: int = 3) -> None:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    for task, episodes in frames.items():
        if not episodes:
            continue
        ims = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in episodes[0]]
        ims[0].save(out / f"{task}.gif", save_all=True, append_images=ims[1:], duration=50, loop=0)


def draw(results: dict, out: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pi0lite.course.viz.sim import plot_task_success

    fig, ax = plt.subplots(figsize=(9, 3.6))
    errors = {name: {t: (v["success"] - v["interval"][0], v["interval"][1] - v["success"]) for t, v in r["tasks"].items()}
              for name, r in results.items()}
    plot_task_success({name: {t: v["success"] for t, v in r["tasks"].items()} for name, r in results.items()}, ax=ax,
                      episodes=next(iter(results.values()))["tasks"], errors=errors,
                      title="Meta-World success per task (95 % Wilson intervals)")
    fig.tight_layout()
    fig.savefig(out / "success_by_task.png", dpi=120)
    plt.close(fig)


def ship(out: pathlib.Path) -> None:
    """Copy the pi0 policy and the results into ``pi0lite/assets``, each replaced atomically.

    The new policy is loaded first (only a complete one is shipped) and copied beside the old one,
    which is replaced only when the copy is complete: a kill or a full disk keeps the old assets.
    """
    from pi0lite.sim.policy import ASSETS, VARIANTS, SimPolicy
    from pi0lite.toy import files

    for name, mode in NAMES.items():
        if mode == "flow":
            src = out / name / "policy"
            SimPolicy.load(src)
            with files.atomic_directory(ASSETS / VARIANTS[mode]) as tmp:
                for f in sorted(src.iterdir()):
                    shutil.copy2(f, tmp / f.name)
                    files.stage(f"copied {f.name}")
            print(f"shipped {name} to {ASSETS / VARIANTS[mode]}")
    files.atomic_write_bytes(ASSETS / "sim_results.json", (out / "results.json").read_bytes())


def phase(timings: dict, name: str, t0: float) -> None:
    timings[name] = {"seconds": round(time.perf_counter() - t0, 1), "load_average": [round(x, 2) for x in os.getloadavg()]}
    print(f"[{name}] {timings[name]['seconds']:.0f} s (load average {timings[name]['load_average']})", flush=True)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="outputs/sim")
    p.add_argument("--cache", default=None, help="demonstration cache folder (default: OUT/cache)")
    p.add_argument("--episodes", type=int, default=50, help="expert episodes per task")
    p.add_argument("--steps", type=int, default=4000, help="optimiser steps per policy (cosine ends here)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-episodes", type=int, default=50, help="evaluation episodes per task (>= 20)")
    p.add_argument("--execute", type=int, default=None, help="actions executed per replan (default: the policy's)")
    p.add_argument("--ship", action="store_true", help="copy the trained pi0 policy into pi0lite/assets/")
    p.add_argument("--overwrite", action="store_true",
                   help="delete checkpoints of other settings in --out (otherwise such a run is refused)")
    p.add_argument("--eval-only", choices=list(NAMES), help=argparse.SUPPRESS)  # internal: one evaluation job
    args = p.parse_args(argv)
    if args.eval_only:
        return evaluate_one(args, pathlib.Path(args.out), args.eval_only)

    from pi0lite.toy.files import DirectoryInUse, RunLock

    out = pathlib.Path(args.out)
    try:
        lock = RunLock(out).acquire()  # a second sim demo into the same --out stops at once
    except (DirectoryInUse, OSError) as e:
        raise SystemExit(str(e)) from None
    try:
        return run(args, out)
    finally:
        lock.release()


def run(args, out: pathlib.Path) -> dict:
    from pi0lite.sim import data as sim_data
    from pi0lite.sim.metaworld import TASKS, MetaWorldEnv
    from pi0lite.toy.files import atomic_write_text

    cache = pathlib.Path(args.cache) if args.cache else out / "cache"
    timings, start = {}, time.perf_counter()

    t0 = time.perf_counter()
    ds = sim_data.load_or_collect(cache, TASKS, episodes=args.episodes, seed=args.seed)
    data_path = sim_data.cache_path(cache, TASKS, episodes=args.episodes, seed=args.seed)
    print(f"data: {len(ds)} frames, {ds.meta['kept_episodes']} episodes kept, failures {ds.meta['failures']}")
    data_meta = {k: ds.meta[k] for k in ("kept_episodes", "failures", "episodes", "noise")}
    del ds
    phase(timings, "collect", t0)

    t0 = time.perf_counter()
    print(f"training pi0 and mse for {args.steps} steps each ...", flush=True)
    train_both(args, data_path, out)
    phase(timings, "train", t0)

    from pi0lite.sim.evaluate import evaluate

    t0 = time.perf_counter()
    run_jobs(args, out, [[sys.executable, "-m", "pi0lite.sim.demo", "--out", str(out), "--eval-only", name,
                          "--eval-episodes", str(args.eval_episodes)] + (["--execute", str(args.execute)] if args.execute else [])
                         for name in NAMES], what="evaluation")
    results = {name: json.loads((out / name / "eval.json").read_text()) for name in NAMES}
    envs = [MetaWorldEnv(t, render=False) for t in TASKS]
    r = evaluate("expert", TASKS, episodes=args.eval_episodes, envs=envs)
    for env in envs:
        env.close()
    results["expert"] = {**r.summary(), "train_seconds": 0.0, "eval_seconds": round(r.seconds, 1)}
    phase(timings, "evaluate", t0)

    t0 = time.perf_counter()
    draw(results, out)
    phase(timings, "figures", t0)
    total = time.perf_counter() - start
    summary = {"policies": results, "total_seconds": round(total, 1), "phases": timings, "steps": args.steps,
               "seed": args.seed, "data": data_meta, "eval_episodes": args.eval_episodes, "cpu_count": os.cpu_count()}
    atomic_write_text(out / "results.json", json.dumps(summary, indent=1))
    print_table(results)
    print(f"\ntotal {total / 60:.1f} min; results.json, success_by_task.png and gifs/ in {out}/")
    if args.ship:
        ship(out)
    return summary


def print_table(results: dict) -> None:
    """Successes / episodes and the 95 % Wilson interval per task and policy."""
    tasks = list(next(iter(results.values()))["tasks"])

    def cell(r: dict) -> str:
        low, high = r["interval"]
        return f"{round(r['success'] * r['episodes'])}/{r['episodes']} [{low:.2f}, {high:.2f}]"

    print("\n" + f"{'task':>24} " + " ".join(f"{n:>19}" for n in results))
    for t in tasks:
        print(f"{t:>24} " + " ".join(f"{cell(r['tasks'][t]):>19}" for r in results.values()))
    print(f"{'mean':>24} " + " ".join(f"{r['mean_success']:>7.1%} [{r['mean_interval'][0]:.2f}, {r['mean_interval'][1]:.2f}]"
                                     for r in results.values()))


if __name__ == "__main__":
    main()
