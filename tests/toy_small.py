"""The small toy model and data set shared by the training tests (``tests/test_train.py``,
``tests/test_toy_sharded.py``, ``tests/test_rtc_eval.py``) and the subprocess of
``tests/multi/toy_sharded.py``: a one-layer backbone and expert, three episodes."""

from __future__ import annotations

import functools

from pi0lite.config import TINY, GemmaConfig
from pi0lite.toy import normalize
from pi0lite.toy.data import build_dataset, training_arrays
from pi0lite.toy.text import instruction_tokenizer

SMALL = TINY.replace(
    action_horizon=4,
    paligemma=GemmaConfig(width=16, depth=1, mlp_dim=32, num_heads=2, num_kv_heads=1, head_dim=8),
    action_expert=GemmaConfig(width=8, depth=1, mlp_dim=16, num_heads=2, num_kv_heads=1, head_dim=8),
)


@functools.lru_cache(maxsize=1)
def small_arrays() -> dict:
    """pi0 training arrays of three episodes (seed 0), prompts and actions fitted to ``SMALL``."""
    ds = build_dataset(3, seed=0, horizon=SMALL.action_horizon)
    tok = instruction_tokenizer()
    norm = normalize.dataset_stats(ds)
    return training_arrays(ds, tok, norm, max_token_len=SMALL.max_token_len, action_dim=SMALL.action_dim)


@functools.lru_cache(maxsize=1)
def small_fast():
    """``(Pi0FastConfig, training arrays)``: pi0-FAST on ``SMALL``'s backbone and vision tower, its
    FAST tokenizer fitted on the chunks of the same three episodes (vocabulary 300)."""
    from pi0lite.toy import fast_prompt
    from pi0lite.toy.train_fast import training_arrays as fast_training_arrays

    ds = build_dataset(3, seed=0)
    norm = {k: normalize.compute_stats(getattr(ds, k), kind="quantile") for k in ("state", "actions")}
    fast = fast_prompt.fit_fast(norm["actions"].normalize(ds.actions), vocab_size=300)
    prompt = fast_prompt.make_prompt(fast_prompt.text_tokenizer(), fast)
    return fast_prompt.model_config(prompt, SMALL), fast_training_arrays(ds, prompt, norm)
