"""``perdure.Client``: starts and manages executions on a Perdure server over its HTTP API.

Requests are authenticated with ``BearerToken`` or ``SigV4`` (signed by botocore, as boto3 signs),
by default as ``credentials_from_environment`` finds them: ``PERDURE_TOKEN`` (a token from
``perdure keys create``) first, else ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (its key
pair; ``AWS_SESSION_TOKEN`` too if set), signed for ``AWS_REGION`` or ``AWS_DEFAULT_REGION``
(``us-east-1`` if neither is set; the server accepts any region). Only these variables are read:
botocore's full credential chain would also query EC2 instance metadata, slowly, on machines
with no credentials at all.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Generator
from typing import Any
from urllib.parse import parse_qsl, quote

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


class BearerToken(httpx.Auth):
    """Sends ``Authorization: Bearer TOKEN``."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class SigV4(httpx.Auth):
    """Signs each request with AWS Signature Version 4 for the service ``lambda``, as boto3 would."""

    requires_request_body = True

    def __init__(
        self, access_key_id: str, secret_access_key: str, region: str = "us-east-1", session_token: str | None = None
    ) -> None:
        from botocore.credentials import Credentials

        self.credentials = Credentials(access_key_id, secret_access_key, session_token)
        self.region = region

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        # The query goes to botocore as decoded pairs, which it encodes the way SigV4 specifies;
        # httpx's own encoding of the URL (a space as '+', say) is then irrelevant to the signature.
        url = request.url.copy_with(query=None)
        params = parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True)
        signed = AWSRequest(method=request.method, url=str(url), data=request.content, params=params)
        SigV4Auth(self.credentials, "lambda", self.region).add_auth(signed)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in signed.headers:
                request.headers[name] = signed.headers[name]
        yield request


def credentials_from_environment() -> httpx.Auth | None:
    """The credentials the environment gives, or None (for a server running open with ``--dev``)."""
    token = os.environ.get("PERDURE_TOKEN")
    if token:
        return BearerToken(token)
    access_key_id, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if access_key_id and secret:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return SigV4(access_key_id, secret, region, os.environ.get("AWS_SESSION_TOKEN") or None)
    return None


