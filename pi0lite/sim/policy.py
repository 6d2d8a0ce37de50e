"""The trained Meta-World policy: :class:`pi0lite.toy.policy.Policy` with 4-D actions.

Same checkpoint layout as the toy policy (``config.json``, ``params.npz``, ``norm_stats.json``,
``tokenizer.json``); :func:`load_shipped` loads the one shipped in ``pi0lite/assets/sim_policy``
(trained by ``make sim-demo``).

Axis letters: b batch, s image side, h action horizon, d action dim.
"""

from __future__ import annotations

import json
import pathlib

import numpy as np
from jaxtyping import Float

from pi0lite.toy.policy import Policy

ASSETS = pathlib.Path(__file__).resolve().parents[1] / "assets"
VARIANTS = {"flow": "sim_policy", "mse": "sim_policy_mse"}
ACTION_DIMS = 4


class SimPolicy(Policy):
    """``infer(images uint8 [b, 64, 64, 3], state [b, 4], instructions, key) -> actions [b, H, 4]``."""

    def infer(self, images, state, instructions, key) -> Float[np.ndarray, "b h d"]:
        out = np.asarray(self._run(self._state, self.observation(images, state, instructions), key))
        return self.norm["actions"].unnormalize(out)[..., :ACTION_DIMS]


def load_shipped(variant: str = "flow") -> SimPolicy:
    """The policy trained by ``make sim-demo`` and shipped with the package (``"flow"``: pi0)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    path = ASSETS / VARIANTS[variant]
    if not (path / "params.npz").exists():
        raise ValueError(f"the {variant!r} sim policy is not shipped ({path} has no params.npz)")
    return SimPolicy.load(path)


def shipped_results() -> dict:
    """The ``make sim-demo`` results that produced the shipped policy."""
    return json.loads((ASSETS / "sim_results.json").read_text())
