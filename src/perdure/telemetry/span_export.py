"""Perdure's spans encoded and exported by OpenTelemetry's OTLP exporter in a process of their own.

Encoding a span as OTLP protobuf costs 17 µs plus about 3.5 µs an attribute (``encode_spans``
on the upb backend; 45-52 µs with Perdure's ten attributes), a quarter of a whole step on
SQLite. On the batch processor's thread it held the interpreter the steps run in, so it counted
in full against every traced step. Here the process that records spans only queues them (a
deque append); a thread hands them on in batches, as frames (``perdure.telemetry.span_record``),
over a pipe to a child process (``main``) that builds OpenTelemetry's ``ReadableSpan``s and
feeds them to its ``BatchSpanProcessor`` and OTLP exporter, configured by the same ``OTEL_*``
variables. The child also reads the spools its parent's worker processes write their spans to
(``perdure.telemetry.span_spool``), so that their spans never pass through the parent. The
encoding costs the same CPU, on another core: with every core busy, nothing is gained. The
child exports what it has and exits when the pipe closes, also when its parent dies.
"""

from __future__ import annotations

import atexit
import collections
import logging
import marshal
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, Status, StatusCode, TraceFlags

from perdure.telemetry import span_encoding
from perdure.telemetry.span_record import SpanRecord, frame, frames, read_frames, whole_frames
from perdure.telemetry.span_spool import SpoolReader

logger = logging.getLogger(__name__)

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
# How long the sending thread gathers spans before it sends them: a pipe write per batch, not
# per span; and how often the child reads the spools it follows.
_GATHER_SECONDS = 0.05
# Spans waiting to be sent beyond which new ones are dropped (and counted in a warning), as
# OpenTelemetry's BatchSpanProcessor does when its queue is full, rather than grow without bound.
_MAX_QUEUED = 65536
_FLUSH_TIMEOUT_SECONDS = 30.0
# How much lower the export process's priority is than its parent's (see ``main``).
_NICENESS = 10
# The child loads this module and the three it imports alone (they need nothing else of Perdure):
# importing Perdure cost it 0.45 s of CPU at its start, OpenTelemetry's SDK and exporter alone
# 0.24 s. Empty packages stand in for Perdure's, so that their ``__init__`` modules do not run.
_CHILD = """
import importlib, sys, types
from pathlib import Path
telemetry = Path(sys.argv[1]).parent
for name, folder in (("perdure", telemetry.parent), ("perdure.telemetry", telemetry)):
    package = types.ModuleType(name)
    package.__path__ = [str(folder)]
    sys.modules[name] = package
importlib.import_module("perdure.telemetry.span_export").main()
"""


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
        # Spools to start and to finish reading, sent with the next batch: whoever tells of them
        # (the pool, starting and ending worker processes) never waits for the pipe.
        self._follow: collections.deque[str] = collections.deque()
        self._release: collections.deque[str] = collections.deque()
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

    def follow(self, spool: Path) -> None:
        """Has the child read and export the spans another process writes to ``spool`` (a ``SpanSpool``'s directory)."""
        self._follow.append(str(spool))
        self._tell()

    def release(self, spool: Path) -> None:
        """The process writing to ``spool`` has ended: the child reads the rest of it, then removes it."""
        self._release.append(str(spool))
        self._tell()

    def _tell(self) -> None:
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
        """Returns once the child has exported every span queued or spooled so far (or 30 s have passed)."""
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
            self._send()
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
                self._send()

    def _send(self, flush: bool = False) -> bool:
        """Writes the queued spans and spools' news to the child (see ``serve``); False if there is no child."""
        batch = []
        while self._queue:
            batch.append(self._queue.popleft())
        follow = tuple(self._follow.popleft() for _ in range(len(self._follow)))
        release = tuple(self._release.popleft() for _ in range(len(self._release)))
        if self._dropped:
            logger.warning("%d spans were dropped: more than %d were waiting to be exported.", self._dropped, _MAX_QUEUED)
            self._dropped = 0
        if self._closed or (self._child is None and not (batch or follow or release)):
            _abandon(release)
            return False
        try:
            pipe = self._started().stdin
            if pipe is None:
                raise BrokenPipeError
            pipe.write(frame((frames(batch), follow, release, flush)))
            pipe.flush()
        except OSError:
            logger.exception("The span export process could not be started or is gone; %d spans were not exported.", len(batch))
            _abandon(release)
            return False
        return True


