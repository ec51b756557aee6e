"""Perdure's spans encoded and exported by OpenTelemetry's OTLP exporter in a process of their own.

Encoding a span as OTLP protobuf costs 17 µs plus about 3.5 µs an attribute (``encode_spans``
on the upb backend; 45-52 µs with Perdure's ten attributes), a quarter of a whole step on
SQLite. On the batch processor's thread it held the interpreter the steps run in, so it counted
in full against every traced step. Here the process that records spans only queues them (a
deque append); a thread hands them on in batches, pickled, over a pipe to a child process
(``main``) that builds OpenTelemetry's ``ReadableSpan``s and feeds them to its
``BatchSpanProcessor`` and OTLP exporter, configured by the same ``OTEL_*`` variables. The
encoding costs the same CPU, on another core: with every core busy, nothing is gained. The
child exports what it has and exits when the pipe closes, also when its parent dies.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

logger = logging.getLogger(__name__)

AttributeValue = str | int | float | bool
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
# How long the sending thread gathers spans before it sends them: a pipe write per batch, not per span.
_GATHER_SECONDS = 0.05
# Spans waiting to be sent beyond which new ones are dropped (and counted in a warning), as
# OpenTelemetry's BatchSpanProcessor does when its queue is full, rather than grow without bound.
_MAX_QUEUED = 65536
_FLUSH_TIMEOUT_SECONDS = 30.0
# The child loads this file alone (it needs nothing else of Perdure): importing Perdure cost it
# 0.45 s of CPU at its start, OpenTelemetry's SDK and exporter alone 0.24 s.
_PACKAGED_NAME = "perdure.telemetry.span_export"
_CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("perdure_span_export", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
module.main()
"""


@dataclass(frozen=True)
class SpanRecord:
    """A span that has ended, in a sampled trace (times in epoch seconds).

    ``parent_span_id`` 0 makes it the trace's root; ``error`` is ``(type, message)``;
    attributes that are None are left out.
    """

    trace_id: int
    span_id: int
    parent_span_id: int
    name: str
    start: float
    end: float
    attributes: Mapping[str, AttributeValue | None]
    error: tuple[str, str] | None = None
    kind: SpanKind = SpanKind.INTERNAL

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        # Pickled as its fields (the kind as its number): a quarter of the default's time and size,
        # paid for every span a worker process hands to its server.
        return _span_record, (
            self.trace_id, self.span_id, self.parent_span_id, self.name, self.start, self.end,
            self.attributes, self.error, self.kind.value,
        )  # fmt: skip


def _span_record(
    trace_id: int, span_id: int, parent_span_id: int, name: str, start: float, end: float,
    attributes: Mapping[str, AttributeValue | None], error: tuple[str, str] | None, kind: int,
) -> SpanRecord:  # fmt: skip
    return SpanRecord(trace_id, span_id, parent_span_id, name, start, end, attributes, error, SpanKind(kind))


def exporter(environ: Mapping[str, str]) -> SpanExporter | None:
    """OpenTelemetry's OTLP span exporter as the ``OTEL_*`` variables ask for, or None if they leave tracing off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() != "otlp":
        return None
    if not (environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        return None
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
    if protocol.strip().lower() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def resource(environ: Mapping[str, str]) -> Resource:
    """The resource of Perdure's spans: ``OTEL_SERVICE_NAME``, ``perdure`` by default."""
    return Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME") or "perdure"})


