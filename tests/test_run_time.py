"""Issue 19: a smoke-profile `vaenb run` (the command line, a fresh kernel, the experiment notebook) finishes within 90 s."""
import json
import subprocess
import sys

import pytest

LIMIT_S = 90


@pytest.mark.slow
def test_smoke_run_finishes_within_90_s(tmp_path):
    command = [sys.executable, "-c", "import sys; from vaenb.cli import main; sys.exit(main())",
               "run", "--profile", "smoke", "--results", str(tmp_path / "runs"), "--quiet"]
    try: done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=LIMIT_S)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"`vaenb run --profile smoke` did not finish within {LIMIT_S} s (issue 19: per-run overhead); "
                    f"its output so far:\n{e.stdout or ''}\n{e.stderr or ''}")
    assert done.returncode == 0, f"vaenb run failed:\n{done.stdout}\n{done.stderr}"
    records = list((tmp_path / "runs").glob("*/record.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["status"] == "finished"
