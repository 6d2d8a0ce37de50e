"""Checks for notebook 14 (the vision tower).

Exercises: 14.1 ``patch_embed(images, kernel, bias)`` (cut into patches, embed linearly; checked
against :func:`pi0lite.vision.embed_patches`); 14.2 ``image_token_slots(cameras, image_size,
patch_size)`` (how many image tokens a camera set-up puts into pi0's prefix, and how many of
them are valid).
"""

from __future__ import annotations

import einops
import numpy as np

from pi0lite.course.checks._cases import Case, report_success, run_cases
from pi0lite.course.checks.basics import _call
from pi0lite.vision import embed_patches

__all__ = ["check_patch_embed", "check_image_token_slots"]


def _patch_mistakes(images, kernel, bias) -> dict:
    """Outputs of the wrong implementations the 14.1 check knows a hint for."""
    q = kernel.shape[0]
    flat_kernel = kernel.reshape(-1, kernel.shape[-1])  # rows in (y, x, c) order

    def by_rearrange(pattern, kern=flat_kernel, add_bias=True):
        patches = einops.rearrange(images, pattern, q1=q, q2=q)
        return patches @ kern + (bias if add_bias else 0.0)

    yxc = "b (r q1) (c q2) ch -> b (r c) (q1 q2 ch)"
    return {
        "tokens must be row-major: patch (r, c) of the grid is token r * (S/q) + c; you ordered "
        "them column by column (swap the grid axes).": by_rearrange("b (r q1) (c q2) ch -> b (c r) (q1 q2 ch)"),
        "flatten each patch in the kernel's (y, x, channel) order; you flattened channels first "
        "(c, y, x), which pairs pixels with the wrong kernel rows.": by_rearrange("b (r q1) (c q2) ch -> b (r c) (ch q1 q2)"),
        "flatten each patch in the kernel's (y, x, channel) order; you swapped y and x inside "
        "the patch.": by_rearrange("b (r q1) (c q2) ch -> b (r c) (q2 q1 ch)"),
        "add the bias (one vector of width w, the same for every patch).": by_rearrange(yxc, add_bias=False),
    }


def _patch_case(name: str, seed: int, batch: int, side: int, q: int, width: int) -> Case:
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (batch, side, side, 3)).astype(np.float32)
    kernel = (rng.standard_normal((q, q, 3, width)) / np.sqrt(q * q * 3)).astype(np.float32)
    bias = rng.standard_normal(width).astype(np.float32)
    return Case(
        name=name,
        args=(images, kernel, bias),
        expected=np.asarray(embed_patches(images, kernel, bias)),
        mistakes=lambda: _patch_mistakes(images, kernel, bias),
        atol=1e-4,
        rtol=1e-4,
    )


def check_patch_embed(patch_embed) -> None:
    """``patch_embed(images [b, S, S, 3], kernel [q, q, 3, w], bias [w]) -> [b, (S/q)², w]``."""
    cases = [
        _patch_case("one 4x4 image, 2x2 patches, width 3", 0, 1, 4, 2, 3),
        _patch_case("toy camera: 32 px, 8 px patches, width 32", 1, 2, 32, 8, 32),
        _patch_case("pi0's geometry: 224 px, 14 px patches (256 tokens), width 8", 2, 1, 224, 14, 8),
        _patch_case("non-square-friendly: 12 px, 3 px patches, width 5", 3, 3, 12, 3, 5),
    ]
    run_cases(
        "patch_embed",
        patch_embed,
        cases,
        generic_hint="each token is the dot product of one q x q x 3 patch with the kernel (a "
        "conv with stride q), plus the bias; patches do not overlap.",
    )


# --- 14.2 ------------------------------------------------------------------------------------

def _reference_slots(cameras, image_size: int, patch_size: int) -> tuple[int, int]:
    per_camera = (image_size // patch_size) ** 2
    return per_camera * len(cameras), per_camera * sum(size is not None for size in cameras.values())


_SLOT_CASES = [
    ("ALOHA-like: three 480x640 cameras", {"base_0_rgb": (480, 640), "left_wrist_0_rgb": (480, 640), "right_wrist_0_rgb": (480, 640)}, 224, 14),
    ("DROID-like: one 180x320 base camera and a wrist camera; no right wrist", {"base_0_rgb": (180, 320), "left_wrist_0_rgb": (180, 320), "right_wrist_0_rgb": None}, 224, 14),
    ("the toy task: one 32 px camera, 8 px patches", {"base_0_rgb": (32, 32)}, 32, 8),
    ("a single wide 720x1280 camera, two empty slots", {"base_0_rgb": (720, 1280), "left_wrist_0_rgb": None, "right_wrist_0_rgb": None}, 224, 14),
    ("a 448 px tower (pi0-style, higher resolution)", {"base_0_rgb": (480, 640), "left_wrist_0_rgb": (240, 320)}, 448, 14),
]


def _slot_hint(got, cameras, image_size, patch_size) -> str:
    side = image_size // patch_size
    raw = sum((h // patch_size) * (w // patch_size) for h, w in (s for s in cameras.values() if s is not None))
    present = sum(s is not None for s in cameras.values())
    if got[0] == raw or got[1] == raw:
        return ("every camera image is resized (with padding) to image_size x image_size before the "
                "tower, so its raw resolution does not change the token count.")
    if got[0] == side * side * present:
        return ("a missing camera still takes its slots in the prefix (a zero image whose "
                "input_mask is False), so count every camera in the set-up for the slots.")
    if got[1] == side * side * len(cameras):
        return "a missing camera's tokens are not valid: count only cameras with an image as valid."
    if got[0] in (side * len(cameras), (image_size // patch_size) * len(cameras)):
        return "the patches form a (S/q) x (S/q) grid: square the patches per side."
    return "tokens per camera = (image_size // patch_size) ** 2."


def check_image_token_slots(image_token_slots) -> None:
    """``image_token_slots(cameras, image_size, patch_size) -> (slots, valid)``.

    ``cameras`` maps each camera slot of the model to the raw ``(height, width)`` of its image,
    or ``None`` when the robot has no such camera.
    """
    for name, cameras, image_size, patch_size in _SLOT_CASES:
        got = _call(image_token_slots, name, dict(cameras), image_size, patch_size)
        want = _reference_slots(cameras, image_size, patch_size)
        if not isinstance(got, tuple) or len(got) != 2:
            raise AssertionError(f"image_token_slots, case '{name}': expected a tuple (slots, valid), got {got!r}")
        got = tuple(int(v) for v in got)
        if got != want:
            raise AssertionError(
                f"image_token_slots, case '{name}': expected (slots, valid) = {want}, got {got}\n"
                f"Hint: {_slot_hint(got, cameras, image_size, patch_size)}"
            )
    report_success("image_token_slots", len(_SLOT_CASES))
