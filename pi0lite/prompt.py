"""Prompt text of pi0 and pi0.5, as openpi's ``PaliGemmaTokenizer`` builds it.

Axis letters (legend in :mod:`pi0lite`): b batch · j state dims (only the robot's real ones) · r prompt slots.

* pi0 (and pi0.5 with ``discrete_state_input=False``): BOS + tokens(cleaned prompt) + tokens("\\n").
* pi0.5 with the discrete state (openpi's default for pi0.5)::

      BOS + tokens("Task: {cleaned prompt}, State: {s_1 s_2 … s_n};\\nAction: ")

  where each ``s_i`` is state dim i (quantile-normalised, *before* padding to ``action_dim``, so
  only the real dims) put into one of 256 equal bins on [-1, 1] by
  ``digitize(s, linspace(-1, 1, 257)[:-1]) − 1``. That formula has openpi's edge behaviour: a
  value **below −1 gives −1** (not 0), a value **≥ 1 gives 255**, exactly −1 gives 0.

Cleaning (pi0 / pi0.5): ``strip()``, ``_`` → space, newline → space; no lower-casing (pi0-FAST's
cleaning, which lower-cases, is :func:`pi0lite.fast.prompt.clean_prompt`).

The text tokenizer is any object with ``encode(text) -> ids`` that puts BOS first (the toy's
:class:`pi0lite.toy.text.WordTokenizer`, or PaliGemma's sentencepiece model through
:class:`pi0lite.toy.text.SentencePieceTokenizer`) and a ``pad_id``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from jaxtyping import Bool, Float, Int

STATE_BINS = 256


def clean_prompt(text: str) -> str:
    """openpi's pi0 / pi0.5 prompt cleaning: strip, underscores and newlines to spaces (case kept)."""
    return text.strip().replace("_", " ").replace("\n", " ")


def discretize_state(state: Float[np.ndarray, "*lead j"]) -> Int[np.ndarray, "*lead j"]:
    """openpi's state bins: ``digitize(state, linspace(-1, 1, 257)[:-1]) − 1``.

    Bin ``k`` (0…255) covers ``[-1 + k/128, -1 + (k+1)/128)``; below −1 gives **−1**, ≥ 1 gives 255.
    NaN is refused (``np.digitize`` would silently put it in the last bin).
    """
    state = np.asarray(state, np.float64)
    if np.any(np.isnan(state)):
        raise ValueError(f"state contains NaN (shape {state.shape}): cannot discretize it")
    edges = np.linspace(-1.0, 1.0, STATE_BINS + 1)[:-1]
    return (np.digitize(state, edges) - 1).astype(np.int64)


def pi05_prompt(prompt: str, state: Float[np.ndarray, "j"]) -> str:
    """The pi0.5 text (without BOS): ``"Task: {cleaned}, State: {bins};\\nAction: "``.

    ``state`` must already be quantile-normalised and hold only the robot's real dims (openpi
    tokenises before padding).
    """
    state = np.asarray(state)
    if state.ndim != 1:
        raise ValueError(f"state must be one 1-D state vector [state_dim], got shape {state.shape}")
    bins = " ".join(str(int(k)) for k in discretize_state(state))
    return f"Task: {clean_prompt(prompt)}, State: {bins};\nAction: "


def tokenize_pi05(
    tokenizer, prompts: Sequence[str], states: Float[np.ndarray, "b j"], max_len: int
) -> tuple[Int[np.ndarray, "b r"], Bool[np.ndarray, "b r"]]:
    """BOS + tokens of :func:`pi05_prompt` per example, right-padded to ``max_len`` with ``pad_id``.

    Returns ``(ids, mask)``; a prompt longer than ``max_len`` is a ``ValueError`` (openpi truncates
    with a warning; pi0lite never truncates silently).
    """
    states = np.asarray(states)
    if states.ndim != 2 or states.shape[0] != len(prompts):
        raise ValueError(f"states must be [batch={len(prompts)}, state_dim], got shape {states.shape}")
    texts = [pi05_prompt(p, s) for p, s in zip(prompts, states)]
    encode_batch = getattr(tokenizer, "encode_batch", None)
    encoded = encode_batch(texts) if encode_batch is not None else [tokenizer.encode(t) for t in texts]
    ids = np.full((len(texts), max_len), tokenizer.pad_id, np.int32)
    mask = np.zeros((len(texts), max_len), bool)
    for i, tokens in enumerate(encoded):
        if len(tokens) > max_len:
            raise ValueError(f"pi0.5 prompt {texts[i]!r} has {len(tokens)} tokens, more than max_len={max_len}")
        ids[i, : len(tokens)], mask[i, : len(tokens)] = tokens, True
    return ids, mask
