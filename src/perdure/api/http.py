"""HTTP plumbing for the Lambda-compatible API: a route table over raw paths, JSON and errors.

Paths are matched on the *raw* path, split on ``/`` before percent-decoding each segment:
an execution ARN or callback ID arrives with its own slashes encoded as ``%2F`` (boto3 does
this), and decoding first would split it into several segments.
"""

from __future__ import annotations

import contextlib
import json
import math
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from perdure.errors import PerdureError
from perdure.protocol.log_context import LogContext, about
from perdure.protocol.records import json_default
from perdure.service.validation import check_json_depth, check_strings, check_text

Endpoint = Callable[[Request, dict[str, str]], Awaitable[Response]]


@dataclass(frozen=True)
class Route:
    """``method`` and a path template such as ``/2025-12-01/durable-executions/{arn}/history``."""

    method: str
    path: str
    endpoint: Endpoint

    def match(self, method: str, segments: list[str]) -> dict[str, str] | None:
        template = self.path.strip("/").split("/")
        if method != self.method or len(template) != len(segments):
            return None
        params: dict[str, str] = {}
        for expected, actual in zip(template, segments, strict=True):
            if expected.startswith("{") and expected.endswith("}"):
                params[expected[1:-1]] = unquote(actual)
            elif expected != unquote(actual):
                return None
        return params


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serializes ``body`` with timestamps as epoch seconds, as the Lambda JSON API does."""
    return Response(
        json.dumps(body, default=json_default), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(code: str, message: str, status: int) -> Response:
    """Lambda's error shape: boto3 reads the code from ``x-amzn-ErrorType`` and the message from the body."""
    return json_response(
        {"Type": "User" if status < 500 else "Service", "message": message, "Message": message},
        status=status,
        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


class BadRequest(PerdureError):
    """A request body or query that cannot be parsed."""

    code = "InvalidRequestContentException"
    status = 400


async def json_body(request: Request) -> dict[str, Any]:
    """Parses the body as a JSON object (an empty body is ``{}``) whose strings can all be stored."""
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRequest(f"Could not parse the request body as JSON: {error}. Send a JSON object.") from None
    check_json_depth("request body", text)
    try:
        body = json.loads(text, parse_float=_finite_float, parse_constant=_refuse_constant)
    except ValueError as error:
        raise BadRequest(f"Could not parse the request body as JSON: {error}. Send a JSON object.") from None
    if not isinstance(body, dict):
        raise BadRequest(f"The request body must be a JSON object, not {type(body).__name__}.")
    check_strings("request body", body)
    return body


def _finite_float(literal: str) -> float:
    # Python reads 1e400 as infinity, which no field can use and int() cannot convert.
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError(f"the number {literal} is out of range")
    return number


def _refuse_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON does not have.
    raise ValueError(f"{name} is not a JSON number")


class Router:
    """An ASGI app that dispatches to the first route matching method and raw path."""

    def __init__(self, routes: list[Route], fallback: Endpoint | None = None) -> None:
        self.routes = routes
        self.fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        raw_path = scope.get("raw_path") or scope["path"].encode()
        segments = raw_path.decode("latin-1").split("?", 1)[0].strip("/").split("/")
        response = await self._dispatch(request, segments)
        await response(scope, receive, send)

    async def _dispatch(self, request: Request, segments: list[str]) -> Response:
        for route in self.routes:
            params = route.match(request.method, segments)
            if params is not None:
                try:
                    _check_parameters(request, params)
                    with _logging_about(params):
                        return await route.endpoint(request, params)
                except PerdureError as error:
                    response = error_response(error.code, error.message, error.status)
                    if error.retry_after_seconds is not None:
                        response.headers["Retry-After"] = str(error.retry_after_seconds)
                    return response
        return error_response(
            "ResourceNotFoundException",
            f"No route for {request.method} {request.url.path}. See the Lambda API reference for its routes.",
            404,
        )


def _logging_about(params: dict[str, str]) -> AbstractContextManager[None]:
    """Makes the log lines of a request on one execution (a route's ``{arn}``) about that execution."""
    arn = params.get("arn")
    return about(LogContext.of_execution(arn)) if arn is not None else contextlib.nullcontext()


def _check_parameters(request: Request, params: dict[str, str]) -> None:
    """Refuses path and query parameters that cannot be stored, before any endpoint reads them."""
    for name, value in params.items():
        check_text(f"path parameter {name}", value)
    for name, value in request.query_params.multi_items():
        check_text(f"query parameter {name!r}", name)
        check_text(f"query parameter {name}", value)
