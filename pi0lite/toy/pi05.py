"""The toy pipeline for pi0.5 (+ knowledge insulation): the model config, tokenizers and training arrays.

pi0.5 as openpi trains it differs from the toy's pi0 in three places, all decided here:

* **normalisation**: quantile (:func:`pi0lite.toy.normalize.norm_kind`), from the same statistics;
* **prompt**: ``"Task: …, State: …;\\nAction: "`` with the normalised state in 256 bins
  (:mod:`pi0lite.prompt`); the word tokenizer gains the punctuation and the bins
  (``WordTokenizer.from_texts(..., state_prompt=True)``);
* **KI**: a FAST tokenizer (pi0lite's own, :class:`pi0lite.fast.FastTokenizer`) fitted on the
  normalised training chunks (real action dims only); its ids sit at the top of the model's
  vocabulary, above the text ids (:class:`pi0lite.fast.prompt.FastPrompt`, ``skip=0``).

Axis letters: n chunks, o FAST token slots.
"""

from __future__ import annotations

import dataclasses

from pi0lite.config import Pi0Config
from pi0lite.fast import FastTokenizer
from pi0lite.fast.prompt import FastPrompt
from pi0lite.toy.data import ToyDataset, training_arrays
from pi0lite.toy.normalize import NormStats, norm_kind, with_kind
from pi0lite.toy.text import WordTokenizer, instruction_tokenizer


@dataclasses.dataclass(frozen=True, kw_only=True)
class KIConfig:
    """How the FAST targets of knowledge insulation are made for the toy task."""

    fast_scale: float = 10.0  # DCT coefficient scale (FAST's default)
    fast_vocab: int = 512  # BPE vocabulary of the FAST tokenizer (≥ the symbols it starts from)
    fit_stride: int = 3  # fit the tokenizer on every ``fit_stride``-th training chunk
    # FAST slots per chunk (tokens + EOS), right-padded; a longer chunk is refused, never cut. The
    # toy's chunks need at most 13 at scale 10 (mean 5.7) and 19 at scale 20: every slot is a VLM
    # token of every training step (16 instead of 24: 60 -> 52 tokens, the KI step ~15 % faster)
    max_fast_len: int = 16
    max_token_len: int = 20  # prompt slots: BOS + 18 words of "Task: … State: a b c d;\nAction:" + 1


def pi05_tokenizer() -> WordTokenizer:
    """The toy's word tokenizer with pi0.5's discrete-state prompt words."""
    return instruction_tokenizer(state_prompt=True)


def pi05_config(base: Pi0Config, text_vocab: int, ki: KIConfig = KIConfig()) -> Pi0Config:
    """``base`` (the toy's pi0 config) as pi0.5 with room for the state prompt and the FAST ids."""
    return base.replace(pi05=True, max_token_len=ki.max_token_len, vocab_size=text_vocab + ki.fast_vocab)


def ki_setup(base: Pi0Config, dataset: ToyDataset, stats: dict[str, NormStats], ki: KIConfig = KIConfig()):
    """``(model_config, tokenizer, norm, fast_prompt, arrays)`` for a pi0.5 KI run on ``dataset``."""
    tokenizer = pi05_tokenizer()
    config = pi05_config(base, tokenizer.vocab_size, ki)
    norm = with_kind(stats, norm_kind(config))
    actions = norm["actions"].normalize(dataset.actions)
    fast = FastTokenizer.fit(actions[:: ki.fit_stride], scale=ki.fast_scale, vocab_size=ki.fast_vocab)
    prompt = FastPrompt(text=tokenizer, fast=fast, vocab_size=config.vocab_size, max_token_len=config.max_token_len,
                        skip=0)
    arrays = training_arrays(dataset, tokenizer, norm, max_token_len=config.max_token_len,
                             action_dim=config.action_dim, discrete_state=True, fast=prompt,
                             max_fast_len=ki.max_fast_len)
    return config, tokenizer, norm, prompt, arrays
