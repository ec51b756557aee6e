"""The service tests (tests/service/test_service.py), run again on a PostgreSQL store.

They are imported from that module and collected here too; every store they open, through its
``make_service`` or the ``service`` fixture, is a PostgresStore on the session's test server,
with its blob folder where the SQLite store would put it (``tmp_path / "blobs"``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perdure.service.executions import DurableService, ServiceConfig
from perdure.store.blobs import FileBlobStore
from perdure.store.postgres import PostgresStore
from perdure.testing import SkippableClock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "service"))
import test_service as base

globals().update({name: value for name, value in vars(base).items() if name.startswith("test_")})


@pytest.fixture(autouse=True)
def postgres_services(
    monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> Iterator[list[PostgresStore]]:
    """Makes the service tests' ``make_service`` open PostgreSQL stores; closes them after."""
    opened: list[PostgresStore] = []

    def make_service(path: Path, clock: Any, **config: Any) -> DurableService:
        store = PostgresStore(postgres_url, blobs=FileBlobStore(path / "blobs"))
        opened.append(store)
        return DurableService(store, ServiceConfig(**config), clock=clock)

    monkeypatch.setattr(base, "make_service", make_service)
    yield opened
    for store in opened:
        store.close()


@pytest.fixture
def clock() -> Any:
    return SkippableClock()


@pytest.fixture
def service(tmp_path: Path, clock: Any) -> DurableService:
    result: DurableService = base.make_service(tmp_path, clock)
    return result
