"""The pi0-FAST part of a toy :class:`pi0lite.toy.policy.Policy` (mode ``"fast"``).

* Observation: the instruction and the quantile-normalised state become the prompt
  ``BOS "task: …, state: …;"`` (:mod:`pi0lite.toy.fast_prompt`); the image goes in as for pi0.
* Inference: greedy decoding with the KV cache (:func:`pi0lite.fast.decode.generate`) for at most
  :func:`pi0lite.toy.fast_prompt.max_decode_steps` tokens, then
  :meth:`pi0lite.fast.prompt.FastPrompt.extract_actions` turns ids into a chunk and a validity
  flag. An **invalid** chunk (no ``"action:" … "|"``, an id outside the FAST range, or a FAST
  decode that does not give exactly 16 × 2 coefficients) becomes "hold still" (zero velocity),
  and is counted: ``chunks`` and ``invalid`` add up over every call (:meth:`FastPart.reset_counts`).
* Files: ``fast/`` (the FAST tokenizer's ``fast_config.json`` + ``tokenizer.json``) beside the
  policy's files; its fingerprint is part of the parameter record in ``params.npz``.

Axis letters: b batch, s image side, o generated tokens, h action horizon, k xy.
"""

from __future__ import annotations

import hashlib
import pathlib

import jax
import numpy as np
from jaxtyping import Float, Int, UInt8

from pi0lite.config import GemmaConfig, VisionConfig
from pi0lite.fast import FastTokenizer
from pi0lite.fast import decode as fast_decode
from pi0lite.pi0_fast import FastObservation, Pi0Fast, Pi0FastConfig
from pi0lite.toy import fast_prompt
from pi0lite.toy.files import fsync_path

__all__ = ["FAST_DIR", "FastPart", "Pi0Fast", "config_from_dict", "load_prompt"]

FAST_DIR = "fast"


def config_from_dict(d: dict) -> Pi0FastConfig:
    d = dict(d)
    d["paligemma"], d["vision"] = GemmaConfig(**d["paligemma"]), VisionConfig(**d["vision"])
    d["image_keys"] = tuple(d["image_keys"])
    return Pi0FastConfig(**d)


def fingerprint(fast: FastTokenizer) -> str:
    """sha256 of the FAST tokenizer's BPE and its decode settings."""
    c = fast.config
    settings = [c.scale, c.vocab_size, c.alphabet, c.min_token, c.max_token, c.action_horizon, c.action_dim]
    return hashlib.sha256((repr(settings) + fast.bpe.to_str()).encode()).hexdigest()


class FastPart:
    """Prompt building, decoding budget, tokens → actions and the invalid-decode counts."""

    def __init__(self, model: Pi0Fast, prompt):
        if not isinstance(model, Pi0Fast):
            raise ValueError(f"mode 'fast' needs a Pi0Fast model, got {type(model).__name__}")
        if prompt.vocab_size != model.config.vocab_size or prompt.max_token_len != model.config.max_token_len:
            raise ValueError(f"the prompt (vocab {prompt.vocab_size}, max_token_len {prompt.max_token_len}) does not "
                             f"fit the model (vocab {model.config.vocab_size}, max_token_len {model.config.max_token_len})")
        if prompt.text.eos_id != model.config.eos_id:
            raise ValueError(f"the text tokenizer's eos_id {prompt.text.eos_id} differs from the model's {model.config.eos_id}")
        self.prompt, self.image_key = prompt, model.config.image_keys[0]
        self.max_steps = fast_prompt.max_decode_steps(prompt)
        self.reset_counts()

    def reset_counts(self) -> None:
        self.chunks, self.invalid = 0, 0

    def generate(self, model: Pi0Fast, obs: FastObservation, key: jax.Array):
        """Greedy tokens ``[b, max_steps]`` (0 after EOS); traced inside the policy's jit."""
        tokens, _ = fast_decode.generate(model, obs, key, max_steps=self.max_steps, temperature=0.0)
        return tokens

    def observation(self, images: UInt8[np.ndarray, "b s s 3"], state: Float[np.ndarray, "b 4"],
                    instructions) -> FastObservation:
        """uint8 images, the *normalised* state and the instructions -> the prompt observation."""
        tok = self.prompt.tokenize(list(instructions), state)
        return FastObservation.from_tokens({self.image_key: images}, state, tok)

    def actions(self, tokens: Int[np.ndarray, "b o"], action_stats) -> Float[np.ndarray, "b h k"]:
        """Generated ids -> raw action chunks; invalid chunks are zero velocity (and counted)."""
        actions, valid = self.prompt.extract_actions(tokens)
        raw = action_stats.unnormalize(actions.astype(np.float32))[..., : action_stats.dim]
        raw[~valid] = 0.0
        self.chunks += len(valid)
        self.invalid += int(np.sum(~valid))
        return raw

    def fingerprint(self) -> str:
        return fingerprint(self.prompt.fast)

    def save(self, directory: pathlib.Path) -> None:
        self.prompt.fast.save(directory)
        for f in sorted(pathlib.Path(directory).iterdir()):
            fsync_path(f)


def load_prompt(directory, text, model_config: Pi0FastConfig, expected_sha256: str | None):
    """The FastPrompt of a saved pi0-FAST policy; ``ValueError`` naming ``fast/`` when it does not fit."""
    where = pathlib.Path(directory) / FAST_DIR
    fast = FastTokenizer.load(where)
    if expected_sha256 is not None and fingerprint(fast) != expected_sha256:
        raise ValueError(f"{where}: not the FAST tokenizer the policy was trained with (its fingerprint differs "
                         "from the one recorded in params.npz)")
    prompt = fast_prompt.make_prompt(text, fast, max_token_len=model_config.max_token_len)
    if prompt.vocab_size != model_config.vocab_size:
        raise ValueError(f"{where}: text ({text.vocab_size}) + FAST ({fast.vocab_size}) ids make a vocabulary of "
                         f"{prompt.vocab_size}, the model has {model_config.vocab_size}")
    return prompt
