"""Spans recorded in a process are exported by its export process, also when it exits or is killed.

Each test runs a seed-style function in a process of its own (``perdure.testing``, everything
in one interpreter, as ``perdure run``-style tools and tests do), with the standard variables
pointing at a real OTLP/HTTP receiver (tests/otlp_receiver.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from otlp_receiver import ReceivedSpan, otlp_receiver

_SCRIPT = """
import os, signal, sys, time
from pathlib import Path
import perdure as durable
from perdure.testing import DurableTestRunner

@durable.function
def three_steps(ctx, event):
    return [ctx.step(lambda: i, name=f"step-{i}") for i in range(3)]

with DurableTestRunner(Path(sys.argv[1])) as runner:
    assert runner.run(three_steps, {}).result == [0, 1, 2]
if sys.argv[2] == "kill":
    time.sleep(1)  # the spans are handed to the export process within 50 ms
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _run(tmp_path: Path, endpoint: str, end: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "traced_run.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_BSP_SCHEDULE_DELAY="100")
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path), end], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _steps(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [s for s in spans if s.attributes.get("perdure.operation.type") == "STEP"]


def test_spans_of_a_process_that_exits_are_exported(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        done = _run(tmp_path, receiver.endpoint, "exit")
        assert done.returncode == 0, done.stderr
        spans = receiver.wait_for(lambda spans: len(_steps(spans)) == 3 and any(s.name.startswith("execution") for s in spans))
    (root,) = [s for s in spans if s.name == "execution three_steps"]
    steps = sorted(_steps(spans), key=lambda s: s.start_ns)
    assert [s.name for s in steps] == ["step step-0", "step step-1", "step step-2"]
    for step in steps:
        assert step.trace_id == root.trace_id and step.parent_span_id == root.span_id
        assert step.attributes["perdure.function"] == "three_steps"
        assert step.attributes["perdure.execution.arn"] == root.attributes["perdure.execution.arn"]
        assert step.attributes["perdure.operation.attempt"] == 1
        assert step.service_name == "perdure"
    assert "error" not in done.stderr.lower(), done.stderr


def test_spans_handed_on_before_a_process_is_killed_are_exported(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        done = _run(tmp_path, receiver.endpoint, "kill")
        assert done.returncode == -9, done.stderr
        spans = receiver.wait_for(lambda spans: len(_steps(spans)) == 3)
    assert any(s.name == "execution three_steps" for s in spans)
