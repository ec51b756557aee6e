"""``--log-format``: how ``perdure serve`` and ``perdure worker`` write their own log on stderr, as text or JSON lines."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, cast

import click

from perdure.cli.options import F, notify
from perdure.errors import PerdureError

# The messages a server prints for its operator (what it serves, notes, key warnings), as log records.
_messages = logging.getLogger("perdure.server")


def log_format_option(function: F) -> F:
    """--log-format text|json, given to the command as ``json_log``; json makes its log lines JSON from the start.

    Its messages for the operator go through ``operator_messages``, and an error that stops it
    is a JSON line too: put this below ``reports_errors``, which would print it as text.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, log_format: str, **kwargs: Any) -> Any:
        if log_format == "text":
            return function(*args, json_log=False, **kwargs)
        from perdure.runtime.server_log import log_server_as_json

        log_server_as_json()
        try:
            return function(*args, json_log=True, **kwargs)
        except PerdureError as error:
            _messages.error(error.message)
            sys.exit(1)

    option = click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="How this process and its workers write their log on stderr: text, or json (one JSON object a line, "
        "with the execution's ARN, function and invocation on the lines about one).",
    )
    return cast(F, option(wrapper))


def operator_messages(json_log: bool) -> Callable[[str], None]:
    """Where the command's messages for the operator go: printed on stderr, or logged as JSON lines."""
    return _messages.info if json_log else notify
