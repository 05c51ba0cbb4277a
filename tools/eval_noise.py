"""Is an evaluation size large enough? A metric's own run-to-run noise against the spread between training seeds.

    python tools/eval_noise.py RUNS_DIR [--arms β-VAE MIPET-β-VAE] [--datasets dsprites-lite] [--metrics mig sap_score]
                               [--set num_train=10000 --set num_test=5000] [--eval-seeds 0 1 2 3 4] [--noise-runs 1]

Every finished run in RUNS_DIR is grouped by its dataset and arm (the run's label, else its model; a study's `quick`
runs are labelled as its table rows) and scored again with its own
`eval_params`, changed by each `--set KEY=VALUE` (dotted keys reach nested settings, e.g. `local.num_points=250`;
values are JSON, else strings). *eval s.d.* is the s.d. over evaluation seeds of one model, pooled over the first
`--noise-runs` training seeds of the arm; *between s.d.* is the s.d. over the arm's training seeds, all scored with
the first evaluation seed. A size is large enough when eval s.d. is well below between s.d. (the study notebooks'
tables of evaluation noise come from this script). Run it with OMP_NUM_THREADS=1 on idle cores for the seconds
column to mean anything.
"""
import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

from vaenb.experiments.reports import finished_records
from vaenb.experiments.runs import RunConfig, evaluate_run, expand_grid, load_run, run_directory


def setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key: raise argparse.ArgumentTypeError(f"--set expects KEY=VALUE (e.g. num_train=10000), found {text!r}")
    try: return key, json.loads(value)
    except json.JSONDecodeError: return key, value


def finished_runs(runs_dir: Path, arms: list[str] | None = None, datasets: list[str] | None = None) -> dict[tuple[str, str], list[Path]]:
    "Run directories of each (dataset, arm) in the results store `runs_dir`, ordered by training seed."
    by_arm = defaultdict(list)
    for record in finished_records([runs_dir]):
        config = RunConfig.from_dict(record["config"])
        if (arms is None or config.name in arms) and (datasets is None or config.dataset in datasets):
            by_arm[config.dataset, config.name].append((config.seed, run_directory(config, runs_dir)))
    return {arm: [d for _, d in sorted(runs)] for arm, runs in sorted(by_arm.items())}


def score(run_dir: Path, metrics: list[str] | None, settings: dict, eval_seeds: list[int]) -> list[tuple[dict, float]]:
    "(metrics, seconds the evaluation took) of one finished run, loaded once, at each of `eval_seeds` with `settings`."
    model, dataset, record = load_run(run_dir)
    config = RunConfig.from_dict(record["config"])
    eval_params = expand_grid(config.eval_params, {k: [v] for k, v in settings.items()})[0]
    scored = []
    for eval_seed in eval_seeds:
        changed = RunConfig.from_dict({**config.to_dict(), "metrics": metrics or config.metrics, "eval_params": eval_params | {"seed": eval_seed}})
        start = time.perf_counter()
        scored.append((evaluate_run(model, dataset, changed), time.perf_counter() - start))
    return scored


def noise_table(by_arm: dict[tuple[str, str], list[Path]], metrics, settings: dict, eval_seeds: list[int], noise_runs: int) -> list[dict]:
    "One row per (dataset, arm, metric): mean, eval s.d., between s.d. and seconds per evaluation."
    rows = []
    for (dataset, arm), run_dirs in by_arm.items():
        at_first_seed, spreads, seconds = defaultdict(list), defaultdict(list), []
        for index, run_dir in enumerate(run_dirs):
            per_seed = defaultdict(list)
            for values, took in score(run_dir, metrics, settings, eval_seeds if index < noise_runs else eval_seeds[:1]):
                seconds.append(took)
                for name, value in values.items(): per_seed[name].append(value)
            for name, values in per_seed.items():
                at_first_seed[name].append(values[0])
                if len(values) > 1: spreads[name].append(statistics.variance(values))
        for name, values in at_first_seed.items():
            rows.append({"dataset": dataset, "arm": arm, "metric": name, "runs": len(values), "mean": statistics.fmean(values),
                         "eval_sd": statistics.fmean(spreads[name]) ** 0.5 if spreads[name] else float("nan"),
                         "between_sd": statistics.stdev(values) if len(values) > 1 else float("nan"),
                         "seconds": statistics.fmean(seconds)})
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| dataset | arm | metric | runs | mean | eval s.d. | between s.d. | eval / between | s per evaluation |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = r["eval_sd"] / r["between_sd"] if r["between_sd"] else float("nan")
        lines.append(f"| {r['dataset']} | {r['arm']} | {r['metric']} | {r['runs']} | {r['mean']:.3f} | {r['eval_sd']:.4f} | {r['between_sd']:.4f} "
                     f"| {ratio:.2f} | {r['seconds']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="a results store (e.g. runs/) holding finished runs")
    parser.add_argument("--arms", nargs="+", help="arms (run labels, else model names) to score; default every arm")
    parser.add_argument("--datasets", nargs="+", help="datasets to score; default every dataset")
    parser.add_argument("--metrics", nargs="+", help="metrics to score; default each run's own")
    parser.add_argument("--set", dest="settings", type=setting, action="append", default=[], metavar="KEY=VALUE",
                        help="change an eval_params setting, e.g. num_train=10000 or local.num_points=250 (repeatable)")
    parser.add_argument("--eval-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="evaluation seeds (default 0-4)")
    parser.add_argument("--noise-runs", type=int, default=1, help="training seeds per arm scored at every evaluation seed (default 1)")
    args = parser.parse_args(argv)
    if len(args.eval_seeds) < 2: parser.error(f"--eval-seeds: an s.d. needs at least 2 evaluation seeds, found {args.eval_seeds}")
    if args.noise_runs < 1: parser.error(f"--noise-runs: expected at least 1, found {args.noise_runs}")
    if not args.runs.is_dir(): parser.error(f"{args.runs}: not a directory")
    by_arm = finished_runs(args.runs, args.arms, args.datasets)
    if not by_arm: print(f"{args.runs}: no finished runs of the arms and datasets asked for"); return 1
    print(markdown(noise_table(by_arm, args.metrics, dict(args.settings), args.eval_seeds, args.noise_runs)))
    return 0


if __name__ == "__main__": sys.exit(main())
