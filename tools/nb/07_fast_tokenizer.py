"""Builder of notebooks/07_fast_tokenizer.ipynb (run this file to rewrite the notebook)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from nbbuild import Notebook


def build() -> Notebook:
    nb = Notebook(
        "07_fast_tokenizer",
        "07 · FAST: action chunks as a few tokens",
        """
        pi0 *generates* actions with flow matching. pi0-FAST instead *writes* them, token by
        token, like text. That needs a tokenizer for actions. A chunk of 50 steps × 7 dims is
        350 numbers; one token per (binned) number would be 350 tokens, most of them nearly
        redundant because robot motion is smooth. **FAST** (Pertsch et al. 2025) compresses a
        chunk to about 40 tokens in four steps:

        1. a **DCT** along time (smooth signals → few large low-frequency coefficients);
        2. **scale and round** (most coefficients become exactly 0);
        3. **flatten** low frequencies first;
        4. **byte-pair encoding** (BPE) of the resulting integer string.

        You will build each step, sweep the one knob (`scale`), and then look at how the
        reference implementation can decode *silently wrong* actions, and how pi0lite flags them.
        """,
    )
    nb.code(
        """
        import matplotlib.pyplot as plt
        import numpy as np
        import scipy.fft

        from pi0lite.course import checks, viz
        from pi0lite.fast import FastTokenizer, dct_quantise, dequantise_idct

        np.set_printoptions(precision=3, suppress=True)
        """
    )
    nb.md(
        """
        ## 1. Realistic-looking chunks

        Each action dimension is an offset plus three slow sinusoids plus a little noise, then
        quantile-normalised per dimension (the 1st and 99th percentiles of the training set map
        to −1 and 1), as openpi does before FAST.
        """
    )
    nb.code(
        """
        def make_chunks(n, seed, horizon=50, dim=7):
            rng = np.random.default_rng(seed)
            t = np.arange(horizon)[None, :, None, None] / horizon            # [1, h, 1, 1]
            offset = rng.uniform(-0.5, 0.5, (n, 1, dim))
            amp = rng.uniform(0.1, 0.6, (n, 1, dim, 3))
            freq = rng.uniform(0.1, 2.0, (n, 1, dim, 3))                   # cycles per chunk
            phase = rng.uniform(0, 2 * np.pi, (n, 1, dim, 3))
            noise = rng.normal(0, 0.01, (n, horizon, dim))
            return offset + (amp * np.sin(2 * np.pi * freq * t + phase)).sum(-1) + noise

        raw_train, raw_test = make_chunks(2000, seed=0), make_chunks(500, seed=1)
        q01, q99 = np.quantile(raw_train.reshape(-1, 7), [0.01, 0.99], axis=0)
        normalise = lambda x: (x - q01) / (q99 - q01) * 2 - 1
        train, test = normalise(raw_train), normalise(raw_test)
        chunk = test[0]                                                     # [50, 7]
        print("train", train.shape, "test", test.shape, "range", train.min().round(2), train.max().round(2))
        viz.plot_action_chunk(chunk, title="one normalised chunk (50 steps x 7 dims)")
        plt.show()
        """
    )
    nb.md(
        r"""
        ## 2. The DCT: smooth motion in a few numbers

        The orthonormal DCT-II of a length-$n$ signal $x$ is $c = Mx$ with

        $$M_{k,t} = s_k \cos\!\Big(\frac{\pi (2t+1) k}{2n}\Big),\qquad s_0 = \sqrt{1/n},\; s_{k>0} = \sqrt{2/n}.$$

        Row $k$ is a cosine with $k$ half-periods over the chunk; row 0 is the (scaled) mean.
        With this scaling $M$ is **orthogonal**: $M^\top M = I$, so the inverse DCT is $M^\top$
        and an error of size ε on the coefficients is an error of size ε on the actions.

        ### Exercise 7.1 — build the DCT matrix

        Return the `[n, n]` matrix $M$ (rows = frequencies, columns = time steps). The check
        compares $Mx$ with `scipy.fft.dct(x, norm="ortho")` and tests the round trip $M^\top M x = x$.
        """
    )
    nb.exercise(
        "7.1",
        "build the orthonormal DCT-II matrix",
        '''
        def dct_matrix(n):
            """[n, n] float: coeffs = M @ x is the orthonormal DCT-II of x (length n)."""
            ### BEGIN SOLUTION
            k = np.arange(n)[:, None]  # frequency (rows)
            t = np.arange(n)[None, :]  # time (columns)
            m = np.cos(np.pi * (2 * t + 1) * k / (2 * n))
            scale = np.full((n, 1), np.sqrt(2.0 / n))
            scale[0] = np.sqrt(1.0 / n)
            return scale * m
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_dct_matrix(dct_matrix)")
    nb.hint(
        """
        Build `k` as a column and `t` as a row so broadcasting gives `[n, n]`; multiply every row
        by `sqrt(2/n)` except row 0, which gets `sqrt(1/n)`.
        """
    )
    nb.md(
        """
        From here on we use `scipy.fft.dct(..., axis=0, norm="ortho")`. Almost all of the
        chunk's energy sits in the first few frequencies:
        """
    )
    nb.code(
        """
        coeffs = scipy.fft.dct(chunk, axis=0, norm="ortho")                 # [f=50, d=7]
        assert np.allclose(scipy.fft.idct(coeffs, axis=0, norm="ortho"), chunk)  # lossless so far
        energy = np.cumsum((coeffs**2).sum(1)) / (coeffs**2).sum()
        print("share of the energy in the first 5 / 10 frequencies:", energy[4].round(4), energy[9].round(4))
        fig, axes = plt.subplots(1, 2, figsize=(9, 4))
        viz.plot_dct_coefficients(coeffs, ax=axes[0], title="all 50 frequencies")
        viz.plot_dct_coefficients(coeffs, ax=axes[1], max_freq=12, title="the first 12")
        fig.tight_layout()
        plt.show()
        """
    )
    nb.md(
        """
        ## 3. Scale, round, flatten

        Multiply the coefficients by `scale` (default 10) and round to integers. Rounding is
        **half to even** (`np.around`, also `jnp.round`): 0.5 → 0, 1.5 → 2, 2.5 → 2. Then flatten
        **row-major**: all 7 dims of frequency 0, then all 7 of frequency 1, … The important
        numbers come first and the long tail is zeros, which BPE will swallow in a few tokens.

        ### Exercise 7.2 — quantise and flatten

        `x` is a batch `[b, h, d]`. Return the integer array `[b, h·d]` in FAST order.
        """
    )
    nb.exercise(
        "7.2",
        "quantise and flatten a batch of chunks",
        '''
        def quantise_flatten(x, scale):
            """[b, h, d] float -> [b, h*d] int: DCT along time, * scale, round half to even, frequency-first."""
            ### BEGIN SOLUTION
            c = scipy.fft.dct(x, axis=1, norm="ortho")
            return np.around(c * scale).astype(np.int64).reshape(len(x), -1)
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_quantise_flatten(quantise_flatten)")
    nb.hint(
        """
        The time axis of `[b, h, d]` is axis 1. A C-order `reshape(b, -1)` of `[b, f, d]` already
        puts all `d` values of frequency 0 first. `astype(int)` alone would truncate.
        """
    )
    nb.code(
        """
        print("np.around([0.5, 1.5, 2.5, -0.5]) =", np.around([0.5, 1.5, 2.5, -0.5]))
        q = dct_quantise(test, 10.0)                                     # the package version, [b, f, d]
        print("first two frequencies of chunk 0:\\n", q[0, :2])
        print("share of zeros:", (q == 0).mean().round(3), "| non-zero per chunk:", (q != 0).sum((1, 2)).mean())
        err = dequantise_idct(q, 10.0) - test
        print("quantisation error: max-abs", np.abs(err).max().round(4), "RMSE", np.sqrt((err**2).mean()).round(4))
        assert np.abs(err).max() < 0.2
        """
    )
    nb.md(
        """
        ## 4. Byte-pair encoding by hand

        BPE starts from single symbols and repeatedly **merges the most frequent adjacent pair**
        into a new symbol, recording each merge. Encoding applies the merges in the same order.
        On FAST strings the most frequent pairs are runs of the zero coefficient, so a long tail
        of zeros becomes one token.

        ### Exercise 7.3 — one merge step

        `seqs` is a list of sequences of symbols (strings). Count every adjacent pair in every
        sequence, pick the most frequent (ties: the smallest pair, `min`), and replace its
        occurrences left to right, non-overlapping (`a a a a` → `aa aa`). Return `(pair, merged)`.
        """
    )
    nb.exercise(
        "7.3",
        "one BPE merge step",
        '''
        from collections import Counter

        def bpe_merge_step(seqs):
            """list[list[str]] -> ((left, right), list[list[str]]) after merging the most frequent pair."""
            ### BEGIN SOLUTION
            counts = Counter(p for s in seqs for p in zip(s[:-1], s[1:]))
            best = max(counts.values())
            pair = min(p for p, c in counts.items() if c == best)
            merged = []
            for s in seqs:
                out, i = [], 0
                while i < len(s):
                    if i + 1 < len(s) and (s[i], s[i + 1]) == pair:
                        out.append(s[i] + s[i + 1])
                        i += 2
                    else:
                        out.append(s[i])
                        i += 1
                merged.append(out)
            return pair, merged
            ### END SOLUTION
        ''',
    )
    nb.check("checks.check_bpe_merge_step(bpe_merge_step)")
    nb.hint(
        """
        `Counter(zip(s[:-1], s[1:]))` counts the adjacent pairs of one sequence. For the merge,
        walk with an index `i` and jump by 2 after a merge so occurrences never overlap.
        """
    )
    nb.md(
        """
        The `tokenizers` library (what FAST really uses) learns the same first merge on a small
        corpus. Its merges list is the "program" of the tokenizer:
        """
    )
    nb.code(
        """
        import json
        from collections import Counter
        from tokenizers import Tokenizer, models, trainers

        corpus = ["aaabdaaabac", "aabd", "aab"]
        bpe = Tokenizer(models.BPE())
        bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=12, show_progress=False, special_tokens=[]))
        merges = json.loads(bpe.to_str())["model"]["merges"]
        print("tokenizers' merges:", merges)
        counts = Counter(p for s in corpus for p in zip(s[:-1], s[1:]))
        print("most frequent pair by hand:", counts.most_common(1))
        assert tuple(merges[0]) == counts.most_common(1)[0][0]
        print("encode 'aaabdaaabac' ->", bpe.encode("aaabdaaabac").tokens)
        """
    )
    nb.md(
        """
        ## 5. The whole tokenizer, and the one knob

        `FastTokenizer.fit` does steps 1–3 on the training chunks, maps each integer to one
        character and trains a byte-level BPE with `tokenizers`. Decoding runs everything
        backwards and returns `(actions, valid)`.
        """
    )
    nb.code(
        """
        tok = FastTokenizer.fit(train, scale=10.0, vocab_size=1024)
        ids = tok.encode(test[:1])[0]
        print(tok)
        print(f"{len(ids)} tokens instead of 350:", ids)
        decoded, valid = tok.decode([ids])
        print("valid:", valid, "| max-abs error:", np.abs(decoded[0] - test[0]).max().round(4))
        assert valid.all()
        """
    )
    nb.md(
        """
        `scale` trades tokens for precision: a larger scale keeps more coefficients non-zero
        (more tokens) and rounds more finely (smaller error).
        """
    )
    nb.code(
        """
        scales = [2, 5, 10, 20, 50]
        tokens, rmse = [], []
        for s in scales:
            t = FastTokenizer.fit(train[:500], scale=s)
            ids_s = t.encode(test[:200])
            dec, ok = t.decode(ids_s)
            tokens.append(np.mean([len(i) for i in ids_s]))
            rmse.append(np.sqrt(np.mean((dec - test[:200]) ** 2)))
        for s, n, e in zip(scales, tokens, rmse):
            print(f"scale {s:3d}: {n:6.1f} tokens/chunk, RMSE {e:.4f}")
        assert tokens == sorted(tokens) and rmse == sorted(rmse, reverse=True)
        viz.plot_scale_sweep(scales, tokens, rmse, naive=350)
        plt.show()
        """
    )
    nb.md(
        """
        ## 6. Never silently wrong

        **The reference's hole.** The reference processor maps coefficient `q` to the character
        `chr(q − min_token)` and trains its byte-level BPE with the alphabet `chr(0 … span)`.
        Byte-level BPE, however, works on the UTF-8 *bytes* of those characters, and only the
        byte symbols seen during fitting make it into the vocabulary. A rare held-out
        coefficient that needs a missing byte loses it at encode time, without any error. On
        decode the length may still be right but one coefficient becomes U+FFFD (65533):
        an error of hundreds. `alphabet="reference"` reproduces the reference's ids exactly,
        hole included, but its `decode` *flags* those chunks.
        """
    )
    nb.code(
        """
        ref = FastTokenizer.fit(train, alphabet="reference")
        ref_actions, ref_valid = ref.decode(ref.encode(test))
        bad = np.flatnonzero(~ref_valid)
        print("reference alphabet: invalid chunks", bad.tolist(),
              "| their max-abs errors", np.abs(ref_actions[bad] - test[bad]).max((1, 2)).round(1))
        safe_actions, safe_valid = tok.decode(tok.encode(test))
        print("bytes alphabet (default): invalid chunks", np.flatnonzero(~safe_valid).tolist(),
              "| max-abs error", np.abs(safe_actions - test).max().round(4))
        assert len(bad) > 0 and safe_valid.all()
        """
    )
    nb.md(
        """
        Two kinds of damage show up: a dropped one-byte character changes the length (the
        reference returns an all-zero chunk, with only a printed message), and a dropped
        continuation byte keeps the length but turns one coefficient into ≈ 6,500 (the error of
        ≈ 925 above, with no message at all). pi0lite marks both invalid.

        **The safe default, `alphabet="bytes"`**, maps `q` by a zigzag code
        (0, −1, 1, −2, 2, … → 0, 1, 2, 3, 4, …), so any integer has a character and nothing is
        clamped. The 128 most common codes (−64 ≤ q ≤ 63, zigzag codes 0–127; zigzag(64) = 128
        already needs more) are single ASCII bytes; rarer codes are
        three-byte characters built from a few continuation bytes. BPE starts from exactly the
        byte symbols these characters can produce, so every accepted value encodes losslessly
        and no vocabulary id is spent on a byte that can never occur. It also drops the GPT-2
        regex pre-split, which lets merges cross what the regex would cut; on this kind of data
        it needs about one token per chunk *fewer* than the reference
        (`benchmarks/fast_alphabet_seeds.py` measures it on seven seeds).

        **Malformed token sequences** (what an undertrained pi0-FAST generates) are flagged too:
        a missing token (wrong length), an id outside the vocabulary, a negative id. The
        reference would print a message and return zeros; pi0lite returns `valid = False` and
        zeros the chunk only if you ask.
        """
    )
    nb.code(
        """
        ids = tok.encode(test[:1])[0]
        cases = {"ok": ids, "one token dropped": ids[:-1], "id too large": ids + [5000], "negative id": [-3] + ids[1:]}
        _, ok = tok.decode(list(cases.values()))
        for name, v in zip(cases, ok):
            print(f"{name:18s} valid={v}")
        assert ok.tolist() == [True, False, False, False]
        for bad_input in (test[0], test[:2] * 100):                      # wrong rank; not normalised
            try:
                tok.encode(bad_input)
            except ValueError as err:
                print("ValueError:", str(err)[:90], "...")
        """
    )
    nb.summary(
        """
        * FAST = DCT along time → scale and round (half to even) → flatten frequency-first →
          byte-level BPE. Smooth 50×7 chunks become about 40 tokens instead of 350.
        * The orthonormal DCT is a rotation: quantisation error in coefficients equals the error
          in actions; `scale` trades token count against that error.
        * BPE merges the most frequent adjacent pair again and again; on FAST strings it mostly
          swallows runs of zeros.
        * The reference alphabet can decode rare chunks to garbage without a sign; pi0lite's
          `alphabet="reference"` reproduces its ids but flags those chunks, and the default
          `alphabet="bytes"` removes the hole. `decode` always returns a `valid` flag per chunk.
        * Next, notebook 08 puts these tokens after the prompt and trains a transformer to write them.
        """
    )
    return nb


if __name__ == "__main__":
    print(build().write())
