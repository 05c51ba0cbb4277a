"""Benchmark of the datasets layer: prints a table of measured speed/memory against the targets of issue 3.

    OMP_NUM_THREADS=1 python tests/bench/bench_data.py [--quick]

Rows: full procedural dSprites generation (2 processes, cold cache), cache load, shuffled batches of 64 from
the cache on one core, resident memory of a process that loads the cache and serves 20,000 batches, and the
3D Shapes stand-in render rate. Each row also gives a baseline measured in the same run, so the ratio says
something even on a machine shared with other jobs. `--quick` skips the full dSprites build (uses a subset).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from vaenb.data.dsprites import DSprites, render_dsprites_packed
from vaenb.data.shapes3d import Shapes3DStandIn

TRAIN_MEMORY_SCRIPT = """
import sys, numpy as np
from vaenb.data.dsprites import DSprites
ds = DSprites(cache_dir=sys.argv[1])
for step in range(int(sys.argv[2])): ds.batch(step, 64, seed=0)
rss = {k: int(v.split()[0]) for k, v in (l.split(':', 1) for l in open('/proc/self/status')) if k in ('VmHWM', 'VmRSS')}
print(rss['VmHWM'] / 2**20, rss['VmRSS'] / 2**20)
"""


def rate(fn, seconds=2.0):
    "Calls per second of fn() over about `seconds`."
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(); n += 1
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="skip the full 737,280-image build")
    args = ap.parse_args()
    rows = []
    load = os.getloadavg()[0]

    # baseline: the generator on one core over 20,000 random factors
    ds0 = DSprites(cache_dir=tempfile.gettempdir())
    f = ds0.index_to_factors(np.random.default_rng(0).integers(len(ds0), size=20000))
    t0 = time.perf_counter(); render_dsprites_packed(f); one_core = 20000 / (time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            ds = DSprites(cache_dir=tmp, subset=dict(posX=range(0, 32, 4)))
        else:
            ds = DSprites(cache_dir=tmp)
        t0 = time.perf_counter(); _ = ds.packed; gen = time.perf_counter() - t0
        rows.append((f"dSprites generation, {len(ds):,} images, 2 processes (cold cache)", f"{gen:.1f} s",
                     "< 60 s" if not args.quick else "(quick subset)",
                     f"{len(ds) / gen:,.0f} img/s = {len(ds) / gen / one_core:.2f}x one core ({one_core:,.0f} img/s)"))
        t0 = time.perf_counter(); ds2 = DSprites(cache_dir=tmp, subset=ds.params["subset"]); _ = ds2.packed
        load_s = time.perf_counter() - t0
        rows.append(("dSprites cache load (size + SHA-256 check, memory map)", f"{load_s:.2f} s", "-",
                     f"{ds2.packed.nbytes / 2**20:.0f} MiB bit-packed (uint8 would be {len(ds) * 4096 / 2**30:.2f} GiB)"))
        step = iter(range(10**9))
        batches = rate(lambda: ds2.batch(next(step), 64, seed=0))
        raw = np.zeros((len(ds2), 4096), np.uint8) if args.quick else None
        base = rate(lambda: np.ascontiguousarray(ds2.packed[np.random.default_rng(0).integers(len(ds2), size=64)])) if raw is None else \
            rate(lambda: raw[np.random.default_rng(0).integers(len(ds2), size=64)].astype(np.float32))
        rows.append(("shuffled batches of 64 from the cache, 1 core", f"{64 * batches:,.0f} img/s", ">= 20,000 img/s",
                     f"{batches / base:.2f}x a bare random gather of the packed rows ({64 * base:,.0f} img/s)"))
        if not args.quick:
            out = subprocess.run([sys.executable, "-c", TRAIN_MEMORY_SCRIPT, tmp, "20000"], capture_output=True, text=True, check=True)
            peak, now = map(float, out.stdout.split())
            rows.append(("resident memory, load cache + 20,000 batches of 64", f"{peak:.2f} GiB peak", "<= 1 GiB",
                         f"{now:.2f} GiB at the end; raw uint8 array: {len(ds) * 4096 / 2**30:.2f} GiB"))

    with tempfile.TemporaryDirectory() as tmp:
        sh = Shapes3DStandIn(cache_dir=tmp)
        t0 = time.perf_counter(); _ = sh.geometry; geo = time.perf_counter() - t0
        f = sh.sample_factors(2000, np.random.default_rng(0))
        t0 = time.perf_counter(); sh.images(f); warm = 2000 / (time.perf_counter() - t0)
        rows.append(("3D Shapes stand-in: ray-cast all 480 geometries (cold, 2 processes)", f"{geo:.1f} s", "-",
                     f"{480 * 64 * 64 * 4 / geo / 1e6:.1f} M rays/s"))
        rows.append(("3D Shapes stand-in: images on demand (geometry cached), 1 core", f"{warm:,.0f} img/s", ">= 2,000 img/s",
                     f"cold + 480,000 images: {480000 / (geo + 480000 / warm):,.0f} img/s"))

    w = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"datasets benchmark (load average {load:.1f} on {os.cpu_count()} cores at start; other jobs share the machine)")
    head = ("measure", "result", "target", "baseline / note")
    print(" | ".join(h.ljust(n) for h, n in zip(head, w)))
    print("-+-".join("-" * n for n in w))
    for r in rows: print(" | ".join(c.ljust(n) for c, n in zip(r, w)))


if __name__ == "__main__":
    main()
