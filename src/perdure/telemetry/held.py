"""Telemetry held back while a transaction runs: recorded once its writes are committed, dropped if they are undone.

A store that runs several transactions in one SQLite transaction (``perdure.store.combining``)
may undo one that has run, and run it again, when another fails after writing. What it recorded
meanwhile (metrics, spans) is kept aside (``Held``) and recorded only once its writes are
committed: nothing is recorded twice, nor for writes that were undone. Outside such a
transaction nothing is held back and a record is made at once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_holding: ContextVar[list[Callable[[], None]] | None] = ContextVar("perdure_held_telemetry", default=None)


def held_here() -> list[Callable[[], None]] | None:
    """The records held back by the transaction running here, to add one to; None if none are."""
    return _holding.get()


class Held:
    """The records one transaction made while it ran."""

    def __init__(self) -> None:
        self._records: list[Callable[[], None]] = []

    def run(self, body: Callable[[], T]) -> T:
        """Runs ``body``, holding back what it records; call it in a context of its own (``Context.run``), which it changes."""
        _holding.set(self._records)
        return body()

    def release(self) -> None:
        """Makes the records held back (the transaction's writes are committed)."""
        records, self._records = self._records, []
        for record in records:
            record()
