"""The storage contract: what the service needs from a database, and nothing more.

A ``Store`` hands out transactions. Everything done through one ``Transaction`` becomes
durable together when the ``with`` block exits normally, or not at all if it raises: that
is the only atomicity the service relies on. Transactions are serialized (a writer waits for
the one before it), so a read followed by a write inside one transaction never races.

The contract is split by role, so that a caller can name the part it uses:

- ``CoreTransaction``: what running executions needs (executions, operations, checkpoint
  replies, history, logs, timers, leasing, one-time upgrades);
- ``ConsoleQueries``: what the console and the list APIs read (pages and counts of executions,
  open callbacks);
- ``VersionQueries`` and ``DestinationQueries``: functions' versions and aliases, and where
  their ended executions go;
- ``ScheduleQueries``: schedules and how far each has fired;
- ``LimitQueries``: functions' concurrency and rate limits, and leasing within them;
- ``ExecutionStore``: transactions, snapshots, waiting for work, retention;
- ``KeyStore``: API keys.

``Transaction`` and ``Store`` combine them; every backend implements the whole of both.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TypeVar

from perdure.protocol.destinations import ConfigSource, StoredInvokeConfig
from perdure.protocol.queries import (
    ExecutionPage,
    ExecutionQuery,
    LiveCount,
    OpenCallback,
    PurgeBatch,
    ResultScan,
    StatusCount,
    StoredResult,
)
from perdure.protocol.limits import FunctionLimits, StoredLimits
from perdure.protocol.records import Event, Execution, ExecutionStatus, LogLine, Operation
from perdure.protocol.schedules import Schedule
from perdure.protocol.timers import DueWait, FiredWait, Timer, WaitedExecution
from perdure.protocol.versions import Alias, FunctionVersion
from perdure.store.blobs import BlobStore
from perdure.store.keys import ApiKey

T = TypeVar("T")


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """``(low, high)``: a name starts with ``prefix`` when ``low <= name < high`` (byte order)."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class CheckpointReads:
    """What a checkpoint reads before it applies its batch (see ``CoreTransaction.checkpoint_reads``)."""

    execution: Execution | None
    # The batch's operations that exist, by ID (empty when there is no execution).
    operations: dict[str, Operation] = field(default_factory=dict)
    # The stored reply of a checkpoint sent before with the same client token, if any.
    reply: str | None = None


