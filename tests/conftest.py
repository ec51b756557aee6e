"""Fixtures that run real `perdure serve` processes on a temporary SQLite database."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from s3_server import s3, s3_server  # noqa: F401  (fixtures for every test folder)
from pg_server import TEST_DB, PostgresServer, find_pg_bindir, start_server
from servers import Server


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
