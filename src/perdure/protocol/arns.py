"""The ARNs of functions and executions, written and read in one place."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Lambda's function ARN: ``arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]``.
_FUNCTION_ARN = re.compile(
    r"arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:function:(?P<name>[a-zA-Z0-9_-]+)(?::(?P<qualifier>[^:]+))?"
)


@dataclass(frozen=True)
class FunctionArnParts:
    """What a function ARN names; ``qualifier`` is None when the ARN has none."""

    name: str
    qualifier: str | None


def function_arn_for(region: str, account_id: str, name: str, qualifier: str | None) -> str:
    """The ARN of function ``name``, qualified by ``qualifier`` unless it is None."""
    unqualified = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
    return unqualified if qualifier is None else f"{unqualified}:{qualifier}"


def parse_function_arn(value: str) -> FunctionArnParts | None:
    """The parts of ``value`` if it is a function ARN, else None."""
    match = _FUNCTION_ARN.fullmatch(value)
    return FunctionArnParts(match["name"], match["qualifier"]) if match else None


def execution_arn_for(function_arn: str, name: str, execution_id: str) -> str:
    """The ARN of the execution ``name`` (ID ``execution_id``) of the qualified ``function_arn``."""
    return f"{function_arn}/durable-execution/{name}/{execution_id}"


def function_arn_of(execution_arn: str) -> str:
    """The qualified function ARN that ``execution_arn`` (made by ``execution_arn_for``) begins with."""
    return execution_arn.split("/durable-execution/")[0]
