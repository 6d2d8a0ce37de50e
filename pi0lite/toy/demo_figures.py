"""The figures of ``make demo`` (:mod:`pi0lite.toy.demo`), drawn from the evaluated policies with
the plotting functions of :mod:`pi0lite.course.viz` and saved as PNG (and GIF) files."""

from __future__ import annotations

import pathlib


def draw(args, out: pathlib.Path, histories: dict, rollouts: dict) -> None:
    """Write the demo's figures into ``out``: ``loss_curves.png``, ``rollouts_coin_flip.png`` (20 rollouts
    from each of up to three aligned scenes; ``rollouts.gif`` with ``args.gif``), ``rollouts_overview.png``
    and ``attn_mask.png``. ``rollouts[name] = (policy, canonical, aligned)`` as
    :func:`pi0lite.toy.demo.evaluate_all` returns them."""
    import jax
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pi0lite.config import TINY
    from pi0lite.toy.evaluate import policy_fn, rollout
    from pi0lite.masks import make_attn_mask, prefix_ar_mask, suffix_ar_mask
    from pi0lite.course.viz.masks import plot_attn_mask
    from pi0lite.course.viz.toy import animate_rollouts, plot_loss_curves, plot_rollouts

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    plot_loss_curves(histories, ax=axes[0], title="policy loss (flow: velocity MSE; mse: action MSE)")
    plot_loss_curves(histories, ax=axes[1], column=1, title="aux grounding loss")
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png", dpi=120)
    plt.close(fig)

    # 20 rollouts (different noise) from each of up to three aligned scenes: flow picks a side, MSE averages
    names = list(rollouts)
    _, _, tied = rollouts[names[0]]
    k = min(3, len(tied.scenes))  # --aligned may be 0, 1 or 2
    if k == 0:
        print("no aligned scenes (--aligned 0): rollouts_coin_flip.png not drawn", flush=True)
    else:
        fig, axes = plt.subplots(len(names), k, figsize=(3 * k, 3.1 * len(names)), squeeze=False)
        scenes = tied.scenes[np.repeat(np.arange(k), 20)]  # one batch: one compile per policy
        for row, name in enumerate(names):
            r = rollout(policy_fn(rollouts[name][0]), scenes, jax.random.key(100), image_size=args.image_size)
            for col in range(k):
                sl = slice(20 * col, 20 * col + 20)
                ok = (r.outcome[sl] == 1).mean()
                plot_rollouts(scenes[sl], r.paths[sl], r.outcome[sl], ax=axes[row, col], title=f"{name}: {ok:.0%} success")
            if args.gif and row == 0:
                gif_fig, gif_ax = plt.subplots(figsize=(4, 4))
                anim = animate_rollouts(scenes[:20], r.paths[:20], r.outcome[:20], ax=gif_ax)
                anim.save(out / "rollouts.gif", writer="pillow", fps=12)
                plt.close(gif_fig)
        fig.suptitle(f"20 rollouts from each of {k} aligned (exact-tie) scenes; green success, red crash")
        fig.tight_layout()
        fig.savefig(out / "rollouts_coin_flip.png", dpi=120)
        plt.close(fig)

    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False)
    for col, name in enumerate(names):
        _, main, _ = rollouts[name]
        coin = main.coin_flip
        if not coin.any():  # too few episodes for a natural coin flip: draw them all
            coin = np.ones_like(coin)
            title = f"{name}: all {coin.sum()} episodes (no coin-flip episode)"
        else:
            title = f"{name}: all {coin.sum()} natural coin-flip episodes (one arena drawn)"
        first = int(np.argmax(coin))  # draw the arena of the first drawn episode
        plot_rollouts(main.scenes, main.paths[coin], main.outcome[coin], index=first, ax=axes[0, col], alpha=0.4,
                      title=title)
    fig.tight_layout()
    fig.savefig(out / "rollouts_overview.png", dpi=120)
    plt.close(fig)

    cfg = TINY

    ar = np.concatenate([prefix_ar_mask(cfg.prefix_len), suffix_ar_mask(cfg.action_horizon)])
    valid = np.ones((1, len(ar)), bool)
    valid[0, cfg.num_image_tokens + 6 : cfg.prefix_len] = False  # "[BOS] go to the red square" + padding
    mask = np.asarray(make_attn_mask(valid, ar))[0]
    segs = [("image", cfg.num_image_tokens), ("text", cfg.max_token_len), ("state", 1), ("actions", cfg.action_horizon)]
    ax = plot_attn_mask(mask, segments=segs, title="pi0 attention mask of the toy policy")
    ax.figure.savefig(out / "attn_mask.png", dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
