"""Runs AWS's durable execution conformance cases against a local ``perdure serve``.

    python tests/conformance/run.py                 # every case
    python tests/conformance/run.py --suite step    # one suite (or several)
    python tests/conformance/run.py --case 1-11 4-3 # some cases
    python tests/conformance/run.py --ci            # what CI runs: without the cases listed slow
    python tests/conformance/run.py --runtime node  # the Node.js handlers (handlers_js/*.mjs)
    python tests/conformance/run.py --runtime python node  # both, one after the other

Each case of ``aws-durable-execution-conformance-tests`` (155 in 10 suites) has a handler here,
written from the case's prose in ``handlers/<suite>.py`` as ``case_S_N``, and one for Node.js in
``handlers_js/<suite>.mjs`` (see runtimes.py; a runtime runs the suites it has a file for). For
each runtime this script generates a SAM template with one function per case
(``TestingMetadata.TestDescription`` names its case, as in the package's own templates), starts
``perdure serve --template`` on a fresh SQLite database, and validates every case with the
package's own ``validate_description``: it invokes
the function with the case's input, completes callbacks as the case says, polls the history
until the end, and checks the result and the event history with the package's
``EventHistoryMatcher`` (and the logs with its ``CloudWatchLogValidator``). The package talks to
Perdure through boto3 pointed at the local endpoint; where it would ask CloudFormation which
function a logical ID deployed to, or CloudWatch for an execution's log lines, two small
stand-ins answer from the template and from the execution's logs (the API ``perdure executions
logs`` reads).

It prints a table (one line per case), the failures' details, and a total; it exits non-zero
when a case that is expected to pass does not. ``expectations.yaml`` (Python) and
``expectations_node.yaml`` (Node.js) list the cases that are not expected to pass, each with its
reason.

The package asks for Python 3.14; this script re-runs itself in ``tests/conformance/.venv``
(Python 3.13 or newer, see environment.py) when started from another interpreter.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REGION = "us-east-1"
# A function each runtime serves beside the cases, in handlers*/_warm_up.*: it returns at once.
WARM_UP = "warm_up"
SUITE_ORDER = [
    "step",
    "wait",
    "child",
    "callback",
    "invoke",
    "wait_for_condition",
    "wait_for_callback",
    "parallel",
    "map",
    "plugin",
]


def _bootstrap() -> None:
    """Re-runs this script in the package's environment if this interpreter lacks the package."""
    sys.path.insert(0, str(HERE))
    import environment

    if environment.package_importable():
        return
    python = environment.ensure()
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


if __name__ == "__main__":
    _bootstrap()

import boto3  # noqa: E402
import yaml  # noqa: E402
from aws_durable_execution_conformance_tests.clients import AwsClients  # noqa: E402
from aws_durable_execution_conformance_tests.config import TESTS_DIR  # noqa: E402
from aws_durable_execution_conformance_tests.extensions import RequirementCase, load_extensions  # noqa: E402
from aws_durable_execution_conformance_tests.history import load_yaml_file  # noqa: E402
from aws_durable_execution_conformance_tests.report import (  # noqa: E402
    Report,
    ReportEntry,
    ReportStatus,
    RunMetadata,
)
from aws_durable_execution_conformance_tests.reporters import write_report  # noqa: E402
from aws_durable_execution_conformance_tests.sam import Invoker  # noqa: E402
from aws_durable_execution_conformance_tests.validate import (  # noqa: E402
    DescriptionResult,
    parse_function_descriptions,
    parse_not_implemented,
    validate_description,
)
from botocore.config import Config  # noqa: E402
from runtimes import NODE, RUNTIMES, Runtime, install_node_packages  # noqa: E402


def case_key(case_id: str) -> tuple[int, int]:
    suite, number = case_id.split("-")
    return int(suite), int(number)


def logical_id(function_name: str) -> str:
    """``case_1_11`` -> ``Case0111``; ``target_echo`` -> ``TargetEcho`` (CloudFormation IDs are alphanumeric)."""
    match = re.fullmatch(r"case_(\d+)_(\d+)", function_name)
    if match:
        return f"Case{int(match[1]):02d}{int(match[2]):02d}"
    return "".join(part.capitalize() for part in function_name.split("_"))


# region The template


