"""A full disk under SQLite: clear 503s, workers that live on, and every execution finished once space returns.

The data folder (database, WAL, blobs, snapshot key) is a small tmpfs, filled with a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from full_disk import TARGETS, full_disk_env, outlive_full_disk, tmpfs
from servers import Server

VOLUME_BYTES = 3 * 1024 * 1024


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs mounted for the test, or a skip where the machine does not allow it."""
    with tmpfs(tmp_path / "volume", VOLUME_BYTES) as folder:
        yield folder


def test_a_full_disk_answers_503_keeps_workers_and_every_execution_finishes_once_space_returns(
    volume: Path, tmp_path: Path
) -> None:
    server = Server(
        [*TARGETS, "--workers", "5"], tmp_path, full_disk_env(tmp_path), db_url=f"sqlite:///{volume / 'perdure.db'}"
    )
    server.start()
    try:
        outlive_full_disk(server, volume, tmp_path)
        # Checkpointed and truncated once space returned, the WAL does not keep the disk nearly
        # full: never checkpointed, it held 1.9 MB of the 3, and the next fill wedged the store.
        assert (volume / "perdure.db-wal").stat().st_size < VOLUME_BYTES / 3
    finally:
        server.stop()
