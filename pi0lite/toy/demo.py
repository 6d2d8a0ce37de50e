"""``make demo``: train pi0 (flow) and the MSE baseline on the toy task, evaluate, draw.

    python -m pi0lite.demo --out outputs [--steps 3000] [--seed 0] [--image-size 32] [--policies pi0,mse]

1. Trains the chosen policies (``--policies``, default ``pi0,mse``: the flow policy and the MSE
   baseline; :mod:`pi0lite.toy.jobs` lists every registered one) **concurrently, one process per
   core** (pinned with ``os.sched_setaffinity``; about 1.35× the throughput of running them one
   after the other), in waves of as many jobs as there are cores. Each job first builds the
   training data itself (2,500 expert episodes, ~148k chunks, the tokenizer and the
   normalisation stats: seeded, the same bytes in every job, nothing written to disk).
   Training checkpoints every 500 steps: re-running resumes an interrupted demo.
2. Each job then evaluates its policy on its own core, on 1,000 episodes plus 300 aligned scenes
   (:mod:`pi0lite.toy.job_eval`); the demo prints a table and writes ``results.json`` (every rate
   with its 95 % Wilson interval) first, then ``loss_curves.png``, ``rollouts_coin_flip.png``,
   ``rollouts_overview.png``, ``attn_mask.png`` (and ``rollouts.gif`` with ``--gif``) to ``--out``.

The run directory is locked while the demo runs (a second demo into it stops at once) and records
its settings in ``run.json``: re-running with the same settings resumes, with different ones is
refused unless ``--overwrite`` (which deletes the previous run's checkpoints first).

``--ablation`` adds ``pi0_noaux`` (the flow policy without the grounding loss; reported under
``policies.pi0_noaux`` and, as before, ``ablation_no_aux.pi0``); ``--ship`` copies the trained policies and results into ``pi0lite/assets``,
each directory replaced atomically (the shipped checkpoints were made with
``--steps 5000 --seed 0 --ablation --ship``; the default became 3,000 steps afterwards, which still
meets the demo's targets and takes 5.3 minutes instead of 11.8 on the 2-core machine). Exact
reproduction of the shipped numbers needs the one-core-per-job pinning below (training differs in
the last bits between one and two cores).
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

from pi0lite.toy.demo_figures import draw
from pi0lite.toy.expert import TASKS
from pi0lite.toy.jobs import DEFAULT, JOBS, Job, parse_policies

#: Settings that decide the trained policies (``run.json``); evaluation settings may change freely.
#: (``task`` is recorded too when it is not ``"default"``, so the run.json of earlier runs still resumes.)
RUN_FIELDS = ("steps", "seed", "image_size", "episodes", "batch_size", "no_aux")


def _pin(core: int):
    return lambda: os.sched_setaffinity(0, {core})


def usable_cores() -> list[int]:
    """The cores this process may run on (``os.cpu_count`` where affinity is unknown, e.g. macOS)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def launch(args, out: pathlib.Path, jobs: list[Job]) -> None:
    """Run the training jobs pinned one per core, in waves of ``#cores`` (one by one with 1 core).

    Without ``os.sched_setaffinity`` (macOS) the jobs still run in parallel, unpinned.
    """
    cores = usable_cores()
    can_pin = hasattr(os, "sched_setaffinity")
    parallel = len(cores) >= 2 and not args.sequential
    wave = len(cores) if parallel else 1
    for start in range(0, len(jobs), wave):
        procs, batch = [], jobs[start : start + wave]
        pinned = parallel and len(batch) > 1  # a job alone gets every core
        for i, job in enumerate(batch):
            cmd = [sys.executable, *job.command(out=str(out), steps=args.steps, seed=args.seed,
                                                batch_size=args.batch_size, image_size=args.image_size, position=i,
                                                aux_scale=0.0 if args.no_aux else 1.0, episodes=args.episodes,
                                                eval_episodes=args.eval_episodes, aligned=args.aligned)]
            if getattr(args, "curve_every", 0):
                cmd += ["--curve-every", str(args.curve_every), "--curve-episodes", str(args.curve_episodes)]
            env = dict(os.environ)
            if pinned:  # one core each: keep XLA from spawning a second compute thread on it
                env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
            pin = _pin(cores[i]) if pinned and can_pin else None
            procs.append((job.name, subprocess.Popen(cmd, env=env, preexec_fn=pin)))
        for name, proc in procs:
            if proc.wait():
                raise SystemExit(f"training {name} failed (exit {proc.returncode})")


