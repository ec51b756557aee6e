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
    assert done.stdout.strip() == "(0.1, 0.001) True (0.001, 0.0)"
