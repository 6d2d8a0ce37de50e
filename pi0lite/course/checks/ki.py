"""Checks for notebook 10 (pi0.5 and knowledge insulation).

Exercises: 10.1 ``discretize(state)`` (openpi's 256 state bins, edge values included);
10.2 ``ki_mask(prefix_mask, fast_mask, suffix_mask, suffix_ar)`` (the KI attention mask);
10.3 ``insulated_flow_loss(model, obs, actions, noise, time)`` (where the stop-gradient goes,
judged by the gradients it lets through, never by the source text).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from pi0lite import flow
from pi0lite.config import TINY, GemmaConfig
from pi0lite.ki import VLM_GROUPS, grad_norms_by_module, ki_attn_mask
from pi0lite.course.checks._cases import Case, report_success, run_cases
from pi0lite.masks import make_attn_mask
from pi0lite.pi0 import Observation, Pi0
from pi0lite.prompt import discretize_state

__all__ = ["check_discretize", "check_ki_mask", "check_insulated_flow_loss", "as_if_trained"]


# --- 10.1 ---------------------------------------------------------------------------------

_EDGES = np.linspace(-1.0, 1.0, 257)[:-1]


def _discretize_mistakes(state: np.ndarray):
    s = np.asarray(state, np.float64)
    ref = discretize_state(s)
    return lambda: {
        "off by one: np.digitize numbers the first bin 1 (0 means 'below the first edge'); subtract 1.":
            np.digitize(s, _EDGES),
        "openpi does not clip: a value below -1 gives bin -1 (np.digitize returns 0 there, minus 1), "
        "not bin 0.": np.clip(ref, 0, 255),
        "floor((s + 1) * 128) is right inside [-1, 1) but gives 256 at s = 1 and keeps falling below -1; "
        "openpi's digitize gives 255 for every s >= 1 and -1 for every s < -1.":
            np.floor((s + 1.0) * 128).astype(np.int64),
        "256 bins need 257 edges: use np.linspace(-1, 1, 257)[:-1] as the bin starts (you have 255 bins).":
            np.digitize(s, np.linspace(-1.0, 1.0, 256)[:-1]) - 1,
        "bins are closed on the left: a value exactly on the edge -1 + k/128 belongs to bin k "
        "(np.digitize's default right=False).": np.digitize(s, _EDGES, right=True) - 1,
    }


def check_discretize(discretize) -> None:
    """``discretize(state[..., j]) -> int bins[..., j]`` equal to openpi's (``pi0lite.prompt.discretize_state``)."""
    rng = np.random.default_rng(10)
    inputs = {
        "inside [-1, 1): 0, 0.5, bin starts": np.array([0.0, 0.5, -0.25, -1.0 + 1 / 128, 0.999]),
        "edges: exactly -1 and exactly 1": np.array([-1.0, 1.0]),
        "below -1 and above 1": np.array([-1.5, -1.0000001, -7.0, 1.0000001, 3.0]),
        "a batch of states [3, 4]": rng.uniform(-1.3, 1.3, (3, 4)),
        "just below bin starts": np.array([-1.0 + k / 128 - 1e-9 for k in (1, 64, 200)]),
    }
    cases = [Case(name=name, args=(x.copy(),), expected=discretize_state(x), mistakes=_discretize_mistakes(x),
                  atol=0, rtol=0) for name, x in inputs.items()]
    run_cases("discretize", discretize, cases,
              generic_hint="bins = np.digitize(state, np.linspace(-1, 1, 257)[:-1]) - 1 (below -1 gives -1, "
                           ">= 1 gives 255); return integers.")


# --- 10.2 ---------------------------------------------------------------------------------


