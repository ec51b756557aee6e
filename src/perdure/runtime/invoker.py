"""Runs one invocation of an AWS-SDK handler, talking to the service in-process (no HTTP hop)."""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_durable_execution_sdk_python.exceptions import (
    CheckpointError,
    DurableApiErrorCategory,
    GetExecutionStateError,
)
from aws_durable_execution_sdk_python.execution import (
    DurableExecutionInvocationInputWithClient,
    InitialExecutionState,
)
from aws_durable_execution_sdk_python.lambda_service import (
    CheckpointOutput,
    StateOutput,
)
from aws_durable_execution_sdk_python.lambda_service import (
    Operation as SdkOperation,
)
from aws_durable_execution_sdk_python.lambda_service import (
    OperationUpdate as SdkOperationUpdate,
)

from perdure.errors import PerdureError, StaleCheckpointTokenError, StoreUnavailableError
from perdure.protocol.approval_links import ApprovalLinks
from perdure.protocol.arns import function_arn_of
from perdure.protocol.records import (
    DEFAULT_MEMORY_MB,
    ErrorObject,
    Execution,
    Invocation,
    InvocationOutput,
    OperationUpdate,
    Page,
    Usage,
)
from perdure.protocol.snapshots import SnapshotCodec
from perdure.protocol.trace_context import stored
from perdure.runtime.registry import FunctionSpec
from perdure.sdk.engine import run_seed_invocation
from perdure.sdk.function import MARKER, DurableFunction
from perdure.sdk.journal import StoreUnavailable
from perdure.service.executions import DurableService
from perdure.service.invocations import LOST_INVOCATION, NO_USAGE, STORE_LOST_TYPE
from perdure.telemetry import tracing


def _classify(error: PerdureError) -> DurableApiErrorCategory:
    # The SDK retries the invocation on INVOCATION errors and fails the execution on EXECUTION
    # errors, as it does for Lambda's 5xx/stale-token and 4xx replies respectively.
    if isinstance(error, StaleCheckpointTokenError) or error.status >= 500:
        return DurableApiErrorCategory.INVOCATION
    return DurableApiErrorCategory.EXECUTION


class InProcessServiceClient:
    """The SDK's ``DurableServiceClient``, calling ``DurableService`` directly."""

    def __init__(self, service: DurableService) -> None:
        self.service = service
        # The last refusal of a store that could not be used (a full disk, a database
        # restarting), if any: the handler's crash that follows is the platform's doing.
        self.storage_full: StoreUnavailableError | None = None

    def checkpoint(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        updates: list[SdkOperationUpdate],
        client_token: str | None,
    ) -> CheckpointOutput:
        try:
            result = self.service.checkpoint(
                durable_execution_arn,
                checkpoint_token,
                [OperationUpdate.from_wire(u.to_dict()) for u in updates],
                client_token,
            )
        except PerdureError as error:
            if isinstance(error, StoreUnavailableError):
                self.storage_full = error
            raise CheckpointError(error.message, _classify(error)) from error
        return CheckpointOutput.from_dict(result.to_wire())

    def get_execution_state(
        self,
        durable_execution_arn: str,
        checkpoint_token: str,
        next_marker: str,
        max_items: int = 1000,
    ) -> StateOutput:
        try:
            page = self.service.get_state(durable_execution_arn, checkpoint_token, next_marker, max_items)
        except PerdureError as error:
            if isinstance(error, StoreUnavailableError):
                self.storage_full = error
            raise GetExecutionStateError(error.message, _classify(error)) from error
        return StateOutput(
            operations=[SdkOperation.from_dict(op.to_wire()) for op in page.items],
            next_marker=page.next_marker,
        )


@dataclass
class LambdaContext:
    """The ``context`` argument of a Lambda handler, as far as durable handlers use it."""

    aws_request_id: str
    function_name: str
    memory_limit_in_mb: str | None
    invoked_function_arn: str
    deadline: float
    function_version: str = "$LATEST"
    log_group_name: str | None = None
    log_stream_name: str | None = None
    tenant_id: str | None = None
    client_context: Any | None = None
    identity: Any | None = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))

    def log(self, msg: str) -> None:
        print(msg, end="")


def out_of_memory(spec: FunctionSpec) -> ErrorObject:
    """The error of an invocation that ran past its function's MemorySize."""
    return ErrorObject(
        message=(
            f"Function {spec.name!r} ran out of memory: it is limited to {spec.memory_mb} MB "
            "(MemorySize). Raise MemorySize in its configuration, or use less memory."
        ),
        type="Runtime.OutOfMemory",
    )


@dataclass(frozen=True)
class InvocationReport:
    """How one invocation ended, as seen from the worker."""

    output: InvocationOutput | None
    crash: ErrorObject | None = None
    out_of_memory: bool = False
    # Why the invocation is lost rather than failed: the store could not record its progress
    # (its disk was full), which is no fault of the handler's.
    lost: str | None = None
    usage: Usage = NO_USAGE


