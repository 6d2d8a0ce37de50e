"""Measure every notebook's runtime with a cold and a warm JAX compilation cache.

    python tools/time_notebooks.py [notebooks/NN_name.ipynb ...] [--json notebooks/runtimes.json]

For each notebook: a *cold* run (an empty, temporary ``JAX_COMPILATION_CACHE_DIR``: what a
learner's first run costs), then a *warm* run (the same cache again: every later run), each a
fresh kernel through ``jupyter nbconvert --execute`` (kernel start-up and imports included, as a
learner waits for them). Prints a Markdown table with the machine (CPU, cores) and the load
average beside each run, and writes the same numbers as JSON. Runtimes taken on a loaded machine
are upper bounds: the load column says how loaded it was.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run_once(nb: pathlib.Path, cache: str) -> dict:
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--execute", "--to", "notebook",
                               "--ExecutePreprocessor.timeout=900", "--output-dir", out, str(nb)],
                              env=env, cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{nb} failed:\n{proc.stderr[-2000:]}")
    return {"seconds": round(seconds, 1), "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebooks", nargs="*", help="default: every notebooks/NN_*.ipynb")
    p.add_argument("--json", default=str(REPO / "notebooks" / "runtimes.json"), help="where to write the numbers")
    args = p.parse_args(argv)
    nbs = [pathlib.Path(n) for n in args.notebooks] or sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    machine = {"cpu": cpu_model(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d")}
    print(f"machine: {machine['cpu']}, {machine['cores']} cores", flush=True)
    results = {}
    for nb in nbs:
        with tempfile.TemporaryDirectory() as cache:
            cold = run_once(nb, cache)
            warm = run_once(nb, cache)
        results[nb.stem] = {"cold": cold, "warm": warm}
        print(f"{nb.stem:>36}: warm {warm['seconds']:6.1f} s (load {warm['load_before']:.1f}), "
              f"cold {cold['seconds']:6.1f} s (load {cold['load_before']:.1f})", flush=True)
    out = {"machine": machine, "notebooks": results}
    if args.json:
        path = pathlib.Path(args.json)
        old = json.loads(path.read_text()) if path.exists() else {"notebooks": {}}
        old["notebooks"].update(results)  # timing a subset keeps the other rows
        old["machine"] = machine
        path.write_text(json.dumps(old, indent=1) + "\n")
    print("\n| notebook | warm | cold | load (warm / cold) |\n| --- | --- | --- | --- |")
    for name, r in results.items():
        print(f"| `{name}` | {r['warm']['seconds']:.0f} s | {r['cold']['seconds']:.0f} s | "
              f"{r['warm']['load_before']:.1f} / {r['cold']['load_before']:.1f} |")
    return out


if __name__ == "__main__":
    main()