class CoreTransaction(abc.ABC):
    """What running executions reads and writes inside one atomic transaction."""

    @abc.abstractmethod
    def insert_execution(self, execution: Execution) -> None:
        """Adds a new execution; its ARN, and its (function, name) pair, are unique."""

    @abc.abstractmethod
    def update_execution(self, execution: Execution, before: Execution | None = None) -> None:
        """Overwrites the fields of an existing execution that can change.

        Its identity and input are written once, by ``insert_execution``, and never rewritten:
        ``id``, ``arn``, ``function_name``, ``qualifier``, ``name``, ``start_time`` and
        ``input_payload`` keep their stored values whatever this ``execution`` holds. With
        ``before``, the execution as this transaction read it, only the fields that differ
        from it are written (the stored row must still be ``before``).
        """

    @abc.abstractmethod
    def get_execution(self, arn: str) -> Execution | None: ...

    @abc.abstractmethod
    def get_execution_by_id(self, execution_id: str) -> Execution | None: ...

    @abc.abstractmethod
    def find_execution(self, function_name: str, name: str) -> Execution | None:
        """Returns the execution of ``function_name`` with this name, if any."""

    @abc.abstractmethod
    def get_operations(self, execution_id: str, ids: Iterable[str]) -> dict[str, Operation]:
        """Returns the operations with these IDs that exist, by ID."""

    @abc.abstractmethod
    def list_operations(self, execution_id: str, after_position: int, limit: int) -> list[Operation]:
        """Returns operations in the order they were first recorded, after a position."""

    @abc.abstractmethod
    def latest_operation(self, execution_id: str, sub_type: str) -> Operation | None:
        """Returns the latest-started top-level SUCCEEDED operation of this ``sub_type``, if any.

        Found from the end of the journal: it costs the operations after it, not those before.
        """

    @abc.abstractmethod
    def operations_changed_since(self, execution_id: str, version: int) -> list[Operation]:
        """Returns the operations whose ``version`` is greater than ``version``."""

    @abc.abstractmethod
    def put_operations(self, execution_id: str, operations: Iterable[Operation]) -> None:
        """Inserts or overwrites operations (keyed by execution and operation ID)."""

    @abc.abstractmethod
    def find_callback(self, callback_id: str) -> tuple[str, str] | None:
        """Returns ``(execution_id, operation_id)`` of the callback with this ID."""

    @abc.abstractmethod
    def append_events(self, execution_id: str, events: Iterable[Event]) -> None:
        """Appends history events; their ``event_id``s are already assigned."""

    @abc.abstractmethod
    def list_events(self, execution_id: str, after_id: int, limit: int, reverse: bool) -> list[Event]:
        """Returns events in ``event_id`` order (descending when ``reverse``) past ``after_id``."""

    @abc.abstractmethod
    def append_logs(self, execution_id: str, lines: Iterable[LogLine]) -> None:
        """Appends an invocation's log lines in order; the store assigns each a greater ``seq``."""

    @abc.abstractmethod
    def list_logs(self, execution_id: str, after_seq: int, limit: int) -> list[LogLine]:
        """Returns up to ``limit`` log lines of the execution with ``seq`` past ``after_seq``, in order."""

    @abc.abstractmethod
    def set_timer(self, timer: Timer) -> None:
        """Creates or moves the timer of this (execution, operation, kind)."""

    @abc.abstractmethod
    def delete_timers(self, execution_id: str, operation_id: str | None = None) -> None:
        """Deletes the timers of one operation, or of the whole execution when ``None``."""

    @abc.abstractmethod
    def delete_timer(self, timer: Timer) -> None: ...

    @abc.abstractmethod
    def due_timers(self, now: float, limit: int) -> list[Timer]:
        """Returns timers due at ``now`` or earlier, earliest first."""

    @abc.abstractmethod
    def has_pending_work(self, execution_id: str) -> bool:
        """Whether the execution has a timer or a callback still open (something to wait for)."""

    @abc.abstractmethod
    def lease_owners(self, now: float) -> list[str]:
        """Returns the distinct owners holding leases that have not lapsed by ``now``.

        An owner whose leases all lapsed is left out: there is nothing of it left to expire, and
        its executions wait for a server of their functions to lease them again.
        """

    @abc.abstractmethod
    def expire_leases(self, owner: str, now: float) -> None:
        """Makes every lease held by ``owner`` expire at ``now``."""

    @abc.abstractmethod
    def ready_executions(self, now: float, limit: int, functions: Collection[str]) -> list[Execution]:
        """Returns running executions of ``functions`` that are ready and not leased (or whose lease expired).

        An expired lease of a PAUSING execution counts too: its pause waits for that invocation.
        """

    @abc.abstractmethod
    def next_wakeup(self, functions: Collection[str] | None = None) -> float | None:
        """Returns the earliest time at which a timer falls due, an execution becomes ready or a lease lapses.

        With ``functions``, only executions of those functions count for readiness and leases
        (timers count whatever their function: firing one needs no handler).
        """

    @abc.abstractmethod
    def next_timer_due(self) -> float | None:
        """Returns when the earliest timer falls due, or None when there is none."""

    @abc.abstractmethod
    def get_executions_by_ids(self, execution_ids: Iterable[str]) -> dict[str, Execution]:
        """Returns the executions with these IDs that exist, by ID (locked as ``get_execution_by_id`` locks)."""

    @abc.abstractmethod
    def get_operations_by_keys(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Operation]:
        """Returns the operations with these ``(execution_id, operation_id)`` keys that exist, by key."""

    @abc.abstractmethod
    def delete_fired_timers(self, timers: Iterable[Timer]) -> None:
        """Deletes these timers (each by execution, operation and kind), as ``delete_timer`` does one."""

    @abc.abstractmethod
    def put_operations_of(self, operations: Iterable[tuple[str, Operation]]) -> None:
        """``put_operations`` for operations of many executions at once: ``(execution_id, operation)`` pairs."""

    @abc.abstractmethod
    def append_events_of(self, events: Iterable[tuple[str, Event]]) -> None:
        """``append_events`` for events of many executions at once: ``(execution_id, event)`` pairs."""

    @abc.abstractmethod
    def due_waits(self, keys: Iterable[tuple[str, str]]) -> list[DueWait]:
        """Returns the operations with these ``(execution_id, operation_id)`` keys that exist, joined
        to their executions (locked as ``get_operations_by_keys`` locks), in no particular order."""

    @abc.abstractmethod
    def record_fired_waits(self, waits: Iterable[FiredWait], executions: Iterable[WaitedExecution]) -> None:
        """Marks each wait SUCCEEDED at its event's time with its version, appends its event (in the
        order given), and writes the executions' changed columns: a few statements for any number of waits."""

    @abc.abstractmethod
    def get_checkpoint_reply(self, execution_id: str, client_token: str) -> str | None:
        """Returns the stored reply (JSON) of a checkpoint sent with this ``ClientToken``."""

    @abc.abstractmethod
    def put_checkpoint_reply(self, execution_id: str, client_token: str, reply: str) -> None: ...

    def checkpoint_reads(self, arn: str, operation_ids: Iterable[str], client_token: str | None) -> CheckpointReads:
        """The execution at ``arn`` (locked as ``get_execution`` locks), those of ``operation_ids``
        that exist (as ``get_operations``) and the reply stored for ``client_token``.

        One call, so that a backend whose every read is a round trip (PostgreSQL) sends them together.
        """
        execution = self.get_execution(arn)
        if execution is None:
            return CheckpointReads(None)
        reply = self.get_checkpoint_reply(execution.id, client_token) if client_token else None
        return CheckpointReads(execution, self.get_operations(execution.id, operation_ids), reply)

    # -- one-time upgrades of stored data (perdure.service.snapshot_upgrade) --

    @abc.abstractmethod
    def results_with_prefix(self, sub_type: str, prefix: str, after: tuple[str, str] | None, limit: int) -> ResultScan:
        """Looks at the next ``limit`` operations past ``after`` in ``(execution_id, operation_id)`` order.

        Returns those of ``sub_type`` whose result starts with ``prefix`` or is in a blob (not
        read here, so its text may not), in that order, and where the stretch ended. Each call
        reads a bounded range of the primary key, however few operations match, so a walk of
        every operation costs each one once.
        """

    @abc.abstractmethod
    def replace_result(self, stored: StoredResult, result: str) -> bool:
        """Overwrites the operation's result with ``result`` if its row still holds what ``stored`` read.

        Returns whether it did. Nothing else of the row changes, its version included: the
        execution's journal is as it was. A result over the inline limit goes to a blob.
        """

    @abc.abstractmethod
    def upgrade_done(self, name: str) -> float | None:
        """When the one-time upgrade ``name`` was recorded done in this store, or None."""

    @abc.abstractmethod
    def record_upgrade(self, name: str, now: float) -> None:
        """Records the one-time upgrade ``name`` done at ``now``; recording it again keeps the first time."""