def record_report(service: DurableService, invocation: Invocation, report: InvocationReport) -> Execution | None:
    """Records how the invocation ended; returns the execution, or None if another invocation took it over."""
    if report.output is not None:
        return service.complete_invocation(invocation, report.output, report.usage)
    if report.lost is not None:
        # Lost to a store that could not record (a full disk, a database away): run at once, it
        # would be lost again; it runs after a pause, for as long as the store stays away.
        kind = LOST_INVOCATION.type if report.out_of_memory else STORE_LOST_TYPE
        error = ErrorObject(message=f"The invocation was lost: {report.lost}", type=kind)
        return service.fail_invocation(invocation, error, lost=True, usage=report.usage)
    return service.fail_invocation(invocation, report.crash or ErrorObject(message="crashed"), usage=report.usage)


def run_invocation(
    service: DurableService,
    spec: FunctionSpec,
    handler: Callable[..., Any],
    invocation: Invocation,
    codec: SnapshotCodec,
    links: ApprovalLinks | None = None,
) -> InvocationReport:
    """Runs the handler once and returns what it produced and used (the caller records it).

    A seed-style function's ``ctx.callback_link`` makes its links with ``links``.

    The CPU time counted is that of this thread: work the handler hands to threads of its own
    (a seed-style ``map``'s branches, an ``async`` function's operation threads) is not in it.
    """
    began, cpu = time.monotonic(), time.thread_time()
    report = _run(service, spec, handler, invocation, codec, links)
    usage = Usage(time.thread_time() - cpu, spec.memory_mb or DEFAULT_MEMORY_MB, time.monotonic() - began)
    return dataclasses.replace(report, usage=usage)


def _run(
    service: DurableService,
    spec: FunctionSpec,
    handler: Callable[..., Any],
    invocation: Invocation,
    codec: SnapshotCodec,
    links: ApprovalLinks | None,
) -> InvocationReport:
    durable = getattr(handler, MARKER, None)
    try:
        if isinstance(durable, DurableFunction):
            try:
                output = run_seed_invocation(
                    durable, service, invocation.execution_arn, invocation.checkpoint_token, codec,
                    trace=tracing.recorded(stored(invocation.trace_parent)), links=links, known=invocation.journal,
                )  # fmt: skip
            except MemoryError:
                return InvocationReport(None, out_of_memory(spec), out_of_memory=True)
            return _checked(spec, output)
        return _run_aws_handler(service, spec, handler, invocation)
    except StoreUnavailableError as error:
        return InvocationReport(None, lost=error.message)
    except StoreUnavailable as stop:
        return InvocationReport(None, lost=str(stop))


def _checked(spec: FunctionSpec, output: InvocationOutput) -> InvocationReport:
    if output.error is not None and "MemoryError" in (output.error.type or ""):
        return InvocationReport(InvocationOutput(output.status, error=out_of_memory(spec)), out_of_memory=True)
    return InvocationReport(output)


def _run_aws_handler(
    service: DurableService, spec: FunctionSpec, handler: Callable[..., Any], invocation: Invocation
) -> InvocationReport:
    if invocation.journal is not None:
        page = Page(list(invocation.journal), None)
    else:
        page = service.get_state(invocation.execution_arn, invocation.checkpoint_token)
    client = InProcessServiceClient(service)
    event = DurableExecutionInvocationInputWithClient(
        durable_execution_arn=invocation.execution_arn,
        checkpoint_token=invocation.checkpoint_token,
        initial_execution_state=InitialExecutionState(
            operations=[SdkOperation.from_dict(op.to_wire()) for op in page.items],
            next_marker=page.next_marker or "",
        ),
        service_client=client,
    )
    context = LambdaContext(
        aws_request_id=f"{invocation.execution_arn}#{invocation.invocation}",
        function_name=spec.name,
        memory_limit_in_mb=str(spec.memory_mb) if spec.memory_mb else None,
        invoked_function_arn=function_arn_of(invocation.execution_arn),
        deadline=time.time() + spec.timeout_seconds,
    )
    try:
        raw = handler(event, context)
    except MemoryError:
        return InvocationReport(None, out_of_memory(spec), out_of_memory=True)
    except Exception as error:
        if client.storage_full is not None:
            return InvocationReport(None, lost=client.storage_full.message)
        return InvocationReport(
            None,
            ErrorObject(
                message=str(error) or type(error).__name__,
                type=type(error).__name__,
                stack_trace=tuple(traceback.format_exception(error)),
            ),
        )
    if not isinstance(raw, dict) or raw.get("Status") not in ("SUCCEEDED", "FAILED", "PENDING"):
        return InvocationReport(
            None,
            ErrorObject(
                message=(
                    f"The handler of function {spec.name!r} returned {type(raw).__name__}, not a durable "
                    "invocation output. Decorate it with @durable_execution from "
                    "aws_durable_execution_sdk_python."
                ),
                type="Runtime.InvalidHandlerOutput",
            ),
        )
    return _checked(spec, InvocationOutput.from_wire(raw))
