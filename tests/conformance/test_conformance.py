"""AWS's conformance cases against ``perdure serve``, as part of the test suite.

Runs ``tests/conformance/run.py --ci`` in the conformance package's own environment (Python 3.13
or newer, made on first use, see environment.py) and fails when a case that is expected to pass
does not. The cases known not to pass are listed, each with its reason, in expectations.yaml.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent


def _environment() -> ModuleType:
    spec = importlib.util.spec_from_file_location("perdure_conformance_environment", HERE / "environment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _perdure() -> str:
    beside = Path(sys.executable).parent / "perdure"
    return str(beside) if beside.exists() else "perdure"


@pytest.mark.timeout(600)
def test_conformance_cases_pass_or_are_listed_with_a_reason(tmp_path: Path) -> None:
    environment = _environment()
    try:
        python = environment.ensure()
    except SystemExit as missing:
        # No Python 3.13+ here: CI machines have pyenv's 3.13, so there it is a failure.
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(str(missing))
        pytest.skip(str(missing))
    # The harness and the server it starts are not measured by coverage: the package's
    # environment has no coverage, and measuring every worker process doubles the run's time.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    done = subprocess.run(
        [str(python), str(HERE / "run.py"), "--ci", "--perdure", _perdure(), "--workdir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    report = done.stdout[done.stdout.find("\ncase ") :] if "\ncase " in done.stdout else done.stdout
    print(report)
    if done.returncode != 0:
        pytest.fail(f"conformance run failed (exit {done.returncode}):\n{report}\n{done.stderr[-3000:]}", pytrace=False)
