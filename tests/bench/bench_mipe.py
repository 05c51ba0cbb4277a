"""Cost of a MIPE training step relative to its base model's step (same batch, same run).

Standard conv backbone, 64×64×1 images, one Adam step (forward, backward, update) per timing; the
models are timed in interleaved rounds and the median is reported, so load from other processes hits
every row alike. Also times the IPE + EF part alone (matrix exponentials, EF-conversion, its backward)
to show it does not dominate.

    OMP_NUM_THREADS=1 python tests/bench/bench_mipe.py [--batch 64] [--rounds 7]
"""
import argparse
import statistics
import time

import torch

from vaenb.models.vae import create_model, list_models


def step_fn(model, x):
    opt = model.make_optimizers()["model"]
    model.train()

    def step():
        loss = model.loss(x)["loss"]
        opt.zero_grad(); loss.backward(); opt.step()
    return step


def ipe_ef_fn(model, batch):
    "Forward + backward of the MIPE units alone (R for every unit, ẑ, ε̂, the EF terms) on a fixed sample."
    mipe, d = model.regularisers["mipe"], model.config.latent_dim
    out = {"z": torch.randn(batch, d), "eps": torch.randn(batch, d), "mu": torch.randn(batch, d), "logvar": torch.zeros(batch, d)}

    def step():
        transforms = mipe.matrices()
        parts = {"z_hat": out["z"] @ transforms, "eps_hat": out["eps"] @ transforms}
        terms, _ = mipe.terms(model, None, {**out, **parts}, 0)
        sum(terms.values()).backward()
    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    torch.manual_seed(0)
    x = torch.rand(args.batch, 1, 64, 64).round()
    rows = {"vae": ("vae", {}, None)}
    for m in (1, 2, 3, 4):   # 3: the reference setting
        rows[f"MIPE β-VAE M={m}"] = ("mipet-betavae", {"mipe_units": m}, "vae")
    rows["clgvae"] = ("clgvae", {"forward_eq_prob": 0.0}, None)
    rows["MIPE CLG-VAE M=1"] = ("mipet-clgvae", {"forward_eq_prob": 0.0}, "clgvae")
    if "mipet-betatcvae" in list_models():
        rows["betatcvae"] = ("betatcvae", {"estimator": "mss_reference", "dataset_size": 737280}, None)
        for m in (1, 2, 4):
            rows[f"MIPE β-TCVAE M={m}"] = ("mipet-betatcvae", {"mipe_units": m, "dataset_size": 737280}, "betatcvae")
    steps, models = {}, {}
    for name, (model_name, overrides, _) in rows.items():
        models[name] = create_model(model_name, **overrides)
        steps[name] = step_fn(models[name], x)
    for name in [n for n in rows if rows[n][2]]:
        steps[f"{name}: IPE+EF only"] = ipe_ef_fn(models[name], args.batch)
    times = {name: [] for name in steps}
    for fn in steps.values(): fn()          # warm-up
    for _ in range(args.rounds):
        for name, fn in steps.items():
            t0 = time.perf_counter(); fn(); times[name].append(time.perf_counter() - t0)
    med = {n: statistics.median(t) for n, t in times.items()}
    print(f"batch {args.batch}, 64×64×1, conv backbone, torch threads {torch.get_num_threads()}, {args.rounds} rounds (median)")
    print(f"{'model':32s} {'ms/step':>9s} {'base':>10s} {'cost vs base':>13s} {'base speed':>11s}")
    for name, (_, _, base) in rows.items():
        if base is None:
            print(f"{name:32s} {1e3 * med[name]:9.1f} {'-':>10s} {'1.00x':>13s} {'1.00x':>11s}")
        else:
            r = med[name] / med[base]
            print(f"{name:32s} {1e3 * med[name]:9.1f} {base:>10s} {r:12.2f}x {1 / r:10.2f}x")
            ef = f"{name}: IPE+EF only"
            print(f"{'  of which IPE+EF alone':32s} {1e3 * med[ef]:9.1f} {'':>10s} {med[ef] / med[base]:12.2f}x")


if __name__ == "__main__":
    main()
