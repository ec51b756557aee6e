"""The dashboard's pages: Executions, one execution, the Inbox, Functions.

Each page is also its own live fragment: an htmx request (``HX-Request``) with ``part=…``
gets only the part that changes, which the page polls. A part that has not changed since the
``since`` the page sent is answered 204, which htmx leaves as it is (so an open "show all"
stays open).
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from perdure.api.dashboard.data import DashboardData, Poll
from perdure.api.dashboard.guard import Viewer
from perdure.api.dashboard.render import page
from perdure.errors import InvalidParameterError
from perdure.protocol.queries import ExecutionQuery
from perdure.protocol.records import ExecutionStatus

PAGE_SIZE = 50
# The time ranges of the Executions filter, in seconds back from now.
RANGES = {"1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
# What the status filter offers (DELETING is in the API's enum but never seen).
STATUSES = [s for s in ExecutionStatus if s is not ExecutionStatus.DELETING]
# Functions' recent counts cover this long.
STATS_SECONDS = 86400


def _time_input(text: str, field: str) -> float | None:
    """A ``datetime-local`` value (read as UTC) as epoch seconds."""
    if not text:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameterError(
            f"The {field} time {text!r} is not a date and time: use YYYY-MM-DDTHH:MM (UTC)."
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)).timestamp()


def execution_query(request: Request, now: float) -> tuple[ExecutionQuery, dict[str, str]]:
    """The Executions filters of a request, as a store query and as the form shows them."""
    params = request.query_params
    form = {
        name: params.get(name, "").strip()
        for name in ("function", "status", "name", "range", "from", "to", "marker")
    }
    status = form["status"]
    if status and status not in {s.value for s in STATUSES}:
        raise InvalidParameterError(f"Unknown status {status!r}: choose one of {', '.join(s.value for s in STATUSES)}.")
    if form["range"] and form["range"] not in RANGES:
        raise InvalidParameterError(f"Unknown time range {form['range']!r}: choose one of {', '.join(RANGES)}.")
    after = now - RANGES[form["range"]] if form["range"] else _time_input(form["from"], "from")
    query = ExecutionQuery(
        function_name=form["function"] or None,
        statuses=(ExecutionStatus(status),) if status else (),
        name_prefix=form["name"] or None,
        started_after=after,
        started_before=_time_input(form["to"], "to"),
        marker=form["marker"] or None,
        limit=PAGE_SIZE,
    )
    return query, form


class Pages:
    """The GET endpoints; each reads what it shows in one trip to a worker thread."""

    def __init__(self, data: DashboardData) -> None:
        self.data = data

    async def executions(self, request: Request, viewer: Viewer) -> Response:
        query, form = execution_query(request, time.time())
        listing = await run_in_threadpool(self.data.listing, query)
        context: dict[str, Any] = {
            "viewer": viewer, "form": form, "listing": listing, "statuses": STATUSES, "ranges": RANGES
        }
        if request.query_params.get("part") == "results":
            return page("_executions_results.html", **context)
        functions = [spec.name for spec in self.data.registry]
        return page("executions.html", functions=functions, **context)

    async def execution(self, request: Request, viewer: Viewer) -> Response:
        arn = request.query_params.get("arn", "")
        if not arn:
            raise InvalidParameterError("Open an execution from the Executions list (the page needs ?arn=…).")
        part = request.query_params.get("part")
        if part == "badge":
            execution = await run_in_threadpool(self.data.execution, arn)
            return page("_execution_badge.html", e=execution)
        if part == "live":
            found = await run_in_threadpool(self.data.poll, arn, request.query_params.get("since", ""))
            if found is Poll.SAME:
                return Response(status_code=204)
            if found is Poll.SETTLED:
                # The execution ended and its last log lines are in: 286 makes htmx stop polling,
                # and HX-Reswap keeps the page as it is.
                return Response(status_code=286, headers={"HX-Reswap": "none"})
        detail = await run_in_threadpool(self.data.execution_detail, arn)
        template = "_execution_live.html" if part == "live" else "execution.html"
        return page(template, viewer=viewer, d=detail)

    async def inbox(self, request: Request, viewer: Viewer) -> Response:
        marker = request.query_params.get("marker") or None
        function = request.query_params.get("function") or None
        callbacks = await run_in_threadpool(self.data.inbox, marker, function)
        functions = [spec.name for spec in self.data.registry]
        return page(
            "inbox.html",
            viewer=viewer,
            callbacks=callbacks,
            function=function or "",
            marker=marker or "",
            functions=functions,
        )

    async def functions(self, request: Request, viewer: Viewer) -> Response:
        rows = await run_in_threadpool(self.data.functions, time.time() - STATS_SECONDS)
        return page("functions.html", viewer=viewer, rows=rows, hours=STATS_SECONDS // 3600)
