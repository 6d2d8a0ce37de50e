"""Notebook-01 token-count check accepts a count from the config's fields and rejects the usual slips."""

import pytest

from pi0lite.course.checks import check_token_counts


def _side(cfg):
    return cfg.vision.image_size // cfg.vision.patch_size


def _good(cfg):
    return len(cfg.image_keys) * _side(cfg) ** 2 + cfg.max_token_len, 1 + cfg.action_horizon


def test_accepts_reference(capsys):
    check_token_counts(_good)
    assert capsys.readouterr().out.startswith("✓ count_tokens")


def test_accepts_the_notebook_solution_shape_of_answer(capsys):
    check_token_counts(lambda c: list(_good(c)))
    check_token_counts(lambda c: tuple(int(x) for x in _good(c)))
    assert capsys.readouterr().out.count("✓") == 2


@pytest.mark.parametrize(
    "wrong, hint",
    [
        (lambda c: (len(c.image_keys) * _side(c) + c.max_token_len, 1 + c.action_horizon), "square grid"),
        (lambda c: (_side(c) ** 2 + c.max_token_len, 1 + c.action_horizon), "every camera"),
        (lambda c: (_good(c)[0], c.action_horizon), "one state token"),
        (lambda c: (len(c.image_keys) * _side(c) ** 2, 1 + c.action_horizon), "prompt"),
        (lambda c: _good(c)[::-1], "in that order"),
    ],
)
def test_rejects(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        check_token_counts(wrong)


@pytest.mark.parametrize(
    "cheat",
    [
        lambda c: (c.prefix_len, c.suffix_len),
        lambda c: (c.num_image_tokens + c.max_token_len, 1 + c.action_horizon),
        lambda c: (len(c.image_keys) * c.vision.num_patches + c.max_token_len, 1 + c.action_horizon),
    ],
)
def test_rejects_reading_the_answer_off_the_config(cheat):
    with pytest.raises(AssertionError, match="count the tokens from the config's fields"):
        check_token_counts(cheat)
