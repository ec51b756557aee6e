"""The Lambda-compatible routes that boto3's ``lambda`` client calls (API versions 2015-03-31 and 2025-12-01)."""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.concurrency_routes import listing_extras
from perdure.api.http import BadRequest, Route, json_body, json_response
from perdure.api.waiting import CompletionWaiter
from perdure.errors import InvalidParameterError, PayloadTooLargeError
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import ErrorObject, Execution, ExecutionStatus, updates_from_wire
from perdure.protocol.trace_context import parse_traceparent, parse_xray
from perdure.protocol.versions import LATEST
from perdure.runtime.registry import Registry, parse_function_name
from perdure.service.executions import DurableService, StartRequest
from perdure.service.validation import (
    TENANT_ID,
    TENANT_ID_RULE,
    check_json_depth,
    check_qualifier,
    check_text,
    parse_count,
)


def _flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    if value is None:
        return default
    if value.lower() not in ("true", "false"):
        raise InvalidParameterError(f"{name} must be true or false, not {value!r}.")
    return value.lower() == "true"


def _int(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidParameterError(f"{name} must be an integer, not {value!r}.") from None


def _time(request: Request, name: str) -> float | None:
    value = request.query_params.get(name)
    if value is None:
        return None
    invalid = InvalidParameterError(f"{name} must be an ISO-8601 time or epoch seconds, not {value!r}.")
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            seconds = float(value)
        except ValueError:
            raise invalid from None
        # float() reads "nan" and "1e400" (infinity), which no time can be compared with.
        if not math.isfinite(seconds):
            raise invalid from None
        return seconds
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    try:
        return parsed.timestamp()
    except OverflowError:  # year 1 with a positive offset falls before datetime's range
        raise invalid from None


def _error_object(body: dict[str, Any]) -> ErrorObject:
    error = ErrorObject.from_wire(body)
    return error or ErrorObject()


def _without_data(wire: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in wire.items() if k not in ("InputPayload", "Result")}
    if "PauseDetails" in body:
        # The model: the pause's Reason "is only present if you set IncludeExecutionData".
        body["PauseDetails"] = {k: v for k, v in body["PauseDetails"].items() if k != "Reason"}
    return body


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidParameterError(f"{key} must be a string, not {type(value).__name__}.")
    return value


@dataclass
class LambdaRoutes:
    """Endpoints over one service, registry and completion waiter."""

    service: DurableService
    registry: Registry
    waiter: CompletionWaiter

    def routes(self) -> list[Route]:
        executions = "/2025-12-01/durable-executions/{arn}"
        callbacks = "/2025-12-01/durable-execution-callbacks/{callback_id}"
        return [
            Route("GET", "/2015-03-31/functions", self.list_functions),
            Route("POST", "/2015-03-31/functions/{function}/invocations", self.invoke),
            Route("GET", executions, self.get_execution),
            Route("GET", f"{executions}/history", self.get_history),
            Route("GET", f"{executions}/state", self.get_state),
            Route("POST", f"{executions}/checkpoint", self.checkpoint),
            Route("POST", f"{executions}/stop", self.stop),
            Route("POST", f"{executions}/pause", self.pause),
            Route("POST", f"{executions}/resume", self.resume),
            Route("DELETE", executions, self.delete),
            Route("GET", "/2025-12-01/functions/{function}/durable-executions", self.list_executions),
            Route("POST", f"{callbacks}/succeed", self.callback_succeed),
            Route("POST", f"{callbacks}/fail", self.callback_fail),
            Route("POST", f"{callbacks}/heartbeat", self.callback_heartbeat),
            # Perdure's own (Lambda's are in CloudWatch Logs): the lines each invocation wrote.
            Route("GET", "/perdure/v1/durable-executions/{arn}/logs", self.get_logs),
            Route("POST", "/perdure/v1/durable-executions/{arn}/restart", self.restart),
        ]

    async def _payload(self, request: Request, what: str) -> str | None:
        limit = self.service.config.max_payload_bytes
        declared = parse_count(request.headers.get("content-length") or "")
        if declared is not None and declared > limit:
            raise PayloadTooLargeError(what, declared, limit)
        raw = await request.body()
        if len(raw) > limit:
            raise PayloadTooLargeError(what, len(raw), limit)
        if not raw:
            return None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequest(f"The {what} is not valid UTF-8 text; send JSON.") from None
        check_text(what, text)
        # Before anything parses it: the API here, the SDK in a worker, the dashboard's pages.
        check_json_depth(what, text)
        return text

    async def invoke(self, request: Request, params: dict[str, str]) -> Response:
        ref = parse_function_name(params["function"])
        qualifier = request.query_params.get("Qualifier", ref.qualifier)
        # It becomes part of the execution's ARN and of a reply header: checked before anything starts.
        check_qualifier(qualifier)
        tenant_id = request.headers.get("x-amz-tenant-id")
        if tenant_id is not None and not TENANT_ID.fullmatch(tenant_id):
            raise InvalidParameterError(f"Invalid X-Amz-Tenant-Id {tenant_id!r}: a tenant ID is {TENANT_ID_RULE}.")
        spec = self.registry.get(ref.name)
        invocation_type = request.headers.get("x-amz-invocation-type", "RequestResponse")
        if invocation_type not in ("RequestResponse", "Event", "DryRun"):
            raise InvalidParameterError(
                f"X-Amz-Invocation-Type must be RequestResponse, Event or DryRun, not {invocation_type!r}."
            )
        payload = await self._payload(request, "invocation payload")
        if payload is not None:
            try:
                json.loads(payload)
            except ValueError as error:
                raise BadRequest(f"Could not parse the payload as JSON: {error}. Send a JSON document.") from None
        if invocation_type == "DryRun":
            return Response(status_code=204)
        result = await run_in_threadpool(
            self.waiter.start,
            StartRequest(
                function_name=spec.name,
                input_payload=payload,
                execution_name=request.headers.get("x-amz-durable-execution-name"),
                qualifier=qualifier,
                timeout_seconds=spec.execution_timeout_seconds,
                retention_days=spec.retention_days,
                tenant_id=tenant_id,
                # W3C's header first; X-Ray's, which Lambda reads, else.
                trace=parse_traceparent(request.headers.get("traceparent")) or parse_xray(request.headers.get("x-amzn-trace-id")),
            ),
        )
        execution = result.execution
        # As Lambda answers: $LATEST as such, an alias as the version it points at.
        version = str(execution.function_version) if qualifier != LATEST and execution.function_version else qualifier
        headers = {"X-Amz-Durable-Execution-Arn": execution.arn, "X-Amz-Executed-Version": version}
        if invocation_type == "Event":
            return Response(status_code=202, headers=headers)
        execution = await self.waiter.wait(execution.arn, spec.timeout_seconds, started=execution)
        return _sync_reply(execution, headers)

    async def list_functions(self, request: Request, params: dict[str, str]) -> Response:
        functions = []
        extras = await run_in_threadpool(listing_extras, self.service)
        for spec in self.registry:
            entry: dict[str, Any] = {
                "FunctionName": spec.name,
                "FunctionArn": self.service.function_arn(spec.name, qualifier=None),
                "Handler": spec.target,
                **spec.config(spec.target).lambda_settings(),
                **extras(spec.name),
            }
            functions.append(entry)
        return json_response({"Functions": functions})

    async def get_execution(self, request: Request, params: dict[str, str]) -> Response:
        execution = await run_in_threadpool(self.service.get_execution, params["arn"])
        wire = execution.to_wire()
        include = _flag(request, "IncludeExecutionData", True)
        body = wire if include else _without_data(wire)
        return json_response({**body, "ExecutionDataIncluded": include})

    async def get_history(self, request: Request, params: dict[str, str]) -> Response:
        include = _flag(request, "IncludeExecutionData", True)
        page = await run_in_threadpool(
            self.service.get_history,
            params["arn"],
            request.query_params.get("Marker"),
            _int(request, "MaxItems", 100),
            _flag(request, "ReverseOrder", False),
        )
        body: dict[str, Any] = {"Events": [event.to_wire(include) for event in page.items]}
        if page.next_marker:
            body["NextMarker"] = page.next_marker
        return json_response(body)

    async def get_logs(self, request: Request, params: dict[str, str]) -> Response:
        page = await run_in_threadpool(
            self.service.get_logs, params["arn"], request.query_params.get("Marker"), _int(request, "MaxItems", 0)
        )
        body: dict[str, Any] = {"Logs": [line.to_wire() for line in page.items]}
        if page.next_marker:
            body["NextMarker"] = page.next_marker
        return json_response(body)

    async def restart(self, request: Request, params: dict[str, str]) -> Response:
        """Starts a new execution that resumes after a checkpoint of this one; answers it as GetDurableExecution does."""
        body = await json_body(request)
        point = body.get("FromCheckpoint")
        if isinstance(point, int) and not isinstance(point, bool):
            point = str(point)
        if not isinstance(point, str) or not point:
            raise InvalidParameterError(
                "FromCheckpoint is required: a checkpoint number (\"2\" for the second) or the ID of a finished operation."
            )
        execution = await run_in_threadpool(
            self.service.restart_execution, params["arn"], point, _optional_str(body, "Name"), _optional_str(body, "Version")
        )
        self.waiter.started()
        return json_response({**execution.to_wire(), "ExecutionDataIncluded": True})

    async def get_state(self, request: Request, params: dict[str, str]) -> Response:
        token = request.query_params.get("CheckpointToken")
        if not token:
            raise InvalidParameterError("CheckpointToken is required: pass the token of your invocation.")
        page = await run_in_threadpool(
            self.service.get_state,
            params["arn"],
            token,
            request.query_params.get("Marker"),
            _int(request, "MaxItems", 100),
        )
        body: dict[str, Any] = {"Operations": [op.to_wire() for op in page.items]}
        if page.next_marker:
            body["NextMarker"] = page.next_marker
        return json_response(body)

    async def checkpoint(self, request: Request, params: dict[str, str]) -> Response:
        body = await json_body(request)
        token = body.get("CheckpointToken")
        if not isinstance(token, str) or not token:
            raise InvalidParameterError("CheckpointToken is required: pass the token of your invocation.")
        updates = updates_from_wire(body)
        result = await run_in_threadpool(
            self.service.checkpoint, params["arn"], token, updates, _optional_str(body, "ClientToken")
        )
        return json_response(result.to_wire())

    async def stop(self, request: Request, params: dict[str, str]) -> Response:
        body = await json_body(request)
        error = ErrorObject.from_wire(body)
        execution = await run_in_threadpool(self.service.stop_execution, params["arn"], error)
        # Its end may have started its function's OnFailure destination, which is to run now.
        self.waiter.woke(execution)
        return json_response({"StopTimestamp": execution.end_time})

    async def pause(self, request: Request, params: dict[str, str]) -> Response:
        body = await json_body(request)
        timeout_paused = body.get("ExecutionTimeoutPaused", True)
        if not isinstance(timeout_paused, bool):
            raise InvalidParameterError("ExecutionTimeoutPaused must be true or false.")
        # ClientToken needs no bookkeeping: pausing a paused execution changes nothing.
        await run_in_threadpool(
            self.service.pause_execution, params["arn"], _optional_str(body, "Reason"), timeout_paused
        )
        return json_response({}, status=202)

    async def resume(self, request: Request, params: dict[str, str]) -> Response:
        body = await json_body(request)
        execution = await run_in_threadpool(self.service.resume_execution, params["arn"], _optional_str(body, "Reason"))
        if execution.ready_time is not None:
            self.waiter.woke(execution)
        return json_response({}, status=202)

    async def delete(self, request: Request, params: dict[str, str]) -> Response:
        when = await run_in_threadpool(self.service.delete_execution, params["arn"])
        return json_response({"DeletionRequestTimestamp": when}, status=202)

    async def list_executions(self, request: Request, params: dict[str, str]) -> Response:
        ref = parse_function_name(params["function"])
        self.registry.get(ref.name)
        # A qualifier (a number, an alias, $LATEST) lists the executions that run the version it names.
        qualifier = request.query_params.get("Qualifier")
        version = None
        if qualifier is not None:
            check_qualifier(qualifier)
            version = await run_in_threadpool(self.service.get_version, ref.name, qualifier)
        try:
            statuses = tuple(ExecutionStatus(s) for s in request.query_params.getlist("Statuses"))
        except ValueError:
            raise InvalidParameterError(
                f"Statuses must be among {', '.join(s.value for s in ExecutionStatus)}."
            ) from None
        max_items = _int(request, "MaxItems", 100)
        if not 0 <= max_items <= 1000:
            raise InvalidParameterError(f"MaxItems must be between 0 and 1000, not {max_items}.")
        query = ExecutionQuery(
            function_name=ref.name,
            function_version=version.version if version else None,
            statuses=statuses,
            name=request.query_params.get("DurableExecutionName"),
            started_after=_time(request, "StartedAfter"),
            started_before=_time(request, "StartedBefore"),
            marker=request.query_params.get("Marker"),
            limit=max_items or 100,
            oldest_first=_flag(request, "ReverseOrder", False),
        )
        page = await run_in_threadpool(self.service.list_executions, query)
        body: dict[str, Any] = {"DurableExecutions": [e.summary_wire() for e in page.executions]}
        if page.next_marker:
            body["NextMarker"] = page.next_marker
        return json_response(body)

    async def callback_succeed(self, request: Request, params: dict[str, str]) -> Response:
        result = await self._payload(request, "callback result")
        execution = await run_in_threadpool(self.service.succeed_callback, params["callback_id"], result)
        self.waiter.woke(execution)
        return json_response({})

    async def callback_fail(self, request: Request, params: dict[str, str]) -> Response:
        error = _error_object(await json_body(request))
        execution = await run_in_threadpool(self.service.fail_callback, params["callback_id"], error)
        self.waiter.woke(execution)
        return json_response({})

    async def callback_heartbeat(self, request: Request, params: dict[str, str]) -> Response:
        await run_in_threadpool(self.service.heartbeat_callback, params["callback_id"])
        return json_response({})


def _sync_reply(execution: Execution, headers: dict[str, str]) -> Response:
    if execution.status is ExecutionStatus.SUCCEEDED:
        return Response(execution.result or "null", status_code=200, headers=headers, media_type="application/json")
    if execution.status is ExecutionStatus.RUNNING:
        return json_response({"DurableExecutionArn": execution.arn, "Status": execution.status.value}, headers=headers)
    error = execution.error or ErrorObject()
    body: dict[str, Any] = {
        "errorMessage": error.message or f"The execution ended with status {execution.status.value}.",
        "errorType": error.type or execution.status.value,
    }
    if error.stack_trace:
        body["stackTrace"] = list(error.stack_trace)
    return json_response(body, headers={**headers, "X-Amz-Function-Error": "Unhandled"})
