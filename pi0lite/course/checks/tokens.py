"""Checks for notebook 01 (what pi0 sees): counting the prefix and suffix tokens.

Exercise 1.1 ``count_tokens(config) -> (prefix_len, suffix_len)``; the reference is
``Pi0Config.prefix_len`` / ``suffix_len``. The student's function receives a *fields-only*
view of each config (its dataclass fields, no ``prefix_len`` / ``suffix_len`` /
``num_image_tokens`` / ``num_patches`` properties), so the answer cannot be read off the config.
(Exercise 1.2, the time embedding, is checked by ``check_posemb_sincos`` in ``checks/flow.py``.)
"""

import dataclasses
from collections.abc import Callable

import numpy as np

from pi0lite.course.checks._cases import Case, run_cases
from pi0lite.config import OPENPI_DUMMY, PI0, TINY, Pi0Config, VisionConfig

__all__ = ["check_token_counts"]


class _FieldsOnly:
    """A config's dataclass fields (nested configs too), without its derived properties."""

    def __init__(self, config, name: str):
        self._name = name
        for f in dataclasses.fields(config):
            value = getattr(config, f.name)
            setattr(self, f.name, _FieldsOnly(value, f"{name}.{f.name}") if dataclasses.is_dataclass(value) else value)

    def __getattr__(self, attr: str):  # only called for attributes that are not fields
        raise AttributeError(
            f"{self._name}.{attr} is not available here: count the tokens from the config's fields "
            "(vision.image_size, vision.patch_size, image_keys, max_token_len, action_horizon)"
        )


def _custom() -> Pi0Config:
    vision = VisionConfig(image_size=64, patch_size=16, width=32, depth=1, mlp_dim=64, num_heads=2)
    return TINY.replace(image_keys=("left", "right"), vision=vision, max_token_len=5, action_horizon=3)


def check_token_counts(count_tokens: Callable) -> None:
    """``count_tokens(config) -> (prefix_len, suffix_len)`` for pi0 (state token + actions in the suffix)."""
    cases = []
    for name, cfg in [("TINY", TINY), ("OPENPI_DUMMY", OPENPI_DUMMY), ("PI0", PI0), ("2 cameras, 64 px / 16 px", _custom())]:
        v = cfg.vision
        cams, side, text, h = len(cfg.image_keys), v.image_size // v.patch_size, cfg.max_token_len, cfg.action_horizon
        mistakes = {
            "return (prefix_len, suffix_len) in that order: the prefix (images + text) comes first.":
                [1 + h, cams * side**2 + text],
            "a camera gives (image_size / patch_size)² patches: the patches form a square grid.":
                [cams * side + text, 1 + h],
            "every camera in config.image_keys contributes its own patches.": [side**2 + text, 1 + h],
            "the suffix starts with one state token, then action_horizon action tokens.": [cams * side**2 + text, h],
            "the prefix also holds the prompt: max_token_len text slots (padded).": [cams * side**2, 1 + h],
        }
        cases.append(Case(name=name, args=(_FieldsOnly(cfg, "config"),), expected=np.array([cfg.prefix_len, cfg.suffix_len]),
                          mistakes=mistakes, atol=0, rtol=0))
    run_cases("count_tokens", count_tokens, cases)