def _ki_mask_mistakes(prefix_mask, fast_mask, suffix_mask, suffix_ar):
    def wrongs():
        p, o = prefix_mask.shape[1], fast_mask.shape[1]
        input_mask = np.concatenate([prefix_mask, fast_mask, suffix_mask], axis=1)
        ar = lambda fast_ar: np.concatenate([np.zeros(p, bool), fast_ar, np.asarray(suffix_ar, bool)])
        causal = np.asarray(make_attn_mask(input_mask, ar(np.ones(o, bool))))
        joined = np.asarray(make_attn_mask(input_mask, ar(np.zeros(o, bool))))
        block = np.asarray(make_attn_mask(input_mask, ar(np.eye(1, o, dtype=bool)[0])))
        cut = lambda m: np.concatenate([m[:, : p + o], np.concatenate(
            [m[:, p + o :, :p], np.zeros_like(m[:, p + o :, p : p + o]), m[:, p + o :, p + o :]], axis=2)], axis=1)
        ref = np.asarray(ki_attn_mask(prefix_mask, fast_mask, suffix_mask, suffix_ar))
        return {
            "the action tokens see the FAST tokens. Those tokens encode the answer (the same action chunk), so the "
            "action expert would copy it, and at inference there are none: cut rows = actions, columns = FAST.":
                causal,
            "the FAST tokens are a non-causal block: each one is predicted from the ones before it (next-token "
            "loss), so it may see only the earlier ones. Give every FAST token ar = 1.": cut(block),
            "with ar = 0 the FAST tokens join the prefix block: the prefix (images + prompt) then sees the answer, "
            "and so does every FAST token. Give every FAST token ar = 1.": cut(joined),
            "rows are queries and columns keys: your mask is transposed.": np.swapaxes(ref, 1, 2),
            "padding slots (input_mask False) must neither see nor be seen.":
                cut(np.asarray(make_attn_mask(np.ones_like(input_mask), ar(np.ones(o, bool))))),
        }

    return wrongs


def check_ki_mask(ki_mask) -> None:
    """``ki_mask(prefix_mask[b,p], fast_mask[b,o], suffix_mask[b,q], suffix_ar[q]) -> bool[b, t, t]``."""
    m = lambda *rows: np.array(rows, bool)
    rng = np.random.default_rng(11)
    prefix = rng.random((2, 6)) < 0.8
    prefix[:, 0] = True
    raw = {
        "hand-drawn: 2 prefix + pad, 2 FAST + pad, 2 actions": (m([1, 1, 0]), m([1, 1, 0]), m([1, 1]), m(1, 0)),
        "pi0.5: 4 prefix, 3 FAST, 3 actions (ar 1, 0, 0)": (m([1, 1, 1, 1]), m([1, 1, 1]), m([1, 1, 1]), m(1, 0, 0)),
        "a batch of 2 with different padding": (prefix, m([1, 1, 1, 0], [1, 1, 0, 0]), m([1, 1, 1], [1, 1, 1]),
                                                 m(1, 0, 0)),
    }
    cases = [Case(name=name, args=args, expected=np.asarray(ki_attn_mask(*args)), mistakes=_ki_mask_mistakes(*args))
             for name, args in raw.items()]
    run_cases("ki_mask", ki_mask, cases,
              generic_hint="build openpi's mask with ar = [0 for the prefix, 1 for each FAST token, suffix_ar], "
                           "then set rows = actions, columns = FAST to False.")


# --- 10.3 ---------------------------------------------------------------------------------

#: A small pi0.5 (one layer per expert) for the gradient check: compiles in seconds.
_CFG = TINY.replace(
    pi05=True, action_horizon=4, vocab_size=32,
    paligemma=GemmaConfig(width=16, depth=1, mlp_dim=32, num_heads=2, num_kv_heads=1, head_dim=8),
    action_expert=GemmaConfig(width=8, depth=1, mlp_dim=16, num_heads=2, num_kv_heads=1, head_dim=8),
)


def as_if_trained(model: nnx.Module, scale: float = 0.3, seed: int = 1000) -> nnx.Module:
    """Redraw every all-zero parameter of ``model`` (in place) from N(0, scale²) and return it.

    At initialisation pi0.5's adaRMS gates are 0, so the action expert reads nothing from the prefix
    and no flow gradient could reach the VLM with or without a stop-gradient: a trained model has
    non-zero gates, and this stands in for one.
    """
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    for i, (_, leaf) in enumerate(flat):
        value = leaf.get_value()
        if not np.any(np.asarray(value)):
            leaf.set_value(scale * jax.random.normal(jax.random.key(seed + i), value.shape, value.dtype))
    nnx.update(model, nnx.from_flat_state(flat))
    return model


