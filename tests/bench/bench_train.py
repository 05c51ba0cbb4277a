"""Trainer throughput and memory against a bare PyTorch loop of the same network and loss.

The standard β-VAE (disentanglement_lib conv backbone, 64×64×1, batch 64, Bernoulli recon + β·KL, Adam)
is trained by `vaenb.train.train` and by a hand-written loop, in alternating chunks within one process
so both see the same machine load; the table gives the median images/s of each and their ratio
(target: trainer >= 0.95 × bare). Peak resident memory (ru_maxrss) of each loop is measured in a fresh
subprocess per loop and numerics mode; the trainer's Python-side allocations are measured with tracemalloc.

    OMP_NUM_THREADS=2 python tests/bench/bench_train.py [--steps 40] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from vaenb.core.config import seed_everything
from vaenb.train import TrainConfig, train
from vaenb.models.vae import create_model

MODES = {"fp32": dict(amp="off", channels_last=False), "bf16 + channels_last": dict(amp="bf16", channels_last=True)}
BATCH = 64


class PoolImages:
    "1,024 random rectangles on 64×64; `batch` draws a pure function of (seed, step), like vaenb.data.base."
    name, image_shape = "bench-pool", (1, 64, 64)

    def __init__(self, n: int = 1024):
        g = torch.Generator().manual_seed(0)
        corners = torch.randint(0, 48, (n, 2), generator=g)
        sizes = torch.randint(4, 16, (n, 2), generator=g)
        pixel = torch.arange(64)
        rows = (pixel.view(1, -1) >= corners[:, :1]) & (pixel.view(1, -1) < corners[:, :1] + sizes[:, :1])
        cols = (pixel.view(1, -1) >= corners[:, 1:]) & (pixel.view(1, -1) < corners[:, 1:] + sizes[:, 1:])
        self.pool = (rows[:, :, None] & cols[:, None, :]).float().unsqueeze(1)

    def batch(self, step: int, batch_size: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        return self.pool[torch.randint(0, len(self.pool), (batch_size,), generator=g)]


def bare_loop(model, data, steps: int, start: int, amp: str, channels_last: bool):
    "The same network and loss written out by hand: no logging, no checks, no dicts."
    opt = torch.optim.Adam(model.parameters(), lr=model.config.lr, betas=(model.config.adam_beta1, model.config.adam_beta2))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if amp == "bf16" else nullcontext()
    if channels_last: model.to(memory_format=torch.channels_last)
    for step in range(start, start + steps):
        x = data.batch(step, BATCH, 0)
        if channels_last: x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            mu, logvar = model.encoder(x).chunk(2, dim=1)
            z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
            logits = model.decoder(z)
        recon = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="sum") / BATCH
        kl = 0.5 * (mu.float().pow(2) + logvar.float().exp() - logvar.float() - 1).sum(1).mean()
        loss = recon + model.config.beta * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def trainer_loop(model, data, steps: int, start: int, amp: str, channels_last: bool):
    train(model, data, TrainConfig(steps=steps, batch_size=BATCH, amp=amp, channels_last=channels_last, progress=False, device="cpu"))


LOOPS = {"bare": bare_loop, "trainer": trainer_loop}


def images_per_s(loop, model, data, steps, mode) -> float:
    t0 = time.perf_counter()
    loop(model, data, steps, 0, **MODES[mode])
    return steps * BATCH / (time.perf_counter() - t0)


def one(loop_name: str, mode: str, steps: int):
    "Subprocess entry: train `steps` steps with one loop and print peak RSS (MiB) and traced Python peak (MiB)."
    seed_everything(0)
    model, data = create_model("betavae"), PoolImages()
    LOOPS[loop_name](model, data, 3, 0, **MODES[mode])   # warm-up: allocator and kernels
    tracemalloc.start()
    LOOPS[loop_name](model, data, steps, 0, **MODES[mode])
    traced = tracemalloc.get_traced_memory()[1]
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, traced / 2**20)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40, help="steps per timed chunk")
    ap.add_argument("--repeats", type=int, default=3, help="alternating bare/trainer chunks per mode")
    ap.add_argument("--one", nargs=2, metavar=("LOOP", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one: return one(args.one[0], args.one[1], args.steps)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"standard β-VAE, conv backbone, 64×64×1, batch {BATCH}, CPU; {args.repeats} × {args.steps} steps per loop and mode\n")
    data = PoolImages()
    rows = []
    for mode in MODES:
        seed_everything(0)
        model = create_model("betavae")
        for loop in LOOPS.values(): loop(model, data, 3, 0, **MODES[mode])   # warm-up
        rates = {name: [] for name in LOOPS}
        for _ in range(args.repeats):
            for name, loop in LOOPS.items(): rates[name].append(images_per_s(loop, model, data, args.steps, mode))
        ratios = [t / b for t, b in zip(rates["trainer"], rates["bare"])]
        memory = {}
        for name in LOOPS:
            out = subprocess.run([sys.executable, __file__, "--one", name, mode, "--steps", "10"], capture_output=True, text=True, check=True)
            memory[name] = [float(v) for v in out.stdout.split()]
        rows.append((mode, statistics.median(rates["bare"]), statistics.median(rates["trainer"]), statistics.median(ratios),
                     memory["bare"][0], memory["trainer"][0], memory["trainer"][1]))

    print("| mode | bare img/s | trainer img/s | trainer / bare | bare peak RSS MiB | trainer peak RSS MiB | trainer traced py MiB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, bare, trainer, ratio, rss_bare, rss_trainer, traced in rows:
        print(f"| {mode} | {bare:,.0f} | {trainer:,.0f} | {ratio:.3f} | {rss_bare:.0f} | {rss_trainer:.0f} | {traced:.2f} |")
    fp32, bf16 = rows[0][2], rows[1][2]
    print(f"\nbf16 + channels_last vs fp32 (trainer): {bf16 / fp32:.2f}×  (target: trainer / bare >= 0.95)")


if __name__ == "__main__":
    main()
