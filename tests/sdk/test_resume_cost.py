"""A resumed invocation reads its latest checkpoint and what followed, not the whole journal."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import resume_flows

from perdure.protocol.records import Operation, Page
from perdure.protocol.snapshots import SnapshotCodec
from perdure.runtime.local import LocalRunner
from perdure.service.executions import DurableService
from perdure.store.sqlite import SQLiteStore
from perdure.testing import DurableTestRunner, SkippableClock, _durable


class ReadCountingService(DurableService):
    """The real service, counting the operations it hands out to invocations."""

    operations_read = 0
    reads_by_id = 0

    def get_operations(self, arn: str, checkpoint_token: str, ids: Collection[str]) -> list[Operation]:
        self.reads_by_id += 1
        return super().get_operations(arn, checkpoint_token, ids)

    def get_state(self, arn: str, checkpoint_token: str, marker: str | None = None, max_items: int = 1000) -> Page:
        page = super().get_state(arn, checkpoint_token, marker, max_items)
        self.operations_read += len(page.items)
        return page


def test_a_resume_reads_the_latest_checkpoint_and_what_followed_not_the_journal_before(tmp_path: Path) -> None:
    clock = SkippableClock()
    service = ReadCountingService(SQLiteStore(tmp_path / "perdure.db"), clock=clock)
    function = _durable(resume_flows.checkpoints_then_wait)
    runner = LocalRunner(service, SnapshotCodec(b"key"), [function])
    try:
        arn = runner.start(function, {"count": 250}).arn
        assert runner.run_ready() == 1
        suspended = service.get_execution(arn)
        assert not suspended.status.is_terminal and suspended.operation_count > 250
        wakeup = service.next_wakeup()
        assert wakeup is not None
        clock.advance_to(wakeup)
        service.operations_read = 0
        assert runner.run_ready() == 1
        ended = service.get_execution(arn)
        assert (ended.status.value, ended.result) == ("SUCCEEDED", str(sum(range(250)) + 100))
        # The wait's own checkpoint and the wait: not the 250 checkpoints before them. That
        # checkpoint's snapshot is a delta of the 95 before it (back to the last whole one),
        # read by their IDs, many at a time.
        assert service.operations_read == 2
        assert 1 <= service.reads_by_id <= 2
    finally:
        service.store.close()


def test_a_retry_count_recorded_before_the_latest_checkpoint_still_counts(tmp_path: Path) -> None:
    with DurableTestRunner(tmp_path / "db") as runner:
        run = runner.run(resume_flows.checkpoints_further_each_attempt, {"folder": str(tmp_path)})
    # The first attempt and two retries. The third resumed from a checkpoint recorded after
    # the retry count, and found the count all the same: no fourth.
    assert (tmp_path / "invocations").read_text() == "3"
    assert run.status == "FAILED" and run.error is not None
    assert run.error.message == "invocation 3 failed"
