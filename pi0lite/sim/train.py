"""Training the Meta-World policy: the sim model config, the training arrays, one training job.

The network is :class:`pi0lite.pi0.Pi0` at the toy's widths (prefix 64, action expert 32, depth 4,
4 heads × 16) with a 64×64 image cut into 16 patches of 16×16 px, an 8-token instruction and
chunks of ``H = 8`` 4-D actions. Training reuses the toy's loop (:func:`pi0lite.toy.train.train`:
AdamW, warm-up + cosine, checkpoints that resume) and its auxiliary head: here the prefix output at
the instruction's last word regresses the task object's xy (where is the thing the sentence names?)
— a stand-in for the grounding a pretrained VLM brings, exactly as on the toy task.

``python -m pi0lite.sim.train --data CACHE.npz --out DIR --mode flow|mse --steps N`` is one job of
``make sim-demo`` (the demo runs the flow and MSE jobs at once, one process per core).

Axis letters: n frames, h action horizon, d action dim (4), l text tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import pathlib
import shutil

import numpy as np

from pi0lite.config import GemmaConfig, Pi0Config, VisionConfig

#: The sim policy's network (defined here, not in ``pi0lite.config``: it is specific to this task).
SIM_CONFIG = Pi0Config(
    action_dim=4,
    action_horizon=8,
    max_token_len=8,
    vocab_size=32,
    image_keys=("base_0_rgb",),
    paligemma=GemmaConfig(width=64, depth=4, mlp_dim=128, num_heads=4, num_kv_heads=1, head_dim=16),
    action_expert=GemmaConfig(width=32, depth=4, mlp_dim=64, num_heads=4, num_kv_heads=1, head_dim=16),
    vision=VisionConfig(image_size=64, patch_size=16, width=32, depth=1, mlp_dim=64, num_heads=2),
)
EXECUTE = 4  # actions executed per replan (receding horizon)
OBJECT_XY_SCALE = 0.1  # aux target: (object xy − mean) / 0.1 m


def make_tokenizer(tasks):
    from pi0lite.sim.metaworld import instruction
    from pi0lite.toy.text import WordTokenizer

    return WordTokenizer.from_texts([instruction(t) for t in tasks])


def training_arrays(ds, tokenizer, norm: dict, cfg: Pi0Config = SIM_CONFIG) -> dict:
    """The dict of arrays :func:`pi0lite.toy.train.train` samples batches from (leading axis n)."""
    from pi0lite.observation import pad_to_dim
    from pi0lite.toy.text import tokenize_batch

    texts = ds.instructions
    unique = sorted(set(texts))
    ids_u, mask_u = tokenize_batch(tokenizer, unique, cfg.max_token_len)
    which = np.array([unique.index(t) for t in texts])
    chunks = norm["actions"].normalize(ds.chunks(cfg.action_horizon))  # [n, h, 4]
    xy = ds.object_xyz[:, :2]
    return {
        "images": ds.images,
        "state": np.asarray(pad_to_dim(norm["state"].normalize(ds.state), cfg.action_dim)),
        "tokens": ids_u[which],
        "token_mask": mask_u[which],
        "actions": np.asarray(pad_to_dim(chunks, cfg.action_dim)),
        "aux_pos": (mask_u.sum(-1) - 1).astype(np.int32)[which],  # the instruction's last word
        "aux_target": ((xy - xy.mean(0)) / OBJECT_XY_SCALE).astype(np.float32),
    }


def check_signature(ckpt: pathlib.Path, signature: dict, *, overwrite: bool = False) -> None:
    """Keep ``ckpt`` when it was made with ``signature`` (the run resumes); refuse another run's.

    A checkpoint of other settings (training config, model, data cache) raises ``ValueError``
    naming the differing fields; with ``overwrite=True`` it is deleted instead. Before, it was
    deleted silently, so a mistyped flag cost the previous run.
    """
    from pi0lite.toy.files import atomic_write_text, describe_differences

    path = ckpt / "signature.json"
    if path.exists():
        wrong = describe_differences(json.loads(path.read_text()), signature)
        if wrong and not overwrite:
            raise ValueError(f"{ckpt} holds a checkpoint of other settings (saved vs requested: {'; '.join(wrong)}). "
                             "Re-run with the same settings to resume it, choose another --out, or pass --overwrite "
                             "to delete it and start afresh.")
        if wrong:
            print(f"--overwrite: deleting the checkpoint in {ckpt}", flush=True)
            shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(signature, sort_keys=True))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="cached demonstrations (pi0lite.sim.data)")
    p.add_argument("--out", required=True, help="job directory: ckpt/, policy/, history.npy")
    p.add_argument("--mode", choices=["flow", "mse"], required=True)
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--aux-weight", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--position", type=int, default=0, help="tqdm bar row")
    p.add_argument("--overwrite", action="store_true", help="delete a checkpoint of other settings in --out")
    args = p.parse_args(argv)

    from pi0lite.sim import data as sim_data
    from pi0lite.sim.policy import SimPolicy
    from pi0lite.toy.files import atomic_write_bytes, atomic_write_text
    from pi0lite.toy.train import TrainConfig, train

    job = pathlib.Path(args.out)
    tcfg = TrainConfig(mode=args.mode, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       aux_weight=args.aux_weight, seed=args.seed)
    ckpt = job / "ckpt"
    signature = {"train": dataclasses.asdict(tcfg), "model": dataclasses.asdict(SIM_CONFIG),
                 "data": str(pathlib.Path(args.data).name)}
    try:
        check_signature(ckpt, json.loads(json.dumps(signature)), overwrite=args.overwrite)
    except ValueError as e:
        raise SystemExit(str(e)) from None

    ds = sim_data.load(args.data)
    from pi0lite.toy.normalize import dataset_stats

    tokenizer, norm, tasks = make_tokenizer(ds.tasks), dataset_stats(ds), ds.tasks
    arrays = training_arrays(ds, tokenizer, norm)
    del ds
    result = train(SIM_CONFIG, tcfg, arrays, ckpt_dir=ckpt, ckpt_every=250, position=args.position,
                   desc=f"{args.mode:>5}")
    timing = job / "train_seconds.json"  # written when a run completes; a re-run adds its (tiny) time
    seconds = result.seconds + (json.loads(timing.read_text())["train_seconds"] if timing.exists() else 0.0)
    atomic_write_text(timing, json.dumps({"train_seconds": seconds}))
    buf = io.BytesIO()
    np.save(buf, result.history)
    atomic_write_bytes(job / "history.npy", buf.getvalue())
    meta = {"train_steps": args.steps, "batch_size": args.batch_size, "aux_weight": args.aux_weight, "seed": args.seed,
            "train_seconds": round(seconds, 1), "execute": EXECUTE, "tasks": list(tasks)}
    SimPolicy(result.trainable.pi0, norm, tokenizer, mode=args.mode, meta=meta).save(job / "policy")


if __name__ == "__main__":
    main()
