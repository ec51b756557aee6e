"""AWS's conformance cases against ``perdure serve``, as part of the test suite.

Runs ``tests/conformance/run.py --ci`` once, for the Python handlers (handlers/) and then the
Node.js ones (handlers_js/), each runtime on a server of its own, in the conformance package's
own environment (Python 3.13 or newer, made on first use, see environment.py). Each runtime's
test fails when one of its cases that is expected to pass does not. The cases known not to pass
are listed, each with its reason, in expectations.yaml and expectations_node.yaml.

The Node.js handlers need Node 22 or newer: ``PERDURE_NODE``, else the one scripts/node22
installs from npm (tests/node_env.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from node_env import node22

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def _environment() -> ModuleType:
    spec = importlib.util.spec_from_file_location("perdure_conformance_environment", HERE / "environment.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _perdure() -> str:
    beside = Path(sys.executable).parent / "perdure"
    return str(beside) if beside.exists() else "perdure"


def find_node() -> tuple[str | None, str]:
    """A Node.js of 22 or newer for the Node handlers, or None and why there is none."""
    explicit = os.environ.get("PERDURE_NODE")
    if explicit:
        return explicit, ""
    try:
        return node22(), ""
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or ""
        return None, f"scripts/node22 could not install Node.js 22: {error} {detail.strip()[-500:]}"


@dataclass(frozen=True)
class ConformanceRun:
    returncode: int
    report: str  # the table, the failures and the totals run.py printed
    stderr: str
    workdir: Path
    node_missing: str  # why the Node handlers were not run, if they were not

    def outcomes(self, runtime: str) -> dict[str, dict[str, object]] | None:
        """Each case's status in this runtime's run, as run.py wrote it; None if it wrote none."""
        path = self.workdir / runtime / "outcomes.json"
        return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture(scope="module")
def conformance_run(tmp_path_factory: pytest.TempPathFactory) -> ConformanceRun:
    environment = _environment()
    try:
        python = environment.ensure()
    except SystemExit as missing:
        # No Python 3.13+ here: CI machines have pyenv's 3.13, so there it is a failure.
        if IN_CI:
            pytest.fail(str(missing))
        pytest.skip(str(missing))
    node, node_missing = find_node()
    workdir = tmp_path_factory.mktemp("conformance")
    runtimes = ["python", "node"] if node else ["python"]
    # The harness and the servers it starts are not measured by coverage: the package's
    # environment has no coverage, and measuring every worker process doubles the run's time.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    command = [str(python), str(HERE / "run.py"), "--ci", "--parallel", "8", "--runtime", *runtimes, "--perdure", _perdure(), "--workdir", str(workdir)]
    if node:
        command += ["--node", node]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=840, check=False)
    report = done.stdout[done.stdout.find("\ncase ") :] if "\ncase " in done.stdout else done.stdout
    return ConformanceRun(done.returncode, report, done.stderr, workdir, node_missing)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("runtime", ["python", "node"])
def test_conformance_cases_pass_or_are_listed_with_a_reason(conformance_run: ConformanceRun, runtime: str) -> None:
    if runtime == "node" and conformance_run.node_missing:
        if IN_CI:
            pytest.fail(conformance_run.node_missing)
        pytest.skip(conformance_run.node_missing)
    print(conformance_run.report)
    outcomes = conformance_run.outcomes(runtime)
    if outcomes is None:
        pytest.fail(
            f"the conformance run ended (exit {conformance_run.returncode}) before it had {runtime}'s results:\n"
            f"{conformance_run.report}\n{conformance_run.stderr[-3000:]}",
            pytrace=False,
        )
    failed = {case: outcome for case, outcome in outcomes.items() if outcome["blocking"]}
    if failed:
        lines = "\n".join(f"  {case} {outcome['status']}: {outcome['note']}" for case, outcome in sorted(failed.items()))
        pytest.fail(f"{len(failed)} {runtime} conformance cases failed:\n{lines}\n\n{conformance_run.report}", pytrace=False)
