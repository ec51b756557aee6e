"""Where a function's ended executions go: Lambda's event invoke configuration, as Perdure keeps it.

A function may name a function to start when one of its executions succeeds (``OnSuccess``)
and one to start when it ends any other way (``OnFailure``): a SAM template's
``EventInvokeConfig``, ``@durable.function(on_success=..., on_failure=...)``, or Lambda's
``PutFunctionEventInvokeConfig``. ``perdure.service.destinations`` starts them.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass

from perdure.errors import InvalidParameterError
from perdure.protocol.arns import parse_function_arn

# A function name, as the service accepts one, and an optional qualifier (a version or alias).
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_QUALIFIER = re.compile(r"\$LATEST|[a-zA-Z0-9_-]{1,128}")
# Any other ARN (SQS, SNS, EventBridge, S3): its service, for the message that refuses it.
_OTHER_ARN = re.compile(r"arn:[a-zA-Z0-9-]+:(?P<service>[a-zA-Z0-9-]+):.*")

# Lambda's limits on the two settings that shape its own retries (PutFunctionEventInvokeConfig).
MAX_RETRY_ATTEMPTS = 2
EVENT_AGE_SECONDS = (60, 21600)


@dataclass(frozen=True)
class EventInvokeConfig:
    """A function's destinations: each a function name, ``name:qualifier``, or None.

    ``maximum_retry_attempts`` and ``maximum_event_age_seconds`` are kept and answered as
    Lambda's API answers them, and change nothing: a durable execution retries by its own rules
    (step retry policies, ``retries``, invocation retries) and is never dropped for its age.
    """

    on_success: str | None = None
    on_failure: str | None = None
    maximum_retry_attempts: int | None = None
    maximum_event_age_seconds: int | None = None

    def __post_init__(self) -> None:
        attempts, age = self.maximum_retry_attempts, self.maximum_event_age_seconds
        if attempts is not None and not 0 <= attempts <= MAX_RETRY_ATTEMPTS:
            raise InvalidParameterError(f"MaximumRetryAttempts must be from 0 to {MAX_RETRY_ATTEMPTS}, not {attempts}.")
        if age is not None and not EVENT_AGE_SECONDS[0] <= age <= EVENT_AGE_SECONDS[1]:
            low, high = EVENT_AGE_SECONDS
            raise InvalidParameterError(f"MaximumEventAgeInSeconds must be from {low} to {high}, not {age}.")

    @property
    def destinations(self) -> tuple[str, ...]:
        """The functions it names, OnSuccess's first."""
        return tuple(name for name in (self.on_success, self.on_failure) if name)

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EventInvokeConfig:
        return cls(**json.loads(text))


class ConfigSource(enum.Enum):
    """Who set a stored configuration, which says what a server start may replace."""

    # PutFunctionEventInvokeConfig (boto3, the AWS CLI, `perdure deploy`): kept until deleted
    # or replaced.
    API = "api"
    # A template's EventInvokeConfig or a decorator's on_success/on_failure, written as the
    # server serving that code starts (and removed by one whose code sets none), as a SAM
    # deploy writes the stack's AWS::Lambda::EventInvokeConfig.
    SERVED = "served"


@dataclass(frozen=True)
class StoredInvokeConfig:
    """The configuration of one function and qualifier (``$LATEST`` when set without one)."""

    function_name: str
    qualifier: str
    config: EventInvokeConfig
    source: ConfigSource
    last_modified: float


def parse_destination(value: object, where: str) -> str:
    """A destination as Perdure keeps it (``name`` or ``name:qualifier``), from a name or a function ARN.

    ``where`` names the setting for the message (``DestinationConfig.OnFailure.Destination``).
    """
    if not isinstance(value, str) or not value:
        raise InvalidParameterError(f"{where} must name a function, such as notify-failure, not {value!r}.")
    parts = parse_function_arn(value)
    if parts is not None:
        name, qualifier = parts.name, parts.qualifier
    else:
        other = _OTHER_ARN.fullmatch(value)
        if other is not None:
            raise InvalidParameterError(
                f"{where} is {value}, an {other['service']} ARN: Perdure sends an execution's end to another "
                "function it runs, not to a queue, topic, bus or bucket. Name a function, or its ARN."
            )
        name, _, qualifier = value.partition(":")
    if not _NAME.fullmatch(name) or (qualifier is not None and qualifier != "" and not _QUALIFIER.fullmatch(qualifier)):
        raise InvalidParameterError(
            f"{where} is {value!r}, which is not a function: write a function name (letters, digits, - and _), "
            "NAME:QUALIFIER, or a function ARN."
        )
    return f"{name}:{qualifier}" if qualifier and qualifier != "$LATEST" else name


def destination_name(destination: str) -> str:
    """The function a destination (as ``parse_destination`` returns it) names, without its qualifier."""
    return destination.partition(":")[0]
