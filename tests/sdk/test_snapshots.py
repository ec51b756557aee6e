"""Snapshots of a growing list cost storage linear in what was saved, and resume exactly."""

from __future__ import annotations

from pathlib import Path

import flows

from perdure.testing import DurableTestRunner


def _checkpoint_payload_bytes(runner: DurableTestRunner, arn: str) -> int:
    execution = runner.service.get_execution(arn)
    with runner.service.store.snapshot() as tx:
        operations = tx.list_operations(execution.id, 0, 100_000)
    return sum(len(op.result or "") for op in operations if op.sub_type == "Checkpoint")


def test_a_growing_list_is_stored_as_deltas_not_again_and_again(tmp_path: Path) -> None:
    with DurableTestRunner(tmp_path) as runner:
        run = runner.run(flows.growing, {"turns": 200})
        assert run.result == 200
        stored = _checkpoint_payload_bytes(runner, run.arn)
    final_list = 200 * 1_000
    # Whole snapshots every time would store about 200 * 100 KB = 20 MB.
    assert stored < 6 * final_list, stored


def test_a_run_resumed_from_deep_in_a_delta_chain_has_every_item(tmp_path: Path) -> None:
    with DurableTestRunner(tmp_path) as runner:
        run = runner.run(flows.growing_then_approval, {"turns": 37})
        runner.succeed_callback(run.callbacks[0], True)
        finished = runner.resume(run)
    assert finished.result == {"count": 37, "first": "0000", "last": "0036", "approved": True}
