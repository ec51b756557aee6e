"""What the dashboard's pages show, read from the service in one call per page."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from perdure.api.dashboard.timeline import Timeline, build_timeline
from perdure.protocol.limits import FunctionLimits
from perdure.protocol.queries import ExecutionPage, ExecutionQuery
from perdure.protocol.records import (
    ErrorObject,
    Event,
    Execution,
    ExecutionStatus,
    LogLine,
    Operation,
    OperationStatus,
    OperationType,
)
from perdure.protocol.schedules import Schedule
from perdure.protocol.versions import LATEST
from perdure.runtime.registry import FunctionSpec, Registry
from perdure.service import console, limits
from perdure.service.console import CallbackPage, CheckpointView, FunctionStats, OperationNode
from perdure.service.executions import DurableService
from perdure.service.schedules import Schedules

# Log lines shown on an execution's page; the rest are a command away.
LOG_LINES = 500
# History events read to list invocations.
HISTORY_EVENTS = 1000
# An ended execution's page keeps polling this long: the last invocation's log lines are
# written just after the execution ends (it re-renders only if some arrive).
SETTLE_SECONDS = 5.0
INBOX_PAGE = 50


class Poll(enum.Enum):
    """What a live execution page's poll finds: something changed, nothing yet, or nothing ever will."""

    CHANGED = "changed"
    SAME = "same"
    SETTLED = "settled"


@dataclass(frozen=True)
class Listing:
    """A page of executions, with the counts by status of every execution the filters match."""

    page: ExecutionPage
    counts: list[tuple[ExecutionStatus, int]]
    total: int
    now: float


@dataclass(frozen=True)
class InvocationView:
    number: int
    start: float
    end: float
    error: ErrorObject | None


@dataclass(frozen=True)
class ExecutionDetail:
    """Everything an execution's page shows."""

    execution: Execution
    tree: list[OperationNode]
    checkpoints: list[CheckpointView]
    waiting: list[Operation]
    invocations: list[InvocationView]
    logs: list[LogLine]
    more_logs: bool
    version: str
    now: float
    # The function's published versions, which "Restart from here" may carry it onto.
    code_versions: list[int]
    timeline: Timeline

    @property
    def live(self) -> bool:
        """Whether the page should keep polling."""
        end = self.execution.end_time
        return end is None or self.now - end < SETTLE_SECONDS


@dataclass(frozen=True)
class VersionRow:
    """One version of a function on the Functions page: its aliases and how many executions run it."""

    version: int
    latest: bool
    aliases: list[str]
    unfinished: int


@dataclass(frozen=True)
class FunctionRow:
    spec: FunctionSpec
    stats: FunctionStats
    default_retention_days: int
    versions: list[VersionRow]
    schedules: list[Schedule]
    # The limits that hold for it (issue 16), and its executions ready but waiting (for them or
    # for a worker): how many, and how long the oldest has waited (seconds; None: none waits).
    limits: FunctionLimits = FunctionLimits()
    waiting: int = 0
    oldest_wait: float | None = None


def _version(execution: Execution) -> str:
    return f"{execution.version}.{execution.event_count}.{execution.status.value}.{execution.end_time or 0}"


def _page_version(execution: Execution, logs: list[LogLine], more_logs: bool) -> str:
    """What a page shows, as a token: the execution's state, then the last log line it shows.

    A page that already shows ``LOG_LINES`` lines shows no newer ones, so its token leaves
    the log lines out.
    """
    shown = "all" if more_logs else str(logs[-1].seq if logs else 0)
    return f"{_version(execution)}|{shown}"


def _waiting(nodes: list[OperationNode]) -> list[Operation]:
    found: list[Operation] = []
    for node in nodes:
        op = node.operation
        if op.type is OperationType.CALLBACK and op.status is OperationStatus.STARTED and op.callback_id:
            found.append(op)
        found.extend(_waiting(node.children))
    return found


def _invocations(events: list[Event]) -> list[InvocationView]:
    ended = [event for event in events if event.event_type == "InvocationCompleted"]
    return [
        InvocationView(
            number=index,
            start=float(event.details.get("StartTimestamp", event.timestamp)),
            end=float(event.details.get("EndTimestamp", event.timestamp)),
            # InvocationCompleted keeps the error as ``{"Payload": ErrorObject}``.
            error=ErrorObject.from_wire((event.details.get("Error") or {}).get("Payload")),
        )
        for index, event in enumerate(ended, start=1)
    ]


