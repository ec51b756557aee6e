"""The SDK tuning is pinned to the SDK it was tested with: these fail when the SDK changes under it."""

from __future__ import annotations

import subprocess
import sys

from aws_durable_execution_sdk_python import __about__

from perdure.runtime import sdk_tuning


def test_installed_sdk_is_a_version_the_tuning_was_tested_with() -> None:
    assert __about__.__version__ in sdk_tuning.TESTED_VERSIONS


def test_tuning_replaces_the_sdk_defaults_it_was_written_against() -> None:
    script = (
        "from aws_durable_execution_sdk_python import state\n"
        "from perdure.runtime import sdk_tuning\n"
        "before = (state._STOP_SIGNAL_POLL_SECONDS, state._BLOCKED_CALLER_WAIT_SECONDS)\n"
        "applied = sdk_tuning.apply()\n"
        "print(before, applied, (state._STOP_SIGNAL_POLL_SECONDS, state._BLOCKED_CALLER_WAIT_SECONDS))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    # The stop poll stays the SDK's: a thread waking every millisecond in each of a hundred
    # invocations at once costs a worker half its CPU. The invocation's end wakes it instead.
    assert done.stdout.strip() == "(0.1, 0.001) True (0.1, 0.0)"


def test_the_checkpoint_thread_returns_when_checkpointing_stops_not_at_its_next_poll() -> None:
    script = (
        "import threading\n"
        "from aws_durable_execution_sdk_python import state\n"
        "from perdure.runtime import sdk_tuning\n"
        "assert sdk_tuning.apply()\n"
        "assert sdk_tuning.apply()  # twice: the stop is wrapped once\n"
        "state._STOP_SIGNAL_POLL_SECONDS = 3600.0  # a poll that never comes within the test\n"
        "execution = state.ExecutionState('arn', 'token', {}, service_client=None, plugin_executor=None)\n"
        "thread = threading.Thread(target=execution.checkpoint_batches_forever, daemon=True)\n"
        "thread.start()\n"
        "execution.stop_checkpointing()\n"
        "thread.join(30)\n"
        "print('stopped' if not thread.is_alive() else 'still waiting')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.stdout.strip() == "stopped", done.stderr
