"""Generated functions give the same result and side effects when killed after any checkpoint.

Each generated function runs once straight through. Then it runs again in a chain of
processes, each killed with a real process exit right after its first checkpoint and the
next one resuming it, so every checkpoint in turn is the one a run resumes from.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from crash_chain import run_straight_and_crashing
from generated import durable_functions
from hypothesis import HealthCheck, given, settings


@settings(max_examples=int(os.environ.get("PERDURE_PROPERTY_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(source=durable_functions())
def test_killed_after_every_checkpoint_in_turn_the_result_and_effects_match_a_straight_run(
    source: str, tmp_path: Path
) -> None:
    case = Path(tempfile.mkdtemp(dir=tmp_path))
    module = case / f"flow_{hashlib.sha256(source.encode()).hexdigest()[:12]}.py"
    module.write_text(source)

    runs = run_straight_and_crashing(module, case, max_crashes=200)
    assert runs.straight["status"] == "SUCCEEDED", runs.straight
    assert runs.resumed == runs.straight, source
    assert runs.resumed_effects == runs.straight_effects, source