class ConsoleQueries(abc.ABC):
    """What the console and the list APIs read: pages and counts of executions, open callbacks."""

    @abc.abstractmethod
    def list_executions(self, query: ExecutionQuery) -> ExecutionPage: ...

    @abc.abstractmethod
    def count_executions(self, query: ExecutionQuery) -> dict[ExecutionStatus, int]:
        """Counts the executions ``list_executions`` would list (all pages), by status; absent means none."""

    @abc.abstractmethod
    def count_by_function(self, started_after: float) -> list[StatusCount]:
        """Counts the executions started at or after ``started_after``, by function and status,
        with what their invocations used."""

    @abc.abstractmethod
    def live_counts(self, now: float) -> list[LiveCount]:
        """Counts the executions not ended of each function that has any, by state at ``now``."""

    @abc.abstractmethod
    def open_callbacks(
        self, limit: int, after: tuple[float, str] | None, function_name: str | None
    ) -> list[OpenCallback]:
        """Returns up to ``limit`` callbacks still open in executions not ended (running or paused),
        oldest first by ``(start_time, callback_id)``, past ``after``; only one function's if given."""


class VersionQueries(abc.ABC):
    """Function versions and aliases (``perdure.service.versions`` gives them their rules)."""

    @abc.abstractmethod
    def insert_version(self, version: FunctionVersion, digest: str) -> bool:
        """Adds a version; False, adding nothing, if the function already has one of that number."""

    @abc.abstractmethod
    def find_version(self, function_name: str, digest: str) -> FunctionVersion | None:
        """The function's version of this code and configuration (``FunctionConfig.digest``), if any."""

    @abc.abstractmethod
    def get_version(self, function_name: str, version: int) -> FunctionVersion | None: ...

    @abc.abstractmethod
    def latest_version(self, function_name: str) -> FunctionVersion | None: ...

    @abc.abstractmethod
    def list_versions(self, function_name: str) -> list[FunctionVersion]:
        """The function's versions, oldest first."""

    @abc.abstractmethod
    def versioned_functions(self) -> list[str]:
        """The names of the functions that have versions, sorted."""

    @abc.abstractmethod
    def unfinished_by_version(self, function_name: str) -> dict[int | None, int]:
        """How many executions of the function have not ended, by the version they run (None: unversioned)."""

    @abc.abstractmethod
    def referenced_versions(self, function_name: str) -> set[int]:
        """The versions of the function that executions in the store (ended or not) run or ran."""

    @abc.abstractmethod
    def code_in_use(self, code_key: str) -> bool:
        """Whether any version, of any function, has this bundle as its code."""

    @abc.abstractmethod
    def delete_version(self, function_name: str, version: int) -> None:
        """Deletes a version and the aliases that name it."""

    @abc.abstractmethod
    def put_alias(self, alias: Alias) -> None:
        """Makes the alias, or points it at its new version."""

    @abc.abstractmethod
    def get_alias(self, function_name: str, name: str) -> Alias | None: ...

    @abc.abstractmethod
    def list_aliases(self, function_name: str) -> list[Alias]:
        """The function's aliases, by name."""

    @abc.abstractmethod
    def delete_alias(self, function_name: str, name: str) -> bool:
        """Deletes an alias; False if there was none."""


