"""An S3-compatible server for the tests: moto's server mode, on 127.0.0.1, for the whole session.

It is started on a free port as a subprocess (``python -m moto.server``, from the test extras'
``moto[server]``) the first time a test asks for it, and stopped at the end of the session.
Its buckets live in memory: each test makes its own with ``create_bucket``. The credentials
are dummies (moto accepts any): ``s3`` puts them in the environment, where boto3 finds them,
and ``S3_ENV`` is what to pass to subprocesses.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

S3_ENV = {
    "AWS_ACCESS_KEY_ID": "perdure-test",
    "AWS_SECRET_ACCESS_KEY": "perdure-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3Server:
    """A running moto server; ``endpoint`` is its URL."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=S3_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        )

    def create_bucket(self) -> str:
        """Creates an empty bucket with a new name and returns the name."""
        name = f"perdure-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """The keys of the objects in ``bucket``, sorted."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(log: Path) -> S3Server:
    error = ""
    for _ in range(3):  # Another process may take the free port before moto binds it.
        port = _free_port()
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
            )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            try:
                httpx.get(f"{endpoint}/moto-api/", timeout=1)
                return S3Server(endpoint, process, log)
            except httpx.TransportError:
                time.sleep(0.1)
        process.kill()
        process.wait(10)
        error = log.read_text(errors="replace")
    raise RuntimeError(f"The test S3 server (moto) did not start:\n{error}")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The session's S3-compatible server."""
    log = Path(tempfile.mkdtemp(prefix="perdure-s3-")) / "moto.log"
    server = _start(log)
    try:
        yield server
    finally:
        server.process.terminate()
        try:
            server.process.wait(10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(10)


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server, with its dummy credentials in this process's environment."""
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    return s3_server
