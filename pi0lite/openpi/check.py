"""``python -m pi0lite.openpi check REF.npz``: compare pi0lite with a reference file made by openpi."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Callable

import numpy as np

# model name in a reference file's meta/json  ->  "module:function" returning a list of
# (output name, max abs error, tolerance). Imported lazily so each checker stays optional.
CHECKERS: dict[str, str] = {
    "pi0": "pi0lite.openpi.parity_pi0:check_pi0",
    "pi05": "pi0lite.openpi.parity_pi0:check_pi0",
    "fast": "pi0lite.openpi.parity_fast:check_pi0fast",
}


def _resolve(spec: str) -> Callable:
    import importlib

    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def run_check(path) -> tuple[int, str]:
    """Compare pi0lite with a reference file; return (exit code, report text)."""
    with np.load(path) as data:
        ref = {k: data[k] for k in data.files}
    meta = json.loads(str(ref["meta/json"]))
    name = meta.get("model", "?")
    if name not in CHECKERS:
        return 2, f"parity not supported yet: model {name!r} in {path} (supported: {sorted(CHECKERS)})"
    try:
        checker = _resolve(CHECKERS[name])
    except (ImportError, AttributeError) as err:
        return 2, f"parity not supported yet: model {name!r} ({err})"
    rows = checker(ref)
    width = max(len(r[0]) for r in rows)
    lines = [f"{'output':<{width}}  {'max abs err':>12}  {'tolerance':>10}  ok", "-" * (width + 32)]
    failed = []
    for out_name, err, tol in rows:
        ok = bool(err <= tol)
        failed += [] if ok else [out_name]
        lines.append(f"{out_name:<{width}}  {err:12.3e}  {tol:10.1e}  {'yes' if ok else 'NO'}")
    worst = max(r[1] for r in rows)
    if failed:
        lines.append(f"parity FAILED: {len(failed)} of {len(rows)} outputs out of tolerance: {', '.join(failed)}")
        return 1, "\n".join(lines)
    lines.append(f"parity ok: {len(rows)} outputs, max abs err {worst:.3e}")
    return 0, "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pi0lite.openpi", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="compare with an openpi reference .npz")
    check.add_argument("reference", type=pathlib.Path)
    args = parser.parse_args(argv)
    code, report = run_check(args.reference)
    print(report)
    return code


if __name__ == "__main__":
    sys.exit(main())
