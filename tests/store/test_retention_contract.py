"""The store contract's purge of expired executions (Store.purge_expired), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from store_backends import INLINE_LIMIT, NOW, event, execution, insert, operation

from perdure.errors import BlobNotFoundError
from perdure.protocol.records import Execution, ExecutionStatus
from perdure.protocol.timers import Timer, TimerKind
from perdure.store.base import Store
from perdure.store.blobs import blob_key

DAY = 86400.0
DEFAULT_DAYS = 30


def payload(letter: str) -> str:
    """A JSON string over the inline limit: it goes to a blob."""
    return '"' + letter * (INLINE_LIMIT * 2) + '"'


def key(text: str) -> str:
    return blob_key(text.encode("utf-8"))


def has_blob(store: Store, text: str) -> bool:
    try:
        return store.blobs.get(key(text)) == text.encode("utf-8")
    except BlobNotFoundError:
        return False


def finished(execution_id: str, days_ago: float, retention_days: int | None = None, **fields: object) -> Execution:
    return execution(
        execution_id,
        status=fields.pop("status", ExecutionStatus.SUCCEEDED),
        start_time=NOW - days_ago * DAY - 60,
        end_time=NOW - days_ago * DAY,
        retention_days=retention_days,
        **fields,
    )


def populate(store: Store) -> None:
    """Two expired executions among kept ones, with blobs of their own and shared ones.

    - ``old``: ended 31 days ago, default retention (30): expired.
    - ``own``: failed 8 days ago with a retention of 7 days: expired.
    - ``long``: ended 31 days ago with a retention of 60 days: kept.
    - ``recent``: ended a day ago, default retention: kept.
    - ``running``: started 100 days ago, still running: kept.
    Blob A, B: only ``old``'s; C: only ``own``'s; D: both expired ones'; S: ``old`` and ``long``.
    """
    insert(
        store,
        finished("old", 31, input_payload=payload("A"), result=payload("S")),
        finished("own", 8, 7, status=ExecutionStatus.FAILED, result=payload("D")),
        finished("long", 31, 60, input_payload=payload("S")),
        finished("recent", 1),
        execution("running", start_time=NOW - 100 * DAY),
    )
    with store.transaction() as tx:
        tx.put_operations("old", [operation("o1", 1, result=payload("B")), operation("o2", 2, input_payload=payload("D"))])
        tx.put_operations("own", [operation("w1", 1, input_payload=payload("C"))])
        tx.put_operations("long", [operation("l1", 1, result=payload("S"))])
        tx.append_events("old", [event(1), event(2)])
        tx.set_timer(Timer("old", "o1", TimerKind.WAIT, NOW + DAY))
        tx.put_checkpoint_reply("old", "token", "{}")


def test_purge_removes_exactly_the_expired_executions_and_their_own_blobs(store: Store) -> None:
    populate(store)

    batch = store.purge_expired(NOW, DEFAULT_DAYS, None)

    assert [(e.id, e.status, e.retention_days) for e in batch.executions] == [
        ("old", ExecutionStatus.SUCCEEDED, 30),
        ("own", ExecutionStatus.FAILED, 7),
    ]
    assert batch.executions[0].arn == execution("old").arn
    assert batch.executions[0].end_time == NOW - 31 * DAY
    assert batch.blobs == sorted(key(payload(c)) for c in "ABCD")
    with store.snapshot() as tx:
        for gone in ("old", "own"):
            assert tx.get_execution_by_id(gone) is None
            assert tx.list_operations(gone, 0, 10) == []
        assert tx.list_events("old", 0, 10, False) == []
        assert tx.due_timers(NOW + 2 * DAY, 10) == []
        assert tx.get_checkpoint_reply("old", "token") is None
        for kept in ("long", "recent", "running"):
            assert tx.get_execution_by_id(kept) is not None
        long = tx.get_execution_by_id("long")
        assert long is not None and long.input_payload == payload("S")
        assert tx.get_operations("long", ["l1"])["l1"].result == payload("S")
    assert [has_blob(store, payload(c)) for c in "ABCDS"] == [False, False, False, False, True]


def test_a_dry_run_reports_the_same_and_removes_nothing(store: Store) -> None:
    populate(store)

    dry = store.purge_expired(NOW, DEFAULT_DAYS, None, dry_run=True)

    with store.snapshot() as tx:
        assert all(tx.get_execution_by_id(e) is not None for e in ("old", "own", "long", "recent", "running"))
        assert len(tx.list_events("old", 0, 10, False)) == 2
    assert all(has_blob(store, payload(c)) for c in "ABCDS")
    assert store.purge_expired(NOW, DEFAULT_DAYS, None) == dry


def test_a_blob_shared_with_an_execution_of_a_later_batch_goes_with_the_last_of_them(store: Store) -> None:
    populate(store)

    first = store.purge_expired(NOW, DEFAULT_DAYS, 1)
    assert [e.id for e in first.executions] == ["old"]
    # D is still used by "own", which is expired but not yet purged; S by "long", kept.
    assert first.blobs == sorted(key(payload(c)) for c in "AB")
    assert has_blob(store, payload("D"))

    second = store.purge_expired(NOW, DEFAULT_DAYS, 1)
    assert [e.id for e in second.executions] == ["own"]
    assert second.blobs == sorted(key(payload(c)) for c in "CD")
    assert store.purge_expired(NOW, DEFAULT_DAYS, 1).executions == []


def test_retention_counts_from_the_end_to_the_second(store: Store) -> None:
    insert(store, finished("e1", 30), finished("e2", 30 - 1 / DAY))

    batch = store.purge_expired(NOW, DEFAULT_DAYS, None)

    assert [e.id for e in batch.executions] == ["e1"]


@pytest.mark.parametrize("days", [1, 365])
def test_the_default_retention_applies_only_to_executions_without_their_own(store: Store, days: int) -> None:
    insert(store, finished("default", 2), finished("own", 2, 400))

    batch = store.purge_expired(NOW, days, None)

    assert [e.id for e in batch.executions] == (["default"] if days == 1 else [])