@dataclass(frozen=True)
class HandlerFunction:
    name: str  # the function name Perdure serves it under, the handler's own name
    module: str  # the handler file's stem: its suite
    case_id: str | None  # the requirement it answers, for case_S_N


def find_handlers(runtime: Runtime) -> list[HandlerFunction]:
    """The runtime's handlers, read from the source (this interpreter need not import them).

    Handlers named case_S_N are cases; target_* are functions the cases invoke (chained invoke).
    """
    found: list[HandlerFunction] = []
    for path in runtime.handler_files():
        for name in runtime.pattern.findall(path.read_text(encoding="utf-8")):
            match = re.fullmatch(r"case_(\d+)_(\d+)", name)
            found.append(HandlerFunction(name, path.stem, f"{match[1]}-{match[2]}" if match else None))
    return found


def load_expectations(path: Path) -> dict[str, dict[str, str]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {key: {str(k): str(v) for k, v in (data.get(key) or {}).items()} for key in ("aws_only", "expected_failures", "slow", "quiet")}


def build_template(runtime: Runtime, handlers: list[HandlerFunction], aws_only: dict[str, str]) -> dict[str, Any]:
    """A SAM template serving every handler, in the shape the package's templates have."""
    resources: dict[str, Any] = {}
    for handler in handlers:
        resource: dict[str, Any] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {"FunctionName": handler.name, "Handler": f"{handler.module}.{handler.name}"},
        }
        if handler.case_id:
            resource["TestingMetadata"] = {"TestDescription": [handler.case_id]}
        resources[logical_id(handler.name)] = resource
    # Invoked before the cases (see warm_up), in a file of its own that is not a suite's.
    resources[logical_id(WARM_UP)] = {
        "Type": "AWS::Serverless::Function",
        "Properties": {"FunctionName": WARM_UP, "Handler": f"_{WARM_UP}.{WARM_UP}"},
    }
    if aws_only:
        # The package reads declared gaps from any function's TestingMetadata.
        first = next(iter(resources.values()))
        first.setdefault("TestingMetadata", {})["NotImplemented"] = [
            {"id": case_id, "reason": reason} for case_id, reason in sorted(aws_only.items(), key=lambda i: case_key(i[0]))
        ]
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "The conformance cases' handlers, served by perdure serve (generated by tests/conformance/run.py).",
        "Globals": {
            "Function": {
                "Runtime": runtime.template_runtime,
                "CodeUri": str(runtime.handlers),
                # Per invocation; also how long a synchronous invoke waits for the execution.
                "Timeout": 300,
                "DurableConfig": {"ExecutionTimeout": 3600, "RetentionPeriodInDays": 1},
            }
        },
        "Resources": resources,
    }


# endregion

# region Stand-ins for what the package asks of CloudFormation and CloudWatch Logs


class TemplateStack:
    """Answers the package's CloudFormation calls from the template ``perdure serve`` serves.

    The package resolves a function's logical ID to the deployed function's name by listing the
    stack's resources; here the stack is the template, and the name is the template's
    FunctionName.
    """

    def __init__(self, functions: dict[str, str]) -> None:
        self.functions = functions

    def get_paginator(self, operation: str) -> TemplateStack:
        if operation != "list_stack_resources":
            raise NotImplementedError(operation)
        return self

    def paginate(self, StackName: str) -> Iterator[dict[str, Any]]:  # noqa: N803 - boto3's name
        yield {
            "StackResourceSummaries": [
                {"LogicalResourceId": logical, "PhysicalResourceId": name, "ResourceType": "AWS::Lambda::Function"}
                for logical, name in self.functions.items()
            ]
        }

    def describe_stack_resource(self, StackName: str, LogicalResourceId: str) -> dict[str, Any]:  # noqa: N803
        return {"StackResourceDetail": {"PhysicalResourceId": self.functions.get(LogicalResourceId, "")}}


class LogsUnavailable(Exception):
    """Perdure could not give an execution's log lines."""


