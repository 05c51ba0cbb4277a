"""Time and peak memory of every array-level metric on dSprites-sized inputs; DCI against the stock estimator.

    OMP_NUM_THREADS=1 python tests/bench/bench_metrics.py [--quick] [--metrics mig,sap,...]

Inputs: 10,000 train / 5,000 test points, k = 5 factors with dSprites' sizes (shape 3, scale 6,
orientation 40, x 32, y 32), d = 10 codes (five noisy, partly mixed copies of the factors, five noise
dimensions). `--quick` shrinks the factor sizes to (3, 6, 8, 8, 8) so DCI's trees take a minute.
Peak memory is the process's peak resident set above its size when the metric starts (Linux: the
kernel's high-water mark, reset through /proc/self/clear_refs before each metric). Not tracemalloc: its
hook takes a lock on every allocation, which serialises the parallel DCI's threads.

DCI's baseline is the reference loop: scikit-learn's stock `GradientBoostingClassifier`, one factor after
another. vaenb's `dci` runs on one thread and on two; all three must give identical numbers, and the
ratios are times over the baseline's. A first table compares one tree of each builder on the same codes,
and on codes without tied values.
"""
import argparse
import os
import time

import numpy as np
from sklearn import ensemble, tree

from vaenb.metrics import dci, explicitness, infomec, mig, modularity, sap
from vaenb.metrics.predictor import dci_from_importance
from vaenb.metrics.trees import PresortedCodes, presorted_tree, presorted_trees_match_sklearn

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


def stock_dci(ctr, ftr, cte, fte, seed=0):
    "DCI with scikit-learn's stock estimator, one factor after another: disentanglement_lib's loop, seeded."
    models = [ensemble.GradientBoostingClassifier(random_state=seed).fit(ctr, ftr[:, j]) for j in range(ftr.shape[1])]
    importance = np.stack([np.abs(m.feature_importances_) for m in models], axis=1)
    return {**dci_from_importance(importance),
            "informativeness_train": float(np.mean([np.mean(m.predict(ctr) == ftr[:, j]) for j, m in enumerate(models)])),
            "informativeness_test": float(np.mean([np.mean(m.predict(cte) == fte[:, j]) for j, m in enumerate(models)]))}


def tree_table(codes, n_trees=20, seed=0):
    "Milliseconds per depth-3 tree of scikit-learn's builder and the presorted one, on `codes` and on tie-free codes."
    rng = np.random.default_rng(seed)
    targets = [rng.normal(size=len(codes)) for _ in range(n_trees)]
    tie_free = rng.permutation(codes.size).reshape(codes.shape).astype(np.float32)
    print(f"\n| {'codes':<42} | {'sklearn ms/tree':>15} | {'presorted ms/tree':>17} | ratio")
    print(f"|{'-' * 44}|{'-' * 17}|{'-' * 19}|------")
    for label, x in (("benchmark codes (float32)", codes), ("codes without ties", tie_free)):
        x = x.astype(np.float32)
        presorted = PresortedCodes(x)
        presorted_tree(presorted, targets[0], 1)   # compile (or load numba's cache) outside the timing
        start = time.perf_counter()
        for y in targets: tree.DecisionTreeRegressor(max_depth=3, random_state=0).fit(x, y, sample_weight=np.ones(len(y)), check_input=False)
        stock = (time.perf_counter() - start) / n_trees * 1e3
        start = time.perf_counter()
        for i, y in enumerate(targets): presorted_tree(presorted, y, i)
        ours = (time.perf_counter() - start) / n_trees * 1e3
        ties = int(presorted.tied.sum())
        print(f"| {label + f' ({ties} of {x.shape[1]} tied)':<42} | {stock:>15.2f} | {ours:>17.2f} | {ours / stock:.2f}")


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
        "dci stock sklearn, serial": lambda: stock_dci(ctr, ftr, cte, fte),
        "dci presorted, n_jobs=1": lambda: dci(ctr, ftr, cte, fte, n_jobs=1),
        "dci presorted, n_jobs=2": lambda: dci(ctr, ftr, cte, fte, n_jobs=2),
    }
    chosen = args.metrics.split(",")
    if "dci" in chosen:
        assert presorted_trees_match_sklearn(), "the presorted builder does not match this scikit-learn"
        tree_table(ctr)
    rows = []
    for name, fn in runs.items():
        if name.split()[0] not in chosen: continue
        result, seconds, peak = measure(fn)
        rows.append((name, seconds, peak, result))
        print(f"  done {name}: {seconds:.2f} s", flush=True)
    print(f"\n| {'metric':<26} | {'time (s)':>9} | {'peak MiB':>8} | result")
    print(f"|{'-' * 28}|{'-' * 11}|{'-' * 10}|{'-' * 8}")
    for name, seconds, peak, result in rows:
        shown = {k: round(v, 4) for k, v in result.items()} if isinstance(result, dict) else round(result, 4)
        print(f"| {name:<26} | {seconds:>9.2f} | {peak:>8.1f} | {shown}")
    timed = {name: (seconds, result) for name, seconds, _, result in rows}
    if "dci stock sklearn, serial" in timed:
        stock_seconds, stock_result = timed["dci stock sklearn, serial"]
        print("\nDCI time / stock serial time (target <= 0.5 on 2 cores):")
        for name in ("dci presorted, n_jobs=1", "dci presorted, n_jobs=2"):
            seconds, result = timed[name]
            print(f"  {name}: {seconds / stock_seconds:.3f}; identical results: {result == stock_result}")


if __name__ == "__main__":
    main()
