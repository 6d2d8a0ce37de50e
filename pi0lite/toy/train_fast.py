"""Training pi0-FAST on the toy task: next-token cross-entropy on the FAST postfix (+ grounding).

The recipe is the toy pi0's (:mod:`pi0lite.toy.train`): the same backbone and vision tower
(``TINY``), optimiser, schedule, key streams, batch size, grounding head and checkpoint format;
only the model and its loss differ.

* Data: every chunk's prompt and postfix are tokenised once (:func:`training_arrays`); the jitted
  step gathers a random batch of rows.
* Loss: :meth:`pi0lite.pi0_fast.Pi0Fast.pre_logits` once, logits through the tied embedding,
  ``−log p`` of each next token averaged over the loss-masked slots (as ``compute_loss``), plus
  ``aux_weight`` × the grounding loss of :class:`pi0lite.toy.grounding.AuxHead` read at the colour
  word's output of that same pass (the prompt is bidirectional, so the colour word sees the image).

Axis letters: n dataset samples, b batch, r token slots, v vocabulary, w width.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Float

from pi0lite.fast.prompt import FastPrompt
from pi0lite.pi0_fast import FastObservation, Pi0Fast, Pi0FastConfig
from pi0lite.toy.data import GOAL_CENTRE, GOAL_SCALE, ToyDataset, check_finite
from pi0lite.toy.grounding import AuxHead, aux_loss
from pi0lite.toy.train import TrainConfig, TrainResult, _train

FIELDS = ("images", "state", "tokens", "token_mask", "token_ar", "token_loss", "aux_target", "aux_pos")


class FastTrainable(nnx.Module):
    """pi0-FAST plus the training-only grounding head."""

    def __init__(self, config: Pi0FastConfig, *, rngs: nnx.Rngs):
        self.pi0_fast = Pi0Fast(config, rngs=rngs)
        self.aux = AuxHead(config.paligemma.width, rngs=rngs)


def training_arrays(dataset: ToyDataset, prompt: FastPrompt, norm) -> dict:
    """Token ids, masks, normalised state and the grounding targets of every chunk (numpy).

    ``norm`` holds quantile stats for ``state`` and ``actions``; the FAST tokenizer of ``prompt``
    must have been fitted on the actions normalised with them.
    """
    from pi0lite.toy.text import colour_positions

    check_finite({"images": dataset.images, "state": dataset.state, "actions": dataset.actions}, "dataset")
    state = norm["state"].normalize(dataset.state)
    tok = prompt.tokenize(dataset.instructions, state, norm["actions"].normalize(dataset.actions))
    arrays = {
        "images": dataset.images, "state": state.astype(np.float32),
        "tokens": tok["tokenized_prompt"], "token_mask": tok["tokenized_prompt_mask"],
        "token_ar": tok["token_ar_mask"], "token_loss": tok["token_loss_mask"],
        "aux_target": ((dataset.goal_xy - GOAL_CENTRE) / GOAL_SCALE).astype(np.float32),
        "aux_pos": colour_positions(prompt.text, tok["tokenized_prompt"]),
    }
    check_arrays(arrays)
    return arrays


def check_arrays(arrays: dict) -> None:
    if set(arrays) != set(FIELDS):
        raise ValueError(f"pi0-FAST training arrays must have the fields {FIELDS}, got {sorted(arrays)}")
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"pi0-FAST training arrays must have one length, got {lengths}")


def batch_observation(batch: dict, image_key: str) -> FastObservation:
    b = batch["images"].shape[0]
    return FastObservation(
        {image_key: batch["images"]}, {image_key: jnp.ones((b,), bool)}, batch["state"], batch["tokens"],
        batch["token_mask"], batch["token_ar"], batch["token_loss"],
    )


def token_loss(model: Pi0Fast, obs: FastObservation) -> tuple[Float[Array, ""], Float[Array, "b _ w"]]:
    """Batch mean of pi0-FAST's per-example loss, and the text-slot outputs of that same pass."""
    pre = model.pre_logits(obs)  # [b, r-1, w]: slot j predicts token j+1
    logp = jax.nn.log_softmax(model.llm.embedder.decode(pre).astype(jnp.float32), axis=-1)
    target = jnp.take_along_axis(logp, obs.tokenized_prompt[:, 1:, None], axis=-1)[..., 0]
    mask = obs.token_loss_mask[:, 1:].astype(jnp.float32)
    per_example = -jnp.sum(target * mask, -1) / jnp.maximum(jnp.sum(mask, -1), 1.0)
    return jnp.mean(per_example), pre


def loss_fn(trainable: FastTrainable, batch: dict, *, aux_weight: float):
    model = trainable.pi0_fast
    main, pre = token_loss(model, batch_observation(batch, model.config.image_keys[0]))
    aux = aux_loss(trainable.aux(pre, batch["aux_pos"]), batch["aux_target"])
    return main + aux_weight * aux, {"loss": main, "aux": aux}


def fast_objective(trainable: FastTrainable, batch: dict, key: jax.Array, *, cfg: TrainConfig):
    """:func:`loss_fn` as the objective of :func:`pi0lite.toy.train._train` (no randomness: ``key`` unused)."""
    del key
    return loss_fn(trainable, batch, aux_weight=cfg.aux_weight)


def train_fast(model_config: Pi0FastConfig, cfg: TrainConfig, arrays: dict, *, ckpt_dir=None,
               ckpt_every: int = 500, stop_after: int | None = None, progress: bool = True, position: int = 0,
               desc: str | None = None, on_checkpoint=None) -> TrainResult:
    """Train from scratch or resume from ``ckpt_dir``: the loop of :func:`pi0lite.toy.train.train`
    (same checkpoint format and rules, sharded over several devices) with :class:`FastTrainable`
    and :func:`loss_fn`; ``cfg.mode`` must be ``"fast"``."""
    if cfg.mode != "fast":
        raise ValueError(f"train_fast needs TrainConfig(mode='fast'), got mode={cfg.mode!r}")
    check_arrays(arrays)
    return _train(model_config, cfg, arrays, trainable_cls=FastTrainable, objective=fast_objective,
                  ckpt_dir=ckpt_dir, ckpt_every=ckpt_every, stop_after=stop_after, progress=progress,
                  position=position, desc=desc or "pi0-FAST", on_checkpoint=on_checkpoint)
