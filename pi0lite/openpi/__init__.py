"""openpi compatibility: parameter I/O and parity against openpi's own outputs.

* :mod:`pi0lite.openpi.io` — flat openpi parameter paths ↔ pi0lite modules (dict, npz, orbax);
* :mod:`pi0lite.openpi.check` — ``python -m pi0lite.openpi check REF.npz``;
* :mod:`pi0lite.openpi.parity_pi0`, :mod:`pi0lite.openpi.parity_fast` — the per-model checkers.
"""

from pi0lite.openpi.io import flatten_params, load_npz, load_orbax, load_params, save_npz, save_orbax

__all__ = ["flatten_params", "load_npz", "load_orbax", "load_params", "save_npz", "save_orbax"]
