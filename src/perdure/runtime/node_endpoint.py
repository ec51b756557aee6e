"""The loopback HTTP endpoint through which a worker's Node.js child checkpoints and reads state.

``@aws/durable-execution-sdk-js`` talks to the service through ``@aws-sdk/client-lambda``, over
HTTP, at ``AWS_ENDPOINT_URL_LAMBDA``. The worker process that owns a Node child serves here just
the two routes the SDK calls (CheckpointDurableExecution and GetDurableExecutionState, read from
its ``DurableExecutionApiClient``) against the worker's own service connection: no API server
need run in the process (``perdure worker`` has none), and the open API of ``--dev`` is never
used. It listens on 127.0.0.1 on a port of the system's choosing, and answers only requests
signed with this process's random access key id.

The SigV4 signature itself is not verified (``perdure.api.auth`` does that, a layer above the
runtime): on loopback the access key id, random and never logged, serves as a bearer token,
which is what a signature proves knowledge of here.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from perdure.errors import (
    InvalidParameterError,
    PerdureError,
    StaleCheckpointTokenError,
)
from perdure.protocol.records import json_default, updates_from_wire
from perdure.service.executions import DurableService

__all__ = ["EndpointCredentials", "NodeEndpoint"]

_ROUTE = re.compile(r"^/2025-12-01/durable-executions/(?P<arn>[^/]+)/(?P<action>state|checkpoint)$")
_ACCESS_KEY = re.compile(r"Credential=(?P<key>[^/,\s]+)/")
# The page size the SDK asks for when it does not say (the API's default).
DEFAULT_MAX_ITEMS = 100


@dataclass(frozen=True)
class EndpointCredentials:
    """What the Node child is given to reach the endpoint: its URL and a key pair of its own."""

    url: str
    access_key_id: str
    secret_access_key: str

    def environment(self) -> dict[str, str]:
        """The variables ``@aws-sdk/client-lambda`` reads them from."""
        return {
            "AWS_ENDPOINT_URL_LAMBDA": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": "us-east-1",
        }


class NodeEndpoint:
    """Serves the SDK's two routes on 127.0.0.1 until ``close``."""

    def __init__(self, service: DurableService) -> None:
        self.service = service
        self._key = "PERDURE" + secrets.token_hex(16).upper()
        endpoint = self

        class Handler(_Handler):
            owner = endpoint

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="perdure-node-endpoint", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        self.credentials = EndpointCredentials(f"http://{host!s}:{port}", self._key, secrets.token_hex(20))

    def allows(self, authorization: str) -> bool:
        found = _ACCESS_KEY.search(authorization)
        return found is not None and hmac.compare_digest(found["key"], self._key)

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any], str | None]:
        """(Status, JSON body, Lambda error code) for a request the key allowed."""
        parts = urlsplit(path)
        matched = _ROUTE.match(parts.path)
        if matched is None or (method, matched["action"]) not in (("GET", "state"), ("POST", "checkpoint")):
            return 404, {"message": f"{method} {parts.path} is not served here."}, "ResourceNotFoundException"
        arn = unquote(matched["arn"])
        try:
            if matched["action"] == "state":
                return 200, self._state(arn, parse_qs(parts.query)), None
            return 200, self._checkpoint(arn, json.loads(body or b"{}")), None
        except StaleCheckpointTokenError as error:
            # The SDK retries the invocation (rather than fail the execution) only for a 4xx whose
            # message starts so, as Lambda words it (its CheckpointManager.classifyCheckpointError).
            return error.status, {"message": f"Invalid Checkpoint Token: {error.message}"}, error.code
        except PerdureError as error:
            return error.status, {"message": error.message}, error.code
        except (ValueError, KeyError, TypeError) as error:
            return 400, {"message": f"The request is malformed: {error!r}."}, "InvalidRequestContentException"

    def _state(self, arn: str, query: dict[str, list[str]]) -> dict[str, Any]:
        token = query.get("CheckpointToken", [""])[0]
        if not token:
            raise InvalidParameterError("CheckpointToken is required: pass the token of your invocation.")
        marker = query.get("Marker", [None])[0]
        max_items = int(query.get("MaxItems", [str(DEFAULT_MAX_ITEMS)])[0])
        page = self.service.get_state(arn, token, marker, max_items)
        body: dict[str, Any] = {"Operations": [op.to_wire() for op in page.items]}
        if page.next_marker:
            body["NextMarker"] = page.next_marker
        return body

    def _checkpoint(self, arn: str, body: dict[str, Any]) -> dict[str, Any]:
        token = body.get("CheckpointToken")
        if not isinstance(token, str) or not token:
            raise InvalidParameterError("CheckpointToken is required: pass the token of your invocation.")
        updates = updates_from_wire(body)
        return self.service.checkpoint(arn, token, updates, body.get("ClientToken")).to_wire()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: NodeEndpoint
    # Keep-alive: the SDK reuses its connections, one per invocation in flight at most.
    protocol_version = "HTTP/1.1"
    # The headers and the body go out in two writes: with Nagle's algorithm the body waited for
    # the client's delayed ACK of the headers, about 40 ms per checkpoint.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        code: str | None
        if not self.owner.allows(self.headers.get("Authorization") or ""):
            status, answer, code = 403, {"message": "The request is not signed with this worker's key."}, "AccessDeniedException"
        else:
            status, answer, code = self.owner.answer(method, self.path, body)
        data = json.dumps(answer, default=json_default).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if code is not None:
            self.send_header("x-amzn-ErrorType", code)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not logged: one per checkpoint would drown the worker's log."""