def _reference_flow_loss(model, obs, actions, noise, time):
    kv_cache, prefix_mask = model.fill_prefix_cache(obs)
    kv_cache = jax.lax.stop_gradient(kv_cache)
    v_t = model.velocity_cached(obs, kv_cache, prefix_mask, flow.interpolate(noise, actions, time), time)
    return jnp.mean(jnp.square(v_t - flow.target_velocity(noise, actions)))


@functools.lru_cache(maxsize=1)
def _setup():
    model = as_if_trained(Pi0(_CFG, rngs=nnx.Rngs(0)))
    rng = np.random.default_rng(3)
    prompt = rng.integers(2, _CFG.vocab_size, (2, _CFG.max_token_len))
    prompt[1, 5:] = 0
    obs = Observation.from_numpy(
        images={"base_0_rgb": rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)},
        state=np.zeros((2, _CFG.action_dim), np.float32), tokenized_prompt=prompt, tokenized_prompt_mask=prompt != 0)
    shape = (2, _CFG.action_horizon, _CFG.action_dim)
    actions, noise = (jnp.asarray(rng.normal(size=shape), jnp.float32) for _ in range(2))
    time = jnp.array([0.3, 0.8], jnp.float32)
    args = (obs, actions, noise, time)
    value, grads = nnx.jit(nnx.value_and_grad(_reference_flow_loss))(model, *args)
    return model, args, float(value), grad_norms_by_module(grads)


def _fmt_norms(norms: dict) -> str:
    return ", ".join(f"{k} {v:.2g}" for k, v in norms.items())


def check_insulated_flow_loss(insulated_flow_loss) -> None:
    """``insulated_flow_loss(model, obs, actions, noise, time) -> scalar``: pi0.5's flow loss whose gradient
    reaches the action expert (and its heads) but no VLM parameter (vision tower, embedder, VLM layers)."""
    name = "insulated_flow_loss"
    if not callable(insulated_flow_loss):
        raise AssertionError(f"{name}: expected a function, got {type(insulated_flow_loss).__name__}")
    model, args, want_value, want = _setup()
    try:  # one jitted call: the persistent compilation cache makes a re-run cheap
        value, grads = nnx.jit(nnx.value_and_grad(insulated_flow_loss))(model, *args)
    except NotImplementedError:
        raise
    except TypeError as err:
        raise AssertionError(f"{name}: return the loss as one scalar (jax could not differentiate your result: "
                             f"{err})") from err
    except Exception as err:
        raise AssertionError(f"{name}, a small pi0.5 with a batch of 2: raised {type(err).__name__}: {err}") from err
    value = float(value)
    if not np.isclose(value, want_value, rtol=1e-4, atol=1e-6):
        raise AssertionError(f"{name}: loss {value:.6g}, expected {want_value:.6g}. A stop-gradient never changes "
                             "the value: the loss is mean((v_t - (noise - actions))²) with v_t from velocity_cached.")
    got = grad_norms_by_module(grads)
    where = f"\n  gradient norms per module: {_fmt_norms(got)}\n  expected:                  {_fmt_norms(want)}"
    action = [g for g in got if g not in VLM_GROUPS]
    if all(got[g] == 0 for g in got):
        hint = ("no parameter gets a gradient: you stopped the whole flow loss (or the velocity). Stop only what the "
                "VLM computed, the prefix keys/values the action expert reads.")
    elif any(got[g] == 0 for g in action):
        hint = ("the action expert gets no gradient: you stopped the wrong side. The flow loss must train the action "
                "expert; only the VLM's keys/values are cut off.")
    elif got["VLM layers"] > 0 and got["embedder"] == 0 and got["vision tower"] == 0:
        hint = ("the VLM layers still receive the flow gradient: you stopped the prefix embeddings (the layers' "
                "input). The stop belongs on what the layers produce, the keys/values of the cache.")
    elif any(got[g] > 0 for g in VLM_GROUPS):
        hint = ("the flow gradient reaches the VLM: wrap the prefix cache (the VLM's keys and values) in "
                "jax.lax.stop_gradient before velocity_cached reads it.")
    elif not all(np.isclose(got[g], want[g], rtol=1e-3, atol=1e-8) for g in action):
        hint = "the VLM is insulated, but the action expert's gradient differs from the reference."
    else:
        report_success(name, 1)
        return
    raise AssertionError(f"{name}: {hint}{where}")
