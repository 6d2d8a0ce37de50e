"""Training a toy policy: pi0 (flow matching) or the MSE-regression baseline on the same network.

* Optimiser: optax AdamW with linear warm-up and cosine decay over the run's length (so the run
  anneals at its last step), global-norm gradient clipping.
* One jitted train step. The dataset arrays are passed as **arguments** (a closed-over array would
  be baked into the compiled program as a constant: slow compiles, huge programs); the batch is
  drawn inside the step from ``fold_in(key(seed), step)``, so a resumed run sees exactly the
  batches of an uninterrupted one.
* ``mode="flow"``: pi0's loss (``Pi0.forward`` on ``x_t``, target ``noise − actions``).
  ``mode="mse"``: the same network with the noise input fixed to 0 and the time to 1 (the noise
  end), whose output is regressed directly onto the action chunk.
* ``aux_weight > 0`` adds the grounding loss of :class:`pi0lite.toy.grounding.AuxHead` (a stand-in for VLM
  pretraining; see that module). ``aux_weight=0`` is the documented ablation.

Axis letters: n dataset samples, b batch, h action horizon, d action dim, p prefix tokens.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import pathlib
import time as _time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jaxtyping import Array, Float
from tqdm.auto import tqdm

from pi0lite import flow
from pi0lite.toy.grounding import AuxHead, aux_loss
from pi0lite.config import Pi0Config
from pi0lite.pi0 import Observation, Pi0

MODES = ("flow", "mse")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    mode: str = "flow"  # "flow" (pi0) or "mse" (regression baseline)
    steps: int = 5000  # optimiser steps; the cosine schedule ends here
    batch_size: int = 64
    lr: float = 2e-3  # peak learning rate
    warmup_steps: int = 200
    final_lr_fraction: float = 0.05  # cosine decays to lr × this
    weight_decay: float = 1e-4
    b2: float = 0.95
    clip_norm: float = 1.0  # global gradient norm
    aux_weight: float = 1.0  # grounding loss weight; 0 = the no-aux ablation
    seed: int = 0  # init and batch sampling

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"TrainConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.steps <= 0 or self.batch_size <= 0:
            raise ValueError(f"TrainConfig.steps and batch_size must be positive, got {self.steps}, {self.batch_size}")


class Trainable(nnx.Module):
    """The policy network plus the training-only auxiliary head."""

    def __init__(self, config: Pi0Config, *, rngs: nnx.Rngs):
        self.pi0 = Pi0(config, rngs=rngs)
        self.aux = AuxHead(config.paligemma.width, rngs=rngs)


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=cfg.lr, warmup_steps=min(cfg.warmup_steps, cfg.steps - 1),
        decay_steps=cfg.steps, end_value=cfg.lr * cfg.final_lr_fraction,
    )
    return optax.chain(
        optax.clip_by_global_norm(cfg.clip_norm),
        optax.adamw(schedule, b2=cfg.b2, weight_decay=cfg.weight_decay),
    )


def batch_observation(batch: dict, image_key: str) -> Observation:
    """uint8 images → [−1, 1]; everything else is already normalised and padded."""
    images = batch["images"].astype(jnp.float32) / 255.0 * 2.0 - 1.0
    b = images.shape[0]
    return Observation(
        images={image_key: images}, image_masks={image_key: jnp.ones((b,), bool)}, state=batch["state"],
        tokenized_prompt=batch["tokens"], tokenized_prompt_mask=batch["token_mask"],
    )


def mse_actions(model: Pi0, obs: Observation) -> Float[Array, "b h d"]:
    """The MSE baseline's prediction: the network at x_t = 0, t = 1, read as the chunk itself."""
    b, cfg = obs.batch_size, model.config
    zeros = jnp.zeros((b, cfg.action_horizon, cfg.action_dim), jnp.float32)
    return model.forward(obs, zeros, jnp.ones((b,), jnp.float32))[0]


def loss_fn(trainable: Trainable, batch: dict, key: jax.Array, *, mode: str, aux_weight: float):
    """Total loss and its parts ``{"loss": policy loss, "aux": grounding loss}``."""
    model = trainable.pi0
    obs = batch_observation(batch, model.config.image_keys[0])
    actions = batch["actions"]  # [b, h, d], normalised and padded
    if mode == "flow":
        noise_key, time_key = jax.random.split(key)
        noise = jax.random.normal(noise_key, actions.shape)
        time = flow.sample_time(time_key, actions.shape[0])
        v_t, prefix_out = model.forward(obs, flow.interpolate(noise, actions, time), time)
        main = jnp.mean(jnp.square(v_t - flow.target_velocity(noise, actions)))
    else:
        zeros = jnp.zeros_like(actions)
        pred, prefix_out = model.forward(obs, zeros, jnp.ones((actions.shape[0],), jnp.float32))
        main = jnp.mean(jnp.square(pred - actions))
    token = model.config.num_image_tokens + batch["aux_pos"]  # the colour word's prefix index
    aux = aux_loss(trainable.aux(prefix_out, token), batch["aux_target"])
    return main + aux_weight * aux, {"loss": main, "aux": aux}


