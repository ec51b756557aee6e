"""Rendering: the Jinja environment of the dashboard's templates and the filters they use."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jinja2
from starlette.responses import HTMLResponse

from perdure.protocol.records import ExecutionStatus, OperationStatus

# Payloads longer than this are cut on the page, with a way to see them whole.
PREVIEW_CHARS = 1200

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("perdure.api.dashboard", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Shown:
    """A payload as the page shows it: pretty-printed when it is JSON, cut to ``PREVIEW_CHARS``."""

    text: str
    preview: str

    @property
    def truncated(self) -> bool:
        return len(self.preview) < len(self.text)


def shown(payload: str | None) -> Shown | None:
    if payload is None or payload == "":
        return None
    try:
        text = json.dumps(json.loads(payload), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        # RecursionError: a handler's result may nest as deep as json could write it, deeper
        # than it reads back this far down a page's stack; it is shown as it was stored.
        text = payload
    return Shown(text, text[:PREVIEW_CHARS])


def when(seconds: float | None) -> str:
    """An epoch time as ``2026-11-27 11:43:29`` (UTC)."""
    if seconds is None:
        return "—"
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).isoformat()


def duration(seconds: float | None) -> str:
    """A length of time for people: ``850 ms``, ``4.2 s``, ``3 min 4 s``, ``2 h 5 min``, ``3 d 4 h``."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds == int(seconds) or seconds >= 10 else f"{seconds:.1f} s"
    whole = int(seconds)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60), ("min", 60, "s", 1)):
        if whole >= size:
            rest = (whole % size) // sub_size
            return f"{whole // size} {unit} {rest} {sub}" if rest else f"{whole // size} {unit}"
    return f"{whole} s"


def status_class(status: ExecutionStatus | OperationStatus | str) -> str:
    """The CSS class of a status badge."""
    value = str(status)
    if value == "SUCCEEDED":
        return "ok"
    if value in ("FAILED", "TIMED_OUT"):
        return "bad"
    if value in ("STOPPED", "CANCELLED"):
        return "off"
    if value in ("PAUSED", "PAUSING"):
        return "held"
    return "live"


def query_string(params: dict[str, Any]) -> str:
    """``params`` without empty values, URL-encoded."""
    return urlencode({k: v for k, v in params.items() if v not in (None, "")})


_ENV.filters.update(when=when, iso=iso, duration=duration, status_class=status_class, shown=shown, qs=query_string)


def page(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Renders a template as an HTML response."""
    # Pages that belong to no section of the navigation leave ``active`` unset.
    context.setdefault("active", "")
    return HTMLResponse(_ENV.get_template(template).render(**context), status_code=status, headers=headers)
