"""What the console and the retention purge ask the store for, and the records they get back."""

from __future__ import annotations

from dataclasses import dataclass

from perdure.protocol.records import Execution, ExecutionStatus, Operation


@dataclass(frozen=True)
class ExecutionQuery:
    """Filters and paging for listing executions, newest first unless ``oldest_first``."""

    function_name: str | None = None
    # Only executions that run this version of the function.
    function_version: int | None = None
    statuses: tuple[ExecutionStatus, ...] = ()
    name: str | None = None
    # Executions whose name starts with this (the dashboard's search box).
    name_prefix: str | None = None
    started_after: float | None = None
    started_before: float | None = None
    marker: str | None = None
    limit: int = 50
    oldest_first: bool = False


@dataclass(frozen=True)
class OpenCallback:
    """A callback still open in an execution that has not ended, and where it stands in it."""

    execution_arn: str
    execution_name: str
    function_name: str
    operation: Operation
    # The context it was created in (a seed-style wait_for_callback makes one), if any.
    parent_name: str | None
    parent_sub_type: str | None
    # How many seed-style checkpoints the execution recorded before it, and the last one's name.
    checkpoints_before: int
    checkpoint_name: str | None


@dataclass(frozen=True)
class StoredResult:
    """An operation's result as its row holds it: inline, or the key of the blob it is in."""

    execution_id: str
    execution_arn: str
    operation_id: str
    inline: str | None
    blob_key: str | None


@dataclass(frozen=True)
class ResultScan:
    """A stretch of operations walked in key order, and the results in it that matched (``Transaction.results_with_prefix``)."""

    results: list[StoredResult]
    # The ``(execution_id, operation_id)`` of the stretch's last operation, to go on after; None at the end.
    last: tuple[str, str] | None


@dataclass(frozen=True)
class StatusCount:
    """How many executions of a function have a status, and what their invocations used in all."""

    function_name: str
    status: ExecutionStatus
    count: int
    compute_seconds: float = 0.0
    cpu_seconds: float = 0.0
    gb_seconds: float = 0.0


@dataclass(frozen=True)
class LiveCount:
    """A function's executions that have not ended, by what they are doing (``ConsoleQueries.live_counts``)."""

    function_name: str
    # Held by an invocation; ready to run but not yet leased (and the earliest ready time of
    # those); paused; and the rest, suspended (waiting for a timer, a callback, a child).
    running: int
    ready: int
    oldest_ready_time: float | None
    paused: int
    suspended: int


@dataclass(frozen=True)
class ExecutionPage:
    executions: list[Execution]
    next_marker: str | None


@dataclass(frozen=True)
class ExpiredExecution:
    """A finished execution whose retention period ran out, as a purge reports it."""

    id: str
    arn: str
    function_name: str
    name: str
    status: ExecutionStatus
    end_time: float
    # The period that applied: the execution's own, or the default the purge was given.
    retention_days: int


@dataclass(frozen=True)
class PurgeBatch:
    """What one ``Store.purge_expired`` call removed, or would remove in a dry run."""

    executions: list[ExpiredExecution]
    # Keys of the blobs that only these executions referenced, sorted.
    blobs: list[str]
