"""The notebook-13 checks accept correct answers and reject the usual wrong ones (no simulator needed)."""

import numpy as np
import pytest

from pi0lite.course.checks import check_frame_to_image, check_task_success
from pi0lite.sim.evaluate import wilson_interval


def _rejects(check, fn, *fragments):
    with pytest.raises(AssertionError) as info:
        check(fn)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_frame_to_image_accepts_solution(capsys):
    check_frame_to_image(lambda f: np.rot90(f, 2).astype(np.float32) / 255 * 2 - 1)
    assert "✓ frame_to_image: 3/3" in capsys.readouterr().out


def test_frame_to_image_rejects_half_flips_no_flip_and_wrong_scaling():
    scale = lambda f: f.astype(np.float32) / 127.5 - 1
    _rejects(check_frame_to_image, lambda f: scale(f[::-1]), "not just upside down")
    _rejects(check_frame_to_image, lambda f: scale(f[:, ::-1]), "mirrors left and right")
    _rejects(check_frame_to_image, scale, "still has to be turned")
    _rejects(check_frame_to_image, lambda f: f[::-1, ::-1].astype(np.float32) / 255, "not [0, 1]")
    _rejects(check_frame_to_image, lambda f: f[::-1, ::-1] * 2 - 1, "dtype")  # uint8 wraps around


def test_wilson_interval_matches_published_values():
    # 95 % Wilson intervals (z = 1.96): 0/20 → [0, 0.161], 10/20 → [0.299, 0.701], 20/20 → [0.839, 1]
    low, high = wilson_interval(np.array([0, 10, 20]), 20)
    np.testing.assert_allclose(low, [0.0, 0.2993, 0.8389], atol=5e-4)
    np.testing.assert_allclose(high, [0.1611, 0.7007, 1.0], atol=5e-4)


def _solution(success):
    k, n, z = success.sum(-1), success.shape[-1], 1.96
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return p, centre - half, centre + half


def test_task_success_accepts_solution(capsys):
    check_task_success(_solution)
    assert "✓ task_success: 2/2" in capsys.readouterr().out


def test_task_success_rejects_wald_90_percent_and_wrong_axis():
    def wald(s):
        p = s.mean(-1)
        h = 1.96 * np.sqrt(p * (1 - p) / s.shape[-1])
        return p, p - h, p + h

    def z90(s):
        k, n = s.sum(-1), s.shape[-1]
        return (k / n, *wilson_interval(k, n, z=1.645))

    _rejects(check_task_success, wald, "Wald")
    _rejects(check_task_success, lambda s: tuple(np.clip(x, 0, 1) for x in wald(s)), "Wald")
    _rejects(check_task_success, z90, "90 %")
    _rejects(check_task_success, lambda s: (s.mean(0), *_solution(s)[1:]), "shape")
