"""Step cost of the FactorQVAE-paper models relative to β-VAE on the same backbone, and training img/s of
the residual backbone against the official configuration's reported 2-3.5 img/s on CPU.

Run: OMP_NUM_THREADS=1 python tests/bench/bench_factorqvae.py [--batch 16] [--steps 3]
One step = the model's loss on the batch, backward, its optimiser step, and the adversary's step when there
is one (the Factor* models spend each batch half on the model, half on the discriminator). Ratios are
measured in one process, back to back; the machine may be shared, so compare ratios, not seconds.
"""
import argparse
import time
from contextlib import nullcontext

import torch

from vaenb.models.vae import create_model

MODELS = ("betavae", "ae", "bioae", "qlae", "dvae", "factordvae", "qvae", "factorqvae")


def step_seconds(model, x, steps: int, bf16: bool = False) -> float:
    opts = model.make_optimizers()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    model.train()
    times = []
    for t in range(steps + 1):   # the first step warms up allocators and is not timed
        start = time.perf_counter()
        with autocast: loss = model.loss(x, t)["loss"]
        opts["model"].zero_grad(); loss.backward(); opts["model"].step()
        if "adversary" in opts:
            with autocast: adv = model.adversary_loss(x, t)["loss"]
            opts["adversary"].zero_grad(); adv.backward(); opts["adversary"].step()
        if t: times.append(time.perf_counter() - start)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.rand(args.batch, 3, 64, 64)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {args.batch} of 3x64x64, best of {args.steps} steps")
    print(f"\n{'model':12s} {'backbone':8s} {'ms/step':>9s} {'x beta-VAE':>11s} {'params (M)':>11s}")
    for backbone in ("conv", "resnet"):
        base = None
        for name in MODELS:
            torch.manual_seed(0)
            model = create_model(name, backbone=backbone, channels=3, latent_dim=12, recon="gaussian")
            s = step_seconds(model, x, args.steps)
            base = base or s
            params = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"{name:12s} {backbone:8s} {1e3 * s:9.1f} {s / base:11.2f} {params:11.2f}")

    print("\nresidual backbone (QVAE, 12 latents, 22 M parameters): training throughput")
    print(f"{'variant':28s} {'img/s':>8s} {'x official 2-3.5 img/s':>24s}")
    for label, channels_last, bf16 in (("fp32", False, False), ("fp32 + channels_last", True, False),
                                       ("bf16 autocast + channels_last", True, True)):
        torch.manual_seed(0)
        model = create_model("qvae", backbone="resnet", channels=3, latent_dim=12, recon="gaussian")
        xb = x
        if channels_last:
            model = model.to(memory_format=torch.channels_last); xb = x.contiguous(memory_format=torch.channels_last)
        ips = args.batch / step_seconds(model, xb, args.steps, bf16)
        print(f"{label:28s} {ips:8.1f} {ips / 3.5:11.1f} - {ips / 2:.1f}")


if __name__ == "__main__":
    main()
