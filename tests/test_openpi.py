import numpy as np
import pytest
from flax import nnx

from pi0lite import openpi
from pi0lite.openpi.check import main as openpi_main
from pi0lite.config import TINY
from pi0lite.pi0 import Pi0


@pytest.fixture(scope="module")
def models():
    return Pi0(TINY, rngs=nnx.Rngs(0)), Pi0(TINY, rngs=nnx.Rngs(1))


def _assert_same(a, b):
    fa, fb = openpi.flatten_params(a), openpi.flatten_params(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_flat_paths_use_openpi_names(models):
    flat = openpi.flatten_params(models[0])
    for path in [
        "PaliGemma/llm/layers/attn/q_einsum/w",
        "PaliGemma/llm/layers/attn/kv_einsum_1/w",
        "PaliGemma/llm/layers/mlp_1/gating_einsum",
        "PaliGemma/llm/final_norm_1/scale",
        "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/query/kernel",
        "PaliGemma/img/head/kernel",
        "action_time_mlp_in/kernel",
        "state_proj/bias",
    ]:
        assert path in flat, path


def test_npz_round_trip(models, tmp_path):
    a, b = models
    openpi.save_npz(a, tmp_path / "p.npz", prefix="param/")
    openpi.load_params(b, openpi.load_npz(tmp_path / "p.npz", prefix="param/"))
    _assert_same(a, b)


def test_orbax_round_trip_and_value_suffix(tmp_path):
    a, b = Pi0(TINY, rngs=nnx.Rngs(2)), Pi0(TINY, rngs=nnx.Rngs(3))
    target = openpi.save_orbax(a, tmp_path / "ckpt")
    assert target.name == "params" and target.is_dir()
    flat = openpi.load_orbax(tmp_path / "ckpt")
    openpi.load_params(b, flat)
    _assert_same(a, b)
    # openpi training checkpoints end every path with "/value"
    c = Pi0(TINY, rngs=nnx.Rngs(4))
    openpi.load_params(c, {k + "/value": v for k, v in flat.items()})
    _assert_same(a, c)


def test_mismatch_lists_missing_unknown_and_misshaped(models):
    flat = openpi.flatten_params(models[0])
    flat.pop("state_proj/bias")
    flat["not/a/param"] = np.zeros(3)
    flat["action_out_proj/kernel"] = np.zeros((3, 3))
    with pytest.raises(ValueError) as err:
        openpi.load_params(models[1], flat)
    msg = str(err.value)
    assert "missing (1): state_proj/bias" in msg
    assert "unknown (1): not/a/param" in msg
    assert "action_out_proj/kernel: expected (32, 4), got (3, 3)" in msg


def test_parity_with_openpi_pi0(parity_dir, capsys):
    code = openpi_main(["check", str(parity_dir / "pi0_seed0.npz")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "parity ok: 14 outputs" in out


def test_parity_with_openpi_pi05(parity_dir, capsys):
    """Every pi0.5 reference file present (the shared seed 0, and any other seed or horizon a user
    made with openpi and put beside it as pi05*.npz: the checker reads horizon and prompt length
    from the file's meta)."""
    files = sorted(parity_dir.glob("pi05*.npz"))
    assert parity_dir / "pi05_seed0.npz" in files
    for path in files:
        code = openpi_main(["check", str(path)])
        out = capsys.readouterr().out
        assert code == 0, f"{path.name}:\n{out}"
        assert "adarms_cond" in out and "parity ok: 15 outputs" in out, path.name


def test_unsupported_model_exits_2(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", **{"meta/json": np.array('{"model": "pi7"}')})
    assert openpi_main(["check", str(tmp_path / "x.npz")]) == 2
    assert "unknown model kind 'pi7'" in capsys.readouterr().err