class DashboardData:
    """Reads for the dashboard; every method runs in a worker thread (the store is blocking)."""

    def __init__(self, service: DurableService, registry: Registry) -> None:
        self.service = service
        self.registry = registry

    def listing(self, query: ExecutionQuery) -> Listing:
        page = self.service.list_executions(query)
        counted = console.count_by_status(self.service, ExecutionQuery(
            function_name=query.function_name,
            name_prefix=query.name_prefix,
            started_after=query.started_after,
            started_before=query.started_before,
        ))
        counts = [(status, counted.get(status, 0)) for status in ExecutionStatus if counted.get(status, 0)]
        return Listing(page, counts, sum(counted.values()), time.time())

    def poll(self, arn: str, since: str) -> Poll:
        """How the execution's page, rendered with the token ``since``, compares with the execution now."""
        execution = self.service.get_execution(arn)
        state, _, shown = since.partition("|")
        if state != _version(execution) or not (shown == "all" or shown.isdigit()):
            return Poll.CHANGED
        if shown != "all" and self.service.get_logs(arn, marker=shown, max_items=1).items:
            return Poll.CHANGED
        if execution.end_time is not None and time.time() - execution.end_time >= SETTLE_SECONDS:
            return Poll.SETTLED
        return Poll.SAME

    def execution_detail(self, arn: str) -> ExecutionDetail:
        execution = self.service.get_execution(arn)
        tree = console.operation_tree(self.service, arn)
        history = self.service.get_history(arn, max_items=HISTORY_EVENTS)
        logs = self.service.get_logs(arn, max_items=LOG_LINES)
        now = time.time()
        return ExecutionDetail(
            execution=execution,
            tree=tree,
            checkpoints=console.checkpoints(self.service, arn),
            waiting=_waiting(tree),
            invocations=_invocations(history.items),
            logs=logs.items,
            more_logs=logs.next_marker is not None,
            version=_page_version(execution, logs.items, logs.next_marker is not None),
            now=now,
            code_versions=[v.version for v in self.service.list_versions(execution.function_name)],
            timeline=build_timeline(execution, tree, history.items, now),
        )

    def execution(self, arn: str) -> Execution:
        return self.service.get_execution(arn)

    def inbox(self, marker: str | None, function_name: str | None) -> CallbackPage:
        return console.pending_callbacks(self.service, INBOX_PAGE, marker, function_name)

    def functions(self, since: float) -> list[FunctionRow]:
        stats = {row.function_name: row for row in console.function_stats(self.service, since)}
        schedules: dict[str, list[Schedule]] = {}
        for schedule in Schedules(self.service).every():
            schedules.setdefault(schedule.function_name, []).append(schedule)
        default_retention = self.service.config.retention_days
        stored = limits.every(self.service)
        live = {count.function_name: count for count in console.live_counts(self.service)}
        now = self.service.clock()
        rows = []
        for spec in self.registry:
            count = live.get(spec.name)
            oldest = count.oldest_ready_time if count else None
            rows.append(FunctionRow(
                spec,
                stats.get(spec.name) or FunctionStats(spec.name, 0, 0, 0, 0, 0),
                default_retention,
                self._versions(spec.name),
                schedules.get(spec.name, []),
                stored[spec.name].effective if spec.name in stored else FunctionLimits(),
                count.ready if count else 0,
                max(0.0, now - oldest) if oldest is not None else None,
            ))  # fmt: skip
        return rows

    def _versions(self, function_name: str) -> list[VersionRow]:
        """The function's versions, newest first."""
        latest = self.service.get_version(function_name, LATEST)
        unfinished = self.service.unfinished_by_version(function_name)
        aliases: dict[int, list[str]] = {}
        for alias in self.service.list_aliases(function_name):
            aliases.setdefault(alias.version, []).append(alias.name)
        newest = latest.version if latest else None
        return [
            VersionRow(v.version, v.version == newest, aliases.get(v.version, []), unfinished.get(v.version, 0))
            for v in reversed(self.service.list_versions(function_name))
        ]
