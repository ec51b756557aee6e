"""Fixtures that run real `perdure serve` processes on a temporary SQLite database."""

from __future__ import annotations

import os
import shutil
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
from s3_server import s3, s3_server  # noqa: F401  (fixtures for every test folder)
from pg_server import TEST_DB, PostgresServer, find_pg_bindir, start_server

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
        self, args: list[str], workdir: Path, env: dict[str, str], db_url: str | None = None, dev: bool = True
    ) -> None:
        self.args = [*args, "--dev"] if dev else args
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
        deadline = time.monotonic() + 30
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session, with an empty database ``perdure_test``."""
    bindir = find_pg_bindir()
    if bindir is None:
        where = os.environ.get("PERDURE_PG_BINDIR")
        message = (
            f"PERDURE_PG_BINDIR={where} has no initdb and pg_ctl: point it at PostgreSQL's bin folder."
            if where
            else "PostgreSQL server binaries (initdb, pg_ctl) were not found: install them "
            "(apt-get install postgresql) or set PERDURE_PG_BINDIR to their folder."
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = start_server(bindir)
    try:
        server.create_database(TEST_DB)
        yield server
    finally:
        server.run("pg_ctl", "stop", "-D", str(server.data), "-m", "immediate", "-w")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def side_effects(tmp_path: Path) -> Path:
    """A file the test handlers append a line to for every step body they run."""
    return tmp_path / "side-effects.log"


@pytest.fixture
def serve(tmp_path: Path, side_effects: Path) -> Iterator[Callable[..., Server]]:
    """Starts `perdure serve ARGS...` in a temporary folder; stops every server at the end."""
    servers: list[Server] = []
    env = {**os.environ, "PERDURE_TEST_LOG": str(side_effects)}

    def start(*args: str, **extra_env: str) -> Server:
        server = Server(list(args), tmp_path, {**env, **extra_env})
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


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
