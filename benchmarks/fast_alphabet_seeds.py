"""FAST alphabets across data seeds: tokens per held-out chunk and invalid chunks.

For each seed pair (train seed s, held-out seed s+1; s = 0 is the golden recipe of
../shared/fast) this fits the tokenizer on 2000 quantile-normalised 50×7 chunks and encodes
1000 held-out ones (scale 10, vocab 1024). Columns per alphabet: mean tokens per held-out chunk,
and ``bad`` = chunks that do not decode to their exact quantised coefficients (``invalid`` flags
from ``decode`` + silently wrong ones, which must stay 0).

Rows ``reference``, ``bytes_v1`` and ``bytes`` are the package's alphabets. ``--explore`` adds the
experimental variants tried while choosing the default (built here from ``pi0lite.fast.bpe``
primitives; not part of the package). Variants only *count* round-trip failures of the BPE.

Run:  .venv/bin/python benchmarks/fast_alphabet_seeds.py [--explore] [--seeds 0 2 4 ...]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import sys
import time
import warnings

import numpy as np
from tokenizers import pre_tokenizers, trainers

from pi0lite.fast import bpe as fast_bpe
from pi0lite.fast import FastTokenizer, dct_quantise

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import machine_line

SHARED = pathlib.Path(os.environ.get("PI0LITE_SHARED", pathlib.Path(__file__).resolve().parents[2] / "shared"))
SCALE, VOCAB = 10.0, 1024


def load_pair(seed: int, n_train: int = 2000, n_test: int = 1000):
    spec = importlib.util.spec_from_file_location("make_chunks", SHARED / "fast" / "make_chunks.py")
    mc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mc)
    tr = mc.make_chunks(n_train, seed)
    return mc.quantile_normalize(tr, tr), mc.quantile_normalize(tr, mc.make_chunks(n_test, seed + 1))


def package_row(alphabet: str, train, test) -> tuple[float, int]:
    tok = FastTokenizer.fit(train, scale=SCALE, vocab_size=VOCAB, alphabet=alphabet)
    with warnings.catch_warnings():  # reference: low-side clamping warning
        warnings.simplefilter("ignore")
        ids = tok.encode(test)
        q_true = tok.quantise(test)
    _, valid = tok.decode(ids)
    strings = tok.bpe.decode_batch(ids)
    codes, lengths = fast_bpe.strings_to_code_points(strings)
    n = q_true[0].size
    exact = np.array([
        length == n and np.array_equal(tok.config.from_code_points(codes[s : s + n]), qt.ravel())
        for s, length, qt in zip(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths, q_true)
    ])
    return float(np.mean([len(i) for i in ids])), int(np.sum(~valid | ~exact))


# --- experimental variants (exploration only) --------------------------------------------------
PT = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)


def _symbols(codes: np.ndarray) -> list[str]:
    text = fast_bpe.rows_to_strings(np.asarray(codes)[None])[0]
    return sorted(set(PT.pre_tokenize_str(text)[0][0]))


def _compact(z: np.ndarray, k: int, radix: int) -> np.ndarray:
    r = z - k
    return np.where(r < 0, z, 0x1000 + (r // radix) * 64 + r % radix)


def variant_row(train, test, *, code: str, initial: str, min_frequency: int = 2, k: int = 128,
                radix: int | None = None, regex: bool = False) -> tuple[float, int]:
    """``code``: zigzag | compact | dc3 (DC row as separate 3-byte characters, rest compact).
    ``initial``: all256 (every byte symbol) | bounds (symbols of the accepted range only)."""
    q = dct_quantise(train, SCALE).reshape(len(train), -1)
    qt = dct_quantise(test, SCALE).reshape(len(test), -1)
    lo, hi = int(q.min()), int(q.max())
    blo, bhi = lo - (hi - lo), hi + (hi - lo)
    zmax = int(fast_bpe.zigzag(np.array([blo, bhi])).max())
    m = radix or min(64, int(np.ceil(np.sqrt(max(zmax - k + 1, 1)))))
    d = train.shape[2]

    def to_cp(qq: np.ndarray) -> np.ndarray:
        z = fast_bpe.zigzag(qq)
        if code == "zigzag":
            return z
        cp = _compact(z, k, m)
        if code == "dc3":
            cp[..., :d] = 0x2000 + z[..., :d]  # frequency-0 row: its own symbols (lead byte 0xE2)
        return cp

    if initial == "all256":
        init = pre_tokenizers.ByteLevel.alphabet()
    else:
        # every accepted value in a DC position (first d columns) and in a later one
        init = _symbols(to_cp(np.repeat(np.arange(blo, bhi + 1)[:, None], d + 1, axis=1)).ravel())
    tok = fast_bpe.new_tokenizer("reference" if regex else "bytes")
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=[], initial_alphabet=init, max_token_length=10000)
    tok.train_from_iterator(fast_bpe.rows_to_strings(to_cp(q)), trainer=trainer)
    strings = fast_bpe.rows_to_strings(to_cp(qt))
    enc = tok.encode_batch(strings)
    back = tok.decode_batch([e.ids for e in enc])
    return float(np.mean([len(e.ids) for e in enc])), sum(a != b for a, b in zip(back, strings))


VARIANTS = {
    "v1 + min_frequency=1": dict(code="zigzag", initial="all256", min_frequency=1),
    "v1 + min_frequency=5": dict(code="zigzag", initial="all256", min_frequency=5),
    "v1 + bounds alphabet": dict(code="zigzag", initial="bounds"),
    "compact, radix 16": dict(code="compact", initial="bounds", radix=16),
    "compact, 110 single bytes": dict(code="compact", initial="bounds", k=110),
    "compact + regex split": dict(code="compact", initial="bounds", regex=True),
    "compact, DC row 3-byte": dict(code="dc3", initial="bounds"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 2, 4, 6, 8, 10, 12], help="train seeds (held-out = seed+1)")
    ap.add_argument("--explore", action="store_true", help="also measure the experimental variants")
    args = ap.parse_args()
    print(machine_line(), flush=True)
    t0 = time.perf_counter()
    rows: dict[str, list[tuple[float, int]]] = {}
    for seed in args.seeds:
        train, test = load_pair(seed)
        for alphabet in ("reference", "bytes_v1", "bytes"):
            rows.setdefault(alphabet, []).append(package_row(alphabet, train, test))
        if args.explore:
            for name, kw in VARIANTS.items():
                rows.setdefault(name, []).append(variant_row(train, test, **kw))
    ref = [r[0] for r in rows["reference"]]
    head = " | ".join(f"{s}/{s + 1}" for s in args.seeds)
    print(f"tokens per held-out chunk (bad chunks), scale {SCALE:g}, vocab {VOCAB}; seeds train/held-out\n")
    print(f"| variant | {head} | mean | worse than reference on |")
    print("|---" * (len(args.seeds) + 3) + "|")
    for name, vals in rows.items():
        cells = " | ".join(f"{m:.3f} ({b})" for m, b in vals)
        worse = [f"{s}/{s + 1}" for s, (m, _), r in zip(args.seeds, vals, ref) if m > r]
        print(f"| {name} | {cells} | {np.mean([m for m, _ in vals]):.3f} | {', '.join(worse) or '-'} |")
    print(f"\n({time.perf_counter() - t0:.0f} s; load average at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
