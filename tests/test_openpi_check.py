"""``python -m pi0lite.openpi check FILE``: exit 0 parity ok, 1 parity failed, 2 cannot check.

Every kind of file that cannot be checked is crafted here from the real reference file; each
must give exit 2 and one line on stderr naming the file and the problem, never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from pi0lite import flow
from pi0lite.openpi.check import main


@pytest.fixture(scope="module")
def pi0_ref(parity_dir) -> dict:
    with np.load(parity_dir / "pi0_seed0.npz") as data:
        return {k: data[k] for k in data.files}


def _save(path, arrays: dict):
    np.savez(path, **arrays)
    return path


def _cannot_check(capsys, path, *words, argv_extra=()):
    code = main(["check", str(path), *argv_extra])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(path) in lines[0], lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert "parity" not in out
    return lines[0]


def test_missing_file(tmp_path, capsys):
    _cannot_check(capsys, tmp_path / "nope.npz", "no such file")


def test_directory(tmp_path, capsys):
    _cannot_check(capsys, tmp_path, "directory")


def test_text_file_is_not_called_pickled(tmp_path, capsys):
    (tmp_path / "notes.npz").write_text("hello, this is not an npz\n")
    line = _cannot_check(capsys, tmp_path / "notes.npz", "not an .npz file")
    assert "pickled" not in line


def test_single_npy_array(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.zeros(3))
    _cannot_check(capsys, tmp_path / "a.npy", ".npy")


@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_truncated_copy_of_the_real_file(parity_dir, tmp_path, capsys, keep):
    data = (parity_dir / "pi0_seed0.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: int(len(data) * keep)])
    _cannot_check(capsys, tmp_path / "cut.npz", "truncated or corrupt")


def test_corrupt_member(parity_dir, tmp_path, capsys):
    data = bytearray((parity_dir / "pi0_seed0.npz").read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # zip directory intact, one member's bytes wrong
    (tmp_path / "bad.npz").write_bytes(bytes(data))
    _cannot_check(capsys, tmp_path / "bad.npz", "truncated or corrupt")


def test_missing_meta_json(tmp_path, capsys):
    _cannot_check(capsys, _save(tmp_path / "m.npz", {"x": np.zeros(2)}), "meta/json")


def test_meta_json_not_json(tmp_path, capsys):
    _cannot_check(capsys, _save(tmp_path / "m.npz", {"meta/json": np.array("{model: pi0")}), "not valid JSON")


def test_unknown_model_kind(pi0_ref, tmp_path, capsys):
    meta = str(pi0_ref["meta/json"]).replace('"model": "pi0"', '"model": "pi7"')
    _cannot_check(capsys, _save(tmp_path / "k.npz", pi0_ref | {"meta/json": np.array(meta)}), "unknown model kind 'pi7'")


@pytest.mark.parametrize("drop", ["out/v_t", "in/noise", "in/image_u8/base_0_rgb"])
def test_missing_input_or_output_key(pi0_ref, tmp_path, capsys, drop):
    ref = {k: v for k, v in pi0_ref.items() if k != drop}
    _cannot_check(capsys, _save(tmp_path / "k.npz", ref), "missing key", drop)


def test_misshaped_parameters(pi0_ref, tmp_path, capsys):
    ref = pi0_ref | {"param/action_out_proj/kernel": np.zeros((3, 3), np.float32)}
    _cannot_check(capsys, _save(tmp_path / "p.npz", ref), "do not fit", "action_out_proj/kernel")


def test_debug_shows_the_traceback(tmp_path, capsys):
    (tmp_path / "t.npz").write_text("text")
    assert main(["check", str(tmp_path / "t.npz"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith(f"cannot check {tmp_path / 't.npz'}")


@pytest.mark.parametrize("argv", [[], ["check"], ["verify", "x.npz"], ["check", "a.npz", "--bogus"]])
def test_usage_error_exits_2(argv, capsys):
    assert main(argv) == 2
    assert "usage" in capsys.readouterr().err


def test_command_line_exit_code_and_single_line(tmp_path):
    (tmp_path / "t.npz").write_text("text")
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(__import__("pathlib").Path(__file__).parents[1]), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "pi0lite.openpi", "check", str(tmp_path / "t.npz")], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 2, proc
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_perturbed_output_is_a_parity_failure(pi0_ref, tmp_path, capsys):
    ref = pi0_ref | {"out/v_t": pi0_ref["out/v_t"] + np.float32(1e-3)}
    assert main(["check", str(_save(tmp_path / "v.npz", ref))]) == 1
    out = capsys.readouterr().out
    assert "parity FAILED: 1 of 14 outputs out of tolerance: v_t" in out


def test_rows_come_from_the_package(pi0_ref, tmp_path, capsys, monkeypatch):
    """A wrong convention in flow.interpolate / flow.target_velocity shows up in the x_t / u_t rows."""
    monkeypatch.setattr(flow, "interpolate", lambda n, a, t: t[:, None, None] * a + (1 - t[:, None, None]) * n)
    monkeypatch.setattr(flow, "target_velocity", lambda n, a: a - n)
    jax.clear_caches()  # the jitted loss pass must be traced again with the mutated functions
    try:
        code = main(["check", str(_save(tmp_path / "r.npz", pi0_ref))])
    finally:
        jax.clear_caches()
    out = capsys.readouterr().out
    assert code == 1, out
    failed = out.strip().splitlines()[-1]
    assert "x_t" in failed and "u_t" in failed, failed
