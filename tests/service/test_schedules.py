"""Schedules fire at the right instants, once each, with a moved clock: on SQLite and PostgreSQL,
by one service or by two on one database, across restarts, pauses and daylight saving changes."""

from __future__ import annotations

import datetime
import json
import threading
from collections.abc import Callable

import pytest

from perdure.errors import ConflictError
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.schedules import CatchUp, ScheduleDefinition
from perdure.service.executions import DurableService
from perdure.service.schedules import ScheduleNotFoundError, Schedules
from perdure.testing import SkippableClock

FUNCTION = "report"
Opener = Callable[..., DurableService]


def at(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def utc(moment: float) -> str:
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def started(service: DurableService) -> dict[str, float]:
    """The executions of FUNCTION by name, with their start times."""
    page = service.list_executions(ExecutionQuery(function_name=FUNCTION, limit=1000))
    return {e.name: e.start_time for e in page.executions}


def tick_names(ticks: list[str], schedule: str = "tick") -> set[str]:
    return {f"{schedule}-{t.replace('-', '').replace(':', '')}" for t in ticks}


def run_clock(clock: SkippableClock, until: float, step: float, *firers: Schedules) -> None:
    """Moves the clock by ``step`` up to ``until``, each server firing what is due at every step, at once."""
    while clock.now < until:
        clock.advance(step)
        threads = [threading.Thread(target=f.fire_due, args=([FUNCTION],)) for f in firers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@pytest.mark.parametrize("servers", [1, 2])
def test_rate_one_minute_fires_every_minute_once_each(open_service: Opener, clock: SkippableClock, servers: int) -> None:
    clock.now = at("2026-03-01T09:00:00+00:00")
    services = [open_service() for _ in range(servers)]
    for service in services:
        # Every server registers what its code declares; the second finds it registered.
        Schedules(service).register(FUNCTION, [ScheduleDefinition("tick", "rate(1 minute)")])
    run_clock(clock, at("2026-03-01T09:05:00+00:00"), 5, *(Schedules(s) for s in services))
    runs = started(services[0])
    expected = ["2026-03-01T09:01:00Z", "2026-03-01T09:02:00Z", "2026-03-01T09:03:00Z", "2026-03-01T09:04:00Z", "2026-03-01T09:05:00Z"]
    assert set(runs) == tick_names(expected)
    # Each started within one step of the clock after its tick.
    for name, start in runs.items():
        tick = at(datetime.datetime.strptime(name.removeprefix("tick-"), "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC).isoformat())
        assert 0 <= start - tick <= 5


# The ticks of cron(0/15 * * * ? *) from 00:00Z to 03:00Z on the days Europe/Berlin changes clocks,
# written out by hand. Spring (2026-03-29, 02:00 CET becomes 03:00 CEST): every 15 minutes of real
# time, as the wall clock skips only times no tick can be at. Fall (2026-10-25, 03:00 CEST becomes
# 02:00 CET): 02:00-02:45 happen twice on the wall clock and fire once, at their first occurrence,
# so nothing fires from 01:00Z to 01:45Z.
_EVERY_QUARTER = [f"{h:02d}:{m:02d}" for h in range(3) for m in (0, 15, 30, 45)] + ["03:00"]
_FALL_SECOND_PASS = ["01:00", "01:15", "01:30", "01:45"]


@pytest.mark.parametrize(
    ("day", "zone", "expected"),
    [
        ("2026-03-29", "UTC", _EVERY_QUARTER),
        ("2026-03-29", "Europe/Berlin", _EVERY_QUARTER),
        ("2026-10-25", "UTC", _EVERY_QUARTER),
        ("2026-10-25", "Europe/Berlin", [t for t in _EVERY_QUARTER if t not in _FALL_SECOND_PASS]),
    ],
)
def test_cron_every_quarter_hour_fires_once_at_each_instant_across_a_dst_change(
    open_service: Opener, clock: SkippableClock, day: str, zone: str, expected: list[str]
) -> None:
    clock.now = at(f"{day}T00:00:00+00:00") - 60
    first, second = open_service(), open_service()
    for service in (first, second):
        Schedules(service).register(FUNCTION, [ScheduleDefinition("tick", "cron(0/15 * * * ? *)", timezone=zone)])
    run_clock(clock, at(f"{day}T03:00:00+00:00"), 30, Schedules(first), Schedules(second))
    assert set(started(first)) == tick_names([f"{day}T{t}:00Z" for t in expected])


def test_a_daily_time_skipped_by_spring_forward_does_not_fire_that_day(open_service: Opener, clock: SkippableClock) -> None:
    service = open_service()
    clock.now = at("2026-03-27T12:00:00+00:00")
    Schedules(service).register(FUNCTION, [ScheduleDefinition("tick", "cron(30 2 * * ? *)", timezone="Europe/Berlin")])
    run_clock(clock, at("2026-03-31T12:00:00+00:00"), 300, Schedules(service))
    # 02:30 CET is 01:30Z, 02:30 CEST is 00:30Z; 2026-03-29 has no 02:30 in Berlin.
    assert set(started(service)) == tick_names(["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"])


def test_a_daily_time_repeated_by_fall_back_fires_once(open_service: Opener, clock: SkippableClock) -> None:
    service = open_service()
    clock.now = at("2026-10-24T12:00:00+00:00")
    Schedules(service).register(FUNCTION, [ScheduleDefinition("tick", "cron(30 2 * * ? *)", timezone="Europe/Berlin")])
    run_clock(clock, at("2026-10-26T12:00:00+00:00"), 300, Schedules(service))
    # 2026-10-25 02:30 happens at 00:30Z (CEST) and 01:30Z (CET): only the first fires.
    assert set(started(service)) == tick_names(["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"])


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        (CatchUp.LATEST, ["2026-03-01T09:11:00Z"]),
        (CatchUp.ALL, [f"2026-03-01T09:{m:02d}:00Z" for m in range(2, 12)]),
        (CatchUp.NONE, []),
    ],
)
def test_a_server_down_for_ten_ticks_fires_as_catch_up_says_on_start(
    open_service: Opener, clock: SkippableClock, catch_up: CatchUp, expected: list[str]
) -> None:
    definition = ScheduleDefinition("tick", "rate(1 minute)", catch_up=catch_up)
    clock.now = at("2026-03-01T09:00:00+00:00")
    before = open_service()
    Schedules(before).register(FUNCTION, [definition])
    run_clock(clock, at("2026-03-01T09:01:00+00:00"), 60, Schedules(before))
    assert set(started(before)) == tick_names(["2026-03-01T09:01:00Z"])
    before.close()
    # Down from 09:01:30 to 09:11:30: the ticks 09:02 to 09:11 fell due meanwhile.
    clock.now = at("2026-03-01T09:11:30+00:00")
    after = open_service()
    schedules = Schedules(after)
    schedules.register(FUNCTION, [definition])
    schedules.fire_due([FUNCTION])
    schedules.fire_due([FUNCTION])
    assert set(started(after)) == tick_names(["2026-03-01T09:01:00Z", *expected])
    # And on from there, on time.
    run_clock(clock, at("2026-03-01T09:12:00+00:00"), 30, schedules)
    assert tick_names(["2026-03-01T09:12:00Z"]) <= set(started(after))


def test_pausing_stops_the_ticks_and_resuming_skips_those_missed(open_service: Opener, clock: SkippableClock) -> None:
    service = open_service()
    schedules = Schedules(service)
    clock.now = at("2026-03-01T09:00:00+00:00")
    schedules.register(FUNCTION, [ScheduleDefinition("tick", "rate(1 minute)")])
    run_clock(clock, at("2026-03-01T09:01:00+00:00"), 30, schedules)
    paused = schedules.pause(FUNCTION, "tick")
    assert paused.state == "PAUSED" and paused.next_due is None
    run_clock(clock, at("2026-03-01T09:05:30+00:00"), 30, schedules)
    assert set(started(service)) == tick_names(["2026-03-01T09:01:00Z"])
    # A pause is kept by a server that registers the same schedule again (a restart).
    assert schedules.register(FUNCTION, [ScheduleDefinition("tick", "rate(1 minute)")])[0].state == "PAUSED"
    resumed = schedules.resume(FUNCTION, "tick")
    assert resumed.state == "ENABLED" and resumed.next_tick == at("2026-03-01T09:06:00+00:00")
    run_clock(clock, at("2026-03-01T09:06:00+00:00"), 30, schedules)
    assert set(started(service)) == tick_names(["2026-03-01T09:01:00Z", "2026-03-01T09:06:00Z"])


def test_a_tick_gets_the_scheduled_event_or_the_schedules_input(open_service: Opener, clock: SkippableClock) -> None:
    service = open_service()
    schedules = Schedules(service)
    clock.now = at("2026-03-01T08:59:00+00:00")
    schedules.register(
        FUNCTION,
        [ScheduleDefinition("plain", "cron(0 9 * * ? *)"), ScheduleDefinition("given", "cron(0 9 * * ? *)", input_payload='{"report": "daily"}')],
    )
    run_clock(clock, at("2026-03-01T09:00:30+00:00"), 30, schedules)
    page = service.list_executions(ExecutionQuery(function_name=FUNCTION))
    inputs = {e.name: json.loads(service.get_execution(e.arn).input_payload or "null") for e in page.executions}
    event = inputs["plain-20260301T090000Z"]
    assert (event["detail-type"], event["source"], event["time"]) == ("Scheduled Event", "aws.events", "2026-03-01T09:00:00Z")
    assert inputs["given-20260301T090000Z"] == {"report": "daily"}


def test_a_flexible_window_fires_each_tick_at_one_point_within_it(open_service: Opener, clock: SkippableClock) -> None:
    service = open_service()
    schedules = Schedules(service)
    clock.now = at("2026-03-01T08:00:00+00:00")
    definition = ScheduleDefinition("tick", "cron(0 9 * * ? *)", window_minutes=15)
    (schedule,) = schedules.register(FUNCTION, [definition])
    offset = definition.offset_seconds(FUNCTION)
    assert 0 <= offset < 15 * 60 and schedule.next_due == at("2026-03-01T09:00:00+00:00") + offset
    run_clock(clock, at("2026-03-01T09:00:00+00:00") + offset - 1, 1, schedules)
    assert started(service) == {}
    run_clock(clock, at("2026-03-01T09:00:00+00:00") + offset, 1, schedules)
    assert set(started(service)) == tick_names(["2026-03-01T09:00:00Z"])


def test_start_and_end_dates_bound_the_ticks(open_service: Opener, clock: SkippableClock) -> None:
    service = open_service()
    schedules = Schedules(service)
    clock.now = at("2026-03-01T09:00:00+00:00")
    definition = ScheduleDefinition(
        "tick", "rate(10 minutes)", start_time=at("2026-03-01T09:30:00+00:00"), end_time=at("2026-03-01T09:50:00+00:00")
    )
    schedules.register(FUNCTION, [definition])
    run_clock(clock, at("2026-03-01T10:30:00+00:00"), 60, schedules)
    assert set(started(service)) == tick_names(["2026-03-01T09:30:00Z", "2026-03-01T09:40:00Z", "2026-03-01T09:50:00Z"])
    assert schedules.every(FUNCTION)[0].next_due is None


def test_registering_again_replaces_changes_and_removes_schedules(open_service: Opener, clock: SkippableClock) -> None:
    service = open_service()
    schedules = Schedules(service)
    clock.now = at("2026-03-01T09:00:00+00:00")
    schedules.register(FUNCTION, [ScheduleDefinition("a", "rate(1 hour)"), ScheduleDefinition("b", "rate(1 hour)")])
    clock.advance(600)
    (changed,) = schedules.register(FUNCTION, [ScheduleDefinition("a", "rate(5 minutes)")])
    # A new expression ticks from when it was registered; b is gone.
    assert changed.next_tick == at("2026-03-01T09:15:00+00:00")
    assert [s.name for s in schedules.every()] == ["a"]
    (disabled,) = schedules.register(FUNCTION, [ScheduleDefinition("a", "rate(5 minutes)", enabled=False)])
    assert disabled.state == "DISABLED" and disabled.next_due is None
    with pytest.raises(ConflictError, match="disabled where it is declared"):
        schedules.resume(FUNCTION, "a")
    with pytest.raises(ScheduleNotFoundError, match="has no schedule named 'b'"):
        schedules.pause(FUNCTION, "b")


def test_trigger_starts_one_execution_now_and_leaves_the_ticks_be(open_service: Opener, clock: SkippableClock) -> None:
    service = open_service()
    schedules = Schedules(service)
    clock.now = at("2026-03-01T09:00:00+00:00")
    (before,) = schedules.register(FUNCTION, [ScheduleDefinition("tick", "rate(1 hour)", input_payload='{"n": 1}')])
    execution = schedules.trigger(FUNCTION, "tick")
    assert execution.name.startswith("tick-run-") and execution.input_payload == '{"n": 1}'
    assert schedules.every(FUNCTION) == [before]
