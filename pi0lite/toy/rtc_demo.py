"""``python -m pi0lite.demo --rtc``: the delayed-execution sweep of issue 11 (real-time chunking).

For d in 0…4 at s = 8 (H = 16), on the same 200 canonical + 100 aligned evaluation scenes
(:func:`pi0lite.toy.evaluate.eval_scenes`), runs every method of :mod:`pi0lite.toy.delayed`:
``naive``, ``ensemble`` and ``rtc`` with the shipped flow policy, ``rtc_train`` with the shipped
``pi0_rtc`` policy (trained with simulated delays; skipped with a note if it is not shipped). Writes
into ``--out/results.json`` (created or updated atomically):

* ``rtc``: ``{method: {str(d): {success, crash, jerk_mean, side_switch_rate, episodes}}}``;
* ``rtc_details``: the same grid with ``jerk_max``, ``coin_flip_success``, ``aligned_success``,
  ``boundaries`` and the settings;

and three figures: ``rtc_success_vs_delay.png``, ``rtc_rollouts.png`` (one aligned scene per method
at the largest delay, chunk boundaries marked), ``rtc_jerk_hist.png``. ``--ship`` also writes the two
sections to ``pi0lite/assets/rtc_results.json`` (read back with :func:`shipped`).

``--task fork`` (``python -m pi0lite.demo --rtc --task fork``) runs the same sweep on the variant
in which delay costs success (:data:`pi0lite.toy.expert.TASKS`: a 1.75× faster expert that decides
its side at a fork point in front of the disc), with ``pi0_fork`` for naive/ensemble/rtc and
``pi0_rtc_fork`` for rtc_train; it writes the same two sections into ``--out/results_fork.json``,
``rtc_fork_*.png`` and, with ``--ship``, ``pi0lite/assets/rtc_results_fork.json``.
"""

from __future__ import annotations

import json
import os
import pathlib
import time

DELAYS = (0, 1, 2, 3, 4)
ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"
FIELDS = ("success", "crash", "jerk_mean", "side_switch_rate", "episodes")
#: per task: (the plain flow policy's job, the training-time RTC policy's job)
TASK_JOBS = {"default": ("pi0", "pi0_rtc"), "fork": ("pi0_fork", "pi0_rtc_fork")}


def suffix(task: str) -> str:
    """``""`` for the default task, ``"_fork"`` etc. otherwise (file names of the variant)."""
    if task not in TASK_JOBS:
        raise ValueError(f"task must be one of {sorted(TASK_JOBS)}, got {task!r}")
    return "" if task == "default" else f"_{task}"


def shipped_path(task: str = "default") -> pathlib.Path:
    """Where ``--ship`` writes the task's two sections (a file of its own: re-shipping the demo's
    policies keeps it)."""
    return ASSETS / f"rtc_results{suffix(task)}.json"


SHIPPED = shipped_path()  # the default task's shipped results


def load_policies(task: str = "default") -> dict:
    """``{method: policy}``: the task's shipped flow policy for naive/ensemble/rtc, its RTC-trained one
    (``pi0_rtc`` / ``pi0_rtc_fork``) for rtc_train."""
    from pi0lite.toy.jobs import JOBS
    from pi0lite.toy.policy import Policy

    plain, trained = (JOBS[n] for n in TASK_JOBS[task])
    policies = {}
    for job, methods in ((plain, ("naive", "ensemble", "rtc")), (trained, ("rtc_train",))):
        path = ASSETS / job.asset
        if not (path / "params.npz").exists():
            if job is plain:
                raise SystemExit(f"no {path}: train it with python -m pi0lite.demo --policies {job.name} --ship")
            print(f"no {path}: rtc_train skipped (train it with python -m pi0lite.demo --policies {job.name})")
            continue
        policy = Policy.load(path)
        policies.update({m: policy for m in methods})
    return policies


def sweep(policies: dict, *, delays=DELAYS, exec_horizon: int = 8, num_episodes: int = 200, num_aligned: int = 100,
          progress: bool = True, task: str = "default") -> tuple[dict, dict, dict]:
    """``(rtc, details, rollouts)``: the two results sections and ``rollouts[method][d]``."""
    import jax
    import numpy as np
    from tqdm.auto import tqdm

    from pi0lite.toy import delayed, env as toy
    from pi0lite.toy.evaluate import EVAL_SEED, eval_scenes

    canonical, aligned = eval_scenes(num_episodes, num_aligned)
    scenes = toy.concat_scenes([canonical, aligned])
    rtc, details, rollouts = {}, {}, {}
    bar = tqdm(total=len(policies) * len(delays), desc="rtc sweep", disable=not progress, dynamic_ncols=True)
    for method, policy in policies.items():
        fn = delayed.chunk_fn(policy, method, exec_horizon=exec_horizon)
        rtc[method], details[method], rollouts[method] = {}, {}, {}
        for d in delays:
            r = delayed.rollout_delayed(fn, scenes, jax.random.key(EVAL_SEED), method=method, delay=d,
                                        exec_horizon=exec_horizon, horizon=policy.config.action_horizon, task=task)
            s = delayed.summarize_delayed(r)
            s["aligned_success"] = float(np.mean(r.outcome[num_episodes:] == toy.SUCCESS)) if num_aligned else float("nan")
            rtc[method][str(d)] = {k: s[k] for k in FIELDS}
            details[method][str(d)] = {k: v for k, v in s.items() if k not in FIELDS}
            details[method][str(d)]["jerks"] = delayed.boundary_jerk(r.paths, r.steps, r.boundaries)
            rollouts[method][d] = r
            bar.update()
            bar.set_postfix(method=method, d=d, success=f"{s['success']:.2f}")
    bar.close()
    return rtc, details, rollouts


