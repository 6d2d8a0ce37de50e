"""Meta-World results: success rate per task for several policies (grouped bars)."""

from __future__ import annotations

import numpy as np


def plot_task_success(success: dict, *, ax=None, episodes: dict | None = None, title: str | None = None,
                      errors: dict | None = None):
    """Grouped bars: ``success[policy][task]`` in [0, 1], one group per task, one colour per policy.

    ``errors[policy][task]`` (optional) draws error bars: a half-width, or ``(below, above)``
    distances from the bar's top (e.g. a 95 % Wilson interval, which is not symmetric).
    ``episodes`` (task → anything with an ``"episodes"`` count, or an int) labels the x axis.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3.6))
    policies = list(success)
    if not policies:
        raise ValueError("success must hold at least one policy")
    tasks = list(success[policies[0]])
    for name in policies:
        if list(success[name]) != tasks:
            raise ValueError(f"success[{name!r}] has tasks {list(success[name])}, expected {tasks}")
    width = 0.8 / len(policies)
    x = np.arange(len(tasks))
    for i, name in enumerate(policies):
        values = np.array([success[name][t] for t in tasks], float)
        yerr = None
        if errors is not None:
            yerr = np.array([np.broadcast_to(np.ravel(errors[name][t]), (2,)) for t in tasks], float).T  # [2, tasks]
        ax.bar(x + (i - (len(policies) - 1) / 2) * width, values, width, yerr=yerr, capsize=2,
               label=f"{name} (mean {values.mean():.0%})")
    labels = [t.removesuffix("-v3") for t in tasks]
    if episodes is not None:
        n = [e["episodes"] if isinstance(e, dict) else int(e) for e in (episodes[t] for t in tasks)]
        labels = [f"{lab}\n(n={k})" for lab, k in zip(labels, n)]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("success rate")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if title:
        ax.set_title(title)
    return ax


def plot_frame_strip(frames, *, ax=None, titles=None, title: str | None = None):
    """Frames ``[k, H, W, 3]`` (uint8, or float in [−1, 1]) side by side in one image, optional titles."""
    import matplotlib.pyplot as plt

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be [k, H, W, 3], got shape {frames.shape}")
    if frames.dtype != np.uint8:
        frames = np.clip((frames.astype(np.float32) + 1.0) / 2.0, 0.0, 1.0)
    if titles is not None and len(titles) != len(frames):
        raise ValueError(f"{len(titles)} titles for {len(frames)} frames")
    if ax is None:
        _, ax = plt.subplots(figsize=(2 * len(frames), 2.3))
    k, h, w = frames.shape[:3]
    ax.imshow(np.concatenate(list(frames), axis=1))
    ax.set_xticks([])
    ax.set_yticks([])
    for i in range(1, k):
        ax.axvline(i * w - 0.5, color="white", lw=1)
    for i, t in enumerate(titles or []):
        ax.text(i * w + w / 2, -2, t, ha="center", va="bottom", fontsize=8)
    if title:
        ax.set_title(title, pad=14 if titles else 6)
    return ax
