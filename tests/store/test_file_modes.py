"""The data folder Perdure makes, and the database files in it, are for their owner alone."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import Server, handler_target, lambda_client

from perdure.service.executions import DurableService, StartRequest
from perdure.store.sqlite import SQLiteStore


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    """The umask most systems give users, which leaves new files readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_new_data_folder_and_its_database_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    store = SQLiteStore(folder / "perdure.db")
    try:
        # A write, with which SQLite creates the WAL and its index (-shm) beside the database; the
        # writers' lock file (perdure.store.writer_lock) is made with the store.
        DurableService(store).start_execution(StartRequest("orders"))
        assert _mode(folder) == 0o700
        for name in ("perdure.db", "perdure.db-wal", "perdure.db-shm", "perdure.db-writer"):
            assert _mode(folder / name) == 0o600, name
    finally:
        store.close()


def test_a_folder_the_user_made_keeps_its_mode(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir(mode=0o750)
    store = SQLiteStore(folder / "perdure.db")
    try:
        assert _mode(folder) == 0o750
        assert _mode(folder / "perdure.db") == 0o600
    finally:
        store.close()


def test_a_server_keeps_everything_in_its_data_folder_private(tmp_path: Path) -> None:
    folder = tmp_path / ".perdure"
    server = Server([handler_target("flow", "steps")], tmp_path, dict(os.environ), db_url=f"sqlite:///{folder / 'perdure.db'}")
    server.start()
    try:
        # A payload over the inline limit goes to a blob.
        payload = json.dumps({"pad": "x" * 100_000}).encode()
        lambda_client(server.endpoint).invoke(FunctionName="flow", Payload=payload, InvocationType="Event")
    finally:
        server.stop()
    assert _mode(folder) == 0o700
    files = [path for path in folder.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"perdure.db", "secret"}
    assert any(path.parent.parent.name == "blobs" for path in files)
    for path in files:
        assert _mode(path) == 0o600, path
