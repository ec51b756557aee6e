"""Slow and idle clients are cut off: a half-sent request head or body does not hold a connection.

A real `perdure serve --request-timeout 1`: connections that send nothing, half a request head,
or a head and half a body are closed (the last answered 408 in Lambda's error shape) within a
few seconds, 200 of them at once as well as one, while other clients are served meanwhile.
Nothing is stored by the cut-off requests.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from servers import Server, handler_target

TIMEOUT = 1.0
# How long past the timeout a connection may stay open (the server checks on a timer).
SLACK = 4.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("slow-clients")
    server = Server([handler_target("steps", "steps"), "--request-timeout", str(TIMEOUT)], workdir, dict(os.environ))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _connect(server: Server, sent: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT + SLACK)
    sock.sendall(sent)
    return sock


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Reads until the server closes the connection; whether it did within ``seconds``, and what it sent."""
    sock.settimeout(seconds)
    received = bytearray()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                return True, bytes(received)
            received.extend(data)
    except ConnectionResetError:
        return True, bytes(received)
    except TimeoutError:
        return False, bytes(received)
    finally:
        sock.close()
    return False, bytes(received)


def _executions(server: Server) -> list[str]:
    reply = httpx.get(f"{server.endpoint}/2025-12-01/functions/steps/durable-executions")
    assert reply.status_code == 200, reply.text
    return [e["DurableExecutionArn"] for e in reply.json()["DurableExecutions"]]


def _head(server: Server, length: int) -> bytes:
    return (
        f"POST /2015-03-31/functions/steps/invocations HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_a_connection_that_sends_nothing_is_closed(server: Server) -> None:
    closed, _ = _closed_within(_connect(server, b""), TIMEOUT + SLACK)
    assert closed


def test_a_half_sent_request_head_is_closed(server: Server) -> None:
    sock = _connect(server, f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-Slow: ".encode())
    closed, _ = _closed_within(sock, TIMEOUT + SLACK)
    assert closed


def test_a_head_sent_a_byte_at_a_time_is_closed_at_the_deadline(server: Server) -> None:
    sock = _connect(server, b"G")
    started = time.monotonic()
    try:
        for byte in b"ET /health HTTP/1.1\r\nX-Slow: " + b"a" * 100:
            sock.sendall(bytes([byte]))
            time.sleep(0.2)
            if time.monotonic() - started > TIMEOUT + SLACK:
                pytest.fail("the server still reads a head that has dribbled in for longer than its timeout")
    except (BrokenPipeError, ConnectionResetError):
        return
    finally:
        sock.close()


def test_a_half_sent_body_is_answered_408_and_starts_nothing(server: Server) -> None:
    before = _executions(server)
    sock = _connect(server, _head(server, 100) + b'{"half": ')

    closed, reply = _closed_within(sock, TIMEOUT + SLACK)

    assert closed
    assert reply.startswith(b"HTTP/1.1 408 "), reply[:300]
    assert b"x-amzn-errortype: RequestTimeoutException" in reply
    message = json.loads(reply.split(b"\r\n\r\n", 1)[1])["message"]
    assert message.startswith("The request body did not arrive within 1 seconds of its headers.")
    assert _executions(server) == before


def test_200_half_sent_requests_are_closed_while_others_are_served(server: Server) -> None:
    before = _executions(server)
    socks = [_connect(server, _head(server, 100) if i % 2 else b"GET /health HTTP/1.1\r\n") for i in range(200)]
    try:
        assert httpx.get(f"{server.endpoint}/health").status_code == 200
        reply = httpx.post(
            f"{server.endpoint}/2015-03-31/functions/steps/invocations",
            content=b"{}",
            headers={"Content-Type": "application/json", "X-Amz-Invocation-Type": "Event"},
        )
        assert reply.status_code == 202, reply.text
        time.sleep(TIMEOUT)
        assert all(_closed_within(sock, SLACK)[0] for sock in socks)
    finally:
        for sock in socks:
            sock.close()
    assert len(_executions(server)) == len(before) + 1
