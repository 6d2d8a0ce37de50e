"""Checks for notebook 15 (openpi weights and parity).

Exercises: 15.1 ``holder(model, path)`` (the pi0lite module that holds an openpi parameter);
15.2 ``verdict(rows)`` (which rows of a parity error table are round-off and which are bugs).

The 15.1 check does not trust attribute names: it finds the true holder by *marking* the
parameter through the public I/O mapping (``flatten_params`` → change one array →
``load_params`` into a copy) and looking for the variable that changed.
"""

from __future__ import annotations

import numpy as np
from flax import nnx

from pi0lite.course.checks._cases import report_success
from pi0lite.course.checks.basics import _call
from pi0lite.openpi import flatten_params, load_params
from pi0lite.openpi.roundoff import classify_error

__all__ = ["check_holder", "check_verdict"]

_MARK = 1234.5


def true_holder(model: nnx.Module, path: str) -> tuple[tuple, type]:
    """(graph path, class) of the module whose variable receives openpi parameter ``path``."""
    flat = flatten_params(model)
    if path not in flat:
        raise KeyError(f"{path!r} is not an openpi parameter path of this model")
    marked = nnx.clone(model)
    flat[path] = np.full_like(flat[path], _MARK)
    load_params(marked, flat)
    found = []
    for graph_path, node in nnx.iter_graph(marked):
        if isinstance(node, nnx.Module):
            for value in vars(node).values():
                if isinstance(value, nnx.Param) and np.all(np.asarray(value.get_value()) == _MARK):
                    found.append((tuple(graph_path), type(node)))
    if len(found) != 1:
        raise RuntimeError(f"expected one holder of {path!r}, found {len(found)}")
    return found[0]


def _graph_path_of(model: nnx.Module, module) -> tuple | None:
    for graph_path, node in nnx.iter_graph(model):
        if node is module:
            return tuple(graph_path)
    return None


_PATHS = (
    "PaliGemma/llm/layers/attn/q_einsum/w",
    "PaliGemma/llm/layers/attn/kv_einsum_1/w",
    "PaliGemma/llm/layers/mlp_1/gating_einsum",
    "PaliGemma/llm/layers/pre_ffw_norm/scale",
    "PaliGemma/llm/final_norm_1/scale",
    "PaliGemma/llm/embedder/input_embedding",
    "PaliGemma/img/embedding/kernel",
    "PaliGemma/img/pos_embedding",
    "PaliGemma/img/Transformer/encoderblock/MlpBlock_0/Dense_1/bias",
    "action_out_proj/kernel",
)


def check_holder(holder, model: nnx.Module) -> None:
    """``holder(model, path) -> nnx.Module``: the module that holds openpi parameter ``path``."""
    for path in _PATHS:
        want_path, want_type = true_holder(model, path)
        got = _call(holder, path, model, path)
        if isinstance(got, nnx.Variable):
            raise AssertionError(
                f"holder, case '{path}': you returned the parameter itself ({type(got).__name__}); "
                f"return the module that holds it, a {want_type.__name__}.\n"
                "Hint: the last part of the path is the parameter's name inside its module."
            )
        if not isinstance(got, nnx.Module):
            raise AssertionError(f"holder, case '{path}': expected an nnx.Module, got {type(got).__name__}")
        got_path = _graph_path_of(model, got)
        if got_path != want_path:
            where = "/".join(map(str, want_path)) or "the model itself"
            hint = ("translate the path with from_openpi_path, then walk every part except the last "
                    "(the parameter's own name).")
            if got_path is not None and len(got_path) < len(want_path) and want_path[: len(got_path)] == got_path:
                hint = "you stopped early: this module only *contains* the holder; keep walking."
            elif got_path is None:
                hint = "the module you returned is not part of this model (did you build a new one?)."
            raise AssertionError(
                f"holder, case '{path}': expected the {want_type.__name__} at {where}, got a "
                f"{type(got).__name__} at {'/'.join(map(str, got_path)) if got_path else '?'}\nHint: {hint}"
            )
    report_success("holder", len(_PATHS))


# --- 15.2 ------------------------------------------------------------------------------------

#: (table name, rows) with rows (output name, max abs error, max |reference|, kind).
_TABLES = [
    ("a clean pi0 run", [
        ("prefix_tokens", 2.4e-6, 6.1, "float32"), ("attn_mask", 0.0, 1.0, "bool"),
        ("positions", 0.0, 864.0, "int"), ("v_t", 9.5e-7, 3.3, "float32"), ("loss", 3.8e-6, 11.0, "float32"),
    ]),
    ("large outputs, large absolute errors", [
        ("suffix_out", 6.0e-5, 48.0, "float32"), ("logits", 3.1e-4, 95.0, "float32"),
        ("prefix_tokens", 2.0e-3, 12.0, "float32"),
    ]),
    ("tiny outputs, tiny absolute errors", [
        ("adarms_cond", 8.0e-7, 2.0e-6, "float32"), ("u_t", 1.0e-9, 1.5, "float32"),
        ("time_emb", 3.0e-8, 1.0, "float32"),
    ]),
    ("masks and positions off by one", [
        ("attn_mask", 1.0, 1.0, "bool"), ("positions", 1.0, 864.0, "int"), ("prefix_mask", 0.0, 1.0, "bool"),
        ("output_tokens", 1.0, 257_000.0, "int"),  # one token id off by one: tiny relative, still a bug
    ]),
    ("bfloat16 weights", [
        ("v_t", 2.1e-2, 3.3, "bfloat16"), ("loss", 1.9, 11.0, "bfloat16"), ("suffix_out", 0.05, 4.0, "bfloat16"),
    ]),
    ("a NaN", [("sample_actions", float("nan"), 2.5, "float32"), ("x_t", 0.0, 3.0, "float32")]),
]


def _hint(name, err, scale, kind, want, got) -> str:
    if kind in ("bool", "int"):
        return f"{name} is a {kind} output: it must match exactly; any difference is a bug."
    if not np.isfinite(err):
        return "a NaN (or inf) error is never round-off."
    rel = err / max(scale, 1e-30)
    if want == "round-off":
        return (f"judge the error relative to the output's size: {err:.1e} / {scale:.2g} = {rel:.1e}, "
                f"within the {kind} round-off budget.")
    return (f"judge the error relative to the output's size: {err:.1e} / {scale:.2g} = {rel:.1e}, "
            f"far above what {kind} rounding produces.")


def check_verdict(verdict) -> None:
    """``verdict(rows) -> {name: "round-off" | "bug"}`` for rows ``(name, err, scale, kind)``."""
    n = 0
    for table, rows in _TABLES:
        got = _call(verdict, table, [tuple(r) for r in rows])
        if not isinstance(got, dict):
            raise AssertionError(f"verdict, case '{table}': expected a dict {{name: 'round-off' or 'bug'}}, got {type(got).__name__}")
        for name, err, scale, kind in rows:
            want = classify_error(err, scale, kind)
            answer = got.get(name)
            if answer not in ("round-off", "bug"):
                raise AssertionError(f"verdict, case '{table}': row {name!r} must be 'round-off' or 'bug', got {answer!r}")
            if answer != want:
                raise AssertionError(
                    f"verdict, case '{table}': {name} (error {err:.2g}, output size {scale:.2g}, {kind}) "
                    f"is {want}, you said {answer}\nHint: {_hint(name, err, scale, kind, want, answer)}"
                )
            n += 1
    report_success("verdict", len(_TABLES))
