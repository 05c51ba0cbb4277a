"""Run every notebook under nbs/ as a test, the way `nbdev_test` does, but under pytest.

pytest gives CI a summary line it understands and lets xdist spread notebooks over both cores.
Cells flagged with a directive listed in settings.ini `tst_flags` (`notest`, `slow`) are skipped here;
the `slow` variant below runs the `slow` cells too and is itself marked slow (`make test-slow`).
"""
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook

CFG = get_config()
ROOT = Path(CFG.config_path)
NOTEBOOKS = sorted(
    p for p in Path(CFG.nbs_path).rglob("*.ipynb")
    if not any(part.startswith(("_", ".")) for part in p.relative_to(CFG.nbs_path).parts)
)
IDS = [str(p.relative_to(CFG.nbs_path)) for p in NOTEBOOKS]


def _run(nb: Path, skip_flags: list[str]):
    ok, _ = run_notebook(nb, skip_flags=skip_flags, basepath=ROOT)
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