class ScheduleQueries(abc.ABC):
    """Schedules and how far each has fired (``perdure.service.schedules`` gives them their rules)."""

    @abc.abstractmethod
    def put_schedule(self, schedule: Schedule) -> None:
        """Adds the schedule, or overwrites the one of its function and name."""

    @abc.abstractmethod
    def delete_schedule(self, function_name: str, name: str) -> None: ...

    @abc.abstractmethod
    def get_schedule(self, function_name: str, name: str) -> Schedule | None:
        """The schedule, locked against other writers until the transaction ends (PostgreSQL)."""

    @abc.abstractmethod
    def list_schedules(self, function_name: str | None = None) -> list[Schedule]:
        """One function's schedules, or every function's, by function and name (a function's locked)."""

    @abc.abstractmethod
    def due_schedules(self, now: float, functions: Collection[str], limit: int) -> list[Schedule]:
        """Up to ``limit`` schedules of these functions whose ``next_due`` is at or before ``now``, earliest first.

        On PostgreSQL they are locked until the transaction ends, and rows another transaction
        holds are passed over: two servers firing at once share the due schedules out.
        """

    @abc.abstractmethod
    def next_schedule_due(self, functions: Collection[str]) -> float | None:
        """The earliest ``next_due`` among these functions' schedules, if any is to fire."""


class DestinationQueries(abc.ABC):
    """Functions' event invoke configurations: where their ended executions go (``perdure.service.destinations``)."""

    @abc.abstractmethod
    def put_invoke_config(self, stored: StoredInvokeConfig) -> None:
        """Stores the configuration of its function and qualifier, replacing the one there was."""

    @abc.abstractmethod
    def invoke_configs(self, function_name: str) -> list[StoredInvokeConfig]:
        """The function's configurations, one per qualifier, by qualifier (an execution's end reads them)."""

    @abc.abstractmethod
    def delete_invoke_config(self, function_name: str, qualifier: str, source: ConfigSource | None = None) -> bool:
        """Deletes the configuration of the function and qualifier (only if ``source`` set it, when
        given); False if there was none."""

    @abc.abstractmethod
    def delete_invoke_configs(self, function_name: str) -> None:
        """Deletes every configuration of the function (it was deleted)."""