def evaluate_all(args, out: pathlib.Path, names: list[str]) -> tuple[dict, dict, dict]:
    """``(metrics, rollouts, loss histories)`` per job name; ``rollouts[name] = (policy, canonical, aligned)``.

    Uses each job's own evaluation (:mod:`pi0lite.toy.job_eval`, run by the worker right after
    training) when it matches these settings and the saved policy; evaluates here otherwise."""
    import numpy as np

    from pi0lite.toy import job_eval
    from pi0lite.toy.policy import Policy

    results, rollouts = {}, {}
    task = getattr(args, "task", "default")
    for name in names:
        policy = Policy.load(out / name / "policy")
        how = dict(num_episodes=args.eval_episodes, num_aligned=args.aligned, image_size=args.image_size, task=task)
        found = job_eval.load(out / name, **how)
        metrics, main, tied = found if found is not None else job_eval.measure(policy, **how)
        metrics["train_seconds"] = round(policy.meta.get("train_seconds", float("nan")), 1)
        metrics["train_steps"] = policy.meta.get("train_steps")
        curve = out / name / "curve.json"
        if curve.exists():  # --curve-every: success during training and the first step at >= 80 %
            metrics["curve"] = json.loads(curve.read_text())
            metrics["steps_to_80"] = metrics["curve"]["steps_to_80"]
        results[name], rollouts[name] = metrics, (policy, main, tied)
        where = "by its training job" if found is not None else "here"
        print(f"evaluated {name} in {metrics['eval_seconds']:.0f} s ({where})", flush=True)
    histories = {n: np.load(out / n / "history.npy") for n in names}
    return results, rollouts, histories


def print_table(results: dict) -> None:
    cols = ["success", "coin_flip_success", "aligned_success", "crash", "wrong", "timeout"]
    print("\n" + f"{'policy':>10} " + " ".join(f"{c:>22}" for c in cols) + f" {'train_seconds':>14}")
    for name, m in results.items():
        cells = []
        for c in cols:
            lo, hi = m.get(f"{c}_ci95", [float("nan")] * 2)
            cells.append(f"{m.get(c, float('nan')):6.1%} [{lo:5.1%},{hi:6.1%}]" if c in m else f"{'-':>22}")
        print(f"{name:>10} " + " ".join(f"{x:>22}" for x in cells) + f" {m['train_seconds']:14.0f}")
    print("(95 % Wilson intervals in brackets)")


def ship(out: pathlib.Path, jobs: list[Job], results_name: str | None = "toy_results.json") -> None:
    """Copy the trained policies (and the results, as ``assets/<results_name>``; None: not the
    results) into ``pi0lite/assets``.

    Each policy directory is replaced atomically (a complete copy is made beside it, then renamed
    into place): a kill or a failed copy leaves the previous assets intact.
    """
    from pi0lite.toy import files
    from pi0lite.toy.policy import ASSETS, Policy

    for job in jobs:
        src = out / job.name / "policy"
        if job.asset is not None and (src / "params.npz").exists():
            Policy.load(src)  # only a complete, valid policy is shipped
            with files.atomic_directory(ASSETS / job.asset) as tmp:
                for f in sorted(src.iterdir()):
                    (shutil.copytree if f.is_dir() else shutil.copy2)(f, tmp / f.name)  # pi0-FAST has fast/
                    files.stage(f"copied {f.name}")
            print(f"shipped {job.name} to {ASSETS / job.asset}")
    if results_name is not None:
        files.atomic_write_bytes(ASSETS / results_name, (out / "results.json").read_bytes())


