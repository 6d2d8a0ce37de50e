"""Training a toy policy: pi0 (flow matching) or the MSE-regression baseline on the same network.

* Optimiser: optax AdamW with linear warm-up and cosine decay over the run's length (so the run
  anneals at its last step), global-norm gradient clipping.
* Randomness: one key ``key(seed)`` is split into an **init** stream (parameters) and a **data**
  stream; the batch and the loss noise of step ``i`` come from ``fold_in(data_key, i)``, so a
  resumed run sees exactly the batches of an uninterrupted one.
* One jitted train step. The dataset arrays are passed as **arguments** (a closed-over array would
  be baked into the compiled program as a constant: slow compiles, huge programs).
* ``mode="flow"``: pi0's own :meth:`pi0lite.pi0.Pi0.compute_loss`. ``mode="mse"``: the baseline of
  :mod:`pi0lite.toy.mse` (noise input 0, time 1, output regressed onto the action chunk).
* ``rtc_max_delay > 0`` (flow only): training-time real-time chunking, :func:`pi0lite.rtc.compute_loss_delayed`
  (per example a delay d ≤ ``rtc_max_delay``; the first d action tokens clean and out of the loss).
* ``mode="ki"``: pi0.5 with knowledge insulation, :func:`pi0lite.ki.ki_loss` on the batch's
  ``fast_tokens`` / ``fast_mask`` (``insulate`` and ``fast_weight`` from the config; the recorded
  "loss" column is the flow term, the "aux" column the FAST cross-entropy). ``aux_weight > 0`` adds
  the grounding head on the VLM's prefix output too (``pi05_ki_aux``: a VLM-side co-training
  objective beside the FAST loss; its loss is in the total, not in the recorded columns).
* ``aux_weight > 0`` adds the grounding loss of :class:`pi0lite.toy.grounding.AuxHead` (a stand-in for VLM
  pretraining; see that module). ``aux_weight=0`` is the documented ablation.
* Checkpoints (``ckpt_dir/train_state.npz``, written atomically; :mod:`pi0lite.toy.checkpoint`, its
  functions re-exported here): parameters and optimiser state under their path names, the step, the
  loss history up to exactly that step, and the training config (train + model config, dataset
  shapes). Resuming with anything different is refused with the differing fields named. ``ckpt_dir`` is locked for the run (:class:`pi0lite.toy.files.RunLock`),
  which also checks that it is writable before any step runs.

Axis letters: n dataset samples, b batch, h action horizon, d action dim, p prefix tokens, w prefix width.
"""

from __future__ import annotations

import contextlib
import functools
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

from pi0lite import rtc, sharding
from pi0lite.config import Pi0Config
from pi0lite.ki import ki_loss
from pi0lite.pi0 import Observation, Pi0
from pi0lite.toy.data import check_arrays
from pi0lite.toy.checkpoint import CKPT_NAME, restore_checkpoint, run_record, save_checkpoint
from pi0lite.toy.files import RunLock
from pi0lite.toy.grounding import AuxHead, aux_loss
from pi0lite.toy.mse import mse_forward

MODES = ("flow", "mse", "fast", "ki")  # "fast": pi0-FAST, trained by pi0lite.toy.train_fast.train_fast


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    mode: str = "flow"  # "flow" (pi0), "mse" (regression baseline), "fast" (pi0-FAST, toy.train_fast) or "ki" (pi0.5 + KI)
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
    rtc_max_delay: int = 0  # > 0: training-time RTC (pi0lite.rtc.compute_loss_delayed), delays 0..this
    insulate: bool = True  # mode "ki": stop the flow gradient at the VLM's keys/values
    fast_weight: float = 1.0  # mode "ki": weight of the FAST cross-entropy

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"TrainConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.rtc_max_delay < 0 or (self.rtc_max_delay and self.mode != "flow"):
            raise ValueError(f"TrainConfig.rtc_max_delay must be >= 0 and needs mode='flow', got "
                             f"{self.rtc_max_delay} with mode={self.mode!r}")
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


