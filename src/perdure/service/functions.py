"""What the service knows of the functions a server runs: their names and execution defaults.

The registry of handlers lives in the runtime, above the service; a CHAINED_INVOKE needs only
to know whether its target exists and with which defaults its child execution starts, so
whoever builds a ``DurableService`` hands it a lookup (``FunctionLookup``) built from that
registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from perdure.errors import InvalidParameterError
from perdure.protocol.arns import parse_function_arn
from perdure.service.validation import NAME, check_qualifier


@dataclass(frozen=True)
class FunctionRef:
    """A function name as a caller wrote it, split into name and qualifier."""

    name: str
    qualifier: str


def parse_function_name(value: str) -> FunctionRef:
    """Accepts ``name``, ``name:qualifier`` or a function ARN (with or without qualifier)."""
    parts = parse_function_arn(value)
    if parts:
        name, qualifier = parts.name, parts.qualifier or ""
    else:
        name, _, qualifier = value.partition(":")
        if not NAME.fullmatch(name) or ":" in qualifier:
            raise InvalidParameterError(
                f"Invalid function name {value!r}: use a name, NAME:QUALIFIER, or a function ARN."
            )
    if qualifier:
        check_qualifier(qualifier)
    return FunctionRef(name, qualifier or "$LATEST")


@dataclass(frozen=True)
class FunctionDefaults:
    """A function the server runs, and the settings its executions start with."""

    name: str
    # ExecutionTimeout (seconds) of its executions; None: no limit.
    execution_timeout_seconds: int | None = None
    retention_days: int | None = None


# Returns the function of this name (a bare name), or None when the server runs no such function.
FunctionLookup = Callable[[str], FunctionDefaults | None]


def lookup_of(functions: Iterable[FunctionDefaults]) -> FunctionLookup:
    """A lookup over a fixed set of functions."""
    table = {f.name: f for f in functions}
    return table.get


def no_functions(name: str) -> FunctionDefaults | None:
    """The lookup of a service that was told of no functions: every name is unknown."""
    return None