@functools.lru_cache(maxsize=8)  # same graph + config → the same jitted function (no re-trace)
def make_train_step(graphdef, cfg: TrainConfig):
    """``step(state, data, key, i) -> (state, metrics)``, jitted; ``data`` is a dict of arrays [n, ...]."""

    def step(state, data, key, i):
        trainable, opt = nnx.merge(graphdef, state)
        step_key = jax.random.fold_in(key, i)
        idx_key, loss_key = jax.random.split(step_key)
        n = data["images"].shape[0]
        idx = jax.random.randint(idx_key, (cfg.batch_size,), 0, n)
        batch = {k: v[idx] for k, v in data.items()}
        loss = functools.partial(loss_fn, mode=cfg.mode, aux_weight=cfg.aux_weight)
        (_, metrics), grads = nnx.value_and_grad(loss, has_aux=True)(trainable, batch, loss_key)
        opt.update(trainable, grads)
        return nnx.state((trainable, opt)), metrics

    return jax.jit(step, donate_argnums=0)


@dataclass
class TrainResult:
    trainable: Trainable
    history: np.ndarray  # [steps, 2]: policy loss, aux loss per step
    seconds: float  # wall-clock of this call (excluding restored steps)


def train(
    model_config: Pi0Config, cfg: TrainConfig, arrays: dict, *, ckpt_dir=None, ckpt_every: int = 500,
    stop_after: int | None = None, progress: bool = True, position: int = 0, desc: str | None = None,
) -> TrainResult:
    """Train from scratch, or resume from ``ckpt_dir`` if it holds a checkpoint.

    ``stop_after`` ends the call early at that step (with a checkpoint), as an interruption would;
    calling again with the same arguments resumes and gives the uninterrupted result.
    """
    trainable = Trainable(model_config, rngs=nnx.Rngs(cfg.seed))
    opt = nnx.Optimizer(trainable, make_optimizer(cfg), wrt=nnx.Param)
    start, history = 0, np.zeros((0, 2), np.float32)
    if ckpt_dir is not None and (pathlib.Path(ckpt_dir) / "train_state.npz").exists():
        start, history = restore_checkpoint(ckpt_dir, trainable, opt)
    graphdef, state = nnx.split((trainable, opt))
    data = {k: jnp.asarray(v) for k, v in arrays.items()}
    step_fn = make_train_step(graphdef, cfg)
    key = jax.random.key(cfg.seed)
    end = cfg.steps if stop_after is None else min(stop_after, cfg.steps)
    t0, rows, pending = _time.perf_counter(), [history], []
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, desc=desc or cfg.mode, position=position,
               disable=not progress, leave=True, dynamic_ncols=True)
    for i in bar:
        state, metrics = step_fn(state, data, key, jnp.int32(i))
        pending.append(metrics)
        last = i + 1 == end
        if len(pending) == 25 or last:  # sync with the device only now and then
            rows.append(np.array([[m["loss"], m["aux"]] for m in jax.device_get(pending)], np.float32))
            pending = []
            bar.set_postfix(loss=f"{rows[-1][-1, 0]:.3f}", aux=f"{rows[-1][-1, 1]:.3f}")
        if ckpt_dir is not None and ((i + 1) % ckpt_every == 0 or last):
            nnx.update((trainable, opt), state)
            save_checkpoint(ckpt_dir, trainable, opt, i + 1, np.concatenate(rows))
            graphdef, state = nnx.split((trainable, opt))
    bar.close()
    nnx.update((trainable, opt), state)
    return TrainResult(trainable, np.concatenate(rows), _time.perf_counter() - t0)


def save_checkpoint(ckpt_dir, trainable: Trainable, opt: nnx.Optimizer, step: int, history: np.ndarray) -> None:
    """Parameters + optimiser state + step + loss history, written atomically."""
    ckpt_dir = pathlib.Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree.leaves(nnx.state((trainable, opt)))
    tmp = ckpt_dir / "train_state.tmp.npz"
    np.savez(tmp, *[np.asarray(x) for x in leaves], history=history, step=np.int64(step))
    os.replace(tmp, ckpt_dir / "train_state.npz")


def restore_checkpoint(ckpt_dir, trainable: Trainable, opt: nnx.Optimizer) -> tuple[int, np.ndarray]:
    """Load a :func:`save_checkpoint` file into freshly built ``trainable`` / ``opt``."""
    state = nnx.state((trainable, opt))
    leaves, treedef = jax.tree.flatten(state)
    with np.load(pathlib.Path(ckpt_dir) / "train_state.npz") as z:
        saved = [z[f"arr_{i}"] for i in range(len(leaves))]
        step, history = int(z["step"]), z["history"]
    for i, (a, b) in enumerate(zip(saved, leaves)):
        if a.shape != np.shape(b):
            raise ValueError(f"checkpoint leaf {i} has shape {a.shape}, the model expects {np.shape(b)}")
    nnx.update((trainable, opt), jax.tree.unflatten(treedef, [jnp.asarray(a) for a in saved]))
    return step, history


def config_to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def save_json(obj, path) -> None:
    pathlib.Path(path).write_text(json.dumps(obj, indent=1))
