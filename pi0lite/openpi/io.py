"""openpi-format parameters: load and export.

Parameters are exchanged as a *flat* mapping from openpi's '/'-joined parameter paths
(``PaliGemma/llm/layers/attn/q_einsum/w``, …) to arrays — the paths of
``nnx.state(model).to_pure_dict()`` and of openpi checkpoints. Sources: a dict, an ``.npz``
(optionally under a key prefix such as ``param/``), or an openpi orbax checkpoint directory.
"""

from __future__ import annotations

import pathlib
from typing import Mapping

import jax
import numpy as np
from flax import nnx



def _flatten(tree: Mapping, prefix: str = "") -> dict[str, np.ndarray | jax.Array]:
    flat = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, path + "/"))
        else:
            flat[path] = value
    return flat


def _unflatten(flat: Mapping[str, np.ndarray]) -> dict:
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return tree


def flatten_params(model: nnx.Module) -> dict[str, np.ndarray]:
    """The model's parameters as ``{openpi path: numpy array}``."""
    return {k: np.asarray(v) for k, v in _flatten(nnx.to_pure_dict(nnx.state(model, nnx.Param))).items()}


def _strip_value_suffix(flat: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    # openpi training checkpoints (NNX state) end every path with "/value"; drop it.
    if flat and all(k.endswith("/value") for k in flat):
        return {k[: -len("/value")]: v for k, v in flat.items()}
    return dict(flat)


def load_params(model: nnx.Module, flat: Mapping[str, np.ndarray]) -> nnx.Module:
    """Load a flat openpi mapping into ``model`` in place (and return it).

    Every parameter must be present with the right shape and nothing extra may be given;
    otherwise a ``ValueError`` lists the missing, unknown and mis-shaped paths.
    """
    flat = _strip_value_suffix(flat)
    expected = flatten_params(model)
    missing = sorted(set(expected) - set(flat))
    unknown = sorted(set(flat) - set(expected))
    misshaped = sorted(
        f"{k}: expected {expected[k].shape}, got {tuple(np.shape(flat[k]))}"
        for k in set(expected) & set(flat)
        if tuple(np.shape(flat[k])) != expected[k].shape
    )
    if missing or unknown or misshaped:
        lines = [f"parameters do not match the model ({len(expected)} expected):"]
        for title, items in (("missing", missing), ("unknown", unknown), ("mis-shaped", misshaped)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:20]) + (" …" if len(items) > 20 else ""))
        raise ValueError("\n".join(lines))
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(
        state, _unflatten({k: np.asarray(v, dtype=expected[k].dtype) for k, v in flat.items()})
    )
    nnx.update(model, state)
    return model


def load_npz(path, prefix: str = "") -> dict[str, np.ndarray]:
    """Flat mapping from an ``.npz``; with ``prefix`` only keys under it, prefix removed."""
    with np.load(path) as data:
        return {k[len(prefix):]: data[k] for k in data.files if k.startswith(prefix)}


def save_npz(model: nnx.Module, path, prefix: str = "") -> None:
    np.savez(path, **{prefix + k: v for k, v in flatten_params(model).items()})


def _params_dir(path) -> pathlib.Path:
    path = pathlib.Path(path).absolute()
    return path if path.name == "params" else path / "params"


def save_orbax(model: nnx.Module, checkpoint_dir) -> pathlib.Path:
    """Write ``checkpoint_dir/params`` the way openpi stores parameters (``{"params": tree}``)."""
    import orbax.checkpoint as ocp

    target = _params_dir(checkpoint_dir)
    with ocp.PyTreeCheckpointer() as ckptr:
        ckptr.save(target, {"params": _unflatten(flatten_params(model))})
    return target


def load_orbax(checkpoint_dir) -> dict[str, np.ndarray]:
    """Flat mapping from an openpi orbax checkpoint (the directory or its ``params/``)."""
    import orbax.checkpoint as ocp

    source = _params_dir(checkpoint_dir)
    if not source.is_dir():
        raise FileNotFoundError(f"no orbax parameter directory at {source}")
    with ocp.PyTreeCheckpointer() as ckptr:
        tree = ckptr.restore(source)
    tree = tree.get("params", tree)
    return {k: np.asarray(v) for k, v in _flatten(tree).items()}
