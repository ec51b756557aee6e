"""The schedule rows, on both backends: written and read back whole, found due in order, and on
PostgreSQL shared out between two servers firing at once."""

from __future__ import annotations

import threading
from pathlib import Path

from store_backends import INLINE_LIMIT, NOW

from perdure.protocol.schedules import CatchUp, Schedule, ScheduleDefinition
from perdure.store.base import Store
from perdure.store.blobs import FileBlobStore
from perdure.store.postgres import PostgresStore


def schedule(function: str, name: str, next_due: float | None, **definition: object) -> Schedule:
    return Schedule(
        function_name=function,
        definition=ScheduleDefinition(name, "rate(1 minute)", **definition),  # type: ignore[arg-type]
        anchor=NOW,
        paused_time=None,
        last_tick=None,
        next_tick=next_due,
        next_due=next_due,
        updated_time=NOW,
    )


def test_a_schedule_is_read_back_as_written_and_replaced_by_name(store: Store) -> None:
    full = Schedule(
        function_name="report",
        definition=ScheduleDefinition(
            "nightly", "cron(0 2 * * ? *)", "Europe/Berlin", '{"a": 1}', False, NOW, NOW + 86400, 15, CatchUp.ALL
        ),
        anchor=NOW - 5,
        paused_time=NOW - 1,
        last_tick=NOW - 60,
        next_tick=NOW + 60,
        next_due=None,
        updated_time=NOW,
    )
    with store.transaction() as tx:
        tx.put_schedule(full)
        tx.put_schedule(schedule("report", "hourly", NOW))
    with store.snapshot() as tx:
        assert tx.get_schedule("report", "nightly") == full
        assert [s.name for s in tx.list_schedules("report")] == ["hourly", "nightly"]
    moved = schedule("report", "hourly", NOW + 60)
    with store.transaction() as tx:
        tx.put_schedule(moved)
        tx.delete_schedule("report", "nightly")
    with store.snapshot() as tx:
        assert tx.list_schedules() == [moved]
        assert tx.get_schedule("report", "nightly") is None


def test_due_schedules_are_the_served_functions_earliest_first(store: Store) -> None:
    with store.transaction() as tx:
        for function, name, due in [("a", "late", NOW - 1), ("a", "early", NOW - 5), ("a", "future", NOW + 5), ("b", "other", NOW - 9)]:
            tx.put_schedule(schedule(function, name, due))
        tx.put_schedule(schedule("a", "paused", None))
    with store.transaction() as tx:
        assert [s.name for s in tx.due_schedules(NOW, ["a"], 10)] == ["early", "late"]
        assert [s.name for s in tx.due_schedules(NOW, ["a", "b"], 2)] == ["other", "early"]
        assert tx.due_schedules(NOW, [], 10) == []
        assert tx.next_schedule_due(["a"]) == NOW - 5
        assert tx.next_schedule_due(["c"]) is None


def test_two_servers_firing_at_once_take_different_schedules(postgres_url: str, tmp_path: Path) -> None:
    stores = [PostgresStore(postgres_url, blobs=FileBlobStore(tmp_path / "blobs"), inline_limit=INLINE_LIMIT) for _ in range(2)]
    try:
        with stores[0].transaction() as tx:
            for i in range(4):
                tx.put_schedule(schedule("a", f"s{i}", NOW - 10 + i))
        holding, release = threading.Event(), threading.Event()
        taken: list[str] = []

        def first() -> None:
            with stores[0].transaction() as tx:
                taken.extend(s.name for s in tx.due_schedules(NOW, ["a"], 2))
                holding.set()
                release.wait(10)

        thread = threading.Thread(target=first)
        thread.start()
        assert holding.wait(10)
        try:
            # The rows the first holds are passed over, not waited for.
            with stores[1].transaction() as tx:
                assert [s.name for s in tx.due_schedules(NOW, ["a"], 4)] == ["s2", "s3"]
        finally:
            release.set()
            thread.join(10)
        assert taken == ["s0", "s1"]
    finally:
        for store in stores:
            store.close()
