"""One trace per execution, across its invocations and the time it waits, exported over OTLP.

A real `perdure serve` exports to a real OTLP/HTTP receiver (tests/otlp_receiver.py) through
OpenTelemetry's own exporter, configured by the standard variables only. The order it runs
(tests/handlers/traced.py) calls HTTP in a step, waits, waits for an approval that comes over
the API, and kills its worker process once.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import httpx
from otlp_receiver import ReceivedSpan, otlp_receiver
from servers import HANDLERS, Server, lambda_client, wait_for

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def _invoke(server: Server, function: str, payload: dict[str, object], headers: dict[str, str]) -> str:
    reply = httpx.post(
        f"{server.endpoint}/2015-03-31/functions/{function}/invocations",
        content=json.dumps(payload),
        headers={"X-Amz-Invocation-Type": "Event", **headers},
        timeout=30,
    )
    assert reply.status_code == 202, reply.text
    return reply.headers["X-Amz-Durable-Execution-Arn"]


def _execution(server: Server, arn: str) -> dict[str, object]:
    reply = httpx.get(f"{server.endpoint}/2025-12-01/durable-executions/{urllib.parse.quote(arn, safe='')}", timeout=10)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def _ended(spans: list[ReceivedSpan]) -> bool:
    return any(span.name == "execution traced_order" for span in spans) and any(span.name == "GET" for span in spans)


def test_an_order_that_waited_was_approved_and_crashed_once_is_one_trace(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    with otlp_receiver() as receiver:
        server = serve(
            str(HANDLERS / "traced.py"),
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        callback_file = tmp_path / "callback-id"
        arn = _invoke(
            server,
            "traced_order",
            {"url": f"{server.endpoint}/health", "callback_file": str(callback_file), "crash_marker": str(tmp_path / "crashed")},
            {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
        )
        wait_for(callback_file.exists, timeout=30)
        lambda_client(server.endpoint).send_durable_execution_callback_success(
            CallbackId=callback_file.read_text(), Result=json.dumps({"approved": True})
        )
        wait_for(lambda: _execution(server, arn)["Status"] == "SUCCEEDED", timeout=60)
        spans = receiver.wait_for(_ended)

    assert {span.trace_id for span in spans} == {CALLER_TRACE}, "every span is in the caller's trace"
    by_id = {span.span_id: span for span in spans}
    assert len(by_id) == len(spans), "no span was sent twice"
    (root,) = [span for span in spans if span.name == "execution traced_order"]
    assert root.parent_span_id == CALLER_SPAN
    assert root.attributes["perdure.execution.arn"] == arn
    assert root.attributes["perdure.execution.status"] == "SUCCEEDED"
    assert root.service_name == "perdure"

    invocations = sorted((s for s in spans if s.name == "invocation traced_order"), key=lambda s: s.start_ns)
    assert all(s.parent_span_id == root.span_id for s in invocations)
    outcomes = [s.attributes["perdure.invocation.outcome"] for s in invocations]
    # Up to the wait; up to the approval; the crash; the retry that ends it.
    assert outcomes == ["completed", "completed", "failed", "completed"], outcomes
    crashed = invocations[2]
    assert crashed.status_code == 2 and crashed.attributes["error.type"] == "Runtime.ExitError"
    assert [s.attributes["perdure.invocation"] for s in invocations] == [1, 2, 3, 4]

    def operation(name: str) -> ReceivedSpan:
        (found,) = [s for s in spans if s.attributes.get("perdure.operation.name") == name]
        return found

    stock, ship, wait = operation("check_stock"), operation("ship"), next(
        s for s in spans if s.attributes.get("perdure.operation.type") == "WAIT"
    )
    for top in (stock, ship, wait):
        assert top.parent_span_id == root.span_id
        assert top.attributes["perdure.function"] == "traced_order"
        assert top.attributes["perdure.operation.status"] == "SUCCEEDED"
    assert stock.attributes["perdure.operation.type"] == "STEP" and stock.attributes["perdure.operation.attempt"] == 1
    assert (wait.end_ns - wait.start_ns) / 1e9 >= 1.0, "the wait's span lasts as long as it waited"
    # The approval: a child context whose callback span is its child.
    callback = next(s for s in spans if s.attributes.get("perdure.operation.type") == "CALLBACK")
    context = by_id[callback.parent_span_id]
    assert context.attributes["perdure.operation.type"] == "CONTEXT" and context.parent_span_id == root.span_id
    # The handler's own httpx span nests under the step it ran in.
    (get,) = [s for s in spans if s.name == "GET"]
    assert get.parent_span_id == stock.span_id
    assert stock.start_ns <= get.start_ns <= get.end_ns <= stock.end_ns

    trace_header = _execution(server, arn)["TraceHeader"]
    assert trace_header == {"XAmznTraceId": f"Root=1-{CALLER_TRACE[:8]}-{CALLER_TRACE[8:]};Parent={CALLER_SPAN};Sampled=1"}


def test_without_a_traceparent_an_execution_is_a_trace_of_its_own(serve: Callable[..., Server], tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        server = serve(str(HANDLERS / "traced.py"), OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="100")
        arn = _invoke(server, "mostly_asleep", {}, {})
        wait_for(lambda: _execution(server, arn)["Status"] == "SUCCEEDED", timeout=60)
        spans = receiver.wait_for(lambda spans: any(s.name == "execution mostly_asleep" for s in spans))
    (root,) = [s for s in spans if s.name == "execution mostly_asleep"]
    assert root.parent_span_id == "", "the execution's span is the root of its trace"
    assert {s.trace_id for s in spans if s.attributes.get("perdure.execution.arn") == arn} == {root.trace_id}
    header = str(_execution(server, arn)["TraceHeader"]["XAmznTraceId"])  # type: ignore[index]
    assert header.startswith(f"Root=1-{root.trace_id[:8]}-{root.trace_id[8:]};Sampled=1")


def test_a_handler_with_aws_otel_plugin_for_its_sdk_keeps_working(serve: Callable[..., Server]) -> None:
    with otlp_receiver() as receiver:
        server = serve(
            f"instrumented={HANDLERS / 'aws_otel.py'}:instrumented",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        arn = _invoke(server, "instrumented", {}, {})
        wait_for(lambda: _execution(server, arn)["Status"] == "SUCCEEDED", timeout=60)
        spans = receiver.wait_for(
            lambda spans: any(s.name == "execution instrumented" for s in spans)
            and any(s.service_name == "perdure" and s.attributes.get("perdure.execution.arn") is None for s in spans)
        )
    assert json.loads(str(_execution(server, arn)["Result"])) == {"reserve": "reserved", "ship": "shipped"}
    ours = [s for s in spans if s.attributes.get("perdure.execution.arn") == arn]
    assert {s.attributes.get("perdure.operation.name") for s in ours} >= {"reserve", "cool_down", "ship"}
    # The plugin's own spans, exported through the provider Perdure made global in its worker.
    # They make a trace of their own: the plugin reads the trace from the process-wide
    # _X_AMZN_TRACE_ID, which a worker running many invocations at once cannot set for one.
    plugins = {s.name for s in spans if s.attributes.get("perdure.execution.arn") is None}
    assert {"Workflow", "Invocation", "ship"} <= plugins, plugins
