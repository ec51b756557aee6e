"""Removes the fixed waits of ``aws-durable-execution-sdk-python`` that a local service does not need.

The SDK's checkpoint thread waits ``_BLOCKED_CALLER_WAIT_SECONDS`` (1 ms) to batch a blocked
caller's checkpoint with others, and polls for shutdown every ``_STOP_SIGNAL_POLL_SECONDS``
(100 ms), so every invocation ends about 100 ms late and every step costs about 1.3 ms. Over
Lambda's network those waits are small; against an in-process service they dominate. The two
constants are private, so the tuning is applied only to SDK versions it was tested with.
"""

from __future__ import annotations

import logging

from aws_durable_execution_sdk_python import __about__, state

TESTED_VERSIONS = frozenset({"3.0.0"})
TUNED = {"_STOP_SIGNAL_POLL_SECONDS": 0.001, "_BLOCKED_CALLER_WAIT_SECONDS": 0.0}

logger = logging.getLogger(__name__)


def apply() -> bool:
    """Sets the tuned values if this SDK version is a tested one; returns whether it did."""
    version = __about__.__version__
    if version not in TESTED_VERSIONS or not all(hasattr(state, name) for name in TUNED):
        logger.warning(
            "aws-durable-execution-sdk-python %s is not a version Perdure's tuning was tested with "
            "(%s); AWS-style handlers run with the SDK's own fixed waits.",
            version,
            ", ".join(sorted(TESTED_VERSIONS)),
        )
        return False
    for name, value in TUNED.items():
        setattr(state, name, value)
    return True
