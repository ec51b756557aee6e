"""Request bodies are capped while they arrive, before anything (sign-in, authentication) reads them.

A real `perdure serve` with a key: a 400 MB chunked body streamed at /signin, and at the API
with a bogus signature of a known key ID, is refused with 413 in Lambda's error shape after a
few KiB or MiB, and the server's memory does not grow; a Content-Length over the cap is refused
before a byte of the body is sent. Nothing is stored by the refused requests.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from servers import PERDURE, Server, handler_target

STREAMED = 400 * 1024 * 1024
CHUNK = 64 * 1024
# What the server may grow by while a refused body streams at it (allocator noise, one chunk).
ALLOWED_GROWTH = 16 * 1024 * 1024
_CLEAN_ENV = {
    k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("PERDURE_TOKEN", "PERDURE_SECRET")
}


def create_key(workdir: Path, db_url: str) -> dict[str, str]:
    made = subprocess.run(
        [*PERDURE, "keys", "create", "--name", "ci", "--db", db_url],
        cwd=workdir, env=_CLEAN_ENV, capture_output=True, text=True, timeout=60, check=True,
    )
    return dict(json.loads(made.stdout))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    workdir = tmp_path_factory.mktemp("body-limit")
    server = Server([handler_target("steps", "steps")], workdir, _CLEAN_ENV, dev=False)
    key = create_key(workdir, server.db_url)
    server.start()
    try:
        yield server, key
    finally:
        server.stop()


def _rss(pid: int) -> int:
    """The resident memory of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def _stream(port: int, head: str, total: int) -> tuple[bytes, int]:
    """Sends ``head`` and then up to ``total`` bytes of chunked body, stopping once the server answers.

    Returns what the server answered and how many body bytes were sent. A reader thread takes
    the reply as it arrives, so a server that answers and closes mid-body is heard.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    reply = bytearray()
    answered = threading.Event()

    def read() -> None:
        try:
            while data := sock.recv(65536):
                reply.extend(data)
                answered.set()
        except OSError:
            pass
        answered.set()

    reader = threading.Thread(target=read)
    reader.start()
    sent = 0
    piece = f"{CHUNK:x}\r\n".encode() + b"x" * CHUNK + b"\r\n"
    try:
        sock.sendall(head.encode())
        while sent < total and not answered.is_set():
            sock.sendall(piece)
            sent += CHUNK
        if not answered.is_set():
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass
    finally:
        # The server closes the connection after its answer, which ends the reader.
        reader.join(30)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        reader.join(10)
    return bytes(reply), sent


def _status_and_type(reply: bytes) -> tuple[int, str | None]:
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    lowered = {name.lower(): value for name, value in headers.items()}
    return int(head[0].split()[1]), lowered.get("x-amzn-errortype")


def _bogus_signature(key: dict[str, str]) -> str:
    now = datetime.datetime.now(datetime.UTC)
    return (
        f"Authorization: AWS4-HMAC-SHA256 Credential={key['AccessKeyId']}/{now:%Y%m%d}/us-east-1/lambda/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}\r\n"
        f"X-Amz-Date: {now:%Y%m%dT%H%M%SZ}\r\n"
    )


def _executions(server: Server, key: dict[str, str]) -> list[str]:
    reply = httpx.get(
        f"{server.endpoint}/2025-12-01/functions/steps/durable-executions",
        headers={"Authorization": f"Bearer {key['Token']}"},
    )
    assert reply.status_code == 200, reply.text
    return [e["DurableExecutionArn"] for e in reply.json()["DurableExecutions"]]


def _warm(server: Server) -> int:
    """Makes the server touch the code paths once; returns its memory after."""
    for _ in range(3):
        httpx.post(f"{server.endpoint}/signin", data={"token": "nope"}, headers={"Origin": server.endpoint})
        httpx.post(f"{server.endpoint}/2015-03-31/functions/steps/invocations", content=b"{}")
    assert server.process is not None
    return _rss(server.process.pid)


def test_a_huge_chunked_sign_in_is_refused_early_and_the_server_does_not_grow(server: tuple[Server, dict[str, str]]) -> None:
    srv, key = server
    before = _warm(srv)
    head = (
        f"POST /signin HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nOrigin: {srv.endpoint}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    )

    reply, sent = _stream(srv.port, head, STREAMED)

    assert srv.process is not None
    grown = _rss(srv.process.pid) - before
    assert _status_and_type(reply) == (413, "RequestTooLargeException"), reply[:500]
    assert b"16384 bytes" in reply
    assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes before refusing"
    assert grown < ALLOWED_GROWTH, f"the server grew by {grown / 2**20:.0f} MiB"
    assert "perdure_session" not in reply.decode("latin-1")


def test_a_huge_chunked_api_body_with_a_bogus_signature_is_refused_before_authentication(
    server: tuple[Server, dict[str, str]],
) -> None:
    srv, key = server
    before = _warm(srv)
    head = (
        f"POST /2015-03-31/functions/steps/invocations HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\n"
        f"{_bogus_signature(key)}Transfer-Encoding: chunked\r\n\r\n"
    )

    reply, sent = _stream(srv.port, head, STREAMED)

    assert srv.process is not None
    grown = _rss(srv.process.pid) - before
    assert _status_and_type(reply) == (413, "RequestTooLargeException"), reply[:500]
    assert sent < 64 * 1024 * 1024, f"the server read {sent} bytes before refusing"
    assert grown < ALLOWED_GROWTH + 16 * 1024 * 1024, f"the server grew by {grown / 2**20:.0f} MiB"
    assert _executions(srv, key) == []


@pytest.mark.parametrize("path", ["/signin", "/2015-03-31/functions/steps/invocations"])
def test_a_content_length_over_the_cap_is_refused_without_reading_the_body(
    server: tuple[Server, dict[str, str]], path: str
) -> None:
    srv, key = server
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nOrigin: {srv.endpoint}\r\n"
            f"Authorization: Bearer {key['Token']}\r\nContent-Length: {10**9}\r\n\r\n".encode()
        )
        # The server closes the connection after its answer: the body it did not read cannot follow.
        reply = b""
        while data := sock.recv(65536):
            reply += data

    status, code = _status_and_type(reply)
    assert (status, code) == (413, "RequestTooLargeException"), reply[:500]
    message = json.loads(reply.split(b"\r\n\r\n", 1)[1])["message"]
    assert message.startswith(f"The request body is {10**9} bytes, which is over the limit of")
    assert _executions(srv, key) == []


def test_bodies_under_the_cap_still_go_through(server: tuple[Server, dict[str, str]]) -> None:
    srv, key = server
    reply = httpx.post(
        f"{srv.endpoint}/2015-03-31/functions/steps/invocations",
        content=json.dumps({"n": "x" * 100_000}),
        headers={"Authorization": f"Bearer {key['Token']}", "X-Amz-Invocation-Type": "Event"},
    )
    assert reply.status_code == 202, reply.text
    signin = httpx.post(f"{srv.endpoint}/signin", data={"token": key['Token']}, headers={"Origin": srv.endpoint})
    assert signin.status_code == 303
