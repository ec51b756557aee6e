"""An execution's timeline as laid out for its page, from executions run by perdure.testing.

The functions are in timelines.py; their steps move the runner's clock, so each bar's length
is known. The same chart in the browser is checked in test_browser.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import timelines

from perdure.api.dashboard.render import page
from perdure.api.dashboard.timeline import (
    CHART_LEFT,
    CHART_RIGHT,
    MAX_ROWS,
    MIN_BAR,
    Bar,
    Row,
    Timeline,
    build_timeline,
)
from perdure.service import console
from perdure.testing import DurableTestRunner, Run


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[DurableTestRunner]:
    with DurableTestRunner(tmp_path) as runner:
        timelines.CLOCKS.append(runner.clock)
        yield runner


def _timeline(runner: DurableTestRunner, run: Run, events: bool = True) -> Timeline:
    execution = runner.service.get_execution(run.arn)
    history = runner.service.get_history(run.arn, max_items=1000).items if events else []
    return build_timeline(execution, console.operation_tree(runner.service, run.arn), history, runner.clock.now)


def _row(timeline: Timeline, label: str) -> Row:
    return next(row for row in timeline.rows if row.label == label)


def _end(bar: Bar) -> float:
    return bar.x + bar.width


def _shapes(runner: DurableTestRunner, key: str, sleep: int = 5, approve: bool = True) -> Run:
    run = runner.run(timelines.shapes, {"key": key, "sleep": sleep})
    runner.clock.advance(30)
    if approve:
        runner.succeed_callback(run.callbacks[0], {"approved": True})
        run = runner.resume(run)
    return run


def test_rows_are_the_invocations_then_each_operation_under_its_parent(runner: DurableTestRunner) -> None:
    timeline = _timeline(runner, _shapes(runner, "rows"))
    shown = [(row.depth, row.label, row.kind) for row in timeline.rows if "Checkpoint" not in row.kind]
    assert shown == [
        (0, "Invocations", "INVOCATIONS"),
        (0, "fetch", "STEP · Step"),
        (0, "cool down", "WAIT · Wait"),
        (0, "pack", "CONTEXT · Map"),
        (1, "pack-0", "CONTEXT · MapIteration"),
        (2, "pack S", "STEP · Step"),
        (1, "pack-1", "CONTEXT · MapIteration"),
        (2, "pack M", "STEP · Step"),
        (1, "pack-2", "CONTEXT · MapIteration"),
        (2, "pack L", "STEP · Step"),
        (0, "sign-off", "CONTEXT · WaitForCallback"),
        (1, "sign-off", "CALLBACK · Callback"),
        (1, "sign-off submitter", "STEP · Step"),
    ]
    # Each row sits under the one before it; the invocations are bars on one lane.
    assert [row.y for row in timeline.rows] == sorted(row.y for row in timeline.rows)
    assert len(timeline.rows[0].bars) == 4
    assert timeline.left_out == 0


def test_a_retried_step_shows_each_attempt_and_the_delay_between(runner: DurableTestRunner) -> None:
    fetch = _row(_timeline(runner, _shapes(runner, "retried")), "fetch")
    assert [(bar.kind, bar.style) for bar in fetch.bars] == [("attempt", "bad"), ("delay", "held"), ("attempt", "ok")]
    first, delay, second = fetch.bars
    assert "attempt 1: FAILED (ConnectionError: The service did not answer for retried" in first.title
    assert "retry delay of 1 s after attempt 1" in delay.title
    assert "attempt 2: SUCCEEDED" in second.title
    # The second attempt starts where the one-second delay ends.
    assert delay.x == first.x and second.x == pytest.approx(_end(delay), abs=0.2)


def test_a_wait_and_a_callback_are_as_long_as_they_lasted(runner: DurableTestRunner) -> None:
    timeline = _timeline(runner, _shapes(runner, "waited"))
    assert timeline.gaps == []
    # 1 s of retry delay, 5 s of wait, 30 s until the callback's approval: 36 s to scale.
    per_second = (CHART_RIGHT - CHART_LEFT) / 36
    wait = _row(timeline, "cool down").bars[0]
    assert wait.width == pytest.approx(5 * per_second, abs=0.5)
    callback = next(row for row in timeline.rows if row.kind == "CALLBACK · Callback").bars[0]
    assert callback.width == pytest.approx(30 * per_second, abs=0.5)
    assert _end(callback) == pytest.approx(CHART_RIGHT, abs=0.1)
    # The steps took no time on the test's clock: they are as narrow as a bar can be.
    assert _row(timeline, "pack S").bars[0].width == MIN_BAR
    assert wait.width > 20 * MIN_BAR


def test_the_branches_of_a_map_are_sibling_rows_over_the_same_time(runner: DurableTestRunner) -> None:
    timeline = _timeline(runner, _shapes(runner, "branches"))
    branches = [row for row in timeline.rows if row.kind == "CONTEXT · MapIteration"]
    assert [(row.label, row.depth) for row in branches] == [("pack-0", 1), ("pack-1", 1), ("pack-2", 1)]
    # They ran at once, in threads: their bars overlap.
    assert max(row.bars[0].x for row in branches) < min(_end(row.bars[0]) for row in branches)
    assert {bar.kind for row in branches for bar in row.bars} == {"group"}
    assert _row(timeline, "pack").bars[0].kind == "group"


def test_a_two_day_sleep_is_cut_from_the_axis_so_50_ms_invocations_stay_wide(runner: DurableTestRunner) -> None:
    timeline = _timeline(runner, runner.run(timelines.sleeper, {"work": 0.05, "sleep": 2 * 86400}))
    [gap] = timeline.gaps
    assert gap.label == "2 d"
    invocations = timeline.rows[0].bars
    assert len(invocations) == 2
    # Without the cut each would be 0.0002 units wide; with it, they share the chart.
    assert all(bar.width > 300 for bar in invocations)
    assert _end(invocations[0]) <= gap.x and invocations[1].x >= gap.x + gap.width
    sleep = _row(timeline, "sleep").bars[0]
    assert sleep.x <= gap.x and _end(sleep) >= gap.x + gap.width
    # Ticks after the gap count from its end.
    assert [tick.label for tick in timeline.ticks] == ["0", "20 ms", "40 ms", "+20 ms", "+40 ms"]


@pytest.mark.parametrize(
    ("work", "sleep", "labels"),
    [
        (0.05, 1, ["0", "200 ms", "400 ms", "600 ms", "800 ms", "1 s"]),
        (1, 40, ["0", "5 s", "10 s", "15 s", "20 s", "25 s", "30 s", "35 s", "40 s"]),
        (180, 300, ["0", "2 min", "4 min", "6 min", "8 min", "10 min"]),
        (7200, 3 * 3600, ["0", "1 h", "2 h", "3 h", "4 h", "5 h", "6 h", "7 h"]),
        (2 * 86400, 3 * 86400, ["0", "1 d", "2 d", "3 d", "4 d", "5 d", "6 d", "7 d"]),
    ],
)
def test_ticks_read_in_the_unit_of_the_span(
    runner: DurableTestRunner, work: float, sleep: int, labels: list[str]
) -> None:
    # Work fills a quarter of the time or more, so even a long sleep stays to scale.
    timeline = _timeline(runner, runner.run(timelines.sleeper, {"work": work, "sleep": sleep}))
    assert timeline.gaps == []
    assert [tick.label for tick in timeline.ticks] == labels


def test_what_still_goes_on_is_drawn_open_to_now(runner: DurableTestRunner) -> None:
    run = _shapes(runner, "open", approve=False)
    assert run.status == "RUNNING"
    timeline = _timeline(runner, run)
    callback = next(row for row in timeline.rows if row.kind == "CALLBACK · Callback").bars[0]
    assert callback.open and callback.style == "live"
    assert _end(callback) == pytest.approx(CHART_RIGHT, abs=0.1)
    assert "still going" in callback.title and "waiting for callback" in callback.title
    assert _row(timeline, "sign-off").bars[0].open
    assert not any(bar.open for bar in _row(timeline, "cool down").bars)


def test_what_a_stopped_execution_left_unfinished_is_drawn_stopped(runner: DurableTestRunner) -> None:
    run = _shapes(runner, "stopped", approve=False)
    runner.service.stop_execution(run.arn)
    timeline = _timeline(runner, run)
    callback = next(row for row in timeline.rows if row.kind == "CALLBACK · Callback").bars[0]
    assert (callback.style, callback.open) == ("off", False)


def test_a_step_past_the_events_read_is_drawn_from_its_record(runner: DurableTestRunner) -> None:
    # Real time that passes before the step (a loaded machine) does not move its start: the
    # step is stamped by the service's clock, as the rest of its record is.
    time.sleep(0.5)
    timeline = _timeline(runner, _shapes(runner, "no-events"), events=False)
    [fetch] = _row(timeline, "fetch").bars
    assert (fetch.kind, fetch.style) == ("span", "ok")
    assert "SUCCEEDED after 2 attempts" in fetch.title
    assert fetch.width == pytest.approx((CHART_RIGHT - CHART_LEFT) / 36, abs=0.5)


def test_thousands_of_operations_are_cut_to_the_first_rows_with_a_note(runner: DurableTestRunner) -> None:
    run = runner.run(timelines.wide, {"items": 200})
    timeline = _timeline(runner, run)
    # The map, then 200 branches with a step each.
    assert (timeline.operations, timeline.left_out) == (401, 401 - MAX_ROWS)
    assert len(timeline.rows) == 1 + MAX_ROWS
    html = page("_timeline.html", d=SimpleNamespace(timeline=timeline)).body.decode()
    assert len(re.findall(r'<g class="row"', html)) == 1 + MAX_ROWS
    assert f"The first {MAX_ROWS} of 401 operations are drawn" in html
    assert len(html) < 200_000


def test_the_chart_is_drawn_with_each_bars_title(runner: DurableTestRunner) -> None:
    timeline = _timeline(runner, _shapes(runner, "drawn"))
    html = page("_timeline.html", d=SimpleNamespace(timeline=timeline)).body.decode()
    assert html.count('class="bar attempt bad"') == 1
    assert html.count('class="bar delay held"') == 1
    assert 'class="bar span ok"' in html
    fetch = _row(timeline, "fetch").bars[0]
    assert f'x="{fetch.x}" y="{fetch.y}" width="{fetch.width}"' in html
    assert "fetch · STEP · Step\nattempt 1: FAILED" in html
    assert "Nothing has run yet." not in html
