"""Teach the shipped toy policy a new instruction word by training only LoRA factors.

``python -m pi0lite.toy.lora_finetune`` (about 2–3 CPU-minutes) starts from the shipped flow policy
(:func:`pi0lite.toy.policy.load_shipped`), appends a word to its tokenizer (default: ``crimson``,
meaning ``red``; every old word keeps its id, the new id is a row of the embedding that training
never used), adds LoRA factors to the VLM expert's attention and feed-forward einsums
(:func:`pi0lite.config.lora_variant`, rank 4, alpha 4; the action expert is left without LoRA) and
trains **only** the ``lora_a`` / ``lora_b`` parameters: the embedding, SigLIP, both experts'
weights and the projections stay frozen (stricter than openpi's filter, which also trains SigLIP
and the projections; :func:`pi0lite.lora.trainable_filter`). AdamW keeps state for the factors only.

Data: fresh expert demonstrations (seed :data:`DATA_SEED`); in half of the episodes whose goal is
the meant colour the instruction uses the new word instead ("go to the crimson square"), the rest
keep their instructions (so the old words are rehearsed, not forgotten). Loss: pi0's flow-matching
loss (no grounding head).

Closed-loop success is measured on the fixed evaluation scenes (:func:`pi0lite.toy.evaluate.eval_scenes`)
with the goal set to the meant colour, once with the new word and once with the old one, before
and after the fine-tune; and on all canonical scenes with the original instructions (forgetting).
With several devices the step is sharded over a ``(data, fsdp)`` mesh (:mod:`pi0lite.sharding`).

Axis letters: n dataset chunks, b batch, l prompt tokens.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from pi0lite import sharding
from pi0lite.config import lora_variant
from pi0lite.pi0 import Pi0
from pi0lite.toy import evaluate as toy_eval, scene as toy_scene
from pi0lite.toy.data import build_dataset, training_arrays
from pi0lite.toy.policy import Policy, load_shipped
from pi0lite.toy.train import batch_observation

DATA_SEED = 4242  # not a seed of the shipped training data (small ints) nor of the evaluation
NEW_WORD, MEANS = "crimson", "red"


@dataclasses.dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    word: str = NEW_WORD
    means: str = MEANS
    rank: int = 4
    alpha: float = 4.0
    steps: int = 300
    batch_size: int = 32
    lr: float = 3e-3
    episodes: int = 120  # demonstrations (all colours)
    new_word_fraction: float = 0.5  # of the episodes whose goal is ``means``
    seed: int = 0

    def __post_init__(self):
        if self.means not in toy_scene.COLOURS:
            raise ValueError(f"FinetuneConfig.means must be one of {toy_scene.COLOURS}, got {self.means!r}")
        if self.steps < 1 or self.rank < 1 or self.batch_size < 1:
            raise ValueError(f"steps, rank, batch_size must be positive, got {self.steps}, {self.rank}, {self.batch_size}")


def is_lora(path, value) -> bool:
    """NNX filter: parameters whose path names a LoRA factor (``lora_a``, ``gating_einsum_lora_b``, ...)."""
    return any("lora" in str(p) for p in path)


LORA_ONLY = nnx.All(nnx.Param, is_lora)


def with_lora(policy: Policy, cfg: FinetuneConfig, tokenizer=None) -> Policy:
    """``policy``'s weights in a model with LoRA factors on the VLM expert (openpi's init, N(0, 0.01))."""
    config = lora_variant(policy.config, action_expert=False, rank=cfg.rank, alpha=cfg.alpha)
    model = Pi0(config, rngs=nnx.Rngs(cfg.seed))
    nnx.update(model, nnx.state(policy.model, nnx.Param))  # every base weight; the factors stay as initialised
    return Policy(model, policy.norm, tokenizer or policy.tokenizer, mode=policy.mode, num_steps=policy.num_steps)


def finetune_arrays(policy: Policy, tokenizer, cfg: FinetuneConfig) -> dict:
    """Training arrays with the new word in ``new_word_fraction`` of the ``means`` episodes."""
    dataset = build_dataset(cfg.episodes, seed=DATA_SEED, horizon=policy.config.action_horizon,
                            image_size=policy.config.vision.image_size)
    arrays = training_arrays(dataset, tokenizer, policy.norm, max_token_len=policy.config.max_token_len,
                             action_dim=policy.config.action_dim)
    colour = toy_scene.COLOURS.index(cfg.means)
    episodes = np.nonzero(dataset.scenes.goal == colour)[0]
    rng = np.random.default_rng(cfg.seed)
    relabel = rng.choice(episodes, int(round(len(episodes) * cfg.new_word_fraction)), replace=False)
    rows = np.isin(dataset.episode, relabel)
    old_id, new_id = tokenizer.token_to_id(cfg.means), tokenizer.token_to_id(cfg.word)
    tokens = arrays["tokens"].copy()
    tokens[rows] = np.where(tokens[rows] == old_id, new_id, tokens[rows])
    if not (tokens == new_id).any(-1)[rows].all():
        raise ValueError(f"finetune_arrays: the word {cfg.means!r} was not found in every relabelled prompt")
    return {k: arrays[k] for k in ("images", "state", "actions", "token_mask")} | {"tokens": tokens}


def flow_loss(model: Pi0, batch: dict, key: jax.Array) -> jax.Array:
    obs = batch_observation(batch, model.config.image_keys[0])
    return jnp.mean(model.compute_loss(key, obs, batch["actions"]))


@functools.lru_cache(maxsize=4)
def make_step(graphdef, batch_size: int):
    """``step(state, data, key, i) -> (state, loss)``: one AdamW step on the LoRA factors only (not jitted).

    The batch drawn from ``data`` goes through :func:`pi0lite.sharding.activation_constraint`: split
    over the mesh when the step is traced under one (:func:`pi0lite.sharding.sharded_jit`), untouched otherwise.
    """

    def step(state, data, key, i):
        model, opt = nnx.merge(graphdef, state)
        idx_key, loss_key = jax.random.split(jax.random.fold_in(key, i))
        idx = jax.random.randint(idx_key, (batch_size,), 0, data["images"].shape[0])
        batch = {k: sharding.activation_constraint(v[idx]) for k, v in data.items()}
        loss, grads = nnx.value_and_grad(flow_loss, argnums=nnx.DiffState(0, LORA_ONLY))(model, batch, loss_key)
        opt.update(model, grads)
        return nnx.state((model, opt)), loss

    return step


def train_lora(policy: Policy, arrays: dict, cfg: FinetuneConfig, *, progress: bool = True,
               mesh=None) -> tuple[Policy, np.ndarray]:
    """Train the LoRA factors of ``policy`` (a :func:`with_lora` policy) in place; returns it and the losses."""
    model = policy.model
    opt = nnx.Optimizer(model, optax.adamw(cfg.lr, weight_decay=0.0), wrt=LORA_ONLY)
    graphdef, state = nnx.split((model, opt))
    data = {k: jnp.asarray(v) for k, v in arrays.items()}
    if mesh is None:
        mesh = sharding.data_parallel_mesh(cfg.batch_size)  # None on one device
    step = make_step(graphdef, cfg.batch_size)
    if mesh is None:
        fn = jax.jit(step, donate_argnums=0)
    else:  # data parallel over every device (the toy's arrays are far below the 4 MiB FSDP threshold)
        shardings = sharding.state_shardings(state, mesh)
        state = sharding.shard(state, shardings)
        data = sharding.shard(data, sharding.replicated(mesh))
        fn = sharding.sharded_jit(step, mesh, shardings, batch_argnums=(), num_args=4)
    key = jax.random.key(cfg.seed)
    losses = []
    for i in tqdm(range(cfg.steps), desc="LoRA fine-tune", disable=not progress):
        state, loss = fn(state, data, key, jnp.int32(i))
        losses.append(loss)
    nnx.update((model, opt), state)
    tuned = Policy(model, policy.norm, policy.tokenizer, mode=policy.mode, num_steps=policy.num_steps)
    return tuned, np.asarray(jax.device_get(losses), np.float32)


def success(policy: Policy, scenes: toy_scene.Scenes, *, replace: tuple[str, str] | None = None, seed: int = 0) -> dict:
    """Closed-loop success on ``scenes``; ``replace=(old, new)`` swaps a word in every instruction."""
    base = toy_eval.policy_fn(policy)

    def fn(obs, key):
        if replace is not None:
            obs = dict(obs, instruction=[t.replace(replace[0], replace[1]) for t in obs["instruction"]])
        return base(obs, key)

    r = toy_eval.rollout(fn, scenes, jax.random.key(seed))
    s = toy_eval.summarize(r)
    return {k: s[k] for k in ("success", "success_ci95", "wrong", "crash", "episodes")}


def evaluation_scenes(cfg: FinetuneConfig, n: int) -> tuple[toy_scene.Scenes, toy_scene.Scenes]:
    """``(scenes whose goal is the meant colour, the canonical scenes as they are)``, both fixed."""
    canonical, _ = toy_eval.eval_scenes(n, 0)
    goal = np.full(len(canonical), toy_scene.COLOURS.index(cfg.means))
    return dataclasses.replace(canonical, goal=goal), canonical


def run(cfg: FinetuneConfig, *, eval_episodes: int = 200, progress: bool = True) -> dict:
    t0 = time.perf_counter()
    shipped = load_shipped("flow")
    tokenizer = shipped.tokenizer.with_words([cfg.word])
    if tokenizer.vocab_size > shipped.config.vocab_size:
        raise ValueError(f"no free embedding row for {cfg.word!r}: the model has {shipped.config.vocab_size} ids")
    base = Policy(shipped.model, shipped.norm, tokenizer, mode=shipped.mode, num_steps=shipped.num_steps)
    meant, canonical = evaluation_scenes(cfg, eval_episodes)
    swap = (cfg.means, cfg.word)
    before = {"new_word": success(base, meant, replace=swap), "old_word": success(base, meant),
              "all_colours": success(base, canonical)}
    policy = with_lora(shipped, cfg, tokenizer)
    arrays = finetune_arrays(policy, tokenizer, cfg)
    t1 = time.perf_counter()
    tuned, losses = train_lora(policy, arrays, cfg, progress=progress)
    train_seconds = time.perf_counter() - t1
    after = {"new_word": success(tuned, meant, replace=swap), "old_word": success(tuned, meant),
             "all_colours": success(tuned, canonical)}
    count = lambda f: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(tuned.model, f)))
    return {
        "config": dataclasses.asdict(cfg), "word_id": tokenizer.token_to_id(cfg.word),
        "parameters": count(nnx.Param), "trainable": count(LORA_ONLY), "chunks": int(len(arrays["tokens"])),
        "loss_first_last": [float(losses[:10].mean()), float(losses[-10:].mean())],
        "before": before, "after": after, "devices": jax.device_count(),
        "train_seconds": round(train_seconds, 1), "total_seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m pi0lite.toy.lora_finetune", description=__doc__.split("\n\n")[0])
    p.add_argument("--word", default=NEW_WORD)
    p.add_argument("--means", default=MEANS, choices=toy_scene.COLOURS)
    p.add_argument("--steps", type=int, default=FinetuneConfig.steps)
    p.add_argument("--rank", type=int, default=FinetuneConfig.rank)
    p.add_argument("--eval-episodes", type=int, default=200)
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/lora_finetune.json"))
    args = p.parse_args(argv)
    cfg = FinetuneConfig(word=args.word, means=args.means, steps=args.steps, rank=args.rank, alpha=float(args.rank))
    result = run(cfg, eval_episodes=args.eval_episodes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)
    b, a = result["before"], result["after"]
    print(f"trainable {result['trainable']:,} of {result['parameters']:,} parameters; "
          f"{result['chunks']} chunks, {cfg.steps} steps in {result['train_seconds']} s")
    for name in ("new_word", "old_word", "all_colours"):
        print(f"{name:12s} success before {b[name]['success']:.0%}  after {a[name]['success']:.0%}")


if __name__ == "__main__":
    main()
