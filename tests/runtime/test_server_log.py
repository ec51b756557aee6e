"""The server's own log as JSON lines: one object a record, with the execution a line is about."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
import threading
from typing import Any

from perdure.protocol.log_context import LogContext, about
from perdure.runtime.server_log import JsonLineFormatter

ARN = "arn:aws:lambda:us-east-1:000000000000:function:orders:$LATEST/durable-execution/o-1/abc"
OTHER = "arn:aws:lambda:us-east-1:000000000000:function:refunds:$LATEST/durable-execution/r-9/def"


def formatted(**kwargs: Any) -> dict[str, Any]:
    """The JSON line of a WARNING record of ``perdure.test`` logged now, with ``kwargs`` as its log call's."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("perdure.test")
    logger.addHandler(handler)
    try:
        logger.warning(kwargs.pop("msg", "Something happened."), *kwargs.pop("args", ()), **kwargs)
    finally:
        logger.removeHandler(handler)
    line = JsonLineFormatter().format(records[0])
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_a_record_is_one_line_of_utc_time_level_logger_and_message() -> None:
    line = formatted(msg="Invocation %d of %s:\nit timed out.", args=(2, "x"))
    assert list(line) == ["time", "level", "logger", "message"]
    assert line["level"] == "WARNING" and line["logger"] == "perdure.test"
    assert line["message"] == "Invocation 2 of x:\nit timed out."
    time = line["time"]
    assert len(time) == len("2025-06-01T09:30:00.123Z") and time[10] == "T" and time.endswith("Z"), time


def test_a_line_logged_while_working_on_an_execution_names_it_and_its_function() -> None:
    with about(LogContext.of_execution(ARN, operation_id="3")):
        line = formatted()
    assert line["execution_arn"] == ARN and line["function"] == "orders" and line["operation_id"] == "3"
    assert "execution_arn" not in formatted(), "the context ends with the block"


def test_the_fields_a_log_call_passes_are_completed_by_the_context_of_the_same_execution_only() -> None:
    with about(LogContext(ARN, "orders", invocation=4)):
        same = formatted(extra=LogContext(ARN, operation_id="7").fields())
        other = formatted(extra=LogContext.of_execution(OTHER).fields())
    assert {k: same[k] for k in ("execution_arn", "function", "invocation", "operation_id")} == {
        "execution_arn": ARN, "function": "orders", "invocation": 4, "operation_id": "7",
    }  # fmt: skip
    assert other["execution_arn"] == OTHER and other["function"] == "refunds" and "invocation" not in other


def test_a_thread_started_elsewhere_names_the_execution_only_through_its_log_call() -> None:
    lines: list[dict[str, Any]] = []
    with about(LogContext.of_execution(ARN)):
        thread = threading.Thread(target=lambda: lines.append(formatted()))
        thread.start()
        thread.join()
    assert "execution_arn" not in lines[0]


def test_an_exception_is_in_the_line_with_its_traceback() -> None:
    try:
        raise ValueError("the disk is on fire")
    except ValueError:
        line = formatted(exc_info=True)
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("ValueError: the disk is on fire")


WORKER = textwrap.dedent(
    """
    import json, logging, sys
    from perdure.runtime.logcapture import capture_logs
    from perdure.runtime.server_log import log_worker_runtime

    log_worker_runtime(json_lines=sys.argv[1] == "json")
    with capture_logs(1) as captured:
        logging.getLogger("perdure.runtime.workers").warning("The runtime's own line.")
        logging.getLogger("orders").warning("The function's line.")
    print(json.dumps([line.line for line in captured.lines()]))
    """
)


def run_worker_log(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", WORKER, mode], capture_output=True, text=True, timeout=60, check=True)


def test_a_worker_writes_its_runtimes_lines_to_stderr_as_json_and_not_into_the_invocations_lines() -> None:
    done = run_worker_log("json")
    line = json.loads(done.stderr)
    assert line["logger"] == "perdure.runtime.workers" and line["message"] == "The runtime's own line."
    assert json.loads(done.stdout) == ["[WARNING]\tThe function's line."]


def test_a_worker_writes_its_runtimes_lines_as_text_by_default() -> None:
    done = run_worker_log("text")
    assert done.stderr == "The runtime's own line.\n"
    assert json.loads(done.stdout) == ["[WARNING]\tThe function's line."]
