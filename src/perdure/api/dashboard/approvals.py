"""The page of an approval link (``/approve/TOKEN``, see ``perdure.protocol.approval_links``).

GET shows what is asked (the callback's name and the summary the link was made with) and two
buttons; it changes nothing, so a chat's link preview or a mail scanner that opens the link
decides nothing. POST completes the callback: Approve succeeds it with ``{"approved": true}``,
Reject fails it (error type ``Rejected``), as the dashboard's inbox does. The POST must pass
the dashboard's origin check (``Guard.check_origin``) and carry the CSRF token of this one
link; the callback's own state makes it work once. The page needs no sign-in and makes no
session: the link opens its one callback and nothing else, and shows neither the execution's
input nor its ARN.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from perdure.api.dashboard.render import page
from perdure.errors import CallbackAlreadyCompletedError, CallbackNotFoundError
from perdure.protocol.approval_links import ApprovalLinks, LinkRefused
from perdure.protocol.records import ErrorObject, Execution, OperationStatus
from perdure.service import console
from perdure.service.console import CallbackState
from perdure.service.executions import DurableService

APPROVED_RESULT = '{"approved": true}'
REJECTED = ErrorObject(message="Rejected through an approval link.", type="Rejected")
_CLOSED = "This request is no longer open"


def _closed_reason(state: CallbackState) -> str:
    """Why a callback can no longer be decided, for the person holding its link."""
    if state.status is OperationStatus.SUCCEEDED:
        return f"{_CLOSED}: it has already been approved."
    if state.status is OperationStatus.FAILED:
        return f"{_CLOSED}: it has already been rejected."
    if state.status is OperationStatus.TIMED_OUT:
        return f"{_CLOSED}: it timed out before anyone decided."
    return f"{_CLOSED}: its workflow has ended."


def _message(title: str, message: str, status: int, state: str = "closed") -> HTMLResponse:
    return page("approval.html", status=status, viewer=None, title=title, state=state, message=message)


class ApprovalPage:
    """Shows and decides approval links of one service, checked with ``links``.

    ``woke`` is told of the execution a decision made ready, so that it runs now (the runtime
    hears of no commit made by its own process otherwise).
    """

    def __init__(
        self, service: DurableService, links: ApprovalLinks, woke: Callable[[Execution], None] | None = None
    ) -> None:
        self.service = service
        self.links = links
        self.woke = woke

    async def show(self, token: str) -> HTMLResponse:
        try:
            claims = self.links.read(token)
            state = await run_in_threadpool(console.callback_state, self.service, claims.callback_id)
        except LinkRefused as refusal:
            return _message("Link not valid", refusal.reason, 410 if refusal.expired else 403)
        except CallbackNotFoundError:
            return _message("Closed", f"{_CLOSED}: its workflow was deleted.", 410)
        if not state.open:
            return _message("Closed", _closed_reason(state), 410)
        return page(
            "approval.html",
            viewer=None,
            title="Approval requested",
            state="open",
            name=state.name,
            summary=claims.summary,
            expires=claims.expires,
            token=token,
            csrf=self.links.csrf_token(token),
        )

    async def decide(self, token: str, form: dict[str, str]) -> HTMLResponse:
        """Completes the link's callback as ``form`` says, once its origin has been checked."""
        try:
            claims = self.links.read(token)
        except LinkRefused as refusal:
            return _message("Link not valid", refusal.reason, 410 if refusal.expired else 403)
        if not self.links.check_csrf(token, form.get("csrf")):
            return _message(
                "Refused",
                "Refused: the form's security token is missing or belongs to another link. Open the link again and decide there.",
                403,
            )
        outcome = form.get("outcome")
        if outcome not in ("approve", "reject"):
            return _message("Refused", "Refused: choose Approve or Reject.", 400)
        try:
            if outcome == "approve":
                execution = await run_in_threadpool(self.service.succeed_callback, claims.callback_id, APPROVED_RESULT)
            else:
                execution = await run_in_threadpool(self.service.fail_callback, claims.callback_id, REJECTED)
        except (CallbackAlreadyCompletedError, CallbackNotFoundError):
            return await self._already_closed(claims.callback_id)
        if self.woke is not None:
            self.woke(execution)
        done = "Approved" if outcome == "approve" else "Rejected"
        return _message(done, f"{done}. Thank you: the workflow goes on from here.", 200, state="done")

    async def _already_closed(self, callback_id: str) -> HTMLResponse:
        try:
            state = await run_in_threadpool(console.callback_state, self.service, callback_id)
        except CallbackNotFoundError:
            return _message("Closed", f"{_CLOSED}: its workflow was deleted.", 409)
        return _message("Closed", _closed_reason(state), 409)
