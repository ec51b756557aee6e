"""The durable execution service: every change to an execution goes through ``DurableService``."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from perdure.errors import (
    ConflictError,
    ExecutionAlreadyExistsError,
    ExecutionNotFoundError,
    InvalidParameterError,
    PayloadTooLargeError,
)
from perdure.protocol.arns import execution_arn_for, function_arn_for
from perdure.protocol.queries import ExecutionPage, ExecutionQuery
from perdure.protocol.records import (
    CODE_CHANGED_PREFIX,
    CheckpointResult,
    ErrorObject,
    Event,
    Execution,
    ExecutionStatus,
    Invocation,
    InvocationOutput,
    LogLine,
    Operation,
    OperationStatus,
    OperationType,
    OperationUpdate,
    Page,
    Usage,
)
from perdure.protocol.secret import load_secret
from perdure.protocol.trace_context import TraceContext, operation_span
from perdure.protocol.snapshots import SnapshotCodec
from perdure.protocol.versions import Alias, FunctionConfig, FunctionVersion
from perdure.service import callbacks, invocations, journal, pausing, reporting, restarts, timers, tokens, versions
from perdure.service.checkpoints import ChildStart, InvokeTarget, apply_batch, ids_touched
from perdure.service.functions import FunctionDefaults, FunctionLookup, no_functions, parse_function_name
from perdure.service.invocations import InvocationRetryPolicy
from perdure.service.retention import DEFAULT_RETENTION_DAYS, PurgeReport, purge_expired
from perdure.service.validation import NAME, NAME_RULE, check_qualifier, parse_count
from perdure.service.versions import VersionNotFoundError
from perdure.store.base import Store, Transaction
from perdure.telemetry import metrics
from perdure.telemetry.metrics import record

_PAGE_LIMIT = 1000


@dataclass(frozen=True)
class ServiceConfig:
    """Limits and identity of one service; the defaults follow Lambda's."""

    region: str = "us-east-1"
    account_id: str = "000000000000"
    max_payload_bytes: int = 6 * 1024 * 1024
    invocation_retries: InvocationRetryPolicy = InvocationRetryPolicy()
    # How long a finished execution is kept when it sets no retention_days of its own.
    retention_days: int = DEFAULT_RETENTION_DAYS


@dataclass(frozen=True)
class StartRequest:
    function_name: str
    input_payload: str | None = None
    execution_name: str | None = None
    qualifier: str = "$LATEST"
    timeout_seconds: int | None = None
    retention_days: int | None = None
    tenant_id: str | None = None
    # The caller's trace (a ``traceparent`` or ``X-Amzn-Trace-Id`` header): the execution's spans join it.
    trace: TraceContext | None = None


@dataclass(frozen=True)
class StartResult:
    execution: Execution
    created: bool


def _check_size(what: str, text: str | None, limit: int) -> None:
    # A character is at most 4 bytes of UTF-8: most payloads are known to fit without encoding.
    if text is not None and len(text) * 4 > limit:
        size = len(text.encode("utf-8"))
        if size > limit:
            raise PayloadTooLargeError(what, size, limit)


