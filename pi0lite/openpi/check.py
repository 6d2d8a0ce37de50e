"""``python -m pi0lite.openpi check REF.npz``: compare pi0lite with a reference file made by openpi.

Exit codes: 0 parity ok · 1 parity failed (some output differs beyond its tolerance) ·
2 cannot check (missing, unreadable, truncated or non-npz file, a directory, missing
``meta/json`` / input / output keys, unknown model kind, parameters that do not fit the
model, usage error). Code 2 prints one line naming the file and the problem on stderr;
``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import traceback
from typing import Callable

from pi0lite.openpi.compare import CannotCheck, Row, read_meta, read_reference

# model name in a reference file's meta/json  ->  "module:function" returning a list of
# (output name, max abs error, tolerance). Imported lazily so each checker stays optional.
CHECKERS: dict[str, str] = {
    "pi0": "pi0lite.openpi.parity_pi0:check_pi0",
    "pi05": "pi0lite.openpi.parity_pi0:check_pi0",
    "fast": "pi0lite.openpi.parity_fast:check_pi0fast",
}

OK, FAILED, CANNOT_CHECK = 0, 1, 2


def _resolve(spec: str) -> Callable[[dict], list[Row]]:
    import importlib

    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def _one_line(err: BaseException) -> str:
    text = "; ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text if len(text) <= 300 else text[:297] + "..."


def report(rows: list[Row]) -> tuple[int, str]:
    """(0 or 1, the error table) for the rows of a checker."""
    width = max(len(r[0]) for r in rows)
    lines = [f"{'output':<{width}}  {'max abs err':>12}  {'tolerance':>10}  ok", "-" * (width + 32)]
    failed = [name for name, err, tol in rows if not err <= tol]
    for name, err, tol in rows:
        lines.append(f"{name:<{width}}  {err:12.3e}  {tol:10.1e}  {'yes' if err <= tol else 'NO'}")
    if failed:
        lines.append(f"parity FAILED: {len(failed)} of {len(rows)} outputs out of tolerance: {', '.join(failed)}")
        return FAILED, "\n".join(lines)
    lines.append(f"parity ok: {len(rows)} outputs, max abs err {max(r[1] for r in rows):.3e}")
    return OK, "\n".join(lines)


def run_check(path) -> tuple[int, str]:
    """Compare pi0lite with a reference file: (0 or 1, report). Raises :class:`CannotCheck`."""
    ref = read_reference(path)
    name = read_meta(ref).get("model")
    if name not in CHECKERS:
        raise CannotCheck(f"unknown model kind {name!r} in meta/json (supported: {', '.join(sorted(CHECKERS))})")
    checker = _resolve(CHECKERS[name])
    try:
        rows = checker(ref)
    except CannotCheck:
        raise
    except (KeyError, ValueError, TypeError) as err:  # config / parameters that do not fit the model
        raise CannotCheck(f"parameters or inputs do not fit a {name} model: {_one_line(err)}") from err
    if not rows:
        raise CannotCheck("the checker compared no outputs")
    return report(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pi0lite.openpi", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="compare with an openpi reference .npz (exit 0 ok, 1 failed, 2 cannot check)")
    check.add_argument("reference", type=pathlib.Path)
    check.add_argument("--debug", action="store_true", help="show the traceback when a file cannot be checked")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # usage error (2) or --help (0)
        return CANNOT_CHECK if exit_.code else OK
    try:
        code, text = run_check(args.reference)
    except Exception as err:  # every failure to check is exit 2 with one line
        if args.debug:
            traceback.print_exc()
        problem = str(err) if isinstance(err, CannotCheck) else f"{type(err).__name__}: {_one_line(err)}"
        print(f"cannot check {args.reference}: {problem}", file=sys.stderr)
        return CANNOT_CHECK
    print(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
