"""Node.js handlers inside a worker process: a long-lived Node child that runs their invocations.

A worker process that is sent an invocation of a Node function starts one Node child (the
harness ``perdure/runtime/node/harness.mjs``) and keeps it: the child imports each handler once
and runs its invocations warm, many at once on its event loop. Requests go to it as JSON lines
on its stdin; its answers and each invocation's log lines come back as JSON lines on a pipe of
their own. The SDK in the child checkpoints through this process's loopback
endpoint (``perdure.runtime.node_endpoint``) with a key of its own.

The child lives and dies with its worker process, so the pool's handling of a worker applies
to Node functions unchanged: it dies with the worker (its parent-death signal, and the end of
its stdin), and when it dies on its own the worker process dies the same way (a SIGKILL for a
SIGKILL), so that the pool records its invocations as lost or crashed as for Python handlers.
The exception is a child that ran out of heap (V8 aborts it, saying so on its stderr): its
invocations end as out of memory, as a Python handler's ``MemoryError`` does, and the worker
process is retired.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from perdure.errors import FunctionLoadError
from perdure.protocol.arns import function_arn_of
from perdure.protocol.records import (
    DEFAULT_MEMORY_MB,
    ErrorObject,
    Invocation,
    InvocationOutput,
    Usage,
)
from perdure.runtime.invoker import InvocationReport, out_of_memory
from perdure.runtime.logcapture import LogCapture
from perdure.runtime.node_binary import find_node
from perdure.runtime.node_endpoint import NodeEndpoint
from perdure.runtime.registry import FunctionSpec
from perdure.service.executions import DurableService

__all__ = ["NodeChild", "NodeRuns"]

_PR_SET_PDEATHSIG = 1
# What V8 writes to stderr as it aborts for want of memory (its heap limit, or the process limit).
_OUT_OF_HEAP = (b"JavaScript heap out of memory", b"Reached heap limit", b"Fatal process out of memory")


def _iso(value: Any) -> Any:
    # The SDK reads the timestamps of the invocation event as ISO-8601 strings (its toDate);
    # epoch seconds, as the API sends them, would read as milliseconds.
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclass
class _Pending:
    """An invocation the child runs: where its lines go, and its answer once it comes."""

    capture: LogCapture
    done: threading.Event
    answer: dict[str, Any] | None = None


class NodeChild:
    """One Node process running the harness, and the invocations it runs."""

    def __init__(self, node: str | None, service: DurableService, memory_mb: int | None) -> None:
        self.service = service
        self.endpoint = NodeEndpoint(service)
        binary = find_node(node)
        command = [binary.path]
        if memory_mb:
            # The heap limit Lambda sets from MemorySize; the process limit is the worker's own
            # (RLIMIT_DATA, which the child inherits).
            command.append(f"--max-old-space-size={memory_mb}")
        command.append(str(harness_path()))
        answers_read, answers_write = os.pipe()
        environment = {
            **os.environ, **self.endpoint.credentials.environment(), "PERDURE_ANSWERS_FD": str(answers_write)
        }
        # Handlers' own settings must not reach the service elsewhere: the SDK's client reads these.
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            environment.pop(name, None)
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            # Passed on to this process's stderr line by line (see _forward_stderr).
            stderr=subprocess.PIPE,
            pass_fds=(answers_write,),
            env=environment,
            # The child dies with this process even when stuck in a handler's loop, which the end of
            # its stdin would not stop (PR_SET_PDEATHSIG; see _die_with_parent in worker_process).
            # preexec_fn runs between fork and exec, where another thread's lock could be held:
            # this one takes none (libc was loaded before the fork, prctl is a system call).
            preexec_fn=lambda: libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL),  # noqa: PLW1509
        )
        os.close(answers_write)
        self._answers = os.fdopen(answers_read, "rb")
        self._sending = threading.Lock()
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._ids = iter(range(1, 2**62))
        # V8 said the heap limit was reached: the child's death is its running out of memory.
        self._out_of_heap = threading.Event()
        # The child has died (out of heap): the next Node invocation starts another.
        self.dead = False
        threading.Thread(target=self._forward_stderr, name="perdure-node-stderr", daemon=True).start()
        ready = self._answers.readline()
        if not ready:
            raise FunctionLoadError("(node)", f"the Node.js child ({binary.path}) ended before it was ready: exit status {self.process.wait()}.")
        threading.Thread(target=self._read, name="perdure-node-reader", daemon=True).start()

    def run(self, spec: FunctionSpec, invocation: Invocation, capture: LogCapture) -> InvocationReport:
        """Runs one invocation in the child and waits for its end."""
        began = time.monotonic()
        page = self.service.get_state(invocation.execution_arn, invocation.checkpoint_token)
        state: dict[str, Any] = {"Operations": [op.to_wire() for op in page.items]}
        if page.next_marker:
            state["NextMarker"] = page.next_marker
        pending = _Pending(capture, threading.Event())
        with self._lock:
            number = next(self._ids)
            self._pending[number] = pending
        request = {
            "id": number,
            "file": str(spec.file),
            "handler": spec.attribute,
            "event": {
                "DurableExecutionArn": invocation.execution_arn,
                "CheckpointToken": invocation.checkpoint_token,
                "InitialExecutionState": state,
            },
            "context": {
                "functionName": spec.name,
                "functionVersion": str(spec.version) if spec.version else "$LATEST",
                "invokedFunctionArn": function_arn_of(invocation.execution_arn),
                "memoryLimitInMB": str(spec.memory_mb or DEFAULT_MEMORY_MB),
                "awsRequestId": f"{invocation.execution_arn}#{invocation.invocation}",
                "deadlineMs": int((time.time() + spec.timeout_seconds) * 1000),
            },
        }
        line = json.dumps(request, default=_iso).encode() + b"\n"
        try:
            with self._sending:
                assert self.process.stdin is not None
                self.process.stdin.write(line)
                self.process.stdin.flush()
        except OSError:
            pass  # The child died: the reader ends this invocation as its process ends.
        pending.done.wait()
        answer = pending.answer or {}
        measured = answer.get("usage") or {}
        usage = Usage(
            cpu_seconds=float(measured.get("cpuSeconds", 0.0)),
            memory_mb=spec.memory_mb or DEFAULT_MEMORY_MB,
            seconds=float(measured.get("seconds", time.monotonic() - began)),
        )
        return _report(spec, answer, usage)

    def _read(self) -> None:
        """Hands each answer to its invocation; when the child dies, this process dies alike."""
        for raw in self._answers:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            with self._lock:
                pending = self._pending.get(message.get("id"))
                if pending is not None and "log" not in message:
                    del self._pending[message["id"]]
            if pending is None:
                if "log" in message:
                    # Written after its invocation ended (a timer it left behind): the worker's log keeps it.
                    _, text = message["log"]
                    _stderr(f"[node, after invocation {message.get('id')} ended] {text}\n".encode())
                continue
            if "log" in message:
                stream, text = message["log"]
                pending.capture.add(stream, text)
            else:
                pending.answer = message
                pending.done.set()
        code = self.process.wait()
        # V8 aborts on running out of heap; its message may reach stderr's reader just after.
        if self._out_of_heap.wait(1.0 if code < 0 and code != -signal.SIGKILL else 0):
            self._ran_out_of_heap()
            return
        # Its invocations are the pool's to record, as for a worker process that died: a SIGKILL
        # (the out-of-memory killer, an operator) loses them; any other end crashed them.
        os.kill(os.getpid(), signal.SIGKILL if code == -signal.SIGKILL else signal.SIGABRT) if code < 0 else os._exit(code)

    def _ran_out_of_heap(self) -> None:
        """Ends the child's invocations as out of memory: one alone is charged for it, several are lost."""
        self.dead = True
        self.endpoint.close()
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        answer: dict[str, Any] = {"outOfHeap": True} if len(pending) == 1 else {"lost": len(pending)}
        for each in pending:
            each.answer = answer
            each.done.set()

    def _forward_stderr(self) -> None:
        """Passes the child's stderr on to this process's, watching for V8's out-of-heap abort."""
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            if any(sign in raw for sign in _OUT_OF_HEAP):
                self._out_of_heap.set()
            _stderr(raw)


