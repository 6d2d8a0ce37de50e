"""Checkpoints of the toy training (:mod:`pi0lite.toy.train`): ``ckpt_dir/train_state.npz``, written
atomically, holds the parameters and optimiser state under their path names, the step, the loss
history up to exactly that step, and the run record (train + model config, dataset shapes).
Restoring into a run with a different record is refused with the differing fields named.
"""

from __future__ import annotations

import dataclasses
import io
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pi0lite.config import Pi0Config
from pi0lite.pi0_fast import Pi0FastConfig
from pi0lite.toy.files import atomic_write_bytes, describe_differences

CKPT_NAME = "train_state.npz"


def _without_unused_later_fields(train: dict) -> dict:
    """Fields added after the first records leave the record of a run that does not use them, so
    such a run keeps the record (and resumes the checkpoints) it had before they existed."""
    train = dict(train)
    if not train.get("rtc_max_delay", 0):
        train.pop("rtc_max_delay", None)
    if train.get("mode") != "ki":
        train.pop("insulate", None), train.pop("fast_weight", None)
    return train


def run_record(model_config: Pi0Config | Pi0FastConfig, cfg, arrays: dict) -> dict:
    """Everything that decides a run's result: train config (a :class:`pi0lite.toy.train.TrainConfig`),
    model config, dataset shapes."""
    return {"train": _without_unused_later_fields(dataclasses.asdict(cfg)), "model": dataclasses.asdict(model_config),
            "data": {k: list(np.shape(v)) for k, v in sorted(arrays.items())}}


def _named_state(trainable: nnx.Module, opt: nnx.Optimizer):
    """``({path: leaf}, treedef)`` of parameters + optimiser state, paths like ``0/pi0/action_in_proj/kernel``."""
    pure = nnx.to_pure_dict(nnx.state((trainable, opt)))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(pure)
    return {jax.tree_util.keystr(p, simple=True, separator="/"): v for p, v in leaves}, treedef


def save_checkpoint(ckpt_dir, trainable: nnx.Module, opt: nnx.Optimizer, step: int, history: np.ndarray,
                    record: dict) -> None:
    """Named parameters + optimiser state, step, loss history and run record, written atomically."""
    if history.shape[0] != step:
        raise ValueError(f"history has {history.shape[0]} rows, the checkpoint is at step {step}")
    named, _ = _named_state(trainable, opt)
    buf = io.BytesIO()
    np.savez(buf, **{f"state/{k}": np.asarray(v) for k, v in named.items()}, **{
        "meta/history": history, "meta/step": np.int64(step), "meta/record": np.array(json.dumps(record))})
    atomic_write_bytes(pathlib.Path(ckpt_dir) / CKPT_NAME, buf.getvalue())


def restore_checkpoint(ckpt_dir, trainable: nnx.Module, opt: nnx.Optimizer, record: dict) -> tuple[int, np.ndarray]:
    """Load a :func:`save_checkpoint` file into freshly built ``trainable`` / ``opt``.

    Refuses (``ValueError`` naming the fields) a checkpoint made with another ``record``.
    """
    path = pathlib.Path(ckpt_dir) / CKPT_NAME
    with np.load(path) as z:
        if "meta/record" not in z.files:
            raise ValueError(f"{path}: written by an older pi0lite (no run record); delete it to start afresh")
        saved_record = json.loads(str(z["meta/record"]))
        if "train" in saved_record:  # written while later fields were recorded for every run
            saved_record["train"] = _without_unused_later_fields(saved_record["train"])
        step, history = int(z["meta/step"]), z["meta/history"]
        wrong = describe_differences(saved_record, json.loads(json.dumps(record)))
        if wrong:
            note = ""
            if step > record["train"]["steps"]:
                note = f" The checkpoint is already at step {step}, past the requested {record['train']['steps']} steps."
            raise ValueError(f"{path} was made with a different training config (checkpoint vs requested): "
                             f"{'; '.join(wrong)}.{note} Use another directory, or delete it to start afresh.")
        saved = {k[len("state/"):]: z[k] for k in z.files if k.startswith("state/")}
    if history.shape[0] != step:
        raise ValueError(f"{path}: history has {history.shape[0]} rows, the checkpoint is at step {step}")
    named, treedef = _named_state(trainable, opt)
    missing, unknown = sorted(set(named) - set(saved)), sorted(set(saved) - set(named))
    shapes = [f"{k}: {saved[k].shape} vs {np.shape(v)}" for k, v in named.items()
              if k in saved and saved[k].shape != np.shape(v)]
    if missing or unknown or shapes:
        raise ValueError(f"{path} does not match the model: missing {missing[:5]}, unknown {unknown[:5]}, "
                         f"mis-shaped {shapes[:5]}")
    pure = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(saved[k], np.asarray(v).dtype) for k, v in named.items()])
    state = nnx.state((trainable, opt))
    nnx.replace_by_pure_dict(state, pure)
    nnx.update((trainable, opt), state)
    return step, history
