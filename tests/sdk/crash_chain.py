"""Runs a module's ``flow`` straight through, then as a chain of processes each killed after a checkpoint.

Each run is ``crash_runner.py`` in a process of its own; side effects go to a log file per run
(``PERDURE_TEST_LOG``), so a resumed chain that repeats work shows it twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNNER = Path(__file__).with_name("crash_runner.py")
CRASH_EXIT = 86  # what crash_runner.py's process exits with when it is killed after a checkpoint


@dataclass(frozen=True)
class Runs:
    """The straight run's output and effects, and the crashing chain's."""

    straight: dict[str, Any]
    straight_effects: list[str]
    resumed: dict[str, Any]
    resumed_effects: list[str]
    crashes: int


def run_straight_and_crashing(module: Path, folder: Path, max_crashes: int) -> Runs:
    """Runs ``module``'s flow once straight, then killed after each checkpoint in turn until it ends."""
    straight = _run(module, folder / "straight", folder / "straight.log")
    assert straight.returncode == 0, straight.stderr
    crashes = 0
    while True:
        attempt = _run(module, folder / "crashing", folder / "crashing.log", crash_after=1)
        if attempt.returncode != CRASH_EXIT:
            break
        crashes += 1
        assert crashes < max_crashes, "the chain of resumed processes does not end"
    assert attempt.returncode == 0, attempt.stderr
    return Runs(
        straight=json.loads(straight.stdout),
        straight_effects=_effects(folder / "straight.log"),
        resumed=json.loads(attempt.stdout),
        resumed_effects=_effects(folder / "crashing.log"),
        crashes=crashes,
    )


def _run(module: Path, folder: Path, log: Path, crash_after: int | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(RUNNER), str(module), str(folder)]
    if crash_after is not None:
        args.append(str(crash_after))
    env = {**os.environ, "PERDURE_TEST_LOG": str(log)}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


def _effects(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []
