"""The README's demo command keeps working: both orders finish after their approval."""

from __future__ import annotations

import subprocess
import sys

from servers import ROOT


def test_the_demo_runs_both_orders_to_success() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("Status: SUCCEEDED") == 2
    assert "charged A-1 52.50" in done.stdout
    assert "ExecutionSucceeded" in done.stdout
