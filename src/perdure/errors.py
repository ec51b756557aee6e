"""Errors raised by Perdure.

Every error has a stable ``code`` that the HTTP API returns as Lambda's error type, and an
HTTP ``status``. The tree, with the errors defined beside the code that raises them (module in
brackets)::

    PerdureError
    ├── InvalidParameterError        400 InvalidParameterValueException
    │   ├── PayloadTooLargeError     413 RequestTooLargeException
    │   ├── DecorationError          a checkpoint that cannot be resumed  [sdk.resumable]
    │   └── ScheduleExpressionError  a schedule expression or time zone that cannot be used  [protocol.schedule_expressions]
    ├── NotFoundError                404 ResourceNotFoundException
    │   ├── FunctionNotFoundError
    │   ├── ExecutionNotFoundError
    │   ├── CallbackNotFoundError
    │   └── ScheduleNotFoundError    [service.schedules]
    ├── ConflictError                409 ResourceConflictException
    │   ├── ExecutionAlreadyExistsError   409 DurableExecutionAlreadyStartedException
    │   ├── ExecutionEndedError      pause/resume of an ended execution  [service.pausing]
    │   └── KeyNameTakenError        an active API key has that name  [store.keys]
    ├── AuthenticationError          403 (SigV4/bearer refusals)  [api.auth]
    ├── RequestTimeoutError          408 a request body that did not arrive in time  [api.body_limit]
    ├── ForbiddenRequestError        403 AccessDeniedException   --dev: a request a web page sent  [api.dev_guard]
    ├── UnsupportedMediaTypeError    415 UnsupportedMediaTypeException   --dev: a body not JSON  [api.dev_guard]
    ├── ApiError                     an error reply, as perdure.Client sees it  [client]
    ├── SnapshotError                a snapshot cannot be saved or trusted  [protocol.snapshots]
    ├── SecretKeyError               the server secret is too short  [protocol.secret]
    ├── CallbackAlreadyCompletedError     400 CallbackTimeoutException
    ├── StaleCheckpointTokenError    400 InvalidParameterValueException
    ├── CheckpointRejectedError      400 InvalidParameterValueException
    ├── FunctionLoadError            500 ServiceException
    ├── StoreUnavailableError        503 ServiceUnavailableException   the database cannot be reached now
    │   └── StorageFullError         the store's disk is full
    ├── BlobStorageError             500 ServiceException   the blob folder or bucket failed
    │   ├── BlobNotFoundError        a payload's blob is missing
    │   ├── BlobKeyError             a row names a blob with a key that is not a content key
    │   └── BlobIntegrityError       a blob's bytes are not the ones its key names
    └── DurableFunctionError         raised inside seed-style functions
        ├── OperationFailedError     a step, callback or child context ended in failure
        │   └── CallbackTimedOutError
        └── NonDeterministicError    replay found a different operation than recorded

Messages are full sentences that say what happened and what to do about it. An error that a
client should retry later sets ``retry_after_seconds``, which the API sends as ``Retry-After``.
"""

from __future__ import annotations


class PerdureError(Exception):
    """Root of every error Perdure raises on purpose."""

    code = "ServiceException"
    status = 500
    retry_after_seconds: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameterError(PerdureError):
    """A request carried a value that cannot be used."""

    code = "InvalidParameterValueException"
    status = 400


class PayloadTooLargeError(InvalidParameterError):
    """A payload is larger than the configured limit."""

    code = "RequestTooLargeException"
    status = 413

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(
            f"The {what} is {size} bytes, which is over the limit of {limit} bytes. "
            "Send a smaller payload, or store large data elsewhere and pass a reference."
        )
        self.size = size
        self.limit = limit


class NotFoundError(PerdureError):
    """A named resource does not exist."""

    code = "ResourceNotFoundException"
    status = 404


class FunctionNotFoundError(NotFoundError):
    """No function is registered under the requested name."""

    def __init__(self, function_name: str, known: list[str]) -> None:
        listing = ", ".join(sorted(known)) if known else "none"
        super().__init__(
            f"Function not found: {function_name!r}. Registered functions: {listing}. "
            "Check the name, or register the function with `perdure serve NAME=file.py:handler`."
        )
        self.function_name = function_name


class ExecutionNotFoundError(NotFoundError):
    """No execution has the requested ARN."""

    def __init__(self, execution_arn: str) -> None:
        super().__init__(
            f"Durable execution not found: {execution_arn!r}. "
            "List executions with `perdure executions list` to find its ARN."
        )
        self.execution_arn = execution_arn


class CallbackNotFoundError(NotFoundError):
    """No callback has the requested ID."""

    def __init__(self, callback_id: str) -> None:
        super().__init__(
            f"Callback not found: {callback_id!r}. Use the CallbackId exactly as the execution "
            "issued it (CallbackStartedDetails in `perdure executions history ARN`, or the dashboard's inbox)."
        )
        self.callback_id = callback_id


class ConflictError(PerdureError):
    """The request conflicts with the resource's current state."""

    code = "ResourceConflictException"
    status = 409


class ExecutionAlreadyExistsError(ConflictError):
    """An execution with this name exists with a different input."""

    code = "DurableExecutionAlreadyStartedException"

    def __init__(self, function_name: str, execution_name: str, execution_arn: str) -> None:
        super().__init__(
            f"An execution named {execution_name!r} of function {function_name!r} already exists "
            f"with a different input ({execution_arn}). Choose another name, or start it with "
            "the same input to get the existing execution."
        )
        self.execution_arn = execution_arn


