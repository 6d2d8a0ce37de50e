"""Issue 9 §6 (model part): experts a reader can grep, openpi's names at the I/O boundary, one axis legend."""

import ast
import inspect
import pathlib
import re

import numpy as np
import pytest
from flax import nnx

import pi0lite
from pi0lite import gemma
from pi0lite.config import OPENPI_DUMMY, OPENPI_DUMMY_PI05, TINY
from pi0lite.openpi.io import flatten_params, from_openpi_path, load_npz, load_params, to_openpi_path
from pi0lite.pi0 import Pi0
from pi0lite.pi0_fast import OPENPI_FAST_DUMMY, Pi0Fast

PACKAGE = pathlib.Path(pi0lite.__file__).parent
MODEL_MODULES = ["config", "masks", "flow", "norms", "attention", "gemma_layers", "gemma", "vision", "observation", "pi0",
                 "pi0_fast"]


@pytest.mark.parametrize("name", ["gemma.py", "gemma_layers.py", "attention.py"])
def test_gemma_builds_no_attribute_names_from_strings(name):
    tree = ast.parse((PACKAGE / name).read_text())
    calls = [n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert not {"setattr", "getattr"} & set(calls)


def test_experts_are_a_list_of_modules_with_their_own_weights():
    model = gemma.Gemma([TINY.paligemma, TINY.action_expert], vocab_size=8, rngs=nnx.Rngs(0))
    assert isinstance(model.experts, nnx.List) and len(model.experts) == 2
    assert model.experts[0].attn.q_einsum.w.shape == (4, 4, 64, 16)  # [l, n, d, h], VLM width 64
    assert model.experts[1].attn.q_einsum.w.shape == (4, 4, 32, 16)  # action expert width 32
    assert model.experts[1].mlp.linear.shape == (4, 64, 32)


def test_internal_attention_takes_typed_keyword_arguments():
    for method in (gemma.Gemma.attention, gemma.Gemma.block):
        params = list(inspect.signature(method).parameters.values())[2:]  # after self, xs
        assert params and all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), method.__name__
        assert all(p.annotation is not inspect.Parameter.empty for p in params), method.__name__


@pytest.mark.parametrize(
    "ours, theirs",
    [
        ("PaliGemma/llm/experts/0/attn/q_einsum/w", "PaliGemma/llm/layers/attn/q_einsum/w"),
        ("PaliGemma/llm/experts/1/attn/attn_vec_einsum/w", "PaliGemma/llm/layers/attn/attn_vec_einsum_1/w"),
        ("PaliGemma/llm/experts/1/attn/kv_einsum/w", "PaliGemma/llm/layers/attn/kv_einsum_1/w"),
        ("PaliGemma/llm/experts/1/mlp/gating_einsum", "PaliGemma/llm/layers/mlp_1/gating_einsum"),
        ("PaliGemma/llm/experts/0/pre_ffw_norm/scale", "PaliGemma/llm/layers/pre_ffw_norm/scale"),
        ("PaliGemma/llm/experts/1/pre_attention_norm/Dense_0/kernel", "PaliGemma/llm/layers/pre_attention_norm_1/Dense_0/kernel"),
        ("PaliGemma/llm/experts/1/final_norm/scale", "PaliGemma/llm/final_norm_1/scale"),
        ("PaliGemma/llm/experts/0/final_norm/scale", "PaliGemma/llm/final_norm/scale"),
        ("PaliGemma/llm/embedder/input_embedding", "PaliGemma/llm/embedder/input_embedding"),
        ("PaliGemma/img/Transformer/encoderblock/MlpBlock_0/Dense_1/bias", "PaliGemma/img/Transformer/encoderblock/MlpBlock_0/Dense_1/bias"),
        ("action_time_mlp_in/kernel", "action_time_mlp_in/kernel"),
    ],
)
def test_paths_translate_both_ways(ours, theirs):
    assert to_openpi_path(ours) == theirs
    assert from_openpi_path(theirs) == ours


@pytest.mark.parametrize(
    "name, build",
    [
        ("pi0", lambda: Pi0(OPENPI_DUMMY, rngs=nnx.Rngs(0))),
        ("pi05", lambda: Pi0(OPENPI_DUMMY_PI05, rngs=nnx.Rngs(0))),
        ("pi0fast", lambda: Pi0Fast(OPENPI_FAST_DUMMY, rngs=nnx.Rngs(0))),
    ],
)
def test_exported_names_are_exactly_openpis(parity_dir, name, build):
    """The parameter names openpi itself wrote (parity files) are the names pi0lite exports."""
    model = nnx.eval_shape(build)
    ref = load_npz(parity_dir / f"{name}_seed0.npz", prefix="param/")
    ours = {to_openpi_path("/".join(map(str, p))): tuple(v.shape) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    assert ours == {k: v.shape for k, v in ref.items()}


def test_openpi_named_weights_land_in_the_right_expert():
    model = Pi0(TINY, rngs=nnx.Rngs(0))
    flat = flatten_params(model)
    marker = np.arange(np.prod(flat["PaliGemma/llm/layers/attn/q_einsum_1/w"].shape), dtype=np.float32)
    flat["PaliGemma/llm/layers/attn/q_einsum_1/w"] = marker.reshape(flat["PaliGemma/llm/layers/attn/q_einsum_1/w"].shape)
    flat["PaliGemma/llm/final_norm_1/scale"] = np.full(TINY.action_expert.width, 7.0, np.float32)
    load_params(model, flat)
    llm = model.PaliGemma["llm"]
    np.testing.assert_array_equal(np.asarray(llm.experts[1].attn.q_einsum.w[...]).ravel(), marker)
    np.testing.assert_array_equal(llm.experts[1].final_norm.scale[...], 7.0)
    assert not np.any(np.asarray(llm.experts[0].final_norm.scale[...]) == 7.0)


def _legend() -> dict[str, str]:
    doc = pi0lite.__doc__
    table = doc[doc.index("Axis letters") :]
    rows = [line for line in table.splitlines() if re.match(r"^[a-z] {2,}\S", line)]
    letters = {}
    for row in rows:
        for letter, meaning in re.findall(r"(?:^|\s{2,})([a-z]) {2,}(.+?)(?=\s{2,}[a-z] {2,}|$)", row):
            assert letter not in letters, f"letter {letter!r} defined twice"
            letters[letter] = meaning
    return letters


def test_one_legend_without_clashes():
    legend = _legend()
    for letter in "btspqrioaj dcenkghflvwmyx".replace(" ", ""):
        assert letter in legend, letter
    assert "head dim" in legend["h"] and "action steps" in legend["a"]


@pytest.mark.parametrize("module", MODEL_MODULES[1:])
def test_model_modules_use_the_package_legend(module):
    """Each model module points at the legend, and every letter it lists means what the legend says."""
    doc = (PACKAGE / f"{module}.py").read_text().split('"""')[1]
    assert "legend in :mod:`pi0lite`" in doc or "the package legend, :mod:`pi0lite`" in doc
    legend = _legend()
    section = doc[doc.index("Axis letters") :].split("\n\n")[0]
    for letter in re.findall(r"(?:^|[·:]\s)([a-z])(?:,\s[a-z])?\s", section.split(":", 1)[1]):
        assert letter in legend, f"{module}: letter {letter!r} is not in the package legend"
