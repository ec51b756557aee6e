"""AWS schedule expressions: what they mean, and the errors that name what is wrong in one."""

from __future__ import annotations

import datetime

import pytest

from perdure.protocol.schedule_expressions import ScheduleExpressionError, parse_expression


def at(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def ticks(expression: str, start: str, count: int, zone: str = "UTC") -> list[str]:
    parsed = parse_expression(expression, zone)
    moment: float | None = at(start)
    found = []
    for _ in range(count):
        assert moment is not None
        moment = parsed.next_after(moment, anchor=at(start))
        if moment is None:
            break
        found.append(datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%d %H:%M"))
    return found


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # Day-of-week is 1-7 for SUN-SAT: 2-6 is Monday to Friday (2026-03-06 is a Friday).
        ("cron(0 9 ? * 2-6 *)", ["2026-03-06 09:00", "2026-03-09 09:00", "2026-03-10 09:00"]),
        ("cron(0 9 ? * MON-FRI *)", ["2026-03-06 09:00", "2026-03-09 09:00", "2026-03-10 09:00"]),
        # L: the month's last day; 6L: its last Friday; L alone in day-of-week: Saturday.
        ("cron(0 9 L * ? *)", ["2026-03-31 09:00", "2026-04-30 09:00", "2026-05-31 09:00"]),
        ("cron(0 9 ? * 6L *)", ["2026-03-27 09:00", "2026-04-24 09:00", "2026-05-29 09:00"]),
        ("cron(0 9 ? * L *)", ["2026-03-07 09:00", "2026-03-14 09:00", "2026-03-21 09:00"]),
        # 15W: the weekday nearest the 15th (2026-03-15 is a Sunday, 2026-08-15 a Saturday).
        ("cron(0 9 15W 3,8 ? *)", ["2026-03-16 09:00", "2026-08-14 09:00", "2027-03-15 09:00"]),
        # 2#1: the month's first Monday.
        ("cron(0 9 ? * 2#1 *)", ["2026-04-06 09:00", "2026-05-04 09:00", "2026-06-01 09:00"]),
        # a/n is from a, every n (as AWS and Quartz read it); the year field limits the years.
        ("cron(10/20 8 1 1 ? 2027-2028)", ["2027-01-01 08:10", "2027-01-01 08:30", "2027-01-01 08:50", "2028-01-01 08:10"]),
        ("cron(0 0 1 JAN ? 2030)", ["2030-01-01 00:00"]),
        ("rate(5 minutes)", ["2026-03-06 00:05", "2026-03-06 00:10", "2026-03-06 00:15"]),
        ("rate(1 day)", ["2026-03-07 00:00", "2026-03-08 00:00"]),
        ("at(2026-03-08T10:00:00)", ["2026-03-08 10:00"]),
    ],
)
def test_expressions_tick_as_aws_reads_them(expression: str, expected: list[str]) -> None:
    found = ticks(expression, "2026-03-06T00:00:00+00:00", len(expected) + 1)
    assert found[: len(expected)] == expected
    # A one-time schedule, and a cron of one year, end there.
    if expression.startswith("at(") or "2030" in expression:
        assert found == expected


def test_times_are_wall_clock_times_in_the_zone() -> None:
    assert ticks("cron(0 9 * * ? *)", "2026-03-28T00:00:00+00:00", 3, "Europe/Berlin") == [
        "2026-03-28 08:00",  # CET, UTC+1
        "2026-03-29 07:00",  # CEST, UTC+2
        "2026-03-30 07:00",
    ]
    assert ticks("at(2026-07-01T09:00:00)", "2026-03-01T00:00:00+00:00", 2, "America/New_York") == ["2026-07-01 13:00"]


def test_the_latest_tick_in_the_repeated_hour_is_its_first_pass() -> None:
    parsed = parse_expression("cron(0/15 * * * ? *)", "Europe/Berlin")
    # 02:20 CET on 2026-10-25 is the wall clock's second 02:20: the first pass's 02:45 CEST came last.
    latest = parsed.latest_at_or_before(at("2026-10-25T02:20:00+01:00"), 0)
    assert latest == at("2026-10-25T02:45:00+02:00")
    assert parsed.next_after(at("2026-10-25T02:20:00+01:00"), 0) == at("2026-10-25T03:00:00+01:00")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(61 * * * ? *)", "the minutes field has 61, which is out of its range 0-59"),
        ("rate(0 minutes)", "the rate's value is 0; it must be at least 1"),
        ("rate(1 minutes)", "the rate's unit must be 'minute' for the value 1"),
        ("rate(5 weeks)", "the rate's unit is 'weeks'; write minute(s), hour(s) or day(s)"),
        ("cron(0 9 * * * *)", "exactly one of the day-of-month and day-of-week fields must be ?"),
        ("cron(0 9 ? * 0 *)", "the day-of-week field has 0, which is out of its range 1-7"),
        ("cron(0 9 * * ?)", "a cron expression has 6 fields"),
        ("cron(0 9 ? * 2#6 *)", "after # write which week of the month, 1 to 5"),
        ("cron(0 9 * * ? 2200)", "the year field has 2200, which is out of its range 1970-2199"),
        ("cron(0 25-23 * * ? *)", "the hours field has 25, which is out of its range 0-23"),
        ("cron(0 9 5-1 * ? *)", "the range '5-1', whose start is after its end"),
        ("cron(0 9 L * ? L)", "?, L, W and # are for the day-of-month and day-of-week fields"),
        ("cron(0 9 LW * ? *)", "'LW', which AWS's syntax does not have"),
        ("cron(0 9 * XYZ ? *)", "the month field has 'XYZ', which is not a number or a name (JAN-DEC)"),
        ("at(2026-02-30T09:00:00)", "is not a date and time that exists"),
        ("every day", "a schedule is rate(value unit)"),
    ],
)
def test_malformed_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(ScheduleExpressionError) as raised:
        parse_expression(expression)
    assert message in raised.value.message


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ScheduleExpressionError, match="the time zone 'Europe/Atlantis' is not one of the IANA time zones"):
        parse_expression("rate(1 minute)", "Europe/Atlantis")
