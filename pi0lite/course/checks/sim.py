"""Checks for notebook 13 (pi0 in Meta-World).

Exercises: 13.1 ``frame_to_image(frame)`` (a raw Meta-World frame, rotated by 180° and uint8, to
pi0lite's upright float image in [−1, 1]); 13.2 ``task_success(success)`` (per-task success rate
and its 95 % Wilson interval from episode outcomes ``[tasks, episodes]``).

Both references live in the package (``pi0lite.sim.metaworld.upright`` / ``to_model_image`` and
``pi0lite.sim.evaluate.task_success``); they are pure numpy, so these checks need no simulator.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_frame_to_image", "check_task_success"]


def _frames():
    rng = np.random.default_rng(0)
    ramp = np.zeros((64, 64, 3), np.uint8)  # asymmetric: brighter to the bottom right, a red corner
    ramp[..., 1] = np.add.outer(np.arange(64), np.arange(64)) * 2
    ramp[:8, :8, 0] = 255
    return {"asymmetric ramp 64×64": ramp, "random 64×64": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8),
            "random 48×32": rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)}


def _reference_image(frame):
    from pi0lite.sim.metaworld import to_model_image, upright

    return to_model_image(upright(frame))


def check_frame_to_image(frame_to_image) -> None:
    """``frame_to_image(frame uint8 [H, W, 3]) -> float32 [H, W, 3]`` upright, in [−1, 1]."""
    for name, frame in _frames().items():
        got = frame_to_image(frame.copy())
        want = _reference_image(frame)
        got = np.asarray(got)
        if got.shape != want.shape:
            raise AssertionError(f"frame_to_image, case '{name}': shape {got.shape}, expected {want.shape} "
                                 "(keep the image size; only turn it and rescale the values)")
        if got.dtype.kind != "f":
            raise AssertionError(f"frame_to_image, case '{name}': dtype {got.dtype}, expected float32 "
                                 "(uint8 arithmetic wraps around)")
        if np.allclose(got, want, atol=1e-5):
            continue
        f = frame.astype(np.float32)
        mistakes = {
            "MuJoCo's frame is rotated by 180°, not just upside down: flip rows AND columns (frame[::-1, ::-1])":
                f[::-1] / 127.5 - 1,
            "that mirrors left and right only; the frame is rotated by 180°: flip rows AND columns":
                f[:, ::-1] / 127.5 - 1,
            "the frame still has to be turned: Meta-World's camera images come out rotated by 180°": f / 127.5 - 1,
            "pi0 takes images in [−1, 1], not [0, 1]: x / 255 · 2 − 1": f[::-1, ::-1] / 255,
            "pi0 takes images in [−1, 1]: divide by 255 first, then · 2 − 1 (x / 255 · 2 − 1)": f[::-1, ::-1] * 2 - 1,
        }
        hint = next((h for h, wrong in mistakes.items() if np.allclose(got, wrong, atol=1e-5)),
                    "turn the frame by 180° (frame[::-1, ::-1]) and map 0…255 to −1…1")
        i = tuple(int(v) for v in np.argwhere(~np.isclose(got, want, atol=1e-5))[0])
        raise AssertionError(f"frame_to_image, case '{name}': value at {i} is {got[i]:.4g}, expected "
                             f"{want[i]:.4g}.\nHint: {hint}")
    print(f"✓ frame_to_image: {len(_frames())}/{len(_frames())} cases")


def _outcomes():
    rng = np.random.default_rng(1)
    return {"5 tasks × 20 episodes": rng.random((5, 20)) < np.array([1.0, 0.9, 0.5, 0.15, 0.0])[:, None],
            "2 tasks × 7 episodes": np.array([[1, 0, 1, 1, 0, 1, 1], [0, 0, 0, 0, 0, 0, 1]], bool)}


def check_task_success(task_success) -> None:
    """``task_success(success bool [tasks, episodes]) -> (rate, low, high)``, each ``[tasks]``: Wilson 95 %."""
    from pi0lite.sim.evaluate import task_success as reference

    for name, success in _outcomes().items():
        got = task_success(success.copy())
        if not isinstance(got, tuple) or len(got) != 3:
            raise AssertionError(f"task_success, case '{name}': expected a tuple (rate, low, high)")
        got = [np.asarray(g, np.float64) for g in got]
        want = reference(success)
        for label, g, w in zip(("rate", "low", "high"), got, want):
            if g.shape != w.shape:
                raise AssertionError(f"task_success, case '{name}': {label} has shape {g.shape}, expected {w.shape} "
                                     "(one value per task: average over the episodes axis, -1)")
            if np.allclose(g, w, atol=1e-4):
                continue
            k, n = success.sum(-1), success.shape[-1]
            p = k / n
            wald = 1.96 * np.sqrt(p * (1 - p) / n)
            from pi0lite.sim.evaluate import wilson_interval  # not reference.__globals__: a typecheck wrapper hides it

            z90 = wilson_interval(k, n, z=1.645)
            mistakes = {
                "that is the normal (Wald) interval p ± 1.96·sqrt(p(1−p)/n): it collapses to zero width at 0/n "
                "and n/n. Use the Wilson score interval.": {"low": p - wald, "high": p + wald},
                "the Wald interval, clipped to [0, 1], still has zero width at 0/n and n/n: use the Wilson score "
                "interval.": {"low": np.clip(p - wald, 0, 1), "high": np.clip(p + wald, 0, 1)},
                "z = 1.645 gives a 90 % interval; a 95 % interval uses z = 1.96": {"low": z90[0], "high": z90[1]},
                "average over the episodes (axis -1), one rate per task": {"rate": success.mean(0)},
            }
            hint = next((h for h, wrong in mistakes.items() if label in wrong and np.shape(wrong[label]) == g.shape
                         and np.allclose(g, wrong[label], atol=1e-4)),
                        "rate = successes / n; Wilson: centre (p + z²/2n)/(1 + z²/n), half-width "
                        "z/(1 + z²/n)·sqrt(p(1−p)/n + z²/4n²), z = 1.96")
            i = int(np.argmax(~np.isclose(g, w, atol=1e-4)))
            raise AssertionError(f"task_success, case '{name}': {label}[{i}] = {g[i]:.4f}, expected {w[i]:.4f}."
                                 f"\nHint: {hint}")
    print(f"✓ task_success: {len(_outcomes())}/{len(_outcomes())} cases")
