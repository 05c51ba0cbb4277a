"""`make gpu-check`: does every `paper` run config of the three studies build and train on this device?

For each distinct paper configuration (study, row, dataset; seeds collapsed) it
1. builds the model on the device and trains it `--steps` steps with the run's own batch size and trainer settings,
   on synthetic images of the run's image shape (the official files are not needed: this checks the code, not the data);
2. on a CUDA device, evaluates one fixed batch on the CPU and on the device with the same weights and the same noise
   (every random draw is made on the CPU generator and moved), and compares the total loss within `--rtol`
   (TF32 is switched off, so both sides compute in float32);
3. prints one table row per configuration (img/s, loss, CPU/device agreement) and one summary row per study.

On a machine without CUDA it runs the same pipeline on the CPU, smaller (`--small`, the default there: each study's first
dataset, 2 steps, batch 8), which is what CI starts; the CPU/device comparison then compares two CPU evaluations (determinism) instead.
Exit status 1 when any configuration fails to build, train, or agree.
"""
import argparse
import contextlib
import math
import sys
import time
import traceback

import numpy as np
import torch

from vaenb.core.config import get_device
from vaenb.experiments.runs import study_runs
from vaenb.train import TrainConfig, train
from vaenb.core.registry import REGISTRY
from vaenb.models.vae import create_model

# (image shape, number of images) of each paper dataset, so the check needs none of the official files;
# the size fills `dataset_size` for the models whose estimators weigh by it (β-TCVAE).
PAPER_DATASETS = {"dsprites-official": ((1, 64, 64), 737_280), "threedots": ((1, 64, 64), 500_000),
                  "shapes3d-official": ((3, 64, 64), 480_000), "cars3d": ((3, 64, 64), 17_568), "mpi3d-complex": ((3, 64, 64), 460_800),
                  "isaac3d-official": ((3, 64, 64), 737_280)}


