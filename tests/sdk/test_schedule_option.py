"""``@durable.function(schedule=...)``: the schedule a seed-style function declares, checked as it is decorated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import perdure as durable
from perdure.protocol.schedules import CatchUp, ScheduleDefinition
from perdure.runtime.registry import seed_functions
from perdure.sdk.function import MARKER


def options_of(fn: Any) -> Any:
    return getattr(fn, MARKER).options


def test_schedule_options_make_one_schedule() -> None:
    @durable.function(schedule="cron(0 9 * * ? *)", schedule_input={"report": "daily"}, schedule_timezone="Europe/Berlin", catch_up="all")
    def report(ctx: Any, event: Any) -> None:
        return None

    assert options_of(report).schedules == (
        ScheduleDefinition("schedule", "cron(0 9 * * ? *)", "Europe/Berlin", '{"report": "daily"}', catch_up=CatchUp.ALL),
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": "cron(61 * * * ? *)"}, "report: schedule='cron(61 * * * ? *)' cannot be used: the minutes field has 61"),
        ({"schedule": "rate(0 minutes)"}, "report: schedule='rate(0 minutes)' cannot be used: the rate's value is 0"),
        ({"schedule": "rate(1 hour)", "schedule_timezone": "Europe/Nowhere"}, "report: schedule_timezone='Europe/Nowhere' cannot be used"),
        ({"schedule": "rate(1 hour)", "catch_up": "some"}, "report: catch_up='some' is not one of latest, all or none"),
        ({"schedule_input": {"a": 1}}, "report: schedule_input is given without a schedule"),
        ({"schedule": "rate(1 hour)", "schedule_input": {1, 2}}, "report: schedule_input must be JSON-serializable"),
    ],
)
def test_bad_schedule_options_are_refused_when_decorating(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as raised:

        @durable.function(**options)
        def report(ctx: Any, event: Any) -> None:
            return None

    assert message in str(raised.value)


def test_a_served_functions_spec_carries_its_schedule(tmp_path: Path) -> None:
    app = tmp_path / "scheduled_app.py"
    app.write_text(
        "import perdure as durable\n\n"
        "@durable.function(schedule='rate(5 minutes)')\n"
        "def tick(ctx, event):\n    return event\n"
    )
    (spec,) = seed_functions(app)
    assert spec.schedules == (ScheduleDefinition("schedule", "rate(5 minutes)"),)
