"""Ship issue 10's knowledge-insulation results: the best KI policy and one comparison file.

    python tools/ship_ki.py --compare outputs/ki --fixes outputs/ki_fix

``--compare`` is the four-run comparison (``python -m pi0lite.demo --out outputs/ki --policies
pi05_ki,pi05_noki,pi0,pi0_noaux --curve-every 500 --steps 5000``), ``--fixes`` the run of the two fixes
tried (``--out outputs/ki_fix --policies pi05_ki_aux,pi05_ki_fine --curve-every 500 --steps 5000``). Writes
``pi0lite/assets/toy_results_ki.json`` (``policies`` of both runs, each run's settings and total
time under ``runs``) and copies the best KI policy, ``pi05_ki_aux`` (KI plus the grounding head),
into ``pi0lite/assets/toy_policy_pi05_ki`` (atomically, as ``python -m pi0lite.demo --ship`` does).
"""

from __future__ import annotations

import argparse
import json
import pathlib

from pi0lite.toy import demo, files
from pi0lite.toy.curve import SHIPPED_COMPARISON
from pi0lite.toy.jobs import JOBS
from pi0lite.toy.policy import ASSETS

RUN_KEYS = ("steps", "seed", "episodes", "total_seconds", "load_average")


def merge(compare: dict, fixes: dict) -> dict:
    overlap = set(compare["policies"]) & set(fixes["policies"])
    if overlap:
        raise SystemExit(f"both runs hold {sorted(overlap)}: one name, one run")
    if compare["steps"] != fixes["steps"] or compare["seed"] != fixes["seed"]:
        raise SystemExit(f"the runs differ in steps/seed: {compare['steps']}/{compare['seed']} vs "
                         f"{fixes['steps']}/{fixes['seed']}")
    return {"policies": {**compare["policies"], **fixes["policies"]}, "steps": compare["steps"],
            "seed": compare["seed"], "shipped_policy": "pi05_ki_aux",
            "runs": {"comparison": {k: compare.get(k) for k in RUN_KEYS}, "fixes": {k: fixes.get(k) for k in RUN_KEYS}}}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--compare", type=pathlib.Path, required=True)
    p.add_argument("--fixes", type=pathlib.Path, required=True)
    args = p.parse_args(argv)
    compare, fixes = (json.loads((d / "results.json").read_text()) for d in (args.compare, args.fixes))
    merged = merge(compare, fixes)
    demo.ship(args.fixes, [JOBS["pi05_ki_aux"]], results_name=None)  # the results: the merged file below
    files.atomic_write_text(ASSETS / SHIPPED_COMPARISON, json.dumps(merged, indent=1))
    print(f"wrote {ASSETS / SHIPPED_COMPARISON} ({', '.join(merged['policies'])})")


if __name__ == "__main__":
    main()
