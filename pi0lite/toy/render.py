"""Vectorised RGB rendering of the toy arena (numpy only).

The static part of a scene (background, squares, disc) is drawn once per scene; the agent dot is
then blended on for every time step. Edges are anti-aliased over one pixel: a shape covers a pixel
by ``clip(0.5 − signed_distance_in_pixels, 0, 1)``. Image row 0 is the top of the arena (y = 1).

Axis letters: n images, c colours, s image side (pixels), k xy.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float, Int, UInt8

from pi0lite.toy.scene import AGENT_RADIUS, SQUARE_HALF, Scenes

BACKGROUND = np.array([0.10, 0.10, 0.12])
SQUARE_RGB = np.array([[0.90, 0.15, 0.15], [0.15, 0.80, 0.20], [0.20, 0.35, 0.95]])  # red, green, blue
DISC_RGB = np.array([0.50, 0.50, 0.50])
AGENT_RGB = np.array([1.0, 1.0, 1.0])


def pixel_centres(size: int) -> tuple[Float[np.ndarray, "s s"], Float[np.ndarray, "s s"]]:
    """World (x, y) of every pixel centre; row 0 is y ≈ 1."""
    c = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(c, 1.0 - c)  # [s, s] each, rows = y from top
    return x, y


def _coverage(signed_distance, size: int):
    """Anti-aliased coverage from a signed distance in arena units (negative inside)."""
    return np.clip(0.5 - signed_distance * size, 0.0, 1.0)


def render_static(scenes: Scenes, size: int = 32) -> Float[np.ndarray, "n s s 3"]:
    """Background, the three squares and the disc, float in [0, 1]."""
    if size not in (32, 64):
        raise ValueError(f"image size must be 32 or 64, got {size}")
    x, y = pixel_centres(size)
    n = len(scenes)
    img = np.broadcast_to(BACKGROUND, (n, size, size, 3)).astype(np.float32).copy()
    for c in range(3):
        dx = np.abs(x - scenes.squares[:, c, 0, None, None]) - SQUARE_HALF  # [n, s, s]
        dy = np.abs(y - scenes.squares[:, c, 1, None, None]) - SQUARE_HALF
        sd = np.maximum(dx, dy)  # box signed distance (exact inside, Chebyshev outside)
        a = _coverage(sd, size)[..., None]
        img = img * (1 - a) + SQUARE_RGB[c] * a
    r = np.hypot(x - scenes.disc[:, 0, None, None], y - scenes.disc[:, 1, None, None])
    a = _coverage(r - scenes.disc_radius[:, None, None], size)[..., None]
    return (img * (1 - a) + DISC_RGB * a).astype(np.float32)


def agent_window(size: int) -> int:
    """Half-width in pixels of the square around the agent's pixel that holds every pixel it covers.

    Pixel ``j`` is touched when its centre ``j + ½`` lies within ``c = (AGENT_RADIUS + 0.5 / size)·size``
    pixels of the agent at ``p`` (:func:`_coverage`), so ``|j − floor(p)| < c + ½``: ``ceil(c)`` is enough
    (2 pixels at 32 px, 3 at 64)."""
    return int(np.ceil((AGENT_RADIUS + 0.5 / size) * size))


def draw_agents(
    static: Float[np.ndarray, "m s s 3"], scene_idx: Int[np.ndarray, " n"], pos: Float[np.ndarray, "n k"]
) -> UInt8[np.ndarray, "n s s 3"]:
    """Blend a white agent dot at ``pos[i]`` onto ``static[scene_idx[i]]``; returns uint8.

    Every pixel away from the dot keeps its static value, so the static frames are rounded to
    uint8 once per scene and only a ``(2w+1)²`` window around each agent (w = :func:`agent_window`)
    is blended: the same bytes as blending the whole frame (``tests/test_toy_env.py`` checks), at a
    few percent of the work (the data of ``make demo`` renders ~150,000 frames)."""
    size = static.shape[1]
    x, y = pixel_centres(size)
    w = agent_window(size)
    offsets = np.arange(-w, w + 1)
    cols = np.clip(np.floor(pos[:, 0] * size).astype(np.int64)[:, None] + offsets, 0, size - 1)  # [n, 2w+1]
    rows = np.clip(np.floor((1.0 - pos[:, 1]) * size).astype(np.int64)[:, None] + offsets, 0, size - 1)
    r = np.hypot(x[0][cols][:, None, :] - pos[:, 0, None, None], y[:, 0][rows][:, :, None] - pos[:, 1, None, None])
    a = _coverage(r - AGENT_RADIUS, size)[..., None]  # [n, 2w+1, 2w+1, 1]
    scene = scene_idx[:, None, None]
    window = static[scene, rows[:, :, None], cols[:, None, :]] * (1 - a) + AGENT_RGB * a
    # the same float64 arithmetic as blending the whole frame, where a = 0 leaves the static value
    static_u8 = np.round(static.astype(np.float64) * 255).astype(np.uint8)
    out = static_u8[scene_idx]
    out[np.arange(len(pos))[:, None, None], rows[:, :, None], cols[:, None, :]] = np.round(window * 255).astype(np.uint8)
    return out


def render(scenes: Scenes, pos: Float[np.ndarray, "n k"], size: int = 32) -> UInt8[np.ndarray, "n s s 3"]:
    """One frame per scene with the agent at ``pos``."""
    return draw_agents(render_static(scenes, size), np.arange(len(scenes)), pos)


def render_frames(
    scenes: Scenes, scene_idx: Int[np.ndarray, " n"], pos: Float[np.ndarray, "n k"], size: int = 32,
    *, block: int = 8192,
) -> UInt8[np.ndarray, "n s s 3"]:
    """Many frames (agent at ``pos[i]`` in scene ``scene_idx[i]``), in blocks to bound memory."""
    static = render_static(scenes, size)
    out = np.empty((len(pos), size, size, 3), np.uint8)
    for lo in range(0, len(pos), block):
        out[lo : lo + block] = draw_agents(static, scene_idx[lo : lo + block], pos[lo : lo + block])
    return out
