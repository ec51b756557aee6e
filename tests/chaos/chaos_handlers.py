"""The chaos test's workload: a seed-style function and an AWS-SDK handler, both logging what they run.

Every unit of work that must not run again once recorded appends one line to the file named by
PERDURE_TEST_LOG as it begins: ``<time> <pid> <execution> <unit> [detail]``. A unit is a step
(named as in the history) or, seed style, the plain code between two ``ctx.checkpoint()``
statements (``segment-N``, up to the N-th checkpoint; ``segment-end``, from the last checkpoint
to the return). The test compares these lines with the execution's history.

Results depend only on the input and the callback's answer, so the test knows what each
execution must return (``expected_tally`` and ``expected_fulfil``).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, StepContext, durable_execution, durable_step
from aws_durable_execution_sdk_python.config import (
    Duration,
    JitterStrategy,
    MapConfig,
    StepConfig,
    WaitForCallbackConfig,
)
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy
from aws_durable_execution_sdk_python.types import WaitForCallbackContext

import perdure as durable

# A flaky step fails this many attempts before it succeeds; retries come after 1 s.
FAILURES = 2
SEED_RETRY = durable.RetryPolicy(max_attempts=FAILURES + 2, initial_delay=1, backoff=1, jitter=False)
AWS_RETRY = create_retry_strategy(
    RetryStrategyConfig(
        max_attempts=FAILURES + 2,
        initial_delay=Duration.from_seconds(1),
        backoff_rate=1,
        jitter_strategy=JitterStrategy.NONE,
    )
)
CALLBACK_TIMEOUT = timedelta(minutes=10)
# Some units take a moment, as real work does, so that a kill often lands while one runs.
WORK_SECONDS = 0.2


def mark(execution: str, unit: str, *detail: str) -> None:
    """Appends a line saying ``unit`` of ``execution`` begins to run."""
    line = " ".join((f"{time.time():.6f}", str(os.getpid()), execution, unit, *detail)) + "\n"
    # One write(2) to a file opened with O_APPEND lands whole and in order, whichever process
    # writes. No fsync: the test kills processes, not the machine, and the page cache survives.
    fd = os.open(os.environ["PERDURE_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def runs_logged(execution: str, unit: str) -> int:
    """How many times ``unit`` of ``execution`` was logged so far (this run included)."""
    with open(os.environ["PERDURE_TEST_LOG"], encoding="utf-8") as log:
        return sum(1 for line in log if line.split()[2:4] == [execution, unit])


class Flaky(Exception):
    """What a flaky step raises until it has failed ``FAILURES`` times."""


# -- seed style ---------------------------------------------------------------------------------


def double(execution: str, total: int) -> int:
    mark(execution, "double")
    time.sleep(WORK_SECONDS)
    return total * 2


def flaky_seed(execution: str) -> str:
    # A seed-style step is not told its attempt: it counts its own runs in the log instead. A
    # crash may add runs, so the step may fail fewer times than FAILURES; its result is the same.
    mark(execution, "flaky")
    if runs_logged(execution, "flaky") <= FAILURES:
        raise Flaky(f"{execution}: flaky fails this run")
    return f"steady-{execution}"


def square(execution: str, index: int, item: int) -> int:
    mark(execution, f"square-{index}")
    time.sleep(WORK_SECONDS)
    return item * item


def side(execution: str, label: str) -> str:
    mark(execution, f"side-{label}")
    return label.upper()


def announce(execution: str, callback_id: str) -> None:
    mark(execution, "announce", callback_id)


@durable.function(timeout=60)
def tally(ctx: durable.Context, event: dict[str, Any]) -> dict[str, Any]:
    """A loop of checkpointed rounds, then a step, a wait, a flaky step, a callback, map and parallel."""
    execution = event["name"]
    total = 0
    for i in range(event["rounds"]):
        mark(execution, f"segment-{i}")
        time.sleep(WORK_SECONDS / 4)
        total += (i + 1) * event["base"]
        ctx.checkpoint()
    doubled = ctx.step(double, execution, total, name="double")
    ctx.wait(seconds=1, name="pause")
    steady = ctx.step(flaky_seed, execution, name="flaky", retry=SEED_RETRY)
    answer = ctx.wait_for_callback(
        lambda callback_id: announce(execution, callback_id), name="approval", timeout=CALLBACK_TIMEOUT
    )
    squares = ctx.map(
        event["items"],
        lambda child, item, index: child.step(square, execution, index, item, name=f"square-{index}"),
        name="squares",
    )
    sides = ctx.parallel(
        [
            lambda child: child.step(side, execution, "left", name="side-left"),
            lambda child: child.step(side, execution, "right", name="side-right"),
        ],
        name="sides",
    )
    ctx.checkpoint()
    mark(execution, "segment-end")
    return {"total": total, "doubled": doubled, "steady": steady, "answer": answer, "squares": squares, "sides": sides}


def expected_tally(event: dict[str, Any], answer: Any) -> dict[str, Any]:
    total = sum((i + 1) * event["base"] for i in range(event["rounds"]))
    return {
        "total": total,
        "doubled": total * 2,
        "steady": f"steady-{event['name']}",
        "answer": answer,
        "squares": [item * item for item in event["items"]],
        "sides": ["LEFT", "RIGHT"],
    }


# -- AWS SDK style ------------------------------------------------------------------------------


@durable_step
def price(step_context: StepContext, execution: str, items: list[int]) -> int:
    mark(execution, "price")
    time.sleep(WORK_SECONDS)
    return sum(items) * 10


@durable_step
def pack(step_context: StepContext, execution: str, index: int, item: int) -> str:
    mark(execution, f"pack-{index}")
    time.sleep(WORK_SECONDS)
    return f"box-{item}"


@durable_step
def check(step_context: StepContext, execution: str, what: str) -> bool:
    mark(execution, f"check-{what}")
    return True


@durable_step
def flaky_aws(step_context: StepContext, execution: str) -> str:
    mark(execution, "flaky", f"attempt={step_context.attempt}")
    if step_context.attempt <= FAILURES:
        raise Flaky(f"{execution}: flaky fails attempt {step_context.attempt}")
    return f"steady-{execution}"


@durable_step
def receipt(step_context: StepContext, execution: str, total: int, answer: Any) -> str:
    mark(execution, "receipt")
    return f"{execution}:{total}:{answer}"


def _announce_aws(execution: str) -> Any:
    def submit(callback_id: str, context: WaitForCallbackContext) -> None:
        announce(execution, callback_id)

    return submit


@durable_execution
def fulfil(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """A step, a map, a parallel, a wait, a flaky step, a callback and a last step."""
    execution = event["name"]
    items = event["items"]
    total = context.step(price(execution, items), name="price")
    boxes: list[str] = context.map(
        items,
        lambda child, item, index, _: child.step(pack(execution, index, item), name=f"pack-{index}"),
        name="packing",
        config=MapConfig(max_concurrency=2),
    ).get_results()
    checks: list[bool] = context.parallel(
        [
            lambda child: child.step(check(execution, "stock"), name="check-stock"),
            lambda child: child.step(check(execution, "credit"), name="check-credit"),
        ],
        name="checks",
    ).get_results()
    context.wait(Duration.from_seconds(1), name="pause")
    steady = context.step(flaky_aws(execution), name="flaky", config=StepConfig(retry_strategy=AWS_RETRY))
    answer = context.wait_for_callback(
        _announce_aws(execution),
        name="approval",
        config=WaitForCallbackConfig(timeout=Duration.from_seconds(int(CALLBACK_TIMEOUT.total_seconds()))),
    )
    note = context.step(receipt(execution, total, answer), name="receipt")
    return {"total": total, "boxes": boxes, "checks": checks, "steady": steady, "answer": answer, "receipt": note}


def expected_fulfil(event: dict[str, Any], answer: Any) -> dict[str, Any]:
    total = sum(event["items"]) * 10
    return {
        "total": total,
        "boxes": [f"box-{item}" for item in event["items"]],
        "checks": [True, True],
        "steady": f"steady-{event['name']}",
        "answer": answer,
        "receipt": f"{event['name']}:{total}:{answer}",
    }


def runs_without_crash(function: str, event: dict[str, Any]) -> dict[str, int]:
    """How often each unit of an execution logs itself when nothing crashes."""
    indexes = range(len(event["items"]))
    if function == "tally":
        segments = [f"segment-{i}" for i in range(event["rounds"])]
        squares = [f"square-{i}" for i in indexes]
        once = [*segments, "double", "announce", *squares, "side-left", "side-right", "segment-end"]
    else:
        once = ["price", *(f"pack-{i}" for i in indexes), "check-stock", "check-credit", "announce", "receipt"]
    return {**dict.fromkeys(once, 1), "flaky": FAILURES + 1}