class LimitQueries(abc.ABC):
    """Functions' concurrency and rate limits (``perdure.service.allowance`` applies them), and leasing within them."""

    @abc.abstractmethod
    def function_limits(self, functions: Collection[str] | None = None) -> list[StoredLimits]:
        """The limits stored for these functions (every function's when None), by name.

        In a write transaction on PostgreSQL the rows read stay locked until it ends, so that
        servers leasing a limited function at once take turns (each then counts what the one
        before it leased).
        """

    @abc.abstractmethod
    def declare_limits(self, function_name: str, limits: FunctionLimits) -> None:
        """Stores the limits the function's served code declares, keeping a reserved concurrency and rate state.

        Declaring no limit where nothing else is stored leaves no row.
        """

    @abc.abstractmethod
    def put_reserved_concurrency(self, function_name: str, reserved: int | None) -> None:
        """Sets (or, with None, removes) the function's ReservedConcurrentExecutions."""

    @abc.abstractmethod
    def put_next_start(self, function_name: str, next_start: float) -> None:
        """Records when the function's rate next lets an invocation start; its row exists."""

    @abc.abstractmethod
    def leased_counts(self, function_name: str) -> dict[str, int]:
        """How many executions of the function are leased (a lapsed lease too), by tenant (``NO_TENANT`` for none)."""

    @abc.abstractmethod
    def tenant_next_starts(self, function_name: str, now: float) -> dict[str, float]:
        """The tenants of the function whose rate lets no invocation start before a time after ``now``, with that time."""

    @abc.abstractmethod
    def put_tenant_next_starts(self, function_name: str, starts: dict[str, float], now: float) -> None:
        """Records these tenants' next start times, and forgets the function's that are ``now`` or earlier."""

    @abc.abstractmethod
    def ready_of_function(self, now: float, function_name: str, limit: int, skip_tenants: Collection[str]) -> list[Execution]:
        """Up to ``limit`` running executions of the function ready at ``now`` and not leased, oldest ready first.

        Those of ``skip_tenants`` (``NO_TENANT`` for none) are left out. On PostgreSQL, rows
        that another transaction holds are skipped, and those returned stay locked, as
        ``ready_executions`` locks them.
        """

    @abc.abstractmethod
    def count_ready(self, now: float, functions: Collection[str], at_most: int) -> int:
        """How many running executions of ``functions`` are ready at ``now`` and not leased, counted up to ``at_most``."""

    @abc.abstractmethod
    def leased_by_function(self, functions: Collection[str]) -> dict[str, int]:
        """How many executions of each of ``functions`` are leased (a lapsed lease too); one with none is left out."""

    @abc.abstractmethod
    def lapsed_executions(self, now: float, limit: int, functions: Collection[str]) -> list[Execution]:
        """Up to ``limit`` executions of ``functions`` leased by an invocation whose lease ran out by ``now``.

        The part of ``ready_executions`` that finds lapsed leases, oldest expiry first, locked alike.
        """


class Transaction(CoreTransaction, ConsoleQueries, VersionQueries, ScheduleQueries, DestinationQueries, LimitQueries):
    """Reads and writes inside one atomic transaction: every role of it."""


