"""Saving and loading a FAST tokenizer: ``fast_config.json`` (:class:`pi0lite.fast.quantise.FastConfig`)
beside the BPE's ``tokenizer.json``, paired by the latter's sha256; version-1 configs load with
today's names. Anything that does not belong together is refused with ``ValueError``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib

from tokenizers import Tokenizer

from pi0lite.fast.quantise import FORMAT_VERSION, FastConfig

CONFIG_FILE = "fast_config.json"
TOKENIZER_FILE = "tokenizer.json"


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(config: FastConfig, bpe: Tokenizer, path) -> pathlib.Path:
    """Write ``bpe`` and ``config`` (with the sha256 of the written ``tokenizer.json``) into ``path``."""
    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)
    bpe.save(str(path / TOKENIZER_FILE))
    config = dataclasses.replace(config, tokenizer_sha256=_sha256(path / TOKENIZER_FILE))
    (path / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(config), indent=1))
    return path


def load(path) -> tuple[FastConfig, Tokenizer]:
    """``(config, bpe)`` saved by :func:`save` (or by format version 1), checked to belong together."""
    path = pathlib.Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / TOKENIZER_FILE).is_file():
        raise ValueError(f"{path} is not a saved FastTokenizer (needs {CONFIG_FILE} and {TOKENIZER_FILE})")
    config_file, bpe_file = path / CONFIG_FILE, path / TOKENIZER_FILE
    try:
        raw = json.loads(config_file.read_text())
        if raw.get("version") not in (1, FORMAT_VERSION):
            raise ValueError(f"version {raw.get('version')!r}, expected 1 or {FORMAT_VERSION}")
        if raw["version"] == 1:  # same behaviour, today's names
            raw = {**raw, "version": FORMAT_VERSION, "alphabet": {"bytes": "bytes_v1"}.get(raw["alphabet"], raw["alphabet"])}
        config = FastConfig(**raw)
    except (ValueError, TypeError, KeyError, AttributeError) as err:  # JSONDecodeError is a ValueError
        raise ValueError(f"{config_file}: not a valid FAST tokenizer config ({type(err).__name__}: {err})") from err
    expected = config.tokenizer_sha256
    if expected is not None and _sha256(bpe_file) != expected:
        raise ValueError(
            f"{bpe_file} is not the tokenizer saved with {config_file} (sha256 {_sha256(bpe_file)[:12]}…, "
            f"expected {expected[:12]}…); keep each tokenizer.json with its own fast_config.json"
        )
    try:
        bpe = Tokenizer.from_file(str(bpe_file))
    except Exception as err:  # tokenizers raises a bare Exception for malformed JSON
        raise ValueError(f"{bpe_file}: cannot read the BPE tokenizer ({err})") from err
    if bpe.get_vocab_size() > config.vocab_size:
        raise ValueError(
            f"{bpe_file} has {bpe.get_vocab_size()} ids but {config_file} says vocab_size={config.vocab_size}: "
            "they do not belong together"
        )
    return config, bpe
