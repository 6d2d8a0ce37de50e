"""pi0-FAST's token sequence: prompt layout, masks, and tokens -> actions.

Axis letters (legend in :mod:`pi0lite`): b batch · r token slots (``max_token_len``) · a action
steps · j action (and state) dims · o generated tokens.

Layout (openpi)::

    prefix  = BOS "Task: {prompt}, State: {s_1 s_2 … s_n};\\n"      ar 0, loss 0
    postfix = "Action: " [FAST ids mapped into the vocab] "|" EOS     ar 1, loss 1
    padding = pad id                                                  ar 0, loss 0, mask 0

The state is the quantile-normalised state digitised into 256 bins over [-1, 1] and written as
decimal numbers. FAST id ``k`` becomes vocabulary id ``vocab_size − 1 − skip − k`` (openpi skips
the last 128 PaliGemma ids); the map is its own inverse.

The text tokenizer is pluggable: anything with ``encode(text) -> ids`` (BOS first, as
:mod:`pi0lite.toy.text`), ``decode(ids)``, ``bos_id``, ``eos_id``, ``pad_id`` and ``vocab_size``, e.g.
:class:`CharTokenizer` for the toy task or :class:`pi0lite.toy.text.SentencePieceTokenizer` with the
real PaliGemma model file. Pieces after the first are encoded without their BOS.

Unlike openpi, which decodes the generated ids to text and re-encodes the part between
"Action: " and "|", :meth:`FastPrompt.extract_actions` works on the ids directly, so a
generation that is not exactly ``"Action: " FAST… "|"`` is flagged invalid instead of being
repaired by a text round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from jaxtyping import ArrayLike, Bool, Float, Int

from pi0lite.fast import FastTokenizer

ACTION_PREFIX = "Action: "
ACTION_END = "|"
STATE_BINS = 256


class CharTokenizer:
    """A character-level text tokenizer for toy prompts: 0 pad, 1 EOS, 2 BOS, then printable ASCII."""

    pad_id, eos_id, bos_id = 0, 1, 2
    _first = 3
    _chars = "\n" + "".join(chr(c) for c in range(32, 127))

    def __init__(self):
        self.vocab_size = self._first + len(self._chars)
        self._index = {c: i + self._first for i, c in enumerate(self._chars)}

    def encode(self, text: str) -> list[int]:
        bad = sorted({c for c in text if c not in self._index})
        if bad:
            raise ValueError(f"CharTokenizer: characters {bad!r} in {text!r} are not in the vocabulary")
        return [self.bos_id] + [self._index[c] for c in text]

    def decode(self, ids: Sequence[int] | Int[ArrayLike, "_t"]) -> str:
        n = len(self._chars)
        return "".join(self._chars[i - self._first] for i in map(int, ids) if 0 <= i - self._first < n)


def clean_prompt(text: str) -> str:
    """openpi's FAST prompt cleaning: lower case, strip, underscores to spaces."""
    return text.lower().strip().replace("_", " ")


def discretize_state(state: Float[np.ndarray, "*lead j"]) -> Int[np.ndarray, "*lead j"]:
    """256 equal bins over [-1, 1] (values outside land in the first/last bin): ids 0..255."""
    edges = np.linspace(-1.0, 1.0, STATE_BINS + 1)[:-1]
    return np.digitize(np.asarray(state, np.float64), edges) - 1


def prefix_text(prompt: str, state: Float[np.ndarray, "j"]) -> str:
    bins = " ".join(str(int(v)) for v in discretize_state(state))
    return f"Task: {clean_prompt(prompt)}, State: {bins};\n"


def fast_to_vocab(ids, vocab_size: int, skip: int = 128):
    """FAST id ``k`` <-> vocabulary id ``vocab_size − 1 − skip − k`` (an involution)."""
    return vocab_size - 1 - skip - np.asarray(ids, np.int64)