def training_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """``(init_key, data_key)``: two independent streams from one seed."""
    init_key, data_key = jax.random.split(jax.random.key(seed))
    return init_key, data_key


def batch_observation(batch: dict, image_key: str) -> Observation:
    """The batch as an :class:`Observation`: the uint8 images are mapped to [−1, 1] by the
    Observation itself (the model's one conversion); state and prompts are already prepared."""
    b = batch["images"].shape[0]
    return Observation(
        images={image_key: batch["images"]}, image_masks={image_key: jnp.ones((b,), bool)}, state=batch["state"],
        tokenized_prompt=batch["tokens"], tokenized_prompt_mask=batch["token_mask"],
    )


def flow_loss(model: Pi0, key: jax.Array, obs: Observation, actions: Float[Array, "b h d"]
              ) -> tuple[Float[Array, ""], Float[Array, "b p w"]]:
    """``Pi0.compute_loss`` averaged over the batch, and the prefix output of that same pass.

    ``compute_loss`` returns only the loss; the grounding head also needs the prefix output.
    ``nnx.capture(..., method_outputs=nnx.Intermediate)`` records what ``Pi0.forward`` returned
    inside ``compute_loss``, so no second pass is needed.
    """
    capture = nnx.capture(model.compute_loss, nnx.Intermediate, method_outputs=nnx.Intermediate)
    per_step, inter = capture(key, obs, actions)
    ((_, prefix_out),) = inter["forward"].get_value()  # one call of forward
    return jnp.mean(per_step), prefix_out


def delayed_flow_loss(model: Pi0, key: jax.Array, obs: Observation, actions: Float[Array, "b h d"], max_delay: int
                      ) -> tuple[Float[Array, ""], Float[Array, "b p w"]]:
    """Training-time RTC (:func:`pi0lite.rtc.compute_loss_delayed`): the mean over the steps that are
    not committed, and the prefix output of that same pass (captured as in :func:`flow_loss`)."""
    run = functools.partial(rtc.compute_loss_delayed, max_delay=max_delay)
    (loss, mask), inter = nnx.capture(run, nnx.Intermediate, method_outputs=nnx.Intermediate)(model, key, obs, actions)
    ((_, prefix_out),) = inter["forward"].get_value()
    return jnp.sum(loss) / jnp.maximum(jnp.sum(mask), 1.0), prefix_out


def loss_fn(trainable: Trainable, batch: dict, key: jax.Array, *, mode: str, aux_weight: float,
            rtc_max_delay: int = 0, insulate: bool = True, fast_weight: float = 1.0):
    """Total loss and its parts ``{"loss": policy loss, "aux": grounding loss}``."""
    model = trainable.pi0
    obs = batch_observation(batch, model.config.image_keys[0])
    actions = batch["actions"]  # [b, h, d], normalised and padded
    if mode == "ki":
        _, parts = ki_loss(model, key, obs, actions, batch["fast_tokens"], batch["fast_mask"],
                           insulate=insulate, fast_weight=fast_weight, return_prefix_out=aux_weight > 0)
        total = parts["flow"] + fast_weight * parts["fast"]
        if aux_weight > 0:  # the grounding head on the VLM's output, beside the FAST loss
            total = total + aux_weight * grounding_loss(trainable, parts["prefix_out"], batch)
        return total, {"loss": parts["flow"], "aux": parts["fast"]}
    if mode == "flow" and rtc_max_delay:
        main, prefix_out = delayed_flow_loss(model, key, obs, actions, rtc_max_delay)
    elif mode == "flow":
        main, prefix_out = flow_loss(model, key, obs, actions)
    else:
        pred, prefix_out = mse_forward(model, obs)
        main = jnp.mean(jnp.square(pred - actions))
    aux = grounding_loss(trainable, prefix_out, batch)
    return main + aux_weight * aux, {"loss": main, "aux": aux}


