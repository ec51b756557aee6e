"""The dashboard's actions (POST, after the guard's checks): stop, pause, resume, restart, callbacks.

Each answers an htmx request with what to show in place of the button (a notice, or a
redirect through ``HX-Redirect``), and a plain form post with a redirect.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from perdure.api.dashboard.data import DashboardData
from perdure.api.dashboard.guard import Viewer
from perdure.api.dashboard.render import page
from perdure.errors import PerdureError
from perdure.protocol.records import ErrorObject, Execution
from perdure.service.validation import check_json_depth


def execution_url(arn: str) -> str:
    return f"/execution?arn={quote(arn, safe='')}"


def _go(request: Request, url: str) -> Response:
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _problem(message: str, status: int = 400) -> Response:
    return page("_notice.html", status=status, kind="bad", message=message)


def _who(viewer: Viewer) -> str:
    return "the dashboard (development mode)" if viewer.key_name is None else f"the dashboard (key {viewer.key_name})"


class Actions:
    """The dashboard's changes; ``wake`` is told of an execution they made ready to run (so that
    it runs now, not when the runtime next looks), as the API's own routes tell it."""

    def __init__(self, data: DashboardData, wake: Callable[[Execution], None]) -> None:
        self.service = data.service
        self.wake = wake

    async def stop(self, request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
        arn = form.get("arn", "")
        error = ErrorObject(message=f"Execution stopped from {_who(viewer)}.")
        return await self._run(request, arn, lambda: self.service.stop_execution(arn, error))

    async def pause(self, request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
        arn = form.get("arn", "")
        reason = f"Paused from {_who(viewer)}."
        return await self._run(request, arn, lambda: self.service.pause_execution(arn, reason))

    async def resume(self, request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
        arn = form.get("arn", "")
        reason = f"Resumed from {_who(viewer)}."
        return await self._run(request, arn, lambda: self.wake(self.service.resume_execution(arn, reason)))

    async def restart(self, request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
        arn, point = form.get("arn", ""), form.get("checkpoint", "")
        # Absent (one version only): the execution's own code.
        version = form.get("version") or None
        try:
            started = await run_in_threadpool(self.service.restart_execution, arn, point, None, version)
        except PerdureError as error:
            return _problem(error.message, error.status)
        self.wake(started)
        return _go(request, execution_url(started.arn))

    async def callback(self, request: Request, viewer: Viewer, form: dict[str, str]) -> Response:
        """Approves (``outcome=approve``, optional JSON ``result``) or rejects (optional ``error``) a callback."""
        callback_id, outcome = form.get("callback_id", ""), form.get("outcome", "")
        if not callback_id or outcome not in ("approve", "reject"):
            return _problem("Send callback_id and outcome=approve or outcome=reject.")
        try:
            if outcome == "approve":
                text = form.get("result", "").strip()
                if text:
                    check_json_depth("result", text)
                    try:
                        json.loads(text)
                    except ValueError as error:
                        return _problem(f"The result is not valid JSON ({error}); fix it or leave it empty.")
                result = text or None
                execution = await run_in_threadpool(self.service.succeed_callback, callback_id, result)
            else:
                message = form.get("error", "").strip() or f"Rejected from {_who(viewer)}."
                error_object = ErrorObject(message=message, type="Rejected")
                execution = await run_in_threadpool(self.service.fail_callback, callback_id, error_object)
        except PerdureError as error:
            return _problem(error.message, error.status)
        self.wake(execution)
        if not request.headers.get("hx-request"):
            return RedirectResponse(execution_url(execution.arn), status_code=303)
        return page("_callback_done.html", outcome=outcome, execution=execution)

    async def _run(self, request: Request, arn: str, change: Callable[[], object]) -> Response:
        try:
            await run_in_threadpool(change)
        except PerdureError as error:
            return _problem(error.message, error.status)
        return _go(request, execution_url(arn))