class ExecutionLogs:
    """Answers the package's CloudWatch ``FilterLogEvents`` from the execution's logs in Perdure.

    The package asks for the records whose ``durableExecutionArn`` or ``executionArn`` is the
    execution's; Perdure keeps each execution's log lines apart, so the answer is that
    execution's lines, in the order Perdure gives them. They are read from the API that
    ``perdure executions logs ARN`` reads, over HTTP: the package asks about once a second for
    each case that checks logs, and a command a time is a Python start-up a time, which on two
    cores delays the very invocations whose order the cases check.
    """

    _ARN = re.compile(r'durableExecutionArn = "((?:[^"\\]|\\.)*)"')

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def filter_log_events(self, **kwargs: Any) -> dict[str, Any]:
        match = self._ARN.search(kwargs.get("filterPattern") or "")
        if match is None:
            raise NotImplementedError("FilterLogEvents without an execution ARN filter")
        arn = match[1].replace('\\"', '"').replace("\\\\", "\\")
        return {"events": [{"timestamp": i, "ingestionTime": i, "message": line} for i, line in enumerate(self._lines(arn))]}

    def _lines(self, arn: str) -> list[str]:
        """The messages of the execution's log lines, following ``NextMarker`` through every page."""
        lines: list[str] = []
        query: dict[str, str] = {"MaxItems": "1000"}
        while True:
            url = f"{self.endpoint}/perdure/v1/durable-executions/{urllib.parse.quote(arn, safe='')}/logs?{urllib.parse.urlencode(query)}"
            try:
                with urllib.request.urlopen(url, timeout=60) as reply:
                    body = json.load(reply)
            except (OSError, ValueError) as error:
                raise LogsUnavailable(f"GET {url} failed: {error}") from error
            for item in body["Logs"]:
                message = item.get("Message")
                lines.append(message if isinstance(message, str) else json.dumps(item))
            if not body.get("NextMarker"):
                return lines
            query["Marker"] = body["NextMarker"]


# endregion

# region The server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_perdure(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    local = ROOT / ".venv" / "bin" / "perdure"
    if local.exists():
        return [str(local)]
    found = shutil.which("perdure")
    if found:
        return [found]
    raise SystemExit("perdure was not found: run ./scripts/test once (it makes .venv), or pass --perdure PATH.")


@contextmanager
def perdure_server(perdure: list[str], template: Path, workdir: Path, workers: int, env: dict[str, str]) -> Iterator[str]:
    """Runs ``perdure serve --template`` on a new SQLite database; yields its endpoint."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    help_text = subprocess.run([*perdure, "serve", "--help"], capture_output=True, text=True, env=env).stdout
    # Once the API authenticates requests, serving open needs the explicit development flag.
    dev = ["--dev"] if re.search(r"^\s+--dev\b", help_text, re.M) else []
    # One invocation per worker process, as in a Lambda sandbox: cases that end the process
    # (a runtime crash) must not take other cases' invocations with them.
    concurrency = ["--concurrency", "1"] if re.search(r"^\s+--concurrency\b", help_text, re.M) else []
    command = [
        *perdure,
        "serve",
        "--template",
        str(template),
        "--db",
        f"sqlite:///{workdir / 'perdure.db'}",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *concurrency,
        *dev,
    ]
    log_path = workdir / "server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise SystemExit(f"perdure serve exited early:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{endpoint}/health", timeout=1) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"perdure serve did not answer within 60 s:\n{log_path.read_text()}")
            time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


# endregion

# region Running cases


class _PerThreadOutput(io.TextIOBase):
    """Sends each case thread's prints to its own buffer (the package prints as it goes)."""

    def __init__(self, real: Any, local: threading.local) -> None:
        self.real = real
        self.local = local

    def write(self, text: str) -> int:
        buffer = getattr(self.local, "buffer", None)
        return (buffer or self.real).write(text)

    def flush(self) -> None:
        self.real.flush()


@contextmanager
def _captured(local: threading.local) -> Iterator[io.StringIO]:
    """Collects what this thread prints (to stdout or stderr) while the block runs."""
    local.buffer = io.StringIO()
    try:
        yield local.buffer
    finally:
        local.buffer = None


@dataclass
class Outcome:
    case_id: str
    suite: str
    status: str  # PASS FAIL XFAIL XPASS OPTIONAL-FAIL EXCLUDED UNCOVERED
    seconds: float = 0.0
    note: str = ""
    errors: list[str] = field(default_factory=list)
    output: str = ""
    runtime: str = "python"

    @property
    def blocking(self) -> bool:
        return self.status in ("FAIL", "UNCOVERED")


