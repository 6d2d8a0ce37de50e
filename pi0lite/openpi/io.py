"""openpi-format parameters: load and export.

Parameters are exchanged as a *flat* mapping from openpi's '/'-joined parameter paths
(``PaliGemma/llm/layers/attn/q_einsum/w``, …) to arrays — the paths of openpi checkpoints.
Sources: a dict, an ``.npz`` (optionally under a key prefix such as ``param/``), or an openpi
orbax checkpoint directory.

pi0lite's modules use openpi's names everywhere except inside the mixture of transformers:
pi0lite keeps each expert's weights together (``llm/experts/1/attn/q_einsum/w``), openpi keeps one
``layers`` tree and tells the experts apart by a name suffix (``llm/layers/attn/q_einsum_1/w``;
expert 0 has none). :func:`to_openpi_path` / :func:`from_openpi_path` translate, and every
function here speaks openpi's names:

======================================================  ============================================
pi0lite module path                                     openpi path
======================================================  ============================================
``llm/experts/{i}/attn/{q,kv,attn_vec}_einsum/w``       ``llm/layers/attn/{q,kv,attn_vec}_einsum{_i}/w``
``llm/experts/{i}/{pre_attention_norm,pre_ffw_norm}/…`` ``llm/layers/{pre_attention_norm,pre_ffw_norm}{_i}/…``
``llm/experts/{i}/mlp/{gating_einsum,linear}``          ``llm/layers/mlp{_i}/{gating_einsum,linear}``
``llm/experts/{i}/final_norm/…``                        ``llm/final_norm{_i}/…``
======================================================  ============================================

(``{_i}`` is empty for expert 0 and ``_1`` for expert 1.) Everything else is named the same.
"""

from __future__ import annotations

import pathlib
import re
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

_EXPERTS = "experts"
_ATTN_WEIGHTS = ("q_einsum", "kv_einsum", "attn_vec_einsum")
_LAYER_PARTS = ("pre_attention_norm", "pre_ffw_norm", "mlp")
_SUFFIXED = re.compile(r"(?P<name>.+?)(?:_(?P<expert>\d+))?")


def _suffix(expert: int) -> str:
    return "" if expert == 0 else f"_{expert}"


def to_openpi_path(path: str) -> str:
    """A pi0lite parameter path → openpi's (``…/experts/1/mlp/linear`` → ``…/layers/mlp_1/linear``)."""
    parts = path.split("/")
    for at in range(len(parts) - 2):
        if parts[at] == _EXPERTS and parts[at + 1].isdigit():
            head, suffix, (module, *tail) = parts[:at], _suffix(int(parts[at + 1])), parts[at + 2 :]
            if module == "final_norm":
                return "/".join([*head, "final_norm" + suffix, *tail])
            if module == "attn":
                return "/".join([*head, "layers", "attn", tail[0] + suffix, *tail[1:]])
            return "/".join([*head, "layers", module + suffix, *tail])
    return path


def from_openpi_path(path: str) -> str:
    """An openpi parameter path → pi0lite's (the inverse of :func:`to_openpi_path`)."""
    parts = path.split("/")
    for at, part in enumerate(parts):
        if part == "layers" and at + 1 < len(parts):
            is_attn = parts[at + 1] == "attn" and at + 2 < len(parts)
            named = parts[at + 2] if is_attn else parts[at + 1]
            match = _SUFFIXED.fullmatch(named)
            name, expert = match["name"], int(match["expert"] or 0)
            if name in (_ATTN_WEIGHTS if is_attn else _LAYER_PARTS):
                rest = parts[at + 3 :] if is_attn else parts[at + 2 :]
                return "/".join([*parts[:at], _EXPERTS, str(expert), *(["attn"] if is_attn else []), name, *rest])
        match = _SUFFIXED.fullmatch(part)
        if match and match["name"] == "final_norm":
            return "/".join([*parts[:at], _EXPERTS, str(int(match["expert"] or 0)), "final_norm", *parts[at + 1 :]])
    return path


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


def _param_variables(model: nnx.Module) -> dict[str, nnx.Variable]:
    """``{openpi path: the model's parameter variable}``."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    return {to_openpi_path("/".join(map(str, path))): variable for path, variable in flat}


def flatten_params(model: nnx.Module) -> dict[str, np.ndarray]:
    """The model's parameters as ``{openpi path: numpy array}``."""
    return {k: np.asarray(v.get_value()) for k, v in _param_variables(model).items()}


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
    variables = _param_variables(model)
    expected = {k: v.get_value() for k, v in variables.items()}
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
    for path, variable in variables.items():
        variable.set_value(jnp.asarray(np.asarray(flat[path]), dtype=expected[path].dtype))
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
