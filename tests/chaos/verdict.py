"""The chaos test's judgement: did each execution end right, and did anything run after it was recorded?

The rule for re-runs, exactly. A unit of work (a step, or seed style the code between two
``ctx.checkpoint()`` statements) logs a line as it begins, then runs, then its outcome is
recorded: the step's StepSucceeded, the checkpoint that closes the stretch of code, or for the
code after the last checkpoint the execution's end. The service stamps that record when it
applies it, on the same clock as the log. A crash after a unit began but before its record was
committed loses the record, so the unit runs again: allowed, however often. Once the record is
committed, every later invocation replays it instead. So: every run of a unit began before the
time its record carries. One that began after it ran again after it was recorded SUCCEEDED.

The record's time is taken before its transaction commits, never after, so a run that began
between the two would slip through; but no invocation can begin the unit in that window (the
one recording it holds the execution's lease), so the rule misses nothing that can happen.

For AWS-SDK steps the log line also names the attempt, and the same rule holds per attempt: an
attempt runs again only until its failure (StepFailed, with a retry) or success is recorded.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos_handlers import expected_fulfil, expected_tally, runs_without_crash
from harness import Order

# The step that runs a callback's submitter is named so in the history (by both engines).
SUBMITTER = "approval submitter"


@dataclass(frozen=True)
class Run:
    """One line of the side-effect log: a unit of an execution began at ``time``."""

    time: float
    pid: int
    execution: str
    unit: str
    attempt: str | None  # "attempt=N", for AWS-SDK steps that know it


def read_runs(path: Path) -> dict[str, list[Run]]:
    """The side-effect log's lines by execution, oldest first."""
    runs: dict[str, list[Run]] = defaultdict(list)
    if not path.exists():
        return runs
    for line in path.read_text().splitlines():
        when, pid, execution, unit, *detail = line.split()
        attempt = detail[0] if detail and detail[0].startswith("attempt=") else None
        runs[execution].append(Run(float(when), int(pid), execution, unit, attempt))
    return runs


@dataclass(frozen=True)
class Records:
    """When each unit of an execution was recorded done (``units``), and each attempt of its AWS-SDK steps."""

    units: dict[str, float]
    attempts: dict[str, float]  # "<step> attempt=N", as the log names an attempt


def recorded(order: Order, history: list[dict[str, Any]]) -> Records:
    """When each unit of the execution was recorded done, by the unit's name in the log.

    Steps are named as in the log (the submitter's step logs as ``announce``); seed style
    ``segment-N`` ends with the N-th checkpoint, which the loop's are (nothing before the loop
    checkpoints), and ``segment-end`` with the execution's end.
    """
    records = Records({}, {})
    checkpoints = 0
    for event in history:
        kind, name, when = event["EventType"], event.get("Name"), event["EventTimestamp"]
        if kind in ("StepSucceeded", "StepFailed"):
            retry = event[f"{kind}Details"]["RetryDetails"]
            unit = "announce" if name == SUBMITTER else str(name)
            if kind == "StepSucceeded" and "NextAttemptDelaySeconds" not in retry:
                records.units[unit] = when
            records.attempts[f"{unit} attempt={retry['CurrentAttempt']}"] = when
        elif kind == "ContextSucceeded" and event.get("SubType") == "Checkpoint":
            if checkpoints < order.event.get("rounds", 0):
                records.units[f"segment-{checkpoints}"] = when
            checkpoints += 1
        elif kind == "ExecutionSucceeded" and order.function == "tally":
            records.units["segment-end"] = when
    return records


def callback_seen(order: Order, history: list[dict[str, Any]]) -> bool:
    """Whether the execution's history has its callback succeed."""
    started = {
        event["Id"]
        for event in history
        if event["EventType"] == "CallbackStarted"
        and event["CallbackStartedDetails"]["CallbackId"] == order.callback_id
    }
    return any(event["EventType"] == "CallbackSucceeded" and event["Id"] in started for event in history)


def expected(order: Order) -> dict[str, Any]:
    if order.function == "tally":
        return expected_tally(order.event, json.loads(order.answer))
    # The AWS SDK hands a callback's result over as the JSON text it was sent as.
    return expected_fulfil(order.event, order.answer)


def judge(order: Order, history: list[dict[str, Any]], runs: list[Run]) -> list[str]:
    """What went wrong with one acknowledged execution, in sentences; empty if nothing did."""
    if order.status != "SUCCEEDED":
        error = order.description.get("Error", {})
        return [f"{order.name} ended {order.status}: {error.get('ErrorType')}: {error.get('ErrorMessage')}"]
    problems = []
    result = json.loads(order.description.get("Result") or "null")
    if result != expected(order):
        problems.append(f"{order.name} returned {result!r}, not {expected(order)!r}")
    if order.callback_acknowledged and not callback_seen(order, history):
        problems.append(
            f"{order.name}: callback {order.callback_id} was acknowledged but never succeeded in the history"
        )
    return problems + ran_after_record(order, history, runs)


def ran_after_record(order: Order, history: list[dict[str, Any]], runs: list[Run]) -> list[str]:
    """The runs that broke the rule of this module's docstring, and the units done that never ran."""
    problems = []
    records = recorded(order, history)
    for run in runs:
        checks = [(run.unit, records.units)]
        if run.attempt:
            checks.append((f"{run.unit} {run.attempt}", records.attempts))
        for unit, done in checks:
            if unit not in done:
                problems.append(
                    f"{order.name}: {unit} ran (at {run.time:.6f}, pid {run.pid}) but was never recorded done"
                )
            elif run.time >= done[unit]:
                problems.append(
                    f"{order.name}: {unit} ran again at {run.time:.6f} (pid {run.pid}), "
                    f"after it was recorded done at {done[unit]:.6f}"
                )
    for unit in sorted(set(records.units) - {run.unit for run in runs}):
        problems.append(f"{order.name}: {unit} was recorded done but never ran")
    return problems


def reruns(order: Order, runs: list[Run]) -> Counter[str]:
    """The units that ran more often than a run without crashes runs them, and by how much."""
    counts = Counter(run.unit for run in runs)
    counts.subtract(runs_without_crash(order.function, order.event))
    return +counts