def grounding_loss(trainable: Trainable, prefix_out: Float[Array, "b p w"], batch: dict) -> Float[Array, ""]:
    """The grounding head's loss, read at the colour word's prefix index of each example."""
    token = trainable.pi0.config.num_image_tokens + batch["aux_pos"]
    return aux_loss(trainable.aux(prefix_out, token), batch["aux_target"])


def pi0_objective(trainable: Trainable, batch: dict, key: jax.Array, *, cfg: TrainConfig):
    """:func:`loss_fn` with the config's fields: the objective of ``mode`` flow / mse / ki."""
    return loss_fn(trainable, batch, key, mode=cfg.mode, aux_weight=cfg.aux_weight, rtc_max_delay=cfg.rtc_max_delay,
                   insulate=cfg.insulate, fast_weight=cfg.fast_weight)


@functools.lru_cache(maxsize=8)  # same graph + config + objective → the same jitted function (no re-trace)
def make_train_step(graphdef, cfg: TrainConfig, objective=pi0_objective):
    """``step(state, data, data_key, i) -> (state, metrics)``, jitted; ``data`` is a dict of arrays [n, ...]."""
    return jax.jit(train_step_fn(graphdef, cfg, objective), donate_argnums=0)


@functools.lru_cache(maxsize=8)
def train_step_fn(graphdef, cfg: TrainConfig, objective=pi0_objective):
    """The step of :func:`make_train_step`, not jitted (for :func:`pi0lite.sharding.sharded_jit`).
    ``objective(trainable, batch, key, cfg=cfg) -> (total, {"loss", "aux"})`` is the loss (a
    module-level function, so that the caches above recognise it). The drawn batch is split over
    the mesh when traced under one (``activation_constraint``)."""

    def step(state, data, key, i):
        trainable, opt = nnx.merge(graphdef, state)
        step_key = jax.random.fold_in(key, i)
        idx_key, loss_key = jax.random.split(step_key)
        n = data["images"].shape[0]
        idx = jax.random.randint(idx_key, (cfg.batch_size,), 0, n)
        batch = {k: sharding.activation_constraint(v[idx]) for k, v in data.items()}
        loss = functools.partial(objective, cfg=cfg)
        (_, metrics), grads = nnx.value_and_grad(loss, has_aux=True)(trainable, batch, loss_key)
        opt.update(trainable, grads)
        return nnx.state((trainable, opt)), metrics

    return step


def step_for_devices(graphdef, cfg: TrainConfig, state, data: dict, objective=pi0_objective):
    """``(step_fn, state, data)`` ready to run: :func:`make_train_step` on one device; with several,
    :func:`pi0lite.sharding.sharded_jit` over a data-parallel mesh of all of them (the drawn batch
    split over the devices, parameters and optimiser state by the FSDP rule, the dataset replicated)."""
    mesh = sharding.data_parallel_mesh(cfg.batch_size)  # None on one device
    if mesh is None:
        return make_train_step(graphdef, cfg, objective), state, data
    shardings = sharding.state_shardings(state, mesh)
    state, data = sharding.shard(state, shardings), sharding.shard(data, sharding.replicated(mesh))
    step = train_step_fn(graphdef, cfg, objective)
    return sharding.sharded_jit(step, mesh, shardings, batch_argnums=(), num_args=4), state, data


@dataclass
class TrainResult:
    trainable: nnx.Module  # Trainable, or train_fast.FastTrainable (the same fields: .pi0, .aux)
    history: np.ndarray  # [steps, 2]: policy loss, aux loss per step
    seconds: float  # wall-clock of this call (excluding restored steps)


