"""Retention on SQLite and PostgreSQL, with time skipped: each purge removes exactly the expired
executions, with every row of theirs and the blobs only they used, and nothing that is kept.

Executions with a retention of their own and with the service's default, ended at different
times, expire in turn; one still running (waiting for a callback) and sharing a blob with all of
them is never purged. Each kept execution is read back whole after each purge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import perdure as durable
from perdure.errors import ExecutionNotFoundError
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime.local import LocalRunner
from perdure.sdk.function import MARKER
from perdure.service.executions import DurableService
from perdure.store.blobs import FileBlobStore
from perdure.testing import SkippableClock

DAY = 86400.0
BIG = 70_000  # characters: over the 64 KiB inline limit, so each such payload is a blob
SHARED = "shared " * (BIG // 7)  # the same step result in every execution: one blob for all


def work(ctx: Any, event: dict[str, Any]) -> int:
    own = ctx.step(lambda: (event["tag"] + " ") * (BIG // (len(event["tag"]) + 1)), name="own")
    shared = ctx.step(lambda: SHARED, name="shared")
    if event.get("wait"):
        ctx.create_callback("approval").result()
    return len(own) + len(shared)


kept_three_days = durable.function(name="kept_three_days", retention_days=3)(work)
kept_by_default = durable.function(name="kept_by_default")(work)


class Fleet:
    """Runs executions on the service and remembers each one's blobs and rows."""

    def __init__(self, service: DurableService, clock: SkippableClock) -> None:
        self.service = service
        self.clock = clock
        self.start = clock()
        functions = [getattr(f, MARKER) for f in (kept_three_days, kept_by_default)]
        self.runner = LocalRunner(service, SnapshotCodec(b"retention"), functions)
        blobs = service.store.blobs
        assert isinstance(blobs, FileBlobStore)
        self.root = blobs.root
        self.arns: dict[str, str] = {}
        self.blobs: dict[str, set[str]] = {}
        self.history: dict[str, int] = {}

    def listing(self) -> set[str]:
        return {p.name for p in Path(self.root).rglob("*") if p.is_file()}

    def run(self, function: Any, tag: str, **extra: object) -> None:
        before = self.listing()
        arn = self.runner.start(getattr(function, MARKER), {"tag": tag, **extra}, tag).arn
        self.runner.run_until_blocked(arn)
        self.arns[tag] = arn
        self.blobs[tag] = self.listing() - before  # the blobs this execution added: its own
        self.history[tag] = len(self.service.get_history(arn).items)

    def purge(self, days: float) -> list[str]:
        self.clock.advance_to(self.start + days * DAY)
        report = self.service.purge_expired()
        tags = {arn: tag for tag, arn in self.arns.items()}
        return sorted(tags[e.arn] for e in report.executions)

    def assert_whole(self, tag: str) -> None:
        execution = self.service.get_execution(self.arns[tag])
        assert execution.input_payload is not None
        assert len(self.service.get_history(self.arns[tag]).items) == self.history[tag]

    def assert_gone(self, tag: str) -> None:
        with pytest.raises(ExecutionNotFoundError):
            self.service.get_execution(self.arns[tag])


def test_each_purge_removes_exactly_the_expired_executions_with_their_rows_and_blobs(
    service: DurableService, clock: SkippableClock
) -> None:
    fleet = Fleet(service, clock)
    fleet.run(kept_by_default, "waiting", wait=True)  # first: the shared blob counts as its own
    fleet.run(kept_three_days, "own-early")
    fleet.run(kept_by_default, "default-early")
    clock.advance(2 * DAY)
    fleet.run(kept_three_days, "own-late")
    fleet.run(kept_by_default, "default-late")
    assert service.get_execution(fleet.arns["waiting"]).status.value == "RUNNING"
    assert all(len(fleet.blobs[tag]) == 1 for tag in fleet.arns if tag != "waiting")  # its "own" step
    everything = fleet.listing()

    expected = {
        2.9: [],  # nothing has expired
        3.0: ["own-early"],  # ended at 0 with 3 days of its own
        5.0: ["own-late"],  # ended at 2 with 3 days of its own
        29.9: [],
        30.0: ["default-early"],  # ended at 0 with the default 30 days
        32.0: ["default-late"],
        400.0: [],  # the running one is never purged
    }
    gone: set[str] = set()
    for days, tags in expected.items():
        assert fleet.purge(days) == tags, f"purged at day {days}"
        gone.update(tags)
        for tag in gone:
            fleet.assert_gone(tag)
        for tag in set(fleet.arns) - gone:
            fleet.assert_whole(tag)
        assert fleet.listing() == everything - set().union(*(fleet.blobs[tag] for tag in gone))
    # The shared blob is still there for the waiting execution, which still runs to its end.
    callback = fleet.runner.open_callbacks(fleet.arns["waiting"])[0]
    service.succeed_callback(callback.callback_id or "", "true")
    assert fleet.runner.run_until_blocked(fleet.arns["waiting"]).status.value == "SUCCEEDED"


def test_a_purge_with_nothing_expired_deletes_nothing(service: DurableService, clock: SkippableClock) -> None:
    fleet = Fleet(service, clock)
    for number in range(3):
        fleet.run(kept_three_days, f"own-{number}")
        fleet.run(kept_by_default, f"default-{number}")
    everything = fleet.listing()

    dry = service.purge_expired(dry_run=True)
    assert fleet.purge(2.99) == [] and dry.executions == []
    for tag in fleet.arns:
        fleet.assert_whole(tag)
    assert fleet.listing() == everything