def _stderr(raw: bytes) -> None:
    """Writes to this worker process's stderr (the server's log), past any invocation's capture of ``sys.stderr``."""
    with contextlib.suppress(OSError):
        os.write(2, raw)


def _report(spec: FunctionSpec, answer: dict[str, Any], usage: Usage) -> InvocationReport:
    if "loadError" in answer:
        raise FunctionLoadError(spec.name, str(answer["loadError"]))
    if "outOfHeap" in answer:
        if spec.memory_mb:
            return InvocationReport(None, out_of_memory(spec), out_of_memory=True, usage=usage)
        error = ErrorObject(
            message=f"Function {spec.name!r} ran out of memory: Node.js reached its heap limit. Set its MemorySize, or use less memory.",
            type="Runtime.OutOfMemory",
        )
        return InvocationReport(None, error, out_of_memory=True, usage=usage)
    if "lost" in answer:
        # Which of them used the memory is not known: none is charged an attempt (as the pool
        # does for a process that dies running several).
        return InvocationReport(
            None, lost=f"the Node.js process ran out of heap while running {answer['lost']} invocations.", out_of_memory=True, usage=usage
        )
    if "error" in answer:
        error = answer["error"]
        return InvocationReport(
            None,
            ErrorObject(
                message=error.get("errorMessage"),
                type=error.get("errorType"),
                stack_trace=tuple(error.get("stackTrace") or ()),
            ),
            usage=usage,
        )
    result = answer.get("result")
    if not isinstance(result, dict) or result.get("Status") not in ("SUCCEEDED", "FAILED", "PENDING"):
        return InvocationReport(
            None,
            ErrorObject(
                message=(
                    f"The handler of function {spec.name!r} returned {json.dumps(result)[:200]}, not a durable "
                    "invocation output. Wrap it with withDurableExecution from @aws/durable-execution-sdk-js."
                ),
                type="Runtime.InvalidHandlerOutput",
            ),
            usage=usage,
        )
    return InvocationReport(InvocationOutput.from_wire(result), usage=usage)


