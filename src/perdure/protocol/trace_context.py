"""The trace an execution belongs to, and the span IDs of its parts, as W3C trace context.

An execution lives for up to a year across many invocations and processes, so no process can
hold its spans open. Its IDs are fixed instead: the trace ID when it starts (the caller's, from a
``traceparent`` or ``X-Amzn-Trace-Id`` header, else one of its own), and every span ID derived
from the execution's ARN and what the span stands for (the execution, its Nth invocation, an
operation's attempt). Whichever process records a part, its span gets the same ID, so a step's
span recorded by a worker and the execution's span recorded a week later by the server join up.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_XRAY_ROOT = re.compile(r"Root=1-([0-9a-f]{8})-([0-9a-f]{24})")
_XRAY_PARENT = re.compile(r"Parent=([0-9a-f]{16})")
_XRAY_SAMPLED = re.compile(r"Sampled=([01])")


@dataclass(frozen=True)
class TraceContext:
    """A trace ID and the caller's span in it (0: the execution's span is the trace's root)."""

    trace_id: int
    parent_span_id: int = 0
    sampled: bool = True

    def header(self) -> str:
        """The stored form: a ``traceparent`` header, with an all-zero parent when there was no caller."""
        return f"00-{self.trace_id:032x}-{self.parent_span_id:016x}-{1 if self.sampled else 0:02x}"

    def xray(self) -> str:
        """The ``X-Amzn-Trace-Id`` form (``TraceHeader`` of GetDurableExecution)."""
        trace = f"{self.trace_id:032x}"
        header = f"Root=1-{trace[:8]}-{trace[8:]}"
        if self.parent_span_id:
            header += f";Parent={self.parent_span_id:016x}"
        return f"{header};Sampled={1 if self.sampled else 0}"


def parse_traceparent(text: str | None) -> TraceContext | None:
    """A W3C ``traceparent`` header (version 00), or None if it is absent or not valid
    (the spec says to ignore such a header and start a new trace, not to refuse the request)."""
    match = _TRACEPARENT.fullmatch((text or "").strip().lower())
    if match is None:
        return None
    trace_id, parent, flags = int(match[1], 16), int(match[2], 16), int(match[3], 16)
    if trace_id == 0:
        return None
    return TraceContext(trace_id, parent, bool(flags & 1))


def parse_xray(text: str | None) -> TraceContext | None:
    """An ``X-Amzn-Trace-Id`` header (``Root=1-…;Parent=…;Sampled=…``), or None if it has no root."""
    text = text or ""
    root = _XRAY_ROOT.search(text)
    if root is None:
        return None
    parent = _XRAY_PARENT.search(text)
    sampled = _XRAY_SAMPLED.search(text)
    return TraceContext(
        int(root[1] + root[2], 16), int(parent[1], 16) if parent else 0, sampled is None or sampled[1] == "1"
    )


@functools.lru_cache(maxsize=4096)
def stored(header: str | None) -> TraceContext | None:
    """The trace context an execution stored (``TraceContext.header``), or None if it has none."""
    match = _TRACEPARENT.fullmatch(header or "")
    if match is None:
        return None
    return TraceContext(int(match[1], 16), int(match[2], 16), bool(int(match[3], 16) & 1))


def own_trace(execution_id: str) -> TraceContext:
    """A trace of the execution's own, its ID derived from the execution's (a random UUID)."""
    digest = hashlib.blake2b(execution_id.encode(), digest_size=16).digest()
    return TraceContext(int.from_bytes(digest, "big") or 1)


def _span_id(*parts: object) -> int:
    """A span ID from what the span stands for; never 0, which W3C reserves."""
    key = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") or 1


# Kept: the execution's span is the parent of each of its top-level operations' spans, and a
# step's span ID is asked for twice in one process (to run the step inside it, then to record
# it); a hit costs 0.3 µs, a blake2b of the key 1.3 µs.
@functools.lru_cache(maxsize=4096)
def execution_span(execution_arn: str) -> int:
    return _span_id(execution_arn)


def invocation_span(execution_arn: str, invocation: int) -> int:
    return _span_id(execution_arn, "invocation", invocation)


@functools.lru_cache(maxsize=4096)
def operation_span(execution_arn: str, operation_id: str, attempt: int = 0) -> int:
    """An operation's span; a step has one per attempt (1, 2, ...), anything else attempt 0."""
    return _span_id(execution_arn, "operation", operation_id, attempt)
