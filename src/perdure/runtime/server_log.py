"""The log a server process and its worker processes write on stderr: text, or JSON lines.

In text, the default, a server configures no logging: each record of WARNING and above is its
message alone (Python's ``logging.lastResort``), and uvicorn writes its own lines in its own
format. With ``--log-format json`` each record is one JSON object, for a log collector to read
by field rather than parse::

    {"time": "2025-06-01T09:30:00.123Z", "level": "WARNING", "logger": "perdure.runtime.workers",
     "message": "...", "execution_arn": "arn:aws:lambda:...", "function": "orders", "invocation": 2}

A record about an execution carries its fields (``perdure.protocol.log_context``): those its log
call passed with ``extra=``, completed by the context of the code that logged it. Worker
processes write to the server's stderr directly (they inherit it, and nothing passes their lines
through the server's logging), so each formats its own lines the same way.
"""

from __future__ import annotations

import datetime
import json
import logging

from perdure.protocol.log_context import FIELDS, current_log_context


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one line of JSON: time, level, logger, message, the execution it is about, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_execution_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # ASCII with escapes (json's default): a message's newlines and control characters cannot
        # break the one line per record a collector splits on.
        return json.dumps(line, default=str)


def _utc(created: float) -> str:
    moment = datetime.datetime.fromtimestamp(created, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _execution_fields(record: logging.LogRecord) -> dict[str, object]:
    """The execution a record is about: the fields its log call passed, completed by the logging code's context
    when that is about the same execution; else that context's fields."""
    context = current_log_context()
    fields: dict[str, object] = dict(context.fields()) if context is not None else {}
    arn = getattr(record, "execution_arn", None)
    if arn is not None:
        if arn != fields.get("execution_arn"):
            fields = {}
        fields.update({name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None})
    return fields


def log_server_as_json() -> None:
    """Writes every record of this server process to stderr as a JSON line, ``warnings`` included.

    Perdure's records of INFO and above (what it serves, its purges), other libraries' of
    WARNING and above, as in text. uvicorn's loggers reach this handler only when uvicorn is
    run with ``log_config=None``, which leaves them without handlers of their own.
    """
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLineFormatter())
    logging.getLogger().addHandler(handler)
    logging.getLogger("perdure").setLevel(logging.INFO)
    logging.captureWarnings(True)


def log_worker_runtime(json_lines: bool) -> None:
    """Writes the worker runtime's own records to stderr, as JSON lines or as text, and nowhere else.

    Otherwise they would reach the root logger, where ``perdure.runtime.logcapture`` keeps the
    lines of the functions running: a line logged from an invocation's thread after its
    capture closed would go into another invocation's lines when just one is open, and nowhere
    when several are.
    """
    handler = logging.StreamHandler()
    # Text as ``logging.lastResort`` writes it, so text mode reads as it did before.
    handler.setFormatter(JsonLineFormatter() if json_lines else logging.Formatter("%(message)s"))
    runtime = logging.getLogger("perdure.runtime")
    runtime.addHandler(handler)
    runtime.setLevel(logging.INFO if json_lines else logging.WARNING)
    runtime.propagate = False
