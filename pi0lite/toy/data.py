"""Toy-task demonstrations: expert episodes cut into one action chunk per step (numpy).

``build_dataset`` draws scenes, plans the scripted expert, replays it in the batched env (so every
recorded state is what the env really produced), renders every frame and cuts, at every step ``t``
of every episode, the chunk ``actions[t : t + H]`` (zero-padded after arrival: "hold still").
Everything is seeded: the same arguments give the same bytes.

Axis letters: n chunks (samples), e episodes, s image side, h action horizon, k xy, l text tokens.
"""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass

import numpy as np
from jaxtyping import Bool, Float, Int, UInt8

from pi0lite.toy import env as toy, expert as toy_expert, render as toy_render

GOAL_CENTRE, GOAL_SCALE = 0.5, 0.3  # aux target: (goal_xy − 0.5) / 0.3, roughly in [−1, 1]


@dataclass(frozen=True, kw_only=True)
class ToyDataset:
    """Chunks (leading axis n) plus the episodes (leading axis e) they come from."""

    images: UInt8[np.ndarray, "n s s 3"]
    state: Float[np.ndarray, "n 4"]  # (x, y, vx, vy) before the chunk's first action
    actions: Float[np.ndarray, "n h 2"]  # the expert's next h velocities
    episode: Int[np.ndarray, " n"]
    step: Int[np.ndarray, " n"]
    scenes: toy.Scenes  # per episode
    coin_flip: Bool[np.ndarray, " e"]  # the expert's side was a coin flip
    side: Int[np.ndarray, " e"]
    outcome: Int[np.ndarray, " e"]  # expert replay outcome (all SUCCESS)

    def __len__(self) -> int:
        return len(self.episode)

    @property
    def instructions(self) -> list[str]:
        """Instruction text of every chunk."""
        per_episode = self.scenes.instructions
        return [per_episode[e] for e in self.episode]

    @property
    def goal_xy(self) -> Float[np.ndarray, "n 2"]:
        return self.scenes.goal_xy[self.episode]


def replay(scenes: toy.Scenes, actions: Float[np.ndarray, "e t 2"]):
    """Run the action sequences in the batched env; returns (positions, velocities, alive, outcome).

    ``alive[e, t]`` is True when episode ``e`` was still running before step ``t``.
    """
    env = toy.BatchedToyEnv()
    env.reset(scenes)
    steps = max(toy.MAX_STEPS, actions.shape[1])
    pos, vel, alive = [], [], []
    padded = np.zeros((len(scenes), steps, 2))
    padded[:, : actions.shape[1]] = actions
    for t in range(toy.MAX_STEPS):
        alive.append(~env.done)
        pos.append(env.pos.copy())
        vel.append(env.vel.copy())
        if env.done.all():
            break
        env.step(padded[:, t])
    return np.stack(pos, 1), np.stack(vel, 1), np.stack(alive, 1), env.outcome.copy()


def build_dataset(
    num_episodes: int, *, seed: int = 0, horizon: int = 16, image_size: int = 32, layout: str = "canonical",
    task: str = "default",
) -> ToyDataset:
    """Expert demonstrations of ``num_episodes`` episodes, one chunk of ``horizon`` per step.

    ``task`` names the expert's variant (:data:`pi0lite.toy.expert.TASKS`; ``"fork"``: faster, side
    decided late); ``"default"`` gives the bytes of before.
    """
    if num_episodes <= 0 or horizon <= 0:
        raise ValueError(f"num_episodes and horizon must be positive, got {num_episodes}, {horizon}")
    rng = np.random.default_rng(seed)
    scenes = toy.sample_scenes(rng, num_episodes, layout=layout)
    expert = toy_expert.plan(scenes, rng, task)
    pos, vel, alive, outcome = replay(scenes, expert.actions)
    episode, step = np.nonzero(alive)  # row-major: episode by episode, step by step
    # chunk = actions[t : t + h], zero-padded past the plan's end
    padded = np.zeros((num_episodes, expert.actions.shape[1] + horizon, 2))
    padded[:, : expert.actions.shape[1]] = expert.actions
    window = step[:, None] + np.arange(horizon)[None]  # [n, h]
    chunks = padded[episode[:, None], window]
    images = toy_render.render_frames(scenes, episode, pos[episode, step], image_size)
    state = np.concatenate([pos[episode, step], vel[episode, step]], -1)
    check_finite({"images": images, "state": state, "actions": chunks}, "build_dataset")
    return ToyDataset(
        images=images, state=state.astype(np.float32), actions=chunks.astype(np.float32),
        episode=episode.astype(np.int32), step=step.astype(np.int32), scenes=scenes,
        coin_flip=expert.coin_flip, side=expert.side, outcome=outcome,
    )


