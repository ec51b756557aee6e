"""The store contract's log lines (append_logs, list_logs), on SQLite and PostgreSQL."""

from __future__ import annotations

from store_backends import NOW, execution, insert

from perdure.protocol.records import ExecutionStatus, LogLine
from perdure.store.base import Store


def lines(invocation: int, *texts: str, stream: str = "stdout") -> list[LogLine]:
    return [LogLine(invocation, stream, NOW + i, text) for i, text in enumerate(texts)]


def test_log_lines_come_back_in_order_per_execution_and_page_by_seq(store: Store) -> None:
    insert(store, execution("a"), execution("b"))
    with store.transaction() as tx:
        tx.append_logs("a", lines(1, "one", "two"))
        tx.append_logs("b", lines(1, "other"))
        tx.append_logs("a", lines(2, "three", stream="log"))
        tx.append_logs("a", [])
    with store.snapshot() as tx:
        every = tx.list_logs("a", 0, 100)
        assert [(x.invocation, x.stream, x.line) for x in every] == [
            (1, "stdout", "one"),
            (1, "stdout", "two"),
            (2, "log", "three"),
        ]
        assert every[0].time == NOW and every[1].time == NOW + 1
        seqs = [x.seq for x in every]
        assert seqs == sorted(seqs) and len(set(seqs)) == 3 and seqs[0] > 0
        assert tx.list_logs("a", 0, 2) == every[:2]
        assert tx.list_logs("a", seqs[1], 2) == every[2:]
        assert tx.list_logs("a", seqs[2], 2) == []
        assert [x.line for x in tx.list_logs("b", 0, 10)] == ["other"]
        assert tx.list_logs("missing", 0, 10) == []


def test_log_lines_go_with_their_execution_on_delete_and_purge(store: Store) -> None:
    insert(
        store,
        execution("deleted", status=ExecutionStatus.SUCCEEDED, end_time=NOW),
        execution("purged", status=ExecutionStatus.SUCCEEDED, end_time=NOW - 40 * 86400, retention_days=1),
        execution("kept"),
    )
    with store.transaction() as tx:
        for name in ("deleted", "purged", "kept"):
            tx.append_logs(name, lines(1, f"{name} line"))
    assert store.delete_execution("deleted") is not None
    batch = store.purge_expired(NOW, 30, None)
    assert [e.id for e in batch.executions] == ["purged"]
    with store.snapshot() as tx:
        assert tx.list_logs("deleted", 0, 10) == []
        assert tx.list_logs("purged", 0, 10) == []
        assert [x.line for x in tx.list_logs("kept", 0, 10)] == ["kept line"]


def test_a_line_with_characters_the_database_cannot_hold_is_kept_with_them_replaced(store: Store) -> None:
    insert(store, execution("a"))
    with store.transaction() as tx:
        tx.append_logs("a", lines(1, "before", "nul\x00here", "lone \ud800 surrogate", "after"))
    with store.snapshot() as tx:
        assert [x.line for x in tx.list_logs("a", 0, 10)] == [
            "before",
            "nul\ufffdhere",
            "lone \ufffd surrogate",
            "after",
        ]
