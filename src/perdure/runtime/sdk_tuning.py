"""Removes the fixed waits of ``aws-durable-execution-sdk-python`` that a local service does not need.

The SDK's checkpoint thread waits ``_BLOCKED_CALLER_WAIT_SECONDS`` (1 ms) to batch a blocked
caller's checkpoint with others, which costs every step a millisecond against an in-process
service; the tuning sets it to 0. And the thread looks for the invocation's end only every
``_STOP_SIGNAL_POLL_SECONDS`` (100 ms) while its queue is empty, so every invocation would end
about 100 ms late. Polling more often (it was tuned to 1 ms) made each idle invocation's thread
wake a thousand times a second: with a hundred CPU-light invocations at once in one worker
process, half of its CPU time went to those wake-ups and the interpreter lock's hand-overs
(issue 17). Instead the thread is woken when checkpointing stops, by the signal the SDK itself
sends it through its queue when a refresh is scheduled, and the poll is left as it is.

The constants and the signal are private, so the tuning is applied only to SDK versions it was
tested with.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from aws_durable_execution_sdk_python import __about__, state

TESTED_VERSIONS = frozenset({"3.0.0"})
TUNED = {"_BLOCKED_CALLER_WAIT_SECONDS": 0.0}
# What the tuning touches besides ``TUNED``: the stop it follows, and the queue and signal it wakes the thread with.
_NEEDED = ("_Signal", "ExecutionState")

logger = logging.getLogger(__name__)


def apply() -> bool:
    """Sets the tuned values, and the wake-up at stop, if this SDK version is a tested one; returns whether it did."""
    version = __about__.__version__
    if version not in TESTED_VERSIONS or not all(hasattr(state, name) for name in (*TUNED, *_NEEDED)):
        logger.warning(
            "aws-durable-execution-sdk-python %s is not a version Perdure's tuning was tested with "
            "(%s); AWS-style handlers run with the SDK's own fixed waits.",
            version,
            ", ".join(sorted(TESTED_VERSIONS)),
        )
        return False
    for name, value in TUNED.items():
        setattr(state, name, value)
    stop = state.ExecutionState.stop_checkpointing
    if not getattr(stop, "wakes_the_thread", False):
        state.ExecutionState.stop_checkpointing = _waking(stop)  # type: ignore[method-assign,assignment]
    return True


def _waking(stop: Callable[[state.ExecutionState], None]) -> Callable[[state.ExecutionState], None]:
    """``ExecutionState.stop_checkpointing`` that also wakes the checkpoint thread waiting on its queue."""

    @functools.wraps(stop)
    def stop_checkpointing(self: state.ExecutionState) -> None:
        stop(self)
        # The thread takes the signal, finds checkpointing stopped and returns, rather than
        # at its next poll (a signal taken after it returned is harmless: the queue is not read).
        self._checkpoint_queue.put(state._Signal.REFRESH_WAKE)

    stop_checkpointing.wakes_the_thread = True  # type: ignore[attr-defined]
    return stop_checkpointing