class SyntheticImages:
    "Images of `shape` in [0, 1] (binary for one channel, as dSprites and threeDots are); batch `step` is a function of (seed, step)."
    name = "synthetic"

    def __init__(self, shape: tuple[int, int, int]): self.image_shape = tuple(shape)
    def __len__(self): return 1_000_000

    def batch(self, step: int, batch_size: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        x = torch.rand(batch_size, *self.image_shape, generator=g)
        return (x > 0.8).float() if self.image_shape[0] == 1 else x


def distinct_paper_runs(studies, first_dataset_only: bool = False) -> list:
    "One RunConfig per (study, row, dataset) of the `paper` profile (seeds differ only in the seed); optionally one dataset per study."
    seen, runs = set(), []
    for study in studies:
        study_list = study_runs(study, "paper")
        for run in study_list:
            key = (study, run.label, run.dataset)
            if first_dataset_only and run.dataset != study_list[0].dataset: continue
            if key not in seen: seen.add(key); runs.append(run)
    return runs


@contextlib.contextmanager
def cpu_random_draws(device: torch.device):
    "Make torch's random tensor factories draw on the CPU generator and move the result, so CPU and CUDA see the same noise."
    originals = {name: getattr(torch, name) for name in ("randn_like", "rand_like", "randn", "rand", "randperm", "randint")}

    def like(name):
        def draw(t, *args, **kw):
            kw.pop("device", None)
            return originals[name](t.detach().cpu(), *args, **kw).to(t.device)
        return draw

    def plain(name):
        def draw(*args, device=None, generator=None, **kw):
            return originals[name](*args, generator=generator, **kw).to(device if device is not None else "cpu")
        return draw

    for name in originals: setattr(torch, name, like(name) if name.endswith("_like") else plain(name))
    try: yield
    finally:
        for name, fn in originals.items(): setattr(torch, name, fn)


def fixed_batch_loss(model, x: torch.Tensor, device: torch.device, seed: int = 0) -> float:
    "The model's total loss on batch `x` on `device`, with noise drawn on the CPU from `seed`."
    model = model.to(device).train()
    torch.manual_seed(seed)
    with cpu_random_draws(device), torch.no_grad():
        return float(model.loss(x.to(device), step=10**6)["loss"])


def check_run(run, device: torch.device, steps: int, batch_size: int | None, rtol: float) -> dict:
    if run.dataset not in PAPER_DATASETS: raise KeyError(f"paper dataset {run.dataset!r} has no entry in PAPER_DATASETS")
    shape, size = PAPER_DATASETS[run.dataset]
    params = {"channels": shape[0], "image_size": shape[1], **run.model_params}
    if "dataset_size" in REGISTRY.get("model", run.model).config_class.field_names(): params.setdefault("dataset_size", size)
    model = create_model(run.model, device="cpu", seed=run.seed, **params)
    run = run.replace(steps=steps, batch_size=batch_size or run.batch_size)
    train_config = TrainConfig.from_dict({**run.train_params, "steps": steps, "batch_size": run.batch_size, "seed": run.seed,
                                          "checkpoint_every": 10**9, "log_every": max(1, steps), "progress": False})
    data = SyntheticImages(shape)
    torch.manual_seed(run.seed)
    x = data.batch(0, min(run.batch_size, 64), seed=run.seed)
    cpu_loss = fixed_batch_loss(model, x, torch.device("cpu"))
    device_loss = fixed_batch_loss(model, x, device)
    warmup = min(5, steps // 5)   # CUDA's first steps pay for kernel selection and allocator growth
    if warmup: train(model, data, train_config.replace(device=str(device), steps=warmup))
    start = time.perf_counter()
    result = train(model, data, train_config.replace(device=str(device)))
    if device.type == "cuda": torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    final = float(result.metrics["loss"].iloc[-1]) if "loss" in result.metrics else math.nan
    agree = math.isclose(cpu_loss, device_loss, rel_tol=rtol, abs_tol=rtol)
    return {"study": run.paper, "row": run.label, "model": run.model, "batch": run.batch_size,
            "img/s": run.batch_size * steps / seconds, "loss cpu": cpu_loss, "loss device": device_loss,
            "rel diff": abs(cpu_loss - device_loss) / max(abs(cpu_loss), 1e-12), "agree": agree, "final loss": final,
            "ok": agree and math.isfinite(final)}


def print_table(rows: list[dict]):
    cols = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows: print("| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument("--steps", type=int, default=20, help="training steps per configuration (default 20: the whole check in about 5 min on one H200)")
    p.add_argument("--small", action=argparse.BooleanOptionalAction, default=None,
                   help="the CPU/CI variant: each study's first dataset, 2 steps with batch 8 (default: on when the device is a CPU)")
    p.add_argument("--rtol", type=float, default=1e-4, help="relative tolerance of the CPU/device loss comparison")
    p.add_argument("--studies", nargs="+", default=["mipe", "factorqvae", "jl1vae"])
    args = p.parse_args(argv)
    device = get_device(args.device)
    small = device.type == "cpu" if args.small is None else args.small
    steps, batch = (2, 8) if small else (args.steps, None)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    runs = distinct_paper_runs(args.studies, first_dataset_only=small)
    print(f"gpu-check: {len(runs)} paper configurations on {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}, {steps} steps each", flush=True)
    rows, failures = [], []
    for run in runs:
        tic = time.perf_counter()
        try:
            rows.append(check_run(run, device, steps, batch, args.rtol))
            r = rows[-1]
            print(f"  {run.paper} / {run.label} / {run.dataset}: {r['img/s']:.0f} img/s, loss rel diff {r['rel diff']:.1e}, "
                  f"{'ok' if r['ok'] else 'FAILED'} ({time.perf_counter() - tic:.1f} s)", flush=True)
        except Exception as e:
            failures.append(f"{run.paper} / {run.label} / {run.dataset}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3)
        if rows and not rows[-1]["ok"]: failures.append(f"{run.paper} / {run.label}: {rows[-1]}")
    if rows:
        print_table(rows)
        print()
        print_table([{"study": s, "configs": len(g), "median img/s": float(np.median([r["img/s"] for r in g])),
                      "max rel diff": max(r["rel diff"] for r in g)}
                     for s in dict.fromkeys(r["study"] for r in rows) for g in [[r for r in rows if r["study"] == s]]])
    for f in failures: print(f"FAILED {f}", file=sys.stderr)
    print(f"gpu-check: {len(rows) - sum(not r['ok'] for r in rows)} of {len(runs)} configurations passed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
