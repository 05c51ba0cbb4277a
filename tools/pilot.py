"""Pilot a study row on a seed that is never reported: train it and print its metrics at chosen steps.

The studies' `quick` and `cpu` settings (steps, β, learning rates, schedules) were chosen from the tables this
prints, on seeds 100 and 101; the study notebooks record those tables. Example:

    OMP_NUM_THREADS=1 python tools/pilot.py factorqvae cpu QVAE --seed 100 --steps 6000 \
        --at 0,1000,2000,4000,6000 --metrics dci,infomec -p temperature_decay=5e-4 -t lr_period=2000

Each evaluation runs with the row's own evaluation settings, under `torch.random.fork_rng`, so the training
it interrupts is the one the run would do anyway. One JSON line per evaluation goes to stdout.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time

from vaenb.core.config import get_device, seed_everything
from vaenb.experiments.evidence import MetricCurve
from vaenb.experiments.runs import build_run, study_runs
from vaenb.train import train


def parse_pairs(pairs: list[str], flag: str) -> dict:
    "`key=json-value` pairs as a dict; a value that is not JSON is kept as a string."
    out = {}
    for pair in pairs:
        if "=" not in pair: raise SystemExit(f"{flag}: expected key=value, found {pair!r}")
        key, value = pair.split("=", 1)
        try: out[key] = json.loads(value)
        except json.JSONDecodeError: out[key] = value
    return out


def pilot_run(study: str, profile: str, label: str, seed: int, steps: int, metrics: list[str], model: dict, trainer: dict):
    "The study row `label` of `profile`, moved to the pilot `seed` and length, with `model` / `trainer` changes."
    rows = [r for r in study_runs(study, profile) if r.name == label]
    if not rows: raise SystemExit(f"{study} {profile}: no row {label!r}; rows: {sorted({r.name for r in study_runs(study, profile)})}")
    run = rows[0]
    return run.replace(seed=seed, steps=steps, model_params={**run.model_params, **model}, train_params={**run.train_params, **trainer},
                       eval_params={**run.eval_params, "curve": {"every": 1, "metrics": metrics}})


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study"); p.add_argument("profile"); p.add_argument("label")
    p.add_argument("--seed", type=int, required=True, help="a pilot seed, never a reported one (the studies use 100 and 101)")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--at", required=True, help="comma-separated steps to evaluate at (multiples of the row's log_every; 0 = initialisation)")
    p.add_argument("--metrics", required=True, help="comma-separated metric names, e.g. mig or dci,infomec")
    p.add_argument("-p", "--param", action="append", default=[], help="model param key=value")
    p.add_argument("-t", "--train-param", action="append", default=[], help="trainer param key=value")
    a = p.parse_args(argv)
    at = {int(s) for s in a.at.split(",")}
    run = pilot_run(a.study, a.profile, a.label, a.seed, a.steps, a.metrics.split(","), parse_pairs(a.param, "-p"),
                    parse_pairs(a.train_param, "-t"))
    seed_everything(run.seed)
    data, model, train_config = build_run(run, None, get_device())
    curve, start = MetricCurve(model, data, run, tempfile.mkdtemp(prefix="vaenb-pilot-")), time.time()

    def report(step: int):
        point = curve.at(step)
        print(json.dumps({**point, "wall_s": round(time.time() - start, 1)}), flush=True)

    if 0 in at: report(0)
    train(model, data, train_config, callbacks=[lambda record: record["step"] in at and report(record["step"])])


if __name__ == "__main__":
    main()
