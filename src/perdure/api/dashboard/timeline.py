"""An execution's timeline: its invocations and operations as bars on one time axis (a Gantt chart).

``build_timeline`` lays the chart out in the SVG's own units (``WIDTH`` wide), so the template only
draws the rows, bars, ticks and gaps it is given. A step's attempts are read from the history
(StepStarted, then StepFailed or StepSucceeded with its ``RetryDetails``), with the delay
before each retry drawn between them; operations that have not ended run on to now, open.

An execution that sleeps for two days between two invocations of 50 ms would be two specks
on a linear axis, so the longest idle stretches (no invocation running) are cut out of the
axis and drawn as gaps of ``GAP_WIDTH``, each labelled with how long it was.
"""

from __future__ import annotations

import datetime
import math
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise

from perdure.api.dashboard.render import duration, status_class
from perdure.protocol.records import Event, Execution, Operation, OperationStatus, OperationType, Wire
from perdure.service.console import OperationNode

# The chart's coordinate system: labels on the left, the time axis from CHART_LEFT to CHART_RIGHT.
WIDTH = 1000.0
CHART_LEFT = 230.0
CHART_RIGHT = 990.0
AXIS_HEIGHT = 26.0
ROW_HEIGHT = 20.0
INDENT = 12.0
# About the width of one character of a label (11-unit sans-serif), to cut labels to the column.
CHAR_WIDTH = 6.2
# An operation of a millisecond is still a bar one can see and point at.
MIN_BAR = 3.0
GAP_WIDTH = 44.0
# Ticks stand at least this far apart.
TICK_SPACING = 90.0
# Rows of operations drawn at most: thousands of them would make a page of megabytes that
# nobody reads as a chart. The Operations list below the chart has them all.
MAX_ROWS = 150
# An idle stretch is cut from the axis only when it is this long, takes more than GAP_SHARE
# of the time still drawn to scale, and the invocations fill less than BUSY_SHARE of that time:
# a 2 s wait between steps stays to scale, a two-day sleep between two short invocations does not.
MIN_GAP_SECONDS = 60.0
GAP_SHARE = 0.2
BUSY_SHARE = 0.25
MAX_GAPS = 5
# The shortest time the axis spans, so that an execution of one instant still has a scale.
MIN_SCALE_SECONDS = 0.001
# Tick steps in seconds, from a millisecond to a year.
_STEPS = (
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800,
    3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000, 7776000, 31536000,
)
_STEP_ENDED = ("StepFailed", "StepSucceeded")


@dataclass(frozen=True)
class Bar:
    """One stretch of time on a row, in chart units.

    ``kind`` is ``invocation``, ``attempt`` (of a step), ``delay`` (before a step's retry),
    ``group`` (a context with operations inside) or ``span`` (any other operation); ``style``
    is a status class (ok, bad, off, held, live); ``open`` marks one still going when the page
    was drawn.
    """

    x: float
    y: float
    width: float
    height: float
    kind: str
    style: str
    open: bool
    title: str


@dataclass(frozen=True)
class Row:
    """A lane of the chart: the invocations, or one operation (``depth`` levels inside its contexts)."""

    label: str
    kind: str
    depth: int
    y: float
    bars: list[Bar]
    operation_id: str | None = None

    @property
    def height(self) -> float:
        return ROW_HEIGHT

    @property
    def label_x(self) -> float:
        return 4 + self.depth * INDENT

    @property
    def shown_label(self) -> str:
        """The label cut to the label column, with an ellipsis."""
        room = max(4, int((CHART_LEFT - 8 - self.label_x) / CHAR_WIDTH))
        return self.label if len(self.label) <= room else self.label[: room - 1] + "…"


@dataclass(frozen=True)
class Tick:
    x: float
    label: str

    @property
    def anchor(self) -> str:
        """Where the label sits on its tick: a tick at the right edge has it to its left, inside the chart."""
        return "end" if self.x > WIDTH - 30 else "middle"


@dataclass(frozen=True)
class Gap:
    """An idle stretch cut out of the axis: drawn ``width`` wide at ``x``, ``label`` says how long it was."""

    x: float
    width: float
    label: str