class ExecutionStore(abc.ABC):
    """A database of executions: opens transactions and snapshots, waits for work, purges."""

    # Where payloads over the inline limit are kept; rows hold only their keys.
    blobs: BlobStore

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """Opens a transaction that commits when the block exits normally."""

    def run_transaction(self, body: Callable[[Transaction], T]) -> T:
        """Runs ``body`` in a write transaction and returns what it returned, once committed.

        As ``with store.transaction() as tx: return body(tx)``, except that a backend may run
        bodies given at once by several threads together: SQLite runs them one after another on
        one of those threads, in one transaction (``perdure.store.combining``). So ``body`` may run
        on another thread than the caller's (in a copy of its context variables), and more than
        once (its writes undone in between); it must use no transaction but ``tx``, and do
        nothing else that cannot be done again (telemetry is held back until it commits). For
        the hottest writes: a checkpoint, an invocation's end.
        """
        with self.transaction() as tx:
            return body(tx)

    @abc.abstractmethod
    def snapshot(self) -> AbstractContextManager[Transaction]:
        """Opens a read-only transaction: a consistent view of the store.

        Whether it waits for writers, or holds them up, depends on the backend. On PostgreSQL
        it takes no locks: it neither waits for writers nor blocks them. On SQLite it does not
        block writers in other processes (WAL mode), but within one process a snapshot takes
        the same lock, on the store's one connection, as a transaction: it waits for a running
        transaction (or snapshot) to end, and blocks the process's writers until it closes.
        """

    def wait_for_change(
        self, timeout: float, stop: threading.Event | None = None, functions: Collection[str] | None = None
    ) -> bool:
        """Waits up to ``timeout`` seconds for a commit that makes work ready; True if one may have.

        A backend that is told of commits (PostgreSQL, by ``LISTEN``/``NOTIFY``) returns as soon
        as one makes an execution of ``functions`` (None: any) ready or moves a timer, in any
        process, and False when ``timeout`` passes without one. This default is told of nothing: it sleeps ``timeout``
        and returns True, so a caller that looks for work after each True polls once per
        ``timeout``. True may be spurious; re-check. Setting ``stop`` ends the wait early, with
        False (within a fraction of a second). Meant for one thread per store.
        """
        if stop is None:
            time.sleep(timeout)
            return True
        return not stop.wait(timeout)

    def hold_owner_lock(self, owner: str) -> None:
        """Shows other processes sharing the store that lease owner ``owner`` (this process) is alive, until ``close``.

        A store shared across machines (PostgreSQL) holds a lock for it that the database lets go
        when the process dies or its machine is lost; see ``vanished_owners``. This default does
        nothing: a store on one machine's disk has its owners' deaths told by process ID
        (``perdure.runtime.leases.owner_is_dead``).
        """

    def vanished_owners(self, owners: Collection[str]) -> set[str]:
        """Of these lease owners (which hold their lock, see ``hold_owner_lock``), those whose lock is free now: they are gone.

        This default knows of no locks and returns none.
        """
        return set()

    @abc.abstractmethod
    def purge_expired(
        self, now: float, default_retention_days: int, limit: int | None, dry_run: bool = False
    ) -> PurgeBatch:
        """Deletes finished executions whose retention ran out, and the blobs only they referenced.

        An execution is expired when it is not RUNNING and ``end_time`` plus its
        ``retention_days`` (``default_retention_days`` when it has none) is at or before
        ``now``. Up to ``limit`` of them (all when None), those kept for the default period
        first, oldest end first, are deleted with everything under them (operations, events,
        timers, checkpoint replies, logs) in one transaction. It reads no execution that is not
        expired (store/purging.py). Blobs go before that transaction commits, and only those that no remaining
        row references: a blob shared with a kept execution stays. A writer storing the same
        blob meanwhile either waits for the purge to commit and stores it anew, or makes the
        purge keep it (SQLite: the one write lock; PostgreSQL: a lock per blob key). If the
        transaction fails after some blobs went, only the expired executions lose them, and
        the next purge deletes their rows.

        With ``dry_run`` it deletes nothing and returns what it would delete. On PostgreSQL an
        execution another transaction holds is skipped, left for the next purge.
        """

    @abc.abstractmethod
    def delete_execution(self, execution_id: str) -> list[str] | None:
        """Deletes an execution that has ended, everything under it, and the blobs only it referenced.

        Atomic as one purge of ``purge_expired``, with the same care for blobs another writer
        stores meanwhile. Returns the keys of the blobs deleted, or None (deleting nothing)
        when there is no such execution or it has not ended (it is RUNNING, PAUSING or PAUSED).
        """

    @abc.abstractmethod
    def delete_unreferenced_blobs(self, keys: Collection[str]) -> list[str]:
        """Deletes those of these blobs that no row references; returns their keys, sorted.

        With the same care as ``purge_expired`` for a writer storing one of them meanwhile: it
        either waits for this to finish and stores the blob anew, or makes this keep it.
        """



class KeyStore(abc.ABC):
    """API keys (perdure.api.keys): each call is its own transaction."""

    @abc.abstractmethod
    def add_api_key(self, key: ApiKey) -> None:
        """Stores a new key; raises ``KeyNameTakenError``, storing nothing, if an active key has its name."""

    @abc.abstractmethod
    def get_api_key(self, access_key_id: str) -> ApiKey | None:
        """The key with this ID, active or revoked, or None."""

    @abc.abstractmethod
    def find_api_key_by_token(self, token_sha256: str) -> ApiKey | None:
        """The key whose bearer token has this SHA-256 (hex), active or revoked, or None."""

    @abc.abstractmethod
    def list_api_keys(self) -> list[ApiKey]:
        """Every key, active and revoked, oldest first."""

    @abc.abstractmethod
    def revoke_api_key(self, access_key_id: str, now: float) -> ApiKey | None:
        """Atomically marks an active key revoked at ``now`` and returns it; None if no active key has this ID."""

    @abc.abstractmethod
    def end_api_key_sessions(self, access_key_id: str) -> ApiKey | None:
        """Atomically bumps a key's session generation and returns the key; None if no key has this ID."""


class Store(ExecutionStore, KeyStore):
    """A whole store: every role of it, as each backend provides."""

    @abc.abstractmethod
    def close(self) -> None: ...


def readiness(execution: Execution) -> tuple[float, str]:
    """Since when an execution has waited to be leased (its ready time, or when its lease lapsed), then its ID."""
    since = execution.ready_time if execution.ready_time is not None else execution.lease_expiry
    return (since or 0.0, execution.id)


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    """Splits ``items`` into lists of at most ``size`` (for bounded ``IN (...)`` queries)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
