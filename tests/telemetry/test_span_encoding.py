"""The export process's encoder gives OpenTelemetry's OTLP exporters the very bytes OpenTelemetry's
own encoder would, faster, and leaves the spans it was not written for to OpenTelemetry's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as opentelemetry_encode_spans
from opentelemetry.exporter.otlp.proto.http import trace_exporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from otlp_receiver import otlp_receiver

from perdure.telemetry import span_encoding
from perdure.telemetry.span_export import readable, resource
from perdure.telemetry.span_record import SpanRecord

ARN = "arn:aws:lambda:us-east-1:000000000000:function:order:$LATEST/durable-execution/o-1/4f1c"
TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def _perdure_spans() -> list[ReadableSpan]:
    """Spans as the export process builds them: a root, top-level and nested operations, an error."""
    execution = {"perdure.function": "order", "perdure.function.version": 3, "perdure.execution.arn": ARN}
    records = [
        SpanRecord(TRACE, 1, 0, "execution order", 10.0, 20.5, {**execution, "perdure.execution.status": "FAILED"},
                   ("ValueError", "out of stock"), SpanKind.SERVER),
        SpanRecord(TRACE, 2, 1, "invocation order", 10.0, 11.25,
                   {**execution, "perdure.invocation": 1, "perdure.invocation.outcome": "completed"}),
        SpanRecord(TRACE, 3, 1, "step charge", 10.5, 10.75,
                   {**execution, "perdure.operation.id": "1", "perdure.operation.name": "charge", "perdure.operation.attempt": 2,
                    "perdure.operation.sub_type": None, "ratio": 0.5, "retried": True}),
        SpanRecord(TRACE, 4, 3, "wait 1-1", 11.0, 10.0, {**execution, "perdure.operation.id": "1-1"}),  # ends "before" it starts
    ]  # fmt: skip
    spans_resource, scope = resource({"OTEL_SERVICE_NAME": "orders"}), InstrumentationScope("perdure")
    return [readable(record, spans_resource, scope) for record in records * 3]


def test_perdure_spans_encode_to_the_bytes_opentelemetrys_encoder_makes() -> None:
    spans = _perdure_spans()
    assert span_encoding.encode_spans(spans).SerializeToString() == opentelemetry_encode_spans(spans).SerializeToString()


def test_spans_of_two_resources_are_grouped_as_opentelemetry_groups_them() -> None:
    record = SpanRecord(TRACE, 9, 1, "step x", 1.0, 2.0, {})
    other = [readable(record, Resource.create({"service.name": "b"}), InstrumentationScope("b", "2"))]
    spans = _perdure_spans()[:2] + other + _perdure_spans()[2:]
    assert span_encoding.encode_spans(spans).SerializeToString() == opentelemetry_encode_spans(spans).SerializeToString()


def test_spans_it_was_not_written_for_are_left_to_opentelemetrys_encoder() -> None:
    context = SpanContext(TRACE, 7, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    spans = [
        *_perdure_spans(),
        ReadableSpan("with an event", context, events=[Event("retry", {"n": 1}, timestamp=5)]),
        ReadableSpan("with a link", context, links=[Link(context)]),
        ReadableSpan("with a list", context, attributes={"tags": ("a", "b")}),
        ReadableSpan("with a trace state", SpanContext(TRACE, 8, False, TraceFlags(1), TraceState([("vendor", "x")]))),
    ]
    for span in spans[-4:]:
        request = span_encoding.encode_spans([*spans[:4], span])
        assert request.SerializeToString() == opentelemetry_encode_spans([*spans[:4], span]).SerializeToString()


@pytest.fixture
def installed() -> Iterator[None]:
    """``install``ed for the test, and OpenTelemetry's encoder back in the HTTP exporter after it."""
    span_encoding.install()
    try:
        yield
    finally:
        trace_exporter.encode_spans = opentelemetry_encode_spans  # type: ignore[attr-defined]


def test_installed_the_otlp_exporter_sends_what_it_encodes(installed: None) -> None:
    assert trace_exporter.encode_spans is span_encoding.encode_spans  # type: ignore[attr-defined]
    with otlp_receiver() as receiver:
        exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces")
        exporter.export(_perdure_spans()[:4])
        exporter.shutdown()
        spans = receiver.wait_for(lambda spans: len(spans) == 4)
    (step,) = [span for span in spans if span.name == "step charge"]
    assert step.service_name == "orders"
    assert step.attributes == {
        "perdure.function": "order", "perdure.function.version": 3, "perdure.execution.arn": ARN, "perdure.operation.id": "1",
        "perdure.operation.name": "charge", "perdure.operation.attempt": 2, "ratio": 0.5, "retried": True,
    }  # fmt: skip
    (root,) = [span for span in spans if span.name == "execution order"]
    assert root.parent_span_id == "" and root.status_code == 2 and root.attributes["error.type"] == "ValueError"
