"""A template function's Schedule and ScheduleV2 events become its schedules; a bad one is an
error, at load time, that names the template file, line, function and property."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from perdure.errors import InvalidParameterError
from perdure.protocol.schedules import CatchUp, ScheduleDefinition
from perdure.runtime.template import load_template

HEAD = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Reports:
    Type: AWS::Serverless::Function
    Properties:
      Handler: handler.run
      DurableConfig: {ExecutionTimeout: 3600}
      Events:
"""


def write(tmp_path: Path, events: str) -> Path:
    (tmp_path / "handler.py").write_text("def run(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent(events), " " * 8))
    return path


def test_schedule_and_schedule_v2_events_are_the_functions_schedules(tmp_path: Path) -> None:
    loaded = load_template(
        write(
            tmp_path,
            """\
            Nightly:
              Type: Schedule
              Properties:
                Schedule: rate(1 day)
                Input: '{"report": "nightly"}'
                Enabled: false
            Morning:
              Type: ScheduleV2
              Properties:
                ScheduleExpression: cron(0 9 ? * MON-FRI *)
                ScheduleExpressionTimezone: Europe/Berlin
                StartDate: "2026-03-01T00:00:00Z"
                EndDate: "2026-12-31T00:00:00+01:00"
                FlexibleTimeWindow: {Mode: FLEXIBLE, MaximumWindowInMinutes: 15}
                State: ENABLED
                CatchUp: all
                RoleArn: arn:aws:iam::123456789012:role/scheduler
                RetryPolicy: {MaximumRetryAttempts: 3}
            Upload:
              Type: S3
              Properties: {Bucket: uploads}
            """,
        )
    )
    (spec,) = loaded.functions
    assert spec.schedules == (
        ScheduleDefinition("Nightly", "rate(1 day)", input_payload='{"report": "nightly"}', enabled=False),
        ScheduleDefinition(
            "Morning",
            "cron(0 9 ? * MON-FRI *)",
            timezone="Europe/Berlin",
            start_time=1772323200.0,
            end_time=1798671600.0,
            window_minutes=15,
            catch_up=CatchUp.ALL,
        ),
    )
    # What is not applied is said, not dropped: the retry policy, and the S3 event.
    retry, upload = sorted(loaded.skipped)
    assert "line 26: Resource Reports: Events.Morning.Properties.RetryPolicy is not applied" in retry
    assert "Events.Upload (Type S3) is not applied" in upload


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        (
            "{Type: Schedule, Properties: {Schedule: 'cron(61 * * * ? *)'}}",
            "line 10: Resource Reports: Events.Bad.Properties.Schedule: the minutes field has 61, which is out of its range 0-59.",
        ),
        (
            "{Type: ScheduleV2, Properties: {ScheduleExpression: rate(0 minutes)}}",
            "line 10: Resource Reports: Events.Bad.Properties.ScheduleExpression: the rate's value is 0",
        ),
        (
            "{Type: ScheduleV2, Properties: {ScheduleExpression: rate(1 hour), ScheduleExpressionTimezone: Mars/Olympus}}",
            "Events.Bad.Properties.ScheduleExpressionTimezone: the time zone 'Mars/Olympus' is not one of the IANA time zones",
        ),
        (
            "{Type: Schedule, Properties: {Schedule: rate(1 hour), ScheduleExpressionTimezone: Europe/Berlin}}",
            "a Schedule event runs in UTC; for a time zone, make it Type: ScheduleV2",
        ),
        ("{Type: ScheduleV2, Properties: {}}", "line 10: Resource Reports: Events.Bad: ScheduleExpression is missing"),
        ("{Type: Schedule, Properties: {Schedule: rate(1 hour), Input: '{nope'}}", "Input must be a JSON text"),
        ("{Type: Schedule, Properties: {Schedule: rate(1 hour), CatchUp: some}}", "CatchUp must be latest, all or none"),
        ("{Type: Schedule, Properties: {Schedule: rate(1 hour), Schedul: x}}", "a Schedule event has no property Schedul"),
        (
            "{Type: ScheduleV2, Properties: {ScheduleExpression: rate(1 hour), FlexibleTimeWindow: {Mode: FLEXIBLE}}}",
            "FlexibleTimeWindow.MaximumWindowInMinutes must be 1 to 1440",
        ),
        (
            "{Type: ScheduleV2, Properties: {ScheduleExpression: rate(1 hour), StartDate: '2026-05-01T00:00:00Z', EndDate: '2026-04-01T00:00:00Z'}}",
            "EndDate must be after StartDate",
        ),
    ],
)
def test_a_bad_schedule_is_refused_at_load_time_naming_its_line(tmp_path: Path, properties: str, message: str) -> None:
    path = write(tmp_path, f"Good: {{Type: Schedule, Properties: {{Schedule: rate(1 hour)}}}}\nBad: {properties}\n")
    with pytest.raises(InvalidParameterError) as raised:
        load_template(path)
    assert raised.value.message.startswith(f"{path}")
    assert message in raised.value.message