@dataclass(frozen=True, kw_only=True)
class FastPrompt:
    """Text tokenizer + FAST tokenizer + where the FAST ids live in the model's vocabulary."""

    text: object
    fast: FastTokenizer
    vocab_size: int  # the model's vocabulary (text ids at the bottom, FAST ids at the top)
    max_token_len: int
    skip: int = 128

    def __post_init__(self):
        lowest_fast = self.vocab_size - 1 - self.skip - (self.fast.vocab_size - 1)
        if lowest_fast < self.text.vocab_size:
            raise ValueError(
                f"vocab_size={self.vocab_size} is too small: text ids need [0, {self.text.vocab_size}), "
                f"FAST ids would start at {lowest_fast} (FAST vocab {self.fast.vocab_size}, skip {self.skip})"
            )

    def _piece(self, text: str) -> list[int]:
        ids = self.text.encode(text)
        return ids[1:] if ids and ids[0] == self.text.bos_id else ids

    def tokenize(
        self,
        prompts: Sequence[str],
        states: Float[np.ndarray, "b _j"],
        actions: Float[np.ndarray, "b a j"] | None = None,
    ) -> dict[str, np.ndarray]:
        """Token ids, mask, ar mask and loss mask ``[b, r]``; with ``actions`` the postfix is added."""
        b, L = len(prompts), self.max_token_len
        states = np.asarray(states)
        if states.ndim != 2 or states.shape[0] != b:
            raise ValueError(f"states must be [batch={b}, state_dim], got shape {states.shape}")
        fast_ids = self.fast.encode(actions) if actions is not None else [None] * b
        if actions is not None and len(fast_ids) != b:
            raise ValueError(f"actions have batch {len(fast_ids)}, prompts {b}")
        out = {
            "tokenized_prompt": np.full((b, L), self.text.pad_id, np.int32),
            "tokenized_prompt_mask": np.zeros((b, L), bool),
            "token_ar_mask": np.zeros((b, L), np.int32),
            "token_loss_mask": np.zeros((b, L), bool),
        }
        action_start, action_end = self._piece(ACTION_PREFIX), self._piece(ACTION_END)
        for i in range(b):
            prefix = self.text.encode(prefix_text(prompts[i], states[i]))
            postfix = []
            if fast_ids[i] is not None:
                mapped = fast_to_vocab(fast_ids[i], self.vocab_size, self.skip).tolist()
                postfix = action_start + mapped + action_end + [self.text.eos_id]
            n = len(prefix) + len(postfix)
            if n > L:
                raise ValueError(f"example {i}: {n} tokens ({len(prefix)} prefix + {len(postfix)} postfix) > max_token_len={L}")
            out["tokenized_prompt"][i, :n] = prefix + postfix
            out["tokenized_prompt_mask"][i, :n] = True
            out["token_ar_mask"][i, len(prefix) : n] = 1
            out["token_loss_mask"][i, len(prefix) : n] = True
        return out

    def extract_fast_ids(self, generated: Int[np.ndarray, "b o"]) -> tuple[list[list[int]], Bool[np.ndarray, "b"]]:
        """The FAST ids of each generation ``"Action: " ids… "|"`` (EOS optional) and validity."""
        start, end = self._piece(ACTION_PREFIX), self._piece(ACTION_END)
        gen = np.asarray(generated, np.int64)
        lo = self.vocab_size - 1 - self.skip - (self.fast.vocab_size - 1)
        hi = self.vocab_size - 1 - self.skip
        ids, valid = [], np.zeros(len(gen), bool)
        for i, row in enumerate(gen.tolist()):
            ok = row[: len(start)] == start
            body = row[len(start) :]
            stop = next((j for j, t in enumerate(body) if not lo <= t <= hi), len(body))
            ok = ok and body[stop : stop + len(end)] == end and stop > 0
            fast = fast_to_vocab(body[:stop], self.vocab_size, self.skip).tolist()
            ids.append(fast)
            valid[i] = ok
        return ids, valid

    def extract_actions(
        self, generated: Int[np.ndarray, "b o"], *, zero_invalid: bool = False
    ) -> tuple[Float[np.ndarray, "b a j"], Bool[np.ndarray, "b"]]:
        """Generated ids -> ``(actions, valid)``: marker and terminator checked, then FAST decode."""
        ids, ok = self.extract_fast_ids(generated)
        actions, valid = self.fast.decode(ids)
        valid &= ok
        if zero_invalid:
            actions[~valid] = 0.0
        return actions, valid
