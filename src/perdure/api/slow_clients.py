"""What `perdure serve` allows slow and idle clients: uvicorn's limits, and a deadline for request heads.

uvicorn (its h11 protocol, the one installed with Perdure) times out only the wait *between*
requests on a kept-alive connection (``timeout_keep_alive``), and only until the first byte of
the next request: a client that connects and sends nothing, or half a request head, or one
byte of it now and then, holds its connection for ever (issue 11: 200 such stayed open).
``HeadDeadline`` closes a connection whose request head is not complete within the request
timeout of the connection opening, or of the previous response. A body that does not arrive in
time is ``perdure.api.body_limit``'s to refuse (408), as it can answer in Lambda's error shape.

For production, put a reverse proxy in front all the same (docs/deployment.md): it is where TLS
and per-client limits belong.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from perdure.api.body_limit import REQUEST_SECONDS

# Beyond this many connections (or requests in progress) uvicorn answers 503 at once rather
# than take on more work; each may hold a body of up to the API's cap while it is read.
MAX_CONNECTIONS = 1000
# uvicorn's default: an idle kept-alive connection is closed after this long.
KEEP_ALIVE_SECONDS = 5
# The largest request head (request line and headers) accepted; h11's default, stated here.
MAX_HEAD_BYTES = 16 * 1024


class HeadDeadline(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is overdue."""

    head_seconds: float = REQUEST_SECONDS
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.head_seconds, self._head_overdue)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        # h11 leaves the client's state IDLE until a request's head is complete; after that,
        # the body's deadline is BodyLimit's and a running request may take its time.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def uvicorn_settings(request_seconds: float) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that bound slow clients, heads due within ``request_seconds``."""
    protocol = type("HeadDeadline", (HeadDeadline,), {"head_seconds": request_seconds})
    return {
        "http": protocol,
        "limit_concurrency": MAX_CONNECTIONS,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
    }