def _abandon(spools: tuple[str, ...]) -> None:
    """Removes spools whose writers have ended when there is no child to read them."""
    for spool in spools:
        logger.warning("The spans in %s were not exported: the span export process is gone.", spool)
        shutil.rmtree(spool, ignore_errors=True)


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


def _messages(data: bytearray) -> list[tuple[bytes, tuple[str, ...], tuple[str, ...], bool]]:
    """Takes the whole messages ``ExportProcess._send`` wrote off the start of ``data``."""
    messages, used = [], 0
    for begin, end in whole_frames(data):
        messages.append(marshal.loads(data[begin:end]))
        used = end
    del data[:used]
    return messages


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text else default
    except ValueError:
        return default


def serve(source: int, replies: IO[bytes], environ: Mapping[str, str]) -> None:
    """The child's loop: exports the spans read from the pipe ``source`` and the spools it names until
    the pipe closes, confirming flushes on ``replies``."""
    span_exporter = exporter(environ)
    # This process exports Perdure's spans alone: they are encoded faster than by OpenTelemetry's
    # encoder, to the same bytes (see ``span_encoding``).
    span_encoding.install()
    processor = BatchSpanProcessor(span_exporter) if span_exporter is not None else None
    spans_resource, scope = resource(environ), InstrumentationScope("perdure")
    spools: dict[str, SpoolReader] = {}
    # The batch processor drops spans past its queue's size (OTEL_BSP_MAX_QUEUE_SIZE); a spool read
    # at once can hold more (a worker's last moments, read when it has ended), so every half
    # queue's worth is exported at once (``force_flush`` exports in this thread).
    room = max(1, _int(environ.get("OTEL_BSP_MAX_QUEUE_SIZE"), 2048) // 2)
    queued = 0

    def export(records: list[SpanRecord]) -> None:
        nonlocal queued
        if processor is None:
            return
        for record in records:
            processor.on_end(readable(record, spans_resource, scope))
            queued += 1
            if queued >= room:
                processor.force_flush()
                queued = 0

    data = bytearray()
    while True:
        # Spools are read every _GATHER_SECONDS while there are any, as well as when the parent writes.
        if select.select([source], [], [], _GATHER_SECONDS if spools else None)[0]:
            chunk = os.read(source, 1 << 20)
            if not chunk:
                break
            data += chunk
        for batch, follow, release, flush in _messages(data):
            spools.update((spool, SpoolReader(Path(spool))) for spool in follow)
            export(read_frames(batch)[0])
            for spool in release:
                export((spools.pop(spool, None) or SpoolReader(Path(spool))).close())
            if flush:
                for reader in spools.values():
                    export(reader.read())
                if processor is not None:
                    processor.force_flush()
                    queued = 0
                replies.write(b"\n")
                replies.flush()
        for reader in spools.values():
            export(reader.read())
    # The parent is gone, and its worker processes with it (they die with it).
    for reader in spools.values():
        export(reader.close())
    if processor is not None:
        processor.shutdown()  # type: ignore[no-untyped-call]  # untyped in opentelemetry-sdk


def main() -> None:
    """The export process: serves its standard input and output."""
    # An interrupt (Ctrl-C reaches the whole process group) ends the parent; this process then
    # sees its pipe close, and exports what it has before it exits.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Exporting can wait (spans are exported in batches seconds apart anyway); the steps whose
    # spans these are cannot. On a machine whose cores are all busy, this process takes its CPU
    # after theirs rather than beside it; on an idle core it runs as fast as ever.
    os.nice(_NICENESS)
    serve(sys.stdin.fileno(), sys.stdout.buffer, os.environ)
