"""Benchmark of the JL1-VAE penalty: cost of one training step relative to a β-VAE step, measured in the same run.

    OMP_NUM_THREADS=1 python tests/bench/bench_jl1.py [--repeats 7] [--batch 64] [--backbone conv]

One step = forward, loss, backward and Adam update of a 64×64×1 model with 10 latents, batch 64. Rows: the β-VAE
baseline; JL1-VAE with the exact Jacobian (forward-mode JVPs, all columns); the official finite-difference estimate
(d + 1 decoder passes); and the unbiased column-sampled exact penalty (`jl1_columns = m`). The variants run
interleaved, round-robin, and the table reports the median per variant, so a machine shared with other jobs
slows all rows alike and the ratios stay meaningful. Targets (issue 8): exact JL1 step <= 2x a β-VAE step, and
faster than finite differences.
"""
import argparse
import os
import statistics
import time

import torch

from vaenb.vae import create_model


def variants(backbone: str) -> dict[str, dict]:
    base = dict(backbone=backbone, init="torch", warmup_steps=0)
    return {
        "β-VAE (γ = 0)": dict(base, jl1_gamma=0.0),
        "JL1 exact, jvp, all 10 columns": dict(base, jl1_method="jvp"),
        "JL1 finite differences (official)": dict(base, jl1_method="finite_difference"),
        **{f"JL1 exact, {m} sampled column{'s' * (m > 1)}": dict(base, jl1_method="jvp", jl1_columns=m) for m in (1, 2, 3)},
    }


def step_function(config: dict, batch: int):
    torch.manual_seed(0)
    model = create_model("jl1vae", **config)
    opt = model.make_optimizers()["model"]
    x = torch.rand(batch, 1, 64, 64).round()

    def step():
        loss = model.loss(x, step=1)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--backbone", default="conv", help="conv (the standard dlib backbone) or jl1conv (the paper's)")
    args = parser.parse_args()

    steps = {name: step_function(cfg, args.batch) for name, cfg in variants(args.backbone).items()}
    for step in steps.values(): step()                      # warm-up: allocations, vmap tracing
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter(); step(); times[name].append(time.perf_counter() - start)

    medians = {name: statistics.median(t) for name, t in times.items()}
    baseline = medians["β-VAE (γ = 0)"]
    fd = medians["JL1 finite differences (official)"]
    print(f"backbone {args.backbone}, batch {args.batch}, torch threads {torch.get_num_threads()}, "
          f"{args.repeats} interleaved repeats, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"| {'variant':<36} | {'ms/step':>8} | {'vs β-VAE':>8} | {'vs FD':>6} |")
    print(f"|{'-' * 38}|{'-' * 10}:|{'-' * 10}:|{'-' * 8}:|")
    for name, t in medians.items():
        print(f"| {name:<36} | {1000 * t:8.1f} | {t / baseline:7.2f}x | {t / fd:5.2f}x |")
    exact = medians["JL1 exact, jvp, all 10 columns"]
    print(f"\ntarget exact <= 2x β-VAE: {exact / baseline:.2f}x ({'met' if exact <= 2 * baseline else 'NOT met'}); "
          f"exact faster than FD: {fd / exact:.2f}x ({'met' if exact < fd else 'NOT met'})")


if __name__ == "__main__":
    main()
