"""Run every notebook under nbs/ as a test, the way `nbdev_test` does, but under pytest.

pytest gives CI a summary line it understands and lets xdist spread notebooks over both cores.
Cells flagged with a directive listed in settings.ini `tst_flags` (`notest`, `slow`) are skipped here;
the `slow` variant below runs the `slow` cells too and is itself marked slow (`make test-slow`).

Each notebook runs in a forked child of the test process. A notebook's cells redefine its module's
classes and functions in the shell: without the fork they would stay registered for the next notebook
the same worker runs (a dataset registry entry whose renderer cannot be pickled for a process pool, say).
The package is imported once before forking, so the children start warm and clean.
"""
import importlib
import multiprocessing
import os
import pkgutil
import sys
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook

import vaenb

CFG = get_config()
ROOT = Path(CFG.config_path)
NOTEBOOKS = sorted(
    p for p in Path(CFG.nbs_path).rglob("*.ipynb")
    if not any(part.startswith(("_", ".")) for part in p.relative_to(CFG.nbs_path).parts)
)
IDS = [str(p.relative_to(CFG.nbs_path)) for p in NOTEBOOKS]
FORK = "fork" in multiprocessing.get_all_start_methods()

if FORK:
    for module in pkgutil.walk_packages(vaenb.__path__, "vaenb."): importlib.import_module(module.name)


def _run_and_exit(nb: Path, skip_flags: list[str]):
    try: ok, _ = run_notebook(nb, skip_flags=skip_flags, basepath=ROOT)
    finally: sys.stdout.flush(); sys.stderr.flush()
    os._exit(0 if ok else 1)   # skip the parent's atexit handlers (pytest's, xdist's) in the child


def _run(nb: Path, skip_flags: list[str]):
    if FORK:
        child = multiprocessing.get_context("fork").Process(target=_run_and_exit, args=(nb, skip_flags))
        child.start(); child.join()
        ok = child.exitcode == 0
    else: ok, _ = run_notebook(nb, skip_flags=skip_flags, basepath=ROOT)
    assert ok, f"{nb.relative_to(ROOT)} failed (its traceback is printed above)"


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 2, f"expected the library notebooks under {CFG.nbs_path}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=IDS)
def test_notebook(nb):
    _run(nb, CFG.tst_flags.split())


@pytest.mark.slow
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=IDS)
def test_notebook_slow_cells(nb):
    _run(nb, [f for f in CFG.tst_flags.split() if f != "slow"])