def check_run(args, out: pathlib.Path) -> None:
    """Resume a run with the same settings; refuse one with others unless ``--overwrite``."""
    from pi0lite.toy import files

    wanted = {k: getattr(args, k) for k in RUN_FIELDS}
    if getattr(args, "task", "default") != "default":
        wanted["task"] = args.task
    record = out / "run.json"
    if record.exists():
        saved = json.loads(record.read_text())
        wrong = files.describe_differences(saved, wanted)
        reason = f"a run with different settings (saved vs requested: {'; '.join(wrong)})" if wrong else None
    else:
        old = [n for n in JOBS if (out / n).exists()]
        reason = f"a run of unknown settings ({', '.join(old)}/ but no run.json)" if old else None
    if reason and not args.overwrite:
        raise SystemExit(f"{out} holds {reason}.\nRe-run with the same settings to resume it, choose another --out, "
                         "or pass --overwrite to delete it and start afresh.")
    if reason:
        print(f"--overwrite: deleting the previous run in {out}", flush=True)
        for n in JOBS:
            shutil.rmtree(out / n, ignore_errors=True)
        for f in ("results.json", "data.npz"):
            (out / f).unlink(missing_ok=True)
    elif record.exists():
        print(f"resuming the run in {out}", flush=True)
    files.atomic_write_text(record, json.dumps(wanted, indent=1))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="outputs")
    p.add_argument("--steps", type=int, default=3000,
                   help="optimiser steps per policy (cosine ends here; the shipped policies: 5000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=32, choices=[32, 64])
    p.add_argument("--episodes", type=int, default=2500, help="expert episodes in the training data")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--eval-episodes", type=int, default=1000)
    p.add_argument("--aligned", type=int, default=300, help="aligned (exact-tie) evaluation scenes")
    p.add_argument("--no-aux", action="store_true", help="ablation: no grounding loss for either policy")
    p.add_argument("--policies", default=",".join(DEFAULT),
                   help="comma-separated policies to train and evaluate; known: " + ", ".join(JOBS))
    p.add_argument("--ablation", action="store_true",
                   help="also train pi0_noaux, the flow policy without the grounding loss")
    p.add_argument("--curve-every", type=int, default=0,
                   help="evaluate each policy every N training steps on --curve-episodes scenes and report "
                        "steps_to_80 (0: off)")
    p.add_argument("--curve-episodes", type=int, default=100)
    p.add_argument("--sequential", action="store_true", help="train one after the other on all cores")
    p.add_argument("--gif", action="store_true", help="also write rollouts.gif")
    p.add_argument("--ship", action="store_true", help="copy the trained policies into pi0lite/assets/")
    p.add_argument("--overwrite", action="store_true", help="replace a previous run with other settings in --out")
    p.add_argument("--rtc", action="store_true", help="instead of training: the real-time chunking sweep of the "
                   "shipped policies under inference delay (pi0lite.toy.rtc_demo; writes results.json's rtc sections)")
    p.add_argument("--task", default=None, choices=sorted(TASKS),
                   help="the expert variant: training data of the policies (default: theirs, see --policies) or, "
                        "with --rtc, the sweep's variant ('fork': faster expert deciding its side late)")
    p.add_argument("--rtc-episodes", type=int, default=200, help="--rtc: canonical scenes (plus --rtc-aligned)")
    p.add_argument("--rtc-aligned", type=int, default=100, help="--rtc: aligned (exact-tie) scenes")
    args = p.parse_args(argv)
    try:
        args.jobs = parse_policies(args.policies)
    except ValueError as e:
        p.error(str(e))
    if args.ablation and "pi0_noaux" not in [j.name for j in args.jobs]:
        args.jobs.append(JOBS["pi0_noaux"])
    if not args.rtc:
        tasks = {j.task for j in args.jobs}
        per_job = ", ".join(f"{j.name}: {j.task}" for j in args.jobs)
        if len(tasks) > 1:
            p.error(f"one run trains on one task, but these policies need {len(tasks)} ({per_job}); "
                    "run them separately" + (" (--ablation adds pi0_noaux, a default-task policy)" if args.ablation else ""))
        if args.task is not None and {args.task} != tasks:
            p.error(f"--task {args.task} does not match the policies' training task ({per_job})")
        args.task = tasks.pop()
    from pi0lite.toy.files import DirectoryInUse, RunLock

    out = pathlib.Path(args.out)
    try:
        lock = RunLock(out).acquire()
    except (DirectoryInUse, OSError) as e:
        raise SystemExit(str(e)) from None
    try:
        if args.rtc:
            from pi0lite.toy import rtc_demo

            return rtc_demo.run(out, num_episodes=args.rtc_episodes, num_aligned=args.rtc_aligned, ship=args.ship,
                                task=args.task or "default")
        return run(args, out)
    finally:
        lock.release()


def run(args, out: pathlib.Path) -> dict:
    t0 = time.perf_counter()
    check_run(args, out)
    jobs = args.jobs
    print(f"training {len(jobs)} policies ({', '.join(j.name for j in jobs)}) for {args.steps} steps each, "
          f"each job building its data ({args.episodes} episodes) and evaluating its policy ...", flush=True)
    launch(args, out, jobs)
    (out / "data.npz").unlink(missing_ok=True)  # ~450 MB, if an earlier version of the demo left one
    results, rollouts, histories = evaluate_all(args, out, [job.name for job in jobs])
    total = time.perf_counter() - t0
    summary = {"policies": results, "total_seconds": round(total, 1), "steps": args.steps, "seed": args.seed,
               "episodes": args.episodes, "aux": not args.no_aux, "load_average": os.getloadavg()}
    if "pi0_noaux" in results:  # where the ablation was reported before --policies existed
        summary["ablation_no_aux"] = {"pi0": results["pi0_noaux"]}
    from pi0lite.toy.files import atomic_write_text

    atomic_write_text(out / "results.json", json.dumps(summary, indent=1))  # before the figures
    print_table(results)
    t1 = time.perf_counter()
    draw(args, out, histories, rollouts)
    print(f"figures in {time.perf_counter() - t1:.0f} s", flush=True)
    print(f"\ntotal {total / 60:.1f} min; figures and results.json in {out}/")
    if args.ship:
        ship(out, jobs, "toy_results.json" if args.task == "default" else f"toy_results_{args.task}.json")
    return summary


if __name__ == "__main__":
    main()
