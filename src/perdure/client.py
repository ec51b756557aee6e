"""``perdure.Client``: starts and manages executions on a Perdure server over its HTTP API."""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import httpx

from perdure.errors import PerdureError

DEFAULT_ENDPOINT = "http://127.0.0.1:8500"


class ApiError(PerdureError):
    """An error reply from the server, with its Lambda error code and HTTP status."""

    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


def _segment(value: str) -> str:
    # ARNs and callback IDs contain '/', which must stay inside one path segment.
    return quote(value, safe="")


class Client:
    """A small synchronous client for the Lambda-compatible API."""

    def __init__(self, endpoint: str | None = None, timeout: float = 960.0) -> None:
        self.endpoint = (endpoint or os.environ.get("PERDURE_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self._http = httpx.Client(base_url=self.endpoint, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as error:
            raise ApiError(
                "ConnectionError",
                0,
                f"Could not reach a Perdure server at {self.endpoint} ({error}). "
                "Start one with `perdure serve`, or pass --endpoint / set PERDURE_ENDPOINT.",
            ) from None
        if response.status_code >= 400:
            code = response.headers.get("x-amzn-ErrorType", str(response.status_code))
            try:
                body = response.json()
                message = body.get("message") or body.get("Message") or response.text
            except ValueError:
                message = response.text
            raise ApiError(code, response.status_code, message)
        return response

    def invoke(
        self, function: str, payload: Any = None, *, wait: bool = True, name: str | None = None
    ) -> dict[str, Any]:
        """Starts an execution; with ``wait`` it returns once the execution has ended."""
        headers = {"X-Amz-Invocation-Type": "RequestResponse" if wait else "Event"}
        if name:
            headers["X-Amz-Durable-Execution-Name"] = name
        content = json.dumps(payload).encode() if payload is not None else b""
        response = self._request(
            "POST", f"/2015-03-31/functions/{_segment(function)}/invocations", content=content, headers=headers
        )
        return self.get_execution(response.headers["X-Amz-Durable-Execution-Arn"])

    def get_execution(self, arn: str) -> dict[str, Any]:
        return self._request("GET", f"/2025-12-01/durable-executions/{_segment(arn)}").json()  # type: ignore[no-any-return]

    def _all_pages(self, path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Follows ``NextMarker`` through every page and returns the ``key`` lists joined."""
        items: list[dict[str, Any]] = []
        params = {"MaxItems": 1000, **params}
        while True:
            body = self._request("GET", path, params=params).json()
            items.extend(body[key])
            if not body.get("NextMarker"):
                return items
            params["Marker"] = body["NextMarker"]

    def history(self, arn: str) -> list[dict[str, Any]]:
        """Returns every history event of an execution, oldest first."""
        return self._all_pages(f"/2025-12-01/durable-executions/{_segment(arn)}/history", "Events", {})

    def functions(self) -> list[dict[str, Any]]:
        return self._request("GET", "/2015-03-31/functions/").json()["Functions"]  # type: ignore[no-any-return]

    def list_executions(self, function: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """Returns executions, newest first, of one function or of all functions."""
        names = [function] if function else [f["FunctionName"] for f in self.functions()]
        params = {"Statuses": status} if status else {}
        found: list[dict[str, Any]] = []
        for name in names:
            path = f"/2025-12-01/functions/{_segment(name)}/durable-executions"
            found.extend(self._all_pages(path, "DurableExecutions", params))
        return sorted(found, key=lambda e: e["StartTimestamp"], reverse=True)

    def stop(self, arn: str, error_type: str | None = None, message: str | None = None) -> dict[str, Any]:
        error = {k: v for k, v in (("ErrorType", error_type), ("ErrorMessage", message)) if v}
        return self._request(  # type: ignore[no-any-return]
            "POST", f"/2025-12-01/durable-executions/{_segment(arn)}/stop", json=error
        ).json()

    def succeed_callback(self, callback_id: str, result: Any = None) -> None:
        content = json.dumps(result).encode() if result is not None else b""
        self._request("POST", f"/2025-12-01/durable-execution-callbacks/{_segment(callback_id)}/succeed", content=content)

    def fail_callback(self, callback_id: str, error_type: str | None = None, message: str | None = None) -> None:
        error = {k: v for k, v in (("ErrorType", error_type), ("ErrorMessage", message)) if v}
        self._request("POST", f"/2025-12-01/durable-execution-callbacks/{_segment(callback_id)}/fail", json=error)

    def heartbeat_callback(self, callback_id: str) -> None:
        self._request("POST", f"/2025-12-01/durable-execution-callbacks/{_segment(callback_id)}/heartbeat")
