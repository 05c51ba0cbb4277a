"""Benchmark of the JL1-VAE penalty: cost of one training step relative to a β-VAE step, measured in the same run.

    OMP_NUM_THREADS=1 python tests/bench/bench_jl1.py [--repeats 7] [--batch 64] [--backbone conv] [--device cpu]

One step = forward, loss, backward and Adam update of a 64×64×1 model with 10 latents, batch 64. Rows: the β-VAE
baseline; JL1-VAE with the exact Jacobian as the regulariser computes it (`jl1_method="jvp"`: tangents propagated
by hand through the decoder's layers, one latent column at a time); the same exact penalty through
`vmap(jvp)` over all columns at once (the generic fallback); that fallback under bf16 autocast (not exact:
measured to see whether lower precision would pay); the official finite-difference estimate (d + 1 decoder
passes); and the unbiased column-sampled exact penalty (`jl1_columns = m`, stratified draw). The variants run
interleaved, round-robin, and the table reports the median per variant, so a machine shared with other jobs slows
all rows alike and the ratios stay meaningful. Targets (issue 8): a JL1 step <= 2x a β-VAE step, and faster than
finite differences. The last lines report both paths against 2x, next to the floor that counting multiply-
accumulates gives (`vaenb.models.jl1vae.jl1_cost_floor`): the exact full penalty (the paper's) and the sampled-exact
fast path with one column per sample.
"""
import argparse
import contextlib
import os
import statistics
import time

import torch

from vaenb.models.jl1vae import jacobian_l1, jl1_cost_floor
from vaenb.models.vae import create_model

BASELINE, EXACT, FD = "β-VAE (γ = 0)", "JL1 exact, by hand, 1 column/pass", "JL1 finite differences (official)"
FAST_COLUMNS = 1
SAMPLED = "JL1 exact, {m} sampled column{s}"


def variants(backbone: str) -> dict[str, dict]:
    base = dict(backbone=backbone, init="torch", warmup_steps=0)
    return {
        BASELINE: dict(base, jl1_gamma=0.0),
        EXACT: dict(base, jl1_method="jvp"),
        "JL1 exact, vmap(jvp), all columns": dict(base, jl1_method="jvp", generic=True),
        "JL1 vmap(jvp) under bf16 autocast": dict(base, jl1_method="jvp", generic=True, bf16=True),
        FD: dict(base, jl1_method="finite_difference"),
        **{SAMPLED.format(m=m, s="s" * (m > 1)): dict(base, jl1_method="jvp", jl1_columns=m) for m in (1, 2, 3)},
    }


def generic_penalty(model, bf16: bool):
    "The regulariser's `terms` forced through `vmap(jvp)` (optionally under bf16 autocast)."
    regulariser = model.regularisers["jacobian_l1"]

    def terms(model, x, out, step):
        gamma = model.weight(regulariser.gamma, step)
        autocast = torch.autocast(x.device.type, torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            penalty = jacobian_l1(lambda latent: torch.sigmoid(model.decode(latent)), out["z"])
        return {"jl1": gamma * penalty.float()}, {}
    regulariser.terms = terms


def step_function(config: dict, batch: int, device: str):
    config = dict(config)
    generic, bf16 = config.pop("generic", False), config.pop("bf16", False)
    torch.manual_seed(0)
    model = create_model("jl1vae", device=device, **config)
    if generic: generic_penalty(model, bf16)
    opt = model.make_optimizers()["model"]
    x = torch.rand(batch, 1, 64, 64, device=device).round()

    def step():
        loss = model.loss(x, step=1)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if x.is_cuda: torch.cuda.synchronize()
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--backbone", default="conv", help="conv (the standard dlib backbone) or jl1conv (the paper's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    steps = {name: step_function(cfg, args.batch, args.device) for name, cfg in variants(args.backbone).items()}
    for _ in range(2):
        for step in steps.values(): step()                  # warm-up: allocations, vmap tracing, cuDNN choices
    times = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter(); step(); times[name].append(time.perf_counter() - start)

    medians = {name: statistics.median(t) for name, t in times.items()}
    baseline, fd, exact = medians[BASELINE], medians[FD], medians[EXACT]
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{torch.get_num_threads()} torch thread(s)"
    print(f"backbone {args.backbone}, batch {args.batch}, {where}, {args.repeats} interleaved repeats, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"| {'variant':<36} | {'ms/step':>8} | {'vs β-VAE':>8} | {'vs FD':>6} |")
    print(f"|{'-' * 38}|{'-' * 9}:|{'-' * 9}:|{'-' * 7}:|")
    for name, t in medians.items():
        print(f"| {name:<36} | {1000 * t:8.1f} | {t / baseline:7.2f}x | {t / fd:5.2f}x |")
    fast = medians[SAMPLED.format(m=FAST_COLUMNS, s="")]
    model = create_model("jl1vae", backbone=args.backbone, device=args.device)
    floor_exact, floor_fast = jl1_cost_floor(model), jl1_cost_floor(model, FAST_COLUMNS)
    verdict = lambda ok: "met" if ok else "NOT met"
    print(f"\nexact full penalty (paper): {exact / baseline:.2f}x a β-VAE step, target <= 2x {verdict(exact <= 2 * baseline)} "
          f"(MAC floor {floor_exact:.2f}x)")
    print(f"sampled exact, {FAST_COLUMNS} column/sample: {fast / baseline:.2f}x, target <= 2x {verdict(fast <= 2 * baseline)} "
          f"(MAC floor {floor_fast:.2f}x)")
    print(f"exact full vs finite differences: {fd / exact:.2f}x faster ({verdict(exact < fd)}); "
          f"sampled: {fd / fast:.2f}x faster ({verdict(fast < fd)})")


if __name__ == "__main__":
    main()
