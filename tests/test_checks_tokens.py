"""Notebook-01 token-count check accepts the config's own numbers and rejects the usual slips."""

import pytest

from pi0lite.course.checks import check_token_counts


def _good(cfg):
    return cfg.prefix_len, cfg.suffix_len


def _side(cfg):
    return cfg.vision.image_size // cfg.vision.patch_size


def test_accepts_reference(capsys):
    check_token_counts(_good)
    assert capsys.readouterr().out.startswith("✓ count_tokens")


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda c: (len(c.image_keys) * _side(c) + c.max_token_len, 1 + c.action_horizon), "square grid"),
        (lambda c: (_side(c) ** 2 + c.max_token_len, 1 + c.action_horizon), "every camera"),
        (lambda c: (c.prefix_len, c.action_horizon), "one state token"),
        (lambda c: (c.num_image_tokens, c.suffix_len), "prompt"),
    ],
)
def test_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_token_counts(wrong)
