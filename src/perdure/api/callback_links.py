"""The route that makes approval links for an authenticated caller (``perdure callback link``).

The link is signed with a key derived from the server secret and names the server's public URL,
both of which the server has and a client should not need: a caller with an API key asks the
server, which also refuses a link for a callback that does not exist or can no longer be
completed. See ``perdure.protocol.approval_links`` for the link itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.http import Route, json_body, json_response
from perdure.errors import CallbackAlreadyCompletedError, InvalidParameterError
from perdure.protocol.approval_links import DEFAULT_EXPIRES_SECONDS, ApprovalLinks
from perdure.service import console
from perdure.service.executions import DurableService

LINK_PATH = "/perdure/v1/durable-execution-callbacks/{callback_id}/link"


def _expires(body: dict[str, Any]) -> float:
    value = body.get("ExpiresInSeconds", DEFAULT_EXPIRES_SECONDS)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameterError(f"ExpiresInSeconds must be a number of seconds, not {value!r}.")
    return float(value)


def _summary(body: dict[str, Any]) -> str:
    value = body.get("Summary", "")
    if not isinstance(value, str):
        raise InvalidParameterError(f"Summary must be a string, not {type(value).__name__}.")
    return value


@dataclass
class CallbackLinkRoutes:
    """``POST …/durable-execution-callbacks/{callback_id}/link`` with ``{"Summary", "ExpiresInSeconds"}``."""

    service: DurableService
    links: ApprovalLinks

    def routes(self) -> list[Route]:
        return [Route("POST", LINK_PATH, self.make_link)]

    async def make_link(self, request: Request, params: dict[str, str]) -> Response:
        """Answers ``{"CallbackId", "Url", "ExpiresTimestamp"}`` for a callback still open."""
        body = await json_body(request)
        summary, expires = _summary(body), _expires(body)
        callback_id = params["callback_id"]
        state = await run_in_threadpool(console.callback_state, self.service, callback_id)
        if state.status.is_terminal:
            raise CallbackAlreadyCompletedError(callback_id, state.status.value)
        if not state.open:
            raise CallbackAlreadyCompletedError(
                callback_id, f"unusable: its execution has ended with status {state.execution_status.value}"
            )
        link = self.links.make(callback_id, summary, expires)
        return json_response({"CallbackId": callback_id, "Url": link.url, "ExpiresTimestamp": link.expires})
