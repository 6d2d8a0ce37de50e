"""A trained toy policy: the model, its normalisation stats and its tokenizer, saved together.

``Policy.infer(images, state, instructions, key)`` maps raw observations (uint8 images, the
4-D state, instruction strings) to raw action chunks ``[b, H, 2]`` (as wide as the action stats):
tokenise, normalise and pad
the state (pi0.5: the normalised state also goes into the prompt as 256-bin numbers,
:func:`pi0lite.prompt.tokenize_pi05`), run the model (flow: ``sample_actions`` with ``num_steps``
Euler steps and the prefix KV cache; mse: one pass; fast: pi0-FAST's greedy decoding, then FAST
decode), un-normalise and drop the padded action dims.

A checkpoint directory holds ``config.json`` (model config + policy meta), ``params.npz``
(parameters under their '/'-joined openpi paths, e.g. ``PaliGemma/llm/...``, ``action_out_proj/kernel``),
``norm_stats.json`` and ``tokenizer.json`` (pi0-FAST adds ``fast/``, its FAST tokenizer). ``params.npz`` also keeps a record (key
``policy/record``) of what the parameters were trained with: the model config, the mode and a
hash of the tokenizer's vocabulary and the widths of the stats. :meth:`Policy.load` checks every file against it (and for
NaN, zero spreads and wrong widths) and names the file at fault. :meth:`Policy.save` writes the
directory atomically (:func:`pi0lite.toy.files.atomic_directory`): a kill leaves the old policy
or the new one, never a mix. :func:`load_shipped` loads the small checkpoints shipped in
``pi0lite/assets/`` (trained by ``make demo``).

Axis letters: b batch, s image side, h action horizon, d action dim, k real action dims.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import zipfile
from typing import Sequence

import jax
import numpy as np
from flax import nnx
from jaxtyping import Array, Float, Int, Shaped

from pi0lite.config import GemmaConfig, Pi0Config, VisionConfig
from pi0lite.observation import pad_to_dim
from pi0lite.openpi import flatten_params, load_npz, load_params
from pi0lite.pi0 import Observation, Pi0
from pi0lite.pi0_fast import FastObservation, Pi0Fast, Pi0FastConfig
from pi0lite.prompt import tokenize_pi05
from pi0lite.toy import fast_policy, files
from pi0lite.toy.mse import mse_actions
from pi0lite.toy.normalize import NormStats, load_stats, save_stats
from pi0lite.toy.text import WordTokenizer, tokenize_batch

ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"
SHIPPED = ASSETS / "toy_policy"
#: Shipped checkpoints: the flow policy, the MSE baseline and the no-aux ablation (all from ``make demo``).
VARIANTS = {"flow": "toy_policy", "mse": "toy_policy_mse", "noaux": "toy_policy_noaux", "fast": "toy_policy_fast",
            "pi05_ki": "toy_policy_pi05_ki"}
MODES = ("flow", "mse", "fast")
RECORD_KEY = "policy/record"  # in params.npz: what the parameters were trained with (JSON)


def config_from_dict(d: dict) -> Pi0Config:
    d = dict(d)
    d["paligemma"], d["action_expert"] = GemmaConfig(**d["paligemma"]), GemmaConfig(**d["action_expert"])
    d["vision"], d["image_keys"] = VisionConfig(**d["vision"]), tuple(d["image_keys"])
    return Pi0Config(**d)


def tokenizer_fingerprint(tokenizer) -> str:
    """sha256 of the vocabulary (token → id): equal exactly when two tokenizers map words alike."""
    vocab = tokenizer.tok.get_vocab()
    return hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest()


def norm_widths(norm: dict[str, NormStats]) -> dict[str, int]:
    return {name: norm[name].dim for name in sorted(norm)}


def check_norm_widths(norm: dict[str, NormStats], action_dim: int, where: str = "norm",
                      trained: dict[str, int] | None = None) -> None:
    """Stats for ``state`` and ``actions``, each at most ``action_dim`` wide and, when ``trained``
    (the widths recorded with the parameters) is given, exactly that wide."""
    if set(norm) != {"state", "actions"}:
        raise ValueError(f"{where}: needs stats for ['actions', 'state'], got {sorted(norm)}")
    for name in ("state", "actions"):
        dim = norm[name].dim
        if dim > action_dim:
            raise ValueError(f"{where}: {name!r} stats have width {dim}, more than the model's action_dim={action_dim}")
        if trained is not None and dim != trained[name]:
            raise ValueError(f"{where}: {name!r} stats have width {dim}, the parameters were trained with "
                             f"{trained[name]} (recorded in params.npz)")


class Policy:
    """Model + stats + tokenizer; ``mode`` is ``"flow"`` (pi0), ``"mse"`` (baseline) or ``"fast"``
    (pi0-FAST: build it with :meth:`Policy.fast`; its details live in :mod:`pi0lite.toy.fast_policy`)."""

    def __init__(self, model: Pi0 | Pi0Fast, norm: dict[str, NormStats], tokenizer, *, mode: str = "flow",
                 num_steps: int = 10, meta: dict | None = None, prompt=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if (mode == "fast") != (prompt is not None):
            raise ValueError(f"mode={mode!r}: a FastPrompt is needed exactly for mode 'fast' (use Policy.fast)")
        self.fast_part = None if prompt is None else fast_policy.FastPart(model, prompt)
        check_norm_widths(norm, model.config.action_dim)
        if tokenizer.vocab_size > model.config.vocab_size:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} tokens, the model's vocab_size is "
                             f"{model.config.vocab_size}")
        self.model, self.norm, self.tokenizer, self.mode = model, norm, tokenizer, mode
        self.num_steps, self.meta = num_steps, dict(meta or {})
        self.config: Pi0Config | Pi0FastConfig = model.config
        graphdef, state = nnx.split(model)
        self._run = jax.jit(lambda st, obs, key: self._actions(nnx.merge(graphdef, st), obs, key))
        self._state = state

    @classmethod
    def fast(cls, model, norm: dict[str, NormStats], prompt, *, meta: dict | None = None) -> "Policy":
        """A pi0-FAST policy (``model`` a :class:`pi0lite.pi0_fast.Pi0Fast`, ``prompt`` its FastPrompt)."""
        return cls(model, norm, prompt.text, mode="fast", prompt=prompt, meta=meta)

    def _actions(self, model: Pi0 | Pi0Fast, obs: Observation | FastObservation, key
                 ) -> Float[Array, "b h d"] | Int[Array, "b n"]:  # pi0-FAST: generated token ids
        if self.fast_part is not None:
            return self.fast_part.generate(model, obs, key)
        if self.mode == "flow":
            return model.sample_actions(key, obs, num_steps=self.num_steps)
        return mse_actions(model, obs)

    def observation(self, images: Shaped[np.ndarray, "b s s 3"], state: Float[np.ndarray, "b 4"],
                    instructions: Sequence[str]) -> Observation | FastObservation:
        """Raw arrays → a normalised, padded, tokenised :class:`Observation`.

        ``images`` must be uint8; the annotation admits any dtype so that a float image gets the
        message below (what the env renders) rather than a bare type-check error.
        """
        images, state = np.asarray(images), np.asarray(state, np.float32)
        if len(instructions) != len(state) or len(images) != len(state):
            raise ValueError(f"images {images.shape}, state {state.shape} and {len(instructions)} instructions "
                             "must have the same batch size")
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (as the toy env renders them), got {images.dtype} {images.shape}")
        width = self.norm["state"].dim
        if state.ndim != 2 or state.shape[1] != width:
            raise ValueError(f"state must be [batch, {width}], got shape {state.shape}")
        if not np.all(np.isfinite(state)):
            rows = np.nonzero(~np.isfinite(state).all(-1))[0]
            raise ValueError(f"state contains NaN or inf in rows {rows[:10].tolist()} (shape {state.shape})")
        if self.fast_part is not None:
            return self.fast_part.observation(images, self.norm["state"].normalize(state), instructions)
        state = self.norm["state"].normalize(state)
        if self.config.pi05:  # pi0.5: the discrete state goes into the prompt (openpi's default)
            ids, mask = tokenize_pi05(self.tokenizer, list(instructions), state, self.config.max_token_len)
        else:
            ids, mask = tokenize_batch(self.tokenizer, list(instructions), self.config.max_token_len)
        state = np.asarray(pad_to_dim(state, self.config.action_dim))
        return Observation.from_numpy({self.config.image_keys[0]: images}, state, ids, mask)

    def refresh(self, model: Pi0 | Pi0Fast) -> None:
        """Use ``model``'s current parameters (same config) without recompiling, e.g. to evaluate
        a policy during training."""
        if model.config != self.config:
            raise ValueError("refresh: the model's config differs from the policy's")
        self.model = model
        _, self._state = nnx.split(model)

    def infer(self, images, state, instructions, key: jax.Array) -> Float[np.ndarray, "b h k"]:
        """Raw action chunks ``[b, H, 2]`` (un-normalised velocities)."""
        out = np.asarray(self._run(self._state, self.observation(images, state, instructions), key))
        if self.fast_part is not None:  # tokens -> actions; an invalid chunk is "hold still"
            return self.fast_part.actions(out, self.norm["actions"])
        return self.norm["actions"].unnormalize(out)[..., : self.norm["actions"].dim]

    # --- checkpoint directory --------------------------------------------------------------

    def record(self) -> dict:
        """What the parameters were trained with; stored in ``params.npz`` and checked on load."""
        record = {"model": dataclasses.asdict(self.config), "mode": self.mode,
                  "tokenizer_sha256": tokenizer_fingerprint(self.tokenizer), "norm_widths": norm_widths(self.norm)}
        if self.fast_part is not None:
            record["fast_sha256"] = self.fast_part.fingerprint()
        return record

    def save(self, directory) -> None:
        """Write the checkpoint directory atomically (temp sibling, fsync, rename)."""
        meta = {**self.meta, "mode": self.mode, "num_steps": self.num_steps}
        with files.atomic_directory(directory) as tmp:
            config = {"model": dataclasses.asdict(self.config), "policy": meta}
            (tmp / "config.json").write_text(json.dumps(config, indent=1))
            files.stage("config.json")
            params = flatten_params(self.model)
            np.savez(tmp / "params.npz", **params, **{RECORD_KEY: np.array(json.dumps(self.record()))})
            files.stage("params.npz")
            save_stats(self.norm, tmp / "norm_stats.json")
            files.stage("norm_stats.json")
            self.tokenizer.save(tmp / "tokenizer.json")
            files.stage("tokenizer.json")
            if self.fast_part is not None:
                self.fast_part.save(tmp / fast_policy.FAST_DIR)
                files.stage(fast_policy.FAST_DIR)

    @classmethod
    def load(cls, directory, *, _trust_files: bool = False) -> "Policy":
        """Load and check a checkpoint directory; every problem is a ``ValueError`` naming the file."""
        d = pathlib.Path(directory)
        files.recover(d)
        if not (d / "params.npz").exists():
            raise ValueError(f"no policy checkpoint in {d} (params.npz missing)")
        paths = {name: d / name for name in ("config.json", "params.npz", "norm_stats.json", "tokenizer.json")}
        for name, path in paths.items():
            if not path.is_file():
                raise ValueError(f"{path}: missing (a policy directory needs {sorted(paths)})")
        try:
            cfg = json.loads(paths["config.json"].read_text())
            meta = dict(cfg["policy"])
            mode, num_steps = meta.pop("mode"), meta.pop("num_steps")
            model_config = (fast_policy.config_from_dict if mode == "fast" else config_from_dict)(cfg["model"])
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{paths['config.json']}: unreadable policy config: {e!r}") from e
        try:
            flat = load_npz(paths["params.npz"])
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise ValueError(f"{paths['params.npz']}: unreadable: {e}") from e
        if RECORD_KEY not in flat and not _trust_files:
            raise ValueError(f"{paths['params.npz']}: no '{RECORD_KEY}' (written by an older pi0lite); if its "
                             f"files belong together, add it once with pi0lite.toy.policy.upgrade({str(d)!r})")
        record = json.loads(str(flat.pop(RECORD_KEY))) if RECORD_KEY in flat else None
        wrong = [] if record is None else files.describe_differences(record["model"], cfg["model"]) + \
            files.describe_differences({"mode": record["mode"]}, {"mode": mode})
        if wrong:
            raise ValueError(f"{paths['config.json']} disagrees with the parameters in params.npz "
                             f"(params.npz vs config.json): {'; '.join(wrong)}")
        bad = [k for k, v in flat.items() if not np.all(np.isfinite(v))]
        if bad:
            raise ValueError(f"{paths['params.npz']}: NaN or inf in {len(bad)} parameters: {', '.join(bad[:5])}")
        model = (fast_policy.Pi0Fast if mode == "fast" else Pi0)(model_config, rngs=nnx.Rngs(0))
        try:
            load_params(model, flat)
        except ValueError as e:
            raise ValueError(f"{paths['params.npz']}: {e}") from e
        norm = load_stats(paths["norm_stats.json"])
        check_norm_widths(norm, model_config.action_dim, where=str(paths["norm_stats.json"]),
                          trained=None if record is None else record["norm_widths"])
        try:
            tokenizer = WordTokenizer.load(paths["tokenizer.json"])
        except Exception as e:  # the tokenizers library raises its own exception type
            raise ValueError(f"{paths['tokenizer.json']}: unreadable tokenizer: {e}") from e
        if record is not None and tokenizer_fingerprint(tokenizer) != record["tokenizer_sha256"]:
            raise ValueError(f"{paths['tokenizer.json']}: not the tokenizer the policy was trained with "
                             "(its vocabulary differs from the one recorded in params.npz)")
        prompt = None
        if mode == "fast":
            prompt = fast_policy.load_prompt(d, tokenizer, model_config,
                                             None if record is None else record.get("fast_sha256"))
        return cls(model, norm, tokenizer, mode=mode, num_steps=num_steps, meta=meta, prompt=prompt)


def upgrade(directory) -> None:
    """Add the parameter record to a checkpoint written before it existed (trusting that its four
    files belong together); the parameters are unchanged. Run once per old checkpoint."""
    policy = Policy.load(directory, _trust_files=True)
    policy.save(directory)
    Policy.load(directory)


def load_shipped(variant: str = "flow") -> Policy:
    """A policy trained by ``make demo`` and shipped with the package: ``"flow"`` (pi0 + aux),
    ``"mse"`` (the regression baseline), ``"noaux"`` (flow without the grounding loss) or
    ``"fast"`` (pi0-FAST + aux, :mod:`pi0lite.toy.fast_job`)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    return Policy.load(ASSETS / VARIANTS[variant])


def shipped_results() -> dict:
    """The ``make demo`` results (and the no-aux ablation) that produced the shipped checkpoints."""
    return json.loads((ASSETS / "toy_results.json").read_text())
