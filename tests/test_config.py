import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

from pi0lite.config import OPENPI_DUMMY, PI0, PI05, TINY, GemmaConfig


def test_presets_are_frozen_and_keyword_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TINY.action_dim = 3
    with pytest.raises(TypeError):
        GemmaConfig(64, 4, 128, 8, 1, 16)


def test_prefix_and_suffix_lengths():
    assert OPENPI_DUMMY.prefix_len == 3 * 256 + 48 == 816
    assert OPENPI_DUMMY.suffix_len == 51
    assert TINY.prefix_len == 16 + 8


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(num_heads=6, num_kv_heads=4), "multiple of num_kv_heads"),
        (dict(head_dim=15), "even"),
        (dict(width=0), "positive"),
    ],
)
def test_gemma_validation(change, words):
    with pytest.raises(ValueError, match=words):
        dataclasses.replace(TINY.paligemma, **change)


def test_vision_validation():
    with pytest.raises(ValueError, match="divisible by patch_size"):
        dataclasses.replace(TINY.vision, image_size=30)


def test_experts_must_share_attention_shape():
    with pytest.raises(ValueError, match="head_dim"):
        TINY.replace(action_expert=dataclasses.replace(TINY.action_expert, head_dim=8))
    with pytest.raises(ValueError, match="dtype"):
        TINY.replace(dtype="float16")
    with pytest.raises(ValueError, match="image_keys"):
        TINY.replace(image_keys=("a", "a"))


@pytest.mark.parametrize("cfg, total", [(PI0, 3_238_048_528), (PI05, 3_353_433_872)])
def test_real_parameter_counts_without_allocation(cfg, total):
    from pi0lite.pi0 import Pi0

    abstract = nnx.eval_shape(lambda: Pi0(cfg, rngs=nnx.Rngs(0)))
    leaves = jax.tree.leaves(nnx.state(abstract, nnx.Param))
    assert sum(int(np.prod(x.shape)) for x in leaves) == total


def test_pi05_suffix_has_no_state_token():
    assert OPENPI_DUMMY.replace(pi05=True).suffix_len == OPENPI_DUMMY.action_horizon
