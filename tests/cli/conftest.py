"""The ``perdure`` command run as a user runs it: the installed script, in a subprocess, in a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# The console script pip installed beside this Python (``python -m perdure`` calls itself
# ``python -m perdure`` in its messages, where users read ``perdure``).
PERDURE = Path(sys.executable).parent / "perdure"


@pytest.fixture
def cli_env() -> dict[str, str]:
    """The environment the commands run in: no PERDURE_ or AWS_ variables of the machine running
    the tests, so only the options a test gives choose the database, the server and the secret."""
    if not PERDURE.exists():
        pytest.fail(f"{PERDURE} is missing: install Perdure into this environment with `pip install -e .`.")
    return {k: v for k, v in os.environ.items() if not k.startswith(("PERDURE_", "AWS_"))}


@pytest.fixture
def perdure(tmp_path: Path, cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs ``perdure ARGS...`` in ``tmp_path`` to its end; returns what it printed and its exit code."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PERDURE), *args], cwd=tmp_path, env={**cli_env, **(env or {})}, capture_output=True, text=True, timeout=120
        )

    return run


@pytest.fixture
def perdure_started(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Starts ``perdure ARGS...`` in ``tmp_path``, its stderr to ``stderr``; kills what is still running at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, stderr: Path) -> subprocess.Popen[str]:
        with open(stderr, "w") as err:
            process = subprocess.Popen(
                [str(PERDURE), *args], cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE, stderr=err, text=True
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