def print_table(rtc: dict, details: dict) -> None:
    print(f"\n{'method':>10} {'d':>2} {'success':>8} {'crash':>7} {'jerk mean':>10} {'jerk max':>9} "
          f"{'switches':>9} {'aligned':>8} {'episodes':>9}")
    for method, rows in rtc.items():
        for d, m in rows.items():
            x = details[method][d]
            print(f"{method:>10} {d:>2} {m['success']:8.1%} {m['crash']:7.1%} {m['jerk_mean']:10.3f} "
                  f"{x['jerk_max']:9.2f} {m['side_switch_rate']:9.1%} {x['aligned_success']:8.1%} {m['episodes']:9d}")


def markdown_table(rtc: dict, details: dict) -> str:
    """The README's table: one row per method and delay."""
    lines = ["| method | d | success | crash | aligned success | side switches | jerk mean | jerk max |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for method, rows in rtc.items():
        for d, m in rows.items():
            x = details[method][d]
            lines.append(f"| {method} | {d} | {m['success']:.1%} | {m['crash']:.1%} | {x['aligned_success']:.1%} | "
                         f"{m['side_switch_rate']:.1%} | {m['jerk_mean']:.3f} | {x['jerk_max']:.2f} |")
    return "\n".join(lines).replace("%", " %") + "\n"


def draw(out: pathlib.Path, rtc: dict, details: dict, rollouts: dict, delays=DELAYS, prefix: str = "rtc") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pi0lite.course.viz.rtc import METHOD_STYLE, plot_chunk_boundaries, plot_jerk_histogram, plot_success_vs_delay
    from pi0lite.course.viz.toy import plot_arena

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    plot_success_vs_delay(list(delays), {m: [rows[str(d)]["success"] for d in delays] for m, rows in rtc.items()},
                          ax=ax)
    fig.tight_layout()
    fig.savefig(out / f"{prefix}_success_vs_delay.png", dpi=120)
    plt.close(fig)

    d = max(delays)
    methods = list(rollouts)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.2 * len(methods), 3.4), squeeze=False)
    for ax, method in zip(axes[0], methods):
        r = rollouts[method][d]
        i = len(r.scenes) - 1  # an aligned scene (they come last)
        plot_arena(r.scenes, i, ax=ax)
        plot_chunk_boundaries(r.paths[i, : r.steps[i] + 1], r.boundaries, ax=ax, colour=METHOD_STYLE[method][0],
                              title=f"{method}, d = {d}")
    fig.tight_layout()
    fig.savefig(out / f"{prefix}_rollouts.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    plot_jerk_histogram({m: details[m][str(d)]["jerks"] for m in methods}, ax=ax,
                        title=f"jerk at chunk boundaries, d = {d}")
    fig.tight_layout()
    fig.savefig(out / f"{prefix}_jerk_hist.png", dpi=120)
    plt.close(fig)


def _merge_into(path: pathlib.Path, sections: dict) -> None:
    from pi0lite.toy.files import atomic_write_text

    data = json.loads(path.read_text()) if path.exists() else {}
    data.update(sections)
    atomic_write_text(path, json.dumps(data, indent=1))


def run(out: pathlib.Path, *, num_episodes: int = 200, num_aligned: int = 100, ship: bool = False,
        task: str = "default") -> dict:
    """The sweep, the table, ``results{suffix}.json``'s ``rtc`` sections and the figures."""
    sfx = suffix(task)
    t0 = time.perf_counter()
    load = os.getloadavg()
    out.mkdir(parents=True, exist_ok=True)
    rtc, details, rollouts = sweep(load_policies(task), num_episodes=num_episodes, num_aligned=num_aligned, task=task)
    seconds = time.perf_counter() - t0
    print_table(rtc, details)
    plain = {m: {d: {k: v for k, v in x.items() if k != "jerks"} for d, x in rows.items()} for m, rows in details.items()}
    plain["settings"] = {"task": task, "exec_horizon": 8, "horizon": 16, "delays": list(DELAYS), "canonical": num_episodes,
                         "aligned": num_aligned, "seconds": round(seconds, 1), "load_average": load,
                         "jerk_units": "|third difference of position| / DT^3, arena units / s^3"}
    sections = {"rtc": rtc, "rtc_details": plain}
    _merge_into(out / f"results{sfx}.json", sections)
    (out / f"rtc{sfx}_table.md").write_text(markdown_table(rtc, details))
    draw(out, rtc, details, rollouts, prefix=f"rtc{sfx}")
    print(f"rtc sweep ({task} task): {seconds / 60:.1f} min (load average at start {load[0]:.1f}); "
          f"results{sfx}.json and rtc{sfx}_*.png in {out}/")
    if ship:
        from pi0lite.toy.files import atomic_write_text

        atomic_write_text(shipped_path(task), json.dumps(sections, indent=1))
        print(f"wrote the rtc sections to {shipped_path(task)}")
    return sections


def shipped(task: str = "default") -> dict:
    """The shipped sweep: ``{"rtc": ..., "rtc_details": ...}`` (written by ``--rtc [--task fork] --ship``)."""
    return json.loads(shipped_path(task).read_text())
