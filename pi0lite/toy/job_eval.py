"""Each demo job evaluates its own policy right after training, on its own core.

The demo used to evaluate the trained policies one after the other in the parent process once
every job had finished; now each worker (:mod:`pi0lite.toy.demo_worker`) runs the same
:func:`pi0lite.toy.evaluate.evaluate` as soon as its policy is saved, so the evaluations run in
parallel, pinned like the training. It writes, atomically, into the job's directory:

* ``eval.json``: the metrics, the evaluation settings and the sha256 of the policy's
  ``params.npz`` they were measured on;
* ``rollouts.npz``: what the demo's figures need of the rollouts (outcome, paths, steps,
  coin-flip flags of the canonical and the aligned scenes; the scenes themselves are the fixed
  evaluation scenes, rebuilt from their seed by :func:`pi0lite.toy.evaluate.eval_scenes`).

:func:`load` returns them only if the settings and the policy match; otherwise (an older run, other
``--eval-episodes``, a policy retrained since) it returns None and the demo evaluates again.
"""

from __future__ import annotations

import hashlib
import io
import json
import pathlib
import time

import numpy as np

from pi0lite.toy import files
from pi0lite.toy.evaluate import Rollouts, eval_scenes, evaluate, policy_fn

EVAL_FILE, ROLLOUTS_FILE = "eval.json", "rollouts.npz"
_FIELDS = ("outcome", "paths", "steps", "coin_flip")


def settings(*, num_episodes: int, num_aligned: int, image_size: int, task: str) -> dict:
    """What decides an evaluation's numbers besides the policy."""
    return {"num_episodes": num_episodes, "num_aligned": num_aligned, "image_size": image_size, "task": task}


def params_digest(policy_dir) -> str:
    """sha256 of the policy's ``params.npz`` (which policy an ``eval.json`` belongs to)."""
    return hashlib.sha256((pathlib.Path(policy_dir) / "params.npz").read_bytes()).hexdigest()


def measure(policy, *, num_episodes: int, num_aligned: int, image_size: int, task: str
            ) -> tuple[dict, Rollouts, Rollouts]:
    """:func:`pi0lite.toy.evaluate.evaluate` of a loaded policy, plus ``eval_seconds`` and, for
    pi0-FAST, ``invalid_decode_rate`` / ``decoded_chunks`` (chunks whose tokens did not decode)."""
    t0 = time.perf_counter()
    metrics, main, tied = evaluate(policy_fn(policy), num_episodes=num_episodes, num_aligned=num_aligned,
                                   image_size=image_size, task=task)
    metrics["eval_seconds"] = round(time.perf_counter() - t0, 1)
    if policy.fast_part is not None:
        part = policy.fast_part
        metrics["invalid_decode_rate"], metrics["decoded_chunks"] = part.invalid / max(part.chunks, 1), part.chunks
    return metrics, main, tied


def run(job: pathlib.Path, *, num_episodes: int, num_aligned: int, image_size: int, task: str) -> dict:
    """Evaluate ``job/policy`` (:func:`measure`) and write ``eval.json`` + ``rollouts.npz``; returns the metrics."""
    from pi0lite.toy.policy import Policy

    metrics, main, tied = measure(Policy.load(job / "policy"), num_episodes=num_episodes, num_aligned=num_aligned,
                                  image_size=image_size, task=task)
    buf = io.BytesIO()
    np.savez(buf, **{f"main_{f}": getattr(main, f) for f in _FIELDS}, **{f"tied_{f}": getattr(tied, f) for f in _FIELDS})
    files.atomic_write_bytes(job / ROLLOUTS_FILE, buf.getvalue())
    record = {"settings": settings(num_episodes=num_episodes, num_aligned=num_aligned, image_size=image_size, task=task),
              "params_sha256": params_digest(job / "policy"), "metrics": metrics}
    files.atomic_write_text(job / EVAL_FILE, json.dumps(record, indent=1))  # last: it vouches for the rollouts
    return metrics


def add_arguments(parser) -> None:
    """The workers' ``--eval-episodes`` / ``--aligned`` (:class:`pi0lite.toy.jobs.Job` passes them)."""
    parser.add_argument("--eval-episodes", type=int, default=0,
                        help="after training, evaluate on this many canonical scenes plus --aligned (0: not here)")
    parser.add_argument("--aligned", type=int, default=300, help="aligned scenes of that evaluation")


def after_training(job: pathlib.Path, args, name: str) -> None:
    """A worker's last step: :func:`run` when ``args.eval_episodes`` asks for it (arguments of
    :func:`add_arguments`, plus ``image_size`` and ``task``)."""
    if args.eval_episodes:
        m = run(job, num_episodes=args.eval_episodes, num_aligned=args.aligned, image_size=args.image_size,
                task=args.task)
        print(f"evaluated {name} in {m['eval_seconds']:.0f} s", flush=True)


def load(job: pathlib.Path, *, num_episodes: int, num_aligned: int, image_size: int, task: str
         ) -> tuple[dict, Rollouts, Rollouts] | None:
    """``(metrics, canonical, aligned)`` written by :func:`run` for exactly these settings and this
    policy, or None (absent, unreadable, other settings, or a policy changed since)."""
    try:
        record = json.loads((job / EVAL_FILE).read_text())
        wanted = settings(num_episodes=num_episodes, num_aligned=num_aligned, image_size=image_size, task=task)
        if record["settings"] != wanted or record["params_sha256"] != params_digest(job / "policy"):
            return None
        with np.load(job / ROLLOUTS_FILE) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError):
        return None
    canonical, aligned = eval_scenes(num_episodes, num_aligned)
    main = Rollouts(scenes=canonical, **{f: arrays[f"main_{f}"] for f in _FIELDS})
    tied = Rollouts(scenes=aligned, **{f: arrays[f"tied_{f}"] for f in _FIELDS})
    return record["metrics"], main, tied
