"""Every plot helper, fed the sizes the notebooks feed it, draws a readable figure.

Readable (``pi0lite.course.viz._readability``): tick labels ≥ 8 pt as a notebook displays them,
no two tick labels of an axis overlapping, no legend on top of a curve or a point. The composite
figures the notebooks assemble from several helpers (01's time embedding, 05's losses) are
rebuilt here too. The checker itself is tested on figures that are unreadable on purpose.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from pi0lite.course import viz
from pi0lite.course.viz._readability import figure_problems
from pi0lite.flow import posemb_sincos
from pi0lite.toy import scene as toy

RNG = np.random.default_rng(0)
SIM_TASKS = ["button-press-topdown-v3", "drawer-close-v3", "drawer-open-v3", "window-open-v3", "window-close-v3"]
PI0_TINY = [("image", 16), ("text", 8), ("state", 1), ("actions", 4)]


def _loss_curve(n, start, end):
    return np.exp(np.linspace(np.log(start), np.log(end), n)) * (1 + 0.2 * RNG.standard_normal(n))


def _time_embedding():
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    times = np.linspace(0.0, 1.0, 1001)
    emb = np.asarray(posemb_sincos(times, 32))
    slow = np.r_[5:16, 21:32]
    viz.plot_time_embedding(times, emb[:, slow], ax=left, title="t in [0, 1]")
    zoom = np.linspace(0.5, 0.51, 401)
    viz.plot_time_embedding(zoom, posemb_sincos(zoom, 32), ax=right, title="zoom")
    fig.tight_layout()
    return fig


def _losses_05():
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.2))
    viz.plot_losses({"flow matching (velocity error)": _loss_curve(1500, 2.0, 0.9)}, ax=left)
    viz.plot_losses({"MSE regression (action error)": _loss_curve(500, 1.0, 0.25)}, ax=right)
    fig.tight_layout()
    return fig


def _token_masks_08():
    n = 72
    mask = np.arange(n) < 60
    ar = (np.arange(n) >= 30) & mask
    labels = [chr(97 + i % 26) if i < 30 else "#" for i in range(60)] + [""] * 12
    return viz.plot_token_masks(mask, ar, ar, labels=labels, title="example 0").figure


def _scale_sweep_07():
    return viz.plot_scale_sweep([2, 5, 10, 20, 50], [12.1, 21.4, 30.2, 41.0, 58.3], [0.09, 0.04, 0.02, 0.01, 0.004], naive=350).figure


def _masks_10():
    from pi0lite.masks import make_attn_mask, prefix_ar_mask, suffix_ar_mask

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, pi05 in zip(axes, (False, True)):
        ar = np.concatenate([prefix_ar_mask(9), suffix_ar_mask(4, pi05=pi05)])
        valid = np.arange(len(ar)) != 8
        suffix = [("actions", 4)] if pi05 else [("state", 1), ("actions", 4)]
        viz.plot_attn_mask(make_attn_mask(valid[None], ar)[0], segments=[("image", 4), ("prompt", 5), *suffix], ax=ax,
                           title="pi0.5 (state in the prompt)" if pi05 else "pi0 (state token)")
    fig.tight_layout()
    return fig


def _ki_losses_10():
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    history = np.stack([_loss_curve(20, 1.7, 0.7), _loss_curve(20, 6.7, 6.0)], axis=1)
    viz.plot_loss_curves({"KI, 20 steps": history}, ax=axes[0], smooth=3, column=0, title="flow loss (action expert)")
    viz.plot_loss_curves({"KI, 20 steps": history}, ax=axes[1], smooth=3, column=1, title="FAST loss (VLM)")
    fig.tight_layout()
    return fig


def _mask(n=29):
    from pi0lite.masks import make_attn_mask

    ar = np.r_[np.zeros(24), 1, 1, 0, 0, 0].astype(bool) if n == 29 else np.arange(n) >= n // 2
    return np.asarray(make_attn_mask(np.ones((1, n), bool), ar))[0]


def _attention():
    probs = RNG.dirichlet(np.ones(29), size=29)
    return viz.plot_attention(probs, segments=PI0_TINY, title="layer 0, head 0").figure


def _scenes():
    return toy.sample_scenes(np.random.default_rng(0), 2)


def _rollouts():
    scenes = _scenes()
    paths = np.cumsum(RNG.normal(0, 0.02, (4, 60, 2)), axis=1) + scenes.start[0]
    return viz.plot_rollouts(scenes, paths, np.array([1, 2, 3, 4]), title="rollouts").figure


def _meshes_12():
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [2.2, 8]})
    viz.plot_mesh(np.arange(8).reshape(4, 2), ax=axes[0], title="mesh {'data': 4, 'fsdp': 2}")
    viz.plot_mesh(np.arange(8).reshape(1, 8), ax=axes[1], title="mesh {'data': 1, 'fsdp': 8}")
    fig.tight_layout()
    return fig


def _shards_12():
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    viz.plot_shards((2048, 1024), {d: (slice(1024 * (d % 2), 1024 * (d % 2 + 1)), slice(None)) for d in range(8)},
                    ax=axes[0], title="fsdp 2: spec PartitionSpec('fsdp',)")
    viz.plot_shards((2048, 1024), {d: (slice(256 * d, 256 * (d + 1)), slice(None)) for d in range(8)},
                    ax=axes[1], title="fsdp 8: spec PartitionSpec('fsdp',)")
    fig.tight_layout()
    return fig


def _prefix_weights_11():
    from pi0lite import rtc

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for ax, d in zip(axes, (4, 1)):
        viz.plot_prefix_weights({s: rtc.prefix_weights(d, 8, 16, s) for s in rtc.SCHEDULES}, delay=d, exec_horizon=8, ax=ax)
    fig.tight_layout()
    return fig


def _success_vs_delay_11():
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    delays = [0, 1, 2, 3, 4]
    viz.plot_success_vs_delay(delays, {m: list(0.95 - 0.03 * i * np.arange(5)) for i, m in
                                       enumerate(["naive", "ensemble", "rtc", "rtc_train"])}, ax=ax)
    fig.tight_layout()
    return fig


def _chunk_boundaries_11():
    scenes = _scenes()
    fig, axes = plt.subplots(1, 4, figsize=(12, 3.3))
    path = np.stack([np.full(60, scenes.start[0, 0]) + 0.1 * np.sin(np.linspace(0, 3, 60)),
                     np.linspace(scenes.start[0, 1], 0.9, 60)], -1)
    for ax, method in zip(axes, ["naive", "ensemble", "rtc", "rtc_train"]):
        viz.plot_arena(scenes, 0, ax=ax, title=f"{method}, d = 4")
        viz.plot_chunk_boundaries(path, [12, 20, 28, 36, 44, 52], ax=ax, title=f"{method}, d = 4")
    fig.tight_layout()
    return fig


FIGURES = {
    "01 time embedding (two views)": _time_embedding,
    "01 image patches": lambda: viz.plot_image_patches(RNG.integers(0, 255, (32, 32, 3), dtype=np.uint8), 8).figure,
    "01 token layout": lambda: viz.plot_token_layout(PI0_TINY, prefix_len=24, title="TINY").figure,
    "02 attention mask": lambda: viz.plot_attn_mask(_mask(), segments=PI0_TINY, title="pi0").figure,
    "02 small mask with values": lambda: viz.plot_attn_mask(_mask(6), show_values=True, title="6 tokens").figure,
    "04 attention": _attention,
    "05 flow paths": lambda: viz.plot_flow_2d(np.cumsum(RNG.normal(0, 0.3, (11, 200, 2)), 0), data=RNG.normal(0, 1, (800, 2)), title="Euler").figure,
    "05 point clouds": lambda: viz.plot_points_2d({"data": RNG.normal(0, 1, (800, 2)), "flow": RNG.normal(0, 1, (800, 2))}).figure,
    "05 time histogram": lambda: viz.plot_time_histogram(1 - RNG.beta(1.5, 1, 5000)).figure,
    "05 losses (two axes)": _losses_05,
    "06 action chunk": lambda: viz.plot_action_chunk(RNG.normal(0, 1, (50, 7)), title="chunk").figure,
    "06 denoising trajectory": lambda: viz.plot_denoising_trajectory(RNG.normal(0, 1, (11, 50, 7))).figure,
    "07 DCT coefficients": lambda: viz.plot_dct_coefficients(RNG.normal(0, 1, (50, 7)), title="all 50").figure,
    "07 scale sweep": _scale_sweep_07,
    "08 token masks (72 slots)": _token_masks_08,
    "09 arena": lambda: viz.plot_arena(_scenes(), title="scene 0").figure,
    "09 rollouts": _rollouts,
    "09 observation": lambda: viz.plot_observation(RNG.integers(0, 255, (32, 32, 3), dtype=np.uint8), title="go to the red square").figure,
    "14 patch map over an image": lambda: viz.plot_patch_map(RNG.dirichlet(np.ones(16)).reshape(4, 4), image=RNG.integers(0, 255, (32, 32, 3), dtype=np.uint8), mark=5, title="head 0").figure,
    "14 token budget": lambda: viz.plot_token_budget({"pi0: 3 cameras": {"camera 1": 256, "camera 2": 256, "camera 3": 256, "prompt": 48},
                                                      "pi0: 1 camera + 2 empty": {"camera 1": 256, "empty slot": 512, "prompt": 48},
                                                      "toy policy": {"camera 1": 16, "prompt": 8}}, title="prefix").figure,
    "13 success per task": lambda: viz.plot_task_success(
        {p: {t: float(RNG.random()) for t in SIM_TASKS} for p in ("pi0", "mse", "expert")},
        errors={p: {t: (0.1, 0.05) for t in SIM_TASKS} for p in ("pi0", "mse", "expert")},
        episodes=dict.fromkeys(SIM_TASKS, 20), title="success").figure,
    "13 frame strip": lambda: viz.plot_frame_strip(RNG.integers(0, 255, (6, 64, 64, 3), dtype=np.uint8),
                                                   titles=[f"t={i}" for i in range(6)], title="an episode").figure,
    "10 gradient norms": lambda: viz.plot_grad_norms({
        "flow, insulate": {"vision tower": 0.0, "embedder": 0.0, "VLM layers": 0.0, "action-expert layers": 0.8, "action heads": 1.3},
        "flow, no insulation": {"vision tower": 0.02, "embedder": 0.1, "VLM layers": 0.4, "action-expert layers": 0.8, "action heads": 1.3},
        "FAST": {"vision tower": 0.3, "embedder": 2.0, "VLM layers": 1.5, "action-expert layers": 0.0, "action heads": 0.0}}).figure,
    "10 pi0 vs pi0.5 masks": _masks_10,
    "10 KI losses": _ki_losses_10,
    "10 KI mask": lambda: viz.plot_ki_mask(_mask(29), prefix=[("image", 16), ("prompt", 4)], n_fast=5, n_actions=4).figure,
    "10 success curves": lambda: viz.plot_success_curves({n: [{"step": s, "success": min(1.0, s / 4000 + 0.1 * i)} for s in range(500, 5001, 500)]
                                                          for i, n in enumerate(["pi0", "pi0_noaux", "pi05_ki", "pi05_noki"])}).figure,
    "09 loss curves": lambda: viz.plot_loss_curves({"flow": np.abs(RNG.normal(1, 0.3, (5000, 2)))}).figure,
    "12 meshes": _meshes_12,
    "12 shards": _shards_12,
    "12 LoRA": lambda: viz.plot_lora(RNG.normal(0, 1, (64, 48)), RNG.normal(0, 1, (64, 4)), RNG.normal(0, 1, (4, 48)),
                                     title="a rank-4 update")[0].figure,
    "12 memory": lambda: viz.plot_memory({"inference": {1: 17.4, 2: 8.7, 4: 4.4, 8: 2.2}, "lora": {1: 43.3, 2: 21.3, 4: 11.2, 8: 6.1},
                                          "full": {1: 91.9, 2: 45.5, 4: 23.2, 8: 12.0}},
                                         gpus={"RTX 4090": 24, "A100 40 GB": 40, "A100 / H100 80 GB": 80}, title="pi0").figure,
    "11 prefix weights (two panels)": _prefix_weights_11,
    "11 success vs delay": _success_vs_delay_11,
    "11 rollouts with chunk boundaries": _chunk_boundaries_11,
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_figures_are_readable(name):
    fig = FIGURES[name]()
    try:
        assert figure_problems(fig) == []
    finally:
        plt.close(fig)


def test_checker_flags_small_overlapping_and_covered():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.arange(10), np.arange(10), label="data")
    ax.set_xticks(np.arange(10), [f"label {i}" for i in range(10)], fontsize=9)  # too wide: overlap
    ax.set_yticks([0, 5], ["a", "b"], fontsize=6)  # too small
    ax.legend(loc="center")  # on top of the diagonal
    problems = " | ".join(figure_problems(fig))
    plt.close(fig)
    assert "overlap" in problems and "6.0 pt" in problems and "covers line 'data'" in problems


def test_checker_scales_fonts_of_wide_figures():
    fig, ax = plt.subplots(figsize=(24, 2))  # shown at half size in a notebook
    ax.set_xticks([0, 1], ["a", "b"], fontsize=10)
    problems = figure_problems(fig)
    plt.close(fig)
    assert any("pt as displayed" in p for p in problems)
