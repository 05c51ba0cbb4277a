"""Time and peak memory of every array-level metric on dSprites-sized inputs; DCI serial vs parallel.

    OMP_NUM_THREADS=1 python tests/bench/bench_metrics.py [--quick] [--metrics mig,sap,...]

Inputs: 10,000 train / 5,000 test points, k = 5 factors with dSprites' sizes (shape 3, scale 6,
orientation 40, x 32, y 32), d = 10 codes (five noisy, partly mixed copies of the factors, five noise
dimensions). `--quick` shrinks the factor sizes to (3, 6, 8, 8, 8) so DCI's trees take a minute.
Peak memory is the process's peak resident set above its size when the metric starts (Linux: the
kernel's high-water mark, reset through /proc/self/clear_refs before each metric). Not tracemalloc: its
hook takes a lock on every allocation, which serialises the parallel DCI's threads (measured: 0.76 of the
serial time under tracemalloc, 0.5 without). The serial DCI run (scikit-learn's stock estimator, one factor after another) is the
baseline for the parallel one (each stage's per-class trees on 2 threads): both must give identical
numbers, and the ratio is parallel time / serial time. For comparison the script prints the best ratio
that parallelism over whole factors could reach on 2 workers.
"""
import argparse
import os
import time

import numpy as np

from vaenb.metrics import dci, explicitness, infomec, mig, modularity, sap

DSPRITES_SIZES = (3, 6, 40, 32, 32)
QUICK_SIZES = (3, 6, 8, 8, 8)


def make_inputs(sizes, n_train=10_000, n_test=5_000, d=10, seed=0):
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    factors = np.column_stack([rng.integers(0, s, n) for s in sizes])
    scaled = factors / (np.array(sizes) - 1)
    mixing = np.eye(len(sizes)) + 0.2 * rng.normal(size=(len(sizes), len(sizes)))
    codes = np.column_stack([scaled @ mixing + 0.05 * rng.normal(size=scaled.shape), rng.normal(size=(n, d - len(sizes)))])
    return codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:]


def best_two_worker_ratio(sizes):
    "Best parallel/serial time with one job per factor on 2 workers: a fit costs ~1 tree per class per stage."
    costs = sorted((1 if s == 2 else s for s in sizes), reverse=True)
    workers = [0, 0]
    for cost in costs: workers[workers.index(min(workers))] += cost
    return max(workers) / sum(costs)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def measure(fn):
    "Result, seconds and peak resident MiB above the start (NaN where /proc is missing) of `fn()`."
    try:
        with open("/proc/self/clear_refs", "w") as refs: refs.write("5")   # resets VmHWM to the current RSS
        start_kib = _status_kib("VmRSS")
    except OSError: start_kib = None
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    peak = float("nan") if start_kib is None else (_status_kib("VmHWM") - start_kib) / 1024
    return result, seconds, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small factor sizes so that DCI's trees are fast")
    parser.add_argument("--metrics", default="mig,modularity,sap,explicitness,infomec,dci")
    args = parser.parse_args()
    sizes = QUICK_SIZES if args.quick else DSPRITES_SIZES
    ctr, ftr, cte, fte = make_inputs(sizes)
    print(f"inputs: train {ctr.shape}, test {cte.shape}, factor sizes {sizes}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, {os.cpu_count()} cores (shared with other jobs)")
    runs = {
        "mig": lambda: mig(ctr, ftr),
        "modularity": lambda: modularity(ctr, ftr),
        "sap": lambda: sap(ctr, ftr, cte, fte),
        "explicitness": lambda: explicitness(ctr, ftr, cte, fte),
        "infomec": lambda: infomec(ctr, ftr),
        "dci serial (n_jobs=1)": lambda: dci(ctr, ftr, cte, fte, n_jobs=1),
        "dci parallel (n_jobs=2)": lambda: dci(ctr, ftr, cte, fte, n_jobs=2),
    }
    chosen = args.metrics.split(",")
    rows = []
    for name, fn in runs.items():
        if name.split()[0] not in chosen: continue
        result, seconds, peak = measure(fn)
        rows.append((name, seconds, peak, result))
        print(f"  done {name}: {seconds:.2f} s", flush=True)
    print(f"\n| {'metric':<24} | {'time (s)':>9} | {'peak MiB':>8} | result")
    print(f"|{'-' * 26}|{'-' * 11}|{'-' * 10}|{'-' * 8}")
    for name, seconds, peak, result in rows:
        shown = {k: round(v, 4) for k, v in result.items()} if isinstance(result, dict) else round(result, 4)
        print(f"| {name:<24} | {seconds:>9.2f} | {peak:>8.1f} | {shown}")
    timed = {name: (seconds, result) for name, seconds, _, result in rows}
    if "dci serial (n_jobs=1)" in timed:
        (serial, serial_result), (parallel, parallel_result) = timed["dci serial (n_jobs=1)"], timed["dci parallel (n_jobs=2)"]
        print(f"\nDCI parallel / serial time: {parallel / serial:.2f} (target <= 0.5; one job per factor could "
              f"reach {best_two_worker_ratio(sizes):.2f} at best); identical results: {serial_result == parallel_result}")


if __name__ == "__main__":
    main()
