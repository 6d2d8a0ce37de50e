"""Checks for notebook 16 (training pi0-FAST on the toy task).

* 16.1 ``check_extract_actions``: generated ids -> (actions, valid), against a reference written
  out below on hand-built generations (valid, cut off, missing markers, a body FAST cannot decode).
* 16.2 ``check_chunk_cost``: the cost model of one action chunk, flow pi0 vs pi0-FAST (forward
  passes, matmul FLOPs, parameters read), against the formulas of the notebook.

Axis letters: b batch, o generated tokens, a action steps, j action dims.
"""

from __future__ import annotations

import functools

import numpy as np

from pi0lite.course.checks._cases import call_student, report_success

__all__ = ["check_extract_actions", "check_chunk_cost", "extract_actions_reference", "chunk_cost_reference"]


# --- 16.1 tokens -> actions with validity flags ------------------------------------------------


def extract_actions_reference(generated, prompt, *, end_check=True, decode_check=True, map_ids=True,
                              prefix_check=True, zero_invalid=True):
    """The reference (all flags True) and the known mistakes (one flag False)."""
    text = prompt.text
    start = text.encode("Action: ")[1:]  # without BOS
    end = text.encode("|")[1:]
    hi = prompt.vocab_size - 1 - prompt.skip
    lo = hi - (prompt.fast.vocab_size - 1)
    ids, ok = [], []
    for row in np.asarray(generated).tolist():
        good = row[: len(start)] == start or not prefix_check
        body = row[len(start):]
        n = 0
        while n < len(body) and lo <= body[n] <= hi:
            n += 1
        good = good and n > 0 and (body[n : n + len(end)] == end or not end_check)
        ids.append([hi - t for t in body[:n]] if map_ids else body[:n])
        ok.append(good)
    actions, decoded = prompt.fast.decode(ids)
    valid = np.array(ok) & (decoded if decode_check else True)
    if zero_invalid:
        actions[~valid] = 0.0
    return actions, valid


@functools.lru_cache(maxsize=1)
def _extract_setup():
    from pi0lite.fast import FastTokenizer
    from pi0lite.fast.prompt import CharTokenizer, FastPrompt

    rng = np.random.default_rng(16)
    t = np.linspace(0, 1, 10)[None, :, None]
    chunks = 0.8 * np.sin(2 * np.pi * (t * rng.uniform(0.2, 1.0, (400, 1, 2)) + rng.uniform(0, 1, (400, 1, 2))))
    fast = FastTokenizer.fit(chunks, vocab_size=300)
    text = CharTokenizer()
    prompt = FastPrompt(text=text, fast=fast, vocab_size=text.vocab_size + fast.vocab_size + 128, max_token_len=72,
                        skip=128)
    return prompt, chunks[:8]


def _generations(prompt, chunks, width: int = 40) -> dict[str, np.ndarray]:
    """Named batches of generated ids [b, width] (0 after the end), each mixing valid and invalid rows."""
    text = prompt.text
    start, end, eos = text.encode("Action: ")[1:], text.encode("|")[1:], text.eos_id
    body = [(prompt.vocab_size - 1 - prompt.skip - np.asarray(ids)).tolist() for ids in prompt.fast.encode(chunks)]

    def rows(*seqs):
        out = np.zeros((len(seqs), width), np.int64)
        for i, s in enumerate(seqs):
            out[i, : min(len(s), width)] = s[:width]
        return out

    b = body
    return {
        "two finished generations": rows(start + b[0] + end + [eos], start + b[1] + end + [eos]),
        "one ends with '|' only (no EOS yet), text after it": rows(start + b[2] + end + text.encode(" ok")[1:],
                                                                   start + b[3] + end + [eos]),
        "cut off by max_steps before '|'": rows(start + b[4] + end + [eos], start + b[5]),
        "no 'Action: ' marker": rows(b[6] + end + [eos], start + b[7] + end + [eos]),
        "wrong marker 'Actiom: '": rows(text.encode("Actiom: ")[1:] + b[0] + end + [eos], start + b[1] + end + [eos]),
        "'Action: |' with no FAST token": rows(start + end + [eos], start + b[2] + end + [eos]),
        "EOS in the middle of the FAST tokens": rows(start + b[3][:2] + [eos] + b[3][2:] + end,
                                                     start + b[4] + end + [eos]),
        "a FAST body one token short (wrong number of coefficients)": rows(start + b[5][:-1] + end + [eos],
                                                                          start + b[6] + end + [eos]),
    }


_EXTRACT_MISTAKES = {
    "A generation cut off before '|' (or interrupted by EOS) must be invalid: after the FAST tokens the "
    "next ids must be exactly those of '|'.": {"end_check": False},
    "The FAST decode has its own validity flag (the ids must decode to exactly action_horizon × action_dim "
    "coefficients in range): AND it into yours.": {"decode_check": False},
    "Map the ids back before decoding: FAST id = vocab_size − 1 − skip − vocabulary id.": {"map_ids": False},
    "Check that the generation starts with the ids of 'Action: ' (text.encode without its BOS).": {"prefix_check": False},
    "Set the actions of invalid rows to 0 (the check asks for zero_invalid behaviour).": {"zero_invalid": False},
}


