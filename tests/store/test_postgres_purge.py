"""What only PostgreSQL needs for purges: a writer storing a blob and a purge in another process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_backends import INLINE_LIMIT, NOW, execution, insert

from perdure.protocol.records import ExecutionStatus
from perdure.store.blobs import FileBlobStore, blob_key
from perdure.store.postgres import PostgresStore

BIG = '"' + "p" * INLINE_LIMIT * 2 + '"'


@pytest.fixture
def two_stores(postgres_url: str, tmp_path: Path) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database and one blob folder, as two processes would have."""
    stores = [
        PostgresStore(postgres_url, blobs=FileBlobStore(tmp_path / "blobs"), inline_limit=INLINE_LIMIT) for _ in range(2)
    ]
    yield stores[0], stores[1]
    for store in stores:
        store.close()


def test_a_purge_keeps_a_blob_that_a_writer_is_storing_again(two_stores: tuple[PostgresStore, PostgresStore]) -> None:
    writer, purger = two_stores
    insert(writer, execution("old", status=ExecutionStatus.SUCCEEDED, end_time=NOW - 40 * 86400, input_payload=BIG))

    with writer.transaction() as tx:
        # Not committed yet: the purge cannot see this row, but the writer holds the blob's lock.
        tx.insert_execution(execution("new", input_payload=BIG))
        batch = purger.purge_expired(NOW, 30, None)

    assert [e.id for e in batch.executions] == ["old"]
    assert batch.blobs == []
    assert purger.blobs.get(blob_key(BIG.encode())) == BIG.encode()
    with purger.snapshot() as tx:
        new = tx.get_execution_by_id("new")
        assert new is not None and new.input_payload == BIG


def test_a_purge_skips_an_execution_another_transaction_holds(two_stores: tuple[PostgresStore, PostgresStore]) -> None:
    writer, purger = two_stores
    insert(
        writer,
        execution("held", status=ExecutionStatus.SUCCEEDED, end_time=NOW - 40 * 86400),
        execution("free", status=ExecutionStatus.SUCCEEDED, end_time=NOW - 40 * 86400),
    )

    with writer.transaction() as tx:
        tx.get_execution_by_id("held")  # locks its row until this transaction ends
        batch = purger.purge_expired(NOW, 30, None)

    assert [e.id for e in batch.executions] == ["free"]
    assert [e.id for e in purger.purge_expired(NOW, 30, None).executions] == ["held"]
