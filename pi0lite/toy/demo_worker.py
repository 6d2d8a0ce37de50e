"""One training job of ``make demo`` (run as its own process, one per core).

``python -m pi0lite.toy.demo_worker --out DIR --mode flow|mse --steps N ...`` builds the expert
data itself (:func:`prepare`: ``--episodes`` episodes of ``--task`` from ``--seed``, the same bytes in
every job; ``DIR/data.npz`` is used instead when present), the tokenizer and the normalisation
stats, trains with checkpoints in ``DIR/<name>/ckpt`` (so an interrupted demo resumes where it
stopped; a checkpoint of other settings is refused by :func:`pi0lite.toy.train.train`, never
deleted), writes the policy to ``DIR/<name>/policy`` and the loss history to
``DIR/<name>/history.npy``, each atomically, and with ``--eval-episodes N`` evaluates the policy
on this core (:mod:`pi0lite.toy.job_eval`: ``DIR/<name>/eval.json`` and ``rollouts.npz``).

``--mode ki`` trains pi0.5 with knowledge insulation (:mod:`pi0lite.toy.pi05`: quantile stats,
discrete-state prompt, FAST targets; ``--no-insulate`` is the ablation without the stop-gradient).
``--curve-every N`` evaluates the policy every N steps on ``--curve-episodes`` scenes
(:class:`pi0lite.toy.curve.Curve`, ``DIR/<name>/curve.json`` with ``steps_to_80``); that time is
not counted in ``train_seconds``.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import pathlib


def model_config(image_size: int):
    """``TINY`` at 32 px; at 64 px the patches grow to 16 px so the token count stays 16."""
    from pi0lite.config import TINY

    if image_size == 32:
        return TINY
    if image_size == 64:
        return TINY.replace(vision=dataclasses.replace(TINY.vision, image_size=64, patch_size=16))
    raise ValueError(f"image_size must be 32 or 64, got {image_size}")


def prepare(out: pathlib.Path, *, episodes: int, seed: int, image_size: int, task: str, announce: bool = False):
    """``(dataset, tokenizer, norm_stats)`` of the demo's training data, built in this process.

    Building is seeded (the same arguments give the same bytes in every job) and takes about 4 s
    for the demo's 2,500 episodes (less than loading a saved copy), so no ~450 MB ``data.npz`` is written; one found in ``out``
    (a hand-made dataset) is used instead."""
    from pi0lite.toy.data import build_dataset, load_dataset
    from pi0lite.toy.normalize import dataset_stats
    from pi0lite.toy.text import instruction_tokenizer

    saved = out / "data.npz"
    ds = load_dataset(saved) if saved.exists() else build_dataset(episodes, seed=seed, image_size=image_size, task=task)
    if announce:
        print(f"data ({task} task): {len(ds.scenes)} episodes, {len(ds)} chunks, "
              f"{ds.coin_flip.mean():.0%} coin-flip episodes", flush=True)
    return ds, instruction_tokenizer(), dataset_stats(ds)


def save_job_record(job: pathlib.Path, history, seconds: float, steps: int) -> float:
    """Write ``job/train_seconds.json`` and ``job/history.npy`` atomically; return the training time.

    A re-run that had nothing left to train (the checkpoint was complete: under a second of work)
    keeps the time recorded by the run that did the training.
    """
    import numpy as np

    from pi0lite.toy.files import atomic_write_bytes, atomic_write_text

    timing = job / "train_seconds.json"
    if timing.exists() and history.shape[0] == steps and seconds < 1.0:
        seconds = json.loads(timing.read_text())["train_seconds"]
    else:
        atomic_write_text(timing, json.dumps({"train_seconds": seconds}))
    buf = io.BytesIO()
    np.save(buf, history)
    atomic_write_bytes(job / "history.npy", buf.getvalue())
    return seconds


def make_parser() -> argparse.ArgumentParser:
    """The worker's command line (``python -m pi0lite.toy.demo_worker --help``)."""
    from pi0lite.toy import job_eval

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["flow", "mse", "ki"], required=True)
    p.add_argument("--name", default=None, help="sub-directory (default: the mode)")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--aux-weight", type=float, default=1.0)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--position", type=int, default=0, help="tqdm bar row")
    p.add_argument("--rtc-max-delay", type=int, default=0, help="training-time RTC: simulated delays 0..this")
    p.add_argument("--no-insulate", action="store_true", help="mode ki: no stop-gradient (the flow loss reaches the VLM)")
    p.add_argument("--fast-weight", type=float, default=1.0, help="mode ki: weight of the FAST cross-entropy")
    p.add_argument("--fast-scale", type=float, default=None,
                   help="mode ki: FAST's DCT coefficient scale (default: pi0lite.toy.pi05.KIConfig's)")
    p.add_argument("--max-fast-len", type=int, default=None,
                   help="mode ki: FAST slots per chunk, tokens + EOS (default: KIConfig's)")
    p.add_argument("--curve-every", type=int, default=0, help="evaluate every N steps (0: never)")
    p.add_argument("--curve-episodes", type=int, default=100)
    p.add_argument("--episodes", type=int, default=2500, help="expert episodes of the training data")
    p.add_argument("--task", default="default", help="the expert variant (pi0lite.toy.expert.TASKS)")
    job_eval.add_arguments(p)
    return p


