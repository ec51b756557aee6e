"""Caps each request body, in size and in the time it takes to arrive, before anything reads it.

``BodyLimit`` wraps the whole server, in front of authentication and the dashboard's sign-in:
both need the whole body (a SigV4 signature covers it, a form is parsed from it), so without a
cap a client with no credentials could make the server hold any amount (a chunked 400 MB POST
to ``/signin`` grew it by 855 MB, issue 11). Here the body is read as it arrives and refused
with 413 once it passes the cap; a ``Content-Length`` over the cap is refused before a byte of
the body is read. A body that does not arrive within ``seconds`` of the request's headers is
refused with 408, so a client that sends half a body cannot hold a connection and its buffer.

The caps: the dashboard's forms are a token or a few fields, so a few KiB; the API carries a
payload of up to ``ServiceConfig.max_payload_bytes``, inside JSON when it is a checkpoint's.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perdure.api.dashboard import is_dashboard_path
from perdure.api.function_routes import is_code_upload
from perdure.api.http import error_response
from perdure.errors import PayloadTooLargeError, PerdureError
from perdure.runtime.bundles import MAX_BUNDLE_BYTES

DASHBOARD_BYTES = 16 * 1024
REQUEST_SECONDS = 30.0


def api_bytes(max_payload_bytes: int) -> int:
    """The API's cap for a service whose payloads may be ``max_payload_bytes`` long.

    A checkpoint carries payloads as JSON strings inside its JSON body, where every ``"`` and
    ``\\`` of a payload's own JSON text is escaped to two bytes: twice the payload limit, and
    a MiB for the rest of the body, admits what the service itself would accept.
    """
    return 2 * max_payload_bytes + 1024 * 1024


class RequestTimeoutError(PerdureError):
    """A request's body did not arrive in time."""

    code = "RequestTimeoutException"
    status = 408


@dataclass(frozen=True)
class BodyLimits:
    """The caps of ``BodyLimit``: bytes for the API's bodies and the dashboard's, and seconds for either."""

    api_bytes: int
    dashboard_bytes: int = DASHBOARD_BYTES
    # A deploy's zip, base64-encoded in JSON: the bundle limit and a third, and a MiB for the rest.
    code_bytes: int = MAX_BUNDLE_BYTES * 4 // 3 + 1024 * 1024
    seconds: float = REQUEST_SECONDS

    def of(self, method: str, path: str) -> int:
        """The cap of a request's body."""
        if is_dashboard_path(path):
            return self.dashboard_bytes
        if is_code_upload(method, path):
            return self.code_bytes
        return self.api_bytes


class _Disconnected(Exception):
    """The client went away while its body was being read."""


class BodyLimit:
    """ASGI middleware: reads each body within its caps and hands it on, or answers 413 or 408."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.of(scope["method"], scope["path"])
        try:
            body = await self._read(scope, receive, limit)
        except _Disconnected:
            return
        except PerdureError as error:
            response = error_response(error.code, error.message, error.status)
            # The rest of the body is never read, so the connection cannot carry another request.
            response.headers["connection"] = "close"
            await response(scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)

    async def _read(self, scope: Scope, receive: Receive, limit: int) -> bytes:
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            raise PayloadTooLargeError("request body", declared, limit)
        try:
            return await asyncio.wait_for(_read_capped(receive, limit), self.limits.seconds)
        except TimeoutError:
            raise RequestTimeoutError(
                f"The request body did not arrive within {self.limits.seconds:g} seconds of its headers. "
                "Send the whole body promptly; a client on a slow link should send smaller requests."
            ) from None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name.lower() == b"content-length" and value.strip().isdigit():
            return int(value)
    return None


async def _read_capped(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError("request body received so far", size, limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then passes on (to see a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