class CallbackAlreadyCompletedError(PerdureError):
    """The callback has already been completed, timed out or cancelled."""

    code = "CallbackTimeoutException"
    status = 400

    def __init__(self, callback_id: str, status: str) -> None:
        super().__init__(
            f"Callback {callback_id!r} is already {status}; it cannot be completed again."
        )
        self.callback_id = callback_id


class StaleCheckpointTokenError(PerdureError):
    """A checkpoint came from an invocation that no longer owns the execution."""

    code = "InvalidParameterValueException"
    status = 400

    def __init__(self, execution_arn: str) -> None:
        super().__init__(
            f"Invalid checkpoint token for {execution_arn}: it belongs to an invocation that no "
            "longer owns this execution, or the execution has ended. Nothing was recorded."
        )
        self.execution_arn = execution_arn


class CheckpointRejectedError(PerdureError):
    """A checkpoint update breaks the rules of its operation type."""

    code = "InvalidParameterValueException"
    status = 400

    def __init__(self, execution_arn: str, operation_id: str, reason: str) -> None:
        super().__init__(
            f"Checkpoint rejected for operation {operation_id!r} of {execution_arn}: {reason} "
            "Nothing in this batch was recorded."
        )
        self.execution_arn = execution_arn
        self.operation_id = operation_id


class FunctionLoadError(PerdureError):
    """A function's handler could not be imported or found."""

    def __init__(self, function_name: str, detail: str) -> None:
        super().__init__(f"Function {function_name!r} could not be loaded: {detail}")
        self.function_name = function_name


class StoreUnavailableError(PerdureError):
    """The store cannot be used now: its database cannot be reached (a restart, a failover) or gave up waiting.

    A transaction cut off by it may or may not have committed; none that did not commit was
    acknowledged. Workers count the invocation as lost and run it again from what was
    recorded; the API answers 503 with Retry-After.
    """

    code = "ServiceUnavailableException"
    status = 503
    retry_after_seconds = 2

    def __init__(self, location: str, detail: str, message: str | None = None) -> None:
        super().__init__(
            message
            or (
                f"The store at {location} cannot be used now ({detail}). This request may or may not have been "
                f"recorded: retry it in {self.retry_after_seconds} seconds (a start with the same execution name, "
                "or a checkpoint with the same ClientToken, is not recorded twice)."
            )
        )
        self.location = location


class StorageFullError(StoreUnavailableError):
    """The store cannot write, as its disk is full; nothing of the request was recorded."""

    retry_after_seconds = 5

    def __init__(self, location: str, detail: str) -> None:
        super().__init__(
            location,
            detail,
            f"The store at {location} cannot record anything now: its disk is full ({detail}). Nothing of "
            f"this request was recorded; retry it in {self.retry_after_seconds} seconds. Free space on that "
            "disk: Perdure goes on by itself once it can write.",
        )


class BlobStorageError(PerdureError):
    """The blob store (a folder or an S3 bucket) could not be used; ``location`` names it."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(message)
        self.location = location


class BlobNotFoundError(BlobStorageError):
    """A payload's blob is missing from the blob store."""

    def __init__(self, location: str, key: str) -> None:
        super().__init__(
            location,
            f"Blob {key} is missing from {location}; the payload stored there is lost. Check that every "
            "process using this database is given the same --blobs, or restore the blobs from a backup "
            "taken with the database.",
        )
        self.key = key


class BlobKeyError(BlobStorageError):
    """A blob key read from the database is not a content key, so it names no blob."""

    def __init__(self, location: str, key: str) -> None:
        # A row may hold anything, of any length: the message quotes only its start.
        shown = repr(key) if len(key) <= 100 else f"{key[:100]!r}..."
        super().__init__(
            location,
            f"{shown} is not a blob key (64 lowercase hex digits, the SHA-256 of the blob), so it was not "
            f"looked up in {location}. The database row that holds it was altered: restore the row, or "
            "the database, from a backup.",
        )
        self.key = key


class BlobIntegrityError(BlobStorageError):
    """A blob in the blob store is not the one its key names."""

    def __init__(self, location: str, key: str, detail: str) -> None:
        super().__init__(
            location,
            f"Blob {key} in {location} {detail}, so it was not used. The blob store was altered: restore "
            "the blob from a backup taken with the database.",
        )
        self.key = key


class DurableFunctionError(PerdureError):
    """Raised inside a seed-style durable function by its operations."""

    code = "Perdure.DurableFunctionError"
    status = 400


class OperationFailedError(DurableFunctionError):
    """A step, callback or child context failed; carries the original error's type and message.

    On the first run a failing step re-raises the step's own exception; on replay, where that
    object is gone, this error stands in for it with the recorded ``error_type`` and message.
    """

    def __init__(self, message: str, error_type: str | None, data: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.data = data


class CallbackTimedOutError(OperationFailedError):
    """A callback's timeout or heartbeat timeout passed before it was completed."""


class NonDeterministicError(DurableFunctionError):
    """Resuming ran a different operation than the one recorded at that position."""

    def __init__(self, operation_id: str, recorded: str, attempted: str) -> None:
        super().__init__(
            f"Operation {operation_id} was recorded as {recorded} but the function now runs {attempted} "
            "there. Durable functions must make the same operations in the same order on every run: "
            "keep randomness, clocks and I/O inside steps."
        )
        self.operation_id = operation_id
