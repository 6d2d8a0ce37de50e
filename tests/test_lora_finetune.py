"""The LoRA fine-tune of the shipped toy policy (pi0lite.toy.lora_finetune): the tokenizer grows by
one word without moving the others, the relabelled prompts carry it, and a short run changes the
LoRA factors and nothing else. (The closed-loop numbers come from ``python -m pi0lite.toy.lora_finetune``,
2–5 minutes, reported in the README.)"""

import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

from pi0lite.openpi import flatten_params
from pi0lite.toy import lora_finetune as lf, scene as toy_scene
from pi0lite.toy.policy import load_shipped
from pi0lite.toy.text import WordTokenizer


@pytest.fixture(scope="module")
def shipped():
    return load_shipped("flow")


def test_with_words_appends_and_keeps_every_id(shipped):
    old = shipped.tokenizer
    new = old.with_words(["crimson"])
    assert new.vocab_size == old.vocab_size + 1 == 12
    assert new.token_to_id("crimson") == 11  # [PAD] [BOS] [EOS] [UNK] + 7 words, then the new one
    for word in ("go", "to", "the", "red", "green", "blue", "square"):
        assert new.token_to_id(word) == old.token_to_id(word)
    assert new.encode("go to the crimson square") == [1, 5, 10, 9, 11, 8]
    assert new.encode("go to the red square") == old.encode("go to the red square")
    # from_texts is unchanged by the refactor: it rebuilds the shipped vocabulary exactly
    rebuilt = WordTokenizer.from_texts([toy_scene.instruction(c) for c in range(3)])
    assert rebuilt.tok.get_vocab() == old.tok.get_vocab()


@pytest.mark.parametrize("words", [["red"], ["new", "new"], ["two words"], [""]])
def test_with_words_refuses_known_repeated_or_multiword(shipped, words):
    with pytest.raises(ValueError, match="new, distinct single words"):
        shipped.tokenizer.with_words(words)


def test_short_finetune_changes_only_lora(shipped):
    cfg = lf.FinetuneConfig(steps=2, batch_size=8, episodes=6, lr=1e-2)
    tokenizer = shipped.tokenizer.with_words([cfg.word])
    policy = lf.with_lora(shipped, cfg, tokenizer)
    arrays = lf.finetune_arrays(policy, tokenizer, cfg)
    new_id, red_id = tokenizer.token_to_id("crimson"), tokenizer.token_to_id("red")
    with_new = (arrays["tokens"] == new_id).any(-1)
    assert with_new.any() and not (arrays["tokens"][with_new] == red_id).any()
    assert (arrays["tokens"] == red_id).any()  # the other half keeps "red"

    before = flatten_params(policy.model)
    base = flatten_params(shipped.model)
    assert all(np.array_equal(before[k], v) for k, v in base.items())  # LoRA model starts from the shipped weights
    lora_keys = sorted(k for k in before if k not in base)
    assert lora_keys and all("lora" in k for k in lora_keys)

    # trainable = LoRA factors of the VLM expert only (rank r = 4, depth 4, width 64, 4 heads of 16,
    # 1 kv head, mlp 128): q a 4·4·64·4 + b 4·4·4·16, kv a 4·2·64·4 + b 4·2·4·16,
    # attn_vec a 4·4·16·4 + b 4·4·4·64, gating a 4·2·64·4 + b 4·2·4·128, linear a 4·128·4 + b 4·4·64
    hand = 4096 + 1024 + 2048 + 512 + 1024 + 4096 + 2048 + 4096 + 2048 + 1024
    assert sum(before[k].size for k in lora_keys) == hand == 22_016
    assert sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nnx.state(policy.model, lf.LORA_ONLY))) == hand

    tuned, losses = lf.train_lora(policy, arrays, cfg, progress=False)
    after = flatten_params(tuned.model)
    assert losses.shape == (2,) and np.all(np.isfinite(losses))
    unchanged = [k for k in lora_keys if np.array_equal(after[k], before[k])]
    assert not unchanged, unchanged
    moved = [k for k in base if not np.array_equal(after[k], before[k])]
    assert not moved, moved


def test_evaluation_scenes_name_the_meant_colour():
    cfg = dataclasses.replace(lf.FinetuneConfig(), means="blue")
    meant, canonical = lf.evaluation_scenes(cfg, 10)
    assert set(meant.instructions) == {"go to the blue square"}
    np.testing.assert_array_equal(meant.squares, canonical.squares)
