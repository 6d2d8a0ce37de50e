"""The notebook-14 checks accept correct answers and reject realistic wrong ones with a useful hint.

The patch embedding is written independently here (einops + matmul), not with the package's conv.
"""

import einops
import numpy as np
import pytest

from pi0lite.course.checks import check_image_token_slots, check_patch_embed


def _patches(images, q, pattern="b (r q1) (c q2) ch -> b (r c) (q1 q2 ch)"):
    return einops.rearrange(np.asarray(images), pattern, q1=q, q2=q)


def good_patch_embed(images, kernel, bias):
    q = kernel.shape[0]
    return _patches(images, q) @ kernel.reshape(-1, kernel.shape[-1]) + bias


def test_patch_embed_accepts_reference(capsys):
    check_patch_embed(good_patch_embed)
    assert capsys.readouterr().out.startswith("✓ patch_embed: 4/4")


def test_patch_embed_on_a_hand_sized_image():
    # 2x2 image, one 2x2 patch, width 1, kernel = 1 on the red channel of pixel (0, 1) only
    images = np.zeros((1, 2, 2, 3), np.float32)
    images[0, 0, 1, 0] = 5.0
    kernel = np.zeros((2, 2, 3, 1), np.float32)
    kernel[0, 1, 0, 0] = 1.0
    from pi0lite.vision import embed_patches

    np.testing.assert_allclose(np.asarray(embed_patches(images, kernel, np.array([0.5], np.float32))), [[[5.5]]])


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda im, k, b: _patches(im, k.shape[0], "b (r q1) (c q2) ch -> b (c r) (q1 q2 ch)") @ k.reshape(-1, k.shape[-1]) + b, "row-major"),
        (lambda im, k, b: _patches(im, k.shape[0], "b (r q1) (c q2) ch -> b (r c) (ch q1 q2)") @ k.reshape(-1, k.shape[-1]) + b, "channels first"),
        (lambda im, k, b: _patches(im, k.shape[0], "b (r q1) (c q2) ch -> b (r c) (q2 q1 ch)") @ k.reshape(-1, k.shape[-1]) + b, "swapped y and x"),
        (lambda im, k, b: _patches(im, k.shape[0]) @ k.reshape(-1, k.shape[-1]), "add the bias"),
        # a stride-1 ("overlapping") conv gives far too many tokens
        (lambda im, k, b: np.zeros((im.shape[0], (im.shape[1] - k.shape[0] + 1) ** 2, k.shape[-1]), np.float32), "expected shape"),
    ],
)
def test_patch_embed_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_patch_embed(wrong)


def good_slots(cameras, image_size, patch_size):
    per = (image_size // patch_size) ** 2
    return per * len(cameras), per * sum(v is not None for v in cameras.values())


def test_image_token_slots_accepts_reference(capsys):
    check_image_token_slots(good_slots)
    assert "image_token_slots: 5/5" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        # raw resolution instead of the resized square
        (lambda cams, s, p: (sum((h // p) * (w // p) for h, w in (v for v in cams.values() if v)),) * 2, "resized"),
        # absent cameras dropped from the slots
        (lambda cams, s, p: (good_slots(cams, s, p)[1],) * 2, "still takes its slots"),
        # absent cameras counted as valid
        (lambda cams, s, p: (good_slots(cams, s, p)[0],) * 2, "not valid"),
        # patches per side, not per image
        (lambda cams, s, p: ((s // p) * len(cams), (s // p) * sum(v is not None for v in cams.values())), "square the patches"),
        (lambda cams, s, p: good_slots(cams, s, p)[0], "tuple"),
    ],
)
def test_image_token_slots_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_image_token_slots(wrong)
