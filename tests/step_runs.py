"""Reading the step log of tests/handlers/resilient.py, and checking it against the journal in PostgreSQL."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import psycopg


def step_runs(log: Path) -> dict[tuple[str, str], list[float]]:
    """When each (execution, step) began to run, every time it did."""
    runs: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    if log.exists():
        for line in log.read_text().splitlines():
            when, _pid, execution, step = line.split()
            runs[(execution, step)].append(float(when))
    return runs


def check_no_recorded_step_ran_again(
    conn: psycopg.Connection[Any], runs: dict[tuple[str, str], list[float]], steps: int
) -> dict[tuple[str, str], int]:
    """Asserts every execution succeeded with all its steps, and no step ran after its SUCCEED was recorded.

    Returns the steps that ran more than once (interrupted before their SUCCEED was recorded), with how often.
    """
    statuses = dict(conn.execute("SELECT status, count(*) FROM executions GROUP BY status").fetchall())
    assert set(statuses) == {"SUCCEEDED"}, statuses
    journal = conn.execute(
        "SELECT e.name, o.name, o.status, o.end_time FROM operations o"
        " JOIN executions e ON e.id = o.execution_id WHERE o.type = 'STEP'"
    ).fetchall()
    assert len(journal) == statuses["SUCCEEDED"] * steps, f"{len(journal)} steps recorded, not {steps} in each of {statuses}"
    assert {(execution, step) for execution, step, _, _ in journal} == set(runs), "a step ran that the journal lacks, or the reverse"
    for execution, step, status, end_time in journal:
        assert status == "SUCCEEDED", (execution, step, status)
        # Every run of a step began before its SUCCEED was recorded: none after.
        assert max(runs[(execution, step)]) <= end_time, f"{execution} step {step} ran again after it was recorded SUCCEEDED"
    return {key: len(times) for key, times in runs.items() if len(times) > 1}
