"""Mesh + FSDP sharding and several processes.

The FSDP rule is checked against shapes worked out by hand. Runs on several devices happen in
subprocesses with ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` (this pytest process keeps
its one device): the oracle is a plain single-device ``jax.jit`` run of the same step.

Measured while writing these tests: with two or more examples per device the sharded runs agree
with the oracle to ~2e-6; with exactly one example per device (global batch 8 on 8 devices) XLA:CPU's
partitioned program differs by up to ~1e-4 in the gradients (4e-6 in the loss) — the single-device
oracle and an eager per-example computation agree with each other, so the difference is in the
partitioned program; it is not investigated further here, and the tests use 2 examples per device.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from pi0lite.sharding import FSDP_AXIS, MIN_SHARD_BYTES, fsdp_spec

REPO = pathlib.Path(__file__).resolve().parents[1]
TOL = 1e-5


def env_with_devices(n: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


# --- the rule, by hand ---------------------------------------------------------------------

F = FSDP_AXIS


@pytest.mark.parametrize(
    "shape, itemsize, fsdp, expected",
    [
        ((18, 8, 2048, 256), 4, 8, P(None, None, F)),  # q_einsum: 2048 is the largest axis
        ((257_152, 2048), 4, 8, P(F)),  # embedding: the vocabulary axis
        ((18, 16384, 2048), 4, 4, P(None, F)),  # mlp linear
        ((2048,), 4, 8, P()),  # vectors stay replicated
        ((1024, 1024), 2, 8, P()),  # 2 MiB < 4 MiB: replicated
        ((1024, 1024), 4, 8, P(F)),  # 4 MiB: sharded; a tie, the earlier axis wins
        ((27, 1152, 16, 72), 4, 1, P()),  # fsdp size 1: everything replicated
        ((27, 1152, 16, 72), 4, 7, P()),  # no axis divisible by 7: replicated
        ((18, 1, 1024, 1100), 4, 8, P(None, None, F)),  # 1100 % 8 != 0: the next largest (1024)
    ],
)
def test_fsdp_rule_by_hand(shape, itemsize, fsdp, expected):
    assert fsdp_spec(shape, itemsize, fsdp) == expected


def test_fsdp_threshold_is_openpis():
    assert MIN_SHARD_BYTES == 4 * 2**20


# --- several devices, one process -----------------------------------------------------------


@pytest.fixture(scope="module")
def sharded_report():
    out = subprocess.run(
        [sys.executable, "-m", "tests.multi.sharded_runs"], cwd=REPO, env=env_with_devices(8),
        capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mesh", ["8x1", "4x2", "1x8"])
def test_sharded_equals_single_device(sharded_report, mesh):
    r = sharded_report[mesh]
    assert r["loss"] < TOL, r["loss"]
    assert r["grads"][0] < TOL, r["grads"]  # max |Δg| / max(1, max |g|) per array
    assert r["params"][0] < TOL, r["params"]
    assert np.all(np.diff(sharded_report["ref_losses"]) != 0)  # the runs really trained


@pytest.mark.parametrize("mesh", ["8x1", "4x2", "1x8"])
def test_every_large_array_is_sharded(sharded_report, mesh):
    from tests.multi.sharded_runs import MIN_BYTES

    fsdp = int(mesh.split("x")[1])
    n_sharded = 0
    for name, s in sharded_report[mesh]["shards"].items():
        shape, divisible = s["shape"], any(d % fsdp == 0 for d in s["shape"])
        should = fsdp > 1 and len(shape) >= 2 and s["nbytes"] >= MIN_BYTES and divisible
        if should:  # really split: each device holds 1/fsdp of it
            assert FSDP_AXIS in s["spec"], (name, s)
            assert np.prod(s["shard_shape"]) * fsdp == np.prod(shape), (name, s)
            n_sharded += 1
        else:
            assert s["shard_shape"] == shape, (name, s)
        assert s["devices"] == 8
    assert (n_sharded > 40) == (fsdp > 1)


def test_optimizer_state_follows_its_parameter(sharded_report):
    shards = sharded_report["1x8"]["shards"]
    params = {k: v for k, v in shards.items() if k.startswith("[0]")}
    checked = 0
    for name, s in params.items():
        tail = name[len("[0]"):]
        for moment in ("mu", "nu"):
            matches = [v for k, v in shards.items() if k.startswith("[1]") and moment in k and k.endswith(tail)]
            assert len(matches) == 1, (name, moment)
            assert matches[0]["spec"] == s["spec"] and matches[0]["shard_shape"] == s["shard_shape"], (name, moment)
            checked += 1
    assert checked == 2 * len(params) >= 100


# --- several processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_cmd(out: pathlib.Path, *extra: str) -> list[str]:
    # eps 1e-4: see EPS in tests/multi/sharded_runs.py (SigLIP's key bias has a zero gradient)
    return [sys.executable, "-m", "pi0lite.train", "--preset", "micro", "--steps", "3", "--batch-size", "8",
            "--fsdp", "2", "--min-shard-bytes", "2048", "--adam-eps", "1e-4", "--out", str(out), *extra]


def launch_pair(tmp_path, *extra: str, crash: int | None = None) -> list[subprocess.Popen]:
    port = free_port()
    procs = []
    for pid in range(2):
        args = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(pid), *extra]
        if crash is not None and pid == 1:
            args += ["--crash-at-step", str(crash)]
        procs.append(subprocess.Popen(
            train_cmd(tmp_path / f"multi{pid}", *args), cwd=REPO, env=env_with_devices(2),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    return procs


def test_two_processes_equal_one_process(tmp_path):
    """2 processes × 2 CPU devices (gloo collectives) = 1 process × 4 devices, on a (2, 2) mesh."""
    procs = launch_pair(tmp_path)
    single = subprocess.run(train_cmd(tmp_path / "single"), cwd=REPO, env=env_with_devices(4),
                            capture_output=True, text=True, timeout=600)
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]
    meta_multi = json.loads((tmp_path / "multi0.json").read_text())
    meta_single = json.loads((tmp_path / "single.json").read_text())
    assert meta_multi["processes"] == 2 and meta_single["processes"] == 1
    assert meta_multi["mesh"] == meta_single["mesh"] == {"data": 2, "fsdp": 2}
    assert np.allclose(meta_multi["losses"], meta_single["losses"], atol=TOL, rtol=0)
    a, b = np.load(tmp_path / "multi0.npz"), np.load(tmp_path / "single.npz")
    assert sorted(a.files) == sorted(b.files) and len(a.files) >= 50
    worst = max(float(np.max(np.abs(a[k] - b[k]))) for k in a.files)
    assert worst < TOL, worst
    assert not (tmp_path / "multi1.npz").exists()  # only process 0 writes


def test_dead_peer_gives_a_clear_error_not_a_hang(tmp_path):
    t0 = time.monotonic()
    procs = launch_pair(tmp_path, "--step-timeout", "30", "--heartbeat-timeout", "5", crash=1)
    survivor, crashed = procs
    try:
        _, err = survivor.communicate(timeout=400)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        crashed.communicate()
    assert crashed.returncode == 17
    assert survivor.returncode != 0
    assert time.monotonic() - t0 < 400
    assert "ERROR" in err or "error" in err.lower(), err[-2000:]
