"""pi0-FAST on the toy task: its text tokenizer, FAST tokenizer, prompt and model config.

pi0-FAST writes the action chunk as tokens after a text prompt (:mod:`pi0lite.fast.prompt`)::

    BOS "task: go to the red square, state: 131 12 140 128;" "action:" FAST… "|" EOS

* The text tokenizer is a :class:`pi0lite.toy.text.WordTokenizer` over every word such a prompt
  can contain: the instruction words, ``task:``/``state:``, the 256 state bins written as
  numbers (with and without the closing ``;``), ``action:`` and ``|``. One token per word keeps
  the sequence short (12 prompt tokens instead of ~50 characters).
* The FAST tokenizer (:class:`pi0lite.fast.FastTokenizer`, default ``"bytes"`` alphabet) is fitted
  on the training chunks ``[n, 16, 2]`` after **quantile** normalisation, as openpi does for
  pi0-FAST (pi0 uses z-scores): scale 10, vocabulary 512.
* FAST ids sit at the top of the model's vocabulary; ``skip = 0`` (openpi skips PaliGemma's last
  128 ids, which the toy vocabulary does not have).

Axis letters: b batch, s image side, a action steps, k xy (the toy's 2 action dims).
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from pi0lite.fast import FastTokenizer
from pi0lite.fast.prompt import ACTION_END, ACTION_PREFIX, STATE_BINS, FastPrompt, prefix_text
from pi0lite.pi0_fast import Pi0FastConfig
from pi0lite.toy.scene import COLOURS, instruction

FAST_SCALE = 10.0
FAST_VOCAB = 512
MAX_TOKEN_LEN = 32  # 12 prompt tokens + "action:" + FAST ids + "|" + EOS (the longest toy chunk: ~16 ids)
SKIP = 0


def text_tokenizer():
    """The word tokenizer of the toy pi0-FAST prompt (deterministic: sorted vocabulary)."""
    from pi0lite.toy.text import WordTokenizer

    bins = [str(i) for i in range(STATE_BINS)]
    state_words = " ".join(bins + [f"{b};" for b in bins])
    texts = [prefix_text(instruction(c), np.zeros(1)) for c in range(len(COLOURS))]
    return WordTokenizer.from_texts([*texts, state_words, f"{ACTION_PREFIX} {ACTION_END}"])


def fit_fast(actions: Float[np.ndarray, "n a k"], *, scale: float = FAST_SCALE,
             vocab_size: int = FAST_VOCAB) -> FastTokenizer:
    """FAST fitted on normalised training chunks."""
    return FastTokenizer.fit(np.asarray(actions, np.float64), scale=scale, vocab_size=vocab_size)


def make_prompt(text, fast: FastTokenizer, *, max_token_len: int = MAX_TOKEN_LEN) -> FastPrompt:
    """The prompt layout: text ids at the bottom of the vocabulary, FAST ids right above them."""
    return FastPrompt(text=text, fast=fast, vocab_size=text.vocab_size + fast.vocab_size + SKIP,
                      max_token_len=max_token_len, skip=SKIP)


def model_config(prompt: FastPrompt, pi0_config) -> Pi0FastConfig:
    """pi0-FAST with the backbone and vision tower of the toy pi0 (``pi0_config``, e.g. ``TINY``).

    ``action_dim`` is the state width here (pi0-FAST uses it only to validate the state); the
    action chunk's shape lives in the FAST tokenizer.
    """
    fast = prompt.fast.config
    return Pi0FastConfig(
        action_dim=4, action_horizon=fast.action_horizon, max_token_len=prompt.max_token_len,
        vocab_size=prompt.vocab_size, image_keys=pi0_config.image_keys, paligemma=pi0_config.paligemma,
        vision=pi0_config.vision, eos_id=prompt.text.eos_id, pad_id=prompt.text.pad_id,
    )


def prompt_length(prompt: FastPrompt) -> int:
    """Tokens of the prompt before the postfix (the same for every toy instruction and state)."""
    return len(prompt.text.encode(prefix_text(instruction(0), np.zeros(4))))


def max_decode_steps(prompt: FastPrompt) -> int:
    """Decoding budget: every slot after the prompt (``"action:"`` FAST… ``"|"`` EOS must fit)."""
    return prompt.max_token_len - prompt_length(prompt)
