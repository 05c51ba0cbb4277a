"""Wall time of one smoke run through the experiment notebook, stage by stage: where the time beyond training and evaluation goes.

The run is `vaenb run`'s path (`execute_run`: validation, papermill, a fresh kernel, the template). Stages inside the
kernel come from papermill's per-cell timestamps in the executed notebook; `kernel start` is from papermill's start to
the first cell; `parent` is the rest of the wall time (imports and checks in this process, writing the notebook).
With --dask the startup and shutdown of a one-worker local cluster (what `vaenb sweep` adds once per sweep) is timed too.
With --sweep N, N runs (seeds 0 … N-1) go through `run_sweep` on a one-worker local cluster, whose kept kernel serves
them all: one column per run, and the wall time per run after the first. Target (issue 19): wall time minus train and
eval <= 10 s.

    OMP_NUM_THREADS=1 python tests/bench/bench_run_overhead.py [--steps 40] [--dask] [--sweep 3] [--results DIR]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path

STAGES = {"4515f7a9": "imports", "a9fe939d": "data + model", "31b9e329": "train", "1cd3f383": "figures", "5f4a46c7": "figures",
          "c42eebed": "figures", "f013b7e4": "figures", "907ebf46": "eval", "6bf28a70": "report/record"}


def _when(stamp: str) -> float: return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def stage_times(notebook: Path) -> dict[str, float]:
    "{stage: seconds} from the papermill metadata of an executed template."
    nb = json.loads(notebook.read_text())
    cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
    times = {"kernel start": _when(cells[0]["metadata"]["papermill"]["start_time"]) - _when(nb["metadata"]["papermill"]["start_time"])}
    for c in cells:
        stage = STAGES.get(c.get("id"), "parameters" if "injected-parameters" in c["metadata"].get("tags", []) else "other cells")
        times[stage] = times.get(stage, 0.0) + (c["metadata"]["papermill"]["duration"] or 0.0)
    times["papermill total"] = _when(nb["metadata"]["papermill"]["end_time"]) - _when(nb["metadata"]["papermill"]["start_time"])
    return times


def smoke_config(steps: int, seed: int = 0):
    from vaenb.experiments.runs import SMALL_DSPRITES, SMOKE, RunConfig
    return RunConfig(model="betavae", dataset="dsprites", seed=seed, steps=steps, batch_size=16, dataset_params=SMALL_DSPRITES,
                     train_params=SMOKE["train_params"], eval_params=SMOKE["eval_params"], profile="smoke")


def sweep(steps: int, n: int, results: str):
    "N runs on one worker: a table of stages by run, then the sweep's wall time per run beyond train and eval."
    from vaenb.experiments.execute import dask_client, run_sweep
    from vaenb.experiments.runs import run_directory
    configs = [smoke_config(steps, seed) for seed in range(n)]
    t0 = time.perf_counter()
    with dask_client(None, 1) as client:
        ready = time.perf_counter()
        marks = []
        for config in configs:   # one at a time, so each run's wall time is its own
            run_sweep([config], results, client=client, force=True, verbose=False)
            marks.append(time.perf_counter())
    total = time.perf_counter() - t0
    tables = [stage_times(run_directory(c, results) / "notebook.ipynb") for c in configs]
    walls = [b - a for a, b in zip([ready] + marks[:-1], marks)]
    names = list(dict.fromkeys(k for t in tables for k in t))
    width = max(map(len, names + ["overhead (wall - train - eval)"]))
    print(f"{'stage':{width}s}  " + "  ".join(f"run {i}" for i in range(n)))
    for name in names: print(f"{name:{width}s}  " + "  ".join(f"{t.get(name, 0.0):5.2f}" for t in tables))
    print(f"{'wall time of the run':{width}s}  " + "  ".join(f"{w:5.2f}" for w in walls))
    print(f"{'overhead (wall - train - eval)':{width}s}  " + "  ".join(f"{w - t['train'] - t['eval']:5.2f}" for w, t in zip(walls, tables)))
    print(f"dask local cluster start: {ready - t0:.2f} s; whole sweep: {total:.2f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--dask", action="store_true", help="also time a one-worker local Dask cluster's startup and shutdown")
    parser.add_argument("--sweep", type=int, default=0, help="N runs through run_sweep on one worker (a kept kernel) instead")
    parser.add_argument("--results", default=None, help="results store (default: a temporary directory)")
    args = parser.parse_args()
    if args.sweep:
        with tempfile.TemporaryDirectory() as tmp: return sweep(args.steps, args.sweep, args.results or tmp)
    started = time.perf_counter()
    from vaenb.experiments.execute import dask_client, execute_run
    from vaenb.experiments.runs import run_directory
    imports = time.perf_counter() - started
    config = smoke_config(args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        results = args.results or tmp
        t0 = time.perf_counter()
        record = execute_run(config, results, force=True)
        wall = time.perf_counter() - t0
        assert record["status"] == "finished", record.get("error")
        times = stage_times(run_directory(config, results) / "notebook.ipynb")
    rows = [("parent: import vaenb.experiments.execute", imports), *((k, v) for k, v in times.items() if k != "papermill total"),
            ("parent: checks + papermill bookkeeping", wall - times["papermill total"])]
    if args.dask:
        t0 = time.perf_counter()
        with dask_client(None, 1) as client: client.submit(sum, [1, 2]).result()
        rows.append(("dask: local cluster start + stop (once per sweep)", time.perf_counter() - t0))
    width = max(len(name) for name, _ in rows)
    print(f"{'stage':{width}s}  seconds")
    for name, seconds in rows: print(f"{name:{width}s}  {seconds:7.2f}")
    work = times.get("train", 0.0) + times.get("eval", 0.0)
    print(f"{'wall time of execute_run':{width}s}  {wall:7.2f}")
    print(f"{'overhead (wall - train - eval)':{width}s}  {wall - work:7.2f}   target <= 10 s")


if __name__ == "__main__":
    main()