@dataclass(frozen=True)
class Timeline:
    """The laid-out chart; ``left_out`` operations did not fit in ``MAX_ROWS`` rows."""

    rows: list[Row]
    ticks: list[Tick]
    gaps: list[Gap]
    height: float
    operations: int
    left_out: int

    @property
    def width(self) -> float:
        return WIDTH


# -- the axis -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Piece:
    """A stretch of time drawn from ``left`` to ``right``; ``cut`` when it is an idle gap drawn short."""

    start: float
    end: float
    left: float
    right: float
    cut: bool


class _Scale:
    """Maps epoch seconds to x: to scale, except for the gaps cut from it."""

    def __init__(self, pieces: list[_Piece]) -> None:
        self.pieces = pieces
        self._starts = [piece.start for piece in pieces]

    def x(self, moment: float) -> float:
        piece = self.pieces[max(0, bisect_right(self._starts, moment) - 1)]
        span = piece.end - piece.start
        share = (min(max(moment, piece.start), piece.end) - piece.start) / span if span > 0 else 0.0
        return piece.left + (piece.right - piece.left) * share


def _merged(busy: list[tuple[float, float]]) -> list[tuple[float, float]]:
    merged: list[tuple[float, float]] = []
    for start, end in sorted(busy):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _cuts(start: float, end: float, busy: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The idle stretches to cut from the axis, in time order."""
    merged = _merged([(start, start), (end, end), *busy])
    idle = [(a[1], b[0]) for a, b in pairwise(merged) if b[0] > a[1]]
    busy_seconds = sum(b - a for a, b in merged)
    remaining = end - start
    chosen: list[tuple[float, float]] = []
    for gap in sorted(idle, key=lambda gap: gap[1] - gap[0], reverse=True)[:MAX_GAPS]:
        length = gap[1] - gap[0]
        if length < MIN_GAP_SECONDS or length <= GAP_SHARE * remaining or busy_seconds >= BUSY_SHARE * remaining:
            break
        if remaining - length < MIN_SCALE_SECONDS:
            # Nothing would be left to scale: an execution that has only been idle so far.
            continue
        chosen.append(gap)
        remaining -= length
    return sorted(chosen)


def _pieces(start: float, end: float, cuts: list[tuple[float, float]]) -> list[_Piece]:
    to_scale = (end - start) - sum(b - a for a, b in cuts)
    per_second = (CHART_RIGHT - CHART_LEFT - GAP_WIDTH * len(cuts)) / to_scale
    pieces: list[_Piece] = []
    left, moment = CHART_LEFT, start
    for cut_start, cut_end in [*cuts, (end, end)]:
        right = left + (cut_start - moment) * per_second
        pieces.append(_Piece(moment, cut_start, left, right, cut=False))
        if cut_end > cut_start:
            pieces.append(_Piece(cut_start, cut_end, right, right + GAP_WIDTH, cut=True))
        left, moment = right + GAP_WIDTH, cut_end
    return pieces


def _ticks(pieces: list[_Piece]) -> list[Tick]:
    """Ticks at round offsets: from the start, and after a gap from the gap's end (``+10 ms``)."""
    ticks: list[Tick] = []
    last = -math.inf
    after_gap = False
    for piece in pieces:
        if piece.cut:
            # The gap's label stands where the next piece's zero would.
            after_gap = True
            last = piece.right
            continue
        width = piece.right - piece.left
        if width <= 0:
            continue
        per_second = width / (piece.end - piece.start)
        step = next((s for s in _STEPS if s * per_second >= TICK_SPACING), _STEPS[-1])
        for k in range(int((piece.end - piece.start) / step) + 1):
            x = piece.left + k * step * per_second
            if x - last < TICK_SPACING * 0.6:
                continue
            offset = duration(k * step)
            ticks.append(Tick(round(x, 1), f"+{offset}" if after_gap else ("0" if k == 0 else offset)))
            last = x
    return ticks


# -- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Span:
    """A stretch of an operation's time before it is placed: ``end`` None while it goes on."""

    start: float
    end: float | None
    kind: str
    style: str
    what: str


def _clock(moment: float) -> str:
    """``2026-11-27 11:43:29.250 UTC``: to the millisecond, as bars are often that short."""
    when = datetime.datetime.fromtimestamp(moment, tz=datetime.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S.") + f"{when.microsecond // 1000:03d} UTC"


def _kind(op: Operation) -> str:
    return f"{op.type.value} · {op.sub_type}" if op.sub_type else op.type.value


def _error_text(details: Wire) -> str:
    error = details.get("Error")
    payload = error.get("Payload") if isinstance(error, dict) else None
    if not isinstance(payload, dict):
        return ""
    return ": ".join(str(part) for part in (payload.get("ErrorType"), payload.get("ErrorMessage")) if part)


def _attempts(op: Operation, events: list[Event], since: float) -> list[_Span]:
    """A step's attempts, and the delays before its retries, from its history events.

    The seed-style SDK sends a step's START with its outcome, so an attempt often starts and
    ends at one moment; an attempt with no StepStarted starts when the delay before it ended.
    """
    spans: list[_Span] = []
    started: float | None = None
    ready = op.start_time if op.start_time is not None else since
    for event in events:
        if event.event_type == "StepStarted":
            started = event.timestamp
            continue
        if event.event_type not in _STEP_ENDED:
            continue
        retry = event.details.get("RetryDetails")
        retry = retry if isinstance(retry, dict) else {}
        number = retry.get("CurrentAttempt", sum(span.kind == "attempt" for span in spans) + 1)
        delay = retry.get("NextAttemptDelaySeconds")
        failed = event.event_type == "StepFailed"
        # A polled condition that is not met yet "succeeds" with a retry (AWS's history has it
        # so): an attempt that did not finish the operation, not a success.
        if failed:
            style, outcome = "bad", f"FAILED ({_error_text(event.details)})"
        elif delay is not None:
            style, outcome = "held", "not done yet"
        else:
            style, outcome = "ok", "SUCCEEDED"
        begun = started if started is not None else min(ready, event.timestamp)
        spans.append(_Span(begun, event.timestamp, "attempt", style, f"attempt {number}: {outcome}"))
        started = None
        if isinstance(delay, int | float):
            ready = event.timestamp + delay
            what = f"retry delay of {duration(delay)} after attempt {number}"
            spans.append(_Span(event.timestamp, ready, "delay", "held", what))
    if started is not None:
        spans.append(_Span(started, None, "attempt", "live", f"attempt {op.attempt + 1}: running"))
    elif spans and spans[-1].kind == "delay" and op.status is OperationStatus.PENDING:
        last = spans.pop()
        spans.append(_Span(last.start, None, "delay", "held", f"{last.what}, next attempt at {_clock(ready)}"))
    return spans


def _spans(op: Operation, events: list[Event], since: float) -> list[_Span]:
    """The spans of an operation's row; ``since`` stands in for a start time it does not have."""
    if op.type is OperationType.STEP and events:
        found = _attempts(op, events, since)
        if found:
            return found
    start = op.start_time if op.start_time is not None else since
    style = status_class(op.status)
    what = op.status.value
    if op.type is OperationType.STEP and op.attempt > 1:
        what += f" after {op.attempt} attempts"
    if op.type is OperationType.WAIT and op.scheduled_end_time and not op.status.is_terminal:
        what += f", wakes at {_clock(op.scheduled_end_time)}"
    if op.type is OperationType.CALLBACK and not op.status.is_terminal:
        what += f", waiting for callback {op.callback_id}"
    return [_Span(start, op.end_time if op.status.is_terminal else None, "span", style, what)]


class _Layout:
    """Places spans on rows, one row under the other."""

    def __init__(self, scale: _Scale, horizon: float, still_running: bool) -> None:
        self.scale = scale
        self.horizon = horizon
        self.still_running = still_running
        self.rows: list[Row] = []

    @property
    def y(self) -> float:
        return AXIS_HEIGHT + len(self.rows) * ROW_HEIGHT

    def bar(self, span: _Span, heading: str | None, group: bool) -> Bar:
        end = span.end if span.end is not None else self.horizon
        is_open = span.end is None and self.still_running
        # Something the execution left unfinished when it ended is drawn to its end, stopped.
        style = span.style if span.end is not None or self.still_running else "off"
        left = self.scale.x(span.start)
        width = max(self.scale.x(end) - left, MIN_BAR)
        left = min(left, CHART_RIGHT - width)
        kind = "group" if group else span.kind
        height = 6.0 if kind in ("group", "delay") else 12.0
        took = f"took {duration(end - span.start)}" if not is_open else f"{duration(end - span.start)} so far"
        ending = _clock(end) if not is_open else "still going"
        title = "\n".join(line for line in (heading, span.what, f"{_clock(span.start)} → {ending}", took) if line)
        return Bar(
            round(left, 1), round(self.y + (ROW_HEIGHT - height) / 2, 1), round(width, 1), height,
            kind, style, is_open, title,
        )

    def add(self, label: str, kind: str, depth: int, spans: list[_Span], group: bool, op_id: str | None) -> None:
        # An invocation's bar says which invocation it is; an operation's names the operation first.
        heading = f"{label} · {kind}" if op_id is not None else None
        bars = [self.bar(span, heading, group) for span in spans]
        self.rows.append(Row(label, kind, depth, self.y, bars, op_id))


def _walk(nodes: list[OperationNode], depth: int = 0) -> Iterator[tuple[OperationNode, int]]:
    for node in nodes:
        yield node, depth
        yield from _walk(node.children, depth + 1)


def _invocations(events: list[Event], execution: Execution) -> list[_Span]:
    spans = []
    ended = [event for event in events if event.event_type == "InvocationCompleted"]
    for number, event in enumerate(ended, start=1):
        start = float(event.details.get("StartTimestamp", event.timestamp))
        end = float(event.details.get("EndTimestamp", event.timestamp))
        error = _error_text(event.details)
        what = f"invocation {number}: {error or 'no error'}"
        spans.append(_Span(start, end, "invocation", "bad" if error else "ok", what))
    # An invocation holds the execution's lease while it runs; its event is written when it ends.
    running = execution.invocation_start
    if execution.lease_owner is not None and running is not None and not execution.status.is_terminal:
        spans.append(_Span(running, None, "invocation", "live", f"invocation {len(spans) + 1}: running"))
    return spans


def build_timeline(execution: Execution, tree: list[OperationNode], events: list[Event], now: float) -> Timeline:
    """Lays out the timeline of ``execution`` from its operation tree and history events as of ``now``.

    ``events`` may be the first page of a long history: a step whose events are not in it is
    drawn from its recorded start and end, with its attempt count.
    """
    walked = list(_walk(tree))
    drawn = walked[:MAX_ROWS]
    by_operation: dict[str, list[Event]] = {}
    for event in events:
        if event.operation_id and event.event_type.startswith("Step"):
            by_operation.setdefault(event.operation_id, []).append(event)
    invocations = _invocations(events, execution)
    since = execution.start_time
    spans = [
        (node, depth, _spans(node.operation, by_operation.get(node.operation.id, []), since))
        for node, depth in drawn
    ]

    still_running = not execution.status.is_terminal
    ended = execution.end_time if execution.end_time is not None else now
    horizon = max([ended, *(s.end for s in invocations if s.end is not None)])
    # Operations a restart copied keep the times they had in the execution it restarted, earlier.
    start = min([since, *(s.start for _, _, found in spans for s in found)])
    # Operations starting or ending split idle stretches as invocations do, in case the
    # invocations are past the events read.
    moments = [moment for _, _, found in spans for s in found for moment in (s.start, s.end) if moment is not None]
    busy = [(s.start, s.end if s.end is not None else horizon) for s in invocations]
    busy += [(moment, moment) for moment in moments if moment <= horizon]
    end = max(horizon, start + MIN_SCALE_SECONDS)
    pieces = _pieces(start, end, _cuts(start, end, busy))

    layout = _Layout(_Scale(pieces), horizon, still_running)
    if invocations:
        layout.add("Invocations", "INVOCATIONS", 0, invocations, group=False, op_id=None)
    for node, depth, found in spans:
        op = node.operation
        group = op.type is OperationType.CONTEXT and bool(node.children)
        layout.add(op.name or op.id, _kind(op), depth, found, group, op.id)
    gaps = [Gap(round(p.left, 1), GAP_WIDTH, duration(p.end - p.start)) for p in pieces if p.cut]
    return Timeline(
        rows=layout.rows,
        ticks=_ticks(pieces),
        gaps=gaps,
        height=layout.y + 6,
        operations=len(walked),
        left_out=len(walked) - len(drawn),
    )
