"""The notebook-15 checks accept correct answers and reject realistic wrong ones with a useful hint."""

import numpy as np
import pytest
from flax import nnx

from pi0lite.config import TINY
from pi0lite.course.checks import check_holder, check_verdict
from pi0lite.course.checks.openpi_weights import true_holder
from pi0lite.openpi.io import from_openpi_path
from pi0lite.openpi.roundoff import classify_error
from pi0lite.pi0 import Pi0


@pytest.fixture(scope="module")
def model():
    return Pi0(TINY, rngs=nnx.Rngs(0))


def _walk(node, parts):
    for part in parts:
        if isinstance(node, nnx.List):
            node = node[int(part)]
        else:
            node = node[part] if isinstance(node, nnx.Dict) else getattr(node, part)
    return node


def good_holder(model, path):
    return _walk(model, from_openpi_path(path).split("/")[:-1])


def test_true_holder_finds_the_holding_module(model):
    # by hand: expert 0's q projection is gemma.Einsum ``q_einsum`` inside the layers' attention
    graph_path, cls = true_holder(model, "PaliGemma/llm/layers/attn/q_einsum/w")
    assert cls.__name__ == "Einsum" and graph_path[-2:] == ("attn", "q_einsum")
    _, cls = true_holder(model, "action_out_proj/kernel")
    assert cls.__name__ == "Linear"


def test_holder_accepts_reference(model, capsys):
    check_holder(good_holder, model)
    assert capsys.readouterr().out.startswith("✓ holder: 10/10")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda m, p: _walk(m, from_openpi_path(p).split("/")), "parameter itself"),  # walked the leaf too
        (lambda m, p: _walk(m, from_openpi_path(p).split("/")[:-2]), "stopped early"),  # one level short
        (lambda m, p: m, "stopped early"),
        (lambda m, p: Pi0(TINY, rngs=nnx.Rngs(1)).action_out_proj, "not part of this model"),
    ],
)
def test_holder_rejects(model, wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_holder(wrong, model)


def good_verdict(rows):
    return {name: classify_error(err, scale, kind) for name, err, scale, kind in rows}


def test_verdict_accepts_reference(capsys):
    check_verdict(good_verdict)
    assert "verdict: 6/6" in capsys.readouterr().out


def test_classify_error_by_hand():
    assert classify_error(2e-6, 1.0, "float32") == "round-off"  # 2e-6 relative: ~17 ulps
    assert classify_error(2e-4, 1.0, "float32") == "bug"
    assert classify_error(2e-4, 100.0, "float32") == "round-off"
    assert classify_error(1.0, 1e6, "int") == "bug"
    assert classify_error(0.01, 1.0, "bfloat16") == "round-off"
    assert classify_error(float("nan"), 1.0, "float32") == "bug"
    with pytest.raises(ValueError, match="kind"):
        classify_error(0.0, 1.0, "float16")


def _absolute(rows):  # the package's CLI tolerance used as if it were universal
    return {n: "round-off" if e <= 1e-4 else "bug" for n, e, s, k in rows}


def _relative_ignoring_kind(rows):
    return {n: "round-off" if e <= 1e-5 * s else "bug" for n, e, s, k in rows}


def _float32_for_everything(rows):
    return {n: ("round-off" if e == 0 else "bug") if k in ("bool", "int") else ("round-off" if e <= 1e-5 * s else "bug") for n, e, s, k in rows}


def _nan_passes(rows):
    out = good_verdict(rows)
    return {n: "round-off" if not np.isfinite(e) else out[n] for n, e, s, k in rows}


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_absolute, "relative to the output's size"),
        (_relative_ignoring_kind, "must match exactly"),
        (_float32_for_everything, "bfloat16"),
        (_nan_passes, "NaN"),
        (lambda rows: [r[0] for r in rows], "expected a dict"),
    ],
)
def test_verdict_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_verdict(wrong)
