"""OTEL_TRACES_SAMPLER decides which executions' traces are recorded, the same way in every process."""

from __future__ import annotations

import random

from perdure.protocol.trace_context import own_trace, stored
from perdure.telemetry.tracing import samples


def test_the_standard_samplers() -> None:
    trace_ids = [random.getrandbits(128) for _ in range(4000)]
    assert all(samples(t, {}) for t in trace_ids), "always on unless asked otherwise"
    assert not any(samples(t, {"OTEL_TRACES_SAMPLER": "always_off"}) for t in trace_ids)
    assert not any(samples(t, {"OTEL_TRACES_SAMPLER": "parentbased_always_off"}) for t in trace_ids)
    tenth = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    kept = sum(samples(t, tenth) for t in trace_ids)
    assert 300 < kept < 500, kept
    # The decision is the trace ID's: any process asked about the same trace answers the same.
    assert [samples(t, tenth) for t in trace_ids[:50]] == [samples(t, tenth) for t in trace_ids[:50]]


def test_an_unsampled_trace_is_stored_as_such() -> None:
    context = own_trace("3f2a")
    unsampled = stored(context.header().removesuffix("-01") + "-00")
    assert unsampled is not None and not unsampled.sampled and unsampled.trace_id == context.trace_id
