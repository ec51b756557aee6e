"""AWS's local runner's side of ``benchmarks/compare.py``.

``aws-durable-execution-sdk-python-testing``'s ``DurableFunctionTestRunner`` runs an AWS-SDK
handler in this process against its in-memory store (its default: nothing reaches a disk, so
nothing survives a crash), with the SDK's own fixed waits (nothing tunes them here). The handlers
are the ones Perdure runs (``benchmarks/handlers.py``, ``benchmarks/compare_handlers.py``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import compare_handlers
import handlers
from aws_durable_execution_sdk_python_testing.runner import DurableFunctionTestRunner


def seq(workflows: int, steps: int, warmup: int) -> dict[str, Any]:
    """(a) ``workflows`` workflows of ``steps`` steps, one at a time: ``runner.run`` each to its end."""
    with DurableFunctionTestRunner(handlers.steps, poll_interval=0.001) as runner:
        times = []
        for number in range(warmup + workflows):
            began = time.perf_counter()
            result = runner.run(input=json.dumps({"count": steps}), execution_name=f"run-{number}")
            elapsed = time.perf_counter() - began
            if result.status.value != "SUCCEEDED":
                raise RuntimeError(f"the testing runner's workflow ended {result.status}: {result.error}")
            if number >= warmup:
                times.append(elapsed)
        return {"times": times, "durability": "in memory (its default store): nothing is written to disk"}


def concurrent(workflows: int, steps: int) -> dict[str, Any]:
    """(b) ``workflows`` workflows started at once (``run_async``), until the last ends."""
    with DurableFunctionTestRunner(handlers.steps, poll_interval=0.001) as runner:
        runner.run(input=json.dumps({"count": steps}), execution_name="warm-up")
        began = time.perf_counter()
        arns = [runner.run_async(input=json.dumps({"count": steps}), execution_name=f"run-{n}") for n in range(workflows)]
        for arn in arns:
            runner.wait_for_result(arn, timeout=600)
        return {"seconds": time.perf_counter() - began, "workflows": workflows, "steps": steps}


def callback(count: int, warmup: int) -> dict[str, Any]:
    """(c) ``send_callback_success`` → the handler running again (its stamp), and → ``wait_for_result`` returning."""
    with DurableFunctionTestRunner(compare_handlers.callback_then_stamp, poll_interval=0.001) as runner:
        resumed, ended = [], []
        for number in range(warmup + count):
            arn = runner.run_async(input="{}", execution_name=f"run-{number}")
            callback_id = runner.wait_for_callback(arn, name="approval", timeout=60)
            time.sleep(0.01)  # let the first invocation end (it suspends after the callback is created)
            began_wall, began = time.time(), time.perf_counter()
            runner.send_callback_success(callback_id, b'"approved"')
            result = runner.wait_for_result(arn, timeout=60)
            end = time.perf_counter()
            if result.status.value != "SUCCEEDED" or result.result is None:
                raise RuntimeError(f"the testing runner's callback workflow ended {result.status}: {result.error}")
            if number >= warmup:
                resumed.append(json.loads(result.result)["resumed_at"] - began_wall)
                ended.append(end - began)
        return {"resumed": resumed, "ended": ended}


def version() -> str:
    from importlib import metadata

    return metadata.version("aws-durable-execution-sdk-python-testing")
