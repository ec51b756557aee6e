"""``--since``: a moment given as a time ago (``90s``, ``30m``, ``2h``, ``7d``, ``1w``) or as a time."""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable
from typing import Any

import click

from perdure.cli.options import F

_AGO = re.compile(r"(?P<count>\d+(?:\.\d+)?)\s*(?P<unit>s|m|h|d|w)")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Since(click.ParamType[float]):
    """Reads ``2h`` (two hours ago), an ISO 8601 time (``2026-01-31T09:00``, UTC unless it says), or epoch seconds."""

    name = "since"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        ago = _AGO.fullmatch(text)
        if ago is not None:
            return time.time() - float(ago["count"]) * _SECONDS[ago["unit"]]
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                return float(text)
            except ValueError:
                self.fail(
                    f"{text!r} is not a time: write how long ago (90s, 30m, 2h, 7d, 1w), "
                    "a time such as 2026-01-31T09:00:00Z, or epoch seconds.",
                    param,
                    ctx,
                )
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return moment.timestamp()


def since_option(help: str, required: bool = False) -> Callable[[F], F]:
    """``--since DURATION|TIME``, as epoch seconds (None when left out)."""

    def decorate(function: F) -> F:
        return click.option("--since", type=Since(), required=required, metavar="DURATION|TIME", help=help)(function)

    return decorate