class Client:
    """A small synchronous client for the Lambda-compatible API.

    ``auth`` authenticates its requests (``BearerToken`` or ``SigV4``); by default
    ``credentials_from_environment()``.
    """

    def __init__(self, endpoint: str | None = None, timeout: float = 960.0, auth: httpx.Auth | None = None) -> None:
        self.endpoint = (endpoint or os.environ.get("PERDURE_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
        self.auth = auth or credentials_from_environment()
        self._http = httpx.Client(base_url=self.endpoint, timeout=timeout, auth=self.auth)

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
            if response.status_code == 403 and self.auth is None:
                message += (
                    " This client sent no credentials: set PERDURE_TOKEN to a key's token, or "
                    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to its key pair."
                )
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

    def logs(self, arn: str) -> list[dict[str, Any]]:
        """Returns every log line of an execution in the order written: Seq, Invocation, Stream (stdout,
        stderr or log), Timestamp and Message."""
        return self._all_pages(f"/perdure/v1/durable-executions/{_segment(arn)}/logs", "Logs", {})

    def deploy(self, function: str, code: bytes, configuration: dict[str, Any], alias: str | None = None) -> dict[str, Any]:
        """Deploys a zip of a function's code with its settings (``Handler``, ``Timeout``, ``MemorySize``,
        ``DurableConfig``): creates the function, or publishes its new code and settings as a version,
        and points ``alias`` (if given) at that version.

        Returns the version deployed, as PublishVersion answers (its ``Version`` is its number).
        """
        path = f"/2015-03-31/functions/{_segment(function)}"
        encoded = base64.b64encode(code).decode()
        try:
            self._request("GET", path)
        except ApiError as error:
            if error.status != 404:
                raise
            self._request("POST", "/2015-03-31/functions", json={"FunctionName": function, "Code": {"ZipFile": encoded}, **configuration})
        else:
            # Code and settings in one request (Perdure's UpdateFunctionCode takes both): one
            # version, and a handler that moved to another file is found in the new code.
            self._request("PUT", f"{path}/code", json={"ZipFile": encoded, **configuration})
        version: dict[str, Any] = self._request("POST", f"{path}/versions").json()
        if alias is not None:
            target = {"FunctionVersion": version["Version"]}
            try:
                self._request("PUT", f"{path}/aliases/{_segment(alias)}", json=target)
            except ApiError as error:
                if error.status != 404:
                    raise
                self._request("POST", f"{path}/aliases", json={"Name": alias, **target})
        return version

    def versions(self, function: str) -> list[dict[str, Any]]:
        """The function's versions as ListVersionsByFunction gives them: ``$LATEST``, then each by number."""
        return self._request("GET", f"/2015-03-31/functions/{_segment(function)}/versions").json()["Versions"]  # type: ignore[no-any-return]

    def functions(self) -> list[dict[str, Any]]:
        return self._request("GET", "/2015-03-31/functions/").json()["Functions"]  # type: ignore[no-any-return]

    def list_executions(
        self, function: str | None = None, status: str | None = None, started_after: float | None = None
    ) -> list[dict[str, Any]]:
        """Returns executions, newest first, of one function or of all functions; only those started
        after ``started_after`` (epoch seconds), if given."""
        names = [function] if function else [f["FunctionName"] for f in self.functions()]
        params: dict[str, Any] = {"Statuses": status} if status else {}
        if started_after is not None:
            params["StartedAfter"] = started_after
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

    def pause(self, arn: str, reason: str | None = None, pause_timeout: bool = True) -> None:
        """Pauses an execution: it is not invoked until resumed; its timeout stands still unless ``pause_timeout`` is False."""
        body: dict[str, Any] = {"ExecutionTimeoutPaused": pause_timeout}
        if reason is not None:
            body["Reason"] = reason
        self._request("POST", f"/2025-12-01/durable-executions/{_segment(arn)}/pause", json=body)

    def resume(self, arn: str, reason: str | None = None) -> None:
        """Resumes a paused execution."""
        body = {"Reason": reason} if reason is not None else {}
        self._request("POST", f"/2025-12-01/durable-executions/{_segment(arn)}/resume", json=body)

    def delete(self, arn: str) -> dict[str, Any]:
        """Deletes an execution that has ended, with its history; returns ``DeletionRequestTimestamp``."""
        return self._request("DELETE", f"/2025-12-01/durable-executions/{_segment(arn)}").json()  # type: ignore[no-any-return]

    def restart(
        self, arn: str, from_checkpoint: str, name: str | None = None, version: str | None = None
    ) -> dict[str, Any]:
        """Starts a new execution that resumes right after a checkpoint of this one; returns it.

        ``from_checkpoint`` is a checkpoint number ("2" for the second) or the ID of a finished
        operation; ``name`` defaults to ``<old name>-restart-<n>``; ``version`` (a number, an
        alias or ``$LATEST``) runs it on that version's code instead of the old one's.
        """
        body: dict[str, Any] = {"FromCheckpoint": from_checkpoint}
        if name is not None:
            body["Name"] = name
        if version is not None:
            body["Version"] = version
        return self._request(  # type: ignore[no-any-return]
            "POST", f"/perdure/v1/durable-executions/{_segment(arn)}/restart", json=body
        ).json()

    def schedules(self, function: str | None = None) -> list[dict[str, Any]]:
        """Every schedule (or one function's), with its state and next fire time (``NextFireTime``, epoch seconds)."""
        params = {"FunctionName": function} if function else {}
        return self._request("GET", "/perdure/v1/schedules", params=params).json()["Schedules"]  # type: ignore[no-any-return]

    def pause_schedule(self, function: str, name: str) -> dict[str, Any]:
        """Pauses a schedule: its ticks do not fire until it is resumed."""
        return self._request("POST", f"/perdure/v1/schedules/{_segment(function)}/{_segment(name)}/pause").json()  # type: ignore[no-any-return]

    def resume_schedule(self, function: str, name: str) -> dict[str, Any]:
        """Resumes a paused schedule from its next tick; those missed while paused do not fire."""
        return self._request("POST", f"/perdure/v1/schedules/{_segment(function)}/{_segment(name)}/resume").json()  # type: ignore[no-any-return]

    def trigger_schedule(self, function: str, name: str) -> dict[str, Any]:
        """Starts one execution of a schedule now, with its input; returns its ``DurableExecutionArn``."""
        return self._request("POST", f"/perdure/v1/schedules/{_segment(function)}/{_segment(name)}/trigger").json()  # type: ignore[no-any-return]

    def put_schedules(self, function: str, definitions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Makes a function's schedules these definitions (``perdure.protocol.schedules.definition_to_wire``)."""
        path = f"/perdure/v1/functions/{_segment(function)}/schedules"
        return self._request("PUT", path, json={"Schedules": definitions}).json()["Schedules"]  # type: ignore[no-any-return]

    def redrive(
        self, function: str, started_after: float, version: str | None = None, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Restarts each FAILED execution of ``function`` started after ``started_after`` (epoch
        seconds) from its last checkpoint, once; returns what was done with each.

        ``version`` runs them on that version's code; ``dry_run`` starts nothing.
        """
        body: dict[str, Any] = {"StartedAfter": started_after, "DryRun": dry_run}
        if version is not None:
            body["Version"] = version
        reply = self._request("POST", f"/perdure/v1/functions/{_segment(function)}/redrive", json=body)
        return reply.json()["Redrives"]  # type: ignore[no-any-return]

    def put_destinations(self, function: str, on_success: str | None, on_failure: str | None) -> dict[str, Any]:
        """Sets the functions ``function``'s ended executions start (PutFunctionEventInvokeConfig)."""
        targets = {kind: {"Destination": name} for kind, name in (("OnSuccess", on_success), ("OnFailure", on_failure)) if name}
        return self._request(  # type: ignore[no-any-return]
            "PUT", f"/2019-09-25/functions/{_segment(function)}/event-invoke-config", json={"DestinationConfig": targets}
        ).json()

    def succeed_callback(self, callback_id: str, result: Any = None) -> None:
        content = json.dumps(result).encode() if result is not None else b""
        self._request("POST", f"/2025-12-01/durable-execution-callbacks/{_segment(callback_id)}/succeed", content=content)

    def fail_callback(self, callback_id: str, error_type: str | None = None, message: str | None = None) -> None:
        error = {k: v for k, v in (("ErrorType", error_type), ("ErrorMessage", message)) if v}
        self._request("POST", f"/2025-12-01/durable-execution-callbacks/{_segment(callback_id)}/fail", json=error)

    def heartbeat_callback(self, callback_id: str) -> None:
        self._request("POST", f"/2025-12-01/durable-execution-callbacks/{_segment(callback_id)}/heartbeat")

    def callback_link(self, callback_id: str, summary: str = "", expires_seconds: float | None = None) -> dict[str, Any]:
        """An approval link for an open callback: ``{"CallbackId", "Url", "ExpiresTimestamp"}`` (3 days by default)."""
        body: dict[str, Any] = {"Summary": summary}
        if expires_seconds is not None:
            body["ExpiresInSeconds"] = expires_seconds
        return self._request(  # type: ignore[no-any-return]
            "POST", f"/perdure/v1/durable-execution-callbacks/{_segment(callback_id)}/link", json=body
        ).json()
