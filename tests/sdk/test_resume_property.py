"""Generated functions give the same result and side effects when killed after any checkpoint.

Each generated function runs once straight through. Then it runs again in a chain of
processes, each killed with a real process exit right after its first checkpoint and the
next one resuming it, so every checkpoint in turn is the one a run resumes from.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from generated import durable_functions
from hypothesis import HealthCheck, given, settings

RUNNER = Path(__file__).with_name("crash_runner.py")
CRASH_EXIT = 86


def _run(module: Path, folder: Path, log: Path, crash_after: int | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, str(RUNNER), str(module), str(folder)]
    if crash_after is not None:
        args.append(str(crash_after))
    env = {**os.environ, "PERDURE_TEST_LOG": str(log)}
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


def _effects(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@settings(max_examples=int(os.environ.get("PERDURE_PROPERTY_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(source=durable_functions())
def test_killed_after_every_checkpoint_in_turn_the_result_and_effects_match_a_straight_run(
    source: str, tmp_path: Path
) -> None:
    case = Path(tempfile.mkdtemp(dir=tmp_path))
    module = case / f"flow_{hashlib.sha256(source.encode()).hexdigest()[:12]}.py"
    module.write_text(source)

    straight = _run(module, case / "straight", case / "straight.log")
    assert straight.returncode == 0, straight.stderr
    expected: dict[str, Any] = json.loads(straight.stdout)
    assert expected["status"] == "SUCCEEDED", expected

    crashes = 0
    while True:
        attempt = _run(module, case / "crashing", case / "crashing.log", crash_after=1)
        if attempt.returncode != CRASH_EXIT:
            break
        crashes += 1
        assert crashes < 200, "the chain of resumed processes does not end"
    assert attempt.returncode == 0, attempt.stderr
    assert json.loads(attempt.stdout) == expected, source
    assert _effects(case / "crashing.log") == _effects(case / "straight.log"), source
