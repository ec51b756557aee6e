"""`perdure serve --dev` answers only this machine's clients, not web pages that reach it through a browser.

A real `perdure serve --dev`. A page of another site can make the browser POST to
127.0.0.1 with a "simple" request (``text/plain``, a form) that needs no CORS preflight, and
with DNS rebinding (its own name resolving to 127.0.0.1) it can even read the replies, as
``Host: evil.example:PORT``. So the server refuses a ``Host`` that is not a loopback name, on
every route, and on the API a request from another site (``Origin``, ``Sec-Fetch-Site``) or
with a body that is not JSON. Each refusal is checked to store nothing; then boto3-like and
perdure-client-like requests still go through.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from servers import Server, handler_target

INVOKE = "/2015-03-31/functions/steps/invocations"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("dev-guard")
    targets = [handler_target("steps", "steps"), handler_target("flow", "step_wait_callback")]
    server = Server(targets, workdir, {**os.environ, "PERDURE_TEST_LOG": str(workdir / "log")})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _executions(server: Server, function: str = "steps") -> list[str]:
    reply = httpx.get(f"{server.endpoint}/2025-12-01/functions/{function}/durable-executions")
    assert reply.status_code == 200, reply.text
    return sorted(e["DurableExecutionArn"] for e in reply.json()["DurableExecutions"])


def _refused(reply: httpx.Response, status: int, code: str) -> str:
    assert reply.status_code == status, reply.text
    assert reply.headers["x-amzn-ErrorType"] == code
    assert "set-cookie" not in reply.headers
    return str(reply.json()["message"])


@pytest.mark.parametrize(
    ("headers", "status", "code", "says"),
    [
        # What a page of another site sends with fetch(..., {mode: "no-cors", body: "{}"}).
        (
            {"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
            403, "AccessDeniedException", "another site",
        ),
        ({"Content-Type": "application/json", "Origin": "http://evil.example"}, 403, "AccessDeniedException", "http://evil.example"),
        ({"Content-Type": "application/json", "Origin": "null"}, 403, "AccessDeniedException", "'null'"),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403, "AccessDeniedException", "same-site"),
        ({"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403, "AccessDeniedException", "cross-site"),
        ({"Content-Type": "text/plain"}, 415, "UnsupportedMediaTypeException", "text/plain"),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "UnsupportedMediaTypeException", "form-urlencoded"),
        ({"Content-Type": "multipart/form-data; boundary=x"}, 415, "UnsupportedMediaTypeException", "multipart"),
        # DNS rebinding: the page's own origin, so Origin and Host agree, but Host is not loopback.
        ({"Content-Type": "application/json", "Host": "evil.example:{port}", "Origin": "http://evil.example:{port}"},
         403, "AccessDeniedException", "evil.example"),
        ({"Content-Type": "application/json", "Host": "127.0.0.1.evil.example"}, 403, "AccessDeniedException", "loopback"),
    ],
)
def test_a_refused_invoke_starts_nothing(server: Server, headers: dict[str, str], status: int, code: str, says: str) -> None:
    before = _executions(server)
    sent = {name: value.format(port=server.port) for name, value in headers.items()}

    reply = httpx.post(server.endpoint + INVOKE, content=b'{"count": 1}', headers={"X-Amz-Invocation-Type": "Event", **sent})

    assert says in _refused(reply, status, code)
    assert _executions(server) == before


def test_a_rebound_host_gets_no_dashboard_session_and_cannot_stop_an_execution(server: Server) -> None:
    started = httpx.post(
        server.endpoint + "/2015-03-31/functions/flow/invocations",
        content=b'{"wait": 0}',
        headers={"X-Amz-Invocation-Type": "Event", "X-Amz-Durable-Execution-Name": f"rebound-{uuid.uuid4().hex[:8]}"},
    )
    assert started.status_code == 202, started.text
    arn = started.headers["X-Amz-Durable-Execution-Arn"]
    evil = {"Host": f"evil.example:{server.port}"}
    origin = {**evil, "Origin": f"http://evil.example:{server.port}", "Sec-Fetch-Site": "same-origin"}

    for path in ("/", f"/execution?arn={quote(arn, safe='')}", "/inbox", "/signin"):
        _refused(httpx.get(server.endpoint + path, headers=evil), 403, "AccessDeniedException")
    stop = httpx.post(f"{server.endpoint}/actions/stop", data={"arn": arn, "csrf": "x"}, headers=origin)
    _refused(stop, 403, "AccessDeniedException")
    api_stop = httpx.post(
        f"{server.endpoint}/2025-12-01/durable-executions/{quote(arn, safe='')}/stop", json={}, headers=origin
    )
    _refused(api_stop, 403, "AccessDeniedException")

    execution = httpx.get(f"{server.endpoint}/2025-12-01/durable-executions/{quote(arn, safe='')}").json()
    assert execution["Status"] == "RUNNING"


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST", "[::1]:{port}", "127.0.0.2:{port}"])
def test_loopback_hosts_are_served(server: Server, host: str) -> None:
    headers = {"Host": host.format(port=server.port)}
    assert httpx.get(server.endpoint + "/health", headers=headers).status_code == 200
    page = httpx.get(server.endpoint + "/", headers=headers)
    assert page.status_code == 200
    assert "perdure_session" in page.headers["set-cookie"]


@pytest.mark.parametrize(
    "headers",
    [
        {},  # boto3's invoke and callback results, and perdure's client: a body with no Content-Type
        {"Content-Type": "application/json"},
        {"Content-Type": "application/json; charset=utf-8"},
        {"Content-Type": "application/x-amz-json-1.1"},
        {"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ],
)
def test_local_clients_still_invoke(server: Server, headers: dict[str, str]) -> None:
    sent = {name: value.format(port=server.port) for name, value in headers.items()}
    reply = httpx.post(server.endpoint + INVOKE, content=b'{"count": 1}', headers=sent)
    assert reply.status_code == 200, reply.text
    arn = reply.headers["X-Amz-Durable-Execution-Arn"]
    assert arn in _executions(server)


def test_the_perdure_cli_still_works(server: Server) -> None:
    done = server.cli("invoke", "steps", "--payload", '{"count": 2}')
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Status"] == "SUCCEEDED"
