"""A journal handed over whole (a new execution's, sent with its invocation) is not read from the service."""

from __future__ import annotations

from typing import Any

from perdure.protocol.records import Operation, OperationStatus, OperationType
from perdure.sdk.journal import Journal


class Unreadable:
    """A service client that fails any use: the journal must not ask it for anything."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the journal asked the service for {name}")


def test_a_known_journal_is_used_as_it_is() -> None:
    start = Operation(id="e1", name="n", type=OperationType.EXECUTION, status=OperationStatus.STARTED, position=1, input_payload="{}")

    journal = Journal.load(Unreadable(), "arn", "token", [start])  # type: ignore[arg-type]

    assert journal.complete and journal.operations == {"e1": start}
    assert journal.execution_input() == {}
    assert journal.earlier("2") is None, "a complete journal knows there is nothing more"
