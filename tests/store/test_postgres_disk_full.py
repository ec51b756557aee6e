"""A full disk under PostgreSQL: clear 503s, workers that live on, and every execution finished once space returns.

Its own throwaway server, whose test database lives in a tablespace on a small tmpfs, filled
with a file. Only data files fill: the WAL stays in the server's data folder, since PostgreSQL
stops (PANIC) when it cannot write WAL, where a table that cannot grow fails its statement
with SQLSTATE 53100 (disk_full).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from full_disk import TARGETS, full_disk_env, outlive_full_disk, tmpfs
from pg_server import find_pg_bindir, start_server
from servers import Server

# A new database copies template1 (about 7.5 MB on PostgreSQL 15) into the tablespace.
VOLUME_BYTES = 24 * 1024 * 1024


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The URL of a database in a tablespace on a small tmpfs, and the tmpfs; or a skip."""
    bindir = find_pg_bindir()
    if bindir is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) were not found: install them or set PERDURE_PG_BINDIR."
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = start_server(bindir)
    try:
        owner = (server.account.pw_uid, server.account.pw_gid) if server.account else None
        # Under the server's own folder: PostgreSQL's user cannot reach into pytest's (0700, root's).
        with tmpfs(server.root / "volume", VOLUME_BYTES, owner) as volume:
            with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE TABLESPACE small LOCATION '{volume}'")
                conn.execute("CREATE DATABASE perdure_small TABLESPACE small")
            yield server.url("perdure_small"), volume
    finally:
        server.run("pg_ctl", "stop", "-D", str(server.data), "-m", "immediate", "-w")
        shutil.rmtree(server.root, ignore_errors=True)


def test_a_full_disk_answers_503_keeps_workers_and_every_execution_finishes_once_space_returns(
    database: tuple[str, Path], tmp_path: Path
) -> None:
    url, volume = database
    server = Server([*TARGETS, "--workers", "5"], tmp_path, full_disk_env(tmp_path), db_url=url)
    server.start()
    try:
        # Under the inline limit (payloads over it go to the blob folder, not this disk), and
        # not compressible to nothing as a row's TOAST is.
        outlive_full_disk(server, volume, tmp_path, pad=os.urandom(15_000).hex())
    finally:
        server.stop()
