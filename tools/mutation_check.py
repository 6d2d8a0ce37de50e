"""Mutation check: do the fast tests notice a flipped operator or constant in the core modules?

Each mutant below replaces one snippet of ``masks.py``, ``flow.py``, ``attention.py`` /
``gemma.py`` (attention, RoPE), ``norms.py``, ``fast/quantise.py`` or ``fast/tokenizer.py`` by a plausible bug. For
every mutant the script copies the package into a temporary directory, applies the mutation
there (the working tree is never touched), runs the mutant's test files with ``pytest -x`` against the copy and records which test
failed first. A mutant that no test kills is a hole in the suite: add a test.

    python tools/mutation_check.py            # all mutants, a table at the end (~10-20 min)
    python tools/mutation_check.py --only 3 7 # some of them
    python tools/mutation_check.py --list     # what would run

Slow on purpose (one pytest process per mutant), so it is not part of ``make test``.
Exit code: 0 every mutant killed, 1 some survived, 2 a snippet was not found (the code moved on:
update the mutant).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

REPO = pathlib.Path(__file__).resolve().parents[1]

MASKS = ["tests/test_masks.py", "tests/test_checks_masks.py", "tests/test_checks_pi0.py"]
FLOW = ["tests/test_flow.py", "tests/test_checks_flow.py", "tests/test_pi0.py"]
GEMMA = ["tests/test_gemma.py", "tests/test_attention.py", "tests/test_checks_gemma.py", "tests/test_pi0_fast_parity.py"]
FAST = ["tests/test_fast.py", "tests/test_fast_checks.py"]


@dataclass(frozen=True)
class Mutant:
    file: str  # inside pi0lite/
    what: str
    old: str
    new: str
    tests: list[str]


MUTANTS = [
    # --- masks.py ---------------------------------------------------------------------------
    Mutant("masks.py", "block rule <= becomes <", "cumsum[:, None, :] <= cumsum[:, :, None]",
           "cumsum[:, None, :] < cumsum[:, :, None]", MASKS),
    Mutant("masks.py", "mask transposed (keys as rows)", "cumsum[:, None, :] <= cumsum[:, :, None]",
           "cumsum[:, :, None] <= cumsum[:, None, :]", MASKS),
    Mutant("masks.py", "padding masked as key only", "valid = input_mask[:, None, :] & input_mask[:, :, None]",
           "valid = input_mask[:, None, :]", MASKS),
    Mutant("masks.py", "cumsum over the batch axis", "cumsum = jnp.cumsum(ar_mask.astype(jnp.int32), axis=1)",
           "cumsum = jnp.cumsum(ar_mask.astype(jnp.int32), axis=0)", MASKS),
    Mutant("masks.py", "positions start at 1", "return jnp.cumsum(jnp.asarray(input_mask, jnp.int32), axis=-1) - 1",
           "return jnp.cumsum(jnp.asarray(input_mask, jnp.int32), axis=-1)", MASKS),
    Mutant("masks.py", "pi0 state token shares the actions' block", "return np.array([True, True] + [False] * (action_horizon - 1))",
           "return np.array([True, False] + [False] * (action_horizon - 1))", MASKS),
    Mutant("masks.py", "prefix causal instead of bidirectional", "return np.zeros((prefix_len,), bool)",
           "return np.ones((prefix_len,), bool)", MASKS),
    # --- flow.py ----------------------------------------------------------------------------
    Mutant("flow.py", "interpolate: paper convention (t = 1 data)", "return t * noise + (1.0 - t) * actions",
           "return t * actions + (1.0 - t) * noise", FLOW),
    Mutant("flow.py", "target velocity sign flipped", "return noise - actions", "return actions - noise", FLOW),
    Mutant("flow.py", "Euler step goes the wrong way", "return x_t + dt * v_t", "return x_t - dt * v_t", FLOW),
    Mutant("flow.py", "time floor 0.001 dropped", "* 0.999 + 0.001", "* 0.999", FLOW),
    Mutant("flow.py", "time Beta(1, 1.5) instead of Beta(1.5, 1)", "TIME_BETA_ALPHA = 1.5\nTIME_BETA_BETA = 1.0",
           "TIME_BETA_ALPHA = 1.0\nTIME_BETA_BETA = 1.5", FLOW),
    Mutant("flow.py", "sincos: cosines first", "jnp.concatenate([jnp.sin(angle), jnp.cos(angle)], axis=-1)",
           "jnp.concatenate([jnp.cos(angle), jnp.sin(angle)], axis=-1)", FLOW),
    Mutant("flow.py", "sincos: angle without 2π", "1.0 / period * 2 * jnp.pi", "1.0 / period * jnp.pi", FLOW),
    # --- attention.py / gemma.py (RoPE, attention) and norms.py -----------------------------
    Mutant("attention.py", "RoPE rotates the other way", "x1 * cos - x2 * sin, x2 * cos + x1 * sin",
           "x1 * cos + x2 * sin, x2 * cos - x1 * sin", GEMMA),
    Mutant("attention.py", "RoPE base 1,000", "ROPE_BASE = 10_000.0", "ROPE_BASE = 1_000.0", GEMMA),
    Mutant("attention.py", "RoPE frequencies 2j/h -> j/h", "ROPE_BASE ** (-(2.0 / x.shape[-1])", "ROPE_BASE ** (-(1.0 / x.shape[-1])", GEMMA),
    Mutant("gemma.py", "attention logits not scaled by h^-0.5", "q = apply_rope(q, positions) * q.shape[-1] ** -0.5",
           "q = apply_rope(q, positions)", GEMMA),
    Mutant("gemma.py", "keys not rotated", "k = apply_rope(k, positions)\n", "k = k\n", GEMMA),
    Mutant("attention.py", "softmax over queries", "return jax.nn.softmax(attention_logits(q, k, mask), axis=-1)",
           "return jax.nn.softmax(attention_logits(q, k, mask), axis=-2)", GEMMA),
    Mutant("attention.py", "attention output not divided by the softmax sum",
           'out = attend(e, v).astype(jnp.float32) / einops.rearrange(total, "b n t -> b t n")[..., None]',
           'out = attend(e, v).astype(jnp.float32)', GEMMA),
    Mutant("attention.py", "mask inverted", "return jnp.where(mask[:, None, :, :], logits, MASK_VALUE)",
           "return jnp.where(~mask[:, None, :, :], logits, MASK_VALUE)", GEMMA),
    Mutant("attention.py", "masked logits -1 instead of MASK_VALUE", "return jnp.where(mask[:, None, :, :], logits, MASK_VALUE)",
           "return jnp.where(mask[:, None, :, :], logits, -1.0)", GEMMA),
    Mutant("norms.py", "RMSNorm scale used as scale, not 1 + scale", "return (_normalise(x) * (1.0 + scale)).astype(x.dtype)",
           "return (_normalise(x) * scale).astype(x.dtype)", GEMMA),
    # --- fast/quantise.py, fast/tokenizer.py -----------------------------------------------
    Mutant("fast/quantise.py", "round half up instead of half to even", "return np.around(coeffs * scale).astype(np.int64)",
           "return np.floor(coeffs * scale + 0.5).astype(np.int64)", FAST),
    Mutant("fast/quantise.py", "DCT without orthonormal scaling", 'coeffs = scipy.fft.dct(np.asarray(actions, np.float64), type=2, axis=1, norm="ortho")',
           'coeffs = scipy.fft.dct(np.asarray(actions, np.float64), type=2, axis=1, norm="forward")', FAST),
    Mutant("fast/tokenizer.py", "decode accepts one past the upper bound", "valid &= (lengths == n) & _segment_all((q >= lo) & (q <= hi), lengths)",
           "valid &= (lengths == n) & _segment_all((q >= lo) & (q <= hi + 1), lengths)", FAST),
    Mutant("fast/tokenizer.py", "decode accepts one past the lower bound", "valid &= (lengths == n) & _segment_all((q >= lo) & (q <= hi), lengths)",
           "valid &= (lengths == n) & _segment_all((q >= lo - 1) & (q <= hi), lengths)", FAST),
    Mutant("fast/tokenizer.py", "decode accepts too long strings", "valid &= (lengths == n) & _segment_all",
           "valid &= (lengths >= n) & _segment_all", FAST),
    Mutant("fast/quantise.py", "headroom one span narrower", "return max(self.max_token - self.min_token, 1)",
           "return max(self.max_token - self.min_token - 1, 1)", FAST),
]


def _failing_test(output: str) -> str:
    m = re.search(r"^FAILED (\S+)", output, re.M) or re.search(r"^ERROR (\S+)", output, re.M)
    if m:
        return m.group(1).split(" - ")[0]
    return "(exit code, no FAILED line)"


def _env(copy: pathlib.Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)  # the mutated copy, never the working tree
    env.setdefault("JAX_PLATFORMS", "cpu")
    env.setdefault("MPLBACKEND", "Agg")
    env.setdefault("PI0LITE_SHARED", str(REPO.parent / "shared"))
    return env


def _run(copy: pathlib.Path, tests: list[str], timeout: float) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-rfE", "-p", "no:cacheprovider", "--rootdir", str(REPO),
           *[str(REPO / t) for t in tests]]
    # cwd = the copy: `python -m` puts the cwd first on sys.path, so the copy's pi0lite is imported
    proc = subprocess.run(cmd, cwd=copy, env=_env(copy), capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=int, nargs="*", help="mutant numbers (1-based)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per mutant")
    args = parser.parse_args(argv)
    chosen = [(i, m) for i, m in enumerate(MUTANTS, 1) if not args.only or i in args.only]
    if args.list:
        for i, m in chosen:
            print(f"{i:2d}  {m.file:18s} {m.what}")
        return 0
    missing = []
    for i, m in chosen:
        count = (REPO / "pi0lite" / m.file).read_text().count(m.old)
        if count != 1:
            missing.append(f"mutant {i} ({m.file}: {m.what}): snippet found {count} times")
    if missing:
        print("\n".join(missing), file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pi0lite-mutants-") as tmp:
        copy = pathlib.Path(tmp)
        shutil.copytree(REPO / "pi0lite", copy / "pi0lite", ignore=shutil.ignore_patterns("__pycache__"))
        probe = subprocess.run([sys.executable, "-c", "import pi0lite; print(pi0lite.__file__)"], cwd=copy,
                               env=_env(copy), capture_output=True, text=True)
        if not probe.stdout.strip().startswith(str(copy)):
            print(f"the copy is not what gets imported: {probe.stdout}{probe.stderr}", file=sys.stderr)
            return 2
        # the unmutated copy must pass every test file used below (else a "kill" means nothing)
        files = sorted({t for _, m in chosen for t in m.tests})
        t0 = time.time()
        code, out = _run(copy, files, args.timeout)
        print(f"baseline (unmutated copy): {'pass' if code == 0 else 'FAIL'} in {time.time() - t0:.0f} s", flush=True)
        if code != 0:
            print(out[-3000:], file=sys.stderr)
            return 2
        rows, survived = [], 0
        for i, m in chosen:
            target = copy / "pi0lite" / m.file
            original = target.read_text()
            target.write_text(original.replace(m.old, m.new, 1))
            t0 = time.time()
            try:
                code, out = _run(copy, m.tests, args.timeout)
                killer = _failing_test(out) if code != 0 else "SURVIVED"
            except subprocess.TimeoutExpired:
                killer = "timeout (counted as killed)"
            finally:
                target.write_text(original)
            survived += killer == "SURVIVED"
            rows.append((i, m.file, m.what, killer, time.time() - t0))
            print(f"{i:2d} {m.file}: {m.what} -> {killer} ({time.time() - t0:.0f} s)", flush=True)
    print("\n| # | file | mutant | killed by |\n| --- | --- | --- | --- |")
    for i, file, what, killer, _ in rows:
        print(f"| {i} | {file} | {what} | {killer} |")
    print(f"\n{len(rows) - survived} of {len(rows)} mutants killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