def _expected_length(requirement: RequirementCase) -> int:
    data = load_yaml_file(str(requirement.path))
    if not isinstance(data, dict):
        return 3
    if data.get("ExpectedLogs"):
        return 0
    return 1 if data.get("AsyncInvoke") else 2


def run_case(
    logical: str,
    requirement: RequirementCase,
    invoker: Invoker,
    clients: AwsClients,
    workdir: Path,
    local: threading.local,
) -> tuple[DescriptionResult | None, float, str, str | None]:
    started = time.monotonic()
    with _captured(local) as buffer:
        try:
            result = validate_description(
                logical,
                requirement.description_id,
                str(requirement.path),
                invoker,
                str(workdir / "events"),
                region=REGION,
                aws_clients=clients,
                output_dir=str(workdir / "history"),
            )
            crash = None
        except LogsUnavailable as error:
            # validate_description checks the logs last: the history and the result matched.
            result, crash = None, f"history and result match, but the logs could not be read: {error}"
        except Exception as error:  # noqa: BLE001 - one broken case must not stop the run
            result, crash = None, f"{type(error).__name__}: {error}"
    return result, time.monotonic() - started, buffer.getvalue(), crash


def classify(
    case_id: str,
    suite: str,
    result: DescriptionResult | None,
    seconds: float,
    output: str,
    crash: str | None,
    expected_failures: dict[str, str],
) -> Outcome:
    passed = result is not None and result.passed
    errors = list(result.errors) if result is not None else [crash or "no result"]
    if case_id in expected_failures:
        status = "XPASS" if passed else "XFAIL"
        return Outcome(case_id, suite, status, seconds, expected_failures[case_id], [] if passed else errors, output)
    if passed:
        return Outcome(case_id, suite, "PASS", seconds)
    if result is not None and result.optional:
        return Outcome(case_id, suite, "OPTIONAL-FAIL", seconds, "the case is marked optional", errors, output)
    note = " ".join(errors[0].split())[:150] if errors else ""
    return Outcome(case_id, suite, "FAIL", seconds, note, errors, output)


def print_table(outcomes: list[Outcome], out: Any, with_runtime: bool) -> None:
    width = max((len(o.suite) for o in outcomes), default=5)
    runtime = f"{'runtime':<8} " if with_runtime else ""
    print(f"{'case':<6} {runtime}{'suite':<{width}} {'result':<13} {'time':>6}  note", file=out)
    for o in outcomes:
        seconds = f"{o.seconds:5.1f}s" if o.seconds else ""
        runtime = f"{o.runtime:<8} " if with_runtime else ""
        print(f"{o.case_id:<6} {runtime}{o.suite:<{width}} {o.status:<13} {seconds:>6}  {o.note}", file=out)


