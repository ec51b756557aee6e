"""Checkpoint tokens: which invocation may write, and which changes it has already seen.

A token is ``<invocation>.<version>.<secret>``. The invocation number and secret fence
invocations: once a newer invocation leases the execution, older tokens are refused. The
version is the execution's version when the token was issued, so a checkpoint reply can carry
exactly the operations that changed since the caller last looked.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from perdure.errors import StaleCheckpointTokenError
from perdure.protocol.records import Execution
from perdure.service.validation import parse_count


@dataclass(frozen=True)
class TokenClaims:
    invocation: int
    version: int


def new_secret() -> str:
    return secrets.token_urlsafe(16)


def issue(execution: Execution) -> str:
    return f"{execution.invocation}.{execution.version}.{execution.invocation_secret}"


def verify(execution: Execution, token: str) -> TokenClaims:
    """Returns the token's claims if it belongs to the invocation holding the execution."""
    parts = token.split(".", 2)
    if len(parts) != 3:
        raise StaleCheckpointTokenError(execution.arn)
    invocation, version, secret = parse_count(parts[0]), parse_count(parts[1]), parts[2]
    if (
        invocation is None
        or version is None
        or execution.status.is_terminal
        or execution.lease_owner is None
        or invocation != execution.invocation
        # As bytes: compare_digest refuses str with characters outside ASCII.
        or not hmac.compare_digest(secret.encode("utf-8", "surrogatepass"), execution.invocation_secret.encode())
    ):
        raise StaleCheckpointTokenError(execution.arn)
    return TokenClaims(invocation, version)