class ExportProcess:
    """The parent's end: queues spans and sends them to the exporting child (started by ``start``, else with the first)."""

    def __init__(self) -> None:
        self._queue: collections.deque[SpanRecord] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # the pipe's writers: the sending thread, flush and close
        self._child: subprocess.Popen[bytes] | None = None
        self._sending = False
        self._closed = False
        self._dropped = 0

    def put(self, record: SpanRecord) -> None:
        """Queues a span to be exported (no lock taken: the deque's append is atomic)."""
        if len(self._queue) >= _MAX_QUEUED:
            self._dropped += 1
            return
        self._queue.append(record)
        if len(self._queue) == 1:
            if not self._sending:
                self._start_sending()
            self._wake.set()

    def start(self) -> None:
        """Starts the child now rather than with the first span, so that its start overlaps other work."""
        self._start_sending()
        with self._lock:
            if not self._closed:
                self._started()

    def _start_sending(self) -> None:
        with self._lock:
            if not self._sending:
                threading.Thread(target=self._run, name="perdure-span-sender", daemon=True).start()
                atexit.register(self.close)
                self._sending = True

    def flush(self) -> None:
        """Returns once the child has exported every span queued so far (or 30 s have passed)."""
        with self._lock:
            if not self._send(flush=True) or self._child is None or self._child.stdout is None:
                return
            replies = self._child.stdout
            if select.select([replies], [], [], _FLUSH_TIMEOUT_SECONDS)[0]:
                replies.read(1)
            else:
                logger.warning("The span export process did not confirm its export within %.0f s.", _FLUSH_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Sends what is queued and lets the child export it and exit (called at the interpreter's exit)."""
        with self._lock:
            self._send(flush=False)
            child, self._child, self._closed = self._child, None, True
        if child is not None and child.stdin is not None:
            child.stdin.close()
            try:
                child.wait(_FLUSH_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                logger.warning("The span export process did not end within %.0f s; it is killed.", _FLUSH_TIMEOUT_SECONDS)
                child.kill()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._child is None:
            command = [sys.executable, "-c", _CHILD, __file__]
            self._child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self._child

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(_GATHER_SECONDS)
            with self._lock:
                if self._closed:
                    return
                self._send(flush=False)

    def _send(self, flush: bool) -> bool:
        """Writes the queued spans (and a request to confirm their export) to the child; False if there is no child."""
        batch = []
        while self._queue:
            batch.append(self._queue.popleft())
        if self._dropped:
            logger.warning("%d spans were dropped: more than %d were waiting to be exported.", self._dropped, _MAX_QUEUED)
            self._dropped = 0
        if self._closed or (self._child is None and not batch):
            return False
        try:
            pipe = self._started().stdin
            if pipe is None:
                raise BrokenPipeError
            pickle.dump((batch, flush), pipe, protocol=pickle.HIGHEST_PROTOCOL)
            pipe.flush()
        except OSError:
            logger.exception("The span export process could not be started or is gone; %d spans were not exported.", len(batch))
            return False
        return True


def readable(record: SpanRecord, spans_resource: Resource, scope: InstrumentationScope) -> ReadableSpan:
    """The finished span OpenTelemetry's span processors and exporters take, for ``record``."""
    attributes = {key: value for key, value in record.attributes.items() if value is not None}
    status = Status(StatusCode.UNSET)
    if record.error is not None:
        attributes["error.type"] = record.error[0]
        status = Status(StatusCode.ERROR, record.error[1])
    return ReadableSpan(
        record.name,
        context=SpanContext(record.trace_id, record.span_id, is_remote=False, trace_flags=_SAMPLED),
        parent=SpanContext(record.trace_id, record.parent_span_id, is_remote=True, trace_flags=_SAMPLED)
        if record.parent_span_id
        else None,
        resource=spans_resource,
        attributes=attributes,
        kind=record.kind,
        status=status,
        start_time=int(record.start * 1e9),
        end_time=int(max(record.start, record.end) * 1e9),
        instrumentation_scope=scope,
    )


class _Records(pickle.Unpickler):
    """Reads the parent's records in a child that loaded this module alone, not as part of Perdure."""

    def find_class(self, module: str, name: str) -> object:
        if module == _PACKAGED_NAME:
            return getattr(sys.modules[__name__], name)
        return super().find_class(module, name)


def serve(source: IO[bytes], replies: IO[bytes], environ: Mapping[str, str]) -> None:
    """The child's loop: exports the spans read from ``source`` until it closes, confirming flushes on ``replies``."""
    span_exporter = exporter(environ)
    processor = BatchSpanProcessor(span_exporter) if span_exporter is not None else None
    spans_resource, scope = resource(environ), InstrumentationScope("perdure")
    while True:
        try:
            batch, flush = _Records(source).load()
        except EOFError:
            break
        if processor is not None:
            for record in batch:
                processor.on_end(readable(record, spans_resource, scope))
        if flush:
            if processor is not None:
                processor.force_flush()
            replies.write(b"\n")
            replies.flush()
    if processor is not None:
        processor.shutdown()  # type: ignore[no-untyped-call]  # untyped in opentelemetry-sdk


def main() -> None:
    """The export process: serves its standard input and output."""
    # An interrupt (Ctrl-C reaches the whole process group) ends the parent; this process then
    # sees its pipe close, and exports what it has before it exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer, os.environ)
