"""Reading an openpi reference file and comparing outputs with it (shared by the parity checkers).

A reference ``.npz`` holds ``meta/json`` (which model, config, seeds), ``param/…`` (openpi's
parameters under their openpi paths), ``in/…`` (inputs, noise, time) and ``out/…`` (openpi's
outputs). Anything that keeps a file from being checked raises :class:`CannotCheck` with a
one-line reason; ``python -m pi0lite.openpi check`` turns it into exit code 2.
"""

from __future__ import annotations

import json
import pathlib
import zipfile

import numpy as np

FLOAT_TOL = 1e-4  # embeddings, loss, actions (openpi's own eager-vs-jit spread is ≤ 1.5e-5)
EXACT = 0.0  # masks, positions, token ids

Row = tuple[str, float, float]  # (output name, max abs error, tolerance)


class CannotCheck(Exception):
    """The reference file cannot be checked (unreadable, incomplete, or not for this model)."""


def read_reference(path) -> dict[str, np.ndarray]:
    """Every array of a reference ``.npz``; :class:`CannotCheck` for anything that is not one."""
    path = pathlib.Path(path)
    if not path.exists():
        raise CannotCheck("no such file")
    if path.is_dir():
        raise CannotCheck("is a directory, not an .npz file")
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as err:
        raise CannotCheck(f"cannot read: {err.strerror or err}") from err
    if head.startswith(b"\x93NUMPY"):
        raise CannotCheck("is a single .npy array, not an .npz archive")
    if not head.startswith(b"PK"):
        raise CannotCheck(f"not an .npz file (starts with {head!r}, an .npz starts with b'PK')")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as err:
        raise CannotCheck(f"truncated or corrupt .npz ({type(err).__name__}: {err})") from err


def read_meta(ref: dict) -> dict:
    """The parsed ``meta/json`` entry (a JSON object)."""
    if "meta/json" not in ref:
        raise CannotCheck("missing key 'meta/json' (not a pi0lite/openpi reference file?)")
    try:
        meta = json.loads(str(ref["meta/json"]))
    except json.JSONDecodeError as err:
        raise CannotCheck(f"'meta/json' is not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise CannotCheck(f"'meta/json' must be a JSON object, got {type(meta).__name__}")
    return meta


def require_keys(ref: dict, keys) -> None:
    """:class:`CannotCheck` naming the missing keys, if any."""
    missing = [k for k in keys if k not in ref]
    if missing:
        shown = ", ".join(missing[:6]) + (f", … ({len(missing)} in all)" if len(missing) > 6 else "")
        raise CannotCheck(f"missing key{'s' if len(missing) > 1 else ''} {shown}")


def params_of(ref: dict) -> dict[str, np.ndarray]:
    """openpi parameter paths (without the ``param/`` prefix) → arrays."""
    params = {k[len("param/"):]: v for k, v in ref.items() if k.startswith("param/")}
    if not params:
        raise CannotCheck("no 'param/…' entries (the file holds no parameters)")
    return params


def compare(ours: dict, ref: dict, *, exact: tuple[str, ...] = ()) -> list[Row]:
    """One row per output: max abs error against ``ref["out/<name>"]`` and its tolerance.

    Booleans, integers and the names in ``exact`` must match exactly; floats within FLOAT_TOL.
    A shape mismatch is a failed row (infinite error), not an exception.
    """
    rows = []
    for name, value in ours.items():
        expected = ref[f"out/{name}"]
        got = np.asarray(value)
        if got.shape != expected.shape:
            rows.append((f"{name} (shape {got.shape} vs {expected.shape})", float("inf"), EXACT))
            continue
        is_exact = name in exact or expected.dtype == bool or np.issubdtype(expected.dtype, np.integer)
        diff = np.abs(got.astype(np.float64) - expected.astype(np.float64))
        err = float(np.max(diff)) if got.size else 0.0
        if np.isnan(err):
            err = float("inf")
        rows.append((name, err, EXACT if is_exact else FLOAT_TOL))
    return rows
