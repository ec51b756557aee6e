"""Function URLs: a plain HTTP POST to ``/url/NAME`` (or ``/url/NAME/any/path``) starts an execution of NAME.

A function has a URL when its template gives it a ``FunctionUrlConfig``. Lambda gives each URL
a host of its own; Perdure listens on one port, so a function's URL is a path on it, under a
prefix that no Lambda route or dashboard page uses. The execution's input is Lambda's
function-URL event (``perdure.api.url_events``); ``rawPath`` is the part after ``/url/NAME``.

- ``AuthType: NONE``: anyone may call it, even when the API needs keys (as ``/health``).
  ``AWS_IAM``: the caller authenticates as the API's callers do (``perdure.api.auth``: SigV4
  or a bearer token). An unknown name and a function without a URL get the same 404.
- ``Idempotency-Key`` or ``X-Perdure-Execution-Name`` names the execution, so a webhook sent
  again starts it once: the same key with the same request (path, query and body) answers
  the execution it started; with another request, 409. A name outside the execution-name
  rule is hashed into one (``Idempotency-Key`` only: an explicit name must be a valid one).
- ``InvokeMode: BUFFERED`` waits for the execution to end, up to ``BUFFERED_WAIT_SECONDS`` or
  the function's timeout, whichever is shorter, and answers its result as Lambda answers a
  function URL; an execution that runs on (or waits for a callback) is answered at once with
  202 and its ARN (``X-Amz-Durable-Execution-Arn`` on every reply). A failed one is answered
  502, without its error, which a public caller has no business reading.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from perdure.api.auth import Authenticator
from perdure.api.http import error_response, json_response
from perdure.api.keys import KeyRing
from perdure.api.url_events import UrlRequest, same_request, url_event, url_reply
from perdure.api.waiting import CompletionWaiter
from perdure.errors import (
    ConflictError,
    ExecutionAlreadyExistsError,
    FunctionNotFoundError,
    InvalidParameterError,
    NotFoundError,
    PayloadTooLargeError,
    PerdureError,
)
from perdure.protocol.function_urls import AuthType, FunctionUrl
from perdure.protocol.records import Execution, ExecutionStatus
from perdure.protocol.trace_context import parse_traceparent, parse_xray
from perdure.protocol.versions import LATEST
from perdure.runtime.registry import FunctionSpec, Registry
from perdure.service.executions import DurableService, StartRequest
from perdure.service.validation import NAME, NAME_RULE, check_strings, parse_count

PREFIX = "/url/"
# How long a buffered reply waits for the execution to end. API Gateway's integration timeout
# is 29 s, and webhook senders and proxies are set up around limits of that order (GitHub gives
# up after 10 s, a default nginx after 60 s): longer would mostly hold connections nobody reads.
BUFFERED_WAIT_SECONDS = 29.0
_NAME_HEADER = "x-perdure-execution-name"
_KEY_HEADER = "idempotency-key"


def is_function_url_path(path: str) -> bool:
    return path.startswith(PREFIX)


class FunctionUrlConflictError(ConflictError):
    """An idempotency key sent again with another request."""

    def __init__(self, header: str, execution: Execution) -> None:
        super().__init__(
            f"The {header} names execution {execution.name!r} of {execution.function_name}, which another "
            f"request started (a different path, query or body): {execution.arn}. A key names one request; "
            "send a new key for a new request."
        )


def execution_name(request: Request) -> tuple[str, str] | None:
    """The execution name the request's headers give, with the header that gave it; None for a fresh one."""
    given, key = request.headers.get(_NAME_HEADER), request.headers.get(_KEY_HEADER)
    if given is not None and key is not None and given != key:
        raise InvalidParameterError(
            "The request has both Idempotency-Key and X-Perdure-Execution-Name, with different values; send one."
        )
    if given is not None:
        if not NAME.fullmatch(given):
            raise InvalidParameterError(
                f"X-Perdure-Execution-Name {given!r} is not a valid execution name: use {NAME_RULE}, or send "
                "the value as Idempotency-Key, which may be any text."
            )
        return given, "X-Perdure-Execution-Name"
    if key is None:
        return None
    if not key.strip():
        raise InvalidParameterError("Idempotency-Key is empty; send a key that names this one request, or none.")
    # A key outside the name rule (too long, or with other characters) names the execution by its hash.
    name = key if NAME.fullmatch(key) else "key-" + hashlib.sha256(key.encode()).hexdigest()[:40]
    return name, "Idempotency-Key"


