"""A function's URL settings (Lambda's ``FunctionUrlConfig``): who may call it, and how it answers."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from perdure.errors import InvalidParameterError


class AuthType(enum.StrEnum):
    """``NONE``: anyone may call the URL. ``AWS_IAM``: a caller authenticates as the API asks (an API key)."""

    NONE = "NONE"
    AWS_IAM = "AWS_IAM"


class InvokeMode(enum.StrEnum):
    """``BUFFERED``: the reply is the execution's result when it ends soon, else its ARN."""

    BUFFERED = "BUFFERED"


# Lambda's other InvokeMode: a streamed reply, which a durable execution has nothing to stream into.
_STREAMING = "RESPONSE_STREAM"
_SETTINGS = ("AuthType", "InvokeMode")


@dataclass(frozen=True)
class FunctionUrl:
    """How the function's URL (``/url/NAME``) is called and answers."""

    auth_type: AuthType
    invoke_mode: InvokeMode = InvokeMode.BUFFERED

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> FunctionUrl:
        """Reads ``FunctionUrlConfig``'s ``AuthType`` and ``InvokeMode``; raises InvalidParameterError naming what is wrong."""
        for key in settings:
            if key == "Cors":
                raise InvalidParameterError(
                    "FunctionUrlConfig.Cors is not supported: Perdure's function URLs answer no CORS preflight. "
                    "Remove Cors (servers and webhooks need none), or answer CORS in a proxy in front of Perdure."
                )
            if key not in _SETTINGS:
                raise InvalidParameterError(
                    f"FunctionUrlConfig has an unknown setting {key!r}; it takes {' and '.join(_SETTINGS)}."
                )
        auth = settings.get("AuthType")
        if auth is None:
            raise InvalidParameterError(
                "FunctionUrlConfig.AuthType is missing. Write AuthType: NONE (anyone may call the URL) "
                "or AuthType: AWS_IAM (callers authenticate with an API key, as the API's callers do)."
            )
        if not isinstance(auth, str) or auth not in AuthType.__members__:
            raise InvalidParameterError(
                f"FunctionUrlConfig.AuthType must be NONE or AWS_IAM, not {auth!r}. NONE lets anyone call the "
                "URL; AWS_IAM asks for an API key's SigV4 signature or bearer token."
            )
        mode = settings.get("InvokeMode", InvokeMode.BUFFERED.value)
        if mode == _STREAMING:
            raise InvalidParameterError(
                "FunctionUrlConfig.InvokeMode RESPONSE_STREAM is not supported: a durable execution's result "
                "is not streamed. Write InvokeMode: BUFFERED, or leave it out (BUFFERED is the default)."
            )
        if not isinstance(mode, str) or mode not in InvokeMode.__members__:
            raise InvalidParameterError(
                f"FunctionUrlConfig.InvokeMode must be BUFFERED, not {mode!r}, or be left out."
            )
        return cls(AuthType(auth), InvokeMode(mode))

    @classmethod
    def from_json(cls, fields: Mapping[str, Any]) -> FunctionUrl:
        """Reads what ``dataclasses.asdict`` made of one (a stored version's configuration)."""
        return cls(AuthType(fields["auth_type"]), InvokeMode(fields["invoke_mode"]))
