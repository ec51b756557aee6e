"""The chained-invoke and pause/resume/delete service tests (tests/service/), run again on PostgreSQL.

They are imported from their modules and collected here too, with a ``service`` fixture on a
PostgresStore on the session's test server (blobs where the SQLite store would put them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from perdure.service.executions import DurableService
from perdure.store.blobs import FileBlobStore
from perdure.store.postgres import PostgresStore
from perdure.testing import SkippableClock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "service"))
import test_chained_invoke as invoke
import test_pause_resume_delete as pause

for module in (invoke, pause):
    globals().update({name: value for name, value in vars(module).items() if name.startswith("test_")})


@pytest.fixture
def clock() -> Any:
    return SkippableClock()


@pytest.fixture
def service(request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path, clock: Any) -> Iterator[DurableService]:
    # The pause tests keep payloads over 100 characters in blobs, as their SQLite store does.
    pause_test = request.function.__module__ == pause.__name__
    store = PostgresStore(postgres_url, blobs=FileBlobStore(tmp_path / "blobs"), inline_limit=100 if pause_test else 64 * 1024)
    yield DurableService(store, clock=clock, functions=None if pause_test else invoke.FUNCTIONS)
    store.close()
