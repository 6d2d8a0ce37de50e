"""One pi0-FAST training job on the toy task (the demo's worker for ``--policies pi0_fast``,
registered in :mod:`pi0lite.toy.jobs`; it takes the arguments of :mod:`pi0lite.toy.demo_worker`).

    python -m pi0lite.toy.fast_job --out DIR [--name pi0_fast] [--steps 5000] [--seed 0] [--episodes 2500]

Uses ``DIR/data.npz`` when :mod:`pi0lite.toy.demo` left it there, otherwise builds the same
expert data (same seed and episode count give the same chunks). Writes, under ``DIR/<name>/``:
``fast/`` (the FAST tokenizer fitted on the quantile-normalised training chunks), ``ckpt/``
(training checkpoints every 500 steps: an interrupted job resumes), ``history.npy``,
``train_seconds.json`` and the policy (``policy/``, a :class:`pi0lite.toy.policy.Policy` of mode
``"fast"``), each atomically.
"""

from __future__ import annotations

import argparse
import pathlib


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--mode", choices=["fast"], default="fast", help="(the demo's worker interface; always fast)")
    p.add_argument("--name", default="pi0_fast", help="sub-directory of --out")
    p.add_argument("--steps", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--episodes", type=int, default=2500, help="expert episodes (when DIR/data.npz is absent)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--aux-weight", type=float, default=1.0)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--position", type=int, default=0, help="tqdm bar row")
    p.add_argument("--task", choices=["default"], default="default", help="(the demo's worker interface)")
    from pi0lite.toy import job_eval

    job_eval.add_arguments(p)
    return p.parse_args(argv)


def prepare(args) -> dict:
    """The job's data: ``{"job", "norm", "prompt", "config", "arrays", "chunks", "lengths"}`` (FAST
    tokens per chunk in ``lengths``); fits and saves the FAST tokenizer, or loads the saved one."""
    from pi0lite.fast import FastTokenizer
    from pi0lite.toy import fast_prompt, normalize
    from pi0lite.toy.data import build_dataset, load_dataset
    from pi0lite.toy.demo_worker import model_config
    from pi0lite.toy.train_fast import training_arrays

    out = pathlib.Path(args.out)
    job = out / args.name
    job.mkdir(parents=True, exist_ok=True)
    data = out / "data.npz"
    ds = load_dataset(data) if data.exists() else build_dataset(args.episodes, seed=args.seed, image_size=args.image_size)
    norm = normalize.dataset_stats(ds, kind="quantile")
    fast_dir = job / "fast"
    if (fast_dir / "fast_config.json").exists():  # resuming: the ids the checkpoint was trained on
        fast = FastTokenizer.load(fast_dir)
    else:
        fast = fast_prompt.fit_fast(norm["actions"].normalize(ds.actions))
        fast.save(fast_dir)
    prompt = fast_prompt.make_prompt(fast_prompt.text_tokenizer(), fast)
    arrays = training_arrays(ds, prompt, norm)
    return {"job": job, "norm": norm, "prompt": prompt, "arrays": arrays, "chunks": len(ds),
            "config": fast_prompt.model_config(prompt, model_config(args.image_size)),
            "lengths": arrays["token_loss"].sum(1) - 3}  # minus "action:", "|" and EOS


def train_and_save(args, prepared: dict) -> None:
    """Train (resuming ``ckpt/``), then write ``history.npy``, ``train_seconds.json`` and ``policy/``."""
    from pi0lite.toy.demo_worker import save_job_record
    from pi0lite.toy.policy import Policy
    from pi0lite.toy.train import TrainConfig
    from pi0lite.toy.train_fast import train_fast

    job, lengths = prepared["job"], prepared["lengths"]
    tcfg = TrainConfig(mode="fast", steps=args.steps, batch_size=args.batch_size, aux_weight=args.aux_weight,
                       seed=args.seed)
    result = train_fast(prepared["config"], tcfg, prepared.pop("arrays"),
                        ckpt_dir=job / "ckpt", ckpt_every=500, position=args.position, desc=f"{args.name:>8}")
    seconds = save_job_record(job, result.history, result.seconds, args.steps)
    meta = {"train_steps": args.steps, "aux_weight": args.aux_weight, "seed": args.seed, "train_seconds": seconds,
            "batch_size": args.batch_size, "fast_tokens_mean": round(float(lengths.mean()), 3),
            "fast_tokens_max": int(lengths.max())}
    Policy.fast(result.trainable.pi0_fast, prepared["norm"], prepared["prompt"], meta=meta).save(job / "policy")


def main(argv=None) -> None:
    from pi0lite import malloc

    malloc.apply_default()  # before JAX runs: no page faults per step (pi0lite.malloc)
    from pi0lite.toy import job_eval

    args = parse_args(argv)
    prepared = prepare(args)
    lengths = prepared["lengths"]
    print(f"pi0-FAST data: {prepared['chunks']} chunks, FAST tokens per chunk mean {lengths.mean():.2f}, "
          f"max {lengths.max()}", flush=True)
    train_and_save(args, prepared)
    job_eval.after_training(prepared["job"], args, args.name)


if __name__ == "__main__":
    main()