def check_extract_actions(fn) -> None:
    """``fn(generated int[b, o], prompt) -> (actions float[b, a, j], valid bool[b])``."""
    if not callable(fn):
        raise AssertionError(f"extract_actions: expected a function, got {type(fn).__name__}")
    prompt, chunks = _extract_setup()
    cases = _generations(prompt, chunks)
    for name, generated in cases.items():
        got = call_student(fn, name, generated.copy(), prompt)
        if not isinstance(got, tuple) or len(got) != 2:
            raise AssertionError(f"extract_actions, case '{name}': return a pair (actions, valid), got {type(got).__name__}")
        actions, valid = np.asarray(got[0]), np.asarray(got[1])
        want_actions, want_valid = extract_actions_reference(generated, prompt)

        def hint(got_actions, got_valid):
            for text, flags in _EXTRACT_MISTAKES.items():
                a, v = extract_actions_reference(generated, prompt, **flags)
                if np.array_equal(got_valid, v) and got_actions.shape == a.shape and np.allclose(got_actions, a, atol=1e-6):
                    return f"\nHint: {text}"
            return ""

        if valid.shape != want_valid.shape or valid.dtype != bool:
            raise AssertionError(f"extract_actions, case '{name}': valid must be bool of shape {want_valid.shape}, "
                                 f"got {valid.dtype} {valid.shape}")
        if actions.shape != want_actions.shape:
            raise AssertionError(f"extract_actions, case '{name}': actions must have shape {want_actions.shape} "
                                 f"[batch, action_horizon, action_dim], got {actions.shape}")
        if not np.array_equal(valid, want_valid):
            row = int(np.argmax(valid != want_valid))
            raise AssertionError(f"extract_actions, case '{name}': row {row} should be "
                                 f"{'valid' if want_valid[row] else 'invalid'}, got valid={bool(valid[row])}"
                                 + hint(actions, valid))
        if not np.allclose(actions, want_actions, atol=1e-6):
            row = int(np.argmax(~np.isclose(actions, want_actions, atol=1e-6).reshape(len(actions), -1).all(-1)))
            raise AssertionError(f"extract_actions, case '{name}': the actions of row {row} "
                                 f"({'valid' if want_valid[row] else 'invalid'}) are wrong "
                                 f"(max error {np.abs(actions[row] - want_actions[row]).max():.3g})" + hint(actions, valid))
    report_success("extract_actions", len(cases))


# --- 16.2 the cost of one chunk ------------------------------------------------------------------

COST_KEYS = ("flow_passes", "fast_passes", "flow_flops", "fast_flops", "flow_params_read", "fast_params_read")


def chunk_cost_reference(prefix_len, horizon, flow_steps, fast_len, vlm_params, expert_params, *,
                         prefix_pass=True, state_token=True, expert_for_steps=True, prefill=True, cache=True, two=True):
    """The reference (all flags True) and the known mistakes (one flag False)."""
    f = 2 if two else 1
    suffix = horizon + (1 if state_token else 0)
    step_params = expert_params if expert_for_steps else vlm_params
    flow_passes = flow_steps + (1 if prefix_pass else 0)
    fast_passes = fast_len + (1 if prefill else 0)
    fast_tokens = prefix_len + fast_len if cache else prefix_len * fast_passes + fast_len * (fast_len + 1) // 2
    return {
        "flow_passes": flow_passes,
        "fast_passes": fast_passes,
        "flow_flops": f * (vlm_params * prefix_len + step_params * flow_steps * suffix),
        "fast_flops": f * vlm_params * fast_tokens,
        "flow_params_read": (vlm_params if prefix_pass else 0) + flow_steps * step_params,
        "fast_params_read": fast_passes * vlm_params,
    }


_COST_MISTAKES = {
    "Flow pi0 runs the prefix (images + prompt) once before the Euler steps: 1 + flow_steps passes.": {"prefix_pass": False},
    "pi0-FAST's prefill is a pass too: it runs the prompt and gives the first token; then each of the "
    "fast_len generated tokens is fed back once: 1 + fast_len passes.": {"prefill": False},
    "pi0's suffix has horizon + 1 tokens: the state token plus one token per action step.": {"state_token": False},
    "The Euler steps run the action expert (expert_params), not the vision-language model.": {"expert_for_steps": False},
    "With the KV cache, each decoding pass processes one new token (the prompt is not re-run).": {"cache": False},
    "A matmul does a multiply and an add per parameter and token: 2 · params · tokens FLOPs.": {"two": False},
}

_COST_CASES = [
    ("the toy sizes", (29, 16, 10, 9, 300_000, 60_000)),
    ("pi0 at real size (3 cameras, 48 prompt tokens, 1 s of 7-D actions)", (816, 50, 10, 33, 2_900_000_000, 300_000_000)),
    ("a long FAST generation", (100, 10, 5, 60, 1_000, 100)),
]


def check_chunk_cost(fn) -> None:
    """``fn(prefix_len, horizon, flow_steps, fast_len, vlm_params, expert_params) -> dict`` of COST_KEYS."""
    if not callable(fn):
        raise AssertionError(f"chunk_cost: expected a function, got {type(fn).__name__}")
    for name, args in _COST_CASES:
        got = call_student(fn, name, *args)
        if not isinstance(got, dict) or set(got) != set(COST_KEYS):
            keys = sorted(got) if isinstance(got, dict) else type(got).__name__
            raise AssertionError(f"chunk_cost, case '{name}': return a dict with the keys {list(COST_KEYS)}, got {keys}")
        want = chunk_cost_reference(*args)
        for key in COST_KEYS:
            if not np.isclose(float(got[key]), want[key], rtol=1e-9):
                hint = ""
                for text, flags in _COST_MISTAKES.items():
                    if np.isclose(float(got[key]), chunk_cost_reference(*args, **flags)[key], rtol=1e-9):
                        hint = f"\nHint: {text}"
                        break
                raise AssertionError(f"chunk_cost, case '{name}': {key} should be {want[key]:,}, got {got[key]:,}{hint}")
    report_success("chunk_cost", len(_COST_CASES))
