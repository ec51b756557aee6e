"""Helpers the test folders share: real `perdure serve` processes, boto3 clients, waiting.

A module of its own, not conftest.py: `from conftest import ...` means whichever conftest pytest
imported last, and tests/store has one too.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ROOT / "tests" / "handlers"
PERDURE = [sys.executable, "-m", "perdure"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A `perdure serve` subprocess; ``kill`` sends SIGKILL, ``start`` (re)starts it on the same port.

    It serves open (``--dev``, on 127.0.0.1) unless ``dev`` is False: then it needs API keys.
    """

    def __init__(
        self,
        args: list[str],
        workdir: Path,
        env: dict[str, str],
        db_url: str | None = None,
        dev: bool = True,
        start_timeout: float = 30.0,
    ) -> None:
        self.args = [*args, "--dev"] if dev else args
        # How long it may take to answer /health: longer where it builds or packs much code first.
        self.start_timeout = start_timeout
        self.workdir = workdir
        self.env = env
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url or f"sqlite:///{workdir / 'perdure.db'}"
        self.log = workdir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [*PERDURE, "serve", *self.args, "--db", self.db_url, "--port", str(self.port)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, cwd=self.workdir, env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"perdure serve exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.endpoint}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"perdure serve did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILLs the server (its workers die with it)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Runs a `perdure` client command against this server."""
        return subprocess.run(
            [*PERDURE, *args, "--endpoint", self.endpoint],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def lambda_client(endpoint: str) -> Any:
    """A boto3 ``lambda`` client for a local server: dummy credentials, no retries."""
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=60),
    )


@contextmanager
def shared_server(tmp_path_factory: pytest.TempPathFactory, label: str, args: list[str]) -> Iterator[Server]:
    """A server for a whole test module (each test uses its own executions)."""
    workdir = tmp_path_factory.mktemp(label)
    env = {**os.environ, "PERDURE_TEST_LOG": str(workdir / "side-effects.log")}
    server = Server(args, workdir, env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def handler_target(name: str, attribute: str) -> str:
    return f"{name}={HANDLERS / 'journaled.py'}:{attribute}"


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> object:
    """Polls ``predicate`` until it returns a truthy value, or fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")