class DurableService:
    """Starts executions, applies checkpoints, fires timers, completes callbacks, answers reads.

    ``clock`` returns the current time in epoch seconds; tests pass a clock they can move.
    ``functions`` tells which functions exist, and their execution defaults, by name: a
    CHAINED_INVOKE starts a child execution of one of them, and fails at once for any other
    name (all of them, when it is not given).
    """

    def __init__(
        self,
        store: Store,
        config: ServiceConfig | None = None,
        clock: Callable[[], float] = time.time,
        functions: FunctionLookup | None = None,
        snapshots: SnapshotCodec | None = None,
    ) -> None:
        self.store = store
        self.config = config or ServiceConfig()
        self.clock = clock
        self.functions = functions or no_functions
        self._snapshots = snapshots

    @property
    def snapshots(self) -> SnapshotCodec:
        """The codec of seed-style snapshots: the one given, else one with the server's key.

        The server's key is read when asked for, where ``perdure serve`` and its workers find
        it: ``PERDURE_SECRET``, else the ``secret`` file beside a SQLite database, else in ``.perdure``.
        """
        if self._snapshots is not None:
            return self._snapshots
        path = getattr(self.store, "path", None)
        return SnapshotCodec(load_secret(path.parent if isinstance(path, Path) else Path(".perdure")))

    def close(self) -> None:
        """Closes the store; the service is not used after."""
        self.store.close()

    # -- executions -----------------------------------------------------------------------

    def function_arn(self, function_name: str, qualifier: str | None = "$LATEST") -> str:
        """The ARN of ``function_name`` on this service, qualified unless ``qualifier`` is None."""
        return function_arn_for(self.config.region, self.config.account_id, function_name, qualifier)

    def start_execution(self, request: StartRequest) -> StartResult:
        """Starts an execution, or returns the existing one of that name if its input is the same."""
        name = self._checked_name(request)
        with self.store.transaction() as tx:
            return self.start_in(tx, request, name, self.clock())

    def start_and_lease(self, request: StartRequest, owner: str, lease_seconds: float) -> tuple[StartResult, Invocation | None]:
        """``start_execution``, leasing the new execution to ``owner`` in the same transaction where it may run now.

        For a caller that runs it at once (its own free worker place): the lease a scheduler's
        pass would take is saved, and its transaction. An execution that existed, or of a
        function with limits (which a lease weighs against others), is left to the scheduler.
        """
        (started,) = self.start_many([request], owner, lease_seconds, 1)
        return started

    def start_many(
        self, requests: Sequence[StartRequest], owner: str | None = None, lease_seconds: float = 0.0, lease_limit: int = 0
    ) -> list[tuple[StartResult, Invocation | None]]:
        """Starts executions in one transaction (all or none), leasing up to ``lease_limit`` of the new ones to ``owner``.

        One commit for many starts: a thousand started one by one wait for a thousand commits,
        behind a busy runtime's writes too (issue 14). What is leased is as ``start_and_lease``.
        """
        names = [self._checked_name(request) for request in requests]
        with self.store.transaction() as tx:
            now = self.clock()
            results = [self.start_in(tx, request, name, now) for request, name in zip(requests, names, strict=True)]
            new = [result.execution for result in results if result.created]
            leased = invocations.lease_new(tx, new, now, owner, lease_seconds, lease_limit) if owner and lease_limit > 0 else {}
            return [(result, leased.get(result.execution.arn) if result.created else None) for result in results]

    def _checked_name(self, request: StartRequest) -> str:
        """The new execution's name (given, or a fresh one), once its input's size and the name are checked."""
        _check_size("execution input", request.input_payload, self.config.max_payload_bytes)
        name = request.execution_name or uuid.uuid4().hex
        if not NAME.fullmatch(name):
            raise InvalidParameterError(f"Invalid execution name {name!r}: use {NAME_RULE}.")
        return name

    def start_in(self, tx: Transaction, request: StartRequest, name: str, now: float) -> StartResult:
        """``start_execution`` inside a transaction of the caller's, under a checked ``name``."""
        # A name made here (a fresh UUID) is nobody's yet: only a given one is looked up.
        existing = tx.find_execution(request.function_name, name) if request.execution_name else None
        if existing is not None:
            if existing.input_payload != request.input_payload:
                raise ExecutionAlreadyExistsError(request.function_name, name, existing.arn)
            return StartResult(existing, created=False)
        version = versions.resolve(tx, request.function_name, request.qualifier)
        execution_id = uuid.uuid4().hex
        arn = execution_arn_for(self.function_arn(request.function_name, request.qualifier), name, execution_id)
        # A version's own settings: an older one started by number keeps those it had.
        config = version.config if version else None
        execution = journal.create_execution(
            tx,
            execution_id=execution_id,
            arn=arn,
            function_name=request.function_name,
            qualifier=request.qualifier,
            name=name,
            now=now,
            input_payload=request.input_payload,
            timeout_seconds=config.execution_timeout_seconds if config else request.timeout_seconds,
            retention_days=config.retention_days if config else request.retention_days,
            tenant_id=request.tenant_id,
            function_version=version.version if version else None,
            trace=request.trace,
        )
        return StartResult(execution, created=True)

    def _start_child(self, tx: Transaction, child: ChildStart, parent: Execution, now: float) -> None:
        function, version = child.target.function, child.target.version
        journal.create_execution(
            tx,
            execution_id=child.execution_id,
            arn=child.arn,
            function_name=function.name,
            qualifier=child.target.qualifier,
            name=child.name,
            now=now,
            input_payload=child.input_payload,
            timeout_seconds=version.config.execution_timeout_seconds if version else function.execution_timeout_seconds,
            retention_days=version.config.retention_days if version else function.retention_days,
            tenant_id=child.tenant_id,
            parent_arn=parent.arn,
            parent_operation_id=child.parent_operation_id,
            function_version=version.version if version else None,
            # The child's spans are the children of its parent's CHAINED_INVOKE operation.
            trace=dataclasses.replace(
                reporting.trace_of(parent.id, parent.trace_parent),
                parent_span_id=operation_span(parent.arn, child.parent_operation_id),
            ),
        )

    def _resolve_invoke(self, tx: Transaction, function_name: str) -> InvokeTarget | ErrorObject:
        """ChainedInvokeOptions.FunctionName: a name, NAME:QUALIFIER or a function ARN of this server."""
        ref = parse_function_name(function_name)
        function = self.functions(ref.name)
        latest = versions.current(tx, ref.name) if function is None else None
        if latest is not None:
            # Deployed after this process started (or by another server): its newest settings.
            config = latest.config
            function = FunctionDefaults(ref.name, config.execution_timeout_seconds, config.retention_days)
        if function is None:
            return ErrorObject(
                message=f"Function not found: {function_name}. A chained invoke starts a function this "
                "server runs; serve the target function beside the one that invokes it.",
                type="ResourceNotFoundException",
            )
        try:
            version = versions.resolve(tx, ref.name, ref.qualifier)
        except VersionNotFoundError as error:
            return ErrorObject(message=error.message, type=error.code)
        return InvokeTarget(function, ref.qualifier, self.function_arn(function.name, ref.qualifier), version)

    def _require(self, tx: Transaction, arn: str) -> Execution:
        execution = tx.get_execution(arn)
        if execution is None:
            raise ExecutionNotFoundError(arn)
        return execution

    def get_execution(self, arn: str) -> Execution:
        with self.store.snapshot() as tx:
            return self._require(tx, arn)

    def waits_beyond(self, arn: str, moment: float) -> bool:
        """Whether the execution, suspended, waits for what cannot come by ``moment`` (epoch seconds).

        That is a callback (only the outside world completes it) or a wait that ends later. A
        synchronous invoke answers then rather than hold its caller (see ``CompletionWaiter``).
        """
        with self.store.snapshot() as tx:
            execution = self._require(tx, arn)
            position = 0
            while True:
                page = tx.list_operations(execution.id, position, _PAGE_LIMIT)
                for op in page:
                    if op.status is OperationStatus.STARTED and (
                        op.type is OperationType.CALLBACK
                        or (op.type is OperationType.WAIT and (op.scheduled_end_time or 0) > moment)
                    ):
                        return True
                if len(page) < _PAGE_LIMIT:
                    return False
                position = page[-1].position

    def list_executions(self, query: ExecutionQuery) -> ExecutionPage:
        try:
            with self.store.snapshot() as tx:
                return tx.list_executions(query)
        except ValueError as error:
            raise InvalidParameterError(str(error)) from None

    def stop_execution(self, arn: str, error: ErrorObject | None = None) -> Execution:
        """Stops a running execution; stopping an ended one returns it unchanged."""
        now = self.clock()
        with self.store.transaction() as tx:
            execution = self._require(tx, arn)
            if execution.status.is_terminal:
                return execution
            error = error or ErrorObject(message="Execution stopped by user request.")
            execution = journal.end_execution(tx, execution, ExecutionStatus.STOPPED, now, error=error)
            tx.update_execution(execution.evolve(lease_owner=None, lease_expiry=None))
            return execution

    def restart_execution(
        self, arn: str, from_checkpoint: str, name: str | None = None, version: str | None = None
    ) -> Execution:
        """Starts a new execution of the same function and input that resumes right after a point of this one.

        ``from_checkpoint`` is a checkpoint number (``"2"``: the second seed-style checkpoint)
        or the ID of a finished operation; ``name`` defaults to ``<old name>-restart-<n>``.
        ``version`` (a number, an alias or ``$LATEST``) carries it onto that version's code;
        by default it runs the version the old one ran. The old execution is left as it is (see
        ``perdure.service.restarts``).
        """
        codec = self.snapshots
        if version is not None:
            check_qualifier(version)
        with self.store.transaction() as tx:
            source = self._require(tx, arn)
            if version is not None:
                target = versions.resolve(tx, source.function_name, version)
                source = source.evolve(function_version=target.version if target else None)
            return restarts.restart(tx, source, from_checkpoint, name, uuid.uuid4().hex, self.clock(), codec)

    def pause_execution(self, arn: str, reason: str | None = None, timeout_paused: bool = True) -> Execution:
        """Pauses an execution: it is not invoked until resumed (see ``perdure.service.pausing``)."""
        with self.store.transaction() as tx:
            return pausing.pause(tx, self._require(tx, arn), self.clock(), reason, timeout_paused)

    def resume_execution(self, arn: str, reason: str | None = None) -> Execution:
        """Resumes a paused execution; it is invoked at once if anything happened meanwhile."""
        with self.store.transaction() as tx:
            return pausing.resume(tx, self._require(tx, arn), self.clock(), reason)

    def delete_execution(self, arn: str) -> float:
        """Deletes an ended execution with its history and the blobs only it used; returns when.

        A running or paused execution is refused with a ConflictError: stop it first.
        """
        now = self.clock()
        with self.store.snapshot() as tx:
            execution = self._require(tx, arn)
        # An execution that has ended never runs again, so the check holds until the delete.
        if not execution.status.is_terminal or self.store.delete_execution(execution.id) is None:
            raise ConflictError(
                f"Cannot delete {arn}: it is {execution.status.value}, and only an execution that has "
                "ended can be deleted. Stop it first (`perdure executions stop ARN`)."
            )
        return now

    def get_history(
        self, arn: str, marker: str | None = None, max_items: int = 100, reverse: bool = False
    ) -> Page:
        """Returns a page of history events; ``marker`` is the last event ID of the previous page."""
        after = _parse_int_marker(marker)
        limit = _clamp(max_items, 100)
        with self.store.snapshot() as tx:
            execution = self._require(tx, arn)
            events = tx.list_events(execution.id, after, limit + 1, reverse)
        items: list[Event] = events[:limit]
        next_marker = str(items[-1].event_id) if len(events) > limit else None
        return Page(items, next_marker)

    def append_logs(self, arn: str, lines: list[LogLine]) -> None:
        """Keeps the lines an invocation wrote, in one transaction (workers call it once, at its end).

        Lines of an execution that no longer exists (deleted meanwhile) are dropped.
        """
        if not lines:
            return
        with self.store.transaction() as tx:
            execution = tx.get_execution(arn)
            if execution is not None:
                tx.append_logs(execution.id, lines)

    def get_logs(self, arn: str, marker: str | None = None, max_items: int = 0) -> Page:
        """Returns a page of the execution's log lines; ``marker`` is the last ``seq`` of the previous page."""
        after = _parse_int_marker(marker)
        limit = _clamp(max_items, _PAGE_LIMIT)
        with self.store.snapshot() as tx:
            execution = self._require(tx, arn)
            found = tx.list_logs(execution.id, after, limit + 1)
        items: list[LogLine] = found[:limit]
        return Page(items, str(items[-1].seq) if len(found) > limit else None)

    # -- versions -------------------------------------------------------------------------

    def publish_version(self, function_name: str, code: bytes, config: FunctionConfig) -> FunctionVersion:
        """Keeps a code bundle and returns the version it makes with ``config`` (an existing one if the same)."""
        if not NAME.fullmatch(function_name):
            raise InvalidParameterError(f"Invalid function name {function_name!r}: use {NAME_RULE}.")
        # The bundle is stored before the row that names it: a crash between leaves a blob
        # nothing names, never a version whose code is missing.
        code_key = self.store.blobs.put(code)
        with self.store.transaction() as tx:
            return versions.publish(tx, function_name, code_key, config, self.clock())

    def get_version(self, function_name: str, qualifier: str) -> FunctionVersion | None:
        """The version ``qualifier`` names (None: ``$LATEST`` of a function without versions)."""
        check_qualifier(qualifier)
        with self.store.snapshot() as tx:
            return versions.resolve(tx, function_name, qualifier)

    def version_code(self, version: FunctionVersion) -> bytes:
        """The code bundle of a version, as published."""
        return self.store.blobs.get(version.code_key)

    def newest_versions(self) -> list[FunctionVersion]:
        """The newest version of every function that has versions, by name."""
        with self.store.snapshot() as tx:
            return [v for v in (versions.current(tx, name) for name in tx.versioned_functions()) if v is not None]

    def list_versions(self, function_name: str) -> list[FunctionVersion]:
        with self.store.snapshot() as tx:
            return tx.list_versions(function_name)

    def put_alias(self, function_name: str, alias: str, version: int) -> Alias:
        with self.store.transaction() as tx:
            return versions.put_alias(tx, function_name, alias, version)

    def list_aliases(self, function_name: str) -> list[Alias]:
        with self.store.snapshot() as tx:
            return versions.aliases(tx, function_name)

    def get_alias(self, function_name: str, name: str) -> Alias:
        with self.store.snapshot() as tx:
            alias = tx.get_alias(function_name, name)
            if alias is None:
                raise versions.VersionNotFoundError(function_name, name, [], [a.name for a in versions.aliases(tx, function_name)])
            return alias

    def delete_alias(self, function_name: str, name: str) -> None:
        with self.store.transaction() as tx:
            if not tx.delete_alias(function_name, name):
                raise versions.VersionNotFoundError(function_name, name, [], [a.name for a in versions.aliases(tx, function_name)])

    def delete_function(self, function_name: str, version: int | None = None) -> None:
        """Deletes a version, or every version, alias, schedule and event invoke configuration of a
        function; refused while executions run them."""
        with self.store.transaction() as tx:
            versions.delete(tx, function_name, version)
            if version is None:
                for schedule in tx.list_schedules(function_name):
                    tx.delete_schedule(function_name, schedule.name)
                tx.delete_invoke_configs(function_name)

    def unfinished_by_version(self, function_name: str) -> dict[int | None, int]:
        """How many executions of the function have not ended, by the version they run."""
        with self.store.snapshot() as tx:
            return tx.unfinished_by_version(function_name)

    # -- the protocol (the SDK's service client) -----------------------------------------------

    def get_state(self, arn: str, checkpoint_token: str, marker: str | None = None, max_items: int = _PAGE_LIMIT) -> Page:
        """Returns a page of operations in the order they started, for the invocation holding the token.

        Children of a finished CONTEXT are left out unless it asked for ``ReplayChildren``: the
        SDK replays such a context from its result alone.
        """
        after = _parse_int_marker(marker)
        limit = _clamp(max_items, 100)
        with self.store.snapshot() as tx:
            execution = self._require(tx, arn)
            tokens.verify(execution, checkpoint_token)
            ops = tx.list_operations(execution.id, after, limit + 1)
            scanned = ops[:limit]
            hidden = _hidden_subtrees(tx, execution.id, scanned)
        items: list[Operation] = [op for op in scanned if op.id not in hidden]
        next_marker = str(scanned[-1].position) if len(ops) > limit else None
        return Page(items, next_marker)

    def latest_operation(self, arn: str, checkpoint_token: str, sub_type: str) -> Operation | None:
        """Returns the latest top-level SUCCEEDED operation of ``sub_type``, for the invocation holding the token.

        With ``get_state`` from its position on and ``get_operations`` for what lies before,
        a resumed invocation reads what it needs, not the whole journal.
        """
        with self.store.snapshot() as tx:
            execution = self._require(tx, arn)
            tokens.verify(execution, checkpoint_token)
            return tx.latest_operation(execution.id, sub_type)

    def get_operations(self, arn: str, checkpoint_token: str, ids: Collection[str]) -> list[Operation]:
        """Returns the operations with these IDs that exist, for the invocation holding the token."""
        with self.store.snapshot() as tx:
            execution = self._require(tx, arn)
            tokens.verify(execution, checkpoint_token)
            found = tx.get_operations(execution.id, ids)
        return sorted(found.values(), key=lambda op: op.position)

    def checkpoint(
        self,
        arn: str,
        checkpoint_token: str,
        updates: list[OperationUpdate],
        client_token: str | None = None,
    ) -> CheckpointResult:
        """Applies a batch of updates atomically and returns what changed since the token was issued."""
        started = time.perf_counter()
        now = self.clock()

        # Run with the checkpoints other threads make at once, in one transaction (issue 14).
        def body(tx: Transaction) -> tuple[CheckpointResult, str]:
            # Read at once: on PostgreSQL, one round trip.
            reads = tx.checkpoint_reads(arn, ids_touched(updates), client_token)
            if reads.execution is None:
                raise ExecutionNotFoundError(arn)
            execution = stored = reads.execution
            if reads.reply is not None:
                return self._replay_reply(tx, execution, reads.reply), execution.function_name
            claims = tokens.verify(execution, checkpoint_token)
            # After the token: an invocation that lost the execution is told so, whatever it sent.
            for update in updates:
                _check_size(f"payload of operation {update.id!r}", update.payload, self.config.max_payload_bytes)
            existing = reads.operations
            version = execution.version + 1
            outcome = apply_batch(
                arn, execution.id, existing, updates, execution.operation_count, version, now,
                lambda function_name: self._resolve_invoke(tx, function_name),
            )
            # An invocation that records progress is not failing over and over: restart the count.
            execution = journal.record(tx, execution, outcome, now, version=version, failed_invocations=0)
            for child in outcome.children:
                self._start_child(tx, child, execution, now)
            # When nothing else changed the execution since the token was issued, the reply is
            # just this batch's operations: no need to ask the store.
            if claims.version == version - 1:
                changed = sorted(outcome.operations.values(), key=lambda op: op.position)
            else:
                changed = tx.operations_changed_since(execution.id, claims.version)
            token: str | None
            if outcome.ended is not None:
                status, result, error = outcome.ended
                execution = journal.end_execution(tx, execution, status, now, result=result, error=error)
                token = None
            else:
                token = tokens.issue(execution)
                if execution.status is ExecutionStatus.PAUSING:
                    # This checkpoint is recorded; then the pause it waited for ends the
                    # invocation, whose token goes stale (see perdure.service.pausing).
                    execution = invocations.enter_paused(tx, execution, now, must_run=True)
            # Only what changed is written: the version and counters, as a rule.
            tx.update_execution(execution, before=stored)
            if client_token:
                reply_text = json.dumps({"token": token, "operations": [op.id for op in changed]})
                tx.put_checkpoint_reply(execution.id, client_token, reply_text)
            return CheckpointResult(token, changed), execution.function_name

        result, function_name = self.store.run_transaction(body)
        record(metrics.CHECKPOINT_SECONDS, (function_name,), time.perf_counter() - started)
        return result

    def _replay_reply(self, tx: Transaction, execution: Execution, reply: str) -> CheckpointResult:
        # A retried request gets the reply it would have had; the batch is not applied again.
        stored = json.loads(reply)
        ops = tx.get_operations(execution.id, stored["operations"])
        return CheckpointResult(stored["token"], sorted(ops.values(), key=lambda op: op.position))

    # -- callbacks ------------------------------------------------------------------------

    def succeed_callback(self, callback_id: str, result: str | None) -> Execution:
        _check_size("callback result", result, self.config.max_payload_bytes)
        with self.store.transaction() as tx:
            return callbacks.complete(tx, callback_id, self.clock(), result=result)

    def fail_callback(self, callback_id: str, error: ErrorObject) -> Execution:
        with self.store.transaction() as tx:
            return callbacks.complete(tx, callback_id, self.clock(), error=error)

    def heartbeat_callback(self, callback_id: str) -> None:
        with self.store.transaction() as tx:
            callbacks.heartbeat(tx, callback_id, self.clock())

    # -- invocations (the runtime's side) --------------------------------------------------

    def lease(
        self, owner: str, functions: Collection[str], limit: int, lease_seconds: float, fire_timers: bool = True
    ) -> list[Invocation]:
        """Fires due timers, then leases up to ``limit`` ready executions of the named functions.

        A process leases only the functions it serves, so servers with different functions can
        share a database without failing each other's executions. A caller that has just fired
        every due timer itself passes ``fire_timers=False``. Functions' concurrency and rate
        limits hold (``perdure.service.invocations.lease``).
        """
        return self.lease_batch(owner, functions, limit, lease_seconds, fire_timers).invocations

    def lease_batch(
        self, owner: str, functions: Collection[str], limit: int, lease_seconds: float, fire_timers: bool = True
    ) -> invocations.Leased:
        """``lease``, saying too which functions' limits (concurrency, rate) left ready executions waiting."""
        if fire_timers:
            self.fire_due_timers()
        with self.store.transaction() as tx:
            return invocations.lease(
                tx, self.clock(), owner, functions, limit, lease_seconds, self.config.invocation_retries
            )

    def renew_lease(self, invocation: Invocation, lease_seconds: float) -> bool:
        with self.store.transaction() as tx:
            return invocations.renew(tx, invocation, self.clock(), lease_seconds)

    def complete_invocation(
        self, invocation: Invocation, output: InvocationOutput, usage: Usage = invocations.NO_USAGE
    ) -> Execution | None:
        """Records the handler's output and what the invocation used; returns None if another
        invocation took over meanwhile."""
        _check_size("execution result", output.result, self.config.max_payload_bytes)

        # Run with the ends other threads record at once, in one transaction (issue 14).
        def body(tx: Transaction) -> Execution | None:
            if output.pause_reason is not None:
                return pausing.park(tx, invocation, self.clock(), output.pause_reason)
            return invocations.complete(tx, invocation, output, self.clock(), self.config.invocation_retries, usage)

        return self.store.run_transaction(body)

    def resume_parked(self, function_name: str) -> list[str]:
        """Resumes the executions of a function paused because its code had changed; returns their ARNs.

        Called when code for the function is served: each runs again, and one whose code is
        still not the code it was suspended on is paused again by its invocation.
        """
        query = ExecutionQuery(function_name=function_name, statuses=(ExecutionStatus.PAUSED,), limit=1000)
        resumed: list[str] = []
        while True:
            page = self.list_executions(query)
            for execution in page.executions:
                if (execution.pause_reason or "").startswith(CODE_CHANGED_PREFIX):
                    resumed.append(self.resume_execution(execution.arn, "The function's code is served again.").arn)
            if page.next_marker is None:
                return resumed
            query = dataclasses.replace(query, marker=page.next_marker)

    def fail_invocation(
        self, invocation: Invocation, error: ErrorObject, lost: bool = False, usage: Usage = invocations.NO_USAGE
    ) -> Execution | None:
        """Records a crashed, killed or timed-out invocation (retried, then failed).

        ``lost``: the handler did not cause it (see ``perdure.service.invocations``).
        """
        with self.store.transaction() as tx:
            return invocations.fail(tx, invocation, error, self.clock(), self.config.invocation_retries, lost, usage)

    def expire_leases(self, is_dead: Callable[[str], bool]) -> list[str]:
        """Expires at once the leases of owners that ``is_dead`` says are gone; returns those owners.

        The owners are read without a write lock first: schedulers check often, and almost
        always find every owner alive.
        """
        dead = [owner for owner in self.lease_owners() if is_dead(owner)]
        self.expire_leases_of(dead)
        return dead

    def lease_owners(self) -> list[str]:
        """The owners holding leases that have not lapsed (read without a write lock)."""
        with self.store.snapshot() as tx:
            return tx.lease_owners(self.clock())

    def expire_leases_of(self, owners: Collection[str]) -> None:
        """Expires at once every lease these owners hold: their executions are leased again from their last checkpoint."""
        if owners:
            now = self.clock()
            with self.store.transaction() as tx:
                for owner in sorted(owners):
                    tx.expire_leases(owner, now)

    def hold_owner_lock(self, owner: str) -> None:
        """Shows other processes that lease owner ``owner`` is alive while this process runs (``Store.hold_owner_lock``)."""
        self.store.hold_owner_lock(owner)

    def vanished_owners(self, owners: Collection[str]) -> set[str]:
        """Of these lease owners, those whose liveness lock is free: gone (``Store.vanished_owners``)."""
        return self.store.vanished_owners(owners)

    # -- time -----------------------------------------------------------------------------

    def fire_due_timers(self, limit: int = 500) -> int:
        """Applies every timer due now (up to ``limit``); returns how many fired."""
        now = self.clock()
        # Looked at first without the write lock: schedulers ask on every pass (each lease
        # does), and as a rule nothing is due, while workers' checkpoints wait on that lock.
        with self.store.snapshot() as tx:
            first = tx.next_timer_due()
        if first is None or first > now:
            return 0
        with self.store.transaction() as tx:
            return timers.fire_due(tx, now, limit)

    def purge_expired(self, dry_run: bool = False) -> PurgeReport:
        """Deletes the executions whose retention ran out by now, and the blobs only they used."""
        return purge_expired(self.store, self.clock(), self.config.retention_days, dry_run)

    def next_wakeup(self, functions: Collection[str] | None = None) -> float | None:
        """Returns when the next timer falls due or execution becomes ready or lease expires.

        With ``functions``, only executions of those functions count (see ``Transaction.next_wakeup``).
        """
        with self.store.snapshot() as tx:
            return tx.next_wakeup(functions)

    def next_timer_due(self) -> float | None:
        """Returns when the earliest timer falls due, or None."""
        with self.store.snapshot() as tx:
            return tx.next_timer_due()

    def wait_for_change(
        self, timeout: float, stop: threading.Event | None = None, functions: Collection[str] | None = None
    ) -> bool:
        """Waits up to ``timeout`` seconds for work of ``functions`` made ready elsewhere (see ``Store.wait_for_change``)."""
        return self.store.wait_for_change(timeout, stop, functions)


