"""The checks of notebook 16 accept a right answer and reject realistic wrong ones with a useful hint.

The reference of check 16.1 is compared with the package's ``FastPrompt.extract_actions`` (written
independently); the reference of 16.2 with hand-computed numbers.
"""

import numpy as np
import pytest

from pi0lite.course.checks import check_chunk_cost, check_extract_actions
from pi0lite.course.checks.fast_policy import _extract_setup, _generations, chunk_cost_reference, extract_actions_reference


def _student_extract(generated, prompt, *, end=True, decode_valid=True, map_back=True, prefix=True, zero=True,
                     stop_at_eos=False):
    start, bar = prompt.text.encode("Action: ")[1:], prompt.text.encode("|")[1:]
    hi = prompt.vocab_size - 1 - prompt.skip
    lo = hi - (prompt.fast.vocab_size - 1)
    ids, ok = [], []
    for row in generated.tolist():
        good = row[: len(start)] == start or not prefix
        body = row[len(start):]
        if stop_at_eos:  # everything up to EOS, '|' included
            n = body.index(prompt.text.eos_id) if prompt.text.eos_id in body else len(body)
        else:
            n = next((i for i, t in enumerate(body) if not lo <= t <= hi), len(body))
        good = good and n > 0 and (body[n : n + len(bar)] == bar or not end)
        ids.append([hi - t for t in body[:n]] if map_back else body[:n])
        ok.append(good)
    actions, decoded = prompt.fast.decode(ids)
    valid = np.array(ok) & (decoded if decode_valid else True)
    if zero:
        actions[~valid] = 0
    return actions, valid


def test_reference_equals_the_package():
    prompt, chunks = _extract_setup()
    for name, generated in _generations(prompt, chunks).items():
        ref_actions, ref_valid = extract_actions_reference(generated, prompt)
        actions, valid = prompt.extract_actions(generated, zero_invalid=True)
        assert np.array_equal(ref_valid, valid), name
        np.testing.assert_allclose(ref_actions, actions, atol=1e-12, err_msg=name)
    cases = _generations(prompt, chunks)
    valid_counts = [int(extract_actions_reference(g, prompt)[1].sum()) for g in cases.values()]
    assert valid_counts[:2] == [2, 2] and all(c == 1 for c in valid_counts[2:])  # every later case has one bad row
    # the valid rows decode to the chunks they were made from (up to FAST's quantisation)
    actions, _ = extract_actions_reference(cases["two finished generations"], prompt)
    assert np.abs(actions - chunks[:2]).max() < 0.1


def test_extract_accepts_the_solution(capsys):
    check_extract_actions(_student_extract)
    assert "extract_actions" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (dict(end=False), "cut off before '|'"),
    (dict(decode_valid=False), "own validity flag"),
    (dict(map_back=False), "Map the ids back"),
    (dict(prefix=False), "starts with the ids of 'Action: '"),
    (dict(zero=False), "invalid rows to 0"),
])
def test_extract_rejects_mistakes_with_their_hint(wrong, hint):
    with pytest.raises(AssertionError, match="Hint:.*" + hint.replace("(", r"\(").replace(")", r"\)")):
        check_extract_actions(lambda g, p: _student_extract(g, p, **wrong))


def test_extract_rejects_stopping_at_eos_and_bad_returns():
    with pytest.raises(AssertionError, match="should be valid"):
        check_extract_actions(lambda g, p: _student_extract(g, p, stop_at_eos=True))
    with pytest.raises(AssertionError, match="return a pair"):
        check_extract_actions(lambda g, p: _student_extract(g, p)[0])
    with pytest.raises(AssertionError, match="valid must be bool"):
        check_extract_actions(lambda g, p: (_student_extract(g, p)[0], _student_extract(g, p)[1].astype(int)))


def _student_cost(P, H, K, m, vlm, expert, *, flow_prefix=True, prefill=True, state=True, cache=True, two=2):
    fast_passes = m + 1 if prefill else m
    return {
        "flow_passes": K + 1 if flow_prefix else K,
        "fast_passes": fast_passes,
        "flow_flops": two * (vlm * P + expert * K * (H + 1 if state else H)),
        "fast_flops": two * vlm * (P + m) if cache else two * vlm * sum(P + k for k in range(m + 1)),
        "flow_params_read": vlm + K * expert if flow_prefix else K * expert,
        "fast_params_read": fast_passes * vlm,
    }


def test_cost_reference_by_hand():
    # pi0 at real size: 2·2.9e9·816 + 2·3e8·10·51 and 2·2.9e9·(816 + 33)
    ref = chunk_cost_reference(816, 50, 10, 33, 2_900_000_000, 300_000_000)
    assert ref["flow_flops"] == 4_732_800_000_000 + 306_000_000_000
    assert ref["fast_flops"] == 4_924_200_000_000
    assert (ref["flow_passes"], ref["fast_passes"]) == (11, 34)
    assert ref["flow_params_read"] == 5_900_000_000 and ref["fast_params_read"] == 98_600_000_000


def test_cost_accepts_the_solution(capsys):
    check_chunk_cost(_student_cost)
    assert "chunk_cost" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (dict(flow_prefix=False), "runs the prefix"),
    (dict(prefill=False), "prefill is a pass too"),
    (dict(state=False), "state token"),
    (dict(cache=False), "KV cache"),
    (dict(two=1), "multiply and an add"),
])
def test_cost_rejects_mistakes_with_their_hint(wrong, hint):
    with pytest.raises(AssertionError, match="Hint: .*" + hint):
        check_chunk_cost(lambda *a: _student_cost(*a, **wrong))


def test_cost_rejects_the_vlm_for_flow_steps_and_a_missing_key():
    def vlm_steps(P, H, K, m, vlm, expert):
        return _student_cost(P, H, K, m, vlm, vlm)

    with pytest.raises(AssertionError, match="Hint: The Euler steps run the action expert"):
        check_chunk_cost(vlm_steps)
    with pytest.raises(AssertionError, match="keys"):
        check_chunk_cost(lambda *a: {k: v for k, v in _student_cost(*a).items() if k != "fast_flops"})
