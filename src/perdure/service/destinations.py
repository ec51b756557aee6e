"""What an ended execution's destination is: the function to start, its name and its input.

A function's event invoke configuration (``perdure.protocol.destinations``) may name a function
for executions that succeed (OnSuccess) and one for those that end any other way (OnFailure:
FAILED, TIMED_OUT or STOPPED). ``journal.end_execution`` asks ``destination_for`` inside the
transaction that ends the execution and creates the execution it describes in that same
transaction: the end and the destination's start are committed together or not at all, so a
server killed right after the end finds the destination there when it starts again, never
missing and never twice. Its name comes from the ended execution's ID (``on-failure-<id>``),
so nothing can start it a second time.

The destination's input is Lambda's record of an asynchronous invocation's outcome, with the
durable execution's ARN in ``requestContext.durableExecutionArn``. A destination's own
executions may have destinations too; a chain of them (a cycle of functions whose destinations
name each other, say) stops after ``MAX_DEPTH``, as Lambda's recursive loop detection stops a
chain of invocations, and the execution whose destination is not started is logged.
"""

from __future__ import annotations

import datetime
import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from perdure.protocol.arns import execution_arn_for
from perdure.protocol.destinations import EventInvokeConfig
from perdure.protocol.records import ErrorObject, Execution, ExecutionStatus, Wire
from perdure.protocol.versions import LATEST, FunctionVersion
from perdure.service import versions
from perdure.service.versions import VersionNotFoundError
from perdure.store.base import Transaction

logger = logging.getLogger(__name__)

# Lambda stops a recursive loop after about 16 invocations: a chain of destinations stops there too.
MAX_DEPTH = 16

# requestContext.condition by how the execution ended. Lambda's asynchronous invocations know
# Success, RetriesExhausted and EventAgeExceeded; a durable execution can also time out or be stopped.
CONDITIONS = {
    ExecutionStatus.SUCCEEDED: "Success",
    ExecutionStatus.FAILED: "RetriesExhausted",
    ExecutionStatus.TIMED_OUT: "TimedOut",
    ExecutionStatus.STOPPED: "Stopped",
}
_PREFIXES = ("on-success-", "on-failure-")


@dataclass(frozen=True)
class DestinationStart:
    """The execution a destination is: what ``journal.create_execution`` is given to start it."""

    execution_id: str
    arn: str
    function_name: str
    qualifier: str
    name: str
    input_payload: str
    version: FunctionVersion | None
    # The first event's ``DestinationOf``: the ended execution, the condition, the chain's depth.
    origin: Wire


def configured(tx: Transaction, execution: Execution) -> EventInvokeConfig | None:
    """The configuration that applies to the execution: its qualifier's, else its function's ``$LATEST``'s."""
    stored = {found.qualifier: found for found in tx.invoke_configs(execution.function_name)}
    found = stored.get(execution.qualifier) or stored.get(LATEST)
    return found.config if found else None


def destination_for(tx: Transaction, execution: Execution, now: float) -> DestinationStart | None:
    """The destination execution to start for ``execution``, which has just ended; None if there is none."""
    config = configured(tx, execution)
    if config is None:
        return None
    succeeded = execution.status is ExecutionStatus.SUCCEEDED
    target = config.on_success if succeeded else config.on_failure
    if target is None:
        return None
    depth = _depth(tx, execution) + 1
    if depth > MAX_DEPTH:
        logger.warning(
            "%s ended %s, but its destination %s is not started: it is the %dth execution in a chain of "
            "destinations, and a chain stops after %d (do destinations name each other in a cycle?).",
            execution.arn, execution.status.value, target, depth, MAX_DEPTH,
        )  # fmt: skip
        return None
    function_name, _, qualifier = target.partition(":")
    qualifier = qualifier or LATEST
    name = f"{_PREFIXES[0] if succeeded else _PREFIXES[1]}{execution.id}"
    if tx.find_execution(function_name, name) is not None:
        return None
    execution_id = uuid.uuid4().hex
    # The ended execution's ARN begins with its region and account, which the destination shares.
    prefix = execution.arn.split(":function:", 1)[0]
    arn = execution_arn_for(f"{prefix}:function:{function_name}:{qualifier}", name, execution_id)
    condition = CONDITIONS[execution.status]
    return DestinationStart(
        execution_id=execution_id,
        arn=arn,
        function_name=function_name,
        qualifier=qualifier,
        name=name,
        input_payload=json.dumps(record(execution, condition, now)),
        version=_version(tx, execution, function_name, qualifier),
        origin={"DurableExecutionArn": execution.arn, "Condition": condition, "Depth": depth},
    )


def record(execution: Execution, condition: str, now: float) -> Wire:
    """Lambda's destination record of an ended execution, with its ARN as ``requestContext.durableExecutionArn``."""
    succeeded = execution.status is ExecutionStatus.SUCCEEDED
    response: Wire = {"statusCode": 200, "executedVersion": _executed_version(execution)}
    if not succeeded:
        response["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": datetime.datetime.fromtimestamp(now, datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": _request_id(execution.id),
            "functionArn": execution.function_arn,
            "condition": condition,
            "approximateInvokeCount": execution.invocation,
            "durableExecutionArn": execution.arn,
        },
        "requestPayload": _decoded(execution.input_payload),
        "responseContext": response,
        "responsePayload": _decoded(execution.result) if succeeded else _error_payload(execution),
    }


def _depth(tx: Transaction, execution: Execution) -> int:
    """How many destinations led to ``execution``: 0 unless a destination started it.

    Read from its first event (``DestinationOf``) only when its name says a destination may have started it.
    """
    if not execution.name.startswith(_PREFIXES):
        return 0
    first = tx.list_events(execution.id, 0, 1, False)
    origin = first[0].details.get("DestinationOf") if first else None
    depth = origin.get("Depth") if isinstance(origin, dict) else None
    return depth if isinstance(depth, int) else 0


def _version(tx: Transaction, ended: Execution, function_name: str, qualifier: str) -> FunctionVersion | None:
    """The version the destination runs, as an invoke of ``qualifier`` would; ``$LATEST``'s if it names none now."""
    try:
        return versions.resolve(tx, function_name, qualifier)
    except VersionNotFoundError as error:
        # The configuration was checked when it was set; the alias or version may have gone
        # since. Not starting the destination would lose the end, so it runs the newest code.
        logger.warning("The destination of %s runs %s's newest version: %s", ended.arn, function_name, error.message)
        return versions.current(tx, function_name)


def _executed_version(execution: Execution) -> str:
    """As Lambda's X-Amz-Executed-Version: ``$LATEST`` as such, a version or an alias as the version run."""
    if execution.qualifier != LATEST and execution.function_version:
        return str(execution.function_version)
    return execution.qualifier


def _request_id(execution_id: str) -> str:
    """The execution's ID, written as the UUID it is (Lambda's request IDs are UUIDs)."""
    try:
        return str(uuid.UUID(hex=execution_id))
    except ValueError:
        return execution_id


def _decoded(text: str | None) -> Any:
    """A payload as JSON inside the record; one that is not JSON as its text."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _error_payload(execution: Execution) -> Wire:
    """The error as a Lambda function's error response is written: errorMessage, errorType, stackTrace."""
    error = execution.error or ErrorObject()
    payload: Wire = {
        "errorMessage": error.message or f"The execution ended with status {execution.status.value}.",
        "errorType": error.type or execution.status.value,
    }
    if error.data is not None:
        payload["errorData"] = error.data
    if error.stack_trace:
        payload["stackTrace"] = list(error.stack_trace)
    return payload