def ki_config(args: argparse.Namespace):
    """The KI settings of a ``--mode ki`` job: ``KIConfig``'s defaults, overridden by the flags given."""
    from pi0lite.toy.pi05 import KIConfig

    given = {"fast_scale": args.fast_scale, "max_fast_len": args.max_fast_len}
    return KIConfig(**{name: value for name, value in given.items() if value is not None})


def main(argv=None) -> None:
    from pi0lite import malloc

    malloc.apply_default()  # before JAX runs: no page faults per step (pi0lite.malloc)
    from pi0lite.toy import job_eval

    args = make_parser().parse_args(argv)

    from pi0lite.toy.data import training_arrays
    from pi0lite.toy.policy import Policy
    from pi0lite.toy.train import TrainConfig, train

    out = pathlib.Path(args.out)
    job = out / (args.name or args.mode)
    cfg = model_config(args.image_size)
    tcfg = TrainConfig(mode=args.mode, steps=args.steps, batch_size=args.batch_size, aux_weight=args.aux_weight,
                       seed=args.seed, rtc_max_delay=args.rtc_max_delay, insulate=not args.no_insulate,
                       fast_weight=args.fast_weight)
    ckpt = job / "ckpt"
    dataset, tokenizer, norm = prepare(out, episodes=args.episodes, seed=args.seed, image_size=args.image_size,
                                       task=args.task, announce=args.position == 0)
    if args.mode == "ki":
        from pi0lite.toy.pi05 import ki_setup

        ki = ki_config(args)
        cfg, tokenizer, norm, fast_prompt, arrays = ki_setup(cfg, dataset, norm, ki)
        fast_prompt.fast.save(job / "fast_tokenizer")
    else:
        arrays = training_arrays(dataset, tokenizer, norm, max_token_len=cfg.max_token_len, action_dim=cfg.action_dim)
    del dataset
    policy_mode = "flow" if args.mode == "ki" else args.mode  # KI's policy samples by flow matching
    curve = None
    if args.curve_every:
        from pi0lite.toy.curve import Curve

        curve = Curve(job / "curve.json", lambda model: Policy(model, norm, tokenizer, mode=policy_mode),
                      every=args.curve_every, episodes=args.curve_episodes, image_size=args.image_size)
    result = train(cfg, tcfg, arrays, ckpt_dir=ckpt, ckpt_every=500, position=args.position,
                   desc=f"{args.name or args.mode:>6}", on_checkpoint=curve)
    del arrays
    seconds = result.seconds - (curve.seconds if curve is not None else 0.0)
    seconds = save_job_record(job, result.history, seconds, args.steps)
    meta = {"train_steps": args.steps, "aux_weight": args.aux_weight, "seed": args.seed, "train_seconds": seconds,
            "batch_size": args.batch_size}
    if args.rtc_max_delay:
        meta["rtc_max_delay"] = args.rtc_max_delay
    if args.mode == "ki":
        meta.update(knowledge_insulation=True, insulate=not args.no_insulate, fast_weight=args.fast_weight,
                    fast_scale=ki.fast_scale)
    Policy(result.trainable.pi0, norm, tokenizer, mode=policy_mode, meta=meta).save(job / "policy")
    del result
    job_eval.after_training(job, args, args.name or args.mode)


if __name__ == "__main__":
    main()