def goal_target(goal_xy: Float[np.ndarray, "n 2"]) -> Float[np.ndarray, "n 2"]:
    """The auxiliary grounding target: the goal square's centre, rescaled to about [−1, 1]."""
    return ((goal_xy - GOAL_CENTRE) / GOAL_SCALE).astype(np.float32)


def training_arrays(dataset: ToyDataset, tokenizer, norm, *, max_token_len: int, action_dim: int,
                    discrete_state: bool = False, fast=None, max_fast_len: int = 0) -> dict:
    """Flat numpy arrays ready to live on the device during training.

    Images stay uint8 (converted to [−1, 1] inside the jitted step); state and actions (checked
    finite, a ``ValueError`` names the field otherwise) are
    normalised with ``norm`` (a :class:`pi0lite.toy.normalize.NormStats` pair) and zero-padded to
    ``action_dim``; prompts are tokenised; ``aux_target`` is the goal centre and ``aux_pos`` the
    index of the colour word in the prompt.

    pi0.5: ``discrete_state=True`` tokenises each chunk's prompt with its normalised state
    (:func:`state_prompt_tokens`). Knowledge insulation: ``fast`` (a
    :class:`pi0lite.fast.prompt.FastPrompt`) adds ``fast_tokens`` / ``fast_mask`` ``[n, max_fast_len]``:
    the FAST tokens of each normalised chunk (real action dims only) in the model's vocabulary,
    then EOS, right-padded.
    """
    from pi0lite.observation import pad_to_dim
    from pi0lite.toy.text import colour_positions, tokenize_batch

    check_finite({"images": dataset.images, "state": dataset.state, "actions": dataset.actions}, "dataset")
    per_episode = dataset.scenes.instructions
    ids, mask = tokenize_batch(tokenizer, per_episode, max_token_len)
    state = norm["state"].normalize(dataset.state)
    actions = norm["actions"].normalize(dataset.actions)
    if discrete_state:
        tokens, token_mask = state_prompt_tokens(tokenizer, per_episode, dataset.episode, state, max_token_len)
    else:
        tokens, token_mask = ids[dataset.episode], mask[dataset.episode]
    arrays = {
        "images": dataset.images,
        "state": np.asarray(pad_to_dim(state, action_dim)),
        "actions": np.asarray(pad_to_dim(actions, action_dim)),
        "tokens": tokens,
        "token_mask": token_mask,
        "aux_target": goal_target(dataset.goal_xy),
        "aux_pos": colour_positions(tokenizer, tokens),
    }
    if fast is not None:
        arrays["fast_tokens"], arrays["fast_mask"] = fast_token_arrays(fast, actions, max_fast_len)
    check_arrays(arrays)
    return arrays


def state_prompt_tokens(tokenizer, instructions: list[str], episode: Int[np.ndarray, " n"],
                        state: Float[np.ndarray, "n j"], max_len: int) -> tuple[Int[np.ndarray, "n l"], Bool[np.ndarray, "n l"]]:
    """:func:`pi0lite.prompt.tokenize_pi05` of every chunk (its episode's instruction, its state), fast.

    Each episode's prompt is tokenised once with a placeholder state, then the state-bin tokens
    are written in by table look-up (each bin ``-1 … 255`` is one word of the toy tokenizer); the
    result is checked against :func:`~pi0lite.prompt.tokenize_pi05` on a sample of chunks.
    """
    from pi0lite.prompt import discretize_state, tokenize_pi05

    j = state.shape[1]
    bins = discretize_state(state)  # [n, j] in -1 … 255
    table = np.array([tokenizer.token_to_id(str(k)) or -1 for k in range(-1, 256)], np.int64)
    if (table < 0).any():
        raise ValueError("the tokenizer has no single token for every state bin -1 … 255 "
                         "(build it with WordTokenizer.from_texts(..., state_prompt=True))")
    ids, mask = tokenize_pi05(tokenizer, instructions, np.zeros((len(instructions), j)), max_len)
    # the placeholder state's bins (all 128) sit right after "state :"
    state_word = tokenizer.token_to_id("state")
    start = np.argmax(ids == state_word, axis=1) + 2  # [e]
    tokens = ids[episode].copy()
    cols = start[episode][:, None] + np.arange(j)[None]
    np.put_along_axis(tokens, cols, table[bins + 1], axis=1)
    sample = np.unique(np.linspace(0, len(episode) - 1, 64).astype(int))
    direct, _ = tokenize_pi05(tokenizer, [instructions[e] for e in episode[sample]], state[sample], max_len)
    if not np.array_equal(direct, tokens[sample]):
        raise ValueError("state_prompt_tokens disagrees with tokenize_pi05 (tokenizer splits a state bin?)")
    return tokens.astype(np.int32), mask[episode]


