"""How an image becomes tokens: the patch grid drawn over the picture.

Axis letters: y, x pixels, c colour channels.
"""

import matplotlib.pyplot as plt
import numpy as np
from jaxtyping import ArrayLike, Num

__all__ = ["plot_image_patches"]


def plot_image_patches(image: Num[ArrayLike, "y x c"], patch_size: int, *, ax=None, numbers: bool = True, title: str | None = None):
    """Show an image with its ``patch_size`` grid; each cell becomes one image token.

    Args:
      image: ``[S, S, 3]`` uint8, or float in [−1, 1] (pi0's input range).
      patch_size: side of a square patch in pixels; must divide the image side.
      numbers: write each patch's token index (row-major, as the ViT flattens them).
    Returns:
      The Axes (the picture is ``ax.images[0]``; grid lines in ``ax.lines``).
    """
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[0] != img.shape[1]:
        raise ValueError(f"image must be square [S, S, 3], got shape {img.shape}")
    size = img.shape[0]
    if size % patch_size:
        raise ValueError(f"patch_size {patch_size} must divide the image side {size}")
    if img.dtype != np.uint8:
        img = np.clip((img.astype(np.float32) + 1.0) / 2.0, 0.0, 1.0)
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(img, interpolation="nearest", extent=(0, size, size, 0))
    side = size // patch_size
    for k in range(1, side):
        ax.axhline(k * patch_size, color="white", linewidth=1)
        ax.axvline(k * patch_size, color="white", linewidth=1)
    if numbers:
        for r in range(side):
            for c in range(side):
                ax.text((c + 0.5) * patch_size, (r + 0.5) * patch_size, str(r * side + c), ha="center",
                        va="center", fontsize=8, color="white", fontweight="bold")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"{side}×{side} = {side * side} patches of {patch_size}×{patch_size} px")
    return ax