def summarize(outcomes: list[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    return counts


@dataclass
class RuntimeRun:
    """One runtime's part of a run: its template, its server's work folder, its cases."""

    runtime: Runtime
    workdir: Path
    template: Path
    handlers: list[HandlerFunction]
    expectations: dict[str, dict[str, str]]
    covered: dict[str, str] = field(default_factory=dict)  # case ID -> logical ID
    outcomes: list[Outcome] = field(default_factory=list)
    to_run: list[tuple[str, RequirementCase]] = field(default_factory=list)
    skipped_suites: list[str] = field(default_factory=list)


def plan_runtime(
    runtime: Runtime, requirements: dict[str, RequirementCase], args: argparse.Namespace, workdir: Path
) -> RuntimeRun:
    """Writes the runtime's template and sorts its selected cases into those to run and the rest.

    Without --suite, a runtime runs the suites it has a handler file for; the others are left
    out (and named), so a runtime can grow a suite at a time.
    """
    expectations = load_expectations(runtime.expectations)
    handlers = find_handlers(runtime)
    (workdir / "events").mkdir(parents=True, exist_ok=True)
    template_path = workdir / "template.yaml"
    template_path.write_text(yaml.safe_dump(build_template(runtime, handlers, expectations["aws_only"]), sort_keys=False))
    run = RuntimeRun(runtime, workdir, template_path, handlers, expectations)
    run.covered = {did: fn for fn, did in parse_function_descriptions(str(template_path))}
    declared_gaps = parse_not_implemented(str(template_path))
    with_files = runtime.suites()
    skipped: set[str] = set()
    for cid in sorted(requirements, key=case_key):
        req = requirements[cid]
        suite = req.suite.name
        if (args.suite and suite not in args.suite) or (args.case and cid not in args.case):
            continue
        if not args.suite and not args.case and suite not in with_files:
            skipped.add(suite)
        elif cid in declared_gaps:
            run.outcomes.append(Outcome(cid, suite, "EXCLUDED", note=f"needs AWS: {declared_gaps[cid]}", runtime=runtime.name))
        elif args.ci and cid in expectations["slow"]:
            note = f"slow, not in CI: {expectations['slow'][cid]}"
            run.outcomes.append(Outcome(cid, suite, "EXCLUDED", note=note, runtime=runtime.name))
        elif cid not in run.covered:
            run.outcomes.append(Outcome(cid, suite, "UNCOVERED", note="no handler written for this case", runtime=runtime.name))
        else:
            run.to_run.append((cid, req))
    run.skipped_suites = [suite for suite in SUITE_ORDER if suite in skipped]
    return run


@dataclass(frozen=True)
class CaseTarget:
    """Where one runtime's cases are validated: its server, through the package's clients."""

    invoker: Invoker
    clients: AwsClients
    lam: Any  # the boto3 Lambda client


def warm_up(target: CaseTarget, invocations: int) -> None:
    """Invokes the warm-up function ``invocations`` times at once and waits for them to end.

    A server starts its worker processes (and a Node function's Node child, which imports the
    SDK) on the first invocations. Those the cases make first would wait for them, and on a
    loaded two-core machine that wait runs past the package's 30 s without a new history event;
    started here, the processes are running before any case is timed.
    """

    def invoke(_: int) -> str | None:
        try:
            reply = target.lam.invoke(FunctionName=WARM_UP, Payload=b"null")
        except Exception as error:  # noqa: BLE001 - the cases report what is wrong
            return f"{type(error).__name__}: {error}"
        return f"it failed: {reply['Payload'].read()!r}" if reply.get("FunctionError") else None

    with ThreadPoolExecutor(max_workers=invocations, thread_name_prefix="warm-up") as pool:
        failures = [failure for failure in pool.map(invoke, range(invocations)) if failure]
    if failures:
        print(f"conformance: warming the server up: {failures[0]}", flush=True)


def connect(endpoint: str, run: RuntimeRun) -> CaseTarget:
    lam = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="conformance",
        aws_secret_access_key="conformance",
        config=Config(retries={"mode": "standard", "max_attempts": 3}, read_timeout=600, max_pool_connections=64),
    )
    stack = TemplateStack({logical_id(h.name): h.name for h in run.handlers})
    clients = AwsClients({"lambda": lam, "cloudformation": stack, "logs": ExecutionLogs(endpoint)})
    return CaseTarget(Invoker(stack_name="perdure", region=REGION, lambda_client=lam, cfn_client=stack), clients, lam)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--suite", nargs="+", choices=SUITE_ORDER, help="only these suites")
    parser.add_argument("--case", nargs="+", metavar="ID", help="only these cases (e.g. 1-11 4-3)")
    parser.add_argument(
        "--runtime",
        nargs="+",
        choices=sorted(RUNTIMES),
        default=["python"],
        help="the handlers to run: python (handlers/*.py, the default), node (handlers_js/*.mjs), or both at once",
    )
    parser.add_argument("--ci", action="store_true", help="leave out the cases the expectations list as slow")
    parser.add_argument("--parallel", type=int, default=16, help="cases validated at once, per runtime (default 16)")
    parser.add_argument("--workers", type=int, default=24, help="perdure serve --workers (default 24; --at-once shares them)")
    parser.add_argument(
        "--at-once", action="store_true", help="with several runtimes, run their servers side by side, not one after the other"
    )
    parser.add_argument("--perdure", help="the perdure command (default .venv/bin/perdure)")
    parser.add_argument("--node", help="the Node.js (22 or newer) the node handlers run on (perdure serve's PERDURE_NODE)")
    parser.add_argument("--workdir", type=Path, help="keep the databases, server logs and histories here")
    parser.add_argument("--verbose", action="store_true", help="print each failed case's validator output")
    parser.add_argument("--write-template", type=Path, metavar="FILE", help="only write the generated template")
    args = parser.parse_args(argv)
    runtimes = [RUNTIMES[name] for name in dict.fromkeys(args.runtime)]

    if args.write_template:
        if len(runtimes) != 1:
            parser.error("--write-template writes one runtime's template: give one --runtime")
        handlers = find_handlers(runtimes[0])
        template = build_template(runtimes[0], handlers, load_expectations(runtimes[0].expectations)["aws_only"])
        args.write_template.write_text(yaml.safe_dump(template, sort_keys=False))
        print(f"wrote {args.write_template} ({len(handlers)} functions)")
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="perdure-conformance-"))
    requirements = load_extensions(TESTS_DIR).discover_requirements("all")
    runs = [plan_runtime(runtime, requirements, args, workdir / runtime.name) for runtime in runtimes]
    if any(run.runtime is NODE and run.to_run for run in runs):
        install_node_packages(args.node)

    perdure = find_perdure(args.perdure)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "conformance", "AWS_SECRET_ACCESS_KEY": "conformance"}
    env.pop("AWS_PROFILE", None)
    if args.node:
        env["PERDURE_NODE"] = args.node
    python_version = ".".join(map(str, sys.version_info[:3]))
    for run in runs:
        selected = len(run.to_run) + len(run.outcomes)
        skipped = f"; no handler file for {', '.join(run.skipped_suites)}" if run.skipped_suites else ""
        print(f"conformance: {run.runtime.name}: {len(run.to_run)} of {selected} selected cases to run{skipped}", flush=True)
    print(f"conformance: against perdure serve (harness on Python {python_version}; work folder {workdir})", flush=True)
    started_at = time.time()
    local = threading.local()
    serving = [run for run in runs if run.to_run]
    # One runtime after the other, each on a server of its own; --at-once runs their servers
    # side by side, sharing the worker processes: on two cores that starts worker processes
    # (a Node one is a Python process and a Node child) too slowly for the cases' timing.
    for group in [serving] if args.at_once else [[run] for run in serving]:
        workers = max(2, args.workers // len(group))
        with ExitStack() as servers:
            targets = {
                run.runtime.name: connect(servers.enter_context(perdure_server(perdure, run.template, run.workdir, workers, env)), run)
                for run in group
            }
            for target in targets.values():
                warm_up(target, min(args.parallel, workers))
            real_stdout, real_stderr = sys.stdout, sys.stderr
            sys.stdout = _PerThreadOutput(real_stdout, local)  # type: ignore[assignment]
            sys.stderr = _PerThreadOutput(real_stderr, local)  # type: ignore[assignment]
            try:
                _run_cases(group, targets, local, args.parallel, real_stdout, len(runs) > 1)
            finally:
                sys.stdout, sys.stderr = real_stdout, real_stderr

    elapsed = time.time() - started_at
    outcomes = sorted((o for run in runs for o in run.outcomes), key=lambda o: (case_key(o.case_id), o.runtime))
    print()
    print_table(outcomes, sys.stdout, len(runs) > 1)

    for o in outcomes:
        if o.errors and o.status in ("FAIL", "OPTIONAL-FAIL", "XFAIL"):
            print(f"\n--- {o.case_id}{f' ({o.runtime})' if len(runs) > 1 else ''} {o.status}: {o.note}")
            for error in o.errors[:12]:
                print(f"    {error[:400]}")
            if len(o.errors) > 12:
                print(f"    ... {len(o.errors) - 12} more")
            if args.verbose and o.output:
                print("    validator output:")
                for line in o.output.splitlines()[-40:]:
                    print(f"      {line}")

    print()
    for run in runs:
        _write_reports(run, requirements, started_at, elapsed)
        counts = summarize(run.outcomes)
        passed = counts.get("PASS", 0) + counts.get("XPASS", 0)
        print(
            f"conformance: {run.runtime.name}: {passed} of {len(requirements)} cases pass"
            + (f" ({len(run.outcomes)} selected)" if len(run.outcomes) != len(requirements) else "")
            + "; "
            + ", ".join(
                f"{counts[k]} {k}" for k in ("PASS", "FAIL", "XFAIL", "XPASS", "OPTIONAL-FAIL", "EXCLUDED", "UNCOVERED") if counts.get(k)
            )
        )
        if counts.get("XPASS"):
            print(f"conformance: {run.runtime.name}: XPASS cases now pass: remove them from expected_failures in {run.runtime.expectations.name}")
    print(f"conformance: {elapsed:.0f} s; histories and reports in {workdir}")
    return 1 if any(o.blocking for o in outcomes) else 0


def _run_cases(
    runs: list[RuntimeRun], targets: dict[str, CaseTarget], local: threading.local, parallel: int, out: Any, with_runtime: bool
) -> None:
    """Validates the cases of ``runs`` at once, adding each one's outcome to its runtime's run."""
    # Longest first: the cases that check logs wait about 20 s for them (as for CloudWatch's
    # ingestion), then those that suspend and resume; the quick synchronous ones fill in.
    items = sorted(
        ((run, cid, req) for run in runs for cid, req in run.to_run),
        key=lambda item: (_expected_length(item[2]), case_key(item[1]), item[0].runtime.name),
    )
    # The cases listed quiet run last, one at a time (beside another runtime's, --at-once): they
    # need the server to answer within a few seconds, which a loaded two-core machine may not.
    loud = [item for item in items if item[1] not in item[0].expectations["quiet"]]
    quiet = [item for item in items if item[1] in item[0].expectations["quiet"]]
    for phase, at_once in ((loud, parallel * len(runs)), (quiet, len(runs))):
        with ThreadPoolExecutor(max_workers=max(1, at_once), thread_name_prefix="case") as pool:
            futures = [
                pool.submit(
                    run_case, run.covered[cid], req, targets[run.runtime.name].invoker, targets[run.runtime.name].clients, run.workdir, local
                )
                for run, cid, req in phase
            ]
            for (run, cid, req), future in zip(phase, futures):
                result, seconds, text, crash = future.result()
                outcome = classify(cid, req.suite.name, result, seconds, text, crash, run.expectations["expected_failures"])
                outcome.runtime = run.runtime.name
                if cid in run.expectations["quiet"] and not outcome.note:
                    outcome.note = f"run last, by itself (quiet in {run.runtime.expectations.name})"
                run.outcomes.append(outcome)
                runtime = f" {run.runtime.name:<7}" if with_runtime else ""
                print(f"  {outcome.case_id:<6}{runtime} {outcome.status}", file=out, flush=True)


def _write_reports(run: RuntimeRun, requirements: dict[str, RequirementCase], started_at: float, elapsed: float) -> None:
    """The package's JSON and JUnit reports of a runtime's run, beside its histories."""
    statuses = {
        "PASS": ReportStatus.PASSED,
        "XPASS": ReportStatus.PASSED,
        "FAIL": ReportStatus.FAILED,
        "XFAIL": ReportStatus.FAILED,
        "OPTIONAL-FAIL": ReportStatus.OPTIONAL_FAILED,
        "EXCLUDED": ReportStatus.NOT_IMPLEMENTED,
        "UNCOVERED": ReportStatus.UNCOVERED,
    }
    report = Report(
        run=RunMetadata(
            name=f"perdure-{run.runtime.name}",
            template=str(run.template),
            region=REGION,
            language=run.runtime.language,
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_at)),
            duration_seconds=elapsed,
        )
    )
    for o in sorted(run.outcomes, key=lambda o: case_key(o.case_id)):
        description = None
        if o.case_id in requirements:
            data = load_yaml_file(str(requirements[o.case_id].path))
            description = data.get("description") if isinstance(data, dict) else None
        report.add(
            ReportEntry(
                id=o.case_id,
                suite=o.suite,
                status=statuses[o.status],
                function=logical_id(f"case_{o.case_id.replace('-', '_')}"),
                description=description,
                reason=o.note or None,
                errors=o.errors,
                duration_seconds=o.seconds,
            )
        )
    for fmt in ("json", "junit"):
        write_report(report, fmt, str(run.workdir / "report"))
    # Each case's status as this script sees it (the package's report has no XFAIL), for
    # test_conformance.py.
    outcomes = {o.case_id: {"status": o.status, "blocking": o.blocking, "note": o.note} for o in run.outcomes}
    (run.workdir / "outcomes.json").write_text(json.dumps(outcomes, indent=1, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
