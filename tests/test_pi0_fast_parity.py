"""pi0-FAST matches openpi's own outputs on ../shared/parity/pi0fast_seed0.npz (loss, tokens, masks)."""

import json

import numpy as np


def test_pi0fast_parity(parity_dir):
    from pi0lite.openpi.parity_fast import check_pi0fast

    with np.load(parity_dir / "pi0fast_seed0.npz") as data:
        ref = {k: data[k] for k in data.files}
    assert json.loads(str(ref["meta/json"]))["model"] == "fast"
    rows = check_pi0fast(ref)
    names = {r[0] for r in rows}
    assert {"loss", "output_tokens", "attn_mask", "pre_logits"} <= names
    bad = [r for r in rows if not r[1] <= r[2]]
    assert not bad, bad
