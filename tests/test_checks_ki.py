"""The notebook-10 checks accept the reference and reject realistic wrong answers with a useful hint.

The references here are written independently of pi0lite.prompt / pi0lite.ki (hand formulas, the
plain openpi mask with one block cut by slicing, the prefix cache stopped by hand).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pi0lite import flow
from pi0lite.course.checks import check_discretize, check_insulated_flow_loss, check_ki_mask
from pi0lite.masks import make_attn_mask

EDGES = np.linspace(-1, 1, 257)[:-1]


def good_discretize(state):
    return np.digitize(state, EDGES) - 1


def test_discretize_accepts_reference(capsys):
    check_discretize(good_discretize)
    assert capsys.readouterr().out.startswith("✓ discretize")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda s: np.digitize(s, EDGES), "off by one"),
        (lambda s: np.clip(np.digitize(s, EDGES) - 1, 0, 255), "does not clip"),
        (lambda s: np.floor((np.asarray(s) + 1) * 128).astype(int), "gives 256 at s = 1"),
        (lambda s: np.clip(np.floor((np.asarray(s) + 1) * 128), 0, 255).astype(int), "does not clip"),
        (lambda s: np.digitize(s, np.linspace(-1, 1, 256)[:-1]) - 1, "257 edges"),
        (lambda s: np.digitize(s, EDGES, right=True) - 1, "closed on the left"),
        (lambda s: (np.digitize(s, EDGES) - 1).astype(float), "integer"),
    ],
)
def test_discretize_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_discretize(wrong)


def good_ki_mask(prefix_mask, fast_mask, suffix_mask, suffix_ar):
    p, o = prefix_mask.shape[1], fast_mask.shape[1]
    ar = np.concatenate([np.zeros(p, bool), np.ones(o, bool), suffix_ar])
    mask = np.array(make_attn_mask(np.concatenate([prefix_mask, fast_mask, suffix_mask], 1), ar))
    mask[:, p + o :, p : p + o] = False
    return mask


def _with_fast_ar(fast_ar_of, cut=True):
    def fn(prefix_mask, fast_mask, suffix_mask, suffix_ar):
        p, o = prefix_mask.shape[1], fast_mask.shape[1]
        ar = np.concatenate([np.zeros(p, bool), fast_ar_of(o), suffix_ar])
        mask = np.array(make_attn_mask(np.concatenate([prefix_mask, fast_mask, suffix_mask], 1), ar))
        if cut:
            mask[:, p + o :, p : p + o] = False
        return mask

    return fn


def test_ki_mask_accepts_reference(capsys):
    check_ki_mask(good_ki_mask)
    assert capsys.readouterr().out.startswith("✓ ki_mask")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_with_fast_ar(lambda o: np.ones(o, bool), cut=False), "action tokens see the FAST tokens"),
        (_with_fast_ar(lambda o: np.arange(o) == 0), "non-causal block"),
        (_with_fast_ar(lambda o: np.zeros(o, bool)), "join the prefix block"),
        (lambda *a: np.swapaxes(good_ki_mask(*a), 1, 2), "transposed"),
        (lambda pm, fm, sm, ar: good_ki_mask(np.ones_like(pm), np.ones_like(fm), sm, ar), "padding"),
        (lambda *a: good_ki_mask(*a).astype(int), "bool"),
    ],
)
def test_ki_mask_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_ki_mask(wrong)


def flow_loss_with(stop_cache=lambda c: c, stop_v=lambda v: v, stop_loss=lambda x: x):
    def fn(model, obs, actions, noise, time):
        cache, prefix_mask = model.fill_prefix_cache(obs)
        v_t = model.velocity_cached(obs, stop_cache(cache), prefix_mask, flow.interpolate(noise, actions, time), time)
        return stop_loss(jnp.mean(jnp.square(stop_v(v_t) - (noise - actions))))

    return fn


def test_insulated_flow_loss_accepts_reference(capsys):
    check_insulated_flow_loss(flow_loss_with(stop_cache=jax.lax.stop_gradient))
    assert capsys.readouterr().out.startswith("✓ insulated_flow_loss")


def stopped_prefix_embeddings(model, obs, actions, noise, time):
    """Stops the VLM's *input* (the prefix embeddings), not its keys/values."""
    from pi0lite.masks import make_positions

    prefix, prefix_mask, prefix_ar = model.embed_prefix(obs)
    _, cache = model.PaliGemma["llm"]([jax.lax.stop_gradient(prefix), None], positions=make_positions(prefix_mask),
                                      mask=make_attn_mask(prefix_mask, prefix_ar))
    v_t = model.velocity_cached(obs, cache, prefix_mask, flow.interpolate(noise, actions, time), time)
    return jnp.mean(jnp.square(v_t - (noise - actions)))


@pytest.mark.parametrize(
    "wrong, message",
    [
        (flow_loss_with(), "reaches the VLM"),  # no stop-gradient at all
        (flow_loss_with(stop_v=jax.lax.stop_gradient), "stopped the whole flow loss"),
        (flow_loss_with(stop_loss=jax.lax.stop_gradient), "stopped the whole flow loss"),
        (stopped_prefix_embeddings, "prefix embeddings"),
        (flow_loss_with(stop_cache=lambda c: (jax.lax.stop_gradient(c[0]), c[1])), "reaches the VLM"),  # keys only
        (lambda m, o, a, n, t: flow_loss_with(stop_cache=jax.lax.stop_gradient)(m, o, a, n, t) * 2, "never changes"),
        (lambda m, o, a, n, t: jnp.stack([flow_loss_with(stop_cache=jax.lax.stop_gradient)(m, o, a, n, t)] * 2),
         "one scalar"),
    ],
)
def test_insulated_flow_loss_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_insulated_flow_loss(wrong)


def test_insulated_flow_loss_rejects_stopping_the_action_side():
    """Stopping what the action expert computes (its tokens' path) instead of the VLM's keys/values."""
    from pi0lite.course.checks import ki as ki_checks

    def wrong_side(model, obs, actions, noise, time):
        cache, prefix_mask = model.fill_prefix_cache(obs)
        x_t = flow.interpolate(noise, actions, time)
        graphdef, state = __import__("flax").nnx.split(model)
        frozen = __import__("flax").nnx.merge(graphdef, jax.lax.stop_gradient(state))  # every parameter stopped ...
        v_t = frozen.velocity_cached(obs, cache, prefix_mask, x_t, time)  # ... on the action side; the cache flows
        return jnp.mean(jnp.square(v_t - (noise - actions)))

    assert ki_checks._CFG.pi05
    with pytest.raises(AssertionError, match="wrong side|reaches the VLM"):
        check_insulated_flow_loss(wrong_side)
