"""The Colab setup cell: one source (tools/nb/nbbuild.py), a no-op locally, a clear failure on Colab.

The cell is run in a fresh Python subprocess by a harness that records every attempt to start
a program (subprocess, os.system, os.exec*/spawn*) instead of running it, and reports what the
cell changed: environment variables, installed distributions, files in its working directory.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import nbformat
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools" / "nb"))
from nbbuild import PI0LITE_PUBLIC_SOURCE, SETUP_SOURCE

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")) + sorted((REPO / "student").glob("[0-9][0-9]_*.ipynb"))
JAX_VARS = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS")

HARNESS = textwrap.dedent(
    """
    import importlib.metadata, json, os, subprocess, sys, types

    calls = []
    def record(name):
        def fake(*args, **kwargs):
            calls.append([name, [str(a) for a in (args[0] if args and isinstance(args[0], (list, tuple)) else args)]])
            return subprocess.CompletedProcess(args, int(os.environ.get("FAKE_RETURNCODE", "0")))
        return fake
    for name in ("run", "call", "check_call", "check_output", "Popen"):
        setattr(subprocess, name, record("subprocess." + name))
    os.system = record("os.system")
    for name in [n for n in dir(os) if n.startswith(("exec", "spawn", "posix_spawn"))]:
        setattr(os, name, record("os." + name))
    if os.environ.get("FAKE_COLAB"):
        sys.modules["google"] = types.ModuleType("google")
        sys.modules["google.colab"] = types.ModuleType("google.colab")

    env_before = dict(os.environ)
    dists_before = sorted(d.metadata["Name"] + "==" + d.version for d in importlib.metadata.distributions())
    error = None
    try:
        exec(compile(sys.stdin.read(), "<setup cell>", "exec"), {"__name__": "__main__"})
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
    dists_after = sorted(d.metadata["Name"] + "==" + d.version for d in importlib.metadata.distributions())
    env_changed = {k: os.environ.get(k) for k in set(env_before) | set(os.environ) if env_before.get(k) != os.environ.get(k)}
    print(json.dumps({"calls": calls, "env_changed": env_changed, "error": error,
                      "dists_changed": dists_before != dists_after, "files": sorted(os.listdir("."))}))
    """
)


def run_setup_cell(tmp_path, **env_overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in JAX_VARS and k != "PI0LITE_SOURCE"}
    env.update(env_overrides)
    work = tmp_path / "cwd"
    work.mkdir(exist_ok=True)
    result = subprocess.run([sys.executable, "-c", HARNESS], input=SETUP_SOURCE, capture_output=True, text=True,
                            cwd=work, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"the setup cell printed to stderr: {result.stderr}"
    return json.loads(result.stdout)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_setup_cell_is_the_shared_source(path):
    nb = nbformat.read(str(path), as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == SETUP_SOURCE, (
        f"{path.name}: the first code cell differs from tools/nb/nbbuild.py SETUP_SOURCE; "
        "rebuild with `python tools/nb/NN_name.py` and `python tools/make_student.py`")


def test_setup_cell_is_a_no_op_locally(tmp_path):
    out = run_setup_cell(tmp_path, HOME=str(tmp_path))
    assert out["error"] is None
    assert out["calls"] == [], f"the setup cell started a program locally: {out['calls']}"
    assert not out["dists_changed"] and out["files"] == []
    assert out["env_changed"] == {"JAX_COMPILATION_CACHE_DIR": f"{tmp_path}/.cache/pi0lite_jax",
                                  "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    assert not (tmp_path / ".cache").exists(), "the cache directory is JAX's to create, not the setup cell's"


def test_setup_cell_keeps_env_values_already_set(tmp_path):
    out = run_setup_cell(tmp_path, JAX_COMPILATION_CACHE_DIR="/somewhere", JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="5")
    assert out["error"] is None and out["calls"] == [] and out["env_changed"] == {}


@pytest.mark.skipif(bool(PI0LITE_PUBLIC_SOURCE), reason="a public source exists: the no-source failure cannot happen")
def test_colab_without_a_source_fails_with_one_actionable_line(tmp_path):
    out = run_setup_cell(tmp_path, FAKE_COLAB="1")
    assert out["calls"] == [], "nothing may be installed when there is no source"
    error = out["error"]
    assert error.startswith("RuntimeError: ") and "\n" not in error
    assert "%env PI0LITE_SOURCE=" in error and "git+https://" in error


def test_colab_installs_pi0lite_from_pi0lite_source(tmp_path):
    url = "git+https://example.org/fork/pi0lite@v1"
    out = run_setup_cell(tmp_path, FAKE_COLAB="1", PI0LITE_SOURCE=url, PATH="/nonexistent")  # no nvidia-smi
    assert out["error"] is None
    assert [c[1][1:] for c in out["calls"]] == [["-m", "pip", "install", "-q", f"pi0lite @ {url}"]]
    wheel = tmp_path / "cwd" / "pi0lite-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    out = run_setup_cell(tmp_path, FAKE_COLAB="1", PI0LITE_SOURCE=str(wheel), PATH="/nonexistent")
    assert [c[1][1:] for c in out["calls"]] == [["-m", "pip", "install", "-q", str(wheel)]]


def test_colab_reports_a_failed_install_in_one_line(tmp_path):
    out = run_setup_cell(tmp_path, FAKE_COLAB="1", PI0LITE_SOURCE="git+https://example.org/x", FAKE_RETURNCODE="1",
                         PATH="/nonexistent")
    assert out["error"].startswith("RuntimeError: pip could not install") and "\n" not in out["error"]
