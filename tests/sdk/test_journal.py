"""The seed engine's journal when its invocation has lost the execution."""

from __future__ import annotations

import pytest

from perdure.errors import StaleCheckpointTokenError
from perdure.protocol.records import CheckpointResult, OperationAction, OperationType, OperationUpdate, Page
from perdure.sdk.journal import Journal, Suspend


class LostClient:
    """A service that refuses every checkpoint: another invocation (or a pause or stop) took over."""

    def checkpoint(
        self, arn: str, checkpoint_token: str, updates: list[OperationUpdate], client_token: str | None = None
    ) -> CheckpointResult:
        raise StaleCheckpointTokenError(arn)

    def get_state(self, arn: str, checkpoint_token: str, marker: str | None = None, max_items: int = 1000) -> Page:
        return Page([])


def test_a_write_refused_as_stale_ends_the_invocation_quietly() -> None:
    journal = Journal(LostClient(), "arn:x", "1.1.s", [])
    update = OperationUpdate("1", OperationType.STEP, OperationAction.START)
    # Suspend is a BaseException: the function's own `except Exception` cannot swallow it.
    with pytest.raises(Suspend, match="no longer holds"):
        try:
            journal.write([update])
        except Exception:  # noqa: BLE001 - what a user's handler might write
            pytest.fail("a stale token reached the function as an Exception")
    assert journal.token is None
    with pytest.raises(Suspend):
        journal.write([update])