def _hidden_subtrees(tx: Transaction, execution_id: str, ops: list[Operation]) -> set[str]:
    """Returns the IDs among ``ops`` that lie under a finished CONTEXT without ReplayChildren."""
    known = {op.id: op for op in ops}
    missing = {op.parent_id for op in ops if op.parent_id and op.parent_id not in known}
    known.update(tx.get_operations(execution_id, missing))
    hidden: set[str] = set()
    verdicts: dict[str, bool] = {}

    def under_closed_context(op_id: str | None) -> bool:
        if op_id is None:
            return False
        if op_id not in verdicts:
            op = known.get(op_id) or tx.get_operations(execution_id, [op_id]).get(op_id)
            if op is None:
                verdicts[op_id] = False
            else:
                known[op_id] = op
                closed = op.type is OperationType.CONTEXT and op.status.is_terminal and not op.replay_children
                verdicts[op_id] = closed or under_closed_context(op.parent_id)
        return verdicts[op_id]

    for op in ops:
        if under_closed_context(op.parent_id):
            hidden.add(op.id)
    return hidden


def _parse_int_marker(marker: str | None) -> int:
    if not marker:
        return 0
    after = parse_count(marker)
    if after is None:
        raise InvalidParameterError(f"Invalid Marker {marker!r}: pass the NextMarker of a previous reply.")
    return after


def _clamp(max_items: int, default: int) -> int:
    if max_items < 0 or max_items > _PAGE_LIMIT:
        raise InvalidParameterError(f"MaxItems must be between 0 and {_PAGE_LIMIT}, not {max_items}.")
    return max_items or default
