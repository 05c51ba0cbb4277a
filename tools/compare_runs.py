"""Compare the metrics of two sets of finished runs (e.g. the smoke reproduction before and after a refactor).

    python tools/compare_runs.py OLD_RUNS_DIR NEW_RUNS_DIR [--rtol 0]

Runs are matched by their config (model, dataset, seed, steps and every parameter), not by run id, so a change
in how ids are spelled does not hide a run. Prints one row per run with the largest metric difference and
exits 1 when a run is missing on one side or any metric differs by more than `rtol` (relative).
"""
import argparse
import json
import math
import sys
from pathlib import Path


def records(runs_dir: Path) -> dict[str, dict]:
    out = {}
    for path in sorted(runs_dir.glob("*/record.json")):
        record = json.loads(path.read_text())
        if record.get("status") != "finished": continue
        key = json.dumps({k: v for k, v in record["config"].items() if k not in ("imports",)}, sort_keys=True)
        out[key] = record
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance per metric (default 0: identical)")
    args = parser.parse_args(argv)
    old, new = records(args.old), records(args.new)
    if not old or not new: print(f"no finished runs in {args.old if not old else args.new}"); return 1
    bad = 0
    print(f"{'run':45s} {'metrics':>7s} {'max |rel diff|':>15s}")
    for key in sorted(old.keys() | new.keys()):
        label = json.loads(key); name = f"{label['model']}-{label['dataset']}-s{label['seed']}"
        if key not in old or key not in new:
            bad += 1; print(f"{name:45s} {'only in ' + ('old' if key in old else 'new'):>23s}"); continue
        a, b = old[key]["metrics"], new[key]["metrics"]
        if a.keys() != b.keys(): bad += 1; print(f"{name:45s} metric names differ: {sorted(a.keys() ^ b.keys())}"); continue
        diffs = [0.0 if (x == y or (math.isnan(x) and math.isnan(y))) else abs(x - y) / max(abs(x), abs(y), 1e-300) for x, y in ((a[k], b[k]) for k in a)]
        worst = max(diffs, default=0.0)
        bad += worst > args.rtol
        print(f"{name:45s} {len(a):7d} {worst:15.3g}{'  DIFFERENT' if worst > args.rtol else ''}")
    print(f"{len(old.keys() & new.keys())} runs compared, {bad} differ or are missing")
    return 1 if bad else 0


if __name__ == "__main__": sys.exit(main())