def fast_token_arrays(fast, actions: Float[np.ndarray, "n h k"], max_len: int
                      ) -> tuple[Int[np.ndarray, "n o"], Bool[np.ndarray, "n o"]]:
    """FAST ids of each chunk mapped into the model vocabulary, then EOS; right-padded to ``max_len``."""
    from pi0lite.fast.prompt import fast_to_vocab

    encoded = fast.fast.encode(actions)
    lengths = np.array([len(e) + 1 for e in encoded])
    if lengths.max() > max_len:
        raise ValueError(f"a chunk needs {lengths.max()} FAST slots (its tokens + EOS), more than max_fast_len={max_len}")
    tokens = np.full((len(encoded), max_len), fast.text.pad_id, np.int32)
    mask = np.arange(max_len)[None] < lengths[:, None]
    for i, e in enumerate(encoded):
        tokens[i, : len(e)] = fast_to_vocab(e, fast.vocab_size, fast.skip)
        tokens[i, len(e)] = fast.text.eos_id
    return tokens, mask


ARRAY_FIELDS = ("images", "state", "actions", "tokens", "token_mask", "aux_target", "aux_pos")
OPTIONAL_FIELDS = ("fast_tokens", "fast_mask")  # knowledge insulation only


def check_finite(fields: dict, where: str) -> None:
    """uint8 images and finite floats, or a ``ValueError`` naming the field and the first bad sample."""
    if fields["images"].dtype != np.uint8:
        raise ValueError(f"{where}: images must be uint8, got {fields['images'].dtype} {fields['images'].shape}")
    for name, x in fields.items():
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            first = int(np.nonzero(~np.isfinite(x.reshape(len(x), -1)).all(-1))[0][0])
            raise ValueError(f"{where}: {name} contains NaN or inf (first at sample {first}, shape {x.shape})")


def check_arrays(arrays: dict) -> None:
    """The training arrays of :func:`training_arrays`: every field present, one length, finite."""
    extra = set(arrays) - set(ARRAY_FIELDS)
    if not set(ARRAY_FIELDS) <= set(arrays) or extra not in (set(), set(OPTIONAL_FIELDS)):
        raise ValueError(f"training arrays must have the fields {ARRAY_FIELDS} (and optionally all of "
                         f"{OPTIONAL_FIELDS}), got {sorted(arrays)}")
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"training arrays must have one length, got {lengths}")
    check_finite(arrays, "training arrays")


def save_dataset(dataset: ToyDataset, path) -> None:
    """Write the dataset to one uncompressed ``.npz`` (fast to reload)."""
    fields = {f.name: getattr(dataset, f.name) for f in dataclasses.fields(dataset) if f.name != "scenes"}
    scenes = {f"scenes_{f.name}": getattr(dataset.scenes, f.name) for f in dataclasses.fields(toy.Scenes)}
    np.savez(pathlib.Path(path), **fields, **scenes)


def load_dataset(path) -> ToyDataset:
    with np.load(pathlib.Path(path)) as z:
        scenes = toy.Scenes(**{f.name: z[f"scenes_{f.name}"] for f in dataclasses.fields(toy.Scenes)})
        names = [f.name for f in dataclasses.fields(ToyDataset) if f.name != "scenes"]
        return ToyDataset(scenes=scenes, **{k: z[k] for k in names})
