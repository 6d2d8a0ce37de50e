"""Check for notebook 07's exercise 7.3: one byte-pair-encoding merge step.

Reference: the pair counting and merging written out below (ties broken by the smallest pair, as
the notebook states); each known mistake is the same step with one argument changed.
"""

from collections import Counter

from pi0lite.course.checks._cases import report_success

__all__ = ["check_bpe_merge_step"]


# --- 7.3 one BPE merge step -------------------------------------------------------------------


def _count_pairs(seqs, scope: str = "all") -> Counter:
    """Adjacent pairs of every sequence (``scope="all"``), of the first only, or of all joined."""
    if scope == "first":
        seqs = seqs[:1]
    elif scope == "joined":
        seqs = [[sym for s in seqs for sym in s]]
    counts = Counter()
    for s in seqs:
        counts.update(zip(s[:-1], s[1:]))
    return counts


def _merge_pair(seqs, pair, how: str = "scan"):
    """Merge ``pair`` in every sequence: left-to-right scan, or (a mistake) string replace."""
    if how == "replace":  # joins the symbols with spaces and replaces "a b" by "ab"
        return [" ".join(s).replace(f"{pair[0]} {pair[1]}", pair[0] + pair[1]).split(" ") for s in seqs]
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
    return merged


def _merge_step(seqs, *, scope: str = "all", tie: str = "min", how: str = "scan"):
    """The reference step (defaults) and the known mistakes (other arguments)."""
    counts = _count_pairs(seqs, scope)
    best = max(counts.values())
    tied = [p for p, c in counts.items() if c == best]  # in first-seen order
    pair = min(tied) if tie == "min" else tied[0]
    return pair, _merge_pair(seqs, pair, how)


def _bpe_cases():
    return [
        ("one word", [list("aaabdaaabac")]),
        ("three words", [list("abab"), list("cab"), list("abc")]),
        ("overlapping run", [list("aaaa"), list("ba")]),
        ("a tie", [list("xyzw"), list("zwxy")]),
        ("zeros", [["0", "0", "3", "0", "0", "0", "0"], ["0", "0", "-1", "0"]]),
        ("repeats inside one word", [list("ababab"), list("cd"), list("cd")]),
        ("the winner is not in the first sequence", [list("ab"), list("cdcd"), list("cdx")]),
        ("a tie whose first-seen pair is not the smallest", [list("dcab"), list("dcab")]),
        ("a pair that straddles two sequences", [list("cd"), list("cd"), list("xa"), list("by"), list("za"),
                                                 list("bw"), list("qa"), list("br")]),
        ("symbols of several characters", [["a", "b"], ["ca", "b"], ["a", "b", "ca"]]),
    ]


_PAIR_HINTS = {
    "Among equally frequent pairs pick the smallest (min over the tied pairs), not the first one seen "
    "(Counter.most_common keeps first-seen order).": dict(tie="first"),
    "Count the pairs of every sequence, not only of the first one.": dict(scope="first"),
    "Count pairs inside each sequence only: the last symbol of one sequence and the first symbol of the "
    "next one are not adjacent (do not join the sequences).": dict(scope="joined"),
}
_MERGE_HINTS = {
    "Merge by walking the list of symbols, not by replacing text in a joined string: 'ca b'.replace('a b', 'ab') "
    "glues the tail of the symbol 'ca' to 'b'.": dict(how="replace"),
}


def check_bpe_merge_step(fn) -> None:
    """``fn(seqs: list[list[str]]) -> (pair, merged)``: the most frequent adjacent pair, merged everywhere."""
    for name, seqs in _bpe_cases():
        pair, merged = _merge_step(seqs)
        try:
            got = fn([list(s) for s in seqs])
        except NotImplementedError:
            raise
        except Exception as err:
            raise AssertionError(f"bpe_merge_step, case '{name}': your function raised {type(err).__name__}: {err}") from err
        if not (isinstance(got, tuple) and len(got) == 2):
            raise AssertionError(f"bpe_merge_step, case '{name}': return (pair, merged sequences)")
        got_pair, got_merged = tuple(got[0]), [list(s) for s in got[1]]
        if got_pair != pair:
            hint = "Count every adjacent position of every sequence; among equally frequent pairs pick the smallest (min)."
            for text, kw in _PAIR_HINTS.items():
                if _merge_step(seqs, **kw)[0] == got_pair:
                    hint = text
                    break
            raise AssertionError(f"bpe_merge_step, case '{name}': expected pair {pair}, got {got_pair}\nHint: {hint}")
        if got_merged != merged:
            hint = ("Scan left to right and merge non-overlapping occurrences: 'a a a a' -> 'aa aa', "
                    "and merge every occurrence in every sequence, not only the first.")
            for text, kw in _MERGE_HINTS.items():
                if _merge_step(seqs, **kw)[1] == got_merged:
                    hint = text
            raise AssertionError(f"bpe_merge_step, case '{name}': expected {merged}, got {got_merged}\nHint: {hint}")
    report_success("bpe_merge_step", len(_bpe_cases()))
