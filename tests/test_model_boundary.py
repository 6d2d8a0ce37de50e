"""Issue 9 §2: bad data at the model boundary is a clear ValueError, never a silently wrong result."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from pi0lite.config import GEMMA_DUMMY, TINY, GemmaConfig
from pi0lite.gemma import Gemma
from pi0lite.observation import Observation
from pi0lite.pi0 import Pi0

B = 2
CAM = TINY.image_keys[0]
S = TINY.vision.image_size


def arrays(seed=0, b=B):
    rng = np.random.default_rng(seed)
    prompt = rng.integers(3, TINY.vocab_size, (b, 5))
    return dict(
        images={CAM: rng.uniform(-1, 1, (b, S, S, 3)).astype(np.float32)},
        state=rng.normal(size=(b, 4)).astype(np.float32),
        tokenized_prompt=prompt,
        tokenized_prompt_mask=np.ones_like(prompt, bool),
    )


def with_image(img, **kw):
    return {**arrays(**kw), "images": {CAM: img}}


@pytest.fixture(scope="module")
def model():
    return Pi0(TINY, rngs=nnx.Rngs(0))


# --- images -------------------------------------------------------------------------------------


def test_uint8_images_map_to_minus_one_one_and_float_in_range_passes():
    img = np.zeros((B, S, S, 3), np.uint8)
    img[0, 0, 0] = 255
    obs = Observation.from_numpy(**with_image(img))
    x = np.asarray(obs.images[CAM])
    assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    # direct construction with uint8 converts the same way (the training path builds it directly)
    direct = Observation({CAM: jnp.asarray(img)}, obs.image_masks, obs.state, obs.tokenized_prompt, obs.tokenized_prompt_mask)
    np.testing.assert_array_equal(direct.images[CAM], x)
    Observation.from_numpy(**arrays())  # float in [-1, 1]: accepted unchanged


@pytest.mark.parametrize(
    "img, match",
    [
        (np.full((B, S, S, 3), 200.0, np.float32), r"in \[-1, 1\] \(observed range \[200.0, 200.0\]\)"),
        (np.ones((B, S, S, 3), np.float32) * np.linspace(0, 2, 3), r"observed range \[0.0, 2.0\]"),
        (np.full((B, S, S, 3), 7, np.int64), r"dtype int\d+ \(observed range \[7, 7\]\)"),
        (np.ones((B, S, S, 3), bool), r"dtype bool"),
    ],
    ids=["float_0_255", "float_0_2", "int", "bool"],
)
def test_images_outside_the_contract_are_rejected_with_their_range(img, match):
    with pytest.raises(ValueError, match=rf"images\['{CAM}'\].*{match}"):
        Observation.from_numpy(**with_image(img))
    with pytest.raises(ValueError, match=match):  # also when the dataclass is built directly
        Observation({CAM: jnp.asarray(img)}, {CAM: jnp.ones(B, bool)}, jnp.zeros((B, 4)), jnp.ones((B, 5), jnp.int32),
                    jnp.ones((B, 5), bool))


def test_nan_and_inf_in_images_or_state_rejected_at_construction():
    img = arrays()["images"][CAM].copy()
    img[1, 3, 4, 2] = np.nan
    with pytest.raises(ValueError, match=r"images\['base_0_rgb'\] contains NaN or inf \(1 values, first at index \[1, 3, 4, 2\]\)"):
        Observation.from_numpy(**with_image(img))
    a = arrays()
    a["state"][0, 2] = np.inf
    with pytest.raises(ValueError, match=r"state contains NaN or inf .*\[0, 2\]"):
        Observation.from_numpy(**a)
    good = Observation.from_numpy(**arrays())
    with pytest.raises(ValueError, match="state contains NaN"):
        Observation(good.images, good.image_masks, good.state.at[1, 0].set(jnp.nan), good.tokenized_prompt,
                    good.tokenized_prompt_mask)


def test_checks_do_not_break_jit(model):
    """Inside jit the values are tracers: construction must still work (and the model must run)."""
    a = arrays()
    img_u8 = ((a["images"][CAM] + 1) * 127.5).astype(np.uint8)

    @nnx.jit
    def loss(model, img, state, prompt, pmask, actions):
        obs = Observation({CAM: img}, {CAM: jnp.ones(img.shape[0], bool)}, state, prompt, pmask)
        return model.compute_loss(jax.random.key(0), obs, actions)

    actions = jnp.zeros((B, TINY.action_horizon, TINY.action_dim))
    out = loss(model, jnp.asarray(img_u8), jnp.asarray(a["state"]), jnp.asarray(a["tokenized_prompt"], jnp.int32),
               jnp.asarray(a["tokenized_prompt_mask"]), actions)
    assert out.shape == (B, TINY.action_horizon) and np.all(np.isfinite(out))


# --- prompt ids ---------------------------------------------------------------------------------


def test_prompt_ids_negative_or_float_rejected_at_construction():
    a = arrays()
    a["tokenized_prompt"][1, 2] = -3
    with pytest.raises(ValueError, match=r"negative ids \(min -3\)"):
        Observation.from_numpy(**a)
    a = arrays()
    with pytest.raises(ValueError, match="integer ids, got dtype float"):
        Observation.from_numpy(**{**a, "tokenized_prompt": a["tokenized_prompt"] + 0.7})


def test_prompt_ids_at_or_above_vocab_rejected_by_the_model(model):
    a = arrays()
    a["tokenized_prompt"][0, 1] = TINY.vocab_size
    obs = Observation.from_numpy(**a)  # the observation does not know the vocabulary...
    actions = jnp.zeros((B, TINY.action_horizon, TINY.action_dim))
    with pytest.raises(ValueError, match=rf"id {TINY.vocab_size} >= vocab_size={TINY.vocab_size}"):
        model.compute_loss(jax.random.key(0), obs, actions)  # ...the model does
    with pytest.raises(ValueError, match="vocab_size"):
        model.sample_actions(jax.random.key(0), obs, num_steps=1)


# --- sampling / loss arguments ------------------------------------------------------------------


@pytest.mark.parametrize("num_steps", [2.5, 0, -1, True, np.float32(3.0)])
def test_num_steps_must_be_a_positive_int(model, num_steps):
    # ValueError from sample_actions; under the jaxtyping/beartype test hook a float is refused first (TypeError)
    with pytest.raises((ValueError, TypeError), match="num_steps"):
        model.sample_actions(jax.random.key(0), Observation.from_numpy(**arrays()), num_steps=num_steps)


@pytest.mark.parametrize("time", [[1.5, 0.5], [-0.1, 0.5], [np.nan, 0.5]])
def test_compute_loss_time_outside_unit_interval(model, time):
    actions = jnp.zeros((B, TINY.action_horizon, TINY.action_dim))
    with pytest.raises(ValueError, match=r"time must be in \[0, 1\]"):
        model.compute_loss(jax.random.key(0), Observation.from_numpy(**arrays()), actions, time=jnp.asarray(time))


def test_empty_batch_is_a_clear_error(model):
    obs = Observation.from_numpy(**arrays(b=0))
    with pytest.raises(ValueError, match=r"empty batch \(0 examples\)"):
        model.compute_loss(jax.random.key(0), obs, jnp.zeros((0, TINY.action_horizon, TINY.action_dim)))
    with pytest.raises(ValueError, match="empty batch"):
        model.sample_actions(jax.random.key(0), obs)


def test_mismatched_batch_sizes_name_the_fields_that_disagree(model):
    a = arrays()
    a["images"] = arrays(b=3)["images"]
    with pytest.raises(ValueError, match=r"batch size — 3: images\['base_0_rgb'\]; 2: .*state, tokenized_prompt"):
        Observation.from_numpy(**a)
    obs = Observation.from_numpy(**arrays())
    with pytest.raises(ValueError, match=r"actions have batch size 3 but the observation has 2"):
        model.compute_loss(jax.random.key(0), obs, jnp.zeros((3, TINY.action_horizon, TINY.action_dim)))


# --- Gemma experts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, field",
    [(dict(depth=3), "depth"), (dict(num_heads=4), "num_heads"), (dict(head_dim=8), "head_dim"),
     (dict(num_heads=8, num_kv_heads=2), "num_kv_heads")],
)
def test_gemma_rejects_experts_that_cannot_share_attention(change, field):
    other = GemmaConfig(**{**GEMMA_DUMMY.__dict__, **change})
    with pytest.raises(ValueError, match=rf"expert 1 has {field}=.* but expert 0 has {field}="):
        Gemma([GEMMA_DUMMY, other], vocab_size=8, rngs=nnx.Rngs(0))
    Gemma([GEMMA_DUMMY, GemmaConfig(**{**GEMMA_DUMMY.__dict__, "width": 32, "mlp_dim": 64})], vocab_size=8,
          rngs=nnx.Rngs(0))  # width and mlp_dim may differ


# --- pi0-FAST sampling key ----------------------------------------------------------------------


def test_fast_sampling_with_temperature_needs_a_key():
    from pi0lite.pi0_fast import OPENPI_FAST_DUMMY, Pi0Fast

    cfg = OPENPI_FAST_DUMMY
    model = Pi0Fast(cfg, rngs=nnx.Rngs(0))
    s = cfg.vision.image_size
    obs = Observation.from_numpy({k: np.zeros((1, s, s, 3), np.float32) for k in cfg.image_keys},
                                 np.zeros((1, 2), np.float32), np.array([[2, 5, 6]]))
    with pytest.raises(ValueError, match=r"temperature=0.7 samples tokens: pass a key"):
        model.generate(None, obs, max_steps=4, temperature=0.7)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        model.generate(jax.random.key(0), obs, max_steps=4, temperature=-1.0)
