"""The chaos test's re-run rule on made-up histories: what it lets pass and what it catches."""

from __future__ import annotations

from typing import Any

from harness import Order
from verdict import Run, ran_after_record


def event(
    kind: str, when: float, name: str | None = None, sub_type: str | None = None, **details: Any
) -> dict[str, Any]:
    return {"EventType": kind, "EventTimestamp": when, "Name": name, "SubType": sub_type, f"{kind}Details": details}


def step(kind: str, when: float, name: str, attempt: int, delay: int | None = None) -> dict[str, Any]:
    retry: dict[str, int] = {"CurrentAttempt": attempt}
    if delay is not None:
        retry["NextAttemptDelaySeconds"] = delay
    return event(kind, when, name, "Step", RetryDetails=retry)


TALLY = Order("tally", "t", {"name": "t", "rounds": 2, "base": 1, "items": []})
TALLY_HISTORY = [
    event("ContextSucceeded", 10.0, "chaos_handlers.py:112", "Checkpoint"),
    event("ContextSucceeded", 11.0, "chaos_handlers.py:112", "Checkpoint"),
    step("StepSucceeded", 12.0, "double", 1),
    # An implicit checkpoint (before a wait) ends no segment of the loop.
    event("ContextSucceeded", 12.5, "chaos_handlers.py:115", "Checkpoint"),
    event("ExecutionSucceeded", 20.0),
]


def runs(*lines: tuple[float, str]) -> list[Run]:
    return [Run(when, 1, "t", unit, None) for when, unit in lines]


def attempts(*lines: tuple[float, int]) -> list[Run]:
    return [Run(when, 1, "t", "flaky", f"attempt={attempt}") for when, attempt in lines]


def test_runs_that_began_before_their_record_pass_however_many() -> None:
    crashed_twice = runs(
        (9.0, "segment-0"),
        (9.5, "segment-0"),
        (10.5, "segment-1"),
        (11.5, "double"),
        (11.9, "double"),
        (19.0, "segment-end"),
    )
    assert ran_after_record(TALLY, TALLY_HISTORY, crashed_twice) == []


def test_a_segment_run_after_its_checkpoint_was_recorded_is_caught() -> None:
    again = runs((9.0, "segment-0"), (10.5, "segment-1"), (11.0, "segment-1"), (11.5, "double"), (19.0, "segment-end"))
    assert ran_after_record(TALLY, TALLY_HISTORY, again) == [
        "t: segment-1 ran again at 11.000000 (pid 1), after it was recorded done at 11.000000"
    ]


def test_a_step_or_the_end_run_after_being_recorded_is_caught() -> None:
    again = runs(
        (9.0, "segment-0"),
        (10.5, "segment-1"),
        (11.5, "double"),
        (13.0, "double"),
        (19.0, "segment-end"),
        (21.0, "segment-end"),
    )
    assert ran_after_record(TALLY, TALLY_HISTORY, again) == [
        "t: double ran again at 13.000000 (pid 1), after it was recorded done at 12.000000",
        "t: segment-end ran again at 21.000000 (pid 1), after it was recorded done at 20.000000",
    ]


def test_a_unit_recorded_but_never_logged_is_caught() -> None:
    skipped = runs((9.0, "segment-0"), (10.5, "segment-1"), (19.0, "segment-end"))
    assert ran_after_record(TALLY, TALLY_HISTORY, skipped) == ["t: double was recorded done but never ran"]


def test_an_attempt_of_an_sdk_step_run_after_its_failure_was_recorded_is_caught() -> None:
    order = Order("fulfil", "t", {"name": "t", "items": []})
    history = [step("StepFailed", 5.0, "flaky", 1, delay=1), step("StepSucceeded", 7.0, "flaky", 2)]
    fine = attempts((4.0, 1), (4.5, 1), (6.0, 2))
    assert ran_after_record(order, history, fine) == []
    late = attempts((4.0, 1), (5.5, 1), (6.0, 2))
    assert ran_after_record(order, history, late) == [
        "t: flaky attempt=1 ran again at 5.500000 (pid 1), after it was recorded done at 5.000000"
    ]
