"""Round-off or bug? Judging a parity error table (notebook 15_openpi_weights_and_parity).

Two programs that compute the same float32 function in a different order (another einsum
contraction order, a fused kernel, XLA on another CPU) disagree in the last bits: each
operation rounds to the nearest float32, a relative error of at most ε = 2⁻²⁴ ≈ 6e-8 (half an
ulp; numpy's ``finfo.eps`` = 2⁻²³ ≈ 1.2e-7 is one ulp). Through a few dozen matmuls, norms
and softmaxes these add up to relative errors of 1e-7 … 1e-6 of the output's *magnitude*.
So an error is judged relative to the scale of the reference output:

* float outputs: round-off when ``err <= rtol · scale`` with ``rtol`` = 1e-5 for float32
  (≈ 84 ulps of 1.2e-7) and 4e-2 for bfloat16 (about 5 ulps of 2⁻⁷ ≈ 7.8e-3);
* masks, positions and token ids: must match exactly; any difference is a bug.
"""

from __future__ import annotations

import numpy as np

RTOL = {"float32": 1e-5, "bfloat16": 4e-2}
EXACT_KINDS = ("bool", "int")


def classify_error(err: float, scale: float, kind: str) -> str:
    """``"round-off"`` or ``"bug"`` for one output.

    Args:
      err: max |ours − reference| over the output.
      scale: max |reference| (the output's magnitude); 0 for an all-zero output.
      kind: ``"float32"``, ``"bfloat16"`` (float outputs of that precision), ``"bool"`` or ``"int"``.
    """
    if kind in EXACT_KINDS:
        return "round-off" if err == 0 else "bug"
    if kind not in RTOL:
        raise ValueError(f"kind must be one of {sorted(RTOL) + list(EXACT_KINDS)}, got {kind!r}")
    if not np.isfinite(err):
        return "bug"
    return "round-off" if err <= RTOL[kind] * max(float(scale), np.finfo(np.float32).tiny) else "bug"


def kind_of(array: np.ndarray, float_kind: str = "float32") -> str:
    """The ``kind`` of a reference output: bool, int, or the float precision being judged."""
    array = np.asarray(array)
    if array.dtype == bool:
        return "bool"
    if np.issubdtype(array.dtype, np.integer):
        return "int"
    return float_kind
