"""Draw the README's picture: pi0's attention mask for a miniature token layout."""

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from pi0lite.masks import make_attn_mask, prefix_ar_mask, suffix_ar_mask
from pi0lite.course.viz import plot_attn_mask

segments = [("camera 1", 6), ("camera 2 (missing)", 6), ("prompt", 6), ("state", 1), ("actions", 6)]
input_mask = np.concatenate([np.ones(6), np.zeros(6), [1, 1, 1, 1, 0, 0], np.ones(1), np.ones(6)]).astype(bool)
ar = np.concatenate([prefix_ar_mask(18), suffix_ar_mask(6)])
mask = np.asarray(make_attn_mask(input_mask[None], ar))[0]
fig, ax = plt.subplots(figsize=(6, 6))
plot_attn_mask(mask, segments=segments, ax=ax, title="pi0 attention mask (dark = may attend)")
fig.tight_layout()
out = pathlib.Path(__file__).resolve().parents[1] / "docs" / "pi0_attention_mask.png"
fig.savefig(out, dpi=110)
print(out)
