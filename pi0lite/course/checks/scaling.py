"""Checks for notebook 12 (scaling pi0: FSDP, LoRA, memory).

Exercises: 12.1 ``fsdp_axis(shape, fsdp_size)`` (which axis of a large parameter to split, or None);
12.2 ``lora_q(x, w, a, b, alpha, rank)`` (the q projection with its LoRA path);
12.3 ``full_finetune_gb(n_params, fsdp, activations_gb)`` (memory of a full fine-tune, by hand).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pi0lite.course.checks._cases import Case, call_student as _call, report_success, run_cases
from pi0lite.lora import lora_path

__all__ = ["check_fsdp_axis", "check_lora_q", "check_full_finetune_gb"]


# --- 12.1 ---------------------------------------------------------------------------------

_FSDP_CASES = [  # (what, shape, fsdp size, axis)
    ("q_einsum [l, n, d, h]", (18, 8, 2048, 256), 8, 2),
    ("embedding [vocab, d]", (257_152, 2048), 8, 0),
    ("mlp linear [l, f, d]", (18, 16_384, 2048), 4, 1),
    ("a [l, d, 1100] weight", (18, 1024, 1100), 8, 1),
    ("SigLIP query [l, w, n, h] on 7 devices", (27, 1152, 16, 72), 7, None),
    ("norm scale [d] (a vector)", (2048,), 8, None),
    ("q_einsum with fsdp size 1", (18, 8, 2048, 256), 1, None),
]


def check_fsdp_axis(fsdp_axis) -> None:
    """``fsdp_axis(shape, fsdp_size) -> int | None``: the largest axis the fsdp size divides, or None."""
    answers = []
    for what, shape, f, want in _FSDP_CASES:
        got = _call(fsdp_axis, what, shape, f)
        answers.append(got)
        if got is not None and not isinstance(got, (int, np.integer)):
            raise AssertionError(f"fsdp_axis, case '{what}': return an axis index (int) or None, got {got!r}")
        if got == want:
            continue
        if all(a is None for a in answers) and want is not None:
            hint = ("you replicate it: then every device holds the full array and FSDP saves nothing. Split "
                    "the largest axis whose size is divisible by the fsdp size.")
        elif got is not None and shape[got] % f:
            hint = f"axis {got} has size {shape[got]}, which {f} devices cannot split evenly; try the next largest axis."
        elif got is not None and want is not None and shape[got] < shape[want]:
            hint = f"axis {got} (size {shape[got]}) is not the largest divisible axis; axis {want} is (size {shape[want]})."
        elif want is None and len(shape) < 2:
            hint = "vectors (norm scales, biases) are tiny: keep them replicated (return None)."
        elif want is None and f == 1:
            hint = "with an fsdp axis of size 1 there is nothing to split: return None."
        elif want is None:
            hint = f"no axis of {shape} is divisible by {f}: replicate it (return None)."
        else:
            hint = "split the largest axis whose size the fsdp size divides."
        raise AssertionError(f"fsdp_axis, case '{what}' (shape {shape}, fsdp {f}): expected {want}, got {got}. {hint}")
    report_success("fsdp_axis", len(_FSDP_CASES))


# --- 12.2 ---------------------------------------------------------------------------------


def _reference_lora_q(x, w, a, b, alpha, rank):
    return jnp.einsum("btd,ndh->btnh", x, w) + lora_path("q_einsum", x, a, b, alpha / rank)


def check_lora_q(lora_q) -> None:
    """``lora_q(x[b,t,d], w[n,d,h], a[n,d,r], b[n,r,h], alpha, rank) -> [b,t,n,h]``."""
    k = jax.random.split(jax.random.key(12), 4)
    cases = []
    for name, (bt, t, d, n, h, r, alpha) in {
        "b=2 t=3 d=8 n=4 h=6 r=2 alpha=8": (2, 3, 8, 4, 6, 2, 8.0),
        "b=1 t=5 d=16 n=2 h=4 r=4 alpha=1": (1, 5, 16, 2, 4, 4, 1.0),
    }.items():
        x = jax.random.normal(k[0], (bt, t, d))
        w = jax.random.normal(k[1], (n, d, h))
        a = jax.random.normal(k[2], (n, d, r))
        b = jax.random.normal(k[3], (n, r, h))
        base = jnp.einsum("btd,ndh->btnh", x, w)
        delta = lora_path("q_einsum", x, a, b, 1.0)

        def mistakes(base=base, delta=delta, alpha=alpha, r=r, x=x, a=a, b=b):
            head_summed = jnp.einsum("btr,nrh->btnh", jnp.einsum("btd,ndr->btr", x, a), b)
            return {
                "the LoRA path is scaled by alpha / rank; you left the scaling out.": base + delta,
                "the scaling is alpha / rank, not rank / alpha.": base + delta * (r / alpha),
                "you returned only the LoRA path: add the frozen base einsum x·W.": delta * (alpha / r),
                "keep the head axis n in the first factor (btd,ndr->btnr): each head has its own A and B.":
                    base + head_summed * (alpha / r),
            }

        cases.append(Case(name=name, args=(x, w, a, b, alpha, r), expected=_reference_lora_q(x, w, a, b, alpha, r),
                          mistakes=mistakes, atol=1e-4, rtol=1e-4))
    run_cases("lora_q", lora_q, cases)


# --- 12.3 ---------------------------------------------------------------------------------


def check_full_finetune_gb(full_finetune_gb, planner: dict, n_params: int, activations_gb: dict) -> None:
    """``full_finetune_gb(n_params, fsdp, activations_gb) -> GB per device`` within 10 % of the planner.

    ``planner``: ``{fsdp: XLA GB}`` from ``python -m pi0lite.memory`` (full fine-tuning, one model);
    ``activations_gb``: ``{fsdp: activation GB per device}`` given to the student.
    """
    for f, want in sorted(planner.items()):
        got = _call(full_finetune_gb, f"fsdp {f}", n_params, f, activations_gb[f])
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise AssertionError(f"full_finetune_gb, fsdp {f}: return a number of GB, got {got!r}") from None
        if abs(got - want) <= 0.10 * want:
            continue
        per_param = (got - activations_gb[f]) * 1e9 * f / n_params
        if got > 1000 * want:
            hint = "GB here means 1e9 bytes; did you return bytes?"
        elif f > 1 and abs(got - activations_gb[f] - (want - activations_gb[f]) * f) < 0.25 * want * f:
            hint = "with FSDP every device holds only 1/fsdp of the parameters, gradients and optimiser state."
        elif abs(got - (want - activations_gb[f])) < 0.015 * want:
            hint = "add the activations (given) to the memory of the parameter-sized arrays."
        elif per_param < 18:
            hint = (f"you count {per_param:.0f} bytes per parameter; full fine-tuning keeps f32 parameters (4), "
                    "f32 gradients (4), AdamW's two moments (8) and openpi's EMA copy (4).")
        else:
            hint = "add the activations (given) to the per-parameter bytes."
        raise AssertionError(f"full_finetune_gb, fsdp {f}: the planner says {want:.1f} GB, you said {got:.1f} GB "
                             f"(more than 10 % off). {hint}")
    report_success("full_finetune_gb", len(planner))
