"""Benchmark: 10-step workflows per second, Node.js handlers beside Python AWS-SDK handlers.

Starts one `perdure serve` (SQLite, ``--workers 2``) with two functions of the same workflow:
``workflows.tenSteps`` of tests/handlers/node (``@aws/durable-execution-sdk-js``, ten trivial
``context.step`` calls) and ``handlers.steps`` of benchmarks/ (``aws-durable-execution-sdk-python``,
the same ten steps). For each, in alternating rounds:

- **one at a time**: ``--sequential`` synchronous invokes (boto3 ``RequestResponse``, answered
  when the execution ends), one after another;
- **started at once**: ``--burst`` executions started with ``InvocationType=Event``, timed from
  the first start until every one has SUCCEEDED (polled with GetDurableExecution).

Node 22 and the Node handlers' packages come from tests/node_env.py (installed on first use).

    python benchmarks/node_steps.py [--sequential 50] [--burst 100] [--rounds 2] [--write docs/benchmarks.md]

``--write`` replaces the block between the ``node-results`` markers of that file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from node_env import node22, node_handlers
from sequential_steps import machine, write
from servers import Server, lambda_client

START_MARK, END_MARK = "<!-- node-results:start -->", "<!-- node-results:end -->"
TEMPLATE = """
Resources:
  NodeSteps:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: node-steps
      Runtime: nodejs22.x
      CodeUri: {node}
      Handler: workflows.tenSteps
      DurableConfig: {{ExecutionTimeout: 3600}}
  PythonSteps:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: python-steps
      Runtime: python3.13
      CodeUri: {python}
      Handler: handlers.steps
      DurableConfig: {{ExecutionTimeout: 3600}}
"""
FUNCTIONS = {"Node.js (@aws/durable-execution-sdk-js)": "node-steps", "Python (aws-durable-execution-sdk-python)": "python-steps"}


def one_at_a_time(client: Any, function: str, count: int) -> float:
    """Workflows per second, each invoked synchronously after the previous one ended."""
    began = time.monotonic()
    for _ in range(count):
        reply = client.invoke(FunctionName=function, Payload=json.dumps({"count": 10}).encode())
        body = json.loads(reply["Payload"].read())
        if reply.get("FunctionError") or body in (None, {}):
            raise RuntimeError(f"{function} failed: {body}")
    return count / (time.monotonic() - began)


def at_once(client: Any, function: str, count: int) -> float:
    """Workflows per second, all started at once and timed until the last one SUCCEEDED."""
    began = time.monotonic()
    arns = [
        client.invoke(FunctionName=function, InvocationType="Event", Payload=json.dumps({"count": 10}).encode())["DurableExecutionArn"]
        for _ in range(count)
    ]
    waiting = set(arns)
    while waiting:
        for arn in list(waiting):
            status = client.get_durable_execution(DurableExecutionArn=arn)["Status"]
            if status == "SUCCEEDED":
                waiting.discard(arn)
            elif status != "RUNNING":
                raise RuntimeError(f"{arn} ended {status}")
        time.sleep(0.05)
    return count / (time.monotonic() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequential", type=int, default=50, help="workflows run one at a time per round (default 50)")
    parser.add_argument("--burst", type=int, default=100, help="workflows started at once per round (default 100)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two runtimes (default 2)")
    parser.add_argument("--write", type=Path, default=None, help="Markdown file to put the results in")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="perdure-node-bench-"))
    template = folder / "template.yaml"
    template.write_text(TEMPLATE.format(node=node_handlers(), python=ROOT / "benchmarks"))
    env = {**os.environ, "PERDURE_NODE": node22(), "PYTHONPATH": str(ROOT / "src")}
    server = Server(["--template", str(template), "--workers", "2"], folder, env, start_timeout=180)
    server.start()
    results: dict[str, dict[str, list[float]]] = {label: {"sequential": [], "burst": []} for label in FUNCTIONS}
    try:
        client = lambda_client(server.endpoint)
        for function in FUNCTIONS.values():
            one_at_a_time(client, function, 5)  # warm: processes started, handlers imported
        for _ in range(args.rounds):
            for label, function in FUNCTIONS.items():
                results[label]["sequential"].append(one_at_a_time(client, function, args.sequential))
                results[label]["burst"].append(at_once(client, function, args.burst))
    finally:
        server.stop()
    node_version = subprocess.run([node22(), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    lines = [
        START_MARK,
        (
            f"Measured {datetime.date.today().isoformat()}: {args.rounds} alternating rounds of {args.sequential} workflows "
            f"one at a time and {args.burst} started at once per runtime, on one `perdure serve --workers 2` (SQLite); "
            "figures are medians over the rounds."
        ),
        "",
        "| | |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in machine(folder / "perdure.db", load_before)),
        f"| Node.js | {node_version} |",
        "",
        "| Handler | One at a time: workflows/s | Started at once: workflows/s |",
        "|---|---:|---:|",
        *(
            f"| {label} | {statistics.median(rates['sequential']):.1f} | {statistics.median(rates['burst']):.1f} |"
            for label, rates in results.items()
        ),
        END_MARK,
    ]
    block = "\n".join(lines) + "\n"
    print(block)
    if args.write:
        write(args.write, block, START_MARK, END_MARK)


if __name__ == "__main__":
    main()