class FunctionUrls:
    """The ASGI app of ``/url/…``: authenticates per the function's AuthType, then starts and answers."""

    def __init__(
        self, service: DurableService, registry: Registry, waiter: CompletionWaiter, keys: KeyRing | None
    ) -> None:
        self.service = service
        self.registry = registry
        self.waiter = waiter
        # Without keys (--dev) the API is open, and so are AWS_IAM URLs, as the API's routes are.
        self.authenticated: ASGIApp | None = Authenticator(self._serve, keys) if keys is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = _function_segment(scope)
        try:
            spec = self.registry.get(name) if NAME.fullmatch(name) else None
        except FunctionNotFoundError:
            spec = None
        url = spec.function_url if spec is not None else None
        if url is None:
            message = (
                f"No function URL at {PREFIX}{name}: no function of that name has a FunctionUrlConfig. "
                f"A function's URL is {PREFIX}FUNCTION_NAME."
            )
            await error_response("ResourceNotFoundException", message, 404)(scope, receive, send)
        elif url.auth_type is AuthType.AWS_IAM and self.authenticated is not None:
            await self.authenticated(scope, receive, send)
        else:
            await self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self._start(request)
        except PerdureError as error:
            response = error_response(error.code, error.message, error.status)
        await response(scope, receive, send)

    async def _start(self, request: Request) -> Response:
        spec = self.registry.get(_function_segment(request.scope))
        url = spec.function_url
        if url is None:
            raise NotFoundError(f"Function {spec.name} no longer has a function URL.")
        if request.method != "POST":
            return _method_not_allowed(request.method)
        named = execution_name(request)
        event = url_event(request, await self._url_request(request, spec, url))
        check_strings("function URL request", event)
        execution = await self._started(spec, event, named, request)
        headers = {"X-Amz-Durable-Execution-Arn": execution.arn}
        execution = await self.waiter.wait(
            execution.arn, min(float(spec.timeout_seconds), BUFFERED_WAIT_SECONDS), started=execution
        )
        if execution.status is ExecutionStatus.SUCCEEDED:
            return url_reply(execution.result, headers)
        body = {"DurableExecutionArn": execution.arn, "Status": execution.status.value}
        if not execution.status.is_terminal:
            return json_response(body, status=202, headers=headers)
        return json_response({"Message": "The execution did not succeed.", **body}, status=502, headers=headers)

    async def _url_request(self, request: Request, spec: FunctionSpec, url: FunctionUrl) -> UrlRequest:
        limit = self.service.config.max_payload_bytes
        declared = parse_count(request.headers.get("content-length") or "")
        if declared is not None and declared > limit:
            raise PayloadTooLargeError("function URL request body", declared, limit)
        body = await request.body()
        if len(body) > limit:
            raise PayloadTooLargeError("function URL request body", len(body), limit)
        raw = (request.scope.get("raw_path") or request.scope["path"].encode()).decode("latin-1")
        below = raw.split("?", 1)[0][len(PREFIX) :].partition("/")[2]
        return UrlRequest(
            function_name=spec.name,
            raw_path="/" + below,
            body=body,
            drop_authorization=url.auth_type is AuthType.AWS_IAM,
            account_id=self.service.config.account_id,
            now=self.service.clock(),
        )

    async def _started(
        self, spec: FunctionSpec, event: dict[str, object], named: tuple[str, str] | None, request: Request
    ) -> Execution:
        """Starts the execution, or finds the one an earlier request with the same key started."""
        start = StartRequest(
            function_name=spec.name,
            input_payload=json.dumps(event),
            execution_name=named[0] if named else None,
            qualifier=LATEST,
            timeout_seconds=spec.execution_timeout_seconds,
            retention_days=spec.retention_days,
            trace=parse_traceparent(request.headers.get("traceparent")) or parse_xray(request.headers.get("x-amzn-trace-id")),
        )
        try:
            result = await run_in_threadpool(self.waiter.start, start)
        except ExecutionAlreadyExistsError as error:
            if named is None:
                raise
            # The event differs on every request (its requestId and time): a retry lands here.
            existing = await run_in_threadpool(self.service.get_execution, error.execution_arn)
            if not same_request(existing.input_payload, event):
                raise FunctionUrlConflictError(named[1], existing) from None
            return existing
        return result.execution


def _function_segment(scope: Scope) -> str:
    raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1").split("?", 1)[0]
    return unquote(raw[len(PREFIX) :].split("/", 1)[0])


def _method_not_allowed(method: str) -> Response:
    response = error_response(
        "MethodNotAllowedException",
        f"A function URL starts an execution with POST, not {method}: send the request body with POST.",
        405,
    )
    response.headers["Allow"] = "POST"
    return response