def train(
    model_config: Pi0Config, cfg: TrainConfig, arrays: dict, *, ckpt_dir=None, ckpt_every: int = 500,
    stop_after: int | None = None, progress: bool = True, position: int = 0, desc: str | None = None,
    on_checkpoint=None,
) -> TrainResult:
    """Train from scratch, or resume from ``ckpt_dir`` if it holds a checkpoint of the same config.

    ``stop_after`` ends the call early at that step (with a checkpoint), as an interruption would;
    calling again with the same arguments resumes and gives the uninterrupted result. With
    ``ckpt_dir``, the directory is locked for the call: a second run into it fails at once.
    ``on_checkpoint(step, trainable)`` is called after each checkpoint is written (e.g. to evaluate
    the policy every ``ckpt_every`` steps); it must not change the parameters.
    """
    if cfg.mode == "fast":
        raise ValueError("TrainConfig(mode='fast') trains pi0-FAST: use pi0lite.toy.train_fast.train_fast")
    check_arrays(arrays)
    return _train(model_config, cfg, arrays, ckpt_dir=ckpt_dir, ckpt_every=ckpt_every, stop_after=stop_after,
                  progress=progress, position=position, desc=desc, on_checkpoint=on_checkpoint)


def _train(model_config, cfg: TrainConfig, arrays: dict, *, trainable_cls=Trainable, objective=pi0_objective,
           ckpt_dir=None, ckpt_every: int = 500, stop_after: int | None = None, progress: bool = True,
           position: int = 0, desc: str | None = None, on_checkpoint=None) -> TrainResult:
    """The training loop of :func:`train` and :func:`pi0lite.toy.train_fast.train_fast` (arrays
    already checked): ``trainable_cls(model_config, rngs=...)`` is built from the init stream and
    trained on ``objective`` (see :func:`train_step_fn`), sharded when several devices are present;
    ``ckpt_dir`` is locked for the call."""
    with contextlib.nullcontext() if ckpt_dir is None else RunLock(ckpt_dir):
        ckpt_dir = None if ckpt_dir is None else pathlib.Path(ckpt_dir)
        return _loop(model_config, cfg, arrays, trainable_cls, objective, ckpt_dir, ckpt_every, stop_after,
                     progress, position, desc, on_checkpoint)


def _loop(model_config, cfg, arrays, trainable_cls, objective, ckpt_dir, ckpt_every, stop_after, progress, position,
          desc, on_checkpoint) -> TrainResult:
    init_key, data_key = training_keys(cfg.seed)
    trainable = trainable_cls(model_config, rngs=nnx.Rngs(init_key))
    opt = nnx.Optimizer(trainable, make_optimizer(cfg), wrt=nnx.Param)
    record = run_record(model_config, cfg, arrays)
    start, history = 0, np.zeros((0, 2), np.float32)
    if ckpt_dir is not None and (ckpt_dir / CKPT_NAME).exists():
        start, history = restore_checkpoint(ckpt_dir, trainable, opt, record)
    graphdef, state = nnx.split((trainable, opt))
    data = {k: jnp.asarray(v) for k, v in arrays.items()}
    step_fn, state, data = step_for_devices(graphdef, cfg, state, data, objective)
    end = cfg.steps if stop_after is None else min(stop_after, cfg.steps)
    t0, rows, pending = _time.perf_counter(), [history], []
    bar = tqdm(range(start, end), initial=start, total=cfg.steps, desc=desc or cfg.mode, position=position,
               disable=not progress, leave=True, dynamic_ncols=True)
    for i in bar:
        state, metrics = step_fn(state, data, data_key, jnp.int32(i))
        pending.append(metrics)
        done = i + 1
        save = ckpt_dir is not None and (done % ckpt_every == 0 or done == end)
        if len(pending) == 25 or done == end or save:  # sync with the device only now and then
            rows.append(np.array([[m["loss"], m["aux"]] for m in jax.device_get(pending)], np.float32))
            pending = []
            bar.set_postfix(loss=f"{rows[-1][-1, 0]:.3f}", aux=f"{rows[-1][-1, 1]:.3f}")
        if save:  # the history is flushed: the checkpoint holds exactly the rows up to its step
            nnx.update((trainable, opt), state)
            save_checkpoint(ckpt_dir, trainable, opt, done, np.concatenate(rows), record)
            if on_checkpoint is not None:
                on_checkpoint(done, trainable)
            graphdef, state = nnx.split((trainable, opt))
    bar.close()
    nnx.update((trainable, opt), state)
    return TrainResult(trainable, np.concatenate(rows), _time.perf_counter() - t0)
