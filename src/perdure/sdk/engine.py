"""Runs one invocation of a seed-style function: resume from the latest snapshot, run, record.

Within an invocation the live generator simply continues past each checkpoint; a snapshot is
restored only when an execution resumes in a new invocation. Only the code after the latest
checkpoint runs again, and its steps return their recorded results.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from types import AsyncGeneratorType, GeneratorType
from typing import cast

from perdure.protocol.approval_links import ApprovalLinks
from perdure.protocol.records import (
    CHECKPOINT_SUBTYPE,
    CODE_CHANGED_PREFIX,
    ErrorObject,
    InvocationOutput,
    InvocationStatus,
    Operation,
    OperationAction,
    OperationStatus,
    OperationType,
    OperationUpdate,
)
from perdure.protocol.snapshots import BaseSnapshot, Snapshot, SnapshotCodec
from perdure.protocol.trace_context import TraceContext
from perdure.sdk.aio import AsyncContext, off_loop, run_on_loop
from perdure.sdk.context import Context, RetryPolicy, error_object
from perdure.sdk.function import DurableFunction
from perdure.sdk.journal import Journal, ServiceClient, Suspend
from perdure.sdk.resumable import ResumableReturn

# The STEP operation that counts whole-function retries (``@durable.function(retries=N)``).
FUNCTION_RETRY_ID = "function-retry"


def _code_changed(durable: DurableFunction, snapshot: Snapshot, arn: str) -> InvocationOutput:
    """Ends the invocation with the execution paused: resuming on other code could land in the wrong place."""
    reason = (
        f"{CODE_CHANGED_PREFIX}{durable.options.name} changed while {arn} was suspended: it was checkpointed by "
        f"code version {snapshot.fingerprint} and the code now is version {durable.resumable.fingerprint}. "
        "It waits, paused: serve the code it was suspended on and it resumes, or carry it onto this code "
        "with `perdure executions restart ARN --from N`."
    )
    return InvocationOutput(InvocationStatus.PENDING, pause_reason=reason)


def _paused_locals(generator: object) -> dict[str, object]:
    """The locals of a generator paused at a yield (its frame exists while it is paused)."""
    frame = cast("GeneratorType[int, None, object]", generator).gi_frame
    assert frame is not None, "a paused generator has a frame"
    return frame.f_locals


def _stable_first(frame_locals: dict[str, object], names: frozenset[str]) -> list[str]:
    """Orders saved locals largest container first, so a snapshot's pickle starts with what
    rarely changes but costs the most (a growing list) and ends with counters and iterators:
    the longer the shared start, the smaller the delta stored (see perdure.protocol.snapshots)."""

    def weight(name: str) -> tuple[int, str]:
        value = frame_locals[name]
        size = len(value) if isinstance(value, list | dict | set | tuple | str | bytes) else -1
        return (-size, name)

    return sorted((name for name in frame_locals if name in names), key=weight)


class SeedInvocation:
    """One invocation of a durable function against the service."""

    def __init__(self, durable: DurableFunction, journal: Journal, codec: SnapshotCodec) -> None:
        self.durable = durable
        self.journal = journal
        self.codec = codec
        self.checkpoint_hooks: list[Callable[[int], None]] = []
        self._checkpoints = 0
        self._previous: BaseSnapshot | None = None

    def run(self) -> InvocationOutput:
        """Runs until the function returns, raises, or suspends; returns the invocation output."""
        resumable = self.durable.resumable
        ctx = Context(self.journal, self.durable.options.name)
        try:
            latest = self.journal.latest_checkpoint()
            arguments: tuple[object, int | None, dict[str, object] | None]
            if latest is None:
                arguments = (self.journal.execution_input(), None, None)
            else:
                snapshot, resolved = self.codec.decode(latest.result or "", self.journal.arn, latest.id, self._stored)
                self._previous = BaseSnapshot(latest.id, resolved.data, resolved.chain_bytes)
                if snapshot.fingerprint not in (resumable.fingerprint, resumable.whole_code_fingerprint):
                    return _code_changed(self.durable, snapshot, self.journal.arn)
                ctx.counter = snapshot.counter
                ctx.replaying = True
                arguments = (None, snapshot.label, snapshot.locals)
            if resumable.is_async:
                async_generator = cast("AsyncGeneratorType[int, None]", resumable.generator(AsyncContext(ctx), *arguments))
                result = run_on_loop(self._run_async(ctx, async_generator))
            else:
                result = self._run_sync(ctx, cast("GeneratorType[int, None, object]", resumable.generator(ctx, *arguments)))
            try:
                return InvocationOutput(InvocationStatus.SUCCEEDED, result=json.dumps(result))
            except (TypeError, ValueError) as error:
                return self._failed(
                    ErrorObject(
                        message=f"{self.durable.options.name} returned a value that cannot be saved as JSON: {error}.",
                        type="Perdure.InvalidResult",
                    )
                )
        except Suspend:
            return InvocationOutput(InvocationStatus.PENDING)
        except Exception as error:
            try:
                return self._failed(error_object(error))
            except Suspend:
                # Recording the failure found the execution held by another invocation (or
                # ended): that one goes on from what was recorded.
                return InvocationOutput(InvocationStatus.PENDING)

    def _run_sync(self, ctx: Context, generator: GeneratorType[int, None, object]) -> object:
        """Runs the generator to its end, checkpointing at each label it yields; returns its value."""
        try:
            label = generator.send(None)
            while True:
                self._checkpoint(ctx, label, _paused_locals(generator))
                label = generator.send(None)
        except StopIteration as stop:
            return stop.value

    async def _run_async(self, ctx: Context, generator: AsyncGeneratorType[int, None]) -> object:
        """As ``_run_sync``, for an async function's generator, on the shared loop.

        Checkpoints are written from a thread of their own, so the loop goes on with other
        invocations during the commit; the locals are read here, while the generator is paused.
        """
        try:
            label = await generator.asend(None)
            while True:
                frame = generator.ag_frame
                assert frame is not None, "a paused generator has a frame"
                await off_loop(functools.partial(self._checkpoint, ctx, label, dict(frame.f_locals)))
                label = await generator.asend(None)
        except StopAsyncIteration:
            return None
        except ResumableReturn as returned:
            return returned.value

    def _checkpoint(self, ctx: Context, label: int, frame_locals: dict[str, object]) -> None:
        resumable = self.durable.resumable
        site = resumable.sites[label]
        op_id = ctx._next_id()
        saved = {name: frame_locals[name] for name in _stable_first(frame_locals, resumable.saved_names)}
        snapshot = Snapshot(resumable.fingerprint, saved, label, ctx.counter)
        encoded = self.codec.encode(
            snapshot, self.journal.arn, op_id, resumable.filename, site.line, self._previous, resumable.for_loop_lines
        )
        name = f"{resumable.filename.rsplit('/', 1)[-1]}:{site.line}"
        # One update: a checkpoint is done the moment it is recorded, so it needs no START.
        self.journal.write(
            [
                OperationUpdate(op_id, OperationType.CONTEXT, OperationAction.SUCCEED, name=name, sub_type=CHECKPOINT_SUBTYPE, payload=encoded.text),
            ]
        )
        self._previous = BaseSnapshot(op_id, encoded.data, encoded.chain_bytes)
        ctx.replaying = False
        self._checkpoints += 1
        for hook in self.checkpoint_hooks:
            hook(self._checkpoints)

    def _stored(self, operation_id: str) -> str | None:
        op = self.journal.earlier(operation_id)
        return op.result if op is not None else None

    def _failed(self, error: ErrorObject) -> InvocationOutput:
        """Fails the execution, or retries it from its last checkpoint if retries are left."""
        retries = self.durable.options.retries
        record = self.journal.earlier(FUNCTION_RETRY_ID)
        attempts = record.attempt if record else 0
        if attempts < retries and (record is None or record.status is OperationStatus.READY):
            delay = RetryPolicy(max_attempts=retries + 1).delay(attempts + 1)
            self.journal.write(
                [
                    OperationUpdate(
                        FUNCTION_RETRY_ID,
                        OperationType.STEP,
                        OperationAction.RETRY,
                        name="function retry",
                        sub_type="FunctionRetry",
                        error=error,
                        next_attempt_delay_seconds=delay,
                    )
                ]
            )
            return InvocationOutput(InvocationStatus.PENDING)
        return InvocationOutput(InvocationStatus.FAILED, error=error)


def run_seed_invocation(
    durable: DurableFunction,
    client: ServiceClient,
    arn: str,
    token: str,
    codec: SnapshotCodec,
    checkpoint_hooks: list[Callable[[int], None]] | None = None,
    trace: TraceContext | None = None,
    links: ApprovalLinks | None = None,
    known: Sequence[Operation] | None = None,
) -> InvocationOutput:
    """Loads the execution's journal and runs one invocation of ``durable``; its steps' code runs
    inside their spans of ``trace``, a recorded trace or None (see ``perdure.telemetry.tracing``), and
    ``ctx.callback_link`` makes its links with ``links``. ``known``: the whole journal, read already."""
    journal = Journal.load(client, arn, token, known)
    journal.trace = trace
    journal.links = links
    invocation = SeedInvocation(durable, journal, codec)
    invocation.checkpoint_hooks.extend(checkpoint_hooks or [])
    return invocation.run()