class NodeRuns:
    """The Node child of a worker process, started when its first Node invocation comes."""

    def __init__(self, node: str | None, service: DurableService, memory_mb: int | None) -> None:
        self._node = node
        self._service = service
        self._memory_mb = memory_mb
        self._lock = threading.Lock()
        self._child: NodeChild | None = None

    def run(self, spec: FunctionSpec, invocation: Invocation, capture: LogCapture) -> InvocationReport:
        """Runs an invocation of a Node function; raises FunctionLoadError when it cannot be loaded."""
        return self._get(spec).run(spec, invocation, capture)

    def _get(self, spec: FunctionSpec) -> NodeChild:
        with self._lock:
            if self._child is None or self._child.dead:
                try:
                    self._child = _started(self._node, self._service, self._memory_mb)
                except Exception as error:
                    raise FunctionLoadError(spec.name, f"its Node.js runtime could not start: {error}") from error
            return self._child


def _started(node: str | None, service: DurableService, memory_mb: int | None) -> NodeChild:
    """Starts the child from a thread that lives as long as this process.

    PR_SET_PDEATHSIG fires when the *thread* that started a child ends, not its process; the
    invocation thread asking first may be ended with its pool.
    """
    result: list[NodeChild | BaseException] = []
    ready = threading.Event()

    def start() -> None:
        try:
            result.append(NodeChild(node, service, memory_mb))
        except BaseException as error:  # noqa: BLE001 - handed to the asking thread
            result.append(error)
        ready.set()
        threading.Event().wait()

    threading.Thread(target=start, name="perdure-node-keeper", daemon=True).start()
    ready.wait()
    found = result[0]
    if isinstance(found, BaseException):
        raise found
    return found


def harness_path() -> Path:
    """Where the harness the Node child runs is (shipped inside the package)."""
    return Path(str(resources.files("perdure.runtime") / "node" / "harness.mjs"))
