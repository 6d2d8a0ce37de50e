"""FAST tokenizer speed and compression: pi0lite's batched encode/decode vs a reference-style loop.

The baseline is written the way the reference processor works, one chunk at a time: one scipy
DCT and one ``Tokenizer.encode`` call per chunk (the string built with ``"".join(map(chr, ...))``),
and on decode one ``Tokenizer.decode`` and one inverse DCT per chunk, nothing else. pi0lite runs
the DCT and quantisation over the whole batch, converts it to strings with one UTF-32 conversion,
splits them as the BPE's pre-tokenizer does and runs each distinct piece through the BPE once
(a per-tokenizer cache); decode gathers every id's bytes from a table in one go.

Encode is timed two ways, each against the loop under the same conditions: warm (best of
``--repeats`` calls on one tokenizer: the loop's BPE has its word cache filled, pi0lite its piece
cache) and first call (best of ``--repeats`` calls, each on a freshly loaded copy of the
tokenizer: every piece goes through the BPE once, in both).

Run:  .venv/bin/python benchmarks/bench_fast.py [--n 1000] [--repeats 5] [--seeds 0 2 4 6 8]
Data: the synthetic 50×7 recipe of ../shared/fast (train seed 0, held-out seed 1).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import time

import sys

import numpy as np
import scipy.fft
from tokenizers import Tokenizer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_line

from pi0lite.fast import FastTokenizer

SHARED = pathlib.Path(os.environ.get("PI0LITE_SHARED", pathlib.Path(__file__).resolve().parents[2] / "shared"))


def load_data(n: int, seed: int = 1, train_seed: int = 0):
    spec = importlib.util.spec_from_file_location("make_chunks", SHARED / "fast" / "make_chunks.py")
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    train_raw = mc.make_chunks(2000, train_seed)
    return mc.quantile_normalize(train_raw, train_raw), mc.quantile_normalize(train_raw, mc.make_chunks(n, seed))


def loop_encode(tok: FastTokenizer, chunks):
    """Reference-style: per chunk one DCT, one string, one BPE call."""
    c = tok.config
    out = []
    for a in chunks:
        q = np.around(scipy.fft.dct(a, axis=0, norm="ortho") * c.scale).flatten()
        out.append(tok.bpe.encode("".join(map(chr, np.maximum(q - c.min_token, 0).astype(int)))).ids)
    return out


def loop_decode(tok: FastTokenizer, tokens):
    """Reference-style: per chunk one BPE decode, one inverse DCT."""
    c = tok.config
    out = []
    for ids in tokens:
        q = np.array(list(map(ord, tok.bpe.decode(ids)))) + c.min_token
        if q.size != c.action_horizon * c.action_dim:
            q = np.zeros(c.action_horizon * c.action_dim)
        out.append(scipy.fft.idct(q.reshape(c.action_horizon, c.action_dim) / c.scale, axis=0, norm="ortho"))
    return np.stack(out)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="*", default=[], help="also compare alphabets on train seed s / held-out s+1")
    args = ap.parse_args()
    train, x = load_data(args.n)
    naive = x.shape[1] * x.shape[2]

    print(machine_line())
    print(f"{args.n} chunks of {x.shape[1]}x{x.shape[2]}, best of {args.repeats}\n")
    print("| tokenizer | tokens/chunk | compression vs naive | invalid | max-abs err (valid) | RMSE (valid) |")
    print("|---|---|---|---|---|---|")
    toks = {}
    for alphabet in ("reference", "bytes"):
        tok = toks[alphabet] = FastTokenizer.fit(train, alphabet=alphabet)
        ids = tok.encode(x)
        acts, valid = tok.decode(ids)
        err = (acts - x)[valid]
        mean = np.mean([len(i) for i in ids])
        print(f"| {alphabet} | {mean:.2f} | {naive / mean:.2f}x | {int((~valid).sum())} | "
              f"{np.abs(err).max():.4f} | {np.sqrt(np.mean(err**2)):.4f} |")

    tok = toks["reference"]
    ids = tok.encode(x)
    assert loop_encode(tok, x) == ids, "loop and batched encode disagree"
    assert np.allclose(loop_decode(tok, ids)[tok.decode(ids)[1]], tok.decode(ids)[0][tok.decode(ids)[1]])
    saved = tok.bpe.to_str()
    fresh = [FastTokenizer(tok.config, Tokenizer.from_str(saved)) for _ in range(2 * args.repeats)]  # cold caches
    t = {
        "loop encode": best_of(lambda: loop_encode(tok, x), args.repeats),
        "batched encode": best_of(lambda: tok.encode(x), args.repeats),
        "loop encode, first call": best_of(lambda: loop_encode(fresh.pop(), x), args.repeats),
        "batched encode, first call": best_of(lambda: fresh.pop().encode(x), args.repeats),
        "loop decode": best_of(lambda: loop_decode(tok, ids), args.repeats),
        "batched decode": best_of(lambda: tok.decode(ids), args.repeats),
    }
    tb = toks["bytes"]
    ids_b = tb.encode(x)
    t["batched encode (bytes)"] = best_of(lambda: tb.encode(x), args.repeats)
    t["batched decode (bytes)"] = best_of(lambda: tb.decode(ids_b), args.repeats)
    print("\n| step | seconds | chunks/s |")
    print("|---|---|---|")
    for k, v in t.items():
        print(f"| {k} | {v:.4f} | {args.n / v:,.0f} |")
    if args.seeds:
        print("\n| train/held-out seed | reference tokens/chunk | invalid | bytes tokens/chunk | invalid |")
        print("|---|---|---|---|---|")
        for seed in args.seeds:
            tr, ho = load_data(args.n, seed + 1, seed)
            row = []
            for alphabet in ("reference", "bytes"):
                tk = FastTokenizer.fit(tr, alphabet=alphabet)
                ids_s = tk.encode(ho)
                row += [np.mean([len(i) for i in ids_s]), int((~tk.decode(ids_s)[1]).sum())]
            print(f"| {seed}/{seed + 1} | {row[0]:.3f} | {row[1]} | {row[2]:.3f} | {row[3]} |")
    print(f"\nencode speed-up {t['loop encode'] / t['batched encode']:.2f}x warm, "
          f"{t['loop encode, first call'] / t['batched encode, first call']:.2f}x on the first call of a freshly loaded "
          f"tokenizer; decode speed-up {t['loop decode'] / t['batched decode']:.2f}x "
          "(reference alphabet, same ids; goals 3x / 5x)")
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
